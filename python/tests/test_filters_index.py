"""Filters evaluated inside the hnsw index (its metadata column), sync and async.

One collection of 3,000 rows with awkward metadata (quotes, backslashes,
non-ASCII and injection attempts in values and keys, numbers as 1 / 1.0 /
"1" / true, arrays and objects where scalars are expected, missing keys) and
a few hundred filters, hand-written and random: count, get and search (also
forced through the index, with k = every match) give exactly the rows of a
brute-force Python evaluation of the documented semantics
(helpers.ref_match); EXPLAIN of the generated search SQL shows the metadata
conditions as the hnsw index's Index Cond; filtered statements never run
with a generic plan; a collection in the older layout (hnsw index on the
embedding only) still filters correctly.
"""

import asyncio
import random
import unittest

import asyncpg
import numpy as np

import vecext
from helpers import DSN, admin, drop, exact_knn, ref_match, unique

N = 3000
DIM = 8

CATS = ["plain", "it's", 'say "hi"', "back\\slash", "ünïcödé", "😀 emoji", 'x") || true || ("',
        "$v0", "tab\tnew\nline", "'; DROP TABLE x; --", "Plain", "m"]
NAMES = ["Le Guin", "Banks", "O'Brien", 'Quote"d', "Jiménez"]
WEIRD = ['we"ird key', "sp ace", "clé", "back\\key", "x') OR 1=1 --"]
_MISSING = object()
N_VALUES = [_MISSING, 1, 1.0, "1", True, False, None, [1, 2], {"v": 1}, 2, -3.5, 10 ** 20, 1e20, 0, "",
            "a\\\"b"]


def make_rows():
    rng = random.Random(11)
    metas = []
    for i in range(N):
        if i % 101 == 0:
            metas.append({})
            continue
        m = {"tenant": i % 20, "cat": rng.choice(CATS)}
        m["score"] = rng.choice([round(rng.random() * 5, 2), rng.randint(0, 5), float(rng.randint(0, 5))])
        n = rng.choice(N_VALUES)
        if n is not _MISSING:
            m["n"] = n
        for k in WEIRD:
            if rng.random() < 0.4:
                m[k] = rng.choice([rng.choice(CATS), rng.randint(0, 3), rng.random() < 0.5])
        a = rng.choice([_MISSING, "dict", "dict", "anonymous", "list", "nullname"])
        if a == "dict":
            m["author"] = {"name": rng.choice(NAMES), "born": rng.randint(1900, 2000)}
        elif a == "list":
            m["author"] = [{"name": rng.choice(NAMES)}]
        elif a == "nullname":
            m["author"] = {"name": None}
        elif a == "anonymous":
            m["author"] = "anonymous"
        if rng.random() < 0.3:
            m["tags"] = rng.sample(["x", "y", "z"], rng.randint(0, 3))
        if rng.random() < 0.6:
            m["flag"] = rng.random() < 0.5
        metas.append(m)
    return metas


