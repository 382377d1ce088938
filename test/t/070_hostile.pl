# Hostile SQL: settings out of range, huge LIMITs on index scans, vectors
# at the dimension limits (2000 for the index, 16000 for the type), NULLs,
# zero vectors under cosine, dimension mismatches, distance cut-offs with
# odd bounds, backward cursors, cancelled builds and scans, DROP INDEX
# while scans run (cursors and a pgbench search load). Each statement gives
# an ERROR with the expected message or a correct result, within a
# timeout; the server never restarts.
# VECEXT_HOSTILE_ROWS (3000), VECEXT_HOSTILE_SEED.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use VecextTest;
use VecextReliability;

my $ROWS = env_int('VECEXT_HOSTILE_ROWS', 3000);
my $DIM  = 8;
test_seed('VECEXT_HOSTILE_SEED');
my $t0 = time();

my $node = vecext_primary('hostile',
	"shared_buffers = 32MB\nmax_connections = 30\nlog_statement = none\n"
	  . "max_parallel_maintenance_workers = 1\n");
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $tmp = PostgreSQL::Test::Utils::tempdir;

# Runs $sql (60 s at most). Returns (rc, stdout, stderr).
sub run
{
	my ($sql) = @_;
	my ($timed_out);
	my ($rc, $out, $err) = $node->psql('postgres', $sql, timeout => 60, timed_out => \$timed_out);
	return (-1, '', 'timed out') if $timed_out;
	return ($rc, $out, $err);
}

# Asserts that $sql fails with an error matching $re.
sub fails_like
{
	my ($sql, $re, $what) = @_;
	my ($rc, $out, $err) = run($sql);
	ok($rc != 0 && $err =~ $re, $what) or diag("rc $rc, stderr: $err");
}

# Asserts that $sql succeeds; returns its output.
sub succeeds
{
	my ($sql, $what) = @_;
	my ($rc, $out, $err) = run($sql);
	ok($rc == 0, $what) or diag("rc $rc, stderr: $err");
	return $out;
}

# Asserts that $sql either succeeds or fails cleanly (no crash, no hang).
sub survives
{
	my ($sql, $what) = @_;
	my ($rc, $out, $err) = run($sql);
	ok($rc == 0 || ($rc > 0 && $err =~ /ERROR/), "$what (" . ($rc == 0 ? 'ok' : 'ERROR') . ')')
	  or diag("rc $rc, stderr: $err");
	return ($rc, $out, $err);
}

sub server_ok
{
	my ($what) = @_;
	my @crash = crash_signals_since($node, 0);
	my ($rc, $now) = $node->psql('postgres', 'SELECT pg_postmaster_start_time()');
	ok($rc == 0 && $now eq $started && !@crash, "$what: the server did not restart");
	diag(join("\n", @crash)) if @crash;
}

$node->safe_psql('postgres', qq{
	CREATE TABLE t (id int PRIMARY KEY, embedding vector($DIM));
} . rand_vectors_sql('t', 1, $ROWS, $DIM) . q{
	CREATE INDEX t_idx ON t USING hnsw (embedding) WITH (m = 8, ef_construction = 32);
});
my $q = rand_vector($DIM);
my $knn = "SELECT id FROM t ORDER BY embedding <-> '$q' LIMIT 10";

# ---- settings
# The hnsw.* settings exist once vecext's library is loaded in the session
# (LOAD, or the first use of a vecext function or index).
for my $v ('0', '-1', '1001', '100000000000', 'abc')
{
	fails_like("LOAD 'vecext'; SET hnsw.ef_search = '$v'", qr/ERROR:.*(outside the valid range|invalid value)/,
		"hnsw.ef_search = $v is rejected");
}
is(succeeds("SET hnsw.ef_search = 1000; SET enable_seqscan = off; SELECT count(*) FROM ($knn) s",
		'hnsw.ef_search = 1000 works'), '10', 'hnsw.ef_search = 1000 returns 10 rows');
fails_like("LOAD 'vecext'; SET hnsw.max_scan_tuples = 0", qr/outside the valid range/,
	'hnsw.max_scan_tuples = 0 is rejected');
fails_like("LOAD 'vecext'; SET hnsw.iterative_scan = 'sideways'", qr/invalid value/,
	'hnsw.iterative_scan = sideways is rejected');
