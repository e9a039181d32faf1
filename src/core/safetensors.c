/*
 * safetensors.c — safetensors headers, shard indexes, tensor lists and file
 * readers (see safetensors.h).
 */
#include "safetensors.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- dtypes --------------------------------------------------------------- */

static const struct
{
	const char *name;
	size_t		size;
}			dtype_table[] = {
	[CB_TENSOR_F32] = {"F32", 4},
	[CB_TENSOR_F16] = {"F16", 2},
	[CB_TENSOR_BF16] = {"BF16", 2},
	[CB_TENSOR_F64] = {"F64", 8},
	[CB_TENSOR_I64] = {"I64", 8},
	[CB_TENSOR_I32] = {"I32", 4},
	[CB_TENSOR_I16] = {"I16", 2},
	[CB_TENSOR_I8] = {"I8", 1},
	[CB_TENSOR_U8] = {"U8", 1},
	[CB_TENSOR_BOOL] = {"BOOL", 1},
	[CB_TENSOR_F8_E4M3] = {"F8_E4M3", 1},
	[CB_TENSOR_F8_E5M2] = {"F8_E5M2", 1},
	[CB_TENSOR_U16] = {"U16", 2},
	[CB_TENSOR_U32] = {"U32", 4},
	[CB_TENSOR_U64] = {"U64", 8},
};

#define NUM_DTYPES (sizeof(dtype_table) / sizeof(dtype_table[0]))

const char *
cb_tensor_dtype_name(cb_tensor_dtype dtype)
{
	return (unsigned) dtype < NUM_DTYPES ? dtype_table[dtype].name : "?";
}

size_t
cb_tensor_dtype_size(cb_tensor_dtype dtype)
{
	return (unsigned) dtype < NUM_DTYPES ? dtype_table[dtype].size : 0;
}

const char *
cb_tensor_shape_string(const int64_t *shape, int ndim, char *buf, size_t bufsize)
{
	size_t		o = 0;

	if (bufsize == 0)
		return buf;
	buf[0] = '\0';
	o += (size_t) snprintf(buf + o, bufsize - o, "[");
	for (int i = 0; i < ndim && o < bufsize; i++)
		o += (size_t) snprintf(buf + o, bufsize - o, "%s%lld", i ? ", " : "", (long long) shape[i]);
	if (o < bufsize)
		snprintf(buf + o, bufsize - o, "]");
	return buf;
}

/* ---- tensor lists ------------------------------------------------------- */

cb_status
cb_tensor_list_add(cb_tensor_list *list, const cb_tensor_info *t, cb_error *err)
{
	size_t		nlen = strlen(t->name);
	char	   *name;

	if (cb_grow_array((void **) &list->tensors, &list->capacity, list->count + 1,
					  sizeof(cb_tensor_info), "tensor list", NULL) != CB_OK)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory for the tensor list");
	name = cb_malloc(nlen + 1);
	if (name == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory for the tensor list");
	memcpy(name, t->name, nlen + 1);
	list->tensors[list->count] = *t;
	list->tensors[list->count].name = name;
	list->count++;
	list->sorted = false;
	return CB_OK;
}

static int
tensor_name_cmp(const void *a, const void *b)
{
	return strcmp(((const cb_tensor_info *) a)->name, ((const cb_tensor_info *) b)->name);
}

cb_status
cb_tensor_list_finish(cb_tensor_list *list, const char *what, cb_error *err)
{
	if (list->count > 1)
		qsort(list->tensors, list->count, sizeof(cb_tensor_info), tensor_name_cmp);
	for (size_t i = 1; i < list->count; i++)
		if (strcmp(list->tensors[i - 1].name, list->tensors[i].name) == 0)
		{
			char		buf[160];

			return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s' is present twice", what,
								cb_printable(list->tensors[i].name, strlen(list->tensors[i].name),
										  buf, sizeof(buf)));
		}
	list->sorted = true;
	return CB_OK;
}

