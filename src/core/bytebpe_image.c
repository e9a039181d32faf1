/*
 * bytebpe_image.c — the byte-level BPE's image (see bytebpe.h): cb_bbpe_build reads
 * vocab.json, merges.txt and the tokenizer's JSON configuration and compiles them,
 * cb_bbpe_open validates an image in place and views it.
 */
#include "bytebpe.h"

#include <stdlib.h>
#include <string.h>

#include "bpe.h"				/* cb_bpe_hash */
#include "bytebpe_internal.h"
#include "image_layout.h"
#include "json.h"
#include "utf8.h"

/* ------------------------------------------------------------------------- */
/* The image */

#define BBPE_MAGIC "CBBBPIMG"
#define BBPE_VERSION 1
#define BBPE_FLAG_ADD_PREFIX_SPACE 0x01u

/* The image's header: it starts with the fields of cb_image_prefix (image_layout.h). */
typedef struct bbpe_header
{
	char		magic[8];
	uint32_t	version;
	uint32_t	header_size;
	uint64_t	image_len;
	uint32_t	byte_order;
	uint32_t	flags;
	int32_t		id_limit;
	int32_t		vocab_size;
	uint32_t	slot_capacity;
	uint32_t	merge_capacity;
	uint32_t	n_merges;
	uint32_t	n_added;
	int32_t		bos_id,
				eos_id,
				cls_id,
				sep_id,
				pad_id,
				unk_id,
				mask_id;
	int32_t		reserved;
	uint64_t	fingerprint;
	cb_image_section tokens;	/* cb_bbpe_token[id_limit] */
	cb_image_section strings;
	cb_image_section slots;	/* cb_bbpe_str_slot[slot_capacity] */
	cb_image_section merges;	/* cb_bbpe_merge_slot[merge_capacity] */
	cb_image_section added;	/* cb_bbpe_added[n_added] */
	int32_t		byte_id[256];
} bbpe_header;

CB_IMAGE_HEADER_STARTS_WITH_PREFIX(bbpe_header);

/* ---- build --------------------------------------------------------------- */

typedef struct build_added
{
	const char *str;
	size_t		len;
	int32_t		id;
	uint32_t	flags;
} build_added;

typedef struct build_state
{
	cb_json_doc *vocab_doc;
	cb_json_doc *config_doc;
	cb_json_doc *map_doc;
	int32_t		id_limit;
	int32_t		n_vocab;
	/* temporary hash for the build: vocab.json's strings */
	cb_bbpe_str_slot *slots;
	uint32_t	slot_cap;
	cb_bbpe_token *tmp_tokens;
	char	   *tmp_strings;
	build_added *added;
	size_t		n_added;
	size_t		added_cap;
	cb_bbpe_merge_slot *merges;
	uint32_t	merge_cap;
	uint32_t	n_merges;
} build_state;

static const cb_json_limits kVocabLimits = {
	.max_input = (size_t) 256 << 20,
	.max_depth = 8,
	.max_values = (size_t) 2 * (CB_BBPE_MAX_ID + 1),
};

static const cb_json_limits kConfigLimits = {
	.max_input = (size_t) 16 << 20,
	.max_depth = 16,
	.max_values = (size_t) 1 << 20,
};

static int32_t
vocab_lookup(const build_state *b, const char *s, size_t len)
{
	return find_string(b->slots, b->slot_cap - 1, b->tmp_tokens, b->tmp_strings, s, len);
}

static const build_added *
added_lookup(const build_state *b, const char *s, size_t len)
{
	for (size_t i = 0; i < b->n_added; i++)
		if (b->added[i].len == len && memcmp(b->added[i].str, s, len) == 0)
			return &b->added[i];
	return NULL;
}

