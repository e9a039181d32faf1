# Any server encoding: text is converted to UTF-8 before tokenizing and results
# back, in a LATIN1 database as in a UTF8 one.
use strict;
use warnings;
use Cwd qw(abs_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
my $golden = "$root/test/golden/models";

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

$node->stop;
done_testing();
