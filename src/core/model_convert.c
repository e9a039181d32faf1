/*
 * model_convert.c — writing a model image (cb_model_source_write_image, see
 * model_image.h): each tensor read from its file, widened to float32 or packed
 * into its matrix format (matrix.h), at the offset model_source.c laid out.
 */
#include "model_image.h"
#include "model_files.h"
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_image_internal.h"

/* ---- conversion ----------------------------------------------------------- */

static inline uint32_t
f16_to_f32_bits(uint16_t h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	exp = (h >> 10) & 0x1F;
	uint32_t	mant = h & 0x3FF;

	if (exp == 0x1F)			/* inf / nan (payload kept) */
		return sign | 0x7F800000u | (mant << 13);
	if (exp != 0)
		return sign | ((exp + 112) << 23) | (mant << 13);
	if (mant == 0)
		return sign;
	/* subnormal: normalize */
	exp = 113;
	while ((mant & 0x400) == 0)
	{
		mant <<= 1;
		exp--;
	}
	mant &= 0x3FF;
	return sign | (exp << 23) | (mant << 13);
}

/*
 * Convert count 16-bit values stored at dst + 2*count (bytes) into float32
 * at dst, in place: element i is read before any write can reach it.
 */
static void
widen_in_place(unsigned char *dst, uint64_t count, bool bf16)
{
	const unsigned char *srcp = dst + count * 2;

	for (uint64_t i = 0; i < count; i++)
	{
		uint16_t	h;
		uint32_t	f;

		memcpy(&h, srcp + 2 * i, 2);
		f = bf16 ? (uint32_t) h << 16 : f16_to_f32_bits(h);
		memcpy(dst + 4 * i, &f, 4);
	}
}

static cb_status
open_checked(const cb_weight_file *fi, const char *root, cb_file_reader *r, cb_error *err)
{
	struct stat st;
	cb_status	s = cb_file_reader_open(r, fi->path, root, err);

	if (s != CB_OK)
		return s;
	if (fstat(r->fd, &st) != 0 || st.st_dev != fi->dev || st.st_ino != fi->ino ||
		st.st_size != fi->size || st.st_mtim.tv_sec != fi->mtime.tv_sec ||
		st.st_mtim.tv_nsec != fi->mtime.tv_nsec)
	{
		cb_file_reader_close(r);
		return cb_set_error(err, CB_ERR_IO, "%s: the file changed since it was validated", fi->path);
	}
	return CB_OK;
}

/*
 * The raw bytes (as stored: 2 or 4 per element) of a 2-D tensor, in PyTorch
 * orientation [rows, cols], into dst: a TensorFlow kernel (t->transposed,
 * stored [cols, rows]) is read whole and transposed.
 */
