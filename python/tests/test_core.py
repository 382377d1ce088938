"""Driver-independent helpers (no server): names, MMR, batches, result rows."""

import unittest
from unittest import mock

import numpy as np

from vecext import _core
from vecext import vector as V
from vecext.errors import InvalidNameError


class Names(unittest.TestCase):
    def test_collection_names(self):
        for ok in ("a", "items", "my_items_2", "a" * 48):
            self.assertEqual(_core.validate_name(ok), ok)
        for bad in ("", "A", "_a", "1a", "a-b", "a b", 'a"b', "a" * 49, "é", None, 3):
            with self.subTest(bad=bad), self.assertRaises(InvalidNameError):
                _core.validate_name(bad)

    def test_quote_ident(self):
        self.assertEqual(_core.quote_ident("ab"), '"ab"')
        self.assertEqual(_core.quote_ident('a"b'), '"a""b"')


class Mmr(unittest.TestCase):
    def test_numpy_and_pure_python_agree(self):
        rng = np.random.default_rng(4)
        q = rng.standard_normal(6)
        cands = list(rng.standard_normal((15, 6)).astype(np.float32))
        for lam in (0.0, 0.3, 0.5, 1.0):
            with self.subTest(lam=lam):
                a = _core.mmr(q, cands, 5, lam)
                with mock.patch.object(V, "HAVE_NUMPY", False):
                    b = _core.mmr(q.tolist(), [c.tolist() for c in cands], 5, lam)
                self.assertEqual(a, b)
                self.assertEqual(len(set(a)), 5)

    def test_relevance_only_is_similarity_order(self):
        q = np.array([1.0, 0.0])
        cands = [np.array([0.0, 1.0]), np.array([1.0, 0.1]), np.array([1.0, 0.5])]
        self.assertEqual(_core.mmr(q, cands, 3, 1.0), [1, 2, 0])
        self.assertEqual(_core.mmr(q, [], 3, 0.5), [])


class Batches(unittest.TestCase):
    def test_rows_dedupe_last_wins(self):
        rows = _core.Rows(["a", "b", "a"], [[1], [2], [3]], [{"n": 1}, None, {"n": 3}], None, 1, dedupe=True)
        self.assertEqual(rows.ids, ["b", "a"])
        self.assertEqual([v.tolist() for v in rows.vectors], [[2.0], [3.0]])
        self.assertEqual(rows.metadata, [{}, {"n": 3}])
        self.assertFalse(rows.has_documents)

    def test_rows_accept_a_matrix(self):
        rows = _core.Rows(["a", "b"], np.ones((2, 3)), None, ["x", None], 3, dedupe=False)
        self.assertEqual(len(rows), 2)
        self.assertTrue(rows.has_documents)

    def test_export_line_and_import_record(self):
        line = _core.export_line(("id\"1", "[1,-0,1e-05]", '{"a": 1}', "doc"))
        rid, emb, meta, doc = _core.import_record(line, 1)
        self.assertEqual((rid, meta, doc), ('id"1', {"a": 1}, "doc"))
        self.assertEqual(V.as_float32(emb).view(np.uint32).tolist(),
                         np.array([1, -0.0, 1e-05], dtype=np.float32).view(np.uint32).tolist())
        with self.assertRaises(ValueError):
            _core.import_record("[1]", 3)


if __name__ == "__main__":
    unittest.main()
