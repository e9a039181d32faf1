/*
 * torch_bin.c — pytorch_model.bin reader (see torch_bin.h).
 *
 * Two parts: the zip container (central directory → the entries we need,
 * each checked against its local header) and a restricted pickle machine
 * that turns data.pkl into (name → tensor description) without calling
 * anything.
 */
#include "torch_bin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================== */
/* zip                                                                       */
/* ======================================================================== */

typedef struct zip_entry
{
	char	   *name;			/* NUL-terminated copy */
	uint64_t	local_offset;
	uint64_t	size;
	uint32_t	crc;
	uint64_t	data_offset;	/* set once the local header is checked */
	bool		checked;
} zip_entry;

typedef struct zip_archive
{
	const cb_file_reader *r;
	zip_entry  *entries;
	size_t		count;
	uint64_t	cd_offset;		/* entries' data must lie before this */
} zip_archive;

static uint16_t
rd16(const unsigned char *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t
rd32(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static uint64_t
rd64(const unsigned char *p)
{
	return (uint64_t) rd32(p) | ((uint64_t) rd32(p + 4) << 32);
}

static void
zip_free(zip_archive *z)
{
	for (size_t i = 0; i < z->count; i++)
		cb_free(z->entries[i].name);
	cb_free(z->entries);
	z->entries = NULL;
	z->count = 0;
}

static int
zip_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const zip_entry *) a)->name, ((const zip_entry *) b)->name);
}

