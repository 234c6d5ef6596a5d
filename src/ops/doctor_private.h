/*
 * What the doctor's files (doctor.c, doctor_net.c, doctor_tls.c,
 * doctor_dns.c) share: the run's context, the reporting function and
 * the bounded network helpers.
 */
#ifndef GODWIT_DOCTOR_PRIVATE_H
#define GODWIT_DOCTOR_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "ops/doctor_types.h"

struct config;
struct event_base;
struct dns_resolver;

struct doctor {
	const struct config *c;
	struct doctor_options o;
	doctor_line_fn *fn;
	void *arg;
	unsigned nfail;
	char **domains;		/* the local domains of the user database */
	size_t ndomains;
	/* the local domains that have a catch-all alias ("@domain") */
	char **catchall;
	size_t ncatchall;
	struct event_base *dns_base;	/* doctor_dns.c, on first use */
	struct dns_resolver *dns;
	bool dns_failed;		/* no resolver could be made */
	bool dns_offline;		/* DNS does not answer: WARN, not FAIL */
};

void doctor_say(struct doctor *d, enum doctor_status st, const char *check,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A connection of the doctor's: blocking, every read and write bounded
 * by the run's timeout, TLS when ssl is set. */
struct dconn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	unsigned timeout_ms;
	uint64_t deadline_ms;	/* the whole conversation */
	char buf[4096];
	size_t len;
};

/* Connects to sa within timeout_ms. 0, or -1 with err set. */
int dconn_open(struct dconn *c, const struct sockaddr *sa, socklen_t len,
	       unsigned timeout_ms, char *err, size_t errsize);
/* TLS handshake over c (no certificate verification: the doctor looks
 * at the certificate itself). 0, or -1 with err. */
int dconn_tls(struct dconn *c, const char *sni, char *err, size_t errsize);
int dconn_send(struct dconn *c, const char *line);
/* One line without its CRLF; -1 on timeout, close or a line too long. */
int dconn_line(struct dconn *c, char *line, size_t size);
/* A whole SMTP reply: its code (the last line's text in text), or -1. */
int dconn_reply(struct dconn *c, char *text, size_t size);
void dconn_close(struct dconn *c);

/* sa's address in text, with the port: "127.0.0.1:25", "[::1]:25". */
void doctor_addr_text(const struct sockaddr *sa, char *buf, size_t size);
/* Whether sa is loopback, private (RFC 1918, ULA), link-local or CGNAT:
 * an address the Internet cannot reach. */
bool doctor_addr_private(const struct sockaddr *sa);

/* Whether the network c lies inside one the Internet cannot reach. */
struct cidr;
bool doctor_net_private(const struct cidr *c);

/* DNS through the configuration's resolver, each lookup bounded by the
 * run's timeout (doctor_dns.c). The first address of the first MX host
 * of domain: 0, or -1 when DNS gave none. */
int doctor_dns_mx_addr(struct doctor *d, const char *domain,
		       struct sockaddr_storage *ss, socklen_t *len);
void doctor_dns_close(struct doctor *d);
/* One lookup; NULL when no resolver could be made or no answer came
 * in time (caller frees with dns_answer_free()). */
struct dns_answer;
struct dns_answer *doctor_lookup(struct doctor *d, const char *name,
				 int rrtype);
/* Whether DNS answered (records, NODATA, NXDOMAIN): not a timeout. */
bool doctor_answered(const struct dns_answer *a);

/* The machine's addresses of family, without loopback and link-local,
 * port set, at most max (doctor_net.c). */
size_t doctor_host_addrs(int family, unsigned port,
			 struct sockaddr_storage *out, size_t max);
/* Whether sa is 0.0.0.0 or ::. */
bool doctor_addr_wildcard(const struct sockaddr *sa);

/* The checks, one group per file. */
void doctor_listeners(struct doctor *d);		/* doctor_net.c */
void doctor_relay_probe(struct doctor *d);		/* doctor_net.c */
void doctor_outbound(struct doctor *d);			/* doctor_net.c */
void doctor_tls(struct doctor *d);			/* doctor_tls.c */
/* The certificate a listener at where served on ssl: expired (FAIL),
 * or not one of tls.certificates (WARN: not reloaded). */
void doctor_tls_served(struct doctor *d, const char *where, SSL *ssl);
void doctor_dns(struct doctor *d);			/* doctor_dns.c */
/* The published records of every local domain against `godwit dns`;
 * sets dns_offline when the first lookup gets no answer. */
void doctor_records(struct doctor *d);			/* doctor_records.c */

#endif
