/*
 * torch_pickle.c — the restricted pickle machine for data.pkl (see
 * torch_pickle.h).
 */
#include "torch_pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PICKLE_MAX_STACK	(1u << 20)
#define PICKLE_MAX_MEMO		(1u << 20)

static cb_status
pfail(cb_pickle_vm *vm, size_t at, const char *what)
{
	return cb_set_error(vm->err, CB_ERR_FORMAT, "%s: data.pkl at byte %zu: %s", vm->path, at, what);
}

static cb_pickle_obj *
pnew(cb_pickle_vm *vm, cb_pickle_type t)
{
	cb_pickle_obj	   *o = cb_calloc(1, sizeof(cb_pickle_obj));

	if (o == NULL)
		return NULL;
	o->type = t;
	o->next_alloc = vm->all;
	vm->all = o;
	return o;
}

void
cb_pickle_free(cb_pickle_vm *vm)
{
	cb_pickle_obj	   *o = vm->all;

	while (o != NULL)
	{
		cb_pickle_obj	   *next = o->next_alloc;

		cb_free(o->items);
		cb_free(o);
		o = next;
	}
	vm->all = NULL;
	cb_free(vm->stack);
	cb_free(vm->memo);
}

static bool
push_item(cb_pickle_obj *seq, cb_pickle_obj *item)
{
	if (cb_grow_array((void **) &seq->items, &seq->cap, seq->n + 1, sizeof(cb_pickle_obj *),
					  "data.pkl", NULL) != CB_OK)
		return false;
	seq->items[seq->n++] = item;
	return true;
}

static cb_status
ppush(cb_pickle_vm *vm, cb_pickle_obj *o, size_t at)
{
	if (o == NULL)
		return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory in data.pkl", vm->path);
	if (vm->sp == vm->stack_cap)
	{
		if (vm->sp >= PICKLE_MAX_STACK)
			return pfail(vm, at, "pickle stack too deep");
		if (cb_grow_array((void **) &vm->stack, &vm->stack_cap, vm->sp + 1, sizeof(cb_pickle_obj *),
						  "data.pkl", NULL) != CB_OK)
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory in data.pkl", vm->path);
	}
	cb_assert(vm->sp < vm->stack_cap);
	vm->stack[vm->sp++] = o;
	return CB_OK;
}

/* Index of the topmost MARK, or SIZE_MAX. */
static size_t
find_mark(cb_pickle_vm *vm)
{
	for (size_t i = vm->sp; i-- > 0;)
		if (vm->stack[i]->type == CB_PICKLE_MARK)
			return i;
	return SIZE_MAX;
}

static bool
need(cb_pickle_vm *vm, size_t n)
{
	return vm->len - vm->pos >= n;
}

static cb_status
memo_put(cb_pickle_vm *vm, uint64_t idx, size_t at)
{
	if (vm->sp == 0 || vm->stack[vm->sp - 1]->type == CB_PICKLE_MARK)
		return pfail(vm, at, "memo put with an empty stack");
	if (idx >= PICKLE_MAX_MEMO)
		return pfail(vm, at, "memo index too large");
	if (idx >= vm->memo_cap)
	{
		size_t		old_cap = vm->memo_cap;

		if (cb_grow_array((void **) &vm->memo, &vm->memo_cap, (size_t) idx + 1, sizeof(cb_pickle_obj *),
						  "data.pkl", NULL) != CB_OK)
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory in data.pkl", vm->path);
		/* memo entries not put yet read as NULL (memo_get refuses them) */
		memset(vm->memo + old_cap, 0, (vm->memo_cap - old_cap) * sizeof(cb_pickle_obj *));
	}
	vm->memo[idx] = vm->stack[vm->sp - 1];
	if (idx + 1 > vm->memo_next)
		vm->memo_next = (size_t) idx + 1;
	return CB_OK;
}

static cb_status
memo_get(cb_pickle_vm *vm, uint64_t idx, size_t at)
{
	if (idx >= vm->memo_cap || vm->memo[idx] == NULL)
		return pfail(vm, at, "memo get of an unset index");
	return ppush(vm, vm->memo[idx], at);
}

