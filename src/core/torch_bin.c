/*
 * torch_bin.c — pytorch_model.bin reader (see torch_bin.h).
 *
 * Joins the two parts: the zip container (zip_reader.c: the entries we
 * need, each checked against its local header) and the restricted pickle
 * machine (torch_pickle.c: data.pkl as name -> tensor description), then
 * checks every tensor against its storage entry.
 */
#include "torch_bin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch_pickle.h"
#include "zip_reader.h"

/* ======================================================================== */
/* state_dict → tensor list                                                  */
/* ======================================================================== */

cb_status
cb_torch_bin_read(const cb_file_reader *r, uint32_t file_index,
				  cb_tensor_list *list, cb_error *err)
{
	cb_zip_archive z;
	cb_status	st;
	cb_zip_entry *pkl = NULL;
	char		prefix[256];
	size_t		plen = 0;
	unsigned char *buf = NULL;
	cb_pickle_vm vm;
	cb_pickle_obj *root = NULL;
	char	   *ename = NULL;

	memset(&vm, 0, sizeof(vm));
	if ((st = cb_zip_open(&z, r, err)) != CB_OK)
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
		cb_zip_entry *bo;

		snprintf(bo_name, sizeof(bo_name), "%s/byteorder", prefix);
		bo = cb_zip_find(&z, bo_name);
		if (bo != NULL)
		{
			char		v[16] = {0};

			if ((st = cb_zip_check_local(&z, bo, err)) != CB_OK)
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

	if ((st = cb_zip_check_local(&z, pkl, err)) != CB_OK)
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
	if (cb_crc32_update(0, buf, (size_t) pkl->size) != pkl->crc)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: data.pkl fails its CRC check (corrupt file)", r->path);
		goto done;
	}

	vm.buf = buf;
	vm.len = (size_t) pkl->size;
	vm.path = r->path;
	vm.err = err;
	if ((st = cb_pickle_run(&vm, &root)) != CB_OK)
		goto done;
	if (root->type != CB_PICKLE_DICT)
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
		cb_pickle_obj *k = root->items[i],
			   *t = root->items[i + 1];
		cb_tensor_info info;
		char		nm[CB_TENSOR_MAX_NAME + 1];
		cb_zip_entry *e;
		size_t		esz;
		uint64_t	numel = 1,
					need_elems;

		if (k->type != CB_PICKLE_STR || k->slen == 0 || k->slen > CB_TENSOR_MAX_NAME || memchr(k->s, '\0', k->slen))
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "%s: state_dict key %zu is not a valid tensor name", r->path, i / 2);
			goto done;
		}
		memcpy(nm, k->s, k->slen);
		nm[k->slen] = '\0';
		if (t->type != CB_PICKLE_TENSOR)
		{
			char		pb[160];

			st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: state_dict entry '%s' is not a tensor",
							  r->path, cb_printable(nm, k->slen, pb, sizeof(pb)));
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
		e = cb_zip_find(&z, ename);
		if (e == NULL)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "%s: tensor '%s': storage entry '%s' is missing", r->path, nm, ename);
			goto done;
		}
		if ((st = cb_zip_check_local(&z, e, err)) != CB_OK)
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
		/* the checks above keep the tensor inside its storage entry */
		cb_assert(e->checked && info.offset + info.nbytes <= e->data_offset + e->size);
		info.file = file_index;
		info.storage = (int64_t) (e - z.entries);
		if ((st = cb_tensor_list_add(list, &info, err)) != CB_OK)
			goto done;
	}
	st = CB_OK;

done:
	cb_free(ename);
	cb_pickle_free(&vm);
	cb_free(buf);
	cb_zip_free(&z);
	return st;
}
