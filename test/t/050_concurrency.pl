# Concurrency: pgbench runs custom scripts mixing inserts, updates,
# deletes, kNN searches (L2 and cosine) and VACUUM on one table with two
# hnsw indexes, from several clients, for a bounded time. Then: pgbench had
# no failed transaction and no aborted client, the server log has no ERROR
# (no deadlock), both indexes pass hnsw_index_check (heapallindexed), and
# recall@10 of each is within 0.02 of a fresh build of the same rows
# (CREATE INDEX on a copy of the table), before and after a final VACUUM.
# VECEXT_PGBENCH_SECONDS (30), VECEXT_PGBENCH_CLIENTS (4), VECEXT_CONC_ROWS
# (5000), VECEXT_CONC_DIM (16), VECEXT_CONC_QUERIES (100), VECEXT_CONC_SEED.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $SECONDS = env_int('VECEXT_PGBENCH_SECONDS', 30);
my $CLIENTS = env_int('VECEXT_PGBENCH_CLIENTS', 4);
my $ROWS    = env_int('VECEXT_CONC_ROWS', 5000);
my $DIM     = env_int('VECEXT_CONC_DIM', 16);
my $QUERIES = env_int('VECEXT_CONC_QUERIES', 100);
my $K       = 10;
my $TOL     = 0.02;
test_seed('VECEXT_CONC_SEED');
my $t0 = time();

my $node = vecext_primary('concurrency',
	"shared_buffers = 64MB\nmax_connections = 30\nlog_statement = none\n"
	  . "log_lock_waits = on\ndeadlock_timeout = '1s'\nmax_parallel_maintenance_workers = 1\n");
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $opts = 'WITH (m = 16, ef_construction = 64)';

$node->safe_psql('postgres', qq{
	CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector($DIM));
	INSERT INTO items (embedding)
	  SELECT (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, $DIM) WHERE i > 0)::vector
	  FROM generate_series(1, $ROWS) i;
	CREATE INDEX items_l2 ON items USING hnsw (embedding vector_l2_ops) $opts;
	CREATE INDEX items_cos ON items USING hnsw (embedding vector_cosine_ops) $opts;
});

my $rand_vec = "(SELECT array_agg(random() * 2 - 1)::vector FROM generate_series(1, $DIM))";
my $maxid    = 3 * $ROWS;
my %scripts  = (
	insert => [ 200, "INSERT INTO items (embedding) SELECT $rand_vec;\n" ],
	update => [ 75, "\\set id random(1, $maxid)\nUPDATE items SET embedding = $rand_vec WHERE id = :id;\n" ],
	delete => [ 50, "\\set id random(1, $maxid)\nDELETE FROM items WHERE id = :id;\n" ],
	search_l2 => [ 100, "SELECT id FROM items ORDER BY embedding <-> $rand_vec LIMIT $K;\n" ],
	search_cos => [ 70, "SELECT id FROM items ORDER BY embedding <=> $rand_vec LIMIT $K;\n" ],
	vacuum => [ 1, "VACUUM items;\n" ]);
my @args;
for my $name (sort keys %scripts)
{
	my $file = "$tmp/$name.sql";
	open(my $f, '>', $file) or die;
	print $f $scripts{$name}[1];
	close $f;
	push @args, '-f', "$file\@$scripts{$name}[0]";
}
ok(plan_uses_index($node, "SELECT id FROM items ORDER BY embedding <-> $rand_vec LIMIT $K", 'items_l2'),
	'the L2 search uses items_l2');
ok(plan_uses_index($node, "SELECT id FROM items ORDER BY embedding <=> $rand_vec LIMIT $K", 'items_cos'),
	'the cosine search uses items_cos');

my $pos = log_size($node);
my ($out, $err) = ('', '');
{
	local $ENV{PGOPTIONS} = '-c enable_seqscan=off';
	IPC::Run::run(
		[ 'pgbench', '-n', '-c', $CLIENTS, '-j', ($CLIENTS < 2 ? 1 : 2), '-T', $SECONDS,
			@args, $node->connstr('postgres') ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($SECONDS + 300));
}
my $rc = $?;
note("pgbench: $out");
is($rc, 0, 'pgbench exits with 0');
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
ok(defined $tx && $tx > 0, "pgbench processed transactions (" . ($tx // 'none') . ')');
is($failed // 0, 0, 'no failed transaction');
unlike("$out\n$err", qr/aborted|ERROR|deadlock/i, 'no client aborted, no error');
diag($err) if $err =~ /aborted|ERROR|deadlock/i;
my @errors = server_errors_since($node, $pos);
is(scalar(@errors), 0, 'the server log has no error (no deadlock)');
diag(join("\n", @errors[ 0 .. ($#errors < 5 ? $#errors : 5) ])) if @errors;
my @waits = grep { /still waiting for|deadlock/ } log_lines_since($node, $pos);
note(scalar(@waits) . ' lock waits over deadlock_timeout logged');

my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
for my $idx ('items_l2', 'items_cos')
{
	check_index_ok($node, $idx, "$idx passes hnsw_index_check after the workload");
}

# Recall against exact search: the index that lived through the workload
# against a fresh build of the same rows.
my @queries = map { rand_vector($DIM) } 1 .. $QUERIES;
$node->safe_psql('postgres', qq{
	CREATE TABLE fresh AS SELECT id, embedding FROM items;
	CREATE INDEX fresh_l2 ON fresh USING hnsw (embedding vector_l2_ops) $opts;
	CREATE INDEX fresh_cos ON fresh USING hnsw (embedding vector_cosine_ops) $opts;
});
my %figures;
for my $when ('after the workload', 'after a final VACUUM')
{
	$node->safe_psql('postgres', 'VACUUM items') if $when =~ /VACUUM/;
	for my $op ('<->', '<=>')
	{
		my $r_conc  = recall_at($node, 'items', $op, \@queries, $K);
		my $r_fresh = recall_at($node, 'fresh', $op, \@queries, $K);
		my $name    = $op eq '<->' ? 'L2' : 'cosine';
		$figures{"$name $when"} = sprintf('%.3f (fresh %.3f)', $r_conc, $r_fresh);
		cmp_ok($r_conc, '>=', $r_fresh - $TOL,
			sprintf('%s recall@%d %s %.3f is within %.2f of a fresh build (%.3f)',
				$name, $K, $when, $r_conc, $TOL, $r_fresh));
	}
}
check_index_ok($node, 'items_l2', 'items_l2 passes hnsw_index_check after the final VACUUM');

note(sprintf('concurrency: %d clients for %d s: %s transactions, %s rows at the end, recall %s, %s s',
		$CLIENTS, $SECONDS, $tx // '?', $rows,
		join('; ', map { "$_ $figures{$_}" } sort keys %figures), elapsed($t0)));

$node->stop;
done_testing();
