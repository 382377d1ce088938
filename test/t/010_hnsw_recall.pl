# Recall of the hnsw index against exact search, for every operator class:
# after the build (in memory with 2 threads, and through the
# maintenance_work_mem fallback), after inserting more rows into the built
# index, and after deleting 30% of the rows and VACUUM. After every step
# hnsw_index_check finds no problem.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VecextTest;

my $DIM     = 32;
my $ROWS    = 5000;
my $MORE    = 2000;
my $QUERIES = 100;
my $K       = 10;
my $FLOOR   = 0.9;

# Seeded data shaped like embeddings: 20 Gaussian-ish clusters in an
# 8-dimensional latent space, projected to $DIM dimensions, plus a little
# noise. MINSTD generator: the same numbers on every platform.
my $seed = 20240601;
sub uniform { $seed = ($seed * 48271) % 2147483647; return $seed / 2147483647; }
sub gauss { return (uniform() + uniform() + uniform() - 1.5) * 2; }

my $LATENT   = 8;
my @proj     = map { [ map { gauss() / sqrt($LATENT) } 1 .. $DIM ] } 1 .. $LATENT;
my @centers  = map { [ map { uniform() * 4 - 2 } 1 .. $LATENT ] } 1 .. 20;

sub vector_rows
{
	my ($first, $n) = @_;
	my $out = '';
	for my $id ($first .. $first + $n - 1)
	{
		my $c = $centers[ int(uniform() * 20) % 20 ];
		my @z = map { $c->[$_] + 0.5 * gauss() } 0 .. $LATENT - 1;
		my @x;
		for my $j (0 .. $DIM - 1)
		{
			my $s = 0.05 * gauss();
			$s += $z[$_] * $proj[$_][$j] for 0 .. $LATENT - 1;
			push @x, sprintf('%.6g', $s);
		}
		$out .= "$id\t[" . join(',', @x) . "]\n";
	}
	return $out;
}

my $base    = vector_rows(1, $ROWS);
my $more    = vector_rows($ROWS + 1, $MORE);
my $queries = vector_rows(1, $QUERIES);

my $node = vecext_primary('recall', "max_parallel_maintenance_workers = 1\n");

sub copy_into
{
	my ($table, $rows) = @_;
	$node->safe_psql('postgres', "COPY $table (id, v) FROM STDIN;\n$rows\\.\n");
}

$node->safe_psql('postgres', "CREATE TABLE queries (id int, v vector($DIM))");
copy_into('queries', $queries);

# Fraction of the index's k nearest that are among the exact k nearest
# (exact: the same query without the index), over all queries.
sub recall
{
	my ($table, $op) = @_;
	my $nn = "SELECT q.id AS qid, x.id FROM queries q CROSS JOIN LATERAL "
	  . "(SELECT t.id FROM $table t ORDER BY t.v $op q.v LIMIT $K) x";
	return $node->safe_psql(
		'postgres', qq{
		SET enable_indexscan = off;
		SET enable_bitmapscan = off;
		CREATE TEMP TABLE exact AS $nn;
		RESET enable_indexscan;
		SET enable_seqscan = off;
		SET hnsw.ef_search = 40;
		CREATE TEMP TABLE approx AS $nn;
		SELECT round(count(*)::numeric / ($K * $QUERIES), 3)
		FROM approx JOIN exact USING (qid, id);
	});
}

sub uses_index
{
	my ($table, $op, $index) = @_;
	my $plan = $node->safe_psql(
		'postgres', qq{
		SET enable_seqscan = off;
		EXPLAIN (COSTS OFF) SELECT q.id, x.id FROM queries q CROSS JOIN LATERAL
		  (SELECT t.id FROM $table t ORDER BY t.v $op q.v LIMIT $K) x;
	});
	like($plan, qr/Index Scan using $index/, "$table: the nearest-neighbour query uses $index");
}

sub check_step
{
	my ($table, $op, $index, $step) = @_;
	my $r = recall($table, $op);
	cmp_ok($r, '>=', $FLOOR, "$table: recall\@$K $r >= $FLOOR $step");
	is($node->safe_psql('postgres', "SELECT string_agg(p, '; ') FROM hnsw_index_check('$index', true) p"),
		'', "$table: hnsw_index_check finds no problem $step");
}

my @cases = (
	[ 'l2',     'vector_l2_ops',     '<->', '' ],
	[ 'ip',     'vector_ip_ops',     '<#>', '' ],
	[ 'cosine', 'vector_cosine_ops', '<=>', '' ],
	[ 'l1',     'vector_l1_ops',     '<+>', '' ],
	# Too little memory for the graph: most rows go through the insert path.
	[ 'l2_small_mem', 'vector_l2_ops', '<->', "SET maintenance_work_mem = '4MB';" ],
	# SQ8: traversal by codes, rows re-ranked from the table.
	[ 'l2_sq8',     'vector_l2_ops',     '<->', '', ", quantization = 'sq8'" ],
	[ 'ip_sq8',     'vector_ip_ops',     '<#>', '', ", quantization = 'sq8'" ],
	[ 'cosine_sq8', 'vector_cosine_ops', '<=>', '', ", quantization = 'sq8'" ],
	[ 'l1_sq8',     'vector_l1_ops',     '<+>', '', ", quantization = 'sq8'" ],
	[ 'l2_sq8_small_mem', 'vector_l2_ops', '<->', "SET maintenance_work_mem = '4MB';", ", quantization = 'sq8'" ],
);

