# Models live once per server in shared memory: loading, sharing between
# backends (measured with PSS), concurrency, unload under load, restart and
# crash recovery, privileges, and corrupt model files.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Copy qw(copy);
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";
-d "$golden/mlm" or BAIL_OUT("golden models not found under $golden");

my $node = PostgreSQL::Test::Cluster->new('shared');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
max_connections = 30
log_min_messages = log
restart_after_crash = on
# this test checks the lazy reload after a restart: no preload worker (t/008_preload.pl)
camembert.preload = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION camembert');

# OpenBLAS starts no thread pool in the postmaster (fork stays safe), and a
# backend may still use several threads after the fork
my $pm = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
my @threads = glob("/proc/$pm/task/*");
is(scalar(@threads), 1, 'the postmaster runs a single thread after loading camembert');

my $text = 'Le camembert est un fromage de Normandie.';

# --- two backends load the same model at once: it is loaded once ------------
my @loaders;
for my $i (1 .. 2)
{
	push @loaders, IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  '-c', "SELECT camembert_load('mlm', '$golden/mlm')" ],
		'>', \my $out, '2>', \my $err);
}
my $ok = 1;
$ok &&= $_->finish for @loaders;
ok($ok, 'two concurrent camembert_load calls both succeed');
my $log = slurp_file($node->logfile);
my $loads = () = $log =~ /camembert: loaded model "mlm"/g;
is($loads, 1, 'the model was loaded once');

is($node->safe_psql('postgres',
	"SELECT name, architecture, task, loaded FROM camembert_models()"),
	'mlm|CamembertForMaskedLM|fill-mask|t', 'camembert_models lists it');

is($node->safe_psql('postgres',
	"SET camembert.threads = 2; SELECT camembert_logits('$text', 'mlm') = (SELECT camembert_logits('$text', 'mlm'))"),
	't', 'camembert.threads = 2 works in a forked backend');
is($node->safe_psql('postgres', qq{
	SET camembert.threads = 1;
	CREATE TEMP TABLE one AS SELECT camembert_logits(repeat('$text ', 12), 'mlm') AS l;
	SET camembert.threads = 2;
	SELECT max(abs(a - b)) < 1e-4 FROM one, unnest(one.l, camembert_logits(repeat('$text ', 12), 'mlm')) AS u(a, b);
}), 't', 'the same logits (within 1e-4) with 1 and 2 threads');

# --- 8 backends use it: shared memory counted once ---------------------------
my $bytes = $node->safe_psql('postgres', "SELECT bytes FROM camembert_models() WHERE name = 'mlm'");
my @users;
for my $i (1 .. 8)
{
	push @users, IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'),
		  '-c', "SELECT array_length(camembert_logits('$text', 'mlm'), 1), pg_sleep(30) /* user $i */" ],
		'>', \my $out, '2>', \my $err);
}
$node->poll_query_until('postgres',
	"SELECT count(*) = 8 FROM pg_stat_activity WHERE query LIKE '%/* user %' AND wait_event = 'PgSleep'")
  or die 'backends did not reach pg_sleep';
my @pids = split /\n/, $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* user %' AND wait_event = 'PgSleep'");

# Sum, over the 8 backends, the Rss and Pss of their mappings of the model's
# DSM segment (/dev/shm/PostgreSQL.*, at least as large as the segment).
my ($rss_sum, $pss_sum, $mapped) = (0, 0, 0);
for my $pid (@pids)
{
	my $smaps = slurp_file("/proc/$pid/smaps");
	my $in_segment = 0;
	for my $line (split /\n/, $smaps)
	{
		if ($line =~ /^([0-9a-f]+)-([0-9a-f]+)\s\S+\s\S+\s\S+\s\S+\s*(.*)$/)
		{
			my ($from, $to, $path) = (hex($1), hex($2), $3);
			$in_segment = ($path =~ m{/dev/shm/PostgreSQL\.\d+} && $to - $from >= $bytes) ? 1 : 0;
			$mapped++ if $in_segment;
		}
		elsif ($in_segment && $line =~ /^Rss:\s+(\d+) kB/) { $rss_sum += $1 * 1024; }
		elsif ($in_segment && $line =~ /^Pss:\s+(\d+) kB/) { $pss_sum += $1 * 1024; }
	}
}
note(sprintf('segment %d bytes; 8 backends: Rss %d, Pss %d (%.2fx the segment)',
	$bytes, $rss_sum, $pss_sum, $pss_sum / $bytes));
