-- Tokenizer: SQL functions against the reference (transformers' CamembertTokenizer).
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models'
\set mlm_dir :golden '/mlm'
SELECT camembert_load('tok', :'mlm_dir');

-- the 304 golden strings (ids, pieces, decode), loaded quietly
\set ECHO none
\i build/regress/tokenization.sql
\set ECHO all
SELECT count(*) AS golden_strings FROM golden_tokenization;

-- every string: ids with <s> ... </s>, exactly
SELECT idx, input FROM golden_tokenization
 WHERE camembert_tokenize(input, 'tok') IS DISTINCT FROM input_ids;
-- pieces (tokenizer.tokenize)
SELECT idx, input FROM golden_tokenization
 WHERE camembert_tokens(input, 'tok') IS DISTINCT FROM tokens;
-- decode (skip_special_tokens, clean_up_tokenization_spaces)
SELECT idx, input FROM golden_tokenization
 WHERE camembert_decode(input_ids, 'tok') IS DISTINCT FROM decoded;
-- count = length of the ids
SELECT idx FROM golden_tokenization
 WHERE camembert_token_count(input, 'tok') <> cardinality(input_ids);

-- a few cases in the open (values from tokenization.jsonl)
SELECT camembert_tokenize('Bonjour, comment allez-vous ?', 'tok');
SELECT camembert_tokens('Le<mask>est', 'tok');
SELECT camembert_tokenize('', 'tok'), camembert_tokens('', 'tok'), camembert_decode('{}', 'tok');
SELECT camembert_decode('{5,6}', 'tok');

-- the model argument may be omitted while one model is loaded
SELECT camembert_tokenize('Le chat dort sur le canapé.') = camembert_tokenize('Le chat dort sur le canapé.', 'tok');

-- NULL in, NULL out
SELECT camembert_tokenize(NULL, 'tok') IS NULL, camembert_tokens(NULL) IS NULL,
       camembert_decode(NULL, 'tok') IS NULL, camembert_token_count(NULL) IS NULL;

-- bad input: clear errors
SELECT regress_error($$SELECT camembert_decode('{5,99999,6}', 'tok')$$);
SELECT regress_error($$SELECT camembert_decode('{5,-1}', 'tok')$$);
SELECT regress_error($$SELECT camembert_decode('{5,NULL}', 'tok')$$);
SELECT regress_error($$SELECT camembert_decode('{{5,6},{5,6}}', 'tok')$$);
SELECT regress_error($$SELECT camembert_tokenize('x', 'no_such_model')$$);
SELECT regress_error($$SELECT camembert_tokenize('x', '')$$);

SELECT camembert_unload('tok');
