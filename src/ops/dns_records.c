/*
 * The DNS records to publish for a domain (ops/dns_records.h): built
 * from the configuration, the DKIM keyring and the machine's addresses,
 * then written as zone-file lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/config.h"
#include "lib/xalloc.h"
#include "msgauth/dkim.h"
#include "ops/dns_records.h"

#define TXT_CHUNK 255

static struct dns_record *
add_record(struct dns_records *r, enum dns_rr_kind kind, const char *type,
	   char *name, char *value)
{
	struct dns_record *rec;

	r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
	rec = &r->v[r->n++];
	memset(rec, 0, sizeof(*rec));
	rec->kind = kind;
	rec->type = type;
	rec->ttl = DNS_RECORDS_TTL;
	rec->name = name;
	rec->value = value;
	return rec;
}

static void
add_note(struct dns_records *r, char *text)
{
	r->notes = xreallocarray(r->notes, r->nnotes + 1, sizeof(*r->notes));
	r->notes[r->nnotes++] = text;
}

/* ---- addresses ---------------------------------------------------------- */

static bool
v4_public(const uint8_t *a)
{
	return !(a[0] == 0 || a[0] == 10 || a[0] == 127 ||
		 (a[0] == 169 && a[1] == 254) ||
		 (a[0] == 172 && (a[1] & 0xf0) == 16) ||
		 (a[0] == 192 && a[1] == 168) ||
		 (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224);
}

static bool
v6_public(const struct in6_addr *a)
{
	const uint8_t *b = a->s6_addr;

	if (IN6_IS_ADDR_V4MAPPED(a))
		return v4_public(b + 12);
	return !(IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
		 IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
		 IN6_IS_ADDR_SITELOCAL(a) || (b[0] & 0xfe) == 0xfc);
}

bool
dns_addr_is_public(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return v4_public((const uint8_t *)&a4.s_addr);
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return v6_public(&a6);
	return false;
}

/* "5.113.0.203.in-addr.arpa." or the ip6.arpa nibbles; NULL if addr is
 * not an address. */
static char *
reverse_name(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[80], *p = buf;
	const uint8_t *b;

	if (inet_pton(AF_INET, addr, &a4) == 1) {
		b = (const uint8_t *)&a4.s_addr;
		return xasprintf("%u.%u.%u.%u.in-addr.arpa.", b[3], b[2], b[1],
				 b[0]);
	}
	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return NULL;
	for (int i = 15; i >= 0; i--) {
		p += sprintf(p, "%x.%x.", a6.s6_addr[i] & 0xf,
			     a6.s6_addr[i] >> 4);
	}
	return xasprintf("%sip6.arpa.", buf);
}

static bool
sa_is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
		&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static void
add_ptr(struct dns_records *r, const char *addr, bool from_interface)
{
	struct dns_ptr_advice *p;
	struct in6_addr a, b;
	int fam = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;

	if (!dns_addr_is_public(addr))
		return;
	memset(&a, 0, sizeof(a));
	inet_pton(fam, addr, &a);
	for (size_t i = 0; i < r->nptr; i++) {
		int f = strchr(r->ptr[i].addr, ':') != NULL ? AF_INET6 : AF_INET;
		memset(&b, 0, sizeof(b));
		inet_pton(f, r->ptr[i].addr, &b);
		if (f == fam && memcmp(&a, &b, sizeof(a)) == 0)
			return;
	}
	r->ptr = xreallocarray(r->ptr, r->nptr + 1, sizeof(*r->ptr));
	p = &r->ptr[r->nptr++];
	p->addr = xstrdup(addr);
	p->reverse = reverse_name(addr);
	p->from_interface = from_interface;
}

/* The public addresses of the listeners; a wildcard listener brings in
 * the machine's. */
static void
collect_addresses(struct dns_records *r, const struct config *c,
		  char *const *host_addrs, size_t nhost)
{
	char text[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct config_listener *li = &c->listeners[i];
		for (size_t j = 0; j < li->naddrs; j++) {
			if (sa_is_wildcard(&li->addrs[j].ss)) {
				r->wildcard = true;
				continue;
			}
			sockaddr_ntop((const struct sockaddr *)&li->addrs[j].ss,
				      text, sizeof(text));
			add_ptr(r, text, false);
		}
	}
	if (r->wildcard)
		for (size_t i = 0; i < nhost; i++)
			add_ptr(r, host_addrs[i], true);
}

/* ---- records ------------------------------------------------------------ */

/* The SPF mechanisms that allow the smarthost, "" without one. */
static char *
spf_smarthost(const struct config *c)
{
	const char *h = c->smarthost.host;
	size_t n;

	if (h == NULL || *h == '\0')
		return xstrdup("");
	if (h[0] == '[') {
		n = strlen(h);
		if (n < 3 || h[n - 1] != ']')
			return xstrdup("");
		return xasprintf(" %s:%.*s",
				 memchr(h, ':', n) != NULL ? "ip6" : "ip4",
				 (int)(n - 2), h + 1);
	}
	return xasprintf(" a:%s", h);
}

static void
add_dkim(struct dns_records *r, const struct dkim_keyring *kr)
{
	const struct dkim_key *const *keys;
	size_t n = kr != NULL ? dkim_keyring_all(kr, &keys) : 0;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		struct dns_record *rec;
		if (strcmp(keys[i]->domain, r->domain) != 0)
			continue;
		rec = add_record(r, DNS_RR_DKIM, "TXT",
				 xasprintf("%s._domainkey.%s.",
					   keys[i]->selector, r->domain),
				 dkim_key_record(keys[i]));
		rec->selector = xstrdup(keys[i]->selector);
		any = true;
	}
	r->no_dkim = !any;
}

