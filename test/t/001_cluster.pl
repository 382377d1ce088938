# A primary with vecext and a streaming standby that replays it: the base
# that crash-recovery and replica tests build on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VecextTest;

my $primary = vecext_primary('primary');

like(
	$primary->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'vecext'"),
	qr/^\d+\.\d+(\.\d+)?$/,
	'vecext is created on the primary');
is($primary->safe_psql('postgres', "SELECT '[1,2.5,-3]'::vector"),
	'[1,2.5,-3]', 'a vector literal round-trips');

$primary->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
	INSERT INTO items
	  SELECT i, format('[%s,%s,%s]', i, i % 7, -i)::vector
	  FROM generate_series(1, 1000) AS i;
});

# The five nearest ids and their distances, ties broken by id.
my $nearest = q{
	SELECT string_agg(format('%s:%s', id, round(d::numeric, 4)), ',' ORDER BY d, id)
	FROM (SELECT id, embedding <-> '[10,3,-10]' AS d
	      FROM items ORDER BY d, id LIMIT 5) s
};
is($primary->safe_psql('postgres', $nearest),
	'10:0.0000,9:1.7321,11:1.7321,8:3.4641,12:3.4641',
	'exact nearest neighbours on the primary');

# The standby starts from a base backup, then streams what follows.
my $standby = vecext_standby($primary, 'standby');
$primary->safe_psql('postgres', q{
	INSERT INTO items
	  SELECT i, format('[%s,%s,%s]', i, i % 7, -i)::vector
	  FROM generate_series(1001, 2000) AS i;
	DELETE FROM items WHERE id % 100 = 0;
	UPDATE items SET embedding = '[10,3,-10]' WHERE id = 1501;
});
$primary->wait_for_catchup($standby, 'replay');

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
rows_equal($primary, $standby, 'SELECT count(*), sum(id) FROM items',
	'the standby has the same rows');
rows_equal($primary, $standby, $nearest,
	'the standby returns the same nearest neighbours');
is($standby->safe_psql('postgres', $nearest),
	'10:0.0000,1501:0.0000,9:1.7321,11:1.7321,8:3.4641',
	'the standby sees the replayed update');

my ($rc, $out, $err) = $standby->psql('postgres',
	"INSERT INTO items VALUES (5000, '[0,0,0]')");
isnt($rc, 0, 'the standby refuses writes');

$standby->stop;
$primary->stop;
done_testing();
