/*
 * sql_classify.h — classification helpers shared with the labelling trigger.
 */
#ifndef SQL_CLASSIFY_H
#define SQL_CLASSIFY_H

#include "postgres.h"

#include "model_registry.h"

typedef enum ScoreFunction
{
	SCORE_SOFTMAX,
	SCORE_SIGMOID,
	SCORE_NONE
} ScoreFunction;

/* What the text-classification pipeline applies by default for this model. */
extern ScoreFunction camembert_default_score_function(const CamembertModel *model);
extern void camembert_apply_score_function(ScoreFunction fn, const float *logits, int n,
										   double *scores);

/* Classifier logits [n][num_labels] of n texts, in padded batches. */
/* returns the tokens the model ran on (specials included, after truncation) */
extern int64 camembert_classify_texts(CamembertModel *model, text **inputs, int n, float *logits);

/* The index of the largest of n scores (the first on ties, as torch.argmax). */
extern int	camembert_argmax(const double *scores, int n);

/* id2label[id], or "LABEL_<id>": UTF-8, as in config.json */
extern const char *camembert_label_name(const CamembertModel *model, int id);

/*
 * The label in the database encoding, as a C string or text: what every SQL
 * result holds.  ERROR 22P05 (with a hint) if the encoding cannot represent it.
 */
extern char *camembert_label_cstring(const CamembertModel *model, int id);
extern text *camembert_label_text(const CamembertModel *model, int id);

#endif							/* SQL_CLASSIFY_H */
