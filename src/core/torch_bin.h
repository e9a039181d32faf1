/*
 * torch_bin.h — pytorch_model.bin, as written by torch.save (zip format,
 * PyTorch ≥ 1.6) for a state_dict: the list of its tensors, without
 * executing anything.
 *
 * Container: a zip archive of stored entries, "<archive>/data.pkl" (the
 * pickle), "<archive>/data/<key>" (one raw little-endian storage per key),
 * "<archive>/version", optionally "<archive>/byteorder" ("little") and
 * ".data/serialization_id"; read and checked by zip_reader.h.  data.pkl must
 * pass its CRC-32.
 *
 * Pickle: data.pkl is run by the restricted pickle machine of
 * torch_pickle.h, which never calls anything; its result must be a dict of
 * tensors.
 *
 * A tensor is (storage key, storage dtype, storage element count, storage
 * offset, size, stride); it must be contiguous (row-major strides; size-1
 * dimensions may have any stride) and lie inside its storage, and the
 * storage's zip entry must hold exactly count × element size bytes.
 * Tensors sharing a storage (lm_head.decoder.weight and the word embeddings)
 * are aliases: cb_tensor_info.storage tells them apart.
 */
#ifndef CB_TORCH_BIN_H
#define CB_TORCH_BIN_H

#include "safetensors.h"

#define CB_TORCH_MAX_PICKLE	(64u * 1024u * 1024u)	/* data.pkl size limit */

/* Parse pytorch_model.bin and append its tensors to list (file index file_index). */
cb_status	cb_torch_bin_read(const cb_file_reader *r, uint32_t file_index,
							  cb_tensor_list *list, cb_error *err);

#endif							/* CB_TORCH_BIN_H */
