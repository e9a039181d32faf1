/*
 * cb_driver.c — benchmark driver for our tokenizer (src/core).
 *
 *   cb_driver MODEL CORPUS [REPEAT] [SP_IDS]
 *
 * Builds the tokenizer image from MODEL, then encodes every line of CORPUS
 * (without its newline) with cb_tokenizer_encode_ws(add_special_tokens =
 * false), REPEAT times (best time kept).  With SP_IDS (written by
 * sp_driver), checks that our ids equal SentencePiece's mapped to CamemBERT
 * ids (sp 0 -> 3, else sp + 4), line by line; lines that contain a
 * CamemBERT added token ("<s>", "</s>", "<pad>", "<unk>", "<mask>"...) are
 * split by the CamemBERT layer first and are counted but not compared.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (!f)
	{
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	if (fread(buf, 1, n, f) != (size_t) n)
	{
		perror(path);
		exit(1);
	}
	fclose(f);
	*len = n;
	return buf;
}

static int
has_added_token(const char *s, size_t len)
{
	static const char *const toks[] = {"<s>", "</s>", "<pad>", "<unk>", "<mask>"};

	for (size_t t = 0; t < 5; t++)
		if (memmem(s, len, toks[t], strlen(toks[t])) != NULL)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	size_t		model_len,
				corpus_len;
	char	   *model,
			   *corpus;
	void	   *image;
	size_t		image_len;
	cb_tokenizer tok;
	cb_error	err;
	cb_tok_workspace *ws;
	int			repeat = argc > 3 ? atoi(argv[3]) : 3;
	size_t	   *line_off,
			   *line_len,
				n_lines = 0;
	double		best = 1e30,
				t0,
				t_build;
	size_t		tokens = 0;

	if (argc < 3)
	{
		fprintf(stderr, "usage: %s MODEL CORPUS [REPEAT] [SP_IDS]\n", argv[0]);
		return 2;
	}
	model = slurp(argv[1], &model_len);
	corpus = slurp(argv[2], &corpus_len);

	t0 = now();
	if (cb_tokenizer_build((const uint8_t *) model, model_len, &image, &image_len, &err) != CB_OK ||
		cb_tokenizer_open(image, image_len, &tok, &err) != CB_OK)
	{
		fprintf(stderr, "build: %s\n", err.message);
		return 1;
	}
	t_build = now() - t0;
	ws = cb_tok_workspace_create();

	line_off = malloc((corpus_len + 1) * sizeof(size_t));
	line_len = malloc((corpus_len + 1) * sizeof(size_t));
	for (size_t pos = 0; pos < corpus_len;)
	{
		char	   *nl = memchr(corpus + pos, '\n', corpus_len - pos);
		size_t		end = nl ? (size_t) (nl - corpus) : corpus_len;

		line_off[n_lines] = pos;
		line_len[n_lines++] = end - pos;
		pos = end + 1;
	}

	for (int r = 0; r < repeat; r++)
	{
		double		s;

		tokens = 0;
		t0 = now();
		for (size_t i = 0; i < n_lines; i++)
		{
			const int32_t *ids;
			size_t		n;

			if (cb_tokenizer_encode_ws(&tok, ws, corpus + line_off[i], line_len[i], false, 0,
									   &ids, &n, NULL, &err) != CB_OK)
			{
				fprintf(stderr, "encode line %zu: %s\n", i + 1, err.message);
				return 1;
			}
			tokens += n;
		}
		s = now() - t0;
		if (s < best)
			best = s;
	}
	printf("ours:          build %.1f ms (image %zu bytes), lines %zu, bytes %zu, tokens %zu, best of %d: %.3f s, "
		   "%.2f MB/s, %.0f tokens/s\n",
		   t_build * 1e3, image_len, n_lines, corpus_len, tokens, repeat, best,
		   corpus_len / best / 1e6, tokens / best);

	if (argc > 4)
	{
		size_t		sp_len,
					pos = 0,
					compared = 0,
					skipped = 0,
					mismatched = 0;
		char	   *sp = slurp(argv[4], &sp_len);

		for (size_t i = 0; i < n_lines; i++)
		{
			uint32_t	n_sp;
			const int32_t *ids;
			size_t		n;
			int			same;

			if (pos + 4 > sp_len)
			{
				fprintf(stderr, "SP ids file too short at line %zu\n", i + 1);
				return 1;
			}
			memcpy(&n_sp, sp + pos, 4);
			pos += 4;
			cb_tokenizer_encode_ws(&tok, ws, corpus + line_off[i], line_len[i], false, 0, &ids, &n, NULL, &err);
			if (has_added_token(corpus + line_off[i], line_len[i]))
			{
				skipped++;
				pos += 4 * (size_t) n_sp;
				continue;
			}
			same = n == n_sp;
			for (size_t k = 0; same && k < n; k++)
			{
				int32_t		s;

				memcpy(&s, sp + pos + 4 * k, 4);
				same = ids[k] == (s == 0 ? 3 : s + 4);
			}
			if (!same && mismatched++ < 5)
				fprintf(stderr, "MISMATCH line %zu: %.*s\n", i + 1, (int) line_len[i], corpus + line_off[i]);
			pos += 4 * (size_t) n_sp;
			compared++;
		}
		printf("ids vs sentencepiece: %zu lines compared, %zu identical, %zu different, "
			   "%zu skipped (contain an added token)\n",
			   compared, compared - mismatched, mismatched, skipped);
		free(sp);
		if (mismatched)
			return 3;
	}
	cb_tok_workspace_destroy(ws);
	cb_free(image);
	free(line_off);
	free(line_len);
	free(model);
	free(corpus);
	return 0;
}