static cb_status
read_vocab(build_state *b, const char *text, size_t len, cb_error *err)
{
	const cb_json_value *root;
	cb_status	st;
	size_t		n;
	size_t		strings_len = 0;

	st = cb_json_parse(text, len, "vocab.json", &kVocabLimits, &b->vocab_doc, err);
	if (st != CB_OK)
		return st;
	root = cb_json_root(b->vocab_doc);
	if (root->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "vocab.json: not an object of token -> id");
	n = root->count;
	if (n == 0)
		return cb_set_error(err, CB_ERR_FORMAT, "vocab.json: no tokens");
	if (n > CB_BBPE_MAX_ID)
		return cb_set_error(err, CB_ERR_LIMIT, "vocab.json: %zu tokens (limit %d)", n, CB_BBPE_MAX_ID);
	b->id_limit = 0;
	for (size_t i = 0; i < n; i++)
	{
		const cb_json_member *m = &root->members[i];

		if (m->value.type != CB_JSON_NUMBER || !m->value.is_integer ||
			m->value.integer < 0 || m->value.integer > CB_BBPE_MAX_ID)
			return cb_set_error(err, CB_ERR_FORMAT,
								"vocab.json: the id of token %zu is not an integer in 0..%d", i, CB_BBPE_MAX_ID);
		if (m->key_len == 0 || m->key_len > CB_BBPE_MAX_TOKEN_BYTES || strlen(m->key) != m->key_len)
			return cb_set_error(err, CB_ERR_FORMAT,
								"vocab.json: token %zu (id %lld) is empty, longer than %d bytes or contains a NUL",
								i, (long long) m->value.integer, CB_BBPE_MAX_TOKEN_BYTES);
		if (m->value.integer + 1 > b->id_limit)
			b->id_limit = (int32_t) m->value.integer + 1;
		strings_len += m->key_len + 1;
	}
	b->n_vocab = (int32_t) n;
	/* ids index an array: gaps are allowed, but not a vocabulary that is mostly gaps */
	if ((size_t) b->id_limit > 2 * n + 1024)
		return cb_set_error(err, CB_ERR_FORMAT,
							"vocab.json: ids go up to %d for %zu tokens (ids must be nearly dense)",
							b->id_limit - 1, n);
	b->slot_cap = 16;
	while (b->slot_cap < 2 * n)
		b->slot_cap *= 2;
	b->slots = cb_calloc(b->slot_cap, sizeof(cb_bbpe_str_slot));
	b->tmp_tokens = cb_calloc((size_t) b->id_limit, sizeof(cb_bbpe_token));
	b->tmp_strings = cb_malloc(strings_len);
	if (b->slots == NULL || b->tmp_tokens == NULL || b->tmp_strings == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "vocab.json: cannot allocate the vocabulary");
	{
		size_t		so = 0;

		for (size_t i = 0; i < n; i++)
		{
			const cb_json_member *m = &root->members[i];
			int32_t		id = (int32_t) m->value.integer;
			uint32_t	h = cb_bpe_hash(m->key, m->key_len);
			uint32_t	k = h & (b->slot_cap - 1);

			if (b->tmp_tokens[id].str_len != 0)
				return cb_set_error(err, CB_ERR_FORMAT,
									"vocab.json: id %d is given to two tokens (\"%.40s\" and \"%.40s\")",
									id, b->tmp_strings + b->tmp_tokens[id].str_off, m->key);
			memcpy(b->tmp_strings + so, m->key, m->key_len + 1);
			b->tmp_tokens[id].str_off = (uint32_t) so;
			b->tmp_tokens[id].str_len = (uint32_t) m->key_len;
			so += m->key_len + 1;
			/* the JSON parser refuses duplicate keys: strings are unique */
			while (b->slots[k].id1 != 0)
				k = (k + 1) & (b->slot_cap - 1);
			b->slots[k].hash = h;
			b->slots[k].id1 = id + 1;
			if (i % 65536 == 65535)
				cb_check_interrupts();
		}
	}
	return CB_OK;
}

static cb_status
add_added(build_state *b, const char *s, size_t len, int32_t id, uint32_t flags, cb_error *err)
{
	cb_status	st;

	if (b->n_added >= 65536)
		return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: more than 65536 added tokens");
	if ((st = cb_grow_array((void **) &b->added, &b->added_cap, b->n_added + 1, sizeof(build_added),
							"tokenizer: added tokens", err)) != CB_OK)
		return st;
	b->added[b->n_added].str = s;
	b->added[b->n_added].len = len;
	b->added[b->n_added].id = id;
	b->added[b->n_added].flags = flags;
	b->n_added++;
	return CB_OK;
}

static bool
json_bool(const cb_json_value *obj, const char *key, bool dflt)
{
	const cb_json_value *v = cb_json_get(obj, key);

	return v != NULL && v->type == CB_JSON_BOOL ? v->boolean : dflt;
}

