/*
 * accuracy.c — each precision of the engine (cb_precision: float32, auto,
 * bfloat16, int8) against float32, on the held-out data of the bundled models
 * and on the golden reference outputs.  bench/accuracy.sh builds and runs it;
 * by hand:
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc/core -Itest/unit \
 *       -o build/accuracy/accuracy bench/accuracy.c test/unit/support/npy.c \
 *       src/core/[a-z]*.c $(pkg-config --cflags --libs hdf5) -lopenblas -lm -lpthread
 *   build/accuracy/accuracy --corpus build/accuracy/corpus [--models models]
 *       [--golden build/golden/models] [--precisions float32,auto,bfloat16,int8]
 *       [--prompts 32] [--new-tokens 20]
 *
 * --corpus: the directory models/train/build_corpus.py writes (fr_lm.jsonl,
 * langid.jsonl); only their "test" split of technical text is read (records
 * whose "source" is "man" or "doc", or that have none: the everyday text of
 * issue 19, "gettext", "handbook" and "game", has its own figures in
 * models/README.md).  The evaluation follows
 * models/train/train_all.py exactly, so that float32 must reproduce the
 * figures of models/README.md (checked, "harness" lines):
 *
 *  - sequences: fr_lm test lines in file order, each encoded without special
 *    tokens (fr-mlm's tokenizer, which fr-clm shares) and cut into pieces of
 *    126 ids, each <s> ... </s>; langid test sentences of fr, de, es, en (in
 *    that order, file order within each), <s> ... </s> truncated to 128 ids,
 *    with langid's own tokenizer;
 *  - batches (eval_batches): sequence indices sorted by length (stable), cut
 *    whenever length × (rows + 1) would pass 2 048; each batch padded on the
 *    right to its longest row;
 *  - fr-mlm: torch.Generator().manual_seed(20240601 + 4), then per batch
 *    torch.rand(B, T) (torch's CPU generator: mt19937, a float32 uniform is
 *    (next() & 0xFFFFFF) / 2^24, drawn in row-major order), positions with
 *    r < 0.15 that are not <pad>/<s>/</s> replaced by <mask>; top-1 accuracy
 *    of the LM head there and mean cross-entropy;
 *  - fr-clm: cross-entropy of every next token after <s> (</s> included),
 *    perplexity = exp(mean); greedy generation (cb_generate) of --new-tokens
 *    tokens after <s> + the first 4 words of the first --prompts held-out
 *    lines that have at least 8 words;
 *  - langid: argmax of the class logits against the label.
 *
 * Models are built with cb_model_source_* into 64-byte aligned memory, as
 * the SQL layer's segments are (load_aligned).
 *
 * Golden (information): every model of --golden (build/golden/models, test/golden's: the
 * transformers reference outputs, float32 computation) loaded at each
 * precision: max |Δ| of every hidden state (embeddings output and each
 * layer) and of the logits (class logits; the LM models' top-10 logits at
 * their ids) over the 25 cases.
 *
 * Output: one Markdown table, a PASS/FAIL/info verdict per line; the exit
 * status is 1 when a gate fails.  Progress goes to stderr.
 */
#include "forward.h"
#include "generate.h"
#include "json.h"
#include "model_image.h"
#include "tokenizer.h"
#include "support/npy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern int	openblas_get_num_threads(void);

/* The compute context of every run: OPENBLAS_NUM_THREADS threads (default 1). */
static const cb_compute *
accuracy_compute(void)
{
	static cb_compute cc;

	cc = cb_compute_serial();
	cc.threads = openblas_get_num_threads();
	return &cc;
}

#define MAX_PREC 8
#define MAX_LEN 128				/* tokens per sequence, <s> and </s> included */
#define BATCH_TOKENS 2048		/* eval_batches' max_tokens */
#define MLM_SEED (20240601u + 4u)
#define MLM_PROB 0.15f

static const char *const LANGS[4] = {"fr", "de", "es", "en"};

/* models/README.md, "Held-out results" (fp16 weights, what is shipped), the
 * technical rows */
#define PUB_MLM_TOP1 29.13
#define PUB_MLM_POSITIONS 4164
#define PUB_CLM_PPL 93.2
#define PUB_CLM_TOKENS 28972
#define PUB_LANGID_ACC 99.88
#define PUB_LANGID_N 8452

/* gates (issue "[10] Precision") */
#define GATE_LANGID_POINTS 0.5
#define GATE_LANGID_AGREE 99.0
#define GATE_MLM_POINTS 1.0
#define GATE_CLM_PPL_PCT 2.0

