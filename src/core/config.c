/*
 * config.c — config.json → cb_model_config (see config.h).
 */
#include "config.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct
{
	const char *name;
	cb_architecture arch;
}			known_architectures[] = {
	{"CamembertForMaskedLM", CB_ARCH_MASKED_LM},
	{"CamembertForSequenceClassification", CB_ARCH_SEQUENCE_CLASSIFICATION},
	{"CamembertForCausalLM", CB_ARCH_CAUSAL_LM},
	{"CamembertModel", CB_ARCH_ENCODER},
	/* CamemBERT's family: the same network, the same weight names (roberta.*) */
	{"RobertaForMaskedLM", CB_ARCH_MASKED_LM},
	{"RobertaForSequenceClassification", CB_ARCH_SEQUENCE_CLASSIFICATION},
	{"RobertaForCausalLM", CB_ARCH_CAUSAL_LM},
	{"RobertaModel", CB_ARCH_ENCODER},
	{"XLMRobertaForMaskedLM", CB_ARCH_MASKED_LM},
	{"XLMRobertaForSequenceClassification", CB_ARCH_SEQUENCE_CLASSIFICATION},
	{"XLMRobertaForCausalLM", CB_ARCH_CAUSAL_LM},
	{"XLMRobertaModel", CB_ARCH_ENCODER},
};

/* model_type values of the family (config.json; absent: taken from the architecture). */
static const char *const known_model_types[] = {"camembert", "roberta", "xlm-roberta"};

const char *
cb_architecture_name(cb_architecture arch)
{
	for (size_t i = 0; i < sizeof(known_architectures) / sizeof(known_architectures[0]); i++)
		if (known_architectures[i].arch == arch)
			return known_architectures[i].name;
	return "unknown";
}

const char *
cb_problem_type_name(cb_problem_type type)
{
	switch (type)
	{
		case CB_PROBLEM_NONE:
			return NULL;
		case CB_PROBLEM_SINGLE_LABEL:
			return "single_label_classification";
		case CB_PROBLEM_REGRESSION:
			return "regression";
		case CB_PROBLEM_MULTI_LABEL:
			return "multi_label_classification";
	}
	return NULL;
}

const char *
cb_dtype_name(cb_dtype dtype)
{
	switch (dtype)
	{
		case CB_DTYPE_F32:
			return "float32";
		case CB_DTYPE_F16:
			return "float16";
		case CB_DTYPE_BF16:
			return "bfloat16";
	}
	return "unknown";
}

const char *
cb_precision_name(cb_precision p)
{
	switch (p)
	{
		case CB_PRECISION_AUTO:
			return "auto";
		case CB_PRECISION_FLOAT32:
			return "float32";
		case CB_PRECISION_BFLOAT16:
			return "bfloat16";
		case CB_PRECISION_INT8:
			return "int8";
	}
	return NULL;
}

bool
cb_precision_from_name(const char *name, cb_precision *out)
{
	for (int p = CB_PRECISION_AUTO; p <= CB_PRECISION_INT8; p++)
		if (name != NULL && strcmp(name, cb_precision_name((cb_precision) p)) == 0)
		{
			*out = (cb_precision) p;
			return true;
		}
	return false;
}

/* Copy a possibly long, possibly binary string into buf for a message. */
static const char *
shown(const char *s, size_t len, char *buf, size_t bufsize)
{
	size_t		n = len < bufsize - 1 ? len : bufsize - 1;

	memcpy(buf, s, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) buf[i] < 0x20)
			buf[i] = '?';
	if (n < len && n >= 3)
		memcpy(buf + n - 3, "...", 3);
	return buf;
}

static bool
json_string_is(const cb_json_value *v, const char *lit)
{
	return v->type == CB_JSON_STRING && v->string_len == strlen(lit) &&
		memcmp(v->string, lit, v->string_len) == 0;
}

