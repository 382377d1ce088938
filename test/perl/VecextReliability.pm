# Helpers of the reliability TAP tests (test/t/020..089): seeded data, kNN
# answers, index checks, server-log scans, crashes and memory probes. On top
# of PostgreSQL::Test::Cluster and VecextTest (the harness's own module).
package VecextReliability;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(env_int env_num test_seed rand_vector rand_vectors_sql
  index_problems split_problems check_index_ok unfound_rows knn_answer exact_answer recall_at
  log_size log_lines_since server_errors_since crash_signals_since
  postmaster_children crash_node psql_bg finish_bg wait_replay_or_death
  proc_status_kb backend_pid_of plan_uses_index elapsed);

# An integer/number setting from the environment, or its default.
sub env_int
{
	my ($name, $default) = @_;
	my $v = $ENV{$name};
	return $default unless defined $v && $v =~ /^-?\d+$/;
	return int($v);
}

sub env_num
{
	my ($name, $default) = @_;
	my $v = $ENV{$name};
	return $default unless defined $v && $v =~ /^-?\d+(\.\d+)?$/;
	return $v + 0;
}

# Seeds Perl's rand from $ENV{$var} (or from the clock) and prints how to
# reproduce the run.
sub test_seed
{
	my ($var) = @_;
	my $seed = env_int($var, 0) || (int(time() * 1000) % 1000000007);
	srand($seed);
	note("random seed $seed (set $var=$seed to reproduce)");
	return $seed;
}

# A random vector literal with components in [-1, 1).
sub rand_vector
{
	my ($dim) = @_;
	return '[' . join(',', map { sprintf('%.5f', rand(2) - 1) } 1 .. $dim) . ']';
}

# INSERT rows ($first..$first+$n-1, random vector) as one statement's VALUES.
sub rand_vectors_sql
{
	my ($table, $first, $n, $dim) = @_;
	my @rows = map { "($_, '" . rand_vector($dim) . "')" } $first .. $first + $n - 1;
	return "INSERT INTO $table (id, embedding) VALUES " . join(",\n", @rows) . ";\n";
}

# The rows of hnsw_index_check (an array; empty means consistent).
sub index_problems
{
	my ($node, $index, $heapallindexed) = @_;
	my $h = $heapallindexed ? 'true' : 'false';
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT * FROM hnsw_index_check('$index', heapallindexed => $h)");
	return ("hnsw_index_check failed: $err") if $rc != 0;
	return grep { $_ ne '' } split /\n/, $out;
}

