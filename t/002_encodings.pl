# Any server encoding: text is converted to UTF-8 before tokenizing and results
# back, in a LATIN1 database as in a UTF8 one.  Class labels (UTF-8 in config.json)
# are converted to the database encoding wherever they leave the extension, or
# are an ERROR (22P05) with an ASCII hint; a labelled table dumps and restores.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Copy qw(copy);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";

# psql talks UTF-8: every expected string below is UTF-8
$ENV{PGCLIENTENCODING} = 'UTF8';

my $node = PostgreSQL::Test::Cluster->new('encodings');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'camembert'\n");
$node->start;
$node->safe_psql('postgres',
	"CREATE DATABASE latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'");
for my $db ('postgres', 'latin1')
{
	$node->safe_psql($db, 'CREATE EXTENSION camembert');
}
$node->safe_psql('postgres', "SELECT camembert_load('mlm', '$golden/mlm')");

# the same accented French text in both databases (psql sends UTF-8; the
# server converts it to the database encoding)
my $text = "Le café déjà prêt à côté de l''hôtel, où est-ce ?";
my $sql = "SELECT camembert_tokenize('$text', 'mlm')";
my $utf8_ids = $node->safe_psql('postgres', $sql);
my $latin1_ids = $node->safe_psql('latin1', "SET client_encoding = 'UTF8'; $sql");
is($latin1_ids, $utf8_ids, 'LATIN1 database: same ids as in UTF8');
like($utf8_ids, qr/^\{5,.*,6\}$/, 'ids with <s> and </s>');

is($node->safe_psql('latin1', "SET client_encoding = 'UTF8'; SELECT camembert_decode(camembert_tokenize('$text', 'mlm'), 'mlm')"),
	$node->safe_psql('postgres', "SELECT camembert_decode(camembert_tokenize('$text', 'mlm'), 'mlm')"),
	'decode gives the same text back in LATIN1');
my ($rc, $stdout, $stderr) = $node->psql('latin1', "SELECT camembert_tokens('café', 'mlm')");
like($stderr, qr/has no equivalent in encoding "LATIN1"/, 'pieces with U+2581 cannot be shown in LATIN1: an ERROR');
like($stderr, qr/HINT:  The result holds characters that the database encoding LATIN1 cannot represent/, 'with a hint');

# a text typed in LATIN1 (client_encoding LATIN1): the same ids as its UTF-8 form
my $latin1_client = $node->safe_psql('latin1',
	"SET client_encoding = 'LATIN1'; SELECT camembert_tokenize(convert_from('\\x636166e9'::bytea, 'LATIN1'), 'mlm')");
is($latin1_client, $node->safe_psql('postgres', "SELECT camembert_tokenize('café', 'mlm')"),
	'LATIN1 bytes for café tokenize like UTF-8 café');

# ---------------------------------------------------------------------------
# Class labels outside ASCII.  Copies of cls3 whose label 0 ("negatif", the top
# label of every text used here) is renamed in config.json.
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub relabelled_cls3
{
	my ($dir, $label0) = @_;

	mkdir $dir or die "mkdir $dir: $!";
	for my $f (glob "$golden/cls3/*")
	{
		copy($f, $dir) or die "copy $f: $!" if -f $f;
	}
	my $config = slurp_file("$dir/config.json");
	$config =~ s/"negatif"/"$label0"/g or die 'no label negatif in cls3';
	open my $fh, '>:raw', "$dir/config.json" or die $!;
	print $fh $config;
	close $fh;
	return $dir;
}

# a query's result, or its error: a failed check does not end the test
sub result_of
{
	my ($db, $sql) = @_;
	my ($rc, $stdout, $stderr) = $node->psql($db, $sql);
	return $rc == 0 ? $stdout : $stderr;
}

# the error a statement gives, with its SQLSTATE (VERBOSITY verbose)
sub error_of
{
	my ($db, $sql) = @_;
	my ($rc, $stdout, $stderr) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	return $stderr;
}

$node->safe_psql('postgres',
	"CREATE DATABASE eucjp TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->safe_psql('eucjp', 'CREATE EXTENSION camembert');

my $fr = relabelled_cls3("$tmp/fr", 'négatif');       # LATIN1 and EUC_JP have é
my $ja = relabelled_cls3("$tmp/ja", '日本');          # EUC_JP only
my $bar = relabelled_cls3("$tmp/bar", '▁x');         # neither (U+2581)
$node->safe_psql('postgres', "SELECT camembert_load('fr', '$fr')");

my $label_hint = qr/HINT:  Model "\w+" has class labels \(config.json id2label\) that the database encoding \w+ cannot represent/;
for my $db ('postgres', 'latin1', 'eucjp')
{
	is(result_of($db, "SELECT camembert_classify('Bonjour !', 'fr')"), 'négatif',
		"$db: camembert_classify gives the label in the database encoding");
	is(result_of($db,
			"SELECT encode(convert_to(camembert_classify('Bonjour !', 'fr'), 'UTF8'), 'hex')"),
		'6ec3a96761746966', "$db: its characters are those of négatif");
	is(result_of($db,
			"SELECT string_agg(label, ',' ORDER BY score DESC) FROM camembert_classify_scores('Bonjour !', 'fr')"),
		'négatif,positif,neutre', "$db: camembert_classify_scores labels");
	is(result_of($db,
			"SELECT string_agg(coalesce(label, '-'), ',' ORDER BY ord) FROM camembert_classify(ARRAY['Bonjour !', NULL], 'fr')"),
		'négatif,-', "$db: camembert_classify(text[]) labels");
	is(result_of($db, "SELECT labels FROM camembert_models() WHERE name = 'fr'"),
		'{négatif,neutre,positif}', "$db: camembert_models() labels");
	is(result_of($db, "SELECT labels FROM camembert_loaded_models() WHERE name = 'fr'"),
		'{négatif,neutre,positif}', "$db: camembert_loaded_models() labels");
	$node->safe_psql($db, q{
		CREATE TABLE posts (id int PRIMARY KEY, body text, label text, score float8);
		CREATE TRIGGER label_posts BEFORE INSERT OR UPDATE ON posts
			FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'fr', 'score');
		INSERT INTO posts (id, body) VALUES (1, 'Bonjour !');
	});
	is(result_of($db, "SELECT label FROM posts"), 'négatif',
		"$db: the trigger stores the label in the database encoding");
}
is(result_of('latin1', "SELECT convert_to(label, 'LATIN1') FROM posts"), '\x6ee96761746966',
	'LATIN1: the stored label is é as one LATIN1 byte');

