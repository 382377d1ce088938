"""The synchronous API (psycopg 3): Database and Client, every method and error."""

import json
import os
import tempfile
import unittest
from unittest import mock

import numpy as np
import psycopg

import vecext
from vecext import errors
from helpers import DSN, admin, drop, exact_knn, exact_sql, float32_bits, isclose, unique, uses_index

RNG = np.random.default_rng(42)


def data(n, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


class Base(unittest.TestCase):
    metric = "cosine"
    dim = 8

    def setUp(self):
        self.name = unique("sync")
        self.db = vecext.Database(DSN, self.name, dim=self.dim, metric=self.metric)

    def tearDown(self):
        self.db.close()
        drop(self.name)


class CreateAndOpen(unittest.TestCase):
    def test_create_then_open_detects_dim_and_metric(self):
        for metric in ("cosine", "l2", "ip", "l1"):
            name = unique("open")
            try:
                with vecext.Database(DSN, name, dim=5, metric=metric, m=8, ef_construction=40) as db:
                    self.assertEqual((db.dim, db.metric), (5, metric))
                with vecext.Database(DSN, name) as db:
                    self.assertEqual((db.dim, db.metric, db.info.m, db.info.ef_construction), (5, metric, 8, 40))
                    self.assertFalse(db.info.documents)
            finally:
                drop(name)

    def test_table_shape(self):
        name = unique("shape")
        try:
            vecext.Database(DSN, name, dim=3, metric="ip").close()
            with admin() as c:
                cols = c.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                 "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum", [name]).fetchall()
                self.assertEqual(cols, [("id", "text"), ("embedding", "vector(3)"), ("metadata", "jsonb")])
                idx = [r[0] for r in c.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1",
                                               [name]).fetchall()]
                # the metadata column (default operator class jsonb_hnsw_ops) for in-index filters
                self.assertTrue(any("USING hnsw (embedding vector_ip_ops, metadata)" in d for d in idx), idx)
                self.assertTrue(any("USING gin (metadata jsonb_path_ops)" in d for d in idx), idx)
        finally:
            drop(name)

    def test_open_errors(self):
        name = unique("missing")
        with self.assertRaises(errors.CollectionNotFoundError) as cm:
            vecext.Database(DSN, name)
        self.assertEqual(cm.exception.sqlstate, "42P01")
        self.assertIsInstance(cm.exception, LookupError)
        try:
            vecext.Database(DSN, name, dim=4, metric="l2").close()
            with self.assertRaises(errors.DimensionMismatchError):
                vecext.Database(DSN, name, dim=5)
            with self.assertRaises(errors.IncompatibleCollectionError):
                vecext.Database(DSN, name, metric="cosine")
            with vecext.Database(DSN, name, dim=4, metric="l2") as db:
                self.assertEqual(db.metric, "l2")
        finally:
            drop(name)

    def test_bad_options(self):
        for kw, exc in (({"metric": "hamming"}, ValueError), ({"m": 1}, ValueError),
                        ({"m": 16, "ef_construction": 20}, ValueError), ({"dim": 0}, ValueError),
                        ({"dim": "3"}, ValueError)):
            args = {"dim": 3, **kw}
            with self.subTest(kw=kw), self.assertRaises(exc):
                vecext.Database(DSN, unique("bad"), **args)

    def test_incompatible_table(self):
        name = unique("plain")
        with admin() as c:
            c.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
        try:
            with self.assertRaises(errors.IncompatibleCollectionError):
                vecext.Database(DSN, name, dim=3)
        finally:
            drop(name)

    def test_invalid_names(self):
        for bad in ("Bad", "1abc", 'a"; DROP TABLE x; --', "", "a" * 49, "a-b", None):
            with self.subTest(name=bad), self.assertRaises((errors.InvalidNameError, TypeError)):
                vecext.Database(DSN, bad, dim=3)