/* The host's A and AAAA records, when the host is inside the domain. */
static void
add_host_addrs(struct dns_records *r)
{
	size_t hl = strlen(r->hostname), dl = strlen(r->domain);

	if (!(hl == dl || (hl > dl && r->hostname[hl - dl - 1] == '.')) ||
	    strcmp(r->hostname + hl - dl, r->domain) != 0)
		return;
	for (size_t i = 0; i < r->nptr; i++)
		add_record(r, DNS_RR_ADDR,
			   strchr(r->ptr[i].addr, ':') ? "AAAA" : "A",
			   xasprintf("%s.", r->hostname),
			   xstrdup(r->ptr[i].addr));
}

struct dns_records *
dns_records_build(const struct config *c, const char *domain,
		  const struct dkim_keyring *kr, char *const *host_addrs,
		  size_t nhost_addrs)
{
	struct dns_records *r = xcalloc(1, sizeof(*r));
	struct dns_record *mx;
	char *sh = spf_smarthost(c);

	r->domain = xstrdup(domain);
	r->hostname = xstrdup(c->hostname);
	collect_addresses(r, c, host_addrs, nhost_addrs);
	mx = add_record(r, DNS_RR_MX, "MX", xasprintf("%s.", domain),
			xasprintf("%s.", c->hostname));
	mx->preference = 10;
	add_record(r, DNS_RR_SPF, "TXT", xasprintf("%s.", domain),
		   xasprintf("v=spf1 mx%s -all", sh));
	free(sh);
	add_dkim(r, kr);
	add_record(r, DNS_RR_DMARC, "TXT", xasprintf("_dmarc.%s.", domain),
		   xasprintf("v=DMARC1; p=quarantine; "
			     "rua=mailto:postmaster@%s", domain));
	add_record(r, DNS_RR_TLSRPT, "TXT",
		   xasprintf("_smtp._tls.%s.", domain),
		   xasprintf("v=TLSRPTv1; rua=mailto:postmaster@%s", domain));
	add_host_addrs(r);
	add_note(r, xstrdup("MTA-STS (_mta-sts TXT and the policy file at "
			    "https://mta-sts.DOMAIN/.well-known/mta-sts.txt) "
			    "is not implemented by godwit yet: publish "
			    "nothing for it"));
	return r;
}

struct dns_records *
dns_records_for(const struct config *c, const char *domain, char **error_r)
{
	struct dkim_keyring *kr = NULL;
	struct dns_records *r;
	char *dir = xasprintf("%s/dkim", c->data_dir), **addrs = NULL;
	size_t n = 0;
	int ok = dkim_keyring_load(dir, &kr, error_r);

	free(dir);
	if (ok < 0)
		return NULL;
	if (dns_host_addresses(&addrs, &n) < 0)
		n = 0;
	r = dns_records_build(c, domain, kr, addrs, n);
	dns_host_addresses_free(&addrs, n);
	dkim_keyring_free(&kr);
	return r;
}

void
dns_records_free(struct dns_records **rp)
{
	struct dns_records *r = *rp;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].value);
		free(r->v[i].selector);
	}
	for (size_t i = 0; i < r->nptr; i++) {
		free(r->ptr[i].addr);
		free(r->ptr[i].reverse);
	}
	for (size_t i = 0; i < r->nnotes; i++)
		free(r->notes[i]);
	free(r->v);
	free(r->ptr);
	free(r->notes);
	free(r->domain);
	free(r->hostname);
	free(r);
	*rp = NULL;
}

/* ---- text --------------------------------------------------------------- */