/* ------------------------------------------------------------------------ */
/* small helpers */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
	{
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void	   *p = calloc(n > 0 ? n : 1, size > 0 ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n > 0 ? n : 1);
	if (p == NULL)
	{
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "accuracy: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	long		n;
	char	   *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		die("cannot read %s", path);
	buf = xmalloc((size_t) n + 1);
	if (fread(buf, 1, (size_t) n, f) != (size_t) n)
		die("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t) n;
	return buf;
}

static const char *
join(const char *dir, const char *name)
{
	static char buf[8][4096];
	static int	next;
	char	   *b = buf[next++ % 8];

	if (snprintf(b, sizeof(buf[0]), "%s/%s", dir, name) >= (int) sizeof(buf[0]))
		die("path too long: %s/%s", dir, name);
	return b;
}

/* ------------------------------------------------------------------------ */
/* torch's CPU generator: mt19937 (torch.Generator().manual_seed(s) seeds it
 * with the standard init_genrand), and torch.rand's float32 uniform */

typedef struct mt19937
{
	uint32_t	s[624];
	int			i;
} mt19937;

static void
mt_seed(mt19937 *m, uint32_t seed)
{
	m->s[0] = seed;
	for (int j = 1; j < 624; j++)
		m->s[j] = 1812433253u * (m->s[j - 1] ^ (m->s[j - 1] >> 30)) + (uint32_t) j;
	m->i = 624;
}

static uint32_t
mt_next(mt19937 *m)
{
	uint32_t	y;

	if (m->i >= 624)
	{
		for (int k = 0; k < 624; k++)
		{
			y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
			m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
		}
		m->i = 0;
	}
	y = m->s[m->i++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680u;
	y ^= (y << 15) & 0xefc60000u;
	y ^= y >> 18;
	return y;
}

static float
mt_rand_float(mt19937 *m)
{
	return (float) (mt_next(m) & 0xFFFFFFu) * (1.0f / 16777216.0f);
}

/* ------------------------------------------------------------------------ */
/* tokenizer of a model directory */

typedef struct tokenizer
{
	cb_tokenizer tok;
	void	   *image;
	cb_tok_workspace *ws;
} tokenizer;

static void
tokenizer_open(const char *dir, tokenizer *t)
{
	size_t		len,
				image_len;
	char	   *bytes = read_file(join(dir, "sentencepiece.bpe.model"), &len);
	cb_error	err;

	if (cb_tokenizer_build((const uint8_t *) bytes, len, &t->image, &image_len, &err) != CB_OK ||
		cb_tokenizer_open(t->image, image_len, &t->tok, &err) != CB_OK)
		die("%s: %s", dir, err.message);
	free(bytes);
	t->ws = cb_tok_workspace_create();
	if (t->ws == NULL)
		die("out of memory");
}

static void
tokenizer_close(tokenizer *t)
{
	cb_tok_workspace_destroy(t->ws);
	cb_free(t->image);
}

/* ids of text (malloc'ed), with or without <s> </s>, truncated to max_length (0: none) */
static int32_t *
encode(tokenizer *t, const char *text, bool special, int32_t max_length, size_t *n)
{
	const int32_t *ids;
	int32_t    *out;
	cb_error	err;

	if (cb_tokenizer_encode_ws(&t->tok, t->ws, text, strlen(text), special, max_length, &ids, n, NULL,
							   &err) != CB_OK)
		die("tokenize: %s", err.message);
	out = xmalloc(*n * sizeof(int32_t) + 1);
	memcpy(out, ids, *n * sizeof(int32_t));
	return out;
}

/* ------------------------------------------------------------------------ */
/* held-out data */

typedef struct seq
{
	int32_t    *ids;
	int32_t		len;
	int32_t		label;			/* langid: index in LANGS */
} seq;

typedef struct seq_list
{
	seq		   *v;
	size_t		n,
				cap;
} seq_list;

static void
seq_push(seq_list *l, int32_t *ids, int32_t len, int32_t label)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = xrealloc(l->v, l->cap * sizeof(seq));
	}
	l->v[l->n++] = (seq) {ids, len, label};
}

typedef struct str_list
{
	char	  **v;
	size_t		n,
				cap;
} str_list;

static void
str_push(str_list *l, const char *s)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = xrealloc(l->v, l->cap * sizeof(char *));
	}
	l->v[l->n] = xmalloc(strlen(s) + 1);
	strcpy(l->v[l->n++], s);
}

/* Literal added tokens: the core tokenizer turns them into their ids, the
 * training code (CamembertIds.encode_pieces_ids) encodes them as text. */
static bool
has_added_token(const char *s)
{
	static const char *const lit[] = {"<s>", "</s>", "<pad>", "<unk>", "<mask>", "NOTUSED"};

	for (size_t i = 0; i < sizeof(lit) / sizeof(lit[0]); i++)
		if (strstr(s, lit[i]) != NULL)
			return true;
	return false;
}

/*
 * The test split of a corpus file: texts, and for langid.jsonl the label
 * (index of "lang" in LANGS), grouped by language in LANGS order.
 */
static void
read_test_split(const char *path, bool langid, str_list *texts, int32_t **labels, int *n_literals)
{
	size_t		len;
	char	   *buf = read_file(path, &len);
	str_list	per_lang[4] = {{0}};

	*n_literals = 0;
	for (char *line = buf; *line != '\0';)
	{
		char	   *end = strchr(line, '\n');
		size_t		n = end ? (size_t) (end - line) : strlen(line);
		cb_json_doc *doc;
		cb_error	err;
		const cb_json_value *root,
				   *split,
				   *text,
				   *source,
				   *lang;

		if (n > 0)
		{
			if (cb_json_parse(line, n, path, &cb_json_default_limits, &doc, &err) != CB_OK)
				die("%s: %s", path, err.message);
			root = cb_json_root(doc);
			split = cb_json_get(root, "split");
			text = cb_json_get(root, "text");
			if (split == NULL || split->type != CB_JSON_STRING || text == NULL || text->type != CB_JSON_STRING)
				die("%s: a line without split/text", path);
			source = cb_json_get(root, "source");
			if (strcmp(split->string, "test") == 0 &&
				(source == NULL ||
				 (source->type == CB_JSON_STRING &&
				  (strcmp(source->string, "man") == 0 || strcmp(source->string, "doc") == 0))))
			{
				if (strlen(text->string) != text->string_len)
					die("%s: a text with a NUL byte", path);
				if (has_added_token(text->string))
					(*n_literals)++;
				if (langid)
				{
					int			k = -1;

					lang = cb_json_get(root, "lang");
					for (int i = 0; i < 4 && lang != NULL && lang->type == CB_JSON_STRING; i++)
						if (strcmp(lang->string, LANGS[i]) == 0)
							k = i;
					if (k < 0)
						die("%s: unknown lang", path);
					str_push(&per_lang[k], text->string);
				}
				else
					str_push(texts, text->string);
			}
			cb_json_free(doc);
		}
		line = end ? end + 1 : line + n;
	}
	free(buf);
	if (langid)
	{
		size_t		total = 0,
					k = 0;

		for (int i = 0; i < 4; i++)
			total += per_lang[i].n;
		*labels = xmalloc(total * sizeof(int32_t) + 1);
		for (int i = 0; i < 4; i++)
		{
			for (size_t j = 0; j < per_lang[i].n; j++)
			{
				str_push(texts, per_lang[i].v[j]);
				free(per_lang[i].v[j]);
				(*labels)[k++] = i;
			}
			free(per_lang[i].v);
		}
	}
}

