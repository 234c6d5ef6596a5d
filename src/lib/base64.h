/*
 * Strict base64 (RFC 4648 section 4, the standard alphabet with padding),
 * as SASL (RFC 4954, RFC 5034) and SCRAM (RFC 5802) carry it on the wire.
 *
 * The decoder accepts only the canonical encoding: the length is a multiple
 * of four, '=' appears only as one or two final padding characters, the
 * unused bits before the padding are zero, and there is no whitespace, no
 * line break and no character outside the alphabet. Anything else is an
 * error, so one byte string has exactly one accepted spelling.
 *
 * Passwords and keys pass through here, so the character mapping is done
 * without table look-ups or data-dependent branches: how long a decode
 * takes depends on the length of the input, not on its content (apart
 * from where an error stops it).
 */
#ifndef GODWIT_BASE64_H
#define GODWIT_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Characters needed to encode n bytes, without the terminating NUL.
 * Returns SIZE_MAX if that does not fit in a size_t.
 */
size_t base64_encoded_len(size_t n);

/* The most bytes a base64 text of len characters can decode to. */
size_t base64_decoded_max(size_t len);

/*
 * Encodes n bytes of src into dst as a NUL-terminated string. dst has size
 * bytes; it needs base64_encoded_len(n) + 1. Returns the length of the
 * text, or -1 (dst untouched) if it does not fit.
 */
ssize_t base64_encode(const void *src, size_t n, char *dst, size_t size);

/* The same into a new string from xmalloc(); the caller frees it. */
char *base64_encode_alloc(const void *src, size_t n);

/*
 * Decodes len characters of src (which need not be NUL-terminated) into
 * dst, which has room for size bytes. Returns the number of bytes decoded,
 * or -1 if src is not canonical base64 or the result would not fit in
 * size bytes. On error dst may hold partial output, which the caller must
 * ignore. An empty src decodes to 0 bytes.
 */
ssize_t base64_decode(const char *src, size_t len, void *dst, size_t size);

#endif
