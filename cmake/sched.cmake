# The scheduler (tasks, timers, channels, sync, fd waits) on libuv: adds its
# sources to the korutin library, links libuv, and registers the native
# scheduler tests (test/sched/*.c) with CTest, one run per backend.
# Included by CMakeLists.txt after the korutin target is defined.

ko_json_list(KO_SCHED_SOURCES sched)
ko_json_list(KO_SCHED_UV_SOURCES sched_uv)

# libuv: pkg-config first, then a plain library search.
set(KO_UV_TARGET "")
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(KO_LIBUV QUIET IMPORTED_TARGET libuv)
  if(KO_LIBUV_FOUND)
    set(KO_UV_TARGET PkgConfig::KO_LIBUV)
  endif()
endif()
if(NOT KO_UV_TARGET)
  find_path(KO_UV_INCLUDE uv.h)
  find_library(KO_UV_LIB NAMES uv libuv)
  if(KO_UV_INCLUDE AND KO_UV_LIB)
    add_library(ko_libuv INTERFACE IMPORTED)
    set_target_properties(ko_libuv PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES ${KO_UV_INCLUDE} INTERFACE_LINK_LIBRARIES ${KO_UV_LIB})
    set(KO_UV_TARGET ko_libuv)
  endif()
endif()
if(NOT KO_UV_TARGET)
  message(FATAL_ERROR "korutin: libuv not found (install libuv1-dev): the scheduler needs it")
endif()
message(STATUS "korutin: scheduler on libuv (${KO_UV_TARGET})")

target_sources(korutin PRIVATE ${KO_SCHED_SOURCES} ${KO_SCHED_UV_SOURCES})
target_link_libraries(korutin PUBLIC ${KO_UV_TARGET})

if(KORUTIN_BUILD_TESTS AND NOT WIN32)
  enable_testing()
  set(KO_SCHED_TESTS sched_basic sched_chan sched_sync sched_fd sched_net sched_compute)
  foreach(t ${KO_SCHED_TESTS})
    add_executable(${t} ${CMAKE_CURRENT_SOURCE_DIR}/test/sched/${t}.c)
    target_include_directories(${t} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/test/sched)
    target_link_libraries(${t} PRIVATE korutin ${KO_UV_TARGET} m)
    target_compile_options(${t} PRIVATE -Wall -Wextra)
    foreach(be asm boost ucontext threads)
      add_test(NAME ${t}_${be} COMMAND ${t} ${be})
      # 77: the backend is not built into this binary
      set_tests_properties(${t}_${be} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS sched)
    endforeach()
  endforeach()
endif()