char *
dns_txt_strings(const char *text)
{
	size_t n = strlen(text), cap = n * 2 + (n / TXT_CHUNK + 1) * 3 + 1;
	char *out = xmalloc(cap), *p = out;

	for (size_t i = 0; i == 0 || i < n; i += TXT_CHUNK) {
		size_t k = n - i < TXT_CHUNK ? n - i : TXT_CHUNK;
		if (i > 0)
			*p++ = ' ';
		*p++ = '"';
		for (size_t j = 0; j < k; j++) {
			if (text[i + j] == '"' || text[i + j] == '\\')
				*p++ = '\\';
			*p++ = text[i + j];
		}
		*p++ = '"';
	}
	*p = '\0';
	return out;
}

char *
dns_record_rdata(const struct dns_record *rec)
{
	if (rec->kind == DNS_RR_MX)
		return xasprintf("%u %s", rec->preference, rec->value);
	if (rec->kind == DNS_RR_ADDR)
		return xstrdup(rec->value);
	return dns_txt_strings(rec->value);
}

static const char *
kind_comment(enum dns_rr_kind k)
{
	switch (k) {
	case DNS_RR_MX:
		return "MX: mail for the domain goes to this host";
	case DNS_RR_SPF:
		return "SPF: the hosts that may send mail from the domain";
	case DNS_RR_DKIM:
		return "DKIM: the public key of each signing selector";
	case DNS_RR_DMARC:
		return "DMARC: quarantine what fails SPF and DKIM alignment; "
		       "daily reports to the rua address (raise to p=reject "
		       "once the reports are clean)";
	case DNS_RR_TLSRPT:
		return "TLS-RPT: where other servers report TLS failures "
		       "delivering to us";
	case DNS_RR_ADDR:
		return "the mail host's addresses";
	}
	return "";
}

static void
write_ptr(FILE *f, const struct dns_records *r)
{
	fprintf(f, "; PTR: the reverse name of each address the server "
		   "sends from must be %s.\n; (set by the owner of the "
		   "address, usually the hosting provider's panel):\n",
		r->hostname);
	for (size_t i = 0; i < r->nptr; i++)
		fprintf(f, ";   %s PTR %s.%s\n", r->ptr[i].reverse, r->hostname,
			r->ptr[i].from_interface ? "  (address of this machine)"
						 : "");
	if (r->wildcard)
		fprintf(f, "; a listener binds every address: set the PTR of "
			   "each public address of this machine%s\n",
			r->nptr == 0 ? " (none found on its interfaces: "
				       "behind NAT, the router's public "
				       "address)" : " (listed above)");
	if (r->nptr == 0 && !r->wildcard)
		fprintf(f, "; no public address is configured on a "
			   "listener\n");
}

char *
dns_records_zone(const struct dns_records *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int last = -1;

	if (f == NULL)
		abort();
	fprintf(f, "; DNS records for %s (godwit dns %s): add them to the "
		   "zone of %s.\n", r->domain, r->domain, r->domain);
	for (size_t i = 0; i < r->n; i++) {
		const struct dns_record *rec = &r->v[i];
		char *rd = dns_record_rdata(rec);
		if ((int)rec->kind != last)
			fprintf(f, "; %s\n", kind_comment(rec->kind));
		last = (int)rec->kind;
		fprintf(f, "%s %u IN %s %s\n", rec->name, rec->ttl, rec->type,
			rd);
		free(rd);
		if (rec->kind == DNS_RR_SPF && r->no_dkim)
			fprintf(f, "; DKIM: no key for %s yet: make one with "
				   "godwit dkim keygen %s\n", r->domain,
				r->domain);
	}
	write_ptr(f, r);
	for (size_t i = 0; i < r->nnotes; i++)
		fprintf(f, "; %s\n", r->notes[i]);
	if (fclose(f) != 0)
		abort();
	return out;
}

/* ---- the machine's addresses ------------------------------------------- */

int
dns_host_addresses(char ***addrs_r, size_t *n_r)
{
	struct ifaddrs *ifa, *p;
	char text[INET6_ADDRSTRLEN];
	char **v = NULL;
	size_t n = 0;

	if (getifaddrs(&ifa) < 0)
		return -1;
	for (p = ifa; p != NULL; p = p->ifa_next) {
		const struct sockaddr *sa = p->ifa_addr;
		if (sa == NULL || (sa->sa_family != AF_INET &&
				   sa->sa_family != AF_INET6))
			continue;
		sockaddr_ntop(sa, text, sizeof(text));
		if (strncmp(text, "127.", 4) == 0 || strcmp(text, "::1") == 0 ||
		    strncasecmp(text, "fe80:", 5) == 0)
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(text);
	}
	freeifaddrs(ifa);
	*addrs_r = v;
	*n_r = n;
	return 0;
}

void
dns_host_addresses_free(char ***addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((*addrs)[i]);
	xfree(addrs);
}