static zip_entry *
zip_find(zip_archive *z, const char *name)
{
	size_t		lo = 0,
				hi = z->count;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		int			c = strcmp(z->entries[mid].name, name);

		if (c == 0)
			return &z->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

#define EOCD_SIZE 22
#define EOCD_MAX_COMMENT 65535

static cb_status
zip_open(zip_archive *z, const cb_file_reader *r, cb_error *err)
{
	unsigned char *tail = NULL;
	unsigned char *cd = NULL;
	size_t		tail_len;
	uint64_t	tail_start;
	size_t		eocd = SIZE_MAX;
	uint64_t	eocd_abs;
	uint64_t	entries,
				cd_size,
				cd_offset;
	uint64_t	dir_end;		/* where the central directory must end */
	cb_status	st;
	unsigned char sig[4];

	memset(z, 0, sizeof(*z));
	z->r = r;
	if (r->size < 4)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: file of %llu bytes is too short for pytorch_model.bin",
							r->path, (unsigned long long) r->size);
	if ((st = cb_file_reader_read(r, 0, sig, 4, err)) != CB_OK)
		return st;
	if (memcmp(sig, "PK\003\004", 4) != 0)
	{
		if (sig[0] == 0x80)
			return cb_set_error(err, CB_ERR_UNSUPPORTED,
								"%s: legacy (pre-1.6, non-zip) torch.save format is not supported: "
								"re-save the model with a recent PyTorch or as safetensors", r->path);
		return cb_set_error(err, CB_ERR_FORMAT, "%s: not a zip archive (torch.save format expected)", r->path);
	}
	if (r->size < EOCD_SIZE)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: zip archive truncated (no end of central directory)", r->path);

	tail_len = (size_t) (r->size < EOCD_SIZE + EOCD_MAX_COMMENT ? r->size : EOCD_SIZE + EOCD_MAX_COMMENT);
	tail_start = r->size - tail_len;
	tail = cb_malloc(tail_len);
	if (tail == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
	if ((st = cb_file_reader_read(r, tail_start, tail, tail_len, err)) != CB_OK)
		goto done;
	for (size_t i = tail_len - EOCD_SIZE + 1; i-- > 0;)
		if (rd32(tail + i) == 0x06054b50 && rd16(tail + i + 20) == tail_len - i - EOCD_SIZE)
		{
			eocd = i;
			break;
		}
	if (eocd == SIZE_MAX)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip end of central directory not found (truncated file?)",
						  r->path);
		goto done;
	}
	eocd_abs = tail_start + eocd;
	if (rd16(tail + eocd + 4) != 0 || rd16(tail + eocd + 6) != 0 ||
		rd16(tail + eocd + 8) != rd16(tail + eocd + 10))
	{
		st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", r->path);
		goto done;
	}
	entries = rd16(tail + eocd + 10);
	cd_size = rd32(tail + eocd + 12);
	cd_offset = rd32(tail + eocd + 16);
	dir_end = eocd_abs;

	/* ZIP64: a locator just before the end record (torch always writes one) */
	if (eocd_abs >= 20)
	{
		unsigned char loc[20];

		if ((st = cb_file_reader_read(r, eocd_abs - 20, loc, 20, err)) != CB_OK)
			goto done;
		if (rd32(loc) == 0x07064b50)
		{
			unsigned char z64[56];
			uint64_t	z64_off = rd64(loc + 8);

			if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", r->path);
				goto done;
			}
			if (z64_off > eocd_abs - 20 || eocd_abs - 20 - z64_off < 56)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip64 end of central directory offset %llu is out of bounds",
								  r->path, (unsigned long long) z64_off);
				goto done;
			}
			if ((st = cb_file_reader_read(r, z64_off, z64, 56, err)) != CB_OK)
				goto done;
			if (rd32(z64) != 0x06064b50)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: bad zip64 end of central directory signature", r->path);
				goto done;
			}
			if (rd32(z64 + 16) != 0 || rd32(z64 + 20) != 0 || rd64(z64 + 24) != rd64(z64 + 32))
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", r->path);
				goto done;
			}
			entries = rd64(z64 + 32);
			cd_size = rd64(z64 + 40);
			cd_offset = rd64(z64 + 48);
			dir_end = z64_off;
		}
	}
	if (cd_offset > dir_end || cd_size > dir_end - cd_offset)
	{
		st = cb_set_error(err, CB_ERR_FORMAT,
						  "%s: zip central directory [%llu, +%llu) lies outside the file (truncated?)",
						  r->path, (unsigned long long) cd_offset, (unsigned long long) cd_size);
		goto done;
	}
	if (entries > CB_TORCH_MAX_ENTRIES || entries > cd_size / 46)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip central directory claims %llu entries in %llu bytes",
						  r->path, (unsigned long long) entries, (unsigned long long) cd_size);
		goto done;
	}
	z->cd_offset = cd_offset;
	cd = cb_malloc((size_t) cd_size + 1);
	z->entries = cb_calloc((size_t) entries + 1, sizeof(zip_entry));
	if (cd == NULL || z->entries == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory for the zip central directory", r->path);
		goto done;
	}
	if ((st = cb_file_reader_read(r, cd_offset, cd, (size_t) cd_size, err)) != CB_OK)
		goto done;
	{
		size_t		p = 0;

		for (uint64_t i = 0; i < entries; i++)
		{
			zip_entry  *e = &z->entries[z->count];
			uint16_t	flags,
						method,
						nlen,
						xlen,
						clen;
			uint64_t	csize,
						usize,
						loff;
			size_t		x;

			if (cd_size - p < 46 || rd32(cd + p) != 0x02014b50)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip central directory entry %llu is malformed",
								  r->path, (unsigned long long) i);
				goto done;
			}
			flags = rd16(cd + p + 8);
			method = rd16(cd + p + 10);
			e->crc = rd32(cd + p + 16);
			csize = rd32(cd + p + 20);
			usize = rd32(cd + p + 24);
			nlen = rd16(cd + p + 28);
			xlen = rd16(cd + p + 30);
			clen = rd16(cd + p + 32);
			loff = rd32(cd + p + 42);
			if (cd_size - p - 46 < (uint64_t) nlen + xlen + clen)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip central directory entry %llu overruns the directory",
								  r->path, (unsigned long long) i);
				goto done;
			}
			if (nlen == 0 || memchr(cd + p + 46, '\0', nlen) != NULL)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry %llu has an empty or invalid name",
								  r->path, (unsigned long long) i);
				goto done;
			}
			e->name = cb_malloc((size_t) nlen + 1);
			if (e->name == NULL)
			{
				st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
				goto done;
			}
			memcpy(e->name, cd + p + 46, nlen);
			e->name[nlen] = '\0';
			z->count++;
			/* zip64 extra field: the 0xFFFFFFFF fields, in order */
			x = p + 46 + nlen;
			while (x + 4 <= p + 46 + nlen + xlen)
			{
				uint16_t	id = rd16(cd + x),
							sz = rd16(cd + x + 2);
				size_t		q = x + 4;

				if (x + 4 + sz > p + 46 + nlen + xlen)
				{
					st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' has a malformed extra field",
									  r->path, e->name);
					goto done;
				}
				if (id == 0x0001)
				{
					if (usize == 0xFFFFFFFFu)
					{
						if (q + 8 > x + 4 + sz)
							goto bad64;
						usize = rd64(cd + q);
						q += 8;
					}
					if (csize == 0xFFFFFFFFu)
					{
						if (q + 8 > x + 4 + sz)
							goto bad64;
						csize = rd64(cd + q);
						q += 8;
					}
					if (loff == 0xFFFFFFFFu)
					{
						if (q + 8 > x + 4 + sz)
							goto bad64;
						loff = rd64(cd + q);
						q += 8;
					}
				}
				x += 4 + (size_t) sz;
			}
			if (usize == 0xFFFFFFFFu || csize == 0xFFFFFFFFu || loff == 0xFFFFFFFFu)
			{
		bad64:
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' lacks its zip64 sizes", r->path, e->name);
				goto done;
			}
			if (flags & 0x41)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", r->path, e->name);
				goto done;
			}
			if (method != 0)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED,
								  "%s: zip entry '%s' is compressed (method %u); torch.save writes stored entries only",
								  r->path, e->name, method);
				goto done;
			}
			if (csize != usize)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: stored zip entry '%s' has sizes %llu != %llu",
								  r->path, e->name, (unsigned long long) csize, (unsigned long long) usize);
				goto done;
			}
			if (loff >= cd_offset)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' local header offset %llu is past the data area",
								  r->path, e->name, (unsigned long long) loff);
				goto done;
			}
			e->size = usize;
			e->local_offset = loff;
			p += 46 + (size_t) nlen + xlen + clen;
		}
	}
	if (z->count > 1)
		qsort(z->entries, z->count, sizeof(zip_entry), zip_entry_cmp);
	for (size_t i = 1; i < z->count; i++)
		if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' appears twice", r->path, z->entries[i].name);
			goto done;
		}
	st = CB_OK;

