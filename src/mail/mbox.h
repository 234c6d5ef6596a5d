/*
 * mbox in its mboxrd form (RFC 4155 and the "mboxrd" quoting of
 * qmail-style mboxes, which mutt, Debian's mb2md and Dovecot read): each
 * message starts with a "From SENDER DATE" line; inside a message, every
 * line that matches ^>*From  got one more '>' when it was written, which
 * the reader takes off again; the writer puts an empty line after each
 * message, which the reader drops. So a message that ends with a line
 * end comes out of a write and a read octet for octet as it went in.
 *
 * Pure code, streaming, no I/O: input in pieces of any size (a line may
 * be split anywhere; its '>'s are counted, never stored, so no line is
 * too long), output through callbacks.
 */
#ifndef GODWIT_MBOX_H
#define GODWIT_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MBOX_FROM_MAX 1024	/* octets of a From_ line kept */
#define MBOX_SENDER_MAX 320	/* an address as the From_ line gives it */

/* What the reader hands over; a callback returns -1 to stop the read. */
struct mbox_sink {
	/* a message starts: the From_ line's sender ("" if none) and time
	 * (seconds since the epoch, UTC; 0 if it could not be read) */
	int (*begin)(void *arg, const char *sender, int64_t t);
	int (*data)(void *arg, const void *p, size_t n);
	int (*end)(void *arg);
};

struct mbox_reader {
	const struct mbox_sink *sink;
	void *arg;
	int state;
	uint64_t gt;		/* '>'s at the start of the current line */
	unsigned matched;	/* octets of "From " matched after them */
	bool held_blank;	/* an empty line that may be the separator */
	bool in_msg;
	uint64_t messages;
	size_t flen;
	char from[MBOX_FROM_MAX + 1];
	const char *error;	/* why mbox_read/finish returned -1 */
};

void mbox_reader_init(struct mbox_reader *r, const struct mbox_sink *sink,
		      void *arg);
/*
 * Reads n octets. -1 when a callback said stop, or the input is not an
 * mbox (r->error: "no From_ line at the start").
 */
int mbox_read(struct mbox_reader *r, const void *buf, size_t n);
/* The end of the input: ends the last message. 0 or -1 as above (an
 * input with no message at all is not an error: an empty mbox). */
int mbox_finish(struct mbox_reader *r);

/*
 * Parses a From_ line's rest ("SENDER DATE", without "From " and the
 * line end) into sender (MBOX_SENDER_MAX + 1 octets; "" when absent or
 * too long) and *t_r (asctime's "Www Mmm dd hh:mm:ss yyyy", UTC; 0 when
 * it is not that).
 */
void mbox_from_parse(const char *rest, size_t len, char *sender,
		     int64_t *t_r);
/*
 * "From SENDER DATE\n" into buf (at least MBOX_SENDER_MAX + 40 octets):
 * SENDER cleaned of spaces and control characters, "MAILER-DAEMON" when
 * empty; DATE as asctime in UTC. Returns the length.
 */
size_t mbox_from_format(char *buf, size_t size, const char *sender,
			int64_t t);

/* The writer's quoting: a message's octets in, quoted octets out. */
struct mbox_writer {
	int (*out)(void *arg, const void *p, size_t n);
	void *arg;
	int state;
	uint64_t gt;
	unsigned matched;
	bool at_line_start;
	bool empty;
};

void mbox_writer_init(struct mbox_writer *w,
		      int (*out)(void *arg, const void *p, size_t n),
		      void *arg);
/* A message's octets; -1 when out() failed. */
int mbox_write(struct mbox_writer *w, const void *buf, size_t n);
/* The message's end: a line end if it had none, then the empty line. */
int mbox_write_end(struct mbox_writer *w);

#endif
