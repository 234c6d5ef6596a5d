/*
 * godwit doctor, over the network (ops/doctor_private.h): every listener
 * connected to on each of its addresses and its greeting read, the
 * classic relay tricks tried on the MX listener (RCPT only, never DATA),
 * and a connection out to port 25. Blocking sockets, each connect and
 * read bounded by the run's timeout and each conversation by a deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "daemon/config.h"
#include "lib/cidr.h"
#include "lib/util.h"
#include "mail/proxy_proto.h"
#include "ops/doctor_private.h"

#define HOST_ADDRS_MAX 8	/* a wildcard listener: addresses tried */

int
dconn_open(struct dconn *c, const struct sockaddr *sa, socklen_t len,
	   unsigned timeout_ms, char *err, size_t errsize)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct pollfd p;
	int e = 0;
	socklen_t elen = sizeof(e);

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	c->deadline_ms = mono_ms() + 4 * (uint64_t)timeout_ms;
	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
			SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		goto fail;
	if (connect(c->fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		p = (struct pollfd){.fd = c->fd, .events = POLLOUT};
		if (poll(&p, 1, (int)timeout_ms) == 0) {
			snprintf(err, errsize, "no answer within %u ms",
				 timeout_ms);
			dconn_close(c);
			return -1;
		}
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0 ||
		    e != 0) {
			errno = e;
			goto fail;
		}
	}
	if (fcntl(c->fd, F_SETFL, 0) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errsize, "%s", strerror(errno));
	dconn_close(c);
	return -1;
}

