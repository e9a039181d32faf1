/*
 * tf_h5_seeds.c — writes the seed corpus of fuzz_tf_h5 (fuzz/corpus/tf_h5/)
 * with libhdf5: tiny files in the layouts tf_h5.h reads, and a child report.
 *
 *   cc -std=c11 -D_GNU_SOURCE $(pkg-config --cflags hdf5) -o /tmp/tf_h5_seeds \
 *       fuzz/tf_h5_seeds.c $(pkg-config --libs hdf5) && /tmp/tf_h5_seeds fuzz/corpus/tf_h5
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* A 1-D string attribute: variable-length, or fixed-length byte strings. */
static void
string_attr(hid_t obj, const char *name, const char *const *v, size_t n, int fixed)
{
	hsize_t		dims[1] = {n};
	hid_t		space = H5Screate_simple(1, dims, NULL);
	hid_t		type = H5Tcopy(H5T_C_S1);
	hid_t		attr;

	if (fixed)
	{
		size_t		w = 1;
		char		buf[16][64];

		for (size_t i = 0; i < n; i++)
			if (strlen(v[i]) > w)
				w = strlen(v[i]);
		memset(buf, 0, sizeof(buf));
		for (size_t i = 0; i < n; i++)
			memcpy(buf[i], v[i], strlen(v[i]));
		H5Tset_size(type, w);
		H5Tset_strpad(type, H5T_STR_NULLPAD);
		attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
		{
			char		packed[16 * 64];

			for (size_t i = 0; i < n; i++)
				memcpy(packed + i * w, buf[i], w);
			H5Awrite(attr, type, packed);
		}
	}
	else
	{
		H5Tset_size(type, H5T_VARIABLE);
		attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
		H5Awrite(attr, type, v);
	}
	H5Aclose(attr);
	H5Tclose(type);
	H5Sclose(space);
}

static void
dataset(hid_t loc, const char *path, int ndim, const hsize_t *dims, hid_t type)
{
	hid_t		lcpl = H5Pcreate(H5P_LINK_CREATE);
	hid_t		space = H5Screate_simple(ndim, dims, NULL);
	hid_t		d;
	float		v[64];

	for (int i = 0; i < 64; i++)
		v[i] = (float) i / 8;
	H5Pset_create_intermediate_group(lcpl, 1);
	d = H5Dcreate2(loc, path, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
	H5Dclose(d);
	H5Sclose(space);
	H5Pclose(lcpl);
}

/* IEEE half precision (libhdf5 1.10 predefines no 16-bit float) */
static hid_t
f16_type(void)
{
	hid_t		t = H5Tcopy(H5T_IEEE_F32LE);

	H5Tset_fields(t, 15, 10, 5, 0, 10);
	H5Tset_precision(t, 16);
	H5Tset_size(t, 2);
	H5Tset_ebias(t, 15);
	return t;
}

static hid_t
create(const char *dir, const char *name)
{
	char		path[512];
	hid_t		fapl = H5Pcreate(H5P_FILE_ACCESS);

	/* the smallest layout libhdf5 writes */
	H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	hsize_t		k[2] = {2, 3},
				b[1] = {3};

	/* Keras save_weights layout, variable-length strings */
	{
		static const char *const layers[] = {"dense"};
		static const char *const weights[] = {"model/dense/kernel:0", "model/dense/bias:0"};
		hid_t		f = create(dir, "keras_vlen.h5");
		hid_t		g = H5Gcreate2(f, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);

		string_attr(f, "layer_names", layers, 1, 0);
		string_attr(g, "weight_names", weights, 2, 0);
		dataset(g, "model/dense/kernel:0", 2, k, H5T_IEEE_F32LE);
		dataset(g, "model/dense/bias:0", 1, b, f16_type());
		H5Gclose(g);
		H5Fclose(f);
	}
	/* the same with fixed-length strings, the list split in weight_names0/1 */
	{
		static const char *const layers[] = {"dense"};
		static const char *const w0[] = {"model/dense/kernel:0"};
		static const char *const w1[] = {"model/dense/bias:0"};
		hid_t		f = create(dir, "keras_fixed_chunked.h5");
		hid_t		g = H5Gcreate2(f, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);

		string_attr(f, "layer_names", layers, 1, 1);
		string_attr(g, "weight_names0", w0, 1, 1);
		string_attr(g, "weight_names1", w1, 1, 1);
		dataset(g, "model/dense/kernel:0", 2, k, H5T_IEEE_F32LE);
		dataset(g, "model/dense/bias:0", 1, b, H5T_IEEE_F32LE);
		H5Gclose(g);
		H5Fclose(f);
	}
	/* a shard: flat variables named in layer_names */
	{
		static const char *const names[] = {"dense/kernel:0", "dense/bias:0"};
		hid_t		f = create(dir, "shard.h5");

		string_attr(f, "layer_names", names, 2, 0);
		dataset(f, "dense/kernel:0", 2, k, H5T_IEEE_F32LE);
		dataset(f, "dense/bias:0", 1, b, H5T_IEEE_F32LE);
		H5Fclose(f);
	}
	/* a child's report: one 2 × 3 float32 variable at offset 64, then the end */
	{
		char		path[512];
		FILE	   *fp;
		unsigned char rep[128];
		size_t		n = 0;
		uint32_t	u;
		int64_t		d;
		uint64_t	q;
		const char *name = "model/dense/kernel:0";

		memcpy(rep, "CBH5REP1", 8);
		n = 8;
		rep[n++] = 'T';
		u = 1;
		memcpy(rep + n, &u, 4), n += 4;
		u = (uint32_t) strlen(name);
		memcpy(rep + n, &u, 4), n += 4;
		memcpy(rep + n, name, u), n += u;
		u = 0;
		memcpy(rep + n, &u, 4), n += 4;
		u = 2;
		memcpy(rep + n, &u, 4), n += 4;
		d = 2;
		memcpy(rep + n, &d, 8), n += 8;
		d = 3;
		memcpy(rep + n, &d, 8), n += 8;
		q = 64;
		memcpy(rep + n, &q, 8), n += 8;
		q = 24;
		memcpy(rep + n, &q, 8), n += 8;
		rep[n++] = 'Z';
		u = 1;
		memcpy(rep + n, &u, 4), n += 4;
		snprintf(path, sizeof(path), "%s/report.bin", dir);
		fp = fopen(path, "wb");
		if (fp == NULL)
			return 1;
		fwrite(rep, 1, n, fp);
		fclose(fp);
	}
	return 0;
}