/* An AddedToken or a string: its content and flags. */
static cb_status
token_spec(const cb_json_value *v, const char *what, const char **s, size_t *len, uint32_t *flags,
		   cb_error *err)
{
	*flags = 0;
	if (v->type == CB_JSON_STRING)
	{
		*s = v->string;
		*len = v->string_len;
	}
	else if (v->type == CB_JSON_OBJECT)
	{
		const cb_json_value *c = cb_json_get(v, "content");

		if (c == NULL || c->type != CB_JSON_STRING)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: an added token without a \"content\" string", what);
		*s = c->string;
		*len = c->string_len;
		*flags = (json_bool(v, "lstrip", false) ? CB_BBPE_LSTRIP : 0) |
			(json_bool(v, "rstrip", false) ? CB_BBPE_RSTRIP : 0) |
			(json_bool(v, "single_word", false) ? CB_BBPE_SINGLE_WORD : 0);
	}
	else
		return cb_set_error(err, CB_ERR_FORMAT, "%s: an added token is neither a string nor an object", what);
	if (*len == 0 || *len > CB_BBPE_MAX_TOKEN_BYTES || strlen(*s) != *len)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: an added token is empty, too long or contains a NUL", what);
	return CB_OK;
}

static cb_status
read_added(build_state *b, bool *add_prefix_space, cb_error *err)
{
	static const char *const kSpecial[] = {
		"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"
	};
	static const char *const kDefault[] = {"<s>", "</s>", "<unk>", "</s>", "<pad>", "<s>", "<mask>"};
	const cb_json_value *cfg = b->config_doc ? cb_json_root(b->config_doc) : NULL;
	const cb_json_value *map = b->map_doc ? cb_json_root(b->map_doc) : NULL;
	const cb_json_value *atd;
	cb_status	st;

	if (cfg != NULL && cfg->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "tokenizer_config.json: not an object");
	if (map != NULL && map->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "special_tokens_map.json: not an object");
	*add_prefix_space = cfg != NULL && json_bool(cfg, "add_prefix_space", false);

	/* added_tokens_decoder: {"id": AddedToken} */
	atd = cfg ? cb_json_get(cfg, "added_tokens_decoder") : NULL;
	if (atd != NULL && atd->type == CB_JSON_OBJECT)
	{
		for (size_t i = 0; i < atd->count; i++)
		{
			const cb_json_member *m = &atd->members[i];
			char	   *end;
			long		id;
			const char *s;
			size_t		len;
			uint32_t	flags;

			id = strtol(m->key, &end, 10);
			if (m->key_len == 0 || *end != '\0' || id < 0 || id > CB_BBPE_MAX_ID || m->value.type != CB_JSON_OBJECT)
				return cb_set_error(err, CB_ERR_FORMAT,
									"tokenizer_config.json: added_tokens_decoder has a bad entry \"%.40s\"", m->key);
			if ((st = token_spec(&m->value, "tokenizer_config.json", &s, &len, &flags, err)) != CB_OK)
				return st;
			if (json_bool(&m->value, "special", false))
				flags |= CB_BBPE_SPECIAL;
			if (added_lookup(b, s, len) != NULL)
				return cb_set_error(err, CB_ERR_FORMAT,
									"tokenizer_config.json: added token \"%.40s\" is listed twice", s);
			for (size_t k = 0; k < b->n_added; k++)
				if (b->added[k].id == (int32_t) id)
					return cb_set_error(err, CB_ERR_FORMAT,
										"tokenizer_config.json: id %ld is given to two added tokens", id);
			if ((st = add_added(b, s, len, (int32_t) id, flags, err)) != CB_OK)
				return st;
		}
	}

	/* the special tokens: tokenizer_config.json, else special_tokens_map.json, else the defaults */
	for (size_t k = 0; k < sizeof(kSpecial) / sizeof(kSpecial[0]) + 1; k++)
	{
		const char *key = k < 7 ? kSpecial[k] : "additional_special_tokens";
		const cb_json_value *v = cfg ? cb_json_get(cfg, key) : NULL;
		size_t		n_items;

		if (v == NULL || v->type == CB_JSON_NULL)
			v = map ? cb_json_get(map, key) : NULL;
		if (k == 7)
		{
			if (v == NULL || v->type != CB_JSON_ARRAY)
				continue;
			n_items = v->count;
		}
		else
			n_items = 1;
		for (size_t j = 0; j < n_items; j++)
		{
			const cb_json_value *item = k == 7 ? &v->items[j] : v;
			const char *s;
			size_t		len;
			uint32_t	flags = 0;
			build_added *a;

			if (item == NULL || item->type == CB_JSON_NULL)
			{
				s = kDefault[k];
				len = strlen(s);
			}
			else if ((st = token_spec(item, "special tokens", &s, &len, &flags, err)) != CB_OK)
				return st;
			if (item == NULL || item->type == CB_JSON_STRING)
				flags = k == 6 ? CB_BBPE_LSTRIP : 0;	/* RobertaTokenizer: mask lstrip=True */
			a = (build_added *) added_lookup(b, s, len);
			if (a != NULL)
			{
				a->flags |= CB_BBPE_SPECIAL;
				continue;
			}
			{
				int32_t		id = vocab_lookup(b, s, len);

				if (id < 0)
				{
					/* transformers appends it after the vocabulary */
					id = b->id_limit;
					for (size_t q = 0; q < b->n_added; q++)
						if (b->added[q].id >= id)
							id = b->added[q].id + 1;
				}
				if ((st = add_added(b, s, len, id, flags | CB_BBPE_SPECIAL, err)) != CB_OK)
					return st;
			}
		}
	}

	/* an added id that vocab.json gives to another string is ambiguous */
	for (size_t i = 0; i < b->n_added; i++)
	{
		const build_added *a = &b->added[i];

		if (a->id < b->id_limit && b->tmp_tokens[a->id].str_len != 0 &&
			(b->tmp_tokens[a->id].str_len != a->len ||
			 memcmp(b->tmp_strings + b->tmp_tokens[a->id].str_off, a->str, a->len) != 0))
			return cb_set_error(err, CB_ERR_FORMAT,
								"tokenizer_config.json: added token \"%.40s\" has id %d, which vocab.json gives to \"%.40s\"",
								a->str, a->id, b->tmp_strings + b->tmp_tokens[a->id].str_off);
		if (a->id > CB_BBPE_MAX_ID)
			return cb_set_error(err, CB_ERR_LIMIT, "tokenizer: added token id over %d", CB_BBPE_MAX_ID);
	}
	return CB_OK;
}

