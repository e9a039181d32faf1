/*
 * model_resolve.c — which model a SQL call means (see model_resolve.h).
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"

#include "camembert.h"
#include "config.h"
#include "model_catalog.h"
#include "model_resolve.h"
#include "sql_support.h"

static const char *
task_description(CamembertTask task)
{
	switch (task)
	{
		case TASK_TOKENIZE:
			return "tokenize text";
		case TASK_EMBED:
			return "embed text";
		case TASK_FILL_MASK:
			return "fill masks (a masked LM, CamembertForMaskedLM)";
		case TASK_CLASSIFY:
			return "classify text (a CamembertForSequenceClassification model)";
		case TASK_GENERATE:
			return "generate text (a causal LM, CamembertForCausalLM)";
		case TASK_SCORE:
			return "score text (a masked or causal LM)";
	}
	return "?";
}

static bool
architecture_can(cb_architecture arch, CamembertTask task)
{
	switch (task)
	{
		case TASK_TOKENIZE:
		case TASK_EMBED:
			return true;
		case TASK_FILL_MASK:
			return arch == CB_ARCH_MASKED_LM;
		case TASK_CLASSIFY:
			return arch == CB_ARCH_SEQUENCE_CLASSIFICATION;
		case TASK_GENERATE:
			return arch == CB_ARCH_CAUSAL_LM;
		case TASK_SCORE:
			return arch == CB_ARCH_MASKED_LM || arch == CB_ARCH_CAUSAL_LM;
	}
	return false;
}

bool
camembert_model_can(const CamembertModel *model, CamembertTask task)
{
	return architecture_can(model->model.config.architecture, task);
}

/* "CamembertForMaskedLM" → its enum; false if unknown (NULL: a 0.1 registration) */
static bool
architecture_from_name(const char *name, cb_architecture *arch)
{
	static const cb_architecture all[] = {
		CB_ARCH_ENCODER, CB_ARCH_MASKED_LM, CB_ARCH_SEQUENCE_CLASSIFICATION, CB_ARCH_CAUSAL_LM
	};

	if (name == NULL)
		return false;
	for (size_t i = 0; i < lengthof(all); i++)
		if (strcmp(cb_architecture_name(all[i]), name) == 0)
		{
			*arch = all[i];
			return true;
		}
	return false;
}

/*
 * The names of every model this session could use for `task`: loaded ones
 * (attached, which costs a mapping, never a load), then the ones registered
 * in this database but not loaded, judged by the architecture their
 * registration records: nothing is loaded just to count candidates.
 */
static List *
candidate_names(CamembertTask task)
{
	List	   *names = NIL;
	int			n;
	char	  **loaded = camembert_registry_loaded_names(&n);
	List	   *registered;
	ListCell   *lc;

	for (int i = 0; i < n; i++)
	{
		CamembertModel *m = camembert_model_get(loaded[i], MODEL_GET_MISSING_OK | MODEL_GET_NO_AUTOLOAD |
												MODEL_GET_ANY_REGISTRATION);

		if (m != NULL && camembert_model_can(m, task))
			names = lappend(names, loaded[i]);
	}
	registered = camembert_catalog_entries();
	foreach(lc, registered)
	{
		CatalogEntry *e = (CatalogEntry *) lfirst(lc);
		cb_architecture arch;
		bool		is_loaded = false;

		for (int i = 0; i < n; i++)
			if (strcmp(loaded[i], e->name) == 0)
				is_loaded = true;
		if (!is_loaded && architecture_from_name(e->architecture, &arch) &&
			architecture_can(arch, task))
			names = lappend(names, e->name);
	}
	return names;
}

static CamembertModel *
checked(CamembertModel *m, CamembertTask task)
{
	if (!camembert_model_can(m, task))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" (%s) cannot %s", camembert_printable(m->name),
						cb_architecture_name(m->model.config.architecture), task_description(task)),
				 errhint("Pass the name of a suitable model; camembert_models() lists them.")));
	return m;
}

CamembertModel *
camembert_resolve_model(const char *name, CamembertTask task)
{
	List	   *names;
	ListCell   *lc;
	char	   *found = NULL;
	StringInfoData all;
	int			matches = 0;

	if (name == NULL && camembert_default_model != NULL && camembert_default_model[0] != '\0')
		name = camembert_default_model;
	if (name != NULL)
		return checked(camembert_model_get(name, 0), task);

	names = candidate_names(task);
	initStringInfo(&all);
	foreach(lc, names)
	{
		char	   *n = (char *) lfirst(lc);

		appendStringInfo(&all, "%s%s", matches ? ", " : "", camembert_printable(n));
		found = n;
		matches++;
	}
	if (matches == 1)
		return checked(camembert_model_get(found, 0), task);
	if (matches == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no loaded model can %s", task_description(task)),
				 errhint("Load one with camembert_load(name, path), or pass the model name.")));
	ereport(ERROR,
			(errcode(ERRCODE_AMBIGUOUS_PARAMETER),
			 errmsg("%d models can %s: %s", matches, task_description(task), all.data),
			 errhint("Pass the model name, or set camembert.default_model.")));
	pg_unreachable();
}

/*
 * What a call site resolved, kept in fn_extra for the rest of the statement:
 * a scan of many rows resolves its model once (a NULL model argument costs a
 * look at the registry and the catalog).  Valid while the transaction is the
 * same — a name keeps meaning the same model for a whole transaction, so the
 * cached handle is the one camembert_model_get would return — and the
 * argument (and camembert.default_model, for a NULL one) are unchanged.
 */
typedef struct ResolveCache
{
	uint64		xact;			/* camembert_registry_xact() when resolved */
	CamembertTask task;
	bool		null_arg;
	char		name[NAMEDATALEN];	/* the argument, or camembert.default_model */
	CamembertModel *model;
} ResolveCache;

CamembertModel *
camembert_resolve_model_arg(FunctionCallInfo fcinfo, int argno, CamembertTask task)
{
	char	   *name = NULL;
	bool		null_arg = !(PG_NARGS() > argno && !PG_ARGISNULL(argno));
	const char *key;
	ResolveCache *cache = (ResolveCache *) fcinfo->flinfo->fn_extra;
	CamembertModel *model;

	if (!null_arg)
		name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	key = null_arg ? (camembert_default_model ? camembert_default_model : "") : name;

	if (cache != NULL && cache->xact == camembert_registry_xact() &&
		cache->task == task && cache->null_arg == null_arg &&
		strncmp(cache->name, key, NAMEDATALEN) == 0 &&
		camembert_model_still_valid(cache->model))
		return cache->model;

	model = camembert_resolve_model(name, task);

	if (cache == NULL)
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ResolveCache));
	cache->xact = camembert_registry_xact();
	cache->task = task;
	cache->null_arg = null_arg;
	if (strlen(key) < NAMEDATALEN)
		strlcpy(cache->name, key, NAMEDATALEN);
	else
		cache->xact = 0;		/* such a name never resolves; never cached */
	cache->model = model;
	fcinfo->flinfo->fn_extra = cache;
	return model;
}