is($mapped, 8, 'each of the 8 backends maps the model segment');
cmp_ok($rss_sum, '>=', 8 * 0.5 * $bytes, 'each backend touched the weights (Rss)');
cmp_ok($pss_sum, '<=', 1.2 * $bytes, 'the 8 backends share one copy (Pss <= 1.2x the model)');
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%/* user %' AND pid <> pg_backend_pid()");
$_->finish for @users;

# --- unloading while another backend runs the model never crashes it -------
my $runner = IPC::Run::start(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
	  '-c', "SELECT count(camembert_logits('$text ' || i, 'mlm')) FROM generate_series(1, 400) i /* runner */" ],
	'>', \my $runner_out, '2>', \my $runner_err);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%/* runner */%' AND pid <> pg_backend_pid()");
is($node->safe_psql('postgres', "SELECT camembert_unload('mlm')"), 't', 'unload while in use');
ok($runner->finish, 'the running query finished normally') or diag($runner_err);
like($runner_out, qr/400/, 'and computed every row');
is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_models()"), '0', 'nothing left after unload');
my ($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT camembert_logits('x', 'mlm')");
like($stderr, qr/model "mlm" is not loaded/, 'an unloaded model is not found');

# --- registered models come back after a restart and after a crash ----------
$node->safe_psql('postgres', "SELECT camembert_load('cls', '$golden/cls3')");
$node->restart;
is($node->safe_psql('postgres', "SELECT loaded FROM camembert_models() WHERE name = 'cls'"),
	'f', 'after a restart the model is registered but not loaded');
is($node->safe_psql('postgres', "SELECT array_length(camembert_logits('$text', 'cls'), 1)"),
	'3', 'first use loads it again');
is($node->safe_psql('postgres', "SELECT loaded FROM camembert_models() WHERE name = 'cls'"),
	't', 'and it is loaded');

my $victim = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', 'SELECT pg_sleep(60) /* victim */' ],
	'>', \my $vout, '2>', \my $verr);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%/* victim */%' AND pid <> pg_backend_pid()");
my $vpid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* victim */%' AND pid <> pg_backend_pid()");
kill 'KILL', $vpid;
$victim->finish;
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not recover';
is($node->safe_psql('postgres', "SELECT array_length(camembert_logits('$text', 'cls'), 1)"),
	'3', 'after kill -9 of a backend and the crash restart, the model loads again on use');

# --- privileges -------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE ROLE plain LOGIN;
	CREATE ROLE reader LOGIN;
	GRANT pg_read_server_files TO reader;
});
($rc, $stdout, $stderr) = $node->psql('postgres',
	"SET ROLE plain; SELECT camembert_load('m2', '$golden/mlm')");
like($stderr, qr/permission denied to load a model/, 'a plain role cannot load');
($rc, $stdout, $stderr) = $node->psql('postgres', "SET ROLE plain; SELECT camembert_unload('cls')");
like($stderr, qr/permission denied to unload a model/, 'a plain role cannot unload');
is($node->safe_psql('postgres', "SET ROLE plain; SELECT array_length(camembert_logits('$text', 'cls'), 1)"),
	'3', 'a plain role can run inference');
is($node->safe_psql('postgres', "SET ROLE reader; SELECT camembert_load('m2', '$golden/mlm'); SELECT camembert_unload('m2')"),
	"\nt", 'a member of pg_read_server_files can load and unload');

