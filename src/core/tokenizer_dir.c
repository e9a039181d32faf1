/*
 * tokenizer_dir.c — a model directory's tokenizer (see tokenizer_dir.h).
 */
#include "tokenizer_dir.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bytebpe.h"
#include "file_io.h"
#include "json.h"
#include "tokenizer.h"

typedef enum dir_kind
{
	KIND_UNKNOWN = 0,
	KIND_BYTE_BPE,
	KIND_SP_CAMEMBERT,
	KIND_SP_XLMR
} dir_kind;

static const struct
{
	const char *name;
	dir_kind	kind;
}			kClasses[] = {
	{"RobertaTokenizer", KIND_BYTE_BPE},
	{"RobertaTokenizerFast", KIND_BYTE_BPE},
	{"GPT2Tokenizer", KIND_BYTE_BPE},
	{"GPT2TokenizerFast", KIND_BYTE_BPE},
	{"XLMRobertaTokenizer", KIND_SP_XLMR},
	{"XLMRobertaTokenizerFast", KIND_SP_XLMR},
	{"CamembertTokenizer", KIND_SP_CAMEMBERT},
	{"CamembertTokenizerFast", KIND_SP_CAMEMBERT},
};

/* dir/file in buf; NULL if it does not fit (never a silently cut path). */
static char *
join(const char *dir, const char *file, char *buf, size_t cap)
{
	int			n = snprintf(buf, cap, "%s/%s", dir, file);

	return n >= 0 && (size_t) n < cap ? buf : NULL;
}

static bool
exists(const char *dir, const char *file)
{
	char		path[4096];
	struct stat st;

	if (strlen(dir) + strlen(file) + 2 > sizeof(path))
		return false;
	const char *p = join(dir, file, path, sizeof(path));

	return p != NULL && stat(p, &st) == 0;
}

/* Read dir/file; a missing file gives *buf NULL and CB_OK when optional. */
static cb_status
read_file(const char *dir, const char *file, const char *root, bool optional, char **buf, size_t *len,
		  cb_error *err)
{
	char		path[4096];
	cb_status	st;

	*buf = NULL;
	*len = 0;
	if (strlen(dir) + strlen(file) + 2 > sizeof(path))
		return cb_set_error(err, CB_ERR_LIMIT, "model directory path too long");
	if (optional && !exists(dir, file))
		return CB_OK;
	st = cb_file_read_all(join(dir, file, path, sizeof(path)), root, CB_TOKENIZER_DIR_MAX_FILE, buf, len, err);
	if (st != CB_OK)
		*buf = NULL;
	return st;
}

/* A string member of a small JSON file of the directory, copied into out ("" if none). */
static cb_status
json_string_member(const char *dir, const char *file, const char *root, const char *key, char *out,
				   size_t cap, cb_error *err)
{
	char	   *text;
	size_t		len;
	cb_json_doc *doc = NULL;
	cb_status	st;

	out[0] = '\0';
	if ((st = read_file(dir, file, root, true, &text, &len, err)) != CB_OK || text == NULL)
		return st;
	st = cb_json_parse(text, len, file, NULL, &doc, err);
	cb_free(text);
	if (st != CB_OK)
		return st;
	{
		const cb_json_value *v = cb_json_get(cb_json_root(doc), key);

		if (v != NULL && v->type == CB_JSON_STRING && v->string_len < cap)
			memcpy(out, v->string, v->string_len + 1);
	}
	cb_json_free(doc);
	return CB_OK;
}

cb_status
cb_tokenizer_build_dir(const char *dir, const char *root, void **image, size_t *image_len,
					   const char **file, cb_error *err)
{
	char		klass[128];
	dir_kind	kind = KIND_UNKNOWN;
	cb_status	st;

	if (dir == NULL || image == NULL || image_len == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "cb_tokenizer_build_dir: NULL argument");
	*image = NULL;
	*image_len = 0;
	if (file)
		*file = "sentencepiece.bpe.model";
	if ((st = json_string_member(dir, "tokenizer_config.json", root, "tokenizer_class", klass, sizeof(klass),
								 err)) != CB_OK)
		return st;
	if (klass[0] != '\0')
	{
		for (size_t i = 0; i < sizeof(kClasses) / sizeof(kClasses[0]); i++)
			if (strcmp(klass, kClasses[i].name) == 0)
				kind = kClasses[i].kind;
		if (kind == KIND_UNKNOWN)
			return cb_set_error(err, CB_ERR_UNSUPPORTED,
								"%s/tokenizer_config.json: tokenizer_class \"%.60s\" is not supported "
								"(CamembertTokenizer, RobertaTokenizer, XLMRobertaTokenizer)", dir, klass);
	}
	else if (exists(dir, "vocab.json") && exists(dir, "merges.txt"))
		kind = KIND_BYTE_BPE;
	else
	{
		char		model_type[64];

		if ((st = json_string_member(dir, "config.json", root, "model_type", model_type, sizeof(model_type),
									 err)) != CB_OK)
			return st;
		kind = strcmp(model_type, "xlm-roberta") == 0 ? KIND_SP_XLMR : KIND_SP_CAMEMBERT;
	}

	if (kind == KIND_BYTE_BPE)
	{
		char	   *vocab = NULL,
				   *merges = NULL,
				   *config = NULL,
				   *map = NULL;
		size_t		lv,
					lm,
					lc,
					ls;

		if (file)
			*file = "vocab.json";
		if ((st = read_file(dir, "vocab.json", root, false, &vocab, &lv, err)) == CB_OK &&
			(st = read_file(dir, "merges.txt", root, false, &merges, &lm, err)) == CB_OK &&
			(st = read_file(dir, "tokenizer_config.json", root, true, &config, &lc, err)) == CB_OK &&
			(st = read_file(dir, "special_tokens_map.json", root, true, &map, &ls, err)) == CB_OK)
			st = cb_bbpe_build(vocab, lv, merges, lm, config, lc, map, ls, image, image_len, err);
		cb_free(vocab);
		cb_free(merges);
		cb_free(config);
		cb_free(map);
		return st;
	}
	else
	{
		char	   *model;
		size_t		len;

		if ((st = read_file(dir, "sentencepiece.bpe.model", root, false, &model, &len, err)) != CB_OK)
			return st;
		st = cb_tokenizer_build_layout((const uint8_t *) model, len,
									   kind == KIND_SP_XLMR ? CB_TOK_LAYOUT_XLMR : CB_TOK_LAYOUT_CAMEMBERT,
									   image, image_len, err);
		cb_free(model);
		return st;
	}
}
