/*
 * json.c — strict JSON parser (see json.h).
 *
 * Recursive descent over the text; the recursion depth is bounded by
 * limits->max_depth.  Values are stored in an arena owned by the document:
 * arrays and objects are collected in temporary growable vectors and copied
 * into the arena once complete.
 */
#include "json.h"
#include "file_io.h"

#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

const cb_json_limits cb_json_default_limits = {
	100u * 1024u * 1024u,		/* max_input */
	64,							/* max_depth */
	4u * 1024u * 1024u			/* max_values */
};

/* ---- arena ---------------------------------------------------------------- */

typedef struct arena_block
{
	struct arena_block *next;
	size_t		used;
	size_t		size;
	/* data follows, max-aligned */
} arena_block;

#define ARENA_HEADER ((sizeof(arena_block) + 15) & ~(size_t) 15)
#define ARENA_CHUNK (64 * 1024)

struct cb_json_doc
{
	arena_block *blocks;
	cb_json_value root;
};

static void *
arena_alloc(cb_json_doc *doc, size_t size)
{
	arena_block *b = doc->blocks;
	size_t		need = (size + 15) & ~(size_t) 15;

	if (need < size)
		return NULL;
	if (b == NULL || b->size - b->used < need)
	{
		size_t		bsize = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		size_t		total;

		if (!cb_add_size(bsize, ARENA_HEADER, &total))
			return NULL;
		b = cb_malloc(total);
		if (b == NULL)
			return NULL;
		b->size = bsize;
		b->used = 0;
		b->next = doc->blocks;
		doc->blocks = b;
	}
	cb_assert(b->size - b->used >= need);
	{
		void	   *p = (char *) b + ARENA_HEADER + b->used;

		b->used += need;
		return p;
	}
}

/* ---- parser state ---------------------------------------------------------- */

typedef struct parser
{
	const unsigned char *p;
	const unsigned char *start;
	const unsigned char *end;
	const char *what;
	cb_json_limits limits;
	size_t		values;
	cb_json_doc *doc;
	cb_error   *err;
} parser;

static cb_status
fail(parser *ps, const char *problem)
{
	return cb_set_error(ps->err, CB_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s",
						ps->what, (size_t) (ps->p - ps->start), problem);
}

static cb_status
nomem(parser *ps)
{
	return cb_set_error(ps->err, CB_ERR_NOMEM, "%s: out of memory while parsing JSON", ps->what);
}

