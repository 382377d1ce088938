-- avg(vector) and sum(vector), serial and parallel.

SELECT avg(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]']) v;
SELECT avg(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]', NULL]) v;
SELECT avg(v) FROM unnest(ARRAY[]::vector[]) v;
SELECT avg(v) FROM unnest(ARRAY[NULL]::vector[]) v;
SELECT avg(v) FROM unnest(ARRAY['[1]'::vector, '[2]', '[2]']) v;
SELECT sum(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]']) v;
SELECT sum(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]', NULL]) v;
SELECT sum(v) FROM unnest(ARRAY[]::vector[]) v;
SELECT pg_typeof(avg(v)), pg_typeof(sum(v)) FROM unnest(ARRAY['[1]'::vector]) v;

-- the state: {count, sum_1, ..., sum_dim} in float8, so sums do not lose
-- float4 precision, and the average is rounded once
SELECT vector_accum('{0}', '[1,2]');
SELECT vector_accum(vector_accum('{0}', '[1,2]'), '[0.5,0.25]');
SELECT vector_combine('{0}', '{0}'), vector_combine('{2,3,4}', '{0}'), vector_combine('{0}', '{1,5,6}');
SELECT vector_combine('{2,3,4}', '{1,5,6}');
SELECT vector_avg('{4,2,6}'), vector_avg('{0}');
SELECT avg(v) FROM (SELECT '[16777216]'::vector v UNION ALL SELECT '[1]' UNION ALL SELECT '[1]') s;
SELECT sum(v) FROM (SELECT '[16777216]'::vector v UNION ALL SELECT '[1]' UNION ALL SELECT '[1]') s;

-- GROUP BY, FILTER, window
CREATE TABLE vec_a (g int, v vector(3));
INSERT INTO vec_a SELECT n % 3, ARRAY[n, n * 2, -n]::vector FROM generate_series(1, 30) n;
SELECT g, avg(v), sum(v), count(*) FROM vec_a GROUP BY g ORDER BY g;
SELECT avg(v) FILTER (WHERE g = 0), sum(v) FILTER (WHERE g = 9) FROM vec_a;
SELECT g, sum(v) OVER (ORDER BY g, v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
FROM vec_a WHERE v < '[4]' ORDER BY g, v;
SELECT g, avg(v) OVER (PARTITION BY g) FROM vec_a WHERE v < '[7]' ORDER BY g, v;
SELECT avg(DISTINCT v), sum(DISTINCT v) FROM (SELECT v FROM vec_a UNION ALL SELECT v FROM vec_a) s;

-- the aggregates are parallel safe with combine functions
SELECT aggfnoid::regprocedure, aggtransfn, aggcombinefn, aggfinalfn, aggtranstype::regtype, agginitval
FROM pg_aggregate WHERE aggfnoid IN ('avg(vector)'::regprocedure, 'sum(vector)'::regprocedure)
ORDER BY 1::text;
SELECT proname, proparallel FROM pg_proc WHERE oid IN ('avg(vector)'::regprocedure, 'sum(vector)'::regprocedure)
ORDER BY 1;

-- a parallel plan gives the same result as a serial one
CREATE TABLE vec_p (v vector(4));
INSERT INTO vec_p SELECT ARRAY[n % 7, n % 11, (n % 13) * 0.5, 1]::vector FROM generate_series(1, 100000) n;
ANALYZE vec_p;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vec_p;
SELECT avg(v), sum(v) FROM vec_p;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vec_p;
SELECT avg(v), sum(v) FROM vec_p;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE vec_a, vec_p;
