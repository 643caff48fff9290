#!/bin/sh
# Builds the libFuzzer harnesses with Debian's clang, ASan and UBSan, into their own build
# directory (default: build-fuzz/ beside build/), reusing ccache when it is there.
#
#   tests/fuzz/build.sh [BUILD_DIR]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out="${1:-${MW_FUZZ_BUILD:-$top/build-fuzz}}"
harnesses="config credentials state imap pop smtp sieve director httpc http"

cxx=clang++
command -v "$cxx" >/dev/null || { echo "fuzz: clang++ is missing (Debian packages clang, libclang-rt-14-dev)" >&2; exit 2; }
command -v ccache >/dev/null && cxx="ccache $cxx"
# clang 14 cannot emit UBSan's "function" check together with libFuzzer's coverage in coroutine
# frames ("Cannot represent a difference across sections"); every other UBSan check is on.
san="-fsanitize=address,undefined -fno-sanitize=function -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
flags="-O1 -g $san"

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi >/dev/null 2>&1
mkdir -p "$out"
cd "$out"
# The library is built with coverage for libFuzzer but without its main().
[ -f Makefile ] || CXX="$cxx" CXXFLAGS="$flags -fsanitize=fuzzer-no-link" "$top/configure" --quiet --disable-static-deps
make -j"${MW_JOBS:-2}" --no-print-directory libmailwarden.a >/dev/null

pkgs="libevent libevent_openssl openssl libpcre2-8 libconfig++ libxcrypt pam nlohmann_json"
cppflags="-std=c++20 -I$top/src -I$top -I$out $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs)"
$cxx $flags -fsanitize=fuzzer-no-link $cppflags -c "$top/tests/fuzz/fuzz_support.cc" -o fuzz_support.o
for h in $harnesses; do
  $cxx $flags -fsanitize=fuzzer $cppflags "$top/tests/fuzz/fuzz_$h.cc" fuzz_support.o \
    libmailwarden.a $libs -o "fuzz-$h"
done
echo "fuzz: built $(echo $harnesses | wc -w) harnesses in $out"