class Writes(Base):
    def test_add_and_get(self):
        v = np.array([1, 2, 3, 4, 5, 6, 7, 8], dtype=np.float32)
        self.db.add("a", v, {"k": "v"})
        self.db.add("b", list(range(1, 9)))
        rec = self.db.get("a")
        self.assertIsInstance(rec, vecext.Record)
        rid, emb, meta, doc = rec
        self.assertEqual((rid, meta, doc), ("a", {"k": "v"}, None))
        self.assertEqual(emb.dtype, np.float32)
        self.assertTrue(np.array_equal(emb, v))
        self.assertEqual(self.db.get("b").metadata, {})
        self.assertIsNone(self.db.get("zz"))

    def test_add_duplicate(self):
        self.db.add("a", np.ones(8))
        with self.assertRaises(errors.DuplicateIdError) as cm:
            self.db.add("a", np.ones(8))
        self.assertEqual(cm.exception.sqlstate, "23505")

    def test_wrong_dimension(self):
        with self.assertRaises(errors.DimensionMismatchError) as cm:
            self.db.add("a", [1, 2, 3])
        self.assertEqual(cm.exception.sqlstate, "22000")
        for call in (lambda: self.db.search([1, 2]), lambda: self.db.upsert("a", np.ones(9)),
                     lambda: self.db.add_many(["a", "b"], [np.ones(8), np.ones(7)]),
                     lambda: self.db.search_many([np.ones(8), np.ones(3)]),
                     lambda: self.db.update("a", vector=[1])):
            with self.subTest(call=call), self.assertRaises(errors.DimensionMismatchError):
                call()
        self.assertEqual(self.db.count(), 0)

    def test_server_side_dimension_error_is_mapped(self):
        # bypass the client's check: the server's error comes back with its SQLSTATE
        with self.assertRaises(errors.DimensionMismatchError) as cm, vecext.sync._translated():
            self.db.connection.execute(f"INSERT INTO {self.name} (id, embedding) VALUES ('x', '[1,2]')")
        self.assertEqual(cm.exception.sqlstate, "22000")
        self.assertIn("expected 8 dimensions, not 2", str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, psycopg.Error)

    def test_invalid_values(self):
        with self.assertRaises(errors.InvalidVectorError):
            self.db.add("a", [float("nan")] * 8)
        with self.assertRaises(TypeError):
            self.db.add("a", np.ones(8), metadata=["not", "a", "dict"])
        with self.assertRaises(TypeError):
            self.db.add("a", np.ones(8), metadata={"x": object()})
        with self.assertRaises(TypeError):
            self.db.add(5, np.ones(8))

    def test_upsert(self):
        self.db.upsert("a", np.ones(8), {"v": 1})
        self.db.upsert("a", np.full(8, 2.0), {"v": 2})
        rec = self.db.get("a")
        self.assertEqual(rec.metadata, {"v": 2})
        self.assertEqual(rec.embedding.tolist(), [2.0] * 8)
        self.assertEqual(self.db.count(), 1)

    def _many(self, n, copy):
        self.db.copy_threshold = 1 if copy else 10**9
        X = data(n, 8, seed=n)
        ids = [f"id{i}" for i in range(n)]
        metas = [{"i": i} for i in range(n)]
        self.assertEqual(self.db.add_many(ids, X, metas), n)
        got = self.db.get(ids[:5] + ["nope"])
        self.assertEqual([r.id for r in got], sorted(ids[:5]))
        for r in got:
            i = int(r.id[2:])
            self.assertEqual(float32_bits(r.embedding), float32_bits(X[i]))
            self.assertEqual(r.metadata, {"i": i})
        # duplicates: nothing of the batch is inserted
        with self.assertRaises(errors.DuplicateIdError):
            self.db.add_many(["new1", ids[0]], X[:2])
        self.assertIsNone(self.db.get("new1"))
        # upsert_many: the last of an id given twice wins
        Y = data(n, 8, seed=n + 1)
        ids2 = ids[: n // 2] + ["extra", "extra"]
        vecs2 = list(Y[: n // 2]) + [np.ones(8), np.full(8, 3.0)]
        metas2 = [{"u": True}] * (n // 2) + [{"first": 1}, {"second": 2}]
        self.assertEqual(self.db.upsert_many(ids2, vecs2, metas2), n // 2 + 1)
        self.assertEqual(self.db.count(), n + 1)
        self.assertEqual(self.db.count({"u": True}), n // 2)
        extra = self.db.get("extra")
        self.assertEqual((extra.metadata, extra.embedding.tolist()), ({"second": 2}, [3.0] * 8))
        self.assertEqual(float32_bits(self.db.get("id0").embedding), float32_bits(Y[0]))

    def test_add_many_and_upsert_many_small_batches(self):
        self._many(40, copy=False)

    def test_add_many_and_upsert_many_copy(self):
        self._many(300, copy=True)

    def test_many_errors_and_empty(self):
        self.assertEqual(self.db.add_many([], []), 0)
        with self.assertRaises(ValueError):
            self.db.add_many(["a", "b"], [np.ones(8)])
        with self.assertRaises(ValueError):
            self.db.add_many(["a"], [np.ones(8)], metadatas=[{}, {}])
        with self.assertRaises(TypeError):
            self.db.add_many("ab", [np.ones(8), np.ones(8)])

    def test_given_connection(self):
        with psycopg.connect(DSN or "", autocommit=True) as conn:
            db = vecext.Database(None, self.name, connection=conn)
            db.add("a", np.ones(8))
            db.close()
            self.assertFalse(conn.closed)  # not ours to close
            self.assertEqual(conn.execute(f"SELECT count(*) FROM {self.name}").fetchone()[0], 1)
        with psycopg.connect(DSN or "") as conn, self.assertRaises(ValueError):
            vecext.Database(None, self.name, connection=conn)

    def test_lists_in_and_out(self):
        db = vecext.Database(DSN, self.name, use_numpy=False)
        try:
            db.add("a", [0.5] * 8)
            rec = db.get("a")
            self.assertEqual(rec.embedding, [0.5] * 8)
            self.assertIsInstance(rec.embedding, list)
        finally:
            db.close()

    def test_update(self):
        self.db.add("a", np.ones(8), {"x": 1, "y": 2})
        self.assertTrue(self.db.update("a", metadata={"y": 3, "z": 4}, merge_metadata=True))
        self.assertEqual(self.db.get("a").metadata, {"x": 1, "y": 3, "z": 4})
        self.assertTrue(self.db.update("a", metadata={"only": True}))
        self.assertEqual(self.db.get("a").metadata, {"only": True})
        self.assertTrue(self.db.update("a", vector=np.full(8, 2.0)))
        self.assertEqual(self.db.get("a").embedding.tolist(), [2.0] * 8)
        self.assertFalse(self.db.update("missing", metadata={}))
        self.assertTrue(self.db.update("a", document="hello world"))
        self.assertEqual(self.db.get("a").document, "hello world")
        self.assertTrue(self.db.update("a", document=None))
        self.assertIsNone(self.db.get("a").document)
        with self.assertRaises(ValueError):
            self.db.update("a")

    def test_delete(self):
        self.db.add_many(["a", "b", "c", "d"], data(4, 8), [{"g": 1}, {"g": 2}, {"g": 1}, {"g": 3}])
        self.assertTrue(self.db.delete("a"))
        self.assertFalse(self.db.delete("a"))
        self.assertEqual(self.db.delete_many(["b", "zz"]), 1)
        self.assertEqual(self.db.delete_many(where={"g": 1}), 1)
        self.assertEqual([r.id for r in self.db.get(where={})], ["d"])
        with self.assertRaises(ValueError):
            self.db.delete_many()
        with self.assertRaises(ValueError):
            self.db.delete_many(where={})
        self.assertEqual(self.db.count(), 1)

    def test_get_variants(self):
        X = data(10, 8)
        self.db.add_many([f"i{i}" for i in range(10)], X, [{"n": i} for i in range(10)])
        self.assertEqual([r.id for r in self.db.get(limit=3)], ["i0", "i1", "i2"])
        self.assertEqual([r.id for r in self.db.get(limit=2, offset=8)], ["i8", "i9"])
        recs = self.db.get(where={"n": {"$gte": 7}}, include_embedding=False)
        self.assertEqual([(r.id, r.embedding) for r in recs], [("i7", None), ("i8", None), ("i9", None)])
        self.assertEqual([r.id for r in self.db.get(["i3", "i1"], where={"n": 1})], ["i1"])

    def test_count(self):
        self.assertEqual(self.db.count(), 0)
        self.db.add_many(["a", "b", "c"], data(3, 8), [{"x": 1}, {"x": 2}, {}])
        self.assertEqual(self.db.count(), 3)
        self.assertEqual(self.db.count({"x": {"$exists": True}}), 2)
        with self.assertRaises(errors.FilterError):
            self.db.count({"x": {"$foo": 1}})


class Search(unittest.TestCase):
    """Results against an exact search in numpy, for every metric."""

    n = 400

    @classmethod
    def setUpClass(cls):
        cls.X = data(cls.n, 16, seed=7)
        cls.dbs = {}
        for metric in ("cosine", "l2", "ip", "l1"):
            name = unique("search")
            db = vecext.Database(DSN, name, dim=16, metric=metric)
            db.add_many([f"v{i}" for i in range(cls.n)], cls.X, [{"i": i, "odd": i % 2 == 1} for i in range(cls.n)])
            cls.dbs[metric] = db

    @classmethod
    def tearDownClass(cls):
        for db in cls.dbs.values():
            name = db.name
            db.close()
            drop(name)

    def test_search_matches_exact(self):
        Q = data(10, 16, seed=8)
        for metric, db in self.dbs.items():
            hits = total = 0
            for q in Q:
                want, d = exact_knn(self.X, q, metric, 10)
                got = db.search(q, k=10, ef_search=200)
                self.assertEqual(len(got), 10)
                self.assertEqual([r.distance for r in got], sorted(r.distance for r in got))
                for r in got:
                    self.assertIsInstance(r, vecext.SearchResult)
                    i = int(r.id[1:])
                    self.assertTrue(isclose(r.distance, d[i], 1e-4), (metric, r.distance, d[i]))
                    self.assertEqual(r.metadata["i"], i)
                hits += len({f"v{i}" for i in want} & {r.id for r in got})
                total += 10
            with self.subTest(metric=metric):
                self.assertGreaterEqual(hits / total, 0.95)  # recall floor at ef_search = 200

    def test_ip_distance_is_negative_inner_product(self):
        q = self.X[0]
        top = self.dbs["ip"].search(q, k=1, ef_search=100)[0]
        _, d = exact_knn(self.X, q, "ip", 1)
        self.assertTrue(isclose(top.distance, float(d.min()), 1e-4))
        self.assertLess(top.distance, 0)

    def test_unpacks_as_tuple(self):
        (rid, dist, meta), = self.dbs["l2"].search(self.X[3], k=1)
        self.assertEqual((rid, dist, meta["i"]), ("v3", 0.0, 3))

    def test_k_and_where(self):
        db = self.dbs["l2"]
        got = db.search(self.X[0], k=25, where={"odd": True})
        self.assertEqual(len(got), 25)
        self.assertTrue(all(r.metadata["odd"] for r in got))
        with self.assertRaises(ValueError):
            db.search(self.X[0], k=0)

    def test_max_distance(self):
        db = self.dbs["l2"]
        q = self.X[5]
        _, d = exact_knn(self.X, q, "l2", self.n)
        limit = float(np.sort(d)[11:13].mean())  # 12 rows below, well clear of rounding
        got = db.search(q, k=100, max_distance=limit, ef_search=200)
        self.assertTrue(all(r.distance < limit for r in got))
        self.assertEqual(len(got), 12)
        self.assertEqual(db.search(q, k=5, max_distance=0.0), [])
        with self.assertRaises(ValueError):
            db.search(q, max_distance=float("nan"))

    def test_ef_search_is_local(self):
        db = self.dbs["cosine"]
        conn = db.connection
        before = conn.execute("SHOW hnsw.ef_search").fetchone()[0]
        seen = []
        real_execute = psycopg.Cursor.execute

        def spy(cur, query, params=None, **kw):
            if isinstance(query, str) and query.startswith("SET LOCAL"):
                seen.append(query)
            return real_execute(cur, query, params, **kw)

        with mock.patch.object(psycopg.Cursor, "execute", spy):
            db.search(self.X[0], k=5, ef_search=123)
        self.assertEqual(seen, ["SET LOCAL hnsw.ef_search = 123"])
        # the setting is in force for the statement itself
        p = vecext.filters.Params("psycopg")
        self.assertEqual(db._fetch("SELECT current_setting('hnsw.ef_search')", p, ef_search=77), [("77",)])
        self.assertEqual(conn.execute("SHOW hnsw.ef_search").fetchone()[0], before)
        for bad in (0, 1001, "10", 1.5):
            with self.subTest(ef=bad), self.assertRaises(ValueError):
                db.search(self.X[0], ef_search=bad)

    def test_search_many_is_one_statement(self):
        db = self.dbs["l2"]
        Q = data(7, 16, seed=9)
        calls = []
        real_execute = psycopg.Cursor.execute

        def spy(cur, query, params=None, **kw):
            calls.append(query)
            return real_execute(cur, query, params, **kw)

        with mock.patch.object(psycopg.Cursor, "execute", spy):
            many = db.search_many(Q, k=6, ef_search=200)
        self.assertEqual(len([c for c in calls if "LATERAL" in c]), 1)
        self.assertEqual(len(calls), 2)  # SET LOCAL + the statement
        self.assertEqual(len(many), 7)
        for q, got in zip(Q, many):
            self.assertEqual([(r.id, r.distance) for r in got],
                             [(r.id, r.distance) for r in db.search(q, k=6, ef_search=200)])
        self.assertEqual(db.search_many([], k=3), [])
        far = db.search_many([self.X[0], self.X[1]], k=3, max_distance=1e-6)
        self.assertEqual([[r.id for r in lst] for lst in far], [["v0"], ["v1"]])


class Documents(unittest.TestCase):
    def setUp(self):
        self.name = unique("docs")
        self.db = vecext.Database(DSN, self.name, dim=4, metric="cosine", documents=True)
        self.db.add_many(
            ["cat", "dog", "car", "sea", "nodoc"],
            [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.95, 0.05, 0, 0]],
            [{"kind": "animal"}, {"kind": "animal"}, {"kind": "vehicle"}, {"kind": "place"}, {}],
            ["The cat sat on the mat with another cat", "A dog chased the cat", "A fast red car",
             "The sea is deep and blue", None])

    def tearDown(self):
        self.db.close()
        drop(self.name)

    def test_keyword_search(self):
        got = self.db.keyword_search("cat")
        self.assertEqual([r.id for r in got], ["cat", "dog"])
        self.assertIsInstance(got[0], vecext.ScoredResult)
        self.assertGreater(got[0].score, got[1].score)
        self.assertEqual(got[0].document, "The cat sat on the mat with another cat")
        self.assertEqual([r.id for r in self.db.keyword_search("cats", k=1)], ["cat"])  # stemming
        self.assertEqual([r.id for r in self.db.keyword_search("cat -dog")], ["cat"])  # websearch syntax
        self.assertEqual(self.db.keyword_search("cat", where={"kind": "vehicle"}), [])
        self.assertEqual(self.db.keyword_search("unicorn"), [])

    def test_uses_text_index_expression(self):
        with admin() as c:
            c.execute("SET enable_seqscan = off")
            sql, p = self.db._st.keyword("cat", 5, None)
            plan = "\n".join(r[0] for r in c.execute("EXPLAIN " + sql, p.bind()).fetchall())
        self.assertIn(f"{self.name}_document_idx", plan)

    def test_hybrid_is_rrf(self):
        q = [1, 0, 0, 0]
        got = self.db.hybrid_search("car", q, k=5, rrf_k=60)
        vec = [r.id for r in self.db.search(q, k=20)]
        kw = [r.id for r in self.db.keyword_search("car", k=20)]
        want = {}
        for ranks in (vec, kw):
            for r, i in enumerate(ranks, 1):
                want[i] = want.get(i, 0) + 1 / (60 + r)
        self.assertEqual([r.id for r in got], sorted(want, key=lambda i: (-want[i], i))[:5])
        for r in got:
            self.assertTrue(isclose(r.score, want[r.id], 1e-9))
        self.assertEqual(got[0].id, "car")  # first in keywords, fourth in vectors
        both = self.db.hybrid_search("cat", [0.9, 0.1, 0, 0], k=2)
        self.assertEqual([r.id for r in both], ["dog", "cat"])
        only_vec = self.db.hybrid_search("car", q, k=5, keyword_weight=0)
        self.assertEqual([r.id for r in only_vec][:3], vec[:3])
        filt = self.db.hybrid_search("cat", q, k=5, where={"kind": "animal"})
        self.assertEqual({r.id for r in filt}, {"cat", "dog"})

    def test_hybrid_is_one_statement(self):
        calls = []
        real_execute = psycopg.Cursor.execute

        def spy(cur, query, params=None, **kw):
            calls.append(query)
            return real_execute(cur, query, params, **kw)

        with mock.patch.object(psycopg.Cursor, "execute", spy):
            self.db.hybrid_search("cat", [1, 0, 0, 0], k=3)
        self.assertEqual(len(calls), 1)

    def test_documents_added_later(self):
        name = unique("latedocs")
        try:
            with vecext.Database(DSN, name, dim=2) as db:
                db.add("a", [1, 0])
                self.assertFalse(db.info.documents)
                self.assertEqual(db.keyword_search("hello"), [])
                self.assertEqual([r.id for r in db.hybrid_search("hello", [1, 0])], ["a"])
                db.add("b", [0, 1], document="hello there")
                self.assertTrue(db.info.documents)
                self.assertEqual([r.id for r in db.keyword_search("hello")], ["b"])
            with vecext.Database(DSN, name) as db:
                self.assertTrue(db.info.documents)
                self.assertEqual(db.get("b").document, "hello there")
        finally:
            drop(name)

    def test_upsert_many_copy_with_documents(self):
        self.db.copy_threshold = 1
        self.db.upsert_many(["sea", "sky"], [[0, 0, 1, 0], [0, 0, 0, 1]], None, ["calm water", "clouds"])
        self.assertEqual(self.db.get("sea").document, "calm water")
        self.assertEqual([r.id for r in self.db.keyword_search("clouds")], ["sky"])

    def test_mmr(self):
        q = [1, 0, 0, 0]
        plain = self.db.search(q, k=3)
        self.assertEqual([r.id for r in self.db.max_marginal_relevance_search(q, k=3, lambda_mult=1.0)],
                         [r.id for r in plain])
        div = self.db.max_marginal_relevance_search(q, k=3, fetch_k=5, lambda_mult=0.3)
        self.assertEqual(div[0].id, "cat")
        self.assertEqual(len(div), 3)
        # "nodoc" and "dog" are near-copies of "cat": diversity picks something else second
        self.assertNotIn(div[1].id, ("nodoc", "dog"))
        self.assertIsInstance(div[0], vecext.SearchResult)
        with self.assertRaises(ValueError):
            self.db.max_marginal_relevance_search(q, lambda_mult=2)


class Maintenance(Base):
    metric = "l2"

    def test_compact_and_stats(self):
        X = data(300, 8, seed=11)
        self.db.add_many([f"i{i}" for i in range(300)], X)
        s = self.db.stats()
        self.assertEqual((s["count"], s["dim"], s["metric"], s["m"], s["ef_construction"]), (300, 8, "l2", 16, 200))
        self.assertEqual(s["index"]["elements"], 300)
        self.assertEqual(s["index"]["dimensions"], 8)
        self.assertEqual(s["index"]["metric"], "l2")
        self.assertGreater(s["total_bytes"], 0)
        self.db.delete_many([f"i{i}" for i in range(0, 300, 2)])
        self.db.compact()
        s = self.db.stats()
        self.assertEqual((s["count"], s["index"]["elements"]), (150, 150))
        self.db.compact(reindex=True)
        self.db.compact(reindex=True, concurrently=False)
        self.assertEqual(self.db.stats()["index"]["elements"], 150)
        got = self.db.search(X[1], k=1)
        self.assertEqual(got[0].id, "i1")
        with admin() as c:
            self.assertEqual(c.execute("SELECT count(*) FROM hnsw_index_check(%s)",
                                       [f"{self.name}_embedding_idx"]).fetchone()[0], 0)

    def test_export_import(self):
        X = data(50, 8, seed=12)
        X[0] = [0.1, -0.0, 1e-45, 3.4028235e38, -1.5e-7, 1e-05, 123456.79, 0.3]
        metas = [{"i": i, "nested": {"s": "é\"\n"}} for i in range(50)]
        docs = [f"doc {i}" if i % 3 == 0 else None for i in range(50)]
        self.db.add_many([f"i{i}" for i in range(50)], X, metas, docs)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "out.jsonl")
            self.assertEqual(self.db.export_json(path), 50)
            with open(path, encoding="utf-8") as f:
                lines = [json.loads(line) for line in f]
            self.assertEqual(len(lines), 50)
            self.assertEqual(set(lines[0]), {"id", "embedding", "metadata", "document"})
            self.assertNotIn("document", lines[1])
            other = unique("imported")
            try:
                with vecext.Database(DSN, other, dim=8, metric="l2") as db2:
                    self.assertEqual(db2.import_json(path, batch_size=7), 50)
                    self.assertEqual(db2.count(), 50)
                    a = {r.id: r for r in self.db.get()}
                    b = {r.id: r for r in db2.get()}
                    self.assertEqual(set(a), set(b))
                    for k in a:
                        self.assertEqual(float32_bits(a[k].embedding), float32_bits(b[k].embedding))
                        self.assertEqual((a[k].metadata, a[k].document), (b[k].metadata, b[k].document))
                    self.assertEqual(db2.import_json(path), 50)  # upserts: idempotent
                    self.assertEqual(db2.count(), 50)
            finally:
                drop(other)
            bad = os.path.join(tmp, "bad.jsonl")
            with open(bad, "w") as f:
                f.write('{"id": "x"}\n')
            with self.assertRaises(ValueError):
                self.db.import_json(bad)


class Quantized(unittest.TestCase):
    """quantize=True: an SQ8 hnsw index, exact results after the server's re-ranking."""

    n = 2000  # enough rows for the planner to prefer the index (after ANALYZE) for every k used

    @classmethod
    def setUpClass(cls):
        cls.X = data(cls.n, 16, seed=31)
        cls.plain_name, cls.sq8_name = unique("plain"), unique("sq8")
        cls.plain = vecext.Database(DSN, cls.plain_name, dim=16)
        cls.sq8 = vecext.Database(DSN, cls.sq8_name, dim=16, quantize=True)
        ids = [f"v{i}" for i in range(cls.n)]
        metas = [{"i": i, "odd": i % 2 == 1} for i in range(cls.n)]
        for db in (cls.plain, cls.sq8):
            db.add_many(ids, cls.X, metas)
            db.compact()  # ANALYZE: the planner then takes the index

    @classmethod
    def tearDownClass(cls):
        cls.plain.close()
        cls.sq8.close()
        drop(cls.plain_name, cls.sq8_name)

    def test_created_with_sq8(self):
        self.assertTrue(self.sq8.quantize)
        self.assertFalse(self.plain.quantize)
        self.assertIn("quantize=sq8", repr(self.sq8))
        with admin() as c:
            d = c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                          [f"{self.sq8_name}_embedding_idx"]).fetchone()[0]
        self.assertIn("USING hnsw (embedding vector_cosine_ops, metadata)", d)  # jsonb_hnsw_ops: the default
        self.assertIn("quantization=sq8", d.replace(" ", ""))
        self.assertIn("m='16'", d.replace(" ", ""))
        s = self.sq8.stats()
        self.assertEqual((s["quantize"], s["index"]["quantization"], s["count"], s["index"]["elements"]),
                         (True, "sq8", self.n, self.n))
        s = self.plain.stats()
        self.assertEqual((s["quantize"], s["index"]["quantization"]), (False, "none"))

    def test_same_ids_as_unquantized_and_exact_distances(self):
        conn = self.sq8.connection
        self.assertTrue(uses_index(conn, self.sq8_name, self.X[0], "<=>", f"{self.sq8_name}_embedding_idx"))
        for q in data(10, 16, seed=32):
            exact = exact_sql(self.sq8_name, q, "<=>", 10)
            got = self.sq8.search(q, k=10, ef_search=200)
            ref = self.plain.search(q, k=10, ef_search=200)
            self.assertEqual([r.id for r in got], [r.id for r in ref])
            self.assertEqual([r.id for r in got], [e[0] for e in exact])
            # re-ranked from the table: the distances are the operator's, bit for bit
            self.assertEqual([r.distance for r in got], [e[1] for e in exact])
            self.assertEqual([r.metadata["i"] for r in got], [int(e[0][1:]) for e in exact])

    def test_search_many_filters_and_quantized_search_on(self):
        Q = data(4, 16, seed=33)
        many = self.sq8.search_many(Q, k=5, ef_search=200, quantized_search=True)
        for q, got in zip(Q, many):
            self.assertEqual([r.id for r in got], [e[0] for e in exact_sql(self.sq8_name, q, "<=>", 5)])
        odd = self.sq8.search(Q[0], k=20, where={"odd": True}, quantized_search=True)
        self.assertEqual(len(odd), 20)
        self.assertTrue(all(r.metadata["odd"] for r in odd))

    def test_quantized_search_off(self):
        q = self.X[5]
        self.assertTrue(uses_index(self.sq8.connection, self.sq8_name, q, "<=>", f"{self.sq8_name}_embedding_idx"))
        with self.assertRaises(errors.FeatureNotAvailableError) as cm:
            self.sq8.search(q, k=5, quantized_search=False)
        e = cm.exception
        self.assertEqual(e.sqlstate, "0A000")
        self.assertIn("stores SQ8 codes only", str(e))
        self.assertIn(f"{self.sq8_name}_embedding_idx", str(e))
        self.assertIn("quantized_search", e.detail or "")
        self.assertIsInstance(e.__cause__, psycopg.errors.FeatureNotSupported)
        for call in (lambda: self.sq8.search_many([q], k=5, quantized_search=False),
                     lambda: self.sq8.max_marginal_relevance_search(q, quantized_search=False),
                     lambda: self.sq8.hybrid_search("x", q, quantized_search=False)):
            with self.subTest(call=call), self.assertRaises(errors.FeatureNotAvailableError):
                call()
        # SET LOCAL: the session's setting is untouched, the connection usable
        conn = self.sq8.connection
        self.assertEqual(conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE)
        self.assertEqual(conn.execute("SHOW hnsw.quantized_search").fetchone()[0], "on")
        self.assertEqual(self.sq8.search(q, k=1)[0].id, "v5")
        # an unquantized index has full vectors: off changes nothing there
        self.assertEqual([r.id for r in self.plain.search(q, k=5, ef_search=100, quantized_search=False)],
                         [r.id for r in self.plain.search(q, k=5, ef_search=100)])
        with self.assertRaises(TypeError):
            self.sq8.search(q, quantized_search="off")

    def test_reopen_detects_quantization(self):
        with vecext.Database(DSN, self.sq8_name) as db:
            self.assertEqual((db.quantize, db.dim, db.metric, db.info.m), (True, 16, "cosine", 16))
            self.assertEqual(db.stats()["index"]["quantization"], "sq8")
        with vecext.Database(DSN, self.sq8_name, quantize=True) as db:
            self.assertTrue(db.quantize)
        with self.assertRaises(errors.IncompatibleCollectionError):
            vecext.Database(DSN, self.sq8_name, quantize=False)
        with self.assertRaises(errors.IncompatibleCollectionError):
            vecext.Database(DSN, self.plain_name, quantize=True)
        with vecext.Client(DSN) as client:
            infos = {c.name: c for c in client.list_collections()}
            self.assertTrue(infos[self.sq8_name].quantize)
            self.assertFalse(infos[self.plain_name].quantize)
            self.assertTrue(client.get_collection(self.sq8_name).quantize)
            self.assertTrue(client.get_or_create_collection(self.sq8_name, dim=16).quantize)
            with self.assertRaises(errors.IncompatibleCollectionError):
                client.get_or_create_collection(self.sq8_name, quantize=False)

    def test_write_and_compact_retrains(self):
        name = unique("sq8w")
        X = data(60, 8, seed=34)
        try:
            with vecext.Client(DSN) as client:
                db = client.create_collection(name, dim=8, metric="l2", m=8, ef_construction=32, quantize=True)
                self.assertTrue(db.quantize)
                db.add("a", X[0] * 100, {"big": True})  # first row: the parameters of an index built empty
                db.add_many([f"r{i}" for i in range(1, 60)], X[1:])
                db.upsert("r1", X[1] * -3)
                db.upsert_many(["r2", "new"], [X[2] + 1, X[3] - 1])
                self.assertEqual(db.count(), 61)
                db.delete("r3")
                db.compact(reindex=True)  # rebuilt: parameters trained on the current rows
                db.compact(reindex=True, concurrently=False)
                s = db.stats()
                self.assertEqual((s["index"]["quantization"], s["index"]["elements"], s["count"]), ("sq8", 60, 60))
                for q in (X[5], X[1] * -3, X[0] * 100, data(1, 8, seed=35)[0]):
                    got = db.search(q, k=5, ef_search=100)
                    exact = exact_sql(name, q, "<->", 5)
                    self.assertEqual([(r.id, r.distance) for r in got], [tuple(e) for e in exact])
            with admin() as c:
                self.assertEqual(c.execute("SELECT count(*) FROM hnsw_index_check(%s, true)",
                                           [f"{name}_embedding_idx"]).fetchone()[0], 0)
        finally:
            drop(name)

    def test_dimension_limits(self):
        name = unique("wide")
        rng = np.random.default_rng(36)
        X = rng.standard_normal((4, 3072)).astype(np.float32)
        try:
            with vecext.Database(DSN, name, dim=3072, quantize=True) as db:
                db.add_many(["a", "b", "c", "d"], X, [{"n": i} for i in range(4)])
                self.assertEqual(db.search(X[2], k=1)[0].id, "c")
                got = db.search(X[1] + 0.01, k=4, ef_search=40)
                self.assertEqual([(r.id, r.distance) for r in got],
                                 [tuple(e) for e in exact_sql(name, X[1] + 0.01, "<=>", 4)])
                s = db.stats()
                self.assertEqual((s["index"]["dimensions"], s["index"]["quantization"]), (3072, "sq8"))
            with vecext.Database(DSN, name) as db:
                self.assertEqual((db.dim, db.quantize), (3072, True))
        finally:
            drop(name)
        for kw in ({}, {"quantize": False}):
            with self.subTest(kw=kw), self.assertRaises(ValueError) as cm:
                vecext.Database(DSN, name, dim=3072, **kw)
            self.assertIn("at most 2000 dimensions", str(cm.exception))
            self.assertIn("quantize=True", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            vecext.Database(DSN, name, dim=8001, quantize=True)
        self.assertIn("at most 8000", str(cm.exception))
        with vecext.Client(DSN) as client, self.assertRaises(ValueError):
            client.create_collection(name, dim=2001)
        with admin() as c:
            self.assertIsNone(c.execute("SELECT to_regclass(%s)", [name]).fetchone()[0])  # nothing created
        with vecext.Database(DSN, name, dim=2000) as db:  # the float4 limit itself
            db.add("a", np.ones(2000))
            self.assertEqual(db.search(np.ones(2000), k=1)[0].id, "a")
        drop(name)
        with self.assertRaises(TypeError):
            vecext.Database(DSN, name, dim=3, quantize="sq8")


class Closed(unittest.TestCase):
    def test_closed_database(self):
        name = unique("closed")
        try:
            db = vecext.Database(DSN, name, dim=2)
            db.add("a", [1, 2])
            db.close()
            self.assertTrue(db.closed)
            for call in (lambda: db.search([1, 2]), lambda: db.add("b", [1, 2]), db.count, db.stats,
                         lambda: db.get("a"), lambda: db.search_many([[1, 2]]), lambda: db.connection):
                with self.subTest(call=call), self.assertRaises(errors.ConnectionClosedError):
                    call()
        finally:
            drop(name)

    def test_error_inside_ef_search_transaction(self):
        name = unique("eftx")
        db = vecext.Database(DSN, name, dim=2)
        try:
            drop(name)
            with self.assertRaises(errors.CollectionNotFoundError):
                db.search([1, 2], ef_search=50)
            self.assertEqual(db.connection.info.transaction_status, psycopg.pq.TransactionStatus.IDLE)
            self.assertEqual(db.connection.execute("SELECT 1").fetchone()[0], 1)
        finally:
            db.close()

    def test_connect_failure(self):
        dsn = "dbname=vecext_no_such_db" if DSN is None else DSN + " dbname=vecext_no_such_db"
        with self.assertRaises(errors.ConnectionFailedError) as cm:
            vecext.Database(dsn, "x", dim=2)
        self.assertIn("vecext_no_such_db", str(cm.exception))
        with self.assertRaises(errors.ConnectionFailedError):
            vecext.Client(dsn)

    def test_file_errors_are_not_connection_errors(self):
        name = unique("files")
        try:
            with vecext.Database(DSN, name, dim=2) as db, tempfile.TemporaryDirectory() as tmp:
                with self.assertRaises(IsADirectoryError):
                    db.export_json(tmp)
                with self.assertRaises(FileNotFoundError):
                    db.import_json(os.path.join(tmp, "missing.jsonl"))
                self.assertEqual(db.count(), 0)
        finally:
            drop(name)

    def test_closed_client_closes_its_collections(self):
        name = unique("cc")
        try:
            client = vecext.Client(DSN)
            db = client.create_collection(name, dim=2)
            client.close()
            with self.assertRaises(errors.ConnectionClosedError):
                db.count()
            with self.assertRaises(errors.ConnectionClosedError):
                client.list_collections()
        finally:
            drop(name)

    def test_terminated_backend(self):
        name = unique("term")
        try:
            db = vecext.Database(DSN, name, dim=2)
            pid = db.connection.info.backend_pid
            with admin() as c:
                c.execute("SELECT pg_terminate_backend(%s)", [pid])
            with self.assertRaises(errors.ConnectionClosedError) as cm:
                db.search([1, 2])
            self.assertIn(cm.exception.sqlstate, (None, "57P01"))
            with self.assertRaises(errors.ConnectionClosedError):
                db.search([1, 2])
            db.close()
        finally:
            drop(name)


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.client = vecext.Client(DSN)
        self.names = []

    def tearDown(self):
        self.client.close()
        drop(*self.names)

    def new(self):
        n = unique("cl")
        self.names.append(n)
        return n

    def test_lifecycle(self):
        a, b = self.new(), self.new()
        db = self.client.create_collection(a, dim=3, metric="l2")
        self.assertEqual((db.name, db.dim, db.metric), (a, 3, "l2"))
        with self.assertRaises(errors.CollectionExistsError) as cm:
            self.client.create_collection(a, dim=3)
        self.assertEqual(cm.exception.sqlstate, "42P07")
        self.assertEqual(self.client.get_collection(a).metric, "l2")
        with self.assertRaises(errors.CollectionNotFoundError):
            self.client.get_collection(b)
        with self.assertRaises(errors.CollectionNotFoundError):
            self.client.get_or_create_collection(b)
        db_b = self.client.get_or_create_collection(b, dim=5, documents=True)
        self.assertEqual((db_b.dim, db_b.metric, db_b.info.documents), (5, "cosine", True))
        self.assertEqual(self.client.get_or_create_collection(b, dim=5).dim, 5)
        with self.assertRaises(errors.DimensionMismatchError):
            self.client.get_or_create_collection(b, dim=6)
        names = [c.name for c in self.client.list_collections()]
        self.assertIn(a, names)
        self.assertIn(b, names)
        info = [c for c in self.client.list_collections() if c.name == b][0]
        self.assertEqual((info.dim, info.metric, info.documents, info.schema), (5, "cosine", True, "public"))
        db.add("x", [1, 2, 3])
        self.assertEqual(self.client.get_collection(a).count(), 1)  # same connection, same data
        self.client.delete_collection(a)
        self.assertNotIn(a, [c.name for c in self.client.list_collections()])
        with self.assertRaises(errors.CollectionNotFoundError):
            self.client.delete_collection(a)
        with self.assertRaises(errors.CollectionNotFoundError) as cm:
            db.count()  # its table is gone
        self.assertEqual(cm.exception.sqlstate, "42P01")

    def test_list_ignores_other_tables_and_refuses_to_drop_them(self):
        plain = self.new()
        with admin() as c:
            c.execute(f"CREATE TABLE {plain} (id text, embedding text, metadata jsonb)")
        self.assertNotIn(plain, [c.name for c in self.client.list_collections()])
        with self.assertRaises(errors.IncompatibleCollectionError):
            self.client.delete_collection(plain)
        with admin() as c:
            self.assertIsNotNone(c.execute("SELECT to_regclass(%s)", [plain]).fetchone()[0])

    def test_invalid_names(self):
        for bad in ("Upper", "sp ace", "x;drop", "_x", "a" * 49):
            with self.subTest(name=bad):
                with self.assertRaises(errors.InvalidNameError):
                    self.client.create_collection(bad, dim=3)
                with self.assertRaises(errors.InvalidNameError):
                    self.client.delete_collection(bad)
        with self.assertRaises(errors.InvalidNameError):
            vecext.Client(DSN, schema="Bad-Schema")

    def test_other_schema(self):
        schema = unique("sch")
        with admin() as c:
            c.execute(f"CREATE SCHEMA {schema}")
        try:
            with vecext.Client(DSN, schema=schema) as client:
                db = client.create_collection("items", dim=2)
                db.add("a", [1, 2])
                self.assertEqual([c.name for c in client.list_collections()], ["items"])
                self.assertEqual(db.search([1, 2], k=1)[0].id, "a")
                self.assertEqual(db.stats()["count"], 1)
                self.assertEqual(db.info.schema, schema)
            with admin() as c:
                self.assertEqual(c.execute(f"SELECT count(*) FROM {schema}.items").fetchone()[0], 1)
        finally:
            with admin() as c:
                c.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    unittest.main()
