/*
 * The MIME structure of one stored message, as IMAP FETCH shows it (RFC
 * 9051 sections 6.4.5 and 7.5.2; RFC 3516 BINARY): ENVELOPE,
 * BODYSTRUCTURE and BODY, the byte ranges of the sections (BODY[1.2],
 * [HEADER], [TEXT], [MIME], [HEADER.FIELDS (..)]), partials, and the
 * content-transfer decoding of BINARY.
 *
 * godwit stores messages with LF line ends; IMAP counts every size and
 * offset in the CRLF form (RFC822.SIZE, the octets of BODY[], a partial's
 * <start.len>). The CRLF form is the file with each LF that is not
 * preceded by CR sent as CR LF (the transform of mail/pop3_stream.h
 * without the byte-stuffing). Every part records its offsets in both.
 *
 * Pure and bounded: the message is read through a pread-like callback,
 * line by line through a fixed buffer; bodies are never held, only each
 * header (the first IMAP_MIME_HEADER_MAX octets of it) while it is
 * parsed. Multipart nesting is bounded (IMAP_MIME_DEPTH_MAX, deeper ones
 * are leaves) and so is the number of parts (IMAP_MIME_PARTS_MAX; a
 * multipart found beyond it is a leaf).
 */
#ifndef GODWIT_IMAP_MIME_H
#define GODWIT_IMAP_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct strbuf;

#define IMAP_MIME_DEPTH_MAX 16
#define IMAP_MIME_PARTS_MAX 1000
#define IMAP_MIME_HEADER_MAX (64 * 1024)	/* of each header, parsed */
#define IMAP_MIME_FIELDS_MAX (256 * 1024)	/* a header, HEADER.FIELDS */
#define IMAP_SECTION_DEPTH_MAX 32		/* 1.2.3... */
#define IMAP_SECTION_NAMES_MAX 64		/* HEADER.FIELDS (a b ...) */

/* Reads up to n octets at off: the count, 0 at the end, -1 on error. */
typedef ssize_t imap_mime_read_fn(void *arg, uint64_t off, void *buf,
				  size_t n);

struct imap_mime_src {
	imap_mime_read_fn *read;
	void *arg;
	uint64_t size;		/* of the stored form */
};

enum imap_mime_cte {
	IMAP_CTE_IDENTITY,	/* 7bit 8bit binary, or none */
	IMAP_CTE_BASE64,
	IMAP_CTE_QP,
	IMAP_CTE_UNKNOWN,	/* x-uuencode and the like */
};

struct imap_mime_param {
	char *name, *value;
};

struct imap_mime_part {
	/* stored (file) offsets of the header, the body and the end, and
	 * the same points in the CRLF form */
	uint64_t hdr, body, end;
	uint64_t chdr, cbody, cend;
	uint64_t lines;		/* of the body */
	char *type, *subtype;	/* as written ("text" "plain" if none) */
	struct imap_mime_param *params;
	size_t nparams;
	char *id, *desc, *cte_name, *md5, *disp, *lang, *loc;
	struct imap_mime_param *disp_params;
	size_t ndisp_params;
	enum imap_mime_cte cte;
	bool multipart;		/* with children */
	bool message;		/* message/rfc822 or global with child */
	bool has_ctype;
	char *envelope;		/* the root and encapsulated messages */
	struct imap_mime_part *child;	/* parts, or the encapsulated msg */
	struct imap_mime_part *next;	/* the next sibling */
	size_t nchildren;
};

struct imap_mime {
	struct imap_mime_part *root;
	size_t nparts;
	uint64_t csize;		/* the CRLF size of the whole message */
	bool header_only;	/* imap_mime_parse_header(): the root's
				 * header alone is known */
};

/* Parses the structure: 0, or -1 if the callback failed. */
int imap_mime_parse(const struct imap_mime_src *src, struct imap_mime **m_r);
/* Only the message's header (ENVELOPE, [HEADER], [HEADER.FIELDS]): the
 * body is not read; other sections do not resolve. */
int imap_mime_parse_header(const struct imap_mime_src *src,
			   struct imap_mime **m_r);
/* The same without the ENVELOPE (root->envelope stays NULL): for [HEADER]
 * and [HEADER.FIELDS] alone, and the header's length. */
int imap_mime_parse_header_noenv(const struct imap_mime_src *src,
				 struct imap_mime **m_r);
void imap_mime_free(struct imap_mime **m);

/* BODYSTRUCTURE (extended) or BODY (not) of the message, appended. */
void imap_mime_bodystructure(const struct imap_mime *m, bool extended,
			     struct strbuf *out);
/* ENVELOPE of the message, appended. */
void imap_mime_envelope(const struct imap_mime *m, struct strbuf *out);
/* An nstring for IMAP: NIL, a quoted string or a literal. */
void imap_mime_quote(struct strbuf *out, const char *s, size_t len);

/* ---- sections --------------------------------------------------- */

