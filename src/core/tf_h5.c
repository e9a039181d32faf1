/*
 * tf_h5.c — tf_model.h5 and its shards through libhdf5, in a forked child
 * (see tf_h5.h).
 *
 * The child walks the file and writes a report to a pipe:
 *     "CBH5REP1"
 *     'T' u32 flags (bit 0: the name has its model-name component)
 *         u32 name_len, name, u32 dtype (cb_tensor_dtype), u32 ndim,
 *         i64 dims[ndim], u64 offset, u64 nbytes          one per variable
 *     'E' u32 len, message                                failure, last record
 *     'Z' u32 count                                       success, last record
 * (native byte order: the same machine).  The parent trusts none of it.
 */
#include "tf_h5.h"
#include "tf_names.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#define REPORT_MAGIC "CBH5REP1"
#define FLAG_MODEL_COMPONENT 1u
/* strings of an attribute: at most this long each */
#define MAX_STRING 65536
/* wall-clock bound on the child, on top of its CPU limit */
#define CHILD_WALL_SECONDS 600

/* ======================================================================== */
/* The child's half: libhdf5 → report (plain malloc: this runs in a child)  */

typedef struct report
{
	unsigned char *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* out of memory or over the limit */
	uint32_t	count;
} report;

static void
put(report *rep, const void *p, size_t n)
{
	if (rep->failed)
		return;
	if (rep->len + n > CB_TF_H5_MAX_REPORT)
	{
		rep->failed = true;
		return;
	}
	if (rep->len + n > rep->cap)
	{
		size_t		ncap = rep->cap ? rep->cap : 4096;
		unsigned char *nd;

		while (ncap < rep->len + n)
			ncap *= 2;
		nd = realloc(rep->data, ncap);
		if (nd == NULL)
		{
			rep->failed = true;
			return;
		}
		rep->data = nd;
		rep->cap = ncap;
	}
	memcpy(rep->data + rep->len, p, n);
	rep->len += n;
}

static void
put_u32(report *rep, uint32_t v)
{
	put(rep, &v, 4);
}

