/*
 * model_files.c — which weight files of a model directory are read, and
 * reading them into one tensor list (see model_files.h).
 */
#include "model_files.h"
#include "tf_h5.h"
#include "tf_names.h"
#include "torch_bin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *
cb_path_join(const char *dir, const char *name)
{
	size_t		dl = strlen(dir),
				nl = strlen(name);
	char	   *p = cb_malloc(dl + nl + 2);

	if (p == NULL)
		return NULL;
	memcpy(p, dir, dl);
	if (dl > 0 && dir[dl - 1] != '/')
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

/* 1: a regular file; 0: absent; -1: exists but is not a regular file. */
static int
file_kind(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	return S_ISREG(st.st_mode) ? 1 : -1;
}

void
cb_model_files_free(cb_model_files *mf)
{
	for (size_t i = 0; i < mf->num_files; i++)
		cb_free(mf->files[i].path);
	cb_free(mf->files);
	mf->files = NULL;
	mf->num_files = mf->files_cap = 0;
	cb_tensor_list_free(&mf->tensors);
}

typedef cb_status (*tensor_file_reader) (const cb_file_reader *r, uint32_t file_index,
										 cb_tensor_list *list, cb_error *err);

/* Open one weight file, record its identity, parse it into list. */
static cb_status
read_weight_file(cb_model_files *mf, const char *root, const char *path, tensor_file_reader fn,
				 cb_tensor_list *list, cb_error *err)
{
	cb_file_reader r;
	struct stat st;
	cb_status	status;
	cb_weight_file *fi;

	if (cb_grow_array((void **) &mf->files, &mf->files_cap, mf->num_files + 1, sizeof(cb_weight_file),
					  path, NULL) != CB_OK)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", path);
	fi = &mf->files[mf->num_files];
	memset(fi, 0, sizeof(*fi));
	fi->path = cb_malloc(strlen(path) + 1);
	if (fi->path == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", path);
	memcpy(fi->path, path, strlen(path) + 1);
	mf->num_files++;

	status = cb_file_reader_open(&r, fi->path, root, err);
	if (status != CB_OK)
		return status;
	if (fstat(r.fd, &st) != 0)
	{
		cb_file_reader_close(&r);
		return cb_set_error(err, CB_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
	}
	fi->dev = st.st_dev;
	fi->ino = st.st_ino;
	fi->size = st.st_size;
	fi->mtime = st.st_mtim;
	status = fn(&r, (uint32_t) (mf->num_files - 1), list, err);
	cb_file_reader_close(&r);
	return status;
}

/*
 * A TensorFlow index (tf_model.h5.index.json) names full variables (model-name
 * component first): map them to PyTorch names, in place.
 */
static cb_status
map_tf_index_names(cb_shard_index *idx, const char *index_path, cb_error *err)
{
	char		name[CB_TENSOR_MAX_NAME + 1];

	for (size_t i = 0; i < idx->num_names; i++)
	{
		const char *tf = cb_tf_name_strip_model(idx->names[i]);
		bool		transpose;
		cb_error	e;
		char	   *copy;

		if (tf == NULL)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: variable '%.200s' has no model-name component",
								index_path, idx->names[i]);
		if (cb_tf_name_to_pt(tf, name, sizeof(name), &transpose, &e) != CB_OK)
			return cb_set_error(err, e.status, "%s: %s", index_path, e.message);
		copy = cb_malloc(strlen(name) + 1);
		if (copy == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", index_path);
		memcpy(copy, name, strlen(name) + 1);
		cb_free(idx->names[i]);
		idx->names[i] = copy;
	}
	return CB_OK;
}

static cb_status
read_sharded(cb_model_files *mf, const char *dir, const char *root, const char *index_path,
			 tensor_file_reader fn, bool tf, cb_error *err)
{
	cb_shard_index *idx;
	cb_status	status;
	cb_tensor_list *shard_lists = NULL;

	status = cb_shard_index_load(index_path, root, &idx, err);
	if (status != CB_OK)
		return status;
	if (tf && (status = map_tf_index_names(idx, index_path, err)) != CB_OK)
	{
		cb_shard_index_free(idx);
		return status;
	}
	shard_lists = cb_calloc(idx->num_files, sizeof(cb_tensor_list));
	if (shard_lists == NULL)
	{
		cb_shard_index_free(idx);
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", index_path);
	}
	for (size_t f = 0; f < idx->num_files && status == CB_OK; f++)
	{
		char	   *path = cb_path_join(dir, idx->files[f]);

		if (path == NULL)
		{
			status = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
			break;
		}
		if (file_kind(path) != 1)
			status = cb_set_error(err, CB_ERR_FORMAT,
								  "%s: shard \"%s\" named by the index is missing or not a regular file",
								  index_path, idx->files[f]);
		else
			status = read_weight_file(mf, root, path, fn, &shard_lists[f], err);
		if (status == CB_OK && !tf && shard_lists[f].tf_names)
			status = cb_set_error(err, CB_ERR_UNSUPPORTED,
								  "%s: sharded safetensors in TensorFlow layout (metadata \"format\": \"tf\") "
								  "are not supported", path);
		if (status == CB_OK && tf)
			status = cb_tf_list_to_pt(&shard_lists[f], path, err);
		if (status == CB_OK)
			status = cb_tensor_list_finish(&shard_lists[f], path, err);
		cb_free(path);
	}
	for (size_t i = 0; i < idx->num_names && status == CB_OK; i++)
	{
		uint32_t	f = idx->file_of[i];
		const cb_tensor_info *t = cb_tensor_list_find(&shard_lists[f], idx->names[i]);

		if (t == NULL)
		{
			status = cb_set_error(err, CB_ERR_FORMAT,
								  "%s: tensor '%s' is not in shard \"%s\" where the index puts it",
								  index_path, idx->names[i], idx->files[f]);
			break;
		}
		/* file indexes of shard_lists are already those of mf->files */
		status = cb_tensor_list_add(&mf->tensors, t, err);
	}
	for (size_t f = 0; f < idx->num_files; f++)
		cb_tensor_list_free(&shard_lists[f]);
	cb_free(shard_lists);
	cb_shard_index_free(idx);
	return status;
}

cb_status
cb_model_files_read(const char *dir, const char *root, cb_model_files *mf, cb_error *err)
{
	cb_status	st = CB_OK;
	char	   *path = NULL;
	enum
	{
		W_SAFETENSORS, W_TORCH, W_TF_H5
	};
	static const struct
	{
		const char *name;
		bool		sharded;
		int			kind;
	}			candidates[] = {
		{"model.safetensors", false, W_SAFETENSORS},
		{"model.safetensors.index.json", true, W_SAFETENSORS},
		{"pytorch_model.bin", false, W_TORCH},
		{"pytorch_model.bin.index.json", true, W_TORCH},
		{"tf_model.h5", false, W_TF_H5},
		{"tf_model.h5.index.json", true, W_TF_H5},
	};
	const int	num_candidates = (int) (sizeof(candidates) / sizeof(candidates[0]));
	int			chosen = -1;

	for (int i = 0; i < num_candidates && chosen < 0; i++)
	{
		int			k;

		path = cb_path_join(dir, candidates[i].name);
		if (path == NULL)
		{
			st = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
			goto done;
		}
		k = file_kind(path);
		if (k < 0)
		{
			st = cb_set_error(err, CB_ERR_IO, "%s: not a regular file", path);
			goto done;
		}
		if (k == 1)
			chosen = i;
		else
		{
			cb_free(path);
			path = NULL;
		}
	}
	if (chosen < 0)
	{
		st = cb_set_error(err, CB_ERR_IO,
						  "%s: no weights found (looked for model.safetensors, model.safetensors.index.json, "
						  "pytorch_model.bin, pytorch_model.bin.index.json, tf_model.h5, "
						  "tf_model.h5.index.json)", dir);
		if (err != NULL)
			err->sys_errno = ENOENT;
		goto done;
	}
	snprintf(mf->weights_file, sizeof(mf->weights_file), "%s", candidates[chosen].name);
	{
		int			kind = candidates[chosen].kind;
		tensor_file_reader fn = kind == W_TORCH ? cb_torch_bin_read :
			kind == W_TF_H5 ? cb_tf_h5_read : cb_safetensors_read;

		if (candidates[chosen].sharded)
			st = read_sharded(mf, dir, root, path, fn, kind == W_TF_H5, err);
		else
		{
			st = read_weight_file(mf, root, path, fn, &mf->tensors, err);
			/* tf_model.h5, or model.safetensors whose metadata says "format": "tf" */
			if (st == CB_OK && (kind == W_TF_H5 || mf->tensors.tf_names))
				st = cb_tf_list_to_pt(&mf->tensors, path, err);
		}
	}
	if (st == CB_OK)
		st = cb_tensor_list_finish(&mf->tensors, path, err);

done:
	cb_free(path);
	return st;
}
