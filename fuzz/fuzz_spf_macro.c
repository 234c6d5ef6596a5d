/*
 * libFuzzer target for the SPF macro expander (mail/spf_record.c), where
 * libspf2's CVEs lived. Input: a flags octet (context, address family,
 * output size), then the macro-string, then after a NUL the value of the
 * local part (attacker-chosen, as a sender's is). The output must always
 * be NUL-terminated within its size, an expansion that succeeds must
 * pass the syntax check, and a failed one leaves "".
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum spf_macro_ctx ctxs[] = {
		SPF_MACRO_DOMAIN, SPF_MACRO_EXP, SPF_MACRO_ANY, SPF_MACRO_EXP};
	static const size_t sizes[] = {1, 16, 256, SPF_MACRO_OUT_MAX};
	struct spf_macro_vars v;
	char local[300], *out;
	const char *s, *nul, *err;
	size_t n, osize;
	enum spf_macro_ctx ctx;
	int r;

	if (size < 1)
		return 0;
	ctx = ctxs[data[0] & 3];
	osize = sizes[(data[0] >> 2) & 3];
	s = (const char *)data + 1;
	n = size - 1;
	memset(&v, 0, sizeof(v));
	local[0] = '\0';
	if ((nul = memchr(s, '\0', n)) != NULL) {
		size_t ln = n - (size_t)(nul - s) - 1;

		if (ln >= sizeof(local))
			ln = sizeof(local) - 1;
		memcpy(local, nul + 1, ln);
		local[ln] = '\0';
		n = (size_t)(nul - s);
	}
	v.sender = "x@a.b.example.org";
	v.local = local;
	v.sender_domain = v.domain = "a.b.example.org";
	v.helo = "helo.example.net";
	v.receiver = "receiver.example.com";
	v.ptr = (data[0] & 0x20) ? NULL : "ptr.example.org";
	v.family = (data[0] & 0x10) ? AF_INET6 : AF_INET;
	inet_pton(v.family, v.family == AF_INET6 ? "2001:db8::cb01"
						 : "192.0.2.3", v.addr);
	v.now = 1700000000;
	out = malloc(osize);
	r = spf_macro_expand(s, n, &v, ctx, out, osize, &err);
	check(strnlen(out, osize) < osize);
	if (r == 0)
		check(spf_macro_check(s, n, ctx, NULL, &err) == 0);
	else
		check(out[0] == '\0');
	free(out);
	return 0;
}
