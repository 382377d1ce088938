# Memory: the backend's private memory (RssAnon from /proc/<pid>/status,
# sampled every 10 ms while the statement runs; and VmHWM) during
#   - index builds with a large maintenance_work_mem (in memory) and with
#     1MB (the build falls back to inserting row by row, with a NOTICE):
#     the fallback stays near its budget, and its index is correct
#     (hnsw_index_check, recall against exact search);
#   - scans with LIMIT 1000000 under several hnsw.max_scan_tuples, with and
#     without a filter that rejects every row: memory is bounded by
#     max_scan_tuples, not by LIMIT or the table.
# The figures are printed; the assertions are generous bounds.
# VECEXT_MEMORY_ROWS (20000), VECEXT_MEMORY_DIM (32), VECEXT_MEMORY_SEED.
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
