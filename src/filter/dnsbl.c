/*
 * DNS block and allow lists for the client address: see dnsbl.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filter/dnsbl.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/dnsbl_spec.h"
#include "net/dns.h"

struct dnsbl_zone {
	struct dnsbl_check *c;
	struct dnsbl_spec spec;
	char name[DNS_NAME_MAX + 1];	/* the query name */
	struct dns_query *qa, *qtxt;
};

struct dnsbl_check {
	struct dns_resolver *r;
	const struct dnsbl_config *cf;
	struct dnsbl_zone *zones;
	struct dnsbl_result res;
	unsigned pending;
	bool done;
	dnsbl_done_cb *cb;
	void *arg;
};

/* An IPv4-mapped IPv6 address ("::ffff:192.0.2.1", as a dual-stack
 * socket sees an IPv4 client) is looked up as the IPv4 address. */
static const char *
unmapped(const char *ip, char *buf, size_t size)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0,
						 0, 0, 0, 0, 0xff, 0xff};
	unsigned char a[16];

	if (inet_pton(AF_INET6, ip, a) != 1 ||
	    memcmp(a, mapped, sizeof(mapped)) != 0 ||
	    inet_ntop(AF_INET, a + 12, buf, (socklen_t)size) == NULL)
		return ip;
	return buf;
}

int
dnsbl_query_name(const char *ip, const char *zone, char *out, size_t size)
{
	char rev[80], v4[INET_ADDRSTRLEN];
	size_t n;
	int len;

	if (dns_reverse_name(unmapped(ip, v4, sizeof(v4)), rev, sizeof(rev)) <
	    0)
		return -1;
	n = strlen(rev);
	/* the reversed part alone, without in-addr.arpa / ip6.arpa */
	if (n > 14 && strcmp(rev + n - 13, ".in-addr.arpa") == 0)
		rev[n - 13] = '\0';
	else if (n > 10 && strcmp(rev + n - 9, ".ip6.arpa") == 0)
		rev[n - 9] = '\0';
	else
		return -1;
	len = snprintf(out, size, "%s.%s", rev, zone);
	if (len < 0 || (size_t)len >= size || (size_t)len > DNS_NAME_MAX)
		return -1;
	return 0;
}

