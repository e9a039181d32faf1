/*
 * losses.c — transformers' losses (see losses.h).
 */
#include "losses.h"
#include "row_ops.h"

#include <math.h>

cb_status
cb_loss_token_cross_entropy(const float *logits, size_t n, size_t num_classes, size_t ld,
							const int32_t *labels, double *loss, double *per_row, cb_error *err)
{
	double		sum = 0.0;
	size_t		counted = 0;

	if (num_classes == 0 || ld < num_classes)
		return cb_set_error(err, CB_ERR_INVALID, "cross-entropy needs at least one class");
	for (size_t i = 0; i < n; i++)
	{
		int32_t		label = labels[i];
		const float *row = logits + i * ld;
		double		ce;

		if (label == CB_IGNORE_INDEX)
		{
			if (per_row != NULL)
				per_row[i] = NAN;
			continue;
		}
		if (label < 0 || (size_t) label >= num_classes)
			return cb_set_error(err, CB_ERR_INVALID, "label %d of row %zu is outside [0, %zu) and not -100",
								label, i, num_classes);
		ce = cb_kernel_logsumexp(row, num_classes) - (double) row[label];
		if (per_row != NULL)
			per_row[i] = ce;
		sum += ce;
		counted++;
	}
	*loss = counted > 0 ? sum / (double) counted : NAN;
	return CB_OK;
}

cb_status
cb_loss_causal_lm(const float *logits, size_t batch, size_t seq_len, size_t vocab,
				  const int32_t *labels, double *loss, double *per_position, cb_error *err)
{
	double		sum = 0.0;
	size_t		counted = 0;

	if (vocab == 0)
		return cb_set_error(err, CB_ERR_INVALID, "cross-entropy needs at least one class");
	for (size_t b = 0; b < batch; b++)
	{
		for (size_t t = 0; t + 1 < seq_len; t++)
		{
			int32_t		label = labels[b * seq_len + t + 1];
			const float *row = logits + (b * seq_len + t) * vocab;
			double	   *slot = per_position ? per_position + b * (seq_len - 1) + t : NULL;
			double		ce;

			if (label == CB_IGNORE_INDEX)
			{
				if (slot)
					*slot = NAN;
				continue;
			}
			if (label < 0 || (size_t) label >= vocab)
				return cb_set_error(err, CB_ERR_INVALID,
									"label %d at row %zu, position %zu is outside [0, %zu) and not -100",
									label, b, t + 1, vocab);
			ce = cb_kernel_logsumexp(row, vocab) - (double) row[label];
			if (slot)
				*slot = ce;
			sum += ce;
			counted++;
		}
	}
	*loss = counted > 0 ? sum / (double) counted : NAN;
	return CB_OK;
}

double
cb_loss_mse(const float *pred, const float *target, size_t n)
{
	double		sum = 0.0;

	if (n == 0)
		return NAN;
	for (size_t i = 0; i < n; i++)
	{
		double		d = (double) pred[i] - (double) target[i];

		sum += d * d;
	}
	return sum / (double) n;
}

double
cb_loss_bce_with_logits(const float *logits, const float *target, size_t n)
{
	double		sum = 0.0;

	if (n == 0)
		return NAN;
	for (size_t i = 0; i < n; i++)
	{
		double		x = logits[i],
					y = target[i];

		/* max(x, 0) - x*y + log(1 + exp(-|x|)), as PyTorch */
		sum += (x > 0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
	}
	return sum / (double) n;
}

cb_status
cb_loss_classifier(const cb_model *model, const float *logits, size_t batch,
				   const int32_t *int_labels, const float *float_labels,
				   double *loss, cb_error *err)
{
	const cb_config *c = &model->config;
	size_t		labels = (size_t) (c->num_labels > 0 ? c->num_labels : 0);
	cb_problem_type pt = c->problem_type;

	if (c->architecture != CB_ARCH_SEQUENCE_CLASSIFICATION || labels == 0)
		return cb_set_error(err, CB_ERR_INVALID, "a classification loss needs a classification model");
	/* transformers infers a missing problem_type from num_labels and the
	 * label dtype: 1 -> regression, integer labels -> single-label, else
	 * multi-label */
	if (pt == CB_PROBLEM_NONE)
		pt = labels == 1 ? CB_PROBLEM_REGRESSION
			: int_labels != NULL ? CB_PROBLEM_SINGLE_LABEL : CB_PROBLEM_MULTI_LABEL;
	switch (pt)
	{
		case CB_PROBLEM_SINGLE_LABEL:
			if (int_labels == NULL)
				return cb_set_error(err, CB_ERR_INVALID, "single-label classification needs class ids");
			return cb_loss_token_cross_entropy(logits, batch, labels, labels, int_labels, loss, NULL, err);
		case CB_PROBLEM_REGRESSION:
		case CB_PROBLEM_MULTI_LABEL:
			if (float_labels == NULL)
				return cb_set_error(err, CB_ERR_INVALID, "%s needs float labels",
									pt == CB_PROBLEM_REGRESSION ? "regression" : "multi-label classification");
			*loss = pt == CB_PROBLEM_REGRESSION ? cb_loss_mse(logits, float_labels, batch * labels)
				: cb_loss_bce_with_logits(logits, float_labels, batch * labels);
			return CB_OK;
		default:
			return cb_set_error(err, CB_ERR_INVALID, "unknown problem type %d", (int) pt);
	}
}
