#!/usr/bin/python3
"""HNSW benchmark: vecext's hnsw index against exact search, in-process
hnswlib, and pgvector when it is installed.

Run it through bench/hnsw_bench.sh, which starts a throwaway cluster (and
stops it afterwards) and then runs this script with Debian's python3:

  bench/hnsw_bench.sh                                 Fashion-MNIST, m=16, ef_construction 200 and 64
  bench/hnsw_bench.sh --dataset synthetic --rows 200000
  bench/hnsw_bench.sh --quick                         CI-sized: both data sets, small
  bench/hnsw_bench.sh --build-threads 1,2 --ef-construction 64

This script alone uses the cluster named by the libpq variables (PGHOST,
PGPORT, PGUSER); it creates and drops its tables in database `vecext_bench`.

For each data set and ef_construction it prints: load time (COPY), index
build time per build thread count (max_parallel_maintenance_workers + 1) and
peak backend memory (anonymous RSS), index size; and for each ef_search:
recall@10 against exact results, queries/s on one connection with a
prepared statement (a thin client: libpq's exec_prepared through psycopg,
the vector in binary) and its p50/p99 latency, the same statement through a
C client (bench/knn_client.c, libpq, compiled on the fly with gcc): serially,
and in libpq pipeline mode with --pipeline-depth queries in flight on the one
connection; the same through psycopg's
cursor API (vector as text; the figure earlier versions reported), queries/s of a PL/pgSQL loop
over the query vectors inside the server (no client round trip), shared
buffer accesses per query (EXPLAIN (ANALYZE, BUFFERS) on a sample), and
queries/s with 2 concurrent connections; then in-process hnswlib with the
same m and ef_construction (build time, recall, queries/s with one thread)
and the ratios. Query measurements are repeated --repeat times, interleaved
over ef_search values, and the median is reported. Results go to
bench/out/hnsw_<data set>.md, .json and a recall-vs-queries/s PNG per
ef_construction. The numbers are measurements, never assertions.
"""

import argparse
import json
import os
import statistics
import struct
import sys
import threading
import time

import numpy as np
import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hnsw import datasets, report  # noqa: E402

DB = "vecext_bench"
K = 10


def log(msg):
    print(msg, flush=True)


# ---- connections and data ---------------------------------------------------

def connect(dbname=DB):
    conn = psycopg.connect(dbname=dbname, autocommit=True)
    return conn


def ensure_database(extension="vecext", dbname=DB):
    with psycopg.connect(dbname="postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            c.execute(f'CREATE DATABASE "{dbname}"')
    with connect(dbname) as c:
        c.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")


def copy_binary(conn, table, vectors, id_offset=0):
    """COPY (id int4, v vector) rows in binary format, built with numpy."""
    n, dim = vectors.shape
    row = np.dtype([("nfields", ">i2"), ("idlen", ">i4"), ("id", ">i4"), ("vlen", ">i4"),
                    ("dim", ">i2"), ("unused", ">i2"), ("x", ">f4", (dim,))])
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} (id, v) FROM STDIN (FORMAT binary)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
            step = max(1, 4_000_000 // (4 * dim))
            for start in range(0, n, step):
                stop = min(n, start + step)
                buf = np.empty(stop - start, dtype=row)
                buf["nfields"] = 2
                buf["idlen"] = 4
                buf["id"] = np.arange(start, stop) + id_offset
                buf["vlen"] = 4 + 4 * dim
                buf["dim"] = dim
                buf["unused"] = 0
                buf["x"] = vectors[start:stop]
                copy.write(buf.tobytes())
            copy.write(struct.pack(">h", -1))


def vector_text(v):
    return "[" + ",".join(repr(x) for x in v.tolist()) + "]"


def vector_binary(v):
    """The vector's binary form (vector_recv): int16 dim, int16 0, float4s, big-endian."""
    return struct.pack(">hh", v.shape[0], 0) + np.asarray(v, dtype=">f4").tobytes()


def load(conn, base, queries):
    dim = base.shape[1]
    conn.execute("DROP TABLE IF EXISTS items, bench_queries")
    conn.execute(f"CREATE TABLE items (id int, v vector({dim}))")
    conn.execute(f"CREATE TABLE bench_queries (id int, v vector({dim}))")
    t0 = time.perf_counter()
    copy_binary(conn, "items", base)
    t_load = time.perf_counter() - t0
    copy_binary(conn, "bench_queries", queries)
    t0 = time.perf_counter()
    conn.execute("VACUUM ANALYZE items")
    conn.execute("VACUUM ANALYZE bench_queries")
    t_vacuum = time.perf_counter() - t0
    return t_load, t_vacuum


# ---- index build ------------------------------------------------------------

class PeakRss:
    """Samples a process's anonymous RSS (kB) until stopped; keeps the peak."""

    def __init__(self, pid):
        self.path = f"/proc/{pid}/status"
        self.peak = 0
        self.base = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self):
        try:
            with open(self.path) as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._read())
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())


