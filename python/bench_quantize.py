#!/usr/bin/python3
"""Quantization figure: the same Fashion-MNIST images in an unquantized and an
SQ8 collection (quantize=True), loaded through the client (so the SQ8 index,
created empty, takes its parameters from the first row), then rebuilt with
compact(reindex=True) (parameters trained on every row). Prints load time,
recall@k against an exact numpy search, time per query and index size at
each step; asserts nothing.

    PGHOST=... PGPORT=... PGDATABASE=... /usr/bin/python3 python/bench_quantize.py \
        [--rows 20000] [--queries 100] [--k 10] [--ef-search 40] [--m 16] [--ef-construction 64]

Reads the IDX files from $FASHION_MNIST_DIR (default
/usr/share/datasets/fashion-mnist, the dataset-fashion-mnist package). The
collections bench_q_plain_<pid> and bench_q_sq8_<pid> are dropped at the end.
"""

import argparse
import gzip
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import vecext  # noqa: E402

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def images(name):
    with gzip.open(os.path.join(DATA_DIR, name), "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or ndim != 3:
        sys.exit(f"{name}: not an IDX file of images")
    n, rows, cols = struct.unpack(">III", data[4:16])
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef-search", type=int, default=40)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--dsn", default=None)
    args = ap.parse_args()

    X = images("train-images-idx3-ubyte.gz")[:args.rows]
    Q = images("t10k-images-idx3-ubyte.gz")[:args.queries]
    truth = [set(np.argsort(((X - q) ** 2).sum(axis=1), kind="stable")[:args.k].tolist()) for q in Q]
    ids = [str(i) for i in range(len(X))]
    print(f"bench_quantize: {len(X)} x {X.shape[1]} Fashion-MNIST images (l2, m={args.m}, "
          f"ef_construction={args.ef_construction}), {len(Q)} queries, k={args.k}, "
          f"ef_search={args.ef_search}")

    def measure(db, label):
        t = time.perf_counter()
        hits = 0
        for q, want in zip(Q, truth):
            got = db.search(q, k=args.k, ef_search=args.ef_search)
            hits += len(want & {int(r.id) for r in got})
        ms = (time.perf_counter() - t) / len(Q) * 1000
        mb = db.stats()["index"]["bytes"] / 1e6
        print(f"  {label:<44} recall@{args.k} {hits / (len(Q) * args.k):.3f}  {ms:6.2f} ms/query  "
              f"index {mb:6.1f} MB")

    for quantize in (False, True):
        name = f"bench_q_{'sq8' if quantize else 'plain'}_{os.getpid()}"
        with vecext.Database(args.dsn, name, dim=X.shape[1], metric="l2", m=args.m,
                             ef_construction=args.ef_construction, quantize=quantize) as db:
            try:
                t = time.perf_counter()
                db.add_many(ids, X)
                db.compact()
                kind = "sq8" if quantize else "none"
                measure(db, f"{kind}, loaded ({time.perf_counter() - t:.1f} s)")
                t = time.perf_counter()
                db.compact(reindex=True)
                measure(db, f"{kind}, compact(reindex=True) ({time.perf_counter() - t:.1f} s)")
            finally:
                db.connection.execute(f'DROP TABLE IF EXISTS "{name}"')


if __name__ == "__main__":
    main()
