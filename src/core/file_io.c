/*
 * file_io.c — opening the files of a model directory (see file_io.h).
 */
#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cb_status
errno_error(cb_error *err, int e, const char *path, const char *what)
{
	cb_set_error(err, CB_ERR_IO, "%s: %s: %s", path, what, strerror(e));
	if (err != NULL)
		err->sys_errno = e;
	return CB_ERR_IO;
}

static const char *
kind_name(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

static cb_status
not_regular(cb_error *err, const char *path, mode_t mode)
{
	return cb_set_error(err, CB_ERR_IO, "%s: not a regular file (%s): model files must be regular files",
						path, kind_name(mode));
}

bool
cb_path_is_inside(const char *path, const char *root)
{
	size_t		n = strlen(root);

	/* root "/" (or "//"): everything is inside */
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 1 && root[0] == '/')
		return path[0] == '/';
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

cb_status
cb_file_open(const char *path, const char *root, int *fd_out, uint64_t *size_out, cb_error *err)
{
	struct stat st;
	struct stat real;
	char		real_root[PATH_MAX];
	char		real_path[PATH_MAX];
	int			fd;

	*fd_out = -1;
	*size_out = 0;
	if (path == NULL || path[0] == '\0')
		return cb_set_error(err, CB_ERR_INVALID, "empty file path");

	/* confinement first: a file outside root is not even opened */
	if (root != NULL)
	{
		if (realpath(root, real_root) == NULL)
			return errno_error(err, errno, root, "cannot resolve the model root directory");
		if (realpath(path, real_path) == NULL)
			return errno_error(err, errno, path, "cannot open");
		if (!cb_path_is_inside(real_path, real_root))
			return cb_set_error(err, CB_ERR_ACCESS,
								"%s: the file lies outside %s (its real path, symbolic links resolved, "
								"must be inside that directory)", path, root);
	}

	/* a device is refused without being opened */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return not_regular(err, path, st.st_mode);

	/* O_NONBLOCK: a FIFO swapped in since the stat must not block the open */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno_error(err, errno, path, "cannot open");
	if (fstat(fd, &st) != 0)
	{
		int			e = errno;

		close(fd);
		return errno_error(err, e, path, "cannot stat");
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 0)
	{
		close(fd);
		return not_regular(err, path, st.st_mode);
	}
	if (root != NULL &&
		(stat(real_path, &real) != 0 || real.st_dev != st.st_dev || real.st_ino != st.st_ino))
	{
		close(fd);
		return cb_set_error(err, CB_ERR_IO, "%s: the file changed while it was being opened", path);
	}
	*fd_out = fd;
	*size_out = (uint64_t) st.st_size;
	return CB_OK;
}

cb_status
cb_file_read_all(const char *path, const char *root, size_t max_size,
				 char **buf_out, size_t *len_out, cb_error *err)
{
	int			fd;
	uint64_t	size;
	char	   *buf;
	size_t		len,
				got = 0;
	cb_status	st;

	*buf_out = NULL;
	*len_out = 0;
	st = cb_file_open(path, root, &fd, &size, err);
	if (st != CB_OK)
		return st;
	if (size > (uint64_t) max_size || size >= (uint64_t) SIZE_MAX)
	{
		close(fd);
		return cb_set_error(err, CB_ERR_LIMIT, "%s: file of %llu bytes exceeds the limit of %zu bytes",
							path, (unsigned long long) size, max_size);
	}
	len = (size_t) size;
	buf = cb_malloc(len + 1);
	if (buf == NULL)
	{
		close(fd);
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, len);
	}
	while (got < len)
	{
		ssize_t		r = read(fd, buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
		{
			int			e = r < 0 ? errno : 0;

			close(fd);
			cb_free(buf);
			cb_set_error(err, CB_ERR_IO, "%s: read failed: %s", path,
						 e ? strerror(e) : "file shrank while reading");
			if (err != NULL)
				err->sys_errno = e;
			return CB_ERR_IO;
		}
		got += (size_t) r;
	}
	close(fd);
	buf[len] = '\0';
	*buf_out = buf;
	*len_out = len;
	return CB_OK;
}
