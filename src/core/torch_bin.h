/*
 * torch_bin.h — pytorch_model.bin, as written by torch.save (zip format,
 * PyTorch ≥ 1.6) for a state_dict: the list of its tensors, without
 * executing anything.
 *
 * Container: a zip archive of *stored* (uncompressed) entries,
 * "<archive>/data.pkl" (the pickle), "<archive>/data/<key>" (one raw
 * little-endian storage per key), "<archive>/version", optionally
 * "<archive>/byteorder" ("little") and ".data/serialization_id".  The
 * central directory (with ZIP64 records, which torch always writes) is
 * checked against the file size, every local header against the central
 * directory (signature, name, bounds).  Compressed entries, encrypted
 * entries, multi-disk archives and the legacy (pre-1.6, non-zip) format are
 * CB_ERR_UNSUPPORTED.
 *
 * Pickle: a small stack machine that understands only what a state_dict
 * needs (protocols 2–5): PROTO, FRAME, STOP, MARK, EMPTY_DICT/LIST/TUPLE,
 * DICT, LIST, TUPLE, TUPLE1/2/3, SETITEM(S), APPEND(S), (SHORT_)BINUNICODE,
 * (SHORT_)BINSTRING, BININT(1/2), LONG1, BINFLOAT, NONE, NEWTRUE/NEWFALSE,
 * (LONG_)BINPUT, (LONG_)BINGET, MEMOIZE, GLOBAL / STACK_GLOBAL, BINPERSID,
 * REDUCE and BUILD.  GLOBAL is accepted only for a fixed list of names
 * (torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
 * collections.OrderedDict, torch.<Type>Storage); REDUCE only applies those
 * (nothing is ever called: a rebuild yields a tensor description); BUILD
 * only sets state on an OrderedDict (ignored: torch's _metadata).  Anything
 * else is rejected with a message naming the opcode and its offset.  The
 * stack, memo, and every string are bounded.
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
#define CB_TORCH_MAX_ENTRIES 1000000	/* zip entries */

/* Parse pytorch_model.bin and append its tensors to list (file index file_index). */
cb_status	cb_torch_bin_read(const cb_file_reader *r, uint32_t file_index,
							  cb_tensor_list *list, cb_error *err);

#endif							/* CB_TORCH_BIN_H */
