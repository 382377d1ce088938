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
key names and values travel inside jsonpath or JSON parameters, quoted by
json.dumps). Every form but ``$exists: False`` is an operator of the hnsw
``jsonb_hnsw_ops`` class, so an hnsw index with the metadata column
evaluates it inside the graph search (an ``Index Cond``):

* equality and one-value $in: JSON containment ``metadata @> $n::jsonb``
  (all equalities of one AND group merged into one object);
* $in, $ne, $nin, $gt, $gte, $lt, $lte: ``metadata @@ $p::jsonpath`` with a
  strict-mode predicate and the values written into it as JSON literals:
  ``strict $."year" > 2000``, ``strict ($."tag" == "x" || $."tag" == "y")``,
  ``strict ($."a" != 1 && $."a" != 2)``. ``@@`` is ``jsonb_path_match(...,
  silent => true)``. ``$in`` is not ``metadata @> ANY($n::jsonb[])``:
  PostgreSQL 15 makes no ``op ANY(array)`` on a second index column an
  index condition of a scan ordered by distance;
* $exists: ``metadata @? $p::jsonpath`` (``strict $."a"."b"``); ``$exists:
  False`` is ``NOT coalesce(metadata @? $p::jsonpath, false)``, a filter the
  index cannot evaluate (rows are checked after the index returns them);
* $and: the parts ANDed; $or: when every branch has a jsonpath form (all but
  ``$exists: False`` and the constants ``$in: []`` / ``$nin: []``), ONE
  ``@@`` condition joining them with ``||`` (an SQL OR is never an index
  condition); otherwise an SQL OR.

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
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

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
        # Set when a where filter was compiled into the statement: its plan
        # depends on the values (an in-index filter, a GIN index or a scan),
        # so it must be planned for them, never with a generic plan.
        self.filtered = False

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
    if isinstance(value, str):
        _check_text(value, f"a value of {op} on {'.'.join(path)!r}")


def _check_text(s: str, what: str) -> None:
    # Neither jsonb nor jsonpath can hold U+0000, and text that is not valid
    # Unicode (lone surrogates) cannot be sent: refuse both before sending.
    if "\x00" in s:
        raise FilterError(f"NUL character in {what}")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise FilterError(f"{what} is not valid Unicode: {e.reason}") from None


def _split_key(key: Any) -> List[str]:
    if not isinstance(key, str):
        raise FilterError(f"filter keys must be strings, not {type(key).__name__}")
    if not key:
        raise FilterError("empty key in filter")
    _check_text(key, "a filter key")
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


def _literal(value: Any) -> str:
    """A checked scalar as a jsonpath literal. JSON's forms are jsonpath's:
    strings in double quotes with JSON escapes (jsonpath reads \\" \\\\ \\n
    \\uXXXX ...), true, false, null, and numbers as json.dumps writes them
    (2000, -5, 4.5, 1e+20, 1e-07: a leading minus is folded into the
    constant by the jsonpath parser)."""
    return _dumps(value)


# -- conditions ----------------------------------------------------------------
# A filter is parsed into these nodes, then written as SQL. Every node but
# Exists(False) and a constant also has a jsonpath form that is true in
# exactly the rows where its SQL form is true (checked by the tests against a
# Python reference); an $or whose branches all have one is written as ONE
# ``@@`` condition, because the planner makes no index condition of an SQL OR.
# Compositions use only && and ||: with jsonpath's three-valued logic an
# unknown (a missing key, a type mismatch) then excludes a row exactly as the
# SQL NULL or false of the separate conditions does.

class _Eq(NamedTuple):
    path: Tuple[str, ...]
    value: Any


class _In(NamedTuple):  # two or more values
    path: Tuple[str, ...]
    values: Tuple[Any, ...]


class _Pred(NamedTuple):  # a jsonpath predicate, strict mode
    text: str


class _Exists(NamedTuple):
    path: Tuple[str, ...]
    positive: bool


