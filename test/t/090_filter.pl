# Filtered search on a jsonb metadata column inside the hnsw index:
#   - recall@10 against the exact filtered top 10 >= 0.95 at selectivities
#     of about 10%, 1% and 0.1%, and for a conjunction of two filters, with
#     LIMIT rows returned whenever that many rows match; the same with SQ8;
#   - after inserts, metadata updates, deletes and VACUUM, still so, and the
#     structure check passes;
#   - the SQ8 index has link codes: its default two-hop traversal (with the
#     adaptive candidate list, hnsw.filter_ef_widen) returns LIMIT rows
#     whenever that many match and keeps recall >= 0.9 (measured: >= 0.98),
#     LIMIT rows also when hnsw.max_scan_tuples is small and scans end with
#     their exact pass;
#   - a streaming standby returns exactly the primary's filtered answers and
#     its index passes the structure check.
# Sizes: VECEXT_FILTER_ROWS (20000), VECEXT_FILTER_DIM (16),
# VECEXT_FILTER_QUERIES (20); VECEXT_FILTER_SEED for the data.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $ROWS    = env_int('VECEXT_FILTER_ROWS', 20000);
my $DIM     = env_int('VECEXT_FILTER_DIM', 16);
my $QUERIES = env_int('VECEXT_FILTER_QUERIES', 20);
my $K       = 10;
my $FLOOR   = 0.95;
my $TWO_HOP_FLOOR = 0.9;
test_seed('VECEXT_FILTER_SEED');
my $t0 = time();

my $primary = vecext_primary('filter_primary', "shared_buffers = 64MB\nlog_statement = none\n");
my $standby = vecext_standby($primary, 'filter_standby');

# Metadata: label (10 values, ~10%), bucket (100 values, ~1%), rare (1000
# values, ~0.1%), a tag array, a nested object, and some NULL metadata.
sub metadata_sql
{
	my ($table) = @_;
	return qq{
		UPDATE $table SET metadata = CASE WHEN id % 211 = 0 THEN NULL ELSE jsonb_build_object(
		  'label', id % 10, 'bucket', (id * 7) % 100, 'rare', (id * 13) % 1000,
		  'tags', CASE WHEN id % 3 = 0 THEN '["x", "y"]'::jsonb ELSE '["z"]'::jsonb END,
		  'nested', jsonb_build_object('level', id % 4)) END
		WHERE metadata IS NULL AND id % 211 <> 0;
	};
}

for my $t ('docs', 'docs_sq8')
{
	$primary->safe_psql('postgres', qq{
		CREATE TABLE $t (id int PRIMARY KEY, embedding vector($DIM), metadata jsonb);
		ALTER TABLE $t SET (autovacuum_enabled = off);
	});
}
my $rows = rand_vectors_sql('docs', 1, $ROWS, $DIM);
$primary->safe_psql('postgres', $rows . metadata_sql('docs')
	  . "INSERT INTO docs_sq8 SELECT * FROM docs;");
$primary->safe_psql('postgres', qq{
	CREATE INDEX docs_idx ON docs USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
	  WITH (m = 16, ef_construction = 64);
	CREATE INDEX docs_sq8_idx ON docs_sq8 USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
	  WITH (m = 16, ef_construction = 64, quantization = 'sq8', link_codes = on);
	ANALYZE docs; ANALYZE docs_sq8;
});

my @queries = map { rand_vector($DIM) } 1 .. $QUERIES;

my %filters = (
	'label (10%)'       => q{metadata @> '{"label": 3}'},
	'bucket (1%)'       => q{metadata @> '{"bucket": 42}'},
	'rare (0.1%)'       => q{metadata @@ '$.rare == 777'},
	'two filters (~5%)' => q{metadata @> '{"label": 4}' AND metadata @@ '$.nested.level == 0'},
	'tags and bucket'   => q{metadata @> '{"tags": ["y"]}' AND metadata @@ '$.bucket < 3'});

