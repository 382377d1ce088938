-- vecext install script part 20: the hnsw index access method, its operator
-- classes (pgvector's names) and the inspection functions.

CREATE FUNCTION @extschema@.hnsw_handler(pg_catalog.internal) RETURNS pg_catalog.index_am_handler
  AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD hnsw TYPE INDEX HANDLER @extschema@.hnsw_handler;

COMMENT ON ACCESS METHOD hnsw IS 'hnsw (hierarchical navigable small world) index for vector similarity search';

-- Each opclass has one ORDER BY operator (strategy 1) and its function as
-- support function 1, from which the index derives its metric.
-- vector_cosine_ops also has the norm as support function 2: vectors of
-- norm 0 are not indexed under cosine (their distance is undefined).

CREATE OPERATOR CLASS @extschema@.vector_l2_ops
  DEFAULT FOR TYPE @extschema@.vector USING hnsw AS
  OPERATOR 1 @extschema@.<-> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
  FUNCTION 1 @extschema@.l2_distance(@extschema@.vector, @extschema@.vector);

CREATE OPERATOR CLASS @extschema@.vector_ip_ops
  FOR TYPE @extschema@.vector USING hnsw AS
  OPERATOR 1 @extschema@.<#> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
  FUNCTION 1 @extschema@.vector_negative_inner_product(@extschema@.vector, @extschema@.vector);

CREATE OPERATOR CLASS @extschema@.vector_cosine_ops
  FOR TYPE @extschema@.vector USING hnsw AS
  OPERATOR 1 @extschema@.<=> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
  FUNCTION 1 @extschema@.cosine_distance(@extschema@.vector, @extschema@.vector),
  FUNCTION 2 @extschema@.vector_norm(@extschema@.vector);

CREATE OPERATOR CLASS @extschema@.vector_l1_ops
  FOR TYPE @extschema@.vector USING hnsw AS
  OPERATOR 1 @extschema@.<+> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
  FUNCTION 1 @extschema@.l1_distance(@extschema@.vector, @extschema@.vector);

-- Inspection (allowed to the table's owner and to members of pg_monitor;
-- the functions check this themselves).

-- One row of statistics. Arrays are indexed by level + 1 (level 0 first).
CREATE FUNCTION @extschema@.hnsw_index_stats(index pg_catalog.regclass,
    OUT elements pg_catalog.int8,          -- live elements
    OUT deleted pg_catalog.int8,           -- elements marked deleted, not yet removed by vacuum
    OUT levels pg_catalog.int4,            -- highest level of a live element + 1
    OUT entry_level pg_catalog.int4,       -- level of the entry point (-1: empty)
    OUT level_elements pg_catalog.int8[],  -- live elements having each level
    OUT avg_degree pg_catalog.float8[],    -- average number of links per level
    OUT min_degree pg_catalog.int4[],      -- minimum number of links per level
    OUT pages pg_catalog.int8,
    OUT bytes pg_catalog.int8,
    OUT m pg_catalog.int4,
    OUT ef_construction pg_catalog.int4,
    OUT metric pg_catalog.text,
    OUT dimensions pg_catalog.int4,
    OUT quantization pg_catalog.text,      -- none or sq8
    OUT element_bytes pg_catalog.int4,     -- one element tuple (vector or SQ8 codes and error norms)
    OUT neighbor_bytes pg_catalog.int4,    -- the neighbour tuple of an element of level 0
    OUT quantization_bytes pg_catalog.int8, -- SQ8 parameters (lo and scale per dimension); 0 without
    OUT value_lists pg_catalog.int4,       -- value lists per element (0: none)
    OUT value_slots pg_catalog.int4,       -- links per value list
    OUT value_directory pg_catalog.int4,   -- frequent metadata values in the directory
    OUT value_list_elements pg_catalog.int8, -- live elements with a value list holding a link
    OUT value_list_avg_links pg_catalog.float8) -- links per value list that has a key
  RETURNS record
  AS 'MODULE_PATHNAME', 'hnsw_index_stats' LANGUAGE C STRICT;

-- One row per problem found; no rows when the index is consistent. With
-- heapallindexed, also checks that every visible row of the table is indexed.
CREATE FUNCTION @extschema@.hnsw_index_check(index pg_catalog.regclass,
    heapallindexed pg_catalog.bool DEFAULT false)
  RETURNS SETOF pg_catalog.text
  AS 'MODULE_PATHNAME', 'hnsw_index_check' LANGUAGE C STRICT;
