# Memory: the backend's private memory (RssAnon from /proc/<pid>/status,
# sampled every 10 ms while the statement runs; and VmHWM) during
#   - index builds with a large maintenance_work_mem (in memory) and with
#     1MB (the build falls back to inserting row by row, with a NOTICE):
#     the fallback stays near its budget, and its index is correct
#     (hnsw_index_check, recall against exact search);
#   - an SQ8 index of wider rows (its builder holds codes, not floats) with
#     a maintenance_work_mem in which the unquantized build spills: the SQ8
#     build stays in memory, needs less memory than the unquantized one with
#     a large budget, and its index is correct;
#   - scans with LIMIT 1000000 under several hnsw.max_scan_tuples, with and
#     without a filter that rejects every row: memory is bounded by
#     max_scan_tuples, not by LIMIT or the table.
# The figures are printed; the assertions are generous bounds.
# VECEXT_MEMORY_ROWS (20000), VECEXT_MEMORY_DIM (32), VECEXT_MEMORY_SEED;
# the SQ8 part: VECEXT_MEMORY_SQ8_ROWS (10000) x 256 dimensions, 16MB.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use VecextTest;
use VecextReliability;

my $ROWS = env_int('VECEXT_MEMORY_ROWS', 20000);
my $DIM  = env_int('VECEXT_MEMORY_DIM', 32);
test_seed('VECEXT_MEMORY_SEED');
my $t0 = time();

my $node = vecext_primary('memory',
	"shared_buffers = 16MB\nmax_connections = 20\nlog_statement = none\nwork_mem = '4MB'\n"
	  . "max_parallel_maintenance_workers = 1\n");
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $n = 0;

# Runs $sql in a new session and samples its backend's memory. Returns a
# hash: base (RssAnon before, kB), peak (highest RssAnon), hwm (VmHWM),
# out, err, samples.
sub measure
{
	my ($sql) = @_;
	$n++;
	my $app  = "mem$n";
	my $file = "$tmp/mem$n.sql";
	open(my $f, '>', $file) or die;
	print $f "SELECT pg_sleep(0.3);\n$sql\n";
	close $f;
	my $h   = psql_bg($node, $file, "$tmp/mem$n.out", $app);
	my $pid = backend_pid_of($node, $app, 30) // die "no backend for $app";
	my %r = (base => undef, peak => 0, hwm => 0, samples => 0);
	while (1)
	{
		my %s = proc_status_kb($pid);
		last unless %s;
		$r{base} //= $s{RssAnon};
		$r{peak} = $s{RssAnon} if $s{RssAnon} > $r{peak};
		$r{hwm}  = $s{VmHWM} if $s{VmHWM} > $r{hwm};
		$r{samples}++;
		sleep(0.01);
	}
	finish_bg($h, 600);
	$r{out} = slurp_file("$tmp/mem$n.out");
	$r{err} = slurp_file("$tmp/mem$n.out.err");
	chomp $r{out};
	$r{out} =~ s/^\n//;
	return %r;
}

sub mb { return sprintf('%.1f MB', $_[0] / 1024); }

$node->safe_psql('postgres', qq{
	CREATE TABLE items (id int PRIMARY KEY, embedding vector($DIM));
	INSERT INTO items SELECT i, (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, $DIM) WHERE i > 0)::vector
	  FROM generate_series(1, $ROWS) i;
	VACUUM ANALYZE items;
});
my $opts = 'WITH (m = 16, ef_construction = 64)';

