-- vecext install script part 30: filtered hnsw search on jsonb metadata.
-- See docs/filtering.md. The index stores a small signature of each row's
-- metadata and skips rows whose signature shows that the quals cannot hold;
-- the executor rechecks every row the index returns.

-- Debug functions: the filter end to end, without an index.

-- The signature an index stores for this metadata (NULL: SQL NULL metadata).
CREATE FUNCTION @extschema@.hnsw_metadata_signature(metadata pg_catalog.jsonb,
    max_bytes pg_catalog.int4 DEFAULT 256, wide_numbers pg_catalog.bool DEFAULT false)
  RETURNS pg_catalog.bytea
  AS 'MODULE_PATHNAME', 'hnsw_metadata_signature' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- 'no' when the index would skip a row with this metadata for
-- `metadata @> query`, else 'maybe' (the executor decides).
CREATE FUNCTION @extschema@.hnsw_filter_matches(metadata pg_catalog.jsonb, query pg_catalog.jsonb)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'hnsw_filter_matches' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Likewise for `metadata @> ANY(queries)` (an index scan key over an array).
CREATE FUNCTION @extschema@.hnsw_filter_matches_any(metadata pg_catalog.jsonb, queries pg_catalog.jsonb[])
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'hnsw_filter_matches_any' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Likewise for `metadata @@ query` (op '@@') or `metadata @? query` (op '@?').
CREATE FUNCTION @extschema@.hnsw_filter_matches_path(metadata pg_catalog.jsonb, query pg_catalog.jsonpath,
    op pg_catalog.text DEFAULT '@@')
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'hnsw_filter_matches_path' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Likewise for `metadata ? keys[1]` (op '?'), `metadata ?| keys` (op '?|'),
-- `metadata ?& keys` (op '?&').
CREATE FUNCTION @extschema@.hnsw_filter_matches_keys(metadata pg_catalog.jsonb, keys pg_catalog.text[],
    op pg_catalog.text DEFAULT '?|')
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'hnsw_filter_matches_keys' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- The condition the index checks for `metadata <op> query` (op: @>, ?, ?|,
-- ?&, @?, @@), hashes shown in hex. 'maybe' means the index cannot use the
-- qual (the executor still applies it).
CREATE FUNCTION @extschema@.hnsw_filter_explain(op pg_catalog.text, query pg_catalog.text)
  RETURNS pg_catalog.text
  AS 'MODULE_PATHNAME', 'hnsw_filter_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The operator class of a metadata column in an hnsw index:
--   CREATE INDEX ON docs USING hnsw (embedding vector_cosine_ops, metadata jsonb_hnsw_ops);
-- Its strategy numbers are HNSW_FILTER_STRATEGY_* in src/pg/hnsw_filter.h.
-- It needs no support function. It is the default for jsonb in hnsw
-- indexes, so `USING hnsw (embedding, metadata)` works too; an hnsw index
-- whose first column is jsonb is rejected.
CREATE OPERATOR CLASS @extschema@.jsonb_hnsw_ops
  DEFAULT FOR TYPE pg_catalog.jsonb USING hnsw AS
  OPERATOR 1 pg_catalog.@> (pg_catalog.jsonb, pg_catalog.jsonb),
  OPERATOR 2 pg_catalog.? (pg_catalog.jsonb, pg_catalog.text),
  OPERATOR 3 pg_catalog.?| (pg_catalog.jsonb, pg_catalog.text[]),
  OPERATOR 4 pg_catalog.?& (pg_catalog.jsonb, pg_catalog.text[]),
  OPERATOR 5 pg_catalog.@? (pg_catalog.jsonb, pg_catalog.jsonpath),
  OPERATOR 6 pg_catalog.@@ (pg_catalog.jsonb, pg_catalog.jsonpath);
