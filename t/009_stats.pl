# camembert_stat_models across processes and databases (README, Monitoring):
#  - a full table (camembert.stat_max) records nothing new and counts it as dropped;
#  - entries are per database; parallel workers count the calls they run;
#  - the counters start from zero at a server start.
use strict;
use warnings;
use Cwd qw(abs_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";

my $node = PostgreSQL::Test::Cluster->new('stats');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
camembert.stat_max = 2
# counters start empty after a restart: no preload worker loading (and counting) models (t/008_preload.pl)
camembert.preload = off
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION camembert; CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION camembert');

my $rows = q{SELECT coalesce(string_agg(model || ':' || loads || ':' || calls || ':' || texts, ' ' ORDER BY model, dbid), '-')
	FROM camembert_stat_models};

# --- a full table: new keys are dropped, entries already there still count ---
$node->safe_psql('postgres', qq{
	SELECT camembert_load('a', '$golden/cls3');
	SELECT camembert_load('b', '$golden/cls3');
	SELECT camembert_load('c', '$golden/cls3');
	SELECT camembert_classify('x', 'c');
	SELECT camembert_classify('x', 'a');
});
is($node->safe_psql('postgres', $rows), 'a:1:1:1 b:1:0:0', 'two entries: the table is full');
is($node->safe_psql('postgres', 'SELECT camembert_stat_dropped()'), '2',
	'the load and the call of the third model are counted as dropped');
$node->safe_psql('postgres', 'SELECT camembert_stat_reset()');
is($node->safe_psql('postgres', "SELECT ($rows) || '|' || camembert_stat_dropped()"), '-|0', 'the reset empties both');

# --- one entry per database -------------------------------------------------
$node->safe_psql('postgres', "SELECT camembert_classify('x', 'a')");
$node->safe_psql('other', "SELECT camembert_classify(ARRAY['x', 'y'], 'a')");
is($node->safe_psql('postgres', $rows), 'a:0:1:1 a:0:1:2', 'the same model, one entry per database');
is($node->safe_psql('postgres',
		"SELECT string_agg(d.datname, ',' ORDER BY d.datname) FROM camembert_stat_models s JOIN pg_database d ON d.oid = s.dbid"),
	'other,postgres', 'dbid names the database of the calls');

# --- parallel workers count the calls they run ------------------------------
$node->safe_psql('postgres', q{
	SELECT camembert_stat_reset();
	CREATE TABLE posts AS SELECT 'texte ' || i AS body FROM generate_series(1, 400) AS i;
	ANALYZE posts;
});
my $plan = $node->safe_psql('postgres', q{
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
	EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(camembert_classify(body, 'a')) FROM posts;
});
like($plan, qr/Workers Launched: [12]/, 'the query ran in parallel workers');
is($node->safe_psql('postgres', $rows), 'a:0:400:400', 'every row counted once, from the workers');

# --- a restart starts from zero ---------------------------------------------
$node->restart;
is($node->safe_psql('postgres', $rows), '-', 'nothing counted after a restart');

$node->stop;
done_testing();
