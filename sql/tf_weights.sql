-- TensorFlow weight files: tf_model.h5 (Keras save_weights), its shards with
-- tf_model.h5.index.json, model.safetensors whose metadata says "format": "tf".
-- The golden TF directories hold the weights of mlm, cls3 and clm: their outputs
-- must be the reference outputs of those source models (|Δ| <= 1e-4).
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_load(m, :'golden' || m)
  FROM unnest(ARRAY['mlm_tf_h5', 'mlm_tf_h5_sharded', 'mlm_tf_safetensors', 'cls3_tf_h5', 'clm_tf_h5']) AS m;
SELECT name, architecture, task, labels, parameters, dtype, loaded FROM camembert_models() WHERE name LIKE '%\_tf\_%' ORDER BY name;

\set ECHO none
\i build/regress/models.sql
\set ECHO all
CREATE TEMP TABLE tf_source (model text, source text);
INSERT INTO tf_source VALUES ('mlm_tf_h5', 'mlm'), ('mlm_tf_h5_sharded', 'mlm'),
  ('mlm_tf_safetensors', 'mlm'), ('cls3_tf_h5', 'cls3'), ('clm_tf_h5', 'clm');

-- hidden states: every layer of cases 0-4, the last layer of case 23
SELECT s.model, count(*) AS arrays,
       max(regress_max_abs_diff(camembert_hidden_states(c.input, s.model, h.layer), h.states)) < 1e-4 AS within_1e4
  FROM tf_source s JOIN golden_hidden h ON h.model = s.source JOIN golden_cases c USING (idx)
 GROUP BY s.model ORDER BY s.model;

-- classifier logits, all 25 cases
SELECT s.model, count(*) AS cases,
       max(regress_max_abs_diff(camembert_logits(c.input, s.model), g.logits)) < 1e-4 AS within_1e4
  FROM tf_source s JOIN golden_class_logits g ON g.model = s.source JOIN golden_cases c USING (idx)
 GROUP BY s.model ORDER BY s.model;

-- LM logits: the reference's top-10 ids at every position of cases 0-4, compared by id
SELECT model, count(*) AS positions, max(diff) < 1e-4 AS within_1e4
  FROM (SELECT s.model, (SELECT max(abs(l[t.pos][id + 1] - gl))
                           FROM unnest(t.ids, t.logits) AS u(id, gl)) AS diff
          FROM tf_source s JOIN golden_top10 t ON t.model = s.source JOIN golden_cases c USING (idx)
          CROSS JOIN LATERAL camembert_logits(c.input, s.model) AS l) x
 GROUP BY model ORDER BY model;

-- pipelines: fill-mask (top 5), text classification, greedy generation
SELECT s.model, count(*) AS rows,
       count(*) FILTER (WHERE r.token = g.token AND r.token_str = g.token_str AND r.sequence = g.sequence
                          AND abs(r.score - g.score) < 1e-6) AS equal
  FROM tf_source s JOIN golden_fill_mask g ON g.model = s.source
  JOIN LATERAL (SELECT f.*, row_number() OVER (PARTITION BY f.mask_index ORDER BY f.score DESC) AS rank
                  FROM camembert_fill_mask(g.input, s.model) f) r
    ON r.mask_index = g.mask_index AND r.rank = g.rank
 GROUP BY s.model ORDER BY s.model;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE r.label = g.label AND abs(r.score - g.score) < 1e-6) AS equal
  FROM golden_text_classification g
  JOIN LATERAL (SELECT c.*, row_number() OVER (ORDER BY c.score DESC) AS rank
                  FROM camembert_classify_scores(g.input, 'cls3_tf_h5') c) r ON r.rank = g.rank
 WHERE g.model = 'cls3';
SELECT count(*) AS prompts,
       count(*) FILTER (WHERE camembert_generate(prompt, 'clm_tf_h5', 20) = decoded_new) AS equal
  FROM golden_generate;

-- the reduced precisions read the transposed kernels too: within the bounds
-- test/unit/test_forward.c (test_precisions) holds the source models to
SELECT camembert_unload('mlm_tf_h5');
SELECT camembert_load('mlm_tf_h5', :'golden' || 'mlm_tf_h5', 'bfloat16');
SELECT camembert_load('cls3_tf_h5_int8', :'golden' || 'cls3_tf_h5', 'int8');
SELECT name, dtype, precision FROM camembert_models() WHERE name IN ('mlm_tf_h5', 'cls3_tf_h5_int8') ORDER BY name;
SELECT max(regress_max_abs_diff(camembert_hidden_states(c.input, 'mlm_tf_h5', h.layer), h.states)) < 0.2 AS bf16_within_0_2
  FROM golden_hidden h JOIN golden_cases c USING (idx) WHERE h.model = 'mlm';
SELECT max(regress_max_abs_diff(camembert_logits(c.input, 'cls3_tf_h5_int8'), g.logits)) < 0.6 AS int8_within_0_6
  FROM golden_class_logits g JOIN golden_cases c USING (idx) WHERE g.model = 'cls3';

-- a damaged tf_model.h5 is an ERROR naming the file, not a crash
SELECT replace(regress_error(format($$SELECT camembert_load('tf_bad', %L)$$, :'abs_srcdir' || '/build/golden/tf_damaged')),
               :'abs_srcdir', '$SRCDIR');

SELECT bool_and(camembert_unload(name)) FROM camembert_models();
