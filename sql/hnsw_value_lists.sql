-- Value lists (WITH (value_lists = N)): the build links the rows that share
-- a frequent metadata value (at least max(200, n / 500) rows, at most n / 10)
-- into a graph of their own, stored as extra lists in their neighbour
-- tuples, and two-hop filtered scans follow them. Results must be those of
-- the scan without them, and LIMIT rows whenever that many rows match.
SET client_min_messages = warning;
CREATE TABLE vldocs (id int PRIMARY KEY, v vector(4), metadata jsonb);
-- 3000 rows: tenant i % 12 (about 245 rows each: in the band of 200..300),
-- kind i % 3 (1000: too frequent), grp i % 50 (60: too rare); some rows
-- without metadata or without a tenant.
INSERT INTO vldocs SELECT i,
  ARRAY[sin(i * 0.37), cos(i * 0.53), ((i * 7) % 100) / 50.0, sin(i * 0.11)]::vector,
  CASE
    WHEN i % 97 = 0 THEN NULL
    WHEN i % 89 = 0 THEN '{}'::jsonb
    ELSE jsonb_build_object('tenant', i % 12, 'kind', 'k' || (i % 3), 'grp', i % 50)
  END
  FROM generate_series(1, 3000) i;

-- The reloption's range, and the metadata column it needs.
CREATE INDEX vldocs_bad ON vldocs USING hnsw (v vector_l2_ops, metadata) WITH (value_lists = 5);
CREATE INDEX vldocs_bad ON vldocs USING hnsw (v vector_l2_ops, metadata) WITH (value_lists = -1);
CREATE INDEX vldocs_bad ON vldocs USING hnsw (v vector_l2_ops) WITH (value_lists = 1);
CREATE INDEX vldocs_none ON vldocs USING hnsw (v vector_l2_ops) WITH (value_lists = 0);
DROP INDEX vldocs_none;

CREATE INDEX vldocs_idx ON vldocs USING hnsw (v vector_l2_ops, metadata jsonb_hnsw_ops)
  WITH (m = 8, ef_construction = 32, value_lists = 2);
SELECT * FROM hnsw_index_check('vldocs_idx', true);

-- Two lists of m links; the 12 tenants in the directory; every row with a
-- tenant has a list holding links (nearly full ones).
SELECT elements, value_lists, value_slots, value_directory,
       value_list_elements = (SELECT count(*) FROM vldocs WHERE metadata ? 'tenant') AS every_tenant_row,
       value_list_avg_links BETWEEN 6 AND 8 AS lists_filled
FROM hnsw_index_stats('vldocs_idx');
-- Each list: a key and m TIDs, 8-aligned (56 bytes for m = 8).
CREATE INDEX vldocs_codes ON vldocs USING hnsw (v vector_l2_ops, metadata jsonb_hnsw_ops)
  WITH (m = 8, ef_construction = 32, link_codes = on);
SELECT s.neighbor_bytes - c.neighbor_bytes AS value_list_bytes, c.value_lists, c.value_directory,
       c.value_list_elements, c.value_list_avg_links
FROM hnsw_index_stats('vldocs_idx') s, hnsw_index_stats('vldocs_codes') c;
DROP INDEX vldocs_codes;
ANALYZE vldocs;

-- The filter is an index condition.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM vldocs WHERE metadata @> '{"tenant": 7}' ORDER BY v <-> '[0.3,0.4,1,0]' LIMIT 10;
RESET enable_seqscan;

-- The ids of an index scan with value lists on or off, and of the exact
-- filtered sort, in order. ef_search 100 against about 245 matching rows
-- leaves no doubt about the 10 nearest.
CREATE FUNCTION vl_ids(cond text, q text, k int, lists bool) RETURNS int[]
LANGUAGE plpgsql AS $$
DECLARE ids int[];
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_indexscan = on;
  SET LOCAL hnsw.ef_search = 100;
  PERFORM set_config('hnsw.filter_value_lists', lists::text, true);
  EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM vldocs WHERE %s ORDER BY v <-> %L LIMIT %s) s',
                 cond, q, k) INTO ids;
  RETURN ids;
END $$;
CREATE FUNCTION vl_exact(cond text, q text, k int) RETURNS int[]
LANGUAGE plpgsql AS $$
DECLARE ids int[];
BEGIN
  SET LOCAL enable_indexscan = off;
  SET LOCAL enable_seqscan = on;
  EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM vldocs WHERE %s ORDER BY v <-> %L, id LIMIT %s) s',
                 cond, q, k) INTO ids;
  RETURN ids;
