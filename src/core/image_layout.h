/*
 * image_layout.h — laying out and checking a position-independent image: one
 * block of bytes that starts with a header and holds sections, each at an
 * 8-aligned offset from the start (every internal reference is an offset; no
 * pointers), so that it can be copied anywhere, e.g. into shared memory.
 * The tokenizer images use it: tokenizer_image.c (SentencePiece) and
 * bytebpe_image.c (byte-level BPE).
 *
 * Building: sections are placed one after the other with cb_image_next_section
 * (the end moves on, 8-aligned), the block is cb_calloc'ed at the end's size
 * (the padding is zero), then filled.  Opening: cb_image_check_header checks
 * the header's first fields (cb_image_prefix), cb_image_section_ok each section.
 */
#ifndef CB_IMAGE_LAYOUT_H
#define CB_IMAGE_LAYOUT_H

#include "cb_common.h"

/* Where a section lies: bytes from the start of the image. */
typedef struct cb_image_section
{
	uint64_t	off;
	uint64_t	len;			/* bytes */
} cb_image_section;

/*
 * The first fields of every image's header, in this order and at these
 * offsets (CB_IMAGE_HEADER_STARTS_WITH_PREFIX checks a header type).
 */
typedef struct cb_image_prefix
{
	char		magic[8];
	uint32_t	version;
	uint32_t	header_size;	/* sizeof the whole header */
	uint64_t	image_len;
	uint32_t	byte_order;		/* CB_IMAGE_BYTE_ORDER as the builder's host stores it */
} cb_image_prefix;

#define CB_IMAGE_BYTE_ORDER 0x01020304u

#define CB_IMAGE_HEADER_STARTS_WITH_PREFIX(type) \
	_Static_assert(offsetof(type, magic) == offsetof(cb_image_prefix, magic) && \
				   offsetof(type, version) == offsetof(cb_image_prefix, version) && \
				   offsetof(type, header_size) == offsetof(cb_image_prefix, header_size) && \
				   offsetof(type, image_len) == offsetof(cb_image_prefix, image_len) && \
				   offsetof(type, byte_order) == offsetof(cb_image_prefix, byte_order), \
				   #type " does not start with the fields of cb_image_prefix")

static inline size_t
cb_align8(size_t x)
{
	return (x + 7) & ~(size_t) 7;
}

/* A section of len bytes at *end (8-aligned), which then moves past it, 8-aligned. */
static inline cb_image_section
cb_image_next_section(size_t *end, size_t len)
{
	cb_image_section s;

	s.off = *end;
	s.len = len;
	*end = cb_align8(*end + len);
	return s;
}

/* Does s lie within an image of image_len bytes, at an offset that is a multiple of align? */
static inline bool
cb_image_section_ok(const cb_image_section *s, size_t image_len, size_t align)
{
	return s->off <= image_len && s->len <= image_len - s->off && s->off % align == 0;
}

/*
 * Check the start of an image (what names it in the messages, "tokenizer
 * image"): 8-byte aligned (CB_ERR_INVALID), at least header_size bytes, the
 * magic (CB_ERR_FORMAT), the version and the byte order (CB_ERR_UNSUPPORTED),
 * the header's own size and the image's length (CB_ERR_FORMAT).
 */
cb_status	cb_image_check_header(const void *image, size_t image_len, const char magic[8],
								  uint32_t version, size_t header_size, const char *what,
								  cb_error *err);

/* FNV-1a 64 of len bytes, from h (CB_FNV1A64_INIT to start): a fingerprint of a model's files. */
#define CB_FNV1A64_INIT 0xCBF29CE484222325ull

static inline uint64_t
cb_fnv1a64(uint64_t h, const void *bytes, size_t len)
{
	const uint8_t *p = bytes;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001B3ull;
	return h;
}

#endif							/* CB_IMAGE_LAYOUT_H */