static const struct
{
	const char *name;
	cb_tensor_dtype dtype;
}			storage_types[] = {
	{"FloatStorage", CB_TENSOR_F32},
	{"HalfStorage", CB_TENSOR_F16},
	{"BFloat16Storage", CB_TENSOR_BF16},
	{"DoubleStorage", CB_TENSOR_F64},
	{"LongStorage", CB_TENSOR_I64},
	{"IntStorage", CB_TENSOR_I32},
	{"ShortStorage", CB_TENSOR_I16},
	{"CharStorage", CB_TENSOR_I8},
	{"ByteStorage", CB_TENSOR_U8},
	{"BoolStorage", CB_TENSOR_BOOL},
};

static bool
str_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static cb_status
make_global(cb_pickle_vm *vm, const char *mod, size_t ml, const char *name, size_t nl, size_t at)
{
	cb_pickle_obj	   *g = pnew(vm, CB_PICKLE_GLOBAL);
	char		msg[200];

	if (g == NULL)
		return ppush(vm, NULL, at);
	if (str_is(mod, ml, "torch._utils") && str_is(name, nl, "_rebuild_tensor_v2"))
		g->global = CB_PICKLE_GLOBAL_REBUILD_TENSOR_V2;
	else if (str_is(mod, ml, "torch._utils") && str_is(name, nl, "_rebuild_parameter"))
		g->global = CB_PICKLE_GLOBAL_REBUILD_PARAMETER;
	else if (str_is(mod, ml, "collections") && str_is(name, nl, "OrderedDict"))
		g->global = CB_PICKLE_GLOBAL_ORDERED_DICT;
	else if (str_is(mod, ml, "torch"))
	{
		for (size_t i = 0; i < sizeof(storage_types) / sizeof(storage_types[0]); i++)
			if (str_is(name, nl, storage_types[i].name))
			{
				g->global = CB_PICKLE_GLOBAL_STORAGE;
				g->dtype = storage_types[i].dtype;
			}
	}
	if (g->global == 0)
	{
		int			a = (int) (ml > 80 ? 80 : ml),
					b = (int) (nl > 80 ? 80 : nl);

		snprintf(msg, sizeof(msg), "global '%.*s.%.*s' is not allowed in a state_dict", a, mod, b, name);
		for (char *c = msg; *c; c++)
			if ((unsigned char) *c < 0x20)
				*c = '?';
		return cb_set_error(vm->err, CB_ERR_UNSUPPORTED, "%s: data.pkl at byte %zu: %s", vm->path, at, msg);
	}
	return ppush(vm, g, at);
}

static bool
is_int_tuple(const cb_pickle_obj *t, int maxn)
{
	if (t->type != CB_PICKLE_TUPLE || t->n > (size_t) maxn)
		return false;
	for (size_t i = 0; i < t->n; i++)
		if (t->items[i]->type != CB_PICKLE_INT)
			return false;
	return true;
}

static cb_status
rebuild_tensor(cb_pickle_vm *vm, cb_pickle_obj *args, size_t at, cb_pickle_obj **out)
{
	cb_pickle_obj	   *storage,
			   *size,
			   *stride,
			   *t;
	int64_t		expect = 1;

	if (args->type != CB_PICKLE_TUPLE || args->n < 4 || args->n > 7)
		return pfail(vm, at, "_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)");
	storage = args->items[0];
	size = args->items[2];
	stride = args->items[3];
	if (storage->type != CB_PICKLE_STORAGE)
		return pfail(vm, at, "_rebuild_tensor_v2: first argument is not a storage");
	if (args->items[1]->type != CB_PICKLE_INT || args->items[1]->i < 0)
		return pfail(vm, at, "_rebuild_tensor_v2: storage offset is not a non-negative integer");
	if (!is_int_tuple(size, CB_TENSOR_MAX_DIMS) || !is_int_tuple(stride, CB_TENSOR_MAX_DIMS) ||
		size->n != stride->n)
		return pfail(vm, at, "_rebuild_tensor_v2: size/stride are not integer tuples of equal length (at most 8)");
	t = pnew(vm, CB_PICKLE_TENSOR);
	if (t == NULL)
		return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory", vm->path);
	t->storage = storage;
	t->dtype = storage->dtype;
	t->offset = args->items[1]->i;
	t->ndim = (int) size->n;
	for (size_t d = 0; d < size->n; d++)
	{
		if (size->items[d]->i < 0)
			return pfail(vm, at, "_rebuild_tensor_v2: negative dimension");
		t->shape[d] = size->items[d]->i;
	}
	/* contiguous, row-major; size-1 dimensions may carry any stride */
	for (size_t d = size->n; d-- > 0;)
	{
		if (t->shape[d] != 1 && stride->items[d]->i != expect)
			return cb_set_error(vm->err, CB_ERR_UNSUPPORTED,
								"%s: data.pkl at byte %zu: non-contiguous tensor (stride %lld in dimension %zu, expected %lld)",
								vm->path, at, (long long) stride->items[d]->i, d, (long long) expect);
		if (__builtin_mul_overflow(expect, t->shape[d] ? t->shape[d] : 1, &expect))
			return pfail(vm, at, "_rebuild_tensor_v2: tensor size overflows");
	}
	*out = t;
	return CB_OK;
}

