# Shards with PostgreSQL's own postgres_fdw (README, Scaling out): a coordinator and two
# shards on this machine (unix sockets), the extension loaded on each.  `posts` on the
# coordinator is a table partitioned by hash whose partitions are foreign tables
# (async_capable) on the shards; each shard has a view `posts_classified` that runs
# camembert_classify on its own rows, which the coordinator reads through a second
# partitioned table of foreign tables.  Checks:
#  - the plans: the sharded query ships the classification (Remote SQL reads the view, two
#    Async Foreign Scans), the naive `SELECT camembert_classify(body) FROM posts` pulls the
#    bodies and classifies on the coordinator (postgres_fdw ships only immutable functions);
#  - 1,000 rows: the labels read through the shards are transformers' labels (the golden
#    pipeline_text_classification.json of test/golden/models/multilabel) and those of one
#    server classifying the same rows; each shard ran the model on exactly its own rows
#    (camembert_stat_models), the coordinator on none; a coordinator database without the
#    extension reads the same labels;
#  - the shards work at the same time (async foreign scans);
#  - labelling: the UPDATE runs on each shard, both at once (dblink_send_query), and the
#    label trigger on a shard labels rows inserted through the coordinator;
#  - a shard that is down: the query fails naming it (never a partial answer); one that stops
#    during the query: an ERROR, no partial answer; either works again when it is back.
use strict;
use warnings;
use Cwd qw(abs_path);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";
-d "$golden/multilabel" or BAIL_OUT("golden models not found under $golden");

# transformers' labels: pipeline("text-classification")(text, top_k=None), best first
my $pipeline = decode_json(slurp_file("$golden/multilabel/expected/pipeline_text_classification.json"));
my @items = @{ $pipeline->{items} };
is(scalar(@items), 25, 'the golden pipeline has 25 texts');
sub quote { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }
my $golden_rows = join(",\n", map {
	sprintf('(%d, %s, %s)', $_, quote($items[$_]{text}), quote($items[$_]{result}[0]{label}))
} 0 .. $#items);
my %labels; $labels{ $_->{result}[0]{label} }++ for @items;
cmp_ok(scalar(keys %labels), '>=', 3, 'the golden labels are not all the same');

my @nodes;
for my $name ('coordinator', 'shard1', 'shard2')
{
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION camembert');
	$node->safe_psql('postgres', "SELECT camembert_load('topics', '$golden/multilabel')");
	push @nodes, $node;
}
my ($coord, @shards) = @nodes;

# --- the shards: a table and the view that classifies its rows ----------------------
for my $shard (@shards)
{
	$shard->safe_psql('postgres', q{
		CREATE TABLE posts (id bigint PRIMARY KEY, body text, label text);
		CREATE VIEW posts_classified AS
			SELECT id, body, camembert_classify(body, 'topics') AS label FROM posts;
	});
}

# --- the coordinator: partitions that are foreign tables on the shards --------------
$coord->safe_psql('postgres', 'CREATE EXTENSION postgres_fdw; CREATE EXTENSION dblink');
my $n = scalar(@shards);
for my $i (1 .. $n)
{
	my $shard = $shards[ $i - 1 ];
	my ($host, $port) = ($shard->host, $shard->port);
	$coord->safe_psql('postgres', qq{
		CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
			OPTIONS (host '$host', port '$port', dbname 'postgres', async_capable 'true');
		CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i;
	});
}
my $partitions = '';
for my $i (1 .. $n)
{
	my $r = $i - 1;
	$partitions .= qq{
	CREATE FOREIGN TABLE posts_$i PARTITION OF posts
		FOR VALUES WITH (MODULUS $n, REMAINDER $r) SERVER shard$i OPTIONS (table_name 'posts');
	CREATE FOREIGN TABLE posts_classified_$i PARTITION OF posts_classified
		FOR VALUES WITH (MODULUS $n, REMAINDER $r) SERVER shard$i OPTIONS (table_name 'posts_classified');};
}
$coord->safe_psql('postgres', qq{
	CREATE TABLE posts (id bigint, body text, label text) PARTITION BY HASH (id);
	CREATE TABLE posts_classified (id bigint, body text, label text) PARTITION BY HASH (id);
	$partitions
	CREATE TABLE golden (item int PRIMARY KEY, body text, label text);
	INSERT INTO golden VALUES $golden_rows;
	-- 1,000 rows, text i mod 25; inserted through the coordinator, stored on the shards
	INSERT INTO posts (id, body) SELECT i, g.body FROM generate_series(0, 999) i JOIN golden g ON g.item = i % 25;
	-- the same rows on one server, for comparison
	CREATE TABLE posts_local AS SELECT id, body FROM posts;
});
my @held = map { $_->safe_psql('postgres', 'SELECT count(*) FROM posts') } @shards;
is($held[0] + $held[1], 1000, 'the 1,000 rows are on the shards');
ok($held[0] > 0 && $held[1] > 0, "each shard holds some ($held[0], $held[1])");

# --- the plans ----------------------------------------------------------------------------
my $plan = $coord->safe_psql('postgres',
	'EXPLAIN (VERBOSE, COSTS OFF) SELECT id, label FROM posts_classified');
my $async = () = $plan =~ /Async Foreign Scan/g;
is($async, 2, 'the sharded query reads both shards with asynchronous foreign scans')
  or diag($plan);
like($plan, qr/Remote SQL: SELECT id, label FROM public\.posts_classified/,
	'the classification runs on the shards (the view)');
unlike($plan, qr/camembert_classify/, 'and not on the coordinator');
$plan = $coord->safe_psql('postgres',
	q{EXPLAIN (VERBOSE, COSTS OFF) SELECT camembert_classify(body, 'topics') FROM posts});
like($plan, qr/Output: camembert_classify\(posts_\d+\.body, 'topics'::text\)/,
	'the naive query classifies on the coordinator')
  or diag($plan);
like($plan, qr/Remote SQL: SELECT body FROM public\.posts$/m, 'pulling every body from the shards');

# --- 1,000 rows: transformers' labels, one server's labels, each shard its own rows -------
$_->safe_psql('postgres', 'SELECT camembert_stat_reset()') for @nodes;
$coord->safe_psql('postgres', 'CREATE TABLE sharded AS SELECT id, label FROM posts_classified');
my $texts = q{SELECT coalesce(sum(texts), 0) FROM camembert_stat_models WHERE model = 'topics'};
is($shards[0]->safe_psql('postgres', $texts), $held[0], 'shard1 ran the model on its rows');
is($shards[1]->safe_psql('postgres', $texts), $held[1], 'shard2 ran the model on its rows');
is($coord->safe_psql('postgres', $texts), '0', 'the coordinator ran it on none');
is($coord->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE s.label IS DISTINCT FROM g.label)
	FROM sharded s JOIN golden g ON g.item = s.id % 25}),
	'1000|0', 'the 1,000 labels read through the shards are transformers\' labels');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM sharded s FULL JOIN
		(SELECT id, camembert_classify(body, 'topics') AS label FROM posts_local) l USING (id)
	WHERE s.label IS NOT DISTINCT FROM l.label}),
	'1000', 'and one server\'s labels of the same rows');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE camembert_classify(p.body, 'topics') = g.label)
	FROM posts p JOIN golden g ON g.item = p.id % 25}),
	'1000', 'the naive query (classified on the coordinator) gives them too');