/* train_all.py's chunk(): content ids -> <s> ... </s> sequences of at most 128 ids */
static void
lm_sequences(tokenizer *t, const str_list *texts, int32_t bos, int32_t eos, seq_list *out)
{
	const size_t step = MAX_LEN - 2;

	for (size_t i = 0; i < texts->n; i++)
	{
		size_t		n;
		int32_t    *content = encode(t, texts->v[i], false, 0, &n);

		for (size_t s = 0; s < (n > 0 ? n : 1); s += step)
		{
			size_t		k = n - s < step ? n - s : step;
			int32_t    *ids = xmalloc((k + 2) * sizeof(int32_t));

			if (n == 0)
				k = 0;
			ids[0] = bos;
			memcpy(ids + 1, content + s, k * sizeof(int32_t));
			ids[k + 1] = eos;
			seq_push(out, ids, (int32_t) (k + 2), -1);
		}
		free(content);
	}
}

/* ------------------------------------------------------------------------ */
/* eval_batches */

typedef struct batch
{
	size_t	   *idx;			/* sequence indices */
	int32_t		n;				/* rows */
	int32_t		T;				/* padded length */
} batch;

static const seq *sort_seqs;

static int
cmp_len_stable(const void *a, const void *b)
{
	size_t		x = *(const size_t *) a,
				y = *(const size_t *) b;
	int32_t		lx = sort_seqs[x].len,
				ly = sort_seqs[y].len;

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

static batch *
make_batches(const seq_list *l, size_t *n_batches)
{
	size_t	   *order = xmalloc(l->n * sizeof(size_t) + 1);
	batch	   *b = xcalloc(l->n + 1, sizeof(batch));
	size_t		nb = 0;
	batch	   *cur = NULL;

	for (size_t i = 0; i < l->n; i++)
		order[i] = i;
	sort_seqs = l->v;
	qsort(order, l->n, sizeof(size_t), cmp_len_stable);
	for (size_t k = 0; k < l->n; k++)
	{
		size_t		i = order[k];

		if (cur != NULL && cur->n > 0 &&
			(size_t) l->v[i].len * (size_t) (cur->n + 1) > BATCH_TOKENS)
			cur = NULL;
		if (cur == NULL)
		{
			cur = &b[nb++];
			cur->idx = xmalloc(l->n * sizeof(size_t));
		}
		cur->idx[cur->n++] = i;
		if (l->v[i].len > cur->T)
			cur->T = l->v[i].len;
	}
	free(order);
	*n_batches = nb;
	return b;
}

/* ids [n][T] padded with pad, mask [n][T] */
static void
pad_batch(const seq_list *l, const batch *b, int32_t pad, int32_t *ids, int32_t *mask)
{
	for (int32_t r = 0; r < b->n; r++)
	{
		const seq  *s = &l->v[b->idx[r]];

		for (int32_t t = 0; t < b->T; t++)
		{
			ids[r * b->T + t] = t < s->len ? s->ids[t] : pad;
			mask[r * b->T + t] = t < s->len;
		}
	}
}

/* log-softmax cross-entropy at target, and argmax (first maximum) */
static double
cross_entropy(const float *logits, int32_t V, int32_t target, int32_t *argmax)
{
	float		mx = logits[0];
	int32_t		am = 0;
	double		sum = 0;

	for (int32_t v = 1; v < V; v++)
		if (logits[v] > mx)
		{
			mx = logits[v];
			am = v;
		}
	for (int32_t v = 0; v < V; v++)
		sum += exp((double) logits[v] - (double) mx);
	*argmax = am;
	return log(sum) + (double) mx - (double) logits[target];
}

static void
forward(const cb_model *m, int32_t B, int32_t T, const int32_t *ids, const int32_t *mask,
		const cb_forward_output *out, cb_workspace *ws)
{
	cb_forward_input in = {B, T, ids, mask};
	cb_error	err;

	if (cb_forward(accuracy_compute(), m, &in, out, ws, &err) != CB_OK)
		die("cb_forward: %s", err.message);
}

/* A model at a precision (cb_model_load_dir_precision: 64-byte aligned, as
 * the SQL layer's segments are); cb_model_view_release frees it. */
static void
load_model(const char *dir, cb_precision p, cb_model *m)
{
	cb_error	err;

	if (cb_model_load_dir_precision(dir, p, m, &err) != CB_OK)
		die("%s (%s): %s", dir, cb_precision_name(p), err.message);
}

/* ------------------------------------------------------------------------ */
/* the three evaluations */

typedef struct mlm_result
{
	size_t		positions,
				correct;
	double		ce;
	int32_t    *pred;			/* [positions] */
} mlm_result;

static void
eval_mlm(const cb_model *m, const seq_list *seqs, const batch *batches, size_t nb, int32_t mask_id,
		 mlm_result *r)
{
	const int32_t V = m->config.vocab_size,
				pad = m->config.pad_token_id,
				bos = m->config.bos_token_id,
				eos = m->config.eos_token_id;
	int32_t    *ids = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *mask = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *pos = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *target = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t));
	float	   *logits = NULL;
	size_t		cap = 0,
				pred_cap = 4096;
	cb_workspace ws;
	mt19937		rng;

	memset(r, 0, sizeof(*r));
	r->pred = xmalloc(pred_cap * sizeof(int32_t));
	cb_workspace_init(&ws);
	mt_seed(&rng, MLM_SEED);
	for (size_t k = 0; k < nb; k++)
	{
		const batch *b = &batches[k];
		int32_t		n = 0;
		cb_forward_output out;

		pad_batch(seqs, b, pad, ids, mask);
		for (int32_t i = 0; i < b->n * b->T; i++)
		{
			float		u = mt_rand_float(&rng);	/* drawn for every cell, padding included */

			if (u < MLM_PROB && ids[i] != pad && ids[i] != bos && ids[i] != eos)
			{
				target[n] = ids[i];
				pos[n++] = i;
				ids[i] = mask_id;
			}
		}
		if (n == 0)
			continue;
		if ((size_t) n > cap)
		{
			cap = (size_t) n;
			logits = xrealloc(logits, cap * (size_t) V * sizeof(float));
		}
		memset(&out, 0, sizeof(out));
		out.logit_positions = pos;
		out.n_logit_positions = n;
		out.position_logits = logits;
		forward(m, b->n, b->T, ids, mask, &out, &ws);
		for (int32_t j = 0; j < n; j++)
		{
			int32_t		am;

			r->ce += cross_entropy(logits + (size_t) j * V, V, target[j], &am);
			r->correct += am == target[j];
			if (r->positions == pred_cap)
			{
				pred_cap *= 2;
				r->pred = xrealloc(r->pred, pred_cap * sizeof(int32_t));
			}
			r->pred[r->positions++] = am;
		}
	}
	cb_workspace_release(&ws);
	free(ids);
	free(mask);
	free(pos);
	free(target);
	free(logits);
}

