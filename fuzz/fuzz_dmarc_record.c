/*
 * libFuzzer target for mail/dmarc_record.c, the DMARC record parser, and
 * for dmarc_org_domain() (libpsl over whatever a From header may hold).
 * The first byte chooses (mod 3): 0, the rest is a TXT record's text
 * (bytes with a length, NULs included); 1, the rest is a domain (cut at
 * the first NUL); 2, the rest is "record NUL from NUL spf-domain NUL
 * d= NUL s=" for dmarc_evaluate() and the records.log line. Invariants,
 * abort() on violation:
 *  - the parser returns -1, 0 or 1; the same input parses the same way
 *    again; 1 gives a policy, pct <= 100, and rua/ruf/fo that are
 *    NUL-terminated printable ASCII within their fields, each rua/ruf
 *    item a URI ("scheme:..."); -1 gives a short printable reason; 0
 *    only for text that does not start with "v" (any case) blanks "=".
 *  - the organizational domain is lower case, a suffix of the
 *    lower-cased input (less one final dot), and its own org domain
 *    (unless it still ends in a dot).
 *  - the verdict is pass exactly when SPF or DKIM aligned, a pass has
 *    disposition none, a fail or temperror the policy or a less strict
 *    one; the record line is one line that the logfmt reader takes back
 *    as its 16 fields (17 with truncated=yes), with the From domain and
 *    the SPF domain as given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dmarc_record.h"
#include "lib/logfmt.h"
#include "msgauth/dmarc.h"

#define IN_MAX 8192

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_text(const char *s, size_t max, bool uris)
{
	size_t n = strnlen(s, max);
	const char *item = s, *p;

	check(n < max);
	for (p = s; *p != '\0'; p++)
		check((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f);
	if (!uris || n == 0)
		return;
	for (;;) {
		const char *comma = strchr(item, ',');
		const char *colon = memchr(
		    item, ':',
		    comma != NULL ? (size_t)(comma - item) : strlen(item));

		check(colon != NULL && colon > item);
		if (comma == NULL)
			break;
		item = comma + 1;
	}
}

static void
fuzz_record(const uint8_t *data, size_t size)
{
	struct dmarc_record rec, again;
	char why[96], why2[96];
	int rc, rc2;
	size_t n;

	rc = dmarc_record_parse((const char *)data, size, &rec, why,
	                        sizeof(why));
	check(rc >= -1 && rc <= 1);
	rc2 = dmarc_record_parse((const char *)data, size, &again, why2,
	                         sizeof(why2));
	check(rc2 == rc);
	if (rc == 1) {
		check(memcmp(&rec, &again, sizeof(rec)) == 0);
		check(rec.p == DMARC_P_NONE || rec.p == DMARC_P_QUARANTINE ||
		      rec.p == DMARC_P_REJECT);
		check(rec.sp <= DMARC_P_REJECT);
		check(rec.pct <= 100);
		check_text(rec.rua, sizeof(rec.rua), true);
		check_text(rec.ruf, sizeof(rec.ruf), true);
		check_text(rec.fo, sizeof(rec.fo), false);
		check(rec.fo[0] != '\0');
	} else if (rc == -1) {
		n = strnlen(why, sizeof(why));
		check(n > 0 && n < 80);
		for (n = 0; why[n] != '\0'; n++)
			check((unsigned char)why[n] >= ' ' &&
			      (unsigned char)why[n] < 0x7f);
	}
	if (rc != 0) {
		/* it started with "v" blanks "=" */
		n = 0;
		while (n < size && (data[n] == ' ' || data[n] == '\t'))
			n++;
		check(n < size && (data[n] == 'v' || data[n] == 'V'));
	}
}

static void
fuzz_org(const uint8_t *data, size_t size)
{
	static char in[IN_MAX + 1];
	char org[300], org2[300], low[IN_MAX + 1];
	size_t n, m, i;

	memcpy(in, data, size);
	in[size] = '\0';
	n = strlen(in);
	if (dmarc_org_domain(in, org, sizeof(org)) < 0) {
		check(n >= sizeof(org) - 1);
		return;
	}
	for (i = 0; i < n; i++)
		low[i] = (in[i] >= 'A' && in[i] <= 'Z') ? in[i] + 32 : in[i];
	low[n] = '\0';
	if (n > 0 && low[n - 1] == '.')
		low[--n] = '\0';
	m = strlen(org);
	check(m <= n && strcmp(low + n - m, org) == 0);
	for (i = 0; i < m; i++)
		check(!(org[i] >= 'A' && org[i] <= 'Z'));
	if (m > 0 && org[m - 1] == '.')
		return; /* "a.." : one final dot went, the next one stays */
	check(dmarc_org_domain(org, org2, sizeof(org2)) == 0);
	check(strcmp(org, org2) == 0);
}

