/*
 * libFuzzer target for dsn.c. The first byte chooses:
 *	bits 0-1  the first recipient's action
 *	bits 2-3  RET: "", "FULL", "HDRS", "full"
 *	bit 4     the original needed SMTPUTF8
 *	bit 5     a second recipient (its action: bits 0-1 of byte 2)
 *	bit 6     msgsize larger than the original given (a cut original)
 *	bit 7     dates set (last attempt, retry until, arrival)
 * The rest is split on NUL into sender, ENVID, hostname, queue id, then
 * per recipient address, ORCPT, status, Remote-MTA, diagnostic; what is
 * left is the original message. Missing fields are NULL where the
 * contract allows it, else "". The report must keep what readers rely
 * on, checked with abort(): a boundary of 1 to 70 octets that occurs
 * exactly at the delimiters and nowhere in the original, the parts
 * there should be, and in the top header, the text and the
 * delivery-status part no CR and no line of 998 octets or more, and
 * only RFC 3464 fields in the delivery-status part (no injected field).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"

#define IN_MAX 65536
#define NFIELDS 14
#define CT_LINE                                                                \
	"\nContent-Type: multipart/report; report-type=delivery-status;\n"    \
	"\tboundary=\""

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* Lines in [p, end): shorter than 998 octets, no CR, no NUL. */
static void
check_lines(const char *p, const char *end)
{
	size_t col = 0;

	for (; p < end; p++) {
		if (*p == '\n') {
			col = 0;
			continue;
		}
		check(*p != '\r' && *p != '\0');
		check(++col < 998);
	}
}

static bool
known_field(const char *p, const char *end)
{
	static const char *const known[] = {
		"Original-Envelope-Id", "Reporting-MTA", "Arrival-Date",
		"Original-Recipient", "Final-Recipient", "Action", "Status",
		"Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date",
		"Will-Retry-Until"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t n = strlen(known[i]);

		if ((size_t)(end - p) > n + 1 && memcmp(p, known[i], n) == 0 &&
		    p[n] == ':' && p[n + 1] == ' ')
			return true;
	}
	return false;
}

/* The delivery-status part [p, end): fields, folds, blank lines. */
static void
check_status(const char *p, const char *end)
{
	const char *e;

	for (; p < end; p = e + 1) {
		e = memchr(p, '\n', (size_t)(end - p));
		check(e != NULL);
		check(e == p || *p == ' ' || known_field(p, e));
	}
}

static void
check_report(const char *out, size_t len, const unsigned char *msg,
	     size_t msglen, bool full)
{
	const char *hend, *b, *q, *d[4], *p, *end = out + len;
	char delim[80];
	size_t blen, nparts = msglen > 0 ? 3 : 2, n;

	check(len > 0 && out[len - 1] == '\n');
	hend = memmem(out, len, "\n\n", 2);
	check(hend != NULL);
	check_lines(out, hend + 1);
	/* every top line a field or a fold */
	for (p = out; p <= hend; p = q + 1) {
		q = memchr(p, '\n', (size_t)(end - p));
		check(*p == ' ' || *p == '\t' ||
		      memchr(p, ':', (size_t)(q - p)) != NULL);
	}

	b = memmem(out, (size_t)(hend - out), CT_LINE, strlen(CT_LINE));
	check(b != NULL);
	b += strlen(CT_LINE);
	q = memchr(b, '"', (size_t)(hend - b));
	check(q != NULL);
	blen = (size_t)(q - b);
	check(blen >= 1 && blen <= 70);
	/* a whole original returned must not hold it */
	check(!full || memmem(msg, msglen, b, blen) == NULL);

	/* "\n--boundary" exactly at the delimiters, in order */
	delim[0] = '\n';
	delim[1] = delim[2] = '-';
	memcpy(delim + 3, b, blen);
	p = hend;
	for (n = 0; n <= nparts; n++) {
		d[n] = memmem(p, (size_t)(end - p), delim, blen + 3);
		check(d[n] != NULL);
		p = d[n] + blen + 3;
		check(p < end);
		check(n < nparts ? *p == '\n' : memcmp(p, "--\n", 3) == 0 &&
							 p + 3 == end);
	}
	/* and nowhere else in the body, not even without the line end
	 * (the top header may quote it: the sender is the fuzzer's) */
	n = 0;
	for (p = hend; (p = memmem(p, (size_t)(end - p), delim + 1,
				  blen + 2)) != NULL; p++)
		n++;
	check(n == nparts + 1);

	/* text and delivery-status: headers, then clean lines */
	check_lines(hend, d[2]);
	p = memmem(d[1], (size_t)(d[2] - d[1]), "\n\n", 2);
	check(p != NULL);
	check(memmem(d[1], (size_t)(p - d[1]), "delivery-status", 15));
	check_status(p + 2, d[2] + 1);
	if (full && nparts == 3)
		check(memmem(d[2], (size_t)(d[3] - d[2]),
			     "Content-Type: message/", 22) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const rets[] = {"", "FULL", "HDRS", "full"};
	static char buf[IN_MAX + 1];
	const char *f[NFIELDS] = {0};
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	unsigned flags, flags2;
	size_t nf = 0, i, len, hlen, msglen;
	const unsigned char *msg;
	char *out, *p, *end;

	if (size < 2 || size > IN_MAX)
		return 0;
	flags = data[0];
	flags2 = data[1];
	memcpy(buf, data + 2, size - 2);
	buf[size - 2] = '\0';
	p = buf;
	end = buf + size - 2;
	while (nf < NFIELDS && p < end) {
		f[nf++] = p;
		p += strlen(p) + 1;
	}
	msg = (const unsigned char *)(p < end ? p : end);
	msglen = (size_t)(end - (const char *)msg);

	memset(rc, 0, sizeof(rc));
	for (i = 0; i < 2; i++) {
		rc[i].addr = f[4 + 5 * i] ? f[4 + 5 * i] : "";
		rc[i].orcpt = f[5 + 5 * i] ? f[5 + 5 * i] : "";
		rc[i].status = f[6 + 5 * i] ? f[6 + 5 * i] : "";
		rc[i].remote_mta = f[7 + 5 * i];
		rc[i].diagnostic = f[8 + 5 * i];
		rc[i].action = (enum dsn_action)((i ? flags2 : flags) & 3);
		if (flags & 0x80) {
			rc[i].last_attempt = 1700000000;
			rc[i].retry_until = 1700400000;
		}
	}
	memset(&r, 0, sizeof(r));
	r.sender = f[0] ? f[0] : "";
	r.envid = f[1] ? f[1] : "";
	r.hostname = f[2] ? f[2] : "";
	r.queue_id = f[3] ? f[3] : "";
	r.ret = rets[(flags >> 2) & 3];
	r.smtputf8 = (flags & 0x10) != 0;
	r.arrival = flags & 0x80 ? 1699990000 : 0;
	r.now = 1700000100;
	r.rcpts = rc;
	r.nrcpts = flags & 0x20 ? 2 : 1;
	r.msg = msg;
	r.msglen = msglen;
	r.msgsize = msglen + (flags & 0x40 ? 1 : 0);

	hlen = dsn_header_len(msg, msglen);
	check(hlen <= msglen);
	check(hlen == msglen || (hlen > 0 && msg[hlen - 1] == '\n'));

	out = dsn_format(&r, &len);
	check(out != NULL);
	check_report(out, len, msg, msglen,
		     (flags & 0x4c) == 0x04 && rc[0].action == DSN_FAILED);
	free(out);
	return 0;
}
