#!/usr/bin/env bash
# Unit suite: builds the Postgres-free core with its GoogleTest unit tests
# (CMake, build/), runs them with ctest, then does the same in build-asan/
# with AddressSanitizer + UBSan. Both trees are reused incrementally.
# Ends with exactly one line "N passed, N failed" (both runs summed; tests
# that ctest reports as skipped, e.g. an ISA this CPU lacks, count in
# neither) and exits non-zero on any failure or build error.
set -uo pipefail
cd "$(dirname "$0")/../.." || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
skipped=0

# run_tree DIR CMAKE-ARGS...: configure, build and test one tree.
run_tree() {
  local dir=$1
  shift
  mkdir -p "$dir"
  # Several engineers share this checkout: one build per tree at a time.
  exec {lock_fd}>"$dir/.unit-suite.lock"
  flock "$lock_fd"

  echo "== unit: build $dir ($*)"
  local log="$dir/unit-build.log"
  if ! { cmake -S . -B "$dir" "$@" >"$log" 2>&1 && cmake --build "$dir" -j2 >>"$log" 2>&1; }; then
    tail -n 80 "$log"
    echo "-- unit: build of $dir failed (full log: $log)"
    failed=$((failed + 1))
    exec {lock_fd}>&-
    return
  fi

  echo "== unit: ctest $dir"
  local out="$dir/unit-ctest.log"
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j2 >"$out" 2>&1
  local rc=$?
  # Show everything but the per-test "Start" and "Passed" lines.
  grep -Ev '^ *Start +[0-9]+: |^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed +[0-9.]+ sec$' "$out"

  local total p s f
  total=$(grep -Ec '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$out")
  p=$(grep -Ec '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed +[0-9.]+ sec$' "$out")
  s=$(grep -Ec '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped' "$out")
  f=$((total - p - s))
  if [ "$total" -eq 0 ]; then
    echo "-- unit: ctest in $dir ran no tests"
    f=1
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "-- unit: ctest in $dir exited with $rc"
    f=1
  fi
  echo "-- unit: $dir: $p passed, $f failed, $s skipped"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  exec {lock_fd}>&-
}

run_tree build -DVECEXT_SANITIZE=OFF

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_tree build-asan -DVECEXT_SANITIZE=ON -DVECEXT_BENCH=OFF

[ "$skipped" -gt 0 ] && echo "-- unit: $skipped tests skipped in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
