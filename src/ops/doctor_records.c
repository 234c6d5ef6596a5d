/*
 * godwit doctor, the published records (ops/doctor_private.h): what
 * `godwit dns` says each local domain should publish (ops/dns_records.h)
 * against what DNS answers through the configured resolver. A record
 * missing or wrong is a FAIL with the line to publish; a policy of the
 * administrator's own (another SPF or DMARC text) a WARN; no answer at
 * all means the doctor is offline, and the DNS checks warn instead.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/dns.h"
#include "ops/dns_records.h"
#include "ops/doctor_private.h"

#define TXT_MAX 4096	/* the longest TXT text compared */

static enum doctor_status
bad(const struct doctor *d)
{
	return d->dns_offline ? DOCTOR_WARN : DOCTOR_FAIL;
}

/* The record as a zone-file line, for "publish ..." */
static void
zone_line(const struct dns_record *r, char *buf, size_t size)
{
	char *rdata = dns_record_rdata(r);

	snprintf(buf, size, "%s %u IN %s %s", r->name, r->ttl, r->type,
		 rdata);
	free(rdata);
}

/* The TXT text of a's record i, or "" when it does not parse. */
static void
txt_of(const struct dns_answer *a, size_t i, char *out, size_t size)
{
	size_t n;

	if (dns_txt_rdata(a->rr[i], a->rrlen[i], out, size, &n) < 0)
		out[0] = '\0';
}

/* The value of tag (e.g. "p") in a "k=v; k=v" text, blanks removed. */
static void
tag_value(const char *text, const char *tag, char *out, size_t size)
{
	const char *p = text;
	size_t n = 0, tl = strlen(tag);

	out[0] = '\0';
	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t;");
		if (strncmp(p, tag, tl) == 0 && p[tl + strspn(p + tl, " \t")] ==
						      '=') {
			p = strchr(p, '=') + 1;
			for (; *p != '\0' && *p != ';' && n + 1 < size; p++)
				if (*p != ' ' && *p != '\t')
					out[n++] = *p;
			out[n] = '\0';
			return;
		}
		p = strchr(p, ';');
	}
}

static void
check_mx(struct doctor *d, const struct dns_record *r,
	 const struct dns_answer *a, const char *line)
{
	char host[DNS_NAME_MAX + 2], want[DNS_NAME_MAX + 2];
	unsigned pref;
	size_t i;

	snprintf(want, sizeof(want), "%s", r->value);
	if (want[0] != '\0' && want[strlen(want) - 1] == '.')
		want[strlen(want) - 1] = '\0';
	for (i = 0; a->status == DNS_ANS_OK && i < a->nrr; i++)
		if (dns_mx_rdata_parse(a->rr[i], a->rrlen[i], &pref, host,
				       sizeof(host)) == 0 &&
		    strcasecmp(host, want) == 0) {
			doctor_say(d, DOCTOR_OK, "dns", "MX of %s: %s", r->name,
				   want);
			return;
		}
	doctor_say(d, bad(d), "dns", "MX of %s does not name %s: mail for "
		   "the domain does not come here; publish: %s", r->name,
		   want, line);
}

static void
check_addr(struct doctor *d, const struct dns_record *r,
	   const struct dns_answer *a, const char *line)
{
	char want[64], got[64];
	size_t i;

	snprintf(want, sizeof(want), "%s", r->value);
	for (i = 0; a->status == DNS_ANS_OK && i < a->nrr; i++) {
		if ((a->rrlen[i] != 4 && a->rrlen[i] != 16) ||
		    inet_ntop(a->rrlen[i] == 4 ? AF_INET : AF_INET6, a->rr[i],
			      got, sizeof(got)) == NULL)
			continue;
		if (strcmp(got, want) == 0) {
			doctor_say(d, DOCTOR_OK, "dns", "%s %s: %s", r->type,
				   r->name, want);
			return;
		}
	}
	doctor_say(d, bad(d), "dns", "%s %s does not give %s; publish: %s",
		   r->type, r->name, want, line);
}

/* The TXT records of a that start with prefix (case-insensitive): how
 * many, and the first in first. */
static size_t
txt_find(const struct dns_answer *a, const char *prefix, char *first,
	 size_t size)
{
	char *t = malloc(TXT_MAX);
	size_t i, n = 0;

	first[0] = '\0';
	for (i = 0; t != NULL && a->status == DNS_ANS_OK && i < a->nrr; i++) {
		txt_of(a, i, t, TXT_MAX);
		if (strncasecmp(t, prefix, strlen(prefix)) != 0)
			continue;
		if (n++ == 0)
			snprintf(first, size, "%s", t);
	}
	free(t);
	return n;
}

