-- camembert--0.4.sql: the SQL surface of the camembert extension.
\echo Use "CREATE EXTENSION camembert" to load this file. \quit

CREATE FUNCTION camembert_version() RETURNS text
	AS 'MODULE_PATHNAME', 'camembert_version'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- ---------------------------------------------------------------------------
-- Models: loaded once per server into shared memory; registered here so that
-- they load again (as they were loaded) on first use after a restart, or by
-- the preload worker at start.  pg_dump keeps the rows.
CREATE TABLE camembert_registered_models (
	name text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 63),
	path text NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT now(),
	-- what the model is (CamembertForMaskedLM ...), so that a NULL model
	-- argument is resolved without loading every registered model
	architecture text,
	-- camembert_load's dtype: auto, float32, bfloat16 or int8
	dtype text NOT NULL DEFAULT 'auto'
);
SELECT pg_catalog.pg_extension_config_dump('camembert_registered_models', '');
REVOKE ALL ON camembert_registered_models FROM PUBLIC;
GRANT SELECT ON camembert_registered_models TO PUBLIC;

-- dtype: the weight matrices kept in the files' dtype (auto), or converted to
-- float32, bfloat16 or int8 at load.
CREATE FUNCTION camembert_load(name text, path text, dtype text DEFAULT 'auto') RETURNS void
	AS 'MODULE_PATHNAME', 'camembert_load'
	LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION camembert_load(text, text, text) IS
	'load a Hugging Face CamemBERT model directory into shared memory, weights in dtype auto, float32, bfloat16 or int8 (superusers and pg_read_server_files)';

