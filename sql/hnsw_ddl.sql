-- hnsw: access method, operator classes, options, GUCs, DDL and plan choice.
-- Deterministic data (no random()); every index that changes is checked.

SELECT amname, amtype FROM pg_am WHERE amname = 'hnsw';
SELECT opc.opcname, opc.opcdefault, amvalidate(opc.oid)
FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
WHERE am.amname = 'hnsw' ORDER BY 1;
SELECT pg_indexam_has_property(oid, 'can_order') AS can_order,
       pg_indexam_has_property(oid, 'can_unique') AS can_unique,
       pg_indexam_has_property(oid, 'can_multi_col') AS can_multi_col,
       pg_indexam_has_property(oid, 'can_include') AS can_include
FROM pg_am WHERE amname = 'hnsw';

CREATE TABLE hnsw_ddl (id int PRIMARY KEY, embedding vector(3), category int);
INSERT INTO hnsw_ddl
SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.37) + 0.5]::vector, i % 10
FROM generate_series(1, 1000) i;

-- one index per operator class
CREATE INDEX hnsw_ddl_l2 ON hnsw_ddl USING hnsw (embedding vector_l2_ops);
CREATE INDEX hnsw_ddl_ip ON hnsw_ddl USING hnsw (embedding vector_ip_ops);
CREATE INDEX hnsw_ddl_cos ON hnsw_ddl USING hnsw (embedding vector_cosine_ops);
CREATE INDEX hnsw_ddl_l1 ON hnsw_ddl USING hnsw (embedding vector_l1_ops);
SELECT s.elements, s.deleted, s.m, s.ef_construction, s.metric, s.dimensions, s.quantization
FROM unnest(ARRAY['hnsw_ddl_l2', 'hnsw_ddl_ip', 'hnsw_ddl_cos', 'hnsw_ddl_l1']::regclass[]) i,
     hnsw_index_stats(i) s;
SELECT i, hnsw_index_check(i, true)
FROM unnest(ARRAY['hnsw_ddl_l2', 'hnsw_ddl_cos', 'hnsw_ddl_l1']::regclass[]) i;
-- inner product is not a metric: elements of small norm can be unreachable
-- (a recall matter, not corruption), so that check is left out here
SELECT c FROM hnsw_index_check('hnsw_ddl_ip', true) c WHERE c NOT LIKE '%reachable%';
-- the default operator class is vector_l2_ops
CREATE INDEX hnsw_ddl_default ON hnsw_ddl USING hnsw (embedding);
SELECT (hnsw_index_stats('hnsw_ddl_default')).metric;
DROP INDEX hnsw_ddl_ip, hnsw_ddl_cos, hnsw_ddl_l1, hnsw_ddl_default;

-- options
CREATE INDEX hnsw_ddl_opts ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32);
SELECT reloptions FROM pg_class WHERE relname = 'hnsw_ddl_opts';
SELECT m, ef_construction FROM hnsw_index_stats('hnsw_ddl_opts');
SELECT * FROM hnsw_index_check('hnsw_ddl_opts', true);
CREATE INDEX hnsw_ddl_bounds ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 2, ef_construction = 4);
SELECT m, ef_construction FROM hnsw_index_stats('hnsw_ddl_bounds');
-- with m = 2 some elements can be unreachable (a recall matter, not corruption)
SELECT c FROM hnsw_index_check('hnsw_ddl_bounds', true) c WHERE c NOT LIKE '%reachable%';
DROP INDEX hnsw_ddl_bounds;
CREATE INDEX hnsw_ddl_bounds ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 100, ef_construction = 1000);
SELECT m, ef_construction FROM hnsw_index_stats('hnsw_ddl_bounds');
SELECT * FROM hnsw_index_check('hnsw_ddl_bounds', true);
DROP INDEX hnsw_ddl_bounds;
-- option errors
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 1);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 101);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (ef_construction = 1001);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 31);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 100, ef_construction = 199);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (m = 'many');
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) WITH (lists = 100);
ALTER INDEX hnsw_ddl_opts SET (ef_construction = 10);
ALTER INDEX hnsw_ddl_opts SET (ef_construction = 64);
SELECT reloptions FROM pg_class WHERE relname = 'hnsw_ddl_opts';
DROP INDEX hnsw_ddl_opts;

-- GUCs
SHOW hnsw.ef_search;
SHOW hnsw.iterative_scan;
SHOW hnsw.max_scan_tuples;
SET hnsw.ef_search = 1;
SET hnsw.ef_search = 1000;
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.iterative_scan = off;
SET hnsw.iterative_scan = relaxed_order;
SET hnsw.iterative_scan = strict_order;
SET hnsw.iterative_scan = on;
SET hnsw.max_scan_tuples = 1;
SET hnsw.max_scan_tuples = 0;
SET hnsw.no_such_setting = 1;
RESET hnsw.ef_search;
RESET hnsw.iterative_scan;
RESET hnsw.max_scan_tuples;

-- what hnsw cannot index
CREATE INDEX ON hnsw_ddl USING hnsw (id);
CREATE INDEX ON hnsw_ddl USING hnsw (id int4_ops);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops, id);
-- A jsonb metadata column may only follow the vector column, once.
CREATE TABLE hnsw_ddl_meta (embedding vector(3), meta jsonb);
CREATE INDEX ON hnsw_ddl_meta USING hnsw (meta);
CREATE INDEX ON hnsw_ddl_meta USING hnsw (meta, embedding);
CREATE INDEX ON hnsw_ddl_meta USING hnsw (embedding, meta, meta);
CREATE INDEX hnsw_ddl_meta_idx ON hnsw_ddl_meta USING hnsw (embedding, meta);
SELECT elements FROM hnsw_index_stats('hnsw_ddl_meta_idx');
DROP TABLE hnsw_ddl_meta;
CREATE UNIQUE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops);
CREATE INDEX ON hnsw_ddl USING hnsw (embedding vector_l2_ops) INCLUDE (id);

