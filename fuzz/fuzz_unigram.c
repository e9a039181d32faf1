/*
 * fuzz_unigram.c — arbitrary bytes as an XLM-RoBERTa sentencepiece.bpe.model (unigram, XLM-R ids).
 *
 * The check is sp_model_harness.h's (shared with fuzz_sp_model.c).
 * Seeds: fuzz/corpus/unigram/ (a BPE model: the layout applies to both) and
 * build/fuzz/seeds/unigram/ (fuzz/seeds.txt: the golden 8000-piece unigram model).
 */
#include "sp_model_harness.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return check_sp_model(data, size, CB_TOK_LAYOUT_XLMR);
}