static inline bool
merges_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static cb_status
read_merges(build_state *b, const char *text, size_t len, cb_error *err)
{
	size_t		n_lines = 0;
	size_t		pos;
	const char *nl;
	uint32_t	rank = 0;
	size_t		line_no = 1;

	if (len > CB_BBPE_MAX_MERGES_BYTES)
		return cb_set_error(err, CB_ERR_LIMIT, "merges.txt: %zu bytes (limit %zu)", len, CB_BBPE_MAX_MERGES_BYTES);
	if (memchr(text, '\0', len) != NULL)
		return cb_set_error(err, CB_ERR_FORMAT, "merges.txt: contains a NUL byte");
	for (size_t i = 0; i < len; i++)
		n_lines += text[i] == '\n';
	if (n_lines > CB_BBPE_MAX_ID)
		return cb_set_error(err, CB_ERR_LIMIT, "merges.txt: %zu lines (limit %d)", n_lines, CB_BBPE_MAX_ID);
	b->merge_cap = 16;
	while (b->merge_cap < 2 * n_lines)
		b->merge_cap *= 2;
	b->merges = cb_malloc((size_t) b->merge_cap * sizeof(cb_bbpe_merge_slot));
	if (b->merges == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "merges.txt: cannot allocate the merges");
	for (uint32_t i = 0; i < b->merge_cap; i++)
		b->merges[i].left = -1;

	/*
	 * transformers: merges_handle.read().split("\n")[1:-1]: the first line
	 * (the "#version" header) is skipped whatever it holds, and so is the
	 * text after the last newline.
	 */
	nl = memchr(text, '\n', len);
	if (nl == NULL)
		return CB_OK;
	pos = (size_t) (nl - text) + 1;
	while ((nl = memchr(text + pos, '\n', len - pos)) != NULL)
	{
		size_t		end = (size_t) (nl - text);
		size_t		f[3][2];	/* fields: start, end */
		int			nf = 0;
		size_t		p = pos;
		int32_t		left,
					right,
					merged;
		char		buf[2 * CB_BBPE_MAX_TOKEN_BYTES + 1];

		line_no++;
		while (p < end)
		{
			while (p < end && merges_space(text[p]))
				p++;
			if (p == end)
				break;
			if (nf == 3)
				return cb_set_error(err, CB_ERR_FORMAT, "merges.txt: line %zu has more than two tokens", line_no);
			f[nf][0] = p;
			while (p < end && !merges_space(text[p]))
				p++;
			f[nf][1] = p;
			nf++;
		}
		pos = end + 1;
		if (nf == 0)
		{
			rank++;
			continue;
		}
		if (nf != 2)
			return cb_set_error(err, CB_ERR_FORMAT, "merges.txt: line %zu is not two tokens", line_no);
		left = vocab_lookup(b, text + f[0][0], f[0][1] - f[0][0]);
		right = vocab_lookup(b, text + f[1][0], f[1][1] - f[1][0]);
		if (left < 0 || right < 0)
			return cb_set_error(err, CB_ERR_FORMAT,
								"merges.txt: line %zu merges \"%.*s\", which vocab.json does not have", line_no,
								(int) ((left < 0 ? f[0][1] - f[0][0] : f[1][1] - f[1][0]) > 60 ? 60 :
									   (left < 0 ? f[0][1] - f[0][0] : f[1][1] - f[1][0])),
								text + (left < 0 ? f[0][0] : f[1][0]));
		if (f[0][1] - f[0][0] + f[1][1] - f[1][0] > CB_BBPE_MAX_TOKEN_BYTES)
			return cb_set_error(err, CB_ERR_FORMAT, "merges.txt: line %zu makes a token of more than %d bytes",
								line_no, CB_BBPE_MAX_TOKEN_BYTES);
		memcpy(buf, text + f[0][0], f[0][1] - f[0][0]);
		memcpy(buf + (f[0][1] - f[0][0]), text + f[1][0], f[1][1] - f[1][0]);
		merged = vocab_lookup(b, buf, f[0][1] - f[0][0] + f[1][1] - f[1][0]);
		if (merged < 0)
			return cb_set_error(err, CB_ERR_FORMAT,
								"merges.txt: line %zu makes \"%.*s\", which vocab.json does not have", line_no,
								(int) (f[0][1] - f[0][0] + f[1][1] - f[1][0] > 60 ? 60 :
									   f[0][1] - f[0][0] + f[1][1] - f[1][0]), buf);
		{
			uint32_t	k = merge_hash(left, right) & (b->merge_cap - 1);

			while (b->merges[k].left >= 0 && !(b->merges[k].left == left && b->merges[k].right == right))
				k = (k + 1) & (b->merge_cap - 1);
			if (b->merges[k].left < 0)
				b->n_merges++;
			/* a pair listed twice: dict(zip(merges, range(...))) keeps the last rank */
			b->merges[k].left = left;
			b->merges[k].right = right;
			b->merges[k].rank = rank;
			b->merges[k].merged = merged;
		}
		rank++;
		if (line_no % 65536 == 0)
			cb_check_interrupts();
	}
	return CB_OK;
}