int
dconn_tls(struct dconn *c, const char *sni, char *err, size_t errsize)
{
	unsigned long e;

	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    (c->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		goto fail;
	if (sni != NULL)
		SSL_set_tlsext_host_name(c->ssl, sni);
	if (SSL_connect(c->ssl) == 1)
		return 0;
fail:
	e = ERR_get_error();
	snprintf(err, errsize, "TLS handshake failed: %s",
		 e != 0 ? ERR_reason_error_string(e) : "closed or timed out");
	ERR_clear_error();
	return -1;
}

int
dconn_send(struct dconn *c, const char *line)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	if (c->ssl != NULL)
		return SSL_write(c->ssl, buf, n) == n ? 0 : -1;
	return send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static ssize_t
dconn_read(struct dconn *c)
{
	ssize_t n;
	int k;

	if (mono_ms() > c->deadline_ms || c->len >= sizeof(c->buf))
		return -1;
	if (c->ssl != NULL) {
		k = SSL_read(c->ssl, c->buf + c->len,
			     (int)(sizeof(c->buf) - c->len));
		n = k > 0 ? k : -1;
	} else
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

int
dconn_line(struct dconn *c, char *line, size_t size)
{
	char *nl;
	size_t n;

	while ((nl = memchr(c->buf, '\n', c->len)) == NULL)
		if (dconn_read(c) <= 0)
			return -1;
	n = (size_t)(nl - c->buf);
	if (n > 0 && c->buf[n - 1] == '\r')
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(line, c->buf, n);
	line[n] = '\0';
	n = (size_t)(nl - c->buf) + 1;
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return 0;
}

int
dconn_reply(struct dconn *c, char *text, size_t size)
{
	char line[1024];
	unsigned i;

	for (i = 0; i < 100; i++) {
		if (dconn_line(c, line, sizeof(line)) < 0 ||
		    strlen(line) < 3 || line[0] < '1' || line[0] > '5')
			return -1;
		if (line[3] == '-')
			continue;
		snprintf(text, size, "%s", line);
		return atoi(line);
	}
	return -1;
}

void
dconn_close(struct dconn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->ctx != NULL) {
		SSL_CTX_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* What each protocol greets with, and whether TLS comes first. */
static const char *
greeting_of(enum listener_proto p, bool *tls_r)
{
	*tls_r = p == PROTO_SUBMISSIONS || p == PROTO_POP3S ||
		 p == PROTO_IMAPS;
	switch (p) {
	case PROTO_SMTP:
	case PROTO_SUBMISSION:
	case PROTO_SUBMISSIONS:
		return "220";
	case PROTO_POP3:
	case PROTO_POP3S:
		return "+OK";
	case PROTO_IMAP:
	case PROTO_IMAPS:
		return "* OK";
	default:
		return NULL;
	}
}

/* How the doctor says goodbye to a protocol it greeted. */
static const char *
bye_of(enum listener_proto p)
{
	return p == PROTO_IMAP || p == PROTO_IMAPS ? "d9 LOGOUT" : "QUIT";
}

/* Whether the words of line (split at spaces and brackets) include tok,
 * without case: a capability in an IMAP response. */
static bool
has_word(const char *line, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *p = line; *p != '\0'; p++) {
		if (p != line && p[-1] != ' ' && p[-1] != '[')
			continue;
		if (strncasecmp(p, tok, n) == 0 &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == ']'))
			return true;
	}
	return false;
}

/* The handshake after a STARTTLS (or STLS) the server said yes to, and
 * the certificate it serves. */
static void
starttls_done(struct doctor *d, struct dconn *c, const char *where)
{
	char err[256];

	c->len = 0;	/* nothing said before the handshake counts */
	if (dconn_tls(c, d->c->hostname, err, sizeof(err)) < 0) {
		doctor_say(d, DOCTOR_FAIL, "tls", "%s: STARTTLS: %s", where,
			   err);
		return;
	}
	doctor_tls_served(d, where, c->ssl);
}

static void
no_starttls(struct doctor *d, const char *where, const char *what)
{
	doctor_say(d, DOCTOR_WARN, "tls", "%s: no %s offered, although "
		   "tls.certificates is set: passwords cannot be sent; see "
		   "the server's log", where, what);
}

/*
 * Reads an IMAP command's response up to its tagged line (tag "dN "):
 * whether an untagged CAPABILITY line named STARTTLS (*starttls_r, may
 * be NULL), and whether the tagged status is OK.
 */
static bool
imap_response(struct dconn *c, const char *tag, bool *starttls_r)
{
	char line[1024];
	size_t n = strlen(tag);

	for (unsigned i = 0; i < 50; i++) {
		if (dconn_line(c, line, sizeof(line)) < 0)
			return false;
		if (starttls_r != NULL &&
		    strncasecmp(line, "* CAPABILITY ", 13) == 0)
			*starttls_r |= has_word(line, "STARTTLS");
		if (strncmp(line, tag, n) == 0 && line[n] == ' ')
			return strncasecmp(line + n + 1, "OK", 2) == 0;
	}
	return false;
}

/* After an IMAP greeting on 143: STARTTLS among the capabilities (the
 * greeting's [CAPABILITY …] or a CAPABILITY command), then the handshake
 * and the certificate served through it. */
static void
probe_imap_starttls(struct doctor *d, struct dconn *c, const char *where,
		    const char *greeting)
{
	bool offered = has_word(greeting, "STARTTLS");

	if (!offered && (dconn_send(c, "d1 CAPABILITY") < 0 ||
			 !imap_response(c, "d1", &offered)))
		return;
	if (!offered) {
		no_starttls(d, where, "STARTTLS");
		return;
	}
	if (dconn_send(c, "d2 STARTTLS") < 0 || !imap_response(c, "d2", NULL)) {
		doctor_say(d, DOCTOR_WARN, "tls", "%s: STARTTLS refused", where);
		return;
	}
	starttls_done(d, c, where);
}

/* After a POP3 greeting on 110: STLS in CAPA (RFC 2595), then as IMAP. */
static void
probe_pop3_stls(struct doctor *d, struct dconn *c, const char *where)
{
	char line[512];
	bool offered = false;
	unsigned i;

	if (dconn_send(c, "CAPA") < 0 || dconn_line(c, line, sizeof(line)) < 0 ||
	    strncmp(line, "+OK", 3) != 0)
		return;
	for (i = 0; i < 100; i++) {
		if (dconn_line(c, line, sizeof(line)) < 0)
			return;
		if (strcmp(line, ".") == 0)
			break;
		offered |= strcasecmp(line, "STLS") == 0;
	}
	if (i == 100)
		return;
	if (!offered) {
		no_starttls(d, where, "STLS");
		return;
	}
	if (dconn_send(c, "STLS") < 0 || dconn_line(c, line, sizeof(line)) < 0 ||
	    strncmp(line, "+OK", 3) != 0) {
		doctor_say(d, DOCTOR_WARN, "tls", "%s: STLS refused", where);
		return;
	}
	starttls_done(d, c, where);
}

/* After an SMTP greeting: EHLO, then STARTTLS when offered, and the
 * certificate served through it (doctor_tls_served()). */
static void
probe_starttls(struct doctor *d, struct dconn *c, const char *where)
{
	char line[512];
	bool offered = false;
	unsigned i;

	snprintf(line, sizeof(line), "EHLO %s", d->c->hostname);
	if (dconn_send(c, line) < 0)
		return;
	for (i = 0; i < 100; i++) {
		if (dconn_line(c, line, sizeof(line)) < 0 ||
		    strncmp(line, "250", 3) != 0)
			return;
		offered |= strcasecmp(line + 4, "STARTTLS") == 0;
		if (line[3] != '-')
			break;
	}
	if (!offered) {
		doctor_say(d, DOCTOR_WARN, "tls", "%s: no STARTTLS offered, "
			   "although tls.certificates is set: mail arrives in "
			   "the clear; see the server's log", where);
		return;
	}
	if (dconn_send(c, "STARTTLS") < 0 ||
	    dconn_reply(c, line, sizeof(line)) != 220) {
		doctor_say(d, DOCTOR_WARN, "tls", "%s: STARTTLS refused", where);
		return;
	}
	starttls_done(d, c, where);
}

/* The greeting line came: the rest of a multi-line one read, then the
 * STARTTLS (STLS) check on the listeners that offer it when the server
 * has certificates. */
static void
greeted(struct doctor *d, const struct config_listener *li, struct dconn *c,
	const char *where, char *line, bool tls)
{
	char more[512], shown[64];
	bool smtp = li->proto == PROTO_SMTP || li->proto == PROTO_SUBMISSION;
	size_t n = strnlen(line, sizeof(shown) - 1);

	/* cut at 60 characters, as the report's lines are */
	memcpy(shown, line, n);
	shown[n] = '\0';
	if (n > 60)
		strcpy(shown + 57, "...");
	doctor_say(d, DOCTOR_OK, "listener", "%s (%s) %s%s: %s", li->name,
		   listener_proto_name(li->proto), where, tls ? " TLS" : "",
		   shown);
	if (tls || d->c->tls.ncerts == 0)
		return;
	if (li->proto == PROTO_IMAP) {
		probe_imap_starttls(d, c, where, line);
		return;
	}
	if (li->proto == PROTO_POP3) {
		probe_pop3_stls(d, c, where);
		return;
	}
	if (!smtp)
		return;
	if (line[3] == '-' && dconn_reply(c, more, sizeof(more)) != 220)
		return;
	probe_starttls(d, c, where);
}

/*
 * A proxy_protocol listener (net/session_proxy.h) takes only its
 * balancers: the doctor may speak to it as a balancer's health check
 * does (a PROXY v2 LOCAL header, then the protocol from its own address)
 * if the address it connects from is among proxy_trusted_networks.
 */
static bool
proxy_refuses(const struct config_listener *li, const struct sockaddr *src)
{
	return li->proxy_protocol && !cidr_list_match(&li->proxy_trusted, src);
}

/* After the connect: the LOCAL header on a proxy_protocol listener. */
static int
proxy_hello(const struct config_listener *li, struct dconn *c, char *err,
	    size_t errsize)
{
	if (!li->proxy_protocol)
		return 0;
	if (send(c->fd, proxy_v2_local, sizeof(proxy_v2_local),
		 MSG_NOSIGNAL) == (ssize_t)sizeof(proxy_v2_local))
		return 0;
	snprintf(err, errsize, "sending the PROXY header: %s",
		 strerror(errno));
	return -1;
}

/* Connects to sa as a client of li and reads the greeting. */
static void
probe_one(struct doctor *d, const struct config_listener *li,
	  const struct sockaddr *sa, socklen_t len)
{
	char where[80], err[256], line[512];
	const char *want;
	struct dconn c;
	unsigned t = d->o.timeout_ms + (unsigned)li->greet_pause_ms;
	bool tls;

	doctor_addr_text(sa, where, sizeof(where));
	want = greeting_of(li->proto, &tls);
	/* the doctor connects from the address it connects to */
	if ((li->allow.n > 0 && !cidr_list_match(&li->allow, sa)) ||
	    cidr_list_match(&li->deny, sa)) {
		doctor_say(d, DOCTOR_WARN, "listener",
			   "%s (%s) %s: not tried: its allow/deny lists keep "
			   "this host out; connect from an allowed host to "
			   "check it", li->name,
			   listener_proto_name(li->proto), where);
		return;
	}
	if (proxy_refuses(li, sa)) {
		doctor_say(d, DOCTOR_WARN, "listener",
			   "%s (%s) %s: not tried: proxy_protocol is on and "
			   "this host is not in proxy_trusted_networks; check "
			   "it through the balancer", li->name,
			   listener_proto_name(li->proto), where);
		return;
	}
	if (dconn_open(&c, sa, len, t, err, sizeof(err)) < 0 ||
	    proxy_hello(li, &c, err, sizeof(err)) < 0) {
		dconn_close(&c);
		doctor_say(d, DOCTOR_FAIL, "listener",
			   "%s (%s) %s: cannot connect: %s; is `godwit "
			   "serve` running, and does a firewall let it in?",
			   li->name, listener_proto_name(li->proto), where,
			   err);
		return;
	}
	if (tls && dconn_tls(&c, d->c->hostname, err, sizeof(err)) < 0) {
		doctor_say(d, DOCTOR_FAIL, "listener", "%s (%s) %s: %s",
			   li->name, listener_proto_name(li->proto), where,
			   err);
		dconn_close(&c);
		return;
	}
	if (tls)
		doctor_tls_served(d, where, c.ssl);
	if (want == NULL) {
		doctor_say(d, DOCTOR_OK, "listener", "%s (%s) %s: connected",
			   li->name, listener_proto_name(li->proto), where);
	} else if (dconn_line(&c, line, sizeof(line)) < 0 ||
		   strncmp(line, want, strlen(want)) != 0) {
		doctor_say(d, DOCTOR_FAIL, "listener",
			   "%s (%s) %s: connected, but no greeting \"%s\" "
			   "within %u ms; see the server's log", li->name,
			   listener_proto_name(li->proto), where, want, t);
	} else {
		greeted(d, li, &c, where, line, tls);
	}
	if (want != NULL)
		(void)dconn_send(&c, bye_of(li->proto));
	dconn_close(&c);
}

/* The machine's addresses of family (no loopback, no link-local), with
 * port: what a wildcard listener answers on besides loopback. */
size_t
doctor_host_addrs(int family, unsigned port, struct sockaddr_storage *out,
	   size_t max)
{
	struct ifaddrs *ifa, *i;
	size_t n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i != NULL && n < max; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != family)
			continue;
		if (family == AF_INET) {
			struct sockaddr_in s = *(struct sockaddr_in *)i->ifa_addr;
			if ((ntohl(s.sin_addr.s_addr) >> 24) == 127)
				continue;
			s.sin_port = htons((uint16_t)port);
			memcpy(&out[n++], &s, sizeof(s));
		} else {
			struct sockaddr_in6 s =
				*(struct sockaddr_in6 *)i->ifa_addr;
			if (IN6_IS_ADDR_LOOPBACK(&s.sin6_addr) ||
			    IN6_IS_ADDR_LINKLOCAL(&s.sin6_addr))
				continue;
			s.sin6_port = htons((uint16_t)port);
			s.sin6_scope_id = 0;
			memcpy(&out[n++], &s, sizeof(s));
		}
	}
	freeifaddrs(ifa);
	return n;
}

