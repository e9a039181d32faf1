-- Losses and attentions against transformers (losses.json, attentions_XX.npy
-- of the golden models): classifier losses with label names, ids, targets and
-- label sets; the masked LM loss from a text with <mask>s and its true
-- tokens, and from ids + labels; attention probabilities of every layer.
\getenv abs_srcdir PG_ABS_SRCDIR
\set golden :abs_srcdir '/build/golden/models/'
SELECT camembert_load(m, :'golden' || m)
  FROM unnest(ARRAY['mlm', 'cls3', 'reg1', 'multilabel', 'clm']) AS m;
\set ECHO none
\i build/regress/models.sql
\i build/regress/extras.sql
\set ECHO all
CREATE TEMP TABLE labels AS
  SELECT name AS model, labels FROM camembert_models() WHERE name IN ('cls3', 'multilabel');

-- single-label (cls3): cross-entropy, by label id and by label name
SELECT count(*) AS cases,
       count(*) FILTER (WHERE abs(camembert_loss(c.input, l.label_id, 'cls3') - l.loss) < 1e-4) AS by_id,
       count(*) FILTER (WHERE abs(camembert_loss(c.input, lb.labels[l.label_id + 1], 'cls3') - l.loss) < 1e-4)
         AS by_name
  FROM golden_cls_loss l JOIN golden_cases c USING (idx) JOIN labels lb ON lb.model = 'cls3'
 WHERE l.model = 'cls3';
-- regression (reg1): MSE against the value, or one target per label
SELECT count(*) AS cases,
       count(*) FILTER (WHERE abs(camembert_loss(c.input, l.targets[1], 'reg1') - l.loss) < 1e-4) AS by_value,
       count(*) FILTER (WHERE abs(camembert_loss(c.input, l.targets, 'reg1') - l.loss) < 1e-4) AS by_array
  FROM golden_cls_loss l JOIN golden_cases c USING (idx) WHERE l.model = 'reg1';
-- multi-label: BCE against the set of true labels, or the 0/1 targets
SELECT count(*) AS cases,
       count(*) FILTER (WHERE abs(camembert_loss(c.input,
           ARRAY(SELECT lb.labels[j] FROM generate_subscripts(l.targets, 1) j WHERE l.targets[j] = 1)::text[],
           'multilabel') - l.loss) < 1e-4) AS by_label_set,
       count(*) FILTER (WHERE abs(camembert_loss(c.input, l.targets, 'multilabel') - l.loss) < 1e-4) AS by_targets
  FROM golden_cls_loss l JOIN golden_cases c USING (idx) JOIN labels lb ON lb.model = 'multilabel'
 WHERE l.model = 'multilabel';
-- one label name on a multi-label model is the set of that label
SELECT abs(camembert_loss(c.input, lb.labels[3], 'multilabel') - l.loss) < 1e-4 AS one_label
  FROM golden_cls_loss l JOIN golden_cases c USING (idx) JOIN labels lb ON lb.model = 'multilabel'
 WHERE l.model = 'multilabel' AND l.idx = 4;

-- evaluating a model on a labelled table: mean loss and accuracy
CREATE TEMP TABLE labelled AS
  SELECT c.input AS body, lb.labels[l.label_id + 1] AS label, l.loss
    FROM golden_cls_loss l JOIN golden_cases c USING (idx) JOIN labels lb ON lb.model = 'cls3'
   WHERE l.model = 'cls3';
SELECT abs(avg(camembert_loss(body, label, 'cls3')) - avg(loss)) < 1e-5 AS mean_loss_equal,
       avg((camembert_classify(body, 'cls3') = label)::int) =
       (SELECT avg((lb.labels[(SELECT j FROM generate_subscripts(g.logits, 1) j
                                ORDER BY g.logits[j] DESC LIMIT 1)] = lab.label)::int)
          FROM golden_class_logits g JOIN golden_cases c USING (idx) JOIN labelled lab ON lab.body = c.input
          JOIN labels lb ON lb.model = 'cls3'
         WHERE g.model = 'cls3') AS accuracy_equal,
       round(avg((camembert_classify(body, 'cls3') = label)::int), 2) AS accuracy
  FROM labelled;

-- masked LM, transformers' form: ids with <mask>s and labels (-100 ignored)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE abs(camembert_mlm_loss(input_ids, labels, 'mlm') - loss) < 1e-4) AS equal
  FROM golden_mlm_loss;
