"""The asynchronous API (asyncpg pool): AsyncDatabase and AsyncClient."""

import asyncio
import json
import os
import tempfile
import unittest
from unittest import mock

import asyncpg
import numpy as np

import vecext
from vecext import errors
from helpers import DSN, admin, drop, exact_knn, exact_sql, float32_bits, isclose, unique


def data(n, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


class Base(unittest.IsolatedAsyncioTestCase):
    metric = "l2"
    dim = 8

    async def asyncSetUp(self):
        self.name = unique("async")
        self.db = await vecext.AsyncDatabase(DSN, self.name, dim=self.dim, metric=self.metric).open()

    async def asyncTearDown(self):
        await self.db.close()
        drop(self.name)


class OpenAndErrors(unittest.IsolatedAsyncioTestCase):
    async def test_create_open_detect(self):
        name = unique("aopen")
        try:
            async with vecext.AsyncDatabase(DSN, name, dim=6, metric="ip", m=8, ef_construction=32) as db:
                self.assertEqual((db.dim, db.metric), (6, "ip"))
            async with vecext.AsyncDatabase(DSN, name) as db:
                self.assertEqual((db.dim, db.metric, db.info.m, db.info.ef_construction), (6, "ip", 8, 32))
            with self.assertRaises(errors.DimensionMismatchError):
                await vecext.AsyncDatabase(DSN, name, dim=7).open()
            with self.assertRaises(errors.IncompatibleCollectionError):
                await vecext.AsyncDatabase(DSN, name, metric="l2").open()
            db = vecext.AsyncDatabase(DSN, name)
            self.assertIn("not open", repr(db))
            with self.assertRaises(errors.VecextError):
                await db.count()
            await db  # awaiting opens it
            self.assertEqual(await db.count(), 0)
            await db.close()
        finally:
            drop(name)

    async def test_not_found_and_bad_names(self):
        with self.assertRaises(errors.CollectionNotFoundError) as cm:
            await vecext.AsyncDatabase(DSN, unique("nope")).open()
        self.assertEqual(cm.exception.sqlstate, "42P01")
        with self.assertRaises(TypeError):
            vecext.AsyncDatabase(DSN, unique("q"), dim=3, quantize="yes")
        with self.assertRaises(errors.InvalidNameError):
            await vecext.AsyncDatabase(DSN, "Bad Name", dim=3).open()


class Writes(Base):
    async def test_add_get_upsert(self):
        v = np.arange(8, dtype=np.float32)
        await self.db.add("a", v, {"k": 1})
        await self.db.add("b", list(range(8)), document="some text")
        rec = await self.db.get("a")
        self.assertTrue(np.array_equal(rec.embedding, v))
        self.assertEqual(rec.embedding.dtype, np.float32)
        self.assertEqual((rec.metadata, rec.document), ({"k": 1}, None))
        self.assertEqual((await self.db.get("b")).document, "some text")
        self.assertIsNone(await self.db.get("zz"))
        with self.assertRaises(errors.DuplicateIdError) as cm:
            await self.db.add("a", v)
        self.assertEqual(cm.exception.sqlstate, "23505")
        await self.db.upsert("a", v * 2, {"k": 2})
        rec = await self.db.get("a")
        self.assertEqual((rec.metadata, rec.embedding.tolist()), ({"k": 2}, (v * 2).tolist()))

    async def test_wrong_dimension(self):
        with self.assertRaises(errors.DimensionMismatchError):
            await self.db.add("a", [1, 2])
        with self.assertRaises(errors.DimensionMismatchError):
            await self.db.search(np.ones(3))
        # server-side check, through asyncpg
        async with self.db.pool.acquire() as conn:
            with self.assertRaises(errors.DimensionMismatchError) as cm:
                async with vecext.aio._Translated():
                    await conn.execute(f"INSERT INTO {self.name} (id, embedding) VALUES ('x', $1::vector)",
                                       vecext.Vector([1, 2]))
        self.assertEqual(cm.exception.sqlstate, "22000")
        self.assertIsInstance(cm.exception.__cause__, asyncpg.PostgresError)

    async def _many(self, n, copy):
        self.db.copy_threshold = 1 if copy else 10**9
        X = data(n, 8, seed=n)
        ids = [f"id{i}" for i in range(n)]
        self.assertEqual(await self.db.add_many(ids, X, [{"i": i} for i in range(n)]), n)
        for r in await self.db.get(ids[:4]):
            self.assertEqual(float32_bits(r.embedding), float32_bits(X[int(r.id[2:])]))
        with self.assertRaises(errors.DuplicateIdError):
            await self.db.add_many(["new", ids[1]], X[:2])
        self.assertIsNone(await self.db.get("new"))
        Y = data(n, 8, seed=n + 1)
        self.assertEqual(await self.db.upsert_many(ids[:10] + ["x", "x"], list(Y[:10]) + [Y[0], Y[1]],
                                                   [{"u": 1}] * 12), 11)
        self.assertEqual(await self.db.count(), n + 1)
        self.assertEqual(await self.db.count({"u": 1}), 11)
        self.assertEqual(float32_bits((await self.db.get("x")).embedding), float32_bits(Y[1]))

    async def test_many_small(self):
        await self._many(30, copy=False)

    async def test_many_copy(self):
        await self._many(200, copy=True)

    async def test_update_delete_count_get(self):
        await self.db.add_many(["a", "b", "c", "d"], data(4, 8), [{"g": 1}, {"g": 2}, {"g": 1}, {"g": 3}])
        self.assertTrue(await self.db.update("a", metadata={"h": 1}, merge_metadata=True))
        self.assertEqual((await self.db.get("a")).metadata, {"g": 1, "h": 1})
        self.assertTrue(await self.db.update("a", vector=np.ones(8), document="doc"))
        rec = await self.db.get("a")
        self.assertEqual((rec.embedding.tolist(), rec.document), ([1.0] * 8, "doc"))
        self.assertFalse(await self.db.update("zz", metadata={}))
        self.assertEqual([r.id for r in await self.db.get(where={"g": 1}, include_embedding=False)], ["a", "c"])
        self.assertEqual([r.id for r in await self.db.get(limit=2, offset=1)], ["b", "c"])
        self.assertTrue(await self.db.delete("a"))
        self.assertFalse(await self.db.delete("a"))
        self.assertEqual(await self.db.delete_many(["b"]), 1)
        self.assertEqual(await self.db.delete_many(where={"g": {"$gte": 3}}), 1)
        self.assertEqual(await self.db.count(), 1)
        with self.assertRaises(ValueError):
            await self.db.delete_many()
        with self.assertRaises(errors.FilterError):
            await self.db.count({"g": {"$like": 1}})


class Search(Base):
    metric = "cosine"
    dim = 16

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.X = data(300, 16, seed=5)
        await self.db.add_many([f"v{i}" for i in range(300)], self.X, [{"i": i, "odd": i % 2 == 1} for i in range(300)])

    async def test_search_matches_exact(self):
        hits = 0
        for q in data(10, 16, seed=6):
            want, d = exact_knn(self.X, q, "cosine", 10)
            got = await self.db.search(q, k=10, ef_search=200)
            hits += len({f"v{i}" for i in want} & {r.id for r in got})
            for r in got:
                self.assertTrue(isclose(r.distance, d[int(r.id[1:])], 1e-4))
        self.assertGreaterEqual(hits / 100, 0.95)

    async def test_where_max_distance_ef_search(self):
        got = await self.db.search(self.X[0], k=20, where={"odd": False})
        self.assertEqual(len(got), 20)
        self.assertTrue(all(not r.metadata["odd"] for r in got))
        got = await self.db.search(self.X[0], k=10, max_distance=1e-6)
        self.assertEqual([r.id for r in got], ["v0"])
        before = await self.db.pool.fetchval("SHOW hnsw.ef_search")
        self.assertEqual(len(await self.db.search(self.X[0], k=5, ef_search=77)), 5)
        p = vecext.filters.Params("asyncpg")
        rows = await self.db._fetch("SELECT current_setting('hnsw.ef_search')", p, ef_search=77)
        self.assertEqual(rows[0][0], "77")
        async with self.db.pool.acquire() as conn:  # min_size 1: the same connection
            self.assertEqual(await conn.fetchval("SHOW hnsw.ef_search"), before)

    async def test_search_many_one_statement(self):
        Q = data(5, 16, seed=7)
        calls = []
        real = asyncpg.Connection.fetch

        async def spy(conn, query, *args, **kw):
            calls.append(query)
            return await real(conn, query, *args, **kw)

        with mock.patch.object(asyncpg.Connection, "fetch", spy):
            many = await self.db.search_many(Q, k=4)
        self.assertEqual(len(calls), 1)
        self.assertIn("LATERAL", calls[0])
        for q, got in zip(Q, many):
            self.assertEqual([r.id for r in got], [r.id for r in await self.db.search(q, k=4)])

    async def test_gather_runs_concurrently_on_the_pool(self):
        Q = data(40, 16, seed=8)
        sequential = [await self.db.search(q, k=5) for q in Q]
        held = 0
        peak = 0
        real_acquire = asyncpg.pool.Pool.acquire

        class Counting:
            def __init__(self, ctx):
                self.ctx = ctx

            async def __aenter__(self):
                nonlocal held, peak
                conn = await self.ctx.__aenter__()
                held += 1
                peak = max(peak, held)
                return conn

            async def __aexit__(self, *exc):
                nonlocal held
                held -= 1
                return await self.ctx.__aexit__(*exc)

        def acquire(pool, *a, **kw):
            return Counting(real_acquire(pool, *a, **kw))

        with mock.patch.object(asyncpg.pool.Pool, "acquire", acquire):
            together = await asyncio.gather(*(self.db.search(q, k=5) for q in Q))
        self.assertEqual([[r.id for r in x] for x in together], [[r.id for r in x] for x in sequential])
        self.assertGreater(peak, 1)
        self.assertLessEqual(peak, 4)

    async def test_mmr(self):
        q = self.X[0]
        plain = await self.db.search(q, k=4)
        same = await self.db.max_marginal_relevance_search(q, k=4, lambda_mult=1.0)
        self.assertEqual([r.id for r in same], [r.id for r in plain])
        div = await self.db.max_marginal_relevance_search(q, k=4, fetch_k=30, lambda_mult=0.2)
        self.assertEqual(div[0].id, "v0")
        self.assertEqual(len({r.id for r in div}), 4)


class DocumentsAndMaintenance(Base):
    async def test_keyword_hybrid(self):
        await self.db.add_many(["a", "b", "c"], [np.eye(8)[0], np.eye(8)[1], np.eye(8)[2]], None,
                               ["red apples and green apples", "a red car", None])
        kw = await self.db.keyword_search("apple")
        self.assertEqual([r.id for r in kw], ["a"])
        self.assertEqual((await self.db.keyword_search("red", where={"x": 1})), [])
        hy = await self.db.hybrid_search("car", np.eye(8)[0], k=3)
        self.assertEqual([r.id for r in hy][:2], ["b", "a"])
        self.assertTrue(isclose(hy[0].score, 1 / 61 + 1 / 62, 1e-9))

    async def test_compact_stats_export_import(self):
        X = data(120, 8, seed=9)
        X[0, :2] = [-0.0, 1e-45]
        await self.db.add_many([f"i{i}" for i in range(120)], X, [{"i": i} for i in range(120)])
        await self.db.delete_many([f"i{i}" for i in range(1, 120, 3)])
        await self.db.compact()
        await self.db.compact(reindex=True)
        s = await self.db.stats()
        self.assertEqual((s["count"], s["index"]["elements"], s["metric"]), (80, 80, "l2"))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.jsonl")
            self.assertEqual(await self.db.export_json(path), 80)
            with open(path) as f:
                self.assertEqual(json.loads(f.readline())["id"], "i0")
            other = unique("aimp")
            try:
                async with vecext.AsyncDatabase(DSN, other, dim=8, metric="l2") as db2:
                    db2.copy_threshold = 10
                    self.assertEqual(await db2.import_json(path, batch_size=50), 80)
                    a = {r.id: r for r in await self.db.get()}
                    b = {r.id: r for r in await db2.get()}
                    self.assertEqual(set(a), set(b))
                    for k in a:
                        self.assertEqual(float32_bits(a[k].embedding), float32_bits(b[k].embedding))
                        self.assertEqual(a[k].metadata, b[k].metadata)
            finally:
                drop(other)


class Quantized(unittest.IsolatedAsyncioTestCase):
    """quantize=True on the async client: SQ8 index, exact results, quantized_search per call."""

    n = 2000  # enough rows for the planner to prefer the index

    async def asyncSetUp(self):
        self.X = data(self.n, 16, seed=41)
        self.plain_name, self.sq8_name = unique("aplain"), unique("asq8")
        self.client = await vecext.AsyncClient(DSN, min_size=1, max_size=2).open()
        self.plain = await self.client.create_collection(self.plain_name, dim=16, metric="l2")
        self.sq8 = await self.client.create_collection(self.sq8_name, dim=16, metric="l2", quantize=True)
        ids = [f"v{i}" for i in range(self.n)]
        for db in (self.plain, self.sq8):
            await db.add_many(ids, self.X, [{"i": i} for i in range(self.n)])
            await db.compact()

    async def asyncTearDown(self):
        await self.client.close()
        drop(self.plain_name, self.sq8_name)

    async def test_same_ids_exact_distances_stats(self):
        s = await self.sq8.stats()
        self.assertEqual((s["quantize"], s["index"]["quantization"], s["index"]["elements"]), (True, "sq8", self.n))
        self.assertEqual((await self.plain.stats())["index"]["quantization"], "none")
        for q in data(8, 16, seed=42):
            exact = exact_sql(self.sq8_name, q, "<->", 10)
            got = await self.sq8.search(q, k=10, ef_search=200)
            ref = await self.plain.search(q, k=10, ef_search=200)
            self.assertEqual([r.id for r in got], [r.id for r in ref])
            self.assertEqual([(r.id, r.distance) for r in got], [tuple(e) for e in exact])
        Q = data(3, 16, seed=43)
        many = await self.sq8.search_many(Q, k=5, ef_search=200, quantized_search=True)
        for q, got in zip(Q, many):
            self.assertEqual([r.id for r in got], [e[0] for e in exact_sql(self.sq8_name, q, "<->", 5)])

    async def test_quantized_search_off(self):
        q = self.X[7]
        with self.assertRaises(errors.FeatureNotAvailableError) as cm:
            await self.sq8.search(q, k=5, ef_search=50, quantized_search=False)
        e = cm.exception
        self.assertEqual(e.sqlstate, "0A000")
        self.assertIn("stores SQ8 codes only", str(e))
        self.assertIn("quantized_search", e.detail or "")
        self.assertIsInstance(e.__cause__, asyncpg.exceptions.FeatureNotSupportedError)
        with self.assertRaises(errors.FeatureNotAvailableError):
            await self.sq8.search_many([q, q], k=5, quantized_search=False)
        # concurrent calls on the pool: each setting stays in its own transaction
        outcomes = await asyncio.gather(*(self.sq8.search(q, k=1, quantized_search=(i % 2 == 0))
                                          for i in range(8)), return_exceptions=True)
        for i, o in enumerate(outcomes):
            if i % 2 == 0:
                self.assertEqual(o[0].id, "v7")
            else:
                self.assertIsInstance(o, errors.FeatureNotAvailableError)
        for _ in range(2):  # both pooled connections: back to the session's setting, idle
            async with self.client.pool.acquire() as conn:
                self.assertFalse(conn.is_in_transaction())
                self.assertEqual(await conn.fetchval("SHOW hnsw.quantized_search"), "on")
        self.assertEqual((await self.sq8.search(q, k=1))[0].id, "v7")
        plain_off = await self.plain.search(q, k=5, ef_search=100, quantized_search=False)
        self.assertEqual([r.id for r in plain_off], [r.id for r in await self.plain.search(q, k=5, ef_search=100)])

    async def test_reopen_compact_and_limits(self):
        async with vecext.AsyncDatabase(DSN, self.sq8_name) as db:
            self.assertEqual((db.quantize, db.metric, db.dim), (True, "l2", 16))
        with self.assertRaises(errors.IncompatibleCollectionError):
            await vecext.AsyncDatabase(DSN, self.sq8_name, quantize=False).open()
        with self.assertRaises(errors.IncompatibleCollectionError):
            await self.client.get_or_create_collection(self.plain_name, quantize=True)
        infos = {c.name: c.quantize for c in await self.client.list_collections()}
        self.assertEqual((infos[self.sq8_name], infos[self.plain_name]), (True, False))
        self.assertTrue((await self.client.get_collection(self.sq8_name)).quantize)
        await self.sq8.delete_many([f"v{i}" for i in range(0, self.n, 4)])
        await self.sq8.compact(reindex=True)
        s = await self.sq8.stats()
        self.assertEqual((s["index"]["quantization"], s["index"]["elements"]), ("sq8", self.n * 3 // 4))
        q = self.X[9]
        got = await self.sq8.search(q, k=10, ef_search=200)
        self.assertEqual([(r.id, r.distance) for r in got], [tuple(e) for e in exact_sql(self.sq8_name, q, "<->", 10)])

        wide = unique("awide")
        X = data(3, 3072, seed=44)
        try:
            db = await self.client.create_collection(wide, dim=3072, quantize=True)
            await db.add_many(["a", "b", "c"], X)
            self.assertEqual((await db.search(X[1], k=1))[0].id, "b")
            self.assertEqual((await db.stats())["index"]["dimensions"], 3072)
        finally:
            drop(wide)
        with self.assertRaises(ValueError) as cm:
            await self.client.create_collection(wide, dim=3072)
        self.assertIn("at most 2000 dimensions", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            await vecext.AsyncDatabase(DSN, wide, dim=3072, quantize=False).open()
        self.assertIn("quantize=True", str(cm.exception))


class Closed(unittest.IsolatedAsyncioTestCase):
    async def test_closed_database(self):
        name = unique("aclosed")
        try:
            db = await vecext.AsyncDatabase(DSN, name, dim=2).open()
            await db.close()
            for coro in (lambda: db.search([1, 2]), lambda: db.add("a", [1, 2]), db.count, db.stats,
                         lambda: db.search_many([[1, 2]])):
                with self.subTest(coro=coro), self.assertRaises(errors.ConnectionClosedError):
                    await coro()
            with self.assertRaises(errors.ConnectionClosedError):
                await db.open()
        finally:
            drop(name)

    async def test_error_inside_ef_search_transaction(self):
        name = unique("aeftx")
        async with vecext.AsyncDatabase(DSN, name, dim=2, min_size=1, max_size=1) as db:
            drop(name)
            with self.assertRaises(errors.CollectionNotFoundError):
                await db.search([1, 2], ef_search=50)
            async with db.pool.acquire() as conn:
                self.assertFalse(conn.is_in_transaction())
                self.assertEqual(await conn.fetchval("SELECT 1"), 1)

    async def test_connect_failure(self):
        with self.assertRaises(errors.ConnectionFailedError) as cm:
            await vecext.AsyncDatabase("postgresql:///vecext_no_such_db", "x", dim=2).open()
        self.assertEqual(cm.exception.sqlstate, "3D000")
        with self.assertRaises(errors.ConnectionFailedError):
            await vecext.AsyncClient("postgresql:///vecext_no_such_db").open()

    async def test_file_errors(self):
        name = unique("afiles")
        try:
            async with vecext.AsyncDatabase(DSN, name, dim=2) as db:
                with tempfile.TemporaryDirectory() as tmp, self.assertRaises(IsADirectoryError):
                    await db.export_json(tmp)
                self.assertEqual(await db.count(), 0)
        finally:
            drop(name)

    async def test_closed_client(self):
        name = unique("acc")
        try:
            client = await vecext.AsyncClient(DSN).open()
            db = await client.create_collection(name, dim=2)
            await client.close()
            with self.assertRaises(errors.ConnectionClosedError):
                await db.count()
            with self.assertRaises(errors.ConnectionClosedError):
                await client.list_collections()
        finally:
            drop(name)

    async def test_terminated_backends(self):
        name = unique("aterm")
        try:
            async with vecext.AsyncDatabase(DSN, name, dim=2, min_size=2, max_size=2) as db:
                await db.add("a", [1, 2])
                async with db.pool.acquire() as conn:
                    pid = conn.get_server_pid()
                with admin() as c:
                    c.execute("SELECT pg_terminate_backend(%s)", [pid])
                await asyncio.sleep(0.1)
                outcomes = []
                for _ in range(3):
                    try:
                        outcomes.append((await db.search([1, 2], k=1))[0].id)
                    except errors.ConnectionClosedError as e:
                        outcomes.append(e.sqlstate or "closed")
                # a dead connection surfaces at most once as ConnectionClosedError; the pool replaces it
                self.assertEqual(outcomes[-1], "a")
                self.assertTrue(all(o in ("a", "57P01", "closed") for o in outcomes), outcomes)
        finally:
            drop(name)


class Client(unittest.IsolatedAsyncioTestCase):
    async def test_lifecycle(self):
        a, b = unique("acl"), unique("acl")
        try:
            async with vecext.AsyncClient(DSN) as client:
                db = await client.create_collection(a, dim=3, metric="ip", documents=True)
                self.assertEqual((db.dim, db.metric, db.info.documents), (3, "ip", True))
                with self.assertRaises(errors.CollectionExistsError):
                    await client.create_collection(a, dim=3)
                self.assertEqual((await client.get_collection(a)).metric, "ip")
                with self.assertRaises(errors.CollectionNotFoundError):
                    await client.get_collection(b)
                self.assertEqual((await client.get_or_create_collection(b, dim=4)).dim, 4)
                self.assertEqual((await client.get_or_create_collection(b)).dim, 4)
                with self.assertRaises(errors.DimensionMismatchError):
                    await client.get_or_create_collection(b, dim=5)
                names = [c.name for c in await client.list_collections()]
                self.assertIn(a, names)
                self.assertIn(b, names)
                await db.add("x", [1, 0, 0])
                self.assertEqual(await (await client.get_collection(a)).count(), 1)
                await client.delete_collection(a)
                self.assertNotIn(a, [c.name for c in await client.list_collections()])
                with self.assertRaises(errors.CollectionNotFoundError):
                    await client.delete_collection(a)
                with self.assertRaises(errors.InvalidNameError):
                    await client.create_collection("no-dash", dim=3)
        finally:
            drop(a, b)


if __name__ == "__main__":
    unittest.main()
