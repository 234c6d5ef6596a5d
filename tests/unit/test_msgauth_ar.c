/*
 * The Authentication-Results field (msgauth/msgauth_ar.c) from results:
 * its layout, one dkim entry per signature, and values from the client
 * or DNS quoted so that nothing they hold can end the field, start
 * another or break the method list.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "msgauth/msgauth.h"

static struct msgauth_results
results(void)
{
	struct msgauth_results r;

	memset(&r, 0, sizeof(r));
	r.spf_done = true;
	r.spf.result = SPF_PASS;
	r.spf.identity = "mailfrom";
	strcpy(r.spf.sender, "alice@example.org");
	strcpy(r.spf.domain, "example.org");
	r.dkim_done = true;
	r.from = MSGAUTH_FROM_ONE;
	strcpy(r.from_domain, "example.org");
	r.dmarc_done = true;
	r.dmarc.result = DMARC_PASS;
	r.dmarc.policy = DMARC_P_REJECT;
	r.dmarc.disposition = DMARC_P_NONE;
	r.sp = DMARC_P_QUARANTINE;
	return r;
}

static void
test_layout(void **state)
{
	struct msgauth_results r = results();
	struct iprev_outcome ip = {.result = IPREV_PASS};
	struct dkim_sig_result sigs[2];
	char *ar;

	(void)state;
	memset(sigs, 0, sizeof(sigs));
	sigs[0].result = DKIM_PASS;
	strcpy(sigs[0].domain, "example.org");
	strcpy(sigs[0].selector, "s1");
	strcpy(sigs[0].algorithm, "rsa-sha256");
	strcpy(sigs[0].b_prefix, "AbCd+/9x");
	sigs[1].result = DKIM_FAIL;
	strcpy(sigs[1].domain, "other.test");
	strcpy(sigs[1].selector, "k");
	strcpy(sigs[1].algorithm, "ed25519-sha256");
	strcpy(sigs[1].b_prefix, "zzzzzzzz");
	strcpy(sigs[1].reason, "body hash mismatch");
	r.sigs = sigs;
	r.nsigs = 2;
	strcpy(ip.name, "mail.example.org");
	ar = msgauth_ar_format(&r, "mx.example.test", true, &ip, "192.0.2.1");
	assert_string_equal(
	    ar, "Authentication-Results: mx.example.test;\n"
		"\tiprev=pass policy.iprev=192.0.2.1 (mail.example.org);\n"
		"\tspf=pass smtp.mailfrom=alice@example.org;\n"
		"\tdkim=pass header.d=example.org header.s=s1 "
		"header.a=rsa-sha256 header.b=AbCd+/9x;\n"
		"\tdkim=fail (body hash mismatch) header.d=other.test "
		"header.s=k header.a=ed25519-sha256 header.b=zzzzzzzz;\n"
		"\tdmarc=pass (p=reject sp=quarantine dis=none) "
		"header.from=example.org\n");
	free(ar);
	/* no signature, no iprev, the null sender (HELO identity) */
	r.nsigs = 0;
	r.spf.identity = "helo";
	strcpy(r.spf.domain, "client.example.org");
	ar = msgauth_ar_format(&r, "mx.example.test", true, NULL, "192.0.2.1");
	assert_non_null(strstr(ar, "\tspf=pass smtp.helo=client.example.org;\n"
				   "\tdkim=none;\n"));
	assert_null(strstr(ar, "iprev"));
	free(ar);
}

/* Client text cannot break out: quoted, controls replaced. */
static void
test_hostile_values(void **state)
{
	struct msgauth_results r = results();
	struct dkim_sig_result sig;
	char *ar;

	(void)state;
	strcpy(r.spf.sender, "\"a;b\\\"c\r\nX-Evil: 1\"@example.org");
	memset(&sig, 0, sizeof(sig));
	sig.result = DKIM_PERMERROR;
	strcpy(sig.domain, "ex ample;dmarc=pass");
	strcpy(sig.selector, "s\n\tdkim=pass");
	strcpy(sig.algorithm, "");
	strcpy(sig.b_prefix, "(x)");
	strcpy(sig.reason, "bad (tag) \\ \x01");
	r.sigs = &sig;
	r.nsigs = 1;
	ar = msgauth_ar_format(&r, "mx.example.test", true, NULL, "::1");
	/* one field: every line after the first is a continuation */
	for (const char *p = strchr(ar, '\n'); p != NULL && p[1] != '\0';
	     p = strchr(p + 1, '\n'))
		assert_true(p[1] == '\t');
	assert_null(strchr(ar, '\r'));
	assert_null(strstr(ar, "X-Evil: 1\n"));
	assert_non_null(strstr(ar, "smtp.mailfrom=\"\\\"a;b\\\\\\\"c??X-Evil: "
				   "1\\\"@example.org\""));
	assert_non_null(strstr(ar, "header.d=\"ex ample;dmarc=pass\""));
	assert_non_null(strstr(ar, "header.s=\"s??dkim=pass\""));
	assert_non_null(strstr(ar, "header.a=\"\""));
	assert_non_null(strstr(ar, "(bad ?tag? ? ?)"));
	free(ar);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_hostile_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