fails_like("LOAD 'vecext'; SET hnsw.ef_serch = 10", qr/ERROR:.*hnsw.ef_serch/, 'a misspelt hnsw.* setting is rejected');
# Before the library is loaded, Postgres keeps the text as a placeholder;
# loading the library then warns and falls back to the default.
{
	my ($rc, $out, $err) = run("SET hnsw.ef_search = 0; SET enable_seqscan = off;
		SELECT count(*) FROM ($knn) s; SHOW hnsw.ef_search;");
	is($rc, 0, 'an out-of-range hnsw.ef_search set before the library is loaded does not break a query');
	is($out, "10\n40", 'the query runs with the default ef_search');
	like($err, qr/WARNING:.*0 is outside the valid range for parameter "hnsw.ef_search"/, 'with a WARNING');
}
fails_like("CREATE INDEX ON t USING hnsw (embedding) WITH (m = 101)", qr/out of bounds for option "m"/,
	'm = 101 is rejected');
fails_like("CREATE INDEX ON t USING hnsw (embedding) WITH (m = 16, ef_construction = 20)",
	qr/ef_construction must be greater than or equal to 2 \* m/, 'ef_construction < 2 * m is rejected');
fails_like("CREATE INDEX ON t USING hnsw (embedding) WITH (quantize = 'sq8')", qr/unrecognized parameter/,
	'an unknown index option is rejected');
fails_like("CREATE INDEX ON t USING hnsw (embedding) WITH (quantization = 'x')",
	qr/invalid value for enum option "quantization": x/, 'an unknown quantization is rejected');

# ---- huge LIMITs
for my $mode ('strict_order', 'relaxed_order', 'off')
{
	my $out = succeeds("SET enable_seqscan = off; SET hnsw.iterative_scan = $mode;
		SELECT id, embedding <-> '$q' FROM t ORDER BY embedding <-> '$q' LIMIT 1000000",
		"LIMIT 1000000 with iterative_scan = $mode");
	my @rows = map { [ split /\|/ ] } split /\n/, $out;
	my %seen;
	my $dups = grep { $seen{ $_->[0] }++ } @rows;
	my $sorted = 1;
	for my $i (1 .. $#rows) { $sorted = 0 if $rows[$i][1] < $rows[ $i - 1 ][1]; }
	ok(@rows <= $ROWS && $dups == 0,
		"LIMIT 1000000 ($mode): " . scalar(@rows) . " rows, none twice, at most the table");
	ok($sorted, "LIMIT 1000000 ($mode): in distance order") if $mode ne 'relaxed_order';
	ok(@rows >= 40, "LIMIT 1000000 ($mode): at least ef_search rows") if $mode eq 'off';
	ok(@rows >= 0.9 * $ROWS, "LIMIT 1000000 ($mode): nearly every row") if $mode eq 'relaxed_order';
}
is(succeeds("SET enable_seqscan = off; SET hnsw.max_scan_tuples = 100;
	SELECT count(*) FROM (SELECT id FROM t WHERE id % 1000 = 0 ORDER BY embedding <-> '$q' LIMIT 1000000) s",
		'a filtered scan bounded by max_scan_tuples ends') <= 3, 1, 'it returns at most the matching rows');
succeeds("SET enable_seqscan = off; SELECT id FROM t ORDER BY embedding <-> '$q' LIMIT 10 OFFSET 1000000",
	'OFFSET 1000000');

# ---- distance cut-offs with odd bounds
for my $bound ("'NaN'::float8", "'-Infinity'::float8", "'Infinity'::float8", 'NULL::float8', '-1')
{
	survives("SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM t WHERE embedding <-> '$q' < $bound "
		  . "ORDER BY embedding <-> '$q' LIMIT 100) s", "distance cut-off < $bound");
}

# ---- cursors
survives("BEGIN; SET LOCAL enable_seqscan = off;
	DECLARE c SCROLL CURSOR FOR SELECT id FROM t ORDER BY embedding <-> '$q' LIMIT 20;
	FETCH 5 FROM c; FETCH BACKWARD 2 FROM c; FETCH ABSOLUTE 15 FROM c; FETCH PRIOR FROM c; COMMIT;",
	'a scroll cursor moving backward over an index scan');
survives("BEGIN; SET LOCAL enable_seqscan = off;
	DECLARE c NO SCROLL CURSOR FOR SELECT id FROM t ORDER BY embedding <-> '$q';
	FETCH 5 FROM c; FETCH BACKWARD 1 FROM c; COMMIT;", 'FETCH BACKWARD on a no-scroll cursor');

# ---- dimension limits
$node->safe_psql('postgres', q{
	CREATE TABLE d2000 (id int, embedding vector(2000));
	INSERT INTO d2000 SELECT i, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 2000) WHERE i > 0)::vector
	  FROM generate_series(1, 40) i;
});
succeeds('CREATE INDEX d2000_idx ON d2000 USING hnsw (embedding) WITH (m = 4, ef_construction = 8)',
	'an index on vector(2000)');
succeeds('CREATE INDEX d2000_cos ON d2000 USING hnsw (embedding vector_cosine_ops)',
	'a cosine index on vector(2000)');
is(succeeds("SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM d2000
	ORDER BY embedding <-> (SELECT embedding FROM d2000 WHERE id = 7) LIMIT 5) s", 'a 2000-dimension kNN'),
	'5', 'the 2000-dimension kNN returns 5 rows');
is(succeeds("SET enable_seqscan = off; SELECT id FROM d2000
	ORDER BY embedding <-> (SELECT embedding FROM d2000 WHERE id = 7) LIMIT 1", 'the nearest of its own vector'),
	'7', 'a 2000-dimension row is its own nearest neighbour');
succeeds("INSERT INTO d2000 SELECT 100, (SELECT array_agg(random()) FROM generate_series(1, 2000))::vector",
	'an insert into the 2000-dimension index');
check_index_ok($node, 'd2000_idx', 'the 2000-dimension index passes hnsw_index_check', 1);
$node->safe_psql('postgres', q{
	CREATE TABLE d2001 (id int, embedding vector(2001));
	INSERT INTO d2001 SELECT 1, array_fill(0.5::real, ARRAY[2001])::vector;
	CREATE TABLE dfree (id int, embedding vector);
	INSERT INTO dfree SELECT 1, array_fill(0.5::real, ARRAY[2001])::vector;
});
fails_like('CREATE INDEX ON d2001 USING hnsw (embedding)', qr/2000/, 'an index on vector(2001) is rejected');
fails_like('CREATE INDEX ON dfree USING hnsw (embedding)', qr/2000/,
	'an index over a 2001-dimension value in an untyped column is rejected');
$node->safe_psql('postgres', 'TRUNCATE dfree');
succeeds('CREATE INDEX dfree_idx ON dfree USING hnsw (embedding)', 'an index on an empty untyped column');
fails_like("INSERT INTO dfree SELECT 2, array_fill(0.5::real, ARRAY[2001])::vector", qr/2000/,
	'inserting 2001 dimensions into an hnsw-indexed untyped column is rejected');
succeeds("INSERT INTO dfree VALUES (3, '[1,2,3]')", 'a first row into the empty untyped index');
# An index built empty on a column without a typmod takes its dimensions
# from the first row inserted; rows of other dimensions are then rejected.
{
	my ($rc, $out, $err) = run("INSERT INTO dfree VALUES (4, '[1,2,3,4]')");
	ok($rc != 0 && $err =~ /expected 3 dimensions, not 4/,
		'a second row with other dimensions is rejected by the index');
	($rc, $out, $err) = run("SET enable_seqscan = off; SELECT id FROM dfree ORDER BY embedding <-> '[1,2,3]' LIMIT 5");
	ok($rc == 0 && $out =~ /^3$/m, 'a scan of the untyped index finds its 3-dimension row');
	$node->safe_psql('postgres', 'DROP TABLE dfree');
}
is(succeeds(q{SELECT vector_dims(v), v = v, (v <-> v) = 0, (v::text)::vector = v
	FROM (SELECT array_fill(1.5::real, ARRAY[16000])::vector AS v) s}, 'a 16000-dimension vector'),
	'16000|t|t|t', 'a 16000-dimension vector round-trips through text');
fails_like(q{SELECT array_fill(1.5::real, ARRAY[16001])::vector}, qr/cannot have more than 16000 dimensions/,
	'16001 dimensions are rejected');
fails_like(q{SELECT ('[' || repeat('1,', 16000) || '1]')::vector}, qr/cannot have more than 16000 dimensions/,
	'a 16001-element literal is rejected');
fails_like('CREATE TABLE d16001 (v vector(16001))', qr/cannot exceed 16000/, 'vector(16001) is rejected');

# ---- NULLs and zero vectors
$node->safe_psql('postgres', q{
	CREATE TABLE n (id int, embedding vector(3));
	INSERT INTO n SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE format('[%s,%s,1]', i, i % 5)::vector END
	  FROM generate_series(1, 300) i;
	INSERT INTO n SELECT 1000 + i, '[0,0,0]' FROM generate_series(1, 20) i;
	CREATE INDEX n_l2 ON n USING hnsw (embedding);
	CREATE INDEX n_cos ON n USING hnsw (embedding vector_cosine_ops);
});
is(succeeds("SET enable_seqscan = off; SELECT count(*), count(embedding) FROM
	(SELECT * FROM n ORDER BY embedding <-> '[1,1,1]' LIMIT 1000) s", 'an L2 scan over NULLs'),
	'220|220', 'the L2 index returns every non-NULL row and no NULL');
is(succeeds("SET enable_seqscan = off; SELECT count(*), count(*) FILTER (WHERE id > 1000) FROM
	(SELECT * FROM n ORDER BY embedding <=> '[1,1,1]' LIMIT 1000) s", 'a cosine scan over zero vectors'),
	'200|0', 'the cosine index returns the non-zero rows, no zero vector, no NULL');
survives("SET enable_seqscan = off; SELECT id FROM n ORDER BY embedding <=> '[0,0,0]' LIMIT 5",
	'a cosine scan for the zero vector');
survives("SET enable_seqscan = off; SELECT id FROM n ORDER BY embedding <-> NULL LIMIT 5", 'a scan for NULL');
survives("SET enable_seqscan = off; PREPARE p(vector) AS SELECT id FROM n ORDER BY embedding <=> \$1 LIMIT 3;
	EXECUTE p(NULL); EXECUTE p('[0,0,0]'); EXECUTE p('[1,2,3]');", 'prepared scans with NULL and zero queries');
check_index_ok($node, 'n_cos', 'the cosine index with zero vectors passes hnsw_index_check', 1);

# ---- dimension mismatches
fails_like("SET enable_seqscan = off; SELECT id FROM t ORDER BY embedding <-> '[1,2,3]' LIMIT 5",
	qr/different vector dimensions/, 'a query vector of other dimensions is rejected');
fails_like("INSERT INTO t VALUES (999999, '[1,2,3]')", qr/expected $DIM dimensions, not 3/,
	'an insert of other dimensions is rejected');

# ---- cancellation
$node->safe_psql('postgres', q{
	CREATE TABLE big (id int, embedding vector(32));
	INSERT INTO big SELECT i, (SELECT array_agg(random()) FROM generate_series(1, 32) WHERE i > 0)::vector
	  FROM generate_series(1, 20000) i;
});
fails_like("SET statement_timeout = '300ms'; CREATE INDEX big_idx ON big USING hnsw (embedding)",
	qr/canceling statement due to statement timeout/, 'a parallel in-memory build is cancelled');
fails_like("SET statement_timeout = '300ms'; SET maintenance_work_mem = '1MB';
	CREATE INDEX big_idx ON big USING hnsw (embedding)",
	qr/canceling statement due to statement timeout/, 'a fallback build is cancelled');
is($node->safe_psql('postgres', "SELECT to_regclass('big_idx') IS NULL"), 't', 'no index is left behind');
succeeds('CREATE INDEX big_idx ON big USING hnsw (embedding) WITH (m = 8, ef_construction = 32)',
	'the build then succeeds');
survives("SET statement_timeout = '50ms'; SET enable_seqscan = off; SET hnsw.max_scan_tuples = 1000000000;
	SELECT count(*) FROM (SELECT id FROM big WHERE id < 0 ORDER BY embedding <-> (SELECT embedding FROM big LIMIT 1)
	LIMIT 10) s", 'a scan that filters out every row, with a statement timeout');
check_index_ok($node, 'big_idx', 'the index passes hnsw_index_check after the cancellations', 1);

# A build terminated from another session.
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, "\\echo started\nSET application_name = 'victim'; CREATE INDEX big_idx2 ON big USING hnsw (embedding);\n");
my $pid = backend_pid_of($node, 'victim', 30);
sleep(0.3);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)") if defined $pid;
eval { $bg->quit; };
is($node->safe_psql('postgres', "SELECT to_regclass('big_idx2') IS NULL"), 't',
	'a terminated build leaves no index behind');
server_ok('after the cancellations');

# ---- DROP INDEX while scans run
my $a = $node->background_psql('postgres', on_error_stop => 0);
$a->query_safe("BEGIN; SET LOCAL enable_seqscan = off;
	DECLARE c CURSOR FOR SELECT id FROM t ORDER BY embedding <-> '$q';");
my $first = $a->query_safe('FETCH 5 FROM c');
is(scalar(split /\n/, $first), 5, 'a cursor over the index scan fetches 5 rows');
fails_like("SET lock_timeout = '500ms'; DROP INDEX t_idx", qr/lock timeout/,
	'DROP INDEX waits for the open scan (lock timeout)');
my $b = $node->background_psql('postgres', on_error_stop => 0);
$b->query_until(qr/dropping/, "\\echo dropping\nSET application_name = 'dropper'; DROP INDEX t_idx;\n");
my $waiting = '';
for (1 .. 100)
{
	$waiting = $node->safe_psql('postgres',
		"SELECT wait_event_type FROM pg_stat_activity WHERE application_name = 'dropper'");
	last if $waiting eq 'Lock';
	sleep(0.05);
}
is($waiting, 'Lock', 'the DROP INDEX waits for the lock');
my $more = $a->query_safe('FETCH 5 FROM c');
is(scalar(split /\n/, $more), 5, 'the scan goes on while DROP INDEX waits');
$a->query_safe('COMMIT');
$b->query_safe('SELECT 1');
is($node->safe_psql('postgres', "SELECT to_regclass('t_idx') IS NULL"), 't', 'the index is dropped after the scan');
$a->quit;
$b->quit;

# pgbench searches with prepared statements while another session drops and
# creates the index again and again.
$node->safe_psql('postgres', 'CREATE INDEX t_idx ON t USING hnsw (embedding) WITH (m = 8, ef_construction = 32)');
open(my $f, '>', "$tmp/search.sql") or die;
print $f "\\set id random(1, 100)\nSELECT id FROM t ORDER BY embedding <-> (SELECT embedding FROM t WHERE id = :id) LIMIT 5;\n";
close $f;
open($f, '>', "$tmp/churn.sql") or die;
for (1 .. 200)
{
	print $f "DROP INDEX t_idx;\nSELECT pg_sleep(0.05);\n"
	  . "CREATE INDEX t_idx ON t USING hnsw (embedding) WITH (m = 8, ef_construction = 16);\n"
	  . "DROP INDEX CONCURRENTLY t_idx;\n"
	  . "CREATE INDEX CONCURRENTLY t_idx ON t USING hnsw (embedding) WITH (m = 8, ef_construction = 16);\n";
}
close $f;
my $churn = psql_bg($node, "$tmp/churn.sql", "$tmp/churn.out", 'churn');
my ($out, $err) = ('', '');
{
	local $ENV{PGOPTIONS} = '-c enable_seqscan=off';
	IPC::Run::run([ 'pgbench', '-n', '-M', 'prepared', '-c', 3, '-j', 1, '-T', 8, '-f', "$tmp/search.sql",
			$node->connstr('postgres') ], '>', \$out, '2>', \$err, IPC::Run::timeout(120));
}
my $rc = $?;
$churn->kill_kill;
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
is($rc, 0, 'pgbench searches while the index is dropped and created: exit 0') or diag($err);
unlike($out . $err, qr/aborted|ERROR/, 'no search failed') or diag($err);
note('searches during DROP/CREATE INDEX: ' . ($tx // '?') . ' transactions');
my $cycles = () = slurp_file("$tmp/churn.out.err") =~ /ERROR/g;
is($cycles, 0, 'the DROP/CREATE loop had no error') or diag(slurp_file("$tmp/churn.out.err"));

server_ok('at the end');
# Expected errors of the statements above; anything else is unexpected.
my @errors = grep {
	!/canceling statement due to (statement|lock) timeout|invalid value for parameter|outside the valid range|out of bounds for option|dimensions|ef_construction must be|unrecognized parameter|invalid value for enum option "quantization"|unrecognized configuration|cursor can only scan forward|invalid configuration parameter name|churn FATAL:  connection to client lost/
} server_errors_since($node, 0);
is(scalar(@errors), 0, 'no unexpected error in the server log');
diag(join("\n", @errors[ 0 .. ($#errors < 9 ? $#errors : 9) ])) if @errors;
note('hostile: ' . elapsed($t0) . ' s');
$node->stop;
done_testing();
