# Value lists (hnsw WITH (value_lists = N)): filtered search over the rows
# that share a frequent metadata value, and what vacuum does to the lists.
# Seeded clustered data (VECEXT_VL_ROWS rows, 20000; VECEXT_VL_DIM, 16) with
# metadata {"c100": 0..99 (1% each), "s": "v0".."v63" (~1.6% each),
# "c10": 0..9}, both values independent of the clusters, in two tables with
# the same rows:
#   vl  WITH (link_codes = on, value_lists = 2): every row has a list for
#       its c100 value and one for its s value (its two rarest frequent
#       values);
#   lc  WITH (link_codes = on): the same index without value lists.
# For ~1% filters on a number and a string, written with @>, @@ and
# jsonb_path_match (the executor applies that one after the index scan, so
# no index feature helps it):
#   - recall@10 against the exact filtered search >= 0.95 with value lists
#     (@> and @@ on vl), >= 0.75 with the two-hop traversal alone (@> and @@
#     on lc), and LIMIT rows from every such query; jsonb_path_match figures
#     are notes (see the known issue);
#   - value lists are followed (the scan's DEBUG2 statistics), and not with
#     hnsw.filter_value_lists = off;
# after the build, after inserts (10%), after deleting 30% of the rows +
# VACUUM, and after inserts that reuse the space VACUUM freed. Then:
#   - hnsw_index_check finds no problem on either node;
#   - the value lists read from the raw pages (pageinspect) are sound: each
#     link leads to a live element tuple, and the rows of every list with a
#     key (its owner and the rows it links to) share a c100, s or c10 value;
#   - a streaming standby returns the primary's ids for every filtered query.
# Known issue, noted and not asserted: on this clustered data, indexes with
# link codes (full level-0 lists; both tables alike) have groups of elements
# whose level-0 links lead only among themselves, already after the build;
# an iterative scan that starts in one ends after its few hundred rows, so
# post-filtered (jsonb_path_match) queries may return fewer rows and lower
# recall. After the 30% delete, VACUUM can also leave such groups that the
# entry point does not reach (hnsw_index_check reports them): after the
# delete, reachability is a note too.
# WAL: a smaller index WITH (value_lists = 1) goes through build, deletes
# and VACUUM with wal_consistency_checking = 'generic' in the session; the
# standby replays it with consistent pages.
# Figures (notes, never asserted): recall and q/s with
# hnsw.filter_value_lists on and off, and of the index without lists.
# VECEXT_VL_QUERIES (25) queries per filter; VECEXT_VL_SEED for the data.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $ROWS     = env_int('VECEXT_VL_ROWS', 20000);
my $DIM      = env_int('VECEXT_VL_DIM', 16);
my $QUERIES  = env_int('VECEXT_VL_QUERIES', 25);
my $CLUSTERS = 40;
my $K        = 10;
my $FLOOR    = 0.95;  # with value lists
my $TWO_HOP_FLOOR = 0.75;  # two-hop traversal without value lists
test_seed('VECEXT_VL_SEED');
my $t0 = time();

my $primary = vecext_primary('vl_primary',
	"shared_buffers = 128MB\nlog_statement = none\nmax_wal_size = 2GB\n");
$primary->safe_psql('postgres', 'CREATE EXTENSION pageinspect');
my $standby = vecext_standby($primary, 'vl_standby');

# ---- data -------------------------------------------------------------------

my @centers = map { [ map { rand(2) - 1 } 1 .. $DIM ] } 1 .. $CLUSTERS;

# A point near a random cluster center.
sub clustered_vector
{
	my $c = $centers[ int(rand($CLUSTERS)) ];
	return '[' . join(',', map { sprintf('%.5f', $_ + 0.25 * (rand() + rand() + rand() - 1.5)) } @$c) . ']';
}

# A seeded permutation of 0..n-1.
sub permutation
{
	my ($n) = @_;
	my @p = (0 .. $n - 1);
	for (my $i = $n - 1; $i > 0; $i--)
	{
		my $j = int(rand($i + 1));
		@p[ $i, $j ] = @p[ $j, $i ];
	}
	return @p;
}

my @tables = qw(vl lc);

# Rows $first..$first+$n-1 of both tables (the same rows in each).
sub rows_sql
{
	my ($first, $n) = @_;
	my @c100 = permutation($n);
	my @s    = permutation($n);
	my @rows;
	for my $k (0 .. $n - 1)
	{
		my $id = $first + $k;
		push @rows, sprintf(q{(%d, '%s', '{"c100": %d, "s": "v%d", "c10": %d}')},
			$id, clustered_vector(), $c100[$k] % 100, $s[$k] % 64, $id % 10);
	}
	return "INSERT INTO vl (id, embedding, metadata) VALUES " . join(",\n", @rows) . ";\n"
	  . "INSERT INTO lc SELECT * FROM vl WHERE id BETWEEN $first AND " . ($first + $n - 1) . ";\n";
}

