/*
 * zip_reader.c — the zip container of pytorch_model.bin (see zip_reader.h).
 */
#include "zip_reader.h"

#include <stdlib.h>
#include <string.h>

void
cb_zip_free(cb_zip_archive *z)
{
	for (size_t i = 0; i < z->count; i++)
		cb_free(z->entries[i].name);
	cb_free(z->entries);
	z->entries = NULL;
	z->count = 0;
}

static int
zip_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const cb_zip_entry *) a)->name, ((const cb_zip_entry *) b)->name);
}

cb_zip_entry *
cb_zip_find(cb_zip_archive *z, const char *name)
{
	size_t		lo = 0,
				hi = z->count;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		int			c = strcmp(z->entries[mid].name, name);

		if (c == 0)
			return &z->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

#define EOCD_SIZE 22
#define EOCD_MAX_COMMENT 65535

cb_status
cb_zip_open(cb_zip_archive *z, const cb_file_reader *r, cb_error *err)
{
	unsigned char *tail = NULL;
	unsigned char *cd = NULL;
	size_t		tail_len;
	uint64_t	tail_start;
	size_t		eocd = SIZE_MAX;
	uint64_t	eocd_abs;
	uint64_t	entries,
				cd_size,
				cd_offset;
	uint64_t	dir_end;		/* where the central directory must end */
	cb_status	st;
	unsigned char sig[4];

	memset(z, 0, sizeof(*z));
	z->r = r;
	if (r->size < 4)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: file of %llu bytes is too short for pytorch_model.bin",
							r->path, (unsigned long long) r->size);
	if ((st = cb_file_reader_read(r, 0, sig, 4, err)) != CB_OK)
		return st;
	if (memcmp(sig, "PK\003\004", 4) != 0)
	{
		if (sig[0] == 0x80)
			return cb_set_error(err, CB_ERR_UNSUPPORTED,
								"%s: legacy (pre-1.6, non-zip) torch.save format is not supported: "
								"re-save the model with a recent PyTorch or as safetensors", r->path);
		return cb_set_error(err, CB_ERR_FORMAT, "%s: not a zip archive (torch.save format expected)", r->path);
	}
	if (r->size < EOCD_SIZE)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: zip archive truncated (no end of central directory)", r->path);

	tail_len = (size_t) (r->size < EOCD_SIZE + EOCD_MAX_COMMENT ? r->size : EOCD_SIZE + EOCD_MAX_COMMENT);
	tail_start = r->size - tail_len;
	tail = cb_malloc(tail_len);
	if (tail == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
	if ((st = cb_file_reader_read(r, tail_start, tail, tail_len, err)) != CB_OK)
		goto done;
	for (size_t i = tail_len - EOCD_SIZE + 1; i-- > 0;)
		if (cb_read_le32(tail + i) == 0x06054b50 && cb_read_le16(tail + i + 20) == tail_len - i - EOCD_SIZE)
		{
			eocd = i;
			break;
		}
	if (eocd == SIZE_MAX)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip end of central directory not found (truncated file?)",
						  r->path);
		goto done;
	}
	eocd_abs = tail_start + eocd;
	if (cb_read_le16(tail + eocd + 4) != 0 || cb_read_le16(tail + eocd + 6) != 0 ||
		cb_read_le16(tail + eocd + 8) != cb_read_le16(tail + eocd + 10))
	{
		st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", r->path);
		goto done;
	}
	entries = cb_read_le16(tail + eocd + 10);
	cd_size = cb_read_le32(tail + eocd + 12);
	cd_offset = cb_read_le32(tail + eocd + 16);
	dir_end = eocd_abs;

	/* ZIP64: a locator just before the end record (torch always writes one) */
	if (eocd_abs >= 20)
	{
		unsigned char loc[20];

		if ((st = cb_file_reader_read(r, eocd_abs - 20, loc, 20, err)) != CB_OK)
			goto done;
		if (cb_read_le32(loc) == 0x07064b50)
		{
			unsigned char z64[56];
			uint64_t	z64_off = cb_read_le64(loc + 8);

			if (cb_read_le32(loc + 4) != 0 || cb_read_le32(loc + 16) > 1)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", r->path);
				goto done;
			}
			if (z64_off > eocd_abs - 20 || eocd_abs - 20 - z64_off < 56)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip64 end of central directory offset %llu is out of bounds",
								  r->path, (unsigned long long) z64_off);
				goto done;
			}
			if ((st = cb_file_reader_read(r, z64_off, z64, 56, err)) != CB_OK)
				goto done;
			if (cb_read_le32(z64) != 0x06064b50)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: bad zip64 end of central directory signature", r->path);
				goto done;
			}
			if (cb_read_le32(z64 + 16) != 0 || cb_read_le32(z64 + 20) != 0 || cb_read_le64(z64 + 24) != cb_read_le64(z64 + 32))
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", r->path);
				goto done;
			}
			entries = cb_read_le64(z64 + 32);
			cd_size = cb_read_le64(z64 + 40);
			cd_offset = cb_read_le64(z64 + 48);
			dir_end = z64_off;
		}
	}
	if (cd_offset > dir_end || cd_size > dir_end - cd_offset)
	{
		st = cb_set_error(err, CB_ERR_FORMAT,
						  "%s: zip central directory [%llu, +%llu) lies outside the file (truncated?)",
						  r->path, (unsigned long long) cd_offset, (unsigned long long) cd_size);
		goto done;
	}
	if (entries > CB_ZIP_MAX_ENTRIES || entries > cd_size / 46)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip central directory claims %llu entries in %llu bytes",
						  r->path, (unsigned long long) entries, (unsigned long long) cd_size);
		goto done;
	}
	z->cd_offset = cd_offset;
	cd = cb_malloc((size_t) cd_size + 1);
	z->entries = cb_calloc((size_t) entries + 1, sizeof(cb_zip_entry));
	if (cd == NULL || z->entries == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory for the zip central directory", r->path);
		goto done;
	}
	if ((st = cb_file_reader_read(r, cd_offset, cd, (size_t) cd_size, err)) != CB_OK)
		goto done;
	{
		size_t		p = 0;

		for (uint64_t i = 0; i < entries; i++)
		{
			cb_zip_entry  *e = &z->entries[z->count];
			uint16_t	flags,
						method,
						nlen,
						xlen,
						clen;
			uint64_t	csize,
						usize,
						loff;
			size_t		x;

			if (cd_size - p < 46 || cb_read_le32(cd + p) != 0x02014b50)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip central directory entry %llu is malformed",
								  r->path, (unsigned long long) i);
				goto done;
			}
			flags = cb_read_le16(cd + p + 8);
			method = cb_read_le16(cd + p + 10);
			e->crc = cb_read_le32(cd + p + 16);
			csize = cb_read_le32(cd + p + 20);
			usize = cb_read_le32(cd + p + 24);
			nlen = cb_read_le16(cd + p + 28);
			xlen = cb_read_le16(cd + p + 30);
			clen = cb_read_le16(cd + p + 32);
			loff = cb_read_le32(cd + p + 42);
			if (cd_size - p - 46 < (uint64_t) nlen + xlen + clen)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip central directory entry %llu overruns the directory",
								  r->path, (unsigned long long) i);
				goto done;
			}
			if (nlen == 0 || memchr(cd + p + 46, '\0', nlen) != NULL)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry %llu has an empty or invalid name",
								  r->path, (unsigned long long) i);
				goto done;
			}
			e->name = cb_malloc((size_t) nlen + 1);
			if (e->name == NULL)
			{
				st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
				goto done;
			}
			memcpy(e->name, cd + p + 46, nlen);
			e->name[nlen] = '\0';
			z->count++;
			/* zip64 extra field: the 0xFFFFFFFF fields, in order */
			x = p + 46 + nlen;
			while (x + 4 <= p + 46 + nlen + xlen)
			{
				uint16_t	id = cb_read_le16(cd + x),
							sz = cb_read_le16(cd + x + 2);
				size_t		q = x + 4;

				if (x + 4 + sz > p + 46 + nlen + xlen)
				{
					st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' has a malformed extra field",
									  r->path, e->name);
					goto done;
				}
				if (id == 0x0001)
				{
					if (usize == 0xFFFFFFFFu)
					{
						if (q + 8 > x + 4 + sz)
							goto bad64;
						usize = cb_read_le64(cd + q);
						q += 8;
					}
					if (csize == 0xFFFFFFFFu)
					{
						if (q + 8 > x + 4 + sz)
							goto bad64;
						csize = cb_read_le64(cd + q);
						q += 8;
					}
					if (loff == 0xFFFFFFFFu)
					{
						if (q + 8 > x + 4 + sz)
							goto bad64;
						loff = cb_read_le64(cd + q);
						q += 8;
					}
				}
				x += 4 + (size_t) sz;
			}
			if (usize == 0xFFFFFFFFu || csize == 0xFFFFFFFFu || loff == 0xFFFFFFFFu)
			{
		bad64:
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' lacks its zip64 sizes", r->path, e->name);
				goto done;
			}
			if (flags & 0x41)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", r->path, e->name);
				goto done;
			}
			if (method != 0)
			{
				st = cb_set_error(err, CB_ERR_UNSUPPORTED,
								  "%s: zip entry '%s' is compressed (method %u); torch.save writes stored entries only",
								  r->path, e->name, method);
				goto done;
			}
			if (csize != usize)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: stored zip entry '%s' has sizes %llu != %llu",
								  r->path, e->name, (unsigned long long) csize, (unsigned long long) usize);
				goto done;
			}
			if (loff >= cd_offset)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' local header offset %llu is past the data area",
								  r->path, e->name, (unsigned long long) loff);
				goto done;
			}
			e->size = usize;
			e->local_offset = loff;
			p += 46 + (size_t) nlen + xlen + clen;
		}
	}
	if (z->count > 1)
		qsort(z->entries, z->count, sizeof(cb_zip_entry), zip_entry_cmp);
	for (size_t i = 1; i < z->count; i++)
		if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s' appears twice", r->path, z->entries[i].name);
			goto done;
		}
	st = CB_OK;

