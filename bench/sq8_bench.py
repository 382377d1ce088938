#!/usr/bin/python3
"""SQ8 against the unquantized index, side by side in one run.

Loads one data set into two identical tables, builds an hnsw index on each
with the same m and ef_construction (quantization 'none' and 'sq8'), then,
interleaving the two in every round, measures for each ef_search: recall@10
against exact results, queries/s of a PL/pgSQL loop inside the server,
queries/s of one client connection with a prepared statement, and buffer
accesses per query. Prints build time, build peak memory, index size, the
ratios, and queries/s at recall 0.95 (interpolated over the ef_search sweep).
Run through bench/sq8_bench.sh (a throwaway cluster).

`--only sq8` (or `--only none`) builds and measures one index alone: above
2000 dimensions only an SQ8 index can be built (the float4 `vector` type
allows 16000), e.g. `--dataset synthetic --rows 100000 --dim 3072 --only sq8`.
Every build reports whether it stayed in memory (the builder's NOTICE when
the graph outgrows maintenance_work_mem, --maintenance-work-mem) and the time
of its phases (its DEBUG1 summary: SQ8 training scan, loading scan, graph,
pages, WAL), and the peak memory of the backend (an SQ8 index's builder holds
codes, not floats).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hnsw_bench as hb  # noqa: E402
from hnsw import datasets, report  # noqa: E402

K = 10
QUANTS = ("none", "sq8")
OPCLASS = {"l2": ("vector_l2_ops", "<->"), "cosine": ("vector_cosine_ops", "<=>"), "ip": ("vector_ip_ops", "<#>")}


def log(msg):
    print(msg, flush=True)


def loop_fn(table, op):
    return f"""