/* A failure: an 'E' record (the walk stops). */
static bool
fail(report *rep, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static bool
fail(report *rep, const char *fmt,...)
{
	char		msg[400];
	va_list		ap;
	size_t		n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	put(rep, "E", 1);
	put_u32(rep, (uint32_t) n);
	put(rep, msg, n);
	return false;
}

/* External links would make libhdf5 open other files: refuse to follow them. */
static herr_t
deny_external_link(const char *parent_file_name, const char *parent_group_name,
				   const char *child_file_name, const char *child_object_name,
				   unsigned *acc_flags, hid_t fapl_id, void *op_data)
{
	(void) parent_file_name;
	(void) parent_group_name;
	(void) child_file_name;
	(void) child_object_name;
	(void) acc_flags;
	(void) fapl_id;
	(void) op_data;
	return -1;
}

typedef struct strlist
{
	char	  **items;
	size_t		count;
} strlist;

static void
strlist_free(strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static bool
strlist_add(strlist *l, const char *s, size_t n)
{
	char	  **ni;
	char	   *c;

	if (l->count >= CB_TF_H5_MAX_VARIABLES)
		return false;
	ni = realloc(l->items, (l->count + 1) * sizeof(char *));
	if (ni == NULL)
		return false;
	l->items = ni;
	c = malloc(n + 1);
	if (c == NULL)
		return false;
	memcpy(c, s, n);
	c[n] = '\0';
	l->items[l->count++] = c;
	return true;
}

/* Append the strings of attribute name of obj (a 0- or 1-D string attribute). */
static bool
read_string_attr(hid_t obj, const char *objname, const char *name, strlist *out, report *rep)
{
	hid_t		attr = -1,
				ftype = -1,
				mtype = -1,
				space = -1;
	hsize_t		dims[1] = {1};
	int			nd;
	size_t		n;
	bool		ok = false;

	attr = H5Aopen(obj, name, H5P_DEFAULT);
	if (attr < 0)
		return fail(rep, "cannot open attribute %s of %s", name, objname);
	ftype = H5Aget_type(attr);
	space = H5Aget_space(attr);
	if (ftype < 0 || space < 0 || H5Tget_class(ftype) != H5T_STRING)
	{
		fail(rep, "attribute %s of %s is not a list of strings", name, objname);
		goto done;
	}
	nd = H5Sget_simple_extent_ndims(space);
	if (nd < 0 || nd > 1 || (nd == 1 && H5Sget_simple_extent_dims(space, dims, NULL) != 1))
	{
		fail(rep, "attribute %s of %s is not a list of strings", name, objname);
		goto done;
	}
	if (dims[0] > CB_TF_H5_MAX_VARIABLES)
	{
		fail(rep, "attribute %s of %s lists more than %d names", name, objname, CB_TF_H5_MAX_VARIABLES);
		goto done;
	}
	n = (size_t) dims[0];
	if (n == 0)
	{
		ok = true;
		goto done;
	}
	mtype = H5Tcopy(H5T_C_S1);
	if (mtype < 0)
		goto hdf5_error;
	if (H5Tis_variable_str(ftype) > 0)
	{
		char	  **v = calloc(n, sizeof(char *));

		if (v == NULL || H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Aread(attr, mtype, v) < 0)
		{
			free(v);
			goto hdf5_error;
		}
		ok = true;
		for (size_t i = 0; i < n; i++)
		{
			if (ok && (v[i] == NULL || strnlen(v[i], MAX_STRING + 1) > MAX_STRING))
				ok = fail(rep, "attribute %s of %s holds a missing or too long name", name, objname);
			else if (ok && !strlist_add(out, v[i], strlen(v[i])))
				ok = fail(rep, "too many names in attribute %s of %s", name, objname);
		}
		H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, v);
		free(v);
	}
	else
	{
		size_t		size = H5Tget_size(ftype);
		char	   *buf;

		if (size == 0 || size > MAX_STRING || n * size > CB_TF_H5_MAX_REPORT)
		{
			fail(rep, "attribute %s of %s has strings of %zu bytes", name, objname, size);
			goto done;
		}
		buf = calloc(n, size);
		if (buf == NULL || H5Tset_size(mtype, size) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLPAD) < 0 ||
			H5Aread(attr, mtype, buf) < 0)
		{
			free(buf);
			goto hdf5_error;
		}
		ok = true;
		for (size_t i = 0; i < n && ok; i++)
			if (!strlist_add(out, buf + i * size, strnlen(buf + i * size, size)))
				ok = fail(rep, "too many names in attribute %s of %s", name, objname);
		free(buf);
	}
	goto done;

hdf5_error:
	ok = fail(rep, "cannot read attribute %s of %s", name, objname);
done:
	if (mtype >= 0)
		H5Tclose(mtype);
	if (space >= 0)
		H5Sclose(space);
	if (ftype >= 0)
		H5Tclose(ftype);
	H5Aclose(attr);
	return ok;
}

/*
 * Keras' load_attributes_from_hdf5_group: attribute name, or name0, name1, ...
 * (a list longer than 64 KiB split in chunks).  absent: neither exists.
 */
static bool
read_name_list(hid_t obj, const char *objname, const char *name, strlist *out, bool *absent,
			   report *rep)
{
	char		chunk[64];

	*absent = false;
	if (H5Aexists(obj, name) > 0)
		return read_string_attr(obj, objname, name, out, rep);
	for (unsigned k = 0;; k++)
	{
		snprintf(chunk, sizeof(chunk), "%s%u", name, k);
		if (H5Aexists(obj, chunk) <= 0)
		{
			*absent = (k == 0);
			return true;
		}
		if (!read_string_attr(obj, objname, chunk, out, rep))
			return false;
	}
}

typedef struct float_kind
{
	size_t		size;
	size_t		spos,
				epos,
				esize,
				mpos,
				msize;
	cb_tensor_dtype dtype;
} float_kind;

