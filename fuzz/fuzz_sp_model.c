/*
 * fuzz_sp_model.c — arbitrary bytes as a sentencepiece.bpe.model.
 *
 * The check is sp_model_harness.h's (shared with fuzz_unigram.c).
 * Seeds: fuzz/corpus/sp_model/ (the golden 8000-piece model and small
 * hand-made ones).
 */
#include "sp_model_harness.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return check_sp_model(data, size, CB_TOK_LAYOUT_CAMEMBERT);
}
