#!/usr/bin/python3
"""Fashion-MNIST in a vecext table: load it, and run nearest-neighbour queries.

Run it with Debian's /usr/bin/python3 (it has numpy and psycopg 3). The
connection comes from the usual libpq variables (PGHOST, PGPORT, PGUSER,
PGDATABASE), as scripts/pgcluster.sh's pgc_start exports them.

  fashion_mnist.py load  [--limit N]            (re)create and fill the table
  fashion_mnist.py query [--queries 0,1,2|0-99] [--k 5] [--explain] [--brief]
                         [--min-recall 0.9]

The table is
  fashion (id int PRIMARY KEY, embedding vector(784), metadata jsonb)
where id is the image's 0-based position in the training file and metadata
is {"label": <0..9>, "split": "train"}. Queries take images from the test
split, search with ORDER BY embedding <-> q LIMIT k, and measure recall
against an exact search in numpy (1.0 for an exact plan).
"""

import argparse
import gzip
import os
import re
import struct
import sys
import time

import numpy as np
import psycopg

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIM = 784
COPY_BATCH = 2000  # rows per write to the COPY stream


def read_idx(name):
    """Reads one gzipped IDX file (big-endian header, uint8 payload)."""
    path = os.path.join(DATA_DIR, name)
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load_split(split):
    """Returns (images as an n x 784 uint8 array, labels) for 'train' or 't10k'."""
    images = read_idx(f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(f"{split}-labels-idx1-ubyte.gz")
    return images.reshape(images.shape[0], -1), labels


# Decimal text of every byte value, so formatting a row is one join.
_DIGITS = [str(i) for i in range(256)]


def vector_text(row):
    return "[" + ",".join([_DIGITS[v] for v in row.tolist()]) + "]"


def cmd_load(args):
    t0 = time.monotonic()
    images, labels = load_split("train")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    n = images.shape[0]
    t_read = time.monotonic() - t0
    metadata = [f'{{"label": {k}, "split": "train"}}' for k in range(10)]

    t1 = time.monotonic()
    with psycopg.connect(autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS fashion")
            cur.execute(f"CREATE TABLE fashion (id int PRIMARY KEY, "
                        f"embedding vector({DIM}), metadata jsonb)")
            with cur.copy("COPY fashion (id, embedding, metadata) FROM STDIN") as copy:
                for start in range(0, n, COPY_BATCH):
                    stop = min(start + COPY_BATCH, n)
                    lines = [f"{i}\t{vector_text(images[i])}\t{metadata[labels[i]]}\n"
                             for i in range(start, stop)]
                    copy.write("".join(lines))
        conn.commit()
        t_copy = time.monotonic() - t1
        t2 = time.monotonic()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE fashion")
        t_analyze = time.monotonic() - t2
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('fashion'))").fetchone()[0]
    print(f"loaded {n} rows into fashion ({size}): read {t_read:.1f} s, "
          f"COPY {t_copy:.1f} s ({n / t_copy:,.0f} rows/s), "
          f"VACUUM ANALYZE {t_analyze:.1f} s")


QUERY = ("SELECT id, (metadata->>'label')::int, embedding <-> %(q)s::vector "
         "FROM fashion ORDER BY embedding <-> %(q)s::vector LIMIT %(k)s")


def parse_queries(spec):
    """'0,1,2' or '0-99' (or a mix: '0-9,42') -> list of test-image numbers."""
    out = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def exact_squared_distances(train, queries):
    """Squared L2 distances, train rows x queries. Pixels are integers, so
    every product and sum is an integer below 2**53: float64 BLAS is exact."""
    t = train.astype(np.float64)
    q = queries.astype(np.float64)
    return (t * t).sum(axis=1)[:, None] + (q * q).sum(axis=1)[None, :] - 2.0 * (t @ q.T)


def cmd_query(args):
    test_images, test_labels = load_split("t10k")
    train_images, _ = load_split("train")
    queries = parse_queries(args.queries)
    found_total = 0
    with psycopg.connect(autocommit=True) as conn:
        n_rows = conn.execute("SELECT count(*) FROM fashion").fetchone()[0]
        # ids are positions in the training file
        exact_sq = exact_squared_distances(train_images[:n_rows], test_images[queries])
        if args.explain:
            q = vector_text(test_images[queries[0]])
            print("plan of the nearest-neighbour query:")
            for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + QUERY,
                                        {"q": q, "k": args.k}):
                # The query vector is inlined in the plan: abbreviate it.
                print("  " + re.sub(r"'\[[^]]{40,}\]'", "'[...]'", line))
        times = []
        for j, qi in enumerate(queries):
            q = vector_text(test_images[qi])
            t0 = time.monotonic()
            rows = conn.execute(QUERY, {"q": q, "k": args.k}).fetchall()
            ms = (time.monotonic() - t0) * 1000
            times.append(ms)
            exact = exact_sq[:, j]
            # Ties at the k-th distance make several answers correct: accept
            # any id whose exact distance is within the k-th smallest.
            kth = np.partition(exact, args.k - 1)[args.k - 1]
            found = len({r[0] for r in rows if exact[r[0]] <= kth})
            found_total += found
            if args.brief:
                continue
            label = int(test_labels[qi])
            print(f"test image {qi} ({CLASSES[label]}): {ms:.1f} ms, "
                  f"{found}/{args.k} of the exact nearest neighbours")
            for rank, (rid, rlabel, dist) in enumerate(rows, 1):
                print(f"  {rank}. id {rid:5d}  label {rlabel} {CLASSES[rlabel]:<11}  "
                      f"distance {dist:9.2f}  (numpy {np.sqrt(exact[rid]):9.2f})")
    expected = args.k * len(queries)
    recall = found_total / expected
    print(f"{len(queries)} queries, k={args.k}: median {np.median(times):.1f} ms, "
          f"p95 {np.percentile(times, 95):.1f} ms; recall {recall:.3f} "
          f"({found_total}/{expected} of numpy's exact nearest neighbours)")
    if recall < args.min_recall:
        print(f"recall below the floor {args.min_recall}")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("load", help="(re)create table fashion and COPY the train split")
    p.add_argument("--limit", type=int, default=0, help="load only the first N rows")
    p = sub.add_parser("query", help="nearest neighbours of test-split images")
    p.add_argument("--queries", default="0,1,2",
                   help="test-split image numbers: 0,1,2 or 0-99")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--explain", action="store_true", help="print the plan first")
    p.add_argument("--brief", action="store_true", help="print only the summary")
    p.add_argument("--min-recall", type=float, default=1.0,
                   help="exit 1 if recall against the exact search is lower")
    args = ap.parse_args()
    if args.cmd == "load":
        cmd_load(args)
        return 0
    return cmd_query(args)


if __name__ == "__main__":
    sys.exit(main())
