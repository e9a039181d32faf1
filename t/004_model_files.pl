# The files of a model directory are hostile input: a position table too short
# for generation, FIFOs where files should be, an allocation failure while a
# weight file is open, and symbolic links out of camembert.model_dir.
use strict;
use warnings;
use Cwd qw(abs_path);
use Fcntl qw(O_WRONLY O_NONBLOCK);
use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(mkfifo);
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";
my $tmp = PostgreSQL::Test::Utils::tempdir;
# generous bounds: the machine is shared; a hang is what they catch
my $psql_timeout = 120;

my $node = PostgreSQL::Test::Cluster->new('model_files');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION camembert');

# Run sql (after \set VERBOSITY verbose, so that stderr has the SQLSTATE) with a
# client-side timeout; returns (stdout, stderr, timed out, seconds).
sub run_sql
{
	my ($sql) = @_;
	my ($stdout, $stderr, $timed_out);
	my $start = time;
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout, stderr => \$stderr,
		timeout => $psql_timeout, timed_out => \$timed_out);
	return ($stdout, $stderr // '', $timed_out, time - $start);
}

sub copy_files
{
	my ($from, $to, @names) = @_;
	make_path($to);
	for my $n (@names)
	{
		copy("$from/$n", "$to/$n") or die "copy $from/$n: $!";
	}
}

sub slurp_bytes
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "$path: $!";
	local $/;
	my $data = <$fh>;
	close($fh);
	return $data;
}

sub write_bytes
{
	my ($path, $data) = @_;
	open(my $fh, '>:raw', $path) or die "$path: $!";
	print $fh $data;
	close($fh) or die "$path: $!";
}

# --- a position table with room for 1 token cannot generate ---------------------
# A copy of clm whose max_position_embeddings leaves `room` positions after
# pad_token_id (RoBERTa positions start at pad_token_id + 1), with the
# position embeddings cut to match, so that only that relation is wrong.
sub short_positions_model
{
	my ($dir, $room) = @_;
	copy_files("$golden/clm", $dir, 'sentencepiece.bpe.model');

	my $config = decode_json(slurp_bytes("$golden/clm/config.json"));
	my $rows = $config->{pad_token_id} + 1 + $room;
	$config->{max_position_embeddings} = $rows;
	write_bytes("$dir/config.json", JSON::PP->new->canonical->encode($config));

	my $file = slurp_bytes("$golden/clm/model.safetensors");
	my $hlen = unpack('Q<', substr($file, 0, 8));
	my $header = decode_json(substr($file, 8, $hlen));
	my $data = substr($file, 8 + $hlen);
	my $new_data = '';
	for my $name (sort { $header->{$a}{data_offsets}[0] <=> $header->{$b}{data_offsets}[0] }
		grep { $_ ne '__metadata__' } keys %$header)
	{
		my $t = $header->{$name};
		my ($b, $e) = @{ $t->{data_offsets} };
		my $bytes = substr($data, $b, $e - $b);
		if ($name eq 'roberta.embeddings.position_embeddings.weight')
		{
			$bytes = substr($bytes, 0, $rows * $t->{shape}[1] * 4);
			$t->{shape}[0] = $rows;
		}
		$t->{data_offsets} = [ length($new_data), length($new_data) + length($bytes) ];
		$new_data .= $bytes;
	}
	my $new_header = JSON::PP->new->canonical->encode($header);
	write_bytes("$dir/model.safetensors", pack('Q<', length($new_header)) . $new_header . $new_data);
}

short_positions_model("$tmp/clm_room1", 1);
short_positions_model("$tmp/clm_room2", 2);

my ($out, $err, $timed_out, $secs) = run_sql("SELECT camembert_load('room1', '$tmp/clm_room1')");
like($err, qr/ERROR:\s+XX001: \Q$tmp\E\/clm_room1\/config\.json: max_position_embeddings = 3 with pad_token_id = 1 leaves room for 1 tokens/,
	'a causal LM with room for 1 token is refused at load (XX001, naming config.json)');
like($err, qr/HINT:/, 'with a hint');
($out, $err) = run_sql("SELECT camembert_generate('Le chat dort sur le canapé', 'room1', 5)");
like($err, qr/ERROR:\s+42704: model "room1" is not loaded/, 'so it cannot generate (and nothing crashes)');

($out, $err) = run_sql(qq{
SELECT camembert_load('room2', '$tmp/clm_room2');
SELECT camembert_generate('Le chat dort sur le canapé', 'room2', 5) IS NOT NULL AS generated;
SELECT camembert_generate('Le chat dort sur le canapé', 'room2', 5, 0.8, 0, 1, 42) IS NOT NULL AS sampled;
SELECT cardinality(camembert_tokenize('Le chat', 'room2')) > 0 AS tokenized;
SELECT camembert_score('Le chat dort sur le canapé', 'room2') < 0 AS scored;
SELECT camembert_unload('room2');
});
is($err, '', 'room for 2 tokens (the shortest allowed) loads, generates, samples and scores');
is($out, "\nt\nt\nt\nt\nt", 'with results') or diag($out);

# --- FIFOs in a model directory fail at once -------------------------------------
# A blocking open() of a FIFO waits for a writer in the kernel, where neither a
# cancel nor statement_timeout reaches it.  If that happens, the test gives the
# FIFO a writer (after psql's timeout) so that the backend can finish.
sub unblock_fifo
{
	my ($fifo) = @_;
	if (sysopen(my $fh, $fifo, O_WRONLY | O_NONBLOCK))
	{
		close($fh);
	}
}

