#!/usr/bin/env bash
# Benchmark of the vecext command-line tool (tools/cli, docs/cli.md) on a
# throwaway cluster. Prints figures, asserts nothing.
#   1. import: rows/s of `vecext import` (JSON Lines -> binary COPY) against
#      psql's `\copy ... FROM` in text format of the same rows, both into an
#      empty table with only its primary key (the tool builds the hnsw index
#      after the load; that time is printed separately);
#   2. queries: `vecext bench` queries/s and latency, serial vs pipeline mode
#      (a Sync per query, and --sync=batch), 1 and 4 connections, on the
#      imported collection.
# The data: ROWS random vectors (uniform in [-1, 1)) of DIM dimensions made by
# the server, exported with `vecext export` (JSON Lines) and `\copy ... TO`
# (text), so that both loads read the same numbers.
#   bench/cli_bench.sh [--rows N] [--dim N] [--seconds S] [--ef-construction N]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROWS=100000
DIM=128
SECONDS_PER_RUN=10
EFC=64
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --dim) DIM=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --ef-construction) EFC=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

echo "== build the tool (build-cli/)"
cmake -S . -B build-cli -DVECEXT_BENCH=OFF >/dev/null
cmake --build build-cli -j2 --target vecext_cli >/dev/null
V="$ROOT/build-cli/vecext"

. scripts/pgcluster.sh
WORK=$(mktemp -d /tmp/vecext-cli-bench.XXXXXX)
chmod 755 "$WORK"
trap 'pgc_stop; rm -rf "$WORK"' EXIT
pgc_start "autovacuum = off" "max_parallel_maintenance_workers = 1"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION vecext"

echo "== data: $ROWS x $DIM random vectors"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE gen (id text PRIMARY KEY, embedding vector($DIM) NOT NULL, metadata jsonb NOT NULL);
INSERT INTO gen
SELECT 'r' || i, (SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, $DIM) WHERE i > 0)::vector,
       jsonb_build_object('n', i, 'group', i % 10)
FROM generate_series(1, $ROWS) i;
SQL
"$V" export gen -o "$WORK/data.jsonl" 2>/dev/null
psql -X -q -c "\\copy (SELECT id, embedding, metadata FROM gen ORDER BY id) TO '$WORK/data.tsv'"
psql -X -q -c "DROP TABLE gen"
awk -v j="$(stat -c %s "$WORK/data.jsonl")" -v t="$(stat -c %s "$WORK/data.tsv")" \
  'BEGIN { printf "JSON Lines: %.1f MB; COPY text: %.1f MB\n", j / 1e6, t / 1e6 }'

echo
echo "== import: vecext import (JSON Lines, binary COPY) vs \\copy FROM (text)"
"$V" import items "$WORK/data.jsonl" --metric l2 --m 16 --ef-construction "$EFC" | tee "$WORK/import.out"
psql -X -q -c "CREATE TABLE items_text (id text PRIMARY KEY, embedding vector($DIM) NOT NULL,
               metadata jsonb NOT NULL DEFAULT '{}'::jsonb)"
t0=$(date +%s.%N)
psql -X -q -c "\\copy items_text FROM '$WORK/data.tsv'"
t1=$(date +%s.%N)
tool_rps=$(sed -nE 's/^imported .* in ([0-9.]+) s: ([0-9]+) rows\/s.*/\2/p' "$WORK/import.out")
awk -v t0="$t0" -v t1="$t1" -v rows="$ROWS" -v bytes="$(stat -c %s "$WORK/data.tsv")" -v tool="$tool_rps" 'BEGIN {
  s = t1 - t0; rps = rows / s
  printf "copy text: %d rows in %.2f s: %.0f rows/s, %.1f MB/s (%.1f MB of input)\n", rows, s, rps, bytes / 1e6 / s, bytes / 1e6
  printf "import vs copy text: %.2fx the rows/s\n", tool / rps
}'
psql -X -q -At -c "SELECT 'same rows: ' || (count(*) = 0)::text FROM items a FULL JOIN items_text b USING (id)
                   WHERE a.id IS NULL OR b.id IS NULL OR vector_send(a.embedding) <> vector_send(b.embedding)
                      OR a.metadata <> b.metadata"

echo
echo "== queries: vecext bench (k=10, ef_search 40, random queries, ${SECONDS_PER_RUN} s after 1 s of warm-up)"
psql -X -q -c "ANALYZE items"
printf '%-15s %5s %6s %12s %9s %9s %9s\n' mode conns depth queries/s p50_ms p95_ms p99_ms
for conns in 1 4; do
  for mode in serial pipeline pipeline/batch; do
    case $mode in
      serial) args=(--mode serial); depth=1 ;;
      pipeline) args=(--mode pipeline --depth 16); depth=16 ;;
      pipeline/batch) args=(--mode pipeline --depth 16 --sync batch); depth=16 ;;
    esac
    out=$("$V" bench items "${args[@]}" --connections "$conns" --seconds "$SECONDS_PER_RUN" --warmup 1)
    qps=$(sed -nE 's/^queries\/s: ([0-9.]+)/\1/p' <<<"$out")
    read -r p50 p95 p99 < <(sed -nE 's/^latency ms: p50 ([0-9.]+) +p95 ([0-9.]+) +p99 ([0-9.]+).*/\1 \2 \3/p' <<<"$out")
    printf '%-15s %5d %6d %12s %9s %9s %9s\n' "$mode" "$conns" "$depth" "$qps" "$p50" "$p95" "$p99"
  done
done
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
