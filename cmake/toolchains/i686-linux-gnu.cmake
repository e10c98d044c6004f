# Cross-compiling korutin for i686 (i686-linux-gnu) with Debian's cross toolchain.
#   cmake -S . -B build-i686-linux-gnu -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/i686-linux-gnu.cmake
# Debian package: gcc-i686-linux-gnu (run with qemu-user: qemu-i386 -L /usr/i686-linux-gnu)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)

set(KO_CROSS_TRIPLE i686-linux-gnu)
set(CMAKE_C_COMPILER ${KO_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${KO_CROSS_TRIPLE}-g++)
set(CMAKE_ASM_COMPILER ${KO_CROSS_TRIPLE}-gcc)

# Look for headers and libraries of the target only, never the build host's.
set(CMAKE_FIND_ROOT_PATH /usr/${KO_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Lets ctest and add_custom_command run the target's programs (qemu-user).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-i386 -L /usr/${KO_CROSS_TRIPLE})
