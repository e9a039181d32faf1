/*
 * camembert.c — module initialisation: GUCs, the core's allocation and
 * interrupt hooks, error mapping.
 */
#include "postgres.h"

#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memdebug.h"
#include "utils/memutils.h"

#include "camembert.h"
#include "model_preload.h"
#include "model_registry.h"
#include "model_stats.h"
#include "sql_support.h"

PG_MODULE_MAGIC;

int			camembert_threads = 1;
char	   *camembert_default_model = NULL;
char	   *camembert_model_dir = NULL;
int			camembert_max_new_tokens = 256;
int			camembert_max_threads = 1;

void		_PG_init(void);

/*
 * The core allocates through these: memory belongs to the current memory
 * context, so an ERROR raised while core code is on the stack (from
 * CHECK_FOR_INTERRUPTS in the interrupt hook) frees everything.  They never
 * raise an ERROR themselves: on failure they return NULL and the core
 * reports CB_ERR_NOMEM (cb_common.h, rule 2), after closing whatever file it
 * holds open.  palloc's request size check (elog ERROR over
 * MaxAllocHugeSize) is done here first for the same reason.
 */
static void *
core_alloc(size_t size)
{
	if (size == 0)
		size = 1;
	if (!AllocHugeSizeIsValid(size))
		return NULL;
	return MemoryContextAllocExtended(CurrentMemoryContext, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/*
 * repalloc_huge() without the ERROR: PostgreSQL 15 has no
 * repalloc_extended(MCXT_ALLOC_NO_OOM), so do what repalloc does (and what
 * PostgreSQL 16's repalloc_extended does with that flag) but return NULL
 * where it would ereport.  The block stays in its own context; on failure
 * the old block is left as it was, as realloc(3) does.
 */
static void *
core_realloc(void *ptr, size_t size)
{
#if PG_VERSION_NUM >= 160000
	if (size == 0)
		size = 1;
	if (!AllocHugeSizeIsValid(size))
		return NULL;
	return repalloc_extended(ptr, size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
#else
	MemoryContext context = GetMemoryChunkContext(ptr);
	void	   *ret;

	if (size == 0)
		size = 1;
	if (!AllocHugeSizeIsValid(size))
		return NULL;
	Assert(!context->isReset);
	ret = context->methods->realloc(context, ptr, size);
	if (ret == NULL)
		return NULL;
	VALGRIND_MEMPOOL_CHANGE(context, ptr, ret, size);
	return ret;
#endif
}

static void
core_free(void *ptr)
{
	pfree(ptr);
}

static void
core_check_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

const cb_allocator camembert_core_allocator = {core_alloc, core_realloc, core_free};

void
camembert_report_core_error(const cb_error *err, const char *context, const char *hint)
{
	int			code;

	/* a path or a string of the model files: never invalid text in a message */
	const char *message = camembert_printable(err->message);

	if (err->status == CB_ERR_IO && err->sys_errno != 0)
	{
		/* errcode_for_file_access() reads errno and must run inside ereport */
		errno = err->sys_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 context ? errmsg("%s: %s", context, message) : errmsg("%s", message),
				 hint ? errhint("%s", hint) : 0));
	}
	switch (err->status)
	{
		case CB_ERR_IO:
			code = ERRCODE_IO_ERROR;
			break;
		case CB_ERR_FORMAT:
			code = ERRCODE_DATA_CORRUPTED;
			break;
		case CB_ERR_UNSUPPORTED:
			code = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case CB_ERR_NOMEM:
			code = ERRCODE_OUT_OF_MEMORY;
			break;
		case CB_ERR_LIMIT:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case CB_ERR_ACCESS:
			code = ERRCODE_INSUFFICIENT_PRIVILEGE;
			break;
		case CB_ERR_CANCELED:
			/* a stop check that said stop: not PostgreSQL's, which throws (compute_context.c) */
			code = ERRCODE_QUERY_CANCELED;
			break;
		case CB_ERR_INVALID:
		default:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
	}
	ereport(ERROR,
			(errcode(code),
			 context ? errmsg("%s: %s", context, message) : errmsg("%s", message),
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

static int
cores_online(void)
{
	long		n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (n > 1024 ? 1024 : (int) n);
}

void
_PG_init(void)
{
	cb_set_allocator(&camembert_core_allocator);
	cb_set_interrupt_hook(core_check_interrupts);

	DefineCustomIntVariable("camembert.threads",
							"Number of threads a backend uses for one forward pass.",
							"Each backend runs its own helper threads (they only compute; OpenBLAS's where the CPU has no AVX2); with parallel query, every worker uses this many.  At most camembert.max_threads.",
							&camembert_threads,
							1, 1, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	camembert_max_threads = cores_online();
	DefineCustomIntVariable("camembert.max_threads",
							"Upper bound on camembert.threads.",
							"The default is the number of cores of the server.",
							&camembert_max_threads,
							cores_online(), 1, 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("camembert.default_model",
							   "Model used when a function's model argument is NULL.",
							   "When empty, the one loaded model that can do the task is used.",
							   &camembert_default_model,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("camembert.model_dir",
							   "If set, camembert_load only reads model directories below this directory.",
							   NULL,
							   &camembert_model_dir,
							   "",
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("camembert.max_new_tokens",
							"Upper bound on max_new_tokens for camembert_generate.",
							NULL,
							&camembert_max_new_tokens,
							256, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	camembert_registry_init();
	camembert_stats_init();
	camembert_preload_init();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("camembert");
#else
	EmitWarningsOnPlaceholders("camembert");
#endif
}

/* default_version of camembert.control, passed by the Makefile */
#ifndef CAMEMBERT_VERSION
#error "CAMEMBERT_VERSION is not defined: build with the Makefile (it reads camembert.control)"
#endif

PG_FUNCTION_INFO_V1(camembert_version);
Datum
camembert_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CAMEMBERT_VERSION));
}
