# Cross-compiling korutin for i686 (i686-w64-mingw32) with Debian's cross toolchain.
#   cmake -S . -B build-i686-w64-mingw32 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/i686-w64-mingw32.cmake
# Debian package: gcc-mingw-w64-i686 (run with wine: 32-bit programs need wine32)
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR i686)

set(KO_CROSS_TRIPLE i686-w64-mingw32)
set(CMAKE_C_COMPILER ${KO_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${KO_CROSS_TRIPLE}-g++)
set(CMAKE_ASM_COMPILER ${KO_CROSS_TRIPLE}-gcc)

# Look for headers and libraries of the target only, never the build host's.
set(CMAKE_FIND_ROOT_PATH /usr/${KO_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Lets ctest and add_custom_command run the target's programs (Debian: wine).
set(CMAKE_CROSSCOMPILING_EMULATOR wine)
