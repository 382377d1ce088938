-- Filtered hnsw search on jsonb metadata: the signatures the index stores and
-- the filter it evaluates on them, end to end through the debug functions.
-- The filter answers 'no' (the row cannot match) or 'maybe' (the executor
-- rechecks). Every case shows the real operator next to the filter: 'no'
-- must never appear where the operator is true.

-- signatures: 3 bytes of header, 4 per string/bool/null, 6 per number
SELECT hnsw_metadata_signature('{"tenant": 7, "lang": "en", "tags": ["a", "b"]}');
SELECT m, length(hnsw_metadata_signature(m::jsonb)) AS bytes
FROM (VALUES ('{}'), ('{"a": "x"}'), ('{"a": 1}'), ('{"a": {"b": 1}}'), ('{"a": {}}'), ('{"a": []}'),
             ('{"tags": ["a", "b", "c", "a"]}'), ('{"a": null, "b": true, "c": false}'),
             ('[1, "x", {"k": "v"}]'), ('"scalar"'), ('42'),
             ('{"tenant": 7, "lang": "en", "year": 2021, "tags": ["a", "b"], "score": 0.73, "draft": false}')) v(m);
-- SQL NULL metadata has its own signature, which no filter matches
SELECT hnsw_metadata_signature(NULL);
-- numbers are compared as numbers: 1, 1.0, 1e0 and 10e-1 give one signature
SELECT count(DISTINCT hnsw_metadata_signature(format('{"a": %s}', n)::jsonb)) AS signatures
FROM unnest(ARRAY['1', '1.0', '1e0', '10e-1', '1.000']) n;
-- float8 numbers (wide_numbers) take 10 bytes
SELECT length(hnsw_metadata_signature('{"a": 1, "b": 2}', 256, false)) AS narrow,
       length(hnsw_metadata_signature('{"a": 1, "b": 2}', 256, true)) AS wide;
-- a document over max_bytes is stored as "truncated" (1 byte): never excluded
SELECT length(hnsw_metadata_signature(d, 256)) AS at_256, length(hnsw_metadata_signature(d, 2048)) AS at_2048,
       hnsw_metadata_signature(d, 256) AS truncated
FROM (SELECT jsonb_build_object('tags', jsonb_agg('tag' || i)) AS d FROM generate_series(1, 100) i) s;
SELECT hnsw_filter_matches(d, '{"tags": ["nope"]}') AS filter, d @> '{"tags": ["nope"]}' AS real
FROM (SELECT jsonb_build_object('tags', jsonb_agg('tag' || i)) AS d FROM generate_series(1, 100) i) s;
SELECT hnsw_metadata_signature('{}', 15);
SELECT hnsw_metadata_signature('{}', 2049);

