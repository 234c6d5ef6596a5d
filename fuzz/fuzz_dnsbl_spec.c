/*
 * libFuzzer target for mail/dnsbl_spec.c, the postscreen-style DNS list
 * specs. The input is cut at its first NUL into the spec; the 4 octets
 * after the NUL (if any) are an A answer to match. Invariants, abort()
 * on violation:
 *  - the parser returns 0 or -1; the same input parses the same way
 *    again; -1 comes with a short printable reason;
 *  - 0 gives a non-empty lower-case zone of at most DNSBL_ZONE_MAX
 *    octets of letters, digits, '-', '_' and inner dots, a weight within
 *    +-DNSBL_WEIGHT_MAX, and the zone parses again to itself;
 *  - a 127.255.255.x answer never counts; without codes exactly the
 *    127.0.0.0/8 answers count;
 *  - the configuration checks agree with the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dnsbl_spec.h"

static void
check_zone(const struct dnsbl_spec *sp)
{
	size_t n = strlen(sp->zone);
	struct dnsbl_spec again;
	const char *err;

	if (n == 0 || n > DNSBL_ZONE_MAX || sp->zone[0] == '.' ||
	    sp->zone[n - 1] == '.' || strstr(sp->zone, "..") != NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = sp->zone[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			abort();
	}
	if (dnsbl_spec_parse(sp->zone, &again, &err) != 0 ||
	    strcmp(again.zone, sp->zone) != 0 || again.weight != 1 ||
	    !again.any)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char spec[DNSBL_SPEC_MAX + 64];
	size_t n = strnlen((const char *)data, size);
	unsigned char a[4] = {127, 0, 0, 2};
	struct dnsbl_spec sp, sp2;
	const char *err = NULL, *err2 = NULL;
	int rc;

	if (n >= sizeof(spec))
		return 0;
	memcpy(spec, data, n);
	spec[n] = '\0';
	if (size >= n + 5)
		memcpy(a, data + n + 1, 4);
	rc = dnsbl_spec_parse(spec, &sp, &err);
	if (rc != dnsbl_spec_parse(spec, &sp2, &err2))
		abort();
	if ((dnsbl_spec_check(spec) == NULL) != (rc == 0))
		abort();
	if (rc != 0) {
		if (rc != -1 || err == NULL || strlen(err) > 100 ||
		    strcmp(err, err2) != 0)
			abort();
		return 0;
	}
	if (memcmp(&sp, &sp2, sizeof(sp)) != 0)
		abort();
	check_zone(&sp);
	if (sp.weight > DNSBL_WEIGHT_MAX || sp.weight < -DNSBL_WEIGHT_MAX)
		abort();
	if ((dnsbl_spec_check_allow(spec) == NULL) == sp.has_weight)
		abort();
	if (dnsbl_answer_refused(a) && dnsbl_spec_match(&sp, a))
		abort();
	if (sp.any && !dnsbl_answer_refused(a) &&
	    dnsbl_spec_match(&sp, a) != (a[0] == 127))
		abort();
	return 0;
}
