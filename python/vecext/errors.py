"""Exceptions raised by vecext.

Every exception derives from :class:`VecextError`. Errors that come from the
server carry its SQLSTATE in ``sqlstate`` (``None`` when there is none, for
example a check done in Python before anything was sent), the server's
DETAIL and HINT lines in ``detail`` and ``hint`` (``None`` when absent) and
the driver's exception as ``__cause__``.
"""

from __future__ import annotations

from typing import Optional


class VecextError(Exception):
    """Base class. ``sqlstate`` is the server's five-character error code, or None;
    ``detail`` and ``hint`` the server's DETAIL and HINT, or None."""

    def __init__(self, message: str, sqlstate: Optional[str] = None, detail: Optional[str] = None,
                 hint: Optional[str] = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint


class ConnectionClosedError(VecextError):
    """The connection (or pool) is closed, or the server ended it."""


class ConnectionFailedError(VecextError):
    """Could not connect (server unreachable, authentication, missing database)."""


class CollectionNotFoundError(VecextError, LookupError):
    """No collection of that name (or the table lacks a collection's shape)."""


class CollectionExistsError(VecextError):
    """create_collection on a name that already exists."""


class IncompatibleCollectionError(VecextError):
    """The table exists but is not a collection, or differs from what was asked
    (another metric, a missing hnsw index)."""


class InvalidNameError(VecextError, ValueError):
    """A collection or schema name that does not match the allowed pattern."""


class DimensionMismatchError(VecextError, ValueError):
    """A vector whose number of dimensions differs from the collection's."""


class InvalidVectorError(VecextError, ValueError):
    """A value that cannot be a vector (empty, NaN, infinite, not numbers)."""


class DuplicateIdError(VecextError):
    """add / add_many with an id that is already in the collection."""


class FilterError(VecextError, ValueError):
    """A malformed ``where`` filter: unknown operator, bad value type, bad key."""


class FeatureNotAvailableError(VecextError, NotImplementedError):
    """The server does not support what was asked: SQLSTATE 0A000
    (feature_not_supported), e.g. a search with ``quantized_search=False`` on
    an SQ8 collection, whose index keeps no full-precision vectors."""


class QueryError(VecextError):
    """Any other error reported by the server."""


# SQLSTATEs of a connection that is gone: class 08 (connection exception),
# admin/crash shutdown, and "cannot connect now".
_CONNECTION_STATES = {"57P01", "57P02", "57P03"}

# Messages from the type's checks (src/pg/vector.cpp), SQLSTATE 22000.
_DIMENSION_MARKERS = ("expected ", " dimensions, not ")
_DIFFERENT_DIMS = "different vector dimensions"


def _is_connection_state(sqlstate: Optional[str]) -> bool:
    return bool(sqlstate) and (sqlstate.startswith("08") or sqlstate in _CONNECTION_STATES)


def from_server(message: str, sqlstate: Optional[str], detail: Optional[str] = None,
                hint: Optional[str] = None) -> VecextError:
    """The vecext exception for a server error (message, SQLSTATE, detail, hint)."""
    cls = QueryError
    if _is_connection_state(sqlstate):
        cls = ConnectionClosedError
    elif sqlstate == "23505":
        cls = DuplicateIdError
    elif sqlstate == "22000" and (
        all(m in message for m in _DIMENSION_MARKERS) or _DIFFERENT_DIMS in message
    ):
        cls = DimensionMismatchError
    elif sqlstate == "42P01":
        cls = CollectionNotFoundError
    elif sqlstate == "0A000":
        cls = FeatureNotAvailableError
    elif sqlstate and sqlstate.startswith("22") and "vector" in message:
        cls = InvalidVectorError
    return cls(message, sqlstate, detail, hint)


def translate(exc: BaseException) -> BaseException:
    """Maps a psycopg or asyncpg exception to a vecext one (others unchanged)."""
    if isinstance(exc, VecextError):
        return exc
    mod = type(exc).__module__ or ""
    if mod.startswith("psycopg"):
        return _translate_psycopg(exc)
    if mod.startswith("asyncpg"):
        return _translate_asyncpg(exc)
    if isinstance(exc, ConnectionError):  # socket errors (not every OSError: files are not connections)
        return ConnectionClosedError(str(exc) or type(exc).__name__)
    return exc


def connect_failed(exc: BaseException) -> BaseException:
    """Maps an exception raised while connecting."""
    if isinstance(exc, VecextError):
        return exc
    mod = type(exc).__module__ or ""
    if isinstance(exc, OSError) or mod.startswith(("psycopg", "asyncpg")):
        sqlstate = getattr(exc, "sqlstate", None)
        return ConnectionFailedError(f"could not connect: {str(exc).strip() or type(exc).__name__}", sqlstate)
    return exc


def _translate_psycopg(exc: BaseException) -> BaseException:
    import psycopg

    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag is not None else None) or str(exc).strip()
    if isinstance(exc, psycopg.InterfaceError) or (
        isinstance(exc, psycopg.OperationalError) and (sqlstate is None or _is_connection_state(sqlstate))
    ):
        return ConnectionClosedError(message or "the connection is closed", sqlstate)
    if isinstance(exc, psycopg.Error):
        return from_server(message, sqlstate, diag.message_detail if diag is not None else None,
                           diag.message_hint if diag is not None else None)
    return exc


def _translate_asyncpg(exc: BaseException) -> BaseException:
    import asyncpg

    sqlstate = getattr(exc, "sqlstate", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, (asyncpg.exceptions.ConnectionDoesNotExistError,
                        asyncpg.exceptions.InterfaceError)) or _is_connection_state(sqlstate):
        if isinstance(exc, asyncpg.exceptions.InterfaceError) and "closed" not in message \
                and "released" not in message:
            return QueryError(message, sqlstate)
        return ConnectionClosedError(message, sqlstate)
    if isinstance(exc, asyncpg.PostgresError):
        return from_server(message, sqlstate, getattr(exc, "detail", None), getattr(exc, "hint", None))
    return exc
