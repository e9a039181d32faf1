/*
 * model_preload.h — the background worker that loads the registered models
 * at server start (camembert.preload, camembert.preload_databases).
 */
#ifndef MODEL_PRELOAD_H
#define MODEL_PRELOAD_H

/* from _PG_init: the GUCs, and the launcher when shared_preload_libraries loads us */
extern void camembert_preload_init(void);

#endif							/* MODEL_PRELOAD_H */