/* Integer key with a default; null is not accepted. */
static cb_status
get_int(const cb_json_value *root, const char *key, int64_t dflt, int64_t lo, int64_t hi,
		const char *what, int32_t *out, cb_error *err)
{
	const cb_json_value *v = cb_json_get(root, key);
	int64_t		x = dflt;

	if (v != NULL)
	{
		if (v->type != CB_JSON_NUMBER || !v->is_integer)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"%s\" must be an integer, not %s",
								what, key, v->type == CB_JSON_NUMBER ? "a fraction" :
								cb_json_type_name(v->type));
		x = v->integer;
	}
	if (x < lo || x > hi)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"%s\" = %lld is out of range [%lld, %lld]",
							what, key, (long long) x, (long long) lo, (long long) hi);
	*out = (int32_t) x;
	return CB_OK;
}

/* Optional token id: absent → default, null → -1. */
static cb_status
get_token_id(const cb_json_value *root, const char *key, int64_t dflt, int64_t vocab,
			 const char *what, int32_t *out, cb_error *err)
{
	const cb_json_value *v = cb_json_get(root, key);

	if (v != NULL && v->type == CB_JSON_NULL)
	{
		*out = -1;
		return CB_OK;
	}
	if (v == NULL && dflt >= vocab)
	{
		/* the default does not fit a tiny vocabulary: treat as absent */
		*out = -1;
		return CB_OK;
	}
	return get_int(root, key, dflt, 0, vocab - 1, what, out, err);
}

static cb_status
get_bool(const cb_json_value *root, const char *key, bool dflt, const char *what,
		 bool *out, cb_error *err)
{
	const cb_json_value *v = cb_json_get(root, key);

	*out = dflt;
	if (v == NULL)
		return CB_OK;
	if (v->type != CB_JSON_BOOL)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"%s\" must be true or false, not %s",
							what, key, cb_json_type_name(v->type));
	*out = v->boolean;
	return CB_OK;
}

/* Optional string key that, if present (and not null), must equal expected. */
static cb_status
require_string(const cb_json_value *root, const char *key, const char *expected,
			   const char *what, cb_error *err)
{
	const cb_json_value *v = cb_json_get(root, key);
	char		buf[80];

	if (v == NULL || v->type == CB_JSON_NULL)
		return CB_OK;
	if (v->type != CB_JSON_STRING)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"%s\" must be a string, not %s",
							what, key, cb_json_type_name(v->type));
	if (!json_string_is(v, expected))
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: \"%s\" = \"%s\" is not supported (only \"%s\")",
							what, key, shown(v->string, v->string_len, buf, sizeof(buf)), expected);
	return CB_OK;
}

cb_status
cb_config_validate(const cb_config *c, const char *what, cb_error *err)
{
#define RANGE(field, lo, hi) \
	if ((int64_t) c->field < (int64_t) (lo) || (int64_t) c->field > (int64_t) (hi)) \
		return cb_set_error(err, CB_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]", \
							what, #field, (long long) c->field, (long long) (lo), (long long) (hi))

	if ((unsigned) c->architecture > CB_ARCH_ENCODER)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: unknown architecture %d", what, (int) c->architecture);
	if ((unsigned) c->problem_type > CB_PROBLEM_MULTI_LABEL)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: unknown problem type %d", what, (int) c->problem_type);
	if ((unsigned) c->stored_dtype > CB_DTYPE_BF16)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: unknown dtype %d", what, (int) c->stored_dtype);
	if ((unsigned) c->precision > CB_PRECISION_INT8)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: unknown precision %d", what, (int) c->precision);
	RANGE(vocab_size, 1, CB_CONFIG_MAX_VOCAB);
	RANGE(hidden_size, 1, CB_CONFIG_MAX_HIDDEN);
	RANGE(num_hidden_layers, 1, CB_MAX_LAYERS);
	RANGE(num_attention_heads, 1, c->hidden_size);
	RANGE(intermediate_size, 1, CB_CONFIG_MAX_INTERMEDIATE);
	RANGE(max_position_embeddings, 1, CB_CONFIG_MAX_POSITIONS);
	RANGE(type_vocab_size, 1, CB_CONFIG_MAX_TYPE_VOCAB);
	RANGE(pad_token_id, 0, c->vocab_size - 1);
	RANGE(bos_token_id, -1, c->vocab_size - 1);
	RANGE(eos_token_id, -1, c->vocab_size - 1);
	RANGE(is_decoder, 0, 1);
	if (c->hidden_size % c->num_attention_heads != 0)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: hidden_size %d is not a multiple of num_attention_heads %d",
							what, c->hidden_size, c->num_attention_heads);
	if (cb_config_max_sequence(c) < CB_CONFIG_MIN_SEQUENCE)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: max_position_embeddings = %d with pad_token_id = %d leaves room for %lld "
							"tokens (positions start at pad_token_id + 1); at least %d are needed: "
							"<s> and </s>, or a prompt token and a generated one",
							what, c->max_position_embeddings, c->pad_token_id,
							(long long) cb_config_max_sequence(c), CB_CONFIG_MIN_SEQUENCE);
	if (c->architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
	{
		RANGE(num_labels, 1, CB_MAX_LABELS);
		if (c->problem_type == CB_PROBLEM_NONE)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: a classifier needs a problem type", what);
	}
	else
	{
		RANGE(num_labels, 0, 0);
		if (c->problem_type != CB_PROBLEM_NONE)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: problem type set on a model that is not a classifier", what);
	}
	if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps))
		return cb_set_error(err, CB_ERR_FORMAT, "%s: layer_norm_eps = %g must be a positive finite number",
							what, (double) c->layer_norm_eps);
	return CB_OK;
