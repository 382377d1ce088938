#!/usr/bin/env bash
# Regenerates the real index images in test/fuzz/corpus/hnsw_page/real_*:
# small hnsw indexes (every opclass, a few m, after inserts, deletes and
# VACUUM) built on a throwaway cluster, checkpointed, and copied from disk.
# They seed the page fuzzer and are checked by test/unit/test_hnsw_page_check.cpp
# (which keeps the Postgres-free layout constants equal to the glue's).
# Needs the extension built and installed. Small images only (<= 4 pages).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/pgcluster.sh
out=test/fuzz/corpus/hnsw_page
trap pgc_stop EXIT
pgc_start >/dev/null
psql -qX -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION vecext;
SELECT setseed(0.42);
CREATE TABLE t (id int, v vector(4));
INSERT INTO t SELECT i, ARRAY[random()-0.5, random()-0.5, random()-0.5, random()-0.5]::vector
  FROM generate_series(1, 120) i;
CREATE INDEX t_l2_m3 ON t USING hnsw (v vector_l2_ops) WITH (m = 3, ef_construction = 12);
CREATE INDEX t_ip_m6 ON t USING hnsw (v vector_ip_ops) WITH (m = 6, ef_construction = 24);
CREATE INDEX t_cos_m4 ON t USING hnsw (v vector_cosine_ops) WITH (m = 4, ef_construction = 16);
CREATE INDEX t_l1_m4 ON t USING hnsw (v vector_l1_ops) WITH (m = 4, ef_construction = 8);
CREATE TABLE u (id int, v vector(4));
CREATE INDEX u_l2_m5 ON u USING hnsw (v) WITH (m = 5, ef_construction = 16);
INSERT INTO u SELECT i, ARRAY[random(), random(), random(), random()]::vector FROM generate_series(1, 150) i;
DELETE FROM u WHERE id % 3 = 0;
VACUUM u;
INSERT INTO u SELECT i, ARRAY[random(), random(), random(), random()]::vector FROM generate_series(151, 170) i;
DELETE FROM u WHERE id % 7 = 0;
CHECKPOINT;
SQL
for idx in t_l2_m3 t_ip_m6 t_cos_m4 t_l1_m4 u_l2_m5; do
  problems=$(psql -XAtc "SELECT count(*) FROM hnsw_index_check('$idx')")
  [ "$problems" = 0 ] || { echo "$idx: hnsw_index_check reports $problems problems"; exit 1; }
  path=$(psql -XAtc "SELECT pg_relation_filepath('$idx')")
  size=$(stat -c %s "$PGC_DIR/data/$path")
  [ "$size" -le 32768 ] || { echo "$idx: $size bytes, more than 4 pages"; exit 1; }
  cp "$PGC_DIR/data/$path" "$out/real_$idx"
  chown "$(id -u):$(id -g)" "$out/real_$idx"; chmod 644 "$out/real_$idx"
  echo "$out/real_$idx: $size bytes"
done