static cb_status
do_reduce(cb_pickle_vm *vm, size_t at)
{
	cb_pickle_obj	   *args,
			   *fn,
			   *res = NULL;
	cb_status	st;

	if (vm->sp < 2 || vm->stack[vm->sp - 1]->type == CB_PICKLE_MARK || vm->stack[vm->sp - 2]->type == CB_PICKLE_MARK)
		return pfail(vm, at, "REDUCE needs a callable and its arguments");
	args = vm->stack[--vm->sp];
	fn = vm->stack[--vm->sp];
	if (fn->type != CB_PICKLE_GLOBAL || args->type != CB_PICKLE_TUPLE)
		return pfail(vm, at, "REDUCE of something that is not an allowed global");
	switch (fn->global)
	{
		case CB_PICKLE_GLOBAL_REBUILD_TENSOR_V2:
			if ((st = rebuild_tensor(vm, args, at, &res)) != CB_OK)
				return st;
			break;
		case CB_PICKLE_GLOBAL_REBUILD_PARAMETER:
			if (args->n < 1 || args->items[0]->type != CB_PICKLE_TENSOR)
				return pfail(vm, at, "_rebuild_parameter expects a tensor");
			res = args->items[0];
			break;
		case CB_PICKLE_GLOBAL_ORDERED_DICT:
			if (args->n != 0)
				return pfail(vm, at, "OrderedDict() with arguments is not supported");
			res = pnew(vm, CB_PICKLE_DICT);
			break;
		default:
			return pfail(vm, at, "a storage type cannot be called");
	}
	return ppush(vm, res, at);
}

static cb_status
do_persid(cb_pickle_vm *vm, size_t at)
{
	cb_pickle_obj	   *pid,
			   *s;

	if (vm->sp < 1 || vm->stack[vm->sp - 1]->type == CB_PICKLE_MARK)
		return pfail(vm, at, "BINPERSID with an empty stack");
	pid = vm->stack[--vm->sp];
	/* ('storage', <storage type>, key, location, numel) */
	if (pid->type != CB_PICKLE_TUPLE || pid->n != 5 ||
		pid->items[0]->type != CB_PICKLE_STR || !str_is(pid->items[0]->s, pid->items[0]->slen, "storage") ||
		pid->items[1]->type != CB_PICKLE_GLOBAL || pid->items[1]->global != CB_PICKLE_GLOBAL_STORAGE ||
		pid->items[2]->type != CB_PICKLE_STR || pid->items[3]->type != CB_PICKLE_STR ||
		pid->items[4]->type != CB_PICKLE_INT || pid->items[4]->i < 0)
		return pfail(vm, at, "persistent id is not ('storage', type, key, location, numel)");
	if (pid->items[2]->slen == 0 || pid->items[2]->slen > 64 ||
		memchr(pid->items[2]->s, '\0', pid->items[2]->slen) || memchr(pid->items[2]->s, '/', pid->items[2]->slen))
		return pfail(vm, at, "invalid storage key");
	s = pnew(vm, CB_PICKLE_STORAGE);
	if (s != NULL)
	{
		s->dtype = pid->items[1]->dtype;
		s->key = pid->items[2]->s;
		s->keylen = pid->items[2]->slen;
		s->numel = pid->items[4]->i;
	}
	return ppush(vm, s, at);
}

