/*
 * fuzz_safetensors.c — libFuzzer target for safetensors headers and shard
 * indexes (safetensors.h).  The input is read as a whole safetensors file
 * (memory reader) and also as a model.safetensors.index.json.  Every tensor
 * accepted must lie inside the file.
 */
#include "safetensors.h"

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	cb_file_reader r;
	cb_tensor_list list = {0};
	cb_error	err;
	cb_shard_index *idx = NULL;

	cb_file_reader_memory(&r, data, size, "fuzz.safetensors");
	if (cb_safetensors_read(&r, 0, &list, &err) == CB_OK)
	{
		for (size_t i = 0; i < list.count; i++)
		{
			const cb_tensor_info *t = &list.tensors[i];

			if (t->offset > size || t->nbytes > size - t->offset ||
				t->nbytes != t->numel * cb_tensor_dtype_size(t->dtype))
				__builtin_trap();
		}
		if (cb_tensor_list_finish(&list, "fuzz", &err) == CB_OK)
			for (size_t i = 0; i < list.count; i++)
				if (cb_tensor_list_find(&list, list.tensors[i].name) != &list.tensors[i])
					__builtin_trap();
	}
	cb_tensor_list_free(&list);

	if (cb_shard_index_parse((const char *) data, size, "fuzz.index.json", &idx, &err) == CB_OK)
	{
		for (size_t i = 0; i < idx->num_names; i++)
			if (idx->file_of[i] >= idx->num_files)
				__builtin_trap();
		cb_shard_index_free(idx);
	}
	return 0;
}
