#!/usr/bin/env bash
# Command-line tool suite: builds tools/cli (CMake target vecext_cli in
# build-cli/) and tests `vecext import/export/bench` on a throwaway cluster:
# export -> import round trips (ids, float4 bits, metadata) against a
# collection the Python client made, byte-identical exports of the tool and
# the Python client, JSON array and JSON Lines input, every kind of malformed
# record with --on-error=abort and skip, server-side errors mapped to file and
# line, upserts, exit codes, the driver compatibility leg (test/cli/cli_data.py
# compat: a table written by the tool's binary COPY read back through psycopg
# and asyncpg), and a few seconds of bench in both modes (figures printed,
# never asserted).
# Needs the extension installed (`make install`; scripts/test.sh does it) and
# Debian's /usr/bin/python3 (psycopg, asyncpg, numpy). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || { echo "0 passed, 1 failed"; exit 1; }
ROOT=$(pwd)
. scripts/pgcluster.sh
PY=/usr/bin/python3
DATA="$ROOT/test/cli/cli_data.py"
BUILD=${CLI_BUILD_DIR:-build-cli}

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
  echo "not ok - $1"
  [ -n "${2:-}" ] && printf '%s\n' "$2" | head -n 30 | sed 's/^/    /'
  failed=$((failed + 1))
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

# -- build ---------------------------------------------------------------------
echo "== cli: build $BUILD (target vecext_cli)"
mkdir -p "$BUILD"
exec {lock_fd}>"$BUILD/.cli-suite.lock"
flock "$lock_fd"
log="$BUILD/cli-build.log"
if ! { cmake -S . -B "$BUILD" -DVECEXT_BENCH=OFF >"$log" 2>&1 &&
       cmake --build "$BUILD" -j2 --target vecext_cli >>"$log" 2>&1; }; then
  tail -n 60 "$log"
  not_ok "build the vecext tool (log: $log)"
  finish
fi
exec {lock_fd}>&-
ok "build the vecext tool"
V="$ROOT/$BUILD/vecext"

if [ ! -f "$(pg_config --sharedir)/extension/vecext.control" ]; then
  not_ok "the extension is not installed: run make install first"
  finish
fi
if ! $PY -c 'import psycopg, asyncpg, numpy' 2>/dev/null; then
  not_ok "/usr/bin/python3 lacks psycopg, asyncpg or numpy (scripts/install-deps.sh installs them)"
  finish
fi