/* 127.255.255.x: loudly, but once per zone per ten minutes. */
static void
log_refused(const struct dnsbl_zone *z, const unsigned char a[4])
{
	static struct {
		char zone[DNSBL_ZONE_MAX + 1];
		time_t last;
	} seen[16];
	static unsigned next;
	time_t now = time(NULL);
	char code[16];
	size_t i;

	for (i = 0; i < 16; i++)
		if (strcmp(seen[i].zone, z->spec.zone) == 0)
			break;
	if (i < 16 && now - seen[i].last < 600)
		return;
	if (i == 16) {
		i = next++ % 16;
		snprintf(seen[i].zone, sizeof(seen[i].zone), "%s",
			 z->spec.zone);
	}
	seen[i].last = now;
	snprintf(code, sizeof(code), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
	log_event(LOG_ERR, "filter", "dnsbl-refused",
		  LF_STR("zone", z->spec.zone), LF_STR("code", code),
		  LF_STR("hint", "the list refuses this resolver's queries "
				 "(a public or shared resolver?); its answers "
				 "are ignored"));
}

static void finish_one(struct dnsbl_check *c);

static void
txt_cb(struct dns_answer *a, void *arg)
{
	struct dnsbl_zone *z = arg;
	struct dnsbl_zone_result *zr = &z->c->res.z[z - z->c->zones];
	char text[512];
	size_t len, o = 0;

	z->qtxt = NULL;
	if (a->status == DNS_ANS_OK && a->nrr > 0 &&
	    dns_txt_rdata(a->rr[0], a->rrlen[0], text, sizeof(text), &len) ==
		0) {
		/* printable ASCII, blanks squeezed, bounded */
		for (size_t i = 0; i < len && o + 1 < sizeof(zr->reason); i++) {
			unsigned char ch = (unsigned char)text[i];

			if (ch < ' ' || ch >= 0x7f)
				ch = ' ';
			if (ch == ' ' && (o == 0 || zr->reason[o - 1] == ' '))
				continue;
			zr->reason[o++] = (char)ch;
		}
		while (o > 0 && zr->reason[o - 1] == ' ')
			o--;
		zr->reason[o] = '\0';
	}
	dns_answer_free(&a);
	finish_one(z->c);
}

/* The A answers: which count, the codes for the log. */
static void
take_answers(struct dnsbl_zone *z, struct dnsbl_zone_result *zr,
	     const struct dns_answer *a)
{
	size_t o = 0;

	for (size_t i = 0; i < a->nrr; i++) {
		const unsigned char *ad = a->rr[i];
		int n;

		if (a->rrlen[i] != 4)
			continue;
		if (dnsbl_answer_refused(ad)) {
			zr->refused = true;
			log_refused(z, ad);
		} else if (dnsbl_spec_match(&z->spec, ad))
			zr->listed = true;
		n = snprintf(zr->codes + o, sizeof(zr->codes) - o, "%s%u.%u.%u.%u",
			     o > 0 ? "," : "", ad[0], ad[1], ad[2], ad[3]);
		if (n < 0 || (size_t)n >= sizeof(zr->codes) - o) {
			zr->codes[o] = '\0';
			break;
		}
		o += (size_t)n;
	}
}

static void
a_cb(struct dns_answer *a, void *arg)
{
	struct dnsbl_zone *z = arg;
	struct dnsbl_check *c = z->c;
	struct dnsbl_zone_result *zr = &c->res.z[z - c->zones];

	z->qa = NULL;
	if (a->status == DNS_ANS_OK)
		take_answers(z, zr, a);
	else if (a->status == DNS_ANS_TEMPFAIL ||
		 a->status == DNS_ANS_INVALID)
		zr->failed = true;
	dns_answer_free(&a);
	/* the reason is only for a refusal's reply */
	if (zr->listed && !zr->allow && zr->weight > 0) {
		c->pending++;
		z->qtxt = dns_lookup(c->r, z->name, DNS_T_TXT,
				     (unsigned)c->cf->timeout_ms, txt_cb, z);
	}
	finish_one(c);
}

/* The verdict, once every lookup is in. */
static void
decide(struct dnsbl_check *c)
{
	struct dnsbl_result *r = &c->res;

	for (size_t i = 0; i < r->nz; i++) {
		const struct dnsbl_zone_result *zr = &r->z[i];

		if (!zr->listed)
			continue;
		if (zr->allow) {
			if (!r->allowed)
				r->named = zr;
			r->allowed = true;
			continue;
		}
		r->score += zr->weight;
	}
	if (r->allowed || r->score < (int)c->cf->threshold)
		return;
	r->blocked = true;
	for (size_t i = 0; i < r->nz; i++) {
		const struct dnsbl_zone_result *zr = &r->z[i];

		if (zr->listed && !zr->allow &&
		    (r->named == NULL || zr->weight > r->named->weight))
			r->named = zr;
	}
}

static void
finish_one(struct dnsbl_check *c)
{
	if (--c->pending > 0)
		return;
	decide(c);
	c->done = true;
	c->cb(c, c->arg);
}

/* One zone's entry; false if its spec or name is unusable. */
static bool
add_zone(struct dnsbl_check *c, const char *spec, bool allow, const char *ip)
{
	struct dnsbl_zone *z = &c->zones[c->res.nz];
	struct dnsbl_zone_result *zr = &c->res.z[c->res.nz];
	const char *err;

	if (dnsbl_spec_parse(spec, &z->spec, &err) < 0 ||
	    dnsbl_query_name(ip, z->spec.zone, z->name, sizeof(z->name)) < 0)
		return false;
	z->c = c;
	zr->spec = spec;
	snprintf(zr->zone, sizeof(zr->zone), "%s", z->spec.zone);
	zr->weight = z->spec.weight;
	zr->allow = allow;
	c->res.nz++;
	return true;
}

struct dnsbl_check *
dnsbl_check_start(struct dns_resolver *r, const struct dnsbl_config *cf,
		  const char *ip, dnsbl_done_cb *cb, void *arg)
{
	size_t n = cf->ndnswl + cf->ndnsbl;
	struct dnsbl_check *c;

	if (r == NULL || n == 0)
		return NULL;
	if (n > DNSBL_MAX_ZONES)
		n = DNSBL_MAX_ZONES;
	c = xcalloc(1, sizeof(*c));
	c->r = r;
	c->cf = cf;
	c->cb = cb;
	c->arg = arg;
	c->zones = xcalloc(n, sizeof(*c->zones));
	c->res.z = xcalloc(n, sizeof(*c->res.z));
	for (size_t i = 0; i < cf->ndnswl && c->res.nz < n; i++)
		add_zone(c, cf->dnswl[i], true, ip);
	for (size_t i = 0; i < cf->ndnsbl && c->res.nz < n; i++)
		add_zone(c, cf->dnsbl[i], false, ip);
	if (c->res.nz == 0) {
		dnsbl_check_free(&c);
		return NULL;
	}
	/* all counted first: no callback runs before dns_lookup returns,
	 * but the count must cover every zone before any answer */
	c->pending = (unsigned)c->res.nz;
	for (size_t i = 0; i < c->res.nz; i++)
		c->zones[i].qa = dns_lookup(r, c->zones[i].name, DNS_T_A,
					    (unsigned)cf->timeout_ms, a_cb,
					    &c->zones[i]);
	return c;
}

bool
dnsbl_check_done(const struct dnsbl_check *c)
{
	return c->done;
}

const struct dnsbl_result *
dnsbl_check_result(const struct dnsbl_check *c)
{
	return &c->res;
}

void
dnsbl_check_free(struct dnsbl_check **cp)
{
	struct dnsbl_check *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->res.nz; i++) {
		dns_query_cancel(c->zones[i].qa);
		dns_query_cancel(c->zones[i].qtxt);
	}
	free(c->zones);
	free(c->res.z);
	free(c);
	*cp = NULL;
}