# Every operator on every kind of field, and the awkward values.
HAND = [
    {"tenant": 3}, {"tenant": 3.0}, {"tenant": "3"}, {"tenant": True},
    {"cat": "it's"}, {"cat": 'say "hi"'}, {"cat": "back\\slash"}, {"cat": "ünïcödé"}, {"cat": "😀 emoji"},
    {"cat": 'x") || true || ("'}, {"cat": "$v0"}, {"cat": "tab\tnew\nline"}, {"cat": "'; DROP TABLE x; --"},
    {"cat": "it's", "tenant": 3}, {"n": 1}, {"n": 1.0}, {"n": "1"}, {"n": True}, {"n": None}, {"n": 10 ** 20},
    {"n": 1e20}, {"n": ""}, {"n": "a\\\"b"}, {"n": 0}, {"n": False},
    {"author.name": "O'Brien"}, {"author": {"name": 'Quote"d'}}, {"author.name": None}, {"author": "anonymous"},
    {"we\"ird key": 'say "hi"'}, {"sp ace": 2}, {"clé": True}, {"back\\key": "back\\slash"},
    {"x') OR 1=1 --": 1},
    {"tenant": {"$ne": 3}}, {"n": {"$ne": 1}}, {"n": {"$ne": None}}, {"n": {"$ne": "1"}}, {"n": {"$ne": True}},
    {"cat": {"$ne": 'x") || true || ("'}}, {"author.name": {"$ne": "Banks"}},
    {"tenant": {"$in": [1, 2, "3", 4.0]}}, {"cat": {"$in": ["it's", 'say "hi"', "😀 emoji"]}},
    {"n": {"$in": [None, True, "1"]}}, {"n": {"$in": [1]}}, {"n": {"$in": []}},
    {"tenant": {"$nin": [1, 2, 3]}}, {"n": {"$nin": [1, None]}}, {"cat": {"$nin": ["plain", "back\\slash"]}},
    {"n": {"$nin": []}},
    {"score": {"$gt": 2.5}}, {"score": {"$gte": 3}}, {"score": {"$lt": 1}}, {"score": {"$lte": 1.0}},
    {"score": {"$gt": -1, "$lt": 0.5}}, {"n": {"$gt": 0}}, {"n": {"$lt": 10 ** 20}}, {"n": {"$gte": 1e20}},
    {"n": {"$gt": ""}}, {"cat": {"$gt": "m"}}, {"cat": {"$lte": "it's"}}, {"cat": {"$lt": "ü"}},
    {"author.born": {"$lt": 1950}}, {"we\"ird key": {"$gte": "s"}},
    {"author.name": {"$exists": True}}, {"author.name": {"$exists": False}}, {"n": {"$exists": True}},
    {"n": {"$exists": False}}, {"sp ace": {"$exists": True}}, {"tags": {"$exists": True}},
    {"$or": [{"tenant": 1}, {"score": {"$gt": 4.5}}]},
    {"$or": [{"cat": "it's"}, {"author.name": {"$exists": True}}, {"n": {"$in": [None, 2]}}]},
    {"$or": [{"tenant": 1}, {"flag": {"$exists": False}}]},
    {"$or": [{"tenant": 1}, {"n": {"$in": []}}]}, {"$or": [{"tenant": 1}, {"n": {"$nin": []}}]},
    {"$and": [{"tenant": {"$ne": 1}}, {"$or": [{"cat": "plain"}, {"n": None}]}]},
    {"$or": [{"$and": [{"tenant": 2}, {"flag": True}]}, {"author": {"name": "Banks", "born": {"$gt": 1950}}}]},
    {"$or": [{"n": {"$nin": [1, 2]}}, {"author.name": {"$ne": "Banks"}}], "flag": False},
    {"tenant": 3, "$or": [{"cat": {"$gt": "p"}}, {"score": {"$lte": 1}}], "n": {"$exists": True}},
]

_ATOM_FIELDS = ["tenant", "cat", "score", "n", "author.name", "author.born", "author", "flag", "tags",
                "missing"] + WEIRD
_ATOM_VALUES = [v for v in N_VALUES if v is not _MISSING and not isinstance(v, (list, dict))] + CATS[:6] + \
    [3, 0.5, 2.5, 1950, "Banks", "O'Brien"]


def random_filters(n, seed=5):
    rng = random.Random(seed)

    def atom():
        f = rng.choice(_ATOM_FIELDS)
        op = rng.choice(["eq", "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists"])
        if op == "eq":
            return {f: rng.choice(_ATOM_VALUES)}
        if op in ("$in", "$nin"):
            return {f: {op: rng.sample(_ATOM_VALUES, rng.randint(0, 4))}}
        if op == "$exists":
            return {f: {op: rng.random() < 0.5}}
        if op in ("$gt", "$gte", "$lt", "$lte"):
            return {f: {op: rng.choice([v for v in _ATOM_VALUES
                                        if isinstance(v, (int, float, str)) and not isinstance(v, bool)])}}
        return {f: {op: rng.choice(_ATOM_VALUES)}}

    def tree(depth):
        r = rng.random()
        if depth == 0 or r < 0.4:
            return atom()
        parts = [tree(depth - 1) for _ in range(rng.randint(1, 3))]
        if r < 0.6:
            merged = {}
            for p in parts:
                for k, v in p.items():
                    merged.setdefault(k, v)
            return merged
        return {rng.choice(["$and", "$or"]): parts}

    return [tree(3) for _ in range(n)]


FILTERS = HAND + random_filters(150)