static void
build_state_free(build_state *b)
{
	cb_json_free(b->vocab_doc);
	cb_json_free(b->config_doc);
	cb_json_free(b->map_doc);
	cb_free(b->slots);
	cb_free(b->tmp_tokens);
	cb_free(b->tmp_strings);
	cb_free(b->added);
	cb_free(b->merges);
}

cb_status
cb_bbpe_build(const char *vocab_json, size_t vocab_len,
			  const char *merges_txt, size_t merges_len,
			  const char *tokenizer_config, size_t tokenizer_config_len,
			  const char *special_tokens_map, size_t special_tokens_map_len,
			  void **image_out, size_t *image_len_out, cb_error *err)
{
	build_state b;
	cb_status	st;
	bool		add_prefix_space = false;
	int32_t		id_limit;
	size_t		strings_len = 0;
	size_t		off;
	uint8_t    *img = NULL;
	bbpe_header *h;
	int32_t		byte_id[256];
	int32_t		vocab_size;

	memset(&b, 0, sizeof(b));
	if (image_out == NULL || image_len_out == NULL || (vocab_json == NULL && vocab_len > 0) ||
		(merges_txt == NULL && merges_len > 0))
		return cb_set_error(err, CB_ERR_INVALID, "cb_bbpe_build: NULL argument");
	*image_out = NULL;
	*image_len_out = 0;

	if ((st = read_vocab(&b, vocab_json, vocab_len, err)) != CB_OK)
		goto done;
	if (tokenizer_config != NULL &&
		(st = cb_json_parse(tokenizer_config, tokenizer_config_len, "tokenizer_config.json", &kConfigLimits,
							&b.config_doc, err)) != CB_OK)
		goto done;
	if (special_tokens_map != NULL &&
		(st = cb_json_parse(special_tokens_map, special_tokens_map_len, "special_tokens_map.json", &kConfigLimits,
							&b.map_doc, err)) != CB_OK)
		goto done;
	if ((st = read_added(&b, &add_prefix_space, err)) != CB_OK)
		goto done;
	if ((st = read_merges(&b, merges_txt, merges_len, err)) != CB_OK)
		goto done;
	for (int x = 0; x < 256; x++)
	{
		char		u[4];
		size_t		ul = utf8_put(byte_to_unicode((uint8_t) x), u);

		byte_id[x] = vocab_lookup(&b, u, ul);
		if (byte_id[x] < 0)
		{
			st = cb_set_error(err, CB_ERR_UNSUPPORTED,
							  "vocab.json: no token for byte 0x%02X (\"%.*s\"): not a byte-level BPE vocabulary",
							  x, (int) ul, u);
			goto done;
		}
	}

	/* ids: vocab.json's and the added tokens' */
	id_limit = b.id_limit;
	for (size_t i = 0; i < b.n_added; i++)
		if (b.added[i].id + 1 > id_limit)
			id_limit = b.added[i].id + 1;
	if ((size_t) id_limit > 2 * ((size_t) b.n_vocab + b.n_added) + 1024)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "tokenizer: added token ids go up to %d for %d tokens",
						  id_limit - 1, b.n_vocab);
		goto done;
	}
	vocab_size = b.n_vocab;
	for (size_t i = 0; i < b.n_added; i++)
		if (b.added[i].id >= b.id_limit || b.tmp_tokens[b.added[i].id].str_len == 0)
			vocab_size++;
	for (int32_t id = 0; id < b.id_limit; id++)
		strings_len += b.tmp_tokens[id].str_len + 1;
	for (size_t i = 0; i < b.n_added; i++)
		strings_len += b.added[i].len + 1;
	if (strings_len > UINT32_MAX)
	{
		st = cb_set_error(err, CB_ERR_LIMIT, "tokenizer: token strings too large");
		goto done;
	}

	{
		cb_image_section s_tokens,
					s_strings,
					s_slots,
					s_merges,
					s_added;
		cb_bbpe_token *tokens;
		char	   *strings;
		cb_bbpe_added *added;
		size_t		so = 0;

		off = cb_align8(sizeof(bbpe_header));
		s_tokens = cb_image_next_section(&off, (size_t) id_limit * sizeof(cb_bbpe_token));
		s_strings = cb_image_next_section(&off, strings_len);
		s_slots = cb_image_next_section(&off, (size_t) b.slot_cap * sizeof(cb_bbpe_str_slot));
		s_merges = cb_image_next_section(&off, (size_t) b.merge_cap * sizeof(cb_bbpe_merge_slot));
		s_added = cb_image_next_section(&off, b.n_added * sizeof(cb_bbpe_added));

		img = cb_calloc(1, off);
		if (img == NULL)
		{
			st = cb_set_error(err, CB_ERR_NOMEM, "tokenizer: cannot allocate a %zu-byte image", off);
			goto done;
		}
		h = (bbpe_header *) img;
		tokens = (cb_bbpe_token *) (img + s_tokens.off);
		strings = (char *) (img + s_strings.off);
		added = (cb_bbpe_added *) (img + s_added.off);
		for (int32_t id = 0; id < b.id_limit; id++)
		{
			const cb_bbpe_token *t = &b.tmp_tokens[id];

			tokens[id].str_off = (uint32_t) so;
			tokens[id].str_len = t->str_len;
			if (t->str_len)
				memcpy(strings + so, b.tmp_strings + t->str_off, t->str_len);
			strings[so + t->str_len] = '\0';
			so += t->str_len + 1;
		}
		for (size_t i = 0; i < b.n_added; i++)
		{
			added[i].str_off = (uint32_t) so;
			added[i].str_len = (uint32_t) b.added[i].len;
			added[i].id = b.added[i].id;
			added[i].flags = b.added[i].flags;
			memcpy(strings + so, b.added[i].str, b.added[i].len);
			strings[so + b.added[i].len] = '\0';
			if (tokens[b.added[i].id].str_len == 0)
			{
				tokens[b.added[i].id].str_off = (uint32_t) so;
				tokens[b.added[i].id].str_len = (uint32_t) b.added[i].len;
			}
			so += b.added[i].len + 1;
		}
		memcpy(img + s_slots.off, b.slots, s_slots.len);
		memcpy(img + s_merges.off, b.merges, s_merges.len);

		memcpy(h->magic, BBPE_MAGIC, 8);
		h->version = BBPE_VERSION;
		h->header_size = sizeof(bbpe_header);
		h->image_len = off;
		h->byte_order = CB_IMAGE_BYTE_ORDER;
		h->flags = add_prefix_space ? BBPE_FLAG_ADD_PREFIX_SPACE : 0;
		h->id_limit = id_limit;
		h->vocab_size = vocab_size;
		h->slot_capacity = b.slot_cap;
		h->merge_capacity = b.merge_cap;
		h->n_merges = b.n_merges;
		h->n_added = (uint32_t) b.n_added;
		h->tokens = s_tokens;
		h->strings = s_strings;
		h->slots = s_slots;
		h->merges = s_merges;
		h->added = s_added;
		memcpy(h->byte_id, byte_id, sizeof(byte_id));
		h->fingerprint = cb_fnv1a64(cb_fnv1a64(CB_FNV1A64_INIT, vocab_json, vocab_len), merges_txt, merges_len);
		h->fingerprint ^= (uint64_t) off;

		/* the special tokens' ids */
		{
			static const char *const kDefault[] = {"<s>", "</s>", "<s>", "</s>", "<pad>", "<unk>", "<mask>"};
			static const char *const kKey[] = {"bos_token", "eos_token", "cls_token", "sep_token", "pad_token",
			"unk_token", "mask_token"};
			int32_t    *dst[] = {&h->bos_id, &h->eos_id, &h->cls_id, &h->sep_id, &h->pad_id, &h->unk_id, &h->mask_id};

			for (int k = 0; k < 7; k++)
			{
				const cb_json_value *cfg = b.config_doc ? cb_json_root(b.config_doc) : NULL;
				const cb_json_value *map = b.map_doc ? cb_json_root(b.map_doc) : NULL;
				const cb_json_value *v = cfg ? cb_json_get(cfg, kKey[k]) : NULL;
				const char *s = kDefault[k];
				size_t		len = strlen(s);
				uint32_t	flags;
				const build_added *a;

				if (v == NULL || v->type == CB_JSON_NULL)
					v = map ? cb_json_get(map, kKey[k]) : NULL;
				if (v != NULL && v->type != CB_JSON_NULL &&
					(st = token_spec(v, "special tokens", &s, &len, &flags, err)) != CB_OK)
					goto done;
				a = added_lookup(&b, s, len);
				*dst[k] = a != NULL ? a->id : -1;	/* every special token was added */
			}
		}
	}

	{
		cb_bbpe		t;

		if ((st = cb_bbpe_open(img, off, &t, err)) != CB_OK)
			goto done;
	}
	*image_out = img;
	*image_len_out = off;
	img = NULL;
	st = CB_OK;
