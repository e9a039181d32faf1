/*
 * sp_model.c — protobuf wire-format reader for sentencepiece.ModelProto.
 *
 * Wire format: a message is a sequence of (tag, value); tag = varint
 * (field_number << 3 | wire_type); wire types 0 varint, 1 fixed64,
 * 2 length-delimited, 3/4 start/end group (deprecated), 5 fixed32.
 */
#include "sp_model.h"

#include <string.h>

#define WT_VARINT 0
#define WT_FIXED64 1
#define WT_LEN 2
#define WT_SGROUP 3
#define WT_EGROUP 4
#define WT_FIXED32 5

#define MAX_GROUP_DEPTH 64

typedef struct pb_reader
{
	const uint8_t *base;		/* start of the whole file, for messages */
	const uint8_t *p;
	const uint8_t *end;
	const char *what;			/* message being read, for messages */
} pb_reader;

static size_t
pb_offset(const pb_reader *r)
{
	return (size_t) (r->p - r->base);
}

static cb_status
pb_fail(const pb_reader *r, cb_error *err, const char *problem)
{
	return cb_set_error(err, CB_ERR_FORMAT,
						"sentencepiece model: %s in %s at byte offset %zu",
						problem, r->what, pb_offset(r));
}

static cb_status
pb_varint(pb_reader *r, uint64_t *out, cb_error *err)
{
	uint64_t	v = 0;

	for (int i = 0; i < 10; i++)
	{
		if (r->p >= r->end)
			return pb_fail(r, err, "truncated varint");
		uint8_t		b = *r->p++;

		if (i == 9 && b > 1)
			return pb_fail(r, err, "varint longer than 64 bits");
		v |= (uint64_t) (b & 0x7F) << (7 * i);
		if ((b & 0x80) == 0)
		{
			*out = v;
			return CB_OK;
		}
	}
	return pb_fail(r, err, "varint longer than 10 bytes");
}

static cb_status
pb_tag(pb_reader *r, uint32_t *field, int *wire_type, cb_error *err)
{
	uint64_t	tag;
	cb_status	st = pb_varint(r, &tag, err);

	if (st != CB_OK)
		return st;
	if (tag > UINT32_MAX || (tag >> 3) == 0)
		return pb_fail(r, err, "invalid field tag");
	*field = (uint32_t) (tag >> 3);
	*wire_type = (int) (tag & 7);
	if (*wire_type > WT_FIXED32)
		return pb_fail(r, err, "invalid wire type");
	return CB_OK;
}

/* Read a length-delimited payload into a sub-reader. */
static cb_status
pb_len(pb_reader *r, pb_reader *sub, const char *what, cb_error *err)
{
	uint64_t	n;
	cb_status	st = pb_varint(r, &n, err);

	if (st != CB_OK)
		return st;
	if (n > (uint64_t) (r->end - r->p))
		return pb_fail(r, err, "length-delimited field runs past its enclosing message");
	sub->base = r->base;
	sub->p = r->p;
	sub->end = r->p + n;
	sub->what = what;
	r->p += n;
	return CB_OK;
}

static cb_status pb_skip(pb_reader *r, uint32_t field, int wire_type, int depth, cb_error *err);

static cb_status
pb_skip_group(pb_reader *r, uint32_t group_field, int depth, cb_error *err)
{
	if (depth >= MAX_GROUP_DEPTH)
		return pb_fail(r, err, "groups nested too deeply");
	for (;;)
	{
		uint32_t	field;
		int			wt;
		cb_status	st;

		if (r->p >= r->end)
			return pb_fail(r, err, "unterminated group");
		st = pb_tag(r, &field, &wt, err);
		if (st != CB_OK)
			return st;
		if (wt == WT_EGROUP)
		{
			if (field != group_field)
				return pb_fail(r, err, "mismatched end-group tag");
			return CB_OK;
		}
		st = pb_skip(r, field, wt, depth + 1, err);
		if (st != CB_OK)
			return st;
	}
}

static cb_status
pb_skip(pb_reader *r, uint32_t field, int wire_type, int depth, cb_error *err)
{
	uint64_t	v;
	pb_reader	sub;

	switch (wire_type)
	{
		case WT_VARINT:
			return pb_varint(r, &v, err);
		case WT_FIXED64:
			if (r->end - r->p < 8)
				return pb_fail(r, err, "truncated fixed64 field");
			r->p += 8;
			return CB_OK;
		case WT_FIXED32:
			if (r->end - r->p < 4)
				return pb_fail(r, err, "truncated fixed32 field");
			r->p += 4;
			return CB_OK;
		case WT_LEN:
			return pb_len(r, &sub, r->what, err);
		case WT_SGROUP:
			return pb_skip_group(r, field, depth, err);
		default:
			return pb_fail(r, err, "unexpected end-group tag");
	}
}

static cb_status
pb_fixed32(pb_reader *r, uint32_t *out, cb_error *err)
{
	if (r->end - r->p < 4)
		return pb_fail(r, err, "truncated fixed32 field");
	*out = cb_read_le32(r->p);
	r->p += 4;
	return CB_OK;
}

