#!/usr/bin/env bash
# The main job: from a fresh Debian 12 machine to nearest-neighbour queries
# over Fashion-MNIST in Postgres.
#   1. install the Debian packages (scripts/install-deps.sh; needs root or sudo)
#   2. build and install the extension
#   3. start a throwaway cluster (stopped on exit unless KEEP=1)
#   4. load the 60000 training images into
#        fashion (id int PRIMARY KEY, embedding vector(784), metadata jsonb)
#   5. build an HNSW index on the embeddings (see build_index below)
#   6. print the plan and the nearest neighbours of a few test images, then
#      measure recall@10 over 200 test images against numpy's exact search
# Prints the time of every step.
#   KEEP=1 bash scripts/main.sh      leave the cluster running afterwards
#   INDEX=none bash scripts/main.sh  no index: exact search (recall must be 1)
#   QUERIES=0,1,2,3 K=10 RECALL_QUERIES=0-999 bash scripts/main.sh
set -euo pipefail
cd "$(dirname "$0")/.."

QUERIES=${QUERIES:-0,1,2,3,4}
K=${K:-5}
RECALL_QUERIES=${RECALL_QUERIES:-0-199}
INDEX=${INDEX:-hnsw}
PY=/usr/bin/python3   # Debian's python: it has numpy and psycopg
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

t_all=$(date +%s.%N)
t_step=$t_all
step() {   # step "name": prints the time since the previous step
  local now
  now=$(date +%s.%N)
  awk -v a="$t_step" -v b="$now" -v n="$1" 'BEGIN { printf ".. %-28s %7.1f s\n", n, b - a }'
  t_step=$now
}

# The index step: the one place where the index is chosen and built. The
# plan printed by the query step shows whether the search used it; with
# INDEX=none the search is exact (a sequential scan and a sort).
INDEX_SQL="CREATE INDEX fashion_embedding_idx ON fashion
  USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)"
MIN_RECALL=0.9   # recall@10 floor with the approximate index
build_index() {
  if [ "$INDEX" = none ]; then
    echo "no index: exact search"
    MIN_RECALL=1.0
    return 0
  fi
  echo "$INDEX_SQL"
  psql -X -q -v ON_ERROR_STOP=1 -c "$INDEX_SQL"
  psql -X -A -t -c "LOAD 'vecext'" -c "SELECT 'index size: ' || pg_size_pretty(pg_relation_size('fashion_embedding_idx'))
                    || ', hnsw.ef_search = ' || current_setting('hnsw.ef_search')"
}

echo "== install dependencies"
bash scripts/install-deps.sh
step "dependencies"

echo "== build and install vecext"
make -s -j2
$SUDO make -s install
step "build + install"

echo "== start a throwaway cluster"
. scripts/pgcluster.sh
if [ "${KEEP:-0}" = 1 ]; then
  trap 'echo "cluster kept running: PGHOST=$PGHOST PGPORT=$PGPORT (stop: . scripts/pgcluster.sh; PGC_DIR=$PGC_DIR pgc_stop)"' EXIT
else
  trap pgc_stop EXIT
fi
pgc_start
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION vecext"
echo "PGHOST=$PGHOST PGPORT=$PGPORT"
step "cluster start"

echo "== load Fashion-MNIST (train split)"
$PY scripts/fashion_mnist.py load
step "load"

echo "== index"
build_index
step "index"

echo "== nearest neighbours of test images (k=$K)"
$PY scripts/fashion_mnist.py query --queries "$QUERIES" --k "$K" --explain --min-recall 0
step "queries"

echo "== recall@10 over test images $RECALL_QUERIES (floor $MIN_RECALL)"
$PY scripts/fashion_mnist.py query --queries "$RECALL_QUERIES" --k 10 --brief --min-recall "$MIN_RECALL"
step "recall"

t_end=$(date +%s.%N)
awk -v a="$t_all" -v b="$t_end" 'BEGIN { printf "== main job done in %.1f s\n", b - a }'
