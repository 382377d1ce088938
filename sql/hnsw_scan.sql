-- hnsw index scans: exact results on small tables for every opclass,
-- iterative scans, filtered queries, the distance cut-off, NULL and
-- mismatched queries, and inserts into a built index.
SET client_min_messages = warning;

-- Deterministic data: 300 points and 20 queries in 3 dimensions.
CREATE TABLE items (id int PRIMARY KEY, v vector(3), cat int);
INSERT INTO items
  SELECT i, ARRAY[((i * 37) % 101) / 10.0, ((i * 53) % 103) / 10.0, ((i * 71) % 107) / 10.0]::vector, i % 10
  FROM generate_series(1, 300) i;
-- Points of norm 2 (a sphere), where inner product orders like cosine and an
-- HNSW graph for inner product is well connected.
CREATE TABLE sphere (id int PRIMARY KEY, v vector(3));
INSERT INTO sphere
  SELECT i, ARRAY[2 * cos(a) * cos(b), 2 * sin(a) * cos(b), 2 * sin(b)]::vector
  FROM generate_series(1, 300) i, LATERAL (SELECT i * 2.399963 AS a, asin(2 * (i - 0.5) / 300 - 1) AS b) ang;
CREATE TABLE queries (qid int PRIMARY KEY, q vector(3));
INSERT INTO queries
  SELECT i, ARRAY[((i * 13) % 97) / 9.0 + 0.05, ((i * 29) % 89) / 9.0 + 0.05, ((i * 41) % 83) / 9.0 + 0.05]::vector
  FROM generate_series(1, 20) i;

-- Top-10 distances of every query, through whatever plan is enabled (the
-- inner scan is rescanned with each query as a runtime key).
CREATE FUNCTION knn(tab text, op text) RETURNS TABLE (qid int, d numeric[]) LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT qid, (SELECT array_agg(round(dist::numeric, 4) ORDER BY n) FROM
                    (SELECT i.v %2$s queries.q AS dist, row_number() OVER () AS n
                     FROM (SELECT v FROM %1$I ORDER BY v %2$s queries.q LIMIT 10) i) s)
     FROM queries', tab, op);
END $$;

