-- hnsw_index_stats and hnsw_index_check: output, healthy and inconsistent
-- indexes, errors and permissions.

CREATE TABLE hnsw_insp (id int, v vector(2));
INSERT INTO hnsw_insp SELECT i, ARRAY[cos(i * 0.1), sin(i * 0.1)]::vector FROM generate_series(1, 200) i;
INSERT INTO hnsw_insp VALUES (201, NULL);
CREATE INDEX hnsw_insp_idx ON hnsw_insp USING hnsw (v vector_cosine_ops) WITH (m = 4, ef_construction = 16);

-- the graph's shape is random; its invariants are not
SELECT elements, deleted, m, ef_construction, metric, dimensions, quantization,
       levels >= 1 AS has_levels,
       entry_level = levels - 1 AS entry_on_top,
       array_length(level_elements, 1) = levels AS one_count_per_level,
       level_elements[1] = elements AS all_on_level_0,
       avg_degree[1] > 0 AND avg_degree[1] <= 2 * m AS degree_0_ok,
       min_degree[1] >= 1 AS all_linked,
       pages >= 2 AS has_element_pages,
       bytes = pages * current_setting('block_size')::bigint AS bytes_ok
FROM hnsw_index_stats('hnsw_insp_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_idx', heapallindexed => true);

-- a zero vector has no direction: under cosine it is not indexed, and the
-- heap check knows it
INSERT INTO hnsw_insp VALUES (0, '[0,0]');
SELECT elements FROM hnsw_index_stats('hnsw_insp_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_idx', true);
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hnsw_insp ORDER BY v <=> '[1,0]' LIMIT 300) s WHERE id = 0;
RESET enable_seqscan;

-- an empty index
CREATE TABLE hnsw_insp_empty (v vector(5));
CREATE INDEX hnsw_insp_empty_idx ON hnsw_insp_empty USING hnsw (v vector_l1_ops);
SELECT * FROM hnsw_index_stats('hnsw_insp_empty_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_empty_idx', true);
DROP TABLE hnsw_insp_empty;

-- a deliberately inconsistent index: rows inserted while the index was not
-- ready for inserts are missing from it
UPDATE pg_index SET indisready = false WHERE indexrelid = 'hnsw_insp_idx'::regclass;
INSERT INTO hnsw_insp VALUES (301, '[0.5,0.5]'), (302, '[-0.5,0.5]');
UPDATE pg_index SET indisready = true WHERE indexrelid = 'hnsw_insp_idx'::regclass;
SELECT * FROM hnsw_index_check('hnsw_insp_idx');
SELECT count(*) AS problems FROM hnsw_index_check('hnsw_insp_idx', true);
SELECT c LIKE 'heap row (%) is not indexed' AS missing_row FROM hnsw_index_check('hnsw_insp_idx', true) c;
REINDEX INDEX hnsw_insp_idx;
SELECT * FROM hnsw_index_check('hnsw_insp_idx', true);

-- errors
SELECT * FROM hnsw_index_stats('hnsw_insp');
SELECT * FROM hnsw_index_check('hnsw_insp');
CREATE INDEX hnsw_insp_btree ON hnsw_insp (id);
SELECT * FROM hnsw_index_stats('hnsw_insp_btree');
SELECT * FROM hnsw_index_check('hnsw_insp_btree');
SELECT * FROM hnsw_index_stats(NULL);
SELECT count(*) FROM hnsw_index_check(NULL);

-- permissions: the table's owner and members of pg_monitor
CREATE ROLE regress_hnsw_insp_user;
SET ROLE regress_hnsw_insp_user;
SELECT elements FROM hnsw_index_stats('hnsw_insp_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_idx');
RESET ROLE;
GRANT pg_monitor TO regress_hnsw_insp_user;
SET ROLE regress_hnsw_insp_user;
SELECT elements FROM hnsw_index_stats('hnsw_insp_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_idx');
RESET ROLE;
REVOKE pg_monitor FROM regress_hnsw_insp_user;
ALTER TABLE hnsw_insp OWNER TO regress_hnsw_insp_user;
SET ROLE regress_hnsw_insp_user;
SELECT elements FROM hnsw_index_stats('hnsw_insp_idx');
SELECT * FROM hnsw_index_check('hnsw_insp_idx', true);
RESET ROLE;

DROP TABLE hnsw_insp;
DROP ROLE regress_hnsw_insp_user;
