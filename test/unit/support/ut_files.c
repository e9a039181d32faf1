/*
 * ut_files.c — see ut_files.h.
 */
#include "ut_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned char *
ut_read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	unsigned char *buf;
	long		n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t) n + 1);
	if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = 0;
	*len = (size_t) n;
	return buf;
}

int
ut_write_file(const char *path, const void *data, size_t len)
{
	FILE	   *f = fopen(path, "wb");
	int			ok;

	if (f == NULL)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	return ok ? 0 : -1;
}

int
ut_copy_file(const char *from, const char *to)
{
	size_t		len;
	unsigned char *buf = ut_read_file(from, &len);
	int			r;

	if (buf == NULL)
		return -1;
	r = ut_write_file(to, buf, len);
	free(buf);
	return r;
}

char *
ut_make_temp_dir(const char *tag)
{
	char	   *p = malloc(strlen(tag) + 32);

	if (p == NULL)
		return NULL;
	sprintf(p, "/tmp/%s.XXXXXX", tag);
	if (mkdtemp(p) == NULL)
	{
		free(p);
		return NULL;
	}
	return p;
}

void
ut_remove_dir(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		unlink(ut_path(dir, e->d_name));
	}
	closedir(d);
	rmdir(dir);
}

const char *
ut_path(const char *dir, const char *name)
{
	static char bufs[4][1024];
	static int	next = 0;
	char	   *b = bufs[next];

	next = (next + 1) % 4;
	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

static unsigned char *
find_bytes(unsigned char *hay, size_t n, const char *needle, size_t m)
{
	if (m == 0 || m > n)
		return NULL;
	for (size_t i = 0; i + m <= n; i++)
		if (hay[i] == (unsigned char) needle[0] && memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

int
ut_replace(unsigned char *buf, size_t *len, size_t cap, const char *from, const char *to)
{
	size_t		fl = strlen(from),
				tl = strlen(to);
	unsigned char *p = find_bytes(buf, *len, from, fl);

	if (p == NULL || *len - fl + tl > cap)
		return -1;
	memmove(p + tl, p + fl, (size_t) (buf + *len - (p + fl)));
	memcpy(p, to, tl);
	*len = *len - fl + tl;
	return 0;
}

int
ut_safetensors_locate(const unsigned char *file, size_t len, const char *name,
					  char dtype[16], uint64_t *begin, uint64_t *end, uint64_t *data_start)
{
	uint64_t	n = 0;
	char		key[512];
	const unsigned char *p;
	unsigned long long b,
				e;

	if (len < 8)
		return -1;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | file[i];
	if (n > len - 8)
		return -1;
	*data_start = 8 + n;
	snprintf(key, sizeof(key), "\"%s\":{", name);
	p = find_bytes((unsigned char *) file + 8, (size_t) n, key, strlen(key));
	if (p == NULL)
		return -1;
	p += strlen(key);
	/* entries as written by the reference writer: "dtype":"F32","shape":[..],"data_offsets":[b,e] */
	if (sscanf((const char *) p, "\"dtype\":\"%15[^\"]\"", dtype) != 1)
		return -1;
	p = find_bytes((unsigned char *) p, (size_t) (file + 8 + n - p), "\"data_offsets\":[", 16);
	if (p == NULL || sscanf((const char *) p + 16, "%llu,%llu]", &b, &e) != 2)
		return -1;
	*begin = b;
	*end = e;
	return 0;
}

uint32_t
ut_crc32(const unsigned char *p, size_t n)
{
	static uint32_t table[256];
	static int	ready = 0;
	uint32_t	c = 0xFFFFFFFFu;

	if (!ready)
	{
		for (uint32_t i = 0; i < 256; i++)
		{
			uint32_t	v = i;

			for (int k = 0; k < 8; k++)
				v = (v & 1) ? 0xEDB88320u ^ (v >> 1) : v >> 1;
			table[i] = v;
		}
		ready = 1;
	}
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static uint16_t
le16(const unsigned char *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

int
ut_zip_entry(unsigned char *zip, size_t len, const char *name,
			 uint64_t *data_offset, uint64_t *size, int fix_crc)
{
	size_t		nl = strlen(name);

	/* scan for central directory headers (small archives only: fine for tests) */
	for (size_t i = 0; i + 46 <= len; i++)
	{
		uint64_t	loff,
					data;

		if (le32(zip + i) != 0x02014b50 || le16(zip + i + 28) != nl || i + 46 + nl > len ||
			memcmp(zip + i + 46, name, nl) != 0)
			continue;
		*size = le32(zip + i + 24);
		loff = le32(zip + i + 42);
		if (loff + 30 > len)
			return -1;
		data = loff + 30 + le16(zip + loff + 26) + le16(zip + loff + 28);
		if (data + *size > len)
			return -1;
		*data_offset = data;
		if (fix_crc)
		{
			uint32_t	c = ut_crc32(zip + data, (size_t) *size);

			zip[i + 16] = (unsigned char) c;
			zip[i + 17] = (unsigned char) (c >> 8);
			zip[i + 18] = (unsigned char) (c >> 16);
			zip[i + 19] = (unsigned char) (c >> 24);
		}
		return 0;
	}
	return -1;
}