done:
	cb_free(tail);
	cb_free(cd);
	if (st != CB_OK)
		zip_free(z);
	return st;
}

/* Check e's local header; sets e->data_offset. */
static cb_status
zip_check_local(zip_archive *z, zip_entry *e, cb_error *err)
{
	unsigned char lh[30];
	size_t		nlen;
	uint64_t	data;
	cb_status	st;
	char	   *name;

	if (e->checked)
		return CB_OK;
	if (e->local_offset > z->cd_offset || z->cd_offset - e->local_offset < 30)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s': local header out of bounds",
							z->r->path, e->name);
	if ((st = cb_file_reader_read(z->r, e->local_offset, lh, 30, err)) != CB_OK)
		return st;
	nlen = rd16(lh + 26);
	if (rd32(lh) != 0x04034b50 || rd16(lh + 8) != 0 || (rd16(lh + 6) & 0x41) || nlen != strlen(e->name))
		return cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s': local header does not match the central directory",
							z->r->path, e->name);
	data = e->local_offset + 30 + nlen + rd16(lh + 28);
	if (data > z->cd_offset || e->size > z->cd_offset - data)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: zip entry '%s': data [%llu, +%llu) runs into the central directory (truncated?)",
							z->r->path, e->name, (unsigned long long) data, (unsigned long long) e->size);
	name = cb_malloc(nlen + 1);
	if (name == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory");
	st = cb_file_reader_read(z->r, e->local_offset + 30, name, nlen, err);
	if (st == CB_OK && memcmp(name, e->name, nlen) != 0)
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s': local header names another file",
						  z->r->path, e->name);
	cb_free(name);
	if (st != CB_OK)
		return st;
	e->data_offset = data;
	e->checked = true;
	return CB_OK;
}

