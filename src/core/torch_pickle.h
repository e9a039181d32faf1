/*
 * torch_pickle.h — the restricted pickle machine that reads data.pkl of a
 * torch.save state_dict into (name -> tensor description) objects, without
 * executing anything.
 *
 * A small stack machine that understands only what a state_dict needs
 * (protocols 2–5): PROTO, FRAME, STOP, MARK, EMPTY_DICT/LIST/TUPLE, DICT,
 * LIST, TUPLE, TUPLE1/2/3, SETITEM(S), APPEND(S), (SHORT_)BINUNICODE,
 * (SHORT_)BINSTRING, BININT(1/2), LONG1, BINFLOAT, NONE, NEWTRUE/NEWFALSE,
 * (LONG_)BINPUT, (LONG_)BINGET, MEMOIZE, GLOBAL / STACK_GLOBAL, BINPERSID,
 * REDUCE and BUILD.  GLOBAL is accepted only for a fixed list of names
 * (torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
 * collections.OrderedDict, torch.<Type>Storage); REDUCE only applies those
 * (nothing is ever called: a rebuild yields a tensor description); BUILD
 * only sets state on an OrderedDict (ignored: torch's _metadata).  Anything
 * else is rejected (CB_ERR_FORMAT / CB_ERR_UNSUPPORTED) with a message
 * naming the opcode and its offset.  The stack, memo, and every string are
 * bounded.
 *
 * A storage (BINPERSID) is (key, dtype, element count); a tensor (a rebuild)
 * is (storage, storage offset, shape), contiguous (row-major strides; size-1
 * dimensions may have any stride).  Checking it against the zip entry of
 * its storage is the caller's (torch_bin.c).
 */
#ifndef CB_TORCH_PICKLE_H
#define CB_TORCH_PICKLE_H

#include "safetensors.h"

/* What a GLOBAL names (the only callables a pickle may refer to). */
typedef enum
{
	CB_PICKLE_GLOBAL_REBUILD_TENSOR_V2 = 1,
	CB_PICKLE_GLOBAL_REBUILD_PARAMETER,
	CB_PICKLE_GLOBAL_ORDERED_DICT,
	CB_PICKLE_GLOBAL_STORAGE	/* torch.<X>Storage: dtype in the object */
} cb_pickle_global;

/* An object on the stack: what it holds. */
typedef enum
{
	CB_PICKLE_MARK, CB_PICKLE_NONE, CB_PICKLE_BOOL, CB_PICKLE_INT, CB_PICKLE_FLOAT,
	CB_PICKLE_STR, CB_PICKLE_TUPLE, CB_PICKLE_LIST, CB_PICKLE_DICT,
	CB_PICKLE_GLOBAL, CB_PICKLE_STORAGE, CB_PICKLE_TENSOR
} cb_pickle_type;

typedef struct cb_pickle_obj cb_pickle_obj;

struct cb_pickle_obj
{
	cb_pickle_type type;
	cb_pickle_obj *next_alloc;		/* every object, for freeing */
	bool		b;
	int64_t		i;
	double		f;
	const char *s;				/* CB_PICKLE_STR: into the pickle bytes */
	size_t		slen;
	cb_pickle_obj **items;			/* tuple/list items; dict: key, value, key, value ... */
	size_t		n,
				cap;
	cb_pickle_global global;
	cb_tensor_dtype dtype;		/* CB_PICKLE_GLOBAL storage type, CB_PICKLE_STORAGE, CB_PICKLE_TENSOR */
	/* CB_PICKLE_STORAGE */
	const char *key;
	size_t		keylen;
	int64_t		numel;
	/* CB_PICKLE_TENSOR */
	cb_pickle_obj *storage;
	int64_t		offset;
	int			ndim;
	int64_t		shape[CB_TENSOR_MAX_DIMS];
};

/* The machine: zero it before cb_pickle_run; cb_pickle_free frees every object it made. */
typedef struct cb_pickle_vm
{
	const unsigned char *buf;
	size_t		len;
	size_t		pos;
	const char *path;
	cb_pickle_obj *all;
	cb_pickle_obj **stack;
	size_t		sp,
				stack_cap;
	cb_pickle_obj **memo;
	size_t		memo_cap;
	size_t		memo_next;		/* for MEMOIZE */
	cb_error   *err;
} cb_pickle_vm;

/*
 * Run the pickle held in vm->buf[0..vm->len) (vm zeroed, then buf, len,
 * path — for messages — and err set) up to its STOP; *result is the object
 * on top of the stack then.  Strings point into vm->buf, which must outlive
 * the objects.  Objects live until cb_pickle_free(vm), which must be called
 * whatever this returns.
 */
cb_status	cb_pickle_run(cb_pickle_vm *vm, cb_pickle_obj **result);

/* Free every object, the stack and the memo of vm. */
void		cb_pickle_free(cb_pickle_vm *vm);

#endif							/* CB_TORCH_PICKLE_H */
