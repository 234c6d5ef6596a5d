/*
 * godwit doctor (ops/doctor.h): the run, the report, and the checks that
 * read only the configuration and the data directory: relaying allowed
 * by the configuration, and a stuck queue. The network checks are in
 * doctor_net.c, the certificates in doctor_tls.c, DNS in doctor_dns.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/config.h"
#include "lib/cidr.h"
#include "lib/xalloc.h"
#include "ops/doctor.h"
#include "ops/doctor_private.h"
#include "store/queue.h"
#include "store/userdb.h"

const char *
doctor_status_name(enum doctor_status st)
{
	switch (st) {
	case DOCTOR_OK:
		return "OK";
	case DOCTOR_WARN:
		return "WARN";
	case DOCTOR_FAIL:
		return "FAIL";
	}
	return "?";
}

void
doctor_say(struct doctor *d, enum doctor_status st, const char *check,
	   const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (st == DOCTOR_FAIL)
		d->nfail++;
	d->fn(st, check, text, d->arg);
}

void
doctor_addr_text(const struct sockaddr *sa, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;
		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(buf, size, "%s:%u", a, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(buf, size, "[%s]:%u", a, ntohs(s->sin6_port));
	} else
		snprintf(buf, size, "?");
}

/* Whether the network key/prefix lies inside one that the Internet
 * cannot reach (loopback, RFC 1918, CGNAT, link-local, ULA). */
bool
doctor_net_private(const struct cidr *c)
{
	static const char *const nets[] = {
		"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12",
		"192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
		"::1/128", "fc00::/7", "fe80::/10",
	};
	struct sockaddr_storage ss;
	struct cidr p;
	const char *err;
	size_t i;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)c->family;
	if (c->family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, c->addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, c->addr, 16);
	for (i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		if (cidr_parse(nets[i], &p, &err) < 0 || p.family != c->family)
			continue;
		if (c->prefix >= p.prefix &&
		    cidr_match(&p, (struct sockaddr *)&ss))
			return true;
	}
	return false;
}

