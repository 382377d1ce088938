#!/usr/bin/python3
"""Async figure: N searches as asyncio.gather on an asyncpg pool vs a sequential
loop (and, for reference, search_many in one statement and the sync client).
Prints timings; asserts nothing.

    PGHOST=... PGPORT=... PGDATABASE=... /usr/bin/python3 python/bench_async.py \
        [--rows 5000] [--dim 64] [--searches 1000] [--pool 4] [--k 10] [--dsn DSN]

Needs a database with the vecext extension (or the right to create it). It
creates a collection bench_async_<pid> with random vectors and drops it.
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import vecext  # noqa: E402


def fmt(label, n, seconds, base=None):
    extra = f"  x{base / seconds:.2f} vs sequential" if base else ""
    return f"  {label:<34} {seconds:7.3f} s  {n / seconds:8.0f} searches/s{extra}"


async def run(args):
    name = f"bench_async_{os.getpid()}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    Q = rng.standard_normal((args.searches, args.dim)).astype(np.float32)
    async with vecext.AsyncDatabase(args.dsn, name, dim=args.dim, metric="cosine", min_size=args.pool,
                                    max_size=args.pool) as db:
        try:
            t = time.perf_counter()
            await db.upsert_many([f"v{i}" for i in range(args.rows)], X)
            load = time.perf_counter() - t
            print(f"bench_async: {args.rows} x {args.dim} vectors (cosine, m=16, ef_construction=200) "
                  f"loaded in {load:.2f} s; {args.searches} searches, k={args.k}, pool of {args.pool}, "
                  f"{os.cpu_count()} CPUs")
            await asyncio.gather(*(db.search(q, k=args.k) for q in Q[:50]))  # warm the pool and caches

            t = time.perf_counter()
            seq = [await db.search(q, k=args.k) for q in Q]
            t_seq = time.perf_counter() - t

            t = time.perf_counter()
            par = await asyncio.gather(*(db.search(q, k=args.k) for q in Q))
            t_par = time.perf_counter() - t

            t = time.perf_counter()
            many = []
            for i in range(0, len(Q), 250):
                many += await db.search_many(Q[i:i + 250], k=args.k)
            t_many = time.perf_counter() - t

            t = time.perf_counter()
            chunks = [Q[i::args.pool] for i in range(args.pool)]
            await asyncio.gather(*(db.search_many(c, k=args.k) for c in chunks))
            t_many_par = time.perf_counter() - t

            same = sum(a == b for a, b in zip(seq, par)) == len(Q) and \
                sum([r.id for r in a] == [r.id for r in b] for a, b in zip(seq, many)) == len(Q)

            with vecext.Database(args.dsn, name) as sdb:
                t = time.perf_counter()
                for q in Q:
                    sdb.search(q, k=args.k)
                t_sync = time.perf_counter() - t

            print(fmt("async sequential loop (await each)", len(Q), t_seq))
            print(fmt(f"asyncio.gather, pool of {args.pool}", len(Q), t_par, t_seq))
            print(fmt("search_many, 250 per statement", len(Q), t_many, t_seq))
            print(fmt(f"search_many x {args.pool} on the pool", len(Q), t_many_par, t_seq))
            print(fmt("sync Database loop (psycopg)", len(Q), t_sync, t_seq))
            print(f"  same results in every mode: {'yes' if same else 'NO'}")
            return 0 if same else 1
        finally:
            async with db.pool.acquire() as conn:
                await conn.execute(f'DROP TABLE IF EXISTS "{name}"')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--searches", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dsn", default=None, help="libpq/asyncpg DSN (default: PG* environment variables)")
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
