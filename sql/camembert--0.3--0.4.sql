-- camembert--0.3--0.4.sql: update from 0.3 to 0.4.
\echo Use "ALTER EXTENSION camembert UPDATE TO '0.4'" to load this file. \quit

-- New parameters with defaults beside the old seven-parameter function would
-- make every call of 0.3 ambiguous: the old one is replaced (privileges
-- granted on it are not carried over).  Calls written for 0.3 mean the same.
DROP FUNCTION @extschema@.camembert_generate(text, text, integer, float8, integer, float8, bigint);

-- camembert_generate: beam search (num_beams, length_penalty, early_stopping)
-- and the logits processors (repetition_penalty, no_repeat_ngram_size), after
-- the parameters of 0.3, so that every 0.3 call means the same.
CREATE FUNCTION @extschema@.camembert_generate(prompt text, model text DEFAULT NULL,
		max_new_tokens integer DEFAULT 20, temperature float8 DEFAULT 0,
		top_k integer DEFAULT 0, top_p float8 DEFAULT 1, seed bigint DEFAULT NULL,
		num_beams integer DEFAULT 1, length_penalty float8 DEFAULT 1,
		early_stopping boolean DEFAULT false, repetition_penalty float8 DEFAULT 1,
		no_repeat_ngram_size integer DEFAULT 0)
	RETURNS text
	AS 'MODULE_PATHNAME', 'camembert_generate'
	LANGUAGE C VOLATILE PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION @extschema@.camembert_generate(text, text, integer, float8, integer, float8, bigint,
		integer, float8, boolean, float8, integer) IS
	'continuation of the prompt; temperature 0 is greedy (num_beams > 1: beam search), else sampling (reproducible with a seed)';

-- beam search's best sequences with their scores, best first
CREATE FUNCTION @extschema@.camembert_generate_sequences(prompt text, model text DEFAULT NULL,
		max_new_tokens integer DEFAULT 20, num_beams integer DEFAULT 4,
		num_return_sequences integer DEFAULT NULL, length_penalty float8 DEFAULT 1,
		early_stopping boolean DEFAULT false, repetition_penalty float8 DEFAULT 1,
		no_repeat_ngram_size integer DEFAULT 0)
	RETURNS TABLE(rank integer, sequence text, score float8)
	AS 'MODULE_PATHNAME', 'camembert_generate_sequences'
	LANGUAGE C STABLE PARALLEL SAFE COST 400000 ROWS 4;
COMMENT ON FUNCTION @extschema@.camembert_generate_sequences(text, text, integer, integer, integer, float8,
		boolean, float8, integer) IS
	'beam search: the num_return_sequences (default num_beams) best continuations, best first, with their length-normalised log-probabilities';

-- Losses, as transformers computes them with labels=
CREATE FUNCTION @extschema@.camembert_loss(input text, label text, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_label'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_loss(text, text, text) IS
	'classifier loss against a label name: cross-entropy (single-label), BCE with that one label (multi-label)';
CREATE FUNCTION @extschema@.camembert_loss(input text, label integer, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_id'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_loss(text, integer, text) IS
	'classifier loss against a label id (cross-entropy), or a regression target (MSE)';
CREATE FUNCTION @extschema@.camembert_loss(input text, target float8, model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_value'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_loss(text, float8, text) IS
	'regression loss (MSE) against the true value';
CREATE FUNCTION @extschema@.camembert_loss(input text, labels text[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_label_set'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_loss(text, text[], text) IS
	'multi-label loss (BCE with logits, mean over the labels) against the set of true labels';
CREATE FUNCTION @extschema@.camembert_loss(input text, targets float8[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_loss_values'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_loss(text, float8[], text) IS
	'multi-label (BCE) or regression (MSE) loss against one target per label';
CREATE FUNCTION @extschema@.camembert_mlm_loss(input text, targets text[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_mlm_loss'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_mlm_loss(text, text[], text) IS
	'masked LM loss: mean cross-entropy at the <mask> positions, targets[i] the true token of the i-th <mask>';
CREATE FUNCTION @extschema@.camembert_mlm_loss(input_ids integer[], labels integer[], model text DEFAULT NULL) RETURNS float8
	AS 'MODULE_PATHNAME', 'camembert_mlm_loss_ids'
	LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.camembert_mlm_loss(integer[], integer[], text) IS
	'masked LM loss over token ids, labels -100 ignored (transformers'' labels=)';

CREATE FUNCTION @extschema@.camembert_attentions(input text, model text DEFAULT NULL, layer integer DEFAULT -1)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'camembert_attentions'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.camembert_attentions(text, text, integer) IS
	'attention probabilities [heads][tokens][tokens] of one layer: 0 = the first, -1 = the last';
