"""Compiles ``where`` filters (dicts) to SQL conditions on the metadata column.

Grammar::

    {"genre": "scifi"}                          equality (implicit $eq)
    {"year": {"$gte": 2000, "$lt": 2010}}       operators on one field (AND-ed)
    {"author.name": "Le Guin"}                  nested keys with dots ...
    {"author": {"name": "Le Guin"}}             ... or with nested dicts
    {"$or": [{...}, {...}]}, {"$and": [...]}    boolean combinations
    several keys in one dict                    AND

Operators: $eq $ne $in $nin $gt $gte $lt $lte $exists.

SQL produced (values are always bound parameters, never spliced into SQL;
key names travel inside jsonpath or JSON parameters, quoted by json.dumps):

* equality and one-value $in: JSON containment ``metadata @> $n::jsonb``
  (all equalities of one AND group merged into one object), served by the
  GIN ``jsonb_path_ops`` index;
* $in: ``metadata @> ANY($n::text[]::jsonb[])``;
* $ne, $nin, $gt, $gte, $lt, $lte: ``jsonb_path_match(metadata, $p::jsonpath,
  $v::jsonb, true)`` with a strict-mode path such as ``strict $."year" > $v``
  and the value in the vars object;
* $exists: ``metadata @? $p::jsonpath`` (``strict $."a"."b"``).

Semantics: a field matches only a value of the same JSON type. A string
compared with a number (or any comparison between different types), a
missing key, or a key holding an array or object where a scalar is expected,
is no match, for every operator including $ne and $nin (``$ne: 5`` matches
rows whose field is a number other than 5). Equality uses JSON equality
(``1`` equals ``1.0``; ``true`` does not equal ``1``); ``{"f": None}``
matches a JSON null, not a missing key. Comparisons accept numbers or
strings (strings compare by code point). ``$in: []`` matches nothing,
``$nin: []`` matches every row.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Tuple

from .errors import FilterError

COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
FIELD_OPERATORS = {"$eq", "$ne", "$in", "$nin", "$exists"} | set(COMPARISONS)
LOGICAL_OPERATORS = {"$and", "$or"}

_Scalar = (str, int, float, bool, type(None))


class Params:
    """Collects bound parameters; ``add`` returns the placeholder to write.

    style "psycopg" gives named placeholders ``%(pN)s`` (values in a dict, so
    the order of fragments in the text does not matter), "asyncpg" gives
    ``$N`` (values in a list).
    """

    def __init__(self, style: str):
        if style not in ("psycopg", "asyncpg"):
            raise ValueError(style)
        self.style = style
        self.values: List[Any] = []

    def add(self, value: Any, binary: bool = False) -> str:
        self.values.append(value)
        n = len(self.values)
        if self.style == "psycopg":
            return f"%(p{n}){'b' if binary else 's'}"
        return f"${n}"

    def bind(self) -> Any:
        if self.style == "psycopg":
            return {f"p{i + 1}": v for i, v in enumerate(self.values)}
        return list(self.values)


def _check_scalar(op: str, path: List[str], value: Any) -> None:
    if not isinstance(value, _Scalar):
        raise FilterError(
            f"{op} on {'.'.join(path)!r} takes a string, number, boolean or None, "
            f"not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{op} on {'.'.join(path)!r}: NaN and infinity cannot be compared")


def _split_key(key: Any) -> List[str]:
    if not isinstance(key, str):
        raise FilterError(f"filter keys must be strings, not {type(key).__name__}")
    if not key:
        raise FilterError("empty key in filter")
    if "\x00" in key:
        raise FilterError("NUL character in a filter key")
    parts = key.split(".")
    if any(p == "" for p in parts):
        raise FilterError(f"empty component in the dotted key {key!r}")
    return parts


def _nested(path: List[str], value: Any) -> Dict[str, Any]:
    doc: Any = value
    for part in reversed(path):
        doc = {part: doc}
    return doc


def _jsonpath(path: List[str]) -> str:
    # A jsonpath string literal accepts JSON's escapes; keep non-ASCII as is.
    return "$" + "".join("." + json.dumps(p, ensure_ascii=False) for p in path)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class _Compiler:
    def __init__(self, params: Params, column: str):
        self.params = params
        self.column = column

    # One AND group: a dict. Equalities merged into one containment object.
    def group(self, where: Dict[str, Any], prefix: List[str]) -> List[str]:
        if not isinstance(where, dict):
            raise FilterError(f"a filter must be a dict, not {type(where).__name__}")
        if not where and not prefix:
            raise FilterError("empty filter in $and/$or")
        conds: List[str] = []
        eq_doc: Dict[str, Any] = {}
        self._walk(where, prefix, conds, eq_doc)
        if eq_doc:
            conds.insert(0, self._contains(eq_doc))
        return conds

    def _walk(self, where: Dict[str, Any], prefix: List[str], conds: List[str],
              eq_doc: Dict[str, Any]) -> None:
        for key, value in where.items():
            if isinstance(key, str) and key.startswith("$"):
                if prefix:
                    raise FilterError(
                        f"operator {key!r} mixed with field names under {'.'.join(prefix)!r}")
                if key not in LOGICAL_OPERATORS:
                    hint = " (field operators go inside a field: {\"f\": {\"%s\": ...}})" % key \
                        if key in FIELD_OPERATORS else ""
                    raise FilterError(f"unknown operator {key!r} at the top of a filter{hint}; "
                                      f"expected $and, $or or a field name")
                conds.append(self._logical(key, value))
                continue
            path = prefix + _split_key(key)
            self._field(path, value, conds, eq_doc)

    def _field(self, path: List[str], value: Any, conds: List[str], eq_doc: Dict[str, Any]) -> None:
        if isinstance(value, dict):
            if not value:
                raise FilterError(f"empty condition for {'.'.join(path)!r}")
            ops = [k for k in value if isinstance(k, str) and k.startswith("$")]
            if ops and len(ops) != len(value):
                raise FilterError(f"{'.'.join(path)!r} mixes operators and nested field names")
            if not ops:  # nested field names
                self._walk(value, path, conds, eq_doc)
                return
            for op, arg in value.items():
                self._operator(path, op, arg, conds, eq_doc)
            return
        if isinstance(value, (list, tuple, set)):
            raise FilterError(f"a list value for {'.'.join(path)!r}: use {{\"$in\": [...]}}")
        _check_scalar("equality", path, value)
        self._add_eq(path, value, conds, eq_doc)

    def _add_eq(self, path: List[str], value: Any, conds: List[str], eq_doc: Dict[str, Any]) -> None:
        # merge into the group's containment object unless that would conflict
        node = eq_doc
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None and part not in node:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                conds.append(self._contains(_nested(path, value)))
                return
            node = nxt
        last = path[-1]
        if last in node:
            if node[last] == value and type(node[last]) is type(value):
                return
            conds.append(self._contains(_nested(path, value)))
            return
        node[last] = value

    def _operator(self, path: List[str], op: Any, arg: Any, conds: List[str],
                  eq_doc: Dict[str, Any]) -> None:
        name = ".".join(path)
        if op not in FIELD_OPERATORS:
            raise FilterError(f"unknown operator {op!r} on {name!r}; expected one of "
                              f"{', '.join(sorted(FIELD_OPERATORS))}")
        if op == "$eq":
            _check_scalar(op, path, arg)
            self._add_eq(path, arg, conds, eq_doc)
        elif op == "$ne":
            _check_scalar(op, path, arg)
            conds.append(self._match(f"strict {_jsonpath(path)} != $v0", {"v0": arg}))
        elif op in ("$in", "$nin"):
            if not isinstance(arg, (list, tuple)):
                raise FilterError(f"{op} on {name!r} takes a list, not {type(arg).__name__}")
            for v in arg:
                _check_scalar(op, path, v)
            if op == "$in":
                if not arg:
                    conds.append("false")
                elif len(arg) == 1:
                    self._add_eq(path, arg[0], conds, eq_doc)
                else:
                    docs = [_dumps(_nested(path, v)) for v in arg]
                    conds.append(f"{self.column} @> ANY({self.params.add(docs)}::text[]::jsonb[])")
            else:
                if not arg:
                    return  # matches every row
                jp = " && ".join(f"{_jsonpath(path)} != $v{i}" for i in range(len(arg)))
                conds.append(self._match("strict " + jp, {f"v{i}": v for i, v in enumerate(arg)}))
        elif op in COMPARISONS:
            if isinstance(arg, bool) or not isinstance(arg, (int, float, str)):
                raise FilterError(f"{op} on {name!r} takes a number or a string, "
                                  f"not {type(arg).__name__}")
            _check_scalar(op, path, arg)
            conds.append(self._match(f"strict {_jsonpath(path)} {COMPARISONS[op]} $v0", {"v0": arg}))
        elif op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"$exists on {name!r} takes True or False")
            p = self.params.add("strict " + _jsonpath(path))
            if arg:
                conds.append(f"{self.column} @? {p}::jsonpath")
            else:
                conds.append(f"NOT coalesce({self.column} @? {p}::jsonpath, false)")

    def _logical(self, op: str, value: Any) -> str:
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(f"{op} takes a non-empty list of filters")
        parts = []
        for sub in value:
            conds = self.group(sub, [])
            parts.append(_and(conds))
        joiner = " AND " if op == "$and" else " OR "
        return "(" + joiner.join(parts) + ")"

    def _contains(self, doc: Dict[str, Any]) -> str:
        return f"{self.column} @> {self.params.add(_dumps(doc))}::jsonb"

    def _match(self, jsonpath: str, variables: Dict[str, Any]) -> str:
        p = self.params.add(jsonpath)
        v = self.params.add(_dumps(variables))
        return f"jsonb_path_match({self.column}, {p}::jsonpath, {v}::jsonb, true)"


def _and(conds: List[str]) -> str:
    if not conds:
        return "true"
    if len(conds) == 1:
        return conds[0]
    return "(" + " AND ".join(conds) + ")"


def compile_where(where: Optional[Dict[str, Any]], params: Params, column: str = "metadata") -> Optional[str]:
    """Returns an SQL condition (or None for no filter), adding values to ``params``."""
    if where is None:
        return None
    if not isinstance(where, dict):
        raise FilterError(f"where must be a dict, not {type(where).__name__}")
    if not where:
        return None
    return _and(_Compiler(params, column).group(where, []))


def explain(where: Optional[Dict[str, Any]]) -> Tuple[Optional[str], List[Any]]:
    """The SQL and parameters a filter compiles to ($N placeholders); for debugging."""
    params = Params("asyncpg")
    return compile_where(where, params), params.values
