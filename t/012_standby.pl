# Hot standbys serve inference: a primary and two streaming standbys give the
# same outputs; the standbys load the primary's registrations from their own
# disk on first use; load/unload there (and in a read-only transaction) fail
# before touching memory; a registration changed on the primary reaches the
# standbys' memory; a rolled-back load frees what it loaded; a name means one
# model per server across databases; kill -9 and promotion.
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
-d "$golden/mlm" or BAIL_OUT("golden models not found under $golden");
my ($mlm, $cls) = ("$golden/mlm", "$golden/cls3");

my $conf = qq{
shared_preload_libraries = 'camembert'
restart_after_crash = on
log_min_messages = log
# the lazy load on first use is what this test checks (t/008 tests the preload worker)
camembert.preload = off
};

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION camembert');
$primary->safe_psql('postgres', "SELECT camembert_load('m', '$mlm')");
$primary->safe_psql('postgres', "SELECT camembert_load('c', '$cls')");

$primary->backup('base');
my @standbys;
for my $n (1, 2)
{
	my $s = PostgreSQL::Test::Cluster->new("standby$n");
	$s->init_from_backup($primary, 'base', has_streaming => 1);
	$s->start;
	push @standbys, $s;
}
my ($s1, $s2) = @standbys;
$primary->wait_for_catchup($_) for @standbys;

my $text = 'Le camembert est un fromage de Normandie.';
my $masked = 'Le camembert est un <mask> de Normandie.';
my %q = (
	logits => "SELECT camembert_logits('$text', 'm')",
	fill_mask => "SELECT mask_index, round(score::numeric, 6), token, token_str, sequence FROM camembert_fill_mask('$masked', 'm', 5)",
	classify => "SELECT label, round(score::numeric, 6) FROM camembert_classify_scores('$text', 'c') ORDER BY label",
);
my %want = map { $_ => $primary->safe_psql('postgres', $q{$_}) } keys %q;
ok(length($want{logits}) > 100 && $want{fill_mask} =~ /\|/, 'the primary answers');

