# Corruption: hnsw index files are damaged on disk while the server is
# stopped (one index per kind of damage: the page id or type of the entry
# point's page, the metapage's magic or entry point, line pointers, tuple
# bytes, links, levels, NaN vectors, a page header, a zeroed page, a
# truncated file, and seeded random bytes over element pages). Then, for
# each: index scans, an insert, hnsw_index_stats, hnsw_index_check, DELETE +
# VACUUM each give a result or an ERROR, never a crash (the postmaster never
# restarts, the log shows no backend killed by a signal); a damaged page id,
# page type or metapage makes the scan fail with an ERROR that names the
# index and says to REINDEX; hnsw_index_check reports every deterministic
# damage; REINDEX repairs the index. Data checksums are off, so the index's
# own validation is what is tested. VECEXT_CORRUPT_SEED, VECEXT_CORRUPT_RANDOM
# (random-bytes cases, 6).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VecextTest;
use VecextReliability;

my $RANDOM = env_int('VECEXT_CORRUPT_RANDOM', 6);
my $ROWS   = 1500;
my $DIM    = 8;
my $BLCKSZ = 8192;
test_seed('VECEXT_CORRUPT_SEED');
my $t0 = time();

# name => [ must the scan ERROR naming the index?, must the check report it? ]
my %cases = (
	page_id        => [ 1, 1 ],
	page_type      => [ 1, 1 ],
	meta_magic     => [ 1, 1 ],
	meta_entry     => [ 0, 1 ],
	line_pointers  => [ 0, 1 ],
	links          => [ 0, 1 ],
	levels         => [ 0, 1 ],
	nan_vectors    => [ 0, 1 ],
	page_header    => [ 0, 0 ],
	zero_page      => [ 0, 1 ],
	truncated      => [ 0, 1 ],
	tuple_bytes    => [ 0, 0 ],);
$cases{"random_$_"} = [ 0, 0 ] for 1 .. $RANDOM;
my @names = sort keys %cases;

my $node = vecext_primary('corruption',
	"shared_buffers = 16MB\nmax_connections = 20\nlog_statement = none\n");
my %path;
for my $c (@names)
{
	my $opclass = $c =~ /^(links|random_2)$/ ? 'vector_cosine_ops' : 'vector_l2_ops';
	$node->safe_psql('postgres', qq{
		CREATE TABLE t_$c (id int PRIMARY KEY, embedding vector($DIM));
	} . rand_vectors_sql("t_$c", 1, $ROWS, $DIM) . qq{
		CREATE INDEX i_$c ON t_$c USING hnsw (embedding $opclass) WITH (m = 8, ef_construction = 32);
	});
	$path{$c} = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('i_$c')");
}
is(scalar(grep { index_problems($node, "i_$_", 1) == 0 } @names), scalar(@names),
	'every index passes hnsw_index_check before the damage');
$node->stop;

sub read_block
{
	my ($file, $blk) = @_;
	open(my $f, '<:raw', $file) or die "$file: $!";
	seek($f, $blk * $BLCKSZ, 0);
	my $page = '';
	read($f, $page, $BLCKSZ);
	close $f;
	return $page;
}

sub write_block
{
	my ($file, $blk, $page) = @_;
	die 'bad page size' unless length($page) == $BLCKSZ;
	open(my $f, '+<:raw', $file) or die "$file: $!";
	seek($f, $blk * $BLCKSZ, 0);
	print $f $page;
	close $f;
}

sub entry_block
{
	my ($file) = @_;
	my ($hi, $lo, $off) = unpack('v v v', substr(read_block($file, 0), 24 + 20, 6));
	return ($hi << 16) | $lo;
}

# (offset, length) of every normal item of a page.
sub items
{
	my ($page) = @_;
	my $lower = unpack('v', substr($page, 12, 2));
	my @items;
	for (my $p = 24; $p + 4 <= $lower; $p += 4)
	{
		my $w = unpack('V', substr($page, $p, 4));
		push @items, [ $w & 0x7fff, $w >> 17 ] if (($w >> 15) & 3) == 1;
	}
	return @items;
}

sub random_bytes { return join('', map { chr(int(rand(256))) } 1 .. $_[0]); }