static const float_kind float_kinds[] = {
	{4, 31, 23, 8, 0, 23, CB_TENSOR_F32},
	{2, 15, 10, 5, 0, 10, CB_TENSOR_F16},
	{2, 15, 7, 8, 0, 7, CB_TENSOR_BF16},
	{8, 63, 52, 11, 0, 52, CB_TENSOR_F64},
};

/* The cb_tensor_dtype of a dataset's type; false (with a failure) if none. */
static bool
dataset_dtype(hid_t type, const char *name, cb_tensor_dtype *out, report *rep)
{
	H5T_class_t cls = H5Tget_class(type);
	size_t		size = H5Tget_size(type);

	if ((cls == H5T_FLOAT || cls == H5T_INTEGER) &&
		(H5Tget_order(type) != H5T_ORDER_LE && size > 1))
		return fail(rep, "dataset '%s' is big-endian (only little-endian data is read)", name);
	if (cls == H5T_FLOAT)
	{
		size_t		spos,
					epos,
					esize,
					mpos,
					msize;

		if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0 ||
			H5Tget_offset(type) != 0 || H5Tget_precision(type) != size * 8)
			return fail(rep, "dataset '%s' has an unreadable float type", name);
		for (size_t i = 0; i < sizeof(float_kinds) / sizeof(float_kinds[0]); i++)
		{
			const float_kind *k = &float_kinds[i];

			if (k->size == size && k->spos == spos && k->epos == epos && k->esize == esize &&
				k->mpos == mpos && k->msize == msize)
			{
				*out = k->dtype;
				return true;
			}
		}
		return fail(rep, "dataset '%s' has a %zu-byte float type that is not IEEE float16/32/64 nor bfloat16",
					name, size);
	}
	if (cls == H5T_INTEGER)
	{
		bool		sign = H5Tget_sign(type) == H5T_SGN_2;

		if (H5Tget_offset(type) != 0 || H5Tget_precision(type) != size * 8)
			return fail(rep, "dataset '%s' has an unreadable integer type", name);
		switch (size)
		{
			case 1:
				*out = sign ? CB_TENSOR_I8 : CB_TENSOR_U8;
				return true;
			case 2:
				*out = sign ? CB_TENSOR_I16 : CB_TENSOR_U16;
				return true;
			case 4:
				*out = sign ? CB_TENSOR_I32 : CB_TENSOR_U32;
				return true;
			case 8:
				*out = sign ? CB_TENSOR_I64 : CB_TENSOR_U64;
				return true;
		}
		return fail(rep, "dataset '%s' has a %zu-byte integer type", name, size);
	}
	return fail(rep, "dataset '%s' is neither a float nor an integer array", name);
}