const cb_tensor_info *
cb_tensor_list_find(const cb_tensor_list *list, const char *name)
{
	size_t		lo = 0,
				hi = list->count;

	if (!list->sorted)
	{
		for (size_t i = 0; i < list->count; i++)
			if (strcmp(list->tensors[i].name, name) == 0)
				return &list->tensors[i];
		return NULL;
	}
	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		int			c = strcmp(list->tensors[mid].name, name);

		if (c == 0)
			return &list->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void
cb_tensor_list_free(cb_tensor_list *list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++)
		cb_free(list->tensors[i].name);
	cb_free(list->tensors);
	list->tensors = NULL;
	list->count = list->capacity = 0;
	list->sorted = false;
}

/* ---- readers -------------------------------------------------------------- */

cb_status
cb_file_reader_open(cb_file_reader *r, const char *path, const char *root, cb_error *err)
{
	cb_status	st;

	r->path = path;
	r->fd = -1;
	r->data = NULL;
	r->size = 0;
	st = cb_file_open(path, root, &r->fd, &r->size, err);
	if (st != CB_OK)
		r->fd = -1;
	return st;
}

void
cb_file_reader_memory(cb_file_reader *r, const void *data, size_t len, const char *path)
{
	r->path = path;
	r->fd = -1;
	r->data = data;
	r->size = len;
}

cb_status
cb_file_reader_read(const cb_file_reader *r, uint64_t offset, void *buf, size_t len,
					cb_error *err)
{
	size_t		got = 0;

	if (offset > r->size || len > r->size - offset)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: read of %zu bytes at offset %llu goes past the end of the file (%llu bytes)",
							r->path, len, (unsigned long long) offset, (unsigned long long) r->size);
	if (r->data != NULL)
	{
		if (len > 0)
			memcpy(buf, r->data + offset, len);
		return CB_OK;
	}
	while (got < len)
	{
		size_t		chunk = len - got > (1u << 30) ? (1u << 30) : len - got;
		ssize_t		n = pread(r->fd, (char *) buf + got, chunk, (off_t) (offset + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			int			e = n < 0 ? errno : 0;

			cb_set_error(err, CB_ERR_IO, "%s: read of %zu bytes at offset %llu failed: %s",
						 r->path, len, (unsigned long long) offset,
						 e ? strerror(e) : "unexpected end of file (file truncated?)");
			if (err)
				err->sys_errno = e;
			return CB_ERR_IO;
		}
		got += (size_t) n;
	}
	return CB_OK;
}

