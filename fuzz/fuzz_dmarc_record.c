/*
 * libFuzzer target for mail/dmarc_record.c, the DMARC record parser, and
 * for dmarc_org_domain() (libpsl over whatever a From header may hold).
 * The first byte chooses: even, the rest is a TXT record's text (bytes
 * with a length, NULs included); odd, the rest is a domain (cut at the
 * first NUL). Invariants, abort() on violation:
 *  - the parser returns -1, 0 or 1; the same input parses the same way
 *    again; 1 gives a policy, pct <= 100, and rua/ruf/fo that are
 *    NUL-terminated printable ASCII within their fields, each rua/ruf
 *    item a URI ("scheme:..."); -1 gives a short printable reason; 0
 *    only for text that does not start with "v" (any case) blanks "=".
 *  - the organizational domain is lower case, a suffix of the
 *    lower-cased input (less one final dot), and its own org domain
 *    (unless it still ends in a dot).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dmarc_record.h"
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
		const char *colon = memchr(item, ':', comma != NULL
							  ? (size_t)(comma - item)
							  : strlen(item));

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
		return;	/* "a.." : one final dot went, the next one stays */
	check(dmarc_org_domain(org, org2, sizeof(org2)) == 0);
	check(strcmp(org, org2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (size - 1 > IN_MAX)
		size = IN_MAX + 1;
	if (data[0] % 2 == 0)
		fuzz_record(data + 1, size - 1);
	else
		fuzz_org(data + 1, size - 1);
	return 0;
}
