/*
 * model_segment.c — build a model's shared memory segment from a Hugging Face
 * model directory on the server's disk (see model_segment.h).
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "miscadmin.h"
#include "storage/dsm.h"

#include "camembert.h"
#include "file_io.h"
#include "model_image.h"
#include "model_segment.h"
#include "tf_h5.h"
#include "tokenizer_dir.h"
#include "tokenizer.h"

#define IMAGE_ALIGN		64

char *
camembert_resolve_model_path(const char *path)
{
	char		resolved[PATH_MAX];
	char		root[PATH_MAX];
	bool		confined = camembert_model_dir != NULL && camembert_model_dir[0] != '\0';
	char	   *joined;

	if (path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model path is empty"),
				 errhint("Give the absolute path of a Hugging Face model directory on the server.")));

	if (is_absolute_path(path))
		joined = pstrdup(path);
	else if (confined)
		joined = psprintf("%s/%s", camembert_model_dir, path);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model path \"%s\" is not absolute", path),
				 errhint("Give an absolute path, or set camembert.model_dir to resolve relative ones.")));

	if (realpath(joined, resolved) == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not access model directory \"%s\": %m", joined),
				 errhint("The path is read by the database server, as the operating system user that runs it.")));

	if (confined)
	{
		size_t		rootlen;

		if (realpath(camembert_model_dir, root) == NULL)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not access camembert.model_dir \"%s\": %m", camembert_model_dir)));
		rootlen = strlen(root);
		if (!(strncmp(resolved, root, rootlen) == 0 &&
			  (resolved[rootlen] == '/' || resolved[rootlen] == '\0' || strcmp(root, "/") == 0)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("model path \"%s\" is outside camembert.model_dir", path),
					 errhint("camembert.model_dir is \"%s\".", camembert_model_dir)));
	}
	return pstrdup(resolved);
}

/* camembert.model_dir if set: every file of a model must lie below it. */
static const char *
confinement_root(void)
{
	return camembert_model_dir != NULL && camembert_model_dir[0] != '\0' ? camembert_model_dir : NULL;
}

/* Hint for a core error about a model's files. */
static const char *
files_hint(const cb_error *err, const char *dflt)
{
	if (err->status == CB_ERR_ACCESS)
		return psprintf("camembert.model_dir is \"%s\": the files of a model directory, and the targets "
						"of their symbolic links, must lie below it.", camembert_model_dir);
	return dflt;
}

/*
 * cb_model_source_open_in; a cancel while a tf_model.h5 is read leaves its
 * reader process (src/core/tf_h5.c) behind: end it before the error goes on.
 */
static cb_status
open_source(const char *path, cb_model_source **source, cb_error *err)
{
	cb_status	st = CB_OK;

	PG_TRY();
	{
		st = cb_model_source_open_in(path, confinement_root(), source, err);
	}
	PG_CATCH();
	{
		cb_tf_h5_abandon();
		PG_RE_THROW();
	}
	PG_END_TRY();
	return st;
}

/*
 * Build both images into a new DSM segment, the model's weights in
 * `precision`.  Returns the segment (attached, owned by the current resource
 * owner, not yet pinned).
 */
dsm_segment *
camembert_build_segment(const char *path, cb_precision precision, Size *size_out,
						cb_architecture *architecture_out, cb_dtype *dtype_out)
{
	cb_error	err;
	const char *tok_file;
	void	   *tok_image;
	size_t		tok_len;
	cb_model_source *source = NULL;
	dsm_segment *volatile seg = NULL;	/* set in PG_TRY, returned after it */
	volatile cb_model_source *vsource;

	/* the tokenizer's kind comes from the directory (tokenizer_dir.h) */
	if (cb_tokenizer_build_dir(path, confinement_root(), &tok_image, &tok_len, &tok_file, &err) != CB_OK)
		camembert_report_core_error(&err, err.status == CB_ERR_IO || err.status == CB_ERR_ACCESS ? NULL :
									psprintf("%s/%s", path, tok_file),
									files_hint(&err, "A model directory holds config.json, model.safetensors, pytorch_model.bin or tf_model.h5, "
											   "and sentencepiece.bpe.model (CamemBERT, XLM-RoBERTa) or vocab.json and "
											   "merges.txt (RoBERTa)."));

	/* the core's messages name the directory and file themselves */
	if (open_source(path, &source, &err) != CB_OK)
		camembert_report_core_error(&err, NULL,
									files_hint(&err, "A model directory holds config.json and model.safetensors (or sharded safetensors with model.safetensors.index.json, pytorch_model.bin, or TensorFlow's tf_model.h5)."));
	vsource = source;

	PG_TRY();
	{
		size_t		model_len;
		Size		tok_off = TYPEALIGN(IMAGE_ALIGN, sizeof(SegmentHeader));
		Size		model_off;
		Size		total;
		SegmentHeader *hdr;
		char	   *base;

		/* the size of the image depends on its precision */
		if (cb_model_source_set_precision(source, precision, &err) != CB_OK)
			camembert_report_core_error(&err, NULL, "The dtype is one of " CB_PRECISION_NAMES ".");
		model_len = cb_model_source_image_size(source);
		model_off = TYPEALIGN(IMAGE_ALIGN, add_size(tok_off, tok_len));
		total = add_size(model_off, model_len);

		seg = dsm_create(total, DSM_CREATE_NULL_IF_MAXSEGMENTS);
		if (seg == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("too many dynamic shared memory segments to load model \"%s\"", path)));
		base = dsm_segment_address(seg);
		hdr = (SegmentHeader *) base;
		memset(hdr, 0, tok_off);
		hdr->magic = SEGMENT_MAGIC;
		hdr->version = SEGMENT_VERSION;
		hdr->tokenizer_offset = tok_off;
		hdr->tokenizer_length = tok_len;
		hdr->model_offset = model_off;
		hdr->model_length = model_len;
		memcpy(base + tok_off, tok_image, tok_len);
		if (cb_model_source_write_image(source, base + model_off, model_len, &err) != CB_OK)
			camembert_report_core_error(&err, NULL, files_hint(&err, NULL));
		*size_out = total;
		*architecture_out = cb_model_source_config(source)->architecture;
		*dtype_out = cb_model_source_config(source)->stored_dtype;
	}
	PG_FINALLY();
	{
		cb_model_source_close((cb_model_source *) vsource);
	}
	PG_END_TRY();
	cb_free(tok_image);
	return seg;
}