# --- the standbys: same outputs, loaded from their own disk, writing nothing --
for my $s (@standbys)
{
	my $name = $s->name;
	is($s->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', "$name is a standby");
	is($s->safe_psql('postgres', 'SELECT count(*) FROM camembert_loaded_models()'), '0',
		"$name has nothing loaded before first use");
	is($s->safe_psql('postgres', 'SELECT name, path FROM camembert_registered_models ORDER BY name'),
		"c|$cls\nm|$mlm", "$name sees the primary's registrations");
	for my $k (sort keys %q)
	{
		is($s->safe_psql('postgres', $q{$k}), $want{$k}, "$name: $k equals the primary's");
	}
	like(slurp_file($s->logfile), qr/camembert: loaded model "m" from/, "$name loaded the model itself on first use");
}

# --- load and unload on a standby: refused before memory is touched ---------
my ($rc, $out, $err) = $s1->psql('postgres', "SELECT camembert_load('x', '$mlm')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/25006.*cannot load a model during recovery/s, 'camembert_load on a standby: 25006');
($rc, $out, $err) = $s1->psql('postgres', "SELECT camembert_unload('m')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/25006.*cannot unload a model during recovery/s, 'camembert_unload on a standby: 25006');
is($s1->safe_psql('postgres', 'SELECT string_agg(name, \',\' ORDER BY name) FROM camembert_loaded_models()'),
	'c,m', 'the standby\'s memory is as before: x not loaded, m not unloaded');
unlike(slurp_file($s1->logfile), qr/loaded model "x"/, 'the standby never loaded x');

# --- a read-only transaction on the primary: the same ------------------------
($rc, $out, $err) = $primary->psql('postgres',
	"SET default_transaction_read_only = on; SELECT camembert_load('ro', '$mlm')");
like($err, qr/cannot load a model in a read-only transaction/, 'camembert_load in a read-only transaction fails');
is($primary->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = 'ro'"),
	'0', '... and loads nothing');

# --- a rolled-back load frees what it loaded ----------------------------------
$primary->safe_psql('postgres', "BEGIN; SELECT camembert_load('tmp', '$cls'); ROLLBACK;");
is($primary->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = 'tmp'"),
	'0', 'a load rolled back leaves nothing in shared memory');
$primary->safe_psql('postgres', "BEGIN; SAVEPOINT a; SELECT camembert_load('tmp2', '$cls'); ROLLBACK TO a; COMMIT;");
is($primary->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = 'tmp2'"),
	'0', 'a load rolled back to a savepoint leaves nothing in shared memory');
$primary->safe_psql('postgres', "BEGIN; SAVEPOINT a; SELECT camembert_load('kept', '$cls'); RELEASE a; COMMIT;");
is($primary->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = 'kept'"),
	'1', 'a load in a released savepoint stays');
$primary->safe_psql('postgres', "SELECT camembert_unload('kept')");

# --- a load not yet committed is used by other sessions as it is ---------------
{
	my ($in, $out, $err) = ("BEGIN;\nSELECT camembert_load('late', '$cls');\n\\echo loaded\n", '', '');
	my $timer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	my $h = IPC::Run::start([ 'psql', '-X', '-q', '-d', $primary->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err, $timer);
	$h->pump until $out =~ /loaded/;
	is($primary->safe_psql('postgres', $q{classify} =~ s/'c'/'late'/r), $want{classify},
		'another session uses a model whose load is not committed yet');
	$in .= "COMMIT;\n\\q\n";
	$h->finish;
	is($primary->safe_psql('postgres', $q{classify} =~ s/'c'/'late'/r), $want{classify},
		'and after the commit');
	my $log = slurp_file($primary->logfile);
	my $loads = () = $log =~ /camembert: loaded model "late"/g;
	is($loads, 1, 'loaded once: the other session neither freed nor reloaded it');
	$primary->safe_psql('postgres', "SELECT camembert_unload('late')");
}

# --- a registration changed on the primary reaches the standbys ---------------
# m: from the masked LM to the classifier's directory
$primary->safe_psql('postgres', "SELECT camembert_unload('m')");
$primary->safe_psql('postgres', "SELECT camembert_load('m', '$cls')");
# c: the same directory with another dtype
$primary->safe_psql('postgres', "SELECT camembert_unload('c')");
$primary->safe_psql('postgres', "SELECT camembert_load('c', '$cls', dtype => 'bfloat16')");
$primary->wait_for_catchup($_) for @standbys;
my $m_now = $primary->safe_psql('postgres', "SELECT label, round(score::numeric, 6) FROM camembert_classify_scores('$text', 'm') ORDER BY label");
my $c_now = $primary->safe_psql('postgres', $q{classify});
isnt($c_now, '', 'the primary answers with the bfloat16 classifier');
for my $s (@standbys)
{
	my $name = $s->name;
	is($s->safe_psql('postgres', "SELECT label, round(score::numeric, 6) FROM camembert_classify_scores('$text', 'm') ORDER BY label"),
		$m_now, "$name: m is now the classifier, as on the primary");
	is($s->safe_psql('postgres', $q{classify}), $c_now, "$name: c now gives the bfloat16 scores of the primary");
	is($s->safe_psql('postgres', "SELECT name, path, architecture, precision FROM camembert_loaded_models() ORDER BY name"),
		"c|$cls|CamembertForSequenceClassification|bfloat16\nm|$cls|CamembertForSequenceClassification|auto",
		"$name: its memory holds what the primary registered");
	like(slurp_file($s->logfile), qr/unloaded model "m" .*since its registration in this database changed/,
		"$name logged why it reloaded m");
}

# unload only: the standbys free their copy on next use
$primary->safe_psql('postgres', "SELECT camembert_unload('c')");
$primary->wait_for_catchup($_) for @standbys;
for my $s (@standbys)
{
	my $name = $s->name;
	($rc, $out, $err) = $s->psql('postgres', $q{classify});
	like($err, qr/model "c" is not loaded/, "$name: c unloaded on the primary is not served");
	is($s->safe_psql('postgres', "SELECT string_agg(name, ',') FROM camembert_loaded_models()"),
		'm', "$name: and its memory is freed");
}
$primary->safe_psql('postgres', "SELECT camembert_load('c', '$cls')");

# --- one server, two databases: a name means one model ------------------------
$primary->safe_psql('postgres', 'CREATE DATABASE other');
$primary->safe_psql('other', 'CREATE EXTENSION camembert');
($rc, $out, $err) = $primary->psql('other', "SELECT camembert_load('m', '$mlm')");
like($err, qr/model "m" is loaded on this server for database "postgres" from "\Q$cls\E".*database "other" registers it from "\Q$mlm\E"/,
	'loading a name another database loaded otherwise: an ERROR naming both databases');
# a conflicting registration (restored by pg_dump, say) is never a silent swap
$primary->safe_psql('other', "INSERT INTO camembert_registered_models (name, path, dtype) VALUES ('m', '$mlm', 'auto')");
($rc, $out, $err) = $primary->psql('other', "SELECT camembert_logits('$text', 'm')");
like($err, qr/model "m" is loaded on this server for database "postgres".*database "other" registers it from/,
	'using a name registered otherwise than another database loaded it: an ERROR naming both');
is($out, '', '... and no output');
# the same registration in both databases shares the model
$primary->safe_psql('other', "SELECT camembert_load('c', '$cls')");
is($primary->safe_psql('other', $q{classify}), $primary->safe_psql('postgres', $q{classify}),
	'two databases registering the same path and dtype share the model');
$primary->wait_for_catchup($_) for @standbys;
($rc, $out, $err) = $s2->psql('other', "SELECT camembert_logits('$text', 'm')");
like($err, qr/database "other" registers it from/, 'the same ERROR on a standby');

# --- kill -9 of a standby backend: the standby recovers, models load again ---
my $victim = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $s2->connstr('postgres'),
	  '-c', "SELECT camembert_logits('$text', 'm') IS NOT NULL, pg_sleep(60) /* victim */" ],
	'>', \my $vout, '2>', \my $verr);
$s2->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%/* victim */%' AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()")
  or die 'the victim did not start';
my $vpid = $s2->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* victim */%' AND pid <> pg_backend_pid()");
kill 'KILL', $vpid;
$victim->finish;
ok($s2->poll_query_until('postgres', 'SELECT pg_is_in_recovery()', 't'), 'the standby is back after the crash restart');
like(slurp_file($s2->logfile), qr/was terminated by signal 9/, 'the standby went through a crash restart');
is($s2->safe_psql('postgres', 'SELECT count(*) FROM camembert_loaded_models()'), '0',
	'its shared memory was emptied');
is($s2->safe_psql('postgres', "SELECT label, round(score::numeric, 6) FROM camembert_classify_scores('$text', 'm') ORDER BY label"),
	$m_now, 'after kill -9 of a standby backend the standby serves the model again');
$primary->safe_psql('postgres', "SELECT camembert_load('after_crash', '$mlm')");
$primary->wait_for_catchup($s2);
is($s2->safe_psql('postgres', $q{fill_mask} =~ s/'m'/'after_crash'/r), $want{fill_mask},
	'and still follows the primary\'s registrations');

# --- promotion: every model keeps working, and loads are allowed --------------
$s1->promote;
$s1->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'no promotion';
is($s1->safe_psql('postgres', "SELECT label, round(score::numeric, 6) FROM camembert_classify_scores('$text', 'm') ORDER BY label"),
	$m_now, 'after promotion the model it held works');
is($s1->safe_psql('postgres', $q{classify}), $primary->safe_psql('postgres', $q{classify}),
	'after promotion a registered model not yet loaded there loads on first use');
$s1->safe_psql('postgres', "SELECT camembert_load('new', '$mlm')");
is($s1->safe_psql('postgres', $q{fill_mask} =~ s/'m'/'new'/r), $want{fill_mask},
	'after promotion camembert_load works');

$_->stop for (@standbys, $primary);
done_testing();
