/*
 * fuzz_config.c — libFuzzer target for config.json parsing (config.h).
 * A parsed configuration must pass cb_config_validate and have its labels.
 */
#include "config.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	cb_model_config *mc = NULL;
	cb_error	err;

	if (cb_config_parse((const char *) data, size, "fuzz/config.json", &mc, &err) == CB_OK)
	{
		if (cb_config_validate(&mc->config, "fuzz", &err) != CB_OK)
			__builtin_trap();
		for (int32_t i = 0; i < mc->num_labels; i++)
			if (mc->labels[i] == NULL || strlen(mc->labels[i]) > CB_CONFIG_MAX_LABEL_BYTES)
				__builtin_trap();
		cb_config_free(mc);
	}
	else if (mc != NULL || err.message[0] == '\0')
		__builtin_trap();
	return 0;
}
