/*
 * libFuzzer target for the milter reply parser (mail/milter_proto.c):
 * the input is a stream of reply packets as a milter would send them,
 * parsed one after the other the way filter/milter.c reads its socket
 * (in a buffer of exactly the bytes received, fed whole or split at the
 * point the first input byte chooses). Invariants, abort() on violation:
 *  - the parser returns -1, 0 or 1; 1 consumes 5..4+MILTER_REPLY_MAX
 *    octets within the buffer, 0 only when a prefix of the buffer lacks
 *    a packet's end, and any split gives the same replies;
 *  - every string a reply points to ends within the packet; a
 *    REPLYCODE's code is 400..599 and its text starts with it; a
 *    REPLBODY lies within the packet; -1 gives a short printable reason;
 *  - milter_negotiate() on an OPTNEG never grants more than offered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/milter_proto.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_str(const char *s, const unsigned char *lo, const unsigned char *hi)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL)
		return;
	check(p >= lo && p < hi);
	check(memchr(p, '\0', (size_t)(hi - p)) != NULL);
}

static void
check_reply(const struct milter_reply *r, const unsigned char *pkt,
	    size_t used)
{
	const unsigned char *hi = pkt + used;
	const char *err = NULL;
	uint32_t a, p;

	check_str(r->text, pkt, hi);
	check_str(r->name, pkt, hi);
	check_str(r->value, pkt, hi);
	check_str(r->addr, pkt, hi);
	check_str(r->args, pkt, hi);
	for (int i = 0; i < MM_NSTAGES; i++)
		check_str(r->symlist[i], pkt, hi);
	if (r->type == MR_REPLYCODE) {
		check(r->code >= 400 && r->code <= 599);
		check(r->text[0] == '0' + r->code / 100);
	}
	if (r->type == MR_REPLBODY)
		check(r->body >= pkt + 5 && r->body + r->body_len == hi);
	if (r->type == MR_OPTNEG &&
	    milter_negotiate(r, MILTER_ACT_ADDHDRS, MILTER_P_NOHELO, &a, &p,
			     &err) == 0)
		check((a & ~MILTER_ACT_ADDHDRS) == 0 &&
		      (p & ~MILTER_P_NOHELO) == 0);
}

static void
check_error(const char *error)
{
	size_t n;

	check(error != NULL);
	n = strlen(error);
	check(n > 0 && n < 80);
	for (; *error != '\0'; error++)
		check((unsigned char)*error >= 0x20 &&
		      (unsigned char)*error < 0x7f);
}

/* Parses all of buf; the types of the replies into types (up to 64),
 * the count returned; -2 - the count before an error. */
static int
parse_all(const unsigned char *buf, size_t len, int *types)
{
	size_t off = 0;
	int n = 0;

	while (off < len) {
		struct milter_reply r;
		size_t used = 0;
		const char *err = NULL;
		int rc = milter_reply_parse(buf + off, len - off, &r, &used,
					    &err);

		check(rc >= -1 && rc <= 1);
		if (rc < 0) {
			check_error(err);
			return -2 - n;
		}
		if (rc == 0)
			break;
		check(used >= 5 && used <= 4 + MILTER_REPLY_MAX &&
		      used <= len - off);
		check_reply(&r, buf + off, used);
		if (n < 64)
			types[n] = r.type;
		n++;
		off += used;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	int t1[64], t2[64], n1, n2;
	size_t split;

	if (size < 1)
		return 0;
	split = data[0];
	data++;
	size--;
	/* exactly the received bytes: ASan sees any read past them */
	buf = malloc(size > 0 ? size : 1);
	memcpy(buf, data, size);
	n1 = parse_all(buf, size, t1);
	/* the same stream with only a prefix there first: what parsed in
	 * the prefix is what parsed in the whole */
	split = size > 0 ? split % (size + 1) : 0;
	n2 = parse_all(buf, split, t2);
	if (n2 >= 0 && n1 >= 0)
		check(n2 <= n1);
	for (int i = 0; i < 64 && n2 >= 0 && n1 >= 0 && i < n2; i++)
		check(t1[i] == t2[i]);
	free(buf);
	return 0;
}
