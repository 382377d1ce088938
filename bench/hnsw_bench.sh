#!/usr/bin/env bash
# Runs bench/hnsw_bench.py against a throwaway cluster (scripts/pgcluster.sh)
# that it starts and stops. Arguments go to the Python script; see
# `bench/hnsw_bench.sh --help`. Needs the extension installed (make install).
#   bench/hnsw_bench.sh                      Fashion-MNIST, m=16, ef_construction 200 and 64
#   bench/hnsw_bench.sh --quick              CI-sized run of both data sets
#   KEEP=1 bench/hnsw_bench.sh ...           leave the cluster running (prints how to reach it)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/pgcluster.sh
source scripts/pgcluster.sh
if [ "${KEEP:-0}" != 1 ]; then trap pgc_stop EXIT; fi
# Enough shared buffers for the largest index (1M x 128: about 0.8 GB), no
# JIT, and no autovacuum running into the measurements.
pgc_start "shared_buffers = 2GB" "jit = off" "autovacuum = off" "max_parallel_maintenance_workers = 1" \
  "checkpoint_timeout = 30min" "max_wal_size = 8GB"
/usr/bin/python3 bench/hnsw_bench.py "$@"
if [ "${KEEP:-0}" = 1 ]; then echo "cluster kept: PGHOST=$PGHOST PGPORT=$PGPORT (stop: source scripts/pgcluster.sh; PGC_DIR=$PGC_DIR pgc_stop)"; fi