/* Known field, wanted wire type: parse; other wire type: skip as unknown. */
#define EXPECT(wt_wanted) \
	if (wt != (wt_wanted)) { st = pb_skip(r, field, wt, 0, err); break; }

static cb_status
parse_piece(pb_reader *r, cb_sp_piece *piece, cb_error *err)
{
	while (r->p < r->end)
	{
		uint32_t	field;
		int			wt;
		uint64_t	v;
		uint32_t	bits = 0;
		pb_reader	sub;
		cb_status	st = pb_tag(r, &field, &wt, err);

		if (st != CB_OK)
			return st;
		switch (field)
		{
			case 1:				/* piece */
				EXPECT(WT_LEN);
				st = pb_len(r, &sub, "SentencePiece.piece", err);
				if (st == CB_OK)
				{
					piece->piece.data = sub.p;
					piece->piece.len = (size_t) (sub.end - sub.p);
					piece->piece.present = true;
				}
				break;
			case 2:				/* score */
				EXPECT(WT_FIXED32);
				st = pb_fixed32(r, &bits, err);
				if (st == CB_OK)
					memcpy(&piece->score, &bits, sizeof(float));
				break;
			case 3:				/* type */
				EXPECT(WT_VARINT);
				st = pb_varint(r, &v, err);
				if (st == CB_OK)
				{
					int32_t		t = (int32_t) (uint32_t) v;

					if (t >= CB_SP_NORMAL && t <= CB_SP_BYTE)
						piece->type = t;
				}
				break;
			default:
				st = pb_skip(r, field, wt, 0, err);
				break;
		}
		if (st != CB_OK)
			return st;
	}
	return CB_OK;
}

static cb_status
parse_trainer_spec(pb_reader *r, cb_sp_model *m, cb_error *err)
{
	while (r->p < r->end)
	{
		uint32_t	field;
		int			wt;
		uint64_t	v;
		pb_reader	sub;
		cb_status	st = pb_tag(r, &field, &wt, err);

		if (st != CB_OK)
			return st;
		switch (field)
		{
			case 3:				/* model_type */
				EXPECT(WT_VARINT);
				st = pb_varint(r, &v, err);
				if (st == CB_OK)
				{
					int32_t		t = (int32_t) (uint32_t) v;

					if (t >= CB_SP_MODEL_UNIGRAM && t <= CB_SP_MODEL_CHAR)
						m->model_type = t;
				}
				break;
			case 24:			/* treat_whitespace_as_suffix */
			case 35:			/* byte_fallback */
				EXPECT(WT_VARINT);
				st = pb_varint(r, &v, err);
				if (st == CB_OK)
				{
					if (field == 24)
						m->treat_whitespace_as_suffix = v != 0;
					else
						m->byte_fallback = v != 0;
				}
				break;
			case 40:
			case 41:
			case 42:
			case 43:			/* unk_id, bos_id, eos_id, pad_id */
				EXPECT(WT_VARINT);
				st = pb_varint(r, &v, err);
				if (st == CB_OK)
				{
					int32_t		id = (int32_t) (uint32_t) v;

					if (field == 40)
						m->unk_id = id;
					else if (field == 41)
						m->bos_id = id;
					else if (field == 42)
						m->eos_id = id;
					else
						m->pad_id = id;
				}
				break;
			case 44:			/* unk_surface */
				EXPECT(WT_LEN);
				st = pb_len(r, &sub, "TrainerSpec.unk_surface", err);
				if (st == CB_OK)
				{
					m->unk_surface.data = sub.p;
					m->unk_surface.len = (size_t) (sub.end - sub.p);
					m->unk_surface.present = true;
				}
				break;
			default:
				st = pb_skip(r, field, wt, 0, err);
				break;
		}
		if (st != CB_OK)
			return st;
	}
	return CB_OK;
}

typedef struct normalizer_fields
{
	cb_sp_bytes name;
	cb_sp_bytes charsmap;
	bool		add_dummy_prefix;
	bool		remove_extra_whitespaces;
	bool		escape_whitespaces;
} normalizer_fields;

static cb_status
parse_normalizer_spec(pb_reader *r, normalizer_fields *n, cb_error *err)
{
	while (r->p < r->end)
	{
		uint32_t	field;
		int			wt;
		uint64_t	v;
		pb_reader	sub;
		cb_status	st = pb_tag(r, &field, &wt, err);

		if (st != CB_OK)
			return st;
		switch (field)
		{
			case 1:				/* name */
			case 2:				/* precompiled_charsmap */
				EXPECT(WT_LEN);
				st = pb_len(r, &sub, field == 1 ? "NormalizerSpec.name" :
							"NormalizerSpec.precompiled_charsmap", err);
				if (st == CB_OK)
				{
					cb_sp_bytes *dst = field == 1 ? &n->name : &n->charsmap;

					dst->data = sub.p;
					dst->len = (size_t) (sub.end - sub.p);
					dst->present = true;
				}
				break;
			case 3:
			case 4:
			case 5:
				EXPECT(WT_VARINT);
				st = pb_varint(r, &v, err);
				if (st == CB_OK)
				{
					if (field == 3)
						n->add_dummy_prefix = v != 0;
					else if (field == 4)
						n->remove_extra_whitespaces = v != 0;
					else
						n->escape_whitespaces = v != 0;
				}
				break;
			default:
				st = pb_skip(r, field, wt, 0, err);
				break;
		}
		if (st != CB_OK)
			return st;
	}
	return CB_OK;
}