bool
doctor_addr_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(
		       &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* The address to connect to for a, a wildcard made loopback. */
static void
target_of(const struct listen_addr *a, struct sockaddr_storage *ss,
	  socklen_t *len, bool *wild_r)
{
	*ss = a->ss;
	*len = a->len;
	*wild_r = false;
	if (a->ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		if (s->sin_addr.s_addr == htonl(INADDR_ANY)) {
			s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			*wild_r = true;
		}
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr)) {
			s->sin6_addr = in6addr_loopback;
			*wild_r = true;
		}
	}
}

static void
probe_addr(struct doctor *d, const struct config_listener *li,
	   const struct listen_addr *a)
{
	struct sockaddr_storage ss, more[HOST_ADDRS_MAX];
	socklen_t len;
	size_t n, i;
	bool wild;
	unsigned port;

	target_of(a, &ss, &len, &wild);
	probe_one(d, li, (struct sockaddr *)&ss, len);
	if (!wild)
		return;
	port = ss.ss_family == AF_INET
		       ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	n = doctor_host_addrs(ss.ss_family, port, more, HOST_ADDRS_MAX);
	for (i = 0; i < n; i++)
		probe_one(d, li, (struct sockaddr *)&more[i],
			  more[i].ss_family == AF_INET
				  ? sizeof(struct sockaddr_in)
				  : sizeof(struct sockaddr_in6));
}

