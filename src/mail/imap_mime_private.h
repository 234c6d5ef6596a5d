/*
 * What the files of imap_mime share (imap_mime.c the walk,
 * imap_mime_fmt.c the header fields and the rendering, imap_mime_stream.c
 * the sections and the decoders).
 */
#ifndef GODWIT_IMAP_MIME_PRIVATE_H
#define GODWIT_IMAP_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_mime_part;
struct imap_mime_src;
struct strbuf;

/* Content-Type and the other Content-* fields of hdr into p (defaults
 * when absent: text/plain, or message/rfc822 in a digest); the multipart
 * boundary (or "") into boundary. */
void imap_mime_part_fields(struct imap_mime_part *p, const char *hdr,
			   size_t len, bool digest, char *boundary,
			   size_t bsize);
/* The ENVELOPE of a message header. */
void imap_mime_render_envelope(const char *hdr, size_t len,
			       struct strbuf *out);
/* n octets at off appended to out (fewer at the end of input); -1 on a
 * read error. */
int imap_mime_read_all(const struct imap_mime_src *src, uint64_t off,
		       size_t n, struct strbuf *out);

#endif
