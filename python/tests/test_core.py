"""Driver-independent helpers (no server): names, MMR, batches, result rows."""

import json
import unittest
from unittest import mock

import numpy as np

from vecext import _core, errors
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


class Quantization(unittest.TestCase):
    def _row(self, reloptions):
        cols = '[["id", "text", -1], ["embedding", "vector", 3072], ["metadata", "jsonb", -1]]'
        idx = json.dumps([["x_embedding_idx", "hnsw", "vector_cosine_ops", reloptions, "", "embedding"]])
        return ("x", cols, idx)

    def test_catalog_reads_the_quantization_option(self):
        for opts, want in ((["m=8", "quantization=sq8"], True), (["quantization=SQ8"], True),
                           (["quantization=none"], False), (None, False), (["m=8"], False)):
            with self.subTest(opts=opts):
                info, why = _core.parse_catalog("public", self._row(opts))
                self.assertEqual(why, "")
                self.assertEqual((info.quantize, info.dim, info.metric), (want, 3072, "cosine"))

    def test_create_statement(self):
        ddl = _core.Statements.create('"t"', '"e"', '"m"', '"d"', 4, "l2", 8, 32, False, "english", True)[1]
        self.assertTrue(ddl.endswith("WITH (m = 8, ef_construction = 32, quantization = 'sq8')"), ddl)
        ddl = _core.Statements.create('"t"', '"e"', '"m"', '"d"', 4, "l2", 8, 32, False, "english")[1]
        self.assertNotIn("quantization", ddl)

    def test_dimension_limits(self):
        self.assertEqual(_core.check_dim(2000, False), 2000)
        self.assertEqual(_core.check_dim(8000, True), 8000)
        for dim, q, msg in ((2001, False, "at most 2000"), (8001, True, "at most 8000"), (0, True, "positive"),
                            (True, False, "positive"), (3.0, True, "positive")):
            with self.subTest(dim=dim, quantize=q), self.assertRaisesRegex(ValueError, msg):
                _core.check_dim(dim, q)

    def test_search_settings(self):
        self.assertEqual(_core.search_settings(None, None), [])
        self.assertEqual(_core.search_settings(80, False),
                         ["SET LOCAL hnsw.ef_search = 80", "SET LOCAL hnsw.quantized_search = off"])
        self.assertEqual(_core.search_settings(None, True), ["SET LOCAL hnsw.quantized_search = on"])
        with self.assertRaises(TypeError):
            _core.search_settings(None, 0)
        with self.assertRaises(ValueError):
            _core.search_settings(0, None)

    def test_server_feature_not_supported_is_mapped(self):
        e = errors.from_server("hnsw index \"x\" stores SQ8 codes only", "0A000", "the detail", "the hint")
        self.assertIsInstance(e, errors.FeatureNotAvailableError)
        self.assertEqual((e.sqlstate, e.detail, e.hint), ("0A000", "the detail", "the hint"))
        self.assertIsInstance(errors.from_server("x", "XX000"), errors.QueryError)


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
