/*
 * sql_trigger.c — camembert_label_trigger: label rows as they are written.
 *
 *   CREATE TRIGGER label BEFORE INSERT OR UPDATE ON posts FOR EACH ROW
 *     EXECUTE FUNCTION camembert_label_trigger('body', 'label' [, 'model' [, 'score']]);
 *
 * Classifies NEW.<source> and writes the top label into NEW.<target> and, if
 * given, its score into NEW.<score> (float8 or real, or a domain over one).  A
 * NULL source gives NULL label and score.  On UPDATE, rows whose source did not
 * change are left as they are (no forward pass).
 *
 * The target is text, varchar(n), char(n) (any string type) or a domain over
 * one.  The label, in the database encoding, goes through the column type's
 * input function with the column's typmod, as INSERT ... VALUES ('label')
 * does: an over-long label for varchar(n) is the same ERROR 22001, char(n)
 * pads it, and a domain's constraints are checked (the score's too).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "camembert.h"
#include "model_resolve.h"
#include "model_stats.h"
#include "sql_classify.h"
#include "sql_support.h"

PG_FUNCTION_INFO_V1(camembert_label_trigger);

static int
column_number(Relation rel, const char *name, const char *role, Oid *type)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("camembert_label_trigger: %s column \"%s\" does not exist in table \"%s\"",
						role, name, RelationGetRelationName(rel)),
				 errhint("The trigger's arguments are (source column, target column [, model [, score column]]).")));
	*type = SPI_gettypeid(RelationGetDescr(rel), attnum);
	return attnum;
}

/* text, varchar, char(n), name, citext, ...: a string type, or a domain over one */
static bool
is_string_type(Oid type)
{
	char		category;
	bool		preferred;

	get_type_category_preferred(getBaseType(type), &category, &preferred);
	return category == TYPCATEGORY_STRING;
}

Datum
camembert_label_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	Relation	rel;
	HeapTuple	tuple;
	int			src_col;
	int			dst_col;
	int			score_col = 0;
	Oid			type;
	Oid			dst_type;
	int32		dst_typmod;
	Oid			dst_input;
	Oid			dst_ioparam;
	FmgrInfo	dst_finfo;
	char	   *label = NULL;
	Oid			score_domain = InvalidOid;
	Oid			score_type = InvalidOid;
	bool		isnull;
	Datum		source;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2];
	int			ncols;
	CamembertModel *model;
	const char *model_name = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("camembert_label_trigger must be called as a trigger")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("camembert_label_trigger must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));

	trigger = trigdata->tg_trigger;
	rel = trigdata->tg_relation;
	if (trigger->tgnargs < 2 || trigger->tgnargs > 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("camembert_label_trigger takes 2 to 4 arguments, not %d", trigger->tgnargs),
				 errhint("(source column, target column [, model [, score column]])")));

	src_col = column_number(rel, trigger->tgargs[0], "source", &type);
	type = getBaseType(type);
	if (type != TEXTOID && type != VARCHAROID && type != BPCHAROID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("camembert_label_trigger: source column \"%s\" must be of type text", trigger->tgargs[0]),
				 errhint("Classify a text, varchar or char column.")));
	dst_col = column_number(rel, trigger->tgargs[1], "target", &dst_type);
	if (!is_string_type(dst_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("camembert_label_trigger: target column \"%s\" must be of type text", trigger->tgargs[1]),
				 errhint("Write the label into a text, varchar(n) or char(n) column, or a domain over one.")));
	dst_typmod = TupleDescAttr(RelationGetDescr(rel), dst_col - 1)->atttypmod;
	if (trigger->tgnargs >= 3 && trigger->tgargs[2][0] != '\0')
		model_name = trigger->tgargs[2];
	if (trigger->tgnargs == 4)
	{
		score_col = column_number(rel, trigger->tgargs[3], "score", &score_domain);
		score_type = getBaseType(score_domain);
		if (score_type != FLOAT8OID && score_type != FLOAT4OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("camembert_label_trigger: score column \"%s\" must be of type float8 or real",
							trigger->tgargs[3])));
	}

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	source = heap_getattr(tuple, src_col, RelationGetDescr(rel), &isnull);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		bool		oldnull;
		Datum		old = heap_getattr(trigdata->tg_trigtuple, src_col, RelationGetDescr(rel), &oldnull);

		if (oldnull == isnull && (isnull || datumIsEqual(old, source, false, -1)))
			return PointerGetDatum(tuple);	/* source unchanged: keep the label */
	}

	cols[0] = dst_col;
	cols[1] = score_col;
	ncols = score_col ? 2 : 1;
	if (isnull)
	{
		nulls[1] = true;
		values[1] = (Datum) 0;
	}
	else
	{
		int			num_labels;
		float	   *logits;
		double	   *scores;
		int			best;
		text	   *input = DatumGetTextPP(source);
		int64		tokens;
		instr_time	start;

		camembert_stat_start(&start);
		model = camembert_resolve_model(model_name, TASK_CLASSIFY);
		num_labels = model->model.config.num_labels;
		logits = palloc(sizeof(float) * num_labels);
		scores = palloc(sizeof(double) * num_labels);
		tokens = camembert_classify_texts(model, &input, 1, logits);
		camembert_apply_score_function(camembert_default_score_function(model), logits, num_labels, scores);
		best = camembert_argmax(scores, num_labels);
		label = camembert_label_cstring(model, best);
		camembert_stat_call(model->name, 1, tokens, &start);
		nulls[1] = false;
		values[1] = score_type == FLOAT4OID ? Float4GetDatum((float4) scores[best]) : Float8GetDatum(scores[best]);
	}

	/* the label (or NULL) as the column's type and typmod: as INSERT would store it */
	getTypeInputInfo(dst_type, &dst_input, &dst_ioparam);
	fmgr_info(dst_input, &dst_finfo);
	values[0] = InputFunctionCall(&dst_finfo, label, dst_ioparam, dst_typmod);
	nulls[0] = label == NULL;
	if (score_col && score_domain != score_type)
	{
		void	   *extra = NULL;

		domain_check(values[1], nulls[1], score_domain, &extra, CurrentMemoryContext);
	}
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, RelationGetDescr(rel), ncols, cols, values, nulls));
}