for my $t (@tables)
{
	$primary->safe_psql('postgres', qq{
		CREATE TABLE $t (id int PRIMARY KEY, embedding vector($DIM), metadata jsonb);
		ALTER TABLE $t SET (autovacuum_enabled = off);
	});
}
$primary->safe_psql('postgres', rows_sql(1, $ROWS));
my $tb = time();
$primary->safe_psql('postgres', qq{
	SET maintenance_work_mem = '256MB';
	CREATE INDEX vl_idx ON vl USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
	  WITH (m = 16, ef_construction = 64, link_codes = on, value_lists = 2);
	CREATE INDEX lc_idx ON lc USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
	  WITH (m = 16, ef_construction = 64, link_codes = on);
	ANALYZE vl; ANALYZE lc;
});
note('two index builds: ' . elapsed($tb) . ' s');

my @queries = map { clustered_vector() } 1 .. $QUERIES;

# Filters at ~1%: [name, condition, whether value lists can serve it].
my @filters = (
	[ 'c100 @>',         q{metadata @> '{"c100": 5}'},                  1 ],
	[ 'c100 @@',         q{metadata @@ '$.c100 == 17'},                 1 ],
	[ 'c100 path_match', q{jsonb_path_match(metadata, '$.c100 == 42')}, 0 ],
	[ 's @>',            q{metadata @> '{"s": "v7"}'},                  1 ],
	[ 's @@',            q{metadata @@ '$.s == "v33"'},                 1 ],
	[ 's path_match',    q{jsonb_path_match(metadata, '$.s == "v51"')}, 0 ]);

# ---- answers ------------------------------------------------------------------

# The SQL of the filtered kNN queries, one result line per query.
sub queries_sql
{
	my ($table, $cond, $exact) = @_;
	my $sql = '';
	for my $q (@queries)
	{
		$sql .= "SELECT coalesce(string_agg(id::text, ',' ORDER BY r), '') FROM (SELECT id, row_number() OVER () AS r "
		  . "FROM (SELECT id FROM $table WHERE $cond ORDER BY embedding <-> '$q'"
		  . ($exact ? ', id' : '') . " LIMIT $K) s) x;\n";
	}
	return $sql;
}

