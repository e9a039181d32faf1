/*
 * ut_golden_json.c — see ut_golden_json.h.
 */
#include "ut_golden_json.h"

#include <stdlib.h>

int32_t *
ut_json_ids(const cb_json_value *v, long *n)
{
	int32_t    *out;

	*n = -1;
	if (v == NULL || v->type != CB_JSON_ARRAY)
		return NULL;
	out = malloc((v->count ? v->count : 1) * sizeof(int32_t));
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < v->count; i++)
	{
		if (v->items[i].type != CB_JSON_NUMBER || !v->items[i].is_integer)
		{
			free(out);
			return NULL;
		}
		out[i] = (int32_t) v->items[i].integer;
	}
	*n = (long) v->count;
	return out;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
ut_unhex(const char *hex, size_t hex_len, size_t *len)
{
	char	   *out = malloc(hex_len / 2 + 1);

	if (out == NULL)
		abort();
	for (size_t i = 0; i + 1 < hex_len; i += 2)
		out[i / 2] = (char) (hexval(hex[i]) * 16 + hexval(hex[i + 1]));
	*len = hex_len / 2;
	out[*len] = '\0';
	return out;
}

void
ut_print_ids(FILE *out, const int32_t *ids, size_t n)
{
	fputc('[', out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%d", i ? "," : "", ids[i]);
	fputc(']', out);
}
