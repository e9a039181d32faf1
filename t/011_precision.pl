# camembert_load(name, path, dtype => ...): the precision of a model's weights.
#  - recorded in camembert_registered_models and shown by camembert_models() /
#    camembert_loaded_models() (precision; dtype stays the files' dtype);
#  - a reload after a restart, by the first call or by the preload worker, loads the
#    model with the recorded dtype;
#  - the same name with another dtype is 42710, an unknown dtype 22023;
#  - a model of version 0.2, not yet updated, loads as before (auto), and the update
#    records auto for it.
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
-d "$golden/cls3" or BAIL_OUT("golden models not found under $golden");

my $node = PostgreSQL::Test::Cluster->new('precision');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
# the first call reloads a registered model (the preload worker is tested at the end)
camembert.preload = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION camembert');

# SQLSTATE and message of a statement's error ('' if none)
sub error_of
{
	my ($db, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	return '' if $ret == 0;
	return $err =~ /ERROR:\s+(\w{5}): ([^\n]*)/ ? "$1: $2" : $err;
}

my $models = q{SELECT string_agg(concat_ws('|', name, coalesce(dtype, '-'), precision, loaded), ' ' ORDER BY name) FROM camembert_models()};
my $text = 'Le camembert est un fromage de Normandie.';

# --- each dtype loads, is recorded and shown -------------------------------------
$node->safe_psql('postgres', qq{
	SELECT camembert_load('auto', '$golden/cls3');
	SELECT camembert_load('f32', '$golden/cls3', dtype => 'float32');
	SELECT camembert_load('b16', '$golden/cls3', dtype => 'bfloat16');
	SELECT camembert_load('q8', '$golden/cls3', 'int8');
	SELECT camembert_load('bf16file', '$golden/mlm_bf16_sharded');
});
is($node->safe_psql('postgres', $models),
	'auto|float32|auto|t b16|float32|bfloat16|t bf16file|bfloat16|auto|t f32|float32|float32|t q8|float32|int8|t',
	'camembert_models(): the files\' dtype and the precision asked');
is($node->safe_psql('postgres',
		q{SELECT string_agg(name || '|' || precision, ' ' ORDER BY name) FROM camembert_loaded_models()}),
	'auto|auto b16|bfloat16 bf16file|auto f32|float32 q8|int8',
	'camembert_loaded_models() too');
is($node->safe_psql('postgres',
		q{SELECT string_agg(name || '|' || dtype, ' ' ORDER BY name) FROM camembert_registered_models}),
	'auto|auto b16|bfloat16 bf16file|auto f32|float32 q8|int8',
	'camembert_registered_models records each dtype');
# the shared memory each takes (bytes: the whole segment, tokenizer image included)
my %bytes = split /[|\n]/, $node->safe_psql('postgres', 'SELECT name, bytes FROM camembert_loaded_models()');
cmp_ok($bytes{q8}, '<', $bytes{b16}, "int8 takes less shared memory than bfloat16 ($bytes{q8} < $bytes{b16} bytes)");
cmp_ok($bytes{b16}, '<', $bytes{f32}, "bfloat16 less than float32 ($bytes{b16} < $bytes{f32} bytes)");
is($bytes{auto}, $bytes{f32}, 'auto on a float32 file takes what float32 takes');
$node->safe_psql('postgres', "SELECT camembert_load('bf16file_f32', '$golden/mlm_bf16_sharded', dtype => 'float32')");
%bytes = (%bytes, split /[|\n]/, $node->safe_psql('postgres', 'SELECT name, bytes FROM camembert_loaded_models()'));
cmp_ok($bytes{bf16file}, '<', $bytes{bf16file_f32},
	"auto keeps a bfloat16 file's matrices as stored: less than float32 ($bytes{bf16file} < $bytes{bf16file_f32} bytes)");
$node->safe_psql('postgres', "SELECT camembert_unload('bf16file_f32')");

for my $m (qw(auto f32 b16 q8))
{
	like($node->safe_psql('postgres', "SELECT camembert_classify('$text', '$m')"),
		qr/^(negatif|neutre|positif)$/, "the $m model classifies");
}
like(slurp_file($node->logfile),
	qr{LOG:  camembert: loaded model "q8" from "\Q$golden\E/cls3" \(CamembertForSequenceClassification, float32 weights, dtype int8, \d+ bytes of shared memory\)},
	'the load is logged with its dtype');

# --- errors -------------------------------------------------------------------------
is(error_of('postgres', "SELECT camembert_load('q8', '$golden/cls3', dtype => 'float32')"),
	'42710: model "q8" is already loaded with dtype "int8", not "float32"',
	'the same name with another dtype: 42710');
is(error_of('postgres', "SELECT camembert_load('q8', '$golden/cls3')"),
	'42710: model "q8" is already loaded with dtype "int8", not "auto"',
	'the same name without a dtype (auto) is another dtype too');
is(error_of('postgres', "SELECT camembert_load('q8', '$golden/cls3', dtype => 'int8')"), '',
	'the same name, path and dtype: nothing to do');
is(error_of('postgres', "SELECT camembert_load('x', '$golden/cls3', dtype => 'int4')"),
	'22023: invalid dtype "int4"', 'an unknown dtype: 22023');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT camembert_load('x', '$golden/cls3', dtype => 'int4')");
like($err, qr/HINT:  The dtype is one of auto, float32, bfloat16, int8/, 'its hint lists the dtypes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM camembert_registered_models WHERE name = 'x'}), '0',
	'nothing is registered by a failed load');

# --- after a restart the first call reloads with the recorded dtype -----------------
my $offset = -s $node->logfile;
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM camembert_loaded_models()'), '0',
	'nothing is loaded after the restart (camembert.preload = off)');
