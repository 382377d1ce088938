#!/usr/bin/env bash
# Python client suite: the vecext package in python/vecext/ (psycopg 3 and
# asyncpg) tested with the stdlib unittest (python/tests/, run by
# python/tests/run.py) on a throwaway cluster, in a fresh database. Then the
# async benchmark runs once, small, for its printed figure (it counts as one
# test: it must run to the end; its timings are never asserted).
# Needs the extension built and installed (scripts/test.sh does both) and
# Debian's /usr/bin/python3 (python3-psycopg, python3-asyncpg, python3-numpy).
# Ends with "N passed, N failed".
#   PY_TESTS="test_filters Async"  only the tests whose ids contain these words
#   PY_BENCH=0                     skip the benchmark
set -uo pipefail
cd "$(dirname "$0")/../.." || { echo "0 passed, 1 failed"; exit 1; }
. scripts/pgcluster.sh
PY=/usr/bin/python3

if ! $PY -c 'import psycopg, asyncpg' 2>/dev/null; then
  echo "python: /usr/bin/python3 lacks psycopg or asyncpg (scripts/install-deps.sh installs them)"
  echo "0 passed, 1 failed"
  exit 1
fi

trap pgc_stop EXIT
trap 'exit 1' INT TERM
if ! pgc_start; then
  echo "python: could not start a cluster"
  echo "0 passed, 1 failed"
  exit 1
fi
if ! psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE vecext_python" \
     -c "\\c vecext_python" -c "CREATE EXTENSION vecext" >/dev/null; then
  echo "python: could not prepare the database"
  echo "0 passed, 1 failed"
  exit 1
fi
export PGDATABASE=vecext_python

out=$(mktemp)
# shellcheck disable=SC2086
$PY python/tests/run.py ${PY_TESTS:-} 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
rm -f "$out"
passed=$(echo "$line" | sed -nE 's/^([0-9]+) passed.*/\1/p')
failed=$(echo "$line" | sed -nE 's/^[0-9]+ passed, ([0-9]+) failed$/\1/p')
passed=${passed:-0}
failed=${failed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

if [ "${PY_BENCH:-1}" = 1 ] && [ -z "${PY_TESTS:-}" ] && [ -f python/bench_async.py ]; then
  echo "== python: bench_async (figures only)"
  if $PY python/bench_async.py --rows 5000 --dim 64 --searches 1000 --pool 4; then
    passed=$((passed + 1))
  else
    echo "python: bench_async.py failed"
    failed=$((failed + 1))
  fi
fi

if [ -n "${PGC_DIR:-}" ] && grep -qE 'terminated by signal|PANIC|TRAP:' "$PGC_DIR/server.log" 2>/dev/null; then
  echo "---- server log (last 80 lines)"
  tail -n 80 "$PGC_DIR/server.log"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
