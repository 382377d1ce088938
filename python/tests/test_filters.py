"""Filter compilation (no server): the SQL shape, parameters and errors."""

import json
import unittest

from vecext.errors import FilterError
from vecext.filters import Params, compile_where, explain


def compiled(where):
    return explain(where)


class Compile(unittest.TestCase):
    def test_none_and_empty(self):
        self.assertEqual(compiled(None), (None, []))
        self.assertEqual(compiled({}), (None, []))

    def test_equalities_merge_into_one_containment(self):
        sql, params = compiled({"genre": "scifi", "year": 2001, "author.name": "Le Guin"})
        self.assertEqual(sql, "metadata @> $1::jsonb")
        self.assertEqual(json.loads(params[0]), {"genre": "scifi", "year": 2001, "author": {"name": "Le Guin"}})

    def test_dotted_and_nested_dict_are_the_same(self):
        self.assertEqual(compiled({"a.b.c": 1}), compiled({"a": {"b": {"c": 1}}}))
        self.assertEqual(compiled({"a.b": {"$gt": 1}}), compiled({"a": {"b": {"$gt": 1}}}))

    def test_conflicting_equalities_stay_separate(self):
        sql, params = compiled({"a": {"$eq": 1, "$in": [2]}})
        self.assertEqual(sql, "(metadata @> $2::jsonb AND metadata @> $1::jsonb)")
        self.assertEqual([json.loads(p) for p in params], [{"a": 2}, {"a": 1}])
        sql, params = compiled({"a": 1, "a.b": 2})
        self.assertEqual(len(params), 2)

    def test_in(self):
        sql, params = compiled({"tag": {"$in": ["x", "y"]}})
        self.assertEqual(sql, "metadata @> ANY($1::text[]::jsonb[])")
        self.assertEqual([json.loads(p) for p in params[0]], [{"tag": "x"}, {"tag": "y"}])
        self.assertEqual(compiled({"tag": {"$in": []}})[0], "false")
        self.assertEqual(compiled({"tag": {"$in": ["x"]}})[0], "metadata @> $1::jsonb")

    def test_comparisons_use_jsonpath_with_vars(self):
        sql, params = compiled({"year": {"$gte": 2000, "$lt": 2010}})
        self.assertEqual(sql, "(jsonb_path_match(metadata, $1::jsonpath, $2::jsonb, true) AND "
                              "jsonb_path_match(metadata, $3::jsonpath, $4::jsonb, true))")
        self.assertEqual(params[0], 'strict $."year" >= $v0')
        self.assertEqual(json.loads(params[1]), {"v0": 2000})
        self.assertEqual(params[2], 'strict $."year" < $v0')

    def test_ne_nin_exists(self):
        self.assertEqual(compiled({"a": {"$ne": "x"}})[1][0], 'strict $."a" != $v0')
        sql, params = compiled({"a": {"$nin": [1, 2]}})
        self.assertEqual(params[0], 'strict $."a" != $v0 && $."a" != $v1')
        self.assertEqual(json.loads(params[1]), {"v0": 1, "v1": 2})
        self.assertEqual(compiled({"a": {"$nin": []}}), ("true", []))
        self.assertEqual(compiled({"a.b": {"$exists": True}}), ("metadata @? $1::jsonpath", ['strict $."a"."b"']))
        self.assertEqual(compiled({"a": {"$exists": False}})[0], "NOT coalesce(metadata @? $1::jsonpath, false)")

    def test_and_or(self):
        sql, params = compiled({"$or": [{"a": 1}, {"b": {"$gt": 2}}], "c": 3})
        self.assertEqual(sql, "(metadata @> $4::jsonb AND (metadata @> $1::jsonb OR "
                              "jsonb_path_match(metadata, $2::jsonpath, $3::jsonb, true)))")
        self.assertEqual(json.loads(params[3]), {"c": 3})
        sql, _ = compiled({"$and": [{"a": 1}, {"a": 2}]})
        self.assertEqual(sql, "(metadata @> $1::jsonb AND metadata @> $2::jsonb)")

    def test_values_and_keys_never_in_sql(self):
        evil = "x'); DROP TABLE t; --"
        sql, params = compiled({evil: {"$gt": evil, "$ne": evil}, "k": evil, "$or": [{evil: {"$in": [evil, 1]}}]})
        self.assertNotIn("DROP", sql)
        self.assertNotIn("'", sql)

    def test_key_quoting_in_jsonpath(self):
        _, params = compiled({'we"ird\\key': {"$gt": 1}})
        self.assertEqual(params[0], 'strict $."we\\"ird\\\\key" > $v0')
        _, params = compiled({"clé ü": {"$lt": 1}})
        self.assertEqual(params[0], 'strict $."clé ü" < $v0')

    def test_psycopg_placeholders_are_named(self):
        p = Params("psycopg")
        sql = compile_where({"a": {"$gt": 1}}, p, "t.metadata")
        self.assertEqual(sql, "jsonb_path_match(t.metadata, %(p1)s::jsonpath, %(p2)s::jsonb, true)")
        self.assertEqual(set(p.bind()), {"p1", "p2"})


class Errors(unittest.TestCase):
    def bad(self, where, fragment):
        with self.assertRaises(FilterError) as cm:
            compiled(where)
        self.assertIn(fragment, str(cm.exception))
        self.assertIsInstance(cm.exception, ValueError)

    def test_unknown_operators(self):
        self.bad({"a": {"$regex": "x"}}, "unknown operator '$regex'")
        self.bad({"$nor": [{"a": 1}]}, "unknown operator '$nor'")
        self.bad({"$gt": 1}, "field operators go inside a field")

    def test_bad_shapes(self):
        self.bad({"a": [1, 2]}, "use {\"$in\"")
        self.bad({"a": {}}, "empty condition")
        self.bad({"a": {"$gt": 1, "b": 2}}, "mixes operators and nested field names")
        self.bad({"$or": []}, "non-empty list")
        self.bad({"$and": {"a": 1}}, "non-empty list")
        self.bad({"$or": [{}]}, "empty filter")
        self.bad({"a..b": 1}, "empty component")
        self.bad({"": 1}, "empty key")
        self.bad({1: 1}, "keys must be strings")
        with self.assertRaises(FilterError):
            compile_where("genre = 'x'", Params("asyncpg"))

    def test_bad_values(self):
        self.bad({"a": {"$gt": True}}, "takes a number or a string")
        self.bad({"a": {"$lt": None}}, "takes a number or a string")
        self.bad({"a": {"$gt": [1]}}, "takes a number or a string")
        self.bad({"a": {"$eq": {"b": 1}}}, "takes a string, number, boolean or None")
        self.bad({"a": {"$in": "abc"}}, "takes a list")
        self.bad({"a": {"$in": [[1]]}}, "takes a string, number")
        self.bad({"a": {"$exists": 1}}, "takes True or False")
        self.bad({"a": float("nan")}, "NaN")
        self.bad({"a": {"$gt": float("inf")}}, "NaN")


if __name__ == "__main__":
    unittest.main()
