# Visible waits: a backend that needs a model another backend is loading waits on
# the load, shows the Extension wait event in pg_stat_activity, and can be
# cancelled; a cancelled load frees its slot and wakes its waiters.
# camembert.debug_load_delay (a developer option, superuser only) holds the load
# open, so that nothing here depends on timing.
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

my $node = PostgreSQL::Test::Cluster->new('waits');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
camembert.preload = off
max_parallel_workers_per_gather = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION camembert; CREATE ROLE plain LOGIN');

# only a superuser may hold loads open
my ($rc, $out, $err) = $node->psql('postgres', "SET camembert.debug_load_delay = '1s'", extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied to set parameter "camembert.debug_load_delay"/, 'the delay is a superuser setting');

my $loader = $node->background_psql('postgres', on_error_stop => 0);
my $loader_pid = $loader->query_safe('SELECT pg_backend_pid()');
$loader->query_until(qr/loading/, qq{
	\\echo loading
	SET camembert.debug_load_delay = '10min';
	SELECT camembert_load('m', '$golden/cls3');
});

sub wait_event
{
	my ($pid) = @_;
	return "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE pid = $pid";
}
ok($node->poll_query_until('postgres', wait_event($loader_pid), 'Extension:Extension'),
	'the loading backend shows the Extension wait event');

# two backends need the model meanwhile: they wait for the load, not load it again
my @waiters;
for my $i (1 .. 2)
{
	my $w = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $w->query_safe('SELECT pg_backend_pid()');
	$w->query_until(qr/waiting/, qq{
		\\echo waiting
		SELECT camembert_classify('Le film était bien.', 'm');
	});
	push @waiters, [ $w, $pid ];
}
for my $i (0 .. 1)
{
	ok($node->poll_query_until('postgres', wait_event($waiters[$i][1]), 'Extension:Extension'),
		"waiter $i shows the Extension wait event in pg_stat_activity");
}
is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $waiters[0][1]"), 'active',
	'and is still running its query');

# a waiter can be cancelled
$node->safe_psql('postgres', "SELECT pg_cancel_backend($waiters[1][1])");
$waiters[1][0]->query_until(qr/done/, "\\echo done\n");
like($waiters[1][0]->{stderr}, qr/canceling statement due to user request/, 'a waiting backend can be cancelled');
$waiters[1][0]->quit;

# cancelling the load frees the slot and wakes the other waiter
$node->safe_psql('postgres', "SELECT pg_cancel_backend($loader_pid)");
$loader->query_until(qr/cancelled/, "\\echo cancelled\n");
like($loader->{stderr}, qr/canceling statement due to user request/, 'the load is cancelled in its delay');
$waiters[0][0]->query_until(qr/woken/, "\\echo woken\n");
like($waiters[0][0]->{stderr}, qr/model "m" is not loaded/,
	'its waiter wakes up and finds no model (the load was cancelled, nothing registered)');
$waiters[0][0]->quit;
is($node->safe_psql('postgres', 'SELECT count(*) FROM camembert_loaded_models()'), '0', 'no slot is left loading');

# the same name loads normally afterwards, logged with its time
$loader->quit;
$node->safe_psql('postgres', "SELECT camembert_load('m', '$golden/cls3')");
is($node->safe_psql('postgres', "SELECT camembert_classify('Le film était bien.', 'm') IS NOT NULL"), 't',
	'the model loads and answers after the cancelled load');

$node->stop;
done_testing();
