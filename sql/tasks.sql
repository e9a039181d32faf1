-- Tasks: fill_mask, classify, generate, embed, score, the labelling trigger,
-- against the reference pipelines (transformers' fill-mask, text-classification,
-- generate) on the golden models.
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_load(m, :'golden' || m)
  FROM unnest(ARRAY['mlm', 'cls3', 'reg1', 'multilabel', 'clm', 'mlm_fp16', 'mlm_bf16_sharded']) AS m;
\set ECHO none
\i build/regress/models.sql
\set ECHO all

-- fill-mask: every row of pipeline('fill-mask', top_k=5) for 10 texts (one has two
-- masks), for the f32, f16 and bf16 models: same token, token_str and sequence at
-- the same rank, score within 1e-6
SELECT g.model, count(*) AS rows,
       count(*) FILTER (WHERE r.token = g.token AND r.token_str = g.token_str AND r.sequence = g.sequence
                          AND abs(r.score - g.score) < 1e-6) AS equal
  FROM golden_fill_mask g
  JOIN LATERAL (SELECT f.*, row_number() OVER (PARTITION BY f.mask_index ORDER BY f.score DESC) AS rank
                  FROM camembert_fill_mask(g.input, g.model) f) r
    ON r.mask_index = g.mask_index AND r.rank = g.rank
 GROUP BY g.model ORDER BY g.model;
-- a mask-by-mask look at one text with two masks
SELECT mask_index, round(score::numeric, 6) AS score, token, token_str, sequence
  FROM camembert_fill_mask('Le <mask> est <mask>.', 'mlm', 2);
-- top_k larger than the vocabulary gives the whole vocabulary
SELECT count(*) FROM camembert_fill_mask('Le <mask> dort.', 'mlm', 100000);
SELECT regress_error($$SELECT * FROM camembert_fill_mask('Le chat dort.', 'mlm')$$);
SELECT regress_error($$SELECT * FROM camembert_fill_mask('Le <mask> dort.', 'mlm', 0)$$);
SELECT regress_error($$SELECT * FROM camembert_fill_mask('Le <mask> dort.', 'mlm', -3)$$);
SELECT regress_error($$SELECT * FROM camembert_fill_mask('Le <mask> dort.', 'cls3')$$);

-- text classification: every label's score as the pipeline applies it (softmax for
-- cls3, sigmoid for multi-label and for the num_labels = 1 regression model)
SELECT g.model, count(*) AS rows,
       count(*) FILTER (WHERE r.label = g.label AND abs(r.score - g.score) < 1e-6) AS equal
  FROM golden_text_classification g
  JOIN LATERAL (SELECT s.*, row_number() OVER (ORDER BY s.score DESC) AS rank
                  FROM camembert_classify_scores(g.input, g.model) s) r ON r.rank = g.rank
 GROUP BY g.model ORDER BY g.model;
-- the top label is the pipeline's first
SELECT g.model, count(*) AS texts, count(*) FILTER (WHERE camembert_classify(g.input, g.model) = g.label) AS equal
  FROM golden_text_classification g WHERE g.rank = 1 GROUP BY g.model ORDER BY g.model;
-- function_to_apply 'none' gives the raw logits (the regression value)
SELECT count(*) AS cases,
       max(abs(s.score - g.logits[1])) < 1e-4 AS raw_logit
  FROM golden_class_logits g JOIN golden_cases c USING (idx)
  CROSS JOIN LATERAL camembert_classify_scores(c.input, 'reg1', 'none') s
 WHERE g.model = 'reg1';
SELECT regress_error($$SELECT * FROM camembert_classify_scores('x', 'cls3', 'tanh')$$);
SELECT regress_error($$SELECT camembert_classify('x', 'mlm')$$);

-- the batch form equals one text at a time (padded batches of up to 16 rows)
SELECT count(*) AS texts,
       bool_and(b.label = camembert_classify(c.input, 'cls3')) AS same_labels,
       max(abs(b.score - (SELECT max(score) FROM camembert_classify_scores(c.input, 'cls3')))) < 1e-5 AS same_scores
  FROM golden_cases c
  JOIN camembert_classify((SELECT array_agg(input ORDER BY idx) FROM golden_cases), 'cls3') b ON b.ord = c.idx + 1;
SELECT ord, label, round(score::numeric, 6) AS score FROM camembert_classify(ARRAY['Bonjour !', NULL, ''], 'cls3');
SELECT count(*) FROM camembert_classify('{}'::text[], 'cls3');

-- generation: greedy continuations equal transformers' generate (prompt = <s> + pieces)
SELECT count(*) AS prompts,
       count(*) FILTER (WHERE camembert_generate(prompt, 'clm', 20) = decoded_new) AS equal
  FROM golden_generate;
