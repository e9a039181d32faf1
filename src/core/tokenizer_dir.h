/*
 * tokenizer_dir.h — the tokenizer of a model directory, whichever of
 * CamemBERT's family it is, compiled into one tokenizer image.
 *
 * The kind is chosen from the directory:
 *   - tokenizer_config.json's "tokenizer_class" when present:
 *       RobertaTokenizer[Fast] / GPT2Tokenizer[Fast]  byte-level BPE: vocab.json + merges.txt
 *       XLMRobertaTokenizer[Fast]                     sentencepiece.bpe.model, XLM-R's ids
 *       CamembertTokenizer[Fast]                      sentencepiece.bpe.model, CamemBERT's ids
 *     (any other class is CB_ERR_UNSUPPORTED);
 *   - else the files: vocab.json and merges.txt make a byte-level BPE;
 *     sentencepiece.bpe.model a SentencePiece one, with XLM-R's ids when
 *     config.json's model_type is "xlm-roberta", else CamemBERT's.
 * A SentencePiece model is segmented as its model_type says (BPE or unigram).
 * Files are read with cb_file_read_all (regular files, confined to root
 * unless root is NULL), each at most CB_TOKENIZER_DIR_MAX_FILE bytes.
 */
#ifndef CB_TOKENIZER_DIR_H
#define CB_TOKENIZER_DIR_H

#include "cb_common.h"

#define CB_TOKENIZER_DIR_MAX_FILE ((size_t) 256 << 20)

/* *image is cb_malloc'ed; *file names the file the kind was read from (static string). */
cb_status	cb_tokenizer_build_dir(const char *dir, const char *root, void **image, size_t *image_len,
								   const char **file, cb_error *err);

#endif							/* CB_TOKENIZER_DIR_H */
