/*
 * ut_golden_json.h — reading and printing the golden tokenizer cases
 * (the .jsonl files under test/golden): id arrays, hex-encoded texts.
 */
#ifndef UT_GOLDEN_JSON_H
#define UT_GOLDEN_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"

/* A JSON array of integers as a malloc'ed int32 array; NULL and *n = -1 if v is not one. */
int32_t    *ut_json_ids(const cb_json_value *v, long *n);

/* A hex string as malloc'ed bytes, NUL-terminated; *len gets their count. */
char	   *ut_unhex(const char *hex, size_t hex_len, size_t *len);

/* ids as [a,b,c] (no newline). */
void		ut_print_ids(FILE *out, const int32_t *ids, size_t n);

#endif							/* UT_GOLDEN_JSON_H */
