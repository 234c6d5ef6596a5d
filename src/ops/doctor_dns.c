/*
 * godwit doctor, DNS (ops/doctor_private.h): lookups through the
 * configuration's dns: section (net/dns.h, run synchronously on a
 * private event base, each bounded by the run's timeout), the PTR of
 * every public address (forward-confirmed), the public addresses on the
 * configured blocklists (filter.dnsbl), and the MX used to test
 * outbound port 25. The published records against `godwit dns` are
 * doctor_records.c's. No DNS answer at all (offline) is a WARN.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/config.h"
#include "filter/dnsbl.h"
#include "lib/util.h"
#include "mail/dnsbl_spec.h"
#include "net/dns.h"
#include "ops/doctor_private.h"

#define PUBLIC_MAX 16	/* public addresses checked */

struct wait {
	struct dns_answer *a;
	bool done;
};

static void
got(struct dns_answer *a, void *arg)
{
	struct wait *w = arg;

	w->a = a;
	w->done = true;
}

static bool
resolver(struct doctor *d)
{
	const struct dns_config *dc = &d->c->dns;
	struct dns_resolver_config rc = {
		.mode = dc->mode,
		.forwarders = (const char *const *)dc->forwarders,
		.nforwarders = dc->nforwarders,
		.trust_anchor = dc->trust_anchor,
	};
	char *err = NULL;

	if (d->dns != NULL || d->dns_failed)
		return d->dns != NULL;
	if ((d->dns_base = event_base_new()) == NULL ||
	    (d->dns = dns_resolver_new(d->dns_base, &rc, &err)) == NULL) {
		doctor_say(d, DOCTOR_WARN, "dns", "no resolver: %s; DNS "
			   "checks skipped", err != NULL ? err : "no memory");
		free(err);
		d->dns_failed = true;
	}
	return d->dns != NULL;
}

struct dns_answer *
doctor_lookup(struct doctor *d, const char *name, int rrtype)
{
	struct wait w = {NULL, false};
	struct dns_query *q;
	uint64_t end = mono_ms() + d->o.timeout_ms + 1000;
	unsigned i;

	if (!resolver(d))
		return NULL;
	q = dns_lookup(d->dns, name, rrtype, d->o.timeout_ms, got, &w);
	for (i = 0; !w.done && i < 100000 && mono_ms() < end; i++)
		if (event_base_loop(d->dns_base, EVLOOP_ONCE) < 0)
			break;
	if (!w.done) {
		dns_query_cancel(q);
		return NULL;
	}
	return w.a;
}

void
doctor_dns_close(struct doctor *d)
{
	dns_resolver_free(&d->dns);
	if (d->dns_base != NULL)
		event_base_free(d->dns_base);
	d->dns_base = NULL;
}

/* Whether the answer is one DNS gave (records, no records, no name). */
bool
doctor_answered(const struct dns_answer *a)
{
	return a != NULL && (a->status == DNS_ANS_OK ||
			     a->status == DNS_ANS_NODATA ||
			     a->status == DNS_ANS_NXDOMAIN);
}

int
doctor_dns_mx_addr(struct doctor *d, const char *domain,
		   struct sockaddr_storage *ss, socklen_t *len)
{
	struct dns_answer *a = doctor_lookup(d, domain, DNS_T_MX);
	char host[DNS_NAME_MAX + 2];
	unsigned pref;
	int r = -1;

	if (a == NULL || a->status != DNS_ANS_OK ||
	    dns_mx_rdata_parse(a->rr[0], a->rrlen[0], &pref, host,
			       sizeof(host)) < 0) {
		dns_answer_free(&a);
		return -1;
	}
	dns_answer_free(&a);
	a = doctor_lookup(d, host, DNS_T_A);
	if (a != NULL && a->status == DNS_ANS_OK && a->rrlen[0] == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		memset(ss, 0, sizeof(*ss));
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, a->rr[0], 4);
		*len = sizeof(*s);
		r = 0;
	}
	dns_answer_free(&a);
	return r;
}

