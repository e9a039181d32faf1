-- generate() beyond greedy search, against transformers' generate()
-- (models/clm/expected/generate_extras.json): beam search with
-- length_penalty / early_stopping, num_return_sequences with scores,
-- repetition_penalty, no_repeat_ngram_size and a combination; 5 prompts,
-- max_new_tokens 20.  Bad values: 22023 with the bound.
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_load('clm', :'golden' || 'clm');
\set ECHO none
\i build/regress/extras.sql
\set ECHO all

-- camembert_generate: the best sequence of every configuration
SELECT config, count(*) AS prompts,
       count(*) FILTER (WHERE camembert_generate(prompt, 'clm', 20, 0, 0, 1, NULL, num_beams, length_penalty,
                                                 early_stopping, repetition_penalty, no_repeat_ngram_size)
                              = decoded_new) AS equal
  FROM golden_generate_extras WHERE rank = 1 GROUP BY config ORDER BY config;

-- named parameters, as in transformers
SELECT camembert_generate('Il était une fois', 'clm', num_beams => 4) =
       (SELECT decoded_new FROM golden_generate_extras
         WHERE config = 'beam4' AND rank = 1 AND prompt = 'Il était une fois') AS beam4_named;

-- camembert_generate_sequences: every returned sequence, in order, with its
-- score (|d| <= 1e-4)
SELECT g.config, count(*) AS sequences,
       count(*) FILTER (WHERE s.sequence = g.decoded_new) AS equal,
       max(abs(s.score - g.score)) < 1e-4 AS scores_equal
  FROM golden_generate_extras g
  JOIN LATERAL camembert_generate_sequences(g.prompt, 'clm', 20, g.num_beams, g.num_return_sequences,
                                            g.length_penalty, g.early_stopping, g.repetition_penalty,
                                            g.no_repeat_ngram_size) s ON s.rank = g.rank
 WHERE g.num_beams > 1
 GROUP BY g.config ORDER BY g.config;
SELECT rank, sequence, round(score::numeric, 4) AS score
  FROM camembert_generate_sequences('Paris', 'clm', 8, 3);

-- 0.3 calls mean the same; a beam of one is greedy search
SELECT camembert_generate('Le chat', 'clm', 10) = camembert_generate('Le chat', 'clm', 10, 0, 0, 1, NULL, 1)
       AS same_as_0_3,
       (SELECT sequence FROM camembert_generate_sequences('Le chat', 'clm', 10, 1)) =
       camembert_generate('Le chat', 'clm', 10) AS one_beam_is_greedy;
-- the processors apply to sampling too (reproducible with a seed)
SELECT camembert_generate('Le chat', 'clm', 10, 0.8, 0, 1, 7, repetition_penalty => 1.3) =
       camembert_generate('Le chat', 'clm', 10, 0.8, 0, 1, 7, repetition_penalty => 1.3) AS same_seed;
-- max_new_tokens 0: nothing
SELECT camembert_generate('Le chat', 'clm', 0, num_beams => 4) AS empty,
       (SELECT count(*) FROM camembert_generate_sequences('Le chat', 'clm', 0)) AS no_sequence;

-- bad values: 22023 with the bound
\set VERBOSITY sqlstate
SELECT camembert_generate('Le chat', 'clm', num_beams => 0);
SELECT camembert_generate('Le chat', 'clm', num_beams => 65);
SELECT camembert_generate('Le chat', 'clm', temperature => 0.7, num_beams => 2);
SELECT camembert_generate('Le chat', 'clm', length_penalty => 'NaN');
SELECT camembert_generate('Le chat', 'clm', repetition_penalty => 0);
SELECT camembert_generate('Le chat', 'clm', repetition_penalty => 'Infinity');
SELECT camembert_generate('Le chat', 'clm', no_repeat_ngram_size => -1);
SELECT * FROM camembert_generate_sequences('Le chat', 'clm', num_beams => 2, num_return_sequences => 3);
SELECT * FROM camembert_generate_sequences('Le chat', 'clm', num_return_sequences => 0);
SELECT * FROM camembert_generate_sequences('Le chat', 'clm', max_new_tokens => -1);
\set VERBOSITY default
SELECT camembert_generate('Le chat', 'clm', num_beams => 65);
SELECT * FROM camembert_generate_sequences('Le chat', 'clm', num_beams => 2, num_return_sequences => 3);
SELECT camembert_generate('Le chat', 'clm', temperature => 0.7, num_beams => 2);
SELECT camembert_generate('Le chat', 'clm', repetition_penalty => -1);
-- not a causal LM
SELECT camembert_load('mlm', :'golden' || 'mlm');
SELECT * FROM camembert_generate_sequences('Le chat', 'mlm');
