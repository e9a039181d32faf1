/*
 * bbpe_driver.c — benchmark driver for our byte-level BPE (src/core/bytebpe.c).
 *
 *   bbpe_driver DIR CORPUS [REPEAT] [IDS_OUT]
 *
 * Builds the tokenizer of the model directory DIR (vocab.json, merges.txt,
 * tokenizer_config.json), then encodes every line of CORPUS (without its
 * newline) with cb_tokenizer_encode_ws(add_special_tokens = false), REPEAT
 * times (best time kept).  IDS_OUT: the ids of the last run, each minus 4
 * (the golden vocabulary is GPT-2's ids + 4), one line of text per line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"
#include "tokenizer_dir.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	void	   *img;
	size_t		img_len,
				len;
	cb_tokenizer tok;
	cb_error	err;
	cb_tok_workspace *ws = cb_tok_workspace_create();
	int			repeat = argc > 3 ? atoi(argv[3]) : 3;
	FILE	   *f;
	char	   *text;
	long		n;
	double		best = 1e30;
	size_t		tokens = 0,
				lines = 0;
	FILE	   *out = NULL;

	if (argc < 3)
	{
		fprintf(stderr, "usage: bbpe_driver DIR CORPUS [REPEAT] [IDS_OUT]\n");
		return 2;
	}
	if (cb_tokenizer_build_dir(argv[1], NULL, &img, &img_len, NULL, &err) != CB_OK ||
		cb_tokenizer_open(img, img_len, &tok, &err) != CB_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	f = fopen(argv[2], "rb");
	if (f == NULL)
	{
		perror(argv[2]);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = malloc((size_t) n + 1);
	if (fread(text, 1, (size_t) n, f) != (size_t) n)
		return 1;
	fclose(f);
	len = (size_t) n;
	for (int r = 0; r < repeat; r++)
	{
		double		t0;
		size_t		pos = 0;

		if (r == repeat - 1 && argc > 4)
			out = fopen(argv[4], "w");
		tokens = lines = 0;
		t0 = now();
		while (pos < len)
		{
			char	   *nl = memchr(text + pos, '\n', len - pos);
			size_t		end = nl ? (size_t) (nl - text) : len;
			const int32_t *ids;
			size_t		k;

			if (cb_tokenizer_encode_ws(&tok, ws, text + pos, end - pos, false, 0, &ids, &k, NULL, &err) != CB_OK)
			{
				fprintf(stderr, "%s\n", err.message);
				return 1;
			}
			tokens += k;
			lines++;
			if (out != NULL)
			{
				for (size_t i = 0; i < k; i++)
					fprintf(out, i ? " %d" : "%d", ids[i] - 4);
				fputc('\n', out);
			}
			pos = end + 1;
		}
		if (out == NULL && now() - t0 < best)
			best = now() - t0;
		if (out != NULL)
			fclose(out);
	}
	printf("ours (src/core bytebpe): %zu lines, %zu tokens, best of %d: %.3f s, %.2f MB/s, %.0f tokens/s\n",
		   lines, tokens, repeat > 1 ? repeat - 1 : 1, best, len / best / 1e6, tokens / best);
	cb_tok_workspace_destroy(ws);
	cb_free(img);
	free(text);
	return 0;
}
