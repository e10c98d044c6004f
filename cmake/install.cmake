# Installs libkorutin, korutin.h, a pkg-config file (korutin.pc) and a CMake
# package (find_package(korutin) -> korutin::korutin).
include(CMakePackageConfigHelpers)

install(TARGETS korutin EXPORT korutinTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/engine/include/korutin.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# What korutinConfig.cmake must find again for the exported target: libuv
# when the scheduler is built in (through pkg-config, or found by hand).
set(KO_CONFIG_DEPS "")
set(KO_PC_REQUIRES "")
set(KO_PC_EXTRA ${KO_BACKEND_LIBS})
if(KORUTIN_WITH_SCHED AND KO_UV_TARGET STREQUAL "PkgConfig::KO_LIBUV")
  set(KO_CONFIG_DEPS [[
find_dependency(PkgConfig)
pkg_check_modules(KO_LIBUV REQUIRED QUIET IMPORTED_TARGET libuv)]])
  set(KO_PC_REQUIRES "libuv")
elseif(KORUTIN_WITH_SCHED)
  set(KO_CONFIG_DEPS [[
if(NOT TARGET ko_libuv)
  find_path(KO_UV_INCLUDE uv.h)
  find_library(KO_UV_LIB NAMES uv libuv REQUIRED)
  add_library(ko_libuv INTERFACE IMPORTED)
  set_target_properties(ko_libuv PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${KO_UV_INCLUDE}" INTERFACE_LINK_LIBRARIES "${KO_UV_LIB}")
endif()]])
  list(APPEND KO_PC_EXTRA ${KO_UV_LIB})
endif()

set(KO_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/korutin)
install(EXPORT korutinTargets NAMESPACE korutin:: DESTINATION ${KO_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/korutinConfig.cmake.in
  ${PROJECT_BINARY_DIR}/korutinConfig.cmake INSTALL_DESTINATION ${KO_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/korutinConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/korutinConfig.cmake ${PROJECT_BINARY_DIR}/korutinConfigVersion.cmake
  DESTINATION ${KO_CMAKE_DIR})

# pkg-config. A static libkorutin needs its backends' libraries on the
# consumer's link line; a shared one only lists them for --static.
set(KO_PC_DEPS "")
foreach(lib ${KO_PC_EXTRA})
  if(IS_ABSOLUTE "${lib}")
    string(APPEND KO_PC_DEPS " ${lib}")
  else()
    string(APPEND KO_PC_DEPS " -l${lib}")
  endif()
endforeach()
string(APPEND KO_PC_DEPS " ${CMAKE_THREAD_LIBS_INIT}")
string(STRIP "${KO_PC_DEPS}" KO_PC_DEPS)
if(BUILD_SHARED_LIBS)
  set(KO_PC_LIBS "")
  set(KO_PC_LIBS_PRIVATE "${KO_PC_DEPS}")
  set(KO_PC_REQUIRES_LINE "Requires.private: ${KO_PC_REQUIRES}")
else()
  set(KO_PC_LIBS "${KO_PC_DEPS}")
  set(KO_PC_LIBS_PRIVATE "")
  set(KO_PC_REQUIRES_LINE "Requires: ${KO_PC_REQUIRES}")
endif()
# The file finds its prefix from where it is installed, so that
# `cmake --install --prefix DIR` gives a working file too.
file(RELATIVE_PATH KO_PC_PREFIX_REL ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" KO_PC_PREFIX_REL "${KO_PC_PREFIX_REL}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/korutin.pc.in ${PROJECT_BINARY_DIR}/korutin.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/korutin.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
