#!/bin/sh
# Builds the scripted peer tools by hand (the autotools build is wired up separately):
#   tests/peers/build.sh [OUTDIR]      -> OUTDIR/mw-peer, OUTDIR/peer-selfcheck (default: $TMPDIR/mw-peers-build)
# Flags: C++20, warnings on, libevent + libevent_openssl + OpenSSL 3 from pkg-config.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${TMPDIR:-/tmp}/mw-peers-build}
mkdir -p "$out"
CXX=${CXX:-g++}
CXXFLAGS=${CXXFLAGS:--O1 -g}
flags="-std=c++20 -Wall -Wextra $CXXFLAGS"
libs=$(pkg-config --cflags --libs libevent libevent_openssl openssl)
common="$here/peer.cc $here/script.cc $here/testcerts.cc"
$CXX $flags -o "$out/mw-peer" "$here/mw-peer.cc" $common $libs
$CXX $flags -DPEER_SCRIPTS_DIR="\"$here/scripts\"" -o "$out/peer-selfcheck" \
  "$here/selfcheck.cc" $common $libs -lpthread
echo "built $out/mw-peer $out/peer-selfcheck"
