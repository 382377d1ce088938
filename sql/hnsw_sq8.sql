-- SQ8 quantization: options, errors, exact results after the executor's
-- re-check, inserts, vacuum, the structure check, and high dimensions.
SET client_min_messages = warning;
CREATE TABLE sq (id int PRIMARY KEY, v vector(8), cat int);
INSERT INTO sq SELECT i,
  ARRAY[sin(i), cos(i * 0.7), sin(i * 1.3) * 2, (i % 17) / 4.0, cos(i * 0.11), (i % 5) - 2, sin(i * 0.05) * 3, 0.25]::vector,
  i % 10
  FROM generate_series(1, 3000) i;
CREATE TABLE sq_queries (qid int PRIMARY KEY, q vector(8));
INSERT INTO sq_queries SELECT i,
  ARRAY[cos(i), sin(i * 0.3), 0.5, (i % 7) / 3.0, sin(i), 1, cos(i * 0.2) * 2, 0.3]::vector
  FROM generate_series(1, 20) i;
-- Rows whose place in the index scan differs from an exact sort: the
-- executor re-checks SQ8 lower bounds, so the order is exact (small data,
-- ef_search 100: the graph finds every true neighbour).
CREATE FUNCTION sq_mismatches(op text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  SET LOCAL enable_seqscan = off;
  EXECUTE format('CREATE TEMP TABLE approx AS SELECT q.qid, x.id, x.r FROM sq_queries q,
    LATERAL (SELECT id, row_number() OVER () AS r FROM (SELECT id FROM sq ORDER BY v %s q.q LIMIT 10) s) x', op);
  SET LOCAL enable_indexscan = off;
  SET LOCAL enable_seqscan = on;
  EXECUTE format('CREATE TEMP TABLE exact AS SELECT q.qid, x.id, x.r FROM sq_queries q,
    LATERAL (SELECT id, row_number() OVER () AS r FROM (SELECT id FROM sq ORDER BY v %s q.q, id LIMIT 10) s) x', op);
  SELECT count(*) INTO n FROM exact e FULL JOIN approx a USING (qid, r) WHERE e.id IS DISTINCT FROM a.id;
  DROP TABLE approx, exact;
  RETURN n;
END $$;
SET hnsw.ef_search = 100;

-- Options and their errors.
CREATE INDEX sq_bad ON sq USING hnsw (v) WITH (quantization = 'int4');
CREATE INDEX sq_bad ON sq USING hnsw (v) WITH (quantization = 'sq8', m = 1);
CREATE INDEX sq_l2 ON sq USING hnsw (v vector_l2_ops) WITH (quantization = 'sq8', m = 8, ef_construction = 64);
SELECT elements, quantization, dimensions, metric, element_bytes, neighbor_bytes, quantization_bytes
  FROM hnsw_index_stats('sq_l2');
SELECT count(*) AS problems FROM hnsw_index_check('sq_l2', true);
EXPLAIN (COSTS OFF) SELECT id FROM sq ORDER BY v <-> '[1,1,1,1,1,1,1,1]' LIMIT 5;
SELECT sq_mismatches('<->');
-- The distances come back exact and in order.
SET enable_seqscan = off;
SELECT id, round((v <-> '[0.5,0.5,1,2,0,0,1,0.25]')::numeric, 6) AS d FROM sq ORDER BY v <-> '[0.5,0.5,1,2,0,0,1,0.25]' LIMIT 5;
RESET enable_seqscan;
SELECT id, round((v <-> '[0.5,0.5,1,2,0,0,1,0.25]')::numeric, 6) AS d FROM sq ORDER BY v <-> '[0.5,0.5,1,2,0,0,1,0.25]', id LIMIT 5;
-- A filtered query still returns LIMIT rows (iterative scan).
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM sq WHERE cat = 3 ORDER BY v <-> '[1,0,0,1,0,1,0,0]' LIMIT 25) s;
-- The distance cut-off.
SELECT count(*) FROM (SELECT id FROM sq WHERE v <-> '[1,0,0,1,0,1,0,0]' < 1.5 ORDER BY v <-> '[1,0,0,1,0,1,0,0]') s;
RESET enable_seqscan;
SELECT count(*) FROM sq WHERE v <-> '[1,0,0,1,0,1,0,0]' < 1.5;
-- hnsw.quantized_search = off needs full vectors in the index.
SET hnsw.quantized_search = off;
SET enable_seqscan = off;
SELECT id FROM sq ORDER BY v <-> '[1,1,1,1,1,1,1,1]' LIMIT 1;
RESET hnsw.quantized_search;
RESET enable_seqscan;
DROP INDEX sq_l2;

-- Every operator class.
-- Inner product: the graph itself misses a few true neighbours here (how
-- many depends on the build's threads); the SQ8 index finds about as many
-- as the unquantized one.
SET enable_indexscan = off;
CREATE TEMP TABLE ip_exact AS SELECT q.qid, x.id FROM sq_queries q,
  LATERAL (SELECT id FROM sq ORDER BY v <#> q.q, id LIMIT 10) x;
RESET enable_indexscan;
SET enable_seqscan = off;
CREATE INDEX sq_ip ON sq USING hnsw (v vector_ip_ops);
CREATE TEMP TABLE ip_plain AS SELECT q.qid, x.id FROM sq_queries q,
  LATERAL (SELECT id FROM sq ORDER BY v <#> q.q LIMIT 10) x;
DROP INDEX sq_ip;
CREATE INDEX sq_ip ON sq USING hnsw (v vector_ip_ops) WITH (quantization = 'sq8');
CREATE TEMP TABLE ip_sq8 AS SELECT q.qid, x.id FROM sq_queries q,
  LATERAL (SELECT id FROM sq ORDER BY v <#> q.q LIMIT 10) x;
RESET enable_seqscan;
SELECT plain >= 0.9 AS plain_recall_ok, sq8 >= plain - 0.03 AS sq8_recall_close
  FROM (SELECT (SELECT count(*) FROM ip_plain JOIN ip_exact USING (qid, id)) / 200.0 AS plain,
               (SELECT count(*) FROM ip_sq8 JOIN ip_exact USING (qid, id)) / 200.0 AS sq8) r;
DROP INDEX sq_ip;
CREATE INDEX sq_cos ON sq USING hnsw (v vector_cosine_ops) WITH (quantization = 'sq8');
SELECT sq_mismatches('<=>');
DROP INDEX sq_cos;
CREATE INDEX sq_l1 ON sq USING hnsw (v vector_l1_ops) WITH (quantization = 'sq8');
SELECT sq_mismatches('<+>');

-- Inserts (values beyond the trained range clamp), deletes and VACUUM.
INSERT INTO sq SELECT 3000 + i, ARRAY[i, -i, 0, 0, 0, 0, 0, 0]::vector, 0 FROM generate_series(1, 50) i;
SELECT count(*) AS problems FROM hnsw_index_check('sq_l1', true);
SET enable_seqscan = off;
SELECT id FROM sq ORDER BY v <+> '[40,-40,0,0,0,0,0,0]' LIMIT 3;
RESET enable_seqscan;
DELETE FROM sq WHERE id % 3 = 0;
VACUUM sq;
SELECT count(*) AS problems FROM hnsw_index_check('sq_l1', true);
SELECT elements = (SELECT count(*) FROM sq) AS all_indexed FROM hnsw_index_stats('sq_l1');
SELECT sq_mismatches('<+>');
DROP INDEX sq_l1;

-- An SQ8 index built empty trains on its first row.
CREATE TABLE sq_empty (id int, v vector(3));
CREATE INDEX sq_empty_idx ON sq_empty USING hnsw (v vector_cosine_ops) WITH (quantization = 'sq8');
INSERT INTO sq_empty SELECT i, ARRAY[i, i % 7, 1]::vector FROM generate_series(1, 200) i;
SET enable_seqscan = off;
SELECT id FROM sq_empty ORDER BY v <=> '[10,3,1]' LIMIT 3;
-- A zero query has no cosine distance (NaN): rows still come back.
SELECT count(*) FROM (SELECT id FROM sq_empty ORDER BY v <=> '[0,0,0]' LIMIT 3) s;
RESET enable_seqscan;
SELECT count(*) AS problems FROM hnsw_index_check('sq_empty_idx', true);

-- Dimensions: float4 elements stop at 2000, SQ8 codes at 8000.
CREATE TABLE sq_wide (id int, v vector);
INSERT INTO sq_wide SELECT i, array_fill((i % 5)::real, ARRAY[4096])::vector FROM generate_series(1, 20) i;
CREATE INDEX ON sq_wide USING hnsw (v) WITH (quantization = 'none');
CREATE INDEX sq_wide_idx ON sq_wide USING hnsw (v) WITH (quantization = 'sq8');
SELECT dimensions, quantization, element_bytes, quantization_bytes FROM hnsw_index_stats('sq_wide_idx');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM sq_wide ORDER BY v <-> array_fill(3::real, ARRAY[4096])::vector LIMIT 4) s
  WHERE id % 5 = 3;
RESET enable_seqscan;
SELECT count(*) AS problems FROM hnsw_index_check('sq_wide_idx', true);
INSERT INTO sq_wide SELECT 100, array_fill(1::real, ARRAY[8001])::vector;
DROP TABLE sq_wide;

DROP TABLE sq, sq_queries, sq_empty;
DROP FUNCTION sq_mismatches;