# Splits hnsw_index_check's rows into (structural problems, number of
# unreachable live elements).
sub split_problems
{
	my @p = @_;
	my @other = grep { !/not reachable from the entry point/ } @p;
	my @unreach = grep { /^element .* is not reachable/ } @p;
	my ($total) = map { /^(\d+) live elements in all are not reachable/ ? $1 : () } @p;
	return (\@other, $total // scalar(@unreach));
}

# Asserts that hnsw_index_check finds no structural problem and no live
# element unreachable from the entry point over level-0 links. Returns the
# number of unreachable elements.
sub check_index_ok
{
	my ($node, $index, $what, $heapallindexed, %opts) = @_;
	my @p = index_problems($node, $index, $heapallindexed // 1);
	my ($other, $unreach) = split_problems(@p);
	my $ok = is(scalar(@$other), 0, $what);
	diag(join("\n", @$other[ 0 .. ($#$other < 9 ? $#$other : 9) ])) if !$ok;
	is($unreach, 0, "$what: every live element is reachable");
	return $unreach;
}

# Rows of $table that an index scan for their own vector does not return:
# for each row, ORDER BY embedding $op own vector LIMIT 1 filtered to the row
# itself (id + 0 = t.id, which only the executor can check), with a relaxed
# iterative scan allowed to visit every element, so a row is missed only if
# its element is missing or unreachable. $where restricts the rows checked
# (a condition on t). Returns (count, first ids).
sub unfound_rows
{
	my ($node, $table, $op, $where) = @_;
	$op //= '<->';
	$where //= 'true';
	my $out = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off; SET hnsw.iterative_scan = relaxed_order;
		SET hnsw.max_scan_tuples = 2000000000; SET hnsw.ef_search = 100;
		SELECT t.id FROM $table t
		WHERE (SELECT s.embedding $op t.embedding FROM $table s
		       WHERE s.id + 0 = t.id ORDER BY s.embedding $op t.embedding LIMIT 1) IS NULL
		  AND ($where)
		ORDER BY t.id;
	});
	my @ids = grep { /^\d+$/ } split /\n/, $out;
	return (scalar(@ids), @ids[ 0 .. ($#ids < 9 ? $#ids : 9) ]);
}

# The index scan's answer to ORDER BY $col $op $q LIMIT $k (ids and
# distances, one line per row), with sequential scans off.
sub knn_answer
{
	my ($node, $table, $op, $q, $k, $settings) = @_;
	$settings //= '';
	return $node->safe_psql('postgres', qq{
		SET enable_seqscan = off; $settings
		SELECT id, embedding $op '$q' FROM $table ORDER BY embedding $op '$q' LIMIT $k;
	});
}

# The exact answer (no index), ids only, in distance order then id.
sub exact_answer
{
	my ($node, $table, $op, $q, $k) = @_;
	return $node->safe_psql('postgres', qq{
		SET enable_indexscan = off; SET enable_bitmapscan = off;
		SELECT id FROM $table ORDER BY embedding $op '$q', id LIMIT $k;
	});
}

# recall@k of the index against exact search over the query vectors.
# Runs each side as one psql call.
sub recall_at
{
	my ($node, $table, $op, $queries, $k, $settings) = @_;
	$settings //= '';
	my (@approx, @exact);
	my $a = '';
	my $e = '';
	for my $q (@$queries)
	{
		$a .= "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $table "
		  . "ORDER BY embedding $op '$q' LIMIT $k) s;\n";
		$e .= "SELECT string_agg(id::text, ',') FROM (SELECT id FROM $table "
		  . "ORDER BY embedding $op '$q', id LIMIT $k) s;\n";
	}
	my $ra = $node->safe_psql('postgres',
		"SET enable_seqscan = off; $settings\n$a");
	my $re = $node->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off;\n$e");
	my @la = split /\n/, $ra;
	my @le = split /\n/, $re;
	die "recall_at: " . scalar(@la) . " approximate and " . scalar(@le) . " exact answers"
	  unless @la == @$queries && @le == @$queries;
	my ($hit, $total) = (0, 0);
	for my $i (0 .. $#le)
	{
		my %found = map { $_ => 1 } split /,/, $la[$i];
		for my $id (split /,/, $le[$i])
		{
			$total++;
			$hit++ if $found{$id};
		}
	}
	return $total ? $hit / $total : 0;
}

# Whether EXPLAIN of $sql (with seqscans off) shows an index scan on $index.
sub plan_uses_index
{
	my ($node, $sql, $index) = @_;
	my $plan = $node->safe_psql('postgres',
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) $sql");
	return $plan =~ /Index Scan using $index\b/ ? 1 : 0;
}

# Byte size of the node's log (a position for log_lines_since).
sub log_size
{
	my ($node) = @_;
	return -s $node->logfile // 0;
}

sub log_lines_since
{
	my ($node, $pos) = @_;
	my $text = slurp_file($node->logfile);
	$text = substr($text, $pos) if $pos && $pos <= length($text);
	return split /\n/, $text;
}

# Server log lines since $pos that report an error of the server's own:
# ERROR, PANIC, TRAP, crashes, and FATALs other than connection attempts
# during startup/shutdown. $allow: a regex of expected lines.
sub server_errors_since
{
	my ($node, $pos, $allow) = @_;
	my @bad;
	for my $l (log_lines_since($node, $pos))
	{
		next if defined $allow && $l =~ $allow;
		if ($l =~ /\b(ERROR|PANIC):|TRAP:|terminated by signal|was terminated by|server process .* exited with/)
		{
			push @bad, $l;
		}
		elsif ($l =~ /\bFATAL:/
			&& $l !~ /the database system is (starting up|in recovery mode|shutting down|not yet accepting connections)|terminating connection due to administrator command|terminating connection because of crash of another server process/)
		{
			push @bad, $l;
		}
	}
	return @bad;
}

# Lines since $pos showing that a backend crashed (the postmaster restarted
# or shut down because of it).
sub crash_signals_since
{
	my ($node, $pos) = @_;
	return grep { /terminated by signal|PANIC:|TRAP:|was terminated by exception|all server processes terminated/ }
	  log_lines_since($node, $pos);
}

# PIDs whose parent is $ppid (from /proc).
sub postmaster_children
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $d, '/proc') or return ();
	for my $p (grep { /^\d+$/ } readdir $d)
	{
		open(my $f, '<', "/proc/$p/stat") or next;
		my $stat = <$f>;
		close $f;
		next unless defined $stat;
		# pid (comm) state ppid ...: comm may contain spaces and parentheses.
		my ($rest) = $stat =~ /\)\s+(.*)$/ or next;
		my (undef, $pp) = split /\s+/, $rest;
		push @kids, $p if defined $pp && $pp == $ppid;
	}
	closedir $d;
	return @kids;
}

sub _wait_gone
{
	my ($pids, $timeout) = @_;
	my $end = time() + $timeout;
	while (time() < $end)
	{
		return 1 unless grep { kill(0, $_) } @$pids;
		sleep(0.05);
	}
	return 0;
}

# Crashes the node and starts it again (crash recovery):
#   'all'      SIGKILL to the postmaster and every child at once;
#   'backend'  SIGKILL to one backend ($victim if it still exists, else any
#              child), after which the postmaster stops every process
#              (restart_after_crash = off).
# Returns the log position before the restart.
sub crash_node
{
	my ($node, $mode, $victim) = @_;
	my $pm = $node->{_pid};
	die "crash_node: node not running" unless defined $pm;
	my @kids = postmaster_children($pm);
	if ($mode eq 'all')
	{
		kill('KILL', $pm, @kids);
	}
	else
	{
		my $hit = defined $victim ? kill('KILL', $victim) : 0;
		while (!$hit && @kids)
		{
			my $k = splice(@kids, int(rand(@kids)), 1);
			$hit = kill('KILL', $k);
		}
		# The postmaster notices and stops the others; make sure it did.
		if (!_wait_gone([$pm], 20))
		{
			kill('KILL', $pm, postmaster_children($pm));
		}
		@kids = postmaster_children($pm);
	}
	_wait_gone([ $pm, @kids ], 60) or die "crash_node: server processes survived";
	$node->{_pid} = undef;
	my $pos = log_size($node);
	$node->start;
	return $pos;
}

# Starts psql in the background on $node: runs $sql_file, output to $out_file.
# Returns the IPC::Run harness.
sub psql_bg
{
	my ($node, $sql_file, $out_file, $appname) = @_;
	my $connstr = $node->connstr('postgres');
	$connstr .= " application_name=$appname" if defined $appname;
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-f', $sql_file ],
		'<', \undef, '>', $out_file, '2>', "$out_file.err");
	return $h;
}

# Waits for a background psql (at most $timeout s) and returns its exit code.
sub finish_bg
{
	my ($h, $timeout) = @_;
	my $end = time() + ($timeout // 60);
	while ($h->pumpable && time() < $end)
	{
		eval { $h->pump_nb; };
		sleep(0.05);
	}
	if ($h->pumpable)
	{
		$h->kill_kill;
		return -1;
	}
	$h->finish;
	return $h->result(0) // -1;
}

# Waits until $standby has replayed everything $primary wrote, or dies
# trying: returns '' when caught up, else the reason (a FATAL/PANIC in the
# standby's log, e.g. an inconsistent page found by wal_consistency_checking,
# the standby gone, or the timeout).
sub wait_replay_or_death
{
	my ($primary, $standby, $timeout, $logpos) = @_;
	my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my $end = time() + ($timeout // 120);
	while (time() < $end)
	{
		my @bad = grep { /inconsistent page found|PANIC:|FATAL:|TRAP:|terminated by signal/ }
		  log_lines_since($standby, $logpos // 0);
		return "standby log: $bad[0]" if @bad;
		my ($rc, $out) = $standby->psql('postgres',
			"SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn");
		return "standby does not answer" if $rc != 0 && !kill(0, $standby->{_pid} // 0);
		return '' if $rc == 0 && $out eq 't';
		sleep(0.2);
	}
	return "standby did not replay up to $lsn within $timeout s";
}

# Fields of /proc/<pid>/status in kB (VmHWM, VmRSS, RssAnon, ...).
sub proc_status_kb
{
	my ($pid) = @_;
	my %s;
	open(my $f, '<', "/proc/$pid/status") or return %s;
	while (<$f>)
	{
		$s{$1} = $2 if /^(\w+):\s+(\d+) kB/;
	}
	close $f;
	return %s;
}

# The PID of the backend whose application_name is $appname (waits for it).
sub backend_pid_of
{
	my ($node, $appname, $timeout) = @_;
	my $end = time() + ($timeout // 30);
	while (time() < $end)
	{
		my $pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE application_name = '$appname' LIMIT 1");
		return $pid if $pid =~ /^\d+$/;
		sleep(0.02);
	}
	return undef;
}

# Seconds since $t0 (Time::HiRes), rounded to 0.1.
sub elapsed
{
	my ($t0) = @_;
	return sprintf('%.1f', time() - $t0);
}

1;