# labels the database encoding lacks: ERROR 22P05 with a hint, from every function
$node->safe_psql('postgres', "SELECT camembert_load('ja', '$ja'), camembert_load('bar', '$bar')");
for my $case (['latin1', 'ja'], ['eucjp', 'bar'])
{
	my ($db, $model) = @$case;
	for my $sql ("SELECT camembert_classify('Bonjour !', '$model')",
		"SELECT * FROM camembert_classify_scores('Bonjour !', '$model')",
		"SELECT * FROM camembert_classify(ARRAY['Bonjour !'], '$model')",
		"SELECT labels FROM camembert_loaded_models()",
		"SELECT labels FROM camembert_models()",
		"CREATE TEMP TABLE t (body text, label text);
		 CREATE TRIGGER l BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', '$model');
		 INSERT INTO t VALUES ('Bonjour !')")
	{
		my $err = error_of($db, $sql);
		like($err, qr/ERROR:  22P05: character with byte sequence 0x[0-9a-f x]+ in encoding "UTF8" has no equivalent in encoding "(LATIN1|EUC_JP)"/,
			"$db, $model: 22P05 for " . ($sql =~ /(camembert_\w+)/)[0]);
		like($err, $label_hint, "$db, $model: with the hint");
	}
}
# the hints are ASCII: in EUC_JP they stay 22P05 (not 22021 while sending them)
like(error_of('eucjp', "SELECT camembert_tokens('café', 'mlm')"),
	qr/ERROR:  22P05: .*\nHINT:  The result holds characters that the database encoding EUC_JP cannot represent \(SentencePiece pieces start with U\+2581\)/,
	'EUC_JP: pieces with U+2581 give 22P05 and its hint');
$node->safe_psql('postgres', "SELECT camembert_unload('bar')");

# a table labelled in EUC_JP dumps and restores (日本 in EUC_JP bytes)
$node->safe_psql('eucjp', q{
	CREATE TABLE posts_ja (id int PRIMARY KEY, body text, label text);
	CREATE TRIGGER label_posts BEFORE INSERT ON posts_ja
		FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'ja');
	INSERT INTO posts_ja (id, body) VALUES (1, 'Bonjour !'), (2, NULL);
});
is(result_of('eucjp', "SELECT convert_to(label, 'EUC_JP') FROM posts_ja WHERE id = 1"), '\xc6fccbdc',
	'EUC_JP: the stored label is 日本 in EUC_JP');
my $dump = "$tmp/eucjp.sql";
$node->command_ok(['pg_dump', '-E', 'EUC_JP', '-f', $dump, '-d', $node->connstr('eucjp')], 'pg_dump of the EUC_JP database');
$node->safe_psql('postgres',
	"CREATE DATABASE eucjp_restored TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', $node->connstr('eucjp_restored')],
	'the dump restores');
my $rows = "SELECT string_agg(id || ':' || coalesce(label, '-'), ',' ORDER BY id) FROM posts_ja";
is(result_of('eucjp_restored', $rows), '1:日本,2:-', 'the restored table has its labels');
is(result_of('eucjp_restored', "SELECT string_agg(label, ',') FROM posts"), 'négatif', 'and négatif');

# ---------------------------------------------------------------------------
# Paths and names are the bytes the loading database gave (the file system's
# encoding); a database in which they are not valid text gets an ERROR, never
# invalid text.
my $jpath = "$tmp/日本";
relabelled_cls3($jpath, 'negatif');
$node->safe_psql('postgres', "SELECT camembert_load('jpath', '$jpath')");
is(result_of('postgres', "SELECT path FROM camembert_loaded_models() WHERE name = 'jpath'"), $jpath,
	'UTF8: the path as given');
my $err = error_of('eucjp', "SELECT path IS NOT NULL FROM camembert_loaded_models() WHERE name = 'jpath'");
like($err, qr/ERROR:  22021: path of model "jpath" is not valid in encoding "EUC_JP"/,
	'EUC_JP: a path that is not valid EUC_JP is an ERROR');
like($err, qr/HINT:  /, 'with a hint');
# in messages, such a name is shown with \xNN escapes (not as invalid text, 22021)
$node->safe_psql('postgres', "SELECT camembert_load('日本', '$fr')");
like(error_of('eucjp', "SELECT camembert_classify('x')"),
	qr/ERROR:  42P08: \d models can classify text .*\\xe6\\x97\\xa5\\xe6\\x9c\\xac/,
	'EUC_JP: a model name that is not valid EUC_JP is escaped in a message');
$node->safe_psql('postgres', "SELECT camembert_unload('日本')");
$node->safe_psql('postgres', "SELECT camembert_unload('jpath'), camembert_unload('ja'), camembert_unload('fr')");

$node->stop;
done_testing();
