/*
 * libFuzzer target for the SPF record parser (mail/spf_record.c). The
 * input is one record. What parses must be self-consistent: terms that
 * need a domain-spec have one, CIDR lengths are in range, the text shown
 * for a term is printable, and every domain-spec expands (with fixed
 * values) within its bound and truncates to a name of at most 253
 * octets; anything else abort()s so the fuzzer reports it.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mail/spf_record.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_spec(const char *spec)
{
	struct spf_macro_vars v;
	char out[SPF_MACRO_OUT_MAX];
	const char *err;

	if (spec == NULL)
		return;
	memset(&v, 0, sizeof(v));
	v.sender = "local-part+x@sub.example.org";
	v.local = "local-part+x";
	v.sender_domain = v.domain = "sub.example.org";
	v.helo = "mx.example.net";
	v.receiver = "receiver.example.com";
	v.ptr = "unknown";
	v.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", v.addr);
	check(spf_macro_check(spec, strlen(spec), SPF_MACRO_DOMAIN, NULL,
			      &err) == 0);
	if (spf_macro_expand(spec, strlen(spec), &v, SPF_MACRO_DOMAIN, out,
			     sizeof(out), &err) < 0)
		return;
	check(strlen(out) < sizeof(out));
	spf_domain_truncate(out);
	check(strlen(out) <= 253);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_record *rec = NULL;
	char err[160];
	size_t i;
	const char *p;

	if (spf_record_parse((const char *)data, size, &rec, err,
			     sizeof(err)) < 0) {
		check(rec == NULL && strlen(err) < sizeof(err));
		return 0;
	}
	for (i = 0; i < rec->nterms; i++) {
		const struct spf_term *t = &rec->terms[i];

		check(t->cidr4 <= 32 && t->cidr6 <= 128);
		if (t->mech == SPF_M_INCLUDE || t->mech == SPF_M_EXISTS)
			check(t->spec != NULL && t->spec[0] != '\0');
		for (p = t->text; *p != '\0'; p++)
			check(*p >= 0x20 && *p < 0x7f);
		check_spec(t->spec);
	}
	check_spec(rec->redirect);
	check_spec(rec->exp);
	spf_record_free(&rec);
	check(rec == NULL);
	return 0;
}
