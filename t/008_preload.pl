# camembert.preload: a background worker loads the models registered in the
# databases of camembert.preload_databases when the server starts, and again
# after a crash restart, without any query asking for them.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Copy qw(copy);
use File::Path qw(make_path rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";
-d "$golden/cls3" or BAIL_OUT("golden models not found under $golden");

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
log_min_messages = log
restart_after_crash = on
camembert.preload_databases = 'postgres, nosuchdb, appdb'
});
$node->start;

# a model whose directory will disappear: a copy of cls3 in the test's own directory
my $doomed = PostgreSQL::Test::Utils::tempdir() . '/doomed';
make_path($doomed);
-f $_ and (copy($_, $doomed) or die "copy $_: $!") for glob("$golden/cls3/*");

$node->safe_psql('postgres', 'CREATE DATABASE appdb');
$node->safe_psql('appdb', qq{
	CREATE EXTENSION camembert;
	SELECT camembert_load('cls', '$golden/cls3');
	SELECT camembert_load('mlm', '$golden/mlm');
	SELECT camembert_load('doomed', '$doomed');
});
rmtree($doomed);

# the postmaster's children named "camembert preload ..." (the launcher has no
# database connection, so pg_stat_activity does not show it)
sub preload_processes
{
	my $pm = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	my @found;
	for my $stat (glob('/proc/[0-9]*/stat'))
	{
		my $s = eval { slurp_file($stat) } // next;
		next unless $s =~ /^\d+ \(.*\) \S (\d+) / && $1 == $pm;
		(my $cmd = eval { slurp_file($stat =~ s/stat$/cmdline/r) } // '') =~ s/\0.*//s;
		push @found, $1 if $cmd =~ /(camembert preload .*?)\s*$/;
	}
	return join(',', sort @found);
}

my $loaded = "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM camembert_loaded_models()";
my $text = 'Le camembert est un fromage de Normandie.';

# --- at start: both models load, with no query naming them --------------------
my $offset = -s $node->logfile;
$node->restart;
ok($node->poll_query_until('appdb', $loaded, 'cls,mlm'),
	'after a restart the preload worker loads both registered models');
ok($node->wait_for_log(qr/database "appdb": 3 registered model\(s\), 2 preloaded, 1 failed/, $offset),
	'the worker reports what it did');
my $log = substr(slurp_file($node->logfile), $offset);
like($log, qr/camembert: preloaded model "cls" of database "appdb" from "\Q$golden\E\/cls3" \(\d+ bytes\) in \d+ ms/,
	'the load is logged with name, path, bytes and milliseconds');
like($log, qr/LOG:.*could not preload model "doomed" of database "appdb" from "\Q$doomed\E"/,
	'a registration whose directory disappeared is logged');
like($log, qr/database "postgres": 0 registered model\(s\)/, 'a listed database without the extension is fine');
like($log, qr/FATAL:\s+database "nosuchdb" does not exist/, 'a listed database that does not exist ends its worker only');
like($log, qr/camembert: preload of database\(s\) .* finished in \d+ ms/, 'the launcher reports the total time');
is(preload_processes(), 'camembert preload launcher',
	'the launcher stays (idle) for the next crash restart; the database workers are gone');

# --- a query that arrives while preloading waits for that load: one load per name
$offset = -s $node->logfile;
$node->restart;
is($node->safe_psql('appdb', "SELECT camembert_classify('$text', 'cls') IS NOT NULL"),
	't', 'a classification right after the restart works');
ok($node->poll_query_until('appdb', $loaded, 'cls,mlm'), 'both models are loaded again');
$log = substr(slurp_file($node->logfile), $offset);
my $loads = () = $log =~ /camembert: loaded model "cls"/g;
is($loads, 1, 'the model was loaded once, by the worker or by the query');

# --- after a crash restart, the models are preloaded again --------------------
$offset = -s $node->logfile;
my $victim = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('appdb'), '-c', 'SELECT pg_sleep(60) /* victim */' ],
	'>', \my $vout, '2>', \my $verr);
$node->poll_query_until('appdb',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%/* victim */%' AND pid <> pg_backend_pid()")
  or die 'victim did not start';
my $vpid = $node->safe_psql('appdb',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* victim */%' AND pid <> pg_backend_pid()");
kill 'KILL', $vpid;
$victim->finish;
ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset), 'the server crash-restarts');
ok($node->poll_query_until('appdb', $loaded, 'cls,mlm'),
	'after kill -9 of a backend and the crash restart, both models are preloaded again');
ok($node->wait_for_log(qr/database "appdb": 3 registered model\(s\), 2 preloaded, 1 failed/, $offset),
	'by the preload worker');

# --- camembert.preload = off: nothing loads until first use -------------------
$node->append_conf('postgresql.conf', "camembert.preload = off\n");
$offset = -s $node->logfile;
$node->restart;
sleep 2;
is($node->safe_psql('appdb', $loaded), '', 'with camembert.preload = off nothing is loaded after a restart');
is(preload_processes(), '', 'and no preload worker runs');
is($node->safe_psql('appdb', "SELECT camembert_classify('$text', 'cls') IS NOT NULL"),
	't', 'first use loads the model');
is($node->safe_psql('appdb', $loaded), 'cls', 'only that one');
unlike(substr(slurp_file($node->logfile), $offset), qr/preloaded model/, 'nothing was preloaded');

$node->stop;
done_testing();
