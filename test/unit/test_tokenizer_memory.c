/*
 * test_tokenizer_memory.c — the tokenizer's working memory and interrupt
 * checks on hostile texts (a few MB each), with a counting allocator.
 *
 * Every allocation of the core goes through cb_malloc (rule 2 of
 * cb_common.h), so the allocator below sees all of it: the peak of the bytes
 * live at once, a realloc counting old and new block.  It also refuses any
 * allocation that would pass the bound under test (CB_ERR_NOMEM then), so
 * that a tokenizer that amplifies memory fails fast instead of exhausting
 * the machine.  The bounds (README, "Bad input"; tokenizer.h):
 *
 *   - truncated encoding (what inference does, max_length 512): about
 *     18 bytes per character of the longest run without a space, after
 *     normalization; the rest is a fixed 1 MiB (a 64 KiB window of text,
 *     the batch of pieces ...).  Runs of 1-byte characters: <= 16x the text;
 *     characters NFKC spreads over several without a space (1/4 -> "1⁄4",
 *     U+3316 -> 6 katakana) cost more, <= 24x and <= 32x;
 *   - full encoding: the same plus the ids (4 bytes each, 1.5x slack).
 *
 * The interrupt hook is called at least every 65536 characters, pieces or
 * merges: the CPU time between two calls stays far below a second.
 */
#include "tokenizer.h"
#include "unit.h"

#include <stdint.h>
#include <time.h>

#define MODEL_PATH "build/golden/tokenizer_fr8k/sentencepiece.bpe.model"
#define FIXED ((size_t) 1 << 20)

/* ------------------------------------------------------------------------- */
/* A counting allocator with a ceiling */

static size_t g_live,
			g_peak,
			g_limit = SIZE_MAX;
static long g_refused;

typedef union header
{
	size_t		size;
	max_align_t align;
} header;

static void *
count_alloc(size_t size)
{
	header	   *h;

	if (g_live + size > g_limit)
	{
		g_refused++;
		return NULL;
	}
	h = malloc(sizeof(header) + size);
	if (h == NULL)
		return NULL;
	h->size = size;
	g_live += size;
	if (g_live > g_peak)
		g_peak = g_live;
	return h + 1;
}

static void
count_free(void *p)
{
	header	   *h;

	if (p == NULL)
		return;
	h = (header *) p - 1;
	g_live -= h->size;
	free(h);
}

/* A new block, a copy, then the old one freed: both are live for a moment. */
static void *
count_realloc(void *p, size_t size)
{
	void	   *q;
	size_t		old;

	if (p == NULL)
		return count_alloc(size);
	old = ((header *) p - 1)->size;
	q = count_alloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	count_free(p);
	return q;
}

static const cb_allocator kCounting = {count_alloc, count_realloc, count_free};

/* ------------------------------------------------------------------------- */
/* Interrupt checks: how many, and the longest CPU time between two */

static long g_checks;
static double g_last_check,
			g_max_gap;

static double
cpu_seconds(void)
{
	return (double) clock() / CLOCKS_PER_SEC;
}

static void
check_hook(void)
{
	double		t = cpu_seconds();

	if (t - g_last_check > g_max_gap)
		g_max_gap = t - g_last_check;
	g_last_check = t;
	g_checks++;
}

/* ------------------------------------------------------------------------- */

static cb_tokenizer g_tok;

static char *
repeat(const char *unit, size_t times, size_t *len)
{
	size_t		u = strlen(unit);
	char	   *s = malloc(u * times + 1);

	for (size_t i = 0; i < times; i++)
		memcpy(s + i * u, unit, u);
	s[u * times] = '\0';
	*len = u * times;
	return s;
}

typedef struct hostile
{
	const char *name;
	const char *unit;
	size_t		times;
	double		k_truncated;	/* peak <= k * bytes + FIXED, max_length 512 */
	double		k_full;			/* the same, untruncated (the ids included) */
} hostile;

static const hostile kHostile[] = {
	/* 1 MB of U+FDFA (3 MB): NFKC makes each one 18 characters, 6 pieces */
	{"U+FDFA x 1M", "\xEF\xB7\xBA", 1000000, 1, 16},
	/* one word of 3 MB */
	{"'a' x 3M, no space", "a", 3000000, 16, 24},
	{"'abc' x 1M, no space", "abc", 1000000, 16, 24},
	{"'<<<<' x 750k, no space", "<<<<", 750000, 16, 24},
	{"'\xc3\xa9' x 1.5M, no space", "\xC3\xA9", 1500000, 16, 24},
	/* NFKC spreads them without a space: more characters than bytes */
	{"U+00BC (1/4) x 1M", "\xC2\xBC", 1000000, 24, 40},
	{"U+3316 x 1M", "\xE3\x8C\x96", 1000000, 32, 32},
	{"emoji x 750k", "\xF0\x9F\x98\x80", 750000, 8, 8},
	/* spaces: collapsed */
	{"3M spaces", " ", 3000000, 1, 1},
	{"U+3000 x 1M", "\xE3\x80\x80", 1000000, 1, 1},
	{"literal U+2581 x 1M", "\xE2\x96\x81", 1000000, 1, 1},
	/* added tokens */
	{"<mask> x 500k", "<mask>", 500000, 1, 2},
	{"'a <mask> ' x 330k", "a <mask> ", 330000, 1, 4},
	{"'</s><s>x' x 400k", "</s><s>x", 400000, 1, 4},
	/* ordinary text */
	{"French x 100k", "Le chat dort sur le canap\xC3\xA9. ", 100000, 1, 6},
};

