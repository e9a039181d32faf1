/*
 * model_segment.h — a model's shared memory segment: how it is laid out, and
 * how it is built from a Hugging Face model directory (model_segment.c).
 *
 *     SegmentHeader | tokenizer image | model image   (images 64-byte aligned)
 *
 * Both images are position independent, so each backend maps the segment at
 * whatever address it gets and uses it in place.
 */
#ifndef MODEL_SEGMENT_H
#define MODEL_SEGMENT_H

#include "postgres.h"

#include "storage/dsm.h"

#include "config.h"

#define SEGMENT_MAGIC	0x43424d53	/* "CBMS" */
#define SEGMENT_VERSION 2

typedef struct SegmentHeader
{
	uint32		magic;
	uint32		version;
	uint64		generation;		/* the registry slot's, set when it is published */
	uint64		tokenizer_offset;
	uint64		tokenizer_length;
	uint64		model_offset;
	uint64		model_length;
} SegmentHeader;

/*
 * Read the model directory `path` (already resolved by
 * camembert_resolve_model_path) and build both images into a new DSM segment,
 * the model's weight matrices in `precision` (model.h: what camembert_load's
 * dtype asks).  Returns the segment (attached, owned by the current resource
 * owner, not yet pinned), its size, and the model's architecture and stored
 * dtype (from its configuration).  ERROR on any problem with the files.
 */
extern dsm_segment *camembert_build_segment(const char *path, cb_precision precision,
											Size *size_out,
											cb_architecture *architecture_out,
											cb_dtype *dtype_out);

/* Resolve a path as camembert_load does (absolute, inside camembert.model_dir). */
extern char *camembert_resolve_model_path(const char *path);

#endif							/* MODEL_SEGMENT_H */
