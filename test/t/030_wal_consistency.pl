# WAL consistency: a primary with wal_consistency_checking (default 'all';
# VECEXT_WALCHECK='generic' for generic records only) and a streaming
# standby. Every WAL record then carries full images of the pages it
# touches, and the standby compares each page it replays with the image:
# a redo that does not reproduce the primary's page is "inconsistent page
# found" and the standby's startup process FATALs. The workload, for each
# opclass: a build in memory, a build through the maintenance_work_mem
# fallback, inserts into both, deletes, VACUUM (graph repair and removal),
# inserts that reuse the freed space, a second delete + VACUUM, REINDEX.
# Sizes: VECEXT_WALCHECK_ROWS (1000), VECEXT_WALCHECK_DIM (8).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $ROWS  = env_int('VECEXT_WALCHECK_ROWS', 1000);
my $DIM   = env_int('VECEXT_WALCHECK_DIM', 8);
my $CHECK = $ENV{VECEXT_WALCHECK} // 'all';
test_seed('VECEXT_WALCHECK_SEED');
my $t0 = time();

my @classes = qw(l2 ip cosine l1);

my $primary = vecext_primary('walcheck_primary',
	"shared_buffers = 32MB\nmax_connections = 20\nlog_statement = none\n"
	  . "wal_consistency_checking = '$CHECK'\nmax_wal_size = 1GB\n");
my $standby = vecext_standby($primary, 'walcheck_standby');
my $standby_log = 0;
is($primary->safe_psql('postgres', 'SHOW wal_consistency_checking'), $CHECK,
	"wal_consistency_checking = $CHECK on the primary");

# Runs $sql on the primary, then waits for the standby to replay it.
sub step
{
	my ($what, $sql) = @_;
	$primary->safe_psql('postgres', $sql);
	my $why = wait_replay_or_death($primary, $standby, 300, $standby_log);
	is($why, '', "$what: replayed with consistent pages");
	BAIL_OUT("standby failed: $why") if $why ne '';
}

my $next = $ROWS + 1;
for my $c (@classes)
{
	my $t = "w_$c";
	my $s = "ws_$c";  # SQ8
	my $f = "wf_$c";
	# The fallback build is SQ8 for half of the opclasses.
	my $fquant = ($c eq 'l2' || $c eq 'cosine') ? 'sq8' : 'none';
	$primary->safe_psql('postgres', qq{
		CREATE TABLE $t (id int PRIMARY KEY, embedding vector($DIM)) WITH (autovacuum_enabled = off);
		CREATE TABLE $s (id int PRIMARY KEY, embedding vector($DIM)) WITH (autovacuum_enabled = off);
		CREATE TABLE $f (id int PRIMARY KEY, embedding vector($DIM)) WITH (autovacuum_enabled = off);
	} . rand_vectors_sql($t, 1, $ROWS, $DIM) . rand_vectors_sql($s, 1, $ROWS, $DIM)
	  . rand_vectors_sql($f, 1, 3 * $ROWS, $DIM));
	step("$c: build in memory",
		"CREATE INDEX ${t}_idx ON $t USING hnsw (embedding vector_${c}_ops) WITH (m = 6, ef_construction = 24)");
	step("$c: SQ8 build in memory",
		"CREATE INDEX ${s}_idx ON $s USING hnsw (embedding vector_${c}_ops) "
		  . "WITH (m = 6, ef_construction = 24, quantization = 'sq8')");

	# 1MB of maintenance_work_mem holds a few thousand rows: the rest go
	# through the on-disk fallback.
	my ($rc, $out, $err) = $primary->psql('postgres',
		"SET maintenance_work_mem = '1MB'; SET client_min_messages = notice; "
		  . "CREATE INDEX ${f}_idx ON $f USING hnsw (embedding vector_${c}_ops) "
		  . "WITH (m = 16, ef_construction = 64, quantization = '$fquant')");
	is($rc, 0, "$c: build with the maintenance_work_mem fallback");
	like($err, qr/no longer fits into maintenance_work_mem/, "$c: the fallback build says so");
	my $why = wait_replay_or_death($primary, $standby, 300, $standby_log);
	is($why, '', "$c: fallback build replayed with consistent pages");

	step("$c: inserts",
		rand_vectors_sql($t, $next, int($ROWS / 2), $DIM)
		  . rand_vectors_sql($s, $next, int($ROWS / 2), $DIM)
		  . rand_vectors_sql($f, 3 * $ROWS + 1, int($ROWS / 4), $DIM));
	step("$c: deletes and vacuum",
		"DELETE FROM $t WHERE id % 5 IN (0, 1); DELETE FROM $f WHERE id % 3 = 0; VACUUM $t; VACUUM $f; "
		  . "DELETE FROM $s WHERE id % 5 IN (0, 1); VACUUM $s;");
	step("$c: inserts into the freed space",
		rand_vectors_sql($t, $next + $ROWS, int($ROWS / 2), $DIM));
	step("$c: second delete and vacuum", "DELETE FROM $t WHERE id % 7 = 0; VACUUM $t;");
	step("$c: reindex", "REINDEX INDEX ${t}_idx; REINDEX INDEX ${s}_idx");
	check_index_ok($standby, "${s}_idx", "$c: the standby's SQ8 index passes hnsw_index_check", 1);
	check_index_ok($standby, "${t}_idx", "$c: the standby's index passes hnsw_index_check", 1);
	check_index_ok($standby, "${f}_idx", "$c: the standby's fallback-built index passes hnsw_index_check");
	rows_equal($primary, $standby, "SELECT count(*), sum(id) FROM $t", "$c: same rows on the standby");
}

