/*
 * Removes forged Authentication-Results header fields (RFC 8601 section
 * 5): every one in the header section whose authserv-id is ours, so that
 * a sender cannot hand our users verdicts we never gave. Fields of other
 * authserv-ids pass. Conservative: an Authentication-Results field whose
 * authserv-id cannot be read on its first line (folded onto the next
 * line, cut off by the hold limit, malformed) is removed as well. So is
 * every field named X-Godwit-* (the filters' verdicts, godwit's own:
 * X-Godwit-DNSBL, X-Godwit-Virus-Scan, X-Godwit-Quarantine).
 *
 * A streaming filter over the stored form (LF line ends), in chunks of
 * any size, with bounded state: the start of each header field line is
 * held until its line ends or AR_FILTER_HOLD octets are in (a longer
 * line is decided on what is held), nothing else is kept. The body
 * passes untouched. Pure: no I/O.
 */
#ifndef GODWIT_AR_FILTER_H
#define GODWIT_AR_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_FILTER_HOLD 1024
#define AR_FILTER_ID_MAX 255

struct ar_filter {
	char id[AR_FILTER_ID_MAX + 1];	/* ours */
	bool body;		/* past the header section */
	bool at_bol;		/* at the start of a line */
	bool holding;		/* the start of a field line is held */
	bool dropping;		/* the current field is being removed */
	size_t hold_len;
	char hold[AR_FILTER_HOLD];
	/* what was removed: for the stored size and line count */
	uint64_t dropped_octets;
	uint64_t dropped_lines;
	unsigned dropped_fields;
};

/* authserv_id: ours (compared without regard to case; cut at
 * AR_FILTER_ID_MAX). */
void ar_filter_init(struct ar_filter *f, const char *authserv_id);

/*
 * Filters in[0..n) into out, which must have room for n + AR_FILTER_HOLD
 * octets. Returns the octets written.
 */
size_t ar_filter_feed(struct ar_filter *f, const char *in, size_t n,
		      char *out);
/* The end of the content: what is still held (a last line without its
 * LF), decided, into out (room for AR_FILTER_HOLD). */
size_t ar_filter_finish(struct ar_filter *f, char *out);

/*
 * The authserv-id of an Authentication-Results field's first line
 * (name, colon, value up to the LF or the end of what is given), into id
 * (size octets). 1 found, 0 the field is not Authentication-Results, -1
 * it is, but no authserv-id can be read from line. complete: line is the
 * whole line (else it was cut off, and an id running to its end is not
 * known to be whole).
 */
int ar_field_authserv_id(const char *line, size_t len, bool complete,
			 char *id, size_t size);

#endif