-- containment (@>)
SELECT d, q, d @> q AS real, hnsw_filter_matches(d, q) AS filter
FROM (VALUES
  ('{"tenant": 7}'::jsonb, '{"tenant": 7}'::jsonb),
  ('{"tenant": 7}', '{"tenant": 7.0}'),
  ('{"tenant": 7}', '{"tenant": 8}'),
  ('{"tenant": 7}', '{"tenant": "7"}'),
  ('{"tenant": "7"}', '{"tenant": 7}'),
  ('{"tenant": 7}', '{"other": 7}'),
  ('{"tenant": 7}', '{}'),
  ('{"a": null}', '{"a": null}'),
  ('{"a": 1}', '{"a": null}'),
  ('{"b": null}', '{"a": null}'),
  ('{"a": true}', '{"a": false}'),
  ('{"a": {"b": {"c": "x"}}}', '{"a": {"b": {"c": "x"}}}'),
  ('{"a": {"b": {"c": "x"}}}', '{"a": {"b": {}}}'),
  ('{"a": {"b": {"c": "x"}}}', '{"a": {"b": {"c": "y"}}}'),
  ('{"a": {"b": {"c": "x"}}}', '{"a": {"c": "x"}}'),
  ('{"a": {"b": 1}}', '{"a": {}}'),
  ('{"a": {"b": 1}}', '{"a": []}'),
  ('{"a": 1}', '{"a": {}}'),
  ('{"tags": ["a", "b"]}', '{"tags": ["b"]}'),
  ('{"tags": ["a", "b"]}', '{"tags": ["b", "a", "a"]}'),
  ('{"tags": ["a", "b"]}', '{"tags": ["c"]}'),
  ('{"tags": ["a", "b"]}', '{"tags": []}'),
  ('{"tags": ["a", "b"]}', '{"tags": "a"}'),
  ('{"tags": "a"}', '{"tags": ["a"]}'),
  ('{"tags": [["a"]]}', '{"tags": ["a"]}'),
  ('{"items": [{"id": 1, "q": 2}, {"id": 3}]}', '{"items": [{"id": 3}]}'),
  ('{"items": [{"id": 1, "q": 2}, {"id": 3}]}', '{"items": [{"id": 1, "q": 2}]}'),
  ('{"items": [{"id": 1, "q": 2}, {"id": 3}]}', '{"items": [{"id": 3, "q": 2}]}'),
  ('{"items": [{"id": 1, "q": 2}, {"id": 3}]}', '{"items": [{"id": 2}]}'),
  ('[1, 2, "x"]', '[2]'),
  ('[1, 2, "x"]', '2'),
  ('[1, 2, "x"]', '"x"'),
  ('[1, 2, "x"]', '[3]'),
  ('"x"', '"x"'),
  ('"x"', '["x"]'),
  ('{"a": 1}', '[]'),
  ('{"n": 100000001}', '{"n": 100000001}'),
  ('{"n": 100000001}', '{"n": 100000002}'),
  ('{"n": 0.1}', '{"n": 0.10}'),
  ('{"n": 0.1}', '{"n": 0.2}'),
  ('{"n": -0}', '{"n": 0}'),
  ('{"n": 1e40}', '{"n": 1e40}'),
  ('{"n": 1e40}', '{"n": 2e40}'),
  ('{"s": "ü"}', '{"s": "ü"}'),
  ('{"s": "a"}', '{"s": "A"}'),
  ('{"a.b": 1}', '{"a": {"b": 1}}')) v(d, q);

-- key existence (?, ?|, ?&): top-level keys, or strings of a top-level array
SELECT d, k, d ? k AS real, hnsw_filter_matches_keys(d, ARRAY[k], '?') AS filter
FROM (VALUES
  ('{"a": 1, "b": {"c": 2}}'::jsonb, 'a'), ('{"a": 1, "b": {"c": 2}}', 'b'), ('{"a": 1, "b": {"c": 2}}', 'c'),
  ('{"a": 1, "b": {"c": 2}}', 'x'), ('{"a": null}', 'a'), ('{"a": "x"}', 'x'),
  ('["x", "y", 1]', 'x'), ('["x", "y", 1]', '1'), ('["x", "y", 1]', 'z'), ('[{"x": 1}]', 'x'), ('[["x"]]', 'x'),
  ('"x"', 'x'), ('"x"', 'y'), ('1', '1'), ('{}', ''), ('{"": 0}', '')) v(d, k);
SELECT d, k, d ?| k AS real_any, hnsw_filter_matches_keys(d, k, '?|') AS filter_any,
       d ?& k AS real_all, hnsw_filter_matches_keys(d, k, '?&') AS filter_all
FROM (VALUES
  ('{"a": 1, "b": 2}'::jsonb, '{a,b}'::text[]), ('{"a": 1, "b": 2}', '{a,x}'), ('{"a": 1, "b": 2}', '{x,y}'),
  ('{"a": 1, "b": 2}', '{}'), ('{"a": 1, "b": 2}', '{a,NULL}'), ('{"a": 1, "b": 2}', '{NULL}'),
  ('["a", "b"]', '{a,b}'), ('["a", "b"]', '{b,c}')) v(d, k);

-- containment of any element (metadata @> ANY(array): an index scan key
-- over an array, when the access method searches arrays)
SELECT d, q, d @> ANY(q) AS real, hnsw_filter_matches_any(d, q) AS filter
FROM (VALUES ('{"a": 1}'::jsonb, '{}'::jsonb[]), ('{"a": 1}', ARRAY['{"a": 2}', '{"a": 1}']::jsonb[]),
             ('{"a": 1}', ARRAY['{"a": 2}', '{"b": 1}']::jsonb[]), ('{"a": 1}', ARRAY[NULL, '{"a": 1}']::jsonb[]),
             ('{"a": 1}', ARRAY[NULL]::jsonb[]), ('{"a": 1}', NULL), (NULL, ARRAY['{}']::jsonb[])) v(d, q);