for my $case (@cases)
{
	my ($name, $opclass, $op, $settings, $options) = @$case;
	$options //= '';
	my $table = "items_$name";
	my $index = "${table}_idx";
	$node->safe_psql('postgres', "CREATE TABLE $table (id int, v vector($DIM))");
	copy_into($table, $base);
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		"$settings CREATE INDEX $index ON $table USING hnsw (v $opclass) WITH (m = 16, ef_construction = 64$options)");
	is($ret, 0, "$table: index built");
	if ($settings)
	{
		like($stderr, qr/hnsw graph no longer fits into maintenance_work_mem after \d+ tuples/,
			"$table: the build says it fell back to inserting rows one by one");
	}
	is($node->safe_psql('postgres', "SELECT elements FROM hnsw_index_stats('$index')"),
		$ROWS, "$table: every row is indexed");
	uses_index($table, $op, $index);
	check_step($table, $op, $index, 'after the build');

	# Under inner product most links point to a few rows of large norm,
	# whose full lists are pruned on every insert: each row such a pruning
	# drops must get another in-link (HnswRelink), or it becomes unreachable.
	copy_into($table, $more);
	check_step($table, $op, $index, "after inserting $MORE rows");

	$node->safe_psql('postgres', "DELETE FROM $table WHERE id % 10 < 3");
	$node->safe_psql('postgres', "VACUUM $table");
	is($node->safe_psql('postgres', "SELECT elements FROM hnsw_index_stats('$index')"),
		$node->safe_psql('postgres', "SELECT count(*) FROM $table"),
		"$table: vacuum removed the deleted rows from the index");
	check_step($table, $op, $index, 'after deleting 30% and VACUUM');
	$node->safe_psql('postgres', "DROP TABLE $table");
}

# 3072 dimensions (beyond float4 elements' 2000): an SQ8 index on clustered
# data, recall@10 against exact search.
{
	my $W = 3072;
	$node->safe_psql('postgres', qq{
		CREATE TABLE wide (id int, v vector($W));
		-- 23 clusters on a 6-dimensional latent space, spread within each
		-- cluster, plus a little noise: distances differ clearly.
		INSERT INTO wide SELECT i, (SELECT array_agg(s) FROM (SELECT j,
		    sum((sin((i % 23) * 1.7 + k * 0.9) * 2 + 0.5 * sin(i * 0.77 + k * 1.3)) * sin(j * (0.01 + k * 0.003) + k))
		      + 0.05 * sin(i * 12.9898 + j * 78.233) AS s
		    FROM generate_series(1, $W) j, generate_series(1, 6) k GROUP BY j ORDER BY j) x)::vector
		  FROM generate_series(1, 1000) i;
		CREATE TABLE wide_queries (id int, v vector($W));
		INSERT INTO wide_queries SELECT i, (SELECT array_agg(s) FROM (SELECT j,
		    sum((sin((i % 23) * 1.7 + k * 0.9) * 2 + 0.5 * sin(i * 0.31 + k * 2.1)) * sin(j * (0.01 + k * 0.003) + k))
		      + 0.05 * sin(i * 4.1414 + j * 3.7) AS s
		    FROM generate_series(1, $W) j, generate_series(1, 6) k GROUP BY j ORDER BY j) x)::vector
		  FROM generate_series(1, 30) i;
		CREATE INDEX wide_idx ON wide USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 64, quantization = 'sq8');
	});
	is($node->safe_psql('postgres', "SELECT dimensions || ' ' || quantization FROM hnsw_index_stats('wide_idx')"),
		"$W sq8", 'a 3072-dimension SQ8 index is built');
	my $nn = "SELECT q.id AS qid, x.id FROM wide_queries q CROSS JOIN LATERAL "
	  . "(SELECT t.id FROM wide t ORDER BY t.v <-> q.v LIMIT $K) x";
	my $r = $node->safe_psql('postgres', qq{
		SET enable_indexscan = off;
		SET enable_bitmapscan = off;
		CREATE TEMP TABLE exact AS $nn;
		RESET enable_indexscan;
		SET enable_seqscan = off;
		SET hnsw.ef_search = 40;
		CREATE TEMP TABLE approx AS $nn;
		SELECT round(count(*)::numeric / ($K * 30), 3) FROM approx JOIN exact USING (qid, id);
	});
	cmp_ok($r, '>=', $FLOOR, "wide: recall\@$K $r >= $FLOOR with 3072 dimensions and SQ8");
	is($node->safe_psql('postgres', "SELECT string_agg(p, '; ') FROM hnsw_index_check('wide_idx', true) p"),
		'', 'wide: hnsw_index_check finds no problem');
	$node->safe_psql('postgres', 'DROP TABLE wide, wide_queries');
}

$node->stop;
done_testing();
