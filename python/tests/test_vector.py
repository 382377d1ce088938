"""The vector value and its wire formats, without a server."""

import struct
import unittest

import numpy as np

from vecext import vector as V
from vecext.errors import DimensionMismatchError, InvalidVectorError, VecextError


class TextFormat(unittest.TestCase):
    def test_to_text_list_and_numpy(self):
        self.assertEqual(V.to_text([1, 2.5, -3]), "[1.0,2.5,-3.0]")
        self.assertEqual(V.to_text(np.array([1, 2.5, -3], dtype=np.float32)), "[1.0,2.5,-3.0]")
        self.assertEqual(V.to_text(V.Vector([0.5])), "[0.5]")

    def test_parse_text(self):
        a = V.parse_text("[1,2.5,-3]")
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.tolist(), [1.0, 2.5, -3.0])
        self.assertEqual(V.parse_text(" [ 1 , 1e-05 ] ", use_numpy=False), [1.0, 1e-05])

    def test_parse_text_errors(self):
        for bad in ("", "[]", "1,2", "[1,2", "[a]", "[1,,2]"):
            with self.subTest(bad=bad), self.assertRaises(InvalidVectorError):
                V.parse_text(bad)

    def test_text_round_trip_is_exact_for_float32(self):
        rng = np.random.default_rng(1)
        a = (rng.standard_normal(256) * 10.0 ** rng.integers(-30, 30, 256)).astype(np.float32)
        b = V.parse_text(V.to_text(a))
        self.assertEqual(a.view(np.uint32).tolist(), b.view(np.uint32).tolist())


class BinaryFormat(unittest.TestCase):
    def test_layout(self):
        # int16 dim, int16 0, then big-endian float4
        self.assertEqual(V.to_binary([1.0, -2.5]), b"\x00\x02\x00\x00" + struct.pack(">ff", 1.0, -2.5))
        self.assertEqual(V.to_binary(np.array([3], dtype=np.float64)), b"\x00\x01\x00\x00" + struct.pack(">f", 3))

    def test_round_trip(self):
        rng = np.random.default_rng(2)
        a = rng.standard_normal(1000).astype(np.float32)
        b = V.parse_binary(V.to_binary(a))
        self.assertEqual(b.dtype, np.float32)
        self.assertTrue(np.array_equal(a, b))
        lst = V.parse_binary(V.to_binary(a), use_numpy=False)
        self.assertIsInstance(lst, list)
        self.assertEqual(lst, a.astype(np.float64).tolist())

    def test_bytes_and_text_inputs(self):
        raw = V.to_binary([1, 2])
        self.assertEqual(V.to_binary(raw), raw)
        self.assertEqual(V.to_binary("[1,2]"), raw)

    def test_bad_binary(self):
        with self.assertRaises(InvalidVectorError):
            V.parse_binary(b"\x00\x02")
        with self.assertRaises(InvalidVectorError):
            V.parse_binary(b"\x00\x02\x00\x00" + b"\x00" * 4)


class Checks(unittest.TestCase):
    def test_dimension_mismatch(self):
        with self.assertRaises(DimensionMismatchError) as cm:
            V.as_float32([1, 2], dim=3)
        self.assertEqual(cm.exception.sqlstate, "22000")
        self.assertIn("expected 3 dimensions, not 2", str(cm.exception))
        self.assertIsInstance(cm.exception, ValueError)
        self.assertIsInstance(cm.exception, VecextError)

    def test_invalid_values(self):
        for bad in ([], [float("nan")], [float("inf")], [1e39], [[1, 2], [3, 4]], ["x"], 5):
            with self.subTest(bad=bad), self.assertRaises(InvalidVectorError):
                V.as_float32(bad)

    def test_accepts_every_kind(self):
        for v in ([1, 2], (1, 2), np.array([1, 2]), np.array([1, 2], dtype=np.float32), V.Vector([1, 2]), "[1,2]"):
            with self.subTest(v=v):
                a = V.as_float32(v, 2)
                self.assertEqual(a.tolist(), [1.0, 2.0])

    def test_vector_wrapper(self):
        v = V.Vector(np.array([1, 2], dtype=np.float32))
        self.assertEqual(v, V.Vector([1.0, 2.0]))
        self.assertEqual(len(v), 2)
        self.assertEqual(v.to_list(), [1.0, 2.0])
        self.assertIn("[1.0,2.0]", repr(v))

    def test_result_vector(self):
        a = np.array([1, 2], dtype=np.float32)
        self.assertEqual(V.result_vector(a, False), [1.0, 2.0])
        self.assertIs(V.result_vector(a, True), a)
        self.assertIsNone(V.result_vector(None, True))


if __name__ == "__main__":
    unittest.main()
