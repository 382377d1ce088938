"""Python side of the command-line tool's suite (test/suites/60-cli.sh).

  cli_data.py source NAME             create collection NAME through the Python client
                                      with awkward ids, float4 edge values and metadata
  cli_data.py py-export NAME FILE     the Python client's export_json
  cli_data.py py-import NAME FILE     the Python client's import_json into NAME (created)
  cli_data.py py-open NAME DIM METRIC the Python client opens NAME (made by the tool) and
                                      finds its dim and metric
  cli_data.py docs SRC DST            SRC: a collection with documents (some NULL), DST: an
                                      empty one with documents, both through the Python client
  cli_data.py to-array IN OUT         JSON Lines -> one JSON array (records kept as written)
  cli_data.py random FILE N DIM       N random records (float32 values, shortest text)
  cli_data.py compat TOOL             the driver compatibility leg (see compat())

Connects with libpq defaults (PGHOST, PGPORT, PGDATABASE...). Every check
prints "PASS name" or "FAIL name: why"; the exit status is 1 if any failed.
"""

import asyncio
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import asyncpg  # noqa: E402
import psycopg  # noqa: E402

import vecext  # noqa: E402
from vecext import vector as V  # noqa: E402

DIM = 12

SPECIAL = np.array([0.1, -0.0, 1e-38, 3.4e38, -3.4028235e38, 1.1754944e-38, 1e-45, 1e-05, 123456.79,
                    16777217.0, 2.0 ** -126, 0.3], dtype=np.float32)

IDS = ["a", "", "quote\"q", "back\\slash", "new\nline", "tab\tcr\r", "unicode é ✓ 😀", "ctrl\x01\x1f",
       "x" * 500, "[1,2]", "{\"id\": 1}", "sp ace"]

failures = 0


def report(ok, name, why=""):
    global failures
    if ok:
        print(f"PASS {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {why}")


def bits(a):
    return np.asarray(a, dtype=np.float32).view(np.uint32).tolist()


def vectors(n, seed=7):
    """Random float32 vectors with exponents from subnormal to near FLT_MAX."""
    rng = np.random.default_rng(seed)
    exps = rng.integers(-44, 38, (n, DIM)).astype(np.float64)
    x = rng.uniform(1.0, 3.4, (n, DIM)) * 10.0 ** exps * rng.choice([-1.0, 1.0], (n, DIM))
    return x.astype(np.float32)


def metadata(i):
    m = {"i": i, "s": "line\nbreak \"q\" \\ é", "f": 0.1, "neg": -0.0, "big": 123456789012345678901234567890,
         "tiny": 1e-300, "huge": 1.7976931348623157e308, "list": [1, "two", None, True, False, {"k": []}],
         "nested": {"a": {"b": {"c": [i, i * 2]}}}, "ключ": "значение", "empty": {}}
    if i % 3 == 0:
        return {}
    if i % 5 == 0:
        return {"only": i}
    return m


def source(name):
    rows = 2000
    ids = IDS + [f"r{i:05d}" for i in range(rows)]
    vecs = [SPECIAL, -SPECIAL] + list(vectors(len(ids) - 2))
    metas = [metadata(i) for i in range(len(ids))]
    with vecext.Database(None, name, dim=DIM, metric="l2") as db:
        db.copy_threshold = 1
        n = db.upsert_many(ids, vecs, metas)
    print(f"created {name}: {n} rows")


def docs(src, dst):
    ids = [f"d{i:03d}" for i in range(50)]
    vecs = list(vectors(len(ids), seed=5))
    texts = [None if i % 4 == 0 else f"document {i}: \"quoted\"\nline\ttab é" for i in range(len(ids))]
    with vecext.Database(None, src, dim=DIM, metric="cosine", documents=True) as db:
        db.upsert_many(ids, vecs, [{"i": i} for i in range(len(ids))], texts)
    with vecext.Database(None, dst, dim=DIM, metric="cosine", documents=True):
        pass
    print(f"created {src} and {dst} with documents")


def py_export(name, path):
    with vecext.Database(None, name) as db:
        print(f"python export_json: {db.export_json(path)} rows")


def py_import(name, path):
    with vecext.Database(None, name, dim=DIM, metric="l2") as db:
        print(f"python import_json: {db.import_json(path)} rows")


def py_open(name, dim, metric):
    with vecext.Database(None, name) as db:
        report(db.dim == int(dim) and db.metric == metric, f"python opens {name}",
               f"dim {db.dim} metric {db.metric}")