# the coordinator's side needs no camembert: a database without the extension reads the
# shards' labels the same way
$coord->safe_psql('postgres', 'CREATE DATABASE plain');
$coord->safe_psql('plain', qq{
	CREATE EXTENSION postgres_fdw;
	@{[ join '', map { "CREATE SERVER shard$_ FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '"
		. $shards[$_ - 1]->host . "', port '" . $shards[$_ - 1]->port
		. "', dbname 'postgres', async_capable 'true'); CREATE USER MAPPING FOR CURRENT_USER SERVER shard$_;\n" } 1 .. $n ]}
	CREATE TABLE posts (id bigint, body text, label text) PARTITION BY HASH (id);
	CREATE TABLE posts_classified (id bigint, body text, label text) PARTITION BY HASH (id);
	$partitions
	CREATE TABLE golden (item int PRIMARY KEY, body text, label text);
	INSERT INTO golden VALUES $golden_rows;
});
is($coord->safe_psql('plain', q{
	SELECT count(*), count(*) FILTER (WHERE s.label IS DISTINCT FROM g.label),
		(SELECT count(*) FROM pg_extension WHERE extname = 'camembert')
	FROM posts_classified s JOIN golden g ON g.item = s.id % 25}),
	'1000|0|0', 'a coordinator database without the extension reads the same labels');

# --- labelling: the UPDATE on each shard, both at once --------------------------------------
# what a user defines on the coordinator (README): send the statement to every shard, then
# collect; an error names the shard
$coord->safe_psql('postgres', q{
CREATE FUNCTION on_shards(sql text) RETURNS TABLE (shard name, result text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	servers name[] := ARRAY(SELECT srvname FROM pg_catalog.pg_foreign_server
	                        WHERE srvname LIKE 'shard%' ORDER BY srvname);
BEGIN
	FOREACH shard IN ARRAY servers LOOP
		BEGIN
			PERFORM public.dblink_connect(shard, shard);
			PERFORM public.dblink_send_query(shard, sql);
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'shard "%": %', shard, SQLERRM;
		END;
	END LOOP;
	FOREACH shard IN ARRAY servers LOOP
		BEGIN
			SELECT r INTO result FROM public.dblink_get_result(shard) AS t(r text);
			PERFORM public.dblink_disconnect(shard);
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'shard "%": %', shard, SQLERRM;
		END;
		RETURN NEXT;
	END LOOP;
END $$;
});
$_->safe_psql('postgres', 'SELECT camembert_stat_reset()') for @nodes;
is($coord->safe_psql('postgres', q{
	SELECT string_agg(shard || ' ' || result, ', ' ORDER BY shard) FROM on_shards(
		$$UPDATE posts SET label = camembert_classify(body, 'topics') WHERE label IS NULL$$)}),
	"shard1 UPDATE $held[0], shard2 UPDATE $held[1]", 'the labelling UPDATE ran on each shard');
is($coord->safe_psql('postgres', $texts), '0', 'the coordinator classified nothing');
is($coord->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE p.label IS DISTINCT FROM g.label)
	FROM posts p JOIN golden g ON g.item = p.id % 25}),
	'1000|0', 'every stored label is transformers\' label');

