"""Compatibility: one table written and read through psycopg (text and binary,
sync and async, COPY) and asyncpg gives identical vectors, bit for bit, equal
to the server's own text and binary forms. And the package without numpy."""

import asyncio
import os
import subprocess
import sys
import textwrap
import unittest

import asyncpg
import numpy as np
import psycopg

import vecext
from vecext import vector as V
from helpers import DSN, admin, drop, float32_bits, unique

DIM = 12


def vectors():
    special = np.array([0.1, -0.0, 1e-45, 3.4028235e38, -3.4028235e38, 1.1754944e-38, 1e-05, 123456.79,
                        0.3, -1.5e-7, 16777217.0, 2.0 ** -126], dtype=np.float32)
    rng = np.random.default_rng(99)
    rand = (rng.standard_normal((6, DIM)) * 10.0 ** rng.integers(-20, 20, (6, DIM))).astype(np.float32)
    return [special] + list(rand)


class Compatibility(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = unique("compat")
        with admin() as c:
            c.execute(f"CREATE TABLE {cls.table} (writer text, n int, v vector({DIM}))")
        cls.vecs = vectors()
        cls.writers = []
        cls._write_psycopg()
        asyncio.run(cls._write_async())

    @classmethod
    def tearDownClass(cls):
        drop(cls.table)

    @classmethod
    def _write_psycopg(cls):
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            vecext.register_vector(conn)
            for n, v in enumerate(cls.vecs):
                conn.execute(f"INSERT INTO {cls.table} VALUES ('psycopg-text', %s, %t)", [n, v])
                conn.execute(f"INSERT INTO {cls.table} VALUES ('psycopg-binary', %s, %b)", [n, v])
                conn.execute(f"INSERT INTO {cls.table} VALUES ('psycopg-list', %s, %s)", [n, vecext.Vector(v.tolist())])
                conn.execute(f"INSERT INTO {cls.table} VALUES ('sql-literal', %s, %s::vector)", [n, V.to_text(v)])
            with conn.cursor() as cur:
                with cur.copy(f"COPY {cls.table} FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["text", "int4", "vector"])
                    for n, v in enumerate(cls.vecs):
                        cp.write_row(("psycopg-copy", n, v))
        cls.writers += ["psycopg-text", "psycopg-binary", "psycopg-list", "sql-literal", "psycopg-copy"]

    @classmethod
    async def _write_async(cls):
        aconn = await psycopg.AsyncConnection.connect(DSN or "", autocommit=True)
        try:
            await vecext.register_vector_async(aconn)
            for n, v in enumerate(cls.vecs):
                await aconn.execute(f"INSERT INTO {cls.table} VALUES ('psycopg-async-text', %s, %t)", [n, v])
                await aconn.execute(f"INSERT INTO {cls.table} VALUES ('psycopg-async-binary', %s, %b)", [n, v])
        finally:
            await aconn.close()
        conn = await asyncpg.connect(DSN)
        try:
            await vecext.register_vector_asyncpg(conn)
            for n, v in enumerate(cls.vecs):
                await conn.execute(f"INSERT INTO {cls.table} VALUES ('asyncpg', $1, $2)", n, v)
                await conn.execute(f"INSERT INTO {cls.table} VALUES ('asyncpg-list', $1, $2)", n, v.tolist())
            records = [("asyncpg-copy", n, v) for n, v in enumerate(cls.vecs)]
            await conn.copy_records_to_table(cls.table, records=records)
        finally:
            await conn.close()
        cls.writers += ["psycopg-async-text", "psycopg-async-binary", "asyncpg", "asyncpg-list", "asyncpg-copy"]

    def check(self, rows, how):
        seen = set()
        for writer, n, v in rows:
            with self.subTest(reader=how, writer=writer, n=n):
                self.assertIsInstance(v, np.ndarray)
                self.assertEqual(v.dtype, np.float32)
                self.assertEqual(float32_bits(v), float32_bits(self.vecs[n]))
            seen.add(writer)
        self.assertEqual(seen, set(self.writers))
        self.assertEqual(len(rows), len(self.writers) * len(self.vecs))

    def test_psycopg_text_and_binary_reads(self):
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            vecext.register_vector(conn)
            q = f"SELECT writer, n, v FROM {self.table}"
            self.check(conn.execute(q).fetchall(), "psycopg-text")
            with conn.cursor(binary=True) as cur:
                self.check(cur.execute(q).fetchall(), "psycopg-binary")

    def test_psycopg_async_reads(self):
        async def run():
            aconn = await psycopg.AsyncConnection.connect(DSN or "", autocommit=True)
            try:
                await vecext.register_vector_async(aconn)
                q = f"SELECT writer, n, v FROM {self.table}"
                cur = await aconn.execute(q)
                self.check(await cur.fetchall(), "psycopg-async-text")
                async with aconn.cursor(binary=True) as cur:
                    await cur.execute(q)
                    self.check(await cur.fetchall(), "psycopg-async-binary")
            finally:
                await aconn.close()
        asyncio.run(run())

    def test_asyncpg_reads(self):
        async def run():
            conn = await asyncpg.connect(DSN)
            try:
                await vecext.register_vector_asyncpg(conn)
                rows = await conn.fetch(f"SELECT writer, n, v FROM {self.table}")
                self.check([tuple(r) for r in rows], "asyncpg")
            finally:
                await conn.close()
        asyncio.run(run())

    def test_server_forms_match_ours(self):
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            rows = conn.execute(f"SELECT n, vector_send(v), v::text FROM {self.table} "
                                f"WHERE writer = 'asyncpg' ORDER BY n").fetchall()
        for n, raw, text in rows:
            self.assertEqual(bytes(raw), V.to_binary(self.vecs[n]))
            self.assertEqual(float32_bits(V.parse_text(text)), float32_bits(self.vecs[n]))

    def test_lists_when_asked(self):
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            vecext.register_vector(conn, use_numpy=False)
            v = conn.execute(f"SELECT v FROM {self.table} WHERE n = 0 LIMIT 1").fetchone()[0]
            self.assertIsInstance(v, list)
            self.assertEqual(float32_bits(v), float32_bits(self.vecs[0]))
            with conn.cursor(binary=True) as cur:
                v = cur.execute(f"SELECT v FROM {self.table} WHERE n = 0 LIMIT 1").fetchone()[0]
                self.assertIsInstance(v, list)

        async def run():
            conn = await asyncpg.connect(DSN)
            try:
                await vecext.register_vector_asyncpg(conn, use_numpy=False)
                return await conn.fetchval(f"SELECT v FROM {self.table} WHERE n = 1 LIMIT 1")
            finally:
                await conn.close()
        v = asyncio.run(run())
        self.assertIsInstance(v, list)
        self.assertEqual(float32_bits(v), float32_bits(self.vecs[1]))

    def test_arrays_of_vectors(self):
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            vecext.register_vector(conn)
            got = conn.execute("SELECT %s::vector[]", [[vecext.Vector([1, 2]), np.array([3, 4])]]).fetchone()[0]
            self.assertEqual([x.tolist() for x in got], [[1, 2], [3, 4]])

        async def run():
            conn = await asyncpg.connect(DSN)
            try:
                await vecext.register_vector_asyncpg(conn)
                return await conn.fetchval("SELECT $1::vector[]", [vecext.Vector([1, 2]), vecext.Vector([3, 4])])
            finally:
                await conn.close()
        self.assertEqual([x.tolist() for x in asyncio.run(run())], [[1, 2], [3, 4]])

    def test_register_without_extension(self):
        dsn = "dbname=template1" if DSN is None else DSN + " dbname=template1"
        with psycopg.connect(dsn, autocommit=True) as conn:
            with self.assertRaises(vecext.VecextError) as cm:
                vecext.register_vector(conn)
            self.assertEqual(cm.exception.sqlstate, "42704")


NO_NUMPY = r"""
import sys
sys.modules["numpy"] = None   # import numpy now fails
sys.path.insert(0, PYDIR)
import asyncio, vecext
from vecext import vector as V
from vecext.errors import InvalidVectorError, DimensionMismatchError
assert not V.HAVE_NUMPY
assert V.to_binary([1.0, -2.5]) == b"\x00\x02\x00\x00" + b"\x3f\x80\x00\x00" + b"\xc0\x20\x00\x00"
assert V.parse_binary(V.to_binary([0.5, 2])) == [0.5, 2.0]
assert V.parse_text("[1,2.5]") == [1.0, 2.5]
for bad in ([], [float("nan")], [1e39]):
    try: V.as_float32(bad); raise SystemExit("accepted %r" % (bad,))
    except InvalidVectorError: pass
try: V.as_float32([1, 2], 3); raise SystemExit("dim")
except DimensionMismatchError: pass
try: vecext.Database(None, NAME, dim=3, use_numpy=True); raise SystemExit("use_numpy=True without numpy")
except ImportError: pass
db = vecext.Database(None, NAME, dim=3, metric="cosine")
db.add_many(["a", "b", "c"], [[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]], [{"g": 1}, {"g": 2}, {"g": 1}])
db.copy_threshold = 1
db.upsert_many(["d"], [(0.1, 0.2, 0.3)])
rec = db.get("a")
assert rec.embedding == [1.0, 0.0, 0.0], rec
assert [r.id for r in db.search([1, 0, 0], k=2)] == ["a", "b"]
assert [r.id for r in db.max_marginal_relevance_search([1, 0, 0], k=2, lambda_mult=0.1)] == ["a", "c"]
assert [[r.id for r in x] for x in db.search_many([[1, 0, 0], [0, 0, 1]], k=1)] == [["a"], ["c"]]
db.close()
async def main():
    async with vecext.AsyncDatabase(None, NAME) as adb:
        r = await adb.get("d")
        assert isinstance(r.embedding, list) and len(r.embedding) == 3
        assert (await adb.search([0, 0, 1], k=1))[0].id == "c"
        await adb.add("e", [0, 1, 0])
asyncio.run(main())
print("no-numpy OK")
"""


class WithoutNumpy(unittest.TestCase):
    def test_package_without_numpy(self):
        name = unique("nonumpy")
        pydir = os.path.dirname(os.path.dirname(os.path.abspath(vecext.__file__)))
        script = f"PYDIR = {pydir!r}\nNAME = {name!r}\n" + textwrap.dedent(NO_NUMPY)
        try:
            proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        finally:
            drop(name)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("no-numpy OK", proc.stdout)


if __name__ == "__main__":
    unittest.main()
