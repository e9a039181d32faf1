/*
 * npy.c — .npy reader for the unit tests (see npy.h).
 */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
npy_fail(const char *path, const char *why)
{
	fprintf(stderr, "npy: %s: %s\n", path, why);
	return -1;
}

int
ut_npy_load(const char *path, ut_npy *out)
{
	FILE	   *f;
	unsigned char magic[10];
	size_t		header_len,
				prefix;
	char	   *header;
	const char *p;
	long		file_size;
	size_t		bytes;
	void	   *data;

	memset(out, 0, sizeof(*out));
	f = fopen(path, "rb");
	if (f == NULL)
		return npy_fail(path, "cannot open");
	if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0)
	{
		fclose(f);
		return npy_fail(path, "not a .npy file");
	}
	if (magic[6] == 1)
	{
		unsigned char l[2];

		if (fread(l, 1, 2, f) != 2)
		{
			fclose(f);
			return npy_fail(path, "truncated header");
		}
		header_len = (size_t) l[0] | ((size_t) l[1] << 8);
		prefix = 10;
	}
	else if (magic[6] == 2 || magic[6] == 3)
	{
		unsigned char l[4];

		if (fread(l, 1, 4, f) != 4)
		{
			fclose(f);
			return npy_fail(path, "truncated header");
		}
		header_len = (size_t) l[0] | ((size_t) l[1] << 8) | ((size_t) l[2] << 16) | ((size_t) l[3] << 24);
		prefix = 12;
	}
	else
	{
		fclose(f);
		return npy_fail(path, "unknown format version");
	}
	if (header_len > 1 << 20)
	{
		fclose(f);
		return npy_fail(path, "header too long");
	}
	header = malloc(header_len + 1);
	if (header == NULL || fread(header, 1, header_len, f) != header_len)
	{
		free(header);
		fclose(f);
		return npy_fail(path, "truncated header");
	}
	header[header_len] = '\0';

	if (strstr(header, "'descr': '<f4'") != NULL)
		out->kind = 'f';
	else if (strstr(header, "'descr': '<i4'") != NULL)
		out->kind = 'i';
	else
	{
		free(header);
		fclose(f);
		return npy_fail(path, "dtype is not <f4 or <i4");
	}
	if (strstr(header, "'fortran_order': False") == NULL)
	{
		free(header);
		fclose(f);
		return npy_fail(path, "not C order");
	}
	p = strstr(header, "'shape': (");
	if (p == NULL)
	{
		free(header);
		fclose(f);
		return npy_fail(path, "no shape");
	}
	p += strlen("'shape': (");
	out->count = 1;
	while (*p != ')')
	{
		char	   *end;
		unsigned long long d;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ')')
			break;
		d = strtoull(p, &end, 10);
		if (end == p || out->ndim == UT_NPY_MAX_DIMS || d > (1ULL << 32))
		{
			free(header);
			fclose(f);
			return npy_fail(path, "bad shape");
		}
		out->shape[out->ndim++] = (size_t) d;
		out->count *= (size_t) d;
		p = end;
	}
	free(header);

	if (fseek(f, 0, SEEK_END) != 0 || (file_size = ftell(f)) < 0)
	{
		fclose(f);
		return npy_fail(path, "cannot size");
	}
	bytes = out->count * 4;
	if ((size_t) file_size != prefix + header_len + bytes)
	{
		fclose(f);
		return npy_fail(path, "data size does not match the shape");
	}
	if (fseek(f, (long) (prefix + header_len), SEEK_SET) != 0)
	{
		fclose(f);
		return npy_fail(path, "cannot seek");
	}
	data = malloc(bytes ? bytes : 1);
	if (data == NULL || fread(data, 1, bytes, f) != bytes)
	{
		free(data);
		fclose(f);
		return npy_fail(path, "truncated data");
	}
	fclose(f);
	if (out->kind == 'f')
		out->f = data;
	else
		out->i = data;
	return 0;
}

void
ut_npy_free(ut_npy *a)
{
	free(a->f);
	free(a->i);
	memset(a, 0, sizeof(*a));
}
