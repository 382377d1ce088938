#!/usr/bin/env bash
# Filtered search benchmark (bench/filter_bench.py) on a throwaway cluster
# that it starts and stops. Needs `make install`.
#   bench/filter_bench.sh                                     Fashion-MNIST, label as metadata
#   bench/filter_bench.sh --dataset synthetic --rows 1000000  10%, 1%, 0.1% and a conjunction
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/pgcluster.sh
source scripts/pgcluster.sh
trap pgc_stop EXIT
pgc_start "shared_buffers = 4GB" "jit = off" "autovacuum = off" "max_parallel_maintenance_workers = 1" \
  "checkpoint_timeout = 30min" "max_wal_size = 8GB"
/usr/bin/python3 bench/filter_bench.py "$@"