-- Compares the index scan with an exact scan for one operator; returns the
-- number of queries whose top 10 differ.
CREATE FUNCTION knn_mismatches(tab text, op text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  SET LOCAL enable_seqscan = off;
  CREATE TEMP TABLE got AS SELECT * FROM knn(tab, op);
  SET LOCAL enable_seqscan = on;
  SET LOCAL enable_indexscan = off;
  CREATE TEMP TABLE exact AS SELECT * FROM knn(tab, op);
  SELECT count(*) INTO n FROM got JOIN exact USING (qid) WHERE got.d IS DISTINCT FROM exact.d;
  DROP TABLE got, exact;
  RETURN n;
END $$;

SET hnsw.ef_search = 100;

-- L2
CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> '[1,2,3]' LIMIT 5;
RESET enable_seqscan;
BEGIN;
SELECT knn_mismatches('items', '<->');
COMMIT;
DROP INDEX items_v_idx;

-- inner product (on the sphere)
CREATE INDEX sphere_v_idx ON sphere USING hnsw (v vector_ip_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM sphere ORDER BY v <#> '[1,2,3]' LIMIT 5;
RESET enable_seqscan;
BEGIN;
SELECT knn_mismatches('sphere', '<#>');
COMMIT;
DROP INDEX sphere_v_idx;

-- cosine (on both tables: vectors are normalized in the index)
CREATE INDEX items_v_idx ON items USING hnsw (v vector_cosine_ops);
CREATE INDEX sphere_v_idx ON sphere USING hnsw (v vector_cosine_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <=> '[1,2,3]' LIMIT 5;
RESET enable_seqscan;
BEGIN;
SELECT knn_mismatches('items', '<=>');
SELECT knn_mismatches('sphere', '<=>');
COMMIT;
DROP INDEX items_v_idx, sphere_v_idx;

-- L1
CREATE INDEX items_v_idx ON items USING hnsw (v vector_l1_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <+> '[1,2,3]' LIMIT 5;
RESET enable_seqscan;
BEGIN;
SELECT knn_mismatches('items', '<+>');
COMMIT;
DROP INDEX items_v_idx;

-- The rest uses an L2 index, built with m = 4 so the graph is sparse.
CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops) WITH (m = 4, ef_construction = 32);
SET enable_seqscan = off;

-- Rows come in ascending distance.
SELECT bool_and(d >= prev) AS ascending, count(*)
FROM (SELECT d, lag(d, 1, 0::float8) OVER () AS prev
      FROM (SELECT v <-> '[5,5,5]' AS d FROM items ORDER BY v <-> '[5,5,5]' LIMIT 30) s) t;

-- A query vector from a parameter.
PREPARE knn_param(vector) AS SELECT id FROM items ORDER BY v <-> $1 LIMIT 3;
EXPLAIN (COSTS OFF) EXECUTE knn_param('[1,1,1]');
EXECUTE knn_param('[1.0,2.1,4.3]');
SET enable_indexscan = off;
EXECUTE knn_param('[1.0,2.1,4.3]');
RESET enable_indexscan;
DEALLOCATE knn_param;

-- LIMIT beyond ef_search: off stops after ef_search rows, the iterative
-- modes go on (strict_order in ascending order).
SET hnsw.ef_search = 10;
SET hnsw.iterative_scan = off;
SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 100) s;
SET hnsw.iterative_scan = strict_order;
SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 100) s;
SELECT bool_and(d >= prev) AS ascending, count(*)
FROM (SELECT d, lag(d, 1, 0::float8) OVER () AS prev
      FROM (SELECT v <-> '[5,5,5]' AS d FROM items ORDER BY v <-> '[5,5,5]' LIMIT 100) s) t;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 300) s;
-- Every row, each once, in relaxed order (the scan continues to the end).
SET hnsw.max_scan_tuples = 100000;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 1000) s;
-- max_scan_tuples bounds the walk.
SET hnsw.max_scan_tuples = 40;
SELECT count(*) < 300 AS stopped_early FROM (SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 1000) s;
RESET hnsw.max_scan_tuples;

-- A selective filter on another column still finds k rows (strict_order),
-- the same rows as the exact search.
SET hnsw.iterative_scan = strict_order;
SELECT array_agg(id ORDER BY id) FROM
  (SELECT id FROM items WHERE cat = 3 ORDER BY v <-> '[2,7,3]' LIMIT 10) s;
SET hnsw.iterative_scan = off;
SELECT count(*) < 10 AS fewer_without_iterative_scan FROM
  (SELECT id FROM items WHERE cat = 3 ORDER BY v <-> '[2,7,3]' LIMIT 10) s;
SET enable_indexscan = off;
RESET enable_seqscan;
SELECT array_agg(id ORDER BY id) FROM
  (SELECT id FROM items WHERE cat = 3 ORDER BY v <-> '[2,7,3]' LIMIT 10) s;
RESET enable_indexscan;
SET enable_seqscan = off;

-- Distance cut-off: the scan stops at the bound instead of walking the
-- graph (no row is fetched and then removed by the filter).
SET hnsw.iterative_scan = strict_order;
SET hnsw.ef_search = 40;
SELECT count(*) FROM items WHERE v <-> '[5,5,5]' < 1.6;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM items WHERE v <-> '[5,5,5]' < 1.6 ORDER BY v <-> '[5,5,5]' LIMIT 100;
SELECT array_agg(id ORDER BY id) FROM
  (SELECT id FROM items WHERE v <-> '[5,5,5]' < 1.6 ORDER BY v <-> '[5,5,5]' LIMIT 100) s;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM items WHERE 1.6 >= v <-> '[5,5,5]' ORDER BY v <-> '[5,5,5]' LIMIT 100;
