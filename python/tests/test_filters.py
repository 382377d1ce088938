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
        self.assertEqual(sql, "metadata @@ $1::jsonpath")
        self.assertEqual(params, ['strict ($."tag" == "x" || $."tag" == "y")'])
        self.assertEqual(compiled({"tag": {"$in": []}})[0], "false")
        self.assertEqual(compiled({"tag": {"$in": ["x"]}})[0], "metadata @> $1::jsonb")

    def test_comparisons_use_jsonpath_with_inlined_literals(self):
        sql, params = compiled({"year": {"$gte": 2000, "$lt": 2010}})
        self.assertEqual(sql, "(metadata @@ $1::jsonpath AND metadata @@ $2::jsonpath)")
        self.assertEqual(params, ['strict $."year" >= 2000', 'strict $."year" < 2010'])
        for value, literal in ((-5, "-5"), (4.5, "4.5"), (1e20, "1e+20"), (1.5e-7, "1.5e-07"),
                               (10 ** 30, "1" + "0" * 30), (-0.0, "-0.0"), ("m", '"m"')):
            with self.subTest(value=value):
                self.assertEqual(compiled({"f": {"$gt": value}})[1], ['strict $."f" > ' + literal])

    def test_ne_nin_exists(self):
        self.assertEqual(compiled({"a": {"$ne": "x"}})[1], ['strict $."a" != "x"'])
        # arrays and objects differ from null in jsonpath: $ne None requires a scalar
        self.assertEqual(compiled({"a": {"$ne": None}})[1],
                         ['strict ($."a" != null && ($."a".type() != "array" && $."a".type() != "object"))'])
        self.assertEqual(compiled({"a": {"$nin": [None, None]}})[1],
                         ['strict ($."a" != null && ($."a".type() != "array" && $."a".type() != "object"))'])
        self.assertEqual(compiled({"a": {"$nin": [None, 1]}})[1], ['strict ($."a" != null && $."a" != 1)'])
        self.assertEqual(compiled({"a": {"$ne": True}})[1], ['strict $."a" != true'])
        self.assertEqual(compiled({"a": {"$nin": [1, False]}}),
                         ("metadata @@ $1::jsonpath", ['strict ($."a" != 1 && $."a" != false)']))
        self.assertEqual(compiled({"a": {"$nin": []}}), ("true", []))
        self.assertEqual(compiled({"a.b": {"$exists": True}}), ("metadata @? $1::jsonpath", ['strict $."a"."b"']))
        self.assertEqual(compiled({"a": {"$exists": False}})[0], "NOT coalesce(metadata @? $1::jsonpath, false)")

    def test_long_chains_are_balanced(self):
        _, params = compiled({"a": {"$in": [1, 2, 3, 4, 5]}})
        self.assertEqual(params, ['strict (($."a" == 1 || $."a" == 2) || '
                                  '($."a" == 3 || ($."a" == 4 || $."a" == 5)))'])
        _, params = compiled({"a": {"$nin": list(range(1000))}})
        depth = max_depth = 0
        for ch in params[0]:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            max_depth = max(max_depth, depth)
        self.assertLessEqual(max_depth, 11)

    def test_and_or(self):
        sql, params = compiled({"$or": [{"a": 1}, {"b": {"$gt": 2}}], "c": 3})
        self.assertEqual(sql, "(metadata @> $2::jsonb AND metadata @@ $1::jsonpath)")
        self.assertEqual(params, ['strict ($."a" == 1 || $."b" > 2)', '{"c": 3}'])
        sql, _ = compiled({"$and": [{"a": 1}, {"a": 2}]})
        self.assertEqual(sql, "(metadata @> $1::jsonb AND metadata @> $2::jsonb)")
        # every branch in jsonpath: one @@ condition
        sql, params = compiled({"$or": [{"a": 1, "b.c": {"$in": ["x", "y"]}},
                                        {"$and": [{"d": {"$exists": True}}, {"e": {"$lte": 1, "$ne": 0}}]},
                                        {"$or": [{"f": None}, {"g": {"$nin": ["z", 2]}}]}]})
        self.assertEqual(sql, "metadata @@ $1::jsonpath")
        self.assertEqual(params, [
            'strict (($."a" == 1 && ($."b"."c" == "x" || $."b"."c" == "y")) || '
            '((exists($."d") && ($."e" <= 1 && $."e" != 0)) || '
            '($."f" == null || ($."g" != "z" && $."g" != 2))))'])
        # a branch without a jsonpath form: an SQL OR
        sql, params = compiled({"$or": [{"a": 1}, {"b": {"$exists": False}}]})
        self.assertEqual(sql, "(metadata @> $1::jsonb OR NOT coalesce(metadata @? $2::jsonpath, false))")
        sql, _ = compiled({"$or": [{"a": 1}, {"b": {"$in": []}}]})
        self.assertEqual(sql, "(metadata @> $1::jsonb OR false)")
        sql, _ = compiled({"$or": [{"a": 1}, {"b": {"$nin": []}}]})
        self.assertEqual(sql, "(metadata @> $1::jsonb OR true)")
        # $and stays SQL AND (each part its own index condition)
        sql, _ = compiled({"$and": [{"a": {"$gt": 1}}, {"$or": [{"b": 1}, {"c": 2}]}]})
        self.assertEqual(sql, "(metadata @@ $1::jsonpath AND metadata @@ $2::jsonpath)")

    def test_values_and_keys_never_in_sql(self):
        evil = "x'); DROP TABLE t; --"
        sql, params = compiled({evil: {"$gt": evil, "$ne": evil}, "k": evil, "$or": [{evil: {"$in": [evil, 1]}}]})
        self.assertNotIn("DROP", sql)
        self.assertNotIn("'", sql)
        self.assertNotIn('"', sql)

    def test_literal_quoting_in_jsonpath(self):
        # a value cannot end its jsonpath string early: JSON escapes, which jsonpath reads
        _, params = compiled({"a": {"$ne": 'x" || $."b" == "y'}})
        self.assertEqual(params, ['strict $."a" != "x\\" || $.\\"b\\" == \\"y"'])
        _, params = compiled({"a": {"$gt": 'back\\slash\n\t\x01é😀'}})
        self.assertEqual(params, ['strict $."a" > "back\\\\slash\\n\\t\\u0001é😀"'])
        _, params = compiled({"a": {"$in": ["$v0", "$"]}})
        self.assertEqual(params, ['strict ($."a" == "$v0" || $."a" == "$")'])

    def test_key_quoting_in_jsonpath(self):
        _, params = compiled({'we"ird\\key': {"$gt": 1}})
        self.assertEqual(params[0], 'strict $."we\\"ird\\\\key" > 1')
        _, params = compiled({"clé ü": {"$lt": 1}})
        self.assertEqual(params[0], 'strict $."clé ü" < 1')
        _, params = compiled({'k") || true || ("': {"$ne": 1}})
        self.assertEqual(params[0], 'strict $."k\\") || true || (\\"" != 1')

    def test_psycopg_placeholders_are_named(self):
        p = Params("psycopg")
        sql = compile_where({"a": {"$gt": 1}, "b": 2}, p, "t.metadata")
        self.assertEqual(sql, "(t.metadata @> %(p2)s::jsonb AND t.metadata @@ %(p1)s::jsonpath)")
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
        self.bad({"a": "x\x00y"}, "NUL character in a value")
        self.bad({"a": {"$in": ["ok", "\x00"]}}, "NUL character in a value of $in")
        self.bad({"a\x00": 1}, "NUL character in a filter key")
        self.bad({"a": {"$ne": "\ud800"}}, "not valid Unicode")
        self.bad({"\udfff": 1}, "not valid Unicode")


if __name__ == "__main__":
    unittest.main()
