# Crash safety: the server is killed with SIGKILL at random moments
#   - during concurrent inserts (writers that each commit one row per
#     statement and record the ids the server acknowledged),
#   - during CREATE INDEX (in memory, CONCURRENTLY, and through the
#     maintenance_work_mem fallback),
#   - during VACUUM of an index with many deleted rows,
# then restarted (crash recovery). Each kill is either SIGKILL to the
# postmaster and every server process at once, or SIGKILL to the backend
# doing the work (the postmaster then stops everything: restart_after_crash
# is off). After every restart:
#   - every acknowledged row is in the table (and the table has exactly the
#     rows committed before a VACUUM kill);
#   - every row has an index element (hnsw_index_check heapallindexed) and
#     hnsw_index_check finds no structural problem;
#   - every row is returned by an index scan for its own vector (a relaxed
#     iterative scan over the whole graph, filtered to that row), and every
#     live element is reachable from the entry point (after a VACUUM when the
#     crash left some without an in-link); after an insert round,
#     the round's rows and a 2% sample, all rows at the end of the insert
#     part;
#   - the server log has no ERROR, PANIC, FATAL or crash after the restart.
# Seeded: VECEXT_CRASH_SEED reproduces a run (the timing of the kills still
# varies). Kill points: VECEXT_CRASH_INSERT_KILLS (10), _BUILD_KILLS (5),
# _VACUUM_KILLS (5); sizes: VECEXT_CRASH_DIM (16), _BUILD_ROWS (4000),
# _VACUUM_ROWS (3000).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use VecextTest;
use VecextReliability;

my $INSERT_KILLS = env_int('VECEXT_CRASH_INSERT_KILLS', 10);
my $BUILD_KILLS  = env_int('VECEXT_CRASH_BUILD_KILLS', 5);
my $VACUUM_KILLS = env_int('VECEXT_CRASH_VACUUM_KILLS', 5);
my $DIM          = env_int('VECEXT_CRASH_DIM', 16);
my $BUILD_ROWS   = env_int('VECEXT_CRASH_BUILD_ROWS', 4000);
my $VACUUM_ROWS  = env_int('VECEXT_CRASH_VACUUM_ROWS', 3000);
my $WRITERS      = 2;
my $PER_WRITER   = 2500;    # statements per writer and round (more than it usually gets through)
test_seed('VECEXT_CRASH_SEED');
my $t0 = time();

my $node = vecext_primary('crash',
	"shared_buffers = 32MB\nmax_connections = 20\nlog_statement = none\n"
	  . "checkpoint_timeout = 30s\nmax_parallel_maintenance_workers = 1\n");
my $tmp = PostgreSQL::Test::Utils::tempdir;

my %stats = (kills => 0, during => 0, all => 0, backend => 0, rows_checked => 0,
	acked => 0, unfound => 0, unreachable => 0);

# Kills the server ('all' or 'backend' at random) and restarts it. The
# backend killed is one running a statement for a client whose
# application_name is LIKE $apps, if there is one (then the kill happened
# while the operation ran). Returns the log position before the restart.
sub kill_and_restart
{
	my ($label, $apps) = @_;
	my $mode = rand() < 0.5 ? 'all' : 'backend';
	# A client's backend exists while its psql runs: it disconnects as soon
	# as its statements are done. Prefer a backend that is in a statement.
	my @backends = split /\n/, $node->safe_psql('postgres',
		"SELECT pid || ' ' || state FROM pg_stat_activity WHERE application_name LIKE '$apps'");
	my $running = @backends > 0;
	my @active = map { (split / /)[0] } grep { / active$/ } @backends;
	@active = map { (split / /)[0] } @backends unless @active;
	my $victim = @active ? $active[ int(rand(@active)) ] : undef;
	$stats{kills}++;
	$stats{$mode}++;
	$stats{during}++ if $running;
	note("kill $stats{kills} ($label): SIGKILL $mode" . ($running ? ' while it runs' : ' after it ended'));
	return crash_node($node, $mode, $victim);
}

