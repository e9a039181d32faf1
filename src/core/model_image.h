/*
 * model_image.h — building a model image from a Hugging Face model directory
 * and viewing an image as a cb_model (see model.h for what an image is).
 *
 * Building (done once, by the process that fills the shared memory):
 *
 *     cb_model_source *src;
 *     cb_model_source_open(dir, &src, &err);        reads config.json and the
 *                                                   weight file headers, checks
 *                                                   every tensor (names, shapes,
 *                                                   dtypes, offsets)
 *     size = cb_model_source_image_size(src);       allocate exactly this much
 *     cb_model_source_write_image(src, dest, size, &err);
 *     cb_model_source_close(src);
 *
 * Weight files (model_files.h), first found wins: model.safetensors,
 * model.safetensors.index.json (shards), pytorch_model.bin,
 * pytorch_model.bin.index.json (shards), tf_model.h5, tf_model.h5.index.json
 * (shards).  Tensor bytes are read once, with
 * pread, straight into the image (F32 copied; F16 and BF16 converted exactly
 * to F32).  No file descriptor is held between calls, nor while
 * cb_check_interrupts() runs: write_image re-opens each file per tensor and
 * checks it is the very file that was validated (device, inode, size, mtime).
 * cb_model_source_open does hold one descriptor while it parses a weight
 * file's header: if the allocation hook can longjmp on failure, install it
 * in no-OOM mode (return NULL), or a failed allocation there leaks that fd.
 *
 * Tensor names: those of CamembertForMaskedLM / ForSequenceClassification /
 * ForCausalLM / CamembertModel, under the base prefix "roberta.",
 * "camembert." or none (a bare CamembertModel checkpoint); LayerNorm
 * ".gamma"/".beta" (old checkpoints) are accepted for ".weight"/".bias", as
 * transformers renames them.  The LM decoder is tied to the word embeddings
 * (config tie_word_embeddings, default true): lm_head.decoder.weight is then
 * optional and, if present (pytorch_model.bin stores the alias), must have the
 * word embeddings' shape and is not read; with tie_word_embeddings false it is
 * required and stored (even when the file stores it as an alias of the word
 * embeddings).  lm_head.bias is the decoder bias (lm_head.decoder.bias, its
 * alias, must have the same shape and replaces it if lm_head.bias is absent).
 * No two other used tensors may share bytes of a file.  Like transformers,
 * tensors the architecture does not use are ignored silently: pooler weights
 * (a CamembertModel checkpoint has roberta.pooler.*, which we never use: the
 * encoder output is the last hidden state), position_ids buffers, the other
 * head's weights.  A missing tensor, a wrong shape or a non-float dtype of a
 * used tensor is an error naming the file, the tensor, its shape and the
 * expected shape.
 *
 * config.stored_dtype is the dtype of the word embeddings in the file.
 * The parameter count is that of the tensors in the image (tied ones once):
 * equal to transformers' num_parameters() except for CamembertModel, whose
 * pooler HF counts and we do not load.
 *
 * Viewing (every backend, on its own mapping): cb_model_view checks the
 * header (magic, version, sizes), every offset and length against
 * image_len, the stored configuration (cb_config_validate) and that each
 * tensor has the size the configuration implies, then fills pointers into
 * the image.  It allocates only the layers and labels arrays (cb_malloc);
 * cb_model_view_release frees them.  The image must be at least 8-byte
 * aligned, and 64-byte aligned (tensors are 64-byte aligned relative to it)
 * when it holds bfloat16 or int8 matrices, whose kernels load aligned
 * vectors: else CB_ERR_INVALID.
 */
#ifndef CB_MODEL_IMAGE_H
#define CB_MODEL_IMAGE_H

#include "model.h"
#include "config.h"

#define CB_MODEL_IMAGE_MAGIC	"CBMODEL\0"
#define CB_MODEL_IMAGE_VERSION	2
#define CB_MODEL_IMAGE_ALIGN	64

typedef struct cb_model_source cb_model_source;

cb_status	cb_model_source_open(const char *dir, cb_model_source **out, cb_error *err);
/*
 * The same, with every file the source reads (config.json, weights, index,
 * shards; again when the image is written) confined to root: its real path
 * must lie inside root's (file_io.h), else CB_ERR_ACCESS.  root NULL or "":
 * no confinement.  Files are opened without blocking, regular files only.
 */
cb_status	cb_model_source_open_in(const char *dir, const char *root, cb_model_source **out,
									cb_error *err);
/*
 * The precision of the image to build (default CB_PRECISION_AUTO; model.h):
 * call before cb_model_source_image_size.  CB_ERR_INVALID for a value out
 * of the enum.
 */
cb_status	cb_model_source_set_precision(cb_model_source *src, cb_precision precision,
										  cb_error *err);
size_t		cb_model_source_image_size(const cb_model_source *src);
cb_status	cb_model_source_write_image(const cb_model_source *src, void *dest, size_t dest_len,
										cb_error *err);
void		cb_model_source_close(cb_model_source *src);

/* What the source holds (valid until cb_model_source_close). */
const cb_config *cb_model_source_config(const cb_model_source *src);
const char *cb_model_source_label(const cb_model_source *src, int32_t id);	/* NULL if out of range */
const char *cb_model_source_weights_file(const cb_model_source *src);	/* e.g. "model.safetensors" */
uint64_t	cb_model_source_parameter_count(const cb_model_source *src);

cb_status	cb_model_view(const void *image, size_t image_len, cb_model *out, cb_error *err);
void		cb_model_view_release(cb_model *model);

/*
 * Convenience for tests and tools: open dir, build the image in cb_malloc'ed
 * memory and view it (model->owned_image; cb_model_view_release frees it).
 */
cb_status	cb_model_load_dir(const char *dir, cb_model *model, cb_error *err);
cb_status	cb_model_load_dir_precision(const char *dir, cb_precision precision, cb_model *model,
										cb_error *err);

/* Metadata (names as in transformers; see config.h for the enum → name functions). */
static inline const char *
cb_model_architecture_name(const cb_model *m)
{
	return cb_architecture_name(m->config.architecture);
}
static inline const char *
cb_model_problem_type_name(const cb_model *m)	/* NULL if not a classifier */
{
	return cb_problem_type_name(m->config.problem_type);
}
static inline const char *
cb_model_precision_name(const cb_model *m)
{
	return cb_precision_name(m->config.precision);
}
static inline const char *
cb_model_stored_dtype_name(const cb_model *m)
{
	return cb_dtype_name(m->config.stored_dtype);
}
static inline uint64_t
cb_model_parameter_count(const cb_model *m)
{
	return m->parameter_count;
}
static inline uint64_t
cb_model_weight_bytes(const cb_model *m)
{
	return m->weight_bytes;
}
static inline const char *
cb_model_label(const cb_model *m, int32_t id)	/* NULL if out of range */
{
	return (m->labels != NULL && id >= 0 && id < m->config.num_labels) ? m->labels[id] : NULL;
}

#endif							/* CB_MODEL_IMAGE_H */
