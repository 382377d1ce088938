#!/usr/bin/python3
"""Filtered vector search: the hnsw index with a metadata column against the
post-filter plan and the exact plan, side by side in one run.

One table `fitems (id, v, metadata)` carries three indexes at once: an hnsw
index on (v, metadata) (the filter runs inside the traversal), an hnsw index
on v alone (the filter runs on the rows the scan returns: the iterative
post-filter plan) and a GIN index on metadata (the exact plan: bitmap scan,
then a sort by distance). Each plan is measured inside a transaction that
drops the other indexes (and rolls back). For every filter it prints rows
returned (the share of queries answered with all k rows when k rows match),
recall@10 against the exact filtered top 10 (numpy), queries/s of a
PL/pgSQL loop inside the server and of one client connection, shared buffer
accesses per query (EXPLAIN (ANALYZE, BUFFERS) of the first 20 queries), and
the index size overhead of the metadata column. The metadata index is
measured several ways: the default two-hop traversal (with its adaptive
candidate list, and following the value lists of an index built with
--value-lists, the default), two-hop without value lists
(hnsw.filter_value_lists = off), two-hop with hnsw.filter_ef_widen = 1
(ef_search as set), and hnsw.filter_two_hop = off (every element reached is
scored).

Data sets: Fashion-MNIST with its class label as metadata (10 classes), and
a synthetic clustered set with metadata at 10%, 1% and 0.1% selectivity and
a conjunction of two conditions. Run through bench/filter_bench.sh.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hnsw_bench as hb  # noqa: E402
from hnsw import datasets, report  # noqa: E402

K = 10


def log(msg):
    print(msg, flush=True)


def fashion(args):
    name, base, queries, metric = datasets.fashion_mnist(rows=args.rows, queries=args.queries)
    labels = datasets._read_idx(os.path.join(datasets.FASHION_DIR, "train-labels-idx1-ubyte.gz"))[: base.shape[0]]
    meta = {"label": labels.astype(np.int64)}
    # Query i asks for class (i % 10): about half of the time not its own.
    filters = [("label (10%)", lambda i: {"label": i % 10}, lambda i: meta["label"] == (i % 10))]
    return name, base, queries, meta, filters


def synthetic(args):
    name, base, queries, metric = datasets.synthetic(rows=args.rows or 1_000_000, dim=args.dim, queries=args.queries)
    ids = np.arange(1, base.shape[0] + 1, dtype=np.int64)
    meta = {"c10": ids % 10, "c100": (ids * 7) % 100, "c1000": (ids * 13) % 1000, "g4": (ids // 10) % 4}
    filters = [
        ("c10 (10%)", lambda i: {"c10": i % 10}, lambda i: meta["c10"] == (i % 10)),
        ("c100 (1%)", lambda i: {"c100": i % 100}, lambda i: meta["c100"] == (i % 100)),
        ("c1000 (0.1%)", lambda i: {"c1000": i % 1000}, lambda i: meta["c1000"] == (i % 1000)),
        ("c10 and g4 (2.5%)", lambda i: {"c10": i % 10, "g4": i % 4},
         lambda i: (meta["c10"] == (i % 10)) & (meta["g4"] == (i % 4))),
    ]
    return name, base, queries, meta, filters


def exact_filtered(base, queries, mask_of, k):
    out = []
    norms = (base.astype(np.float64) ** 2).sum(1)
    for i, q in enumerate(queries):
        idx = np.nonzero(mask_of(i))[0]
        if len(idx) == 0:
            out.append(np.array([], dtype=np.int64))
            continue
        d = norms[idx] - 2.0 * (base[idx].astype(np.float64) @ q.astype(np.float64))
        take = min(k, len(idx))
        part = np.argpartition(d, take - 1)[:take]
        out.append(idx[part[np.argsort(d[part])]] + 1)  # ids are row numbers + 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef-search", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--link-codes", default="on", choices=["on", "off"],
                    help="build the metadata index with link codes (two-hop filtered scans)")
    ap.add_argument("--value-lists", type=int, default=1, choices=[0, 1, 2, 3, 4],
                    help="build the metadata index WITH (value_lists = N) (0: without); the two-hop scan is "
                         "then measured with and without following them (hnsw.filter_value_lists)")
    ap.add_argument("--library", default=None,
                    help="measure this build of vecext.so (absolute path without .so, e.g. /tmp/x/vecext) "
                         "instead of the installed one: the benchmark database's functions are pointed at it")
    args = ap.parse_args()

    name, base, queries, meta, filters = (fashion if args.dataset == "fashion-mnist" else synthetic)(args)
    n, dim = base.shape
    nq = queries.shape[0]
    log(f"filter benchmark: {name}, {n:,} x {dim}, {nq} queries, L2, m = {args.m}, ef_construction = "
        f"{args.ef_construction}, ef_search = {args.ef_search}, k = {K}; command: bench/filter_bench.sh "
        f"{' '.join(sys.argv[1:])}")

    hb.ensure_database()
    if args.library:
        with hb.connect() as conn:
            conn.execute("UPDATE pg_proc SET probin = %s WHERE probin IN ('$libdir/vecext', %s)",
                         (args.library, args.library))
        log(f"  library: {args.library}.so")
    keys = sorted(meta)
    with hb.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS fitems, fqueries")
        conn.execute(f"CREATE TABLE fitems (id int, v vector({dim}), metadata jsonb)")
        if 8 + 4 * dim < 8000:
            conn.execute("ALTER TABLE fitems ALTER COLUMN v SET STORAGE PLAIN")
        t0 = time.perf_counter()
        hb.copy_binary(conn, "fitems", base, id_offset=1)
        conn.execute("CREATE TEMP TABLE fmeta (id int, " + ", ".join(f"{k} int" for k in keys) + ")")
        with conn.cursor().copy("COPY fmeta FROM STDIN") as cp:
            for r in range(n):
                cp.write_row([r + 1] + [int(meta[k][r]) for k in keys])
        conn.execute("CREATE TABLE fitems2 AS SELECT f.id, f.v, jsonb_build_object("
                     + ", ".join(f"'{k}', m.{k}" for k in keys)
                     + ") AS metadata FROM fitems f JOIN fmeta m USING (id)")
        conn.execute("DROP TABLE fitems")
        conn.execute("ALTER TABLE fitems2 RENAME TO fitems")
        if 8 + 4 * dim < 8000:
            conn.execute("ALTER TABLE fitems ALTER COLUMN v SET STORAGE PLAIN")
        conn.execute("VACUUM ANALYZE fitems")
        log(f"  load: {time.perf_counter() - t0:.1f} s")
        conn.execute(f"CREATE TABLE fqueries (id int, v vector({dim}), filter jsonb)")
        hb.copy_binary(conn, "fqueries", queries)
        conn.execute("SET maintenance_work_mem = '8GB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {args.threads - 1}")
        sizes = {}
        # The metadata index stores link codes (--link-codes), so the same
        # index is measured with and without the two-hop traversal.
        for idx, cols, extra in (("fitems_meta_idx", "v vector_l2_ops, metadata jsonb_hnsw_ops",
                                  f", link_codes = {'on' if args.link_codes == 'on' else 'off'}"
                                  + (f", value_lists = {args.value_lists}" if args.value_lists else "")),
                                 ("fitems_plain_idx", "v vector_l2_ops", "")):
            t0 = time.perf_counter()
            conn.execute(f"CREATE INDEX {idx} ON fitems USING hnsw ({cols}) "
                         f"WITH (m = {args.m}, ef_construction = {args.ef_construction}{extra})")
            sizes[idx] = conn.execute(f"SELECT pg_relation_size('{idx}')").fetchone()[0]
            log(f"  build {idx}: {time.perf_counter() - t0:.1f} s, {sizes[idx] / 2**20:,.1f} MB")
        t0 = time.perf_counter()
        conn.execute("CREATE INDEX fitems_gin ON fitems USING gin (metadata jsonb_path_ops)")
        sizes["fitems_gin"] = conn.execute("SELECT pg_relation_size('fitems_gin')").fetchone()[0]
        log(f"  build fitems_gin: {time.perf_counter() - t0:.1f} s, {sizes['fitems_gin'] / 2**20:,.1f} MB")
        conn.execute("""