static void
check_txt(struct doctor *d, const struct dns_record *r,
	  const struct dns_answer *a, const char *line)
{
	static const char *const prefixes[] = {
		[DNS_RR_SPF] = "v=spf1", [DNS_RR_DKIM] = "v=DKIM1",
		[DNS_RR_DMARC] = "v=DMARC1", [DNS_RR_TLSRPT] = "v=TLSRPTv1",
	};
	const char *what = prefixes[r->kind];
	char got[TXT_MAX], k1[TXT_MAX], k2[TXT_MAX];
	size_t n = txt_find(a, what, got, sizeof(got));

	if (n == 0) {
		doctor_say(d, r->kind == DNS_RR_TLSRPT ? DOCTOR_WARN : bad(d),
			   "dns", "no %s record at %s; publish: %s", what,
			   r->name, line);
		return;
	}
	if (n > 1 && r->kind != DNS_RR_DKIM) {
		doctor_say(d, bad(d), "dns", "%zu %s records at %s: receivers "
			   "ignore them all (permerror); keep one: %s", n, what,
			   r->name, line);
		return;
	}
	if (r->kind == DNS_RR_DKIM) {
		tag_value(got, "p", k1, sizeof(k1));
		tag_value(r->value, "p", k2, sizeof(k2));
		if (strcmp(k1, k2) != 0) {
			doctor_say(d, bad(d), "dns", "DKIM %s: the published "
				   "key is not the key godwit signs with: "
				   "signatures fail; publish: %s", r->name,
				   line);
			return;
		}
	} else if (strcmp(got, r->value) != 0) {
		doctor_say(d, DOCTOR_WARN, "dns", "%s at %s is \"%s\", not "
			   "\"%s\" as `godwit dns` suggests: check that it "
			   "is what you mean", what, r->name, got, r->value);
		return;
	}
	doctor_say(d, DOCTOR_OK, "dns", "%s %s as `godwit dns` says", what,
		   r->name);
}

static int
rr_type(const struct dns_record *r)
{
	if (strcmp(r->type, "MX") == 0)
		return DNS_T_MX;
	if (strcmp(r->type, "A") == 0)
		return DNS_T_A;
	if (strcmp(r->type, "AAAA") == 0)
		return DNS_T_AAAA;
	return DNS_T_TXT;
}

static void
check_record(struct doctor *d, const struct dns_record *r)
{
	struct dns_answer *a;
	char line[TXT_MAX + 300];

	zone_line(r, line, sizeof(line));
	a = doctor_lookup(d, r->name, rr_type(r));
	if (!doctor_answered(a)) {
		doctor_say(d, DOCTOR_WARN, "dns", "%s %s: no DNS answer (%s); "
			   "should be: %s", r->type, r->name,
			   a != NULL ? a->error : "timeout", line);
	} else if (r->kind == DNS_RR_MX)
		check_mx(d, r, a, line);
	else if (r->kind == DNS_RR_ADDR)
		check_addr(d, r, a, line);
	else
		check_txt(d, r, a, line);
	dns_answer_free(&a);
}

/* Whether DNS answers at all: the domain's MX, looked up first. */
static bool
online(struct doctor *d, const char *domain)
{
	struct dns_answer *a = doctor_lookup(d, domain, DNS_T_MX);
	bool ok = doctor_answered(a);

	if (!ok)
		doctor_say(d, DOCTOR_WARN, "dns", "no DNS answer for %s (%s): "
			   "offline? the published records are not checked; "
			   "run the doctor where DNS works", domain,
			   a != NULL ? a->error : "no resolver or timeout");
	dns_answer_free(&a);
	return ok;
}

void
doctor_records(struct doctor *d)
{
	struct dns_records *r;
	char *err = NULL;
	size_t i, j;

	for (i = 0; i < d->ndomains; i++) {
		if ((r = dns_records_for(d->c, d->domains[i], &err)) == NULL) {
			doctor_say(d, DOCTOR_FAIL, "dns", "%s: %s", d->domains[i],
				   err != NULL ? err : "no records");
			free(err);
			err = NULL;
			continue;
		}
		if (!d->dns_offline && !online(d, d->domains[i]))
			d->dns_offline = true;
		if (r->no_dkim)
			doctor_say(d, DOCTOR_WARN, "dns", "%s has no DKIM key: "
				   "make one with `godwit dkim keygen %s` and "
				   "publish it", d->domains[i], d->domains[i]);
		for (j = 0; j < r->n && !d->dns_offline; j++)
			check_record(d, &r->v[j]);
		dns_records_free(&r);
	}
}
