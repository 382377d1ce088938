-- Filtered search: an hnsw index with a jsonb metadata column evaluates the
-- quals on it while it traverses the graph. Results must equal an exact
-- filtered sort, with LIMIT rows whenever that many rows match.
SET client_min_messages = warning;
CREATE TABLE fdocs (id int PRIMARY KEY, v vector(3), metadata jsonb);
INSERT INTO fdocs SELECT i,
  ARRAY[sin(i * 0.37), cos(i * 0.53), ((i * 7) % 100) / 50.0]::vector,
  CASE
    WHEN i % 97 = 0 THEN NULL
    WHEN i % 89 = 0 THEN '{}'::jsonb
    ELSE jsonb_build_object(
      'tenant', i % 20,
      'tags', CASE i % 3 WHEN 0 THEN '["red", "blue"]'::jsonb WHEN 1 THEN '["green"]'::jsonb ELSE '[]'::jsonb END,
      'attrs', jsonb_build_object('size', i % 5, 'label', 'L' || (i % 7)),
      'price', (i % 100) + 0.5,
      'code', CASE WHEN i % 2 = 0 THEN to_jsonb((i % 10)::text) ELSE to_jsonb(i % 10) END,
      'active', i % 4 = 0)
  END
  FROM generate_series(1, 4000) i;
CREATE INDEX fdocs_idx ON fdocs USING hnsw (v vector_l2_ops, metadata jsonb_hnsw_ops)
  WITH (m = 8, ef_construction = 64, link_codes = on);
-- link_codes needs the metadata column.
CREATE INDEX fdocs_bad ON fdocs USING hnsw (v) WITH (link_codes = on);
SELECT count(*) AS problems FROM hnsw_index_check('fdocs_idx', true);
ANALYZE fdocs;

-- Index scan results vs the exact filtered sort for `cond`: rows that differ
-- (by position), and how many rows the index scan returned. The exact
-- comparison needs the traversal that scores every element it reaches
-- (hnsw.filter_two_hop = off); the default two-hop traversal is checked for
-- recall below (frecall).
CREATE FUNCTION fcheck(cond text, k int DEFAULT 10, OUT differences bigint, OUT returned bigint)
LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL hnsw.ef_search = 100;
  SET LOCAL hnsw.filter_two_hop = off;
  EXECUTE format('CREATE TEMP TABLE approx AS SELECT id, row_number() OVER () AS r FROM
    (SELECT id FROM fdocs WHERE %s ORDER BY v <-> ''[0.3,0.4,1]'' LIMIT %s) s', cond, k);
  SET LOCAL enable_indexscan = off;
  SET LOCAL enable_seqscan = on;
  EXECUTE format('CREATE TEMP TABLE exact AS SELECT id, row_number() OVER () AS r FROM
    (SELECT id FROM fdocs WHERE %s ORDER BY v <-> ''[0.3,0.4,1]'', id LIMIT %s) s', cond, k);
  SELECT count(*) INTO differences FROM exact e FULL JOIN approx a USING (r) WHERE e.id IS DISTINCT FROM a.id;
  SELECT count(*) INTO returned FROM approx;
  DROP TABLE approx, exact;
END $$;

-- The quals on the metadata column are index conditions.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM fdocs WHERE metadata @> '{"tenant": 7}' ORDER BY v <-> '[0.3,0.4,1]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM fdocs WHERE metadata @> '{"tenant": 7}' AND metadata ? 'price'
  ORDER BY v <-> '[0.3,0.4,1]' LIMIT 10;
-- Other quals stay filters.
EXPLAIN (COSTS OFF) SELECT id FROM fdocs WHERE metadata->>'tenant' = '7' ORDER BY v <-> '[0.3,0.4,1]' LIMIT 10;
RESET enable_seqscan;

-- Every filter form.
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}'$$);
SELECT * FROM fcheck($$metadata @> '{"tenant": 7, "active": true}'$$);
SELECT * FROM fcheck($$metadata @> '{"attrs": {"size": 3}}'$$);
SELECT * FROM fcheck($$metadata @> '{"tags": ["blue"]}'$$);
SELECT * FROM fcheck($$metadata @> '{"code": 4}'$$);
SELECT * FROM fcheck($$metadata @> '{"code": "4"}'$$);
SELECT * FROM fcheck($$metadata @> '{"tenant": "7"}'$$);
SELECT * FROM fcheck($$metadata @> ANY (ARRAY['{"tenant": 3}', '{"tenant": 5}']::jsonb[])$$);
SELECT * FROM fcheck($$metadata ? 'price'$$);
SELECT * FROM fcheck($$metadata ? 'nothing'$$);
SELECT * FROM fcheck($$metadata ?| ARRAY['nothing', 'tenant']$$);
SELECT * FROM fcheck($$metadata ?& ARRAY['tags', 'attrs']$$);
SELECT * FROM fcheck($$metadata ?| ARRAY[]::text[]$$);
SELECT * FROM fcheck($$metadata @? '$.price ? (@ > 90)'$$);
SELECT * FROM fcheck($$metadata @? '$.tags[*] ? (@ == "green")'$$);
SELECT * FROM fcheck($$metadata @@ '$.tenant == 7'$$);
SELECT * FROM fcheck($$metadata @@ '$.price < 3.6'$$);
SELECT * FROM fcheck($$metadata @@ '$.attrs.size >= 4 && $.tenant < 3'$$);
SELECT * FROM fcheck($$metadata @@ '$.tenant == 1 || $.tenant == 2'$$);
SELECT * FROM fcheck($$metadata @@ '$.code == 4'$$);
SELECT * FROM fcheck($$metadata @@ '$.code == "4"'$$);
SELECT * FROM fcheck($$metadata @@ '$.tags == "red"'$$);
SELECT * FROM fcheck($$metadata @@ '$.attrs.label starts with "L3"'$$);
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}' AND metadata @@ '$.price > 50'$$);
SELECT * FROM fcheck($$(metadata @> '{"tenant": 7}' OR metadata @> '{"tenant": 8}')$$);
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}' AND id % 2 = 0$$);
SELECT * FROM fcheck($$metadata IS NULL$$);
SELECT * FROM fcheck($$metadata = '{}'$$);
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}'$$, 300);