/* Pop everything above the topmost MARK into a new sequence/dict. */
static cb_status
collect_to_mark(cb_pickle_vm *vm, cb_pickle_obj *into, size_t at)
{
	size_t		m = find_mark(vm);

	if (m == SIZE_MAX)
		return pfail(vm, at, "no MARK on the stack");
	for (size_t i = m + 1; i < vm->sp; i++)
		if (!push_item(into, vm->stack[i]))
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory", vm->path);
	vm->sp = m;
	return CB_OK;
}

static cb_status
tuple_n(cb_pickle_vm *vm, size_t n, size_t at)
{
	cb_pickle_obj	   *t = pnew(vm, CB_PICKLE_TUPLE);

	if (t == NULL)
		return ppush(vm, NULL, at);
	if (vm->sp < n)
		return pfail(vm, at, "TUPLE with too few items on the stack");
	for (size_t i = vm->sp - n; i < vm->sp; i++)
	{
		if (vm->stack[i]->type == CB_PICKLE_MARK)
			return pfail(vm, at, "TUPLE over a MARK");
		if (!push_item(t, vm->stack[i]))
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory", vm->path);
	}
	vm->sp -= n;
	return ppush(vm, t, at);
}

cb_status
cb_pickle_run(cb_pickle_vm *vm, cb_pickle_obj **result)
{
	cb_status	st = CB_OK;

	while (vm->pos < vm->len)
	{
		size_t		at = vm->pos;
		unsigned char op = vm->buf[vm->pos++];

		switch (op)
		{
			case 0x80:			/* PROTO */
				if (!need(vm, 1))
					return pfail(vm, at, "truncated PROTO");
				if (vm->buf[vm->pos] < 2 || vm->buf[vm->pos] > 5)
					return cb_set_error(vm->err, CB_ERR_UNSUPPORTED, "%s: data.pkl: pickle protocol %d is not supported",
										vm->path, vm->buf[vm->pos]);
				vm->pos++;
				break;
			case 0x95:			/* FRAME */
				if (!need(vm, 8))
					return pfail(vm, at, "truncated FRAME");
				vm->pos += 8;
				break;
			case '.':			/* STOP */
				if (vm->sp != 1 || vm->stack[0]->type == CB_PICKLE_MARK)
					return pfail(vm, at, "STOP with a stack that does not hold exactly one object");
				*result = vm->stack[0];
				return CB_OK;
			case '(':			/* MARK */
				st = ppush(vm, pnew(vm, CB_PICKLE_MARK), at);
				break;
			case '}':			/* EMPTY_DICT */
				st = ppush(vm, pnew(vm, CB_PICKLE_DICT), at);
				break;
			case ']':			/* EMPTY_LIST */
				st = ppush(vm, pnew(vm, CB_PICKLE_LIST), at);
				break;
			case ')':			/* EMPTY_TUPLE */
				st = ppush(vm, pnew(vm, CB_PICKLE_TUPLE), at);
				break;
			case 't':			/* TUPLE */
			case 'l':			/* LIST */
			case 'd':			/* DICT */
				{
					cb_pickle_obj	   *o = pnew(vm, op == 't' ? CB_PICKLE_TUPLE : op == 'l' ? CB_PICKLE_LIST : CB_PICKLE_DICT);

					if (o == NULL)
						return ppush(vm, NULL, at);
					if ((st = collect_to_mark(vm, o, at)) != CB_OK)
						return st;
					if (op == 'd' && (o->n % 2) != 0)
						return pfail(vm, at, "DICT with an odd number of items");
					st = ppush(vm, o, at);
					break;
				}
			case 0x85:			/* TUPLE1 */
			case 0x86:			/* TUPLE2 */
			case 0x87:			/* TUPLE3 */
				st = tuple_n(vm, (size_t) (op - 0x84), at);
				break;
			case 's':			/* SETITEM */
			case 'u':			/* SETITEMS */
			case 'a':			/* APPEND */
			case 'e':			/* APPENDS */
				{
					size_t		first,
								target;

					if (op == 's' || op == 'a')
					{
						size_t		k = op == 's' ? 2 : 1;

						if (vm->sp < k + 1)
							return pfail(vm, at, "SETITEM/APPEND with too few items");
						first = vm->sp - k;
						target = first - 1;
						for (size_t i = first; i < vm->sp; i++)
							if (vm->stack[i]->type == CB_PICKLE_MARK)
								return pfail(vm, at, "SETITEM/APPEND over a MARK");
					}
					else
					{
						size_t		m = find_mark(vm);

						if (m == SIZE_MAX || m == 0)
							return pfail(vm, at, "SETITEMS/APPENDS without MARK and target");
						first = m + 1;
						target = m - 1;
					}
					{
						cb_pickle_obj	   *tgt = vm->stack[target];

						if ((op == 's' || op == 'u') ? tgt->type != CB_PICKLE_DICT : tgt->type != CB_PICKLE_LIST)
							return pfail(vm, at, "SETITEM(S)/APPEND(S) on the wrong type");
						if ((op == 's' || op == 'u') && ((vm->sp - first) % 2) != 0)
							return pfail(vm, at, "SETITEMS with an odd number of items");
						for (size_t i = first; i < vm->sp; i++)
							if (!push_item(tgt, vm->stack[i]))
								return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory", vm->path);
						vm->sp = target + 1;
					}
					break;
				}
			case 'X':			/* BINUNICODE */
			case 'T':			/* BINSTRING */
			case 0x8c:			/* SHORT_BINUNICODE */
			case 'U':			/* SHORT_BINSTRING */
				{
					size_t		n;
					cb_pickle_obj	   *o;

					if (op == 'X' || op == 'T')
					{
						if (!need(vm, 4))
							return pfail(vm, at, "truncated string length");
						n = cb_read_le32(vm->buf + vm->pos);
						vm->pos += 4;
					}
					else
					{
						if (!need(vm, 1))
							return pfail(vm, at, "truncated string length");
						n = vm->buf[vm->pos++];
					}
					if (!need(vm, n))
						return pfail(vm, at, "string runs past the end of data.pkl");
					o = pnew(vm, CB_PICKLE_STR);
					if (o != NULL)
					{
						o->s = (const char *) vm->buf + vm->pos;
						o->slen = n;
					}
					vm->pos += n;
					st = ppush(vm, o, at);
					break;
				}
			case 'c':			/* GLOBAL "module\nname\n" */
				{
					const char *mod = (const char *) vm->buf + vm->pos;
					const char *nl1 = memchr(mod, '\n', vm->len - vm->pos);
					const char *name;
					const char *nl2;

					if (nl1 == NULL || nl1 - mod > 200)
						return pfail(vm, at, "bad GLOBAL");
					name = nl1 + 1;
					nl2 = memchr(name, '\n', (size_t) ((const char *) vm->buf + vm->len - name));
					if (nl2 == NULL || nl2 - name > 200)
						return pfail(vm, at, "bad GLOBAL");
					vm->pos = (size_t) (nl2 + 1 - (const char *) vm->buf);
					st = make_global(vm, mod, (size_t) (nl1 - mod), name, (size_t) (nl2 - name), at);
					break;
				}
			case 0x93:			/* STACK_GLOBAL */
				{
					cb_pickle_obj	   *mod,
							   *name;

					if (vm->sp < 2)
						return pfail(vm, at, "STACK_GLOBAL needs two strings");
					name = vm->stack[--vm->sp];
					mod = vm->stack[--vm->sp];
					if (mod->type != CB_PICKLE_STR || name->type != CB_PICKLE_STR)
						return pfail(vm, at, "STACK_GLOBAL needs two strings");
					st = make_global(vm, mod->s, mod->slen, name->s, name->slen, at);
					break;
				}
			case 'J':			/* BININT */
			case 'K':			/* BININT1 */
			case 'M':			/* BININT2 */
				{
					size_t		n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
					cb_pickle_obj	   *o;

					if (!need(vm, n))
						return pfail(vm, at, "truncated integer");
					o = pnew(vm, CB_PICKLE_INT);
					if (o != NULL)
						o->i = op == 'J' ? (int64_t) (int32_t) cb_read_le32(vm->buf + vm->pos)
							: op == 'K' ? vm->buf[vm->pos] : cb_read_le16(vm->buf + vm->pos);
					vm->pos += n;
					st = ppush(vm, o, at);
					break;
				}
			case 0x8a:			/* LONG1 */
				{
					size_t		n;
					uint64_t	v = 0;
					cb_pickle_obj	   *o;

					if (!need(vm, 1))
						return pfail(vm, at, "truncated LONG1");
					n = vm->buf[vm->pos++];
					if (n > 8 || !need(vm, n))
						return pfail(vm, at, "LONG1 too long or truncated");
					for (size_t i = 0; i < n; i++)
						v |= (uint64_t) vm->buf[vm->pos + i] << (8 * i);
					if (n > 0 && n < 8 && (vm->buf[vm->pos + n - 1] & 0x80))
						v |= ~(uint64_t) 0 << (8 * n);	/* sign-extend */
					vm->pos += n;
					o = pnew(vm, CB_PICKLE_INT);
					if (o != NULL)
						o->i = (int64_t) v;
					st = ppush(vm, o, at);
					break;
				}
			case 'G':			/* BINFLOAT (big-endian double) */
				{
					uint64_t	bits = 0;
					cb_pickle_obj	   *o;

					if (!need(vm, 8))
						return pfail(vm, at, "truncated BINFLOAT");
					for (int i = 0; i < 8; i++)
						bits = (bits << 8) | vm->buf[vm->pos + i];
					vm->pos += 8;
					o = pnew(vm, CB_PICKLE_FLOAT);
					if (o != NULL)
						memcpy(&o->f, &bits, 8);
					st = ppush(vm, o, at);
					break;
				}
			case 'N':			/* NONE */
				st = ppush(vm, pnew(vm, CB_PICKLE_NONE), at);
				break;
			case 0x88:			/* NEWTRUE */
			case 0x89:			/* NEWFALSE */
				{
					cb_pickle_obj	   *o = pnew(vm, CB_PICKLE_BOOL);

					if (o != NULL)
						o->b = op == 0x88;
					st = ppush(vm, o, at);
					break;
				}
			case 'q':			/* BINPUT */
				if (!need(vm, 1))
					return pfail(vm, at, "truncated BINPUT");
				st = memo_put(vm, vm->buf[vm->pos++], at);
				break;
			case 'r':			/* LONG_BINPUT */
				if (!need(vm, 4))
					return pfail(vm, at, "truncated LONG_BINPUT");
				st = memo_put(vm, cb_read_le32(vm->buf + vm->pos), at);
				vm->pos += 4;
				break;
			case 0x94:			/* MEMOIZE */
				st = memo_put(vm, vm->memo_next, at);
				break;
			case 'h':			/* BINGET */
				if (!need(vm, 1))
					return pfail(vm, at, "truncated BINGET");
				st = memo_get(vm, vm->buf[vm->pos++], at);
				break;
			case 'j':			/* LONG_BINGET */
				if (!need(vm, 4))
					return pfail(vm, at, "truncated LONG_BINGET");
				st = memo_get(vm, cb_read_le32(vm->buf + vm->pos), at);
				vm->pos += 4;
				break;
			case 'Q':			/* BINPERSID */
				st = do_persid(vm, at);
				break;
			case 'R':			/* REDUCE */
				st = do_reduce(vm, at);
				break;
			case 'b':			/* BUILD */
				{
					if (vm->sp < 2 || vm->stack[vm->sp - 1]->type == CB_PICKLE_MARK)
						return pfail(vm, at, "BUILD needs an object and its state");
					/* only OrderedDict state (torch's _metadata) is accepted, and ignored */
					if (vm->stack[vm->sp - 2]->type != CB_PICKLE_DICT)
						return cb_set_error(vm->err, CB_ERR_UNSUPPORTED,
											"%s: data.pkl at byte %zu: BUILD on something other than an OrderedDict",
											vm->path, at);
					vm->sp--;
					break;
				}
			default:
				return cb_set_error(vm->err, CB_ERR_UNSUPPORTED,
									"%s: data.pkl at byte %zu: pickle opcode 0x%02x is not allowed in a state_dict",
									vm->path, at, op);
		}
		if (st != CB_OK)
			return st;
	}
	return pfail(vm, vm->pos, "pickle ends without STOP (truncated?)");
}