-- jsonpath: @@ (the predicate is true) and @? (the path yields an item).
-- Lax paths reach values through arrays; strict paths reach fewer. Forms the
-- index cannot reduce to stored values give 'maybe'.
SELECT d, p, d @@ p AS real_match, hnsw_filter_matches_path(d, p) AS filter_match,
       d @? p AS real_exists, hnsw_filter_matches_path(d, p, '@?') AS filter_exists
FROM (VALUES
  ('{"a": 1}'::jsonb, '$.a == 1'::jsonpath),
  ('{"a": 1}', '$.a == 2'),
  ('{"a": 1.0}', '$.a == 1'),
  ('{"a": "1"}', '$.a == 1'),
  ('{"a": 1}', '$.a == "1"'),
  ('{"a": "x"}', '$.a == "x"'),
  ('{"a": "x"}', '$.a == "y"'),
  ('{"b": "x"}', '$.a == "x"'),
  ('{"a": null}', '$.a == null'),
  ('{"a": 1}', '$.a == null'),
  ('{"a": {}}', '$.a == null'),
  ('{"a": {}}', '$.a != null'),
  ('{"b": 1}', '$.a != null'),
  ('{"a": 1}', '$.a != 1'),
  ('{"a": 2}', '$.a != 1'),
  ('{"a": null}', '$.a != 1'),
  ('{"a": "x"}', '$.a != 1'),
  ('{"a": "x"}', '$.a != "x"'),
  ('{"a": true}', '$.a == true'),
  ('{"a": true}', '$.a == false'),
  ('{"a": true}', '$.a > false'),
  ('{"a": false}', '$.a > false'),
  ('{"a": null}', '$.a < null'),
  ('{"a": null}', '$.a <= null'),
  ('{"a": 5}', '$.a > 4'),
  ('{"a": 5}', '$.a > 5'),
  ('{"a": 5}', '$.a >= 5'),
  ('{"a": 5}', '$.a < 5.5'),
  ('{"a": 5}', '$.a <= -5'),
  ('{"a": 5}', '4 < $.a'),
  ('{"a": 5}', '6 < $.a'),
  ('{"a": 0.30000000000000004}', '$.a > 0.3'),
  ('{"a": 0.3}', '$.a > 0.30000000000000004'),
  ('{"a": 16777217}', '$.a > 16777216'),
  ('{"a": "b"}', '$.a < "c"'),
  ('{"a": [1, 5]}', '$.a > 4'),
  ('{"a": [1, 5]}', '$.a > 5'),
  ('{"a": [[5]]}', '$.a > 4'),
  ('{"a": [1, 5]}', 'strict $.a > 4'),
  ('{"a": [1, 5]}', 'strict $.a[*] > 4'),
  ('{"a": [1, 5]}', '$.a[0] == 5'),
  ('{"a": [1, 5]}', '$.a[0] == 7'),
  ('{"a": [1, 5]}', '$.a[last] == 5'),
  ('{"a": [1, 5]}', '$.a[1 to 2] == 5'),
  ('{"a": {"b": 2}}', '$.a.b == 2'),
  ('{"a": [{"b": 2}, {"b": 3}]}', '$.a.b == 3'),
  ('{"a": [{"b": 2}, {"b": 3}]}', '$.a[*].b == 4'),
  ('{"a": [{"b": 2}, {"b": 3}]}', '$.a ? (@.b == 3)'),
  ('{"a": [{"b": 2}, {"b": 3}]}', '$.a ? (@.b == 4)'),
  ('{"a": [{"b": 2, "c": "x"}]}', '$.a ? (@.b > 1 && @.c == "x")'),
  ('{"a": [{"b": 2, "c": "x"}]}', '$.a ? (@.b > 2 && @.c == "x")'),
  ('{"a": [{"b": 2, "c": "x"}]}', '$.a ? (@.b > 2 || @.c == "x")'),
  ('{"a": [{"b": 2, "c": "x"}]}', '$.a ? (@.b > 2 || @.c == "y")'),
  ('{"a": [1, 7]}', '$.a ? (@ > 5)'),
  ('{"a": [1, 7]}', '$.a ? (@ > 7)'),
  ('{"a": [{"b": 2}], "c": 1}', '$.a ? (@.b == 2 && $.c == 1)'),
  ('{"a": [{"b": 2}], "c": 1}', '$.a ? (@.b == 2 && $.c == 2)'),
  ('{"a": [{"b": 2}]}', '$.a ? (@.b == 2).b == 2'),
  ('{"a": [{"b": 2}]}', '$.a ? (@.b == 2).b == 3'),
  ('{"a": [{"b": 2}]}', 'exists($.a ? (@.b == 2))'),
  ('{"a": [{"b": 2}]}', 'exists($.a ? (@.b == 5))'),
  ('{"a": 1}', 'exists($.a)'),
  ('{"a": 1}', 'exists($.b)'),
  ('{"a": 1}', '$.a == 1 && $.b == 1'),
  ('{"a": 1}', '$.a == 1 || $.b == 1'),
  ('{"a": 1}', '$.a == 2 || $.b == 1'),
  ('{"a": 1}', '!($.a == 2)'),
  ('{"a": 1}', '!($.a == 1)'),
  ('{"a": 1}', '($.a == 2) is unknown'),
  ('{"a": "x"}', '($.a == 2) is unknown'),
  ('{"a": "xyz"}', '$.a starts with "x"'),
  ('{"a": "xyz"}', '$.b starts with "x"'),
  ('{"a": "xyz"}', '$.a like_regex "y"'),
  ('{"a": "xyz"}', '$.b like_regex "y"'),
  ('{"a": 1}', '$.a + 1 == 2'),
  ('{"a": 1}', '$.b + 1 == 2'),
  ('{"a": 1}', '-$.a == -1'),
  ('{"a": 1}', '-$.b == -1'),
  ('{"a": 1, "b": 1}', '$.a == $.b'),
  ('{"a": 1}', '$.a == $.b'),
  ('{"a": [1, 2]}', '$.a.size() == 2'),
  ('{"a": [1, 2]}', '$.b.size() == 2'),
  ('{"a": [1, 2]}', '$.a.type() == "array"'),
  ('{"a": 1.5}', '$.a.floor() == 1'),
  ('{"a": {"b": 1}}', '$.* == 1'),
  ('{"a": {"b": 1}}', '$.*.b == 1'),
  ('{"a": {"b": 1}}', '$.** == 1'),
  ('{"a": {"b": 1}}', '$.** ? (@ == 2)'),
  ('1', '$ == 1'),
  ('1', '$ == 2'),
  ('[1, 2]', '$ == 2'),
  ('[1, 2]', '$[0] == 2'),
  ('[{"a": 1}]', '$.a == 1'),
  ('[{"a": 1}]', '$.a == 2'),
  ('{"a": true}', '$.a'),
  ('{"a": false}', '$.a'),
  ('{"a": [true]}', '$.a'),
  ('{"a": [{"b": true}]}', '$.a.b'),
  ('{"a": 1}', '$.b'),
  ('{"a": 1}', '$.a.b'),
  ('{"a": 1}', '$'),
  ('true', '$'),
  ('{"a": 1}', '1 == 1'),
  ('{"a": 1}', '1 == 2'),
  ('{"a": 1}', 'true'),
  ('{"a": 1}', '$.a ? (@ == 1)'),
  ('{"a": 1}', '$.b ? (@ == 1)'),
  ('{"a": 1}', 'strict $.b'),
  ('{"a": 1}', 'strict $.a ? (@ == 1)'),
  ('{"a": 1}', '$.a.** ? (@ == 1)'),
  ('{"a": 1}', '$.b.** ? (@ == 1)')) v(d, p);