void
doctor_listeners(struct doctor *d)
{
	size_t i, j;
	bool v4 = false, v6 = false;

	for (i = 0; i < d->c->nlisteners; i++) {
		const struct config_listener *li = &d->c->listeners[i];
		for (j = 0; j < li->naddrs; j++) {
			v4 |= li->addrs[j].ss.ss_family == AF_INET;
			v6 |= li->addrs[j].ss.ss_family == AF_INET6;
			probe_addr(d, li, &li->addrs[j]);
		}
	}
	if (!v4 || !v6)
		doctor_say(d, DOCTOR_WARN, "listener",
			   "no listener on %s: add \"%s\" addresses to "
			   "listen on both families",
			   v4 ? "IPv6" : "IPv4", v4 ? "[::]:25" : "0.0.0.0:25");
}

/* The relay probe's recipient number i (0..RELAY_FORMS-1) for our
 * domain and the outside one, in the classic spellings. */
#define RELAY_FORMS 5
static void
relay_rcpt(unsigned i, const char *ours, const char *out, char *buf,
	   size_t size)
{
	switch (i) {
	case 0:
		snprintf(buf, size, "doctor-probe@%s", out);
		break;
	case 1:
		snprintf(buf, size, "doctor-probe%%%s@%s", out, ours);
		break;
	case 2:
		snprintf(buf, size, "%s!doctor-probe@%s", out, ours);
		break;
	case 3:
		snprintf(buf, size, "\"doctor-probe@%s\"@%s", out, ours);
		break;
	default:
		snprintf(buf, size, "@%s:doctor-probe@%s", ours, out);
		break;
	}
}