SELECT camembert_generate('Il était une fois', 'clm', 5);
-- sampling is reproducible with a seed
SELECT camembert_generate('Le chat', 'clm', 10, 0.9, 50, 0.95, 42) = camembert_generate('Le chat', 'clm', 10, 0.9, 50, 0.95, 42) AS same_seed,
       camembert_generate('Le chat', 'clm', 10, 1.0, 1, 1, 7) = camembert_generate('Le chat', 'clm', 10) AS top_k_1_is_greedy;
-- a temperature so small that logits / T overflows float converges to greedy
-- search (it used to softmax inf - inf): the reference's greedy continuations
SELECT count(*) AS prompts,
       count(*) FILTER (WHERE camembert_generate(prompt, 'clm', 20, 1e-39, 0, 1, 1) = decoded_new) AS t_1e_39,
       count(*) FILTER (WHERE camembert_generate(prompt, 'clm', 20, 1e-45, 50, 0.9, 2) = decoded_new) AS t_1e_45,
       count(*) FILTER (WHERE camembert_generate(prompt, 'clm', 20, 1e-30, 0, 1, 3) = decoded_new) AS t_1e_30
  FROM golden_generate;
SELECT camembert_generate('Le chat', 'clm', 0) AS nothing;
SELECT regress_error($$SELECT camembert_generate('x', 'clm', 100000)$$);
SELECT regress_error($$SELECT camembert_generate('x', 'clm', 5, -1)$$);
SELECT regress_error($$SELECT camembert_generate('x', 'clm', 5, 1, -1)$$);
SELECT regress_error($$SELECT camembert_generate('x', 'clm', 5, 1, 0, 0)$$);
SELECT regress_error($$SELECT camembert_generate('x', 'mlm')$$);

-- score: the causal LM's log-likelihood is minus the reference's shifted cross-entropy
-- (losses.json) times the number of predicted tokens
SELECT count(*) AS cases,
       max(abs(camembert_score(c.input, 'clm') + l.loss * (cardinality(l.input_ids) - 1))) < 1e-3 AS equal
  FROM golden_clm_loss l JOIN golden_cases c ON c.idx = l.idx;
-- the masked LM's pseudo-log-likelihood is a sum of log-probabilities: negative
-- (the golden has no pseudo-log-likelihood to compare with)
SELECT camembert_score('Le chat dort sur le canapé.', 'mlm') < 0 AS negative,
       camembert_score('', 'mlm') AS empty_text;
SELECT regress_error($$SELECT camembert_score('x', 'cls3')$$);

-- embed: mean pooling is the mean of the reference's last hidden state over the tokens
SELECT h.model, count(*) AS cases,
       max(regress_max_abs_diff(camembert_embed(c.input, h.model),
           (SELECT array_agg(v ORDER BY j) FROM (
              SELECT j, avg(h.states[t][j]) AS v
                FROM generate_series(1, array_length(h.states, 1)) t,
                     generate_series(1, array_length(h.states, 2)) j
               GROUP BY j) s))) < 1e-4 AS mean_within_1e4,
       max(regress_max_abs_diff(camembert_embed(c.input, h.model, 'cls'),
           (SELECT array_agg(h.states[1][j] ORDER BY j) FROM generate_series(1, array_length(h.states, 2)) j))) < 1e-4
         AS cls_within_1e4
  FROM golden_hidden h JOIN golden_cases c USING (idx)
 WHERE h.layer = 2 AND h.model IN ('mlm', 'cls3')
 GROUP BY h.model ORDER BY h.model;
SELECT regress_error($$SELECT camembert_embed('x', 'mlm', 'max')$$);

-- NULL in, NULL out; empty text is a valid input
SELECT camembert_classify(NULL, 'cls3') IS NULL AS classify, camembert_generate(NULL, 'clm') IS NULL AS generate,
       camembert_embed(NULL, 'mlm') IS NULL AS embed, camembert_score(NULL, 'clm') IS NULL AS score,
       (SELECT count(*) FROM camembert_fill_mask(NULL, 'mlm')) AS fill_mask_rows,
       (SELECT count(*) FROM camembert_classify_scores(NULL, 'cls3')) AS scores_rows,
       (SELECT count(*) FROM camembert_classify(NULL::text[], 'cls3')) AS batch_rows;
SELECT camembert_classify('', 'cls3') IS NOT NULL AS classify_empty,
       array_length(camembert_embed('', 'mlm'), 1) AS embed_empty;

-- model resolution: NULL means camembert.default_model, else the one model that can
SELECT camembert_generate('Le chat', NULL, 3) = camembert_generate('Le chat', 'clm', 3) AS only_causal_lm;
SELECT regress_error($$SELECT camembert_classify('Bonjour')$$);
SET camembert.default_model = 'multilabel';
SELECT camembert_classify('Bonjour') = camembert_classify('Bonjour', 'multilabel') AS default_model;
SELECT regress_error($$SELECT * FROM camembert_fill_mask('Le <mask>.')$$);
RESET camembert.default_model;