-- masked LM from text: the case's text with its masked pieces written <mask>
-- (camembert_tokens() has no <s>: token i of the text is input_ids[i + 1])
-- (those that tokenize back to the golden ids), the true pieces as targets
CREATE TEMP TABLE mlm_text AS
  SELECT l.idx, l.loss, l.input_ids,
         replace(array_to_string(ARRAY(
             SELECT CASE WHEN l.input_ids[i] = 8004 THEN '<mask>' ELSE t.tokens[i - 1] END
               FROM generate_subscripts(l.input_ids, 1) i
              WHERE i > 1 AND i < cardinality(l.input_ids)), ''), U&'\2581', ' ') AS masked,
         ARRAY(SELECT t.tokens[p] FROM unnest(l.masked_positions) p) AS targets
    FROM golden_mlm_loss l
    JOIN golden_cases c USING (idx)
    CROSS JOIN LATERAL (SELECT camembert_tokens(c.input, 'mlm') AS tokens) t
   WHERE cardinality(l.masked_positions) > 0;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE camembert_tokenize(masked, 'mlm') = input_ids) AS round_trip,
       count(*) FILTER (WHERE camembert_tokenize(masked, 'mlm') = input_ids
                          AND abs(camembert_mlm_loss(masked, targets, 'mlm') - loss) < 1e-4) AS equal
  FROM mlm_text;
-- the same as the ids form
SELECT camembert_mlm_loss('<mask> chat dort.', ARRAY[U&'\2581Le'], 'mlm') =
       camembert_mlm_loss(camembert_tokenize('<mask> chat dort.', 'mlm'),
                          ARRAY[-100, 280] || array_fill(-100, ARRAY[cardinality(camembert_tokenize('<mask> chat dort.', 'mlm')) - 2]),
                          'mlm') AS same_as_ids;

-- attentions: every layer of cases 1, 5 and 19, [heads][tokens][tokens]
SELECT a.model, count(*) AS layers,
       bool_and(array_dims(camembert_attentions(c.input, a.model, a.layer)) = array_dims(a.attentions))
         AS same_shape,
       max((SELECT max(abs(x - y)) FROM unnest(camembert_attentions(c.input, a.model, a.layer), a.attentions)
              AS u(x, y))) < 1e-4 AS equal
  FROM golden_attentions a JOIN golden_cases c USING (idx)
 GROUP BY a.model ORDER BY a.model;
-- negative layers count from the end
SELECT camembert_attentions('Le chat', 'mlm', -1) = camembert_attentions('Le chat', 'mlm', 1) AS last,
       camembert_attentions('Le chat', 'mlm', -2) = camembert_attentions('Le chat', 'mlm') AS first_is_not_default;

-- bad values: 22023 (or 42809 for the wrong kind of model) with a hint
SELECT camembert_loss('Bonjour', 'nope', 'cls3');
SELECT camembert_loss('Bonjour', 3, 'cls3');
SELECT camembert_loss('Bonjour', 0.5, 'cls3');
SELECT camembert_loss('Bonjour', '{a}'::text[], 'cls3');
SELECT camembert_loss('Bonjour', '{0.5}'::float8[], 'multilabel');
SELECT camembert_loss('Bonjour', '{0,0,0,2}'::float8[], 'multilabel');
SELECT camembert_loss('Bonjour', 'NaN'::float8, 'reg1');
SELECT camembert_loss('Bonjour', 'positive', 'mlm');
SELECT camembert_mlm_loss('Le <mask> dort.', ARRAY['a', 'b'], 'mlm');
SELECT camembert_mlm_loss('Le chat dort.', ARRAY[]::text[], 'mlm');
SELECT camembert_mlm_loss('Le <mask> dort.', ARRAY['pas un token'], 'mlm');
SELECT camembert_mlm_loss('{5,8004,6}'::int[], '{-100,280}'::int[], 'mlm');
SELECT camembert_mlm_loss('{5,8004,6}'::int[], '{-100,9000,-100}'::int[], 'mlm');
SELECT camembert_mlm_loss('{5,8004,6}'::int[], '{-100,280,-100}'::int[], 'cls3');
SELECT camembert_mlm_loss('{5,8004,6}'::int[], '{-100,-100,-100}'::int[], 'mlm') AS nothing_labelled;
SELECT camembert_attentions('Le chat', 'mlm', 2);
SELECT camembert_attentions('Le chat', 'mlm', -3);