def build_index(conn, m, efc, threads, opclass="vector_l2_ops", mwm="8GB", keep_pruned="on"):
    conn.execute("DROP INDEX IF EXISTS items_v_idx")
    conn.execute(f"SET hnsw.build_keep_pruned = {keep_pruned}")
    conn.execute("CHECKPOINT")
    conn.execute(f"SET maintenance_work_mem = '{mwm}'")
    conn.execute(f"SET max_parallel_maintenance_workers = {threads - 1}")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    notices = []
    conn.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
    conn.execute("SET client_min_messages = debug1")  # the build's phase timings
    with PeakRss(pid) as rss:
        t0 = time.perf_counter()
        conn.execute(f"CREATE INDEX items_v_idx ON items USING hnsw (v {opclass}) "
                     f"WITH (m = {m}, ef_construction = {efc})")
        seconds = time.perf_counter() - t0
    conn.execute("RESET client_min_messages")
    size = conn.execute("SELECT pg_relation_size('items_v_idx')").fetchone()[0]
    phases = ""
    for severity, text in notices:
        if severity == "NOTICE":
            log(f"    NOTICE: {text}")
        elif text.startswith("hnsw build of") and "rows in memory" in text:
            phases = text.split(": ", 1)[1]
    return {"seconds": seconds, "peak_rss_mb": (rss.peak - rss.base) / 1024.0, "size": size, "phases": phases}


# ---- queries ----------------------------------------------------------------

QUERY = "SELECT id FROM items ORDER BY v <-> %s::vector LIMIT " + str(K)
# The same statement for libpq's extended protocol ($1 is bound as a vector).
QUERY_PQ = ("SELECT id FROM items ORDER BY v <-> $1 LIMIT " + str(K)).encode()

LOOP_FN = """
CREATE OR REPLACE FUNCTION bench_loop(k int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  q vector;
  r record;
  n bigint := 0;
BEGIN
  FOR q IN SELECT v FROM bench_queries ORDER BY id LOOP
    FOR r IN SELECT id FROM items ORDER BY v <-> q LIMIT k LOOP
      n := n + 1;
    END LOOP;
  END LOOP;
  RETURN n;
END $$"""


def session(ef):
    conn = connect()
    conn.execute("SET enable_seqscan = off")  # measure the index, not the planner
    conn.execute(f"SET hnsw.ef_search = {ef}")
    return conn


class PreparedKnn:
    """The k-NN statement prepared once on a connection and run through
    psycopg's libpq binding (pgconn.exec_prepared): the query vector is sent
    in binary (as pgvector's client libraries send it) and the ids come back
    in binary. This is a thin client: a few microseconds of Python per query
    (psycopg's cursor layer costs about 85 us more per query, which shows in
    the psycopg column)."""

    def __init__(self, conn, name=b"bench_knn"):
        self.pg = conn.pgconn
        self.name = name
        oid = conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0]
        res = self.pg.prepare(name, QUERY_PQ, [oid])
        if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise RuntimeError(res.error_message.decode(errors="replace"))

    def run(self, qbin):
        res = self.pg.exec_prepared(self.name, [qbin], param_formats=[1], result_format=1)
        if res.status != psycopg.pq.ExecStatus.TUPLES_OK:
            raise RuntimeError(res.error_message.decode(errors="replace"))
        return [int.from_bytes(res.get_value(i, 0), "big", signed=True) for i in range(res.ntuples)]


