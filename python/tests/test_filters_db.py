"""Filter semantics on a real server, checked against a Python reference of the
documented rules (helpers.ref_match), through count, get, search and delete_many."""

import unittest

import numpy as np

import vecext
from helpers import DSN, drop, ref_match, unique

ITEMS = {
    "a": {"genre": "scifi", "year": 2001, "rating": 4.5, "author": {"name": "Le Guin", "born": 1929}},
    "b": {"genre": "fantasy", "year": 1990, "rating": 3, "tags": ["x", "y"], "author": {"name": "Tolkien"}},
    "c": {"genre": "scifi", "year": "2001", "rating": None, "draft": True},
    "d": {"genre": "horror", "year": 2010.0, "author": "anonymous", "draft": False},
    "e": {},
    "f": {"genre": "Scifi", "year": 1999, "rating": 5, 'we"ird key': "v", "clé": "é"},
    "g": {"genre": "scifi", "year": 2015, "author": {"name": "Banks", "born": 1954, "x": {"deep": 1}}},
    "h": {"genre": ["scifi", "horror"], "year": [2001, 2002]},
    "i": {"genre": "x'); DROP TABLE t; --", "year": -5, "n": 0},
}

FILTERS = [
    {"genre": "scifi"},
    {"genre": {"$eq": "scifi"}},
    {"genre": "scifi", "year": 2001},
    {"year": 2001},
    {"year": 2001.0},
    {"year": "2001"},
    {"rating": None},
    {"draft": True},
    {"draft": False},
    {"genre": {"$ne": "scifi"}},
    {"year": {"$ne": 2001}},
    {"rating": {"$ne": None}},
    {"genre": {"$in": ["scifi", "horror"]}},
    {"year": {"$in": [2001, "1990", 1990]}},
    {"genre": {"$in": []}},
    {"genre": {"$nin": ["scifi", "horror"]}},
    {"genre": {"$nin": []}},
    {"year": {"$gt": 2000}},
    {"year": {"$gte": 2001}},
    {"year": {"$lt": 2001}},
    {"year": {"$lte": 2001, "$gt": 1990}},
    {"year": {"$gt": "2000"}},
    {"genre": {"$gt": "m"}},
    {"genre": {"$lt": "a"}},
    {"rating": {"$gte": 4}},
    {"author.name": "Le Guin"},
    {"author": {"name": "Tolkien"}},
    {"author.born": {"$lt": 1950}},
    {"author": {"born": {"$gt": 1900}, "name": {"$ne": "Banks"}}},
    {"author.x.deep": 1},
    {"author": "anonymous"},
    {"author.name": {"$exists": True}},
    {"author.name": {"$exists": False}},
    {"rating": {"$exists": True}},
    {"tags": {"$exists": True}},
    {"nothing": {"$exists": False}},
    {"$or": [{"genre": "fantasy"}, {"year": {"$gt": 2005}}]},
    {"$and": [{"genre": "scifi"}, {"year": {"$gte": 2001}}]},
    {"$or": [{"$and": [{"genre": "scifi"}, {"draft": True}]}, {"author.name": "Banks"}], "year": {"$exists": True}},
    {'we"ird key': "v"},
    {'we"ird key': {"$gte": "a"}},
    {"clé": "é"},
    {"genre": "x'); DROP TABLE t; --"},
    {"genre": {"$gt": "x'); DROP"}},
    {"n": 0},
    {"n": False},
    {"year": {"$lt": 0}},
]


class FilterSemantics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = unique("filters")
        cls.db = vecext.Database(DSN, cls.name, dim=3, metric="l2")
        rng = np.random.default_rng(3)
        cls.ids = sorted(ITEMS)
        cls.vecs = rng.standard_normal((len(cls.ids), 3)).astype(np.float32)
        cls.db.add_many(cls.ids, cls.vecs, [ITEMS[i] for i in cls.ids])

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        drop(cls.name)

    def expected(self, where):
        return sorted(i for i in self.ids if ref_match(ITEMS[i], where))

    def test_count_and_get(self):
        for where in FILTERS:
            with self.subTest(where=where):
                want = self.expected(where)
                self.assertEqual(self.db.count(where), len(want))
                self.assertEqual([r.id for r in self.db.get(where=where, include_embedding=False)], want)

    def test_search(self):
        for where in FILTERS:
            with self.subTest(where=where):
                got = self.db.search([0, 0, 0], k=len(self.ids), where=where, ef_search=100)
                self.assertEqual(sorted(r.id for r in got), self.expected(where))
                self.assertEqual([r.distance for r in got], sorted(r.distance for r in got))

    def test_search_many_with_filter(self):
        where = {"genre": {"$in": ["scifi", "fantasy"]}}
        got = self.db.search_many([[0, 0, 0], [1, 1, 1]], k=20, where=where)
        for lst in got:
            self.assertEqual(sorted(r.id for r in lst), self.expected(where))

    def test_table_survives(self):
        self.assertEqual(self.db.count(), len(ITEMS))

    def test_delete_many_where(self):
        name = unique("fdel")
        with vecext.Database(DSN, name, dim=3) as db:
            try:
                db.add_many(self.ids, self.vecs, [ITEMS[i] for i in self.ids])
                where = {"year": {"$gte": 2001}}
                n = db.delete_many(where=where)
                self.assertEqual(n, len(self.expected(where)))
                self.assertEqual(db.count(), len(ITEMS) - n)
                self.assertEqual(db.count(where), 0)
                self.assertEqual(db.delete_many(ids=["a", "b", "e"], where={"genre": "fantasy"}), 1)
                self.assertIsNone(db.get("b"))
            finally:
                drop(name)


if __name__ == "__main__":
    unittest.main()