for my $case (
	[ 'config.json', 'mlm', qr/config\.json: not a regular file \(a FIFO\)/ ],
	[ 'sentencepiece.bpe.model', 'mlm', qr/sentencepiece\.bpe\.model: not a regular file \(a FIFO\)/ ],
	[ 'model.safetensors', 'mlm', qr/model\.safetensors: not a regular file/ ])
{
	my ($name, $model, $expected) = @$case;
	my $dir = "$tmp/fifo_" . ($name =~ s/\W/_/gr);
	copy_files("$golden/$model", $dir, grep { $_ ne $name } qw(config.json model.safetensors sentencepiece.bpe.model));
	mkfifo("$dir/$name", 0600) or die "mkfifo $dir/$name: $!";

	($out, $err, $timed_out, $secs) = run_sql(qq{
SET statement_timeout = '30s';
SELECT camembert_load('fifo', '$dir');
});
	unblock_fifo("$dir/$name") if $timed_out;
	ok(!$timed_out, "$name a FIFO: camembert_load returns") or diag("still blocked after $psql_timeout s");
	like($err, qr/ERROR:\s+58030: .*$expected/, "$name a FIFO: an ERROR naming it (58030)");
	unlike($err, qr/statement timeout/, "$name a FIFO: the extension's error, not the statement timeout");
}

# --- an allocation failure while a weight file is open leaks nothing --------------
# A safetensors header whose "shape" array has 3 million entries: the JSON
# parser grows its array by realloc to ~216 MB while the file is open.  The
# backend's address space is capped 100 MB above what it uses, so a realloc
# fails: the core must get NULL (and close the file), not an ERROR thrown
# from inside it with the descriptor still open.
SKIP:
{
	skip 'no /proc or prlimit', 3 unless -d "/proc/$$/fd" && system('prlimit --version >/dev/null 2>&1') == 0;

	my $dir = "$tmp/oom";
	copy_files("$golden/mlm", $dir, qw(config.json sentencepiece.bpe.model));
	my $header = '{"x":{"dtype":"F32","shape":[' . join(',', (0) x 3_000_000) . '],"data_offsets":[0,0]}}';
	write_bytes("$dir/model.safetensors", pack('Q<', length($header)) . $header);

	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	my ($vm_kb) = slurp_file("/proc/$pid/status") =~ /^VmSize:\s+(\d+) kB/m;
	my $limit = $vm_kb * 1024 + 100 * 1024 * 1024;
	is(system('prlimit', "--pid=$pid", "--as=$limit"), 0, "capped backend $pid at $limit bytes of address space");

	my ($res, $failed) = $session->query("SELECT camembert_load('oom', '$dir')");
	like($session->{stderr}, qr/out of memory/, 'the load fails: out of memory');
	my @leaked;
	opendir(my $fds, "/proc/$pid/fd") or die "/proc/$pid/fd: $!";
	for my $fd (readdir $fds)
	{
		my $target = readlink("/proc/$pid/fd/$fd");
		push @leaked, "$fd -> $target" if defined $target && index($target, $dir) == 0;
	}
	closedir($fds);
	is_deeply(\@leaked, [], 'no descriptor of the model directory is left open in the backend');
	$session->quit;
}

# --- camembert.model_dir: files linking out of it are refused ---------------------
my $models = "$tmp/models";
my $outside = "$tmp/outside";
copy_files("$golden/mlm", $outside, qw(config.json model.safetensors sentencepiece.bpe.model));
my @files = qw(config.json model.safetensors sentencepiece.bpe.model);
copy_files("$golden/mlm", "$models/plain", @files);
for my $name (@files)
{
	my $dir = "$models/out_" . ($name =~ s/\W/_/gr);
	copy_files("$golden/mlm", $dir, grep { $_ ne $name } @files);
	symlink("$outside/$name", "$dir/$name") or die "symlink: $!";
}
# a Hugging Face cache: snapshot files are relative links into ../../blobs
my $hub = "$models/hub/models--camembert--mlm";
make_path("$hub/blobs", "$hub/snapshots/0123abcd");
for my $i (0 .. $#files)
{
	copy("$golden/mlm/$files[$i]", "$hub/blobs/blob$i") or die "copy: $!";
	symlink("../../blobs/blob$i", "$hub/snapshots/0123abcd/$files[$i]") or die "symlink: $!";
}

$node->safe_psql('postgres', "ALTER SYSTEM SET camembert.model_dir = '$models'; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('camembert.model_dir') = '$models'")
  or die 'camembert.model_dir was not reloaded';

($out, $err) = run_sql("SELECT camembert_load('plain', 'plain'); SELECT camembert_unload('plain');");
is($err, '', 'a plain model directory inside camembert.model_dir loads');
($out, $err) = run_sql("SELECT camembert_load('outdir', '$outside')");
like($err, qr/ERROR:\s+42501: model path "\Q$outside\E" is outside camembert.model_dir/,
	'a directory outside it is refused (as before)');
for my $name (@files)
{
	my $sub = 'out_' . ($name =~ s/\W/_/gr);
	($out, $err) = run_sql("SELECT camembert_load('$sub', '$sub')");
	like($err, qr/ERROR:\s+42501: \Q$models\/$sub\/$name\E: the file lies outside \Q$models\E/,
		"$name linking out of camembert.model_dir: 42501 naming the file");
	like($err, qr/HINT:\s+camembert.model_dir is/, "$name: with a hint");
}
($out, $err) = run_sql(qq{
SELECT camembert_load('hub', 'hub/models--camembert--mlm/snapshots/0123abcd');
SELECT count(*) FROM camembert_fill_mask('Le <mask> dort.', 'hub');
SELECT camembert_unload('hub');
});
is($err, '', 'a Hugging Face cache snapshot (links into ../../blobs, inside the root) loads');
like($out, qr/^\n\d+\nt$/, 'and works');

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no backend crashed');
$node->stop('fast');
done_testing();