# Forms the index evaluates: after the planner, no metadata condition is left
# as a Filter of the index scan.
INDEXABLE = [
    {"tenant": 3}, {"cat": "it's", "tenant": 3}, {"author.name": "O'Brien"}, {"n": None},
    {"tenant": {"$in": [1, 2, 3]}}, {"tenant": {"$ne": 3}}, {"tenant": {"$nin": [1, 2]}},
    {"score": {"$gt": 0.5}}, {"score": {"$gte": 1}}, {"score": {"$lt": 0.5}}, {"score": {"$lte": 2}},
    {"cat": {"$gt": "m"}}, {'we"ird key': {"$ne": 'say "hi"'}}, {"author.name": {"$exists": True}},
    {"$or": [{"tenant": 1}, {"score": {"$gt": 4}}, {"flag": {"$exists": True}}]},
    {"$and": [{"tenant": {"$ne": 1}}, {"$or": [{"cat": "plain"}, {"n": None}]}]},
    {"tenant": 3, "score": {"$gt": 1}, "$or": [{"cat": 'x") || true || ("'}, {"n": {"$in": [1, "1"]}}]},
]
NOT_INDEXABLE = [{"flag": {"$exists": False}}, {"$or": [{"tenant": 1}, {"flag": {"$exists": False}}]}]

_state = {}


def setUpModule():
    name = unique("findex")
    metas = make_rows()
    X = np.random.default_rng(2).standard_normal((N, DIM)).astype(np.float32)
    ids = [f"r{i:04d}" for i in range(N)]
    with vecext.Database(DSN, name, dim=DIM, metric="l2", m=8, ef_construction=32) as db:
        db.add_many(ids, X, metas)
        db.compact()  # VACUUM ANALYZE: statistics for the planner
    _state.update(name=name, metas=metas, X=X, ids=ids)


def tearDownModule():
    if "name" in _state:
        drop(_state["name"])


def expected(where):
    return sorted(i for i, m in zip(_state["ids"], _state["metas"]) if ref_match(m, where))


def plan_lines(conn, sql, params):
    return [r[0] for r in conn.execute("EXPLAIN " + sql, params, prepare=False).fetchall()]


def check_index_plan(test, lines, name, indexable):
    text = "\n".join(lines)
    test.assertIn(f"Index Scan using {name}_embedding_idx", text)
    conds = [ln for ln in lines if "Index Cond:" in ln]
    filters = [ln for ln in lines if "Filter:" in ln]
    if indexable:
        test.assertTrue(conds and all("metadata" in c for c in conds), text)
        test.assertFalse(filters, text)
    else:
        test.assertFalse(conds, text)
        test.assertTrue(filters and "metadata" in filters[0], text)


