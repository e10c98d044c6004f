# Cross-compiling korutin for armv7 (arm-linux-gnueabihf) with Debian's cross toolchain.
#   cmake -S . -B build-arm-linux-gnueabihf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
# Debian package: gcc-arm-linux-gnueabihf (run with qemu-user: qemu-arm -L /usr/arm-linux-gnueabihf)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)

set(KO_CROSS_TRIPLE arm-linux-gnueabihf)
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
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /usr/${KO_CROSS_TRIPLE})
