#!/bin/sh
# The unit tests (which include every protocol dialogue against the scripted hostile peers) under
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer, built with g++ into their own
# directory (default: build-asan/ beside build/). Any sanitizer report fails the run.
#
#   tests/sanitize.sh [-k PATTERN]     -k: also run the integration tests whose name contains
#                                      PATTERN against the sanitized binaries
# Last line: "N passed, N failed" (the unit tests, plus the integration tests with -k).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
out="${MW_ASAN_BUILD:-$top/build-asan}"
pattern=""
[ "${1:-}" = "-k" ] && pattern="${2:-}"

cxx=g++
command -v ccache >/dev/null && cxx="ccache g++"
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi >/dev/null 2>&1
mkdir -p "$out"
cd "$out"
[ -f Makefile ] || CXX="$cxx" CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
  "$top/configure" --quiet --disable-static-deps || { echo "sanitize: configure failed"; echo "0 passed, 1 failed"; exit 1; }
if ! make -j"${MW_JOBS:-2}" --no-print-directory all >"$out/make.log" 2>&1 ||
   ! make -j"${MW_JOBS:-2}" --no-print-directory check TESTS= >>"$out/make.log" 2>&1; then
  tail -n 30 "$out/make.log"
  echo "sanitize: the build failed (log: $out/make.log)"
  echo "0 passed, 1 failed"
  exit 1
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# libconfig's own scanner leak on a broken credentials file (see the file).
export LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp"
log="$out/unit.log"
MW_SRCDIR="$top" timeout 1200 ./mw-unit -v >"$log" 2>&1
rc=$?
summary=$(grep -E '^(OK|Errors) \(' "$log" | tail -n 1)
ran=$(printf '%s\n' "$summary" | sed -n 's/.* \([0-9][0-9]*\) ran,.*/\1/p')
failed=$(printf '%s\n' "$summary" | sed -n 's/^Errors (\([0-9][0-9]*\) failure.*/\1/p')
failed=${failed:-0}
# A sanitizer report ends the process (or follows the summary, for leaks): one more failure.
report=0
grep -qE '^==[0-9]+==ERROR|runtime error:' "$log" && report=1
[ -z "$ran" ] && report=1
[ "$rc" != 0 ] && [ "$failed" = 0 ] && report=1
if [ "$report" = 1 ]; then
  grep -m 5 -E '^==[0-9]+==ERROR|runtime error:|SUMMARY:' "$log" | sed 's/^/  sanitize: /'
  echo "  sanitize: mw-unit exit $rc (log: $log)"
  failed=$((failed + 1))
fi
passed=$(( ${ran:-0} - ${failed} ))
[ "$passed" -lt 0 ] && passed=0
echo "sanitize: unit tests under ASan+UBSan: $passed passed, $failed failed"

if [ -n "$pattern" ]; then
  last=$(MW_SRCDIR="$top" MW_BUILDDIR="$out" python3 "$top/tests/integration/run.py" -k "$pattern" | tee "$out/integration.log" | tail -n 1)
  ip=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
  if_=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
  echo "sanitize: integration tests ($pattern) under ASan+UBSan: ${ip:-0} passed, ${if_:-1} failed"
  passed=$((passed + ${ip:-0}))
  failed=$((failed + ${if_:-1}))
fi
echo "$passed passed, $failed failed"