CREATE OR REPLACE FUNCTION sq8_bench_loop_{table}(k int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE q vector; r record; n bigint := 0;
BEGIN
  FOR q IN SELECT v FROM bench_queries ORDER BY id LOOP
    FOR r IN SELECT id FROM {table} ORDER BY v {op} q LIMIT k LOOP n := n + 1; END LOOP;
  END LOOP;
  RETURN n;
END $$"""


def build(conn, table, opclass, m, efc, quant, threads, mwm):
    """(seconds, index bytes, peak backend MB, notices of the build)."""
    conn.execute(f"DROP INDEX IF EXISTS {table}_idx")
    conn.execute("CHECKPOINT")
    conn.execute(f"SET maintenance_work_mem = '{mwm}'")
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute(f"SET max_parallel_maintenance_workers = {threads - 1}")
    conn.execute("SET client_min_messages = debug1")  # the build's phase summary (one DEBUG1 line)
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with hb.PeakRss(pid) as rss:
        t0 = time.perf_counter()
        conn.execute(f"CREATE INDEX {table}_idx ON {table} USING hnsw (v {opclass}) "
                     f"WITH (m = {m}, ef_construction = {efc}, quantization = '{quant}')")
        secs = time.perf_counter() - t0
    conn.execute("RESET client_min_messages")
    size = conn.execute(f"SELECT pg_relation_size('{table}_idx')").fetchone()[0]
    return secs, size, (rss.peak - rss.base) / 1024.0, notices


def session(ef):
    conn = hb.connect()
    conn.execute("SET enable_seqscan = off")
    conn.execute(f"SET hnsw.ef_search = {ef}")
    return conn


def client_run(table, op, ef, qtexts):
    sql = f"SELECT id FROM {table} ORDER BY v {op} %s::vector LIMIT {K}"
    with session(ef) as conn:
        conn.execute(sql, (qtexts[0],), prepare=True).fetchall()
        found = []
        t0 = time.perf_counter()
        for q in qtexts:
            found.append([r[0] for r in conn.execute(sql, (q,), prepare=True).fetchall()])
        return found, len(qtexts) / (time.perf_counter() - t0)


def loop_run(table, ef, nq):
    with session(ef) as conn:
        conn.execute(f"SELECT sq8_bench_loop_{table}({K})")
        t0 = time.perf_counter()
        n = conn.execute(f"SELECT sq8_bench_loop_{table}({K})").fetchone()[0]
        secs = time.perf_counter() - t0
    if n != nq * K:
        log(f"    warning: {table} loop returned {n} rows, expected {nq * K}")
    return nq / secs


def buffers(table, op, ef, qtexts, sample):
    total = 0
    with session(ef) as conn:
        for q in qtexts[:sample]:
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM {table} "
                                f"ORDER BY v {op} %s::vector LIMIT {K}", (q,)).fetchone()[0][0]["Plan"]
            total += plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return total / max(1, min(sample, len(qtexts)))


def qps_at_recall(points, target):
    """Linear interpolation of q/s at `target` recall over (recall, qps) points."""
    pts = sorted(points)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--metric", default=None, choices=[None, "l2", "cosine", "ip"])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef-search", type=hb.parse_list, default=[10, 20, 40, 80, 160])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--explain-sample", type=int, default=50)
    ap.add_argument("--only", default=None, choices=QUANTS,
                    help="build and measure only this index (above 2000 dimensions: sq8)")
    ap.add_argument("--maintenance-work-mem", default="8GB",
                    help="maintenance_work_mem of the builds (the build reports when it does not fit)")
    ap.add_argument("--storage", default="plain", choices=["plain", "default"],
                    help="storage of the vector column of both tables: plain keeps vectors of up to about "
                         "2000 dimensions inline in the heap page (an SQ8 re-check is then one page access); "
                         "default (external) moves vectors over 2 kB to TOAST")
    args = ap.parse_args()
    quants = (args.only,) if args.only else QUANTS

    if args.dataset == "fashion-mnist":
        name, base, queries, metric = datasets.fashion_mnist(rows=args.rows, queries=args.queries)
    else:
        name, base, queries, metric = datasets.synthetic(rows=args.rows or 1_000_000, dim=args.dim,
                                                          queries=args.queries)
    metric = args.metric or metric
    opclass, op = OPCLASS[metric]
    n, dim = base.shape
    nq = queries.shape[0]
    plain = args.storage == "plain" and 8 + 4 * dim < 8000
    log(f"SQ8 benchmark: {name}, {n:,} x {dim}, {nq} queries, {metric}, m = {args.m}, "
        f"ef_construction = {args.ef_construction}, {args.threads} build thread(s), "
        f"maintenance_work_mem {args.maintenance_work_mem}, indexes {', '.join(quants)}, "
        f"vector column storage {'plain' if plain else 'default (TOAST above 2 kB)'}; "
        f"command: bench/sq8_bench.sh {' '.join(sys.argv[1:])}")
    cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "cache")
    os.makedirs(cache, exist_ok=True)
    t0 = time.perf_counter()
    _, gt_kth = datasets.exact_knn(base, queries, K, metric, cache_dir=cache, key=f"{name}-{n}-{nq}-{K}-{metric}")
    log(f"  exact results: {time.perf_counter() - t0:.1f} s (cached in bench/out/cache)")
    qtexts = [hb.vector_text(q) for q in queries]

    hb.ensure_database()
    tables = {q: f"items_{q}" for q in quants}
    loads = {}
    with hb.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_queries, " + ", ".join(f"items_{q}" for q in QUANTS))
        conn.execute(f"CREATE TABLE bench_queries (id int, v vector({dim}))")
        hb.copy_binary(conn, "bench_queries", queries)
        for q, t in tables.items():
            conn.execute(f"CREATE TABLE {t} (id int, v vector({dim}))")
            if plain:
                conn.execute(f"ALTER TABLE {t} ALTER COLUMN v SET STORAGE PLAIN")
            t0 = time.perf_counter()
            hb.copy_binary(conn, t, base)
            loads[q] = time.perf_counter() - t0
            log(f"  load {t}: {loads[q]:.1f} s ({n / loads[q]:,.0f} rows/s), "
                f"table {conn.execute(f'SELECT pg_total_relation_size({chr(39)}{t}{chr(39)})').fetchone()[0] / 2**20:,.0f} MB")
            conn.execute(f"VACUUM ANALYZE {t}")
            conn.execute(loop_fn(t, op))
        conn.execute("VACUUM ANALYZE bench_queries")

    builds = {}
    for q in quants:
        with hb.connect() as conn:
            builds[q] = build(conn, tables[q], opclass, args.m, args.ef_construction, q, args.threads,
                              args.maintenance_work_mem)
        secs, size, peak, notices = builds[q]
        spilled = any("no longer fits" in m for m in notices)
        log(f"  build {q}: {secs:.1f} s, index {size / 2**20:,.1f} MB ({size / n:,.0f} bytes/row), "
            f"peak backend memory +{peak:,.0f} MB, "
            f"{'SPILLED to the on-disk insertion path' if spilled else 'in memory (no spill notice)'}")
        for m in notices:
            if "no longer fits" in m or "rows in memory" in m:
                log(f"    {'phases' if 'rows in memory' in m else 'notice'}: {m}")

    res = {q: {ef: {"recall": [], "client": [], "loop": []} for ef in args.ef_search} for q in quants}
    for rep in range(args.repeat):
        for ef in args.ef_search:
            for q in (quants if rep % 2 == 0 else quants[::-1]):
                found, qps = client_run(tables[q], op, ef, qtexts)
                r = res[q][ef]
                r["recall"].append(datasets.recall(base, queries, found, gt_kth, K, metric))
                r["client"].append(qps)
                r["loop"].append(loop_run(tables[q], ef, nq))
        log(f"  round {rep + 1}/{args.repeat} done")

    rows = []
    curves = {q: {"loop": [], "client": []} for q in quants}
    both = len(quants) == 2
    for ef in args.ef_search:
        e = {q: {k: hb.median(v) for k, v in res[q][ef].items()} for q in quants}
        bufs = {q: buffers(tables[q], op, ef, qtexts, args.explain_sample) for q in quants}
        for q in quants:
            curves[q]["loop"].append((e[q]["recall"], e[q]["loop"]))
            curves[q]["client"].append((e[q]["recall"], e[q]["client"]))
        if both:
            rows.append([str(ef), report.fmt(e["none"]["recall"], 3), report.fmt(e["sq8"]["recall"], 3),
                         report.fmt(e["sq8"]["recall"] - e["none"]["recall"], 3),
                         report.fmt(e["none"]["loop"], 0), report.fmt(e["sq8"]["loop"], 0),
                         report.fmt(e["sq8"]["loop"] / e["none"]["loop"], 2),
                         report.fmt(e["none"]["client"], 0), report.fmt(e["sq8"]["client"], 0),
                         report.fmt(e["sq8"]["client"] / e["none"]["client"], 2),
                         report.fmt(bufs["none"], 0), report.fmt(bufs["sq8"], 0)])
        else:
            q = quants[0]
            rows.append([str(ef), report.fmt(e[q]["recall"], 3), report.fmt(e[q]["loop"], 0),
                         report.fmt(e[q]["client"], 0), report.fmt(bufs[q], 0)])
    if both:
        header = ["ef_search", "recall none", "recall sq8", "sq8 - none", "in-server q/s none", "in-server q/s sq8",
                  "ratio", "client q/s none", "client q/s sq8", "ratio", "buffers none", "buffers sq8"]
    else:
        q = quants[0]
        header = ["ef_search", f"recall@{K} {q}", f"in-server q/s {q}", f"client q/s {q}", f"buffers {q}"]
    log("")
    log(report.markdown_table(header, rows))
    log("")
    for q in quants:
        secs, size, peak, _ = builds[q]
        log(f"- {q}: load {loads[q]:.1f} s, build {secs:.1f} s, peak backend memory during the build "
            f"+{peak:,.0f} MB, index {size / 2**20:,.1f} MB ({size / n:,.0f} bytes/row)")
    if both:
        (bs_n, size_n, peak_n, _), (bs_s, size_s, peak_s, _) = builds["none"], builds["sq8"]
        log(f"- index size: none {size_n / 2**20:,.1f} MB, sq8 {size_s / 2**20:,.1f} MB "
            f"(ratio {size_s / size_n:.2f})")
        log(f"- build: none {bs_n:.1f} s, sq8 {bs_s:.1f} s (ratio {bs_s / bs_n:.2f}); peak backend memory "
            f"none +{peak_n:,.0f} MB, sq8 +{peak_s:,.0f} MB")
    for q in quants:
        reached = [c[0] for ef, c in zip(args.ef_search, curves[q]["loop"]) if c[0] >= 0.95]
        first = next((ef for ef, c in zip(args.ef_search, curves[q]["loop"]) if c[0] >= 0.95), None)
        log(f"- {q}: recall@{K} >= 0.95 " + (f"from ef_search {first} (recall {reached[0]:.3f})" if first
                                             else "at no ef_search of the sweep"))
    for kind in ("loop", "client"):
        label = "in-server loop" if kind == "loop" else "1 client connection"
        at = {q: qps_at_recall(curves[q][kind], 0.95) for q in quants}
        if both and at["none"] and at["sq8"]:
            log(f"- q/s at recall 0.95 ({label}): none {at['none']:,.0f}, sq8 {at['sq8']:,.0f} "
                f"(ratio {at['sq8'] / at['none']:.2f})")
        else:
            log(f"- q/s at recall 0.95 ({label}): " + ", ".join(
                f"{q} {at[q]:,.0f}" if at[q] else f"{q} not bracketed by the ef_search sweep" for q in quants))
    with hb.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_queries, " + ", ".join(tables.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