typedef struct clm_result
{
	size_t		tokens,
				correct;
	double		ce;
	int32_t    *pred;			/* [tokens] next-token argmax */
	int32_t   **gen;			/* [prompts][new_tokens]: generated ids */
	int32_t    *n_gen;
} clm_result;

static void
eval_clm(const cb_model *m, const seq_list *seqs, const batch *batches, size_t nb, clm_result *r)
{
	const int32_t V = m->config.vocab_size,
				pad = m->config.pad_token_id;
	int32_t    *ids = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *mask = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *pos = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *target = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t));
	float	   *logits = xmalloc((size_t) BATCH_TOKENS * (size_t) V * sizeof(float));
	size_t		pred_cap = 32768;
	cb_workspace ws;

	r->tokens = r->correct = 0;
	r->ce = 0;
	r->pred = xmalloc(pred_cap * sizeof(int32_t));
	cb_workspace_init(&ws);
	for (size_t k = 0; k < nb; k++)
	{
		const batch *b = &batches[k];
		int32_t		n = 0;
		cb_forward_output out;

		pad_batch(seqs, b, pad, ids, mask);
		/* h[:, :-1] against ids[:, 1:], where the target is not <pad> */
		for (int32_t row = 0; row < b->n; row++)
			for (int32_t t = 0; t + 1 < b->T; t++)
				if (ids[row * b->T + t + 1] != pad)
				{
					pos[n] = row * b->T + t;
					target[n++] = ids[row * b->T + t + 1];
				}
		memset(&out, 0, sizeof(out));
		out.logit_positions = pos;
		out.n_logit_positions = n;
		out.position_logits = logits;
		forward(m, b->n, b->T, ids, mask, &out, &ws);
		for (int32_t j = 0; j < n; j++)
		{
			int32_t		am;

			r->ce += cross_entropy(logits + (size_t) j * V, V, target[j], &am);
			r->correct += am == target[j];
			if (r->tokens == pred_cap)
			{
				pred_cap *= 2;
				r->pred = xrealloc(r->pred, pred_cap * sizeof(int32_t));
			}
			r->pred[r->tokens++] = am;
		}
	}
	cb_workspace_release(&ws);
	free(ids);
	free(mask);
	free(pos);
	free(target);
	free(logits);
}

static void
generate_all(const cb_model *m, const seq_list *prompts, int32_t new_tokens, clm_result *r)
{
	cb_generate_options opt;
	cb_error	err;

	cb_generate_default_options(m, &opt);
	opt.max_new_tokens = new_tokens;
	opt.temperature = 0;
	r->gen = xmalloc(prompts->n * sizeof(int32_t *) + 1);
	r->n_gen = xmalloc(prompts->n * sizeof(int32_t) + 1);
	for (size_t i = 0; i < prompts->n; i++)
	{
		r->gen[i] = xmalloc((size_t) new_tokens * sizeof(int32_t) + 1);
		if (cb_generate(accuracy_compute(), m, prompts->v[i].ids, prompts->v[i].len, &opt, r->gen[i], &r->n_gen[i], NULL, NULL,
						&err) != CB_OK)
			die("cb_generate: %s", err.message);
	}
}

typedef struct cls_result
{
	size_t		n,
				correct;
	size_t		per_n[4],
				per_correct[4];
	int32_t    *pred;			/* [n], by sequence index */
} cls_result;