-- The default two-hop traversal skips links whose code excludes the row
-- and looks through them: over every filter form, recall against the exact
-- filtered sort stays high, and every query returns LIMIT rows.
CREATE FUNCTION frecall(cond text, k int DEFAULT 10, OUT hits bigint, OUT wanted bigint, OUT returned bigint)
LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL hnsw.ef_search = 40;
  EXECUTE format('CREATE TEMP TABLE approx AS SELECT id FROM
    (SELECT id FROM fdocs WHERE %s ORDER BY v <-> ''[0.3,0.4,1]'' LIMIT %s) s', cond, k);
  SET LOCAL enable_indexscan = off;
  SET LOCAL enable_seqscan = on;
  EXECUTE format('CREATE TEMP TABLE exact AS SELECT id FROM
    (SELECT id FROM fdocs WHERE %s ORDER BY v <-> ''[0.3,0.4,1]'', id LIMIT %s) s', cond, k);
  SELECT count(*) INTO hits FROM exact JOIN approx USING (id);
  SELECT count(*) INTO wanted FROM exact;
  SELECT count(*) INTO returned FROM approx;
  DROP TABLE approx, exact;
END $$;
SELECT sum(hits) * 1.0 / sum(wanted) >= 0.9 AS recall_ok, bool_and(returned = wanted) AS all_rows,
       sum(wanted) AS wanted
FROM (VALUES ($$metadata @> '{"tenant": 7}'$$), ($$metadata @> '{"tenant": 7, "active": true}'$$),
             ($$metadata @> '{"attrs": {"size": 3}}'$$), ($$metadata @> '{"tags": ["blue"]}'$$),
             ($$metadata @> '{"code": 4}'$$), ($$metadata @> '{"code": "4"}'$$), ($$metadata ? 'price'$$),
             ($$metadata ?& ARRAY['tags', 'attrs']$$), ($$metadata @? '$.price ? (@ > 90)'$$),
             ($$metadata @@ '$.tenant == 7'$$), ($$metadata @@ '$.price < 3.6'$$),
             ($$metadata @@ '$.tenant == 1 || $.tenant == 2'$$), ($$metadata @@ '$.code == "4"'$$),
             ($$metadata @> '{"tenant": 7}' AND metadata @@ '$.price > 50'$$)) f(cond),
     LATERAL frecall(cond) r;

-- Two-hop scans widen their candidate list where few links may match
-- (hnsw.filter_ef_widen, 1 = off): the same checks with it off, and scans
-- that return more rows than the widened list holds (later batches).
SET hnsw.filter_ef_widen = 1;
SELECT sum(hits) * 1.0 / sum(wanted) >= 0.9 AS recall_ok, bool_and(returned = wanted) AS all_rows,
       sum(wanted) AS wanted
FROM (VALUES ($$metadata @> '{"tenant": 7}'$$), ($$metadata @> '{"tenant": 7, "active": true}'$$),
             ($$metadata @@ '$.tenant == 1 || $.tenant == 2'$$), ($$metadata @? '$.price ? (@ > 90)'$$)) f(cond),
     LATERAL frecall(cond) r;
RESET hnsw.filter_ef_widen;
SELECT hits * 1.0 / wanted >= 0.9 AS recall_ok, returned = wanted AS all_rows, wanted
FROM frecall($$metadata @> '{"tenant": 7}'$$, 150);
SELECT hits * 1.0 / wanted >= 0.9 AS recall_ok, returned = wanted AS all_rows, wanted
FROM frecall($$metadata @@ '$.tenant == 1 || $.tenant == 2'$$, 100);
-- With a small budget the two-hop scan ends with its exact pass: still
-- LIMIT rows.
SET hnsw.max_scan_tuples = 30;
SELECT returned = wanted AS all_rows, wanted FROM frecall($$metadata @> '{"tenant": 7}'$$, 50);
SELECT returned = wanted AS all_rows, wanted FROM frecall($$metadata @@ '$.price < 1'$$, 50);
RESET hnsw.max_scan_tuples;

-- When the graph search runs out of its budget (hnsw.max_scan_tuples)
-- before LIMIT rows are found, a final pass over the index finds the rest.
SET hnsw.max_scan_tuples = 30;
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}'$$, 50);
SELECT * FROM fcheck($$metadata @@ '$.price < 1'$$, 50);
SET hnsw.iterative_scan = relaxed_order;
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}'$$, 50);
RESET hnsw.iterative_scan;
RESET hnsw.max_scan_tuples;