static cb_status
read_oriented(const cb_tensor_info *t, const cb_file_reader *fr, size_t rows, size_t cols,
			  unsigned char *dst, cb_error *err)
{
	size_t		elem = cb_tensor_dtype_size(t->dtype);
	unsigned char *tmp;
	cb_status	st;

	if (!t->transposed)
		return cb_file_reader_read(fr, t->offset, dst, (size_t) t->nbytes, err);
	tmp = cb_malloc((size_t) t->nbytes);
	if (tmp == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory transposing '%s'", t->name);
	st = cb_file_reader_read(fr, t->offset, tmp, (size_t) t->nbytes, err);
	if (st == CB_OK)
	{
		/* tmp is [cols][rows]: blocks of 32 × 32 elements for locality */
		for (size_t k0 = 0; k0 < cols; k0 += 32)
			for (size_t r0 = 0; r0 < rows; r0 += 32)
			{
				size_t		k1 = k0 + 32 < cols ? k0 + 32 : cols,
							r1 = r0 + 32 < rows ? r0 + 32 : rows;

				for (size_t k = k0; k < k1; k++)
					for (size_t r = r0; r < r1; r++)
						memcpy(dst + (r * cols + k) * elem, tmp + (k * rows + r) * elem, elem);
			}
	}
	cb_free(tmp);
	return st;
}

/* rows of a matrix converted at a time by write_packed */
#define PACK_CHUNK_ROWS 64

/*
 * A matrix in a packed format: PACK_CHUNK_ROWS rows at a time read from the
 * file, widened to float32 in a buffer, encoded into the image.
 */
static cb_status
write_packed(const cb_model_source *src, const slot *s, unsigned char *dst, cb_error *err)
{
	const cb_tensor_info *t = s->tensor;
	const role_def *r = &roles[s->role];
	int64_t		shape[2];
	size_t		rows,
				cols,
				elem = cb_tensor_dtype_size(t->dtype);
	float	   *buf;
	unsigned char *whole = NULL;
	cb_file_reader fr;
	cb_status	st;

	(void) expected_shape(r, &src->mc->config, shape);
	rows = (size_t) shape[0];
	cols = (size_t) shape[1];
	/* cols <= hidden/intermediate limits: the buffer is at most a few MB */
	buf = cb_malloc(PACK_CHUNK_ROWS * cols * sizeof(float));
	if (buf == NULL)
		return cb_set_error(err, CB_ERR_NOMEM, "out of memory converting a weight matrix");
	st = open_checked(&src->weights.files[t->file], src->root, &fr, err);
	if (st != CB_OK)
	{
		cb_free(buf);
		return st;
	}
	if (t->transposed)
	{
		/* a TensorFlow kernel: the whole matrix in PyTorch orientation, then in chunks */
		whole = cb_malloc((size_t) t->nbytes);
		if (whole == NULL)
			st = cb_set_error(err, CB_ERR_NOMEM, "out of memory converting a weight matrix");
		else
			st = read_oriented(t, &fr, rows, cols, whole, err);
	}
	for (size_t r0 = 0; r0 < rows && st == CB_OK; r0 += PACK_CHUNK_ROWS)
	{
		size_t		n = rows - r0 < PACK_CHUNK_ROWS ? rows - r0 : PACK_CHUNK_ROWS;
		unsigned char *raw = (unsigned char *) buf + (elem == 4 ? 0 : n * cols * 2);

		if (whole != NULL)
			memcpy(raw, whole + r0 * cols * elem, n * cols * elem);
		else
			st = cb_file_reader_read(&fr, t->offset + (uint64_t) r0 * cols * elem, raw, n * cols * elem, err);
		if (st != CB_OK)
			break;
		if (elem != 4)
			widen_in_place((unsigned char *) buf, (uint64_t) n * cols, t->dtype == CB_TENSOR_BF16);
		cb_matrix_encode_rows(s->format, rows, cols, dst, r0, n, buf);
	}
	cb_file_reader_close(&fr);
	cb_free(whole);
	cb_free(buf);
	return st;
}

cb_status
cb_model_source_write_image(const cb_model_source *src, void *dest, size_t dest_len,
							cb_error *err)
{
	unsigned char *img = dest;
	image_header h;
	const cb_config *c;

	if (src == NULL || dest == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "NULL model source or destination");
	if (dest_len < src->total_size)
		return cb_set_error(err, CB_ERR_INVALID, "destination of %zu bytes is smaller than the model image (%llu bytes)",
							dest_len, (unsigned long long) src->total_size);
	if (((uintptr_t) dest & 7) != 0)
		return cb_set_error(err, CB_ERR_INVALID, "model image destination must be 8-byte aligned");
	c = &src->mc->config;

	memset(img, 0, src->weights_offset);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CB_MODEL_IMAGE_MAGIC, 8);
	h.version = CB_MODEL_IMAGE_VERSION;
	h.header_size = sizeof(image_header);
	h.total_size = src->total_size;
	h.config_size = sizeof(cb_config);
	h.num_tensors = (uint32_t) src->num_slots;
	h.config_offset = src->config_offset;
	h.table_offset = src->table_offset;
	h.labels_offset = src->labels_offset;
	h.labels_size = src->labels_size;
	h.weights_offset = src->weights_offset;
	h.weights_size = src->total_size - src->weights_offset;
	h.parameter_count = src->parameter_count;
	h.num_labels = (uint32_t) c->num_labels;
	memcpy(img, &h, sizeof(h));
	{
		cb_config	cc;

		/* copy field by field into a zeroed struct: no uninitialized padding */
		memset(&cc, 0, sizeof(cc));
		cc.architecture = c->architecture;
		cc.problem_type = c->problem_type;
		cc.stored_dtype = c->stored_dtype;
		cc.precision = src->precision;
		cc.vocab_size = c->vocab_size;
		cc.hidden_size = c->hidden_size;
		cc.num_hidden_layers = c->num_hidden_layers;
		cc.num_attention_heads = c->num_attention_heads;
		cc.intermediate_size = c->intermediate_size;
		cc.max_position_embeddings = c->max_position_embeddings;
		cc.type_vocab_size = c->type_vocab_size;
		cc.pad_token_id = c->pad_token_id;
		cc.bos_token_id = c->bos_token_id;
		cc.eos_token_id = c->eos_token_id;
		cc.num_labels = c->num_labels;
		cc.is_decoder = c->is_decoder;
		cc.layer_norm_eps = c->layer_norm_eps;
		memcpy(img + src->config_offset, &cc, sizeof(cc));
	}
	for (size_t i = 0; i < src->num_slots; i++)
	{
		image_tensor t;

		memset(&t, 0, sizeof(t));
		t.role = src->slots[i].role;
		t.layer = src->slots[i].layer;
		t.offset = src->slots[i].offset;
		t.count = src->slots[i].count;
		t.format = (uint32_t) src->slots[i].format;
		t.bytes = src->slots[i].bytes;
		memcpy(img + src->table_offset + i * sizeof(image_tensor), &t, sizeof(t));
	}
	if (c->num_labels > 0)
	{
		uint64_t	so = src->labels_offset + (uint64_t) c->num_labels * 8;

		for (int32_t i = 0; i < c->num_labels; i++)
		{
			size_t		n = strlen(src->mc->labels[i]) + 1;

			memcpy(img + src->labels_offset + (uint64_t) i * 8, &so, 8);
			memcpy(img + so, src->mc->labels[i], n);
			so += n;
		}
	}

	/* tensors */
	for (size_t i = 0; i < src->num_slots; i++)
	{
		const slot *s = &src->slots[i];
		const cb_tensor_info *t = s->tensor;
		uint64_t	end;
		uint64_t	next;
		cb_file_reader r;
		cb_status	st;
		unsigned char *dst;

		if (t == NULL)
			continue;
		r.fd = -1;
		dst = img + s->offset;
		if (s->format == CB_MATRIX_BF16_PACKED || s->format == CB_MATRIX_INT8_PACKED)
			st = write_packed(src, s, dst, err);
		else
		{
			st = open_checked(&src->weights.files[t->file], src->root, &r, err);
			if (st != CB_OK)
				return st;
			size_t		rows = t->ndim == 2 ? (size_t) t->shape[0] : 1,
						cols = t->ndim == 2 ? (size_t) t->shape[1] : (size_t) t->numel;

			if (t->dtype == CB_TENSOR_F32 || s->format != CB_MATRIX_F32)
				st = read_oriented(t, &r, rows, cols, dst, err);	/* as stored */
			else
			{
				st = read_oriented(t, &r, rows, cols, dst + s->count * 2, err);
				if (st == CB_OK)
					widen_in_place(dst, s->count, t->dtype == CB_TENSOR_BF16);
			}
			cb_file_reader_close(&r);
		}
		if (st != CB_OK)
			return st;
		/* zero the padding up to the next tensor (or the end) */
		end = s->offset + s->bytes;
		next = align_up(end, CB_MODEL_IMAGE_ALIGN);
		if (next > src->total_size)
			next = src->total_size;
		memset(img + end, 0, (size_t) (next - end));
		cb_check_interrupts();
	}
	return CB_OK;
}

