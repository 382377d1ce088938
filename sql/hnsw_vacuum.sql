-- hnsw VACUUM: dead elements are removed, the graph is repaired around them,
-- a dead entry point is replaced, and inserts reuse the freed space.

CREATE TABLE hnsw_vac (id int PRIMARY KEY, v vector(4));
INSERT INTO hnsw_vac
SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7), cos(i * 0.11)]::vector
FROM generate_series(1, 2000) i;
CREATE INDEX hnsw_vac_idx ON hnsw_vac USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- queries and their exact nearest neighbours (by a sequential scan)
CREATE TEMP TABLE hnsw_vac_q AS
SELECT q, ARRAY[sin(q * 0.5), cos(q * 0.9), sin(q * 1.7), cos(q * 0.3)]::vector AS v
FROM generate_series(1, 20) q;

-- delete 30% and vacuum
CREATE TEMP TABLE hnsw_vac_before AS SELECT avg_degree FROM hnsw_index_stats('hnsw_vac_idx');
DELETE FROM hnsw_vac WHERE id % 10 < 3;
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_idx');
VACUUM hnsw_vac;
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);
-- the repaired graph is as dense as the one built
SELECT s.min_degree[1] > 0 AS linked, s.avg_degree[1] >= 0.9 * b.avg_degree[1] AS dense
FROM hnsw_index_stats('hnsw_vac_idx') s, hnsw_vac_before b;

-- the index never returns a deleted row, and finds the exact neighbours
SET enable_seqscan = off;
SET hnsw.ef_search = 100;
SELECT count(*) AS deleted_returned
FROM hnsw_vac_q q, LATERAL (SELECT id FROM hnsw_vac ORDER BY hnsw_vac.v <-> q.v LIMIT 50) s
WHERE s.id % 10 < 3;
CREATE TEMP TABLE hnsw_vac_approx AS
SELECT q.q, s.id FROM hnsw_vac_q q, LATERAL (SELECT id FROM hnsw_vac ORDER BY hnsw_vac.v <-> q.v LIMIT 10) s;
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE hnsw_vac_exact AS
SELECT q.q, s.id FROM hnsw_vac_q q, LATERAL (SELECT id FROM hnsw_vac ORDER BY hnsw_vac.v <-> q.v LIMIT 10) s;
RESET enable_indexscan;
RESET hnsw.ef_search;
-- recall@10 over 20 queries: at least 0.95
SELECT count(*) >= 190 AS recall_ok, count(*) <= 200 AS bounded
FROM hnsw_vac_approx a JOIN hnsw_vac_exact e USING (q, id);

-- inserts reuse the freed space: the index does not grow
CREATE TEMP TABLE hnsw_vac_pages AS SELECT pages FROM hnsw_index_stats('hnsw_vac_idx');
INSERT INTO hnsw_vac
SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7), cos(i * 0.11)]::vector
FROM generate_series(2001, 2500) i;
SELECT s.elements, s.pages <= p.pages AS no_growth
FROM hnsw_index_stats('hnsw_vac_idx') s, hnsw_vac_pages p;
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- a VACUUM with nothing to remove changes nothing
VACUUM hnsw_vac;
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- delete almost everything (the entry point goes too), then all of it
DELETE FROM hnsw_vac WHERE id > 5;
VACUUM hnsw_vac;
SELECT elements, deleted, entry_level >= 0 AS has_entry FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);
SET enable_seqscan = off;
SELECT id FROM hnsw_vac ORDER BY v <-> '[1,1,1,1]' LIMIT 10;
RESET enable_seqscan;
DELETE FROM hnsw_vac;
VACUUM hnsw_vac;
SELECT elements, deleted, entry_level, levels FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- the empty index takes new rows again
INSERT INTO hnsw_vac
SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7), cos(i * 0.11)]::vector
FROM generate_series(1, 300) i;
SELECT elements, deleted, pages <= (SELECT pages FROM hnsw_vac_pages) AS reused
FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- updates leave dead versions that vacuum removes
UPDATE hnsw_vac SET v = ARRAY[cos(id), sin(id), 0, 1]::vector WHERE id % 2 = 0;
VACUUM hnsw_vac;
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- VACUUM FULL rebuilds the index
VACUUM FULL hnsw_vac;
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_idx', true);

-- cosine: vacuum compares normalized vectors
CREATE TABLE hnsw_vac_cos (id int, v vector(3));
INSERT INTO hnsw_vac_cos SELECT i, ARRAY[1 + sin(i), 2 + cos(i), sin(i * 0.3)]::vector FROM generate_series(1, 500) i;
INSERT INTO hnsw_vac_cos VALUES (0, '[0,0,0]');
CREATE INDEX hnsw_vac_cos_idx ON hnsw_vac_cos USING hnsw (v vector_cosine_ops) WITH (m = 4, ef_construction = 16);
DELETE FROM hnsw_vac_cos WHERE id % 4 = 1;
VACUUM hnsw_vac_cos;
SELECT elements, deleted FROM hnsw_index_stats('hnsw_vac_cos_idx');
SELECT * FROM hnsw_index_check('hnsw_vac_cos_idx', true);

DROP TABLE hnsw_vac, hnsw_vac_cos;
