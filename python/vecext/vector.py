"""The ``vector`` value in Python, and its two wire formats.

Text:   ``[1,2.5,-3]`` (what ``vector_out`` prints and ``vector_in`` reads).
Binary: int16 dim, int16 0, then dim float4, all big-endian (``vector_send``).

Values read from the server are numpy float32 arrays when numpy is available,
else lists of Python floats (``use_numpy=False`` asks for lists). Values sent
may be a numpy array, a list or tuple of numbers, or a :class:`Vector`.
"""

from __future__ import annotations

import math
import struct
from typing import Any, List, Optional, Sequence

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only without numpy
    _np = None

from .errors import DimensionMismatchError, InvalidVectorError

MAX_DIM = 16000
HAVE_NUMPY = _np is not None
_HEADER = struct.Struct(">hh")


def numpy_available() -> bool:
    return HAVE_NUMPY


def _resolve(use_numpy: Optional[bool]) -> bool:
    if use_numpy is None:
        return HAVE_NUMPY
    if use_numpy and not HAVE_NUMPY:
        raise ImportError("use_numpy=True but numpy is not installed")
    return use_numpy


class Vector:
    """A value to send as ``vector``.

    Wrapping matters in two places: for psycopg, a plain list would be sent
    as a Postgres array; for asyncpg, a list or numpy array inside a
    ``vector[]`` parameter would be taken for a nested array.
    """

    __slots__ = ("_value",)

    def __init__(self, value: Any):
        if isinstance(value, Vector):
            value = value._value
        self._value = value

    @property
    def value(self) -> Any:
        return self._value

    def to_list(self) -> List[float]:
        return to_list(self._value)

    def to_numpy(self):
        if not HAVE_NUMPY:
            raise ImportError("numpy is not installed")
        return _np.asarray(self._value, dtype=_np.float32)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Vector):
            other = other._value
        try:
            return to_list(self._value) == to_list(other)
        except (TypeError, ValueError, InvalidVectorError):
            return NotImplemented

    def __repr__(self) -> str:
        return f"Vector({to_text(self._value)})"


def to_list(value: Any) -> List[float]:
    """Any accepted vector value as a list of Python floats."""
    if isinstance(value, Vector):
        value = value.value
    if isinstance(value, str):
        return [float(x) for x in parse_text(value, use_numpy=False)]
    if HAVE_NUMPY and isinstance(value, _np.ndarray):
        if value.ndim != 1:
            raise InvalidVectorError(f"a vector must be one-dimensional, got shape {value.shape}")
        return value.astype(_np.float64).tolist()
    try:
        return [float(x) for x in value]
    except TypeError as e:
        raise InvalidVectorError(f"not a vector: {type(value).__name__}") from e


def as_float32(value: Any, dim: Optional[int] = None):
    """Checks a vector value and returns it as a float32 numpy array (or a list
    of floats without numpy). Raises DimensionMismatchError when ``dim`` is
    given and differs, InvalidVectorError for empty/NaN/infinite/non-numbers.
    """
    if isinstance(value, Vector):
        value = value.value
    if isinstance(value, str):
        value = parse_text(value)
    if HAVE_NUMPY:
        try:
            with _np.errstate(over="ignore", invalid="ignore"):
                # values beyond float32's range become inf here, and are refused below
                arr = _np.asarray(value, dtype=_np.float32)
        except (TypeError, ValueError) as e:
            raise InvalidVectorError(f"not a vector of numbers: {e}") from e
        if arr.ndim != 1:
            raise InvalidVectorError(f"a vector must be one-dimensional, got shape {arr.shape}")
        n = arr.shape[0]
        finite = bool(_np.isfinite(arr).all())
    else:
        arr = to_list(value)
        n = len(arr)
        finite = all(math.isfinite(x) and abs(x) <= 3.4028234663852886e38 for x in arr)
    _check(n, finite, dim)
    return arr


