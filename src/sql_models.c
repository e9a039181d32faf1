/*
 * sql_models.c — SQL functions that load, unload and list models.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "camembert.h"
#include "config.h"
#include "model_image.h"
#include "model_registry.h"
#include "sql_classify.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_load);
Datum
camembert_load(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(1));

	/* camembert_load(name, path) of versions 0.1 and 0.2 (not yet updated): auto */
	char	   *dtype = PG_NARGS() > 2 ? text_to_cstring(PG_GETARG_TEXT_PP(2)) : NULL;

	camembert_registry_load(name, path, dtype);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(camembert_unload);
Datum
camembert_unload(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(camembert_registry_unload(name));
}

/* Task name as Hugging Face pipelines call it. */
const char *
camembert_task_name(const cb_config *config)
{
	switch (config->architecture)
	{
		case CB_ARCH_MASKED_LM:
			return "fill-mask";
		case CB_ARCH_CAUSAL_LM:
			return "text-generation";
		case CB_ARCH_ENCODER:
			return "feature-extraction";
		case CB_ARCH_SEQUENCE_CLASSIFICATION:
			switch (config->problem_type)
			{
				case CB_PROBLEM_REGRESSION:
					return "regression";
				case CB_PROBLEM_MULTI_LABEL:
					return "multi-label-classification";
				default:
					return "text-classification";
			}
	}
	return "unknown";
}

PG_FUNCTION_INFO_V1(camembert_loaded_models);
Datum
camembert_loaded_models(PG_FUNCTION_ARGS)
{
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	int			count;
	char	  **names;

	store = camembert_srf_begin(fcinfo, &tupdesc);
	names = camembert_registry_loaded_names(&count);
	for (int i = 0; i < count; i++)
	{
		CamembertModel *m = camembert_model_get(names[i], MODEL_GET_MISSING_OK | MODEL_GET_NO_AUTOLOAD |
												MODEL_GET_ANY_REGISTRATION);
		Datum		values[9];
		bool		nulls[9] = {0};
		const cb_config *cfg;

		if (m == NULL)
			continue;			/* unloaded meanwhile */
		cfg = &m->model.config;
		values[0] = PointerGetDatum(camembert_db_string_to_text(m->name, "name", m->name));
		values[1] = PointerGetDatum(camembert_db_string_to_text(m->path, "path", m->name));
		values[2] = CStringGetTextDatum(cb_architecture_name(cfg->architecture));
		values[3] = CStringGetTextDatum(camembert_task_name(cfg));
		if (m->model.labels != NULL && cfg->num_labels > 0)
		{
			Datum	   *elems = palloc(sizeof(Datum) * cfg->num_labels);

			for (int j = 0; j < cfg->num_labels; j++)
				elems[j] = PointerGetDatum(camembert_label_text(m, j));
			values[4] = PointerGetDatum(construct_array(elems, cfg->num_labels, TEXTOID, -1, false, TYPALIGN_INT));
		}
		else
			nulls[4] = true;
		values[5] = Int64GetDatum((int64) cb_model_parameter_count(&m->model));
		values[6] = Int64GetDatum((int64) m->segment_size);
		values[7] = CStringGetTextDatum(cb_dtype_name(cfg->stored_dtype));
		/* precision: from version 0.3 on (heap_form_tuple reads tupdesc->natts values) */
		values[8] = CStringGetTextDatum(cb_precision_name(cfg->precision));
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}