enum imap_section_kind {
	IMAP_SEC_ALL,		/* [] or [1.2] */
	IMAP_SEC_HEADER,
	IMAP_SEC_FIELDS,
	IMAP_SEC_FIELDS_NOT,
	IMAP_SEC_TEXT,
	IMAP_SEC_MIME,
};

struct imap_section {
	uint32_t part[IMAP_SECTION_DEPTH_MAX];
	size_t npart;
	enum imap_section_kind kind;
	char *names[IMAP_SECTION_NAMES_MAX];	/* FIELDS, FIELDS_NOT */
	size_t nnames;
	bool partial;
	uint64_t start, len;
	char *text;		/* the spec as it is echoed: "HEADER.FIELDS
				 * (A B)", without the brackets */
};

/*
 * Parses "[spec]" and an optional "<start.len>" (s is the text after
 * BODY, BODY.PEEK, BINARY...; binary: only part numbers allowed). 0, or
 * -1 if it is malformed.
 */
int imap_section_parse(const char *s, size_t len, bool binary,
		       struct imap_section *sec);
void imap_section_clear(struct imap_section *sec);

/* What a section is: a range of the message (file and CRLF offsets) and
 * the transfer encoding of its part. */
struct imap_mime_range {
	uint64_t off, end, coff, cend;
	enum imap_mime_cte cte;
	bool leaf;		/* a part that is not multipart or message */
};

/* The range of sec in m: 0, or -1 if there is no such part. */
int imap_mime_section(const struct imap_mime *m,
		      const struct imap_section *sec,
		      struct imap_mime_range *r);

/*
 * [HEADER.FIELDS (..)] and [.NOT]: the header range r read (its first
 * IMAP_MIME_FIELDS_MAX octets), the fields named (or all others) in CRLF
 * form, then the empty line, appended to out. 0, or -1 on a read error.
 */
int imap_mime_header_fields(const struct imap_mime_src *src,
			    const struct imap_mime_range *r,
			    char *const *names, size_t nnames, bool not,
			    struct strbuf *out);

/*
 * A range streamed in CRLF form, decoded (BINARY) or not, of which the
 * octets from skip on, at most limit of them, are produced.
 */
struct imap_mime_stream {
	const struct imap_mime_src *src;
	uint64_t pos, end;
	enum imap_mime_cte dec;
	uint64_t skip, left;
	bool prev_cr;
	int state;		/* QP */
	unsigned char hold[4];
	size_t nhold;
	uint32_t acc;		/* base64 */
	int nacc;
	unsigned char q[8];	/* produced and not yet taken */
	size_t nq, qpos;
	unsigned char in[8192];
	size_t inlen, inpos;
	bool eof, failed;
};

void imap_mime_stream_init(struct imap_mime_stream *st,
			   const struct imap_mime_src *src,
			   const struct imap_mime_range *r, bool decode,
			   uint64_t skip, uint64_t limit);
/* Up to n octets into buf: the count, 0 at the end, -1 on a read error. */
ssize_t imap_mime_stream_read(struct imap_mime_stream *st, void *buf,
			      size_t n);
/*
 * The size of the whole message with CRLF line ends (RFC822.SIZE, BODY[])
 * given the one the store claims (",W=" in the file name, which another
 * program may have got wrong): kept when the stored form allows it (at
 * least its size, at most twice it plus the CR LF a last line without
 * its end gets), else counted from src. A wrong claim within those bounds
 * makes the literal padded or cut, never unbounded or out of step.
 */
uint64_t imap_mime_whole_size(const struct imap_mime_src *src,
			      uint64_t claimed);
/* The decoded size of r (BINARY.SIZE): 0, or -1 on a read error. */
int imap_mime_decoded_size(const struct imap_mime_src *src,
			   const struct imap_mime_range *r, uint64_t *size_r);

/* ---- header values ---------------------------------------------- */

/*
 * Calls fn for each field of the header text hdr (LF or CRLF line ends),
 * the value unfolded; lines that are not fields are skipped. Stops when
 * fn returns false.
 */
typedef bool imap_mime_field_fn(void *arg, const char *name, size_t nlen,
				const char *value, size_t vlen);
void imap_mime_fields(const char *hdr, size_t len, imap_mime_field_fn *fn,
		      void *arg);
/*
 * Header text with its RFC 2047 encoded words decoded and converted to
 * UTF-8 (iconv; an unknown charset leaves the word's octets as they
 * are); appended to out.
 */
void imap_mime_decode_words(const char *s, size_t len, struct strbuf *out);
/* s[0..n) in charset converted to UTF-8 (iconv), appended to out; octets
 * iconv cannot convert are kept as they are. */
void imap_mime_to_utf8(const char *charset, const char *s, size_t n,
		       struct strbuf *out);
/* The start of the header of a message: the offset after it (its empty
 * line included) in hdr, or len if it has none. */
size_t imap_mime_header_len(const char *hdr, size_t len);

#endif
