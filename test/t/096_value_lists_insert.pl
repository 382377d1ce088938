# Inserts into hnsw indexes with value lists (WITH (value_lists = N)): a new
# row gets a list for each of its frequent metadata values (those in the
# index's directory) linking it to its nearest rows with that value, and
# those rows' lists link back to it.
#   - docs: built WITH (value_lists = 1) on the first half of the rows
#     (c60 = id % 60 has 250 rows per value there, s = 'x' || id % 40 has
#     375: both frequent, each row's list is for its c60 value, the rarer
#     one); the second half is inserted by two concurrent sessions. Then
#     recall@10 of metadata @> '{"c60": v}' against the exact answer >= 0.95,
#     over all rows and over the inserted rows alone (measured with empty
#     lists for inserted rows, as before inserts filled them: 0.60 for
#     those); hnsw_index_check returns no rows; a streaming standby returns
#     the primary's answers; the scans look through no more elements than
#     after a REINDEX of the same rows (1.25x at most; measured 4x with
#     empty lists) and, where the scans report it (DEBUG2), follow value
#     lists at least 0.8 times as often. Queries per second with
#     hnsw.filter_value_lists on and off are printed (note), not asserted.
#   - small: value_lists = 2 (two lists per row: a number and a string
#     value), the inserts logged with wal_consistency_checking = 'generic'
#     (the standby compares every page it replays with the primary's
#     image); recall on both values, the structure check.
# Sizes: VECEXT_VLI_ROWS (30000; half built, half inserted), VECEXT_VLI_DIM
# (16), VECEXT_VLI_QUERIES (40); VECEXT_VLI_SEED for the data.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $ROWS    = env_int('VECEXT_VLI_ROWS', 30000);
my $DIM     = env_int('VECEXT_VLI_DIM', 16);
my $QUERIES = env_int('VECEXT_VLI_QUERIES', 40);
my $BUILD   = int($ROWS / 2);
my $K       = 10;
my $FLOOR   = 0.95;
test_seed('VECEXT_VLI_SEED');
my $t0 = time();

my $primary = vecext_primary('vli_primary', "shared_buffers = 128MB\nlog_statement = none\nmax_wal_size = 2GB\n");
my $standby = vecext_standby($primary, 'vli_standby');
my $tmp = PostgreSQL::Test::Utils::tempdir;

# INSERT statements of rows $first..$last (those with id % $mod == $rem), at
# most $batch rows each; $meta is the metadata expression over `id`.
sub insert_sql
{
	my ($table, $first, $last, $meta, $mod, $rem, $batch) = @_;
	my $sql = '';
	my @rows;
	my $flush = sub {
		return unless @rows;
		$sql .= "INSERT INTO $table SELECT id, v::vector, $meta FROM (VALUES "
		  . join(",\n", @rows) . ") t(id, v);\n";
		@rows = ();
	};
	for my $id ($first .. $last)
	{
		next if $id % $mod != $rem;
		push @rows, "($id, '" . rand_vector($DIM) . "')";
		$flush->() if @rows >= $batch;
	}
	$flush->();
	return $sql;
}

