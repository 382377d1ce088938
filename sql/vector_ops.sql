-- Operators and functions on vector.

-- element-wise arithmetic and concatenation
SELECT '[1,2,3]'::vector + '[4,5,6]';
SELECT '[1,2,3]'::vector - '[4,5,6]';
SELECT '[1,2,3]'::vector * '[4,5,6]';
SELECT '[1,2,3]'::vector || '[4,5]';
SELECT '[1.5]'::vector + '[-1.5]', '[0.1]'::vector * '[0]';
SELECT vector_add('[1,2]', '[3,4]'), vector_sub('[1,2]', '[3,4]'),
       vector_mul('[1,2]', '[3,4]'), vector_concat('[1]', '[2]');

-- distances: every function and its operator
SELECT l2_distance('[0,0]', '[3,4]'), '[0,0]'::vector <-> '[3,4]';
SELECT l2_distance('[0,0]', '[0,1]'), '[1,1,1]'::vector <-> '[1,1,1]';
SELECT vector_l2_squared_distance('[0,0]', '[3,4]');
SELECT inner_product('[1,2]', '[3,4]'), '[1,2]'::vector <#> '[3,4]';
SELECT vector_negative_inner_product('[1,2]', '[-3,4]');
SELECT cosine_distance('[1,2]', '[2,4]'), '[1,2]'::vector <=> '[2,4]';
SELECT cosine_distance('[1,1]', '[1,1]'), cosine_distance('[1,1]', '[-1,-1]');
SELECT cosine_distance('[1,0]', '[0,1]'), cosine_distance('[3,4]', '[4,3]');
SELECT cosine_distance('[1,2]', '[0,0]'), '[0,0]'::vector <=> '[0,0]';
-- (float sums: the last digits depend on the summation order of the CPU's kernel)
SELECT round(cosine_distance(array_fill(0.1, ARRAY[1536])::vector, array_fill(0.111, ARRAY[1536])::vector)::numeric, 5);
SELECT round(cosine_distance(array_fill(0.1, ARRAY[1536])::vector, array_fill(-0.111, ARRAY[1536])::vector)::numeric, 5);
SELECT l1_distance('[0,0]', '[3,4]'), '[0,0]'::vector <+> '[3,4]';
SELECT l1_distance('[0,0]', '[0,1]'), '[1,-1]'::vector <+> '[-1,1]';
-- operators are commutative where the function is symmetric
SELECT oprname, oprcom::regoperator FROM pg_operator
WHERE oprleft = 'vector'::regtype AND oprright = 'vector'::regtype ORDER BY oprname;
-- results are float8, with float4 sums (pgvector)
SELECT pg_typeof('[1]'::vector <-> '[2]'), pg_typeof(inner_product('[1]', '[2]'));
SELECT round(('[0.1,0.2,0.3]'::vector <-> '[0.4,0.5,0.6]')::numeric, 6);
-- long vectors exercise the SIMD kernels and their tails; integer data keeps
-- the float sums exact, except for cosine, compared with a float8 reference
SELECT n, l2_distance(a, b) AS l2, vector_l2_squared_distance(a, b) AS l2sq, inner_product(a, b) AS ip,
       l1_distance(a, b) AS l1, abs(cosine_distance(a, b) - cos_ref) < 1e-6 AS cos_ok
FROM (SELECT n, array_agg(i::real ORDER BY i)::vector AS a, array_agg((n - 2 * i)::real ORDER BY i)::vector AS b,
             1 - sum(i * (n - 2 * i))::float8 / sqrt(sum(i * i)::float8 * sum((n - 2 * i) ^ 2)) AS cos_ref
      FROM generate_series(1, 67) n, generate_series(1, n) i WHERE n IN (1, 7, 8, 15, 16, 17, 31, 33, 64, 67)
      GROUP BY n) s
ORDER BY n;

-- norms and normalization
SELECT vector_dims('[1,2,3]'), vector_dims(array_fill(1, ARRAY[16000])::vector);
SELECT round(vector_norm('[1,1]')::numeric, 5), vector_norm('[3,4]'), vector_norm('[0,1]'), vector_norm('[0,0]');
SELECT l2_normalize('[3,4]'), l2_normalize('[3,0]'), l2_normalize('[0,0.1]');
SELECT l2_normalize('[0,0]'), l2_normalize('[1e-45]');
SELECT vector_norm(l2_normalize('[1,2,3,4,5]'))::real;
SELECT l2_normalize('[3e38,3e38]');

-- subvector: 1-based, clipped like substring
SELECT subvector('[1,2,3,4,5]', 1, 3), subvector('[1,2,3,4,5]', 3, 2);
SELECT subvector('[1,2,3,4,5]', -1, 3), subvector('[1,2,3,4,5]', 3, 9);
SELECT subvector('[1,2,3,4,5]', 5, 1), subvector('[1,2,3,4,5]', 1, 2147483647);
-- (an empty range is an error, see vector_errors)

-- binary_quantize
SELECT binary_quantize('[1,0,-1,0.5,-0,2,3,4,5,-6]');
SELECT binary_quantize('[0]'), length(binary_quantize(array_fill(1, ARRAY[17])::vector));

-- comparison: element by element, then the shorter first (like arrays)
SELECT '[1,2,3]'::vector < '[1,2,4]', '[1,2,3]'::vector <= '[1,2,3]', '[1,2,3]'::vector = '[1,2,3]';
SELECT '[1,2,3]'::vector <> '[1,2,3]', '[1,2,4]'::vector >= '[1,2,3]', '[1,2,4]'::vector > '[1,2,3]';
SELECT '[1,2]'::vector < '[1,2,3]', '[2]'::vector > '[1,9,9]', '[-0]'::vector = '[0]';
SELECT vector_cmp('[1,2]', '[1,3]'), vector_cmp('[1,3]', '[1,3]'), vector_cmp('[1,3,0]', '[1,3]');
SELECT vector_lt('[1]', '[2]'), vector_le('[2]', '[2]'), vector_eq('[1]', '[1,1]'),
       vector_ne('[1]', '[1,1]'), vector_ge('[2]', '[1]'), vector_gt('[1]', '[1]');

-- btree: ORDER BY, DISTINCT, GROUP BY, UNIQUE, index scans, merge joins
CREATE TABLE vec_o (id int, v vector);
INSERT INTO vec_o VALUES (1, '[3,1]'), (2, '[1,2]'), (3, '[1,2,0]'), (4, '[1,2]'), (5, '[-1,5]'),
  (6, '[2]'), (7, NULL), (8, '[0]');
SELECT v FROM vec_o ORDER BY v, id;
SELECT v FROM vec_o ORDER BY v DESC NULLS LAST, id;
SELECT DISTINCT v FROM vec_o ORDER BY v;
SELECT v, count(*) FROM vec_o GROUP BY v ORDER BY v;
SELECT count(DISTINCT v) FROM vec_o;
SELECT count(DISTINCT v) FROM (VALUES ('[0]'::vector), ('[-0]')) t(v);
CREATE UNIQUE INDEX vec_o_v_idx ON vec_o (v);
DELETE FROM vec_o WHERE id = 4;
CREATE UNIQUE INDEX vec_o_v_idx ON vec_o (v);
INSERT INTO vec_o VALUES (10, '[1,2]');
INSERT INTO vec_o VALUES (11, '[-0]');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM vec_o WHERE v = '[1,2]';
SELECT id FROM vec_o WHERE v = '[1,2]';
SELECT id FROM vec_o WHERE v < '[1,2]' ORDER BY v;
SELECT id FROM vec_o WHERE v BETWEEN '[0]' AND '[1,2,0]' ORDER BY v;
EXPLAIN (COSTS OFF) SELECT v FROM vec_o ORDER BY v;
RESET enable_seqscan;
SET enable_hashjoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT a.id, b.id FROM vec_o a JOIN vec_o b ON a.v = b.v;
SELECT a.id, b.id FROM vec_o a JOIN vec_o b ON a.v = b.v ORDER BY a.id;
RESET enable_hashjoin;
RESET enable_nestloop;
DROP TABLE vec_o;

-- nearest neighbours by sequential scan, every operator
CREATE TABLE vec_items (id int, embedding vector(3));
INSERT INTO vec_items VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[1,1,2]'), (4, '[-1,0,3]'), (5, '[0,0,0]');
SELECT id, embedding <-> '[1,1,1]' AS d FROM vec_items ORDER BY d, id;
SELECT id, embedding <#> '[1,1,1]' AS d FROM vec_items ORDER BY d, id;
SELECT id, round((embedding <=> '[1,1,1]')::numeric, 6) AS d FROM vec_items ORDER BY embedding <=> '[1,1,1]', id;
SELECT id, embedding <+> '[1,1,1]' AS d FROM vec_items ORDER BY d, id;
SELECT id FROM vec_items WHERE embedding <-> '[1,1,1]' < 1.5 ORDER BY id;
DROP TABLE vec_items;

-- NULL in, NULL out (all functions are strict)
SELECT l2_distance(NULL, '[1]'), '[1]'::vector + NULL, vector_dims(NULL), subvector(NULL, 1, 1);