-- the labelling trigger
CREATE TABLE posts (id serial PRIMARY KEY, body text, label text, score float8);
CREATE TRIGGER label_posts BEFORE INSERT OR UPDATE ON posts
	FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'cls3', 'score');
INSERT INTO posts (body) SELECT input FROM golden_cases ORDER BY idx;
INSERT INTO posts (body) VALUES (NULL);
SELECT count(*) AS rows, count(label) AS labelled,
       bool_and(label = camembert_classify(body, 'cls3')) AS labels_right,
       max(abs(score - (SELECT max(s.score) FROM camembert_classify_scores(body, 'cls3') s))) < 1e-6 AS scores_right
  FROM posts;
UPDATE posts SET body = 'Ce film m''a vraiment beaucoup plu.' WHERE id = 1;
SELECT label = camembert_classify('Ce film m''a vraiment beaucoup plu.', 'cls3') AS relabelled FROM posts WHERE id = 1;
UPDATE posts SET label = 'hand-set' WHERE id = 2;
SELECT label FROM posts WHERE id = 2;
CREATE TABLE bad (body int, label text);
CREATE TRIGGER t BEFORE INSERT ON bad FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label');
SELECT regress_error($$INSERT INTO bad VALUES (1, NULL)$$);
DROP TABLE bad;
CREATE TABLE bad (body text, label text);
CREATE TRIGGER t BEFORE INSERT ON bad FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'nope');
SELECT regress_error($$INSERT INTO bad VALUES ('x', NULL)$$);
DROP TABLE bad;
-- the label is stored as the target column's type and typmod make it, as
-- INSERT ... VALUES ('negatif') would: varchar(n) and char(n) lengths, char(n)
-- padding, domains and their constraints (the score column's too)
CREATE DOMAIN label3 AS varchar(3);
CREATE DOMAIN not_negatif AS text CHECK (VALUE <> 'negatif');
CREATE DOMAIN required_label AS text NOT NULL;
CREATE DOMAIN low_score AS float8 CHECK (VALUE < 0.5);
CREATE DOMAIN any_score AS real;
CREATE TABLE typed (id int, body text, v varchar(10), c char(10), l text, s any_score);
CREATE TRIGGER a BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'v', 'cls3');
CREATE TRIGGER b BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'c', 'cls3');
CREATE TRIGGER c BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'l', 'cls3', 's');
INSERT INTO typed (id, body) VALUES (1, 'Bonjour !'), (2, NULL);
SELECT id, v, c, octet_length(c) AS c_bytes, l, round(s::numeric, 4) AS s FROM typed ORDER BY id;
DROP TABLE typed;
CREATE TABLE typed (body text, v varchar(2), c char(2), l3 label3, nn not_negatif, l text, s low_score,
                    r required_label DEFAULT 'unset');
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'v', 'cls3');
SELECT regress_error($$INSERT INTO typed (body) VALUES ('Bonjour !')$$);
SELECT regress_error($$INSERT INTO typed (v) VALUES ('negatif')$$);
DROP TRIGGER t ON typed;
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'c', 'cls3');
SELECT regress_error($$INSERT INTO typed (body) VALUES ('Bonjour !')$$);
SELECT regress_error($$INSERT INTO typed (c) VALUES ('negatif')$$);
DROP TRIGGER t ON typed;
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'l3', 'cls3');
SELECT regress_error($$INSERT INTO typed (body) VALUES ('Bonjour !')$$);
SELECT regress_error($$INSERT INTO typed (l3) VALUES ('negatif')$$);
DROP TRIGGER t ON typed;
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'nn', 'cls3');
SELECT regress_error($$INSERT INTO typed (body) VALUES ('Bonjour !')$$);
DROP TRIGGER t ON typed;
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'r', 'cls3');
SELECT regress_error($$INSERT INTO typed (body) VALUES (NULL)$$);
DROP TRIGGER t ON typed;
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'l', 'cls3', 's');
SELECT regress_error($$INSERT INTO typed (body) VALUES ('Bonjour !')$$);
DROP TABLE typed;
CREATE TABLE typed (body text, label int);
CREATE TRIGGER t BEFORE INSERT ON typed FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'cls3');
SELECT regress_error($$INSERT INTO typed (body) VALUES ('Bonjour !')$$);
DROP TABLE typed;
DROP DOMAIN label3, not_negatif, required_label, low_score, any_score;

-- a parallel plan runs the function in the workers
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
ALTER TABLE posts SET (parallel_workers = 2);
EXPLAIN (COSTS OFF, VERBOSE) SELECT camembert_classify(body, 'cls3') FROM posts;
-- every labelled row but the one labelled by hand
SELECT count(*) FILTER (WHERE camembert_classify(body, 'cls3') = label) AS same_in_parallel FROM posts;
RESET ALL;
DROP TABLE posts;

SELECT bool_and(camembert_unload(name)) FROM camembert_models();
