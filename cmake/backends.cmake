# Decides which backends are built into libkorutin, and says why a missing
# one is missing. Sets KO_ASM_SOURCE, KO_BACKEND_DEFS, KO_BACKEND_LIBS.
include(CheckSymbolExists)
include(CheckCXXSourceCompiles)

# asm: one switch file per CPU/ABI/object format, from backends/asm/arch.txt
# (the first row of this format and pointer size whose CPU names match).
# CMAKE_SYSTEM_PROCESSOR names the host CPU in a native build; a 32-bit
# build on a 64-bit x86 host (-m32) is told apart by the pointer size.
if(WIN32)
  set(KO_ASM_FORMAT pe)
elseif(APPLE)
  set(KO_ASM_FORMAT macho)
else()
  set(KO_ASM_FORMAT elf)
endif()
math(EXPR KO_ASM_BITS "${CMAKE_SIZEOF_VOID_P} * 8")
set(KO_ASM_KEY "")
set(KO_ASM_SOURCE "")
set(KO_BACKEND_DEFS "")
set(KO_BACKEND_LIBS "")
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/backends/asm/arch.txt KO_ASM_ROWS REGEX "^[^#]")
foreach(row IN LISTS KO_ASM_ROWS)
  string(REGEX REPLACE "[ \t]+" ";" cells "${row}")
  list(GET cells 0 key)
  list(GET cells 1 file)
  list(GET cells 2 format)
  list(GET cells 3 bits)
  list(GET cells 5 cpus)
  if(NOT KO_ASM_KEY AND format STREQUAL KO_ASM_FORMAT AND bits EQUAL KO_ASM_BITS
     AND CMAKE_SYSTEM_PROCESSOR MATCHES "${cpus}")
    set(KO_ASM_KEY ${key})
    set(KO_ASM_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/backends/asm/${file})
    list(APPEND KO_BACKEND_DEFS KO_ASM_SWITCH)
  endif()
endforeach()
message(STATUS "korutin: asm backend: ${KO_ASM_KEY} ${KO_ASM_SOURCE}")

# threads: on Windows its own Win32 code (backends/threads/threads_win.c),
# whose WaitOnAddress (Windows 8 and later) lives in libsynchronization.
if(WIN32)
  list(APPEND KO_BACKEND_LIBS synchronization)
endif()

# ucontext
check_symbol_exists(swapcontext "ucontext.h" KO_HAVE_UCONTEXT)
if(KO_HAVE_UCONTEXT)
  list(APPEND KO_BACKEND_DEFS KO_HAVE_UCONTEXT)
endif()

# boost: Boost.Context's fcontext from the system.
option(KORUTIN_WITH_BOOST "Build the Boost.Context backend when found" ON)
set(KO_BOOST_MISSING "")
if(KORUTIN_WITH_BOOST)
  find_library(KO_BOOST_CONTEXT_LIB NAMES libboost_context.a boost_context)
  find_path(KO_BOOST_INCLUDE boost/context/detail/fcontext.hpp)
  if(KO_BOOST_CONTEXT_LIB AND KO_BOOST_INCLUDE)
    list(APPEND KO_BACKEND_DEFS KO_HAVE_BOOST)
    list(APPEND KO_BACKEND_LIBS ${KO_BOOST_CONTEXT_LIB})
    message(STATUS "korutin: boost backend: ${KO_BOOST_CONTEXT_LIB}")
  else()
    set(KO_BOOST_MISSING "Boost.Context was not found when this binary was configured (install libboost-context-dev and rebuild)")
  endif()
else()
  set(KO_BOOST_MISSING "built with KORUTIN_WITH_BOOST=OFF")
endif()
if(KO_BOOST_MISSING)
  message(STATUS "korutin: boost backend left out: ${KO_BOOST_MISSING}")
  list(APPEND KO_BACKEND_DEFS "KO_BOOST_MISSING=\"${KO_BOOST_MISSING}\"")
endif()