def run_queries(conn, qbins):
    """Runs every query once with a prepared statement (PreparedKnn); returns
    (ids per query, latencies in seconds, wall seconds)."""
    found, lat = [], []
    knn = PreparedKnn(conn)
    knn.run(qbins[0])  # warm
    t_start = time.perf_counter()
    for q in qbins:
        t0 = time.perf_counter()
        ids = knn.run(q)
        lat.append(time.perf_counter() - t0)
        found.append(ids)
    return found, lat, time.perf_counter() - t_start


def measure_single(ef, qbins):
    with session(ef) as conn:
        found, lat, wall = run_queries(conn, qbins)
    lat.sort()
    return {"found": found, "qps": len(qbins) / wall,
            "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


C_CLIENT = None  # path of the compiled bench/knn_client.c, or "" when it cannot be built
C_QUERIES = {}   # id(qbins) -> query file


def c_client(out_dir):
    """Compiles bench/knn_client.c (gcc, libpq) once; "" if that fails."""
    global C_CLIENT
    if C_CLIENT is None:
        import shutil
        import subprocess
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "knn_client.c")
        exe = os.path.join(out_dir, "knn_client")
        os.makedirs(out_dir, exist_ok=True)
        inc = subprocess.run(["pg_config", "--includedir"], capture_output=True, text=True).stdout.strip()
        r = subprocess.run([shutil.which("gcc") or "gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{inc}", "-o", exe, src,
                            "-lpq"], capture_output=True, text=True) if shutil.which("gcc") else None
        if r is None or r.returncode != 0:
            log("  (C client not built: " + (r.stderr.strip() if r is not None else "no gcc") + ")")
            C_CLIENT = ""
        else:
            C_CLIENT = exe
    return C_CLIENT


