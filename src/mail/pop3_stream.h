/*
 * A stored message as POP3 sends it (RFC 1939 section 3): CRLF line ends
 * and byte-stuffing, chunk by chunk, so that a message of any size is
 * streamed through a small buffer. Pure: no I/O.
 *
 * Stored messages are Maildir files with LF line ends (godwit writes them
 * so), or CRLF (other MDAs, imports). The transform, byte by byte:
 *	LF not preceded by CR	-> CR LF
 *	CR LF			-> CR LF (kept)
 *	CR not followed by LF	-> CR (kept as stored: a "bare CR")
 *	'.' first on a line	-> ".." (byte-stuffing)
 *	anything else		-> itself
 * A line is what ends with LF; a bare CR does not end one. At the end,
 * pop3_stream_end() adds CR LF if the file did not end with a line end
 * (also after a final bare CR: "a\r" is sent as "a\r\r\n"), then the
 * terminating ".\r\n". An empty file is sent as ".\r\n" alone.
 *
 * Message size (RFC 1939 LIST/STAT, and what poplib and fetchmail count
 * after removing the stuffing): the octets of the transformed message
 * WITHOUT the stuffing dots and without ".\r\n", but WITH the CR LF added
 * at the end of an unterminated last line. pop3_stream_size() computes
 * exactly that, and the same number is what godwit's Maildir names carry
 * as ",W=" (godwit stores whole lines, so no CR LF is ever added there).
 *
 * TOP msg n (RFC 1939 section 7): the header, the empty line that ends
 * it, and the first n lines of the body. The header ends at the first
 * empty line (LF alone, or CR LF, at the start of a line). A message with
 * no empty line is all header and is sent whole. pop3_stream_run() stops
 * right after the LF that ends the n-th body line (the empty line itself
 * for n = 0); that LF may be the last octet of the chunk.
 */
#ifndef GODWIT_POP3_STREAM_H
#define GODWIT_POP3_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_stream {
	/* private */
	bool bol;		/* at the start of a line */
	bool cr;		/* the last octet consumed was CR */
	bool cr_only;		/* the line so far is one CR (TOP: "\r\n" is
				 * the empty line, "\rx\n" is not) */
	bool in_body;		/* past the empty line */
	bool limited;		/* TOP */
	bool raw;		/* no stuffing, no final "." (BDAT) */
	bool done;		/* TOP: enough lines sent */
	unsigned long lines_left;
};

/* RETR: whole message. */
void pop3_stream_init(struct pop3_stream *st);
/* TOP: header plus the first lines body lines. */
void pop3_stream_init_top(struct pop3_stream *st, unsigned long lines);
/*
 * Line ends only, for SMTP BDAT (RFC 3030: no stuffing, no terminator):
 * the same CR LF transform, but a '.' first on a line stays single and
 * pop3_stream_end() writes only the CR LF of an unterminated last line
 * (at most 2 octets; nothing for an empty message).
 */
void pop3_stream_init_raw(struct pop3_stream *st);

/*
 * Transforms up to len octets of in into out, which must have room for
 * 2 * len octets. Returns the number of octets written; *consumed_r is how
 * many of in were used: all of them, unless TOP's limit was reached, after
 * which pop3_stream_done() is true and further calls consume nothing.
 */
size_t pop3_stream_run(struct pop3_stream *st, const unsigned char *in,
		       size_t len, unsigned char *out, size_t *consumed_r);

/* TOP's limit was reached: stop reading the file. */
bool pop3_stream_done(const struct pop3_stream *st);

/*
 * The end of the response: CR LF if the last line was unterminated, then
 * ".\r\n" (not in raw mode). out must have room for POP3_STREAM_END_MAX octets. Returns the
 * number written.
 */
#define POP3_STREAM_END_MAX 5
size_t pop3_stream_end(struct pop3_stream *st, unsigned char *out);

/*
 * Size counting as described above, for files without ",W=": feed the
 * whole file through pop3_size_add() (chunks of any size), then read
 * pop3_size_end().
 */
struct pop3_size {
	uint64_t size;
	bool cr;		/* last octet was CR */
	bool bol;		/* at the start of a line (true when empty) */
};
void pop3_size_init(struct pop3_size *sz);
void pop3_size_add(struct pop3_size *sz, const unsigned char *in, size_t len);
uint64_t pop3_size_end(const struct pop3_size *sz);

#endif
