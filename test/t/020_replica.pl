# Replica equality: a primary with a streaming standby, one hnsw index per
# operator class on the same column. After each step (build, insert,
# update, delete, VACUUM, REINDEX, REINDEX CONCURRENTLY, inserts into the
# rebuilt indexes) the standby, once it has replayed the WAL, returns
# exactly the primary's answers (ids and distances, in order) to a set of
# kNN queries that use the index; the standby's indexes pass
# hnsw_index_check (with heapallindexed), which reports the same on both
# nodes.
# Sizes: VECEXT_REPLICA_ROWS (2000), VECEXT_REPLICA_DIM (16),
# VECEXT_REPLICA_QUERIES (6); VECEXT_REPLICA_SEED for the data.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $ROWS    = env_int('VECEXT_REPLICA_ROWS', 2000);
my $DIM     = env_int('VECEXT_REPLICA_DIM', 16);
my $QUERIES = env_int('VECEXT_REPLICA_QUERIES', 6);
my $K       = 10;
test_seed('VECEXT_REPLICA_SEED');
my $t0 = time();

my %ops = (
	l2     => '<->',
	ip     => '<#>',
	cosine => '<=>',
	l1     => '<+>');
my @classes = sort keys %ops;

my $primary = vecext_primary('replica_primary',
	"shared_buffers = 32MB\nmax_connections = 20\nlog_statement = none\n");
# The scenario runs twice: on items (float4 elements) and on items_sq8
# (quantization = 'sq8'), with the same data.
$primary->safe_psql('postgres', qq{
	CREATE TABLE items (id int PRIMARY KEY, embedding vector($DIM));
	ALTER TABLE items SET (autovacuum_enabled = off);
} . rand_vectors_sql('items', 1, $ROWS, $DIM) . qq{
	CREATE TABLE items_sq8 (LIKE items INCLUDING ALL);
	ALTER TABLE items_sq8 SET (autovacuum_enabled = off);
	INSERT INTO items_sq8 SELECT * FROM items;
});
our $T = 'items';      # the table of the current scenario
our $QUANT = 'none';

# The standby starts before the indexes exist: their builds are replayed.
my $standby = vecext_standby($primary, 'replica_standby');

my @queries = map { rand_vector($DIM) } 1 .. $QUERIES;
# A vector of norm 0 as a query too (cosine: undefined distances).
push @queries, '[' . join(',', (0) x $DIM) . ']';

# All kNN answers of one node, one block per opclass (one psql call).
sub answers
{
	my ($node) = @_;
	my $sql = "SET enable_seqscan = off;\n";
	for my $c (@classes)
	{
		$sql .= "SELECT '== $c';\n";
		$sql .= "SELECT id, embedding $ops{$c} '$_' FROM $T ORDER BY embedding $ops{$c} '$_' LIMIT $K;\n"
		  . "SELECT '--';\n"
		  for @queries;
	}
	my %by;
	my $cur;
	for my $l (split /\n/, $node->safe_psql('postgres', $sql))
	{
		if ($l =~ /^== (\w+)$/) { $cur = $1; next; }
		$by{$cur} .= "$l\n";
	}
	return \%by;
}

# Compares the standby with the primary after a step.
sub compare_nodes
{
	my ($step) = @_;
	my $why = wait_replay_or_death($primary, $standby, 180);
	is($why, '', "$step: the standby replayed the WAL");
	my $pa = answers($primary);
	my $sa = answers($standby);
	for my $c (@classes)
	{
		my $rows = grep { $_ ne '--' } split /\n/, $pa->{$c};
		ok($rows >= $K * (@queries - 1), "$step: $c answers have rows ($rows)");
		is($sa->{$c}, $pa->{$c}, "$step: $c kNN answers on the standby equal the primary's");
		check_index_ok($standby, "${T}_$c", "$step: ${T}_$c passes hnsw_index_check on the standby",
			1);
		is(join("\n", index_problems($standby, "${T}_$c", 1)),
			join("\n", index_problems($primary, "${T}_$c", 1)),
			"$step: hnsw_index_check of ${T}_$c says the same on both nodes");
	}
}

for my $quant ('none', 'sq8')
{
$QUANT = $quant;
$T = $quant eq 'none' ? 'items' : 'items_sq8';
my $next = $ROWS + 1;

$primary->safe_psql('postgres', join('', map {
	"CREATE INDEX ${T}_$_ ON $T USING hnsw (embedding vector_${_}_ops) "
	  . "WITH (m = 8, ef_construction = 32, quantization = '$QUANT');\n"
} @classes));
for my $c (@classes)
{
	ok(plan_uses_index($primary,
			"SELECT id FROM $T ORDER BY embedding $ops{$c} '$queries[0]' LIMIT 10", "${T}_$c"),
		"the $c query uses ${T}_$c");
}
compare_nodes("$QUANT: " . 'build');

$primary->safe_psql('postgres', rand_vectors_sql($T, $next, int($ROWS / 2), $DIM));
$next += int($ROWS / 2);
compare_nodes("$QUANT: " . 'insert');

# Updates: new row versions with new vectors (new index entries).
my $upd = '';
for my $id (1 .. int($ROWS / 10))
{
	my $v = rand_vector($DIM);
	$upd .= "UPDATE $T SET embedding = '$v' WHERE id = " . ($id * 7 % $ROWS + 1) . ";\n";
}
$primary->safe_psql('postgres', $upd);
compare_nodes("$QUANT: " . 'update');

$primary->safe_psql('postgres', "DELETE FROM $T WHERE id % 3 = 0");
compare_nodes("$QUANT: " . 'delete');

$primary->safe_psql('postgres', "VACUUM $T");
compare_nodes("$QUANT: " . 'vacuum');

$primary->safe_psql('postgres', rand_vectors_sql($T, $next, int($ROWS / 4), $DIM));
$next += int($ROWS / 4);
compare_nodes("$QUANT: " . 'insert after vacuum');

$primary->safe_psql('postgres', "REINDEX INDEX ${T}_l2; REINDEX INDEX ${T}_ip");
compare_nodes("$QUANT: " . 'reindex');

$primary->safe_psql('postgres', "REINDEX INDEX CONCURRENTLY ${T}_cosine");
$primary->safe_psql('postgres', "REINDEX TABLE CONCURRENTLY $T");
compare_nodes("$QUANT: " . 'reindex concurrently');

$primary->safe_psql('postgres', rand_vectors_sql($T, $next, int($ROWS / 4), $DIM)
	  . "DELETE FROM $T WHERE id % 5 = 0; VACUUM $T;");
compare_nodes("$QUANT: " . 'insert, delete and vacuum after reindex');

my $n = $primary->safe_psql('postgres', "SELECT count(*) FROM $T");
note("replica ($QUANT): $n rows at the end, " . scalar(@queries) . " queries x " . scalar(@classes)
	  . " opclasses compared per step, " . elapsed($t0) . " s");
}


$standby->stop;
$primary->stop;
done_testing();
