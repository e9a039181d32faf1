/*
 * fuzz_tf_h5.c — libFuzzer target for TensorFlow HDF5 weight files (tf_h5.h).
 *
 * The input is read twice:
 *   - as a tf_model.h5 file image, the production path: libhdf5 walks it in
 *     a forked child and this process validates the child's report (libhdf5
 *     is not instrumented, and its crashes must stay in the child: this
 *     process must only ever get a status).  Every tensor accepted lies
 *     inside the file; the name mapping runs on the result;
 *   - as a child's report (what a child corrupted by a hostile file could
 *     send), straight into the parent's decoder.
 * Seeds (fuzz/corpus/tf_h5, made by fuzz/tf_h5_seeds.c): small Keras-layout
 * and shard-layout files, and a report.
 */
#include "tf_h5.h"
#include "tf_names.h"

#include <string.h>

static void
check(const cb_tensor_list *list, size_t size)
{
	for (size_t i = 0; i < list->count; i++)
	{
		const cb_tensor_info *t = &list->tensors[i];

		if (t->offset > size || t->nbytes > size - t->offset ||
			t->nbytes != t->numel * cb_tensor_dtype_size(t->dtype))
			__builtin_trap();
	}
}

static void
map(cb_tensor_list *list)
{
	cb_error	err;

	if (cb_tf_list_to_pt(list, "fuzz", &err) == CB_OK &&
		cb_tensor_list_finish(list, "fuzz", &err) == CB_OK)
		for (size_t i = 0; i < list->count; i++)
			if (cb_tensor_list_find(list, list->tensors[i].name) != &list->tensors[i])
				__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	cb_file_reader r;
	cb_tensor_list list = {0};
	cb_error	err;

	cb_file_reader_memory(&r, data, size, "fuzz.h5");
	if (cb_tf_h5_read(&r, 0, &list, &err) == CB_OK)
	{
		check(&list, size);
		map(&list);
	}
	cb_tensor_list_free(&list);

	memset(&list, 0, sizeof(list));
	if (cb_tf_h5_decode_report(data, size, "fuzz.report", 1u << 20, 0, &list, &err) == CB_OK)
	{
		check(&list, 1u << 20);
		map(&list);
	}
	cb_tensor_list_free(&list);
	return 0;
}
