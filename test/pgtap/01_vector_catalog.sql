-- The catalog contract of the vector type: every function's signature,
-- result type, volatility, strictness, parallel safety and security; the
-- type, its operators, casts, aggregates and btree operator class.
-- The runner creates the pgtap and vecext extensions beforehand.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;

CREATE TEMP TABLE fns (name name, args text[], returns text);
INSERT INTO fns VALUES
  ('vector_in', '{cstring,oid,integer}', 'vector'),
  ('vector_out', '{vector}', 'cstring'),
  ('vector_typmod_in', '{cstring[]}', 'integer'),
  ('vector_typmod_out', '{integer}', 'cstring'),
  ('vector_recv', '{internal,oid,integer}', 'vector'),
  ('vector_send', '{vector}', 'bytea'),
  ('l2_distance', '{vector,vector}', 'double precision'),
  ('inner_product', '{vector,vector}', 'double precision'),
  ('cosine_distance', '{vector,vector}', 'double precision'),
  ('l1_distance', '{vector,vector}', 'double precision'),
  ('vector_dims', '{vector}', 'integer'),
  ('vector_norm', '{vector}', 'double precision'),
  ('l2_normalize', '{vector}', 'vector'),
  ('binary_quantize', '{vector}', 'bit'),
  ('subvector', '{vector,integer,integer}', 'vector'),
  ('vector_add', '{vector,vector}', 'vector'),
  ('vector_sub', '{vector,vector}', 'vector'),
  ('vector_mul', '{vector,vector}', 'vector'),
  ('vector_concat', '{vector,vector}', 'vector'),
  ('vector_lt', '{vector,vector}', 'boolean'),
  ('vector_le', '{vector,vector}', 'boolean'),
  ('vector_eq', '{vector,vector}', 'boolean'),
  ('vector_ne', '{vector,vector}', 'boolean'),
  ('vector_ge', '{vector,vector}', 'boolean'),
  ('vector_gt', '{vector,vector}', 'boolean'),
  ('vector_cmp', '{vector,vector}', 'integer'),
  ('vector_l2_squared_distance', '{vector,vector}', 'double precision'),
  ('vector_negative_inner_product', '{vector,vector}', 'double precision'),
  ('vector_accum', '{double precision[],vector}', 'double precision[]'),
  ('vector_combine', '{double precision[],double precision[]}', 'double precision[]'),
  ('vector_avg', '{double precision[]}', 'vector'),
  ('vector', '{vector,integer,boolean}', 'vector'),
  ('array_to_vector', '{integer[],integer,boolean}', 'vector'),
  ('array_to_vector', '{real[],integer,boolean}', 'vector'),
  ('array_to_vector', '{double precision[],integer,boolean}', 'vector'),
  ('array_to_vector', '{numeric[],integer,boolean}', 'vector'),
  ('vector_to_float4', '{vector,integer,boolean}', 'real[]');

CREATE TEMP TABLE ops (name name, returns text, fn name, commutator text);
INSERT INTO ops VALUES
  ('<->', 'double precision', 'l2_distance', '<->'),
  ('<#>', 'double precision', 'vector_negative_inner_product', '<#>'),
  ('<=>', 'double precision', 'cosine_distance', '<=>'),
  ('<+>', 'double precision', 'l1_distance', '<+>'),
  ('+', 'vector', 'vector_add', '+'),
  ('-', 'vector', 'vector_sub', NULL),
  ('*', 'vector', 'vector_mul', '*'),
  ('||', 'vector', 'vector_concat', NULL),
  ('<', 'boolean', 'vector_lt', '>'),
  ('<=', 'boolean', 'vector_le', '>='),
  ('=', 'boolean', 'vector_eq', '='),
  ('<>', 'boolean', 'vector_ne', '<>'),
  ('>=', 'boolean', 'vector_ge', '<='),
  ('>', 'boolean', 'vector_gt', '<');

CREATE TEMP TABLE casts (source text, target text, fn name, context text);
INSERT INTO casts VALUES
  ('vector', 'vector', 'vector', 'implicit'),
  ('vector', 'real[]', 'vector_to_float4', 'implicit'),
  ('integer[]', 'vector', 'array_to_vector', 'assignment'),
  ('real[]', 'vector', 'array_to_vector', 'assignment'),
  ('double precision[]', 'vector', 'array_to_vector', 'assignment'),
  ('numeric[]', 'vector', 'array_to_vector', 'assignment');

-- The functions' pg_proc rows (in the schema of the extension).
CREATE TEMP VIEW fn_procs AS
SELECT f.name, f.args, p.*
FROM fns f
JOIN pg_proc p ON p.proname = f.name
  AND p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'vecext')
  AND pg_catalog.oidvectortypes(p.proargtypes) = array_to_string(f.args, ', ');

SELECT plan((SELECT count(*)::int * 6 FROM fns) + (SELECT count(*)::int * 3 FROM ops)
            + (SELECT count(*)::int * 2 FROM casts) + 16);

