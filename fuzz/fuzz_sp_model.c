/*
 * fuzz_sp_model.c — arbitrary bytes as a sentencepiece.bpe.model.
 *
 * The check is sp_model_harness.h's (shared with fuzz_unigram.c).
 * Seeds: fuzz/corpus/sp_model/ (a small hand-made model) and build/fuzz/seeds/sp_model/
 * (fuzz/seeds.txt: the golden 8000-piece model, another small one).
 */
#include "sp_model_harness.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return check_sp_model(data, size, CB_TOK_LAYOUT_CAMEMBERT);
}
