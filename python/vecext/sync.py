"""Synchronous API on psycopg 3: :class:`Database` (one collection) and :class:`Client`."""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import psycopg
from psycopg import sql as _sql
from psycopg.types.json import Jsonb

from . import _core
from . import vector as _v
from .errors import (
    CollectionExistsError,
    ConnectionClosedError,
    IncompatibleCollectionError,
    VecextError,
    connect_failed,
    translate,
)
from .psycopg_types import register_vector
from .results import CollectionInfo, Record, ScoredResult, SearchResult

_UNSET: Any = object()


def _already_json(text: str) -> str:
    return text


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except VecextError:
        raise
    except Exception as e:
        t = translate(e)
        if t is e:
            raise
        raise t from e


def connect(dsn: Optional[str] = None, use_numpy: Optional[bool] = None,
            create_extension: bool = True) -> psycopg.Connection:
    """An autocommit psycopg connection with ``vector`` registered (creating
    the extension when it is missing and ``create_extension``)."""
    try:
        conn = psycopg.connect(dsn or "", autocommit=True)
    except Exception as e:
        raise connect_failed(e) from e
    try:
        prepare_connection(conn, use_numpy, create_extension)
    except BaseException:
        conn.close()
        raise
    return conn


def prepare_connection(conn: psycopg.Connection, use_numpy: Optional[bool] = None,
                       create_extension: bool = True) -> None:
    with _translated():
        have = conn.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'vecext'").fetchone()
        if not have and create_extension:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vecext")
        register_vector(conn, use_numpy)


def _check_given(conn: psycopg.Connection, use_numpy: bool) -> None:
    """A connection passed in: usable, autocommit, with the vector type registered."""
    if conn.closed:
        raise ConnectionClosedError("the connection is closed")
    if not conn.autocommit:
        raise ValueError("the connection must be in autocommit mode (psycopg.connect(..., autocommit=True))")
    prepare_connection(conn, use_numpy)


def _quoter(conn: psycopg.Connection):
    def quote(*names: str) -> str:
        return _sql.Identifier(*names).as_string(conn)
    return quote


def _read_catalog(conn: psycopg.Connection, schema: str, name: str) -> Optional[CollectionInfo]:
    p = _core.Params("psycopg")
    q = _core.catalog_query(p, schema, name)
    row = conn.execute(q, p.bind()).fetchone()
    if row is None:
        return None
    info, why = _core.parse_catalog(schema, row)
    if info is None:
        raise IncompatibleCollectionError(f"table {schema}.{name} is not a vecext collection: it {why}")
    return info


def open_collection(conn: psycopg.Connection, schema: str, name: str, dim: Optional[int],
                    metric: Optional[str], m: int, ef_construction: int, quantize: Optional[bool],
                    documents: bool, text_config: str, mode: str) -> CollectionInfo:
    """mode: "open" (must exist), "create" (must not), "auto" (open, else create when dim is given).
    quantize: None accepts either kind when opening (and means False when creating)."""
    _core.validate_schema(schema)
    _core.validate_name(name)
    if metric is not None:
        _core.validate_metric(metric)
    _core.validate_text_config(text_config)
    _core.check_quantize(quantize)
    quote = _quoter(conn)
    with _translated():
        if conn.closed:
            raise ConnectionClosedError("the connection is closed")
        with conn.transaction():
            conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(%s))",
                         [f"vecext:{schema}.{name}"])
            info = _read_catalog(conn, schema, name)
            if info is not None:
                if mode == "create":
                    raise CollectionExistsError(f"collection {name!r} already exists", "42P07")
                _core.check_dim_matches(info, dim, metric, quantize)
            else:
                if mode == "open" or dim is None:
                    raise _core.not_found(schema, name)
                metric = metric or _core.DEFAULT_METRIC
                _core.check_create_options(dim, metric, m, ef_construction, quantize)
                for stmt in _core.Statements.create(
                        quote(schema, name), quote(name + "_embedding_idx"), quote(name + "_metadata_idx"),
                        quote(name + "_document_idx"), dim, metric, m, ef_construction, documents,
                        text_config, bool(quantize)):
                    conn.execute(stmt)
                info = _read_catalog(conn, schema, name)
                assert info is not None
        if documents and not info.documents:
            info = _add_documents(conn, info)
    return info


