#!/usr/bin/env bash
# pgTAP: runs every test/pgtap/*.sql with pg_prove on a throwaway cluster,
# each file in a fresh database that already has `CREATE EXTENSION pgtap`
# and `CREATE EXTENSION vecext` (test files must not create them again).
# Counts assertions; a file that errors out or misses its plan counts as
# one more failure. Needs the extension built and installed.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/pgcluster.sh

shopt -s nullglob
files=(test/pgtap/*.sql)
if [ ${#files[@]} -eq 0 ]; then
  echo "pgtap: no tests in test/pgtap/"
  echo "0 passed, 1 failed"
  exit 1
fi

trap pgc_stop EXIT
trap 'exit 1' INT TERM
if ! pgc_start; then
  echo "pgtap: could not start a cluster"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0
i=0
for f in "${files[@]}"; do
  i=$((i + 1))
  db="pgtap_$i"
  if ! psql -X -q -v ON_ERROR_STOP=1 -d postgres \
      -c "CREATE DATABASE $db" \
      -c "\\c $db" \
      -c "CREATE EXTENSION pgtap" \
      -c "CREATE EXTENSION vecext" >/dev/null; then
    echo "pgtap: could not prepare a database for $f"
    failed=$((failed + 1))
    continue
  fi
  out=$(mktemp)
  pg_prove --nocolor --verbose -d "$db" "$f" 2>&1 | tee "$out"
  read -r p fl < <(perl test/perl/tap_counts.pl <"$out")
  rm -f "$out"
  passed=$((passed + p))
  failed=$((failed + fl))
  psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1 || true
done

if [ -n "${PGC_DIR:-}" ] && grep -qE 'terminated by signal|PANIC|TRAP:' "$PGC_DIR/server.log" 2>/dev/null; then
  echo "---- server log (last 80 lines)"
  tail -n 80 "$PGC_DIR/server.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