static void
eval_cls(const cb_model *m, const seq_list *seqs, const batch *batches, size_t nb, cls_result *r)
{
	const int32_t L = m->config.num_labels;
	int32_t    *ids = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t)),
			   *mask = xmalloc(BATCH_TOKENS * 2 * sizeof(int32_t));
	float	   *logits = xmalloc((size_t) BATCH_TOKENS * (size_t) L * sizeof(float));
	cb_workspace ws;

	memset(r, 0, sizeof(*r));
	r->pred = xmalloc(seqs->n * sizeof(int32_t) + 1);
	cb_workspace_init(&ws);
	for (size_t k = 0; k < nb; k++)
	{
		const batch *b = &batches[k];
		cb_forward_output out;

		pad_batch(seqs, b, m->config.pad_token_id, ids, mask);
		memset(&out, 0, sizeof(out));
		out.class_logits = logits;
		forward(m, b->n, b->T, ids, mask, &out, &ws);
		for (int32_t row = 0; row < b->n; row++)
		{
			const float *lg = logits + (size_t) row * L;
			int32_t		am = 0,
						label = seqs->v[b->idx[row]].label;

			for (int32_t j = 1; j < L; j++)
				if (lg[j] > lg[am])
					am = j;
			r->pred[b->idx[row]] = am;
			r->n++;
			r->correct += am == label;
			if (label >= 0 && label < 4)
			{
				r->per_n[label]++;
				r->per_correct[label] += am == label;
			}
		}
	}
	cb_workspace_release(&ws);
	free(ids);
	free(mask);
	free(logits);
}

/* ------------------------------------------------------------------------ */
/* golden reference outputs */

typedef struct golden_result
{
	bool		ok;
	double		hidden,			/* max |Δ| of the hidden states */
				logits;			/* max |Δ| of the logits */
	char		note[128];
} golden_result;

static void
eval_golden(const char *golden_dir, const char *name, cb_precision p, golden_result *g)
{
	char		dir[4096];
	cb_model	m;
	cb_error	err;
	cb_json_doc *doc;
	const cb_json_value *cases;
	ut_npy		hs = {0},
				top_ids = {0},
				top_logits = {0},
				cls_logits = {0};
	cb_workspace ws;
	bool		cls;
	int32_t		H,
				V,
				L1,
				total;

	memset(g, 0, sizeof(*g));
	if (snprintf(dir, sizeof(dir), "%s/%s", golden_dir, name) >= (int) sizeof(dir))
		die("path too long: %s/%s", golden_dir, name);
	if (cb_model_load_dir_precision(dir, p, &m, &err) != CB_OK)
	{
		snprintf(g->note, sizeof(g->note), "load: %.100s", err.message);
		return;
	}
	cls = m.config.architecture == CB_ARCH_SEQUENCE_CLASSIFICATION;
	H = m.config.hidden_size;
	V = m.config.vocab_size;
	L1 = m.config.num_hidden_layers + 1;
	if (cb_json_load_file(join(dir, "expected/cases.json"), &cb_json_default_limits, &doc, &err) != CB_OK)
		die("%s", err.message);
	cases = cb_json_get(cb_json_root(doc), "cases");
	if (cases == NULL || cases->type != CB_JSON_ARRAY ||
		ut_npy_load(join(dir, "expected/hidden_states.npy"), &hs) != 0 ||
		(cls ? ut_npy_load(join(dir, "expected/logits.npy"), &cls_logits) != 0 :
		 (ut_npy_load(join(dir, "expected/top10_ids.npy"), &top_ids) != 0 ||
		  ut_npy_load(join(dir, "expected/top10_logits.npy"), &top_logits) != 0)))
		die("%s: golden files missing", dir);
	if (hs.ndim != 3 || (int32_t) hs.shape[0] != L1 || (int32_t) hs.shape[2] != H)
		die("%s: hidden_states.npy has an unexpected shape", dir);
	total = (int32_t) hs.shape[1];
	cb_workspace_init(&ws);
	for (size_t c = 0; c < cases->count; c++)
	{
		const cb_json_value *cv = &cases->items[c],
				   *idv = cb_json_get(cv, "input_ids"),
				   *offv = cb_json_get(cv, "token_offset");
		int32_t		T,
					off;
		int32_t    *ids;
		float	   *hidden,
				   *out_logits;
		cb_forward_output out;

		if (idv == NULL || idv->type != CB_JSON_ARRAY || offv == NULL || offv->type != CB_JSON_NUMBER)
			die("%s: bad cases.json", dir);
		T = (int32_t) idv->count;
		off = (int32_t) offv->integer;
		if (T < 1 || off < 0 || off + T > total)
			die("%s: bad case %zu", dir, c);
		ids = xmalloc((size_t) T * sizeof(int32_t));
		for (int32_t t = 0; t < T; t++)
			ids[t] = (int32_t) idv->items[t].integer;
		hidden = xmalloc((size_t) L1 * (size_t) T * (size_t) H * sizeof(float));
		out_logits = xmalloc((size_t) T * (size_t) (cls ? m.config.num_labels : V) * sizeof(float));
		memset(&out, 0, sizeof(out));
		out.hidden_states = hidden;
		if (cls)
			out.class_logits = out_logits;
		else
			out.token_logits = out_logits;
		forward(&m, 1, T, ids, NULL, &out, &ws);
		for (int32_t l = 0; l < L1; l++)
			for (int32_t t = 0; t < T; t++)
				for (int32_t h = 0; h < H; h++)
				{
					double		d = fabs((double) hidden[((size_t) l * T + t) * H + h] -
										 (double) hs.f[((size_t) l * total + off + t) * H + h]);

					if (d > g->hidden || isnan(d))
						g->hidden = isnan(d) ? INFINITY : d;
				}
		if (cls)
		{
			int32_t		NL = m.config.num_labels;

			for (int32_t j = 0; j < NL; j++)
			{
				double		d = fabs((double) out_logits[j] - (double) cls_logits.f[c * (size_t) NL + (size_t) j]);

				if (d > g->logits || isnan(d))
					g->logits = isnan(d) ? INFINITY : d;
			}
		}
		else
		{
			for (int32_t t = 0; t < T; t++)
				for (int k = 0; k < 10; k++)
				{
					size_t		row = (size_t) (off + t) * 10 + (size_t) k;
					int32_t		id = top_ids.i[row];
					double		d = fabs((double) out_logits[(size_t) t * V + id] - (double) top_logits.f[row]);

					if (d > g->logits || isnan(d))
						g->logits = isnan(d) ? INFINITY : d;
				}
		}
		free(ids);
		free(hidden);
		free(out_logits);
	}
	g->ok = true;
	snprintf(g->note, sizeof(g->note), "%zu cases, %s", cases->count,
			 cls ? "class logits" : "top-10 logits");
	cb_workspace_release(&ws);
	cb_json_free(doc);
	ut_npy_free(&hs);
	ut_npy_free(&top_ids);
	ut_npy_free(&top_logits);
	ut_npy_free(&cls_logits);
	cb_model_view_release(&m);
}