CREATE OR REPLACE FUNCTION fbench_loop(k int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE q record; r record; n bigint := 0;
BEGIN
  FOR q IN SELECT v, filter FROM fqueries ORDER BY id LOOP
    IF q.filter IS NULL THEN
      FOR r IN SELECT id FROM fitems ORDER BY v <-> q.v LIMIT k LOOP n := n + 1; END LOOP;
    ELSE
      FOR r IN SELECT id FROM fitems WHERE metadata @> q.filter ORDER BY v <-> q.v LIMIT k LOOP n := n + 1; END LOOP;
    END IF;
  END LOOP;
  RETURN n;
END $$""")
        conn.execute("ANALYZE fitems")
    over = sizes["fitems_meta_idx"] / sizes["fitems_plain_idx"] - 1
    log(f"  metadata column overhead: +{over * 100:.1f}% "
        f"({(sizes['fitems_meta_idx'] - sizes['fitems_plain_idx']) / n:.1f} bytes per row)")

    plans = {  # name -> indexes to drop for the plan
        "in-index, two-hop": ["fitems_plain_idx", "fitems_gin"],
        "in-index, two-hop, no value lists": ["fitems_plain_idx", "fitems_gin"],
        "in-index, two-hop, ef_widen 1": ["fitems_plain_idx", "fitems_gin"],
        "in-index, every element scored": ["fitems_plain_idx", "fitems_gin"],
        "post-filter (iterative)": ["fitems_meta_idx", "fitems_gin"],
        "exact (GIN + sort)": ["fitems_meta_idx", "fitems_plain_idx"],
    }
    if not args.value_lists:
        del plans["in-index, two-hop, no value lists"]

    def run(plan, filt, exact_ids):
        """rows-complete share, recall, client q/s, in-server q/s (medians over repeats)."""
        drop = plans[plan]
        rec, full, cq, lq, bufs, plan_text = [], [], [], [], [], ""
        for _ in range(args.repeat):
            with hb.connect() as conn:
                conn.execute("BEGIN")
                conn.execute("DROP INDEX " + ", ".join(drop))
                conn.execute(f"SET LOCAL hnsw.ef_search = {args.ef_search}")
                if plan == "in-index, every element scored":
                    conn.execute("SET LOCAL hnsw.filter_two_hop = off")
                if plan == "in-index, two-hop, ef_widen 1":
                    conn.execute("SET LOCAL hnsw.filter_ef_widen = 1")
                if plan == "in-index, two-hop, no value lists":
                    conn.execute("SET LOCAL hnsw.filter_value_lists = off")
                if plan != "exact (GIN + sort)":
                    conn.execute("SET LOCAL enable_seqscan = off")
                    conn.execute("SET LOCAL enable_bitmapscan = off")
                sql = "SELECT id FROM fitems WHERE metadata @> %s::jsonb ORDER BY v <-> %s::vector LIMIT " + str(K)
                if filt is None:
                    sql = "SELECT id FROM fitems ORDER BY v <-> %s::vector LIMIT " + str(K)
                fj = [json.dumps(filt(i)) if filt else None for i in range(nq)]
                qt = [hb.vector_text(q) for q in queries]
                params = (lambda i: (fj[i], qt[i])) if filt else (lambda i: (qt[i],))
                plan_text = conn.execute("EXPLAIN (COSTS OFF) " + sql, params(0)).fetchall()
                conn.execute(sql, params(0), prepare=True).fetchall()
                found = []
                t0 = time.perf_counter()
                for i in range(nq):
                    found.append([r[0] for r in conn.execute(sql, params(i), prepare=True).fetchall()])
                cq.append(nq / (time.perf_counter() - t0))
                conn.execute("UPDATE fqueries SET filter = NULL")
                if filt:
                    for i in range(nq):
                        conn.execute("UPDATE fqueries SET filter = %s::jsonb WHERE id = %s", (fj[i], i))
                conn.execute(f"SELECT fbench_loop({K})")
                t0 = time.perf_counter()
                conn.execute(f"SELECT fbench_loop({K})")
                lq.append(nq / (time.perf_counter() - t0))
                blocks = []
                for i in range(min(nq, 20)):
                    top = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params(i)).fetchone()[0]
                    node = top[0]["Plan"]
                    blocks.append(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))
                bufs.append(sum(blocks) / max(len(blocks), 1))
                conn.execute("ROLLBACK")
            hit = tot = complete = 0
            for i in range(nq):
                want = set(int(x) for x in exact_ids[i])
                tot += len(want)
                hit += len(want & set(found[i]))
                complete += len(found[i]) >= len(want)
            rec.append(hit / max(tot, 1))
            full.append(complete / nq)
        node = " / ".join(r[0].strip().lstrip("-> ").split(" (")[0].split("  ")[0]
                          for r in plan_text if "Scan" in r[0] or r[0].strip().lstrip("-> ").startswith("Sort "))
        return hb.median(full), hb.median(rec), hb.median(cq), hb.median(lq), node, hb.median(bufs)

    all_exact = exact_filtered(base, queries, lambda i: np.ones(n, dtype=bool), K)
    base_full, base_rec, base_cq, base_lq, base_node, base_bufs = run("post-filter (iterative)", None, all_exact)
    log(f"  unfiltered (hnsw on v): recall {base_rec:.3f}, client {base_cq:,.0f} q/s, in-server {base_lq:,.0f} q/s, "
        f"{base_bufs:,.0f} buffers/query")
    rows = []
    for fname, filt, mask in filters:
        ex = exact_filtered(base, queries, mask, K)
        res = {p: run(p, filt, ex) for p in plans}
        ii, pf, nt = res["in-index, two-hop"], res["post-filter (iterative)"], res["in-index, every element scored"]
        for p in plans:
            full, rec, cq, lq, node, nb = res[p]
            rows.append([fname, p, f"{full * 100:.0f}%", report.fmt(rec, 3), report.fmt(cq, 0), report.fmt(lq, 0),
                         report.fmt(nb, 0), node])
        log(f"  {fname}: in-index vs post-filter in-server {ii[3] / pf[3]:.1f}x, client {ii[2] / pf[2]:.1f}x; "
            f"in-index vs unfiltered in-server {base_lq / ii[3]:.1f}x slower; two-hop vs every element scored "
            f"in-server {ii[3] / nt[3]:.1f}x")
    log("")
    rows.append(["(unfiltered)", "hnsw (v)", f"{base_full * 100:.0f}%", report.fmt(base_rec, 3),
                 report.fmt(base_cq, 0), report.fmt(base_lq, 0), report.fmt(base_bufs, 0), base_node])
    log(report.markdown_table(["filter", "plan", "queries with all k rows", "recall@10", "client q/s",
                               "in-server q/s", "buffers/query", "plan"], rows))
    with hb.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS fitems, fqueries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
