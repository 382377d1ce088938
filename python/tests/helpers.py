"""Shared test helpers: database access, names, exact search, and a Python
reference of the documented filter semantics."""

import itertools
import math
import os

import numpy as np
import psycopg

from vecext import register_vector

DSN = os.environ.get("VECEXT_TEST_DSN")  # None: libpq/asyncpg read PGHOST, PGPORT, ...
_counter = itertools.count()


def unique(prefix="t"):
    return f"{prefix}_{os.getpid()}_{next(_counter)}"


def admin():
    """A plain autocommit psycopg connection, for checks behind the client's back."""
    return psycopg.connect(DSN or "", autocommit=True)


def drop(*names, schema="public"):
    with admin() as c:
        for n in names:
            c.execute(f'DROP TABLE IF EXISTS "{schema}"."{n}"')


def exact_sql(table, q, op, k):
    """(id, distance) of the k nearest rows by a sequential scan and an exact sort."""
    with admin() as c:
        register_vector(c)
        with c.transaction():
            c.execute("SET LOCAL enable_indexscan = off")
            c.execute("SET LOCAL enable_bitmapscan = off")
            return c.execute(f"SELECT id, embedding {op} %s FROM {table} ORDER BY 2, id LIMIT %s",
                             [q, k]).fetchall()


def uses_index(conn, table, q, op, index):
    plan = conn.execute(f"EXPLAIN SELECT t.id, t.embedding {op} %s FROM {table} t "
                        f"ORDER BY t.embedding {op} %s LIMIT 10", [q, q]).fetchall()
    return any(index in r[0] for r in plan)



def exact_knn(X, q, metric, k):
    X = np.asarray(X, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "l2":
        d = np.sqrt(((X - q) ** 2).sum(axis=1))
    elif metric == "ip":
        d = -(X @ q)
    elif metric == "cosine":
        d = 1 - (X @ q) / (np.linalg.norm(X, axis=1) * np.linalg.norm(q))
    elif metric == "l1":
        d = np.abs(X - q).sum(axis=1)
    else:
        raise ValueError(metric)
    order = np.argsort(d, kind="stable")[:k]
    return order, d


# -- reference filter semantics (docs/python-api.md, "Filters") --------------------

_MISSING = object()


def _lookup(meta, path):
    node = meta
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return _MISSING
        node = node[p]
    return node


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "num"
    if isinstance(v, str):
        return "str"
    return "other"


def _eq(a, b):
    return _kind(a) == _kind(b) and a == b and _kind(a) != "other"


def _cmp_ok(v, arg, op):
    """jsonpath comparison, strict mode: same scalar kind, else unknown (no match)."""
    if v is _MISSING or _kind(v) != _kind(arg) or _kind(v) not in ("num", "str"):
        return False
    return {"$gt": v > arg, "$gte": v >= arg, "$lt": v < arg, "$lte": v <= arg}[op]


def _ne(v, arg):
    """jsonpath !=: null differs from everything; other kinds must agree."""
    if v is _MISSING or _kind(v) == "other":
        return False
    if _kind(v) == "null" or _kind(arg) == "null":
        return not (_kind(v) == "null" and _kind(arg) == "null")
    return _kind(v) == _kind(arg) and v != arg


def ref_match(meta, where):
    for key, value in where.items():
        if key == "$and":
            if not all(ref_match(meta, w) for w in value):
                return False
            continue
        if key == "$or":
            if not any(ref_match(meta, w) for w in value):
                return False
            continue
        if not _field(meta, key.split("."), value):
            return False
    return True


def _field(meta, path, value):
    if isinstance(value, dict):
        if not any(k.startswith("$") for k in value):
            return all(_field(meta, path + k.split("."), v) for k, v in value.items())
        v = _lookup(meta, path)
        for op, arg in value.items():
            if op == "$eq" and not _eq(v, arg):
                return False
            if op == "$ne" and not _ne(v, arg):
                return False
            if op == "$in" and not any(_eq(v, a) for a in arg):
                return False
            if op == "$nin" and arg and not all(_ne(v, a) for a in arg):
                return False
            if op in ("$gt", "$gte", "$lt", "$lte") and not _cmp_ok(v, arg, op):
                return False
            if op == "$exists" and (v is not _MISSING) != arg:
                return False
        return True
    return _eq(_lookup(meta, path), value)


def float32_bits(a):
    return np.asarray(a, dtype=np.float32).view(np.uint32).tolist()


def isclose(a, b, tol=1e-5):
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