PREPARE within(vector, float8) AS
  SELECT id FROM items WHERE v <-> $1 <= $2 ORDER BY v <-> $1 LIMIT 100;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE within('[5,5,5]', 1.6);
EXECUTE within('[5,5,5]', 1.2);
EXECUTE within('[5,5,5]', NULL);
EXECUTE within('[5,5,5]', -1);
RESET plan_cache_mode;
DEALLOCATE within;
-- Without a usable bound (a different expression) the filter still applies.
SELECT count(*) FROM
  (SELECT id FROM items WHERE v <-> '[5,5,4]' < 1.6 ORDER BY v <-> '[5,5,5]' LIMIT 100) s;

-- A NULL query returns no rows; a query of other dimensions is an error.
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> (SELECT NULL::vector) LIMIT 5;
SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> (SELECT NULL::vector) LIMIT 5) s;
SELECT id FROM items ORDER BY v <-> '[1,2]' LIMIT 1;
SELECT id FROM items ORDER BY v <-> '[1,2,3,4]' LIMIT 1;

-- Inserts into the built index are found by scans.
INSERT INTO items VALUES (1001, '[5,5,5]', 0), (1002, '[5.01,5,5]', 0), (1003, NULL, 0);
INSERT INTO items
  SELECT 2000 + i, ARRAY[((i * 43) % 97) / 9.7, ((i * 59) % 89) / 8.9, ((i * 67) % 83) / 8.3]::vector, 1
  FROM generate_series(1, 100) i;
SET hnsw.ef_search = 40;
SELECT id FROM items ORDER BY v <-> '[5,5,5]', id LIMIT 3;
SELECT id FROM items ORDER BY v <-> '[4.5,5.5,5]' LIMIT 3;
SET hnsw.iterative_scan = relaxed_order;
SET hnsw.max_scan_tuples = 100000;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 1000) s;
SET hnsw.iterative_scan = strict_order;
RESET hnsw.max_scan_tuples;
SET enable_indexscan = off;
RESET enable_seqscan;
SELECT id FROM items ORDER BY v <-> '[4.5,5.5,5]' LIMIT 3;
RESET enable_indexscan;
SET enable_seqscan = off;
-- The graph stays consistent after inserts.
SELECT count(*) AS problems FROM hnsw_index_check('items_v_idx', true);

-- Unused ORDER BY values: Limit -> hnsw Index Scan with the distance only a
-- junk column gets a NULL constant instead; a selected distance is computed.
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 3;
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id, v <-> '[5,5,5]' AS d FROM items ORDER BY v <-> '[5,5,5]' LIMIT 3;
SELECT id FROM items ORDER BY v <-> '[4.5,5.5,5]' LIMIT 3;
SELECT id, round((v <-> '[4.5,5.5,5]')::numeric, 4) AS d FROM items ORDER BY v <-> '[4.5,5.5,5]' LIMIT 3;
SET hnsw.elide_orderby_values = off;
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM items ORDER BY v <-> '[5,5,5]' LIMIT 3;
SELECT id FROM items ORDER BY v <-> '[4.5,5.5,5]' LIMIT 3;
RESET hnsw.elide_orderby_values;

-- An empty index, then its first inserted row.
CREATE TABLE empty_items (id int, v vector(2));
CREATE INDEX ON empty_items USING hnsw (v);
SELECT count(*) FROM (SELECT id FROM empty_items ORDER BY v <-> '[0,0]' LIMIT 5) s;
INSERT INTO empty_items VALUES (1, '[1,1]');
SELECT id FROM empty_items ORDER BY v <-> '[0,0]' LIMIT 5;
INSERT INTO empty_items SELECT i, ARRAY[i, -i]::vector FROM generate_series(2, 50) i;
SELECT id FROM empty_items ORDER BY v <-> '[10,-10]' LIMIT 3;

DROP TABLE items, sphere, queries, empty_items;
DROP FUNCTION knn, knn_mismatches;
