-- Statistics: camembert_stat_models counts loads, calls, texts and tokens per
-- (model, user, database); camembert_stat_reset() empties it; other users' rows
-- are visible to superusers and pg_read_all_stats only; camembert.track off
-- counts nothing.  Times are only checked to be positive.
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_stat_reset();
SELECT count(*) AS entries, camembert_stat_dropped() AS dropped FROM camembert_stat_models;

-- names of their own: each load below is a real load into shared memory
SELECT camembert_load('stats_' || m, :'golden' || m) FROM unnest(ARRAY['cls3', 'mlm', 'clm']) AS m;
-- loading a loaded model again loads nothing
SELECT camembert_load('stats_cls3', :'golden' || 'cls3');
SELECT model, loads, calls, texts, tokens, total_time_ms, mean_time_ms, last_used
  FROM camembert_stat_models ORDER BY model;

-- the texts and their tokens (specials included)
SELECT camembert_token_count('Bonjour le monde', 'stats_cls3') AS t1,
       camembert_token_count('a', 'stats_cls3') AS t2,
       camembert_token_count('Le <mask> dort.', 'stats_mlm') AS t3,
       camembert_token_count('Il était', 'stats_clm') AS t4;

SELECT clock_timestamp() AS before_calls \gset
-- classifier: one text, NULL (not a call), an array with a NULL element,
-- the scores, the trigger (NULL source: no call), logits, hidden states
SELECT camembert_classify('Bonjour le monde', 'stats_cls3');
SELECT camembert_classify(NULL, 'stats_cls3');
SELECT ord, label FROM camembert_classify(ARRAY['a', NULL, 'Bonjour le monde'], 'stats_cls3');
SELECT count(*) FROM camembert_classify_scores('a', 'stats_cls3');
CREATE TABLE stats_posts (body text, label text);
CREATE TRIGGER label BEFORE INSERT ON stats_posts
	FOR EACH ROW EXECUTE FUNCTION camembert_label_trigger('body', 'label', 'stats_cls3');
INSERT INTO stats_posts (body) VALUES ('a'), (NULL), ('Bonjour le monde');
SELECT array_length(camembert_logits('a', 'stats_cls3'), 1);
SELECT array_length(camembert_hidden_states('a', 'stats_cls3'), 1);
-- a call that fails is not counted
SELECT camembert_hidden_states('a', 'stats_cls3', 99);
-- the tokenizer functions run no model: not counted
SELECT camembert_tokenize('a', 'stats_cls3');
-- masked LM: fill_mask, embed, score; causal LM: generate (prompt + new tokens)
SELECT count(*) FROM camembert_fill_mask('Le <mask> dort.', 'stats_mlm', 2);
SELECT array_length(camembert_embed('Le <mask> dort.', 'stats_mlm'), 1);
SELECT camembert_score('Le <mask> dort.', 'stats_mlm') < 0 AS negative;
SELECT length(camembert_generate('Il était', 'stats_clm', 3)) >= 0 AS generated;

-- classifier: 1 + 1 (array: 2 texts) + 1 + 2 (trigger) + 1 + 1 = 7 calls,
-- texts 1 + 2 + 1 + 2 + 1 + 1 = 8, tokens 9 + (3 + 9) + 3 + (3 + 9) + 3 + 3 = 42
-- masked LM: 3 calls of 7 tokens; causal LM: 1 call, the prompt (<s> and its
-- 2 pieces, no </s>) + 3 new tokens
SELECT model, userid = current_user::regrole AS mine,
       dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS this_db,
       loads, calls, texts, tokens, total_time_ms > 0 AS time_positive,
       abs(mean_time_ms * calls - total_time_ms) < 1e-6 AS mean_is_total_over_calls,
       last_used BETWEEN :'before_calls' AND clock_timestamp() AS used_now
  FROM camembert_stat_models ORDER BY model;

-- camembert.track off: nothing counted
SET camembert.track = off;
SELECT camembert_classify('a', 'stats_cls3');
RESET camembert.track;
SELECT model, calls FROM camembert_stat_models WHERE model = 'stats_cls3';

-- visibility: a role sees its own rows only, unless a member of pg_read_all_stats
CREATE ROLE regress_stats_reader;
SET ROLE regress_stats_reader;
SELECT camembert_classify('a', 'stats_cls3');
SELECT model, userid = current_user::regrole AS mine, calls, texts, tokens
  FROM camembert_stat_models ORDER BY model;
-- resetting is for superusers (unless granted)
SELECT camembert_stat_reset();
RESET ROLE;
GRANT pg_read_all_stats TO regress_stats_reader;
SET ROLE regress_stats_reader;
SELECT model, userid = current_user::regrole AS mine, calls
  FROM camembert_stat_models ORDER BY model, mine;
RESET ROLE;

-- reset empties the view
SELECT camembert_stat_reset();
SELECT count(*) AS entries FROM camembert_stat_models;

DROP TABLE stats_posts;
DROP ROLE regress_stats_reader;
SELECT camembert_unload('stats_' || m) FROM unnest(ARRAY['cls3', 'mlm', 'clm']) AS m;