struct kv {
	int n;
	const char *from, *spf_domain;
	bool from_ok, spf_ok;
};

static void
kv_cb(void *ctx, const char *key, size_t key_len, const unsigned char *value,
      size_t value_len)
{
	struct kv *kv = ctx;

	kv->n++;
	if (key_len == 11 && memcmp(key, "header_from", 11) == 0)
		kv->from_ok = value_len == strlen(kv->from) &&
			      memcmp(value, kv->from, value_len) == 0;
	if (key_len == 10 && memcmp(key, "spf_domain", 10) == 0)
		kv->spf_ok = value_len == strlen(kv->spf_domain) &&
			     memcmp(value, kv->spf_domain, value_len) == 0;
}

/* the next NUL-terminated part of the input, or "" */
static const char *
part(char **p, char *end)
{
	char *s = *p;

	if (s >= end)
		return "";
	*p = s + strlen(s) + 1;
	return s;
}

static void
fuzz_verdict(const uint8_t *data, size_t size)
{
	static char in[IN_MAX + 1], line[8192], spaced[8200];
	struct dkim_sig_result sig = { .result = DKIM_PASS };
	struct dmarc_record_info info = { 0 };
	struct dmarc_found f = { .status = DMARC_PASS };
	struct dmarc_verdict v;
	struct kv kv = { 0 };
	char *p = in, *end = in + size;
	const char *txt;
	size_t len;

	memcpy(in, data, size);
	in[size] = '\0';
	txt = part(&p, end);
	if (dmarc_record_parse(txt, strlen(txt), &f.rec, NULL, 0) != 1)
		f.status = DMARC_NONE;
	snprintf(f.from_domain, sizeof(f.from_domain), "%s", part(&p, end));
	snprintf(f.policy_domain, sizeof(f.policy_domain), "%s",
		 f.from_domain);
	f.at_org = size % 2;
	info.spf_domain = part(&p, end);
	snprintf(sig.domain, sizeof(sig.domain), "%s", part(&p, end));
	snprintf(sig.selector, sizeof(sig.selector), "%s", part(&p, end));
	info.spf = size % 3 == 0 ? SPF_PASS : SPF_TEMPERROR;
	sig.result = size % 5 == 0 ? DKIM_PASS : DKIM_TEMPERROR;
	info.sigs = &sig;
	info.nsigs = 1;
	info.ip = "192.0.2.1";
	info.envelope_from = info.spf_domain;
	info.time = (long long)size * 86400 * 97;
	dmarc_evaluate(&f, info.spf, info.spf_domain, &sig, 1, size % 100, &v);
	if (f.status != DMARC_PASS)
		check(v.result == DMARC_NONE &&
		      v.disposition == DMARC_P_NONE);
	else if (v.spf_aligned || v.dkim_aligned)
		check(v.result == DMARC_PASS &&
		      v.disposition == DMARC_P_NONE);
	else
		check((v.result == DMARC_FAIL ||
		       v.result == DMARC_TEMPERROR) &&
		      v.disposition <= v.policy &&
		      v.disposition != DMARC_P_UNSET);
	len = dmarc_record_format(&v, &f, &info, line, sizeof(line));
	check(len > 0 && line[len - 1] == '\n' &&
	      memchr(line, '\n', len - 1) == NULL);
	spaced[0] = ' ';
	memcpy(spaced + 1, line, len - 1);
	kv.from = f.from_domain;
	kv.spf_domain = info.spf_domain;
	check(logfmt_parse_kv(spaced, len, kv_cb, &kv) == kv.n);
	check(kv.n == 16 || (kv.n == 17 && strstr(line, " truncated=yes\n")));
	/* values longer than the encoder keeps end in "..." */
	check(kv.from_ok || strlen(kv.from) > LOGFMT_VALUE_MAX / 4);
	check(kv.spf_ok || strlen(kv.spf_domain) > LOGFMT_VALUE_MAX / 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (size - 1 > IN_MAX)
		size = IN_MAX + 1;
	switch (data[0] % 3) {
	case 0:
		fuzz_record(data + 1, size - 1);
		break;
	case 1:
		fuzz_org(data + 1, size - 1);
		break;
	default:
		fuzz_verdict(data + 1, size - 1);
		break;
	}
	return 0;
}
