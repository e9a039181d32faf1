/*
 * tf_h5.h — TensorFlow weight files in HDF5 (tf_model.h5, its shards
 * tf_model-0000k-of-0000n.h5), read through Debian's libhdf5.
 *
 * Two layouts, both from transformers' TF save_pretrained():
 *   - Keras save_weights (tf_model.h5): root attribute layer_names lists the
 *     top-level layers; each is a group whose attribute weight_names lists
 *     full variable names (model-name component first), each a dataset at
 *     <layer>/<full name>.  Lists longer than 64 KiB are split into
 *     name0, name1, ... attributes; strings are variable- or fixed-length.
 *   - a shard: root attribute layer_names lists the variable names without
 *     the model-name component, each a dataset at that path.
 * The result is a cb_tensor_list (safetensors.h) of TF names WITHOUT the
 * model-name component, tensors in TF orientation, whose bytes lie in the
 * file at (offset, nbytes): the datasets must be contiguous, unfiltered,
 * little-endian floats or integers (what Keras writes).  tf_names.h maps
 * the names to PyTorch's.
 *
 * libhdf5 trusts its input and can abort, crash or loop on a hostile file:
 * it runs only in a forked child (CPU time limited, killed with its parent),
 * which sends what it found through a pipe; this process validates every
 * record (name, dtype, shape, offset and size within the file) before
 * trusting it.  While it waits it runs cb_check_interrupts() every 100 ms;
 * a child left behind by an interrupt that longjmps is killed and reaped by
 * cb_tf_h5_abandon() or the next call.  A child that dies, is killed or sends a malformed record
 * gives CB_ERR_FORMAT naming the file.
 */
#ifndef CB_TF_H5_H
#define CB_TF_H5_H

#include "cb_common.h"
#include "safetensors.h"

/* At most this many variables in one file, and this many bytes of records. */
#define CB_TF_H5_MAX_VARIABLES	100000
#define CB_TF_H5_MAX_REPORT		(64u * 1024u * 1024u)
/* CPU seconds the child may use */
#define CB_TF_H5_CPU_SECONDS	60

/*
 * Read one HDF5 weight file (a file reader or, for fuzzing and tests, a
 * memory reader: libhdf5 then opens the bytes as a file image) and append
 * its variables to list with file index file_index.  Same signature as
 * cb_safetensors_read.
 */
cb_status	cb_tf_h5_read(const cb_file_reader *r, uint32_t file_index, cb_tensor_list *list,
						  cb_error *err);

/*
 * Kill and reap a child left behind when cb_check_interrupts() longjmped out
 * of cb_tf_h5_read (the next call does it too); a no-op otherwise.  The
 * PostgreSQL layer calls it when loading a model fails.
 */
void		cb_tf_h5_abandon(void);

/*
 * The parent's half alone: decode and validate a child's report (for
 * fuzzing; cb_tf_h5_read uses it).  file_size bounds every offset.
 */
cb_status	cb_tf_h5_decode_report(const unsigned char *buf, size_t len, const char *path,
								   uint64_t file_size, uint32_t file_index, cb_tensor_list *list,
								   cb_error *err);

#endif							/* CB_TF_H5_H */
