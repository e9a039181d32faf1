/*
 * image_layout.c — the header checks every position-independent image gets
 * (see image_layout.h).
 */
#include "image_layout.h"

#include <string.h>

cb_status
cb_image_check_header(const void *image, size_t image_len, const char magic[8],
					  uint32_t version, size_t header_size, const char *what,
					  cb_error *err)
{
	cb_image_prefix p;

	if (((uintptr_t) image & 7) != 0)
		return cb_set_error(err, CB_ERR_INVALID, "%s: not 8-byte aligned", what);
	if (image_len < header_size || header_size < sizeof(p))
		return cb_set_error(err, CB_ERR_FORMAT, "%s: shorter than its header", what);
	memcpy(&p, image, sizeof(p));	/* the header type's first fields (no aliasing) */
	if (memcmp(p.magic, magic, 8) != 0)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: bad magic", what);
	if (p.version != version)
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: version %u, expected %u", what, p.version, version);
	if (p.byte_order != CB_IMAGE_BYTE_ORDER)
		return cb_set_error(err, CB_ERR_UNSUPPORTED, "%s: built on a host of another byte order", what);
	if (p.header_size != header_size || p.image_len != image_len)
		return cb_set_error(err, CB_ERR_FORMAT, "%s: header size or image length mismatch", what);
	return CB_OK;
}