#undef RANGE
}

static cb_status
read_labels(const cb_json_value *root, cb_model_config *mc, const char *what, cb_error *err)
{
	const cb_json_value *id2label = cb_json_get(root, "id2label");
	const cb_json_value *nl = cb_json_get(root, "num_labels");
	int32_t		n;
	char		buf[80];

	if (id2label != NULL && id2label->type != CB_JSON_NULL)
	{
		if (id2label->type != CB_JSON_OBJECT)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"id2label\" must be an object, not %s",
								what, cb_json_type_name(id2label->type));
		if (id2label->count == 0 || id2label->count > CB_MAX_LABELS)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"id2label\" has %zu labels (1 to %d allowed)",
								what, id2label->count, CB_MAX_LABELS);
		n = (int32_t) id2label->count;
	}
	else if (nl != NULL && nl->type != CB_JSON_NULL)
	{
		cb_status	st = get_int(root, "num_labels", 2, 1, CB_MAX_LABELS, what, &n, err);

		if (st != CB_OK)
			return st;
		id2label = NULL;
	}
	else
	{
		n = 2;
		id2label = NULL;
	}

	mc->labels = cb_calloc((size_t) n, sizeof(char *));
	if (mc->labels == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
	mc->num_labels = n;

	if (id2label == NULL)
	{
		for (int32_t i = 0; i < n; i++)
		{
			mc->labels[i] = cb_malloc(24);
			if (mc->labels[i] == NULL)
				return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
			snprintf(mc->labels[i], 24, "LABEL_%d", (int) i);
		}
		return CB_OK;
	}

	for (size_t k = 0; k < id2label->count; k++)
	{
		const cb_json_member *m = &id2label->members[k];
		int64_t		id = 0;
		bool		ok = m->key_len > 0 && m->key_len <= 9;

		/* keys are the decimal ids as Python's str(int) writes them */
		for (size_t j = 0; ok && j < m->key_len; j++)
		{
			if (m->key[j] < '0' || m->key[j] > '9' || (j == 0 && m->key[j] == '0' && m->key_len > 1))
				ok = false;
			else
				id = id * 10 + (m->key[j] - '0');
		}
		if (!ok || id >= n)
			return cb_set_error(err, CB_ERR_FORMAT,
								"%s: \"id2label\" key \"%s\" is not a label id in 0..%d",
								what, shown(m->key, m->key_len, buf, sizeof(buf)), (int) n - 1);
		/* duplicate keys are rejected by the JSON parser, so each id appears once */
		if (m->value.type != CB_JSON_STRING)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"id2label\" value of \"%s\" must be a string, not %s",
								what, m->key, cb_json_type_name(m->value.type));
		if (m->value.string_len > CB_CONFIG_MAX_LABEL_BYTES)
			return cb_set_error(err, CB_ERR_LIMIT, "%s: label %d is longer than %d bytes",
								what, (int) id, CB_CONFIG_MAX_LABEL_BYTES);
		if (memchr(m->value.string, '\0', m->value.string_len) != NULL)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: label %d contains a NUL character",
								what, (int) id);
		mc->labels[id] = cb_malloc(m->value.string_len + 1);
		if (mc->labels[id] == NULL)
			return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
		memcpy(mc->labels[id], m->value.string, m->value.string_len + 1);
	}
	return CB_OK;
}

