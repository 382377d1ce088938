#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, installs the extension,
# runs every suite in test/suites/ (in name order) and ends with one line
# "N passed, N failed". Exits non-zero on any failure.
#   scripts/test.sh              all suites
#   scripts/test.sh unit regress only the suites whose names contain these words
# A suite that crashes, times out or runs no test at all counts as failed.
# Time limits: each suite gets SUITE_TIMEOUT seconds (default 1500), and no
# more than what is left of TEST_BUDGET (default 4800) for the whole run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export ROOT
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1500}
TEST_BUDGET=${TEST_BUDGET:-4800}
run_start=$(date +%s)
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

bash scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

export VECEXT_WERROR=1
echo "== build and install the extension"
build_log=$(mktemp /tmp/vecext-build.XXXXXX)
if ! { make -s -j2 >"$build_log" 2>&1 && $SUDO make -s install >>"$build_log" 2>&1; }; then
  cat "$build_log"
  rm -f "$build_log"
  echo "0 passed, 1 failed"
  exit 1
fi
rm -f "$build_log"

total_pass=0
total_fail=0
summary=()
for suite in test/suites/*.sh; do
  name=$(basename "$suite" .sh)
  if [ $# -gt 0 ]; then
    keep=0
    for w in "$@"; do case "$name" in *"$w"*) keep=1 ;; esac; done
    [ $keep -eq 1 ] || continue
  fi
  echo "== suite $name"
  out=$(mktemp)
  start=$(date +%s)
  limit=$(( TEST_BUDGET - (start - run_start) ))
  [ "$limit" -gt "$SUITE_TIMEOUT" ] && limit=$SUITE_TIMEOUT
  [ "$limit" -lt 60 ] && limit=60
  timeout -k 30 "$limit" bash "$suite" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  # Each suite ends with its own "N passed, N failed" line.
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  p=$(echo "$line" | sed -nE 's/^([0-9]+) passed.*/\1/p')
  f=$(echo "$line" | sed -nE 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/p')
  p=${p:-0}; f=${f:-0}
  note=
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    note=" (timed out after $limit s)"; f=$((f + 1))
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    note=" (exited $rc)"; f=1          # a suite that crashed counts as a failure
  elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    note=" (ran no tests)"; f=1        # an empty suite must not pass vacuously
  fi
  result="$name: $p passed, $f failed$note ($(( $(date +%s) - start )) s)"
  echo "-- suite $result"
  summary+=("$result")
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  rm -f "$out"
done

if [ ${#summary[@]} -eq 0 ]; then
  echo "no suite matches: $*"
  total_fail=1
fi
echo "== summary ($(( $(date +%s) - run_start )) s)"
for s in "${summary[@]}"; do echo "   $s"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
