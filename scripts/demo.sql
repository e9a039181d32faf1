-- demo.sql: the example queries of the README's main command (scripts/demo.sh).
-- The bundled models are the small CamemBERT models under test/golden/models
-- (random weights, with the outputs Hugging Face transformers gave for them):
-- the answers show the machinery, not language knowledge.
\set ECHO queries
\pset footer off
CREATE EXTENSION IF NOT EXISTS camembert;

-- load once per server (idempotent: the same name from the same path is a no-op)
SELECT camembert_load('mlm', :'models' || '/mlm');
SELECT camembert_load('sentiment', :'models' || '/cls3');
SELECT camembert_load('story', :'models' || '/clm');
SELECT name, architecture, task, labels, parameters, pg_size_pretty(bytes) AS shared_memory, dtype
  FROM camembert_models();

-- the tokenizer: CamemBERT's SentencePiece BPE, exact to the id
SELECT camembert_tokenize('Le camembert est un fromage de Normandie.', 'mlm');
SELECT camembert_tokens('Le camembert est un fromage de Normandie.', 'mlm');

-- masked LM: the rows of pipeline('fill-mask')
SELECT mask_index, token_str, round(score::numeric, 4) AS score, sequence
  FROM camembert_fill_mask('Le camembert est <mask> !', 'mlm', 3);

-- classification, row by row and as a labelling trigger
CREATE TEMP TABLE posts (id serial, body text, label text, score float8);
CREATE TRIGGER label_posts BEFORE INSERT OR UPDATE ON posts FOR EACH ROW
	EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'sentiment', 'score');
INSERT INTO posts (body) VALUES ('Ce film m''a vraiment beaucoup plu.'), ('Le service était correct, sans plus.'),
	('Je n''ai jamais vu un spectacle aussi ennuyeux.');
SELECT id, body, label, round(score::numeric, 3) AS score FROM posts;
SELECT label, round(score::numeric, 3) AS score FROM camembert_classify_scores('Bonjour !', 'sentiment');

-- causal LM: greedy generation, equal to transformers' generate
SELECT camembert_generate('Il était une fois', 'story', max_new_tokens => 10);

-- a sentence vector and a likelihood
SELECT array_length(camembert_embed('Le chat dort.', 'mlm'), 1) AS dimensions,
       round(camembert_score('Le chat dort.', 'story')::numeric, 2) AS log_likelihood;
