/*
 * The PROXY protocol header, versions 1 and 2 (see proxy_proto.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "mail/proxy_proto.h"

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

const unsigned char proxy_v2_local[PROXY_V2_FIXED] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
    0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00};

/* Version 2's family octet (high nibble) and transport (low nibble). */
enum {
	V2_AF_UNSPEC = 0,
	V2_AF_INET = 1,
	V2_AF_INET6 = 2,
	V2_AF_UNIX = 3,
	V2_STREAM = 1,
};

/* ---- addresses ------------------------------------------------------ */

static void
set_in4(struct sockaddr_storage *ss, socklen_t *len_r, const void *addr,
	uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	sin->sin_port = htons(port);
	*len_r = sizeof(*sin);
}

/* An IPv4-mapped address becomes the IPv4 address it stands for. */
static void
set_in6(struct sockaddr_storage *ss, socklen_t *len_r, const void *addr,
	uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct in6_addr a;

	memcpy(&a, addr, 16);
	if (IN6_IS_ADDR_V4MAPPED(&a)) {
		set_in4(ss, len_r, a.s6_addr + 12, port);
		return;
	}
	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = a;
	sin6->sin6_port = htons(port);
	*len_r = sizeof(*sin6);
}

/* ---- version 1 ------------------------------------------------------ */

/* A token of s[0..n) up to the next space or the end: its length. */
static size_t
token(const char *s, size_t n)
{
	const char *sp = memchr(s, ' ', n);

	return sp != NULL ? (size_t)(sp - s) : n;
}

/* An address of family af from the token t[0..n), into buf (16 octets). */
static int
v1_addr(const char *t, size_t n, int af, unsigned char *buf)
{
	char s[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(s))
		return -1;
	memcpy(s, t, n);
	s[n] = '\0';
	return inet_pton(af, s, buf) == 1 ? 0 : -1;
}