CREATE FUNCTION camembert_unload(name text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'camembert_unload'
	LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- dtype: of the weight files; precision: the dtype camembert_load was given
CREATE FUNCTION camembert_loaded_models(
	OUT name text, OUT path text, OUT architecture text, OUT task text,
	OUT labels text[], OUT parameters bigint, OUT bytes bigint, OUT dtype text,
	OUT "precision" text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'camembert_loaded_models'
	LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION camembert_loaded_models() IS
	'models in shared memory now, whatever database registered them';

-- Registered (this database) and loaded (this server) models.  Pinned
-- search_path and qualified operators: nothing a caller defines can run inside.
CREATE FUNCTION camembert_models(
	OUT name text, OUT path text, OUT architecture text, OUT task text,
	OUT labels text[], OUT parameters bigint, OUT bytes bigint, OUT dtype text,
	OUT "precision" text, OUT loaded boolean)
	RETURNS SETOF record
	LANGUAGE sql VOLATILE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT COALESCE(l.name, r.name), COALESCE(l.path, r.path),
	       COALESCE(l.architecture, r.architecture), l.task,
	       l.labels, l.parameters, l.bytes, l.dtype,
	       COALESCE(l."precision", r.dtype), l.name IS NOT NULL
	  FROM @extschema@.camembert_loaded_models() AS l
	  FULL JOIN @extschema@.camembert_registered_models AS r ON r.name OPERATOR(pg_catalog.=) l.name
	 ORDER BY 1
	$$;

-- ---------------------------------------------------------------------------
-- Tokenizer.  `model` names a loaded model; NULL means camembert.default_model,
-- else the one model loaded.  Not STRICT (model may be NULL): a NULL input gives NULL.
CREATE FUNCTION camembert_tokenize(input text, model text DEFAULT NULL) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'camembert_tokenize'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_tokenize(text, text) IS
	'token ids of the text, with <s> and </s>, as CamembertTokenizer gives them (not truncated)';

CREATE FUNCTION camembert_tokens(input text, model text DEFAULT NULL) RETURNS text[]
	AS 'MODULE_PATHNAME', 'camembert_tokens'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_tokens(text, text) IS
	'SentencePiece pieces of the text (tokenizer.tokenize), without <s> and </s>';

CREATE FUNCTION camembert_decode(ids integer[], model text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'camembert_decode'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_decode(integer[], text) IS
	'text of the ids, special tokens skipped, tokenization spaces cleaned up as transformers does';

CREATE FUNCTION camembert_token_count(input text, model text DEFAULT NULL) RETURNS integer
	AS 'MODULE_PATHNAME', 'camembert_token_count'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_token_count(text, text) IS
	'number of tokens of camembert_tokenize (with <s> and </s>)';

-- ---------------------------------------------------------------------------
-- Raw outputs.  The text is encoded with <s> ... </s> and truncated to the
-- model's longest input (max_position_embeddings - 2 tokens, </s> kept).
CREATE FUNCTION camembert_logits(input text, model text DEFAULT NULL) RETURNS real[]
	AS 'MODULE_PATHNAME', 'camembert_logits'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_logits(text, text) IS
	'logits: [tokens][vocab] for masked and causal LMs, [num_labels] for classifiers';

CREATE FUNCTION camembert_hidden_states(input text, model text DEFAULT NULL, layer integer DEFAULT -1)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'camembert_hidden_states'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_hidden_states(text, text, integer) IS
	'hidden states [tokens][hidden] of one layer: 0 = embeddings, -1 = last';

-- ---------------------------------------------------------------------------
-- Tasks.  STABLE: the answer depends on the loaded model, which does not
-- change within a statement (a name keeps meaning the same model for the
-- whole transaction).  PARALLEL SAFE: workers attach the same shared model.
-- COST tells the planner that these are expensive (a forward pass), so that
-- it pushes them below Gather into parallel workers.
CREATE FUNCTION camembert_fill_mask(input text, model text DEFAULT NULL, top_k integer DEFAULT 5)
	RETURNS TABLE(mask_index integer, score float8, token integer, token_str text, sequence text)
	AS 'MODULE_PATHNAME', 'camembert_fill_mask'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000 ROWS 5;

CREATE FUNCTION camembert_classify(input text, model text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'camembert_classify'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;

CREATE FUNCTION camembert_classify_scores(input text, model text DEFAULT NULL,
		function_to_apply text DEFAULT NULL)
	RETURNS TABLE(label text, score float8)
	AS 'MODULE_PATHNAME', 'camembert_classify_scores'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000 ROWS 3;
COMMENT ON FUNCTION camembert_classify_scores(text, text, text) IS
	'every label with its score, best first; function_to_apply: softmax, sigmoid or none (NULL: as the pipeline)';

CREATE FUNCTION camembert_classify(inputs text[], model text DEFAULT NULL)
	RETURNS TABLE(ord integer, label text, score float8)
	AS 'MODULE_PATHNAME', 'camembert_classify_batch'
	LANGUAGE C STABLE PARALLEL SAFE COST 100000;

CREATE FUNCTION camembert_generate(prompt text, model text DEFAULT NULL,
		max_new_tokens integer DEFAULT 20, temperature float8 DEFAULT 0,
		top_k integer DEFAULT 0, top_p float8 DEFAULT 1, seed bigint DEFAULT NULL,
		num_beams integer DEFAULT 1, length_penalty float8 DEFAULT 1,
		early_stopping boolean DEFAULT false, repetition_penalty float8 DEFAULT 1,
		no_repeat_ngram_size integer DEFAULT 0)
	RETURNS text
	AS 'MODULE_PATHNAME', 'camembert_generate'
	LANGUAGE C VOLATILE PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION camembert_generate(text, text, integer, float8, integer, float8, bigint,
		integer, float8, boolean, float8, integer) IS
	'continuation of the prompt; temperature 0 is greedy (num_beams > 1: beam search), else sampling (reproducible with a seed)';

-- beam search's best sequences with their scores, best first
CREATE FUNCTION camembert_generate_sequences(prompt text, model text DEFAULT NULL,
		max_new_tokens integer DEFAULT 20, num_beams integer DEFAULT 4,
		num_return_sequences integer DEFAULT NULL, length_penalty float8 DEFAULT 1,
		early_stopping boolean DEFAULT false, repetition_penalty float8 DEFAULT 1,
		no_repeat_ngram_size integer DEFAULT 0)
	RETURNS TABLE(rank integer, sequence text, score float8)
	AS 'MODULE_PATHNAME', 'camembert_generate_sequences'
	LANGUAGE C STABLE PARALLEL SAFE COST 400000 ROWS 4;
COMMENT ON FUNCTION camembert_generate_sequences(text, text, integer, integer, integer, float8,
		boolean, float8, integer) IS
	'beam search: the num_return_sequences (default num_beams) best continuations, best first, with their length-normalised log-probabilities';

CREATE FUNCTION camembert_embed(input text, model text DEFAULT NULL, pooling text DEFAULT 'mean')
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'camembert_embed'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;

CREATE FUNCTION camembert_score(input text, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_score'
	LANGUAGE C STABLE PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION camembert_score(text, text) IS
	'log-likelihood of the text (causal LM), or pseudo-log-likelihood (masked LM)';

-- Losses, as transformers computes them with labels=
CREATE FUNCTION camembert_loss(input text, label text, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_label'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_loss(text, text, text) IS
	'classifier loss against a label name: cross-entropy (single-label), BCE with that one label (multi-label)';
CREATE FUNCTION camembert_loss(input text, label integer, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_id'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_loss(text, integer, text) IS
	'classifier loss against a label id (cross-entropy), or a regression target (MSE)';
CREATE FUNCTION camembert_loss(input text, target float8, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_value'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_loss(text, float8, text) IS
	'regression loss (MSE) against the true value';
CREATE FUNCTION camembert_loss(input text, labels text[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_label_set'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_loss(text, text[], text) IS
	'multi-label loss (BCE with logits, mean over the labels) against the set of true labels';
CREATE FUNCTION camembert_loss(input text, targets float8[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_values'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_loss(text, float8[], text) IS
	'multi-label (BCE) or regression (MSE) loss against one target per label';
CREATE FUNCTION camembert_mlm_loss(input text, targets text[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_mlm_loss'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_mlm_loss(text, text[], text) IS
	'masked LM loss: mean cross-entropy at the <mask> positions, targets[i] the true token of the i-th <mask>';
CREATE FUNCTION camembert_mlm_loss(input_ids integer[], labels integer[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_mlm_loss_ids'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION camembert_mlm_loss(integer[], integer[], text) IS
	'masked LM loss over token ids, labels -100 ignored (transformers'' labels=)';

CREATE FUNCTION camembert_attentions(input text, model text DEFAULT NULL, layer integer DEFAULT -1)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'camembert_attentions'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_attentions(text, text, integer) IS
	'attention probabilities [heads][tokens][tokens] of one layer: 0 = the first, -1 = the last';

CREATE FUNCTION camembert_label_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'camembert_label_trigger'
	LANGUAGE C;
COMMENT ON FUNCTION camembert_label_trigger() IS
	'BEFORE INSERT OR UPDATE row trigger: (source column, target column [, model [, score column]])';

-- ---------------------------------------------------------------------------
-- Statistics (README "Monitoring"): per (model, user, database), kept in
-- shared memory since the last camembert_stat_reset().  Superusers and members
-- of pg_read_all_stats see every row, other roles their own.
CREATE FUNCTION camembert_stat_models_internal(
	OUT model text, OUT userid oid, OUT dbid oid,
	OUT loads bigint, OUT calls bigint, OUT texts bigint, OUT tokens bigint,
	OUT total_time_ms float8, OUT mean_time_ms float8, OUT last_used timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'camembert_stat_models_internal'
	LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW camembert_stat_models AS
	SELECT * FROM @extschema@.camembert_stat_models_internal();
GRANT SELECT ON camembert_stat_models TO PUBLIC;

CREATE FUNCTION camembert_stat_reset() RETURNS void
	AS 'MODULE_PATHNAME', 'camembert_stat_reset'
	LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION camembert_stat_reset() FROM PUBLIC;
COMMENT ON FUNCTION camembert_stat_reset() IS
	'forget every entry of camembert_stat_models (superusers, unless granted)';

CREATE FUNCTION camembert_stat_dropped() RETURNS bigint
	AS 'MODULE_PATHNAME', 'camembert_stat_dropped'
	LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION camembert_stat_dropped() IS
	'calls and loads not recorded since the last reset: camembert.stat_max entries in use';
