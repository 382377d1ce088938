-- The vector type: text input and output, type modifier, casts, binary I/O.

-- text input: pgvector's acceptance rules
SELECT '[1,2,3]'::vector;
SELECT '[-1,-2,-3]'::vector;
SELECT '[1.,2.,3.]'::vector;
SELECT ' [ 1,  2 ,    3  ] '::vector;
SELECT E'\t\n[1,\r2]\x0b\f'::vector;
SELECT '[.5,-.5,+1,01]'::vector;
SELECT '[1e3,1E-3,1.5e+38,-1.5e-38]'::vector;
SELECT '[0x10,0x1p-2]'::vector;
SELECT '[1.23456]'::vector;
SELECT '[1e-46,-1e-50]'::vector;
SELECT '[-0,0,-0.0]'::vector;
SELECT '[3.4028235e38,-3.4028235e38]'::vector;

-- text output: the shortest text that reads back as the same float4, in
-- float4out's layout
SELECT '[0.1,0.0001,0.00001,123456,1234567,100000,1000000]'::vector;
SELECT '[1.1754944e-38,1e-45,16777217]'::vector;
SELECT '[0.333333333333333333,2.718281828459045]'::vector;

-- vector_out agrees with float4out for many floats (normal, subnormal, large)
SELECT count(*) AS mismatches
FROM (SELECT (ARRAY[x])::real[] AS a, x
      FROM (SELECT ((random() - 0.5) * 10 ^ (random() * 76 - 38))::real AS x
            FROM generate_series(1, 20000)
            UNION ALL
            SELECT (n * 1.401298464324817e-45)::real FROM generate_series(1, 1000) n
            UNION ALL
            SELECT (10::float8 ^ e)::real FROM generate_series(-45, 38) e
            UNION ALL
            SELECT (2::float8 ^ e)::real FROM generate_series(-149, 127) e) s
     ) t
WHERE a::vector::text <> '[' || x::text || ']';

-- and reads back exactly
SELECT count(*) AS mismatches
FROM (SELECT ARRAY[((random() - 0.5) * 10 ^ (random() * 76 - 38))::real,
                   (random() * 2 - 1)::real] AS a
      FROM generate_series(1, 20000)) t
WHERE a::vector::text::vector::real[] <> a;

-- both text parsers (vecext.text_parser) give the same vectors
CREATE TEMP TABLE texts AS
SELECT n, '[' || string_agg(x::text, ',') || ']' AS t
FROM (SELECT n, ((random() - 0.5) * 10 ^ (random() * 20 - 10))::real AS x
      FROM generate_series(1, 500) n, generate_series(1, 20)) s
GROUP BY n;
INSERT INTO texts VALUES (1001, '[1.,.5,+2,0x10, 1e3 ]'), (1002, '[-0,0]'),
  (1003, '[1.00000005960464477539062500001]'), (1004, '[1.000000059604644775390625]');
SET vecext.text_parser = 'strtof';
CREATE TEMP TABLE parsed_strtof AS SELECT n, t::vector AS v FROM texts;
SET vecext.text_parser = 'simdjson';
CREATE TEMP TABLE parsed_simdjson AS SELECT n, t::vector AS v FROM texts;
RESET vecext.text_parser;
SELECT count(*) AS rows, count(*) FILTER (WHERE vector_send(a.v) <> vector_send(b.v)) AS mismatches
FROM parsed_strtof a JOIN parsed_simdjson b USING (n);
SELECT v FROM parsed_simdjson WHERE n > 1000 ORDER BY n;
DROP TABLE texts, parsed_strtof, parsed_simdjson;
SHOW vecext.text_parser;

-- type modifier
SELECT '[1,2,3]'::vector(3);
SELECT '[1,2,3]'::vector(3)::vector;
SELECT pg_catalog.format_type('vector'::regtype, 3), pg_catalog.format_type('vector'::regtype, -1);
CREATE TABLE vec_t (id int, v vector(3));
\d vec_t
INSERT INTO vec_t VALUES (1, '[1,2,3]'), (2, '[4,5,6]');
INSERT INTO vec_t VALUES (3, ARRAY[7,8,9]);
INSERT INTO vec_t VALUES (4, ARRAY[1.5,2.5,3.5]::numeric[]);
INSERT INTO vec_t VALUES (5, NULL);
SELECT * FROM vec_t ORDER BY id;
SELECT unnest('{"[1,2,3]", "[4,5,6]"}'::vector[]);
SELECT '{"[1,2,3]"}'::vector(3)[];

-- storage: a varlena of 8 header bytes plus 4 per dimension, STORAGE external
SELECT pg_column_size('[1,2,3]'::vector);
SELECT typstorage, typlen, typalign FROM pg_type WHERE oid = 'vector'::regtype;
CREATE TABLE vec_big (v vector);
INSERT INTO vec_big SELECT array_fill(0.5::real, ARRAY[16000])::vector;
SELECT vector_dims(v), pg_column_size(v), v = array_fill(0.5::real, ARRAY[16000])::vector AS same FROM vec_big;
DROP TABLE vec_big;

-- casts
SELECT ARRAY[1,2,3]::vector;
SELECT ARRAY[1.5,2.5,3.5]::real[]::vector;
SELECT ARRAY[1.5,2.5,3.5]::double precision[]::vector;
SELECT ARRAY[1.5,2.5,3.5]::numeric[]::vector;
SELECT ARRAY[1,2,3]::vector(3);
SELECT '[1,2,3]'::vector::real[];
SELECT '[1.5,-2.25]'::vector::float4[];
SELECT array_to_vector(ARRAY[1,2], -1, false), vector_to_float4('[1,2]', -1, false);
SELECT array_fill(1.0::float8, ARRAY[3])::vector;
SELECT '{1,2,3}'::real[]::vector = '[1,2,3]'::vector AS same;
SELECT castcontext, castsource::regtype, casttarget::regtype FROM pg_cast
WHERE castsource = 'vector'::regtype OR casttarget = 'vector'::regtype ORDER BY 2::text, 3::text;

-- binary I/O: vector_send, and COPY BINARY round trips through vector_recv
SELECT vector_send('[1,2,3]');
SELECT vector_send('[-0,1.5]');
CREATE TABLE vec_src (id int, v vector);
INSERT INTO vec_src VALUES (1, '[1,2,3]'), (2, '[-0,0.1,-3.4028235e+38]'), (3, '[1e-45]'), (4, NULL);
INSERT INTO vec_src SELECT 10 + n, array_fill((n * 0.37)::real, ARRAY[n * 50])::vector FROM generate_series(1, 20) n;
SELECT current_setting('data_directory') || '/vecext_vector_type.bin' AS binfile \gset
COPY vec_src TO :'binfile' WITH (FORMAT binary);
CREATE TABLE vec_dst (LIKE vec_src);
COPY vec_dst FROM :'binfile' WITH (FORMAT binary);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE s.v IS NOT DISTINCT FROM d.v
                          AND vector_send(s.v) IS NOT DISTINCT FROM vector_send(d.v)) AS identical
FROM vec_src s JOIN vec_dst d USING (id);
SELECT id, v FROM vec_dst WHERE id < 10 ORDER BY id;
-- into a vector(3) column: the type modifier is checked on receive
CREATE TABLE vec_dst3 (id int, v vector(3));
COPY vec_dst3 FROM :'binfile' WITH (FORMAT binary);
DROP TABLE vec_src, vec_dst, vec_dst3, vec_t;
