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
#include "support/ut_alloc.h"
#include "support/ut_files.h"

#include <stdint.h>
#include <time.h>

#define MODEL_PATH "build/golden/tokenizer_fr8k/sentencepiece.bpe.model"
#define FIXED ((size_t) 1 << 20)

/* The allocator: support/ut_alloc.h (a ceiling in limit_bytes, the peak in peak_bytes). */

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

			ut_alloc.peak_bytes = ut_alloc.live_bytes = 0;
			ut_alloc.refused = 0;
			ut_alloc.limit_bytes = limit;
			g_checks = 0;
			g_max_gap = 0;
			t0 = g_last_check = cpu_seconds();
			st = cb_tokenizer_encode(&g_tok, NULL, text, len, true, full ? 0 : 512, &ids, &n, &err);
			check_hook();		/* the gap up to the end */
			g_checks--;
			CHECK_MSG(st == CB_OK, "%s, %s: %s (peak %zu bytes = %.1fx, limit %.0fx + 1 MiB)",
					  h->name, full ? "full" : "max_length 512",
					  st == CB_OK ? "" : err.message, ut_alloc.peak_bytes, (double) ut_alloc.peak_bytes / (double) len, k);
			CHECK_MSG(ut_alloc.peak_bytes <= limit, "%s: peak %zu > %zu", h->name, ut_alloc.peak_bytes, limit);
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
				   h->name, full ? "full" : "max_length 512", len, n, ut_alloc.peak_bytes,
				   (double) ut_alloc.peak_bytes / (double) len, g_checks, g_max_gap, cpu_seconds() - t0);
			cb_free(ids);
			ut_alloc.limit_bytes = SIZE_MAX;
			CHECK_EQ_INT(ut_alloc.live_bytes, 0);
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
	ut_alloc.peak_bytes = ut_alloc.live_bytes = 0;
	ut_alloc.limit_bytes = 128 * len + FIXED;
	st = cb_tokenizer_tokenize(&g_tok, NULL, text, len, &list, &err);
	CHECK_MSG(st == CB_OK, "tokenize: %s (peak %.1fx)", st == CB_OK ? "" : err.message,
			  (double) ut_alloc.peak_bytes / (double) len);
	printf("  tokenize(U+FDFA x 200k): %zu pieces, peak %.1fx\n", list ? list->count : 0,
		   (double) ut_alloc.peak_bytes / (double) len);
	cb_free(list);

	/* truncation of a pair needs both lengths: both texts are encoded whole (4 bytes an id) */
	ut_alloc.peak_bytes = ut_alloc.live_bytes = 0;
	ut_alloc.limit_bytes = 24 * 2 * len + FIXED;
	st = cb_tokenizer_encode_pair(&g_tok, NULL, text, len, text, len, true, CB_TRUNCATE_ONLY_SECOND, 512,
								  &ids, &n, &err);
	CHECK_MSG(st == CB_OK, "pair: %s (peak %.1fx)", st == CB_OK ? "" : err.message,
			  (double) ut_alloc.peak_bytes / (double) len);
	cb_free(ids);
	ut_alloc.limit_bytes = SIZE_MAX;
	CHECK_EQ_INT(ut_alloc.live_bytes, 0);
	free(text);
}

int
main(void)
{
	size_t		size;
	uint8_t    *model = ut_read_file(MODEL_PATH, &size);
	void	   *image = NULL;
	size_t		image_len = 0;
	cb_error	err;

	if (model == NULL)
	{
		fprintf(stderr, "cannot read %s\n", MODEL_PATH);
		return 1;
	}
	if (cb_tokenizer_build(model, size, &image, &image_len, &err) != CB_OK ||
		cb_tokenizer_open(image, image_len, &g_tok, &err) != CB_OK)
	{
		fprintf(stderr, "%s: %s\n", MODEL_PATH, err.message);
		return 1;
	}
	cb_set_allocator(&ut_counting_allocator);
	cb_set_interrupt_hook(check_hook);

	RUN(test_hostile_texts);
	RUN(test_other_entry_points);

	cb_set_interrupt_hook(NULL);
	cb_set_allocator(NULL);
	cb_free(image);
	free(model);
	return unit_finish("test_tokenizer_memory");
}