END $$;
SELECT cond, q, vl_ids(cond, q, 10, true) AS with_lists,
       vl_ids(cond, q, 10, true) = vl_ids(cond, q, 10, false) AS same_without,
       vl_ids(cond, q, 10, true) = vl_exact(cond, q, 10) AS exact
FROM (VALUES ($$metadata @> '{"tenant": 7}'$$), ($$metadata @> '{"tenant": 3, "kind": "k0"}'$$),
             ($$metadata @@ '$.tenant == 11'$$)) c(cond),
     (VALUES ('[0.3,0.4,1,0]'), ('[-0.9,0.1,0.2,0.8]')) qs(q)
ORDER BY 1, 2;

-- LIMIT k gives k rows whenever k rows match (about 245 match), and every
-- matching row for a larger LIMIT.
SELECT k, cardinality(vl_ids($$metadata @> '{"tenant": 5}'$$, '[0.3,0.4,1,0]', k, true)) AS returned,
       (SELECT count(*) FROM vldocs WHERE metadata @> '{"tenant": 5}') AS matching
FROM (VALUES (1), (40), (100), (200), (400)) l(k);

-- Rows inserted after the build, and the metapage as the authority: after
-- ALTER INDEX the index keeps the lists it was built with until REINDEX.
INSERT INTO vldocs SELECT i, ARRAY[cos(i * 0.29), sin(i * 0.41), ((i * 3) % 100) / 50.0, cos(i * 0.07)]::vector,
  jsonb_build_object('tenant', i % 12, 'kind', 'k' || (i % 3), 'grp', i % 50)
  FROM generate_series(3001, 3200) i;
ALTER INDEX vldocs_idx SET (value_lists = 7);
ALTER INDEX vldocs_idx SET (value_lists = 1);
SELECT value_lists, value_directory FROM hnsw_index_stats('vldocs_idx');
INSERT INTO vldocs VALUES (3201, '[0.3,0.4,1,0]', '{"tenant": 7}');
SELECT * FROM hnsw_index_check('vldocs_idx', true);
-- The new row is in the graph (a scan that scores every element it reaches
-- finds it).
SET enable_seqscan = off;
SET hnsw.filter_two_hop = off;
SELECT id FROM vldocs WHERE metadata @> '{"tenant": 7}' ORDER BY v <-> '[0.3,0.4,1,0]' LIMIT 1;
RESET hnsw.filter_two_hop;
RESET enable_seqscan;
REINDEX INDEX vldocs_idx;
SELECT elements, value_lists, value_slots, value_directory,
       value_list_elements = (SELECT count(*) FROM vldocs WHERE metadata ? 'tenant') AS every_tenant_row
FROM hnsw_index_stats('vldocs_idx');
SELECT * FROM hnsw_index_check('vldocs_idx', true);
SELECT vl_ids(cond, '[0.3,0.4,1,0]', 10, true) = vl_exact(cond, '[0.3,0.4,1,0]', 10) AS exact
FROM (VALUES ($$metadata @> '{"tenant": 7}'$$), ($$metadata @> '{"tenant": 2}'$$)) c(cond);
-- value_lists = 0: no lists (and no link codes) after REINDEX.
ALTER INDEX vldocs_idx SET (value_lists = 0);
REINDEX INDEX vldocs_idx;
SELECT value_lists, value_slots, value_directory, value_list_elements FROM hnsw_index_stats('vldocs_idx');
SELECT * FROM hnsw_index_check('vldocs_idx', true);

-- No value in the band (200 rows at least): lists, but an empty directory.
CREATE TABLE vlsmall (id int, v vector(2), metadata jsonb);
INSERT INTO vlsmall SELECT i, ARRAY[cos(i * 0.1), sin(i * 0.1)]::vector, jsonb_build_object('tenant', i % 4)
  FROM generate_series(1, 400) i;
CREATE INDEX vlsmall_idx ON vlsmall USING hnsw (v, metadata) WITH (value_lists = 4);
SELECT value_lists, value_slots, value_directory, value_list_elements FROM hnsw_index_stats('vlsmall_idx');
SELECT * FROM hnsw_index_check('vlsmall_idx', true);
SET enable_seqscan = off;
SELECT id FROM vlsmall WHERE metadata @> '{"tenant": 1}' ORDER BY v <-> '[1,0]' LIMIT 3;
RESET enable_seqscan;

DROP TABLE vldocs, vlsmall;
DROP FUNCTION vl_ids, vl_exact;
