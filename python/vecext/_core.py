"""Driver-independent parts of a collection: names, catalog reading, SQL text.

The sync (psycopg) and async (asyncpg) classes build every statement here and
differ only in how they run it. Identifiers are validated against a strict
pattern and then quoted by the caller's quoting function (psycopg's
``sql.Identifier`` for the sync side); values are always bound parameters
collected by :class:`vecext.filters.Params`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import vector as _v
from .errors import (
    CollectionNotFoundError,
    DimensionMismatchError,
    IncompatibleCollectionError,
    InvalidNameError,
)
from .filters import Params, compile_where
from .results import CollectionInfo, Record, ScoredResult, SearchResult

# Collection names: lower-case ASCII, so that they need no quoting in psql,
# and short enough for "<name>_embedding_idx" to fit in 63 bytes.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TEXT_CONFIG_RE = re.compile(r"^[a-z_]{1,63}$")

# metric -> (distance operator, hnsw operator class)
METRICS: Dict[str, Tuple[str, str]] = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "l2": ("<->", "vector_l2_ops"),
    "ip": ("<#>", "vector_ip_ops"),
    "l1": ("<+>", "vector_l1_ops"),
}
OPCLASS_METRIC = {opc: metric for metric, (_, opc) in METRICS.items()}

DEFAULT_METRIC = "cosine"
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_TEXT_CONFIG = "english"
COPY_THRESHOLD = 1000  # batches of at least this many rows go through COPY

# Largest number of dimensions an hnsw index takes: float4 elements, SQ8 codes
# (src/pg/hnsw.h, HNSW_MAX_DIM and HNSW_MAX_DIM_SQ8).
MAX_DIM = 2000
MAX_DIM_SQ8 = 8000


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidNameError(
            f"invalid collection name {name!r}: use 1-48 characters, lower-case letters, digits "
            f"and underscores, starting with a letter")
    return name


def validate_schema(schema: Any) -> str:
    if not isinstance(schema, str) or not SCHEMA_RE.match(schema):
        raise InvalidNameError(f"invalid schema name {schema!r}")
    return schema


def validate_metric(metric: Any) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    return metric


def validate_text_config(cfg: Any) -> str:
    if not isinstance(cfg, str) or not TEXT_CONFIG_RE.match(cfg):
        raise InvalidNameError(f"invalid text search configuration name {cfg!r}")
    return cfg


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    return value


def check_quantize(quantize: Any) -> Optional[bool]:
    if quantize is not None and not isinstance(quantize, bool):
        raise TypeError(f"quantize must be True, False or None, not {quantize!r}")
    return quantize


def check_dim(dim: Any, quantize: bool) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, not {dim!r}")
    if quantize and dim > MAX_DIM_SQ8:
        raise ValueError(f"dim {dim} is too large: hnsw indexes with SQ8 quantization (quantize=True) "
                         f"support at most {MAX_DIM_SQ8} dimensions")
    if not quantize and dim > MAX_DIM:
        raise ValueError(f"dim {dim} is too large: hnsw indexes support at most {MAX_DIM} dimensions; "
                         f"with quantize=True (SQ8) up to {MAX_DIM_SQ8}")
    return dim


def check_create_options(dim: Any, metric: str, m: Any, ef_construction: Any, quantize: Any) -> None:
    check_dim(dim, bool(quantize))
    validate_metric(metric)
    check_int("m", m, 2, 100)
    check_int("ef_construction", ef_construction, 4, 1000)
    if ef_construction < 2 * m:
        raise ValueError(f"ef_construction ({ef_construction}) must be at least 2 * m ({2 * m})")


def quote_ident(name: str) -> str:
    """Quotes an identifier the way Postgres does (for already validated names)."""
    if "\x00" in name:
        raise InvalidNameError("NUL in identifier")
    return '"' + name.replace('"', '""') + '"'


# -- catalog -------------------------------------------------------------------

_TABLE_COLUMNS = """
SELECT c.relname::text,
  coalesce((SELECT json_agg(json_build_array(a.attname, t.typname, a.atttypmod) ORDER BY a.attnum)
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]')::text,
  coalesce((SELECT json_agg(json_build_array(ic.relname, am.amname, opc.opcname, ic.reloptions,
                                             pg_catalog.pg_get_indexdef(i.indexrelid), ka.attname))
     FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
     JOIN pg_catalog.pg_am am ON am.oid = ic.relam
     LEFT JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[0]
     LEFT JOIN pg_catalog.pg_attribute ka ON ka.attrelid = c.oid AND ka.attnum = i.indkey[0]
     WHERE i.indrelid = c.oid), '[]')::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p') {more}
ORDER BY c.relname
"""


def catalog_query(params: Params, schema: str, name: Optional[str]) -> str:
    s = params.add(schema)
    more = f"AND c.relname = {params.add(name)}" if name is not None else ""
    return _TABLE_COLUMNS.format(schema=s, more=more)


_TSV_RE = re.compile(r"to_tsvector\('([a-z_]+)'::regconfig, document\)")


def parse_catalog(schema: str, row: Sequence[Any]) -> Tuple[Optional[CollectionInfo], str]:
    """A catalog row as a CollectionInfo, or (None, why it is not a collection)."""
    name, columns_json, indexes_json = row[0], row[1], row[2]
    columns = {c[0]: (c[1], c[2]) for c in json.loads(columns_json)}
    for col, typ in (("id", "text"), ("embedding", "vector"), ("metadata", "jsonb")):
        if col not in columns:
            return None, f"has no column {col!r}"
        if columns[col][0] != typ:
            return None, f"column {col!r} is {columns[col][0]}, not {typ}"
    documents = "document" in columns and columns["document"][0] == "text"
    dim = columns["embedding"][1]
    if dim is None or dim <= 0:
        return None, "column 'embedding' has no dimension (vector(n))"
    metric = None
    m, efc = DEFAULT_M, DEFAULT_EF_CONSTRUCTION
    quantize = False
    text_config = DEFAULT_TEXT_CONFIG
    for idx_name, am, opclass, reloptions, indexdef, keycol in json.loads(indexes_json):
        if am == "hnsw" and keycol == "embedding" and opclass in OPCLASS_METRIC and metric is None:
            metric = OPCLASS_METRIC[opclass]
            for opt in reloptions or []:
                k, _, val = opt.partition("=")
                if k == "m" and val.isdigit():
                    m = int(val)
                elif k == "ef_construction" and val.isdigit():
                    efc = int(val)
                elif k == "quantization":
                    quantize = val.lower() == "sq8"
        elif am == "gin" and indexdef:
            found = _TSV_RE.search(indexdef)
            if found:
                text_config = found.group(1)
    if metric is None:
        return None, "has no hnsw index on 'embedding'"
    return CollectionInfo(name, dim, metric, m, efc, documents, text_config, schema, quantize), ""


# -- SQL of one collection -------------------------------------------------------

def _nan_check(x: float, what: str) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite")
    return x


def metadata_json(metadata: Any) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    try:
        return json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata is not JSON-serialisable: {e}") from e


def check_id(id_: Any) -> str:
    if not isinstance(id_, str):
        raise TypeError(f"ids are strings, not {type(id_).__name__}")
    if "\x00" in id_:
        raise ValueError("NUL character in an id")
    return id_


def check_document(doc: Any) -> Optional[str]:
    if doc is not None and not isinstance(doc, str):
        raise TypeError(f"documents are strings, not {type(doc).__name__}")
    if doc is not None and "\x00" in doc:
        raise ValueError("NUL character in a document")
    return doc


class Rows:
    """Validated rows of an add/upsert batch, in column form."""

    def __init__(self, ids: Sequence[Any], vectors: Sequence[Any], metadatas: Optional[Sequence[Any]],
                 documents: Optional[Sequence[Any]], dim: int, dedupe: bool):
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, not a string")
        ids = list(ids)
        n = len(ids)
        vectors = list(vectors)  # a 2-D numpy array gives its rows
        if len(vectors) != n:
            raise ValueError(f"{n} ids but {len(vectors)} vectors")
        if metadatas is not None and len(metadatas) != n:
            raise ValueError(f"{n} ids but {len(metadatas)} metadata dicts")
        if documents is not None and len(documents) != n:
            raise ValueError(f"{n} ids but {len(documents)} documents")
        self.ids = [check_id(i) for i in ids]
        self.vectors = [_v.as_float32(vec, dim) for vec in vectors]
        self.metadata = [dict(m) if m is not None else {} for m in (metadatas or [None] * n)]
        for m in self.metadata:
            metadata_json(m)  # type check now, with a clear error
        self.metadata_text = [metadata_json(m) for m in self.metadata]
        self.documents = [check_document(d) for d in documents] if documents is not None else None
        if dedupe and len(set(self.ids)) != n:
            last = {i: k for k, i in enumerate(self.ids)}
            keep = sorted(last.values())
            self.ids = [self.ids[k] for k in keep]
            self.vectors = [self.vectors[k] for k in keep]
            self.metadata = [self.metadata[k] for k in keep]
            self.metadata_text = [self.metadata_text[k] for k in keep]
            if self.documents is not None:
                self.documents = [self.documents[k] for k in keep]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_documents(self) -> bool:
        return self.documents is not None and any(d is not None for d in self.documents)


class Statements:
    """SQL text for one collection. ``table`` etc. are already quoted names."""

    def __init__(self, info: CollectionInfo, quote: Callable[..., str], style: str):
        self.info = info
        self.style = style
        self.table = quote(info.schema, info.name)
        self.embedding_index = quote(info.schema, info.name + "_embedding_idx")
        self.metadata_index = quote(info.name + "_metadata_idx")
        self.document_index = quote(info.name + "_document_idx")
        self.op = METRICS[info.metric][0]
        self.ts = f"'{validate_text_config(info.text_config)}'::pg_catalog.regconfig"

    def params(self) -> Params:
        return Params(self.style)

    @property
    def doc_col(self) -> str:
        return "t.document" if self.info.documents else "NULL::text"

    def tsvector(self) -> str:
        # Must be the indexed expression, letter for letter, for the GIN index to serve it.
        return f"to_tsvector({self.ts}, t.document)"

    # creation ---------------------------------------------------------------
    @staticmethod
    def create(table: str, emb_idx: str, meta_idx: str, doc_idx: str, dim: int, metric: str, m: int,
               efc: int, documents: bool, text_config: str, quantize: bool = False) -> List[str]:
        cols = ("id text PRIMARY KEY, embedding vector(%d) NOT NULL, "
                "metadata jsonb NOT NULL DEFAULT '{}'::jsonb" % dim)
        if documents:
            cols += ", document text"
        quant = ", quantization = 'sq8'" if quantize else ""
        out = [
            f"CREATE TABLE {table} ({cols})",
            # The metadata column lets the hnsw index evaluate where filters
            # inside the graph search (docs/filtering.md); the GIN index serves
            # selective equality filters (GIN scan + sort is then cheaper, and
            # the planner chooses by the filter's values) and count/get/delete.
            f"CREATE INDEX {emb_idx} ON {table} USING hnsw (embedding {METRICS[metric][1]}, "
            f"metadata jsonb_hnsw_ops) WITH (m = {int(m)}, ef_construction = {int(efc)}{quant})",
            f"CREATE INDEX {meta_idx} ON {table} USING gin (metadata jsonb_path_ops)",
        ]
        if documents:
            out += Statements.document_ddl(table, doc_idx, text_config)
        return out

    @staticmethod
    def document_ddl(table: str, doc_idx: str, text_config: str) -> List[str]:
        cfg = validate_text_config(text_config)
        return [
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS document text",
            f"CREATE INDEX IF NOT EXISTS {doc_idx} ON {table} "
            f"USING gin (to_tsvector('{cfg}'::pg_catalog.regconfig, document))",
        ]

    # writes -----------------------------------------------------------------
    def insert_one(self, id_: str, vec: Any, metadata: Any, document: Optional[str],
                   upsert: bool) -> Tuple[str, Params]:
        p = self.params()
        cols = ["id", "embedding", "metadata"]
        vals = [p.add(id_), f"{p.add(_v.Vector(vec))}::vector", f"{p.add(metadata_json(metadata))}::jsonb"]
        if self.info.documents:
            cols.append("document")
            vals.append(f"{p.add(document)}::text")
        sql = f"INSERT INTO {self.table} ({', '.join(cols)}) VALUES ({', '.join(vals)})"
        if upsert:
            sql += self._on_conflict(cols)
        return sql, p

    def _on_conflict(self, cols: List[str]) -> str:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "id")
        return f" ON CONFLICT (id) DO UPDATE SET {sets}"

    def columns(self) -> List[str]:
        return ["id", "embedding", "metadata"] + (["document"] if self.info.documents else [])

    def insert_unnest(self, rows: Rows, upsert: bool) -> Tuple[str, Params]:
        p = self.params()
        cols = self.columns()
        args = [f"{p.add(rows.ids)}::text[]",
                f"{p.add([_v.Vector(x) for x in rows.vectors])}::vector[]",
                f"{p.add(rows.metadata_text)}::text[]"]
        sel = ["u.id", "u.embedding", "u.metadata::jsonb"]
        names = ["id", "embedding", "metadata"]
        if self.info.documents:
            args.append(f"{p.add(rows.documents or [None] * len(rows))}::text[]")
            sel.append("u.document")
            names.append("document")
        sql = (f"INSERT INTO {self.table} ({', '.join(cols)}) SELECT {', '.join(sel)} "
               f"FROM unnest({', '.join(args)}) AS u({', '.join(names)})")
        if upsert:
            sql += self._on_conflict(cols)
        return sql, p

    def stage_table(self) -> Tuple[str, str]:
        """(CREATE TEMP TABLE ..., its name) for a COPY-based upsert."""
        cols = "id text, embedding vector(%d), metadata jsonb" % self.info.dim
        if self.info.documents:
            cols += ", document text"
        return f"CREATE TEMP TABLE vecext_stage ({cols}) ON COMMIT DROP", "vecext_stage"

    def copy_into(self, target: str) -> str:
        return f"COPY {target} ({', '.join(self.columns())}) FROM STDIN (FORMAT BINARY)"

    def merge_stage(self, stage: str) -> str:
        cols = self.columns()
        return (f"INSERT INTO {self.table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {stage}"
                + self._on_conflict(cols))

    def update(self, id_: str, vec: Any, metadata: Any, document: Any, merge: bool,
               set_document: bool) -> Tuple[str, Params]:
        p = self.params()
        sets = []
        if vec is not None:
            sets.append(f"embedding = {p.add(_v.Vector(vec))}::vector")
        if metadata is not None:
            m = f"{p.add(metadata_json(metadata))}::jsonb"
            sets.append(f"metadata = metadata || {m}" if merge else f"metadata = {m}")
        if set_document:
            sets.append(f"document = {p.add(document)}::text")
        if not sets:
            raise ValueError("update needs a vector, metadata or a document")
        return f"UPDATE {self.table} SET {', '.join(sets)} WHERE id = {p.add(id_)}", p

    def delete_ids(self, ids: List[str]) -> Tuple[str, Params]:
        p = self.params()
        return f"DELETE FROM {self.table} WHERE id = ANY({p.add(ids)}::text[])", p

    def delete_where(self, ids: Optional[List[str]], where: Any) -> Tuple[str, Params]:
        p = self.params()
        conds = []
        if ids is not None:
            conds.append(f"t.id = ANY({p.add(ids)}::text[])")
        cond = compile_where(where, p, "t.metadata")
        if cond:
            conds.append(cond)
        if not conds:
            raise ValueError("delete_many needs ids or a non-empty where filter")
        return f"DELETE FROM {self.table} t WHERE {' AND '.join(conds)}", p

    # reads ------------------------------------------------------------------
    def get(self, ids: Optional[List[str]], where: Any, limit: Optional[int], offset: int,
            include_embedding: bool) -> Tuple[str, Params]:
        p = self.params()
        conds = []
        if ids is not None:
            conds.append(f"t.id = ANY({p.add(ids)}::text[])")
        cond = compile_where(where, p, "t.metadata")
        if cond:
            conds.append(cond)
        emb = "t.embedding" if include_embedding else "NULL::vector"
        sql = f"SELECT t.id, {emb}, t.metadata::text, {self.doc_col} FROM {self.table} t"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += " ORDER BY t.id"
        if limit is not None:
            sql += f" LIMIT {p.add(check_int('limit', limit, 0, 2**62))}::int8"
        if offset:
            sql += f" OFFSET {p.add(check_int('offset', offset, 0, 2**62))}::int8"
        return sql, p

    def count(self, where: Any) -> Tuple[str, Params]:
        p = self.params()
        cond = compile_where(where, p, "t.metadata")
        sql = f"SELECT count(*) FROM {self.table} t"
        if cond:
            sql += " WHERE " + cond
        return sql, p

    def search(self, vec: Any, k: int, where: Any, max_distance: Optional[float],
               with_embedding: bool = False) -> Tuple[str, Params]:
        check_int("k", k, 1, 100000)
        p = self.params()
        q = f"{p.add(_v.Vector(vec))}::vector"
        dist = f"t.embedding {self.op} {q}"
        conds = []
        cond = compile_where(where, p, "t.metadata")
        if cond:
            conds.append(cond)
        if max_distance is not None:
            conds.append(f"{dist} < {p.add(_nan_check(max_distance, 'max_distance'))}::float8")
        emb = ", t.embedding" if with_embedding else ""
        sql = f"SELECT t.id, {dist} AS distance, t.metadata::text{emb} FROM {self.table} t"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += f" ORDER BY {dist} LIMIT {p.add(k)}::int8"
        return sql, p

    def search_many(self, vecs: List[Any], k: int, where: Any,
                    max_distance: Optional[float]) -> Tuple[str, Params]:
        """One statement: a LATERAL index search per query vector."""
        check_int("k", k, 1, 100000)
        p = self.params()
        qs = p.add([_v.Vector(v) for v in vecs])
        dist = f"t.embedding {self.op} q.v"
        conds = []
        cond = compile_where(where, p, "t.metadata")
        if cond:
            conds.append(cond)
        if max_distance is not None:
            conds.append(f"{dist} < {p.add(_nan_check(max_distance, 'max_distance'))}::float8")
        where_sql = (" WHERE " + " AND ".join(conds)) if conds else ""
        sql = (f"SELECT q.ord, r.id, r.distance, r.metadata "
               f"FROM unnest({qs}::vector[]) WITH ORDINALITY AS q(v, ord) "
               f"CROSS JOIN LATERAL (SELECT t.id, {dist} AS distance, t.metadata::text AS metadata "
               f"FROM {self.table} t{where_sql} ORDER BY {dist} LIMIT {p.add(k)}::int8) r "
               f"ORDER BY q.ord, r.distance")
        return sql, p

    def keyword(self, query: str, k: int, where: Any) -> Tuple[str, Params]:
        check_int("k", k, 1, 100000)
        if not isinstance(query, str):
            raise TypeError("the query text must be a string")
        p = self.params()
        if not self.info.documents:
            return "SELECT NULL::text, 0::float8, NULL::text, NULL::text WHERE false", p
        tq = f"websearch_to_tsquery({self.ts}, {p.add(query)}::text)"
        conds = [f"{self.tsvector()} @@ tq.q"]
        cond = compile_where(where, p, "t.metadata")
        if cond:
            conds.append(cond)
        sql = (f"SELECT t.id, ts_rank_cd({self.tsvector()}, tq.q)::float8 AS score, t.metadata::text, "
               f"t.document FROM {self.table} t, {tq} AS tq(q) WHERE {' AND '.join(conds)} "
               f"ORDER BY score DESC, t.id LIMIT {p.add(k)}::int8")
        return sql, p

    def hybrid(self, query: str, vec: Any, k: int, fetch_k: int, rrf_k: int, where: Any,
               vector_weight: float, keyword_weight: float) -> Tuple[str, Params]:
        """Reciprocal rank fusion of a vector and a full-text search, in one statement:
        score = vector_weight / (rrf_k + vector rank) + keyword_weight / (rrf_k + keyword rank)."""
        check_int("k", k, 1, 100000)
        check_int("fetch_k", fetch_k, 1, 100000)
        check_int("rrf_k", rrf_k, 0, 1000000)
        if not isinstance(query, str):
            raise TypeError("the query text must be a string")
        p = self.params()
        q = f"{p.add(_v.Vector(vec))}::vector"
        fk = f"{p.add(fetch_k)}::int8"
        rk = f"{p.add(rrf_k)}::float8"
        wv = f"{p.add(_nan_check(vector_weight, 'vector_weight'))}::float8"
        wk = f"{p.add(_nan_check(keyword_weight, 'keyword_weight'))}::float8"
        cond = compile_where(where, p, "t.metadata")
        fv = f" WHERE {cond}" if cond else ""
        dist = f"t.embedding {self.op} {q}"
        if self.info.documents:
            tq = f"websearch_to_tsquery({self.ts}, {p.add(query)}::text)"
            fkw = f" AND {cond}" if cond else ""
            kw = (f"SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank FROM ("
                  f"SELECT t.id, ts_rank_cd({self.tsvector()}, tq.q) AS score "
                  f"FROM {self.table} t, {tq} AS tq(q) WHERE {self.tsvector()} @@ tq.q{fkw} "
                  f"ORDER BY score DESC, t.id LIMIT {fk}) s")
        else:
            kw = "SELECT NULL::text AS id, 0::int8 AS rank WHERE false"
        sql = (
            f"WITH vec AS (SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM ("
            f"SELECT t.id, {dist} AS distance FROM {self.table} t{fv} ORDER BY {dist} LIMIT {fk}) s), "
            f"kw AS ({kw}), "
            f"fused AS (SELECT coalesce(vec.id, kw.id) AS id, "
            f"coalesce({wv} / ({rk} + vec.rank), 0) + coalesce({wk} / ({rk} + kw.rank), 0) AS score "
            f"FROM vec FULL OUTER JOIN kw ON vec.id = kw.id) "
            f"SELECT f.id, f.score::float8, t.metadata::text, {self.doc_col} "
            f"FROM fused f JOIN {self.table} t ON t.id = f.id "
            f"ORDER BY f.score DESC, f.id LIMIT {p.add(k)}::int8")
        return sql, p

    def stats(self) -> Tuple[str, Params]:
        p = self.params()
        idx = p.add(self.embedding_index)
        tbl = p.add(self.table)
        sql = (f"SELECT (SELECT count(*) FROM {self.table}), "
               f"pg_catalog.pg_total_relation_size({tbl}::text::regclass), s.* "
               f"FROM hnsw_index_stats({idx}::text::regclass) s")
        return sql, p

    def export(self) -> str:
        return f"SELECT t.id, t.embedding::text, t.metadata::text, {self.doc_col} FROM {self.table} t ORDER BY t.id"


# -- row conversion ---------------------------------------------------------------

def search_results(rows: Iterable[Sequence[Any]]) -> List[SearchResult]:
    return [SearchResult(r[0], float(r[1]), json.loads(r[2])) for r in rows]


def search_many_results(rows: Iterable[Sequence[Any]], n: int) -> List[List[SearchResult]]:
    out: List[List[SearchResult]] = [[] for _ in range(n)]
    for r in rows:
        out[int(r[0]) - 1].append(SearchResult(r[1], float(r[2]), json.loads(r[3])))
    return out


def scored_results(rows: Iterable[Sequence[Any]]) -> List[ScoredResult]:
    return [ScoredResult(r[0], float(r[1]), json.loads(r[2]), r[3]) for r in rows]


def records(rows: Iterable[Sequence[Any]], use_numpy: bool) -> List[Record]:
    return [Record(r[0], _v.result_vector(r[1], use_numpy), json.loads(r[2]), r[3]) for r in rows]


STATS_COLUMNS = ("elements", "deleted", "levels", "entry_level", "level_elements", "avg_degree",
                 "min_degree", "pages", "bytes", "m", "ef_construction", "metric", "dimensions",
                 "quantization")


def stats_dict(info: CollectionInfo, row: Sequence[Any]) -> Dict[str, Any]:
    index = {k: (list(v) if isinstance(v, (list, tuple)) else v)
             for k, v in zip(STATS_COLUMNS, row[2:])}
    return {
        "name": info.name,
        "schema": info.schema,
        "dim": info.dim,
        "metric": info.metric,
        "m": info.m,
        "ef_construction": info.ef_construction,
        "documents": info.documents,
        "quantize": info.quantize,
        "count": int(row[0]),
        "total_bytes": int(row[1]),
        "index": index,
    }


def export_line(row: Sequence[Any]) -> str:
    """One JSON Lines record. The vector's text form is already valid JSON."""
    line = '{"id": %s, "embedding": %s, "metadata": %s' % (json.dumps(row[0], ensure_ascii=False),
                                                          row[1], row[2])
    if row[3] is not None:
        line += ', "document": %s' % json.dumps(row[3], ensure_ascii=False)
    return line + "}\n"


def _parse_int(s: str) -> Any:
    # The vector text form writes negative zero as "-0", which json would read as 0.
    return -0.0 if s == "-0" else int(s)


def import_record(line: str, lineno: int) -> Tuple[str, Any, Dict[str, Any], Optional[str]]:
    try:
        obj = json.loads(line, parse_int=_parse_int)
    except ValueError as e:
        raise ValueError(f"line {lineno}: not JSON: {e}") from e
    if not isinstance(obj, dict) or "id" not in obj or "embedding" not in obj:
        raise ValueError(f"line {lineno}: expected an object with 'id' and 'embedding'")
    return obj["id"], obj["embedding"], obj.get("metadata") or {}, obj.get("document")


def check_dim_matches(info: CollectionInfo, dim: Optional[int], metric: Optional[str],
                      quantize: Optional[bool] = None) -> None:
    if dim is not None and dim != info.dim:
        raise DimensionMismatchError(
            f"collection {info.name!r} has {info.dim} dimensions, not {dim}", "22000")
    if metric is not None and metric != info.metric:
        raise IncompatibleCollectionError(
            f"collection {info.name!r} uses the {info.metric!r} metric, not {metric!r}")
    if quantize is not None and quantize != info.quantize:
        raise IncompatibleCollectionError(
            f"collection {info.name!r} is {'' if info.quantize else 'not '}quantized (SQ8), "
            f"but quantize={quantize!r} was asked for")


def search_settings(ef_search: Optional[int], quantized_search: Optional[bool]) -> List[str]:
    """The SET LOCAL statements of one search (validated constants: SET takes no parameters)."""
    out = []
    if ef_search is not None:
        out.append(f"SET LOCAL hnsw.ef_search = {check_int('ef_search', ef_search, 1, 1000)}")
    if quantized_search is not None:
        if not isinstance(quantized_search, bool):
            raise TypeError(f"quantized_search must be True, False or None, not {quantized_search!r}")
        out.append(f"SET LOCAL hnsw.quantized_search = {'on' if quantized_search else 'off'}")
    return out


def not_found(schema: str, name: str) -> CollectionNotFoundError:
    return CollectionNotFoundError(f"collection {name!r} does not exist in schema {schema!r}", "42P01")


def mmr(query: Any, candidates: List[Any], k: int, lambda_mult: float) -> List[int]:
    """Maximal marginal relevance: indices of up to k candidates, greedily
    maximising lambda * sim(query, c) - (1 - lambda) * max sim(c, chosen),
    with cosine similarity."""
    if not candidates or k <= 0:
        return []
    if _v.HAVE_NUMPY:
        import numpy as np

        c = np.asarray([np.asarray(x, dtype=np.float64) for x in candidates])
        qv = np.asarray(query, dtype=np.float64)

        def normed(a: Any) -> Any:
            norms = np.linalg.norm(a, axis=-1, keepdims=True)
            return a / np.where(norms == 0, 1, norms)

        cn, qn = normed(c), normed(qv)
        rel = cn @ qn
        sim = cn @ cn.T
        chosen = [int(np.argmax(rel))]
        while len(chosen) < min(k, len(candidates)):
            redundancy = sim[:, chosen].max(axis=1)
            score = lambda_mult * rel - (1 - lambda_mult) * redundancy
            score[chosen] = -np.inf
            chosen.append(int(np.argmax(score)))
        return chosen

    def norm(a: List[float]) -> List[float]:
        s = math.sqrt(sum(x * x for x in a)) or 1.0
        return [x / s for x in a]

    def dot(a: List[float], b: List[float]) -> float:
        return sum(x * y for x, y in zip(a, b))

    cl = [norm(_v.to_list(x)) for x in candidates]
    ql = norm(_v.to_list(query))
    rel_l = [dot(x, ql) for x in cl]
    chosen_l = [max(range(len(cl)), key=lambda i: rel_l[i])]
    while len(chosen_l) < min(k, len(cl)):
        best, best_score = -1, -math.inf
        for i in range(len(cl)):
            if i in chosen_l:
                continue
            s = lambda_mult * rel_l[i] - (1 - lambda_mult) * max(dot(cl[i], cl[j]) for j in chosen_l)
            if s > best_score:
                best, best_score = i, s
        chosen_l.append(best)
    return chosen_l