-- Updates of a row's metadata are seen by filtered scans.
UPDATE fdocs SET metadata = metadata || '{"tenant": 77}' WHERE id IN (10, 20, 30);
SELECT * FROM fcheck($$metadata @> '{"tenant": 77}'$$);
SET enable_seqscan = off;
SELECT id FROM fdocs WHERE metadata @> '{"tenant": 77}' ORDER BY v <-> '[0.3,0.4,1]' LIMIT 5;
RESET enable_seqscan;
DELETE FROM fdocs WHERE id % 5 = 0;
VACUUM fdocs;
SELECT count(*) AS problems FROM hnsw_index_check('fdocs_idx', true);
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}'$$);
SELECT * FROM fcheck($$metadata @> '{"tenant": 77}'$$);

-- With a GIN index on the metadata, a filter the planner expects to keep
-- few rows is cheaper as an exact plan (GIN bitmap + sort).
CREATE INDEX fdocs_gin ON fdocs USING gin (metadata jsonb_path_ops);
EXPLAIN (COSTS OFF) SELECT id FROM fdocs WHERE metadata @> '{"tenant": 7}' ORDER BY v <-> '[0.3,0.4,1]' LIMIT 10;
DROP INDEX fdocs_gin;
-- An exact plan through a B-tree stays cheaper for a key lookup.
EXPLAIN (COSTS OFF) SELECT id FROM fdocs WHERE id = 5 AND metadata @> '{"tenant": 5}' ORDER BY v <-> '[0.3,0.4,1]' LIMIT 10;

-- SQ8 and a metadata column together.
CREATE INDEX fdocs_sq8 ON fdocs USING hnsw (v vector_l2_ops, metadata) WITH (quantization = 'sq8');
DROP INDEX fdocs_idx;
SELECT * FROM fcheck($$metadata @> '{"tenant": 7}'$$);
SELECT * FROM fcheck($$metadata @@ '$.price < 3.6'$$);
SELECT count(*) AS problems FROM hnsw_index_check('fdocs_sq8', true);

-- An index built on an empty table, then inserts.
CREATE TABLE fempty (id int, v vector(2), metadata jsonb);
CREATE INDEX fempty_idx ON fempty USING hnsw (v, metadata);
INSERT INTO fempty SELECT i, ARRAY[i, -i]::vector, jsonb_build_object('even', i % 2 = 0) FROM generate_series(1, 200) i;
SET enable_seqscan = off;
SELECT id FROM fempty WHERE metadata @> '{"even": true}' ORDER BY v <-> '[10,-10]' LIMIT 4;
RESET enable_seqscan;
SELECT count(*) AS problems FROM hnsw_index_check('fempty_idx', true);

DROP TABLE fdocs, fempty;
DROP FUNCTION fcheck;
DROP FUNCTION frecall;
