/*
 * Fuzz the DKIM tag-list and DKIM-Signature parsers, and the b= strip
 * of the header hash. Checks: a parsed list's tags lie inside the
 * input, have names and no two alike; a parsed signature has d=, s=,
 * h= naming From, i= in d=, x= not before t=; the stripped field is no
 * longer than the field and is a parse of it again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/dkim_sig.h"
#include "mail/dkim_tags.h"

static void
check_tags(const char *s, size_t n)
{
	struct dkim_tag_list l;
	const char *err = NULL;

	if (dkim_tags_parse(s, n, &l, &err) < 0) {
		if (err == NULL)
			abort();
		return;
	}
	if (l.n == 0 || l.n > DKIM_TAGS_MAX)
		abort();
	for (size_t i = 0; i < l.n; i++) {
		const struct dkim_tag *t = &l.v[i];
		if (t->name < s || t->value < s || t->name_len == 0 ||
		    t->value + t->value_len > s + n || t->end > s + n ||
		    t->after_eq > t->value || t->value + t->value_len > t->end)
			abort();
		for (size_t k = 0; k < i; k++)
			if (l.v[k].name_len == t->name_len &&
			    memcmp(l.v[k].name, t->name, t->name_len) == 0)
				abort();
	}
}

static void
check_sig(const char *s, size_t n)
{
	struct dkim_sig sig;
	const char *err = NULL;
	bool from = false;

	if (dkim_sig_parse(s, n, &sig, &err) < 0) {
		if (err == NULL)
			abort();
		return;
	}
	if (sig.domain[0] == '\0' || sig.selector[0] == '\0' ||
	    sig.nh == 0 || sig.b_len == 0 || sig.bh_len == 0)
		abort();
	for (size_t i = 0; i < sig.nh; i++)
		if (strcasecmp(sig.h[i], "from") == 0)
			from = true;
	if (!from || (sig.has_t && sig.has_x && sig.x < sig.t))
		abort();
	if (strlen(sig.auid_domain) < strlen(sig.domain))
		abort();
}

static void
check_strip(const char *s, size_t n)
{
	char *field = malloc(n + 17), *out = malloc(n + 17);
	long k;

	memcpy(field, "DKIM-Signature:", 15);
	memcpy(field + 15, s, n);
	if ((k = dkim_sig_strip_b(field, n + 15, out)) >= 0 &&
	    (size_t)k > n + 15)
		abort();
	free(field);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies so ASan sees reads past the end */
	char *s = malloc(size ? size : 1);

	memcpy(s, data, size);
	check_tags(s, size);
	check_sig(s, size);
	check_strip(s, size);
	free(s);
	return 0;
}
