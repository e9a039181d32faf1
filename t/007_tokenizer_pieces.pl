# A sentencepiece.bpe.model whose pieces are not text (invalid UTF-8, NUL)
# is refused by camembert_load with an error that names the piece: such
# pieces would come out of camembert_decode / camembert_tokens as invalid
# text.  The models are made here from the golden mlm model, one byte or
# two changed in place (same length: the protobuf stays well formed).
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Copy qw(copy);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden mlm model, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $mlm = "$root/build/golden/models/mlm";

# protobuf varint at $pos of $bytes: (value, next position)
sub varint
{
	my ($bytes, $pos) = @_;
	my ($v, $shift) = (0, 0);
	while (1)
	{
		my $b = ord(substr($bytes, $pos++, 1));
		$v |= ($b & 0x7F) << $shift;
		$shift += 7;
		return ($v, $pos) unless $b & 0x80;
	}
}

# The pieces of a ModelProto: [index, offset of the piece's bytes, its bytes].
# Top level: field 1 (tag 0x0A) is a SentencePiece, whose field 1 (0x0A) is the piece.
sub pieces
{
	my ($bytes) = @_;
	my @out;
	my $pos = 0;
	while ($pos < length($bytes))
	{
		my ($tag, $p) = varint($bytes, $pos);
		my $wt = $tag & 7;
		die "unexpected wire type $wt" unless $wt == 0 || $wt == 2 || $wt == 5;
		if ($wt == 0) { (undef, $pos) = varint($bytes, $p); next; }
		if ($wt == 5) { $pos = $p + 4; next; }
		my ($len, $start) = varint($bytes, $p);
		if ($tag == 0x0A && ord(substr($bytes, $start, 1)) == 0x0A)
		{
			my ($plen, $pstart) = varint($bytes, $start + 1);
			push @out, [ scalar(@out), $pstart, substr($bytes, $pstart, $plen) ];
		}
		$pos = $start + $len;
	}
	return @out;
}

my $original = slurp_file("$mlm/sentencepiece.bpe.model");
my @pieces = pieces($original);
cmp_ok(scalar(@pieces), '>', 1000, 'the golden model\'s pieces are found');

# a model directory: mlm's files, with this sentencepiece.bpe.model
my $tmp = PostgreSQL::Test::Utils::tempdir;
sub model_dir
{
	my ($name, $sp) = @_;
	my $dir = "$tmp/$name";
	mkdir $dir or die "mkdir $dir: $!";
	copy("$mlm/$_", "$dir/$_") or die "copy $_: $!" for qw(config.json model.safetensors);
	open(my $fh, '>:raw', "$dir/sentencepiece.bpe.model") or die $!;
	print $fh $sp;
	close($fh);
	return $dir;
}

# the first piece after the special ones that is "▁" + ASCII, and the first all-ASCII one
my ($spaced) = grep { $_->[0] > 8 && $_->[2] =~ /^\xE2\x96\x81[a-z]+$/ } @pieces;
my ($ascii) = grep { $_->[0] > 8 && $_->[2] =~ /^[a-z]{2,}$/ } @pieces;
my %bad;
{
	# "▁" (E2 96 81) made an overlong 2-byte form of NUL: C0 80
	my $sp = $original;
	substr($sp, $spaced->[1], 2) = "\xC0\x80";
	$bad{overlong} = [ model_dir('overlong', $sp), $spaced->[0], qr/is not valid UTF-8 \(byte 0xC0 at byte 0 of \d+\)/ ];
	# an encoded surrogate: ED A0 80
	$sp = $original;
	substr($sp, $spaced->[1], 3) = "\xED\xA0\x80";
	$bad{surrogate} = [ model_dir('surrogate', $sp), $spaced->[0], qr/is not valid UTF-8 \(byte 0xED at byte 0/ ];
	# a NUL byte inside an ASCII piece
	$sp = $original;
	substr($sp, $ascii->[1] + 1, 1) = "\x00";
	$bad{nul} = [ model_dir('nul', $sp), $ascii->[0], qr/contains a NUL byte \(at byte 1 of \d+\)/ ];
	# a truncated sequence: the piece ends with E2 96
	$sp = $original;
	substr($sp, $ascii->[1] + length($ascii->[2]) - 2, 2) = "\xE2\x96";
	$bad{truncated} = [ model_dir('truncated', $sp), $ascii->[0], qr/is not valid UTF-8 \(byte 0xE2 at byte \d+ of \d+\)/ ];
}
my $good = model_dir('good', $original);

my $node = PostgreSQL::Test::Cluster->new('tokenizer_pieces');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'camembert'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION camembert');

for my $name (sort keys %bad)
{
	my ($dir, $index, $message) = @{ $bad{$name} };
	my ($rc, $stdout, $stderr) = $node->psql('postgres',
		"SELECT camembert_load('$name', '$dir')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($rc, 0, "$name: camembert_load fails");
	like($stderr, qr/ERROR:  XX001: .*sentencepiece\.bpe\.model: sentencepiece model: piece $index $message/,
		"$name: XX001 names the file and piece $index") or diag($stderr);
	is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = '$name'"),
		'0', "$name: nothing is loaded");
}

# the same files with the original model load, and the pieces come back as text
$node->safe_psql('postgres', "SELECT camembert_load('good', '$good')");
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM generate_series(0, 8004) id
	 WHERE camembert_decode(ARRAY[id], 'good') IS NULL}), '0', 'the unchanged model loads and decodes');
is($node->safe_psql('postgres', "SELECT camembert_decode(ARRAY[$spaced->[0] + 4], 'good')"),
	substr($spaced->[2], 3), 'the piece that was damaged above decodes as itself');

$node->stop;
done_testing();
