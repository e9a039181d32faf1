/*
 * model_image.c — viewing a model image as a cb_model (see model_image.h), and
 * cb_model_load_dir: a directory to an image to a cb_model in one call.
 *
 * A model source (model_source.c) plans the image, model_convert.c writes it; the
 * roles and the image format the three share: model_image_internal.h.  Which weight
 * files of the directory are read, and reading them into one tensor list: model_files.c.
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

/* ---- view ----------------------------------------------------------------- */

void
cb_model_view_release(cb_model *model)
{
	if (model == NULL)
		return;
	cb_free(model->layers);
	cb_free((void *) model->labels);
	cb_free(model->owned_image);
	memset(model, 0, sizeof(*model));
}

static bool
range_ok(uint64_t off, uint64_t len, uint64_t total)
{
	return off <= total && len <= total - off;
}

cb_status
cb_model_view(const void *image, size_t image_len, cb_model *out, cb_error *err)
{
	const unsigned char *img = image;
	image_header h;
	cb_config	c;
	cb_status	st;
	uint8_t    *seen = NULL;
	cb_layer_weights *layers = NULL;
	const char **labels = NULL;
	uint64_t	word_offset = UINT64_MAX;
	uint64_t	params = 0;
	uint64_t	bytes = 0;

	memset(out, 0, sizeof(*out));
	if (image == NULL)
		return cb_set_error(err, CB_ERR_INVALID, "NULL model image");
	if (((uintptr_t) image & 7) != 0)
		return cb_set_error(err, CB_ERR_INVALID, "model image must be 8-byte aligned");
	if (image_len < sizeof(h))
		return cb_set_error(err, CB_ERR_FORMAT, "model image of %zu bytes is too short for its header", image_len);
	memcpy(&h, img, sizeof(h));
	if (memcmp(h.magic, CB_MODEL_IMAGE_MAGIC, 8) != 0)
		return cb_set_error(err, CB_ERR_FORMAT, "model image: bad magic (not a model image)");
	if (h.version != CB_MODEL_IMAGE_VERSION || h.header_size != sizeof(h) || h.config_size != sizeof(cb_config))
		return cb_set_error(err, CB_ERR_FORMAT,
							"model image: version %u (header %u bytes, config %u bytes) does not match this build "
							"(version %d, %zu, %zu)", h.version, h.header_size, h.config_size,
							CB_MODEL_IMAGE_VERSION, sizeof(h), sizeof(cb_config));
	if (h.total_size > image_len)
		return cb_set_error(err, CB_ERR_FORMAT, "model image: header says %llu bytes but only %zu are mapped",
							(unsigned long long) h.total_size, image_len);
	if (!range_ok(h.config_offset, sizeof(cb_config), h.total_size) || (h.config_offset & 7) ||
		!range_ok(h.table_offset, (uint64_t) h.num_tensors * sizeof(image_tensor), h.total_size) ||
		(h.table_offset & 7) ||
		!range_ok(h.labels_offset, h.labels_size, h.total_size) || (h.labels_offset & 7) ||
		!range_ok(h.weights_offset, h.weights_size, h.total_size))
		return cb_set_error(err, CB_ERR_FORMAT, "model image: a section lies outside the image");
	memcpy(&c, img + h.config_offset, sizeof(c));
	if ((st = cb_config_validate(&c, "model image", err)) != CB_OK)
		return st;
	if (h.num_tensors != slot_count(&c))
		return cb_set_error(err, CB_ERR_FORMAT, "model image: %u tensors, the configuration needs %zu",
							h.num_tensors, slot_count(&c));
	if (h.num_labels != (uint32_t) c.num_labels)
		return cb_set_error(err, CB_ERR_FORMAT, "model image: %u labels but num_labels is %d",
							h.num_labels, c.num_labels);

	seen = cb_calloc((size_t) NUM_ROLES * (size_t) c.num_hidden_layers, 1);
	layers = cb_calloc((size_t) c.num_hidden_layers, sizeof(cb_layer_weights));
	if (seen == NULL || layers == NULL)
	{
		st = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < h.num_tensors; i++)
	{
		image_tensor t;
		const role_def *r;

		memcpy(&t, img + h.table_offset + (uint64_t) i * sizeof(t), sizeof(t));
		if (t.role >= NUM_ROLES)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "model image: tensor %u has unknown role %u", i, t.role);
			goto fail;
		}
		r = &roles[t.role];
		if (!role_used(r, c.architecture) ||
			t.layer >= (r->where == IN_LAYER ? (uint32_t) c.num_hidden_layers : 1u) ||
			seen[(size_t) t.role * (size_t) c.num_hidden_layers + t.layer]++)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "model image: tensor %u (%s, layer %u) is unexpected or repeated",
							  i, r->name, t.layer);
			goto fail;
		}
		{
			int64_t		shape[2];
			uint64_t	want_bytes;

			(void) expected_shape(r, &c, shape);
			want_bytes = !r->matrix ? t.count * 4 :
				t.format < CB_MATRIX_NUM_FORMATS ?
				cb_matrix_blob_bytes((cb_matrix_format) t.format, (size_t) shape[0], (size_t) shape[1]) : 0;
			if (t.count != expected_numel(r, &c) || t.count > (UINT64_MAX / 8) ||
				(!r->matrix && t.format != CB_MATRIX_F32) || want_bytes == 0 || t.bytes != want_bytes ||
				!range_ok(t.offset, t.bytes, h.total_size) || t.offset < h.weights_offset ||
				(t.offset % CB_MODEL_IMAGE_ALIGN) != 0)
			{
				st = cb_set_error(err, CB_ERR_FORMAT,
								  "model image: tensor %u (%s, layer %u): %llu elements (format %u, %llu bytes) "
								  "at offset %llu do not fit (expected %llu elements inside %llu bytes)",
								  i, r->name, t.layer, (unsigned long long) t.count, t.format,
								  (unsigned long long) t.bytes, (unsigned long long) t.offset,
								  (unsigned long long) expected_numel(r, &c), (unsigned long long) h.total_size);
				goto fail;
			}
			if (t.role == ROLE_WORD_EMB)
				word_offset = t.offset;
			if (t.role == ROLE_LM_DECODER_W && t.offset == word_offset)
				;				/* tied: counted once */
			else
			{
				params += t.count;
				bytes += t.bytes;
			}
			if (r->matrix && (t.format == CB_MATRIX_BF16_PACKED || t.format == CB_MATRIX_INT8_PACKED) &&
				((uintptr_t) (img + t.offset) & (CB_MODEL_IMAGE_ALIGN - 1)) != 0)
			{
				/* their kernels load whole aligned vectors */
				st = cb_set_error(err, CB_ERR_INVALID,
								  "model image: a %s image must be %d-byte aligned in memory",
								  cb_precision_name(c.precision), CB_MODEL_IMAGE_ALIGN);
				goto fail;
			}
			if (r->matrix)
			{
				cb_matrix	m = cb_matrix_view((cb_matrix_format) t.format, (size_t) shape[0],
											   (size_t) shape[1], img + t.offset);

				if (r->where == IN_LAYER)
					memcpy((char *) &layers[t.layer] + r->field, &m, sizeof(m));
				else
					memcpy((char *) out + r->field, &m, sizeof(m));
			}
			else
			{
				const float *p = (const float *) (img + t.offset);

				if (r->where == IN_LAYER)
					memcpy((char *) &layers[t.layer] + r->field, &p, sizeof(p));
				else
					memcpy((char *) out + r->field, &p, sizeof(p));
			}
		}
	}
	if (params != h.parameter_count)
	{
		st = cb_set_error(err, CB_ERR_FORMAT, "model image: parameter count %llu does not match its tensors (%llu)",
						  (unsigned long long) h.parameter_count, (unsigned long long) params);
		goto fail;
	}

	if (c.num_labels > 0)
	{
		uint64_t	strings = h.labels_offset + (uint64_t) c.num_labels * 8;
		uint64_t	lend = h.labels_offset + h.labels_size;

		if ((uint64_t) c.num_labels * 8 > h.labels_size)
		{
			st = cb_set_error(err, CB_ERR_FORMAT, "model image: label table does not fit");
			goto fail;
		}
		labels = cb_calloc((size_t) c.num_labels, sizeof(char *));
		if (labels == NULL)
		{
			st = cb_set_error(err, CB_ERR_NOMEM, "out of memory");
			goto fail;
		}
		for (int32_t i = 0; i < c.num_labels; i++)
		{
			uint64_t	so;

			memcpy(&so, img + h.labels_offset + (uint64_t) i * 8, 8);
			if (so < strings || so >= lend || memchr(img + so, '\0', (size_t) (lend - so)) == NULL)
			{
				st = cb_set_error(err, CB_ERR_FORMAT, "model image: label %d lies outside the label area", i);
				goto fail;
			}
			labels[i] = (const char *) (img + so);
		}
	}

	cb_free(seen);
	out->config = c;
	out->layers = layers;
	out->labels = labels;
	out->parameter_count = params;
	out->weight_bytes = bytes;
	return CB_OK;

