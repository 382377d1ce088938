#!/usr/bin/env bash
# SQ8 vs unquantized hnsw indexes, side by side (bench/sq8_bench.py), on a
# throwaway cluster that it starts and stops. Needs `make install`.
#   bench/sq8_bench.sh                                   Fashion-MNIST, m=16, ef_construction=64
#   bench/sq8_bench.sh --dataset synthetic --rows 1000000 --dim 128
#   bench/sq8_bench.sh --dataset synthetic --rows 100000 --dim 3072 --only sq8   (SQ8 alone: above 2000 dims)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/pgcluster.sh
source scripts/pgcluster.sh
trap pgc_stop EXIT
pgc_start "shared_buffers = 4GB" "jit = off" "autovacuum = off" "max_parallel_maintenance_workers = 1" \
  "checkpoint_timeout = 30min" "max_wal_size = 8GB"
/usr/bin/python3 bench/sq8_bench.py "$@"
