/*
 * sp_model.h — what a SentencePiece model file (sentencepiece.bpe.model)
 * holds, read with our own protobuf wire-format reader.
 *
 * The file is a serialized sentencepiece.ModelProto (sentencepiece_model.proto,
 * proto2):
 *
 *   ModelProto      1 pieces (repeated SentencePiece)   2 trainer_spec
 *                   3 normalizer_spec   4 self_test_data   5 denormalizer_spec
 *   SentencePiece   1 piece (string)   2 score (float)   3 type (enum, NORMAL)
 *   TrainerSpec     3 model_type (enum, UNIGRAM)  24 treat_whitespace_as_suffix
 *                   35 byte_fallback  40-43 unk/bos/eos/pad_id  44 unk_surface
 *                   45-48 unk/bos/eos/pad_piece
 *   NormalizerSpec  1 name  2 precompiled_charsmap  3 add_dummy_prefix (true)
 *                   4 remove_extra_whitespaces (true)  5 escape_whitespaces (true)
 *
 * Parsing follows protobuf's rules: unknown fields (any wire type, groups
 * included) are skipped; a known field with an unexpected wire type is
 * treated as unknown; the last value of a repeated scalar wins; a message
 * field that occurs twice is merged; an enum value the schema does not know
 * leaves the field as it was (proto2 closed enums).  Every varint, length and
 * nesting level is checked: malformed input gives CB_ERR_FORMAT.
 *
 * A cb_sp_model does not copy the file: piece strings and the charsmap point
 * into the caller's bytes, which must outlive it.
 */
#ifndef CB_SP_MODEL_H
#define CB_SP_MODEL_H

#include "cb_common.h"

/* SentencePiece piece types (ModelProto.SentencePiece.Type). */
enum
{
	CB_SP_NORMAL = 1,
	CB_SP_UNKNOWN = 2,
	CB_SP_CONTROL = 3,
	CB_SP_USER_DEFINED = 4,
	CB_SP_UNUSED = 5,
	CB_SP_BYTE = 6
};

/* TrainerSpec.ModelType */
enum
{
	CB_SP_MODEL_UNIGRAM = 1,
	CB_SP_MODEL_BPE = 2,
	CB_SP_MODEL_WORD = 3,
	CB_SP_MODEL_CHAR = 4
};

#define CB_SP_MAX_MODEL_BYTES ((size_t) 1 << 30)	/* 1 GiB */
#define CB_SP_MAX_PIECES (1 << 24)
#define CB_SP_MAX_PIECE_BYTES 65535

typedef struct cb_sp_bytes
{
	const uint8_t *data;		/* into the model bytes (NULL when absent) */
	size_t		len;
	bool		present;
} cb_sp_bytes;

typedef struct cb_sp_piece
{
	cb_sp_bytes piece;
	float		score;
	int			type;			/* CB_SP_* */
} cb_sp_piece;

typedef struct cb_sp_model
{
	cb_sp_piece *pieces;		/* cb_malloc'ed */
	size_t		n_pieces;

	/* TrainerSpec */
	bool		has_trainer_spec;
	int			model_type;
	bool		byte_fallback;
	bool		treat_whitespace_as_suffix;
	int32_t		unk_id,
				bos_id,
				eos_id,
				pad_id;
	cb_sp_bytes unk_surface;	/* absent: " \xE2\x81\x87 " */

	/* NormalizerSpec */
	cb_sp_bytes normalizer_name;
	cb_sp_bytes precompiled_charsmap;
	bool		add_dummy_prefix;
	bool		remove_extra_whitespaces;
	bool		escape_whitespaces;

	/* DenormalizerSpec: only its charsmap matters (not implemented). */
	cb_sp_bytes denormalizer_charsmap;
} cb_sp_model;

/* Parse `len` bytes; on success *model must be released with cb_sp_model_free. */
cb_status	cb_sp_model_parse(const uint8_t *bytes, size_t len, cb_sp_model *model, cb_error *err);
void		cb_sp_model_free(cb_sp_model *model);

#endif							/* CB_SP_MODEL_H */
