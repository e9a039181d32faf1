-- Bad input: each gets a clear ERROR with an SQLSTATE and a hint, or a valid answer.
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_load('cls', :'golden' || 'cls3');
SELECT camembert_load('mlm', :'golden' || 'mlm');

-- 1 MB of text: tokenized whole, truncated to the model's 128 tokens for inference
SELECT camembert_token_count(repeat('Le chat dort. ', 75000), 'cls') AS tokens,
       octet_length(repeat('Le chat dort. ', 75000)) AS bytes;
SELECT camembert_classify(repeat('Le chat dort. ', 75000), 'cls') = camembert_classify(
         (SELECT string_agg(x, '') FROM (SELECT 'Le chat dort. ' AS x FROM generate_series(1, 60)) s), 'cls') AS truncated_like_its_start;
SELECT array_dims(camembert_hidden_states(repeat('Le chat dort. ', 75000), 'mlm')) AS truncated_to_128;

-- unknown model, empty or too long names
SELECT regress_error($$SELECT camembert_classify('x', 'nope')$$);
SELECT regress_error($$SELECT camembert_classify('x', repeat('n', 64))$$);
-- invalid paths
SELECT regress_error($$SELECT camembert_load('x', 'relative/path')$$);
SELECT regress_error($$SELECT camembert_load('x', '')$$);
SELECT regress_error($$SELECT camembert_load('x', '/nonexistent/model')$$);
SELECT regress_error($$SELECT camembert_load('', '/tmp')$$);
-- a directory that is not a model (no sentencepiece.bpe.model, no weights)
SELECT replace(regress_error(format('SELECT camembert_load(%L, %L)', 'x', :'abs_srcdir' || '/sql')), :'abs_srcdir', '$SRCDIR');
-- the same name from another path
SELECT replace(regress_error(format('SELECT camembert_load(%L, %L)', 'cls', :'golden' || 'reg1')), :'abs_srcdir', '$SRCDIR');
-- the same name with another dtype (cls was loaded with the default, auto)
SELECT regress_error(format('SELECT camembert_load(%L, %L, dtype => %L)', 'cls', :'golden' || 'cls3', 'int8'));
SELECT regress_error(format('SELECT camembert_load(%L, %L, %L)', 'cls', :'golden' || 'cls3', 'float32'));
-- a dtype that does not exist (names are exact, lower case), before any file is read
SELECT regress_error($$SELECT camembert_load('x', '/nonexistent/model', dtype => 'float16')$$);
SELECT regress_error($$SELECT camembert_load('x', '/nonexistent/model', dtype => 'INT8')$$);
SELECT regress_error($$SELECT camembert_load('x', '/nonexistent/model', dtype => '')$$);
-- loading the same name from the same path again is a no-op, with the same dtype said or not
SELECT camembert_load('cls', :'golden' || 'cls3');
SELECT camembert_load('cls', :'golden' || 'cls3', dtype => 'auto');
SELECT name, dtype, precision, loaded FROM camembert_models() WHERE name = 'cls';
SELECT name, dtype FROM camembert_registered_models WHERE name = 'cls';
-- unloading what is not there
SELECT camembert_unload('never_loaded');

-- top_k: 0 and negative are errors, huge is the whole vocabulary
SELECT regress_error($$SELECT * FROM camembert_fill_mask('Le <mask>.', 'mlm', 0)$$);
SELECT count(*) FROM camembert_fill_mask('Le <mask>.', 'mlm', 2147483647);
-- NULL and empty inputs
SELECT camembert_classify(NULL, 'cls') IS NULL AS null_in, camembert_classify('', 'cls') IS NOT NULL AS empty_ok,
       camembert_tokenize('', 'cls') AS empty_ids;
SELECT regress_error($$SELECT * FROM camembert_fill_mask('', 'mlm')$$);

SELECT camembert_unload('cls'), camembert_unload('mlm');