bool
doctor_addr_private(const struct sockaddr *sa)
{
	struct cidr c = {.family = sa->sa_family};

	if (sa->sa_family == AF_INET) {
		memcpy(c.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c.prefix = 32;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(c.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		       16);
		c.prefix = 128;
	} else
		return true;
	return doctor_net_private(&c);
}

static void
check_trusted(struct doctor *d)
{
	const struct cidr_list *t = &d->c->smtp.trusted_networks;
	char net[80];
	size_t i;

	if (t->n == 0) {
		doctor_say(d, DOCTOR_OK, "relay",
			   "smtp.trusted_networks is empty: only "
			   "authenticated clients may relay");
		return;
	}
	for (i = 0; i < t->n; i++) {
		const struct cidr *c = &t->v[i];
		unsigned wide = c->family == AF_INET ? 16 : 32;
		cidr_text(c, net, sizeof(net));
		if (doctor_net_private(c))
			doctor_say(d, DOCTOR_OK, "relay",
				   "smtp.trusted_networks: %s is a private "
				   "network", net);
		else if (c->prefix < wide)
			doctor_say(d, DOCTOR_FAIL, "relay",
				   "smtp.trusted_networks: %s is wider than "
				   "any private range: all of it may relay "
				   "through this server (an open relay); list "
				   "only your own hosts, or use submission "
				   "with AUTH", net);
		else
			doctor_say(d, DOCTOR_WARN, "relay",
				   "smtp.trusted_networks: %s is a public "
				   "network and may relay: make sure every "
				   "host in it is yours", net);
	}
}

static bool
listener_public(const struct config_listener *li)
{
	size_t i;

	for (i = 0; i < li->naddrs; i++)
		if (!doctor_addr_private((const void *)&li->addrs[i].ss))
			return true;
	return false;
}

/* The implicit-TLS port clients of li's protocol can use instead. */
static unsigned
tls_port_for(const struct config_listener *li)
{
	switch (li->proto) {
	case PROTO_POP3:
	case PROTO_POP3S:
		return listener_proto_port(PROTO_POP3S);
	case PROTO_IMAP:
	case PROTO_IMAPS:
		return listener_proto_port(PROTO_IMAPS);
	default:
		return listener_proto_port(PROTO_SUBMISSIONS);
	}
}

static void
check_plaintext_auth(struct doctor *d)
{
	size_t i;

	for (i = 0; i < d->c->nlisteners; i++) {
		const struct config_listener *li = &d->c->listeners[i];
		if (!li->auth || !li->plaintext_auth)
			continue;
		if (listener_public(li))
			doctor_say(d, DOCTOR_FAIL, "relay",
				   "listener %s: plaintext_auth on a public "
				   "address: passwords cross the network in "
				   "the clear and can be stolen to relay; "
				   "remove plaintext_auth (clients use "
				   "STARTTLS or port %u)", li->name,
				   tls_port_for(li));
		else
			doctor_say(d, DOCTOR_OK, "relay",
				   "listener %s: plaintext_auth only on "
				   "private addresses", li->name);
	}
}

static bool
domain_local(const struct doctor *d, const char *domain)
{
	size_t i;

	for (i = 0; i < d->ndomains; i++)
		if (strcasecmp(d->domains[i], domain) == 0)
			return true;
	return false;
}

static void
check_catchall(struct doctor *d, struct userdb *db, const char *domain)
{
	struct userdb_alias_list l = {0};
	char source[300];
	const char *at;
	size_t i;

	snprintf(source, sizeof(source), "@%s", domain);
	if (userdb_alias_lookup(db, source, &l) != 1)
		return;
	d->catchall = xreallocarray(d->catchall, d->ncatchall + 1,
				    sizeof(*d->catchall));
	d->catchall[d->ncatchall++] = xstrdup(domain);
	for (i = 0; i < l.n; i++) {
		at = strrchr(l.targets[i], '@');
		if (at != NULL && domain_local(d, at + 1))
			continue;
		doctor_say(d, DOCTOR_WARN, "relay",
			   "catch-all %s forwards to %s, outside: every "
			   "message to any name of %s, spam included, is "
			   "sent on from your address; forward named "
			   "aliases only", source, l.targets[i], domain);
	}
	userdb_alias_list_clear(&l);
}

static void
load_domains(struct doctor *d)
{
	struct userdb *db = NULL;
	char *err = NULL;
	size_t i;

	if (userdb_open(&d->c->userdb, true, &db, &err) < 0 ||
	    userdb_ping(db, &err) < 0 ||
	    db->ops->domain_list(db, &d->domains, &d->ndomains, &err) < 0) {
		doctor_say(d, DOCTOR_FAIL, "userdb",
			   "cannot read the user database: %s",
			   err != NULL ? err : "?");
		free(err);
		userdb_close(&db);
		return;
	}
	if (d->ndomains == 0)
		doctor_say(d, DOCTOR_WARN, "userdb",
			   "no local domain: add one with `godwit domain "
			   "add`");
	for (i = 0; i < d->ndomains; i++)
		check_catchall(d, db, d->domains[i]);
	userdb_close(&db);
}

/* Seconds since the queue id was made (its first 11 hex digits are the
 * milliseconds of its birth). */
static int64_t
id_age(const char *id, time_t now)
{
	char ms[12];

	memcpy(ms, id, 11);
	ms[11] = '\0';
	return (int64_t)now - (int64_t)(strtoull(ms, NULL, 16) / 1000);
}

static void
check_queue_dir(struct doctor *d, const char *state, uint64_t warn,
		uint64_t fail, const char *what)
{
	const char *dir = d->c->data_dir;
	size_t n = 0, i;
	char **ids = queue_ids(dir, state, &n);
	int64_t age;

	if (n == 0) {
		doctor_say(d, DOCTOR_OK, "queue", "%s: empty", state);
		return;
	}
	age = id_age(ids[0], time(NULL));
	if (age < 0)
		age = 0;
	if ((uint64_t)age >= fail)
		doctor_say(d, DOCTOR_FAIL, "queue",
			   "%s: %zu messages, the oldest (%s) %lld s old: %s",
			   state, n, ids[0], (long long)age, what);
	else if ((uint64_t)age >= warn)
		doctor_say(d, DOCTOR_WARN, "queue",
			   "%s: %zu messages, the oldest (%s) %lld s old: %s",
			   state, n, ids[0], (long long)age, what);
	else
		doctor_say(d, DOCTOR_OK, "queue",
			   "%s: %zu messages, the oldest %lld s old", state,
			   n, (long long)age);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* queue/adopt/ holds something only while `godwit queue adopt` runs,
 * or after one was interrupted (store/queue_adopt.h). */
static void
check_adopt(struct doctor *d)
{
	char *dir = xasprintf("%s/queue/adopt", d->c->data_dir);
	DIR *dp = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (dp != NULL) {
		while ((de = readdir(dp)) != NULL)
			n += de->d_name[0] != '.';
		closedir(dp);
	}
	if (n > 0)
		doctor_say(d, DOCTOR_WARN, "queue",
			   "adopt: %zu staged entries in %s: a `godwit queue "
			   "adopt` was interrupted (or runs now): run it "
			   "again with the same directory",
			   n, dir);
	free(dir);
}

static void
check_queue(struct doctor *d)
{
	const struct queue_config *q = &d->c->queue;
	uint64_t life = q->lifetime > 0 ? q->lifetime : 5 * 86400;

	/* incoming and active are passed through in seconds by a
	 * running runner */
	check_queue_dir(d, "incoming", 600, 3600,
			"the queue runner does not pick mail up: is "
			"`godwit serve` running? see its log");
	check_queue_dir(d, "active", 3600, 6 * 3600,
			"a delivery is stuck: see the log for this id");
	/* deferred mail older than its lifetime should have bounced */
	check_queue_dir(d, "deferred", life / 2, life + 3600,
			"mail is not delivered: `godwit queue show ID` "
			"says why (DNS, blocked port 25, a refusing peer)");
	check_adopt(d);
}

unsigned
doctor_run(const struct config *c, const struct doctor_options *o,
	   doctor_line_fn *fn, void *arg)
{
	struct doctor d = {.c = c, .o = *o, .fn = fn, .arg = arg};
	size_t i;

	if (d.o.timeout_ms == 0)
		d.o.timeout_ms = 5000;
	if (d.o.cert_days == 0)
		d.o.cert_days = 14;
	if (d.o.probe_domain == NULL)
		d.o.probe_domain = "example.com";
	if (d.o.outbound_domain == NULL)
		d.o.outbound_domain = "gmail.com";
	load_domains(&d);
	doctor_listeners(&d);
	doctor_tls(&d);
	check_trusted(&d);
	check_plaintext_auth(&d);
	doctor_relay_probe(&d);
	doctor_dns(&d);
	doctor_outbound(&d);
	check_queue(&d);
	doctor_dns_close(&d);
	userdb_string_list_free(&d.domains, d.ndomains);
	for (i = 0; i < d.ncatchall; i++)
		free(d.catchall[i]);
	free(d.catchall);
	return d.nfail;
}