/* Whether src is in smtp.trusted_networks, and by a private network. */
static bool
src_trusted(const struct doctor *d, const struct sockaddr *src,
	    bool *private_r)
{
	const struct cidr_list *t = &d->c->smtp.trusted_networks;
	size_t i;

	*private_r = false;
	for (i = 0; i < t->n; i++)
		if (cidr_match(&t->v[i], src)) {
			*private_r = doctor_net_private(&t->v[i]);
			return true;
		}
	return false;
}

struct relay_probe {
	const char *where;		/* the MX address */
	const char *ours;
	bool catchall;			/* ours has a catch-all alias */
	unsigned refused, accepted;
};

static void
relay_accepted(struct doctor *d, struct relay_probe *p, const char *from,
	       const char *rcpt, const char *reply,
	       const struct sockaddr *src, unsigned form)
{
	char s[80];
	bool priv;

	sockaddr_ntop(src, s, sizeof(s));
	p->accepted++;
	if (form >= 1 && form <= 3 && p->catchall)
		doctor_say(d, DOCTOR_OK, "relay",
			   "%s: RCPT TO:<%s> taken by the catch-all of %s "
			   "(delivered here, not relayed)", p->where, rcpt,
			   p->ours);
	else if (src_trusted(d, src, &priv) && priv)
		doctor_say(d, DOCTOR_WARN, "relay",
			   "%s: RCPT TO:<%s> accepted (MAIL FROM:<%s>), but "
			   "the probe came from %s, a trusted network; "
			   "probe from outside to be sure (swaks --server "
			   "HOST --to %s)", p->where, rcpt, from, s, rcpt);
	else
		doctor_say(d, DOCTOR_FAIL, "relay",
			   "%s: OPEN RELAY: RCPT TO:<%s> accepted from %s "
			   "with MAIL FROM:<%s> (%s); narrow "
			   "smtp.trusted_networks and restart", p->where,
			   rcpt, s, from, reply);
}

