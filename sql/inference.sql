-- Inference engine: raw outputs through SQL against the reference
-- (transformers' hidden states and logits for the golden models), |Δ| <= 1e-4.
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_load(m, :'golden' || m)
  FROM unnest(ARRAY['mlm', 'cls3', 'reg1', 'multilabel', 'clm', 'mlm_fp16', 'mlm_bf16_sharded']) AS m;
SELECT name, architecture, task, labels, parameters, dtype, loaded FROM camembert_models();

\set ECHO none
\i build/regress/models.sql
\set ECHO all

-- the inputs tokenize as the reference did (case 23 is 527 tokens, truncated to 128)
SELECT count(*) AS cases, count(*) FILTER (WHERE truncated) AS truncated FROM golden_cases;
SELECT idx FROM golden_cases
 WHERE CASE WHEN truncated THEN (camembert_tokenize(input, 'mlm'))[1:127] || 6
            ELSE camembert_tokenize(input, 'mlm') END IS DISTINCT FROM input_ids;

-- hidden states: every layer of cases 0-4, the last layer of case 23, for five models
-- (fp16 / bf16 weights are upcast exactly, so the same tolerance holds)
SELECT h.model, count(*) AS arrays,
       max(regress_max_abs_diff(camembert_hidden_states(c.input, h.model, h.layer), h.states)) < 1e-4 AS within_1e4
  FROM golden_hidden h JOIN golden_cases c USING (idx)
 GROUP BY h.model ORDER BY h.model;

-- classifier logits, all 25 cases
SELECT g.model, count(*) AS cases,
       max(regress_max_abs_diff(camembert_logits(c.input, g.model), g.logits)) < 1e-4 AS within_1e4
  FROM golden_class_logits g JOIN golden_cases c USING (idx)
 GROUP BY g.model ORDER BY g.model;

-- LM logits: the reference's top-10 ids at every position of cases 0-4, compared by id
SELECT model, count(*) AS positions, max(diff) < 1e-4 AS within_1e4
  FROM (SELECT t.model, (SELECT max(abs(l[t.pos][id + 1] - gl))
                           FROM unnest(t.ids, t.logits) AS u(id, gl)) AS diff
          FROM golden_top10 t JOIN golden_cases c USING (idx)
          CROSS JOIN LATERAL camembert_logits(c.input, t.model) AS l) s
 GROUP BY model ORDER BY model;

-- shapes
SELECT array_dims(camembert_logits('Le chat dort.', 'mlm')) AS mlm,
       array_dims(camembert_logits('Le chat dort.', 'cls3')) AS cls3,
       array_dims(camembert_hidden_states('Le chat dort.', 'clm', 0)) AS embeddings,
       array_dims(camembert_hidden_states('', 'clm')) AS empty_text;
-- layers count from the end; out of range is an error
SELECT camembert_hidden_states('Le chat dort.', 'mlm', -1) = camembert_hidden_states('Le chat dort.', 'mlm', 2) AS last,
       camembert_hidden_states('Le chat dort.', 'mlm', -3) = camembert_hidden_states('Le chat dort.', 'mlm', 0) AS first;
SELECT regress_error($$SELECT camembert_hidden_states('x', 'mlm', 3)$$);
SELECT regress_error($$SELECT camembert_hidden_states('x', 'mlm', -4)$$);
-- NULL in, NULL out
SELECT camembert_logits(NULL, 'mlm') IS NULL, camembert_hidden_states(NULL, 'mlm') IS NULL;

SELECT bool_and(camembert_unload(name)) FROM camembert_models();