# Filtered kNN ids of every query (one line per query, "id,id,..."): with
# the index and the given SET commands, or exactly.
sub answers
{
	my ($node, $table, $queries, $exact, $settings) = @_;
	my $sql = $exact
	  ? "SET enable_indexscan = off; SET enable_bitmapscan = off;\n"
	  : "SET enable_seqscan = off; " . ($settings // '') . "\n";
	for my $q (@$queries)
	{
		my ($vec, $cond) = @$q;
		$sql .= "SELECT coalesce(string_agg(id::text, ',' ORDER BY r), '') FROM (SELECT id, row_number() OVER () AS r "
		  . "FROM (SELECT id FROM $table WHERE $cond ORDER BY embedding <-> '$vec'"
		  . ($exact ? ', id' : '') . " LIMIT $K) s) x;\n";
	}
	my $out = $node->safe_psql('postgres', $sql);
	return [ split /\n/, $out, -1 ];
}

# Queries per second of the filtered queries with the index and the given
# SET commands: $rounds rounds of every query in one psql call (after one
# round to warm the cache).
sub queries_per_second
{
	my ($node, $table, $queries, $settings, $rounds) = @_;
	my $one = '';
	for my $q (@$queries)
	{
		my ($vec, $cond) = @$q;
		$one .= "SELECT id FROM $table WHERE $cond ORDER BY embedding <-> '$vec' LIMIT $K;\n";
	}
	my $set = "SET enable_seqscan = off; $settings\n";
	$node->safe_psql('postgres', $set . $one);
	my $t = time();
	$node->safe_psql('postgres', $set . ($one x $rounds));
	return $rounds * scalar(@$queries) / (time() - $t);
}

# recall@K of $got against $want, over every row of the exact answers, or
# over those that $pick accepts (an id test).
sub recall
{
	my ($want, $got, $pick) = @_;
	my ($hit, $total) = (0, 0);
	for my $i (0 .. $#$want)
	{
		my %g = map { $_ => 1 } grep { $_ ne '' } split /,/, ($got->[$i] // '');
		for my $id (grep { $_ ne '' } split /,/, $want->[$i])
		{
			next if defined $pick && !$pick->($id);
			$total++;
			$hit++ if $g{$id};
		}
	}
	return ($total ? $hit / $total : 1, $total);
}

# The scans' DEBUG2 statistics summed over the queries: elements looked
# through, and expansions that followed a value list (undef when the scans
# do not report them).
sub scan_statistics
{
	my ($node, $table, $queries) = @_;
	my $sql = "SET client_min_messages = debug2; SET enable_seqscan = off;\n";
	for my $q (@$queries)
	{
		my ($vec, $cond) = @$q;
		$sql .= "SELECT id FROM $table WHERE $cond ORDER BY embedding <-> '$vec' LIMIT $K;\n";
	}
	my ($rc, $out, $err) = $node->psql('postgres', $sql);
	die "scan_statistics: $err" if $rc != 0;
	my ($through, $values, $scans) = (0, undef, 0);
	for my $line (split /\n/, $err)
	{
		next unless $line =~ /hnsw scan: .* (\d+) looked through/;
		$through += $1;
		$scans++;
		$values = ($values // 0) + $1 if $line =~ / (\d+) expansions by value lists/;
	}
	die "scan_statistics: no scan statistics in the output" if $scans == 0;
	return ($through, $values);
}

sub check_no_problems
{
	my ($node, $index, $what) = @_;
	my @p = index_problems($node, $index, 1);
	is(scalar(@p), 0, "$what: hnsw_index_check returns no rows");
	diag(join("\n", @p[ 0 .. ($#p < 9 ? $#p : 9) ])) if @p;
}

# ---- docs: value_lists = 1, half built, half inserted concurrently --------
my $docs_meta = q{jsonb_build_object('c60', id % 60, 's', 'x' || (id % 40))};
$primary->safe_psql('postgres', qq{
	CREATE TABLE docs (id int PRIMARY KEY, embedding vector($DIM), metadata jsonb);
	ALTER TABLE docs SET (autovacuum_enabled = off);
} . insert_sql('docs', 1, $BUILD, $docs_meta, 1, 0, 1000) . qq{
	CREATE INDEX docs_idx ON docs USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
	  WITH (m = 16, ef_construction = 64, value_lists = 1);
});

my $t_ins = time();
my @bg;
for my $rem (0, 1)
{
	my $file = "$tmp/insert_$rem.sql";
	open(my $f, '>', $file) or die "cannot write $file: $!";
	print $f insert_sql('docs', $BUILD + 1, $ROWS, $docs_meta, 2, $rem, 50);
	close $f;
	push @bg, [ psql_bg($primary, $file, "$tmp/insert_$rem.out"), $rem ];
}
for my $b (@bg)
{
	my ($h, $rem) = @$b;
	my $rc = finish_bg($h, 1800);
	is($rc, 0, "concurrent inserts, session $rem, succeeded");
	diag(slurp_file("$tmp/insert_$rem.out.err")) if $rc != 0 && -f "$tmp/insert_$rem.out.err";
}
note(sprintf('%d rows inserted by 2 sessions in %.1f s', $ROWS - $BUILD, time() - $t_ins));
is($primary->safe_psql('postgres', 'SELECT count(*) FROM docs'), $ROWS, 'every row is in the table');
$primary->safe_psql('postgres', 'ANALYZE docs');

my @queries = map { [ rand_vector($DIM), sprintf(q{metadata @> '{"c60": %d}'}, int(rand(60))) ] } 1 .. $QUERIES;
ok(plan_uses_index($primary, "SELECT id FROM docs WHERE $queries[0][1] ORDER BY embedding <-> '$queries[0][0]' LIMIT $K",
		'docs_idx'),
	'the filtered query uses the index');

my $want = answers($primary, 'docs', \@queries, 1);
my $inserted = sub { $_[0] > $BUILD };
for my $mode ([ 'on', 1 ], [ 'off', 0 ])
{
	my ($name, $assert) = @$mode;
	my $settings = "SET hnsw.filter_value_lists = $name;";
	my $got = answers($primary, 'docs', \@queries, 0, $settings);
	my $qps = queries_per_second($primary, 'docs', \@queries, $settings, 10);
	my ($r_all) = recall($want, $got);
	my ($r_ins, $n_ins) = recall($want, $got, $inserted);
	my ($r_built) = recall($want, $got, sub { $_[0] <= $BUILD });
	note(sprintf('filter_value_lists %s: recall@%d %.3f (inserted rows %.3f of %d, built rows %.3f), %.0f queries/s',
			$name, $K, $r_all, $r_ins, $n_ins, $r_built, $qps));
	next unless $assert;
	cmp_ok(sprintf('%.3f', $r_all), '>=', $FLOOR, sprintf('value lists on: recall@%d %.3f', $K, $r_all));
	ok($n_ins > 0, "the exact answers include inserted rows ($n_ins)");
	cmp_ok(sprintf('%.3f', $r_ins), '>=', $FLOOR,
		sprintf('value lists on: recall@%d of the rows inserted after the build %.3f', $K, $r_ins));
}
check_no_problems($primary, 'docs_idx', 'docs after the inserts');

is(wait_replay_or_death($primary, $standby, 300), '', 'the standby replayed the inserts');
{
	my $p = answers($primary, 'docs', \@queries, 0, 'SET hnsw.filter_value_lists = on;');
	my $s = answers($standby, 'docs', \@queries, 0, 'SET hnsw.filter_value_lists = on;');
	is(join("\n", @$s), join("\n", @$p), "the standby's filtered answers equal the primary's");
}

# The inserted rows' value lists are followed as the built ones are: the
# scans look through no more non-matching elements than after a REINDEX of
# the same rows (an inserted row without a list for its value would be
# expanded by looking through its links), and follow as many value lists.
my ($through_ins, $values_ins) = scan_statistics($primary, 'docs', \@queries);
$primary->safe_psql('postgres', 'REINDEX INDEX docs_idx');
my ($through_re, $values_re) = scan_statistics($primary, 'docs', \@queries);
note("elements looked through: $through_ins after the inserts, $through_re after REINDEX; expansions by value lists: "
	  . ($values_ins // 'n/a') . ' after the inserts, ' . ($values_re // 'n/a') . ' after REINDEX');
cmp_ok($through_ins, '<=', 1.25 * $through_re + 10 * $QUERIES,
	"scans look through about as many elements after inserts ($through_ins) as after REINDEX ($through_re)");
SKIP:
{
	skip('the scans do not report expansions by value lists', 1) unless defined $values_ins && defined $values_re;
	cmp_ok($values_ins, '>=', 0.8 * $values_re,
		"scans follow value lists after inserts ($values_ins) nearly as often as after REINDEX ($values_re)");
}

# ---- small: value_lists = 2, inserts under wal_consistency_checking --------
# 3000 rows built: a = id % 12 (250 rows per value, numbers), b = 'y' ||
# id % 13 (about 230, strings): both frequent, each row gets a list for each.
my $small_meta = q{jsonb_build_object('a', id % 12, 'b', 'y' || (id % 13))};
$primary->safe_psql('postgres', qq{
	CREATE TABLE small (id int PRIMARY KEY, embedding vector($DIM), metadata jsonb);
	ALTER TABLE small SET (autovacuum_enabled = off);
} . insert_sql('small', 1, 3000, $small_meta, 1, 0, 1000) . qq{
	CREATE INDEX small_idx ON small USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
	  WITH (m = 8, ef_construction = 32, value_lists = 2);
});
my $logpos = log_size($standby);
$primary->safe_psql('postgres',
	"SET wal_consistency_checking = 'generic';\n" . insert_sql('small', 3001, 3600, $small_meta, 1, 0, 20));
is(wait_replay_or_death($primary, $standby, 300, $logpos), '',
	'small: the standby replayed the inserts with consistent pages');
my @small_q;
for my $i (1 .. $QUERIES)
{
	my $cond = $i % 2
	  ? sprintf(q{metadata @> '{"a": %d}'}, int(rand(12)))
	  : sprintf(q{metadata @> '{"b": "y%d"}'}, int(rand(13)));
	push @small_q, [ rand_vector($DIM), $cond ];
}
{
	my $w = answers($primary, 'small', \@small_q, 1);
	my $g = answers($primary, 'small', \@small_q, 0, 'SET hnsw.filter_value_lists = on;');
	my ($r_all) = recall($w, $g);
	my ($r_ins, $n_ins) = recall($w, $g, sub { $_[0] > 3000 });
	cmp_ok(sprintf('%.3f', $r_all), '>=', $FLOOR, sprintf('small: recall@%d %.3f', $K, $r_all));
	cmp_ok(sprintf('%.3f', $r_ins), '>=', $FLOOR,
		sprintf('small: recall@%d of the inserted rows %.3f (%d)', $K, $r_ins, $n_ins));
}
check_no_problems($primary, 'small_idx', 'small after the inserts');

note('value lists insert: ' . elapsed($t0) . ' s');
$standby->stop;
$primary->stop;
done_testing();