-- NULL metadata matches nothing; a NULL argument matches nothing
SELECT hnsw_filter_matches(NULL, '{}') AS contains_null_doc,
       hnsw_filter_matches('{}', NULL) AS contains_null_query,
       hnsw_filter_matches_path(NULL, '$.a') AS path_null_doc,
       hnsw_filter_matches_path('{}', NULL) AS path_null_query,
       hnsw_filter_matches_keys(NULL, '{a}') AS keys_null_doc,
       hnsw_filter_matches_keys('{"a": 1}', NULL, '?&') AS keys_null_keys,
       hnsw_filter_matches_keys('{"a": 1}', '{NULL}', '?') AS key_null;

-- what the index checks (hashes in hex; stable: part of the index format)
SELECT op, q, hnsw_filter_explain(op, q)
FROM (VALUES ('@>', '{"tenant": 7, "lang": "en"}'), ('@>', '{"tags": ["a", "b"], "o": {}}'), ('@>', '{}'),
             ('?', 'tenant'), ('?|', '{a,b}'), ('?&', '{a,b}'), ('?|', '{}'), ('?&', '{}'),
             ('@@', '$.tenant == 7 && $.score >= 0.5'), ('@@', '$.lang == "en" || $.lang == "fr"'),
             ('@@', '$.tags ? (@ == "a")'), ('@@', '$.items ? (@.qty > 2).price < 10'),
             ('@@', '$.a != 1'), ('@@', '$.a != "x"'), ('@@', '!($.a == 1)'), ('@@', '$.a like_regex "x"'),
             ('@@', '$.flag'), ('@@', '$.a.size() > 2'),
             ('@?', '$.a'), ('@?', '$.a ? (@ > 2)'), ('@?', '$.a > 2'), ('@?', '$.*')) v(op, q);
