/*
 * The PROXY protocol header (haproxy's proxy-protocol.txt, versions 1 and
 * 2): what a TCP load balancer sends first on each connection it forwards
 * so that the server learns the client's address. Pure parsing, no I/O.
 *
 * Both versions are taken on one listener, as Postfix's
 * smtpd_upstream_proxy_protocol = haproxy and Dovecot's haproxy = yes do:
 * the first octet tells them apart ('P' for the text line of version 1,
 * CR for the binary signature of version 2); anything else is an error.
 *
 * Version 1: one line of at most PROXY_V1_MAX octets, CRLF included:
 *	PROXY TCP4 <src4> <dst4> <sport> <dport>\r\n
 *	PROXY TCP6 <src6> <dst6> <sport> <dport>\r\n
 *	PROXY UNKNOWN[ anything]\r\n
 * single spaces, addresses as inet_pton() reads them (no host names, no
 * scope), ports decimal 0..65535 without a sign or leading zeros.
 *
 * Version 2: the 12-octet signature, a version/command octet (0x20 LOCAL,
 * 0x21 PROXY), a family/transport octet, a 16-bit big-endian length, then
 * that many octets: the addresses of the family (TCP4: 12, TCP6: 36,
 * UNIX: 216) followed by TLVs (type, 16-bit length, value), which are
 * walked to check that they fit exactly but otherwise skipped. The whole
 * header may be at most PROXY_HEADER_MAX octets; a longer one is refused
 * as soon as its length field is seen.
 *
 * What the result means (struct proxy_info):
 *	local	LOCAL (a balancer's health check), PROXY UNKNOWN, family
 *		UNSPEC or UNIX: the header carries no client address and the
 *		connection's own addresses stand.
 *	else	src/dst are the client's and the address the client reached,
 *		with their ports. An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 *		what a dual-stack balancer sends for an IPv4 client) is given
 *		as the IPv4 address it stands for, so IPv4 access lists,
 *		limits and bans apply to it.
 * Datagram transports (UDP, UNIX dgram), other versions and commands are
 * errors: a stream server has no use for them.
 *
 * Resumable: the caller hands in everything received so far, from the
 * first octet. While the header is incomplete proxy_parse() returns 0
 * (need more) and guarantees that all n octets given belong to the
 * header, so the caller may consume them from the socket; *need_r is the
 * least total the header can have (for version 2 its exact length once
 * the first 16 octets are in). When complete it returns the header's
 * length: the octets after it are the client's protocol and are left to
 * the caller.
 */
#ifndef GODWIT_PROXY_PROTO_H
#define GODWIT_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Version 1's longest line, CRLF included (the specification's 107). */
#define PROXY_V1_MAX 107
/* The fixed part of version 2: signature, version/command, family, length. */
#define PROXY_V2_FIXED 16
/*
 * The longest header taken, version 2 with its TLVs: a balancer sends
 * the addresses and a few short TLVs (ALPN, authority, unique id, TLS
 * details); a kilobyte and a half is room for all of them and caps what
 * an unauthenticated peer makes us hold.
 */
#define PROXY_HEADER_MAX 1536

struct proxy_info {
	int version;	/* 1 or 2 */
	bool local;	/* no address in the header: keep the connection's */
	struct sockaddr_storage src;	/* the client (when !local) */
	socklen_t srclen;
	struct sockaddr_storage dst;	/* the address it connected to */
	socklen_t dstlen;
};

/*
 * A version 2 LOCAL header (no address): what a balancer's health check
 * sends, and what `godwit doctor` sends to a proxy_protocol listener.
 */
extern const unsigned char proxy_v2_local[PROXY_V2_FIXED];

/*
 * The header at the start of p[0..n): its length (> 0) with *r filled;
 * 0 if more octets are needed (*need_r: at least how many in all); -1 if
 * it is not a valid PROXY header (*error_r: a short static text).
 */
int proxy_parse(const unsigned char *p, size_t n, struct proxy_info *r,
		size_t *need_r, const char **error_r);

#endif