/* One variable: the dataset at path (from loc), reported under name. */
static bool
report_dataset(hid_t loc, const char *path, const char *name, uint32_t flags, hid_t dapl, report *rep)
{
	hid_t		d,
				type = -1,
				space = -1,
				dcpl = -1;
	cb_tensor_dtype dtype = CB_TENSOR_F32;
	int			nd;
	hsize_t		dims[CB_TENSOR_MAX_DIMS];
	uint64_t	numel = 1,
				nbytes,
				offset;
	bool		ok = false;

	/* dapl is a link access list too: no external link is followed on the way */
	if (H5Lexists(loc, path, dapl) <= 0 || (d = H5Dopen2(loc, path, dapl)) < 0)
		return fail(rep, "variable '%s' has no dataset", name);
	dcpl = H5Dget_create_plist(d);
	type = H5Dget_type(d);
	space = H5Dget_space(d);
	if (dcpl < 0 || type < 0 || space < 0)
	{
		fail(rep, "dataset '%s' cannot be read", name);
		goto done;
	}
	if (H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_external_count(dcpl) != 0 ||
		H5Pget_nfilters(dcpl) != 0)
	{
		fail(rep, "dataset '%s' is chunked, compressed, compact or external (only contiguous datasets, "
			 "as Keras save_weights writes them, are read)", name);
		goto done;
	}
	if (!dataset_dtype(type, name, &dtype, rep))
		goto done;
	nd = H5Sget_simple_extent_ndims(space);
	if (nd < 0 || nd > CB_TENSOR_MAX_DIMS || H5Sget_simple_extent_dims(space, dims, NULL) != nd)
	{
		fail(rep, "dataset '%s' has an unsupported shape (more than %d dimensions?)", name, CB_TENSOR_MAX_DIMS);
		goto done;
	}
	for (int i = 0; i < nd; i++)
		if (dims[i] > (hsize_t) INT64_MAX || __builtin_mul_overflow(numel, (uint64_t) dims[i], &numel))
		{
			fail(rep, "dataset '%s' is too large", name);
			goto done;
		}
	if (__builtin_mul_overflow(numel, (uint64_t) cb_tensor_dtype_size(dtype), &nbytes))
	{
		fail(rep, "dataset '%s' is too large", name);
		goto done;
	}
	offset = H5Dget_offset(d);
	if (offset == HADDR_UNDEF)
	{
		if (nbytes != 0)
		{
			fail(rep, "dataset '%s' has no data in the file", name);
			goto done;
		}
		offset = 0;
	}
	else if (H5Dget_storage_size(d) != nbytes)
	{
		fail(rep, "dataset '%s' stores %llu bytes, its shape and type need %llu", name,
			 (unsigned long long) H5Dget_storage_size(d), (unsigned long long) nbytes);
		goto done;
	}
	put(rep, "T", 1);
	put_u32(rep, flags);
	put_u32(rep, (uint32_t) strlen(name));
	put(rep, name, strlen(name));
	put_u32(rep, (uint32_t) dtype);
	put_u32(rep, (uint32_t) nd);
	for (int i = 0; i < nd; i++)
	{
		int64_t		v = (int64_t) dims[i];

		put(rep, &v, 8);
	}
	put(rep, &offset, 8);
	put(rep, &nbytes, 8);
	rep->count++;
	ok = true;
done:
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (type >= 0)
		H5Tclose(type);
	if (space >= 0)
		H5Sclose(space);
	H5Dclose(d);
	return ok;
}

/* Walk an open file: the two layouts of tf_h5.h. */
static bool
walk(hid_t file, report *rep)
{
	hid_t		lapl = H5Pcreate(H5P_LINK_ACCESS),
				dapl = H5Pcreate(H5P_DATASET_ACCESS);
	strlist		layers = {0};
	bool		absent,
				ok = false;

	if (lapl < 0 || dapl < 0 || H5Pset_elink_cb(lapl, deny_external_link, NULL) < 0 ||
		H5Pset_elink_cb(dapl, deny_external_link, NULL) < 0)
	{
		fail(rep, "libhdf5 property lists");
		goto done;
	}
	if (!read_name_list(file, "the file", "layer_names", &layers, &absent, rep))
		goto done;
	if (absent)
	{
		fail(rep, "no root attribute layer_names: not a Keras/transformers TensorFlow weight file");
		goto done;
	}
	ok = true;
	for (size_t i = 0; i < layers.count && ok && !rep->failed; i++)
	{
		const char *ln = layers.items[i];
		hid_t		obj;
		H5I_type_t	kind;

		if (ln[0] == '\0' || H5Lexists(file, ln, lapl) <= 0 || (obj = H5Oopen(file, ln, lapl)) < 0)
		{
			ok = fail(rep, "layer '%.200s' named by layer_names is not in the file", ln);
			break;
		}
		kind = H5Iget_type(obj);
		if (kind == H5I_DATASET)
		{
			/* a shard: the variable itself, named without the model-name component */
			ok = report_dataset(file, ln, ln, 0, dapl, rep);
		}
		else if (kind == H5I_GROUP)
		{
			strlist		weights = {0};

			ok = read_name_list(obj, ln, "weight_names", &weights, &absent, rep);
			if (ok && absent)
				ok = fail(rep, "layer '%.200s' has no attribute weight_names", ln);
			for (size_t j = 0; j < weights.count && ok && !rep->failed; j++)
				ok = weights.items[j][0] != '\0' ?
					report_dataset(obj, weights.items[j], weights.items[j], FLAG_MODEL_COMPONENT, dapl, rep) :
					fail(rep, "layer '%.200s' lists an empty weight name", ln);
			strlist_free(&weights);
		}
		else
			ok = fail(rep, "layer '%.200s' is neither a group nor a dataset", ln);
		H5Oclose(obj);
	}
done:
	strlist_free(&layers);
	if (lapl >= 0)
		H5Pclose(lapl);
	if (dapl >= 0)
		H5Pclose(dapl);
	return ok;
}