SELECT hnsw_filter_explain('@@', '$ ? (' || string_agg(format('@.k%s == %s', i, i), ' && ') || ')')
FROM generate_series(1, 3) i;

-- misuse
SELECT hnsw_filter_matches_path('{}', '$.a', '@>');
SELECT hnsw_filter_matches_keys('{}', '{a}', '@@');
SELECT hnsw_filter_matches_keys('{}', '{a,b}', '?');
SELECT hnsw_filter_explain('<->', '{}');
SELECT hnsw_filter_explain('@@', 'not a path');

-- Cross check: every document against every query and operator. The filter
-- must never say 'no' where the operator is true ("wrong" must be 0); the
-- other counts show how many non-matching rows the index excludes.
CREATE TEMP TABLE filter_values (v jsonb);
INSERT INTO filter_values VALUES ('null'), ('true'), ('false'), ('0'), ('1'), ('1.0'), ('2.5'), ('-1'), ('100'),
  ('1e2'), ('"1"'), ('"x"'), ('"y"'), ('""'), ('[]'), ('{}'), ('[1, 2]'), ('["x", "y"]'), ('[[1]]'),
  ('[{"b": 1}]'), ('{"b": 1}'), ('{"b": "x", "c": [1, "y"]}'), ('[null]'), ('{"b": {"c": 2}}'),
  ('[true, "1", 1]'), ('{"b": [{"c": "x"}, {"c": 2}]}');
CREATE TEMP TABLE filter_docs AS
SELECT i AS id,
       CASE WHEN i % 17 = 0 THEN (SELECT v FROM filter_values ORDER BY v::text OFFSET (i / 17) % 26 LIMIT 1)
            WHEN i % 19 = 0 THEN jsonb_build_array((SELECT v FROM filter_values ORDER BY v::text OFFSET i % 26 LIMIT 1), 'x')
            ELSE jsonb_strip_nulls(jsonb_build_object(
                   'a', CASE WHEN i % 5 <> 0 THEN (SELECT v FROM filter_values ORDER BY v::text OFFSET i % 26 LIMIT 1) END,
                   'b', CASE WHEN i % 3 <> 0 THEN (SELECT v FROM filter_values ORDER BY v::text OFFSET (i * 7) % 26 LIMIT 1) END,
                   'c', CASE WHEN i % 4 = 0 THEN (SELECT v FROM filter_values ORDER BY v::text OFFSET (i * 11) % 26 LIMIT 1) END))
       END AS d
FROM generate_series(1, 400) i;
INSERT INTO filter_docs VALUES (401, NULL), (402, '{"a": null}'), (403, '{"a": {"b": null}}');
CREATE TEMP TABLE filter_queries (op text, q text);
INSERT INTO filter_queries
SELECT '@>', jsonb_build_object(k, v)::text FROM filter_values, unnest(ARRAY['a', 'b', 'c']) k
UNION ALL SELECT '@>', q FROM unnest(ARRAY['{}', '[]', '"x"', '1', '["x"]', '[1, "x"]', '{"a": {"b": {}}}',
  '{"a": [{"b": 1}]}', '{"b": {"c": [1]}}', '{"a": [], "b": {}}']) q