# ---- builds
my %mem_build = measure("SET maintenance_work_mem = '512MB'; SET client_min_messages = notice;
	CREATE INDEX items_mem ON items USING hnsw (embedding) $opts;");
unlike($mem_build{err}, qr/ERROR|no longer fits/, 'the build with 512MB runs in memory') or diag($mem_build{err});
my %fb_build = measure("SET maintenance_work_mem = '1MB'; SET client_min_messages = notice;
	CREATE INDEX items_fb ON items USING hnsw (embedding) $opts;");
like($fb_build{err}, qr/NOTICE:\s+hnsw graph no longer fits into maintenance_work_mem after \d+ tuples/,
	'the build with 1MB says it falls back');
unlike($fb_build{err}, qr/ERROR/, 'the fallback build succeeds') or diag($fb_build{err});
my $mem_extra = $mem_build{peak} - $mem_build{base};
my $fb_extra  = $fb_build{peak} - $fb_build{base};
note(sprintf('build of %d x %d: in memory (512MB) peak RssAnon +%s (VmHWM %s); fallback (1MB) +%s (VmHWM %s)',
		$ROWS, $DIM, mb($mem_extra), mb($mem_build{hwm}), mb($fb_extra), mb($fb_build{hwm})));
cmp_ok($fb_extra, '<', 32 * 1024, 'the fallback build stays within 1MB + 31MB of private memory');
cmp_ok($fb_extra, '<', $mem_extra, 'and below the in-memory build');

# The fallback's index is a correct index.
check_index_ok($node, 'items_fb', 'the fallback-built index passes hnsw_index_check');
$node->safe_psql('postgres', 'DROP INDEX items_mem');
my @queries = map { rand_vector($DIM) } 1 .. 50;
my $recall = recall_at($node, 'items', '<->', \@queries, 10, 'SET hnsw.ef_search = 100;');
cmp_ok($recall, '>=', 0.8, sprintf('the fallback-built index has recall@10 %.3f (ef_search 100)', $recall));

# ---- SQ8: the builder holds codes (12 + dim bytes a row instead of 4 dim)
my $SQ8_ROWS = env_int('VECEXT_MEMORY_SQ8_ROWS', 10000);
my $SQ8_DIM  = 256;
$node->safe_psql('postgres', qq{
	CREATE TABLE wide (id int PRIMARY KEY, embedding vector($SQ8_DIM));
	ALTER TABLE wide ALTER COLUMN embedding SET STORAGE PLAIN;
	INSERT INTO wide SELECT i, (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, $SQ8_DIM) WHERE i > 0)::vector
	  FROM generate_series(1, $SQ8_ROWS) i;
	VACUUM ANALYZE wide;
});
# With 16MB the unquantized graph holds about 8000 rows of 256 dimensions,
# the SQ8 graph about 19,000 (the memory model: hnsw_build.h).
my %none_small = measure("SET maintenance_work_mem = '16MB'; SET client_min_messages = notice;
	CREATE INDEX wide_none ON wide USING hnsw (embedding) $opts;");
like($none_small{err}, qr/NOTICE:\s+hnsw graph no longer fits into maintenance_work_mem after \d+ tuples/,
	"the unquantized build of $SQ8_ROWS x $SQ8_DIM spills with 16MB") or diag($none_small{err});
my ($none_fit) = $none_small{err} =~ /after (\d+) tuples/;
my %sq8_small = measure("SET maintenance_work_mem = '16MB'; SET client_min_messages = notice;
	CREATE INDEX wide_sq8 ON wide USING hnsw (embedding) WITH (m = 16, ef_construction = 64, quantization = 'sq8');");
unlike($sq8_small{err}, qr/ERROR|no longer fits/, 'the SQ8 build of the same rows stays in memory with 16MB')
  or diag($sq8_small{err});
note(sprintf('%d x %d with 16MB: the unquantized build spills after %s rows; SQ8 peak RssAnon +%s',
		$SQ8_ROWS, $SQ8_DIM, $none_fit // '?', mb($sq8_small{peak} - $sq8_small{base})));
cmp_ok($sq8_small{peak} - $sq8_small{base}, '<', 16 * 1024 + 8 * 1024,
	'the SQ8 build stays near its 16MB budget');
check_index_ok($node, 'wide_sq8', 'the SQ8 index built from codes passes hnsw_index_check');
$node->safe_psql('postgres', 'DROP INDEX wide_none');
my @wide_queries = map { rand_vector($SQ8_DIM) } 1 .. 20;
my $sq8_recall = recall_at($node, 'wide', '<->', \@wide_queries, 10, 'SET hnsw.ef_search = 200;');
cmp_ok($sq8_recall, '>=', 0.7, sprintf('the SQ8 index built from codes has recall@10 %.3f (ef_search 200)', $sq8_recall));
$node->safe_psql('postgres', 'DROP INDEX wide_sq8');
# With a large budget both stay in memory; the SQ8 build needs far less.
my %none_big = measure("SET maintenance_work_mem = '512MB'; SET client_min_messages = notice;
	CREATE INDEX wide_none ON wide USING hnsw (embedding) $opts;");
my %sq8_big = measure("SET maintenance_work_mem = '512MB'; SET client_min_messages = notice;
	CREATE INDEX wide_sq8 ON wide USING hnsw (embedding) WITH (m = 16, ef_construction = 64, quantization = 'sq8');");
unlike($none_big{err} . $sq8_big{err}, qr/ERROR|no longer fits/, 'both builds run in memory with 512MB');
my $none_peak = $none_big{peak} - $none_big{base};
my $sq8_peak  = $sq8_big{peak} - $sq8_big{base};
note(sprintf('%d x %d in memory: unquantized build peak RssAnon +%s, SQ8 +%s', $SQ8_ROWS, $SQ8_DIM, mb($none_peak),
		mb($sq8_peak)));
cmp_ok($sq8_peak, '<', 0.75 * $none_peak, 'the SQ8 build needs clearly less memory than the unquantized one');
$node->safe_psql('postgres', 'DROP TABLE wide');

# ---- scans with a huge LIMIT
my $q = rand_vector($DIM);
my %scan;
for my $mst (1000, 20000, 200000)
{
	for my $filter ('true', 'id < 0')
	{
		my %r = measure("SET enable_seqscan = off; SET hnsw.max_scan_tuples = $mst;
			SELECT count(*) FROM (SELECT id FROM items WHERE $filter ORDER BY embedding <-> '$q' LIMIT 1000000) s;");
		unlike($r{err}, qr/ERROR/, "LIMIT 1000000, max_scan_tuples $mst, WHERE $filter: no error") or diag($r{err});
		my $rows = $r{out} =~ /(\d+)\s*$/ ? $1 : -1;
		my $extra = $r{peak} - $r{base};
		$scan{"$mst $filter"} = $extra;
		note(sprintf('scan LIMIT 1000000, max_scan_tuples %d, WHERE %s: %d rows, peak RssAnon +%s, VmHWM %s (%d samples)',
				$mst, $filter, $rows, mb($extra), mb($r{hwm}), $r{samples}));
		if ($filter eq 'true')
		{
			ok($rows >= 0 && $rows <= $ROWS, "max_scan_tuples $mst: $rows rows, at most the table");
		}
		else
		{
			is($rows, 0, "max_scan_tuples $mst with a filter that rejects every row: no row, the scan ends");
		}
	}
}
# Generous bounds: a visited element costs well under 1 kB of scan state.
for my $mst (1000, 20000)
{
	for my $filter ('true', 'id < 0')
	{
		cmp_ok($scan{"$mst $filter"}, '<', 16 * 1024 + $mst,
			"max_scan_tuples $mst, WHERE $filter: the scan's private memory is bounded (< 16MB + 1kB per tuple)");
	}
}
note('memory: ' . elapsed($t0) . ' s');
$node->stop;
done_testing();
