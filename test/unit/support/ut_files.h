/*
 * ut_files.h — file helpers for tests that write mutated copies of fixtures:
 * whole-file read/write, a scratch directory under /tmp, byte-string
 * replacement, and tiny independent readers for the weight formats
 * (locating a tensor in a safetensors header by plain text search, fixing a
 * zip entry's CRC after editing it) so tests do not trust the code under test.
 */
#ifndef UT_FILES_H
#define UT_FILES_H

#include <stddef.h>
#include <stdint.h>

/* malloc'ed contents of path (NULL on failure); *len gets the size. */
unsigned char *ut_read_file(const char *path, size_t *len);
/* 0 on success. */
int			ut_write_file(const char *path, const void *data, size_t len);
int			ut_copy_file(const char *from, const char *to);

/* A new empty directory /tmp/<tag>.XXXXXX (malloc'ed path), NULL on failure. */
char	   *ut_make_temp_dir(const char *tag);
/* Remove the regular files directly inside dir, then dir itself. */
void		ut_remove_dir(const char *dir);
/* dir + "/" + name into a static rotating buffer (valid for a few calls). */
const char *ut_path(const char *dir, const char *name);

/*
 * Replace the first occurrence of `from` by `to` in buf[0..*len) (buf must
 * have room for the longer result: *len - strlen(from) + strlen(to) <= cap).
 * Returns 0 if done, -1 if `from` is absent or there is no room.
 */
int			ut_replace(unsigned char *buf, size_t *len, size_t cap, const char *from, const char *to);

/*
 * Safetensors, read without the core: header length, the data area start,
 * and for a tensor name the dtype text and [begin, end) from its entry
 * (found by text search of "\"name\":{").  0 on success.
 */
int			ut_safetensors_locate(const unsigned char *file, size_t len, const char *name,
								  char dtype[16], uint64_t *begin, uint64_t *end, uint64_t *data_start);

/* Standard CRC-32 (zip). */
uint32_t	ut_crc32(const unsigned char *p, size_t n);

/*
 * In a zip archive in memory, find the central directory entry named
 * `name`, return (via out) the offset of its data (from the local header)
 * and size; with fix_crc, recompute and store its CRC in the central
 * directory.  0 on success.
 */
int			ut_zip_entry(unsigned char *zip, size_t len, const char *name,
						 uint64_t *data_offset, uint64_t *size, int fix_crc);

#endif							/* UT_FILES_H */
