#!/usr/bin/env bash
# COPY text-form vectors into a vector column with each text parser
# (vecext.text_parser = simdjson | strtof), on a throwaway cluster, and print
# the times and their ratio. Runs are interleaved (the order alternates each
# round) and repeated; the medians are compared. Both parsers' results are
# first checked to be identical on a sample.
#
# Two measures:
#  - COPY: the whole COPY into an unlogged vector table (what users see);
#  - parse: COPY ... WHERE false (rows are read and parsed, nothing is
#    inserted) minus the same into a text column (reading, splitting and
#    encoding checks without parsing): the cost of the input function alone.
#
#   bench/copy_parse.sh [rows=1000000] [dims=128] [rounds=3]
#
# Needs the extension installed (make install; PGBIN may point to another
# installation's bin directory) and runs as root or as a user who can run
# the server (scripts/pgcluster.sh). Uses about 2 GB in /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pgcluster.sh

ROWS=${1:-1000000}
DIMS=${2:-128}
ROUNDS=${3:-3}

trap pgc_stop EXIT
pgc_start "max_wal_size = 16GB" "checkpoint_timeout = 1h" "autovacuum = off" >/dev/null
DATA="$PGC_DIR/vectors.txt"   # in the server's directory, written by the server

q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE EXTENSION vecext"
q <<'SQL'
CREATE UNLOGGED TABLE target_vector (v vector);
CREATE UNLOGGED TABLE target_text (v text);
-- Seconds taken by COPY table FROM path with the given text parser; with
-- parse_only, the rows are parsed and then filtered out (WHERE false).
CREATE FUNCTION timed_copy(tbl text, parser text, path text, parse_only bool DEFAULT false)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
BEGIN
  PERFORM set_config('vecext.text_parser', parser, true);
  t0 := clock_timestamp();
  EXECUTE format('COPY %I FROM %L', tbl, path) || CASE WHEN parse_only THEN ' WHERE false' ELSE '' END;
  RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;
SQL

echo "generating $ROWS vectors of $DIMS dimensions (embedding-like values, N(0, 0.1)-ish)..."
q -c "COPY (SELECT array_to_vector(ARRAY(SELECT ((random() + random() + random() - 1.5) * 0.2 + i * 0)::real
                                        FROM generate_series(1, $DIMS)), -1, false)
           FROM generate_series(1, $ROWS) i) TO '$DATA'"
bytes=$(stat -c %s "$DATA")
echo "file: $(( bytes / 1048576 )) MiB, $(( bytes / ROWS )) bytes per row"
echo "sample line: $(head -c 120 "$DATA")..."

# Both parsers give identical vectors (a sample of 20000 rows).
head -n 20000 "$DATA" > "$DATA.sample"
chown postgres: "$DATA.sample" 2>/dev/null || true
diff_rows=$(q <<SQL
CREATE TEMP TABLE a (v vector);
CREATE TEMP TABLE b (v vector);
SELECT timed_copy('a', 'simdjson', '$DATA.sample') IS NOT NULL;
SELECT timed_copy('b', 'strtof', '$DATA.sample') IS NOT NULL;
SELECT count(*) FROM (SELECT vector_send(v) FROM a EXCEPT ALL SELECT vector_send(v) FROM b) d;
SQL
)
echo "sample of 20000 rows, rows that differ between the parsers: $(echo "$diff_rows" | tail -n 1)"

declare -A times
# run <round> <label>; labels: simdjson | strtof (whole COPY), simdjson-parse |
# strtof-parse (COPY ... WHERE false), text-parse (the same into a text column)
run() {
  local table=target_vector parser=${2%-parse} parse_only=false
  case $2 in *-parse) parse_only=true ;; esac
  if [ "$2" = text-parse ]; then table=target_text; parser=simdjson; fi
  q -c "TRUNCATE $table" >/dev/null
  q -c "CHECKPOINT" >/dev/null
  local t
  t=$(q -c "SELECT round(timed_copy('$table', '$parser', '$DATA', $parse_only)::numeric, 3)")
  times["$2,$1"]=$t
  awk -v r="$1" -v p="$2" -v t="$t" -v n="$ROWS" -v b="$bytes" \
    'BEGIN { printf "round %d  %-15s %8.3f s  %9.0f rows/s  %7.1f MiB/s\n", r, p, t, n / t, b / 1048576 / t }'
}

echo "COPY $ROWS rows, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    order="simdjson strtof simdjson-parse strtof-parse text-parse"
  else
    order="strtof simdjson strtof-parse simdjson-parse text-parse"
  fi
  for p in $order; do run "$r" "$p"; done
done

median() {  # median of the rounds of one label
  for r in $(seq 1 "$ROUNDS"); do echo "${times[$1,$r]}"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'
}
awk -v s="$(median simdjson)" -v f="$(median strtof)" -v sp="$(median simdjson-parse)" \
    -v fp="$(median strtof-parse)" -v tp="$(median text-parse)" 'BEGIN {
  printf "medians: COPY simdjson %.3f s, strtof %.3f s; WHERE false: simdjson %.3f s, strtof %.3f s, text %.3f s\n", s, f, sp, fp, tp
  printf "COPY time, strtof / simdjson:                         %.2fx\n", f / s
  printf "parse time (WHERE false minus text), strtof / simdjson: %.2fx  (%.2f vs %.2f us per vector)\n",
    (fp - tp) / (sp - tp), (fp - tp) * 1e6 / '"$ROWS"', (sp - tp) * 1e6 / '"$ROWS"'
}'