def measure_c(ef, qbins, out_dir, depth=0):
    """Queries/s of bench/knn_client.c on one connection: the same prepared
    statement with the vector in binary, serially (depth 0) or in libpq
    pipeline mode with `depth` queries in flight. Returns (q/s, ids per
    query) or (None, None) when the C client is unavailable."""
    import subprocess
    exe = c_client(out_dir)
    if not exe:
        return None, None
    qfile = C_QUERIES.get(id(qbins))
    if qfile is None:
        qfile = os.path.join(out_dir, f"knn_queries_{os.getpid()}.bin")
        with open(qfile, "wb") as f:
            f.write(b"".join(qbins))
        C_QUERIES[id(qbins)] = qfile
    env = dict(os.environ, PGDATABASE=DB)
    r = subprocess.run([exe, qfile, QUERY_PQ.decode(), "1", str(depth), "SET enable_seqscan = off",
                        f"SET hnsw.ef_search = {ef}"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    qps = float(r.stderr.strip().splitlines()[-1].split(":")[1].split()[0])
    found = [[int(x) for x in line.split()] for line in r.stdout.splitlines()]
    return qps, found


def measure_trivial(n=5000):
    """Queries/s of a trivial prepared statement (SELECT 1) through the same
    thin client: the client path's own cost per query, to set the client
    figures beside others measured with another client (the issue quotes
    about 11,000/s for its client on this machine)."""
    with connect() as conn:
        pg = conn.pgconn
        res = pg.prepare(b"bench_trivial", b"SELECT 1", [])
        if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise RuntimeError(res.error_message.decode(errors="replace"))
        for _ in range(100):
            pg.exec_prepared(b"bench_trivial", [], result_format=1)
        t0 = time.perf_counter()
        for _ in range(n):
            pg.exec_prepared(b"bench_trivial", [], result_format=1)
        return n / (time.perf_counter() - t0)


def measure_psycopg(ef, qtexts):
    """Queries/s through psycopg's cursor API, as earlier versions of this
    benchmark measured the single connection: conn.execute(..., prepare=True)
    with the vector as text, fetchall()."""
    with session(ef) as conn:
        conn.execute(QUERY, (qtexts[0],), prepare=True).fetchall()  # prepare + warm
        t0 = time.perf_counter()
        for q in qtexts:
            conn.execute(QUERY, (q,), prepare=True).fetchall()
        return len(qtexts) / (time.perf_counter() - t0)


def measure_loop(ef, nq):
    with session(ef) as conn:
        conn.execute(LOOP_FN)
        conn.execute("SELECT bench_loop(%s)", (K,))  # warm the plan cache
        t0 = time.perf_counter()
        n = conn.execute("SELECT bench_loop(%s)", (K,)).fetchone()[0]
        wall = time.perf_counter() - t0
    if n != nq * K:
        log(f"    warning: the in-server loop returned {n} rows, expected {nq * K}")
    return nq / wall


def measure_concurrent(ef, qbins, clients=2):
    conns = [session(ef) for _ in range(clients)]
    knns = [PreparedKnn(c) for c in conns]
    for k in knns:
        k.run(qbins[0])
    barrier = threading.Barrier(clients + 1)

    def work(k):
        barrier.wait()
        for q in qbins:
            k.run(q)

    threads = [threading.Thread(target=work, args=(k,)) for k in knns]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return clients * len(qbins) / wall


def measure_buffers(ef, qtexts, sample):
    """Mean shared buffer hits (and reads) per query over a sample, and the
    plan's scan node (to show that the index is used)."""
    hits, reads, node = [], [], None
    with session(ef) as conn:
        for q in qtexts[:sample]:
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + QUERY, (q,)).fetchone()[0][0]["Plan"]
            hits.append(plan.get("Shared Hit Blocks", 0))
            reads.append(plan.get("Shared Read Blocks", 0))
            p = plan
            while p.get("Plans"):
                p = p["Plans"][0]
            node = p.get("Node Type", "?") + (f" using {p['Index Name']}" if "Index Name" in p else "")
    return statistics.mean(hits), statistics.mean(reads), node


# ---- hnswlib ----------------------------------------------------------------

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def hnswlib_build(base, m, efc, threads):
    import hnswlib
    before = rss_mb()
    index = hnswlib.Index(space="l2", dim=base.shape[1])
    index.init_index(max_elements=base.shape[0], M=m, ef_construction=efc, random_seed=100)
    index.set_num_threads(threads)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(base.shape[0]))
    seconds = time.perf_counter() - t0
    return index, {"seconds": seconds, "rss_mb": rss_mb() - before}


def hnswlib_search(index, queries, ef):
    index.set_ef(ef)
    index.set_num_threads(1)
    t0 = time.perf_counter()
    labels, _ = index.knn_query(queries, k=K, num_threads=1)
    wall = time.perf_counter() - t0
    return [list(r) for r in labels], queries.shape[0] / wall


