/*
 * file_io.h — opening the files of a model directory, which are hostile
 * input: every reader of the core (config.json, safetensors and their index,
 * pytorch_model.bin) and the PostgreSQL layer (sentencepiece.bpe.model) opens
 * them here.
 *
 *   - The file is opened O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY and
 *     fstat'ed; anything but a regular file (a FIFO, a device, a directory,
 *     a socket) is refused with CB_ERR_IO and a message naming the file.
 *     O_NONBLOCK makes open() itself return at once on a FIFO (a blocking
 *     open of a FIFO waits for a writer in the kernel, where neither a query
 *     cancel nor a terminate can reach it); a device is not even opened, as
 *     the path is stat'ed first.  Reads of a regular file never block on
 *     O_NONBLOCK.
 *   - root (may be NULL): the directory the file must lie in.  The real path
 *     of the file (symbolic links resolved, as realpath(3)) must be root's
 *     real path or below it, else CB_ERR_ACCESS naming the file and root.
 *     Symbolic links that stay inside root are fine (a Hugging Face cache
 *     snapshot links into ../../blobs).  The opened descriptor is checked to
 *     be the very file that was resolved (device and inode), so swapping a
 *     link between the check and the open is caught too.
 */
#ifndef CB_FILE_IO_H
#define CB_FILE_IO_H

#include "cb_common.h"

/* Open path as above; *fd_out is the open descriptor, *size_out the file size. */
cb_status	cb_file_open(const char *path, const char *root, int *fd_out, uint64_t *size_out,
						 cb_error *err);

/*
 * Read a whole file opened as above into a cb_malloc'ed buffer with a NUL
 * after the len bytes; CB_ERR_LIMIT if the file has more than max_size bytes.
 * The descriptor is closed before returning (the allocation must not longjmp:
 * see cb_common.h).
 */
cb_status	cb_file_read_all(const char *path, const char *root, size_t max_size,
							 char **buf_out, size_t *len_out, cb_error *err);

/* Is path (a real path) root (a real path) or below it? */
bool		cb_path_is_inside(const char *path, const char *root);

#endif							/* CB_FILE_IO_H */