static cb_status
parse_root(const cb_json_value *root, cb_model_config *mc, const char *what, cb_error *err)
{
	cb_config  *c = &mc->config;
	const cb_json_value *v;
	cb_status	st;
	bool		flag;
	char		buf[80];

	if (root->type != CB_JSON_OBJECT)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: the configuration must be a JSON object, not %s",
							what, cb_json_type_name(root->type));

	/* architecture */
	v = cb_json_get(root, "architectures");
	if (v == NULL || v->type == CB_JSON_NULL)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"architectures\" is missing: cannot tell which model this is", what);
	if (v->type != CB_JSON_ARRAY || v->count == 0 || v->items[0].type != CB_JSON_STRING)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: \"architectures\" must be a non-empty array of strings", what);
	{
		const cb_json_value *a = &v->items[0];
		bool		found = false;

		for (size_t i = 0; i < sizeof(known_architectures) / sizeof(known_architectures[0]) && !found; i++)
			if (a->string_len == strlen(known_architectures[i].name) &&
				memcmp(a->string, known_architectures[i].name, a->string_len) == 0)
			{
				c->architecture = known_architectures[i].arch;
				found = true;
			}
		if (!found)
			return cb_set_error(err, CB_ERR_UNSUPPORTED,
								"%s: architecture \"%s\" is not supported (Camembert, Roberta or XLMRoberta "
								"ForMaskedLM, ForSequenceClassification, ForCausalLM, or the bare Model)",
								what, shown(a->string, a->string_len, buf, sizeof(buf)));
	}
	v = cb_json_get(root, "model_type");
	if (v != NULL && v->type != CB_JSON_NULL)
	{
		bool		found = false;

		if (v->type != CB_JSON_STRING)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"model_type\" must be a string", what);
		for (size_t i = 0; i < sizeof(known_model_types) / sizeof(known_model_types[0]); i++)
			found |= strlen(known_model_types[i]) == v->string_len &&
				memcmp(known_model_types[i], v->string, v->string_len) == 0;
		if (!found)
			return cb_set_error(err, CB_ERR_UNSUPPORTED,
								"%s: model_type \"%s\" is not supported (camembert, roberta, xlm-roberta)",
								what, shown(v->string, v->string_len, buf, sizeof(buf)));
	}

	if ((st = get_int(root, "vocab_size", 30522, 1, CB_CONFIG_MAX_VOCAB, what, &c->vocab_size, err)) ||
		(st = get_int(root, "hidden_size", 768, 1, CB_CONFIG_MAX_HIDDEN, what, &c->hidden_size, err)) ||
		(st = get_int(root, "num_hidden_layers", 12, 1, CB_MAX_LAYERS, what, &c->num_hidden_layers, err)) ||
		(st = get_int(root, "num_attention_heads", 12, 1, CB_CONFIG_MAX_HIDDEN, what, &c->num_attention_heads, err)) ||
		(st = get_int(root, "intermediate_size", 3072, 1, CB_CONFIG_MAX_INTERMEDIATE, what, &c->intermediate_size, err)) ||
		(st = get_int(root, "max_position_embeddings", 512, 1, CB_CONFIG_MAX_POSITIONS, what, &c->max_position_embeddings, err)) ||
		(st = get_int(root, "type_vocab_size", 2, 1, CB_CONFIG_MAX_TYPE_VOCAB, what, &c->type_vocab_size, err)))
		return st;
	if ((st = get_int(root, "pad_token_id", 1, 0, c->vocab_size - 1, what, &c->pad_token_id, err)) ||
		(st = get_token_id(root, "bos_token_id", 0, c->vocab_size, what, &c->bos_token_id, err)) ||
		(st = get_token_id(root, "eos_token_id", 2, c->vocab_size, what, &c->eos_token_id, err)))
		return st;
	if (c->hidden_size % c->num_attention_heads != 0)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: hidden_size %d is not a multiple of num_attention_heads %d",
							what, c->hidden_size, c->num_attention_heads);

	v = cb_json_get(root, "layer_norm_eps");
	c->layer_norm_eps = 1e-12f;
	if (v != NULL)
	{
		if (v->type != CB_JSON_NUMBER)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"layer_norm_eps\" must be a number, not %s",
								what, cb_json_type_name(v->type));
		if (!(v->number > 0.0) || v->number > 1.0)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"layer_norm_eps\" = %g is not in (0, 1]",
								what, v->number);
		c->layer_norm_eps = (float) v->number;
		if (!(c->layer_norm_eps > 0.0f))
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"layer_norm_eps\" = %g underflows float32",
								what, v->number);
	}

	if ((st = get_bool(root, "is_decoder", false, what, &flag, err)))
		return st;
	c->is_decoder = flag ? 1 : 0;
	if ((st = get_bool(root, "tie_word_embeddings", true, what, &mc->tie_word_embeddings, err)))
		return st;
	if ((st = get_bool(root, "add_cross_attention", false, what, &flag, err)))
		return st;
	if (flag)
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: \"add_cross_attention\" = true is not supported", what);
	if ((st = require_string(root, "hidden_act", "gelu", what, err)) ||
		(st = require_string(root, "position_embedding_type", "absolute", what, err)))
		return st;

	c->stored_dtype = CB_DTYPE_F32;
	c->problem_type = CB_PROBLEM_NONE;
	c->num_labels = 0;
	if (c->architecture == CB_ARCH_SEQUENCE_CLASSIFICATION)
	{
		if ((st = read_labels(root, mc, what, err)))
			return st;
		c->num_labels = mc->num_labels;
		v = cb_json_get(root, "problem_type");
		if (v == NULL || v->type == CB_JSON_NULL)
			c->problem_type = c->num_labels == 1 ? CB_PROBLEM_REGRESSION : CB_PROBLEM_SINGLE_LABEL;
		else if (v->type != CB_JSON_STRING)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: \"problem_type\" must be a string, not %s",
								what, cb_json_type_name(v->type));
		else if (json_string_is(v, "regression"))
			c->problem_type = CB_PROBLEM_REGRESSION;
		else if (json_string_is(v, "single_label_classification"))
			c->problem_type = CB_PROBLEM_SINGLE_LABEL;
		else if (json_string_is(v, "multi_label_classification"))
			c->problem_type = CB_PROBLEM_MULTI_LABEL;
		else
			return cb_set_error(err, CB_ERR_FORMAT,
								"%s: \"problem_type\" = \"%s\" is not one of regression, "
								"single_label_classification, multi_label_classification",
								what, shown(v->string, v->string_len, buf, sizeof(buf)));
	}
	return cb_config_validate(c, what, err);
}

