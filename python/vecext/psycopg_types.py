"""Registers the ``vector`` type on psycopg 3 connections (sync and async).

    conn = psycopg.connect(dsn)
    vecext.register_vector(conn)             # or: await register_vector_async(aconn)
    conn.execute("INSERT INTO items (embedding) VALUES (%s)", [np.array([1, 2, 3])])
    conn.execute("SELECT embedding FROM items").fetchone()[0]   # -> float32 array

Dumpers (Python -> vector) are registered for numpy arrays and
:class:`vecext.Vector` (a plain list would be sent as a Postgres array: wrap
it, ``Vector([1, 2, 3])``); ``%s`` sends binary, ``%t`` text, ``%b`` binary.
Loaders (vector -> Python) handle both the text and binary result formats.
They are also registered by OID, so ``Copy.set_types([..., "vector"])`` works
for binary COPY.
"""

from __future__ import annotations

from typing import Any, Optional

from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

from . import vector as _v
from .errors import VecextError


def _type_missing() -> VecextError:
    return VecextError('type "vector" not found: run CREATE EXTENSION vecext in this database', "42704")


def register_vector(context: Any, use_numpy: Optional[bool] = None) -> TypeInfo:
    """Registers ``vector`` on a psycopg ``Connection`` (or cursor)."""
    info = TypeInfo.fetch(context, "vector")
    if info is None:
        raise _type_missing()
    register_vector_info(context, info, use_numpy)
    return info


async def register_vector_async(context: Any, use_numpy: Optional[bool] = None) -> TypeInfo:
    """Registers ``vector`` on a psycopg ``AsyncConnection`` (or async cursor)."""
    info = await TypeInfo.fetch(context, "vector")
    if info is None:
        raise _type_missing()
    register_vector_info(context, info, use_numpy)
    return info


def register_vector_info(context: Any, info: TypeInfo, use_numpy: Optional[bool] = None) -> None:
    """Registers dumpers and loaders for an already fetched TypeInfo (no I/O)."""
    numpy = _v._resolve(use_numpy)
    info.register(context)  # the type and its array type, for lists of vectors
    adapters = context.adapters

    class VectorTextDumper(Dumper):
        format = Format.TEXT
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            return _v.to_text(obj).encode()

    class VectorBinaryDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            return _v.to_binary(obj)

    class VectorTextLoader(Loader):
        format = Format.TEXT

        def load(self, data: Any) -> Any:
            return _v.parse_text(bytes(data).decode(), numpy)

    class VectorBinaryLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> Any:
            return _v.parse_binary(bytes(data), numpy)

    classes = [_v.Vector]
    if _v.HAVE_NUMPY:
        import numpy as np

        classes.append(np.ndarray)
    for cls in classes:
        # text first, binary last: the last one registered serves %s
        adapters.register_dumper(cls, VectorTextDumper)
        adapters.register_dumper(cls, VectorBinaryDumper)
    adapters.register_loader(info.oid, VectorTextLoader)
    adapters.register_loader(info.oid, VectorBinaryLoader)
