#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, installs the extension,
# runs every suite in test/suites/ (in name order) and ends with one line
# "N passed, N failed". Exits non-zero on any failure.
#   scripts/test.sh              all suites
#   scripts/test.sh unit regress only the suites whose names contain these words
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export ROOT

bash scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

export VECEXT_WERROR=1
echo "== build and install the extension"
if ! { make -s -j2 >/tmp/vecext-build.log 2>&1 && make -s install >>/tmp/vecext-build.log 2>&1; }; then
  cat /tmp/vecext-build.log
  echo "0 passed, 1 failed"
  exit 1
fi

total_pass=0
total_fail=0
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
  bash "$suite" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  # Each suite ends with its own "N passed, N failed" line.
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  p=$(echo "$line" | sed -nE 's/^([0-9]+) passed.*/\1/p')
  f=$(echo "$line" | sed -nE 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/p')
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a suite that crashed counts as a failure
  echo "-- suite $name: $p passed, $f failed ($(( $(date +%s) - start )) s)"
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  rm -f "$out"
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