static uint32_t
crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--)
	{
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* ======================================================================== */
/* pickle                                                                    */
/* ======================================================================== */

#define PICKLE_MAX_STACK	(1u << 20)
#define PICKLE_MAX_MEMO		(1u << 20)

typedef enum
{
	G_REBUILD_TENSOR_V2 = 1,
	G_REBUILD_PARAMETER,
	G_ORDERED_DICT,
	G_STORAGE					/* torch.<X>Storage: dtype in the object */
} global_kind;

typedef enum
{
	P_MARK, P_NONE, P_BOOL, P_INT, P_FLOAT, P_STR, P_TUPLE, P_LIST, P_DICT,
	P_GLOBAL, P_STORAGE, P_TENSOR
} pobj_type;

typedef struct pobj pobj;

struct pobj
{
	pobj_type	type;
	pobj	   *next_alloc;		/* every object, for freeing */
	bool		b;
	int64_t		i;
	double		f;
	const char *s;				/* P_STR: into the pickle bytes */
	size_t		slen;
	pobj	  **items;			/* tuple/list items; dict: key, value, key, value ... */
	size_t		n,
				cap;
	global_kind global;
	cb_tensor_dtype dtype;		/* P_GLOBAL storage type, P_STORAGE, P_TENSOR */
	/* P_STORAGE */
	const char *key;
	size_t		keylen;
	int64_t		numel;
	/* P_TENSOR */
	pobj	   *storage;
	int64_t		offset;
	int			ndim;
	int64_t		shape[CB_TENSOR_MAX_DIMS];
};

typedef struct pvm
{
	const unsigned char *buf;
	size_t		len;
	size_t		pos;
	const char *path;
	pobj	   *all;
	pobj	  **stack;
	size_t		sp,
				stack_cap;
	pobj	  **memo;
	size_t		memo_cap;
	size_t		memo_next;		/* for MEMOIZE */
	cb_error   *err;
} pvm;

static cb_status
pfail(pvm *vm, size_t at, const char *what)
{
	return cb_set_error(vm->err, CB_ERR_FORMAT, "%s: data.pkl at byte %zu: %s", vm->path, at, what);
}

static pobj *
pnew(pvm *vm, pobj_type t)
{
	pobj	   *o = cb_calloc(1, sizeof(pobj));

	if (o == NULL)
		return NULL;
	o->type = t;
	o->next_alloc = vm->all;
	vm->all = o;
	return o;
}

static void
pvm_free(pvm *vm)
{
	pobj	   *o = vm->all;

	while (o != NULL)
	{
		pobj	   *next = o->next_alloc;

		cb_free(o->items);
		cb_free(o);
		o = next;
	}
	vm->all = NULL;
	cb_free(vm->stack);
	cb_free(vm->memo);
}

static bool
push_item(pobj *seq, pobj *item)
{
	if (seq->n == seq->cap)
	{
		size_t		ncap = seq->cap ? seq->cap * 2 : 8;
		pobj	  **ni = cb_realloc(seq->items, ncap * sizeof(pobj *));

		if (ni == NULL)
			return false;
		seq->items = ni;
		seq->cap = ncap;
	}
	seq->items[seq->n++] = item;
	return true;
}

static cb_status
ppush(pvm *vm, pobj *o, size_t at)
{
	if (o == NULL)
		return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory in data.pkl", vm->path);
	if (vm->sp == vm->stack_cap)
	{
		size_t		ncap = vm->stack_cap ? vm->stack_cap * 2 : 64;
		pobj	  **ns;

		if (vm->sp >= PICKLE_MAX_STACK)
			return pfail(vm, at, "pickle stack too deep");
		ns = cb_realloc(vm->stack, ncap * sizeof(pobj *));
		if (ns == NULL)
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory in data.pkl", vm->path);
		vm->stack = ns;
		vm->stack_cap = ncap;
	}
	vm->stack[vm->sp++] = o;
	return CB_OK;
}

/* Index of the topmost MARK, or SIZE_MAX. */
static size_t
find_mark(pvm *vm)
{
	for (size_t i = vm->sp; i-- > 0;)
		if (vm->stack[i]->type == P_MARK)
			return i;
	return SIZE_MAX;
}

static bool
need(pvm *vm, size_t n)
{
	return vm->len - vm->pos >= n;
}

static cb_status
memo_put(pvm *vm, uint64_t idx, size_t at)
{
	if (vm->sp == 0 || vm->stack[vm->sp - 1]->type == P_MARK)
		return pfail(vm, at, "memo put with an empty stack");
	if (idx >= PICKLE_MAX_MEMO)
		return pfail(vm, at, "memo index too large");
	if (idx >= vm->memo_cap)
	{
		size_t		ncap = vm->memo_cap ? vm->memo_cap : 64;
		pobj	  **nm;

		while (ncap <= idx)
			ncap *= 2;
		nm = cb_realloc(vm->memo, ncap * sizeof(pobj *));
		if (nm == NULL)
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory in data.pkl", vm->path);
		memset(nm + vm->memo_cap, 0, (ncap - vm->memo_cap) * sizeof(pobj *));
		vm->memo = nm;
		vm->memo_cap = ncap;
	}
	vm->memo[idx] = vm->stack[vm->sp - 1];
	if (idx + 1 > vm->memo_next)
		vm->memo_next = (size_t) idx + 1;
	return CB_OK;
}

static cb_status
memo_get(pvm *vm, uint64_t idx, size_t at)
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
make_global(pvm *vm, const char *mod, size_t ml, const char *name, size_t nl, size_t at)
{
	pobj	   *g = pnew(vm, P_GLOBAL);
	char		msg[200];

	if (g == NULL)
		return ppush(vm, NULL, at);
	if (str_is(mod, ml, "torch._utils") && str_is(name, nl, "_rebuild_tensor_v2"))
		g->global = G_REBUILD_TENSOR_V2;
	else if (str_is(mod, ml, "torch._utils") && str_is(name, nl, "_rebuild_parameter"))
		g->global = G_REBUILD_PARAMETER;
	else if (str_is(mod, ml, "collections") && str_is(name, nl, "OrderedDict"))
		g->global = G_ORDERED_DICT;
	else if (str_is(mod, ml, "torch"))
	{
		for (size_t i = 0; i < sizeof(storage_types) / sizeof(storage_types[0]); i++)
			if (str_is(name, nl, storage_types[i].name))
			{
				g->global = G_STORAGE;
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
is_int_tuple(const pobj *t, int maxn)
{
	if (t->type != P_TUPLE || t->n > (size_t) maxn)
		return false;
	for (size_t i = 0; i < t->n; i++)
		if (t->items[i]->type != P_INT)
			return false;
	return true;
}

static cb_status
rebuild_tensor(pvm *vm, pobj *args, size_t at, pobj **out)
{
	pobj	   *storage,
			   *size,
			   *stride,
			   *t;
	int64_t		expect = 1;

	if (args->type != P_TUPLE || args->n < 4 || args->n > 7)
		return pfail(vm, at, "_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)");
	storage = args->items[0];
	size = args->items[2];
	stride = args->items[3];
	if (storage->type != P_STORAGE)
		return pfail(vm, at, "_rebuild_tensor_v2: first argument is not a storage");
	if (args->items[1]->type != P_INT || args->items[1]->i < 0)
		return pfail(vm, at, "_rebuild_tensor_v2: storage offset is not a non-negative integer");
	if (!is_int_tuple(size, CB_TENSOR_MAX_DIMS) || !is_int_tuple(stride, CB_TENSOR_MAX_DIMS) ||
		size->n != stride->n)
		return pfail(vm, at, "_rebuild_tensor_v2: size/stride are not integer tuples of equal length (at most 8)");
	t = pnew(vm, P_TENSOR);
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
do_reduce(pvm *vm, size_t at)
{
	pobj	   *args,
			   *fn,
			   *res = NULL;
	cb_status	st;

	if (vm->sp < 2 || vm->stack[vm->sp - 1]->type == P_MARK || vm->stack[vm->sp - 2]->type == P_MARK)
		return pfail(vm, at, "REDUCE needs a callable and its arguments");
	args = vm->stack[--vm->sp];
	fn = vm->stack[--vm->sp];
	if (fn->type != P_GLOBAL || args->type != P_TUPLE)
		return pfail(vm, at, "REDUCE of something that is not an allowed global");
	switch (fn->global)
	{
		case G_REBUILD_TENSOR_V2:
			if ((st = rebuild_tensor(vm, args, at, &res)) != CB_OK)
				return st;
			break;
		case G_REBUILD_PARAMETER:
			if (args->n < 1 || args->items[0]->type != P_TENSOR)
				return pfail(vm, at, "_rebuild_parameter expects a tensor");
			res = args->items[0];
			break;
		case G_ORDERED_DICT:
			if (args->n != 0)
				return pfail(vm, at, "OrderedDict() with arguments is not supported");
			res = pnew(vm, P_DICT);
			break;
		default:
			return pfail(vm, at, "a storage type cannot be called");
	}
	return ppush(vm, res, at);
}

static cb_status
do_persid(pvm *vm, size_t at)
{
	pobj	   *pid,
			   *s;

	if (vm->sp < 1 || vm->stack[vm->sp - 1]->type == P_MARK)
		return pfail(vm, at, "BINPERSID with an empty stack");
	pid = vm->stack[--vm->sp];
	/* ('storage', <storage type>, key, location, numel) */
	if (pid->type != P_TUPLE || pid->n != 5 ||
		pid->items[0]->type != P_STR || !str_is(pid->items[0]->s, pid->items[0]->slen, "storage") ||
		pid->items[1]->type != P_GLOBAL || pid->items[1]->global != G_STORAGE ||
		pid->items[2]->type != P_STR || pid->items[3]->type != P_STR ||
		pid->items[4]->type != P_INT || pid->items[4]->i < 0)
		return pfail(vm, at, "persistent id is not ('storage', type, key, location, numel)");
	if (pid->items[2]->slen == 0 || pid->items[2]->slen > 64 ||
		memchr(pid->items[2]->s, '\0', pid->items[2]->slen) || memchr(pid->items[2]->s, '/', pid->items[2]->slen))
		return pfail(vm, at, "invalid storage key");
	s = pnew(vm, P_STORAGE);
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
collect_to_mark(pvm *vm, pobj *into, size_t at)
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
tuple_n(pvm *vm, size_t n, size_t at)
{
	pobj	   *t = pnew(vm, P_TUPLE);

	if (t == NULL)
		return ppush(vm, NULL, at);
	if (vm->sp < n)
		return pfail(vm, at, "TUPLE with too few items on the stack");
	for (size_t i = vm->sp - n; i < vm->sp; i++)
	{
		if (vm->stack[i]->type == P_MARK)
			return pfail(vm, at, "TUPLE over a MARK");
		if (!push_item(t, vm->stack[i]))
			return cb_set_error(vm->err, CB_ERR_NOMEM, "%s: out of memory", vm->path);
	}
	vm->sp -= n;
	return ppush(vm, t, at);
}

static cb_status
run_pickle(pvm *vm, pobj **result)
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
				if (vm->sp != 1 || vm->stack[0]->type == P_MARK)
					return pfail(vm, at, "STOP with a stack that does not hold exactly one object");
				*result = vm->stack[0];
				return CB_OK;
			case '(':			/* MARK */
				st = ppush(vm, pnew(vm, P_MARK), at);
				break;
			case '}':			/* EMPTY_DICT */
				st = ppush(vm, pnew(vm, P_DICT), at);
				break;
			case ']':			/* EMPTY_LIST */
				st = ppush(vm, pnew(vm, P_LIST), at);
				break;
			case ')':			/* EMPTY_TUPLE */
				st = ppush(vm, pnew(vm, P_TUPLE), at);
				break;
			case 't':			/* TUPLE */
			case 'l':			/* LIST */
			case 'd':			/* DICT */
				{
					pobj	   *o = pnew(vm, op == 't' ? P_TUPLE : op == 'l' ? P_LIST : P_DICT);

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
							if (vm->stack[i]->type == P_MARK)
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
						pobj	   *tgt = vm->stack[target];

						if ((op == 's' || op == 'u') ? tgt->type != P_DICT : tgt->type != P_LIST)
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
					pobj	   *o;

					if (op == 'X' || op == 'T')
					{
						if (!need(vm, 4))
							return pfail(vm, at, "truncated string length");
						n = rd32(vm->buf + vm->pos);
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
					o = pnew(vm, P_STR);
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
					pobj	   *mod,
							   *name;

					if (vm->sp < 2)
						return pfail(vm, at, "STACK_GLOBAL needs two strings");
					name = vm->stack[--vm->sp];
					mod = vm->stack[--vm->sp];
					if (mod->type != P_STR || name->type != P_STR)
						return pfail(vm, at, "STACK_GLOBAL needs two strings");
					st = make_global(vm, mod->s, mod->slen, name->s, name->slen, at);
					break;
				}
			case 'J':			/* BININT */
			case 'K':			/* BININT1 */
			case 'M':			/* BININT2 */
				{
					size_t		n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
					pobj	   *o;

					if (!need(vm, n))
						return pfail(vm, at, "truncated integer");
					o = pnew(vm, P_INT);
					if (o != NULL)
						o->i = op == 'J' ? (int64_t) (int32_t) rd32(vm->buf + vm->pos)
							: op == 'K' ? vm->buf[vm->pos] : rd16(vm->buf + vm->pos);
					vm->pos += n;
					st = ppush(vm, o, at);
					break;
				}
			case 0x8a:			/* LONG1 */
				{
					size_t		n;
					uint64_t	v = 0;
					pobj	   *o;

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
					o = pnew(vm, P_INT);
					if (o != NULL)
						o->i = (int64_t) v;
					st = ppush(vm, o, at);
					break;
				}
			case 'G':			/* BINFLOAT (big-endian double) */
				{
					uint64_t	bits = 0;
					pobj	   *o;

					if (!need(vm, 8))
						return pfail(vm, at, "truncated BINFLOAT");
					for (int i = 0; i < 8; i++)
						bits = (bits << 8) | vm->buf[vm->pos + i];
					vm->pos += 8;
					o = pnew(vm, P_FLOAT);
					if (o != NULL)
						memcpy(&o->f, &bits, 8);
					st = ppush(vm, o, at);
					break;
				}
			case 'N':			/* NONE */
				st = ppush(vm, pnew(vm, P_NONE), at);
				break;
			case 0x88:			/* NEWTRUE */
			case 0x89:			/* NEWFALSE */
				{
					pobj	   *o = pnew(vm, P_BOOL);

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
				st = memo_put(vm, rd32(vm->buf + vm->pos), at);
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
				st = memo_get(vm, rd32(vm->buf + vm->pos), at);
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
					if (vm->sp < 2 || vm->stack[vm->sp - 1]->type == P_MARK)
						return pfail(vm, at, "BUILD needs an object and its state");
					/* only OrderedDict state (torch's _metadata) is accepted, and ignored */
					if (vm->stack[vm->sp - 2]->type != P_DICT)
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

/* ======================================================================== */
/* state_dict → tensor list                                                  */
/* ======================================================================== */

static const char *
printable(const char *s, size_t len, char *buf, size_t bufsize)
{
	size_t		n = len < bufsize - 1 ? len : bufsize - 1;

	memcpy(buf, s, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	return buf;
}

cb_status
cb_torch_bin_read(const cb_file_reader *r, uint32_t file_index,
				  cb_tensor_list *list, cb_error *err)
{
	zip_archive z;
	cb_status	st;
	zip_entry  *pkl = NULL;
	char		prefix[256];
	size_t		plen = 0;
	unsigned char *buf = NULL;
	pvm			vm;
	pobj	   *root = NULL;
	char	   *ename = NULL;

	memset(&vm, 0, sizeof(vm));
	if ((st = zip_open(&z, r, err)) != CB_OK)
		return st;

	/* the archive prefix: the one entry named "<prefix>/data.pkl" */
	for (size_t i = 0; i < z.count; i++)
	{
		const char *n = z.entries[i].name;
		const char *slash = strchr(n, '/');

		if (slash != NULL && strcmp(slash, "/data.pkl") == 0)
		{
			if (pkl != NULL)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: more than one data.pkl in the archive", r->path);
				goto done;
			}
			pkl = &z.entries[i];
			plen = (size_t) (slash - n);
		}
	}
	if (pkl == NULL || plen == 0 || plen >= sizeof(prefix) - 16)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: no <archive>/data.pkl entry: not a torch.save file", r->path);
		goto done;
	}
	memcpy(prefix, pkl->name, plen);
	prefix[plen] = '\0';

	/* byte order */
	{
		char		bo_name[300];
		zip_entry  *bo;

		snprintf(bo_name, sizeof(bo_name), "%s/byteorder", prefix);
		bo = zip_find(&z, bo_name);
		if (bo != NULL)
		{
			char		v[16] = {0};

			if ((st = zip_check_local(&z, bo, err)) != CB_OK)
				goto done;
			if (bo->size > 8 ||
				(st = cb_file_reader_read(r, bo->data_offset, v, (size_t) bo->size, err)) != CB_OK ||
				strcmp(v, "little") != 0)
			{
				if (st == CB_OK)
					st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: byteorder is not \"little\"", r->path);
				goto done;
			}
		}
	}

	if ((st = zip_check_local(&z, pkl, err)) != CB_OK)
		goto done;
	if (pkl->size > CB_TORCH_MAX_PICKLE)
	{
		st = cb_set_error(err, CB_ERR_LIMIT, "%s: data.pkl of %llu bytes exceeds the limit of %u",
						  r->path, (unsigned long long) pkl->size, CB_TORCH_MAX_PICKLE);
		goto done;
	}
	buf = cb_malloc((size_t) pkl->size + 1);
	if (buf == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
		goto done;
	}
	if ((st = cb_file_reader_read(r, pkl->data_offset, buf, (size_t) pkl->size, err)) != CB_OK)
		goto done;
	if (crc32_update(0, buf, (size_t) pkl->size) != pkl->crc)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: data.pkl fails its CRC check (corrupt file)", r->path);
		goto done;
	}

	vm.buf = buf;
	vm.len = (size_t) pkl->size;
	vm.path = r->path;
	vm.err = err;
	if ((st = run_pickle(&vm, &root)) != CB_OK)
		goto done;
	if (root->type != P_DICT)
	{
		st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: data.pkl does not hold a state_dict (a dict of tensors)",
						  r->path);
		goto done;
	}
	ename = cb_malloc(plen + 6 + 65 + 1);
	if (ename == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
		goto done;
	}
	for (size_t i = 0; i + 1 < root->n; i += 2)
	{
		pobj	   *k = root->items[i],
				   *t = root->items[i + 1];
		cb_tensor_info info;
		char		nm[CB_TENSOR_MAX_NAME + 1];
		zip_entry  *e;
		size_t		esz;
		uint64_t	numel = 1,
					need_elems;

		if (k->type != P_STR || k->slen == 0 || k->slen > CB_TENSOR_MAX_NAME || memchr(k->s, '\0', k->slen))
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "%s: state_dict key %zu is not a valid tensor name", r->path, i / 2);
			goto done;
		}
		memcpy(nm, k->s, k->slen);
		nm[k->slen] = '\0';
		if (t->type != P_TENSOR)
		{
			char		pb[160];

			st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: state_dict entry '%s' is not a tensor",
							  r->path, printable(nm, k->slen, pb, sizeof(pb)));
			goto done;
		}
		memset(&info, 0, sizeof(info));
		info.name = nm;
		info.dtype = t->dtype;
		info.ndim = t->ndim;
		memcpy(info.shape, t->shape, sizeof(info.shape));
		for (int d = 0; d < t->ndim; d++)
			if (__builtin_mul_overflow(numel, (uint64_t) t->shape[d], &numel))
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': size overflows", r->path, nm);
				goto done;
			}
		esz = cb_tensor_dtype_size(t->dtype);
		memcpy(ename, prefix, plen);
		memcpy(ename + plen, "/data/", 6);
		memcpy(ename + plen + 6, t->storage->key, t->storage->keylen);
		ename[plen + 6 + t->storage->keylen] = '\0';
		e = zip_find(&z, ename);
		if (e == NULL)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': storage entry '%s' is missing", r->path, nm, ename);
			goto done;
		}
		if ((st = zip_check_local(&z, e, err)) != CB_OK)
			goto done;
		if ((uint64_t) t->storage->numel > UINT64_MAX / esz || e->size != (uint64_t) t->storage->numel * esz)
		{
			st = cb_set_error(err, CB_ERR_FORMAT,
							  "%s: tensor '%s': storage '%s' holds %llu bytes, not %lld elements of %zu bytes",
							  r->path, nm, ename, (unsigned long long) e->size, (long long) t->storage->numel, esz);
			goto done;
		}
		if (__builtin_add_overflow(numel, (uint64_t) t->offset, &need_elems) ||
			(numel > 0 && need_elems > (uint64_t) t->storage->numel))
		{
			st = cb_set_error(err, CB_ERR_FORMAT,
							  "%s: tensor '%s': offset %lld + %llu elements exceed its storage of %lld elements",
							  r->path, nm, (long long) t->offset, (unsigned long long) numel,
							  (long long) t->storage->numel);
			goto done;
		}
		info.numel = numel;
		info.nbytes = numel * esz;
		info.offset = e->data_offset + (numel > 0 ? (uint64_t) t->offset * esz : 0);
		info.file = file_index;
		info.storage = (int64_t) (e - z.entries);
		if ((st = cb_tensor_list_add(list, &info, err)) != CB_OK)
			goto done;
	}
	st = CB_OK;

done:
	cb_free(ename);
	pvm_free(&vm);
	cb_free(buf);
	zip_free(&z);
	return st;
}