# Filtered kNN ids of every query, one line per query ("id,id,..."), with
# the index (iterative scan, strict order) or exactly (no index).
# $settings: extra SET commands for index answers (the default scores every
# element the traversal reaches: hnsw.filter_two_hop = off).
sub answers
{
	my ($node, $table, $cond, $exact, $settings) = @_;
	my $sql = $exact
	  ? "SET enable_indexscan = off; SET enable_bitmapscan = off;\n"
	  : "SET enable_seqscan = off; SET hnsw.ef_search = 40; "
	  . ($settings // "SET hnsw.filter_two_hop = off;") . "\n";
	for my $q (@queries)
	{
		$sql .= "SELECT coalesce(string_agg(id::text, ',' ORDER BY r), '') FROM (SELECT id, row_number() OVER () AS r "
		  . "FROM (SELECT id FROM $table WHERE $cond ORDER BY embedding <-> '$q'"
		  . ($exact ? ', id' : '') . " LIMIT $K) s) x;\n";
	}
	return [ split /\n/, $node->safe_psql('postgres', $sql), -1 ];
}

# Recall of the index answers against the exact ones, and the rows returned
# where the exact answer has K rows (must be K).
sub check_filters
{
	my ($table, $step) = @_;
	my @modes = ([ '', undef, $FLOOR ]);
	# The index with link codes: the two-hop traversal too, with a full
	# budget, and with one so small that scans stop early (recall is then
	# not the point: only LIMIT rows, found by the exact pass if need be).
	push @modes, [ ' (two-hop)', 'SET hnsw.filter_two_hop = on;', $TWO_HOP_FLOOR ],
	  [ ' (two-hop, max_scan_tuples 200)', 'SET hnsw.filter_two_hop = on; SET hnsw.max_scan_tuples = 200;', undef ]
	  if $table eq 'docs_sq8';
	for my $name (sort keys %filters)
	{
		my $cond = $filters{$name};
		my $want = answers($primary, $table, $cond, 1);
		for my $mode (@modes)
		{
			my ($label, $settings, $floor) = @$mode;
			my $got = answers($primary, $table, $cond, 0, $settings);
			my ($hit, $total, $short) = (0, 0, 0);
			for my $i (0 .. $#queries)
			{
				my %w = map { $_ => 1 } grep { $_ ne '' } split /,/, ($want->[$i] // '');
				my @g = grep { $_ ne '' } split /,/, ($got->[$i] // '');
				$total += scalar(keys %w);
				$hit += scalar(grep { $w{$_} } @g);
				$short++ if scalar(@g) < scalar(keys %w);
			}
			my $recall = $total ? $hit / $total : 1;
			cmp_ok(sprintf('%.3f', $recall), '>=', $floor,
				"$table $step: $name$label: recall\@$K " . sprintf('%.3f', $recall))
			  if defined $floor;
			is($short, 0, "$table $step: $name$label: LIMIT rows returned whenever that many match");
		}
	}
	check_index_ok($primary, "${table}_idx", "$table $step: hnsw_index_check", 1);
}

sub compare_standby
{
	my ($step) = @_;
	is(wait_replay_or_death($primary, $standby, 180), '', "$step: the standby replayed the WAL");
	for my $table ('docs', 'docs_sq8')
	{
		for my $name (sort keys %filters)
		{
			is(join("\n", @{ answers($standby, $table, $filters{$name}, 0) }),
				join("\n", @{ answers($primary, $table, $filters{$name}, 0) }),
				"$step: $table: $name: the standby's filtered answers equal the primary's");
		}
		check_index_ok($standby, "${table}_idx", "$step: $table: the standby's index passes hnsw_index_check", 1);
	}
}

for my $table ('docs', 'docs_sq8')
{
	ok(plan_uses_index($primary,
			"SELECT id FROM $table WHERE $filters{'bucket (1%)'} ORDER BY embedding <-> '$queries[0]' LIMIT 10",
			"${table}_idx"),
		"$table: the filtered query uses the index");
	check_filters($table, 'after the build');
}
compare_standby('build');

# Inserts, metadata updates, deletes, VACUUM.
my $more = rand_vectors_sql('docs', $ROWS + 1, int($ROWS / 4), $DIM);
$primary->safe_psql('postgres', $more . metadata_sql('docs') . qq{
	INSERT INTO docs_sq8 SELECT * FROM docs WHERE id > $ROWS;
	UPDATE docs SET metadata = metadata || '{"bucket": 42}' WHERE id % 97 = 1;
	UPDATE docs_sq8 SET metadata = metadata || '{"bucket": 42}' WHERE id % 97 = 1;
	DELETE FROM docs WHERE id % 7 = 0; DELETE FROM docs_sq8 WHERE id % 7 = 0;
	VACUUM docs; VACUUM docs_sq8;
});
for my $table ('docs', 'docs_sq8')
{
	check_filters($table, 'after inserts, updates, deletes and VACUUM');
}
compare_standby('changes');

note('filter: ' . elapsed($t0) . ' s');
$standby->stop;
$primary->stop;
done_testing();