/* One session: MAIL FROM:<from>, then every recipient form; RSET, QUIT.
 * -1 when there was no server to talk to. */
static int
relay_session(struct doctor *d, struct relay_probe *p,
	      const struct config_listener *li, const struct sockaddr *sa,
	      socklen_t len, const char *from)
{
	struct sockaddr_storage src;
	socklen_t slen = sizeof(src);
	char err[256], line[600], rcpt[300];
	struct dconn c;
	unsigned i;
	int code;

	if (dconn_open(&c, sa, len, d->o.timeout_ms +
		       (unsigned)li->greet_pause_ms, err, sizeof(err)) < 0 ||
	    proxy_hello(li, &c, err, sizeof(err)) < 0 ||
	    getsockname(c.fd, (struct sockaddr *)&src, &slen) < 0 ||
	    dconn_reply(&c, line, sizeof(line)) != 220) {
		doctor_say(d, DOCTOR_WARN, "relay", "%s: relay probe not run: "
			   "no greeting (%s)", p->where,
			   c.fd < 0 ? err : "see the listener check");
		dconn_close(&c);
		return -1;
	}
	snprintf(line, sizeof(line), "EHLO %s", d->c->hostname);
	code = dconn_send(&c, line) == 0 ? dconn_reply(&c, line, 600) : -1;
	snprintf(line, sizeof(line), "MAIL FROM:<%s>", from);
	if (code != 250 || dconn_send(&c, line) < 0 ||
	    dconn_reply(&c, line, sizeof(line)) / 100 != 2) {
		doctor_say(d, DOCTOR_WARN, "relay", "%s: relay probe with "
			   "MAIL FROM:<%s> not run: EHLO or MAIL refused",
			   p->where, from);
		dconn_close(&c);
		return 0;
	}
	for (i = 0; i < RELAY_FORMS; i++) {
		relay_rcpt(i, p->ours, d->o.probe_domain, rcpt, sizeof(rcpt));
		snprintf(line, sizeof(line), "RCPT TO:<%s>", rcpt);
		if (dconn_send(&c, line) < 0 ||
		    (code = dconn_reply(&c, line, sizeof(line))) < 0) {
			doctor_say(d, DOCTOR_WARN, "relay", "%s: the server "
				   "closed the relay probe at RCPT TO:<%s>",
				   p->where, rcpt);
			break;
		}
		if (code / 100 == 2)
			relay_accepted(d, p, from, rcpt, line,
				       (struct sockaddr *)&src, i);
		else
			p->refused++;
	}
	if (dconn_send(&c, "RSET") == 0 &&
	    dconn_reply(&c, line, sizeof(line)) > 0 &&
	    dconn_send(&c, "QUIT") == 0)
		(void)dconn_reply(&c, line, sizeof(line));
	dconn_close(&c);
	return 0;
}