is($node->safe_psql('postgres', $models),
	'auto|-|auto|f b16|-|bfloat16|f bf16file|-|auto|f f32|-|float32|f q8|-|int8|f',
	'camembert_models() shows the registered dtypes before the reload');
like($node->safe_psql('postgres', "SELECT camembert_classify('$text', 'q8')"),
	qr/^(negatif|neutre|positif)$/, 'the first call reloads the int8 model');
is($node->safe_psql('postgres', q{SELECT concat_ws('|', dtype, precision, loaded) FROM camembert_models() WHERE name = 'q8'}),
	'float32|int8|t', 'reloaded with the recorded dtype');
is($node->safe_psql('postgres', q{SELECT bytes FROM camembert_models() WHERE name = 'q8'}), $bytes{q8},
	'in the int8 image: as many bytes as before the restart');
like(substr(slurp_file($node->logfile), $offset),
	qr{camembert: loaded model "q8" from "\Q$golden\E/cls3" \(CamembertForSequenceClassification, float32 weights, dtype int8, },
	'the reload is logged with the recorded dtype');
like($node->safe_psql('postgres', "SELECT camembert_classify('$text', 'b16')"),
	qr/^(negatif|neutre|positif)$/, 'the bfloat16 model too');
is($node->safe_psql('postgres', q{SELECT precision FROM camembert_loaded_models() WHERE name = 'b16'}),
	'bfloat16', 'with its dtype');
is(error_of('postgres', "SELECT camembert_load('q8', '$golden/cls3', dtype => 'bfloat16')"),
	'42710: model "q8" is already loaded with dtype "int8", not "bfloat16"',
	'the reloaded model keeps its dtype against another one');

# a registration's dtype that is not one (only the table's owner can write it)
$node->safe_psql('postgres', q{UPDATE camembert_registered_models SET dtype = 'float16' WHERE name = 'f32'});
is(error_of('postgres', "SELECT camembert_classify('x', 'f32')"),
	'22023: model "f32" is registered with an invalid dtype "float16"',
	'an invalid recorded dtype is a clear error when the model reloads');
$node->safe_psql('postgres', "SELECT camembert_load('f32', '$golden/cls3', dtype => 'float32')");
is($node->safe_psql('postgres', q{SELECT dtype FROM camembert_registered_models WHERE name = 'f32'}),
	'float32', 'loading it again repairs the registration');

# not loaded (after a restart), a registered name loaded with another dtype: the
# registration is replaced, as it is with another path
$node->restart;
$node->safe_psql('postgres', "SELECT camembert_load('q8', '$golden/cls3', dtype => 'bfloat16')");
is($node->safe_psql('postgres', q{SELECT r.dtype || '|' || m.precision
	FROM camembert_registered_models r JOIN camembert_models() m USING (name) WHERE name = 'q8'}),
	'bfloat16|bfloat16', 'a registered model not loaded yet is loaded and registered with the new dtype');
# (an unload frees the model at commit: the load in a transaction of its own)
$node->safe_psql('postgres', "SELECT camembert_unload('q8')");
$node->safe_psql('postgres', "SELECT camembert_load('q8', '$golden/cls3', dtype => 'int8')");

# --- the preload worker loads with the recorded dtype ------------------------------
$node->append_conf('postgresql.conf', "camembert.preload = on\n");
$offset = -s $node->logfile;
$node->restart;
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM camembert_loaded_models()', '5'),
	'the preload worker loads the five registered models');
is($node->safe_psql('postgres',
		q{SELECT string_agg(name || '|' || precision, ' ' ORDER BY name) FROM camembert_loaded_models()}),
	'auto|auto b16|bfloat16 bf16file|auto f32|float32 q8|int8', 'each with its recorded dtype');
is($node->safe_psql('postgres', q{SELECT bytes FROM camembert_loaded_models() WHERE name = 'q8'}), $bytes{q8},
	'the int8 model preloaded in its int8 image');
like(substr(slurp_file($node->logfile), $offset),
	qr{camembert: loaded model "q8" from "\Q$golden\E/cls3" \(CamembertForSequenceClassification, float32 weights, dtype int8, },
	'the preload is logged with the dtype');

# --- a database still at version 0.2 with this library, then updated ---------------
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', "CREATE EXTENSION camembert VERSION '0.2'");
$node->safe_psql('old', "SELECT camembert_load('old', '$golden/cls3')");
is($node->safe_psql('postgres', q{SELECT precision FROM camembert_loaded_models() WHERE name = 'old'}), 'auto',
	'camembert_load(name, path) of 0.2 loads as auto');
is(error_of('old', "SELECT camembert_load('old', '$golden/cls3', 'int8')"),
	'42883: function camembert_load(unknown, unknown, unknown) does not exist', '0.2 has no dtype parameter');
$node->safe_psql('old', 'ALTER EXTENSION camembert UPDATE');
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'camembert'}), '0.4', 'updated to 0.4');
is($node->safe_psql('old', q{SELECT name || '|' || dtype FROM camembert_registered_models}), 'old|auto',
	'the registration of 0.2 gets auto');
is($node->safe_psql('old', q{SELECT concat_ws('|', dtype, precision, loaded) FROM camembert_models() WHERE name = 'old'}),
	'float32|auto|t', 'camembert_models() after the update');
is(error_of('old', "SELECT camembert_load('old', '$golden/cls3', 'int8')"),
	'42710: model "old" is already loaded with dtype "auto", not "int8"', 'and the dtype parameter after it');

$node->stop;
done_testing();
