"""Asynchronous API on an asyncpg connection pool: :class:`AsyncDatabase`
and :class:`AsyncClient`. The same methods as the sync API, as coroutines.

    async with AsyncDatabase(dsn, "docs", dim=384) as db:
        hits = await asyncio.gather(*(db.search(q) for q in queries))  # concurrent, on the pool

Each call takes a connection from the pool for its duration, so concurrent
calls (asyncio.gather) run on different connections in parallel.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import asyncpg

from . import _core
from . import vector as _v
from .asyncpg_types import register_vector_asyncpg
from .errors import (
    CollectionExistsError,
    ConnectionClosedError,
    IncompatibleCollectionError,
    VecextError,
    connect_failed,
    translate,
)
from .results import CollectionInfo, Record, ScoredResult, SearchResult

_UNSET: Any = object()


def _quote(*names: str) -> str:
    return ".".join(_core.quote_ident(n) for n in names)


def _pool_closed(pool: asyncpg.Pool) -> bool:
    closing = getattr(pool, "is_closing", None)
    return bool(closing()) if closing is not None else bool(getattr(pool, "_closed", False))


class _Translated:
    """async-with block mapping driver exceptions to vecext ones."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, typ: Any, exc: Any, tb: Any) -> bool:
        if exc is None or isinstance(exc, VecextError) or not isinstance(exc, Exception):
            return False
        t = translate(exc)
        if t is exc:
            return False
        raise t from exc


