# Shared helpers for vecext's Perl TAP tests (test/t/*.pl), on top of
# PostgreSQL::Test::Cluster. test/suites/40-tap.sh puts this directory on
# prove's include path.
package VecextTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(vecext_primary vecext_standby rows_equal);

# Starts a node that can feed streaming standbys, with vecext created in its
# `postgres` database. Extra postgresql.conf text goes in $conf.
sub vecext_primary
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 1);
	$node->append_conf('postgresql.conf', $conf) if defined $conf;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION vecext');
	return $node;
}

# Takes a base backup of $primary and starts a streaming standby from it.
sub vecext_standby
{
	my ($primary, $name) = @_;
	my $backup = "${name}_backup";
	$primary->backup($backup);
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init_from_backup($primary, $backup, has_streaming => 1);
	$node->start;
	return $node;
}

# Runs $sql on both nodes (database `postgres`) and checks that they return
# the same text; the output should be ordered so that equality means it.
sub rows_equal
{
	my ($a, $b, $sql, $what) = @_;
	my $ra = $a->safe_psql('postgres', $sql);
	my $rb = $b->safe_psql('postgres', $sql);
	return is($rb, $ra, $what);
}

1;