done:
	cb_free(tail);
	cb_free(cd);
	if (st != CB_OK)
		cb_zip_free(z);
	return st;
}

cb_status
cb_zip_check_local(cb_zip_archive *z, cb_zip_entry *e, cb_error *err)
{
	unsigned char lh[30];
	size_t		nlen;
	uint64_t	data;
	cb_status	st;
	char	   *name;

	if (e->checked)
		return CB_OK;
	if (e->local_offset > z->cd_offset || z->cd_offset - e->local_offset < 30)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s': local header out of bounds",
							z->r->path, e->name);
	if ((st = cb_file_reader_read(z->r, e->local_offset, lh, 30, err)) != CB_OK)
		return st;
	nlen = cb_read_le16(lh + 26);
	if (cb_read_le32(lh) != 0x04034b50 || cb_read_le16(lh + 8) != 0 || (cb_read_le16(lh + 6) & 0x41) || nlen != strlen(e->name))
		return cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s': local header does not match the central directory",
							z->r->path, e->name);
	data = e->local_offset + 30 + nlen + cb_read_le16(lh + 28);
	if (data > z->cd_offset || e->size > z->cd_offset - data)
		return cb_set_error(err, CB_ERR_FORMAT,
							"%s: zip entry '%s': data [%llu, +%llu) runs into the central directory (truncated?)",
							z->r->path, e->name, (unsigned long long) data, (unsigned long long) e->size);
	name = cb_malloc(nlen + 1);
	if (name == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory");
	st = cb_file_reader_read(z->r, e->local_offset + 30, name, nlen, err);
	if (st == CB_OK && memcmp(name, e->name, nlen) != 0)
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: zip entry '%s': local header names another file",
						  z->r->path, e->name);
	cb_free(name);
	if (st != CB_OK)
		return st;
	e->data_offset = data;
	e->checked = true;
	return CB_OK;
}

uint32_t
cb_crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--)
	{
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}
