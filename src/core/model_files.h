/*
 * model_files.h — the weight files of a Hugging Face model directory: which
 * one is read, and reading it (or its shards) into one tensor list.
 *
 * Weight files, first found wins: model.safetensors,
 * model.safetensors.index.json (shards), pytorch_model.bin,
 * pytorch_model.bin.index.json (shards), tf_model.h5,
 * tf_model.h5.index.json (shards).  A candidate that exists but is not a
 * regular file is an error (CB_ERR_IO); none found is CB_ERR_IO with
 * sys_errno ENOENT, naming every name looked for.  An index names its
 * shards, which must be regular files of the directory, and places each
 * tensor in one of them: the tensor must be there.  TensorFlow names
 * (tf_model.h5, safetensors with metadata "format": "tf", a TF index) are
 * mapped to PyTorch names (tf_names.h); sharded safetensors in TF layout are
 * CB_ERR_UNSUPPORTED.
 *
 * Each file read is recorded with its identity (device, inode, size, mtime)
 * so that a later reader can check it opens the very file that was
 * validated; a tensor's cb_tensor_info.file indexes files[].  Every file is
 * confined to root (file_io.h) when root is neither NULL nor "".  One file
 * descriptor is held while a file's header is parsed, none after.
 */
#ifndef CB_MODEL_FILES_H
#define CB_MODEL_FILES_H

#include <sys/types.h>
#include <time.h>

#include "safetensors.h"

/* A weight file read: its path and identity when it was read. */
typedef struct cb_weight_file
{
	char	   *path;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
} cb_weight_file;

/* The weight files read from a directory and their tensors. */
typedef struct cb_model_files
{
	char		weights_file[64];	/* the name chosen, e.g. "model.safetensors" */
	cb_weight_file *files;
	size_t		num_files;
	size_t		files_cap;		/* room in files[] (cb_grow_array) */
	cb_tensor_list tensors;		/* finished (cb_tensor_list_finish) */
} cb_model_files;

/*
 * Choose dir's weight file (precedence above) and read it, or its shards,
 * into mf (zeroed by the caller).  Whatever this returns, free mf with
 * cb_model_files_free.
 */
cb_status	cb_model_files_read(const char *dir, const char *root, cb_model_files *mf, cb_error *err);

/* Free what mf holds (safe on a zeroed one). */
void		cb_model_files_free(cb_model_files *mf);

/* dir "/" name, in cb_malloc'd memory (NULL when out of memory). */
char	   *cb_path_join(const char *dir, const char *name);

#endif							/* CB_MODEL_FILES_H */