-- expression and partial indexes
CREATE INDEX hnsw_ddl_expr ON hnsw_ddl USING hnsw ((subvector(embedding, 1, 2)::vector(2)) vector_l2_ops);
CREATE INDEX hnsw_ddl_part ON hnsw_ddl USING hnsw (embedding vector_cosine_ops) WHERE category = 3;
SELECT elements, dimensions FROM hnsw_index_stats('hnsw_ddl_expr');
SELECT elements, metric FROM hnsw_index_stats('hnsw_ddl_part');
SELECT * FROM hnsw_index_check('hnsw_ddl_expr', true);
SELECT * FROM hnsw_index_check('hnsw_ddl_part', true);
ANALYZE hnsw_ddl;
EXPLAIN (COSTS OFF)
SELECT id FROM hnsw_ddl ORDER BY subvector(embedding, 1, 2)::vector(2) <-> '[1,0]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hnsw_ddl WHERE category = 3 ORDER BY embedding <=> '[1,1,1]' LIMIT 5;
DROP INDEX hnsw_ddl_expr, hnsw_ddl_part;

-- plan choice
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ddl ORDER BY embedding <-> '[1,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ddl WHERE id = 5 ORDER BY embedding <-> '[1,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ddl WHERE category = 5;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ddl ORDER BY embedding <-> '[1,0,0]';
-- an operator of another opclass cannot use the index
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ddl ORDER BY embedding <#> '[1,0,0]' LIMIT 5;
-- without ORDER BY the index is never used, even when sequential scans are off
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ddl WHERE category = 5;
RESET enable_seqscan;
-- one search per row of a LATERAL join
EXPLAIN (COSTS OFF)
SELECT q.n, s.id
FROM (VALUES (1, '[1,0,0]'::vector), (2, '[0,1,0]')) q(n, v),
     LATERAL (SELECT id FROM hnsw_ddl ORDER BY hnsw_ddl.embedding <-> q.v LIMIT 3) s;

-- maintenance
CREATE INDEX CONCURRENTLY hnsw_ddl_cic ON hnsw_ddl USING hnsw (embedding vector_l2_ops);
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'hnsw_ddl_cic'::regclass;
SELECT elements FROM hnsw_index_stats('hnsw_ddl_cic');
SELECT * FROM hnsw_index_check('hnsw_ddl_cic', true);
INSERT INTO hnsw_ddl
SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.37) + 0.5]::vector, i % 10
FROM generate_series(1001, 1100) i;
SELECT elements FROM hnsw_index_stats('hnsw_ddl_cic');
SELECT * FROM hnsw_index_check('hnsw_ddl_cic', true);
REINDEX INDEX hnsw_ddl_cic;
SELECT elements FROM hnsw_index_stats('hnsw_ddl_cic');
SELECT * FROM hnsw_index_check('hnsw_ddl_cic', true);
REINDEX INDEX CONCURRENTLY hnsw_ddl_cic;
SELECT elements FROM hnsw_index_stats('hnsw_ddl_cic');
SELECT * FROM hnsw_index_check('hnsw_ddl_cic', true);
REINDEX TABLE hnsw_ddl;
SELECT * FROM hnsw_index_check('hnsw_ddl_l2', true);
TRUNCATE hnsw_ddl;
SELECT elements, deleted, entry_level, pages FROM hnsw_index_stats('hnsw_ddl_cic');
SELECT * FROM hnsw_index_check('hnsw_ddl_cic', true);
INSERT INTO hnsw_ddl VALUES (1, '[1,2,3]', 1), (2, '[3,2,1]', 2), (3, NULL, 3);
SELECT elements FROM hnsw_index_stats('hnsw_ddl_cic');
SELECT * FROM hnsw_index_check('hnsw_ddl_cic', true);
DROP INDEX hnsw_ddl_cic;
DROP INDEX CONCURRENTLY hnsw_ddl_l2;
SELECT count(*) FROM pg_class WHERE relname LIKE 'hnsw_ddl_%' AND relkind = 'i';

-- more dimensions than an hnsw index takes
CREATE TABLE hnsw_ddl_wide (v vector(2001));
INSERT INTO hnsw_ddl_wide SELECT array_fill(1, ARRAY[2001])::vector;
CREATE INDEX ON hnsw_ddl_wide USING hnsw (v);
DROP TABLE hnsw_ddl_wide;
CREATE TABLE hnsw_ddl_wide (v vector(2000));
INSERT INTO hnsw_ddl_wide SELECT array_fill(1, ARRAY[2000])::vector;
CREATE INDEX hnsw_ddl_wide_idx ON hnsw_ddl_wide USING hnsw (v);
SELECT elements, dimensions FROM hnsw_index_stats('hnsw_ddl_wide_idx');
SELECT * FROM hnsw_index_check('hnsw_ddl_wide_idx', true);
DROP TABLE hnsw_ddl_wide;

-- unlogged table (the init fork holds an empty index)
CREATE UNLOGGED TABLE hnsw_ddl_unlogged (v vector(2));
CREATE INDEX hnsw_ddl_unlogged_idx ON hnsw_ddl_unlogged USING hnsw (v);
INSERT INTO hnsw_ddl_unlogged VALUES ('[1,1]'), ('[2,2]');
SELECT elements FROM hnsw_index_stats('hnsw_ddl_unlogged_idx');
SELECT * FROM hnsw_index_check('hnsw_ddl_unlogged_idx', true);
DROP TABLE hnsw_ddl_unlogged;

DROP TABLE hnsw_ddl;