# Filtered kNN ids of every query ("id,id,..." per query): through the index
# (the defaults: two-hop traversal, value lists followed) or exactly.
sub answers
{
	my ($node, $table, $cond, $exact, $settings) = @_;
	my $sql = $exact
	  ? "SET enable_indexscan = off; SET enable_bitmapscan = off;\n"
	  : "SET enable_seqscan = off; " . ($settings // '') . "\n";
	return [ split /\n/, $node->safe_psql('postgres', $sql . queries_sql($table, $cond, $exact)), -1 ];
}

# recall@K of $got against $want, and the queries that returned fewer rows
# than the exact answer has.
sub score
{
	my ($want, $got) = @_;
	my ($hit, $total, $short) = (0, 0, 0);
	for my $i (0 .. $#queries)
	{
		my %w = map { $_ => 1 } grep { $_ ne '' } split /,/, ($want->[$i] // '');
		my @g = grep { $_ ne '' } split /,/, ($got->[$i] // '');
		$total += scalar(keys %w);
		$hit += scalar(grep { $w{$_} } @g);
		$short++ if scalar(@g) < scalar(keys %w);
	}
	return ($total ? $hit / $total : 1, $short);
}

# Value-list expansions of the scan of one filtered query (its DEBUG2
# statistics), with $settings; -1 when the scan reported none.
sub value_expansions
{
	my ($table, $cond, $settings) = @_;
	my ($out, $err) = ('', '');
	$primary->psql('postgres', "SET enable_seqscan = off; $settings SET client_min_messages = debug2;\n"
		  . "SELECT count(*) FROM (SELECT id FROM $table WHERE $cond ORDER BY embedding <-> '$queries[0]' LIMIT $K) s;",
		stdout => \$out, stderr => \$err);
	my $n = 0;
	$n += $1 while $err =~ /(\d+) expansions by value lists/g;
	return $err =~ /expansions by value lists/ ? $n : -1;
}

# Recall and LIMIT rows for both tables and every filter (jsonb_path_match:
# notes only).
sub check_filters
{
	my ($step) = @_;
	for my $f (@filters)
	{
		my ($name, $cond, $lists) = @$f;
		my $want = answers($primary, 'vl', $cond, 1);
		my @figures;
		for my $t (@tables)
		{
			my ($recall, $short) = score($want, answers($primary, $t, $cond, 0));
			push @figures, sprintf('%s %.3f', $t, $recall);
			push @figures, "($short short)" if $short;
			next unless $lists;
			my $floor = $t eq 'vl' ? $FLOOR : $TWO_HOP_FLOOR;
			cmp_ok(sprintf('%.3f', $recall), '>=', $floor,
				sprintf("%s: %s on %s: recall\@%d %.3f >= %.2f", $step, $name, $t, $K, $recall, $floor));
			is($short, 0, "$step: $name on $t: $K rows from every query");
			if ($lists && $t eq 'vl')
			{
				my ($r_off) = score($want, answers($primary, $t, $cond, 0, 'SET hnsw.filter_value_lists = off;'));
				push @figures, sprintf('vl lists off %.3f', $r_off);
			}
		}
		note("$step: $name: recall " . join(', ', @figures));
	}
}

# ---- value lists read from the pages ------------------------------------------

# The value lists of $table's index read with pageinspect. Returns the
# problems found (a link that does not lead to a live element tuple of a row
# of the table; a key whose lists' owners and targets share no c100, s or
# c10 value), and the live elements, lists with a key and their links.
sub value_list_problems
{
	my ($node, $table) = @_;
	my $index = "${table}_idx";
	my %row;  # heap TID "blk,off" -> [c100, s, c10]
	for my $l (split /\n/, $node->safe_psql('postgres',
			"SELECT ctid, metadata->>'c100', metadata->>'s', metadata->>'c10' FROM $table"))
	{
		my ($ctid, @v) = split /\|/, $l, -1;
		$row{"$1,$2"} = \@v if $ctid =~ /\((\d+),(\d+)\)/;
	}
	my $nblocks = $node->safe_psql('postgres', "SELECT pg_relation_size('$index') / 8192");
	my (%elem, %ntup);  # item "blk,off" -> [heap TID, flags, neighbour TID] / [[key, links...], ...]
	my ($vlists, $vslots) = (0, 0);
	my @problems;
	for (my $from = 0; $from < $nblocks; $from += 500)
	{
		my $to = $from + 499 < $nblocks - 1 ? $from + 499 : $nblocks - 1;
		for my $l (split /\n/, $node->safe_psql('postgres',
				"SELECT b, encode(get_raw_page('$index', b::int), 'hex') FROM generate_series($from, $to) b"))
		{
			my ($blk, $hex) = split /\|/, $l;
			my $p = pack('H*', $hex);
			my $lower = unpack('v', substr($p, 12, 2));
			if ($blk == 0)
			{
				# HnswMetaPageData at 24: flags at +44, value_lists and value_slots at +50.
				($vlists, $vslots) = unpack('CC', substr($p, 24 + 50, 2)) if unpack('V', substr($p, 24 + 44, 4)) & 4;
				next;
			}
			my $stride = (8 + 6 * $vslots + 7) & ~7;
			my @lps = unpack('V*', substr($p, 24, $lower - 24));
			for my $i (0 .. $#lps)
			{
				my ($off, $fl, $len) = ($lps[$i] & 0x7FFF, ($lps[$i] >> 15) & 3, $lps[$i] >> 17);
				next unless $fl == 1;
				my ($type, $level, $eflags, $x, @t) = unpack('C4 v6', substr($p, $off, 16));
				my $item = "$blk," . ($i + 1);
				if ($type == 1)
				{
					$elem{$item} = [ (($t[0] << 16) | $t[1]) . ",$t[2]", $eflags, (($t[3] << 16) | $t[4]) . ",$t[5]" ];
				}
				elsif ($type == 2)
				{
					my $count = unpack('v', substr($p, $off + 2, 2));
					my $at = ((4 + 6 * $count + 7) & ~7) + 8 * $count;
					next unless $count > 0 && $vlists > 0 && $len >= $at + $vlists * $stride;
					my @lists;
					for my $j (0 .. $vlists - 1)
					{
						my ($vkey, @ids) = unpack("Q< (v3)$vslots", substr($p, $off + $at + $j * $stride, 8 + 6 * $vslots));
						my @links;
						while (my ($hi, $lo, $o) = splice(@ids, 0, 3))
						{
							push @links, (($hi << 16) | $lo) . ",$o" if $o != 0 && !($hi == 0xFFFF && $lo == 0xFFFF);
						}
						push @lists, [ $vkey, @links ];
					}
					$ntup{$item} = \@lists;
				}
			}
		}
	}
	my ($nelem, $nkeyed, $nlinks) = (0, 0, 0);
	my %group;  # value key -> heap TIDs of its lists' owners and targets
	for my $e (sort keys %elem)
	{
		my ($heap, $eflags, $ntid) = @{ $elem{$e} };
		next if $eflags & 1;
		$nelem++;
		push @problems, "element $e: no row at $heap" unless $row{$heap};
		for my $list (@{ $ntup{$ntid} // [] })
		{
			my ($vkey, @links) = @$list;
			if ($vkey == 0)
			{
				push @problems, "element $e: value list with key 0 has links" if @links;
				next;
			}
			$nkeyed++;
			push @{ $group{$vkey} }, $heap;
			for my $t (@links)
			{
				$nlinks++;
				my $te = $elem{$t};
				if (!$te)                 { push @problems, "element $e: value link to $t, no element tuple"; next; }
				if ($te->[1] & 1)         { push @problems, "element $e: value link to deleted element $t"; next; }
				if (!$row{ $te->[0] })    { push @problems, "element $e: value link to $t, of no row"; next; }
				push @{ $group{$vkey} }, $te->[0];
			}
		}
	}
	for my $vkey (sort keys %group)
	{
		my @rows = grep { $row{$_} } @{ $group{$vkey} };
		my $shared = grep {
			my $fi = $_;
			my %v = map { ($row{$_}[$fi] // '') => 1 } @rows;
			keys(%v) == 1
		} 0 .. 2;
		push @problems, "value key $vkey: its " . scalar(@rows) . " rows share no value" unless $shared;
	}
	return (\@problems, $nelem, $nkeyed, $nlinks);
}

# Asserts that the value lists of vl_idx on $node are sound; returns the
# number of lists with a key.
sub check_value_lists
{
	my ($node, $step) = @_;
	my ($problems, $nelem, $nkeyed, $nlinks) = value_list_problems($node, 'vl');
	is(scalar(@$problems), 0, "$step: every value-list link of vl_idx leads to a live element with the list's value")
	  or diag(join("\n", @$problems[ 0 .. ($#$problems < 9 ? $#$problems : 9) ]));
	note("$step: vl_idx: $nelem live elements, $nkeyed value lists with a key, $nlinks links");
	return ($nelem, $nkeyed);
}

# hnsw_index_check on both indexes of $node: no problem, and before the
# 30% delete every live element reachable (after it: a note, see above).
sub check_indexes
{
	my ($node, $step, $who, $after_delete) = @_;
	for my $t (@tables)
	{
		my ($other, $unreach) = split_problems(index_problems($node, "${t}_idx", 1));
		is(scalar(@$other), 0, "$step: $who ${t}_idx: hnsw_index_check finds no problem")
		  or diag(join("\n", @$other[ 0 .. ($#$other < 9 ? $#$other : 9) ]));
		if ($after_delete)
		{
			note("$step: $who ${t}_idx: $unreach live elements not reachable from the entry point");
		}
		else
		{
			is($unreach, 0, "$step: $who ${t}_idx: every live element is reachable from the entry point");
		}
	}
}

sub compare_standby
{
	my ($step, $after_delete) = @_;
	is(wait_replay_or_death($primary, $standby, 180), '', "$step: the standby replayed the WAL");
	for my $t (@tables)
	{
		my $diff = 0;
		for my $f (@filters)
		{
			my $a = join("\n", @{ answers($primary, $t, $f->[1], 0) });
			my $b = join("\n", @{ answers($standby, $t, $f->[1], 0) });
			$diff++ if $a ne $b;
		}
		is($diff, 0, "$step: $t: the standby returns the primary's ids for every filtered query");
	}
	check_indexes($standby, $step, 'standby', $after_delete);
}

sub run_step
{
	my ($step, $after_delete, $pages) = @_;
	my $ts = time();
	check_filters($step);
	check_indexes($primary, $step, 'primary', $after_delete);
	my @counts;
	@counts = check_value_lists($primary, $step) if $pages;
	compare_standby($step, $after_delete);
	note("$step: checked in " . elapsed($ts) . ' s');
	return @counts;
}

# ---- steps --------------------------------------------------------------------

for my $t (@tables)
{
	ok(plan_uses_index($primary,
			"SELECT id FROM $t WHERE $filters[0][1] ORDER BY embedding <-> '$queries[0]' LIMIT $K", "${t}_idx"),
		"$t: the filtered query uses the index");
}
cmp_ok(value_expansions('vl', $filters[0][1], ''), '>', 0, 'vl: a number filter follows value lists');
cmp_ok(value_expansions('vl', $filters[3][1], ''), '>', 0, 'vl: a string filter follows value lists');
is(value_expansions('vl', $filters[0][1], 'SET hnsw.filter_value_lists = off;'), 0,
	'vl: with hnsw.filter_value_lists = off the scan follows none');
is(value_expansions('lc', $filters[0][1], ''), 0, 'lc: the index without value lists follows none');
my ($nelem, $nkeyed) = run_step('build', 0, 1);
is($nkeyed, 2 * $nelem, 'build: every element has two value lists (its c100 and s values)');

# Inserts (10%).
$primary->safe_psql('postgres', rows_sql($ROWS + 1, int($ROWS / 10)));
run_step('inserts', 0, 0);

# Delete 30% of the rows, VACUUM.
my $tv = time();
$primary->safe_psql('postgres', join('', map { "DELETE FROM $_ WHERE (id * 7919) % 10 < 3;\n" } @tables));
$primary->safe_psql('postgres', "VACUUM $_") for @tables;
note('delete 30% + VACUUM of both tables: ' . elapsed($tv) . ' s');
is($primary->safe_psql('postgres', "SELECT deleted FROM hnsw_index_stats('${_}_idx')"), '0',
	"$_: no deleted element left after VACUUM") for @tables;
run_step('delete 30% + VACUUM', 1, 1);

# Inserts that reuse the items VACUUM freed: a value-list link left pointing
# to a removed element would now lead to an unrelated element.
$primary->safe_psql('postgres', rows_sql(2 * $ROWS + 1, int($ROWS / 5)));
run_step('inserts into freed space', 1, 1);

# ---- q/s ----------------------------------------------------------------------

{
	my $sql = join('', map { queries_sql('vl', $_->[1], 0) } grep { $_->[2] } @filters) x 2;
	my $n = () = $sql =~ /LIMIT/g;
	my @fig;
	for my $mode ([ 'vl, lists on', 'vl', '' ], [ 'vl, lists off', 'vl', 'SET hnsw.filter_value_lists = off;' ],
		[ 'lc', 'lc', '' ])
	{
		my ($label, $t, $set) = @$mode;
		(my $s = $sql) =~ s/FROM vl /FROM $t /g;
		$primary->safe_psql('postgres', "SET enable_seqscan = off; $set\n$s");  # warm
		my $ts = time();
		$primary->safe_psql('postgres', "SET enable_seqscan = off; $set\n$s");
		push @fig, sprintf('%s %.0f q/s', $label, $n / (time() - $ts));
	}
	note("number and string filters (@> and @@), $n queries on one connection: " . join(', ', @fig));
}

# ---- WAL consistency ------------------------------------------------------------

{
	my $n = 3000;
	my @rows = map { sprintf(q{(%d, '%s', '{"c10": %d, "c3": %d}')}, $_, rand_vector(8), ($_ * 7) % 10, $_ % 3) }
	  1 .. $n;
	$primary->safe_psql('postgres', qq{
		CREATE TABLE vlw (id int PRIMARY KEY, embedding vector(8), metadata jsonb);
		ALTER TABLE vlw SET (autovacuum_enabled = off);
		INSERT INTO vlw VALUES } . join(",\n", @rows) . ';');
	my $logpos = log_size($standby);
	$primary->safe_psql('postgres', qq{
		SET wal_consistency_checking = 'generic';
		CREATE INDEX vlw_idx ON vlw USING hnsw (embedding vector_l2_ops, metadata jsonb_hnsw_ops)
		  WITH (m = 8, ef_construction = 32, value_lists = 1);
		DELETE FROM vlw WHERE id % 10 < 4;
		VACUUM vlw;
		INSERT INTO vlw SELECT id + $n, embedding, metadata FROM vlw WHERE id % 10 = 5;
		DELETE FROM vlw WHERE id % 10 = 9;
		VACUUM vlw;
	});
	is(wait_replay_or_death($primary, $standby, 180, $logpos), '',
		'vlw (value_lists = 1): build, deletes, VACUUM with wal_consistency_checking: consistent pages on the standby');
	my ($other, $unreach) = split_problems(index_problems($primary, 'vlw_idx', 1));
	is(scalar(@$other) + $unreach, 0, 'vlw: hnsw_index_check finds no problem')
	  or diag(join("\n", @$other[ 0 .. ($#$other < 9 ? $#$other : 9) ]));
}

note('value lists: ' . elapsed($t0) . ' s');
$standby->stop;
$primary->stop;
done_testing();
