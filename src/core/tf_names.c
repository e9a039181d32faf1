/*
 * tf_names.c — TensorFlow variable names → PyTorch names (see tf_names.h).
 */
#include "tf_names.h"

#include <stdlib.h>
#include <string.h>

const char *
cb_tf_name_strip_model(const char *full)
{
	const char *slash = strchr(full, '/');

	if (slash == NULL || slash == full || slash[1] == '\0')
		return NULL;
	return slash + 1;
}

/* Append n bytes to out at *len; false if it does not fit (with the NUL). */
static bool
append(char *out, size_t outsize, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > outsize)
		return false;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return true;
}

cb_status
cb_tf_name_to_pt(const char *tf_name, char *out, size_t outsize, bool *transpose, cb_error *err)
{
	char		buf[CB_TENSOR_MAX_NAME + 1];
	size_t		n = 0,
				len = 0;
	const char *p;
	char	   *comp;
	char	   *last = NULL;
	size_t		last_at = 0;

	*transpose = false;
	if (outsize == 0)
		return cb_set_error(err, CB_ERR_INVALID, "no room for a tensor name");
	out[0] = '\0';
	/* ":0" removed everywhere, "_._" → "/" (as transformers' str.replace, left to right) */
	for (p = tf_name; *p != '\0';)
	{
		if (p[0] == ':' && p[1] == '0')
		{
			p += 2;
			continue;
		}
		if (n + 2 > sizeof(buf))
			return cb_set_error(err, CB_ERR_FORMAT, "TensorFlow variable name too long");
		if (p[0] == '_' && p[1] == '.' && p[2] == '_')
		{
			buf[n++] = '/';
			p += 3;
			continue;
		}
		buf[n++] = *p++;
	}
	buf[n] = '\0';
	/* components: empty ones dropped, "a___b" → "b", joined with "." */
	for (comp = buf; comp != NULL;)
	{
		char	   *slash = strchr(comp, '/');
		char	   *tri;

		if (slash != NULL)
			*slash = '\0';
		tri = strstr(comp, "___");
		if (tri != NULL)
			comp = tri + 3;
		if (comp[0] != '\0')
		{
			if (len > 0 && !append(out, outsize, &len, ".", 1))
				goto too_long;
			last_at = len;
			last = comp;
			if (!append(out, outsize, &len, comp, strlen(comp)))
				goto too_long;
		}
		comp = slash != NULL ? slash + 1 : NULL;
	}
	if (last == NULL)
		return cb_set_error(err, CB_ERR_FORMAT, "TensorFlow variable name \"%.200s\" is empty once mapped",
							tf_name);
	{
		static const struct
		{
			const char *tf;
			const char *pt;
			bool		transpose;
		}			renames[] = {
			{"kernel", "weight", true},
			{"embeddings", "weight", false},
			{"gamma", "weight", false},
			{"beta", "bias", false},
		};

		for (size_t i = 0; i < sizeof(renames) / sizeof(renames[0]); i++)
			if (strcmp(out + last_at, renames[i].tf) == 0)
			{
				len = last_at;
				out[len] = '\0';
				if (!append(out, outsize, &len, renames[i].pt, strlen(renames[i].pt)))
					goto too_long;
				*transpose = renames[i].transpose;
				break;
			}
	}
	return CB_OK;

too_long:
	return cb_set_error(err, CB_ERR_FORMAT, "TensorFlow variable name \"%.200s\" too long once mapped", tf_name);
}

static int
by_name_then_index(const void *a, const void *b)
{
	const cb_tensor_info *x = a,
			   *y = b;
	int			c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	/* storage holds the original index here: keep the first */
	return (x->storage > y->storage) - (x->storage < y->storage);
}

cb_status
cb_tf_list_to_pt(cb_tensor_list *list, const char *what, cb_error *err)
{
	char		name[CB_TENSOR_MAX_NAME + 1];
	size_t		kept = 0;

	for (size_t i = 0; i < list->count; i++)
	{
		cb_tensor_info *t = &list->tensors[i];
		bool		transpose;
		cb_error	e;
		cb_status	st = cb_tf_name_to_pt(t->name, name, sizeof(name), &transpose, &e);
		char	   *copy;

		if (st != CB_OK)
			return cb_set_error(err, st, "%s: %s", what, e.message);
		if (transpose)
		{
			int64_t		d;

			if (t->ndim != 2)
				return cb_set_error(err, CB_ERR_UNSUPPORTED,
									"%s: TensorFlow kernel '%.200s' has %d dimensions (only 2-D kernels are supported)",
									what, t->name, t->ndim);
			if (t->transposed)
				return cb_set_error(err, CB_ERR_FORMAT, "%s: '%.200s' mapped twice", what, t->name);
			d = t->shape[0];
			t->shape[0] = t->shape[1];
			t->shape[1] = d;
			t->transposed = true;
		}
		copy = cb_malloc(strlen(name) + 1);
		if (copy == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
		memcpy(copy, name, strlen(name) + 1);
		cb_free(t->name);
		t->name = copy;
		t->storage = (int64_t) i;
	}
	if (list->count > 1)
		qsort(list->tensors, list->count, sizeof(cb_tensor_info), by_name_then_index);
	/* first check every repeated name, then drop the repeats: the list stays whole on error */
	for (size_t i = 1; i < list->count; i++)
	{
		const cb_tensor_info *k = &list->tensors[i - 1],
				   *t = &list->tensors[i];
		bool		same;

		if (strcmp(k->name, t->name) != 0)
			continue;
		same = k->dtype == t->dtype && k->ndim == t->ndim && k->transposed == t->transposed;
		for (int d = 0; same && d < t->ndim; d++)
			same = k->shape[d] == t->shape[d];
		if (!same)
			return cb_set_error(err, CB_ERR_FORMAT,
								"%s: two TensorFlow variables map to '%.200s' with different shapes or dtypes",
								what, t->name);
	}
	for (size_t i = 0; i < list->count; i++)
	{
		cb_tensor_info t = list->tensors[i];

		if (kept > 0 && strcmp(list->tensors[kept - 1].name, t.name) == 0)
		{
			cb_free(t.name);
			continue;
		}
		list->tensors[kept++] = t;
	}
	for (size_t i = 0; i < kept; i++)
		list->tensors[i].storage = -1;
	list->count = kept;
	list->sorted = false;
	return CB_OK;
}