static void
normalizer_defaults(normalizer_fields *n)
{
	memset(n, 0, sizeof(*n));
	n->add_dummy_prefix = true;
	n->remove_extra_whitespaces = true;
	n->escape_whitespaces = true;
}

static cb_status
parse_model(pb_reader *r, cb_sp_model *m, bool fill_pieces, cb_error *err)
{
	normalizer_fields norm,
				denorm;
	size_t		n = 0;

	normalizer_defaults(&norm);
	normalizer_defaults(&denorm);
	while (r->p < r->end)
	{
		uint32_t	field;
		int			wt;
		pb_reader	sub;
		cb_status	st = pb_tag(r, &field, &wt, err);

		if (st != CB_OK)
			return st;
		switch (field)
		{
			case 1:				/* pieces */
				EXPECT(WT_LEN);
				st = pb_len(r, &sub, "ModelProto.pieces", err);
				if (st != CB_OK)
					break;
				if (n >= CB_SP_MAX_PIECES)
					return cb_set_error(err, CB_ERR_LIMIT,
										"sentencepiece model: more than %d pieces", CB_SP_MAX_PIECES);
				if (fill_pieces)
				{
					cb_sp_piece *p = &m->pieces[n];

					memset(p, 0, sizeof(*p));
					p->type = CB_SP_NORMAL;
					st = parse_piece(&sub, p, err);
				}
				n++;
				break;
			case 2:				/* trainer_spec (messages that occur twice merge) */
				EXPECT(WT_LEN);
				st = pb_len(r, &sub, "ModelProto.trainer_spec", err);
				if (st == CB_OK && fill_pieces)
				{
					m->has_trainer_spec = true;
					st = parse_trainer_spec(&sub, m, err);
				}
				break;
			case 3:				/* normalizer_spec */
			case 5:				/* denormalizer_spec */
				EXPECT(WT_LEN);
				st = pb_len(r, &sub, field == 3 ? "ModelProto.normalizer_spec" :
							"ModelProto.denormalizer_spec", err);
				if (st == CB_OK && fill_pieces)
					st = parse_normalizer_spec(&sub, field == 3 ? &norm : &denorm, err);
				break;
			default:			/* self_test_data (4) and anything unknown */
				st = pb_skip(r, field, wt, 0, err);
				break;
		}
		if (st != CB_OK)
			return st;
	}
	if (!fill_pieces)
	{
		m->n_pieces = n;
		return CB_OK;
	}
	m->normalizer_name = norm.name;
	m->precompiled_charsmap = norm.charsmap;
	m->add_dummy_prefix = norm.add_dummy_prefix;
	m->remove_extra_whitespaces = norm.remove_extra_whitespaces;
	m->escape_whitespaces = norm.escape_whitespaces;
	m->denormalizer_charsmap = denorm.charsmap;
	return CB_OK;
}

cb_status
cb_sp_model_parse(const uint8_t *bytes, size_t len, cb_sp_model *model, cb_error *err)
{
	pb_reader	r;
	cb_status	st;

	memset(model, 0, sizeof(*model));
	if (bytes == NULL && len > 0)
		return cb_set_error(err, CB_ERR_INVALID, "sentencepiece model: NULL buffer");
	if (len > CB_SP_MAX_MODEL_BYTES)
		return cb_set_error(err, CB_ERR_LIMIT,
							"sentencepiece model: %zu bytes, over the %zu-byte limit",
							len, CB_SP_MAX_MODEL_BYTES);
	if (len == 0)
		return cb_set_error(err, CB_ERR_FORMAT, "sentencepiece model: empty file");

	/* Pass 1: validate the top level and count the pieces. */
	r.base = bytes;
	r.p = bytes;
	r.end = bytes + len;
	r.what = "ModelProto";
	st = parse_model(&r, model, false, err);
	if (st != CB_OK)
		return st;

	/* Pass 2: fill. */
	size_t		n = model->n_pieces;

	model->model_type = CB_SP_MODEL_UNIGRAM;
	model->unk_id = 0;
	model->bos_id = 1;
	model->eos_id = 2;
	model->pad_id = -1;
	if (n > 0)
	{
		model->pieces = cb_calloc(n, sizeof(cb_sp_piece));
		if (model->pieces == NULL)
			return cb_set_error(err, CB_ERR_NOMEM,
								"sentencepiece model: cannot allocate %zu pieces", n);
	}
	r.p = bytes;
	st = parse_model(&r, model, true, err);
	if (st != CB_OK)
	{
		cb_sp_model_free(model);
		return st;
	}
	model->n_pieces = n;
	return CB_OK;
}

void
cb_sp_model_free(cb_sp_model *model)
{
	if (model == NULL)
		return;
	cb_free(model->pieces);
	model->pieces = NULL;
	model->n_pieces = 0;
}
