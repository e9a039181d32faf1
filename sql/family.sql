-- CamemBERT's family: RoBERTa (byte-level BPE, vocab.json + merges.txt) and
-- XLM-RoBERTa (SentencePiece unigram) models through every SQL function, against
-- the reference (transformers' slow tokenizers, pipelines and models).
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/'
SELECT camembert_load(m, :'golden' || f || '/' || m)
  FROM (VALUES ('roberta_cls', 'roberta'), ('roberta_mlm', 'roberta'),
               ('xlmr_cls', 'xlmr'), ('xlmr_mlm', 'xlmr')) AS v(m, f);
SELECT name, architecture, task, labels FROM camembert_models()
 WHERE name IN ('roberta_cls', 'roberta_mlm', 'xlmr_cls', 'xlmr_mlm') ORDER BY name;
\set ECHO none
\i build/regress/family.sql
\set ECHO all

-- the tokenizers: the 314 golden strings of each (ids with <s> ... </s>, pieces, decode, count)
SELECT family, count(*) AS strings,
       count(*) FILTER (WHERE camembert_tokenize(input, m) = input_ids) AS ids,
       count(*) FILTER (WHERE camembert_tokens(input, m) = tokens) AS tokens,
       count(*) FILTER (WHERE camembert_decode(input_ids, m) = decoded) AS decoded,
       count(*) FILTER (WHERE camembert_token_count(input, m) = cardinality(input_ids)) AS counted
  FROM golden_family_tokenization
  JOIN (VALUES ('roberta', 'roberta_mlm'), ('xlmr', 'xlmr_mlm')) AS v(family, m) USING (family)
 GROUP BY family ORDER BY family;
-- a few in the open (tokenization.jsonl line 0)
SELECT camembert_tokens('Bonjour, comment allez-vous ?', 'xlmr_mlm');
SELECT camembert_decode('{0,20686,77,458,15,2916,28658,93,16,31226,5637,2}', 'roberta_mlm');
SELECT regress_error($$SELECT camembert_decode('{50262}', 'roberta_mlm')$$);

-- the models' inputs (truncation to max_position_embeddings - 2)
SELECT model, count(*) AS cases, count(*) FILTER (WHERE camembert_tokenize(input, model) = input_ids) AS equal
  FROM golden_family_cases
 WHERE cardinality(input_ids) < 128
 GROUP BY model ORDER BY model;

-- fill-mask: every row of pipeline('fill-mask', top_k=5), RoBERTa's <mask> included
SELECT g.model, count(*) AS rows,
       count(*) FILTER (WHERE r.token = g.token AND r.token_str = g.token_str AND r.sequence = g.sequence
                          AND abs(r.score - g.score) < 1e-6) AS equal
  FROM golden_family_fill_mask g
  JOIN LATERAL (SELECT f.*, row_number() OVER (PARTITION BY f.mask_index ORDER BY f.score DESC) AS rank
                  FROM camembert_fill_mask(g.input, g.model) f) r
    ON r.mask_index = g.mask_index AND r.rank = g.rank
 GROUP BY g.model ORDER BY g.model;

-- text classification: the seed example's labels (anger, joy, optimism, sadness) and XLM-R's
SELECT g.model, count(*) AS rows,
       count(*) FILTER (WHERE r.label = g.label AND abs(r.score - g.score) < 1e-6) AS equal
  FROM golden_family_classification g
  JOIN LATERAL (SELECT s.*, row_number() OVER (ORDER BY s.score DESC) AS rank
                  FROM camembert_classify_scores(g.input, g.model) s) r ON r.rank = g.rank
 GROUP BY g.model ORDER BY g.model;
SELECT g.model, count(*) AS texts, count(*) FILTER (WHERE camembert_classify(g.input, g.model) = g.label) AS equal
  FROM golden_family_classification g WHERE g.rank = 1 GROUP BY g.model ORDER BY g.model;

-- embed: mean pooling and <s> against the reference's last hidden state
SELECT c.model, count(*) AS cases,
       max(regress_max_abs_diff(camembert_embed(c.input, c.model),
           (SELECT array_agg(v ORDER BY j) FROM (
              SELECT j, avg(c.last_hidden[t][j]) AS v
                FROM generate_series(1, array_length(c.last_hidden, 1)) t,
                     generate_series(1, array_length(c.last_hidden, 2)) j
               GROUP BY j) s))) < 1e-4 AS mean_within_1e4,
       max(regress_max_abs_diff(camembert_embed(c.input, c.model, 'cls'),
           (SELECT array_agg(c.last_hidden[1][j] ORDER BY j)
              FROM generate_series(1, array_length(c.last_hidden, 2)) j))) < 1e-4 AS cls_within_1e4
  FROM golden_family_cases c
 WHERE c.last_hidden IS NOT NULL
 GROUP BY c.model ORDER BY c.model;

-- score: the masked LMs' pseudo-log-likelihood is a sum of log-probabilities
SELECT camembert_score('The capital of France is Paris.', 'roberta_mlm') < 0 AS roberta_negative,
       camembert_score('Le chat dort sur le canapé.', 'xlmr_mlm') < 0 AS xlmr_negative;

-- the labelling trigger with the RoBERTa classifier
CREATE TABLE family_posts (id serial PRIMARY KEY, body text, label text, score float8);
CREATE TRIGGER label_family_posts BEFORE INSERT OR UPDATE ON family_posts
	FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'roberta_cls', 'score');
INSERT INTO family_posts (body) SELECT input FROM golden_family_classification WHERE rank = 1 AND model = 'roberta_cls';
SELECT count(*) AS rows,
       count(*) FILTER (WHERE p.label = g.label AND abs(p.score - g.score) < 1e-6) AS equal
  FROM family_posts p
  JOIN golden_family_classification g ON g.input = p.body AND g.rank = 1 AND g.model = 'roberta_cls';
DROP TABLE family_posts;

SELECT bool_and(camembert_unload(m)) AS unloaded
  FROM unnest(ARRAY['roberta_cls', 'roberta_mlm', 'xlmr_cls', 'xlmr_mlm']) AS m;
