/*
 * losses.h — the training losses transformers computes when `labels=` is
 * passed, on logits produced by cb_forward.  Results are in double (computed
 * stably: log-sum-exp, and log1p(exp(-|x|)) for BCE).
 *
 *   masked LM:    cb_loss_token_cross_entropy (labels -100 are ignored)
 *   causal LM:    cb_loss_causal_lm (logits at t predict labels at t + 1)
 *   classifiers:  cb_loss_classifier, which picks by problem type:
 *                 single-label cross-entropy, MSE (num_labels == 1,
 *                 regression), BCE-with-logits (multi-label), all means.
 *
 * As in PyTorch, a mean over zero labelled positions is NaN (returned with
 * CB_OK).  A label outside [0, num_classes) other than -100 is CB_ERR_INVALID.
 */
#ifndef CB_LOSSES_H
#define CB_LOSSES_H

#include "cb_common.h"
#include "model.h"

#define CB_IGNORE_INDEX (-100)

/*
 * Mean cross-entropy of rows logits[i][0..num_classes) (row i at
 * logits + i * ld) against labels[i], over the rows whose label is not -100.
 * per_row (optional, [n]) receives each row's loss, NaN for ignored rows.
 */
cb_status	cb_loss_token_cross_entropy(const float *logits, size_t n, size_t num_classes, size_t ld,
										const int32_t *labels, double *loss, double *per_row,
										cb_error *err);

/*
 * Shifted cross-entropy of a causal LM: logits [B][T][V], labels [B][T];
 * mean over (b, t < T-1) of CE(logits[b][t], labels[b][t+1]) where that label
 * is not -100.  per_position (optional, [B][T-1]) as per_row above.
 */
cb_status	cb_loss_causal_lm(const float *logits, size_t batch, size_t seq_len, size_t vocab,
							  const int32_t *labels, double *loss, double *per_position,
							  cb_error *err);

/* Mean squared error over n values. */
double		cb_loss_mse(const float *pred, const float *target, size_t n);

/* Mean binary cross-entropy with logits over n values (targets in [0, 1]). */
double		cb_loss_bce_with_logits(const float *logits, const float *target, size_t n);

/*
 * The loss of CamembertForSequenceClassification for logits [B][L]:
 * single-label: int_labels [B] (class ids; -100 ignored);
 * regression and multi-label: float_labels [B][L].
 * Without a problem type in the config, transformers' rule applies:
 * num_labels == 1 -> regression, else int_labels given -> single-label,
 * else multi-label.
 */
cb_status	cb_loss_classifier(const cb_model *model, const float *logits, size_t batch,
							   const int32_t *int_labels, const float *float_labels,
							   double *loss, cb_error *err);

#endif							/* CB_LOSSES_H */