# ---- one data set -----------------------------------------------------------

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def bench_dataset(args, name, base, queries, metric):
    n, dim = base.shape
    nq = queries.shape[0]
    log(f"\n== {name}: {n:,} x {dim}, {nq} queries, {metric}, k = {K}")
    t0 = time.perf_counter()
    cache = os.path.join(args.out, "cache")
    gt_ids, gt_kth = datasets.exact_knn(base, queries, K, metric, cache_dir=cache, key=f"{name}-{n}-{nq}-{K}")
    log(f"  exact neighbours: {time.perf_counter() - t0:.1f} s")
    qtexts = [vector_text(q) for q in queries]
    qbins = [vector_binary(q) for q in queries]

    ensure_database()
    with connect() as conn:
        t_load, t_vacuum = load(conn, base, queries)
        table_size = conn.execute("SELECT pg_total_relation_size('items')").fetchone()[0]
    log(f"  load (binary COPY): {t_load:.1f} s ({n / t_load:,.0f} rows/s), table {table_size / 2**20:,.0f} MB; "
        f"VACUUM ANALYZE {t_vacuum:.1f} s")

    results = {"dataset": name, "rows": n, "dim": dim, "queries": nq, "k": K, "m": args.m,
               "load_s": t_load, "table_bytes": table_size, "runs": []}
    md = [f"# HNSW benchmark: {name}", "",
          f"{n:,} vectors x {dim} dimensions, {nq} queries, {metric}, recall@{K} against exact results. "
          f"Command: `bench/hnsw_bench.sh {' '.join(sys.argv[1:])}`", "",
          f"- load (binary COPY): {t_load:.1f} s; table {table_size / 2**20:,.0f} MB"]

    for efc in args.ef_construction:
        log(f"\n  -- m = {args.m}, ef_construction = {efc}")
        run = {"ef_construction": efc, "builds": [], "hnswlib_builds": [], "ef": {}}
        # Builds, interleaved with hnswlib's for each thread count; the last index is kept.
        hl_index = None
        for rep in range(args.build_repeat):
            for threads in args.build_threads:
                with connect() as conn:
                    b = build_index(conn, args.m, efc, threads, keep_pruned=args.build_keep_pruned)
                b["threads"] = threads
                run["builds"].append(b)
                log(f"    vecext build, {threads} thread(s): {b['seconds']:.1f} s, index {b['size'] / 2**20:,.0f} MB, "
                    f"peak backend memory +{b['peak_rss_mb']:,.0f} MB")
                if b["phases"]:
                    log(f"      ({b['phases']})")
                if not args.no_hnswlib:
                    hl_index = None
                    hl_index, hb = hnswlib_build(base, args.m, efc, threads)
                    hb["threads"] = threads
                    run["hnswlib_builds"].append(hb)
                    log(f"    hnswlib build, {threads} thread(s): {hb['seconds']:.1f} s "
                        f"(process memory +{hb['rss_mb']:,.0f} MB)")
        # Queries: repeat, interleaved over ef_search.
        per_ef = {ef: {"recall": [], "qps": [], "c_qps": [], "c_pipe": [], "psycopg": [], "p50": [], "p99": [], "loop": [], "conc": [],
                       "hl_recall": [], "hl_qps": []} for ef in args.ef_search}
        for rep in range(args.repeat):
            for ef in args.ef_search:
                r = per_ef[ef]
                s = measure_single(ef, qbins)
                r["recall"].append(datasets.recall(base, queries, s["found"], gt_kth, K, metric))
                r["qps"].append(s["qps"])
                r["p50"].append(s["p50_ms"])
                r["p99"].append(s["p99_ms"])
                c_qps, c_found = measure_c(ef, qbins, args.out)
                if c_qps is not None:
                    r["c_qps"].append(c_qps)
                    if c_found != s["found"]:
                        log(f"    warning: the C client's results differ from the Python client's at ef_search {ef}")
                    p_qps, p_found = measure_c(ef, qbins, args.out, depth=args.pipeline_depth)
                    r["c_pipe"].append(p_qps)
                    if p_found != s["found"]:
                        log(f"    warning: the pipelined C client's results differ from the Python client's at ef_search {ef}")
                r["psycopg"].append(measure_psycopg(ef, qtexts))
                r["loop"].append(measure_loop(ef, nq))
                r["conc"].append(measure_concurrent(ef, qbins))
                if hl_index is not None:
                    found, qps = hnswlib_search(hl_index, queries, ef)
                    r["hl_recall"].append(datasets.recall(base, queries, found, gt_kth, K, metric))
                    r["hl_qps"].append(qps)
            log(f"    query round {rep + 1}/{args.repeat} done")
        trivial = median([measure_trivial() for _ in range(3)])
        run["trivial_qps"] = trivial
        rows = []
        for ef in args.ef_search:
            r = per_ef[ef]
            hits, reads, node = measure_buffers(ef, qtexts, args.explain_sample)
            e = {k: (median(v) if v else None) for k, v in r.items()}
            e["buffers"] = hits + reads
            e["buffer_reads"] = reads
            e["plan"] = node
            run["ef"][ef] = e
            ratio = e["loop"] / e["hl_qps"] if e.get("hl_qps") else None
            rows.append([str(ef), report.fmt(e["recall"], 3), report.fmt(e["qps"], 0), report.fmt(e["c_qps"], 0),
                         report.fmt(e["c_pipe"], 0), report.fmt(e["psycopg"], 0),
                         report.fmt(e["p50"], 2),
                         report.fmt(e["p99"], 2), report.fmt(e["loop"], 0), report.fmt(e["buffers"], 0),
                         report.fmt(e["conc"], 0), report.fmt(e["hl_recall"], 3), report.fmt(e["hl_qps"], 0),
                         report.fmt(ratio, 2)])
        plan = run["ef"][args.ef_search[0]]["plan"]
        header = ["ef_search", "recall@10", "q/s 1 conn", "q/s 1 conn C", f"q/s 1 conn C pipelined ({args.pipeline_depth})",
                  "q/s psycopg", "p50 ms", "p99 ms", "q/s in-server", "buffers/query",
                  "q/s 2 conns", "hnswlib recall", "hnswlib q/s", "in-server / hnswlib"]
        table = report.markdown_table(header, rows)
        builds = "; ".join(f"{b['threads']} thread(s) {b['seconds']:.1f} s (peak +{b['peak_rss_mb']:,.0f} MB)"
                           for b in run["builds"])
        phases = "; ".join(f"{b['threads']} thread(s): {b['phases']}" for b in run["builds"] if b.get("phases"))
        hl_builds = "; ".join(f"{b['threads']} thread(s) {b['seconds']:.1f} s" for b in run["hnswlib_builds"])
        size = run["builds"][-1]["size"] if run["builds"] else 0
        ratios = []
        for threads in args.build_threads:
            ours = median([b["seconds"] for b in run["builds"] if b["threads"] == threads])
            theirs = median([b["seconds"] for b in run["hnswlib_builds"] if b["threads"] == threads])
            if ours and theirs:
                ratios.append(f"{threads} thread(s) {ours / theirs:.2f}")
        section = [f"\n## m = {args.m}, ef_construction = {efc}", "",
                   f"- vecext build: {builds}; index {size / 2**20:,.0f} MB",
                   f"- vecext build phases: {phases or '-'}",
                   f"- hnswlib build (in process): {hl_builds or 'skipped'}",
                   f"- build time vecext / hnswlib: {', '.join(ratios) or '-'}",
                   f"- plan: {plan}; buffers/query = shared hits + reads (mean of {args.explain_sample} "
                   f"EXPLAIN ANALYZE runs); q/s and latencies: median of {args.repeat} rounds",
                   f"- client path: a trivial prepared statement (SELECT 1) runs at {trivial:,.0f}/s on the same "
                   f"thin client ({1e6 / trivial:.0f} us per round trip)", "", table]
        log("\n".join(section))
        md.extend(section)
        png = os.path.join(args.out, f"hnsw_{name}_m{args.m}_efc{efc}.png")
        series = [
            ("vecext, 1 connection (prepared, binary)", [(run["ef"][ef]["recall"], run["ef"][ef]["qps"]) for ef in args.ef_search]),
            ("vecext, 1 connection (C client, prepared, binary)", [(run["ef"][ef]["recall"], run["ef"][ef]["c_qps"]) for ef in args.ef_search if run["ef"][ef]["c_qps"]]),
            ("vecext, 1 connection (psycopg cursor)", [(run["ef"][ef]["recall"], run["ef"][ef]["psycopg"]) for ef in args.ef_search]),
            ("vecext, in-server PL/pgSQL loop", [(run["ef"][ef]["recall"], run["ef"][ef]["loop"]) for ef in args.ef_search]),
            ("vecext, 2 connections", [(run["ef"][ef]["recall"], run["ef"][ef]["conc"]) for ef in args.ef_search]),
            ("hnswlib in process, 1 thread", [(run["ef"][ef]["hl_recall"], run["ef"][ef]["hl_qps"]) for ef in args.ef_search]),
        ]
        report.plot(png, f"{name} ({n:,} x {dim}), m={args.m}, ef_construction={efc}", series)
        md.append(f"\n![recall vs q/s]({os.path.basename(png)})")
        log(f"  plot: {png}")
        results["runs"].append(run)
        del hl_index

    md.append("\n" + pgvector_status())
    with open(os.path.join(args.out, f"hnsw_{name}.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, f"hnsw_{name}.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS items, bench_queries")
    for qfile in C_QUERIES.values():
        os.remove(qfile)
    C_QUERIES.clear()
    return results


def pgvector_status():
    with psycopg.connect(dbname="postgres", autocommit=True) as c:
        row = c.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if row is None:
        return ("pgvector: not installed in this cluster (no `vector` extension available), so it was not "
                "measured. With pgvector installed, the same SQL runs against it in another database.")
    return f"pgvector {row[0]} is available: run with --pgvector to measure it."


def parse_list(s, typ=int):
    return [typ(x) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic", "all"])
    ap.add_argument("--rows", type=int, default=None,
                    help="synthetic: number of vectors (default 1,000,000); fashion-mnist: use the first N")
    ap.add_argument("--dim", type=int, default=128, help="synthetic: dimensions")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=parse_list, default=[200, 64])
    ap.add_argument("--ef-search", type=parse_list, default=[10, 20, 40, 80, 160])
    ap.add_argument("--build-threads", type=parse_list, default=[2],
                    help="thread counts to build with (max_parallel_maintenance_workers + 1), e.g. 1,2")
    ap.add_argument("--build-repeat", type=int, default=1)
    ap.add_argument("--build-keep-pruned", default="on", choices=["on", "off"],
                    help="hnsw.build_keep_pruned for the builds (off: hnswlib's sparser level-0 lists)")
    ap.add_argument("--repeat", type=int, default=3, help="query rounds (median reported)")
    ap.add_argument("--pipeline-depth", type=int, default=8,
                    help="queries in flight for the C client's pipelined single-connection figure")
    ap.add_argument("--explain-sample", type=int, default=50)
    ap.add_argument("--no-hnswlib", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="CI-sized: both data sets small, ef_construction 64, one round")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    args = ap.parse_args()
    if args.quick:
        if args.dataset == "fashion-mnist" and "--dataset" not in sys.argv:
            args.dataset = "all"
        args.rows = args.rows or 10000
        args.queries = min(args.queries, 200)
        if "--ef-construction" not in sys.argv:
            args.ef_construction = [64]
        args.repeat = 1
        args.explain_sample = min(args.explain_sample, 10)
    os.makedirs(args.out, exist_ok=True)

    log(f"vecext hnsw benchmark; server {os.environ.get('PGHOST', '?')}:{os.environ.get('PGPORT', '?')}")
    with psycopg.connect(dbname="postgres", autocommit=True) as c:
        log("  " + c.execute("SELECT version()").fetchone()[0])
        for g in ("shared_buffers", "max_parallel_maintenance_workers", "maintenance_work_mem"):
            log(f"  {g} = {c.execute(f'SHOW {g}').fetchone()[0]}")
    log(f"  {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    todo = []
    if args.dataset in ("fashion-mnist", "all"):
        todo.append(lambda: datasets.fashion_mnist(rows=args.rows if args.dataset == "fashion-mnist" or args.quick
                                                   else None, queries=args.queries))
    if args.dataset in ("synthetic", "all"):
        rows = args.rows if args.rows else 1_000_000
        todo.append(lambda: datasets.synthetic(rows=rows, dim=args.dim, queries=args.queries))
    for make in todo:
        name, base, queries, metric = make()
        bench_dataset(args, name, base, queries, metric)
    log("\n" + pgvector_status())
    return 0


if __name__ == "__main__":
    sys.exit(main())