void
cb_file_reader_close(cb_file_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* ---- safetensors ---------------------------------------------------------- */

typedef struct span
{
	uint64_t	begin,
				end;
	size_t		index;			/* into the header object's members */
} span;

static int
span_cmp(const void *a, const void *b)
{
	const span *x = a,
			   *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static cb_status
parse_entry(const cb_file_reader *r, const cb_json_member *m, uint64_t data_len,
			cb_tensor_info *t, cb_error *err)
{
	const cb_json_value *e = &m->value;
	const cb_json_value *dt,
			   *shape,
			   *offs;
	char		nm[160],
				sb[160];
	const char *name = cb_printable(m->key, m->key_len, nm, sizeof(nm));
	uint64_t	numel = 1,
				nbytes,
				b,
				en;
	bool		found = false;

	if (m->key_len == 0 || m->key_len > CB_TENSOR_MAX_NAME || memchr(m->key, '\0', m->key_len))
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor name '%s' is empty, too long or contains NUL",
							r->path, name);
	if (e->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': entry must be an object, not %s",
							r->path, name, cb_json_type_name(e->type));
	dt = cb_json_get(e, "dtype");
	shape = cb_json_get(e, "shape");
	offs = cb_json_get(e, "data_offsets");
	if (dt == NULL || dt->type != CB_JSON_STRING)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': \"dtype\" missing or not a string",
							r->path, name);
	for (size_t i = 0; i < NUM_DTYPES; i++)
		if (dt->string_len == strlen(dtype_table[i].name) &&
			memcmp(dt->string, dtype_table[i].name, dt->string_len) == 0)
		{
			t->dtype = (cb_tensor_dtype) i;
			found = true;
		}
	if (!found)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"",
							r->path, name, cb_printable(dt->string, dt->string_len, sb, sizeof(sb)));
	if (shape == NULL || shape->type != CB_JSON_ARRAY)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': \"shape\" missing or not an array",
							r->path, name);
	if (shape->count > CB_TENSOR_MAX_DIMS)
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most %d)",
							r->path, name, shape->count, CB_TENSOR_MAX_DIMS);
	t->ndim = (int) shape->count;
	for (size_t i = 0; i < shape->count; i++)
	{
		const cb_json_value *d = &shape->items[i];

		if (d->type != CB_JSON_NUMBER || !d->is_integer || d->integer < 0)
			return cb_set_error(err, CB_ERR_FORMAT,
								"%s: tensor '%s': shape dimension %zu is not a non-negative integer",
								r->path, name, i);
		t->shape[i] = d->integer;
		if (__builtin_mul_overflow(numel, (uint64_t) d->integer, &numel))
			return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': shape %s overflows",
								r->path, name, cb_tensor_shape_string(t->shape, (int) i + 1, sb, sizeof(sb)));
	}
	if (__builtin_mul_overflow(numel, (uint64_t) cb_tensor_dtype_size(t->dtype), &nbytes))
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': byte size overflows", r->path, name);
	if (offs == NULL || offs->type != CB_JSON_ARRAY || offs->count != 2 ||
		offs->items[0].type != CB_JSON_NUMBER || !offs->items[0].is_integer || offs->items[0].integer < 0 ||
		offs->items[1].type != CB_JSON_NUMBER || !offs->items[1].is_integer || offs->items[1].integer < 0)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: tensor '%s': \"data_offsets\" must be [begin, end] (non-negative integers)",
							r->path, name);
	b = (uint64_t) offs->items[0].integer;
	en = (uint64_t) offs->items[1].integer;
	if (b > en)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] begin after end",
							r->path, name, (unsigned long long) b, (unsigned long long) en);
	if (en > data_len)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: tensor '%s': data_offsets [%llu, %llu] past the end of the data area (%llu bytes)",
							r->path, name, (unsigned long long) b, (unsigned long long) en,
							(unsigned long long) data_len);
	if (en - b != nbytes)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] span %llu",
							r->path, name, cb_tensor_shape_string(t->shape, t->ndim, sb, sizeof(sb)),
							dtype_table[t->dtype].name, (unsigned long long) nbytes,
							(unsigned long long) b, (unsigned long long) en, (unsigned long long) (en - b));
	t->numel = numel;
	t->nbytes = nbytes;
	t->offset = b;				/* relative for now */
	return CB_OK;
}

static const cb_json_limits header_limits = {
	CB_SAFETENSORS_MAX_HEADER, 16, 4u * 1024u * 1024u
};

