/*
 * The message-content stream of DATA and BDAT, parsed as it arrives, in
 * chunks of any size (resumable; no I/O). It turns the wire form into the
 * stored form: CRLF line ends become LF (Maildir's convention) and, for
 * DATA, dot-stuffing is undone and the end of data is found.
 *
 * Only <CRLF>.<CRLF> ends DATA. A bare LF or a bare CR anywhere is an
 * error (SMTP smuggling: RFC 5321 2.3.8 and 4.1.1.4): the session cannot
 * know where the client thinks the message ends, so it answers 521 and
 * closes. BDAT is length-framed, so there the same error only rejects the
 * message.
 *
 * While parsing it also counts what later steps need without a second pass:
 * stored size and line count (so the CRLF size is size + lines), lines
 * longer than the limit, Received: headers (hop count), and whether the
 * header has Message-ID: and Date:.
 */
#ifndef GODWIT_SMTP_DATA_H
#define GODWIT_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_data_mode { SMTP_DATA_DOT, SMTP_DATA_BDAT };

enum smtp_data_status {
	SMTP_DATA_MORE,		/* consumed everything, want more */
	SMTP_DATA_END,		/* saw <CRLF>.<CRLF> (DATA only) */
	SMTP_DATA_BARE_EOL,	/* bare CR or LF: stop here */
};

#define SMTP_DATA_PREFIX 16

struct smtp_data {
	enum smtp_data_mode mode;
	int state;
	size_t max_line;	/* octets incl. CRLF */
	size_t line_len;	/* octets of the current line so far */
	uint64_t size;		/* octets output (LF line ends) */
	uint64_t lines;		/* LFs output */
	bool long_line;		/* some line exceeded max_line */
	bool in_header;
	uint64_t header_end;	/* output offset of the blank line ending the
				 * header (valid once in_header is false) */
	unsigned received;	/* Received: header fields */
	bool has_message_id;
	bool has_date;
	char prefix[SMTP_DATA_PREFIX];	/* first octets of the current line */
};

void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
		    size_t max_line);

/*
 * Parses in[0..len). Writes the stored form into out (which must have room
 * for len octets: output never exceeds input) and sets *out_len_r.
 * *consumed_r is how much input was used: all of it for SMTP_DATA_MORE,
 * up to and including the final LF for SMTP_DATA_END (the rest belongs to
 * the next command), up to the offending octet for SMTP_DATA_BARE_EOL.
 *
 * For BDAT, call smtp_data_finish() after the LAST chunk: a chunk that
 * ends in CR followed by nothing is a bare CR.
 */
enum smtp_data_status smtp_data_feed(struct smtp_data *d,
				     const unsigned char *in, size_t len,
				     unsigned char *out, size_t *out_len_r,
				     size_t *consumed_r);
enum smtp_data_status smtp_data_finish(struct smtp_data *d,
				       unsigned char *out, size_t *out_len_r);

#endif