# An index with a jsonb metadata column (filtered search), SQ8 and not.
$primary->safe_psql('postgres', qq{
	CREATE TABLE wm (id int PRIMARY KEY, embedding vector($DIM), metadata jsonb) WITH (autovacuum_enabled = off);
} . rand_vectors_sql('wm', 1, $ROWS, $DIM)
  . "UPDATE wm SET metadata = jsonb_build_object('label', id % 10, 'tags', jsonb_build_array(id % 3));");
step('metadata: build',
	"CREATE INDEX wm_idx ON wm USING hnsw (embedding vector_l2_ops, metadata) "
	  . "WITH (m = 6, ef_construction = 24, link_codes = on); "
	  . "CREATE INDEX wm_sq8_idx ON wm USING hnsw (embedding vector_cosine_ops, metadata) "
	  . "WITH (m = 6, ef_construction = 24, quantization = 'sq8')");
step('metadata: inserts and updates',
	rand_vectors_sql('wm', $ROWS + 1, int($ROWS / 2), $DIM)
	  . "UPDATE wm SET metadata = jsonb_build_object('label', id % 7) WHERE id % 5 = 0 OR metadata IS NULL;");
step('metadata: deletes and vacuum', 'DELETE FROM wm WHERE id % 4 = 0; VACUUM wm;');
check_index_ok($standby, 'wm_idx', "metadata: the standby's index passes hnsw_index_check", 1);
check_index_ok($standby, 'wm_sq8_idx', "metadata: the standby's SQ8 index passes hnsw_index_check", 1);

my @bad = grep { /inconsistent page|PANIC|FATAL|TRAP/ } log_lines_since($standby, 0);
is(scalar(@bad), 0, 'the standby log has no inconsistent page, FATAL or PANIC');
diag(join("\n", @bad[ 0 .. ($#bad < 5 ? $#bad : 5) ])) if @bad;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is still replaying');
my $wal = $primary->safe_psql('postgres',
	"SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0'))");
note("wal consistency ($CHECK): $wal of WAL replayed and checked, " . elapsed($t0) . " s");

$standby->stop;
$primary->stop;
done_testing();