static void
skip_ws(parser *ps)
{
	while (ps->p < ps->end &&
		   (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static cb_status parse_value(parser *ps, cb_json_value *out, int depth);

/* ---- strings ------------------------------------------------------------- */

static int
hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex4(parser *ps, unsigned *out)
{
	unsigned	v = 0;

	if (ps->end - ps->p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		int			d = hex_digit(ps->p[i]);

		if (d < 0)
			return false;
		v = v * 16 + (unsigned) d;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static size_t
put_utf8(unsigned char *o, unsigned cp)
{
	if (cp < 0x80)
	{
		o[0] = (unsigned char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		o[0] = (unsigned char) (0xC0 | (cp >> 6));
		o[1] = (unsigned char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		o[0] = (unsigned char) (0xE0 | (cp >> 12));
		o[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char) (0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char) (0xF0 | (cp >> 18));
	o[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char) (0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 if it is
 * invalid (truncated, bad continuation, overlong, surrogate, > U+10FFFF).
 */
static size_t
utf8_sequence(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t		n;
	unsigned	cp;

	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		cp = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		cp = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		cp = c & 0x07;
	}
	else
		return 0;
	if ((size_t) (end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		(cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* ps->p is just after the opening quote. */
static cb_status
parse_string(parser *ps, const char **out, size_t *out_len)
{
	const unsigned char *s = ps->p;
	unsigned char *buf;
	size_t		o = 0;
	size_t		raw;

	/* find the closing quote to size the buffer (decoded <= raw length) */
	while (s < ps->end && *s != '"')
	{
		if (*s == '\\')
		{
			s++;
			if (s >= ps->end)
				break;
		}
		s++;
	}
	if (s >= ps->end)
	{
		ps->p = ps->end;
		return fail(ps, "unterminated string");
	}
	raw = (size_t) (s - ps->p);
	buf = arena_alloc(ps->doc, raw + 1);
	if (buf == NULL)
		return nomem(ps);

	while (*ps->p != '"')
	{
		unsigned char c = *ps->p;

		if (c < 0x20)
			return fail(ps, "unescaped control character in string");
		if (c == '\\')
		{
			unsigned char e;

			ps->p++;
			e = *ps->p++;
			switch (e)
			{
				case '"':
					buf[o++] = '"';
					break;
				case '\\':
					buf[o++] = '\\';
					break;
				case '/':
					buf[o++] = '/';
					break;
				case 'b':
					buf[o++] = '\b';
					break;
				case 'f':
					buf[o++] = '\f';
					break;
				case 'n':
					buf[o++] = '\n';
					break;
				case 'r':
					buf[o++] = '\r';
					break;
				case 't':
					buf[o++] = '\t';
					break;
				case 'u':
					{
						unsigned	cp,
									lo;

						if (!read_hex4(ps, &cp))
							return fail(ps, "bad \\u escape");
						if (cp >= 0xDC00 && cp <= 0xDFFF)
							return fail(ps, "lone low surrogate in \\u escape");
						if (cp >= 0xD800 && cp <= 0xDBFF)
						{
							if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
								return fail(ps, "high surrogate not followed by a low surrogate");
							ps->p += 2;
							if (!read_hex4(ps, &lo))
								return fail(ps, "bad \\u escape");
							if (lo < 0xDC00 || lo > 0xDFFF)
								return fail(ps, "high surrogate not followed by a low surrogate");
							cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						}
						/* 6 (or 12) escape bytes always cover the <= 4 output bytes */
						o += put_utf8(buf + o, cp);
						break;
					}
				default:
					ps->p--;
					return fail(ps, "invalid escape sequence");
			}
		}
		else if (c < 0x80)
		{
			buf[o++] = c;
			ps->p++;
		}
		else
		{
			size_t		n = utf8_sequence(ps->p, s);

			if (n == 0)
				return fail(ps, "invalid UTF-8 in string");
			memcpy(buf + o, ps->p, n);
			o += n;
			ps->p += n;
		}
	}
	ps->p++;					/* closing quote */
	buf[o] = '\0';
	*out = (const char *) buf;
	*out_len = o;
	return CB_OK;
}

/* ---- numbers ------------------------------------------------------------- */

static cb_status
parse_number(parser *ps, cb_json_value *v)
{
	const unsigned char *b = ps->p;
	const unsigned char *q = ps->p;
	bool		integral = true;
	bool		neg = false;
	size_t		len;
	char	   *tmp;
	char	   *endp;
	char		dp;

	if (q < ps->end && *q == '-')
	{
		neg = true;
		q++;
	}
	if (q >= ps->end || *q < '0' || *q > '9')
	{
		ps->p = q;
		return fail(ps, "invalid number");
	}
	if (*q == '0')
	{
		q++;
		if (q < ps->end && *q >= '0' && *q <= '9')
		{
			ps->p = q;
			return fail(ps, "leading zero in number");
		}
	}
	else
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	if (q < ps->end && *q == '.')
	{
		integral = false;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9')
		{
			ps->p = q;
			return fail(ps, "digit expected after decimal point");
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E'))
	{
		integral = false;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || *q < '0' || *q > '9')
		{
			ps->p = q;
			return fail(ps, "digit expected in exponent");
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	len = (size_t) (q - b);

	v->type = CB_JSON_NUMBER;
	v->is_integer = false;
	if (integral)
	{
		uint64_t	mag = 0;
		bool		ok = true;
		const unsigned char *d = b + (neg ? 1 : 0);

		for (; d < q; d++)
		{
			if (mag > (UINT64_MAX - 9) / 10)
			{
				ok = false;
				break;
			}
			mag = mag * 10 + (uint64_t) (*d - '0');
		}
		if (ok && (neg ? mag <= (uint64_t) INT64_MAX + 1 : mag <= (uint64_t) INT64_MAX))
		{
			v->is_integer = true;
			v->integer = neg ? (mag == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) mag)
				: (int64_t) mag;
		}
	}

	/* strtod needs a NUL-terminated copy, with the locale's decimal point */
	tmp = cb_malloc(len + 1);
	if (tmp == NULL)
		return nomem(ps);
	memcpy(tmp, b, len);
	tmp[len] = '\0';
	dp = localeconv()->decimal_point[0];
	if (dp != '.' && dp != '\0')
		for (size_t i = 0; i < len; i++)
			if (tmp[i] == '.')
				tmp[i] = dp;
	v->number = strtod(tmp, &endp);
	cb_free(tmp);
	ps->p = q;
	return CB_OK;
}

/* ---- arrays and objects -------------------------------------------------- */

static int
member_cmp(const void *a, const void *b)
{
	const cb_json_member *x = *(cb_json_member *const *) a;
	const cb_json_member *y = *(cb_json_member *const *) b;
	size_t		n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int			c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return x->key_len < y->key_len ? -1 : x->key_len > y->key_len ? 1 : 0;
}

static cb_status
parse_array(parser *ps, cb_json_value *v, int depth)
{
	cb_json_value *vec = NULL;
	size_t		n = 0,
				cap = 0;
	cb_status	st;

	ps->p++;					/* '[' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']')
		ps->p++;
	else
	{
		for (;;)
		{
			if (cb_grow_array((void **) &vec, &cap, n + 1, sizeof(cb_json_value), ps->what, NULL) != CB_OK)
			{
				cb_free(vec);
				return nomem(ps);
			}
			st = parse_value(ps, &vec[n], depth + 1);
			if (st != CB_OK)
			{
				cb_free(vec);
				return st;
			}
			n++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',')
			{
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == ']')
			{
				ps->p++;
				break;
			}
			cb_free(vec);
			return fail(ps, "',' or ']' expected in array");
		}
	}
	v->type = CB_JSON_ARRAY;
	v->count = n;
	v->items = NULL;
	if (n > 0)
	{
		v->items = arena_alloc(ps->doc, n * sizeof(cb_json_value));
		if (v->items == NULL)
		{
			cb_free(vec);
			return nomem(ps);
		}
		memcpy(v->items, vec, n * sizeof(cb_json_value));
	}
	cb_free(vec);
	return CB_OK;
}

static cb_status
parse_object(parser *ps, cb_json_value *v, int depth)
{
	cb_json_member *vec = NULL;
	size_t		n = 0,
				cap = 0;
	cb_status	st;

	ps->p++;					/* '{' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
		ps->p++;
	else
	{
		for (;;)
		{
			if (cb_grow_array((void **) &vec, &cap, n + 1, sizeof(cb_json_member), ps->what, NULL) != CB_OK)
			{
				cb_free(vec);
				return nomem(ps);
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != '"')
			{
				cb_free(vec);
				return fail(ps, "string key expected in object");
			}
			ps->p++;
			st = parse_string(ps, &vec[n].key, &vec[n].key_len);
			if (st != CB_OK)
			{
				cb_free(vec);
				return st;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
			{
				cb_free(vec);
				return fail(ps, "':' expected after object key");
			}
			ps->p++;
			st = parse_value(ps, &vec[n].value, depth + 1);
			if (st != CB_OK)
			{
				cb_free(vec);
				return st;
			}
			n++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',')
			{
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == '}')
			{
				ps->p++;
				break;
			}
			cb_free(vec);
			return fail(ps, "',' or '}' expected in object");
		}
	}
	v->type = CB_JSON_OBJECT;
	v->count = n;
	v->members = NULL;
	v->sorted = NULL;
	if (n > 0)
	{
		v->members = arena_alloc(ps->doc, n * sizeof(cb_json_member));
		v->sorted = arena_alloc(ps->doc, n * sizeof(cb_json_member *));
		if (v->members == NULL || v->sorted == NULL)
		{
			cb_free(vec);
			return nomem(ps);
		}
		memcpy(v->members, vec, n * sizeof(cb_json_member));
		cb_free(vec);
		for (size_t i = 0; i < n; i++)
			v->sorted[i] = &v->members[i];
		qsort(v->sorted, n, sizeof(cb_json_member *), member_cmp);
		for (size_t i = 1; i < n; i++)
			if (member_cmp(&v->sorted[i - 1], &v->sorted[i]) == 0)
			{
				char		shown[64];
				size_t		kl = v->sorted[i]->key_len;

				if (kl > sizeof(shown) - 1)
					kl = sizeof(shown) - 1;
				memcpy(shown, v->sorted[i]->key, kl);
				shown[kl] = '\0';
				for (size_t j = 0; j < kl; j++)
					if ((unsigned char) shown[j] < 0x20)
						shown[j] = '?';
				return cb_set_error(ps->err, CB_ERR_FORMAT,
									"%s: invalid JSON: duplicate key \"%s\" in object ending at byte %zu",
									ps->what, shown, (size_t) (ps->p - ps->start));
			}
	}
	else
		cb_free(vec);
	return CB_OK;
}

static bool
match_literal(parser *ps, const char *lit)
{
	size_t		n = strlen(lit);

	if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static cb_status
parse_value(parser *ps, cb_json_value *v, int depth)
{
	memset(v, 0, sizeof(*v));
	if (++ps->values > ps->limits.max_values)
		return cb_set_error(ps->err, CB_ERR_LIMIT,
							"%s: JSON document has more than %zu values", ps->what,
							ps->limits.max_values);
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of input");
	switch (*ps->p)
	{
		case '{':
		case '[':
			if (depth >= ps->limits.max_depth)
				return cb_set_error(ps->err, CB_ERR_LIMIT,
									"%s: JSON nesting deeper than %d at byte %zu", ps->what,
									ps->limits.max_depth, (size_t) (ps->p - ps->start));
			return *ps->p == '{' ? parse_object(ps, v, depth) : parse_array(ps, v, depth);
		case '"':
			ps->p++;
			v->type = CB_JSON_STRING;
			return parse_string(ps, &v->string, &v->string_len);
		case 't':
			if (!match_literal(ps, "true"))
				return fail(ps, "invalid literal");
			v->type = CB_JSON_BOOL;
			v->boolean = true;
			return CB_OK;
		case 'f':
			if (!match_literal(ps, "false"))
				return fail(ps, "invalid literal");
			v->type = CB_JSON_BOOL;
			v->boolean = false;
			return CB_OK;
		case 'n':
			if (!match_literal(ps, "null"))
				return fail(ps, "invalid literal");
			v->type = CB_JSON_NULL;
			return CB_OK;
		default:
			if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
				return parse_number(ps, v);
			return fail(ps, "unexpected character");
	}
}

cb_status
cb_json_parse(const char *text, size_t len, const char *what,
			  const cb_json_limits *limits, cb_json_doc **out, cb_error *err)
{
	parser		ps;
	cb_json_doc *doc;
	cb_status	st;

	*out = NULL;
	if (what == NULL)
		what = "JSON";
	if (limits == NULL)
		limits = &cb_json_default_limits;
	if (text == NULL && len > 0)
		return cb_set_error(err, CB_ERR_INVALID, "%s: NULL JSON text", what);
	if (len > limits->max_input)
		return cb_set_error(err, CB_ERR_LIMIT, "%s: JSON text of %zu bytes exceeds the limit of %zu",
							what, len, limits->max_input);
	doc = cb_calloc(1, sizeof(*doc));
	if (doc == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);

	ps.start = ps.p = (const unsigned char *) (text ? text : "");
	ps.end = ps.start + len;
	ps.what = what;
	ps.limits = *limits;
	ps.values = 0;
	ps.doc = doc;
	ps.err = err;

	/* a UTF-8 byte order mark is not JSON (RFC 8259 §8.1 allows rejecting it) */
	st = parse_value(&ps, &doc->root, 0);
	if (st == CB_OK)
	{
		skip_ws(&ps);
		if (ps.p != ps.end)
			st = fail(&ps, "trailing characters after the JSON value");
	}
	if (st != CB_OK)
	{
		cb_json_free(doc);
		return st;
	}
	*out = doc;
	return CB_OK;
}

const cb_json_value *
cb_json_root(const cb_json_doc *doc)
{
	return doc ? &doc->root : NULL;
}

void
cb_json_free(cb_json_doc *doc)
{
	arena_block *b;

	if (doc == NULL)
		return;
	b = doc->blocks;
	while (b != NULL)
	{
		arena_block *next = b->next;

		cb_free(b);
		b = next;
	}
	cb_free(doc);
}

const cb_json_value *
cb_json_get(const cb_json_value *object, const char *key)
{
	size_t		lo = 0,
				hi,
				klen;

	if (object == NULL || object->type != CB_JSON_OBJECT || key == NULL)
		return NULL;
	klen = strlen(key);
	hi = object->count;
	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		const cb_json_member *m = object->sorted[mid];
		size_t		n = m->key_len < klen ? m->key_len : klen;
		int			c = memcmp(m->key, key, n);

		if (c == 0)
			c = m->key_len < klen ? -1 : m->key_len > klen ? 1 : 0;
		if (c == 0)
			return &m->value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
cb_json_type_name(cb_json_type type)
{
	switch (type)
	{
		case CB_JSON_NULL:
			return "null";
		case CB_JSON_BOOL:
			return "boolean";
		case CB_JSON_NUMBER:
			return "number";
		case CB_JSON_STRING:
			return "string";
		case CB_JSON_ARRAY:
			return "array";
		case CB_JSON_OBJECT:
			return "object";
	}
	return "unknown";
}

cb_status
cb_json_load_file(const char *path, const cb_json_limits *limits,
				  cb_json_doc **out, cb_error *err)
{
	return cb_json_load_file_in(path, NULL, limits, out, err);
}

cb_status
cb_json_load_file_in(const char *path, const char *root, const cb_json_limits *limits,
					 cb_json_doc **out, cb_error *err)
{
	char	   *buf;
	size_t		len;
	cb_status	status;

	*out = NULL;
	if (limits == NULL)
		limits = &cb_json_default_limits;
	status = cb_file_read_all(path, root, limits->max_input, &buf, &len, err);
	if (status != CB_OK)
		return status;
	status = cb_json_parse(buf, len, path, limits, out, err);
	cb_free(buf);
	return status;
}