static const cb_json_limits config_limits = {
	CB_CONFIG_MAX_FILE_BYTES, 32, 1024 * 1024
};

static cb_status
from_doc(cb_json_doc *doc, const char *what, cb_model_config **out, cb_error *err)
{
	cb_model_config *mc = cb_calloc(1, sizeof(*mc));
	cb_status	st;

	if (mc == NULL)
	{
		cb_json_free(doc);
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", what);
	}
	st = parse_root(cb_json_root(doc), mc, what, err);
	cb_json_free(doc);
	if (st != CB_OK)
	{
		cb_config_free(mc);
		return st;
	}
	*out = mc;
	return CB_OK;
}

cb_status
cb_config_parse(const char *text, size_t len, const char *what,
				cb_model_config **out, cb_error *err)
{
	cb_json_doc *doc;
	cb_status	st;

	*out = NULL;
	if (what == NULL)
		what = "config.json";
	st = cb_json_parse(text, len, what, &config_limits, &doc, err);
	if (st != CB_OK)
		return st;
	return from_doc(doc, what, out, err);
}

cb_status
cb_config_load(const char *path, const char *root, cb_model_config **out, cb_error *err)
{
	cb_json_doc *doc;
	cb_status	st;

	*out = NULL;
	st = cb_json_load_file_in(path, root, &config_limits, &doc, err);
	if (st != CB_OK)
		return st;
	return from_doc(doc, path, out, err);
}

void
cb_config_free(cb_model_config *mc)
{
	if (mc == NULL)
		return;
	if (mc->labels != NULL)
		for (int32_t i = 0; i < mc->num_labels; i++)
			cb_free(mc->labels[i]);
	cb_free(mc->labels);
	cb_free(mc);
}
