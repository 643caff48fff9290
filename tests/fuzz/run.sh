#!/bin/sh
# Runs the fuzz harnesses built by build.sh, each for SECONDS (default 5), over a corpus seeded
# from the tree's test data; new interesting inputs are kept in BUILD/corpus/<harness>, crashes in
# BUILD/crashes/. Prints one line per harness and, last, "N passed, N failed".
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]      (MW_FUZZ_BUILD: the build directory)
#   MW_FUZZ_FLAGS="-fork=2 -ignore_crashes=1" tests/fuzz/run.sh 3600 state   (a long campaign)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out="${MW_FUZZ_BUILD:-$top/build-fuzz}"
seconds="${1:-5}"
[ $# -gt 0 ] && shift
harnesses="${*:-config credentials state imap pop smtp sieve director httpc http}"

python3 "$top/tests/fuzz/seeds.py" "$top" "$out/seeds"
mkdir -p "$out/crashes"
passed=0
failed=0
for h in $harnesses; do
  case "$h" in
    config | state) max_len=65536 ;;
    *) max_len=16384 ;;
  esac
  mkdir -p "$out/corpus/$h"
  log="$out/fuzz-$h.log"
  started=$(date +%s)
  # A crash, a leak, an input slower than 10 s or above 1 GiB is a failure.
  (cd "$out" && ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" \
    LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "./fuzz-$h" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$out/crashes/$h-" ${MW_FUZZ_FLAGS:-} \
    "corpus/$h" "seeds/$h") >"$log" 2>&1
  rc=$?
  wall=$(($(date +%s) - started))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | sed 's/[^0-9]//g')
  crashes=$(ls "$out/crashes" 2>/dev/null | grep -c "^$h-")
  if [ "$rc" = 0 ] && [ "$crashes" = 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $h: ${execs:-?} execs in $wall s, no crash"
  else
    failed=$((failed + 1))
    echo "fuzz $h: FAILED (exit $rc) after ${execs:-?} execs in $wall s; see $log and $out/crashes/$h-*"
    grep -m 3 -E '^==[0-9]+==ERROR|runtime error|SUMMARY' "$log" | sed 's/^/  /'
  fi
done
echo "$passed passed, $failed failed"
