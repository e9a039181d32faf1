/*
 * model_resolve.h — which model a SQL call means.
 *
 * A function's `model` argument names a model; NULL means
 * camembert.default_model when it is set, else the one model (loaded, or
 * registered and loadable) that can do the task; otherwise an ERROR that
 * lists the candidates.  A named model of the wrong kind is an ERROR too.
 */
#ifndef MODEL_RESOLVE_H
#define MODEL_RESOLVE_H

#include "postgres.h"

#include "fmgr.h"

#include "model_registry.h"

typedef enum CamembertTask
{
	TASK_TOKENIZE = 0,			/* any model (every model has a tokenizer) */
	TASK_EMBED,					/* any model (encoder hidden states) */
	TASK_FILL_MASK,				/* masked LM */
	TASK_CLASSIFY,				/* sequence classification */
	TASK_GENERATE,				/* causal LM */
	TASK_SCORE					/* masked LM (pseudo) or causal LM (true) */
} CamembertTask;

/* Resolve the model argument `argno` of the calling function. */
extern CamembertModel *camembert_resolve_model_arg(FunctionCallInfo fcinfo, int argno,
												   CamembertTask task);
extern CamembertModel *camembert_resolve_model(const char *name_or_null, CamembertTask task);
extern bool camembert_model_can(const CamembertModel *model, CamembertTask task);

#endif							/* MODEL_RESOLVE_H */