# The checks after a restart. $acked: ids that must be present (or undef);
# $expect: "count|sum" the table must have exactly (or undef); $where: the
# rows (of t) whose own-vector scans are checked (all by default).
sub verify
{
	my ($label, $table, $index, $logpos, $acked, $expect, $where) = @_;
	$where //= 'true';
	my %present = map { $_ => 1 } split /\n/,
	  $node->safe_psql('postgres', "SELECT id FROM $table");
	my $n = scalar(keys %present);
	if ($acked)
	{
		my @missing = grep { !$present{$_} } keys %$acked;
		is(scalar(@missing), 0, "$label: every acknowledged row is present ($n rows)");
		diag('missing ids: ' . join(',', grep { defined } (sort { $a <=> $b } @missing)[ 0 .. 9 ])) if @missing;
	}
	if ($expect)
	{
		is($node->safe_psql('postgres', "SELECT count(*) || '|' || coalesce(sum(id), 0) FROM $table"),
			$expect, "$label: the table has exactly the committed rows");
	}
	if (defined $index)
	{
		my ($other, $unreach) = split_problems(index_problems($node, $index, 1));
		is(scalar(@$other), 0, "$label: hnsw_index_check (heapallindexed) finds no structural problem");
		diag(join("\n", @$other[ 0 .. ($#$other < 9 ? $#$other : 9) ])) if @$other;
		my $checked = $node->safe_psql('postgres', "SELECT count(*) FROM $table t WHERE $where");
		# A crash in the middle of an insert can leave elements without an
		# in-link (the element of the killed insert itself, or one whose list
		# the insert had pruned before it could re-link it); VACUUM's
		# reachability pass re-links them. Rows of committed transactions are
		# found by scans either way (asserted below).
		if ($unreach > 0)
		{
			$node->safe_psql('postgres', "VACUUM $table");
			my ($other2, $unreach2) = split_problems(index_problems($node, $index, 1));
			is($unreach2, 0, "$label: every live element is reachable after VACUUM ($unreach before)");
		}
		else
		{
			pass("$label: every live element is reachable from the entry point");
		}
		my ($unfound, @ids) = unfound_rows($node, $table, '<->', $where);
		is($unfound, 0, "$label: index scans find all $checked rows checked by their own vectors");
		diag("not found: @ids") if $unfound;
		$stats{unfound}      += $unfound;
		$stats{unreachable}  += $unreach;
		$stats{rows_checked} += $checked;
	}
	my @errors = server_errors_since($node, $logpos);
	is(scalar(@errors), 0, "$label: no error in the server log after the restart");
	diag(join("\n", @errors[ 0 .. ($#errors < 5 ? $#errors : 5) ])) if @errors;
}

# ---------------------------------------------------------------------------
# 1. Concurrent inserts.
$node->safe_psql('postgres', qq{
	CREATE TABLE items (id int PRIMARY KEY, embedding vector($DIM));
} . rand_vectors_sql('items', 1, 1000, $DIM) . qq{
	CREATE INDEX items_idx ON items USING hnsw (embedding) WITH (m = 8, ef_construction = 32);
});
my %acked = map { $_ => 1 } 1 .. 1000;
my $next = 1001;
for my $round (1 .. $INSERT_KILLS)
{
	my $first = $next;
	my @h;
	my @out;
	for my $w (1 .. $WRITERS)
	{
		my $file = "$tmp/insert_${round}_$w.sql";
		open(my $f, '>', $file) or die;
		for my $id ($next .. $next + $PER_WRITER - 1)
		{
			print $f "INSERT INTO items VALUES ($id, '" . rand_vector($DIM) . "') RETURNING id;\n";
		}
		close $f;
		$next += $PER_WRITER;
		push @out, "$tmp/insert_${round}_$w.out";
		push @h, psql_bg($node, $file, $out[-1], "writer$w");
	}
	sleep(0.2 + rand(1.3));
	my $pos = kill_and_restart("insert round $round", 'writer%');
	my $new = 0;
	for my $i (0 .. $#h)
	{
		finish_bg($h[$i], 30);
		open(my $f, '<', $out[$i]) or die;
		while (<$f>)
		{
			chomp;
			next unless /^\d+$/;
			$acked{$_} = 1;
			$new++;
		}
		close $f;
	}
	$stats{acked} += $new;
	# Own-vector scans: this round's rows and a 2% sample of the older ones
	# (all rows at the end of this part).
	verify("insert round $round ($new acknowledged)", 'items', 'items_idx', $pos, \%acked, undef,
		"t.id >= $first OR t.id % 50 = $round");
}
verify('after all insert rounds', 'items', 'items_idx', log_size($node), \%acked);

# ---------------------------------------------------------------------------
# 2. CREATE INDEX.
$node->safe_psql('postgres', "CREATE TABLE tb (id int PRIMARY KEY, embedding vector($DIM))");
my $chunk = 2000;
for (my $i = 1; $i <= $BUILD_ROWS; $i += $chunk)
{
	my $n = $i + $chunk - 1 > $BUILD_ROWS ? $BUILD_ROWS - $i + 1 : $chunk;
	$node->safe_psql('postgres', rand_vectors_sql('tb', $i, $n, $DIM));
}
my $build_expect = $node->safe_psql('postgres', "SELECT count(*) || '|' || sum(id) FROM tb");
# The default m and ef_construction: builds long enough to be hit.
my %build_sql = (
	plain        => 'CREATE INDEX tb_idx ON tb USING hnsw (embedding);',
	concurrently => 'CREATE INDEX CONCURRENTLY tb_idx ON tb USING hnsw (embedding);',
	fallback     => "SET maintenance_work_mem = '1MB';\n" . 'CREATE INDEX tb_idx ON tb USING hnsw (embedding);');
my %build_time;
for my $v ('plain', 'fallback')
{
	my $s = time();
	$node->safe_psql('postgres', $build_sql{$v});
	$build_time{$v} = time() - $s;
	$node->safe_psql('postgres', 'DROP INDEX tb_idx');
}
$build_time{concurrently} = $build_time{plain} * 1.5;
note(sprintf('build of %d rows: %.1f s in memory, %.1f s with the fallback',
		$BUILD_ROWS, $build_time{plain}, $build_time{fallback}));
my @variants = ('plain', 'concurrently', 'fallback');
for my $round (1 .. $BUILD_KILLS)
{
	my $v = $variants[ ($round - 1) % 3 ];
	my $file = "$tmp/build_$round.sql";
	open(my $f, '>', $file) or die;
	print $f $build_sql{$v}, "\n";
	close $f;
	my $h = psql_bg($node, $file, "$tmp/build_$round.out", 'builder');
	sleep(0.05 + rand($build_time{$v} * 1.1));
	my $pos = kill_and_restart("build round $round ($v)", 'builder');
	finish_bg($h, 30);
	my $state = $node->safe_psql('postgres',
		"SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'invalid' END FROM pg_index "
		  . "WHERE indexrelid = to_regclass('tb_idx')");
	$state = 'none' if $state eq '';
	note("build round $round ($v): index $state after the restart");
	ok($state eq 'none' || $state eq 'valid' || ($v eq 'concurrently' && $state eq 'invalid'),
		"build round $round ($v): the index is gone, valid, or (CONCURRENTLY) invalid: $state");
	if ($state eq 'invalid')
	{
		# What a user does with the leftover of an interrupted CREATE INDEX CONCURRENTLY.
		$node->safe_psql('postgres', 'REINDEX INDEX tb_idx');
		$state = 'valid';
	}
	$node->safe_psql('postgres', $build_sql{plain}) if $state eq 'none';
	verify("build round $round ($v)", 'tb', 'tb_idx', $pos, undef, $build_expect);
	$node->safe_psql('postgres', 'DROP INDEX tb_idx');
}

# ---------------------------------------------------------------------------
# 3. VACUUM of an index with many deletes.
$node->safe_psql('postgres', qq{
	CREATE TABLE tv (id int PRIMARY KEY, embedding vector($DIM)) WITH (autovacuum_enabled = off);
} . rand_vectors_sql('tv', 1, $VACUUM_ROWS, $DIM) . qq{
	CREATE INDEX tv_idx ON tv USING hnsw (embedding) WITH (m = 8, ef_construction = 32);
});
my $vnext = $VACUUM_ROWS + 1;
my $deleted = 0;

# Deletes about 40% of the rows; returns how many.
sub churn
{
	my ($round) = @_;
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM tv');
	$node->safe_psql('postgres', "DELETE FROM tv WHERE (id * 7919 + $round) % 100 < 40");
	my $after = $node->safe_psql('postgres', 'SELECT count(*) FROM tv');
	$deleted += $before - $after;
	return $before - $after;
}

# Vacuum is throttled by the cost delay (which the index's vacuum honours)
# so that it lasts long enough to be hit in every phase.
my $vacuum_sql = "SET vacuum_cost_delay = '2ms'; SET vacuum_cost_limit = 50; VACUUM tv;";
my $gone = churn(0);
my $s = time();
$node->safe_psql('postgres', $vacuum_sql);
my $vacuum_time = time() - $s;
note(sprintf('vacuum after deleting 40%% of %d rows: %.1f s', $VACUUM_ROWS, $vacuum_time));
for my $round (1 .. $VACUUM_KILLS)
{
	# Back to the original size, then delete 40% again.
	$node->safe_psql('postgres', rand_vectors_sql('tv', $vnext, $gone, $DIM));
	$vnext += $gone;
	$gone = churn($round);
	my $expect = $node->safe_psql('postgres', "SELECT count(*) || '|' || sum(id) FROM tv");
	my $file = "$tmp/vacuum_$round.sql";
	open(my $f, '>', $file) or die;
	print $f "$vacuum_sql\n";
	close $f;
	my $h = psql_bg($node, $file, "$tmp/vacuum_$round.out", 'vacuumer');
	my $delay = 0.02 + rand($vacuum_time);
	sleep($delay);
	my $pos = kill_and_restart(sprintf('vacuum round %d, after %.2f s', $round, $delay), 'vacuumer');
	finish_bg($h, 30);
	verify("vacuum round $round", 'tv', 'tv_idx', $pos, undef, $expect);
}
my $pos = log_size($node);
$node->safe_psql('postgres', 'VACUUM tv');
verify('vacuum to completion after the crashes', 'tv', 'tv_idx', $pos, undef,
	$node->safe_psql('postgres', "SELECT count(*) || '|' || sum(id) FROM tv"));

ok($stats{kills} >= 20 || $INSERT_KILLS + $BUILD_KILLS + $VACUUM_KILLS < 20,
	"at least 20 kill points ($stats{kills})");
note(sprintf('crash: %d kill points (%d while the operation ran; %d SIGKILL to all, %d to a backend), '
		  . '%d acknowledged inserts, %d rows deleted before vacuums, %d rows checked, '
		  . '%d rows not found by their own vector, %d unreachable elements reported, %s s',
		$stats{kills}, $stats{during}, $stats{all}, $stats{backend}, $stats{acked}, $deleted,
		$stats{rows_checked}, $stats{unfound}, $stats{unreachable}, elapsed($t0)));

$node->stop;
done_testing();