cb_status
cb_safetensors_read(const cb_file_reader *r, uint32_t file_index,
					cb_tensor_list *list, cb_error *err)
{
	unsigned char lenbuf[8];
	uint64_t	hlen = 0,
				data_start,
				data_len;
	char	   *header = NULL;
	cb_json_doc *doc = NULL;
	const cb_json_value *root;
	span	   *spans = NULL;
	size_t		nspans = 0;
	cb_tensor_info *infos = NULL;
	cb_status	st;

	if (r->size < 8)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: file of %llu bytes is too short for a safetensors header",
							r->path, (unsigned long long) r->size);
	if ((st = cb_file_reader_read(r, 0, lenbuf, 8, err)) != CB_OK)
		return st;
	hlen = cb_read_le64(lenbuf);
	if (hlen > CB_SAFETENSORS_MAX_HEADER)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: safetensors header length %llu exceeds the limit of %u bytes",
							r->path, (unsigned long long) hlen, CB_SAFETENSORS_MAX_HEADER);
	if (hlen > r->size - 8)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: safetensors header length %llu is past the end of the file (%llu bytes)",
							r->path, (unsigned long long) hlen, (unsigned long long) r->size);
	if (hlen < 2)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: safetensors header length %llu is too short",
							r->path, (unsigned long long) hlen);
	data_start = 8 + hlen;
	data_len = r->size - data_start;

	header = cb_malloc((size_t) hlen);
	if (header == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory for a %llu-byte header",
							r->path, (unsigned long long) hlen);
	if ((st = cb_file_reader_read(r, 8, header, (size_t) hlen, err)) != CB_OK)
		goto done;
	/* the reference writer pads the header with trailing spaces; JSON allows them */
	if (header[0] != '{')
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: safetensors header does not start with '{' "
						  "(not a safetensors file?)", r->path);
		goto done;
	}
	if ((st = cb_json_parse(header, (size_t) hlen, r->path, &header_limits, &doc, err)) != CB_OK)
		goto done;
	root = cb_json_root(doc);
	if (root->type != CB_JSON_OBJECT)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: safetensors header is not a JSON object", r->path);
		goto done;
	}
	if (root->count > 0)
	{
		spans = cb_calloc(root->count, sizeof(span));
		infos = cb_calloc(root->count, sizeof(cb_tensor_info));
		if (spans == NULL || infos == NULL)
		{
			st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
			goto done;
		}
	}
	for (size_t i = 0; i < root->count; i++)
	{
		const cb_json_member *m = &root->members[i];

		if (m->key_len == 12 && memcmp(m->key, "__metadata__", 12) == 0)
		{
			if (m->value.type != CB_JSON_OBJECT)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: \"__metadata__\" must be an object", r->path);
				goto done;
			}
			for (size_t j = 0; j < m->value.count; j++)
			{
				const cb_json_member *md = &m->value.members[j];

				if (md->value.type != CB_JSON_STRING)
				{
					st = cb_set_error(err, CB_ERR_FORMAT, "%s: \"__metadata__\" values must be strings",
									  r->path);
					goto done;
				}
				/* "format": "tf" — TensorFlow names and orientation (tf_names.h) */
				if (strcmp(md->key, "format") == 0 && strcmp(md->value.string, "tf") == 0 &&
					md->value.string_len == 2)
					list->tf_names = true;
				else if (strcmp(md->key, "format") == 0 && strcmp(md->value.string, "flax") == 0)
				{
					st = cb_set_error(err, CB_ERR_UNSUPPORTED,
									  "%s: a Flax safetensors file (metadata \"format\": \"flax\") is not supported",
									  r->path);
					goto done;
				}
			}
			continue;
		}
		st = parse_entry(r, m, data_len, &infos[nspans], err);
		if (st != CB_OK)
			goto done;
		infos[nspans].name = (char *) m->key;
		spans[nspans].begin = infos[nspans].offset;
		spans[nspans].end = infos[nspans].offset + infos[nspans].nbytes;
		spans[nspans].index = nspans;
		nspans++;
	}

	/* the tensors must tile the data area: no overlap, no hole, nothing after */
	if (nspans > 1)
		qsort(spans, nspans, sizeof(span), span_cmp);
	{
		uint64_t	expect = 0;

		for (size_t i = 0; i < nspans; i++)
		{
			char		nm[160];
			const char *name = infos[spans[i].index].name;

			if (spans[i].begin < expect)
			{
				st = cb_set_error(err, CB_ERR_FORMAT,
								  "%s: tensor '%s': data_offsets [%llu, %llu] overlap the previous tensor (which ends at %llu)",
								  r->path, cb_printable(name, strlen(name), nm, sizeof(nm)),
								  (unsigned long long) spans[i].begin, (unsigned long long) spans[i].end,
								  (unsigned long long) expect);
				goto done;
			}
			if (spans[i].begin > expect)
			{
				st = cb_set_error(err, CB_ERR_FORMAT,
								  "%s: tensor '%s': data_offsets [%llu, %llu] leave a hole after offset %llu",
								  r->path, cb_printable(name, strlen(name), nm, sizeof(nm)),
								  (unsigned long long) spans[i].begin, (unsigned long long) spans[i].end,
								  (unsigned long long) expect);
				goto done;
			}
			expect = spans[i].end;
		}
		if (expect != data_len)
		{
			st = cb_set_error(err, CB_ERR_FORMAT,
							  "%s: the tensors cover %llu bytes of a %llu-byte data area (file size does not match the header)",
							  r->path, (unsigned long long) expect, (unsigned long long) data_len);
			goto done;
		}
	}

	for (size_t i = 0; i < nspans; i++)
	{
		infos[i].offset += data_start;
		infos[i].file = file_index;
		infos[i].storage = -1;
		if ((st = cb_tensor_list_add(list, &infos[i], err)) != CB_OK)
			goto done;
	}
	st = CB_OK;

done:
	cb_free(spans);
	cb_free(infos);
	cb_json_free(doc);
	cb_free(header);
	return st;
}

/* ---- shard index ---------------------------------------------------------- */