static void
test_hostile_texts(void)
{
	for (size_t i = 0; i < sizeof(kHostile) / sizeof(kHostile[0]); i++)
	{
		const hostile *h = &kHostile[i];
		size_t		len;
		char	   *text = repeat(h->unit, h->times, &len);

		for (int full = 0; full <= 1; full++)
		{
			double		k = full ? h->k_full : h->k_truncated;
			size_t		limit = (size_t) (k * (double) len) + FIXED;
			int32_t    *ids = NULL;
			size_t		n = 0;
			cb_error	err;
			cb_status	st;
			double		t0;

			g_peak = g_live = 0;
			g_refused = 0;
			g_limit = limit;
			g_checks = 0;
			g_max_gap = 0;
			t0 = g_last_check = cpu_seconds();
			st = cb_tokenizer_encode(&g_tok, NULL, text, len, true, full ? 0 : 512, &ids, &n, &err);
			check_hook();		/* the gap up to the end */
			g_checks--;
			CHECK_MSG(st == CB_OK, "%s, %s: %s (peak %zu bytes = %.1fx, limit %.0fx + 1 MiB)",
					  h->name, full ? "full" : "max_length 512",
					  st == CB_OK ? "" : err.message, g_peak, (double) g_peak / (double) len, k);
			CHECK_MSG(g_peak <= limit, "%s: peak %zu > %zu", h->name, g_peak, limit);
			if (st == CB_OK)
			{
				CHECK(n >= 2 && ids[0] == g_tok.cls_id && ids[n - 1] == g_tok.sep_id);
				if (!full)
					CHECK(n <= 512);
			}
			/* a cancel is honoured promptly: at most 0.5 s of CPU between two checks */
			CHECK_MSG(g_max_gap < 0.5, "%s, %s: %.3f s of CPU without an interrupt check (%ld checks)",
					  h->name, full ? "full" : "max_length 512", g_max_gap, g_checks);
			printf("  %-26s %-14s %8zu bytes: %8zu ids, peak %10zu bytes = %5.2fx, %5ld checks, max gap %.3f s, %.2f s\n",
				   h->name, full ? "full" : "max_length 512", len, n, g_peak,
				   (double) g_peak / (double) len, g_checks, g_max_gap, cpu_seconds() - t0);
			cb_free(ids);
			g_limit = SIZE_MAX;
			CHECK_EQ_INT(g_live, 0);
		}
		free(text);
	}
}

/* tokenize() and a pair: the strings and both ids kept, no more. */
static void
test_other_entry_points(void)
{
	size_t		len;
	char	   *text = repeat("\xEF\xB7\xBA", 200000, &len);	/* 600 KB of U+FDFA */
	cb_token_list *list = NULL;
	int32_t    *ids = NULL;
	size_t		n = 0;
	cb_error	err;
	cb_status	st;

	/*
	 * The pieces' strings are the result: 1.2M pieces (2 an input byte) of
	 * 7 bytes on average, with a NUL, a pointer and a length each (about 40
	 * bytes per byte of this text); made in the workspace, then copied into
	 * one block, each with up to 2x growth slack: under 128x.
	 */
	g_peak = g_live = 0;
	g_limit = 128 * len + FIXED;
	st = cb_tokenizer_tokenize(&g_tok, NULL, text, len, &list, &err);
	CHECK_MSG(st == CB_OK, "tokenize: %s (peak %.1fx)", st == CB_OK ? "" : err.message,
			  (double) g_peak / (double) len);
	printf("  tokenize(U+FDFA x 200k): %zu pieces, peak %.1fx\n", list ? list->count : 0,
		   (double) g_peak / (double) len);
	cb_free(list);

	/* truncation of a pair needs both lengths: both texts are encoded whole (4 bytes an id) */
	g_peak = g_live = 0;
	g_limit = 24 * 2 * len + FIXED;
	st = cb_tokenizer_encode_pair(&g_tok, NULL, text, len, text, len, true, CB_TRUNCATE_ONLY_SECOND, 512,
								  &ids, &n, &err);
	CHECK_MSG(st == CB_OK, "pair: %s (peak %.1fx)", st == CB_OK ? "" : err.message,
			  (double) g_peak / (double) len);
	cb_free(ids);
	g_limit = SIZE_MAX;
	CHECK_EQ_INT(g_live, 0);
	free(text);
}

int
main(void)
{
	FILE	   *f = fopen(MODEL_PATH, "rb");
	uint8_t    *model;
	long		size;
	void	   *image = NULL;
	size_t		image_len = 0;
	cb_error	err;

	if (f == NULL)
	{
		fprintf(stderr, "cannot open %s\n", MODEL_PATH);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	model = malloc((size_t) size);
	if (fread(model, 1, (size_t) size, f) != (size_t) size)
		return 1;
	fclose(f);
	if (cb_tokenizer_build(model, (size_t) size, &image, &image_len, &err) != CB_OK ||
		cb_tokenizer_open(image, image_len, &g_tok, &err) != CB_OK)
	{
		fprintf(stderr, "%s: %s\n", MODEL_PATH, err.message);
		return 1;
	}
	cb_set_allocator(&kCounting);
	cb_set_interrupt_hook(check_hook);

	RUN(test_hostile_texts);
	RUN(test_other_entry_points);

	cb_set_interrupt_hook(NULL);
	cb_set_allocator(NULL);
	cb_free(image);
	free(model);
	return unit_finish("test_tokenizer_memory");
}