# -- cluster -------------------------------------------------------------------
WORK=$(mktemp -d /tmp/vecext-cli.XXXXXX)
chmod 755 "$WORK"
cleanup() { pgc_stop; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
if ! pgc_start; then
  not_ok "start a cluster"
  finish
fi
if ! psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE vecext_cli" \
     -c "\\c vecext_cli" -c "CREATE EXTENSION vecext" >/dev/null; then
  not_ok "prepare the database"
  finish
fi
export PGDATABASE=vecext_cli
cd "$WORK" || exit 1

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# expect_sql NAME QUERY EXPECTED
expect_sql() {
  local got
  got=$(sql "$2")
  if [ "$got" = "$3" ]; then ok "$1"; else not_ok "$1" "expected [$3], got [$got]"; fi
}
# run ARGS...: runs the tool; sets rc, out (stdout), err (stderr).
run() {
  "$V" "$@" >"$WORK/out" 2>"$WORK/err"
  rc=$?
  out=$(cat "$WORK/out")
  err=$(cat "$WORK/err")
}
# expect_rc NAME CODE: the last run's exit code.
expect_rc() {
  if [ "$rc" -eq "$2" ]; then ok "$1"; else not_ok "$1" "exit code $rc, expected $2; stdout: $out; stderr: $err"; fi
}
# expect_err NAME TEXT: the last run's stderr contains TEXT.
expect_err() {
  if grep -qF -- "$2" "$WORK/err"; then ok "$1"; else not_ok "$1" "stderr lacks [$2]: $err"; fi
}
# same_rows NAME A B: collections A and B hold the same ids, identical vector
# bits (vector_send) and identical metadata (jsonb equality and text).
same_rows() {
  expect_sql "$1" "SELECT (SELECT count(*) FROM $2) = (SELECT count(*) FROM $3) AND
    (SELECT count(*) FROM $2 a FULL JOIN $3 b USING (id)
      WHERE a.id IS NULL OR b.id IS NULL OR vector_send(a.embedding) <> vector_send(b.embedding)
         OR a.metadata <> b.metadata OR a.metadata::text <> b.metadata::text) = 0" "t"
}

# -- round trips ---------------------------------------------------------------
echo "== cli: round trips"
if out=$($PY "$DATA" source src 2>&1); then ok "python client creates the source collection"; else not_ok "python source" "$out"; finish; fi

run export src -o src.jsonl
expect_rc "export to a file" 0
expect_err "export reports rows" "2,012 rows"
$PY "$DATA" py-export src py.jsonl >/dev/null 2>&1
if cmp -s src.jsonl py.jsonl; then ok "tool and Python client exports are byte-identical"
else not_ok "tool and Python client exports are byte-identical" "$(diff <(head -c 3000 src.jsonl) <(head -c 3000 py.jsonl) | head -20)"; fi

run import dst src.jsonl --metric l2
expect_rc "import JSON Lines into a new collection" 0
if printf '%s' "$out" | grep -qE '^imported 2,012 rows into public\.dst \(created\) in [0-9.]+ s: [0-9]+ rows/s, [0-9.]+ MB/s'; then
  ok "import reports rows/s and MB/s"; else not_ok "import reports rows/s and MB/s" "$out"; fi
same_rows "round trip: ids, vector bits and metadata identical" src dst
expect_sql "edge floats kept (-0, 1e-38, 3.4e38, 0.1, subnormal)" \
  "SELECT vector_send(embedding) = vector_send('[0.1,-0,1e-38,3.4e+38,-3.4028235e+38,1.1754944e-38,1e-45,1e-05,123456.79,16777216,1.1754944e-38,0.3]'::vector) FROM dst WHERE id = 'a'" "t"
expect_sql "new collection has the hnsw and metadata indexes" \
  "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'dst'" \
  "dst_embedding_idx,dst_metadata_idx,dst_pkey"
if out=$($PY "$DATA" py-open dst 12 l2 2>&1) && ! grep -q FAIL <<<"$out"; then ok "python client opens the tool's collection"
else not_ok "python client opens the tool's collection" "$out"; fi
run export dst -o dst.jsonl
if cmp -s src.jsonl dst.jsonl; then ok "export -> import -> export is byte-identical"; else not_ok "export -> import -> export is byte-identical"; fi

$PY "$DATA" py-import pyin src.jsonl >/dev/null 2>&1
same_rows "Python client imports the tool's export identically" src pyin
run import pyexp py.jsonl --metric l2
same_rows "tool imports the Python client's export identically" src pyexp

$PY "$DATA" to-array src.jsonl src.json
run import arr src.json --metric l2
expect_rc "import a JSON array file" 0
same_rows "JSON array import identical" src arr

"$V" export src | "$V" import piped - --metric l2 >/dev/null 2>"$WORK/err"
rc=$?
expect_rc "export to stdout | import from stdin" 0
same_rows "stdin round trip identical" src piped

# Collections with documents (made by the Python client): export writes them, import fills them.
$PY "$DATA" docs dsrc ddst >/dev/null 2>&1
run export dsrc -o dsrc.jsonl
$PY "$DATA" py-export dsrc pyd.jsonl >/dev/null 2>&1
if cmp -s dsrc.jsonl pyd.jsonl && grep -q '"document": ' dsrc.jsonl; then ok "documents: exports byte-identical"
else not_ok "documents: exports byte-identical"; fi
run import ddst dsrc.jsonl
expect_rc "documents: import into a collection with documents" 0
expect_sql "documents: round trip identical (NULLs too)" \
  "SELECT count(*) FROM dsrc a FULL JOIN ddst b USING (id) WHERE a.id IS NULL OR b.id IS NULL
     OR vector_send(a.embedding) <> vector_send(b.embedding) OR a.metadata <> b.metadata
     OR a.document IS DISTINCT FROM b.document" "0"
run import nodocs dsrc.jsonl
expect_err "documents: ignored with a warning by a collection without them" "has no document column"

run import dst src.jsonl
expect_rc "appending existing ids fails" 1
expect_err "duplicate id located in the file" "src.jsonl:1 (id \"\"): the server rejected a record"
expect_err "duplicate id error has its SQLSTATE" "SQLSTATE 23505"
expect_sql "failed append loaded nothing" "SELECT count(*) FROM dst" "2012"

sql "SELECT json_build_object('id', id, 'vector', embedding::text::json, 'metadata', json_build_object('v', 1))
     FROM src ORDER BY id LIMIT 3" > up1.jsonl
printf '%s\n' '{"id": "zz-new", "vector": [1,2,3,4,5,6,7,8,9,10,11,12], "metadata": {"v": 1}}' \
  '{"id": "zz-new", "vector": [1,2,3,4,5,6,7,8,9,10,11,12], "metadata": {"v": 2}}' >> up1.jsonl
run import dst up1.jsonl --upsert
expect_rc "upsert" 0
expect_sql "upsert replaced rows and the last duplicate won" \
  "SELECT count(*), count(*) FILTER (WHERE metadata = '{\"v\": 1}'), count(*) FILTER (WHERE metadata = '{\"v\": 2}') FROM dst" "2013|3|1"

# -- malformed records ---------------------------------------------------------
echo "== cli: malformed records"
G1='{"id": "g1", "vector": [1, 2, 3], "metadata": {"ok": 1}}'
G2='{"id": "g2", "embedding": [4, 5, 6]}'
bad_kinds=(
  'badjson|{"id": "b", "vector": [1, 2, 3]|invalid JSON'
  'noid|{"vector": [1, 2, 3]}|missing "id"'
  'novector|{"id": "b", "metadata": {}}|missing "vector"'
  'nonnumeric|{"id": "b", "vector": [1, "two", 3]}|element 1 is a string, not a number'
  'wrongdim|{"id": "b", "vector": [1, 2, 3, 4]}|4 dimensions, expected 3'
  'badmeta|{"id": "b", "vector": [1, 2, 3], "metadata": [1, 2]}|"metadata" is an array, not an object'
  'overflow|{"id": "b", "vector": [1, 2, 1e39]}|out of range for float4'
)
for kind in "${bad_kinds[@]}"; do
  IFS='|' read -r name line msg <<<"$kind"
  printf '%s\n%s\n%s\n' "$G1" "$line" "$G2" > "bad_$name.jsonl"
  run import "bad_$name" "bad_$name.jsonl"
  expect_rc "$name: abort exits 1" 1
  expect_err "$name: abort names file:line and the reason" "bad_$name.jsonl:2: "
  expect_err "$name: reason" "$msg"
  expect_sql "$name: abort loaded nothing (no table)" "SELECT to_regclass('bad_$name') IS NULL" "t"
  run import "bad_$name" "bad_$name.jsonl" --on-error=skip
  expect_rc "$name: skip exits 1" 1
  expect_err "$name: skip reports the record" "bad_$name.jsonl:2: skipped: "
  expect_err "$name: skip counts" "skipped 1 bad records"
  expect_sql "$name: skip loaded the good rows" "SELECT string_agg(id, ',' ORDER BY id) FROM bad_$name" "g1,g2"
done

# Abort into an existing collection: its rows stay as they were.
printf '%s\n%s\n' '{"id": "g3", "vector": [7, 8, 9]}' '{"id": "g4", "vector": [1, 2]}' > abort_existing.jsonl
run import bad_noid abort_existing.jsonl
expect_rc "abort into an existing collection exits 1" 1
expect_sql "abort into an existing collection loaded nothing" "SELECT count(*) FROM bad_noid" "2"

# A JSON array file: semantic errors give file:line: record N; syntax errors end the import.
printf '[\n  %s,\n  {"id": "b",\n   "vector": [1, 2]},\n  %s\n]\n' "$G1" "$G2" > bad_array.json
run import bad_arr bad_array.json
expect_rc "array: abort exits 1" 1
expect_err "array: names line and record" "bad_array.json:3: record 2: \"vector\" has 2 dimensions, expected 3"
run import bad_arr bad_array.json --on-error=skip
expect_sql "array: skip loaded the good rows" "SELECT string_agg(id, ',' ORDER BY id) FROM bad_arr" "g1,g2"
printf '[\n  %s,\n  {"id": "b" "vector": [1, 2, 3]},\n  %s\n]\n' "$G1" "$G2" > broken_array.json
run import broken_arr broken_array.json --on-error=skip
expect_rc "array: broken JSON exits 1 even with skip" 1
expect_err "array: broken JSON located" "broken_array.json:3: record 2: invalid JSON"
expect_sql "array: broken JSON loaded nothing" "SELECT to_regclass('broken_arr') IS NULL" "t"

# -- usage errors --------------------------------------------------------------
run import "Bad-Name" src.jsonl
expect_rc "invalid collection name: exit 2" 2
run import x src.jsonl --on-error=maybe
expect_rc "bad option value: exit 2" 2
run export src --nonsense
expect_rc "unknown option: exit 2" 2
run bench src --mode=turbo
expect_rc "bad bench mode: exit 2" 2
run import x /nonexistent/file.jsonl
expect_rc "unreadable file: exit 3" 3
run export nosuch
expect_rc "missing collection: exit 1" 1
run import dst src.jsonl --dim 5
expect_rc "dimension mismatch with the collection: exit 1" 1
run export src --dsn "host=/nonexistent-socket-dir"
expect_rc "connection failure: exit 3" 3

# -- driver compatibility --------------------------------------------------------
echo "== cli: compatibility (libpq binary COPY written, psycopg/asyncpg read)"
compat_out=$($PY "$DATA" compat "$V" 2>&1)
compat_rc=$?
printf '%s\n' "$compat_out" | sed 's/^/    /'
p=$(grep -c '^PASS ' <<<"$compat_out")
f=$(grep -c '^FAIL ' <<<"$compat_out")
passed=$((passed + p))
failed=$((failed + f))
if [ "$compat_rc" -ne 0 ] && [ "$f" -eq 0 ]; then not_ok "compat script exited $compat_rc"; fi
[ "$p" -gt 0 ] || not_ok "compat script ran no checks"

# -- bench -----------------------------------------------------------------------
echo "== cli: bench (figures only)"
$PY "$DATA" random bench.jsonl 5000 32
run import benchc bench.jsonl --metric l2 --m 8 --ef-construction 32
expect_rc "import the bench collection" 0
for args in "--mode=serial --connections=1" "--mode=pipeline --connections=1 --depth=16" \
            "--mode=serial --connections=2" "--mode=pipeline --connections=2 --depth=8" \
            "--mode=pipeline --connections=2 --depth=8 --sync=batch"; do
  # shellcheck disable=SC2086
  run bench benchc --seconds 2 $args
  printf '%s\n' "$out" | sed 's/^/    /'
  if [ "$rc" -eq 0 ] && grep -qE '^completed [0-9,]+ queries in .*, 0 errors' "$WORK/out" &&
     ! grep -qE '^completed 0 queries' "$WORK/out"; then
    ok "bench $args"
  else
    not_ok "bench $args" "rc $rc: $out $err"
  fi
done
run bench benchc --queries 300 --mode pipeline --connections 3 --depth 4 --queries-file bench.jsonl --k 5
if [ "$rc" -eq 0 ] && grep -qE '^completed 300 queries .*, 0 errors, 1,500 rows' "$WORK/out"; then
  ok "bench --queries with a query file runs exactly that many"
else
  not_ok "bench --queries with a query file" "rc $rc: $out $err"
fi

run bench benchc --queries 40 --mode pipeline --sync batch --depth 8 --k 5000 --dsn "options='-c statement_timeout=1'"
if [ "$rc" -ne 0 ] && grep -q "SQLSTATE 57014" "$WORK/err"; then
  ok "bench reports failed queries with their SQLSTATE and a non-zero exit"
else
  not_ok "bench reports failed queries" "rc $rc: $out $err"
fi

if grep -qE 'terminated by signal|PANIC|TRAP:' "$PGC_DIR/server.log" 2>/dev/null; then
  not_ok "server log clean" "$(tail -n 40 "$PGC_DIR/server.log")"
fi
finish