void
cb_shard_index_free(cb_shard_index *index)
{
	if (index == NULL)
		return;
	for (size_t i = 0; i < index->num_files; i++)
		cb_free(index->files[i]);
	for (size_t i = 0; i < index->num_names; i++)
		cb_free(index->names[i]);
	cb_free(index->files);
	cb_free(index->names);
	cb_free(index->file_of);
	cb_free(index);
}

static char *
dup_bytes(const char *s, size_t len)
{
	char	   *d = cb_malloc(len + 1);

	if (d != NULL)
	{
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

static cb_status
index_from_doc(const cb_json_value *root, const char *what, cb_shard_index *idx, cb_error *err)
{
	const cb_json_value *wm;
	char		nm[160],
				fb[160];

	if (root->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: the shard index must be a JSON object", what);
	wm = cb_json_get(root, "weight_map");
	if (wm == NULL || wm->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"weight_map\" missing or not an object", what);
	if (wm->count == 0)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"weight_map\" is empty", what);
	idx->names = cb_calloc(wm->count, sizeof(char *));
	idx->file_of = cb_calloc(wm->count, sizeof(uint32_t));
	idx->files = cb_calloc(wm->count, sizeof(char *));
	if (idx->names == NULL || idx->file_of == NULL || idx->files == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
	for (size_t i = 0; i < wm->count; i++)
	{
		const cb_json_member *m = &wm->members[i];
		const cb_json_value *f = &m->value;
		const char *name = cb_printable(m->key, m->key_len, nm, sizeof(nm));
		size_t		k;

		if (m->key_len == 0 || m->key_len > CB_TENSOR_MAX_NAME || memchr(m->key, '\0', m->key_len))
			return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor name '%s' is empty, too long or contains NUL",
								what, name);
		if (f->type != CB_JSON_STRING)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': shard file must be a string, not %s",
								what, name, cb_json_type_name(f->type));
		if (f->string_len == 0 || f->string_len > 255 ||
			memchr(f->string, '/', f->string_len) || memchr(f->string, '\\', f->string_len) ||
			memchr(f->string, '\0', f->string_len) ||
			strcmp(f->string, ".") == 0 || strcmp(f->string, "..") == 0)
			return cb_set_error(err, CB_ERR_FORMAT,
								"%s: tensor '%s': shard file name \"%s\" is not a plain file name in the model directory",
								what, name, cb_printable(f->string, f->string_len, fb, sizeof(fb)));
		for (k = 0; k < idx->num_files; k++)
			if (strcmp(idx->files[k], f->string) == 0)
				break;
		if (k == idx->num_files)
		{
			idx->files[k] = dup_bytes(f->string, f->string_len);
			if (idx->files[k] == NULL)
				return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
			idx->num_files++;
		}
		idx->names[i] = dup_bytes(m->key, m->key_len);
		if (idx->names[i] == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
		idx->file_of[i] = (uint32_t) k;
		idx->num_names++;
	}
	return CB_OK;
}

static const cb_json_limits index_limits = {
	64u * 1024u * 1024u, 16, 4u * 1024u * 1024u
};

static cb_status
index_finish(cb_json_doc *doc, const char *what, cb_shard_index **out, cb_error *err)
{
	cb_shard_index *idx = cb_calloc(1, sizeof(*idx));
	cb_status	st;

	if (idx == NULL)
	{
		cb_json_free(doc);
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
	}
	st = index_from_doc(cb_json_root(doc), what, idx, err);
	cb_json_free(doc);
	if (st != CB_OK)
	{
		cb_shard_index_free(idx);
		return st;
	}
	*out = idx;
	return CB_OK;
}

cb_status
cb_shard_index_parse(const char *text, size_t len, const char *what,
					 cb_shard_index **out, cb_error *err)
{
	cb_json_doc *doc;
	cb_status	st;

	*out = NULL;
	st = cb_json_parse(text, len, what, &index_limits, &doc, err);
	if (st != CB_OK)
		return st;
	return index_finish(doc, what, out, err);
}

cb_status
cb_shard_index_load(const char *path, const char *root, cb_shard_index **out, cb_error *err)
{
	cb_json_doc *doc;
	cb_status	st;

	*out = NULL;
	st = cb_json_load_file_in(path, root, &index_limits, &doc, err);
	if (st != CB_OK)
		return st;
	return index_finish(doc, path, out, err);
}