def to_array(src, dst):
    with open(src, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    with open(dst, "w", encoding="utf-8") as f:
        f.write("[\n  " + ",\n  ".join(lines) + "\n]\n")


def random_file(path, n, dim):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((int(n), int(dim))).astype(np.float32)
    with open(path, "w") as f:
        for i, row in enumerate(x):
            # repr of a float32 through float: a decimal that reads back as the same float32
            f.write('{"id": "q%d", "vector": [%s], "metadata": {"n": %d}}\n'
                    % (i, ",".join(repr(float(v)) for v in row), i))


def compat(tool):
    """A table written through libpq binary COPY (the tool) reads back bit for
    bit through psycopg (text and binary, sync and async) and asyncpg, equal
    to the server's own binary and text forms; the tool's export reads back
    as the same float4 values in Python."""
    name = "compat_cli"
    vecs = [SPECIAL, -SPECIAL] + list(vectors(40, seed=3))
    ids = [f"c{i:03d}" for i in range(len(vecs))]
    path = f"/tmp/vecext-cli-compat-{os.getpid()}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, v in zip(ids, vecs):
            f.write(json.dumps({"id": i, "vector": [float(x) for x in v], "metadata": {"id": i}}) + "\n")
    try:
        p = subprocess.run([tool, "import", name, path, "--metric", "l2"], capture_output=True, text=True)
        report(p.returncode == 0, "tool import", p.stdout + p.stderr)
        want = {i: bits(v) for i, v in zip(ids, vecs)}
        q = f"SELECT id, embedding FROM {name} ORDER BY id"

        def check(rows, how):
            got = {r[0]: bits(r[1]) for r in rows}
            bad = [i for i in ids if got.get(i) != want[i]]
            report(len(rows) == len(ids) and not bad, f"read back through {how}",
                   f"{len(rows)} rows, mismatched: {bad[:3]}")

        with psycopg.connect("", autocommit=True) as conn:
            vecext.register_vector(conn)
            check(conn.execute(q).fetchall(), "psycopg text")
            with conn.cursor(binary=True) as cur:
                check(cur.execute(q).fetchall(), "psycopg binary")
            raw = conn.execute(f"SELECT id, vector_send(embedding), embedding::text FROM {name} ORDER BY id").fetchall()
            bad = [r[0] for r in raw if bytes(r[1]) != V.to_binary(want_vec(ids, vecs, r[0]))]
            report(not bad, "server binary form equals the Python encoding", str(bad[:3]))
            bad = [r[0] for r in raw if bits(V.parse_text(r[2])) != want[r[0]]]
            report(not bad, "server text form reads back bit for bit", str(bad[:3]))
            meta = conn.execute(f"SELECT count(*) FROM {name} WHERE metadata <> jsonb_build_object('id', id)")
            report(meta.fetchone()[0] == 0, "metadata through binary jsonb")

        async def run_async():
            aconn = await psycopg.AsyncConnection.connect("", autocommit=True)
            try:
                await vecext.register_vector_async(aconn)
                cur = await aconn.execute(q)
                check(await cur.fetchall(), "psycopg async text")
                async with aconn.cursor(binary=True) as cur:
                    await cur.execute(q)
                    check(await cur.fetchall(), "psycopg async binary")
            finally:
                await aconn.close()
            conn = await asyncpg.connect()
            try:
                await vecext.register_vector_asyncpg(conn)
                check([tuple(r) for r in await conn.fetch(q)], "asyncpg")
            finally:
                await conn.close()
        asyncio.run(run_async())

        p = subprocess.run([tool, "export", name], capture_output=True, text=True)
        report(p.returncode == 0, "tool export", p.stderr)
        got = {}
        for line in p.stdout.splitlines():
            # "-0" is negative zero (the server's text form); Python's json would read the integer 0
            rec = json.loads(line, parse_int=lambda t: -0.0 if t == "-0" else int(t))
            got[rec["id"]] = bits(np.array(rec["embedding"], dtype=np.float64).astype(np.float32))
        bad = [i for i in ids if got.get(i) != want[i]]
        report(not bad and len(got) == len(ids), "tool export parsed by Python json", str(bad[:3]))
    finally:
        os.unlink(path)
        with psycopg.connect("", autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def want_vec(ids, vecs, i):
    return vecs[ids.index(i)]


def main(argv):
    cmd, args = argv[1], argv[2:]
    {"source": source, "docs": docs, "py-export": py_export, "py-import": py_import, "py-open": py_open,
     "to-array": to_array, "random": random_file, "compat": compat}[cmd](*args)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
