-- Every way to build or combine an invalid vector is an error with a precise
-- message and SQLSTATE (pgvector's where it has one), never a crash.

-- Runs a statement; returns its SQLSTATE and message, or 'ok'.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- text input (both parsers give the same errors)
CREATE TEMP TABLE bad_text (id serial, t text);
INSERT INTO bad_text (t) VALUES
  (''), ('   '), ('1,2,3'), ('{1,2,3}'), ('['), ('[,'), ('[]'), ('[ ]'), ('[1,2,3'),
  ('[1,2,3]9'), ('[1] [2]'), ('[1,]'), ('[1a]'), ('[1,,3]'), ('[1, ,3]'), ('[hello,1]'),
  ('[[1]]'), ('["1"]'), ('[true]'), ('[null]'), ('[1;2]'), ('[1 2]'),
  ('[NaN,1]'), ('[nan]'), ('[Infinity,1]'), ('[-Infinity,1]'), ('[inf]'),
  ('[4e38,1]'), ('[1, -4e38 ,2]'), ('[1e400]'), ('[3.4028236e38]'),
  ('[nan,1e39]'), ('[1e39,nan]');
SET vecext.text_parser = 'simdjson';
CREATE TEMP TABLE by_simdjson AS SELECT id, t, pg_temp.try(format('SELECT %L::vector', t)) AS r FROM bad_text;
SET vecext.text_parser = 'strtof';
CREATE TEMP TABLE by_strtof AS SELECT id, t, pg_temp.try(format('SELECT %L::vector', t)) AS r FROM bad_text;
RESET vecext.text_parser;
SELECT t, r FROM by_simdjson ORDER BY id;
SELECT count(*) AS differ FROM by_simdjson a JOIN by_strtof b USING (id) WHERE a.r IS DISTINCT FROM b.r;
DROP TABLE bad_text, by_simdjson, by_strtof;
-- the details
SELECT '1,2,3'::vector;
SELECT '[1,2,3]9'::vector;
SELECT '[4e38]'::vector;
-- more than 16000 dimensions
SELECT pg_temp.try(format('SELECT %L::vector', '[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']'));
SELECT vector_dims(('[' || array_to_string(array_fill(1, ARRAY[16000]), ',') || ']')::vector);
-- the developer GUC only takes its two values
SET vecext.text_parser = 'fast';

-- type modifier
SELECT '[1,2,3]'::vector(2);
SELECT '{"[1,2,3]"}'::vector(2)[];
SELECT '[1,2]'::vector(0);
SELECT '[1,2]'::vector(-1);
SELECT '[1,2]'::vector(16001);
SELECT '[1,2]'::vector(2, 3);
CREATE TABLE vec_t (v vector(3));
INSERT INTO vec_t VALUES ('[1,2]');
INSERT INTO vec_t VALUES (ARRAY[1,2,3,4]);
INSERT INTO vec_t VALUES ('[1,2,3]'::vector(3) || '[4]');
UPDATE vec_t SET v = '[1]';
DROP TABLE vec_t;

-- different dimensions
SELECT x AS stmt, pg_temp.try(x) AS result FROM (VALUES
  ($$SELECT '[1,2]'::vector + '[3]'$$),
  ($$SELECT '[1,2]'::vector - '[3]'$$),
  ($$SELECT '[1,2]'::vector * '[3]'$$),
  ($$SELECT '[1,2]'::vector <-> '[3]'$$),
  ($$SELECT '[1,2]'::vector <#> '[3]'$$),
  ($$SELECT '[1,2]'::vector <=> '[3]'$$),
  ($$SELECT '[1,2]'::vector <+> '[3]'$$),
  ($$SELECT l2_distance('[1,2]', '[3]')$$),
  ($$SELECT vector_l2_squared_distance('[1,2]', '[3]')$$),
  ($$SELECT inner_product('[1,2]', '[3]')$$),
  ($$SELECT vector_negative_inner_product('[1,2]', '[3]')$$),
  ($$SELECT cosine_distance('[1,2]', '[3]')$$),
  ($$SELECT l1_distance('[1,2]', '[3]')$$)
) s(x);

-- overflow and underflow of arithmetic
SELECT x AS stmt, pg_temp.try(x) AS result FROM (VALUES
  ($$SELECT '[3e38]'::vector + '[3e38]'$$),
  ($$SELECT '[-3e38]'::vector - '[3e38]'$$),
  ($$SELECT '[1e37]'::vector * '[1e37]'$$),
  ($$SELECT '[1e-37]'::vector * '[1e-37]'$$)
) s(x);
-- not errors (pgvector): distances of huge vectors overflow the float sums to
-- Infinity; the norm is summed in float8; tiny vectors normalize
SELECT '[3e38,3e38]'::vector <-> '[-3e38,-3e38]' AS l2, inner_product('[3e38]', '[3e38]') AS ip,
       '[3e38]'::vector <+> '[-3e38]' AS l1, vector_norm('[3e38,3e38]') AS norm,
       l2_normalize('[1e-45,0]') AS normalized;

-- concatenation and subvector
SELECT array_fill(1, ARRAY[8001])::vector || array_fill(1, ARRAY[8000])::vector;
SELECT vector_dims(array_fill(1, ARRAY[8000])::vector || array_fill(1, ARRAY[8000])::vector);
SELECT subvector('[1,2,3]', 1, 0);
SELECT subvector('[1,2,3]', 1, -1);
SELECT subvector('[1,2,3]', 4, 1);
SELECT subvector('[1,2,3]', 2147483647, 1);
SELECT subvector('[1,2,3]', -5, 3);
SELECT subvector('[1,2,3,4,5]', -2147483648, 2147483647);

-- casts from arrays
SELECT x AS stmt, pg_temp.try(x) AS result FROM (VALUES
  ($$SELECT '{{1,2},{3,4}}'::int[]::vector$$),
  ($$SELECT '{1,NULL,3}'::real[]::vector$$),
  ($$SELECT '{}'::real[]::vector$$),
  ($$SELECT '{NaN,1}'::real[]::vector$$),
  ($$SELECT '{Infinity}'::float8[]::vector$$),
  ($$SELECT '{-Infinity}'::real[]::vector$$),
  ($$SELECT '{1e39}'::float8[]::vector$$),
  ($$SELECT '{NaN}'::numeric[]::vector$$),
  ($$SELECT '{1e39}'::numeric[]::vector$$),
  ($$SELECT ARRAY[1,2,3]::vector(2)$$),
  ($$SELECT array_fill(1, ARRAY[16001])::vector$$),
  ($$SELECT '{1,2}'::text[]::vector$$),
  ($$SELECT '[1,2]'::vector::float8[]$$)
) s(x);

-- aggregates
SELECT avg(v) FROM unnest(ARRAY['[1,2]'::vector, '[3]']) v;
SELECT sum(v) FROM unnest(ARRAY['[1,2]'::vector, '[3]']) v;
SELECT avg(v) FROM unnest(ARRAY['[3e38]'::vector, '[3e38]']) v;
SELECT sum(v) FROM unnest(ARRAY['[3e38]'::vector, '[3e38]']) v;
SELECT vector_avg(array_agg(n)) FROM generate_series(1, 16002) n;
SELECT vector_avg('{}');
SELECT vector_avg('{{1,2}}');
SELECT vector_avg('{1,NULL}');
SELECT vector_accum('{1,2,3}', '[1]');
SELECT vector_combine('{1,2,3}', '{1,2}');

-- binary input (COPY BINARY files written byte by byte)
CREATE FUNCTION pg_temp.write_copy_file(path text, field bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  loid oid;
BEGIN
  -- signature, flags, header extension length; one tuple of one field; trailer
  loid := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
                        || '\x0001'::bytea || int4send(length(field)) || field || '\xffff'::bytea);
  PERFORM lo_export(loid, path);
  PERFORM lo_unlink(loid);
END $$;
SELECT current_setting('data_directory') || '/vecext_vector_errors.bin' AS binfile \gset
CREATE TABLE vec_b (v vector);
CREATE TABLE vec_b2 (v vector(2));
-- a valid one first: 2 dimensions, unused 0, 1.0 and -2.5
SELECT pg_temp.write_copy_file(:'binfile', '\x00020000' || float4send(1) || float4send(-2.5));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
SELECT * FROM vec_b;
-- 0 dimensions
SELECT pg_temp.write_copy_file(:'binfile', '\x00000000');
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- 20000 and 65535 dimensions claimed, no data: rejected before any allocation
SELECT pg_temp.write_copy_file(:'binfile', '\x4e200000');
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
SELECT pg_temp.write_copy_file(:'binfile', '\xffff0000');
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- 16000 dimensions claimed, 8 bytes of data
SELECT pg_temp.write_copy_file(:'binfile', '\x3e800000' || float4send(1) || float4send(2));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- unused is not 0
SELECT pg_temp.write_copy_file(:'binfile', '\x00010001' || float4send(1));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- too short and too long for the dimensions
SELECT pg_temp.write_copy_file(:'binfile', '\x00030000' || float4send(1) || float4send(2));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
SELECT pg_temp.write_copy_file(:'binfile', '\x00010000' || float4send(1) || float4send(2));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
SELECT pg_temp.write_copy_file(:'binfile', '\x00010000' || '\x3f80'::bytea);
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- truncated header
SELECT pg_temp.write_copy_file(:'binfile', '\x00');
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- non-finite elements
SELECT pg_temp.write_copy_file(:'binfile', '\x00020000' || float4send(1) || float4send('NaN'));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
SELECT pg_temp.write_copy_file(:'binfile', '\x00010000' || float4send('-Infinity'));
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
-- the type modifier
SELECT pg_temp.write_copy_file(:'binfile', '\x00030000' || float4send(1) || float4send(2) || float4send(3));
COPY vec_b2 FROM :'binfile' WITH (FORMAT binary);
COPY vec_b FROM :'binfile' WITH (FORMAT binary);
SELECT * FROM vec_b ORDER BY v;
DROP TABLE vec_b, vec_b2;
