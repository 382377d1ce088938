#!/usr/bin/env bash
# Perl TAP tests: runs test/t/*.pl with prove, on PostgreSQL::Test::Cluster
# (from postgresql-server-dev-15) and the helpers in test/perl/.
# The Perl cluster modules refuse to run as root: as root, the tests run as
# the postgres user from a copy of test/t and test/perl in a temp directory
# that postgres owns. Needs the extension built and installed.
# Counts assertions from prove's summary; ends with "N passed, N failed".
# PROVE_TESTS="t/001_cluster.pl" runs a subset; KEEP_TAP=1 keeps the logs.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
PGXS_DIR=$(dirname "$(dirname "$(pg_config --pgxs)")")   # .../lib/pgxs/src
PGPERL=$PGXS_DIR/test/perl
PGREGRESS=$PGXS_DIR/test/regress/pg_regress

shopt -s nullglob
files=(test/t/*.pl)
if [ ${#files[@]} -eq 0 ]; then
  echo "tap: no tests in test/t/"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -f "$PGPERL/PostgreSQL/Test/Cluster.pm" ]; then
  echo "tap: PostgreSQL::Test::Cluster not found under $PGPERL (postgresql-server-dev-15)"
  echo "0 passed, 1 failed"
  exit 1
fi

work=$(mktemp -d /tmp/vecext-tap.XXXXXX)
cleanup() { [ "${KEEP_TAP:-0}" = 1 ] && echo "tap: kept $work" || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
cp -r test/t test/perl "$work/"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres: "$work"
  as_tester() { runuser -u postgres -- "$@"; }
else
  as_tester() { "$@"; }
fi

out=$work/prove.out
tests=${PROVE_TESTS:-t/*.pl}
# Run from the copy; the Cluster modules keep their data and logs in
# $TESTDIR/tmp_check. Utils.pm clears most PG* variables itself.
( cd "$work" && as_tester env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
    PATH="$PGBIN:$PATH" TESTDIR="$work" PG_REGRESS="$PGREGRESS" \
    prove -v --nocolor -I "$PGPERL" -I perl $tests ) 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

read -r passed failed < <(perl "$ROOT/test/perl/tap_counts.pl" <"$out")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# On failure show the per-test logs (test steps and each node's server log).
if [ "$failed" -gt 0 ] && [ -d "$work/tmp_check/log" ]; then
  for log in "$work"/tmp_check/log/*; do
    [ -f "$log" ] || continue
    echo "---- $(basename "$log") (last 60 lines)"
    tail -n 60 "$log"
  done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