fail:
	cb_free(seen);
	cb_free(layers);
	cb_free(labels);
	memset(out, 0, sizeof(*out));
	return st;
}

cb_status
cb_model_load_dir(const char *dir, cb_model *model, cb_error *err)
{
	return cb_model_load_dir_precision(dir, CB_PRECISION_AUTO, model, err);
}

cb_status
cb_model_load_dir_precision(const char *dir, cb_precision precision, cb_model *model,
							cb_error *err)
{
	cb_model_source *src;
	cb_status	st;
	void	   *image,
			   *block;
	size_t		size;

	memset(model, 0, sizeof(*model));
	st = cb_model_source_open(dir, &src, err);
	if (st != CB_OK)
		return st;
	st = cb_model_source_set_precision(src, precision, err);
	if (st != CB_OK)
	{
		cb_model_source_close(src);
		return st;
	}
	size = cb_model_source_image_size(src);
	block = size <= SIZE_MAX - CB_MODEL_IMAGE_ALIGN ? cb_malloc(size + CB_MODEL_IMAGE_ALIGN) : NULL;
	if (block == NULL)
	{
		cb_model_source_close(src);
		return cb_set_error(err, CB_ERR_NOMEM, "%s: out of memory for a %zu-byte model image", dir, size);
	}
	image = (void *) (((uintptr_t) block + CB_MODEL_IMAGE_ALIGN - 1) & ~(uintptr_t) (CB_MODEL_IMAGE_ALIGN - 1));
	st = cb_model_source_write_image(src, image, size, err);
	cb_model_source_close(src);
	if (st == CB_OK)
		st = cb_model_view(image, size, model, err);
	if (st != CB_OK)
	{
		cb_free(block);
		return st;
	}
	model->owned_image = block;
	return CB_OK;
}