void
doctor_relay_probe(struct doctor *d)
{
	const struct config_listener *li = NULL;
	struct relay_probe p = {0};
	struct sockaddr_storage ss;
	char where[80], from[300];
	socklen_t len;
	size_t i;
	bool wild;

	for (i = 0; i < d->c->nlisteners && li == NULL; i++)
		if (d->c->listeners[i].proto == PROTO_SMTP &&
		    d->c->listeners[i].naddrs > 0)
			li = &d->c->listeners[i];
	if (li == NULL) {
		doctor_say(d, DOCTOR_OK, "relay", "no MX listener: nothing "
			   "to probe");
		return;
	}
	p.ours = d->ndomains > 0 ? d->domains[0] : d->c->hostname;
	for (i = 0; i < d->ncatchall; i++)
		p.catchall |= strcmp(d->catchall[i], p.ours) == 0;
	target_of(&li->addrs[0], &ss, &len, &wild);
	doctor_addr_text((struct sockaddr *)&ss, where, sizeof(where));
	p.where = where;
	if (proxy_refuses(li, (struct sockaddr *)&ss)) {
		doctor_say(d, DOCTOR_WARN, "relay", "%s: relay probe not run: "
			   "proxy_protocol is on and this host is not in "
			   "proxy_trusted_networks", where);
		return;
	}
	snprintf(from, sizeof(from), "doctor@%s", p.ours);
	if (relay_session(d, &p, li, (struct sockaddr *)&ss, len, from) < 0)
		return;
	snprintf(from, sizeof(from), "doctor@%s", d->o.probe_domain);
	(void)relay_session(d, &p, li, (struct sockaddr *)&ss, len, from);
	if (p.accepted == 0 && p.refused > 0)
		doctor_say(d, DOCTOR_OK, "relay",
			   "%s: the %u classic relay tricks (user@outside, "
			   "%%-hack, bang path, quoted, source route) were "
			   "all refused", where, p.refused);
}

/* "1.2.3.4:25", "[2001:db8::1]:25", numeric only. */
static int
parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct listen_addr a;
	const char *err;

	if (parse_listen_addr(s, &a, &err) < 0)
		return -1;
	*ss = a.ss;
	*len = a.len;
	free(a.text);
	return 0;
}

static void
outbound_try(struct doctor *d, const char *what,
	     const struct sockaddr_storage *ss, socklen_t len, bool smarthost)
{
	char where[80], err[256];
	struct dconn c;

	doctor_addr_text((const struct sockaddr *)ss, where, sizeof(where));
	if (dconn_open(&c, (const struct sockaddr *)ss, len, d->o.timeout_ms,
		       err, sizeof(err)) == 0) {
		doctor_say(d, DOCTOR_OK, "outbound", "%s %s: connected",
			   what, where);
		dconn_close(&c);
	} else if (smarthost)
		doctor_say(d, DOCTOR_WARN, "outbound",
			   "smarthost %s %s: cannot connect: %s; check "
			   "smarthost.host and port", what, where, err);
	else
		doctor_say(d, DOCTOR_FAIL, "outbound",
			   "%s %s: cannot connect: %s; outgoing port 25 "
			   "is blocked: ask your provider to open it, or "
			   "configure a smarthost", what, where, err);
}

void
doctor_outbound(struct doctor *d)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char what[300];

	if (d->c->smarthost.host != NULL) {
		doctor_say(d, DOCTOR_OK, "outbound",
			   "mail leaves through smarthost %s port %u",
			   d->c->smarthost.host, d->c->smarthost.port);
		return;
	}
	if (d->o.outbound_target != NULL) {
		if (parse_target(d->o.outbound_target, &ss, &len) < 0) {
			doctor_say(d, DOCTOR_WARN, "outbound",
				   "cannot parse the outbound target %s",
				   d->o.outbound_target);
			return;
		}
		outbound_try(d, "port 25 test target", &ss, len, false);
		return;
	}
	if (doctor_dns_mx_addr(d, d->o.outbound_domain, &ss, &len) < 0) {
		doctor_say(d, DOCTOR_WARN, "outbound",
			   "no DNS answer for the MX of %s: outgoing port 25 "
			   "not tested (offline?)", d->o.outbound_domain);
		return;
	}
	((struct sockaddr_in *)&ss)->sin_port = htons(25);
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(25);
	snprintf(what, sizeof(what), "MX of %s", d->o.outbound_domain);
	outbound_try(d, what, &ss, len, false);
}