def _check(n: int, finite: bool, dim: Optional[int]) -> None:
    if n == 0:
        raise InvalidVectorError("vector must have at least 1 dimension", "22000")
    if n > MAX_DIM:
        raise InvalidVectorError(f"vector cannot have more than {MAX_DIM} dimensions", "54000")
    if dim is not None and n != dim:
        raise DimensionMismatchError(f"expected {dim} dimensions, not {n}", "22000")
    if not finite:
        raise InvalidVectorError("vector elements must be finite float4 values (no NaN or infinity)", "22000")


# -- text format ------------------------------------------------------------

def to_text(value: Any) -> str:
    """``[x1,x2,...]``. Elements are written with Python's repr of the double,
    which the server reads back to the same float4 when the value is one."""
    if isinstance(value, Vector):
        value = value.value
    if isinstance(value, str):
        return value
    if HAVE_NUMPY and isinstance(value, _np.ndarray):
        value = value.astype(_np.float64).tolist()
    return "[" + ",".join(repr(float(x)) for x in value) + "]"


def parse_text(text: str, use_numpy: Optional[bool] = None):
    """Parses the text form. Returns float32 numpy array or list of floats."""
    s = text.strip()
    if len(s) < 2 or s[0] != "[" or s[-1] != "]":
        raise InvalidVectorError(f"malformed vector literal: {text[:40]!r}")
    body = s[1:-1].strip()
    if not body:
        raise InvalidVectorError("vector must have at least 1 dimension")
    try:
        floats = [float(x) for x in body.split(",")]
    except ValueError as e:
        raise InvalidVectorError(f"malformed vector literal: {text[:40]!r}") from e
    if _resolve(use_numpy):
        return _np.array(floats, dtype=_np.float32)
    return floats


# -- binary format ----------------------------------------------------------

def to_binary(value: Any) -> bytes:
    """The send/recv form: int16 dim, int16 0, dim big-endian float4."""
    if isinstance(value, Vector):
        value = value.value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)  # already encoded
    if isinstance(value, str):
        value = parse_text(value)
    if HAVE_NUMPY:
        arr = _np.asarray(value, dtype=">f4")
        if arr.ndim != 1:
            raise InvalidVectorError(f"a vector must be one-dimensional, got shape {arr.shape}")
        return _HEADER.pack(arr.shape[0], 0) + arr.tobytes()
    floats = to_list(value)
    try:
        return _HEADER.pack(len(floats), 0) + struct.pack(f">{len(floats)}f", *floats)
    except (OverflowError, struct.error) as e:
        raise InvalidVectorError(f"vector element out of float4 range: {e}") from e


def parse_binary(data: bytes, use_numpy: Optional[bool] = None):
    """Decodes the send/recv form."""
    if len(data) < 4:
        raise InvalidVectorError("binary vector shorter than its header")
    dim, unused = _HEADER.unpack_from(data)
    if dim < 0 or len(data) != 4 + 4 * dim:
        raise InvalidVectorError(f"binary vector of {len(data)} bytes does not hold {dim} dimensions")
    if _resolve(use_numpy):
        return _np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(_np.float32)
    return list(struct.unpack_from(f">{dim}f", data, 4))


def equal(a: Any, b: Any) -> bool:
    """Element-wise equality of two vector values of any accepted kind."""
    return to_list(a) == to_list(b)


def dims(value: Any) -> int:
    if isinstance(value, Vector):
        value = value.value
    if HAVE_NUMPY and isinstance(value, _np.ndarray):
        return int(value.shape[0])
    return len(value)


def result_vector(value: Any, use_numpy: bool):
    """Converts what a driver returned to the representation asked for."""
    if value is None:
        return None
    if use_numpy:
        return value if isinstance(value, _np.ndarray) else _np.asarray(value, dtype=_np.float32)
    if HAVE_NUMPY and isinstance(value, _np.ndarray):
        return value.astype(_np.float64).tolist()
    return list(value)


def sequence_of_vectors(values: Sequence[Any], dim: Optional[int]) -> List[Any]:
    return [as_float32(v, dim) for v in values]