async def create_pool(dsn: Optional[str] = None, use_numpy: Optional[bool] = None,
                      create_extension: bool = True, min_size: int = 1, max_size: int = 4,
                      **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool whose connections have the ``vector`` codec (the
    extension is created first when missing and ``create_extension``) and the
    session setting ``plan_cache_mode = force_custom_plan`` (unless
    ``server_settings`` gives another): every execution of a prepared
    statement is planned for its parameters, so that a where filter's plan
    (in-index filter, GIN scan or sequential scan) follows its values."""
    numpy = _v._resolve(use_numpy)
    try:
        conn = await asyncpg.connect(dsn)
    except Exception as e:
        raise connect_failed(e) from e
    async with _Translated():
        try:
            have = await conn.fetchval("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'vecext'")
            if not have and create_extension:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vecext")
        finally:
            await conn.close()

        async def init(c: asyncpg.Connection) -> None:
            await register_vector_asyncpg(c, numpy)

        settings = dict(kwargs.pop("server_settings", None) or {})
        settings.setdefault("plan_cache_mode", "force_custom_plan")
        return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init,
                                         server_settings=settings, **kwargs)


async def _read_catalog(conn: asyncpg.Connection, schema: str, name: str) -> Optional[CollectionInfo]:
    p = _core.Params("asyncpg")
    q = _core.catalog_query(p, schema, name)
    row = await conn.fetchrow(q, *p.bind())
    if row is None:
        return None
    info, why = _core.parse_catalog(schema, row)
    if info is None:
        raise IncompatibleCollectionError(f"table {schema}.{name} is not a vecext collection: it {why}")
    return info


async def _add_documents(conn: asyncpg.Connection, info: CollectionInfo) -> CollectionInfo:
    async with conn.transaction():
        for stmt in _core.Statements.document_ddl(_quote(info.schema, info.name),
                                                  _quote(info.name + "_document_idx"), info.text_config):
            await conn.execute(stmt)
    return info._replace(documents=True)


async def open_collection(pool: asyncpg.Pool, schema: str, name: str, dim: Optional[int],
                          metric: Optional[str], m: int, ef_construction: int, quantize: Optional[bool],
                          documents: bool, text_config: str, mode: str) -> CollectionInfo:
    _core.validate_schema(schema)
    _core.validate_name(name)
    if metric is not None:
        _core.validate_metric(metric)
    _core.validate_text_config(text_config)
    _core.check_quantize(quantize)
    async with _Translated():
        async with pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))",
                                   f"vecext:{schema}.{name}")
                info = await _read_catalog(conn, schema, name)
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
                            _quote(schema, name), _quote(name + "_embedding_idx"),
                            _quote(name + "_metadata_idx"), _quote(name + "_document_idx"), dim, metric,
                            m, ef_construction, documents, text_config, bool(quantize)):
                        await conn.execute(stmt)
                    info = await _read_catalog(conn, schema, name)
                    assert info is not None
            if documents and not info.documents:
                info = await _add_documents(conn, info)
    return info


class AsyncDatabase:
    """One collection, on an asyncpg pool. Use ``async with AsyncDatabase(...) as db``
    or ``db = await AsyncDatabase(...).open()`` ... ``await db.close()``."""

    copy_threshold = _core.COPY_THRESHOLD

    def __init__(self, dsn: Optional[str] = None, name: Optional[str] = None, dim: Optional[int] = None,
                 metric: Optional[str] = None, m: int = _core.DEFAULT_M,
                 ef_construction: int = _core.DEFAULT_EF_CONSTRUCTION, quantize: Optional[bool] = None, *,
                 documents: bool = False, text_config: str = _core.DEFAULT_TEXT_CONFIG,
                 schema: str = "public", use_numpy: Optional[bool] = None,
                 pool: Optional[asyncpg.Pool] = None, min_size: int = 1, max_size: int = 4,
                 _mode: str = "auto", _custom_plans: bool = False):
        if name is None:
            raise TypeError("AsyncDatabase() needs a collection name")
        _core.check_quantize(quantize)
        self._dsn = dsn
        self._args = dict(schema=schema, name=name, dim=dim, metric=metric, m=m,
                          ef_construction=ef_construction, quantize=quantize, documents=documents,
                          text_config=text_config, mode=_mode)
        self._use_numpy = _v._resolve(use_numpy)
        self._pool: Optional[asyncpg.Pool] = pool
        self._owns = pool is None
        # The pool's sessions plan every execution (a pool made here or by an
        # AsyncClient that made its own); otherwise filtered statements set
        # plan_cache_mode themselves (see _fetch).
        self._custom_plans = pool is None or _custom_plans
        self._pool_size = (min_size, max_size)
        self._info: Optional[CollectionInfo] = None
        self._st: Optional[_core.Statements] = None
        self._closed = False

    async def open(self) -> "AsyncDatabase":
        if self._closed:
            raise ConnectionClosedError("the database is closed")
        if self._info is not None:
            return self
        if self._pool is None:
            self._pool = await create_pool(self._dsn, self._use_numpy, min_size=self._pool_size[0],
                                           max_size=self._pool_size[1])
        a = self._args
        try:
            self._info = await open_collection(self._pool, a["schema"], a["name"], a["dim"], a["metric"],
                                               a["m"], a["ef_construction"], a["quantize"],
                                               a["documents"], a["text_config"], a["mode"])
        except BaseException:
            if self._owns:
                await self._pool.close()
                self._pool = None
            raise
        self._st = _core.Statements(self._info, _quote, "asyncpg")
        return self

    def __await__(self):
        return self.open().__await__()

    async def close(self) -> None:
        """Closes the pool if this object created it; further calls raise ConnectionClosedError."""
        if self._pool is not None and self._owns:
            await self._pool.close()
        self._pool = None
        self._closed = True

    async def __aenter__(self) -> "AsyncDatabase":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def info(self) -> CollectionInfo:
        if self._info is None:
            raise VecextError("the collection is not open yet: await db.open() or use async with")
        return self._info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def metric(self) -> str:
        return self.info.metric

    @property
    def quantize(self) -> bool:
        """True when the collection's hnsw index is SQ8-quantized."""
        return self.info.quantize

    @property
    def pool(self) -> asyncpg.Pool:
        return self._live()

    def __repr__(self) -> str:
        if self._info is None:
            return f"<vecext.AsyncDatabase {self._args['name']} (not open)>"
        i = self._info
        q = " quantize=sq8" if i.quantize else ""
        return f"<vecext.AsyncDatabase {i.schema}.{i.name} dim={i.dim} metric={i.metric}{q}>"

    def _live(self) -> asyncpg.Pool:
        if self._closed or self._pool is None or _pool_closed(self._pool):
            raise ConnectionClosedError("the connection pool is closed")
        if self._info is None:
            raise VecextError("the collection is not open yet: await db.open() or use async with")
        return self._pool

    async def _fetch(self, q: str, p: _core.Params, ef_search: Optional[int] = None,
                     quantized_search: Optional[bool] = None) -> List[Any]:
        pool = self._live()
        settings = _core.search_settings(ef_search, quantized_search)
        if p.filtered and not self._custom_plans:
            # asyncpg prepares every statement, and after 5 executions the
            # server may use one generic plan, made without the filter's values,
            # for every later one (a scan and sort, or a GIN scan, where the
            # in-index filter is the better plan): plan each execution. Pools
            # from create_pool do so for the whole session.
            settings.append("SET LOCAL plan_cache_mode = force_custom_plan")
        async with _Translated():
            async with pool.acquire() as conn:
                if not settings:
                    return await conn.fetch(q, *p.bind())
                # BEGIN and the SET LOCALs in one simple-protocol message, the query, COMMIT:
                # the settings end with the transaction, so the pooled connection goes back
                # with the session's own values.
                await conn.execute("; ".join(["BEGIN"] + settings))
                try:
                    rows = await conn.fetch(q, *p.bind())
                except BaseException:
                    if not conn.is_closed():
                        try:
                            await conn.execute("ROLLBACK")
                        except Exception:
                            pass  # the pool resets or discards the connection anyway
                    raise
                await conn.execute("COMMIT")
                return rows

    async def _exec(self, q: str, p: Optional[_core.Params] = None) -> int:
        pool = self._live()
        async with _Translated():
            async with pool.acquire() as conn:
                status = await conn.execute(q, *(p.bind() if p is not None else []))
        try:
            return int(status.rsplit(" ", 1)[-1])
        except ValueError:
            return 0

    async def _ensure_documents(self) -> None:
        if not self.info.documents:
            pool = self._live()
            async with _Translated():
                async with pool.acquire() as conn:
                    self._info = await _add_documents(conn, self.info)
            self._st = _core.Statements(self._info, _quote, "asyncpg")

    # -- writes ------------------------------------------------------------------
    async def add(self, id: str, vector: Any, metadata: Optional[Dict[str, Any]] = None,
                  document: Optional[str] = None) -> None:
        await self._write_one(id, vector, metadata, document, upsert=False)

    async def upsert(self, id: str, vector: Any, metadata: Optional[Dict[str, Any]] = None,
                     document: Optional[str] = None) -> None:
        await self._write_one(id, vector, metadata, document, upsert=True)

    async def _write_one(self, id_: str, vector: Any, metadata: Any, document: Any, upsert: bool) -> None:
        self._live()
        _core.check_id(id_)
        vec = _v.as_float32(vector, self.info.dim)
        _core.metadata_json(metadata)
        _core.check_document(document)
        if document is not None:
            await self._ensure_documents()
        q, p = self._st.insert_one(id_, vec, metadata, document, upsert)
        await self._exec(q, p)

    async def add_many(self, ids: Sequence[str], vectors: Sequence[Any],
                       metadatas: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
                       documents: Optional[Sequence[Optional[str]]] = None) -> int:
        self._live()
        rows = _core.Rows(ids, vectors, metadatas, documents, self.info.dim, dedupe=False)
        return await self._write_many(rows, upsert=False)

    async def upsert_many(self, ids: Sequence[str], vectors: Sequence[Any],
                          metadatas: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
                          documents: Optional[Sequence[Optional[str]]] = None) -> int:
        self._live()
        rows = _core.Rows(ids, vectors, metadatas, documents, self.info.dim, dedupe=True)
        return await self._write_many(rows, upsert=True)

    async def _write_many(self, rows: _core.Rows, upsert: bool) -> int:
        if not len(rows):
            return 0
        if rows.has_documents:
            await self._ensure_documents()
        st = self._st
        if len(rows) < self.copy_threshold:
            q, p = st.insert_unnest(rows, upsert)
            await self._exec(q, p)
            return len(rows)
        docs = rows.documents or [None] * len(rows)
        with_docs = self.info.documents
        records = [
            (rows.ids[i], _v.Vector(rows.vectors[i]), rows.metadata_text[i]) + ((docs[i],) if with_docs else ())
            for i in range(len(rows))
        ]
        pool = self._live()
        async with _Translated():
            async with pool.acquire() as conn:
                async with conn.transaction():
                    if upsert:
                        create, stage = st.stage_table()
                        await conn.execute(create)
                        await conn.copy_records_to_table(stage, records=records, columns=st.columns())
                        await conn.execute(st.merge_stage(stage))
                    else:
                        await conn.copy_records_to_table(self.info.name, schema_name=self.info.schema,
                                                         records=records, columns=st.columns())
        return len(rows)

    async def update(self, id: str, vector: Any = None, metadata: Optional[Dict[str, Any]] = None,
                     document: Any = _UNSET, merge_metadata: bool = False) -> bool:
        self._live()
        _core.check_id(id)
        vec = _v.as_float32(vector, self.info.dim) if vector is not None else None
        set_doc = document is not _UNSET
        if set_doc:
            _core.check_document(document)
            if document is not None:
                await self._ensure_documents()
            elif not self.info.documents:
                set_doc = False
                if vec is None and metadata is None:
                    return (await self.get(id, include_embedding=False)) is not None
        q, p = self._st.update(id, vec, metadata, document if set_doc else None, merge_metadata, set_doc)
        return (await self._exec(q, p)) > 0

    async def delete(self, id: str) -> bool:
        self._live()
        _core.check_id(id)
        q, p = self._st.delete_ids([id])
        return (await self._exec(q, p)) > 0

    async def delete_many(self, ids: Optional[Sequence[str]] = None,
                          where: Optional[Dict[str, Any]] = None) -> int:
        self._live()
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, not a string")
        idl = [_core.check_id(i) for i in ids] if ids is not None else None
        q, p = self._st.delete_where(idl, where)
        return await self._exec(q, p)

    # -- reads -------------------------------------------------------------------
    async def get(self, ids: Union[str, Sequence[str], None] = None, *, where: Optional[Dict[str, Any]] = None,
                  limit: Optional[int] = None, offset: int = 0,
                  include_embedding: bool = True) -> Union[Optional[Record], List[Record]]:
        self._live()
        single = isinstance(ids, str)
        idl = [_core.check_id(ids)] if single else ([_core.check_id(i) for i in ids] if ids is not None else None)
        q, p = self._st.get(idl, where, limit, offset, include_embedding)
        recs = _core.records(await self._fetch(q, p), self._use_numpy)
        if single:
            return recs[0] if recs else None
        return recs

    async def count(self, where: Optional[Dict[str, Any]] = None) -> int:
        self._live()
        q, p = self._st.count(where)
        return int((await self._fetch(q, p))[0][0])

    async def search(self, vector: Any, k: int = 10, ef_search: Optional[int] = None,
                     where: Optional[Dict[str, Any]] = None, max_distance: Optional[float] = None,
                     quantized_search: Optional[bool] = None) -> List[SearchResult]:
        self._live()
        vec = _v.as_float32(vector, self.info.dim)
        q, p = self._st.search(vec, k, where, max_distance)
        return _core.search_results(await self._fetch(q, p, ef_search, quantized_search))

    async def search_many(self, vectors: Sequence[Any], k: int = 10, ef_search: Optional[int] = None,
                          where: Optional[Dict[str, Any]] = None, max_distance: Optional[float] = None,
                          quantized_search: Optional[bool] = None) -> List[List[SearchResult]]:
        self._live()
        vecs = [_v.as_float32(x, self.info.dim) for x in vectors]
        if not vecs:
            return []
        q, p = self._st.search_many(vecs, k, where, max_distance)
        return _core.search_many_results(await self._fetch(q, p, ef_search, quantized_search), len(vecs))

    async def keyword_search(self, query: str, k: int = 10,
                             where: Optional[Dict[str, Any]] = None) -> List[ScoredResult]:
        self._live()
        q, p = self._st.keyword(query, k, where)
        return _core.scored_results(await self._fetch(q, p))

    async def hybrid_search(self, query: str, vector: Any, k: int = 10, fetch_k: Optional[int] = None,
                            rrf_k: int = 60, where: Optional[Dict[str, Any]] = None,
                            ef_search: Optional[int] = None, vector_weight: float = 1.0,
                            keyword_weight: float = 1.0,
                            quantized_search: Optional[bool] = None) -> List[ScoredResult]:
        self._live()
        vec = _v.as_float32(vector, self.info.dim)
        fk = fetch_k if fetch_k is not None else max(2 * k, 20)
        q, p = self._st.hybrid(query, vec, k, fk, rrf_k, where, vector_weight, keyword_weight)
        return _core.scored_results(await self._fetch(q, p, ef_search, quantized_search))

    async def max_marginal_relevance_search(self, vector: Any, k: int = 4, fetch_k: int = 20,
                                            lambda_mult: float = 0.5,
                                            where: Optional[Dict[str, Any]] = None,
                                            ef_search: Optional[int] = None,
                                            quantized_search: Optional[bool] = None) -> List[SearchResult]:
        self._live()
        vec = _v.as_float32(vector, self.info.dim)
        if not 0.0 <= lambda_mult <= 1.0:
            raise ValueError("lambda_mult must be in [0, 1]")
        q, p = self._st.search(vec, max(fetch_k, k), where, None, with_embedding=True)
        rows = await self._fetch(q, p, ef_search, quantized_search)
        picked = _core.mmr(vec, [r[3] for r in rows], k, lambda_mult)
        return _core.search_results([rows[i] for i in picked])

    # -- maintenance -------------------------------------------------------------
    async def compact(self, reindex: bool = False, concurrently: bool = True) -> None:
        """VACUUM ANALYZE; with ``reindex`` also REINDEX the hnsw index (for an
        SQ8 collection that retrains the quantization parameters)."""
        self._live()
        await self._exec(f"VACUUM (ANALYZE) {self._st.table}")
        if reindex:
            await self._exec(f"REINDEX INDEX {'CONCURRENTLY ' if concurrently else ''}{self._st.embedding_index}")

    async def stats(self) -> Dict[str, Any]:
        self._live()
        q, p = self._st.stats()
        return _core.stats_dict(self.info, (await self._fetch(q, p))[0])

    async def export_json(self, path: str) -> int:
        pool = self._live()
        n = 0
        with open(path, "w", encoding="utf-8") as f:
            async with _Translated():
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        async for row in conn.cursor(self._st.export(), prefetch=1000):
                            f.write(_core.export_line(row))
                            n += 1
        return n

    async def import_json(self, path: str, batch_size: int = 1000) -> int:
        self._live()
        _core.check_int("batch_size", batch_size, 1, 10**7)
        n = 0
        batch: List[Any] = []

        async def flush() -> None:
            nonlocal n
            if batch:
                ids, vecs, metas, docs = zip(*batch)
                has_docs = any(d is not None for d in docs)
                n += await self.upsert_many(list(ids), list(vecs), list(metas),
                                            list(docs) if has_docs else None)
                batch.clear()

        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    batch.append(_core.import_record(line, lineno))
                    if len(batch) >= batch_size:
                        await flush()
        await flush()
        return n


class AsyncClient:
    """Named collections in one schema, on one asyncpg pool shared by the
    AsyncDatabase objects it returns. ``async with AsyncClient(dsn) as client``."""

    def __init__(self, dsn: Optional[str] = None, schema: str = "public",
                 use_numpy: Optional[bool] = None, pool: Optional[asyncpg.Pool] = None,
                 min_size: int = 1, max_size: int = 4):
        self._dsn = dsn
        self._schema = _core.validate_schema(schema)
        self._use_numpy = _v._resolve(use_numpy)
        self._pool = pool
        self._owns = pool is None
        self._pool_size = (min_size, max_size)
        self._closed = False

    async def open(self) -> "AsyncClient":
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        if self._pool is None:
            self._pool = await create_pool(self._dsn, self._use_numpy, min_size=self._pool_size[0],
                                           max_size=self._pool_size[1])
        return self

    def __await__(self):
        return self.open().__await__()

    async def close(self) -> None:
        if self._pool is not None and self._owns:
            await self._pool.close()
        self._pool = None
        self._closed = True

    async def __aenter__(self) -> "AsyncClient":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._live()

    def _live(self) -> asyncpg.Pool:
        if self._closed or self._pool is None or _pool_closed(self._pool):
            raise ConnectionClosedError("the connection pool is closed" if self._pool is not None or self._closed
                                        else "the client is not open: await client.open() or use async with")
        return self._pool

    async def _db(self, name: str, mode: str, **kw: Any) -> AsyncDatabase:
        db = AsyncDatabase(None, name, schema=self._schema, use_numpy=self._use_numpy,
                           pool=self._live(), _mode=mode, _custom_plans=self._owns, **kw)
        return await db.open()

    async def create_collection(self, name: str, dim: int, metric: str = _core.DEFAULT_METRIC,
                                m: int = _core.DEFAULT_M,
                                ef_construction: int = _core.DEFAULT_EF_CONSTRUCTION,
                                quantize: bool = False, documents: bool = False,
                                text_config: str = _core.DEFAULT_TEXT_CONFIG) -> AsyncDatabase:
        return await self._db(name, "create", dim=dim, metric=metric, m=m, ef_construction=ef_construction,
                              quantize=quantize, documents=documents, text_config=text_config)

    async def get_collection(self, name: str) -> AsyncDatabase:
        return await self._db(name, "open")

    async def get_or_create_collection(self, name: str, dim: Optional[int] = None,
                                       metric: Optional[str] = None, m: int = _core.DEFAULT_M,
                                       ef_construction: int = _core.DEFAULT_EF_CONSTRUCTION,
                                       quantize: Optional[bool] = None, documents: bool = False,
                                       text_config: str = _core.DEFAULT_TEXT_CONFIG) -> AsyncDatabase:
        return await self._db(name, "auto", dim=dim, metric=metric, m=m, ef_construction=ef_construction,
                              quantize=quantize, documents=documents, text_config=text_config)

    async def delete_collection(self, name: str) -> None:
        _core.validate_name(name)
        pool = self._live()
        async with _Translated():
            async with pool.acquire() as conn:
                async with conn.transaction():
                    info = await _read_catalog(conn, self._schema, name)
                    if info is None:
                        raise _core.not_found(self._schema, name)
                    await conn.execute(f"DROP TABLE {_quote(self._schema, name)}")

    async def list_collections(self) -> List[CollectionInfo]:
        pool = self._live()
        p = _core.Params("asyncpg")
        q = _core.catalog_query(p, self._schema, None)
        async with _Translated():
            rows = await pool.fetch(q, *p.bind())
        out = []
        for row in rows:
            info, _ = _core.parse_catalog(self._schema, row)
            if info is not None:
                out.append(info)
        return out