/* A port: 0..65535, decimal digits, no sign, no leading zero. */
static int
v1_port(const char *t, size_t n, uint16_t *port_r)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && t[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(t[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

/* The line after "PROXY ", CRLF removed: s[0..n). */
static int
v1_fields(const char *s, size_t n, struct proxy_info *r,
	  const char **error_r)
{
	unsigned char src[16], dst[16];
	const char *tok[4];
	size_t len[4], k;
	uint16_t sport, dport;
	int af;

	k = token(s, n);
	if (k == 7 && memcmp(s, "UNKNOWN", 7) == 0) {
		/* the rest, if any, is to be ignored (the specification) */
		r->local = true;
		return 0;
	}
	if (k == 4 && memcmp(s, "TCP4", 4) == 0)
		af = AF_INET;
	else if (k == 4 && memcmp(s, "TCP6", 4) == 0)
		af = AF_INET6;
	else {
		*error_r = "unknown protocol in a version 1 header";
		return -1;
	}
	s += k;
	n -= k;
	for (size_t i = 0; i < 4; i++) {
		if (n == 0 || s[0] != ' ') {
			*error_r = "missing field in a version 1 header";
			return -1;
		}
		s++;
		n--;
		tok[i] = s;
		len[i] = token(s, n);
		s += len[i];
		n -= len[i];
	}
	if (n != 0) {
		*error_r = "extra field in a version 1 header";
		return -1;
	}
	if (v1_addr(tok[0], len[0], af, src) < 0 ||
	    v1_addr(tok[1], len[1], af, dst) < 0) {
		*error_r = "bad address in a version 1 header";
		return -1;
	}
	if (v1_port(tok[2], len[2], &sport) < 0 ||
	    v1_port(tok[3], len[3], &dport) < 0) {
		*error_r = "bad port in a version 1 header";
		return -1;
	}
	if (af == AF_INET) {
		set_in4(&r->src, &r->srclen, src, sport);
		set_in4(&r->dst, &r->dstlen, dst, dport);
	} else {
		set_in6(&r->src, &r->srclen, src, sport);
		set_in6(&r->dst, &r->dstlen, dst, dport);
	}
	return 0;
}

static int
parse_v1(const unsigned char *p, size_t n, struct proxy_info *r,
	 size_t *need_r, const char **error_r)
{
	static const char prefix[] = "PROXY ";
	size_t plen = sizeof(prefix) - 1;
	size_t lim = n < PROXY_V1_MAX ? n : PROXY_V1_MAX;

	if (memcmp(p, prefix, n < plen ? n : plen) != 0) {
		*error_r = "not a PROXY header";
		return -1;
	}
	/* printable text, and CR only right before the LF */
	for (size_t i = 0; i < lim; i++) {
		if (p[i] == '\n') {
			if (i < plen + 1 || p[i - 1] != '\r') {
				*error_r = "version 1 header not ended by CRLF";
				return -1;
			}
			r->version = 1;
			if (v1_fields((const char *)p + plen, i - 1 - plen, r,
				      error_r) < 0)
				return -1;
			return (int)(i + 1);
		}
		if (p[i] == '\r' ? i + 1 < lim && p[i + 1] != '\n'
				 : p[i] < 0x20 || p[i] > 0x7e) {
			*error_r = "control character in a version 1 header";
			return -1;
		}
	}
	if (n >= PROXY_V1_MAX) {
		*error_r = "version 1 header longer than 107 octets";
		return -1;
	}
	*need_r = n + 1;
	return 0;
}

/* ---- version 2 ------------------------------------------------------ */

/* The TLVs of q[0..n) fit exactly: each one's length inside the header. */
static int
v2_tlvs(const unsigned char *q, size_t n)
{
	size_t off = 0;

	while (off < n) {
		size_t vlen;

		if (n - off < 3)
			return -1;
		vlen = (size_t)q[off + 1] << 8 | q[off + 2];
		if (vlen > n - off - 3)
			return -1;
		off += 3 + vlen;
	}
	return 0;
}

static int
parse_v2(const unsigned char *p, size_t n, struct proxy_info *r,
	 size_t *need_r, const char **error_r)
{
	static const size_t addr_len[] = {0, 12, 36, 216};
	const unsigned char *q = p + PROXY_V2_FIXED;
	size_t len, total, alen;
	unsigned fam, transport;

	if (memcmp(p, v2_sig, n < sizeof(v2_sig) ? n : sizeof(v2_sig)) != 0) {
		*error_r = "not a PROXY header";
		return -1;
	}
	if (n < PROXY_V2_FIXED) {
		*need_r = PROXY_V2_FIXED;
		return 0;
	}
	if ((p[12] >> 4) != 2) {
		*error_r = "unsupported version";
		return -1;
	}
	if ((p[12] & 0x0f) > 1) {
		*error_r = "unknown command";
		return -1;
	}
	len = (size_t)p[14] << 8 | p[15];
	total = PROXY_V2_FIXED + len;
	if (total > PROXY_HEADER_MAX) {
		*error_r = "header too long";
		return -1;
	}
	if (n < total) {
		*need_r = total;
		return 0;
	}
	r->version = 2;
	if ((p[12] & 0x0f) == 0) {
		/* LOCAL: the balancer's own connection, its addresses
		 * ignored as the specification says */
		r->local = true;
		return (int)total;
	}
	fam = p[13] >> 4;
	transport = p[13] & 0x0f;
	if (fam > V2_AF_UNIX) {
		*error_r = "unknown address family";
		return -1;
	}
	if (fam == V2_AF_UNSPEC) {
		r->local = true;
		return (int)total;
	}
	if (transport != V2_STREAM) {
		*error_r = "not a stream transport";
		return -1;
	}
	alen = addr_len[fam];
	if (len < alen) {
		*error_r = "addresses longer than the header";
		return -1;
	}
	if (v2_tlvs(q + alen, len - alen) < 0) {
		*error_r = "TLV overruns the header";
		return -1;
	}
	if (fam == V2_AF_UNIX) {
		r->local = true;
		return (int)total;
	}
	if (fam == V2_AF_INET) {
		set_in4(&r->src, &r->srclen, q, (uint16_t)(q[8] << 8 | q[9]));
		set_in4(&r->dst, &r->dstlen, q + 4,
			(uint16_t)(q[10] << 8 | q[11]));
	} else {
		set_in6(&r->src, &r->srclen, q, (uint16_t)(q[32] << 8 | q[33]));
		set_in6(&r->dst, &r->dstlen, q + 16,
			(uint16_t)(q[34] << 8 | q[35]));
	}
	return (int)total;
}

int
proxy_parse(const unsigned char *p, size_t n, struct proxy_info *r,
	    size_t *need_r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	*need_r = 0;
	*error_r = NULL;
	if (n == 0) {
		*need_r = 1;
		return 0;
	}
	if (p[0] == 'P')
		return parse_v1(p, n, r, need_r, error_r);
	if (p[0] == v2_sig[0])
		return parse_v2(p, n, r, need_r, error_r);
	*error_r = "not a PROXY header";
	return -1;
}