/* Whether a (A or AAAA records) holds the address ip. */
static bool
answer_has_addr(const struct dns_answer *a, const char *ip)
{
	unsigned char bin[16];
	int family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	size_t i, n = family == AF_INET ? 4 : 16;

	if (a == NULL || a->status != DNS_ANS_OK ||
	    inet_pton(family, ip, bin) != 1)
		return false;
	for (i = 0; i < a->nrr; i++)
		if (a->rrlen[i] == n && memcmp(a->rr[i], bin, n) == 0)
			return true;
	return false;
}

static void
check_ptr(struct doctor *d, const char *ip)
{
	char rev[128], name[DNS_NAME_MAX + 2];
	struct dns_answer *a = NULL, *f = NULL;
	enum doctor_status bad = d->dns_offline ? DOCTOR_WARN : DOCTOR_FAIL;

	if (dns_reverse_name(ip, rev, sizeof(rev)) < 0)
		return;
	a = doctor_lookup(d, rev, DNS_T_PTR);
	if (!doctor_answered(a))
		doctor_say(d, DOCTOR_WARN, "dns", "PTR of %s: no DNS answer "
			   "(%s)", ip, a != NULL ? a->error : "timeout");
	else if (a->status != DNS_ANS_OK ||
		 dns_name_rdata_parse(a->rr[0], a->rrlen[0], name,
				      sizeof(name)) < 0)
		doctor_say(d, bad, "dns", "PTR of %s: none; ask whoever "
			   "gave you the address to set its PTR to %s",
			   ip, d->c->hostname);
	else {
		f = doctor_lookup(d, name, strchr(ip, ':') != NULL
					      ? DNS_T_AAAA : DNS_T_A);
		if (!answer_has_addr(f, ip))
			doctor_say(d, bad, "dns", "PTR of %s is %s, but %s "
				   "does not resolve to %s (not "
				   "forward-confirmed); publish its address "
				   "record", ip, name, name, ip);
		else if (strcasecmp(name, d->c->hostname) != 0)
			doctor_say(d, DOCTOR_WARN, "dns", "PTR of %s is %s, "
				   "not the host name %s: set the PTR, or "
				   "the hostname, to match", ip, name,
				   d->c->hostname);
		else
			doctor_say(d, DOCTOR_OK, "dns", "PTR of %s is %s, "
				   "forward-confirmed", ip, name);
	}
	dns_answer_free(&a);
	dns_answer_free(&f);
}

/* Whether v is a listing for any spec of c's filter.dnsbl on zone (one
 * zone may be written several times, with different answer codes). */
static bool
listed_by(const struct doctor *d, const char *zone, const unsigned char v[4])
{
	const struct dnsbl_config *bl = &d->c->filter.dnsbl;
	struct dnsbl_spec sp;
	const char *err;
	size_t j;

	for (j = 0; j < bl->ndnsbl; j++)
		if (dnsbl_spec_parse(bl->dnsbl[j], &sp, &err) == 0 &&
		    strcmp(sp.zone, zone) == 0 && dnsbl_spec_match(&sp, v))
			return true;
	return false;
}

/* Whether spec j's zone was named by an earlier spec. */
static bool
zone_seen(const struct dnsbl_config *bl, size_t j, const char *zone)
{
	struct dnsbl_spec sp;
	const char *err;
	size_t k;

	for (k = 0; k < j; k++)
		if (dnsbl_spec_parse(bl->dnsbl[k], &sp, &err) == 0 &&
		    strcmp(sp.zone, zone) == 0)
			return true;
	return false;
}