-- type
SELECT has_type('vector');
SELECT is((SELECT typstorage::text FROM pg_type WHERE typname = 'vector'), 'e', 'vector has STORAGE external');
SELECT is((SELECT typlen::int FROM pg_type WHERE typname = 'vector'), -1, 'vector is a varlena');
SELECT is((SELECT typmodin::text || ' ' || typmodout::text FROM pg_type WHERE typname = 'vector'),
          'vector_typmod_in vector_typmod_out', 'vector has typmod in/out functions');
SELECT is((SELECT typinput::text || ' ' || typoutput::text || ' ' || typreceive::text || ' ' || typsend::text
           FROM pg_type WHERE typname = 'vector'),
          'vector_in vector_out vector_recv vector_send', 'vector has text and binary I/O functions');

-- functions: signature, result, volatility, strictness, parallel safety, security
SELECT has_function(name, args, format('function %s(%s) exists', name, array_to_string(args, ', '))) FROM fns;
SELECT function_returns(name, args, returns) FROM fns;
SELECT volatility_is(name, args, 'immutable') FROM fns;
SELECT is_strict(name, args) FROM fns;
SELECT isnt_definer(name, args) FROM fns;
SELECT is((SELECT proparallel::text FROM fn_procs p WHERE p.name = f.name AND p.args = f.args), 's',
          format('function %s(%s) is parallel safe', name, array_to_string(args, ', ')))
FROM fns f;

-- aggregates
SELECT is_aggregate('avg', ARRAY['vector']);
SELECT is_aggregate('sum', ARRAY['vector']);
SELECT is((SELECT array_agg(p.proparallel::text ORDER BY p.proname)
           FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
           WHERE p.proargtypes = ARRAY['vector'::regtype]::oidvector),
          ARRAY['s', 's'], 'avg(vector) and sum(vector) are parallel safe');
SELECT is((SELECT array_agg(aggcombinefn::text ORDER BY p.proname)
           FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
           WHERE p.proargtypes = ARRAY['vector'::regtype]::oidvector),
          ARRAY['vector_combine', 'vector_add'], 'avg(vector) and sum(vector) have combine functions');

-- operators: existence and result, implementing function, commutator
SELECT has_operator('vector', name, 'vector', returns) FROM ops;
SELECT is((SELECT oprcode::text FROM pg_operator
           WHERE oprname = o.name AND oprleft = 'vector'::regtype AND oprright = 'vector'::regtype),
          o.fn::text, format('operator %s is %s', o.name, o.fn))
FROM ops o;
SELECT is((SELECT c.oprname::text FROM pg_operator p LEFT JOIN pg_operator c ON c.oid = p.oprcom
           WHERE p.oprname = o.name AND p.oprleft = 'vector'::regtype AND p.oprright = 'vector'::regtype),
          o.commutator, format('operator %s has commutator %s', o.name, coalesce(o.commutator, 'none')))
FROM ops o;

-- casts
SELECT has_cast(source, target, fn::text) FROM casts;
SELECT cast_context_is(source, target, context) FROM casts;

-- btree operator class
SELECT has_opclass('vector_ops');
SELECT is((SELECT opcdefault FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
           WHERE opcname = 'vector_ops' AND amname = 'btree'), true, 'vector_ops is the default btree opclass');
SELECT is((SELECT array_agg(amopstrategy::text || ' ' || amopopr::regoperator::text ORDER BY amopstrategy)
           FROM pg_amop ao JOIN pg_opfamily f ON f.oid = ao.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
           WHERE f.opfname = 'vector_ops' AND am.amname = 'btree'),
          ARRAY['1 <(vector,vector)', '2 <=(vector,vector)', '3 =(vector,vector)',
                '4 >=(vector,vector)', '5 >(vector,vector)'],
          'vector_ops has the five btree strategies');
SELECT is((SELECT array_agg(amprocnum::text || ' ' || amproc::regprocedure::text)
           FROM pg_amproc ap JOIN pg_opfamily f ON f.oid = ap.amprocfamily JOIN pg_am am ON am.oid = f.opfmethod
           WHERE f.opfname = 'vector_ops' AND am.amname = 'btree'),
          ARRAY['1 vector_cmp(vector,vector)'], 'vector_ops compares with vector_cmp');

-- the extension as a whole: no SECURITY DEFINER function, nothing volatile
-- or parallel-unsafe among the vector functions
SELECT is((SELECT count(*)::int FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
           WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
             AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vecext')
             AND p.prosecdef), 0, 'no function of the extension is SECURITY DEFINER');
SELECT is((SELECT count(*)::int FROM fn_procs), (SELECT count(*)::int FROM fns),
          'every listed function is in the extension''s schema');
SELECT is((SELECT count(*)::int FROM fn_procs p
           WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'e'
                               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vecext'))),
          0, 'every listed function belongs to the extension');

SELECT * FROM finish();
ROLLBACK;