done:
	cb_free(img);
	build_state_free(&b);
	return st;
}

/* ---- open ---------------------------------------------------------------- */

static cb_status
bad_image(cb_error *err, const char *what)
{
	return cb_set_error(err, CB_ERR_FORMAT, "byte-level BPE image: %s", what);
}

bool
cb_bbpe_is_image(const void *image, size_t image_len)
{
	return image != NULL && image_len >= 8 && memcmp(image, BBPE_MAGIC, 8) == 0;
}

cb_status
cb_bbpe_open(const void *image, size_t image_len, cb_bbpe *bb, cb_error *err)
{
	const uint8_t *img = image;
	const bbpe_header *h = image;
	const cb_bbpe_token *tokens;
	const cb_bbpe_str_slot *slots;
	const cb_bbpe_merge_slot *merges;
	const cb_bbpe_added *added;
	const char *strings;
	size_t		used = 0;
	cb_status	st;

	if (image == NULL || bb == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_bbpe_open: NULL argument");
	memset(bb, 0, sizeof(*bb));
	if ((st = cb_image_check_header(image, image_len, BBPE_MAGIC, BBPE_VERSION, sizeof(bbpe_header),
									"byte-level BPE image", err)) != CB_OK)
		return st;
	if (h->id_limit <= 0 || h->id_limit > CB_BBPE_MAX_ID + 1 || h->vocab_size <= 0 || h->vocab_size > h->id_limit ||
		h->slot_capacity < 16 || (h->slot_capacity & (h->slot_capacity - 1)) != 0 ||
		h->merge_capacity < 16 || (h->merge_capacity & (h->merge_capacity - 1)) != 0 ||
		h->n_merges >= h->merge_capacity || h->n_added > 65536)
		return bad_image(err, "bad counts");
	if (!cb_image_section_ok(&h->tokens, image_len, 8) ||
		h->tokens.len != (uint64_t) h->id_limit * sizeof(cb_bbpe_token) ||
		!cb_image_section_ok(&h->strings, image_len, 8) || h->strings.len == 0 ||
		!cb_image_section_ok(&h->slots, image_len, 8) ||
		h->slots.len != (uint64_t) h->slot_capacity * sizeof(cb_bbpe_str_slot) ||
		!cb_image_section_ok(&h->merges, image_len, 8) ||
		h->merges.len != (uint64_t) h->merge_capacity * sizeof(cb_bbpe_merge_slot) ||
		!cb_image_section_ok(&h->added, image_len, 8) ||
		h->added.len != (uint64_t) h->n_added * sizeof(cb_bbpe_added))
		return bad_image(err, "a section is out of bounds");
	strings = (const char *) img + h->strings.off;
	if (strings[h->strings.len - 1] != '\0')
		return bad_image(err, "unterminated strings");
	tokens = (const cb_bbpe_token *) (img + h->tokens.off);
	for (int32_t i = 0; i < h->id_limit; i++)
		if (tokens[i].str_len > CB_BBPE_MAX_TOKEN_BYTES ||
			(uint64_t) tokens[i].str_off + tokens[i].str_len >= h->strings.len ||
			strings[tokens[i].str_off + tokens[i].str_len] != '\0')
			return bad_image(err, "bad token entry");
	slots = (const cb_bbpe_str_slot *) (img + h->slots.off);
	for (uint32_t i = 0; i < h->slot_capacity; i++)
	{
		if (slots[i].id1 < 0 || slots[i].id1 > h->id_limit ||
			(slots[i].id1 > 0 && tokens[slots[i].id1 - 1].str_len == 0))
			return bad_image(err, "bad hash slot");
		used += slots[i].id1 != 0;
	}
	if (used >= h->slot_capacity)
		return bad_image(err, "full hash table");
	merges = (const cb_bbpe_merge_slot *) (img + h->merges.off);
	used = 0;
	for (uint32_t i = 0; i < h->merge_capacity; i++)
	{
		const cb_bbpe_merge_slot *m = &merges[i];

		if (m->left < 0)
			continue;
		used++;
		if (m->left >= h->id_limit || m->right < 0 || m->right >= h->id_limit ||
			m->merged < 0 || m->merged >= h->id_limit ||
			tokens[m->left].str_len == 0 || tokens[m->right].str_len == 0 || tokens[m->merged].str_len == 0)
			return bad_image(err, "bad merge");
	}
	if (used != h->n_merges)
		return bad_image(err, "bad merge count");
	added = (const cb_bbpe_added *) (img + h->added.off);
	for (uint32_t i = 0; i < h->n_added; i++)
		if (added[i].id < 0 || added[i].id >= h->id_limit || added[i].str_len == 0 ||
			added[i].str_len > CB_BBPE_MAX_TOKEN_BYTES ||
			(uint64_t) added[i].str_off + added[i].str_len >= h->strings.len ||
			strings[added[i].str_off + added[i].str_len] != '\0')
			return bad_image(err, "bad added token");
	for (int x = 0; x < 256; x++)
		if (h->byte_id[x] < 0 || h->byte_id[x] >= h->id_limit || tokens[h->byte_id[x]].str_len == 0)
			return bad_image(err, "bad byte token");
	{
		const int32_t ids[] = {h->bos_id, h->eos_id, h->cls_id, h->sep_id, h->pad_id, h->unk_id, h->mask_id};

		for (int k = 0; k < 7; k++)
			if (ids[k] < 0 || ids[k] >= h->id_limit || tokens[ids[k]].str_len == 0)
				return bad_image(err, "bad special token id");
	}

	bb->tokens = tokens;
	bb->id_limit = h->id_limit;
	bb->vocab_size = h->vocab_size;
	bb->strings = strings;
	bb->strings_len = h->strings.len;
	bb->slots = slots;
	bb->slot_mask = h->slot_capacity - 1;
	bb->merges = merges;
	bb->merge_mask = h->merge_capacity - 1;
	bb->n_merges = h->n_merges;
	bb->added = added;
	bb->n_added = h->n_added;
	bb->byte_id = h->byte_id;
	bb->add_prefix_space = (h->flags & BBPE_FLAG_ADD_PREFIX_SPACE) != 0;
	bb->bos_id = h->bos_id;
	bb->eos_id = h->eos_id;
	bb->cls_id = h->cls_id;
	bb->sep_id = h->sep_id;
	bb->pad_id = h->pad_id;
	bb->unk_id = h->unk_id;
	bb->mask_id = h->mask_id;
	bb->fingerprint = h->fingerprint;
	return CB_OK;
}

