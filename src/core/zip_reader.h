/*
 * zip_reader.h — the zip container of pytorch_model.bin (torch.save, PyTorch
 * >= 1.6): its central directory and the local header of each entry read,
 * every size and offset checked against the file before it is trusted.
 *
 * Only what torch.save writes is read: *stored* (uncompressed) entries.
 * The central directory (with ZIP64 records, which torch always writes) is
 * checked against the file size, every local header against the central
 * directory (signature, name, bounds).  Compressed entries, encrypted
 * entries and multi-disk archives are CB_ERR_UNSUPPORTED; a file that is
 * not a zip archive is CB_ERR_FORMAT, or CB_ERR_UNSUPPORTED when it looks
 * like the legacy (pre-1.6, non-zip) torch.save format.
 */
#ifndef CB_ZIP_READER_H
#define CB_ZIP_READER_H

#include "safetensors.h"

#define CB_ZIP_MAX_ENTRIES 1000000	/* zip entries */

/* One entry of the central directory: where its local header is, its size and CRC-32. */
typedef struct cb_zip_entry
{
	char	   *name;			/* NUL-terminated copy */
	uint64_t	local_offset;
	uint64_t	size;
	uint32_t	crc;
	uint64_t	data_offset;	/* set once the local header is checked */
	bool		checked;
} cb_zip_entry;

typedef struct cb_zip_archive
{
	const cb_file_reader *r;
	cb_zip_entry  *entries;
	size_t		count;
	uint64_t	cd_offset;		/* entries' data must lie before this */
} cb_zip_archive;

/*
 * Read r's central directory into z: entries sorted by name, each one's
 * local header offset before the directory, names unique and non-empty,
 * sizes from the zip64 extra field where needed.  On error z holds nothing.
 * z keeps r (which must outlive it); free it with cb_zip_free.
 */
cb_status	cb_zip_open(cb_zip_archive *z, const cb_file_reader *r, cb_error *err);

/* Free z's entries (safe on a zeroed or already freed archive). */
void		cb_zip_free(cb_zip_archive *z);

/* The entry named name, or NULL. */
cb_zip_entry *cb_zip_find(cb_zip_archive *z, const char *name);

/*
 * Check e's local header (signature, stored, not encrypted, same name) and
 * that its data lies before the central directory; sets e->data_offset.
 * Checks once: later calls return CB_OK.
 */
cb_status	cb_zip_check_local(cb_zip_archive *z, cb_zip_entry *e, cb_error *err);

/* The zip CRC-32 (IEEE 802.3) of p[0..n), continuing from crc (0 to start). */
uint32_t	cb_crc32_update(uint32_t crc, const unsigned char *p, size_t n);

#endif							/* CB_ZIP_READER_H */