UNION ALL SELECT '?', k FROM unnest(ARRAY['a', 'b', 'c', 'x', '1', 'y', '']) k
UNION ALL SELECT op, k FROM unnest(ARRAY['?|', '?&']) op, unnest(ARRAY['{a,b}', '{a,x}', '{x}', '{}', '{x,y}', '{b,c,a}']) k
UNION ALL SELECT op, format('%s%s %s %s', mode, p, cmp, c)
  FROM unnest(ARRAY['@@', '@?']) op, unnest(ARRAY['', 'strict ']) mode,
       unnest(ARRAY['$.a', '$.b', '$.a.b', '$.b.c', '$.a[*]', '$.a[0]', '$']) p,
       unnest(ARRAY['==', '!=', '<', '>=']) cmp,
       unnest(ARRAY['1', '2.5', '"x"', '"1"', 'null', 'true', '-1']) c
UNION ALL SELECT 'any', ARRAY[jsonb_build_object('a', v1.v), jsonb_build_object('b', v2.v)]::text
  FROM filter_values v1, filter_values v2 WHERE (length(v1.v::text) + 3 * length(v2.v::text)) % 9 = 0
UNION ALL SELECT op, p FROM unnest(ARRAY['@@', '@?']) op, unnest(ARRAY['$.a', '$.a.b', 'exists($.a.b)', '$.b.c[*] == "y"',
  '$.a ? (@.b == 1)', '$.b ? (@.c == "x" || @.c == 2)', '$.a ? (@ > 0 && @ < 2)', '$.a == 1 && $.b == "x"',
  '$.a == 1 || $.b == "x"', '$.a ? (@ == "x").b', '$.a.b.c == 2', '$.b.c ? (@ == 2)', '!($.a == 1)',
  '$.a.size() >= 2', '$.* == 1', '$.** == "x"', 'strict $.a', 'lax $.b.b']) p;
CREATE TEMP TABLE filter_results AS
SELECT d.id, q.op, q.q,
       CASE q.op WHEN '@>' THEN d.d @> q.q::jsonb
                 WHEN '?' THEN d.d ? q.q
                 WHEN '?|' THEN d.d ?| q.q::text[]
                 WHEN '?&' THEN d.d ?& q.q::text[]
                 WHEN '@?' THEN d.d @? q.q::jsonpath
                 WHEN '@@' THEN d.d @@ q.q::jsonpath
                 WHEN 'any' THEN d.d @> ANY(q.q::jsonb[]) END AS real,
       CASE q.op WHEN '@>' THEN hnsw_filter_matches(d.d, q.q::jsonb)
                 WHEN '?' THEN hnsw_filter_matches_keys(d.d, ARRAY[q.q], '?')
                 WHEN '?|' THEN hnsw_filter_matches_keys(d.d, q.q::text[], '?|')
                 WHEN '?&' THEN hnsw_filter_matches_keys(d.d, q.q::text[], '?&')
                 WHEN 'any' THEN hnsw_filter_matches_any(d.d, q.q::jsonb[])
                 ELSE hnsw_filter_matches_path(d.d, q.q::jsonpath, q.op) END AS filter
FROM filter_docs d, filter_queries q;
SELECT op, count(DISTINCT q) AS queries,
       count(*) FILTER (WHERE real AND filter = 'no') AS wrong,
       count(*) FILTER (WHERE real) AS matches,
       count(*) FILTER (WHERE real IS NOT TRUE) AS non_matches,
       count(*) FILTER (WHERE real IS NOT TRUE AND filter = 'no') AS excluded,
       round(100.0 * count(*) FILTER (WHERE real IS NOT TRUE AND filter = 'maybe')
             / nullif(count(*) FILTER (WHERE real IS NOT TRUE), 0), 1) AS false_positive_pct
FROM filter_results GROUP BY ROLLUP (op) ORDER BY op;
-- the pairs that went wrong, if any
SELECT id, op, q FROM filter_results WHERE real AND filter = 'no' ORDER BY 1, 2, 3 LIMIT 20;
