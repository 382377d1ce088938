"""vecext: a Python client for the vecext PostgreSQL extension.

Sync (psycopg 3)::

    from vecext import Database
    db = Database("dbname=app", "docs", dim=384)           # opens or creates
    db.add("a", vec, {"lang": "en"})
    for id, distance, metadata in db.search(query, k=5, where={"lang": "en"}):
        ...

Async (asyncpg pool)::

    async with AsyncDatabase("postgresql:///app", "docs", dim=384) as db:
        results = await db.search(query)

Type registration for your own queries: :func:`register_vector` (psycopg),
:func:`register_vector_async` (psycopg async), :func:`register_vector_asyncpg`.
"""

from . import errors
from .errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConnectionClosedError,
    ConnectionFailedError,
    DimensionMismatchError,
    DuplicateIdError,
    FeatureNotAvailableError,
    FilterError,
    IncompatibleCollectionError,
    InvalidNameError,
    InvalidVectorError,
    QueryError,
    VecextError,
)
from .filters import compile_where, explain as explain_filter
from .results import CollectionInfo, Record, ScoredResult, SearchResult
from .vector import Vector

__version__ = "0.1.0"

__all__ = [
    "Database", "Client", "AsyncDatabase", "AsyncClient", "connect", "create_pool",
    "SearchResult", "ScoredResult", "Record", "CollectionInfo", "Vector",
    "register_vector", "register_vector_async", "register_vector_asyncpg",
    "compile_where", "explain_filter", "errors",
    "VecextError", "ConnectionClosedError", "ConnectionFailedError", "CollectionNotFoundError", "CollectionExistsError",
    "IncompatibleCollectionError", "InvalidNameError", "DimensionMismatchError", "InvalidVectorError",
    "DuplicateIdError", "FilterError", "FeatureNotAvailableError", "QueryError",
]


def __getattr__(name):
    # The drivers are imported on first use, so that either may be absent.
    if name in ("Database", "Client", "connect"):
        from . import sync
        return getattr(sync, name)
    if name in ("AsyncDatabase", "AsyncClient", "create_pool"):
        from . import aio
        return getattr(aio, name)
    if name in ("register_vector", "register_vector_async"):
        from . import psycopg_types
        return getattr(psycopg_types, name)
    if name == "register_vector_asyncpg":
        from . import asyncpg_types
        return asyncpg_types.register_vector_asyncpg
    raise AttributeError(f"module 'vecext' has no attribute {name!r}")
