"""Registers the ``vector`` type on asyncpg connections (binary codec).

    conn = await asyncpg.connect(dsn)
    await vecext.register_vector_asyncpg(conn)
    await conn.fetchval("SELECT $1::vector", [1, 2, 3])     # -> float32 array

    pool = await asyncpg.create_pool(dsn, init=vecext.register_vector_asyncpg)

The encoder accepts numpy arrays, lists, tuples, :class:`vecext.Vector`,
text literals and already encoded bytes. Inside a ``vector[]`` parameter,
wrap each element in ``Vector`` (asyncpg would take a list or an array for
a nested dimension of the Postgres array).
"""

from __future__ import annotations

from typing import Any, Optional

from . import vector as _v
from .errors import VecextError

_FIND_TYPE = """
SELECT n.nspname FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typname = 'vector' AND pg_catalog.pg_type_is_visible(t.oid)
"""


async def register_vector_asyncpg(conn: Any, use_numpy: Optional[bool] = None,
                                  schema: Optional[str] = None) -> None:
    """Sets a binary codec for ``vector`` on an asyncpg connection.

    ``schema`` is the extension's schema; by default, the schema of the
    ``vector`` type visible on the connection's search_path.
    """
    numpy = _v._resolve(use_numpy)
    if schema is None:
        schema = await conn.fetchval(_FIND_TYPE)
        if schema is None:
            raise VecextError('type "vector" not found: run CREATE EXTENSION vecext in this database',
                              "42704")

    def decode(data: bytes) -> Any:
        return _v.parse_binary(data, numpy)

    await conn.set_type_codec("vector", schema=schema, encoder=_v.to_binary, decoder=decode,
                              format="binary")