class SyncFilters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = _state["name"]
        cls.db = vecext.Database(DSN, cls.name)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()

    def test_count_and_get_match_reference(self):
        nonempty = 0
        for where in FILTERS:
            with self.subTest(where=where):
                want = expected(where)
                nonempty += bool(want) and len(want) < N
                self.assertEqual(self.db.count(where), len(want))
                self.assertEqual([r.id for r in self.db.get(where=where, include_embedding=False)], want)
        self.assertGreater(nonempty, len(FILTERS) // 2)  # the filters do discriminate

    def test_search_through_index_returns_every_match(self):
        # Through the hnsw index, with k = every match + 5: the index must
        # return each matching row (never exclude one wrongly), the executor's
        # recheck must drop the others. relaxed_order: a strict_order
        # iterative scan may skip an element it reaches after a farther one.
        c = self.db.connection
        for s in ("enable_seqscan = off", "enable_bitmapscan = off", "hnsw.iterative_scan = relaxed_order"):
            c.execute("SET " + s)
        try:
            for where in FILTERS:
                with self.subTest(where=where):
                    want = expected(where)
                    got = self.db.search(_state["X"][7], k=len(want) + 5, where=where, ef_search=100)
                    self.assertEqual(sorted(r.id for r in got), want)
        finally:
            for s in ("enable_seqscan", "enable_bitmapscan", "hnsw.iterative_scan"):
                c.execute("RESET " + s)

    def test_search_top_k(self):
        X = _state["X"]
        hits = total = 0
        for j, where in enumerate(FILTERS[::3]):
            with self.subTest(where=where):
                want = set(expected(where))
                q = X[(j * 37) % N] + 0.01
                got = self.db.search(q, k=10, where=where, ef_search=100)
                self.assertEqual(len(got), min(10, len(want)))
                self.assertTrue({r.id for r in got} <= want)
                rows = [i for i, rid in enumerate(_state["ids"]) if rid in want]
                if rows:
                    order, _ = exact_knn(X[rows], q, "l2", 10)
                    exact = {_state["ids"][rows[o]] for o in order}
                    hits += len(exact & {r.id for r in got})
                    total += len(exact)
        self.assertGreaterEqual(hits / total, 0.95)

    def test_explain_index_cond(self):
        c = self.db.connection
        q = _state["X"][3]
        c.execute("SET enable_seqscan = off")
        c.execute("SET enable_bitmapscan = off")
        try:
            for where, ok in [(w, True) for w in INDEXABLE] + [(w, False) for w in NOT_INDEXABLE]:
                with self.subTest(where=where):
                    sql, p = self.db._st.search(q, 10, where, None)
                    check_index_plan(self, plan_lines(c, sql, p.bind()), self.name, ok)
        finally:
            c.execute("RESET enable_seqscan")
            c.execute("RESET enable_bitmapscan")
        # Without any setting, broad filters go to the in-index filter by themselves.
        for where in ({"tenant": {"$ne": 3}}, {"score": {"$gte": 0.5}},
                      {"$or": [{"tenant": {"$gt": 2}}, {"flag": True}]}):
            with self.subTest(where=where, natural=True):
                sql, p = self.db._st.search(q, 10, where, None)
                check_index_plan(self, plan_lines(c, sql, p.bind()), self.name, True)

    def test_hostile_values_and_keys(self):
        for where, member in ((({"cat": 'x") || true || ("'}), True), ({"cat": "'; DROP TABLE x; --"}, True),
                              ({"x') OR 1=1 --": {"$exists": True}}, True),
                              ({"cat": {"$in": ['x") || true || ("', "nothing"]}}, True),
                              ({"cat": 'x" || $."cat" == "plain'}, False),
                              ({"cat": {"$ne": 'x" || true || "'}}, True),
                              ({'cat" || $."tenant" == 1 || $."x': 1}, False)):
            with self.subTest(where=where):
                want = expected(where)
                self.assertEqual(bool(want), member)
                self.assertEqual([r.id for r in self.db.get(where=where, include_embedding=False)], want)
                got = self.db.search(_state["X"][0], k=N, where=where)
                self.assertEqual(sorted(r.id for r in got), want)
        self.assertEqual(self.db.count(), N)

    def test_filtered_statements_are_never_prepared(self):
        c = self.db.connection
        for t in range(8):
            self.db.search(_state["X"][t], k=5, where={"tenant": t})
            self.db.count({"tenant": {"$ne": t}})
        for t in range(8):
            self.db.search(_state["X"][t], k=5)  # unfiltered: may be prepared
        rows = c.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        self.assertFalse([s for (s,) in rows if "metadata @" in s], rows)

    def test_older_layout_still_filters(self):
        # hnsw on the embedding only and a GIN index, as collections were made before
        name = unique("fold")
        try:
            with admin() as c:
                c.execute(f'CREATE TABLE "{name}" (id text PRIMARY KEY, embedding vector({DIM}) NOT NULL, '
                          f"metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb)")
                c.execute(f'CREATE INDEX "{name}_embedding_idx" ON "{name}" USING hnsw (embedding vector_l2_ops)')
                c.execute(f'CREATE INDEX "{name}_metadata_idx" ON "{name}" USING gin (metadata jsonb_path_ops)')
            with vecext.Database(DSN, name) as db:
                self.assertEqual((db.dim, db.metric), (DIM, "l2"))
                db.add_many(_state["ids"][:600], _state["X"][:600], _state["metas"][:600])
                c = db.connection
                for s in ("enable_seqscan = off", "enable_bitmapscan = off", "hnsw.iterative_scan = relaxed_order"):
                    c.execute("SET " + s)
                for where in HAND:
                    with self.subTest(where=where):
                        want = sorted(i for i, m in zip(_state["ids"][:600], _state["metas"][:600])
                                      if ref_match(m, where))
                        self.assertEqual(db.count(where), len(want))
                        got = db.search(_state["X"][1], k=len(want) + 1, where=where, ef_search=100)
                        self.assertEqual(sorted(r.id for r in got), want)
                sql, p = db._st.search(_state["X"][1], 10, {"tenant": {"$ne": 3}}, None)
                check_index_plan(self, plan_lines(c, sql, p.bind()), name, False)  # filtered after the scan
        finally:
            drop(name)


class AsyncFilters(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.name = _state["name"]
        # One connection that never takes a sequential or bitmap scan: every search goes
        # through hnsw (relaxed_order: see test_search_through_index_returns_every_match).
        self.pool = await vecext.create_pool(DSN, min_size=1, max_size=1,
                                             server_settings={"enable_seqscan": "off",
                                                              "enable_bitmapscan": "off",
                                                              "hnsw.iterative_scan": "relaxed_order"})
        self.db = await vecext.AsyncDatabase(DSN, self.name, pool=self.pool).open()

    async def asyncTearDown(self):
        await self.db.close()
        await self.pool.close()

    async def test_count_get_search_match_reference(self):
        for where in FILTERS:
            with self.subTest(where=where):
                want = expected(where)
                self.assertEqual(await self.db.count(where), len(want))
                got = await self.db.get(where=where, include_embedding=False)
                self.assertEqual([r.id for r in got], want)
                hits = await self.db.search(_state["X"][11], k=len(want) + 5, where=where, ef_search=100)
                self.assertEqual(sorted(r.id for r in hits), want)

    async def test_gathered_searches(self):
        wheres = FILTERS[:40]
        res = await asyncio.gather(*(self.db.search(_state["X"][i], k=N, where=w) for i, w in enumerate(wheres)))
        for w, got in zip(wheres, res):
            self.assertEqual(sorted(r.id for r in got), expected(w))

    async def test_explain_index_cond(self):
        q = _state["X"][3]
        async with self.pool.acquire() as conn:
            for where, ok in [(w, True) for w in INDEXABLE] + [(w, False) for w in NOT_INDEXABLE]:
                with self.subTest(where=where):
                    sql, p = self.db._st.search(q, 10, where, None)
                    lines = [r[0] for r in await conn.fetch("EXPLAIN " + sql, *p.bind())]
                    check_index_plan(self, lines, self.name, ok)

    async def _filtered_searches(self, db):
        for t in range(10):
            await db.search(_state["X"][t], k=5, where={"tenant": t % 3})
            await db.search(_state["X"][t], k=5, where={"score": {"$gt": t / 3}}, ef_search=60)

    def _check_custom_plans(self, rows):
        filtered = [r for r in rows if "metadata @" in r["statement"]]
        self.assertEqual(len(filtered), 2, rows)  # the @> and the @@ statement, each prepared once
        for r in filtered:
            self.assertEqual((r["generic_plans"], r["custom_plans"]), (0, 10), r)

    async def test_no_generic_plans_on_a_foreign_pool(self):
        # a pool not made by vecext: filtered statements SET LOCAL plan_cache_mode
        pool = await asyncpg.create_pool(DSN, min_size=1, max_size=1, init=vecext.register_vector_asyncpg)
        try:
            db = await vecext.AsyncDatabase(DSN, self.name, pool=pool).open()
            await self._filtered_searches(db)
            async with pool.acquire() as conn:
                rows = await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
                self.assertEqual(await conn.fetchval("SHOW plan_cache_mode"), "auto")  # the session's own
            self._check_custom_plans(rows)
            await db.close()
        finally:
            await pool.close()

    async def test_no_generic_plans_on_own_pool(self):
        # a pool the database makes: the session plans every execution
        async with vecext.AsyncDatabase(DSN, self.name, min_size=1, max_size=1) as db:
            await self._filtered_searches(db)
            async with db.pool.acquire() as conn:
                rows = await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
                self.assertEqual(await conn.fetchval("SHOW plan_cache_mode"), "force_custom_plan")
            self._check_custom_plans(rows)
        async with vecext.AsyncClient(DSN, min_size=1, max_size=1) as client:
            db = await client.get_collection(self.name)
            self.assertTrue(db._custom_plans)
        pool = await vecext.create_pool(DSN, min_size=1, max_size=1,
                                        server_settings={"plan_cache_mode": "auto"})
        try:
            async with pool.acquire() as conn:
                self.assertEqual(await conn.fetchval("SHOW plan_cache_mode"), "auto")
        finally:
            await pool.close()


if __name__ == "__main__":
    unittest.main()
