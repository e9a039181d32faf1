/*
 * safetensors.h — the safetensors weight format (single file or sharded
 * with model.safetensors.index.json), and the two small types every weight
 * file reader of the core shares (torch_bin.c uses them too):
 *
 *   cb_file_reader   bounded reads at an offset, from a file (pread) or
 *                    from memory (fuzzing, tests);
 *   cb_tensor_list   what a weight file holds: for each tensor its name,
 *                    dtype, shape, and where its raw little-endian bytes lie
 *                    (file index, absolute byte offset, byte count).  The
 *                    bytes themselves are read later, straight into the
 *                    model image.
 *
 * safetensors layout: u64-LE N, N bytes of JSON header
 *   {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}, ...}
 * then the data area; offsets are relative to the data area (8 + N).
 * Checked as hostile input: N ≤ CB_SAFETENSORS_MAX_HEADER and 8 + N ≤ file
 * size, the header is strict JSON (an object of objects, no unknown keys in a
 * tensor entry), every dtype is known, every shape dimension is a
 * non-negative integer, product(shape) × dtype size == e − b (overflow
 * checked), and — like the reference implementation — the tensors tile the
 * data area exactly: sorted by offset, each begins where the previous ends
 * (no overlap, no hole) and the last ends at the end of the file.
 */
#ifndef CB_SAFETENSORS_H
#define CB_SAFETENSORS_H

#include "cb_common.h"
#include "file_io.h"

#define CB_SAFETENSORS_MAX_HEADER	(100u * 1024u * 1024u)
#define CB_TENSOR_MAX_DIMS			8
#define CB_TENSOR_MAX_NAME			1024

/* Element types found in weight files (safetensors names / torch storages). */
typedef enum cb_tensor_dtype
{
	CB_TENSOR_F32 = 0,
	CB_TENSOR_F16,
	CB_TENSOR_BF16,
	CB_TENSOR_F64,
	CB_TENSOR_I64,
	CB_TENSOR_I32,
	CB_TENSOR_I16,
	CB_TENSOR_I8,
	CB_TENSOR_U8,
	CB_TENSOR_BOOL,
	CB_TENSOR_F8_E4M3,
	CB_TENSOR_F8_E5M2,
	CB_TENSOR_U16,
	CB_TENSOR_U32,
	CB_TENSOR_U64
} cb_tensor_dtype;

const char *cb_tensor_dtype_name(cb_tensor_dtype dtype);	/* safetensors spelling: "F32" ... */
size_t		cb_tensor_dtype_size(cb_tensor_dtype dtype);

typedef struct cb_tensor_info
{
	char	   *name;			/* NUL-terminated, owned by the list */
	cb_tensor_dtype dtype;
	int			ndim;
	int64_t		shape[CB_TENSOR_MAX_DIMS];
	uint64_t	numel;			/* product of shape */
	uint32_t	file;			/* index of the file holding the bytes */
	uint64_t	offset;			/* absolute byte offset of the first element in that file */
	uint64_t	nbytes;			/* numel × dtype size */
	int64_t		storage;		/* torch_bin: storage id (aliases share it); else -1 */
	bool		transposed;		/* 2-D, stored [shape[1], shape[0]] (a TensorFlow kernel) */
} cb_tensor_info;

typedef struct cb_tensor_list
{
	cb_tensor_info *tensors;
	size_t		count;
	size_t		capacity;
	bool		sorted;			/* by name, after cb_tensor_list_finish() */
	bool		tf_names;		/* safetensors "__metadata__": {"format": "tf"}: TensorFlow
								 * names and orientation (tf_names.h) */
} cb_tensor_list;

/* Append a copy of *t (its name is copied too). */
cb_status	cb_tensor_list_add(cb_tensor_list *list, const cb_tensor_info *t, cb_error *err);

/* Sort by name; a name present twice is CB_ERR_FORMAT (what names the source). */
cb_status	cb_tensor_list_finish(cb_tensor_list *list, const char *what, cb_error *err);

/* Lookup by name (after cb_tensor_list_finish); NULL if absent. */
const cb_tensor_info *cb_tensor_list_find(const cb_tensor_list *list, const char *name);

void		cb_tensor_list_free(cb_tensor_list *list);	/* frees the contents, not *list */

/* "[8005, 64]" into buf. */
const char *cb_tensor_shape_string(const int64_t *shape, int ndim, char *buf, size_t bufsize);

/* ---- readers ------------------------------------------------------------ */

typedef struct cb_file_reader
{
	const char *path;			/* for messages (not owned) */
	uint64_t	size;			/* bytes */
	int			fd;				/* file reader: open descriptor; else -1 */
	const unsigned char *data;	/* memory reader: the bytes; else NULL */
} cb_file_reader;

/* Open path with cb_file_open (file_io.h: regular files only, never blocking,
 * confined to root unless root is NULL). */
cb_status	cb_file_reader_open(cb_file_reader *r, const char *path, const char *root,
								cb_error *err);
/* A reader over memory; path names it in messages. */
void		cb_file_reader_memory(cb_file_reader *r, const void *data, size_t len, const char *path);
/* Exactly len bytes at offset; [offset, offset+len) must lie inside the file. */
cb_status	cb_file_reader_read(const cb_file_reader *r, uint64_t offset, void *buf, size_t len,
								cb_error *err);
void		cb_file_reader_close(cb_file_reader *r);

/* ---- safetensors -------------------------------------------------------- */

/*
 * Parse one safetensors file and append its tensors to list (file index
 * file_index); the data bytes are not read.  Errors name r->path and the tensor.
 */
cb_status	cb_safetensors_read(const cb_file_reader *r, uint32_t file_index,
								cb_tensor_list *list, cb_error *err);

/*
 * A sharded checkpoint's index (model.safetensors.index.json or
 * pytorch_model.bin.index.json): {"metadata": {...}, "weight_map": {name: file}}.
 * Returns the distinct shard file names (in first-seen order) and, for each
 * tensor name, the index of its shard.  Shard names must be plain file names
 * inside the model directory: no '/', '\\', NUL, no "." or "..", not empty.
 */
typedef struct cb_shard_index
{
	char	  **files;			/* distinct shard file names */
	size_t		num_files;
	char	  **names;			/* tensor names */
	uint32_t   *file_of;		/* names[i] lives in files[file_of[i]] */
	size_t		num_names;
} cb_shard_index;

cb_status	cb_shard_index_parse(const char *text, size_t len, const char *what,
								 cb_shard_index **out, cb_error *err);
/* Read and parse an index file (opened as cb_file_open does, confined to root). */
cb_status	cb_shard_index_load(const char *path, const char *root, cb_shard_index **out,
								cb_error *err);
void		cb_shard_index_free(cb_shard_index *index);

#endif							/* CB_SAFETENSORS_H */
