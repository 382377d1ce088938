#!/usr/bin/env bash
# Fuzz suite: builds the libFuzzer targets test/fuzz/*.cpp with clang
# (build-fuzz/: the core library with ASan + UBSan + fuzzer coverage) and
# runs each for a bounded time, starting from its committed seed corpus
# test/fuzz/corpus/<target>/ (copied: new inputs stay in a temp directory).
# A target passes when it ends normally: a crash, an abort of one of the
# targets' invariants, a sanitizer report, a leak, a timeout of one input
# (-timeout) or running out of memory fails it, and the input that did it
# is kept (its path is printed).
#   FUZZ_SECONDS=45   seconds per target (3 targets)
#   FUZZ_TARGETS="vector_text hnsw_page"   a subset
#   FUZZ_KEEP=1       keep the work directory (new corpus entries, logs)
# Ends with "N passed, N failed" (one test per target, plus the build).
set -uo pipefail
cd "$(dirname "$0")/../.." || { echo "0 passed, 1 failed"; exit 1; }
ROOT=$(pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-45}
dir=build-fuzz

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)"
  echo "0 passed, 1 failed"
  exit 1
fi

mkdir -p "$dir"
exec {lock_fd}>"$dir/.fuzz-suite.lock"
flock "$lock_fd"
echo "== fuzz: build $dir (clang, ASan + UBSan + libFuzzer)"
log=$dir/fuzz-build.log
# -Wno-unknown-warning-option: GCC-only pragmas in the core must not break clang.
if ! { cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DVECEXT_FUZZ=ON -DVECEXT_BENCH=OFF \
         -DVECEXT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -Wno-unknown-warning-option" >"$log" 2>&1 &&
       cmake --build "$dir" -j2 --target $(cd test/fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//') >>"$log" 2>&1; }; then
  tail -n 60 "$log"
  echo "-- fuzz: build failed (full log: $log)"
  echo "0 passed, 1 failed"
  exit 1
fi

work=$(mktemp -d /tmp/vecext-fuzz.XXXXXX)
cleanup() { [ "${FUZZ_KEEP:-0}" = 1 ] && echo "fuzz: kept $work" || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=1  # the build
failed=0
total_execs=0
targets=${FUZZ_TARGETS:-$(cd test/fuzz && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//')}
for t in $targets; do
  bin=$dir/fuzz_$t
  seeds=test/fuzz/corpus/$t
  corpus=$work/$t/corpus
  artifacts=$work/$t/artifacts/
  mkdir -p "$corpus" "$artifacts"
  [ -d "$seeds" ] && cp -r "$seeds"/. "$corpus"/
  opts=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts")
  [ -f "test/fuzz/$t.dict" ] && opts+=(-dict="test/fuzz/$t.dict")
  case $t in hnsw_page) opts+=(-max_len=32768) ;; *) opts+=(-max_len=4096) ;; esac
  out=$work/$t/fuzz.log
  echo "== fuzz: $t for ${SECONDS_PER_TARGET}s ($(ls "$corpus" | wc -l) seeds)"
  start=$(date +%s)
  # The seed corpus first, as a regression run (each input once)...
  "$bin" -runs=0 "${opts[@]}" "$seeds" >"$out.seeds" 2>&1
  rc_seeds=$?
  # ... then the bounded fuzzing run.
  "$bin" "${opts[@]}" "$corpus" >"$out" 2>&1
  rc=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+)/\1/p' "$out" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out" | tail -n 1)
  crashes=$(ls "$artifacts" 2>/dev/null | wc -l)
  sanitizer=$(grep -cE '^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error:' "$out" "$out.seeds" | awk -F: '{s+=$NF} END {print s+0}')
  echo "-- fuzz: $t: ${execs:-0} executions in $(( $(date +%s) - start )) s, $cov, corpus $(ls "$corpus" | wc -l) inputs"
  total_execs=$(( total_execs + ${execs:-0} ))
  if [ "$rc" -eq 0 ] && [ "$rc_seeds" -eq 0 ] && [ "$crashes" -eq 0 ] && [ "$sanitizer" -eq 0 ] && [ -n "$execs" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "-- fuzz: $t FAILED (exit $rc, seeds exit $rc_seeds, $crashes artifacts, $sanitizer sanitizer lines)"
    grep -vE '^#[0-9]+|^INFO:|^MERGE' "$out.seeds" "$out" | tail -n 60
    for a in "$artifacts"*; do
      [ -f "$a" ] || continue
      keep=$ROOT/$dir/crash-$t-$(basename "$a")
      cp "$a" "$keep"
      echo "-- fuzz: reproduce with: $bin $keep"
    done
  fi
done
echo "-- fuzz: $total_execs executions in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
