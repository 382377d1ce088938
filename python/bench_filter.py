#!/usr/bin/python3
"""Filtered search and count(where) on two collections of the same rows,
both with the metadata column in the hnsw index (the in-index filter): one
as collections are created (with the GIN jsonb_path_ops index on metadata),
one with the GIN index dropped. Prints the load time and size, and per
filter the matching rows, the plan the server chose for search(), and the
median time of count(where) and of search(where). Figures only, never
assertions.

    PGHOST=... PGPORT=... PGDATABASE=... /usr/bin/python3 python/bench_filter.py --rows 20000
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import vecext  # noqa: E402

CATS = ["news", "sports", "tech", "science", "art", "music", "food", "travel", "health", "games"]

FILTERS = [
    {"tenant": 7},                                          # 1 %
    {"cat": "tech"},                                        # 10 %
    {"cat": "tech", "tenant": 2},                           # 1 %, two keys
    {"year": {"$gte": 2000}},                               # 71 %
    {"price": {"$lt": 1}},                                  # 1 %
    {"cat": {"$in": ["tech", "art"]}},                      # 20 %
    {"cat": {"$ne": "tech"}},                               # 90 %
    {"author.name": {"$exists": True}},                     # 9 %
    {"$or": [{"tenant": 3}, {"year": {"$gt": 2020}}]},      # 12 %
    {"draft": {"$exists": False}},                          # 86 %, not index-evaluable
]


def metadata(i):
    m = {"tenant": i % 100, "cat": CATS[i % 10], "price": float((i * 7919) % 1000) / 10,
         "year": 1990 + (i % 35), "tags": ["a", "b"] if i % 3 == 0 else ["c"]}
    if i % 7 == 0:
        m["draft"] = True
    if i % 11 == 0:
        m["author"] = {"name": f"auth{i % 13}", "born": 1900 + i % 100}
    return m


def plan_kind(lines):
    text = "\n".join(lines)
    if "Bitmap Heap Scan" in text:
        return "GIN + sort"
    if "embedding_idx" in text:
        return "hnsw, in-index filter" if "Index Cond: " in text else "hnsw, filter after"
    return "seq scan + sort"


def median_ms(f, n):
    ts = []
    for i in range(n):
        t = time.perf_counter()
        f(i)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the two tables")
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    X = rng.standard_normal((a.rows, a.dim)).astype(np.float32)
    Q = rng.standard_normal((a.repeat, a.dim)).astype(np.float32)
    ids = [f"id{i}" for i in range(a.rows)]
    metas = [metadata(i) for i in range(a.rows)]
    names = {"hnsw with metadata, GIN dropped": f"bench_filter_{os.getpid()}_nogin",
             "hnsw with metadata + GIN (default)": f"bench_filter_{os.getpid()}_gin"}
    dbs = {}
    try:
        for label, name in names.items():
            db = vecext.Database(None, name, dim=a.dim, metric="l2", m=16, ef_construction=64)
            if name.endswith("_nogin"):
                db.connection.execute(f'DROP INDEX "{name}_metadata_idx"')
            t = time.perf_counter()
            db.add_many(ids, X, metas)
            load = time.perf_counter() - t
            db.compact()
            size = db.stats()["total_bytes"]
            print(f"{label}: add_many of {a.rows} rows {load:.1f} s, table + indexes {size / 1e6:.1f} MB")
            dbs[label] = db
        print(f"\nmedians of {a.repeat} runs (ms); search k=10, default ef_search")
        print(f"{'filter':52s} {'rows':>6s} | " + " | ".join(f"{lbl:>44s}" for lbl in dbs))
        for w in FILTERS:
            cells = []
            n = None
            for db in dbs.values():
                n = db.count(w)
                tc = median_ms(lambda i: db.count(w), a.repeat)
                ts = median_ms(lambda i: db.search(Q[i], k=10, where=w), a.repeat)
                sql, p = db._st.search(Q[0], 10, w, None)
                plan = [r[0] for r in db.connection.execute("EXPLAIN " + sql, p.bind()).fetchall()]
                cells.append(f"count {tc:6.2f} search {ts:6.2f} {plan_kind(plan):>21s}")
            print(f"{str(w):52s} {n:6d} | " + " | ".join(cells))
    finally:
        for db in dbs.values():
            db.close()
        if not a.keep:
            with vecext.connect(None) as c:
                for name in names.values():
                    c.execute(f'DROP TABLE IF EXISTS "{name}"')


if __name__ == "__main__":
    main()
