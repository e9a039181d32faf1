/*
 * fuzz_torch_bin.c — libFuzzer target for pytorch_model.bin (torch_bin.h).
 *
 * First input byte selects the mode:
 *   even: the rest is a whole file (zip container + pickle), read as is;
 *   odd:  the rest is a data.pkl, wrapped here in a valid torch-style zip
 *         (correct CRC, ZIP64 records) next to storages "archive/data/0" ..
 *         "archive/data/7" of 64 bytes each, so that mutations reach the
 *         pickle machine instead of failing the CRC check.
 * Every tensor accepted must lie inside the file.
 */
#include "torch_bin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
}

static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t
crc32(const unsigned char *p, size_t n)
{
	uint32_t	c = 0xFFFFFFFFu;

	while (n--)
	{
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return ~c;
}

#define NSTORAGE 8

/* A stored zip of data.pkl + storages; returns malloc'ed bytes. */
static unsigned char *
wrap(const unsigned char *pkl, size_t pkl_len, size_t *out_len)
{
	const char *names[NSTORAGE + 1];
	char		nbuf[NSTORAGE][32];
	unsigned char storage[64];
	size_t		cap = pkl_len + 8192;
	unsigned char *z = malloc(cap);
	size_t		pos = 0,
				offs[NSTORAGE + 1],
				cd;
	uint64_t	sizes[NSTORAGE + 1];
	uint32_t	crcs[NSTORAGE + 1];

	for (int i = 0; i < 64; i++)
		storage[i] = (unsigned char) i;
	names[0] = "archive/data.pkl";
	for (int i = 0; i < NSTORAGE; i++)
	{
		snprintf(nbuf[i], sizeof(nbuf[i]), "archive/data/%d", i);
		names[i + 1] = nbuf[i];
	}
	for (int e = 0; e <= NSTORAGE; e++)
	{
		const unsigned char *d = e == 0 ? pkl : storage;
		size_t		n = e == 0 ? pkl_len : sizeof(storage);
		size_t		nl = strlen(names[e]);

		offs[e] = pos;
		sizes[e] = n;
		crcs[e] = crc32(d, n);
		put32(z + pos, 0x04034b50);
		put16(z + pos + 4, 20);
		put16(z + pos + 6, 0);
		put16(z + pos + 8, 0);
		put32(z + pos + 10, 0);
		put32(z + pos + 14, crcs[e]);
		put32(z + pos + 18, (uint32_t) n);
		put32(z + pos + 22, (uint32_t) n);
		put16(z + pos + 26, (unsigned) nl);
		put16(z + pos + 28, 0);
		memcpy(z + pos + 30, names[e], nl);
		pos += 30 + nl;
		memcpy(z + pos, d, n);
		pos += n;
	}
	cd = pos;
	for (int e = 0; e <= NSTORAGE; e++)
	{
		size_t		nl = strlen(names[e]);

		memset(z + pos, 0, 46);
		put32(z + pos, 0x02014b50);
		put16(z + pos + 4, 20);
		put16(z + pos + 6, 20);
		put32(z + pos + 16, crcs[e]);
		put32(z + pos + 20, (uint32_t) sizes[e]);
		put32(z + pos + 24, (uint32_t) sizes[e]);
		put16(z + pos + 28, (unsigned) nl);
		put32(z + pos + 42, (uint32_t) offs[e]);
		memcpy(z + pos + 46, names[e], nl);
		pos += 46 + nl;
	}
	{
		size_t		z64 = pos;
		size_t		cd_size = pos - cd;

		/* zip64 end of central directory + locator, as torch writes */
		put32(z + pos, 0x06064b50);
		put64(z + pos + 4, 44);
		put16(z + pos + 12, 45);
		put16(z + pos + 14, 45);
		put32(z + pos + 16, 0);
		put32(z + pos + 20, 0);
		put64(z + pos + 24, NSTORAGE + 1);
		put64(z + pos + 32, NSTORAGE + 1);
		put64(z + pos + 40, cd_size);
		put64(z + pos + 48, cd);
		pos += 56;
		put32(z + pos, 0x07064b50);
		put32(z + pos + 4, 0);
		put64(z + pos + 8, z64);
		put32(z + pos + 16, 1);
		pos += 20;
		put32(z + pos, 0x06054b50);
		put16(z + pos + 4, 0);
		put16(z + pos + 6, 0);
		put16(z + pos + 8, NSTORAGE + 1);
		put16(z + pos + 10, NSTORAGE + 1);
		put32(z + pos + 12, (uint32_t) cd_size);
		put32(z + pos + 16, (uint32_t) cd);
		put16(z + pos + 20, 0);
		pos += 22;
	}
	*out_len = pos;
	return z;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	cb_file_reader r;
	cb_tensor_list list = {0};
	cb_error	err;
	unsigned char *file = NULL;
	size_t		len;

	if (size < 1)
		return 0;
	if (data[0] & 1)
		file = wrap(data + 1, size - 1, &len);
	cb_file_reader_memory(&r, file ? file : data + 1, file ? len : size - 1, "fuzz/pytorch_model.bin");
	if (cb_torch_bin_read(&r, 0, &list, &err) == CB_OK)
		for (size_t i = 0; i < list.count; i++)
		{
			const cb_tensor_info *t = &list.tensors[i];

			if (t->offset > r.size || t->nbytes > r.size - t->offset)
				__builtin_trap();
		}
	cb_tensor_list_free(&list);
	free(file);
	return 0;
}
