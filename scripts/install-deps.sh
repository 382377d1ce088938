#!/usr/bin/env bash
# Install every Debian package vecext needs to build, test and benchmark.
# Idempotent: does nothing (quickly) when everything is already installed.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libhnswlib-dev libsimdjson-dev
  googletest libgtest-dev libbenchmark-dev
  postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
  python3 python3-asyncpg python3-psycopg python3-numpy python3-hnswlib python3-matplotlib
  dataset-fashion-mnist
  libpq-dev clang libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
# A mirror can fail for a moment: try three times before giving up.
for attempt in 1 2 3; do
  if $SUDO apt-get update -qq &&
     $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "install-deps: apt-get failed (attempt $attempt)" >&2
  sleep $((attempt * 10))
done
exit 1