/* The child: open, walk, write the report, exit.  Never returns. */
static void
child_main(int out_fd, const cb_file_reader *r)
{
	report		rep = {0};
	hid_t		fapl,
				file = -1;
	struct rlimit cpu = {CB_TF_H5_CPU_SECONDS, CB_TF_H5_CPU_SECONDS + 1};
	static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGPIPE, SIGTERM, SIGXCPU};
	int			devnull;
	size_t		done = 0;

	/* die with the parent; the CPU limit; crash signals kill (no sanitizer report) */
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void) setrlimit(RLIMIT_CPU, &cpu);
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		signal(crash_signals[i], SIG_DFL);
	devnull = open("/dev/null", O_WRONLY);
	if (devnull >= 0)
		(void) dup2(devnull, STDERR_FILENO);

	put(&rep, REPORT_MAGIC, 8);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	fapl = H5Pcreate(H5P_FILE_ACCESS);
	/* read-only, and the file may lie where locks fail: no flock() */
	if (fapl >= 0)
		(void) H5Pset_file_locking(fapl, 0, 1);
	if (fapl < 0)
		fail(&rep, "libhdf5 cannot start");
	else if (r->data != NULL)
	{
		/* a file image in memory (fuzzing, tests) */
		if (H5Pset_fapl_core(fapl, 65536, 0) < 0 || H5Pset_file_image(fapl, (void *) r->data, r->size) < 0)
			fail(&rep, "libhdf5 cannot open a file image");
		else if ((file = H5Fopen("memory image", H5F_ACC_RDONLY, fapl)) < 0)
			fail(&rep, "not an HDF5 file, or a damaged one");
	}
	else
	{
		/* the very file the parent opened and checked */
		char		path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
		if (H5Pset_fapl_sec2(fapl) < 0 || (file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0)
			fail(&rep, "not an HDF5 file, or a damaged one");
	}
	if (file >= 0 && walk(file, &rep))
	{
		put(&rep, "Z", 1);
		put_u32(&rep, rep.count);
	}
	if (rep.failed)
		_exit(3);
	while (done < rep.len)
	{
		ssize_t		w = write(out_fd, rep.data + done, rep.len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(4);
		done += (size_t) w;
	}
	_exit(0);
}

/* ======================================================================== */
/* The parent's half                                                        */

typedef struct cursor
{
	const unsigned char *p;
	size_t		left;
} cursor;

static bool
take(cursor *c, void *out, size_t n)
{
	if (c->left < n)
		return false;
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
	return true;
}

static bool
printable_name(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return n > 0;
}

cb_status
cb_tf_h5_decode_report(const unsigned char *buf, size_t len, const char *path, uint64_t file_size,
					   uint32_t file_index, cb_tensor_list *list, cb_error *err)
{
	cursor		c = {buf, len};
	char		magic[8];
	uint32_t	count = 0;

	if (!take(&c, magic, 8) || memcmp(magic, REPORT_MAGIC, 8) != 0)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader failed on this file (no report)", path);
	for (;;)
	{
		unsigned char tag;
		uint32_t	flags,
					name_len,
					dtype,
					ndim;
		cb_tensor_info t;
		char		name[CB_TENSOR_MAX_NAME + 1];
		const char *tf_name;
		uint64_t	numel = 1,
					need;
		cb_status	st;

		if (!take(&c, &tag, 1))
			return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader stopped early on this file", path);
		if (tag == 'E')
		{
			char		msg[400];

			if (!take(&c, &name_len, 4) || name_len >= sizeof(msg) || !take(&c, msg, name_len) ||
				!printable_name((const unsigned char *) msg, name_len))
				return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader failed on this file", path);
			msg[name_len] = '\0';
			return cb_set_error(err, CB_ERR_FORMAT, "%s: %s", path, msg);
		}
		if (tag == 'Z')
		{
			uint32_t	n;

			if (!take(&c, &n, 4) || n != count || c.left != 0)
				return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader's report is inconsistent", path);
			if (count == 0)
				return cb_set_error(err, CB_ERR_FORMAT, "%s: the file lists no weights", path);
			return CB_OK;
		}
		if (tag != 'T' || count >= CB_TF_H5_MAX_VARIABLES)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader's report is malformed", path);
		if (!take(&c, &flags, 4) || flags > FLAG_MODEL_COMPONENT || !take(&c, &name_len, 4) ||
			name_len == 0 || name_len > CB_TENSOR_MAX_NAME || !take(&c, name, name_len) ||
			!printable_name((const unsigned char *) name, name_len) ||
			!take(&c, &dtype, 4) || dtype > CB_TENSOR_U64 || !take(&c, &ndim, 4) ||
			ndim > CB_TENSOR_MAX_DIMS)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader's report is malformed", path);
		name[name_len] = '\0';
		memset(&t, 0, sizeof(t));
		t.storage = -1;
		t.file = file_index;
		t.dtype = (cb_tensor_dtype) dtype;
		t.ndim = (int) ndim;
		for (uint32_t i = 0; i < ndim; i++)
		{
			if (!take(&c, &t.shape[i], 8) || t.shape[i] < 0 ||
				__builtin_mul_overflow(numel, (uint64_t) t.shape[i], &numel))
				return cb_set_error(err, CB_ERR_FORMAT, "%s: variable '%.200s' has a bad shape", path, name);
		}
		if (!take(&c, &t.offset, 8) || !take(&c, &t.nbytes, 8))
			return cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader's report is malformed", path);
		if (__builtin_mul_overflow(numel, (uint64_t) cb_tensor_dtype_size(t.dtype), &need) || need != t.nbytes)
			return cb_set_error(err, CB_ERR_FORMAT, "%s: variable '%.200s' has %llu bytes for its shape",
								path, name, (unsigned long long) t.nbytes);
		if (t.offset > file_size || t.nbytes > file_size - t.offset)
			return cb_set_error(err, CB_ERR_FORMAT,
								"%s: variable '%.200s' lies outside the file (offset %llu, %llu bytes, file of %llu)",
								path, name, (unsigned long long) t.offset, (unsigned long long) t.nbytes,
								(unsigned long long) file_size);
		t.numel = numel;
		tf_name = name;
		if (flags & FLAG_MODEL_COMPONENT)
		{
			tf_name = cb_tf_name_strip_model(name);
			if (tf_name == NULL)
				return cb_set_error(err, CB_ERR_FORMAT,
									"%s: variable '%.200s' has no model-name component", path, name);
		}
		t.name = (char *) tf_name;
		if ((st = cb_tensor_list_add(list, &t, err)) != CB_OK)
			return st;
		count++;
	}
}

/* A child left behind when an interrupt longjmped out of the wait below. */
static pid_t pending_child = -1;
static int	pending_fd = -1;

static void
reap_pending(void)
{
	if (pending_child > 0)
	{
		kill(pending_child, SIGKILL);
		while (waitpid(pending_child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (pending_fd >= 0)
		close(pending_fd);
	pending_child = -1;
	pending_fd = -1;
}

void
cb_tf_h5_abandon(void)
{
	reap_pending();
}

cb_status
cb_tf_h5_read(const cb_file_reader *r, uint32_t file_index, cb_tensor_list *list, cb_error *err)
{
	int			fds[2];
	pid_t		pid;
	unsigned char *buf = NULL;
	size_t		len = 0,
				cap = 0;
	int			wstatus = 0;
	bool		reaped = false;
	cb_status	st = CB_OK;
	struct timespec start,
				now;

	reap_pending();
	if (pipe2(fds, O_CLOEXEC) != 0)
		return cb_set_error(err, CB_ERR_IO, "%s: cannot create a pipe: %s", r->path, strerror(errno));
	pid = fork();
	if (pid < 0)
	{
		int			e = errno;

		close(fds[0]);
		close(fds[1]);
		return cb_set_error(err, CB_ERR_IO, "%s: cannot fork the HDF5 reader: %s", r->path, strerror(e));
	}
	if (pid == 0)
	{
		close(fds[0]);
		child_main(fds[1], r);
	}
	close(fds[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);

	for (;;)
	{
		struct pollfd pfd = {fds[0], POLLIN, 0};
		int			pr = poll(&pfd, 1, 100);

		if (pr < 0 && errno != EINTR)
		{
			st = cb_set_error(err, CB_ERR_IO, "%s: waiting for the HDF5 reader: %s", r->path, strerror(errno));
			break;
		}
		if (pr > 0)
		{
			ssize_t		n;

			if (len == cap)
			{
				size_t		ncap = cap ? cap * 2 : 65536;
				unsigned char *nb;

				if (ncap > CB_TF_H5_MAX_REPORT + 1)
					ncap = CB_TF_H5_MAX_REPORT + 1;
				if (len == ncap)
				{
					st = cb_set_error(err, CB_ERR_LIMIT, "%s: the HDF5 reader's report is too large", r->path);
					break;
				}
				nb = cb_realloc(buf, ncap);
				if (nb == NULL)
				{
					st = cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory", r->path);
					break;
				}
				buf = nb;
				cap = ncap;
			}
			n = read(fds[0], buf + len, cap - len);
			if (n < 0 && errno != EINTR && errno != EAGAIN)
			{
				st = cb_set_error(err, CB_ERR_IO, "%s: reading from the HDF5 reader: %s", r->path,
								  strerror(errno));
				break;
			}
			if (n == 0)
				break;			/* EOF: the child is done */
			if (n > 0)
				len += (size_t) n;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > CHILD_WALL_SECONDS)
		{
			st = cb_set_error(err, CB_ERR_LIMIT, "%s: the HDF5 reader took more than %d s", r->path,
							  CHILD_WALL_SECONDS);
			break;
		}
		/* may longjmp: the next call kills and reaps the child */
		pending_child = pid;
		pending_fd = fds[0];
		cb_check_interrupts();
		pending_child = -1;
		pending_fd = -1;
	}
	close(fds[0]);
	if (st != CB_OK)
		kill(pid, SIGKILL);
	for (;;)
	{
		pid_t		w = waitpid(pid, &wstatus, 0);

		if (w == pid)
		{
			reaped = true;
			break;
		}
		if (w < 0 && errno == EINTR)
			continue;
		break;					/* ECHILD (SIGCHLD ignored): rely on the report's end record */
	}
	if (st == CB_OK && reaped && WIFSIGNALED(wstatus))
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader was killed by signal %d on this file "
						  "(a damaged or hostile HDF5 file%s)", r->path, WTERMSIG(wstatus),
						  WTERMSIG(wstatus) == SIGXCPU || WTERMSIG(wstatus) == SIGKILL ?
						  ", or over its CPU time limit" : "");
	else if (st == CB_OK && reaped && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 3)
		st = cb_set_error(err, CB_ERR_LIMIT, "%s: the HDF5 reader ran out of memory or over %u bytes of report",
						  r->path, CB_TF_H5_MAX_REPORT);
	else if (st == CB_OK && reaped && (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0))
		st = cb_set_error(err, CB_ERR_FORMAT, "%s: the HDF5 reader failed on this file (exit status %d)",
						  r->path, WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
	if (st == CB_OK)
		st = cb_tf_h5_decode_report(buf, len, r->path, r->size, file_index, list, err);
	cb_free(buf);
	return st;
}