static void
check_listed(struct doctor *d, const struct dnsbl_spec *sp, const char *ip)
{
	char q[DNS_NAME_MAX + 2];
	struct dns_answer *a;
	unsigned char v[4];

	if (dnsbl_query_name(ip, sp->zone, q, sizeof(q)) < 0)
		return;
	a = doctor_lookup(d, q, DNS_T_A);
	if (!doctor_answered(a))
		doctor_say(d, DOCTOR_WARN, "blocklist", "%s on %s: no DNS "
			   "answer", ip, sp->zone);
	else if (a->status != DNS_ANS_OK || a->rrlen[0] != 4)
		doctor_say(d, DOCTOR_OK, "blocklist", "%s is not on %s", ip,
			   sp->zone);
	else {
		memcpy(v, a->rr[0], 4);
		if (dnsbl_answer_refused(v))
			doctor_say(d, DOCTOR_WARN, "blocklist", "%s refuses "
				   "the queries of this resolver (answer "
				   "127.255.255.%u): use a resolver of your "
				   "own, not a public one", sp->zone, v[3]);
		else if (listed_by(d, sp->zone, v))
			doctor_say(d, DOCTOR_FAIL, "blocklist", "%s is LISTED "
				   "on %s (127.%u.%u.%u): mail from it is "
				   "refused; find out why on the list's site "
				   "and ask for removal", ip, sp->zone, v[1],
				   v[2], v[3]);
		else
			doctor_say(d, DOCTOR_OK, "blocklist", "%s is not on %s",
				   ip, sp->zone);
	}
	dns_answer_free(&a);
}

static void
add_public(const struct sockaddr *sa, char out[][INET6_ADDRSTRLEN],
	   size_t *n)
{
	char ip[INET6_ADDRSTRLEN];
	size_t i;

	if (*n >= PUBLIC_MAX || doctor_addr_private(sa))
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  ip, sizeof(ip));
	else
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
			  sizeof(ip));
	for (i = 0; i < *n; i++)
		if (strcmp(out[i], ip) == 0)
			return;
	snprintf(out[(*n)++], INET6_ADDRSTRLEN, "%s", ip);
}

/* The public addresses the listeners answer on (a wildcard: the
 * machine's). */
static size_t
public_addrs(struct doctor *d, char out[][INET6_ADDRSTRLEN])
{
	struct sockaddr_storage more[PUBLIC_MAX];
	size_t i, j, k, n = 0, m;

	for (i = 0; i < d->c->nlisteners; i++)
		for (j = 0; j < d->c->listeners[i].naddrs; j++) {
			const struct sockaddr_storage *ss =
				&d->c->listeners[i].addrs[j].ss;
			if (!doctor_addr_wildcard((const void *)ss)) {
				add_public((const void *)ss, out, &n);
				continue;
			}
			m = doctor_host_addrs(ss->ss_family, 25, more,
					      PUBLIC_MAX);
			for (k = 0; k < m; k++)
				add_public((const void *)&more[k], out, &n);
		}
	return n;
}

void
doctor_dns(struct doctor *d)
{
	char ips[PUBLIC_MAX][INET6_ADDRSTRLEN];
	const struct dnsbl_config *bl = &d->c->filter.dnsbl;
	struct dnsbl_spec sp;
	const char *err;
	size_t n, i, j;

	doctor_records(d);
	n = public_addrs(d, ips);
	if (n == 0) {
		doctor_say(d, DOCTOR_WARN, "dns", "no public address on any "
			   "listener: PTR and blocklists not checked (a "
			   "server behind NAT: check its public address with "
			   "an outside tool)");
		return;
	}
	for (i = 0; i < n; i++)
		check_ptr(d, ips[i]);
	if (bl->ndnsbl == 0)
		doctor_say(d, DOCTOR_OK, "blocklist", "no blocklist "
			   "configured (filter.dnsbl): none checked");
	for (j = 0; j < bl->ndnsbl; j++) {
		if (dnsbl_spec_parse(bl->dnsbl[j], &sp, &err) < 0 ||
		    zone_seen(bl, j, sp.zone))
			continue;
		for (i = 0; i < n; i++)
			check_listed(d, &sp, ips[i]);
	}
}
