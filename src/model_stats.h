/*
 * model_stats.h — per-model usage statistics in shared memory
 * (camembert_stat_models, camembert_stat_reset).
 *
 * Entries are keyed by (model name, user, database).  An inference function
 * calls camembert_stat_start() on entry and camembert_stat_call() once it has
 * its result; the registry calls camembert_stat_load() when it loads a model.
 * All three do nothing when camembert.track is off or the library was not
 * preloaded.  A call that raises an ERROR is not counted.
 */
#ifndef MODEL_STATS_H
#define MODEL_STATS_H

#include "postgres.h"

#include "portability/instr_time.h"

extern bool camembert_stat_track;	/* camembert.track */
extern int	camembert_stat_max;		/* camembert.stat_max */

/* from _PG_init: the GUCs, and the shared memory hooks when preloading */
extern void camembert_stats_init(void);

/* the clock at the start of a call (left zero when tracking is off) */
static inline void
camembert_stat_start(instr_time *start)
{
	if (camembert_stat_track)
		INSTR_TIME_SET_CURRENT(*start);
	else
		INSTR_TIME_SET_ZERO(*start);
}

/* one SQL call of model `name`: n_texts texts, n_tokens input (+ generated) tokens */
extern void camembert_stat_call(const char *name, int64 n_texts, int64 n_tokens,
								const instr_time *start);

/* model `name` was loaded into shared memory by this backend */
extern void camembert_stat_load(const char *name);

#endif							/* MODEL_STATS_H */