# Damages the index of case $c on disk.
sub damage
{
	my ($c) = @_;
	my $file = $path{$c};
	my $blk  = entry_block($file);
	my $page = read_block($file, $blk);
	my $nblocks = int((-s $file) / $BLCKSZ);
	if ($c eq 'page_id') { substr($page, $BLCKSZ - 2, 2) = pack('v', 0x1234); }
	elsif ($c eq 'page_type') { substr($page, $BLCKSZ - 4, 2) = pack('v', 7); }
	elsif ($c eq 'meta_magic' || $c eq 'meta_entry')
	{
		$blk  = 0;
		$page = read_block($file, 0);
		if ($c eq 'meta_magic') { substr($page, 24, 4) = 'XXXX'; }
		else { substr($page, 24 + 20, 6) = pack('v v v', 0, $nblocks + 50, 3); }
	}
	elsif ($c eq 'line_pointers')
	{
		my $lower = unpack('v', substr($page, 12, 2));
		substr($page, 24, $lower - 24) = random_bytes($lower - 24);
	}
	elsif ($c eq 'links' || $c eq 'levels' || $c eq 'nan_vectors' || $c eq 'tuple_bytes')
	{
		for my $it (items($page))
		{
			my ($off, $len) = @$it;
			my $type = ord(substr($page, $off, 1));
			if ($c eq 'links' && $type == 2)
			{
				my $count = unpack('v', substr($page, $off + 2, 2));
				for my $i (0 .. $count - 1)
				{
					my $b = int(rand($nblocks * 2));
					substr($page, $off + 4 + 6 * $i, 6) = pack('v v v', $b >> 16, $b & 0xffff, int(rand(400)));
				}
			}
			elsif ($c eq 'levels' && $type == 1) { substr($page, $off + 1, 1) = chr(17 + int(rand(239))); }
			elsif ($c eq 'nan_vectors' && $type == 1)
			{
				substr($page, $off + 16, 4 * $DIM) = pack('V', 0x7fc00000) x $DIM;
			}
			elsif ($c eq 'tuple_bytes')
			{
				substr($page, $off + int(rand($len)), 1) = chr(int(rand(256))) for 1 .. 8;
			}
		}
	}
	elsif ($c eq 'page_header') { substr($page, 12, 4) = pack('v v', 0xfff0, 0x0010); }
	elsif ($c eq 'zero_page') { $page = "\0" x $BLCKSZ; }
	elsif ($c eq 'truncated')
	{
		truncate($path{$c}, 2 * $BLCKSZ) or die "truncate: $!";
		return 'truncated to 2 blocks';
	}
	elsif ($c =~ /^random_/)
	{
		$blk  = 1 + int(rand($nblocks - 1));
		$page = read_block($file, $blk);
		my $len = 64 + int(rand(4000));
		my $at  = int(rand($BLCKSZ - $len));
		substr($page, $at, $len) = random_bytes($len);
		write_block($file, $blk, $page);
		return "$len random bytes at $at of block $blk";
	}
	write_block($file, $blk, $page);
	return "block $blk";
}

my %what = map { $_ => damage($_) } @names;
$node->start;
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $logpos  = log_size($node);
my %outcome;

for my $c (@names)
{
	my ($must_error, $must_report) = @{ $cases{$c} };
	my $q = rand_vector($DIM);
	my @errors;
	my $scan_err = '';
	for my $sql (
		"SELECT id FROM t_$c ORDER BY embedding <-> '$q' LIMIT 5",
		"SELECT id FROM t_$c ORDER BY embedding <-> '$q' LIMIT 200",
		"SELECT id FROM t_$c WHERE id % 7 = 0 ORDER BY embedding <-> '$q' LIMIT 10",
		"SELECT id FROM t_$c ORDER BY embedding <=> '$q' LIMIT 5",
		"INSERT INTO t_$c VALUES (100000, '$q')",
		"SELECT * FROM hnsw_index_stats('i_$c')",
		"DELETE FROM t_$c WHERE id % 5 = 0",
		"VACUUM t_$c")
	{
		my ($rc, $out, $err) = $node->psql('postgres', "SET enable_seqscan = off; $sql",
			timeout => 120);
		push @errors, $err if $rc != 0;
		$scan_err = $err if $rc != 0 && $scan_err eq '' && $sql =~ /LIMIT 5$/;
	}
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT * FROM hnsw_index_check('i_$c', heapallindexed => true)", timeout => 120);
	my @problems = grep { $_ ne '' } split /\n/, $out;
	my $alive = $node->psql('postgres', 'SELECT 1', timeout => 30) == 0;
	my $same = $alive && $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()') eq $started;
	my @crash = crash_signals_since($node, $logpos);
	ok($alive && $same && !@crash, "$c ($what{$c}): no backend crashed, the server did not restart");
	diag(join("\n", @crash)) if @crash;
	if (!$alive)
	{
		$node->{_pid} = undef if !kill(0, $node->{_pid} // 0);
		$node->start if !defined $node->{_pid};
		$started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
		$logpos  = log_size($node);
	}
	if ($must_error)
	{
		like($scan_err, qr/index "i_$c" is corrupted/, "$c: the scan fails with an ERROR naming the index");
		like($scan_err, qr/HINT:\s+REINDEX/, "$c: the ERROR says to REINDEX");
	}
	if ($must_report)
	{
		ok(@problems > 0 || ($rc != 0 && $err =~ /corrupt|invalid page/),
			"$c: hnsw_index_check reports the damage (" . scalar(@problems) . ' problems)');
	}
	my $first = $problems[0] // ($rc != 0 ? "check: $err" : 'nothing reported');
	$first =~ s/\n.*//s;
	my $e = @errors ? $errors[0] : 'no error';
	$e =~ s/\n.*//s;
	$outcome{$c} = scalar(@errors) . " statements of 8 failed (first: $e); check: $first";
	note("$c ($what{$c}): $outcome{$c}");

	# REINDEX rebuilds from the table.
	($rc, $out, $err) = $node->psql('postgres', "REINDEX INDEX i_$c", timeout => 120);
	is($rc, 0, "$c: REINDEX succeeds") or diag($err);
	my ($other) = split_problems(index_problems($node, "i_$c", 1));
	is(scalar(@$other), 0, "$c: after REINDEX hnsw_index_check finds nothing");
	is($node->safe_psql('postgres',
			"SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM t_$c ORDER BY embedding <-> '$q' LIMIT 10) s"),
		'10', "$c: after REINDEX the scan returns rows");
}

my @crash = crash_signals_since($node, 0);
is(scalar(@crash), 0, 'no crash anywhere in the server log');
note('corruption: ' . scalar(@names) . ' damaged indexes, ' . elapsed($t0) . ' s');
$node->stop;
done_testing();
