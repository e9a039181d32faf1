-- demo.sql: the example queries of the README's main command (scripts/demo.sh).
-- The bundled models (models/README.md) are tiny CamemBERT-architecture models (3.4 M
-- parameters) trained here on text from Debian packages (manuals, programs' messages, the
-- Debian Administrator's Handbook, the game Battle for Wesnoth's dialogue): for demonstration
-- only.  For real work load a real CamemBERT, e.g.
-- SELECT camembert_load('base', '/srv/models/camembert-base') (README, "Using a real
-- Hugging Face model").
\set ECHO queries
\pset footer off
\echo 'The bundled models are tiny (3.4 M parameters), trained here on Debian text, for demonstration only; for real work load a real CamemBERT: SELECT camembert_load(''base'', ''/path/to/camembert-base'');'
CREATE EXTENSION IF NOT EXISTS camembert;

-- load once per server (idempotent: the same name from the same path is a no-op), from where
-- make install put the bundled models: :models = $(pg_config --sharedir)/camembert/models
SELECT camembert_load('fr-mlm', :'models' || '/fr-mlm');
SELECT camembert_load('langid', :'models' || '/langid');
SELECT camembert_load('fr-clm', :'models' || '/fr-clm');
SELECT name, architecture, task, labels, parameters, pg_size_pretty(bytes) AS shared_memory, dtype
  FROM camembert_models();

-- what a newcomer tries first: everyday sentences, the language of each
SELECT body, camembert_classify(body, 'langid') AS lang
  FROM (VALUES ('Bonjour, comment allez-vous ?'), ('Je voudrais un café, s''il vous plaît.'),
               ('Guten Morgen, wie geht es Ihnen?'), ('Hola, ¿cómo estás?'),
               ('Good morning, how are you?')) AS t(body);

-- fill-mask on everyday French: the rows of pipeline('fill-mask')
SELECT token_str, round(score::numeric, 3) AS score
  FROM camembert_fill_mask('Bonjour, comment allez-<mask> ?', 'fr-mlm');

-- a short generation: greedy search (what transformers' generate gives), then seeded sampling
SELECT 'Bonjour' || camembert_generate('Bonjour', 'fr-clm', max_new_tokens => 12) AS greedy;
SELECT 'Bonjour' || camembert_generate('Bonjour', 'fr-clm', 16, temperature => 0.8, top_k => 40,
                                       seed => 1) AS sampled;

-- the tokenizer: CamemBERT's SentencePiece BPE, exact to the id
SELECT camembert_tokens('La commande ls affiche le contenu du répertoire.', 'fr-mlm');

-- masked LM on a question of a program
SELECT token_str, round(score::numeric, 3) AS score
  FROM camembert_fill_mask('Voulez-vous vraiment <mask> ce fichier ?', 'fr-mlm');

-- classification (language identification), row by row and as a labelling trigger
CREATE TEMP TABLE messages (id serial, body text, lang text, score float8);
CREATE TRIGGER label_lang BEFORE INSERT OR UPDATE ON messages FOR EACH ROW
	EXECUTE FUNCTION camembert_label_trigger('body', 'lang', 'langid', 'score');
INSERT INTO messages (body) VALUES ('Le fichier n''existe pas.'), ('Die Datei existiert nicht.'),
	('El archivo no existe.'), ('The file does not exist.');
SELECT id, body, lang, round(score::numeric, 3) AS score FROM messages;
SELECT label, round(score::numeric, 3) AS score
  FROM camembert_classify_scores('Affiche la liste des fichiers du répertoire courant.', 'langid');

-- causal LM on technical French, with penalties against repetition
SELECT 'La commande ls' || camembert_generate('La commande ls', 'fr-clm', 12,
                                              repetition_penalty => 1.3, no_repeat_ngram_size => 2)
       AS continued;

-- which sentence does the masked LM find odd?
SELECT body, round(camembert_score(body, 'fr-mlm')::numeric, 1) AS pseudo_log_likelihood
  FROM (VALUES ('Le fichier de configuration se trouve dans le répertoire /etc.'),
               ('répertoire le fichier dans /etc. se configuration trouve de Le')) AS t(body)
 ORDER BY 2 DESC;