# camembert.model_dir confines paths
($rc, $stdout, $stderr) = $node->psql('postgres',
	"SET camembert.model_dir = '$golden/cls3'; SELECT camembert_load('m3', '$golden/mlm')");
like($stderr, qr/outside camembert.model_dir/, 'camembert.model_dir confines paths');
($rc, $stdout, $stderr) = $node->psql('postgres',
	"SET camembert.model_dir = '$golden'; SELECT camembert_load('m3', 'mlm/../../models/mlm'); SELECT camembert_unload('m3')");
is($rc, 0, 'relative paths resolve against camembert.model_dir') or diag($stderr);

# --- corrupt model files give clear errors ------------------------------------
my $tmp = PostgreSQL::Test::Utils::tempdir;
sub corrupt_copy
{
	my ($name, $mutate) = @_;
	my $dir = "$tmp/$name";
	make_path($dir);
	copy("$golden/mlm/$_", "$dir/$_") or die "copy $_: $!"
	  for qw(config.json model.safetensors sentencepiece.bpe.model);
	$mutate->($dir);
	return $dir;
}
sub rewrite
{
	my ($path, $fn) = @_;
	open(my $fh, '<:raw', $path) or die $!;
	local $/;
	my $data = <$fh>;
	close $fh;
	$data = $fn->($data);
	open($fh, '>:raw', $path) or die $!;
	print $fh $data;
	close $fh;
}

my %cases = (
	truncated => [ sub { rewrite("$_[0]/model.safetensors", sub { substr($_[0], 0, length($_[0]) / 2) }) },
		qr/model\.safetensors/ ],
	huge_header => [ sub { rewrite("$_[0]/model.safetensors", sub { pack('Q<', 1 << 50) . substr($_[0], 8) }) },
		qr/header/i ],
	offsets_past_end => [ sub { rewrite("$_[0]/model.safetensors", sub { my $d = shift; $d =~ s/"data_offsets":\[(\d+),(\d+)\]/"data_offsets":[$1,99999999]/; $d }) },
		qr/offset|size|span|shape|length/i ],
	wrong_shape => [ sub { rewrite("$_[0]/config.json", sub { my $d = shift; $d =~ s/"intermediate_size": 256/"intermediate_size": 128/; $d }) },
		qr/shape/i ],
	bad_tokenizer => [ sub { rewrite("$_[0]/sentencepiece.bpe.model", sub { substr($_[0], 0, 1000) }) },
		qr/sentencepiece/i ],
	no_weights => [ sub { unlink "$_[0]/model.safetensors" },
		qr/model\.safetensors|weights/i ],
);
for my $case (sort keys %cases)
{
	my ($mutate, $pattern) = @{ $cases{$case} };
	my $dir = corrupt_copy($case, $mutate);
	($rc, $stdout, $stderr) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT camembert_load('bad_$case', '$dir')");
	isnt($rc, 0, "$case: camembert_load fails");
	like($stderr, qr/ERROR:  (XX001|0A000|58P01|22023)/, "$case: with a data error SQLSTATE");
	like($stderr, $pattern, "$case: the message names the problem") or diag($stderr);
}
is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_models() WHERE name LIKE 'bad_%'"),
	'0', 'failed loads leave nothing behind');
is($node->safe_psql('postgres', "SELECT array_length(camembert_logits('$text', 'cls'), 1)"),
	'3', 'the server still serves the good model');

# --- without shared_preload_libraries: a clear error ------------------------
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION camembert');
($rc, $stdout, $stderr) = $plain->psql('postgres', "SELECT camembert_load('m', '$golden/mlm')");
like($stderr, qr/not loaded through shared_preload_libraries/, 'without preloading: an ERROR');
like($stderr, qr/HINT:  Add 'camembert' to shared_preload_libraries/, 'with a hint');
$plain->stop;

$node->stop;
done_testing();