class _Const(NamedTuple):
    value: bool


class _Bool(NamedTuple):  # "$and" / "$or" of groups (each a list of nodes ANDed)
    op: str
    groups: Tuple[Tuple[Any, ...], ...]


def _balanced(items: List[str], op: str) -> str:
    # Nested evenly, so that long $in / $nin / $or chains stay shallow for
    # the index's filter compiler (it flattens nesting, up to a depth limit).
    if len(items) == 1:
        return items[0]
    half = len(items) // 2
    return f"({_balanced(items[:half], op)} {op} {_balanced(items[half:], op)})"


def _path_jsonpath(node: Any) -> Optional[str]:
    """The node as a strict-mode jsonpath predicate (without "strict "), or None."""
    if isinstance(node, _Eq):
        return f"{_jsonpath(list(node.path))} == {_literal(node.value)}"
    if isinstance(node, _In):
        p = _jsonpath(list(node.path))
        return _balanced([f"{p} == {_literal(v)}" for v in node.values], "||")
    if isinstance(node, _Pred):
        return node.text  # one comparison, or a parenthesized chain
    if isinstance(node, _Exists):
        return f"exists({_jsonpath(list(node.path))})" if node.positive else None
    if isinstance(node, _Bool):
        parts = []
        for g in node.groups:
            if not g:
                return None  # a group without conditions is true: no predicate for it
            sub = [_path_jsonpath(n) for n in g]
            if any(x is None for x in sub):
                return None
            parts.append(_balanced(sub, "&&"))  # type: ignore[arg-type]
        return _balanced(parts, "&&" if node.op == "$and" else "||")
    return None


def _not_equal(jp: str, values: List[Any]) -> str:
    """$ne / $nin: the field differs from every value. In jsonpath an array
    or object compared with a scalar is unknown (no match), except that it
    differs from null: when every value is None, require a scalar."""
    parts = [f"{jp} != {_literal(v)}" for v in values]
    if all(v is None for v in values):
        parts = parts[:1] + [f'{jp}.type() != "array"', f'{jp}.type() != "object"']
    return _balanced(parts, "&&")


class _Parser:
    # One AND group: a dict, as a list of nodes.
    def group(self, where: Dict[str, Any], prefix: List[str]) -> List[Any]:
        if not isinstance(where, dict):
            raise FilterError(f"a filter must be a dict, not {type(where).__name__}")
        if not where and not prefix:
            raise FilterError("empty filter in $and/$or")
        conds: List[Any] = []
        self._walk(where, prefix, conds)
        return conds

    def _walk(self, where: Dict[str, Any], prefix: List[str], conds: List[Any]) -> None:
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
            self._field(path, value, conds)

    def _field(self, path: List[str], value: Any, conds: List[Any]) -> None:
        if isinstance(value, dict):
            if not value:
                raise FilterError(f"empty condition for {'.'.join(path)!r}")
            ops = [k for k in value if isinstance(k, str) and k.startswith("$")]
            if ops and len(ops) != len(value):
                raise FilterError(f"{'.'.join(path)!r} mixes operators and nested field names")
            if not ops:  # nested field names
                self._walk(value, path, conds)
                return
            for op, arg in value.items():
                self._operator(path, op, arg, conds)
            return
        if isinstance(value, (list, tuple, set)):
            raise FilterError(f"a list value for {'.'.join(path)!r}: use {{\"$in\": [...]}}")
        _check_scalar("equality", path, value)
        conds.append(_Eq(tuple(path), value))

    def _operator(self, path: List[str], op: Any, arg: Any, conds: List[Any]) -> None:
        name = ".".join(path)
        jp = _jsonpath(path)
        if op not in FIELD_OPERATORS:
            raise FilterError(f"unknown operator {op!r} on {name!r}; expected one of "
                              f"{', '.join(sorted(FIELD_OPERATORS))}")
        if op == "$eq":
            _check_scalar(op, path, arg)
            conds.append(_Eq(tuple(path), arg))
        elif op == "$ne":
            _check_scalar(op, path, arg)
            conds.append(_Pred(_not_equal(jp, [arg])))
        elif op in ("$in", "$nin"):
            if not isinstance(arg, (list, tuple)):
                raise FilterError(f"{op} on {name!r} takes a list, not {type(arg).__name__}")
            for v in arg:
                _check_scalar(op, path, v)
            if op == "$in":
                if not arg:
                    conds.append(_Const(False))
                elif len(arg) == 1:
                    conds.append(_Eq(tuple(path), arg[0]))
                else:
                    conds.append(_In(tuple(path), tuple(arg)))
            elif arg:  # $nin: [] matches every row
                conds.append(_Pred(_not_equal(jp, list(arg))))
        elif op in COMPARISONS:
            if isinstance(arg, bool) or not isinstance(arg, (int, float, str)):
                raise FilterError(f"{op} on {name!r} takes a number or a string, "
                                  f"not {type(arg).__name__}")
            _check_scalar(op, path, arg)
            conds.append(_Pred(f"{jp} {COMPARISONS[op]} {_literal(arg)}"))
        elif op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"$exists on {name!r} takes True or False")
            conds.append(_Exists(tuple(path), arg))

    def _logical(self, op: str, value: Any) -> _Bool:
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(f"{op} takes a non-empty list of filters")
        return _Bool(op, tuple(tuple(self.group(sub, [])) for sub in value))