/* ------------------------------------------------------------------------ */
/* the table */

static int	n_fail;

static void
row(const char *model, const char *measure, const char *prec, const char *value, const char *vs,
	const char *gate, const char *verdict)
{
	printf("| %s | %s | %s | %s | %s | %s | %s |\n", model, measure, prec, value, vs, gate, verdict);
	if (strcmp(verdict, "FAIL") == 0)
		n_fail++;
}

static const char *
fmt(const char *f,...)
{
	static char buf[16][256];
	static int	next;
	char	   *b = buf[next++ % 16];
	va_list		ap;

	va_start(ap, f);
	vsnprintf(b, sizeof(buf[0]), f, ap);
	va_end(ap);
	return b;
}

static const char *
verdict(bool ok)
{
	return ok ? "PASS" : "FAIL";
}

/* ------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	const char *models = "models",
			   *corpus = NULL,
			   *golden = "build/golden/models",
			   *prec_arg = "float32,auto,bfloat16,int8";
	int			n_prompts = 32,
				new_tokens = 20;
	cb_precision prec[MAX_PREC];
	int			np = 0;
	char		mlm_dir[4096],
				clm_dir[4096],
				lid_dir[4096];
	tokenizer	tok,
				lid_tok;
	str_list	lm_texts = {0},
				lid_texts = {0};
	int32_t    *lid_labels = NULL;
	int			lm_literals,
				lid_literals;
	seq_list	lm_seqs = {0},
				lid_seqs = {0},
				prompts = {0};
	batch	   *lm_batches,
			   *lid_batches;
	size_t		lm_nb,
				lid_nb;
	int32_t		mask_id,
				bos,
				eos;
	mlm_result	mlm[MAX_PREC];
	clm_result	clm[MAX_PREC];
	cls_result	lid[MAX_PREC];
	double		secs[MAX_PREC];
	static const char *const golden_models[] = {"mlm", "mlm_fp16", "mlm_bf16_sharded", "clm", "cls3", "reg1",
	"multilabel"};
	const size_t n_golden = sizeof(golden_models) / sizeof(golden_models[0]);
	golden_result gold[sizeof(golden_models) / sizeof(golden_models[0])][MAX_PREC];
	double		t_start = now_s();

	for (int i = 1; i < argc; i++)
	{
		if (i + 1 < argc && strcmp(argv[i], "--models") == 0)
			models = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--corpus") == 0)
			corpus = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--golden") == 0)
			golden = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--precisions") == 0)
			prec_arg = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--prompts") == 0)
			n_prompts = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--new-tokens") == 0)
			new_tokens = atoi(argv[++i]);
		else
		{
			fprintf(stderr, "usage: %s --corpus DIR [--models DIR] [--golden DIR] [--precisions LIST] "
					"[--prompts N] [--new-tokens N]\n", argv[0]);
			return 2;
		}
	}
	if (corpus == NULL || n_prompts < 0 || new_tokens < 1)
		die("--corpus DIR is required (models/train/build_corpus.py's output); see bench/accuracy.sh");

	/* precisions: float32 first (the reference), then the others as listed */
	prec[np++] = CB_PRECISION_FLOAT32;
	{
		char	   *list = xmalloc(strlen(prec_arg) + 1),
				   *save = NULL;

		strcpy(list, prec_arg);
		for (char *name = strtok_r(list, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save))
		{
			cb_precision p;
			bool		seen = false;

			if (!cb_precision_from_name(name, &p))
				die("unknown precision \"%s\" (%s)", name, CB_PRECISION_NAMES);
			for (int k = 0; k < np; k++)
				seen |= prec[k] == p;
			if (!seen && np < MAX_PREC)
				prec[np++] = p;
		}
		free(list);
	}

	if (snprintf(mlm_dir, sizeof(mlm_dir), "%s/fr-mlm", models) >= (int) sizeof(mlm_dir) ||
		snprintf(clm_dir, sizeof(clm_dir), "%s/fr-clm", models) >= (int) sizeof(clm_dir) ||
		snprintf(lid_dir, sizeof(lid_dir), "%s/langid", models) >= (int) sizeof(lid_dir))
		die("path too long: %s", models);

	/* held-out data (fr-mlm and fr-clm share one tokenizer: checked by models/README.md's
	 * sha256; langid has its own) */
	tokenizer_open(mlm_dir, &tok);
	tokenizer_open(lid_dir, &lid_tok);
	mask_id = cb_tokenizer_piece_to_id(&tok.tok, "<mask>", 6);
	bos = cb_tokenizer_piece_to_id(&tok.tok, "<s>", 3);
	eos = cb_tokenizer_piece_to_id(&tok.tok, "</s>", 4);
	if (mask_id < 0 || bos < 0 || eos < 0)
		die("the tokenizer has no <mask>, <s> or </s>");
	read_test_split(join(corpus, "fr_lm.jsonl"), false, &lm_texts, NULL, &lm_literals);
	read_test_split(join(corpus, "langid.jsonl"), true, &lid_texts, &lid_labels, &lid_literals);
	lm_sequences(&tok, &lm_texts, bos, eos, &lm_seqs);
	for (size_t i = 0; i < lid_texts.n; i++)
	{
		size_t		n;
		int32_t    *ids = encode(&lid_tok, lid_texts.v[i], true, MAX_LEN, &n);

		seq_push(&lid_seqs, ids, (int32_t) n, lid_labels[i]);
	}
	/* prompts: <s> + the first 4 words of the first held-out lines of >= 8 words */
	for (size_t i = 0; i < lm_texts.n && prompts.n < (size_t) n_prompts; i++)
	{
		char		buf[1024];
		const char *s = lm_texts.v[i];
		int			words = 0;
		size_t		cut = 0;

		for (size_t k = 0; s[k] != '\0'; k++)
			if ((k == 0 || s[k - 1] == ' ') && s[k] != ' ')
			{
				if (++words == 5)
					cut = k - 1;
			}
		if (words < 8 || cut == 0 || cut >= sizeof(buf))
			continue;
		memcpy(buf, s, cut);
		buf[cut] = '\0';
		{
			size_t		n;
			int32_t    *content = encode(&tok, buf, false, 0, &n);
			int32_t    *ids = xmalloc((n + 1) * sizeof(int32_t));

			ids[0] = bos;
			memcpy(ids + 1, content, n * sizeof(int32_t));
			free(content);
			seq_push(&prompts, ids, (int32_t) n + 1, -1);
		}
	}
	lm_batches = make_batches(&lm_seqs, &lm_nb);
	lid_batches = make_batches(&lid_seqs, &lid_nb);
	{
		size_t		lm_tokens = 0;

		for (size_t i = 0; i < lm_seqs.n; i++)
			lm_tokens += (size_t) lm_seqs.v[i].len;
		fprintf(stderr, "held-out: fr_lm %zu lines -> %zu sequences, %zu tokens, %zu batches; "
				"langid %zu sentences, %zu batches; %zu prompts; literal special tokens in %d + %d texts\n",
				lm_texts.n, lm_seqs.n, lm_tokens, lm_nb, lid_texts.n, lid_nb, prompts.n, lm_literals,
				lid_literals);
	}

	/* every precision */
	for (int k = 0; k < np; k++)
	{
		cb_model	m;
		double		t0 = now_s();

		load_model(mlm_dir, prec[k], &m);
		eval_mlm(&m, &lm_seqs, lm_batches, lm_nb, mask_id, &mlm[k]);
		cb_model_view_release(&m);
		load_model(clm_dir, prec[k], &m);
		eval_clm(&m, &lm_seqs, lm_batches, lm_nb, &clm[k]);
		generate_all(&m, &prompts, new_tokens, &clm[k]);
		cb_model_view_release(&m);
		load_model(lid_dir, prec[k], &m);
		eval_cls(&m, &lid_seqs, lid_batches, lid_nb, &lid[k]);
		cb_model_view_release(&m);
		for (size_t g = 0; g < n_golden; g++)
			eval_golden(golden, golden_models[g], prec[k], &gold[g][k]);
		secs[k] = now_s() - t0;
		fprintf(stderr, "%s: %.1f s (mlm %.2f %%, clm ppl %.2f, langid %.2f %%)\n", cb_precision_name(prec[k]),
				secs[k], 100.0 * (double) mlm[k].correct / (double) mlm[k].positions,
				exp(clm[k].ce / (double) clm[k].tokens), 100.0 * (double) lid[k].correct / (double) lid[k].n);
	}

	/* the table */
	printf("| model | measure | precision | value | vs float32 | gate | |\n");
	printf("|---|---|---|---|---|---|---|\n");
	for (int k = 0; k < np; k++)
	{
		const char *pn = cb_precision_name(prec[k]);
		double		acc = 100.0 * (double) lid[k].correct / (double) lid[k].n,
					acc0 = 100.0 * (double) lid[0].correct / (double) lid[0].n;

		if (k == 0)
		{
			row("langid", fmt("accuracy, %zu test sentences (fr %zu: %.2f %%, de %zu: %.2f %%, es %zu: %.2f %%, "
							  "en %zu: %.2f %%)", lid[k].n,
							  lid[k].per_n[0], 100.0 * (double) lid[k].per_correct[0] / (double) lid[k].per_n[0],
							  lid[k].per_n[1], 100.0 * (double) lid[k].per_correct[1] / (double) lid[k].per_n[1],
							  lid[k].per_n[2], 100.0 * (double) lid[k].per_correct[2] / (double) lid[k].per_n[2],
							  lid[k].per_n[3], 100.0 * (double) lid[k].per_correct[3] / (double) lid[k].per_n[3]),
				pn, fmt("%.2f %%", acc), "-",
				fmt("harness: models/README.md says %.2f %% on %d", PUB_LANGID_ACC, PUB_LANGID_N),
				verdict(lid[k].n == PUB_LANGID_N && fabs(acc - PUB_LANGID_ACC) < 0.005 + 1e-9));
			continue;
		}
		{
			size_t		same = 0;
			double		agree;

			for (size_t i = 0; i < lid[k].n; i++)
				same += lid[k].pred[i] == lid[0].pred[i];
			agree = 100.0 * (double) same / (double) lid[k].n;
			row("langid", "accuracy", pn, fmt("%.2f %%", acc), fmt("%+.2f points", acc - acc0),
				fmt("within %.1f points", GATE_LANGID_POINTS), verdict(fabs(acc - acc0) <= GATE_LANGID_POINTS));
			row("langid", "labels equal to float32's", pn, fmt("%.2f %% (%zu of %zu)", agree, same, lid[k].n),
				"-", fmt(">= %.0f %%", GATE_LANGID_AGREE), verdict(agree >= GATE_LANGID_AGREE));
		}
	}
	for (int k = 0; k < np; k++)
	{
		const char *pn = cb_precision_name(prec[k]);
		double		acc = 100.0 * (double) mlm[k].correct / (double) mlm[k].positions,
					acc0 = 100.0 * (double) mlm[0].correct / (double) mlm[0].positions;

		if (k == 0)
		{
			row("fr-mlm", fmt("top-1 at %zu masked positions (%zu right; cross-entropy %.3f)", mlm[k].positions,
							  mlm[k].correct, mlm[k].ce / (double) mlm[k].positions),
				pn, fmt("%.2f %%", acc), "-",
				fmt("harness: models/README.md says %.2f %% at %d", PUB_MLM_TOP1, PUB_MLM_POSITIONS),
				verdict(mlm[k].positions == PUB_MLM_POSITIONS && fabs(acc - PUB_MLM_TOP1) < 0.005 + 1e-9));
			continue;
		}
		{
			size_t		same = 0;

			for (size_t i = 0; i < mlm[k].positions && i < mlm[0].positions; i++)
				same += mlm[k].pred[i] == mlm[0].pred[i];
			row("fr-mlm", fmt("top-1 accuracy (cross-entropy %.3f)", mlm[k].ce / (double) mlm[k].positions), pn,
				fmt("%.2f %%", acc), fmt("%+.2f points", acc - acc0), fmt("within %.0f point", GATE_MLM_POINTS),
				verdict(mlm[k].positions == mlm[0].positions && fabs(acc - acc0) <= GATE_MLM_POINTS));
			row("fr-mlm", "top-1 equal to float32's", pn,
				fmt("%.2f %% (%zu of %zu)", 100.0 * (double) same / (double) mlm[k].positions, same,
					mlm[k].positions), "-", "-", "info");
		}
	}
	for (int k = 0; k < np; k++)
	{
		const char *pn = cb_precision_name(prec[k]);
		double		ppl = exp(clm[k].ce / (double) clm[k].tokens),
					ppl0 = exp(clm[0].ce / (double) clm[0].tokens);
		size_t		same_gen = 0;

		for (size_t i = 0; i < prompts.n; i++)
			same_gen += clm[k].n_gen[i] == clm[0].n_gen[i] &&
				memcmp(clm[k].gen[i], clm[0].gen[i], (size_t) clm[k].n_gen[i] * sizeof(int32_t)) == 0;
		if (k == 0)
		{
			row("fr-clm", fmt("perplexity, %zu predicted tokens (next-token top-1 %.2f %%)", clm[k].tokens,
							  100.0 * (double) clm[k].correct / (double) clm[k].tokens),
				pn, fmt("%.2f", ppl), "-",
				fmt("harness: models/README.md says %.1f on %d", PUB_CLM_PPL, PUB_CLM_TOKENS),
				verdict(clm[k].tokens == PUB_CLM_TOKENS && fabs(ppl - PUB_CLM_PPL) < 0.05 + 1e-9));
			continue;
		}
		{
			size_t		same = 0;

			for (size_t i = 0; i < clm[k].tokens && i < clm[0].tokens; i++)
				same += clm[k].pred[i] == clm[0].pred[i];
			row("fr-clm", "perplexity", pn, fmt("%.2f", ppl), fmt("%+.2f %%", 100.0 * (ppl / ppl0 - 1.0)),
				fmt("within %.0f %%", GATE_CLM_PPL_PCT),
				verdict(clm[k].tokens == clm[0].tokens && fabs(100.0 * (ppl / ppl0 - 1.0)) <= GATE_CLM_PPL_PCT));
			row("fr-clm", "next-token top-1 equal to float32's", pn,
				fmt("%.2f %% (%zu of %zu)", 100.0 * (double) same / (double) clm[k].tokens, same, clm[k].tokens),
				"-", "-", "info");
			row("fr-clm", fmt("greedy generations (%d new tokens) identical to float32's", new_tokens), pn,
				fmt("%zu of %zu prompts", same_gen, prompts.n), "-", "-", "info");
		}
	}
	for (size_t g = 0; g < n_golden; g++)
		for (int k = 0; k < np; k++)
		{
			const golden_result *r = &gold[g][k];

			if (!r->ok)
				row(fmt("golden %s", golden_models[g]), "max \\|Δ\\| vs transformers", cb_precision_name(prec[k]),
					r->note, "-", "-", "info");
			else
				row(fmt("golden %s", golden_models[g]),
					fmt("max \\|Δ\\| vs transformers: hidden states / logits (%s)", r->note),
					cb_precision_name(prec[k]), fmt("%.2g / %.2g", r->hidden, r->logits), "-", "-", "info");
		}
	printf("\n");
	printf("Precisions: ");
	for (int k = 0; k < np; k++)
		printf("%s%s (%.0f s)", k ? ", " : "", cb_precision_name(prec[k]), secs[k]);
	printf("; float32 is the reference of every \"vs float32\" and every agreement.  "
		   "Held-out: %zu fr_lm lines, %zu langid sentences; %zu greedy prompts.  Total %.0f s.\n",
		   lm_texts.n, lid_texts.n, prompts.n, now_s() - t_start);
	if (lm_literals + lid_literals > 0)
		printf("Note: %d held-out texts hold a literal special token (<s>, <mask>, ...): the core tokenizer "
			   "gives it its id, the training code encoded it as text.\n", lm_literals + lid_literals);
	printf("%s\n", n_fail ? "Some gates FAILED." : "Every gate passed.");
	tokenizer_close(&tok);
	tokenizer_close(&lid_tok);
	return n_fail ? 1 : 0;
}
