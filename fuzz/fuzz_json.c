/*
 * fuzz_json.c — libFuzzer target for the strict JSON parser (json.h).
 * Parses the input, walks the whole DOM (lookups included) and frees it.
 */
#include "json.h"

#include <string.h>

static size_t
walk(const cb_json_value *v, int depth)
{
	size_t		n = 1;

	switch (v->type)
	{
		case CB_JSON_STRING:
			/* decoded strings are NUL-terminated at string_len */
			if (v->string[v->string_len] != '\0')
				__builtin_trap();
			break;
		case CB_JSON_ARRAY:
			for (size_t i = 0; i < v->count; i++)
				n += walk(&v->items[i], depth + 1);
			break;
		case CB_JSON_OBJECT:
			for (size_t i = 0; i < v->count; i++)
			{
				const cb_json_member *m = &v->members[i];

				n += walk(&m->value, depth + 1);
				/* every key can be found again (when it has no NUL inside) */
				if (strlen(m->key) == m->key_len && cb_json_get(v, m->key) != &m->value)
					__builtin_trap();
			}
			break;
		default:
			break;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	cb_json_doc *doc = NULL;
	cb_error	err;
	cb_json_limits lim = cb_json_default_limits;

	lim.max_values = 100000;
	if (cb_json_parse((const char *) data, size, "fuzz", &lim, &doc, &err) == CB_OK)
	{
		walk(cb_json_root(doc), 0);
		cb_json_free(doc);
	}
	else if (doc != NULL || err.message[0] == '\0')
		__builtin_trap();
	return 0;
}