def _add_documents(conn: psycopg.Connection, info: CollectionInfo) -> CollectionInfo:
    quote = _quoter(conn)
    with conn.transaction():
        for stmt in _core.Statements.document_ddl(quote(info.schema, info.name),
                                                  quote(info.name + "_document_idx"), info.text_config):
            conn.execute(stmt)
    return info._replace(documents=True)


class Database:
    """One collection: a table ``(id text PRIMARY KEY, embedding vector(dim),
    metadata jsonb[, document text])`` with an hnsw index on ``(embedding,
    metadata)`` (where filters evaluated inside the graph search) and a GIN
    index on ``metadata``.

    Opens the collection ``name`` when it exists (its dim, metric and
    quantization come from the catalog), else creates it when ``dim`` is
    given, else raises CollectionNotFoundError. ``quantize=True`` creates the
    hnsw index with SQ8 quantization (up to 8000 dimensions instead of 2000);
    ``None`` (the default) opens either kind and creates an unquantized one.
    """

    copy_threshold = _core.COPY_THRESHOLD

    def __init__(self, dsn: Optional[str] = None, name: Optional[str] = None, dim: Optional[int] = None,
                 metric: Optional[str] = None, m: int = _core.DEFAULT_M,
                 ef_construction: int = _core.DEFAULT_EF_CONSTRUCTION, quantize: Optional[bool] = None, *,
                 documents: bool = False, text_config: str = _core.DEFAULT_TEXT_CONFIG,
                 schema: str = "public", use_numpy: Optional[bool] = None,
                 connection: Optional[psycopg.Connection] = None, _mode: str = "auto",
                 _prepared: bool = False):
        if name is None:
            raise TypeError("Database() needs a collection name")
        _core.check_quantize(quantize)
        self._use_numpy = _v._resolve(use_numpy)
        self._owns = connection is None
        if connection is not None and not _prepared:
            _check_given(connection, self._use_numpy)
        self._conn: Optional[psycopg.Connection] = connection or connect(dsn, self._use_numpy)
        try:
            self._info = open_collection(self._conn, schema, name, dim, metric, m, ef_construction,
                                         quantize, documents, text_config, _mode)
        except BaseException:
            if self._owns:
                self._conn.close()
            raise
        self._st = _core.Statements(self._info, _quoter(self._conn), "psycopg")

    # -- plumbing ----------------------------------------------------------------
    @property
    def info(self) -> CollectionInfo:
        return self._info

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def dim(self) -> int:
        return self._info.dim

    @property
    def metric(self) -> str:
        return self._info.metric

    @property
    def quantize(self) -> bool:
        """True when the collection's hnsw index is SQ8-quantized."""
        return self._info.quantize

    @property
    def connection(self) -> psycopg.Connection:
        return self._live()

    @property
    def closed(self) -> bool:
        return self._conn is None or self._conn.closed

    def close(self) -> None:
        """Closes the connection if this object opened it; further calls raise
        ConnectionClosedError."""
        if self._conn is not None and self._owns:
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self._info
        q = " quantize=sq8" if i.quantize else ""
        return f"<vecext.Database {i.schema}.{i.name} dim={i.dim} metric={i.metric}{q}>"

    def _live(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            raise ConnectionClosedError("the connection is closed")
        return self._conn

    def _fetch(self, q: str, p: _core.Params, ef_search: Optional[int] = None,
               binary: bool = False, quantized_search: Optional[bool] = None) -> List[Any]:
        conn = self._live()
        settings = _core.search_settings(ef_search, quantized_search)
        # A filtered statement is never prepared: psycopg prepares a query
        # after 5 executions, and the server may then use one generic plan,
        # made without the filter's values, for every later execution (a scan
        # and sort, or a GIN scan, where the in-index filter is the better plan).
        prepare = False if p.filtered else None
        with _translated():
            with conn.cursor(binary=binary) as cur:
                if not settings:
                    cur.execute(q, p.bind(), prepare=prepare)
                    return cur.fetchall()
                # BEGIN, SET LOCAL, the query and COMMIT in one round trip (pipeline mode)
                with conn.pipeline():
                    with conn.transaction():
                        for stmt in settings:
                            conn.execute(stmt)
                        cur.execute(q, p.bind(), prepare=prepare)
                    return cur.fetchall()

    def _exec(self, q: str, p: Optional[_core.Params] = None) -> int:
        conn = self._live()
        with _translated():
            with conn.cursor() as cur:
                cur.execute(q, p.bind() if p is not None else None,
                            prepare=False if p is not None and p.filtered else None)
                return cur.rowcount

    def _ensure_documents(self) -> None:
        if not self._info.documents:
            conn = self._live()
            with _translated():
                self._info = _add_documents(conn, self._info)
            self._st = _core.Statements(self._info, _quoter(conn), "psycopg")

    # -- writes ------------------------------------------------------------------
    def add(self, id: str, vector: Any, metadata: Optional[Dict[str, Any]] = None,
            document: Optional[str] = None) -> None:
        """Inserts one item; DuplicateIdError if the id exists."""
        self._write_one(id, vector, metadata, document, upsert=False)

    def upsert(self, id: str, vector: Any, metadata: Optional[Dict[str, Any]] = None,
               document: Optional[str] = None) -> None:
        """Inserts one item or replaces it (vector, metadata and document)."""
        self._write_one(id, vector, metadata, document, upsert=True)

    def _write_one(self, id_: str, vector: Any, metadata: Any, document: Any, upsert: bool) -> None:
        _core.check_id(id_)
        vec = _v.as_float32(vector, self._info.dim)
        _core.metadata_json(metadata)
        _core.check_document(document)
        self._live()
        if document is not None:
            self._ensure_documents()
        q, p = self._st.insert_one(id_, vec, metadata, document, upsert)
        self._exec(q, p)

    def add_many(self, ids: Sequence[str], vectors: Sequence[Any],
                 metadatas: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
                 documents: Optional[Sequence[Optional[str]]] = None) -> int:
        """Inserts many items in one transaction (COPY for large batches).
        DuplicateIdError, and nothing inserted, if any id exists."""
        rows = _core.Rows(ids, vectors, metadatas, documents, self._info.dim, dedupe=False)
        return self._write_many(rows, upsert=False)

    def upsert_many(self, ids: Sequence[str], vectors: Sequence[Any],
                    metadatas: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
                    documents: Optional[Sequence[Optional[str]]] = None) -> int:
        """Inserts or replaces many items (the last wins for an id given twice).
        Large batches: COPY into a temporary table, then INSERT ... ON CONFLICT."""
        rows = _core.Rows(ids, vectors, metadatas, documents, self._info.dim, dedupe=True)
        return self._write_many(rows, upsert=True)

    def _write_many(self, rows: _core.Rows, upsert: bool) -> int:
        if not len(rows):
            return 0
        conn = self._live()
        if rows.has_documents:
            self._ensure_documents()
        st = self._st
        if len(rows) < self.copy_threshold:
            q, p = st.insert_unnest(rows, upsert)
            self._exec(q, p)
            return len(rows)
        types = ["text", "vector", "jsonb"] + (["text"] if self._info.documents else [])
        docs = rows.documents or [None] * len(rows)
        with _translated():
            with conn.transaction(), conn.cursor() as cur:
                target = st.table
                if upsert:
                    create, target = st.stage_table()
                    cur.execute(create)
                with cur.copy(st.copy_into(target)) as cp:
                    cp.set_types(types)
                    for i in range(len(rows)):
                        row = [rows.ids[i], _v.Vector(rows.vectors[i]),
                               Jsonb(rows.metadata_text[i], dumps=_already_json)]
                        if self._info.documents:
                            row.append(docs[i])
                        cp.write_row(row)
                if upsert:
                    cur.execute(st.merge_stage(target))
        return len(rows)

    def update(self, id: str, vector: Any = None, metadata: Optional[Dict[str, Any]] = None,
               document: Any = _UNSET, merge_metadata: bool = False) -> bool:
        """Changes the given fields of one item; False if the id does not exist.
        ``merge_metadata=True`` merges keys into the stored metadata (jsonb ||)."""
        _core.check_id(id)
        vec = _v.as_float32(vector, self._info.dim) if vector is not None else None
        set_doc = document is not _UNSET
        if set_doc:
            _core.check_document(document)
            if document is not None:
                self._ensure_documents()
            elif not self._info.documents:
                set_doc = False  # nothing to clear
                if vec is None and metadata is None:
                    return self.get(id, include_embedding=False) is not None
        q, p = self._st.update(id, vec, metadata, document if set_doc else None, merge_metadata, set_doc)
        return self._exec(q, p) > 0

    def delete(self, id: str) -> bool:
        """Deletes one item; False if it did not exist."""
        _core.check_id(id)
        q, p = self._st.delete_ids([id])
        return self._exec(q, p) > 0

    def delete_many(self, ids: Optional[Sequence[str]] = None, where: Optional[Dict[str, Any]] = None) -> int:
        """Deletes the items with these ids and/or matching ``where``; returns how many."""
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, not a string")
        idl = [_core.check_id(i) for i in ids] if ids is not None else None
        q, p = self._st.delete_where(idl, where)
        return self._exec(q, p)

    # -- reads -------------------------------------------------------------------
    def get(self, ids: Union[str, Sequence[str], None] = None, *, where: Optional[Dict[str, Any]] = None,
            limit: Optional[int] = None, offset: int = 0,
            include_embedding: bool = True) -> Union[Optional[Record], List[Record]]:
        """``get("a")`` -> Record or None; ``get(["a", "b"])`` or ``get(where=...)``
        -> list of Records ordered by id (missing ids are left out)."""
        single = isinstance(ids, str)
        idl = [_core.check_id(ids)] if single else ([_core.check_id(i) for i in ids] if ids is not None else None)
        q, p = self._st.get(idl, where, limit, offset, include_embedding)
        recs = _core.records(self._fetch(q, p, binary=True), self._use_numpy)
        if single:
            return recs[0] if recs else None
        return recs

    def count(self, where: Optional[Dict[str, Any]] = None) -> int:
        q, p = self._st.count(where)
        return int(self._fetch(q, p)[0][0])

    def search(self, vector: Any, k: int = 10, ef_search: Optional[int] = None,
               where: Optional[Dict[str, Any]] = None, max_distance: Optional[float] = None,
               quantized_search: Optional[bool] = None) -> List[SearchResult]:
        """The k nearest items, closest first: [SearchResult(id, distance, metadata)].
        ``ef_search`` and ``quantized_search`` (True/False) are set with SET LOCAL
        for this search only; None keeps the session's setting."""
        vec = _v.as_float32(vector, self._info.dim)
        q, p = self._st.search(vec, k, where, max_distance)
        return _core.search_results(self._fetch(q, p, ef_search, quantized_search=quantized_search))

    def search_many(self, vectors: Sequence[Any], k: int = 10, ef_search: Optional[int] = None,
                    where: Optional[Dict[str, Any]] = None, max_distance: Optional[float] = None,
                    quantized_search: Optional[bool] = None) -> List[List[SearchResult]]:
        """One result list per query vector, from one statement (one round trip)."""
        vecs = [_v.as_float32(x, self._info.dim) for x in vectors]
        if not vecs:
            return []
        q, p = self._st.search_many(vecs, k, where, max_distance)
        return _core.search_many_results(self._fetch(q, p, ef_search, quantized_search=quantized_search),
                                         len(vecs))

    def keyword_search(self, query: str, k: int = 10,
                       where: Optional[Dict[str, Any]] = None) -> List[ScoredResult]:
        """Full-text search on the document column (websearch_to_tsquery syntax),
        best first by ts_rank_cd. Empty when the collection has no documents."""
        q, p = self._st.keyword(query, k, where)
        return _core.scored_results(self._fetch(q, p))

    def hybrid_search(self, query: str, vector: Any, k: int = 10, fetch_k: Optional[int] = None,
                      rrf_k: int = 60, where: Optional[Dict[str, Any]] = None,
                      ef_search: Optional[int] = None, vector_weight: float = 1.0,
                      keyword_weight: float = 1.0,
                      quantized_search: Optional[bool] = None) -> List[ScoredResult]:
        """Reciprocal rank fusion of the full-text and the vector results (top
        ``fetch_k`` of each, default max(2k, 20)), computed in one SQL statement."""
        vec = _v.as_float32(vector, self._info.dim)
        fk = fetch_k if fetch_k is not None else max(2 * k, 20)
        q, p = self._st.hybrid(query, vec, k, fk, rrf_k, where, vector_weight, keyword_weight)
        return _core.scored_results(self._fetch(q, p, ef_search, quantized_search=quantized_search))

    def max_marginal_relevance_search(self, vector: Any, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5, where: Optional[Dict[str, Any]] = None,
                                      ef_search: Optional[int] = None,
                                      quantized_search: Optional[bool] = None) -> List[SearchResult]:
        """k items chosen among the ``fetch_k`` nearest for relevance and diversity
        (lambda_mult 1: relevance only, 0: diversity only), in the order chosen."""
        vec = _v.as_float32(vector, self._info.dim)
        if not 0.0 <= lambda_mult <= 1.0:
            raise ValueError("lambda_mult must be in [0, 1]")
        q, p = self._st.search(vec, max(fetch_k, k), where, None, with_embedding=True)
        rows = self._fetch(q, p, ef_search, binary=True, quantized_search=quantized_search)
        picked = _core.mmr(vec, [r[3] for r in rows], k, lambda_mult)
        return _core.search_results([rows[i] for i in picked])

    # -- maintenance -------------------------------------------------------------
    def compact(self, reindex: bool = False, concurrently: bool = True) -> None:
        """VACUUM ANALYZE (removes deleted rows and repairs the graph); with
        ``reindex``, also rebuilds the hnsw index (REINDEX INDEX CONCURRENTLY),
        which for an SQ8 collection also retrains the quantization parameters
        on the current rows."""
        self._exec(f"VACUUM (ANALYZE) {self._st.table}")
        if reindex:
            self._exec(f"REINDEX INDEX {'CONCURRENTLY ' if concurrently else ''}{self._st.embedding_index}")

    def stats(self) -> Dict[str, Any]:
        """Row count, sizes and hnsw_index_stats of the collection's index."""
        q, p = self._st.stats()
        return _core.stats_dict(self._info, self._fetch(q, p)[0])

    def export_json(self, path: str) -> int:
        """Writes every item as JSON Lines ({"id", "embedding", "metadata"[, "document"]}),
        ordered by id; returns the number written."""
        conn = self._live()
        n = 0
        with open(path, "w", encoding="utf-8") as f:
            with _translated():
                with conn.transaction(), conn.cursor(name="vecext_export") as cur:
                    cur.itersize = 1000
                    cur.execute(self._st.export())
                    for row in cur:
                        f.write(_core.export_line(row))
                        n += 1
        return n

    def import_json(self, path: str, batch_size: int = 1000) -> int:
        """Upserts the items of a JSON Lines file (as written by export_json)."""
        _core.check_int("batch_size", batch_size, 1, 10**7)
        n = 0
        batch: List[Any] = []

        def flush() -> None:
            nonlocal n
            if batch:
                ids, vecs, metas, docs = zip(*batch)
                has_docs = any(d is not None for d in docs)
                n += self.upsert_many(list(ids), list(vecs), list(metas), list(docs) if has_docs else None)
                batch.clear()

        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    batch.append(_core.import_record(line, lineno))
                    if len(batch) >= batch_size:
                        flush()
        flush()
        return n


class Client:
    """Named collections in one schema of one database, over one connection."""

    def __init__(self, dsn: Optional[str] = None, schema: str = "public",
                 use_numpy: Optional[bool] = None, connection: Optional[psycopg.Connection] = None):
        self._schema = _core.validate_schema(schema)
        self._use_numpy = _v._resolve(use_numpy)
        self._owns = connection is None
        if connection is not None:
            _check_given(connection, self._use_numpy)
        self._conn: Optional[psycopg.Connection] = connection or connect(dsn, self._use_numpy)

    @property
    def connection(self) -> psycopg.Connection:
        return self._live()

    def _live(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            raise ConnectionClosedError("the connection is closed")
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._owns:
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _db(self, name: str, mode: str, **kw: Any) -> Database:
        return Database(None, name, schema=self._schema, use_numpy=self._use_numpy,
                        connection=self._live(), _mode=mode, _prepared=True, **kw)

    def create_collection(self, name: str, dim: int, metric: str = _core.DEFAULT_METRIC,
                          m: int = _core.DEFAULT_M, ef_construction: int = _core.DEFAULT_EF_CONSTRUCTION,
                          quantize: bool = False, documents: bool = False,
                          text_config: str = _core.DEFAULT_TEXT_CONFIG) -> Database:
        """A new collection (``quantize=True``: SQ8 index); CollectionExistsError if the name is taken."""
        return self._db(name, "create", dim=dim, metric=metric, m=m, ef_construction=ef_construction,
                        quantize=quantize, documents=documents, text_config=text_config)

    def get_collection(self, name: str) -> Database:
        """An existing collection; CollectionNotFoundError otherwise."""
        return self._db(name, "open")

    def get_or_create_collection(self, name: str, dim: Optional[int] = None, metric: Optional[str] = None,
                                 m: int = _core.DEFAULT_M,
                                 ef_construction: int = _core.DEFAULT_EF_CONSTRUCTION,
                                 quantize: Optional[bool] = None, documents: bool = False,
                                 text_config: str = _core.DEFAULT_TEXT_CONFIG) -> Database:
        """Opens ``name`` (checking dim, metric and quantize when given), or creates it (needs dim)."""
        return self._db(name, "auto", dim=dim, metric=metric, m=m, ef_construction=ef_construction,
                        quantize=quantize, documents=documents, text_config=text_config)

    def delete_collection(self, name: str) -> None:
        """Drops the collection's table (and its indexes)."""
        _core.validate_name(name)
        conn = self._live()
        with _translated():
            with conn.transaction():
                info = _read_catalog(conn, self._schema, name)
                if info is None:
                    raise _core.not_found(self._schema, name)
                conn.execute(f"DROP TABLE {_quoter(conn)(self._schema, name)}")

    def list_collections(self) -> List[CollectionInfo]:
        """Every table of the schema that has a collection's shape, by name."""
        conn = self._live()
        p = _core.Params("psycopg")
        q = _core.catalog_query(p, self._schema, None)
        with _translated():
            rows = conn.execute(q, p.bind()).fetchall()
        out = []
        for row in rows:
            info, _ = _core.parse_catalog(self._schema, row)
            if info is not None:
                out.append(info)
        return out
