# Cross-compile for aarch64 Linux with Debian's gcc cross toolchain and run the
# test binaries under qemu user-mode emulation (binfmt is not assumed, so ctest
# calls qemu explicitly through CMAKE_CROSSCOMPILING_EMULATOR).
#
#   apt-get install g++-aarch64-linux-gnu qemu-user-static
#   cmake -S . -B build/aarch64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DSPARSEDGE_BUILD_TESTS=ON
#   cmake --build build/aarch64 && ctest --test-dir build/aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(SDE_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "Cross toolchain prefix")
set(SDE_CROSS_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "Target libraries for qemu -L")
set(CMAKE_C_COMPILER ${SDE_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${SDE_CROSS_PREFIX}g++)

# Debian's cross libraries live in /usr/aarch64-linux-gnu; search there for
# target libraries and headers, on the host for programs.
set(CMAKE_FIND_ROOT_PATH ${SDE_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(SDE_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(SDE_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SDE_QEMU_AARCH64} -L ${SDE_CROSS_SYSROOT})
endif()