# labels as rows arrive: the trigger on each shard labels what the coordinator inserts
for my $shard (@shards)
{
	$shard->safe_psql('postgres', q{CREATE TRIGGER label_posts BEFORE INSERT OR UPDATE ON posts
		FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'topics')});
}
$coord->safe_psql('postgres',
	'INSERT INTO posts (id, body) SELECT 1000 + item, body FROM golden');
is($coord->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE p.label IS DISTINCT FROM g.label)
	FROM posts p JOIN golden g ON g.item = p.id - 1000 WHERE p.id >= 1000}),
	'25|0', 'rows inserted through the coordinator are labelled by their shard\'s trigger');

# --- a shard that is down: the query fails naming it, never a partial answer -------------
my $on_shard1 = $shards[0]->safe_psql('postgres', 'SELECT min(id) FROM posts');
$shards[1]->stop('fast');
my ($rc, $out, $err) = $coord->psql('postgres', 'SELECT id, label FROM posts_classified');
isnt($rc, 0, 'the sharded query fails while shard2 is down');
like($err, qr/could not connect to server "shard2"/, 'naming the shard');
is($out, '', 'and returns no row');
($rc, $out, $err) = $coord->psql('postgres', 'SELECT count(*) FROM posts_classified');
like($err, qr/could not connect to server "shard2"/, 'an aggregate fails the same way');
is($out, '', 'with no partial count');
($rc, $out, $err) = $coord->psql('postgres',
	q{SELECT * FROM on_shards('UPDATE posts SET label = NULL WHERE false')});
like($err, qr/shard "shard2"/, 'the labelling fails naming the shard');
($rc, $out, $err) = $coord->psql('postgres', 'SELECT count(*) FROM posts_classified WHERE id % 2 = 0');
like($err, qr/could not connect to server "shard2"/, 'a filter that needs every shard fails too');
# a row the partition key places on shard1: the plan reads shard1 alone, and answers
is($coord->safe_psql('postgres', "SELECT label FROM posts_classified WHERE id = $on_shard1"),
	$items[ $on_shard1 % 25 ]{result}[0]{label}, 'a query pruned to the live shard answers');

$shards[1]->start;

# --- a shard that dies during the query: an ERROR, not the other shard's rows ---------
# a view that takes ~20 ms a row (~10 s a shard), so that the query is still running when
# shard2 stops
for my $shard (@shards)
{
	$shard->safe_psql('postgres', q{CREATE VIEW posts_slow AS
		SELECT id, label FROM posts_classified WHERE pg_sleep(0.02) IS NOT NULL});
}
my $slow = '';
for my $i (1 .. $n)
{
	my $r = $i - 1;
	$slow .= qq{CREATE FOREIGN TABLE posts_slow_$i PARTITION OF posts_slow
		FOR VALUES WITH (MODULUS $n, REMAINDER $r) SERVER shard$i OPTIONS (table_name 'posts_slow');};
}
$coord->safe_psql('postgres',
	"CREATE TABLE posts_slow (id bigint, label text) PARTITION BY HASH (id); $slow");
my ($slow_out, $slow_err) = ('', '');
my $reader = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $coord->connstr('postgres'),
	  '-c', 'SELECT count(label) FROM posts_slow' ],
	'>', \$slow_out, '2>', \$slow_err);
# both shards classify at the same time (asynchronous foreign scans; without async_capable
# the coordinator would read shard1 to the end, ~10 s, before it starts shard2)
my $fetching = q{SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query ~ '^FETCH'};
my $both = 0;
# the query takes ~10 s when the shards overlap, ~20 s when they do not: look for 60 s at most
my $until = time() + 60;
while (time() < $until)
{
	my $on2 = $shards[1]->safe_psql('postgres', $fetching);
	my $on1 = $shards[0]->safe_psql('postgres', $fetching);
	if ($on1 > 0 && $on2 > 0) { $both = 1; last; }
	usleep(100_000);
}
ok($both, 'both shards run their part of the query at the same time');
$shards[1]->stop('immediate');
ok(!$reader->finish, 'a shard that stops during the query makes it fail');
# postgres_fdw (15) names the remote SQL here, not the server
like($slow_err, qr/ERROR:  (server closed the connection unexpectedly|terminating connection|could not receive data)/,
	'with an error: the connection to the shard was lost') or diag($slow_err);
is($slow_out, '', 'and no partial count');

$shards[1]->start;
is($coord->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE s.label IS DISTINCT FROM g.label)
	FROM posts_classified s JOIN golden g ON g.item = s.id % 25 WHERE s.id < 1000}),
	'1000|0', 'the shard back (its model reloaded from the registration): every row again');

$_->stop for @nodes;
done_testing();
