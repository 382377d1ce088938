#!/usr/bin/env bash
# pg_regress: runs every sql/*.sql (the Makefile's REGRESS list, through
# `make installcheck`) on a throwaway cluster and compares with expected/*.out.
# Results go to results/ and regression.diffs in the repository root.
# Needs the extension built and installed (scripts/test.sh does both).
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/pgcluster.sh

n_files=$(ls sql/*.sql 2>/dev/null | wc -l)
if [ "$n_files" -eq 0 ]; then
  echo "regress: no tests in sql/"
  echo "0 passed, 1 failed"
  exit 1
fi

trap pgc_stop EXIT
trap 'exit 1' INT TERM
if ! pgc_start; then
  echo "regress: could not start a cluster"
  echo "0 passed, 1 failed"
  exit 1
fi

rm -rf results regression.diffs regression.out
out=$(mktemp)
make -s installcheck 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

# pg_regress prints one line per test: "test NAME ... ok|FAILED|failed (ignored)".
passed=$(grep -cE '\.\.\. +ok( |$)' "$out")
failed=$(grep -cE '\.\.\. +(FAILED|failed)' "$out")
rm -f "$out"
# A test that never reported (pg_regress died, the server crashed) is a failure.
missing=$(( n_files - passed - failed ))
[ "$missing" -gt 0 ] && failed=$(( failed + missing ))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

if [ -s regression.diffs ]; then
  echo "---- regression.diffs"
  cat regression.diffs
  echo "---- end of regression.diffs"
fi
# A backend crash shows in the server log, not in the diffs.
if [ -n "${PGC_DIR:-}" ] && grep -qE 'terminated by signal|PANIC|TRAP:' "$PGC_DIR/server.log" 2>/dev/null; then
  echo "---- server log (last 80 lines)"
  tail -n 80 "$PGC_DIR/server.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
