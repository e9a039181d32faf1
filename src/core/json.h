/*
 * json.h — a strict JSON (RFC 8259) parser producing a read-only DOM.
 *
 * Used for config.json, safetensors headers and *.index.json files, all of
 * which are treated as hostile input:
 *   - the whole text must be one JSON value (whitespace around it allowed);
 *   - strings must be valid UTF-8 (no overlong forms, no encoded surrogates,
 *     nothing above U+10FFFF), control characters must be escaped, \u escapes
 *     are decoded (surrogate pairs combined; a lone surrogate is an error);
 *   - numbers follow the JSON grammar exactly (no NaN, Infinity, leading '+',
 *     leading zeros, hex); integers that fit int64 are also kept exactly;
 *   - duplicate keys in one object are an error (they would be ambiguous);
 *   - nesting depth, number of values and input size are limited
 *     (cb_json_limits), so hostile input cannot make us recurse or allocate
 *     without bound.
 * Every value of a document lives in one allocation list owned by the
 * cb_json_doc; cb_json_free releases everything.  Decoded strings are
 * NUL-terminated and also carry their length (they may contain U+0000).
 */
#ifndef CB_JSON_H
#define CB_JSON_H

#include "cb_common.h"

typedef enum cb_json_type
{
	CB_JSON_NULL = 0,
	CB_JSON_BOOL,
	CB_JSON_NUMBER,
	CB_JSON_STRING,
	CB_JSON_ARRAY,
	CB_JSON_OBJECT
} cb_json_type;

typedef struct cb_json_value cb_json_value;
typedef struct cb_json_member cb_json_member;

struct cb_json_value
{
	cb_json_type type;
	bool		boolean;		/* CB_JSON_BOOL */
	bool		is_integer;		/* CB_JSON_NUMBER: no fraction/exponent and fits int64 */
	int64_t		integer;		/* valid when is_integer */
	double		number;			/* CB_JSON_NUMBER (nearest double) */
	const char *string;			/* CB_JSON_STRING: decoded, NUL-terminated */
	size_t		string_len;		/* bytes, excluding the terminating NUL */
	size_t		count;			/* CB_JSON_ARRAY: items; CB_JSON_OBJECT: members */
	cb_json_value *items;		/* CB_JSON_ARRAY, in document order */
	cb_json_member *members;	/* CB_JSON_OBJECT, in document order */
	cb_json_member **sorted;	/* CB_JSON_OBJECT: members sorted by key (for lookup) */
};

struct cb_json_member
{
	const char *key;			/* decoded, NUL-terminated */
	size_t		key_len;
	cb_json_value value;
};

typedef struct cb_json_limits
{
	size_t		max_input;		/* bytes of text */
	int			max_depth;		/* nesting of arrays/objects */
	size_t		max_values;		/* total number of values in the document */
} cb_json_limits;

/* Defaults: 100 MB of text, depth 64, 4 Mi values. */
extern const cb_json_limits cb_json_default_limits;

typedef struct cb_json_doc cb_json_doc;

/*
 * Parse text[0..len) (not necessarily NUL-terminated).  what names the input
 * in error messages (e.g. a file path).  limits may be NULL (defaults).
 * On success *out owns the DOM; cb_json_root() gives its root value.
 * Errors: CB_ERR_FORMAT (with the byte offset), CB_ERR_LIMIT, CB_ERR_NOMEM.
 */
cb_status	cb_json_parse(const char *text, size_t len, const char *what,
						  const cb_json_limits *limits, cb_json_doc **out,
						  cb_error *err);
const cb_json_value *cb_json_root(const cb_json_doc *doc);
void		cb_json_free(cb_json_doc *doc);

/*
 * Read the file at path (at most limits->max_input bytes, else CB_ERR_LIMIT)
 * and parse it.  CB_ERR_IO names the path and carries errno.  The file is
 * opened by cb_file_open (file_io.h): regular files only, never blocking;
 * the _in variant also confines it to root (NULL: anywhere).
 */
cb_status	cb_json_load_file(const char *path, const cb_json_limits *limits,
							  cb_json_doc **out, cb_error *err);
cb_status	cb_json_load_file_in(const char *path, const char *root,
								 const cb_json_limits *limits, cb_json_doc **out,
								 cb_error *err);

/* Object member lookup by key (NUL-terminated); NULL if absent or not an object. */
const cb_json_value *cb_json_get(const cb_json_value *object, const char *key);

/* Readable name of a type ("null", "boolean", "number", ...). */
const char *cb_json_type_name(cb_json_type type);

#endif							/* CB_JSON_H */
