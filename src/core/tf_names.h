/*
 * tf_names.h — TensorFlow (Keras) variable names → the PyTorch names the
 * rest of the core uses, as transformers' convert_tf_weight_name_to_pt_weight_name
 * maps them (TFCamembertFor* save_pretrained() files: tf_model.h5, its
 * shards, model.safetensors with metadata "format": "tf").
 *
 * A TF name, once its Keras model-name component (tf_camembert_for_masked_lm,
 * maybe with a _1, _2 ... suffix) is dropped:
 *     every ":0" removed; a component "a___b" becomes "b"; "_._" is a level
 *     separator (layer_._3 → layer/3); empty levels dropped; "/" → ".";
 *     last component "kernel" → "weight" TRANSPOSED (TF kernels are
 *     [in_features, out_features], PyTorch's [out, in]), "gamma" → "weight",
 *     "beta" → "bias", "embeddings" → "weight".
 * e.g. roberta/encoder/layer_._0/attention/self/query/kernel:0
 *      → roberta.encoder.layer.0.attention.self.query.weight (transposed).
 */
#ifndef CB_TF_NAMES_H
#define CB_TF_NAMES_H

#include "cb_common.h"
#include "safetensors.h"

/*
 * The name after the first '/' (the Keras model-name component dropped), or
 * NULL if full has no '/' or nothing after it.
 */
const char *cb_tf_name_strip_model(const char *full);

/*
 * Map tf_name (no model-name component) into out (outsize bytes); *transpose
 * is set for kernels.  CB_ERR_FORMAT if the name is empty once mapped or does
 * not fit.
 */
cb_status	cb_tf_name_to_pt(const char *tf_name, char *out, size_t outsize, bool *transpose,
							 cb_error *err);

/*
 * Rename every tensor of list in place (names without the model component):
 * kernels get transposed = true and their 2-D shape swapped to PyTorch's
 * orientation (a kernel that is not 2-D is CB_ERR_UNSUPPORTED).  Two
 * variables that map to one name (the LM head's group repeats the embedding
 * variables) must have the same dtype and shape: the first is kept.
 * what names the source in messages.  The list is left unsorted.
 */
cb_status	cb_tf_list_to_pt(cb_tensor_list *list, const char *what, cb_error *err);

#endif							/* CB_TF_NAMES_H */