class _Writer:
    """Writes parsed conditions as SQL on ``column``, values into ``params``."""

    def __init__(self, params: Params, column: str):
        self.params = params
        self.column = column

    # One AND group. Equalities merged into one containment object.
    def group(self, conds: Sequence[Any]) -> List[str]:
        out: List[str] = []
        eq_doc: Dict[str, Any] = {}
        for c in conds:
            if isinstance(c, _Eq):
                self._add_eq(list(c.path), c.value, out, eq_doc)
            else:
                out.append(self._cond(c))
        if eq_doc:
            out.insert(0, self._contains(eq_doc))
        return out

    def _cond(self, c: Any) -> str:
        if isinstance(c, _Const):
            return "true" if c.value else "false"
        if isinstance(c, _Exists):
            p = self.params.add("strict " + _jsonpath(list(c.path)))
            if c.positive:
                return f"{self.column} @? {p}::jsonpath"
            return f"NOT coalesce({self.column} @? {p}::jsonpath, false)"
        if isinstance(c, (_Pred, _In)):
            return self._match(_path_jsonpath(c))  # type: ignore[arg-type]
        if isinstance(c, _Bool):
            if c.op == "$or":
                jp = _path_jsonpath(c)
                if jp is not None:
                    return self._match(jp)
            joiner = " AND " if c.op == "$and" else " OR "
            return "(" + joiner.join(_and(self.group(g)) for g in c.groups) + ")"
        raise AssertionError(c)

    def _add_eq(self, path: List[str], value: Any, conds: List[str], eq_doc: Dict[str, Any]) -> None:
        # merge into the group's containment object unless that would conflict
        node = eq_doc
        for part in path[:-1]:
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

    def _contains(self, doc: Dict[str, Any]) -> str:
        return f"{self.column} @> {self.params.add(_dumps(doc))}::jsonb"

    def _match(self, predicate: str) -> str:
        # jsonb @@ jsonpath is jsonb_path_match(..., silent => true) without
        # variables, and an operator the hnsw index can evaluate.
        return f"{self.column} @@ {self.params.add('strict ' + predicate)}::jsonpath"


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
    sql = _and(_Writer(params, column).group(_Parser().group(where, [])))
    params.filtered = True
    return sql


def explain(where: Optional[Dict[str, Any]]) -> Tuple[Optional[str], List[Any]]:
    """The SQL and parameters a filter compiles to ($N placeholders); for debugging."""
    params = Params("asyncpg")
    return compile_where(where, params), params.values
