/*
 * The Authentication-Results header field (RFC 8601) and the log line of
 * one message's verdicts, from msgauth_results(). Every value that came
 * from the client or from DNS goes out as a token when it is one and as
 * a quoted-string otherwise, with anything that could end the field
 * (CR, LF, other controls, 8-bit octets) replaced by '?'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "msgauth/msgauth.h"

/* A value as RFC 8601 2.2 pvalue allows it bare: a dot-atom-like text
 * with at most one '@' (local@domain or a domain). */
static bool
bare_ok(const char *s)
{
	unsigned at = 0;

	if (*s == '\0' || *s == '.' || *s == '@')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '@' && ++at == 1)
			continue;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(".-_+=/!#$%&'*^`{|}~", c)))
			return false;
	}
	return true;
}

static void
put_value(FILE *f, const char *s)
{
	if (bare_ok(s)) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fputc('\\', f);
		fputc(c < ' ' || c >= 0x7f ? '?' : c, f);
	}
	fputc('"', f);
}

/* Comment text: no parentheses, backslashes or controls. */
static void
put_comment(FILE *f, const char *s)
{
	fputs(" (", f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		fputc(c < ' ' || c >= 0x7f || c == '(' || c == ')' ||
				      c == '\\'
			  ? '?'
			  : c,
		      f);
	}
	fputc(')', f);
}

static void
put_iprev(FILE *f, const struct iprev_outcome *o, const char *ip)
{
	fprintf(f, ";\n\tiprev=%s policy.iprev=", iprev_result_name(o->result));
	put_value(f, ip);
	if (o->result == IPREV_PASS)
		put_comment(f, o->name);
}

static void
put_spf(FILE *f, const struct msgauth_results *r)
{
	const struct spf_outcome *o = &r->spf;
	bool helo = o->identity != NULL && strcmp(o->identity, "helo") == 0;

	fprintf(f, ";\n\tspf=%s", spf_result_name(o->result));
	if (helo) {
		fputs(" smtp.helo=", f);
		put_value(f, o->domain);
	} else if (o->sender[0] != '\0') {
		fputs(" smtp.mailfrom=", f);
		put_value(f, o->sender);
	}
}

static void
put_dkim(FILE *f, const struct msgauth_results *r)
{
	if (!r->dkim_done) {
		fputs(";\n\tdkim=temperror (timed out)", f);
		return;
	}
	if (r->nsigs == 0) {
		fputs(";\n\tdkim=none", f);
		return;
	}
	for (size_t i = 0; i < r->nsigs; i++) {
		const struct dkim_sig_result *s = &r->sigs[i];
		fprintf(f, ";\n\tdkim=%s", dkim_result_name(s->result));
		if (s->result != DKIM_PASS && s->reason[0] != '\0')
			put_comment(f, s->reason);
		fputs(" header.d=", f);
		put_value(f, s->domain);
		fputs(" header.s=", f);
		put_value(f, s->selector);
		fputs(" header.a=", f);
		put_value(f, s->algorithm);
		fputs(" header.b=", f);
		put_value(f, s->b_prefix);
	}
}

static void
put_dmarc(FILE *f, const struct msgauth_results *r)
{
	const struct dmarc_verdict *v = &r->dmarc;

	fprintf(f, ";\n\tdmarc=%s", dmarc_result_name(v->result));
	if (v->policy != DMARC_P_UNSET)
		fprintf(f, " (p=%s sp=%s dis=%s)", dmarc_policy_name(v->policy),
			dmarc_policy_name(r->sp != DMARC_P_UNSET ? r->sp
								 : v->policy),
			dmarc_policy_name(v->disposition != DMARC_P_UNSET
					      ? v->disposition
					      : DMARC_P_NONE));
	else if (v->reason[0] != '\0')
		put_comment(f, v->reason);
	if (r->from == MSGAUTH_FROM_ONE) {
		fputs(" header.from=", f);
		put_value(f, r->from_domain);
	}
}

char *
msgauth_ar_header(const struct msgauth *m, const struct iprev_outcome *iprev,
		  const char *ip)
{
	return msgauth_ar_format(msgauth_results(m), msgauth_authserv_id(m),
				 msgauth_dkim_on(m), iprev, ip);
}

char *
msgauth_ar_format(const struct msgauth_results *r, const char *authserv_id,
		  bool dkim_on, const struct iprev_outcome *iprev,
		  const char *ip)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		fatal("open_memstream");
	fputs("Authentication-Results: ", f);
	put_value(f, authserv_id);
	if (iprev != NULL)
		put_iprev(f, iprev, ip);
	if (r->spf_done)
		put_spf(f, r);
	if (dkim_on)
		put_dkim(f, r);
	if (r->dmarc_done)
		put_dmarc(f, r);
	fputc('\n', f);
	if (fclose(f) != 0)
		fatal("open_memstream");
	return buf;
}

/* "pass:example.org,fail:other.test" for the log */
static char *
dkim_summary(const struct msgauth_results *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		fatal("open_memstream");
	if (!r->dkim_done)
		fputs("temperror", f);
	else if (r->nsigs == 0)
		fputs("none", f);
	for (size_t i = 0; r->dkim_done && i < r->nsigs; i++)
		fprintf(f, "%s%s:%s", i > 0 ? "," : "",
			dkim_result_name(r->sigs[i].result), r->sigs[i].domain);
	if (fclose(f) != 0)
		fatal("open_memstream");
	return buf;
}

void
msgauth_log(const struct msgauth *m, const char *session,
	    const char *queue_id, const char *ip,
	    const struct iprev_outcome *iprev, const char *action)
{
	const struct msgauth_results *r = msgauth_results(m);
	const struct dmarc_verdict *v = &r->dmarc;
	char *dkim = msgauth_dkim_on(m) ? dkim_summary(r) : NULL;

	log_event(LOG_INFO, "msgauth", "result", LF_STR("session", session),
		  LF_STR("queue", queue_id), LF_STR("ip", ip),
		  LF_STR_IF(iprev != NULL, "iprev",
			    iprev != NULL ? iprev_result_name(iprev->result)
					  : ""),
		  LF_STR_IF(r->spf_done, "spf", spf_result_name(r->spf.result)),
		  LF_STR_IF(r->spf_done, "spf_domain", r->spf.domain),
		  LF_STR_IF(dkim != NULL, "dkim", dkim != NULL ? dkim : ""),
		  LF_STR_IF(r->dmarc_done, "dmarc",
			    dmarc_result_name(v->result)),
		  LF_STR_IF(r->from == MSGAUTH_FROM_ONE, "from_domain",
			    r->from_domain),
		  LF_STR_IF(r->dmarc_done && v->policy != DMARC_P_UNSET,
			    "policy", dmarc_policy_name(v->policy)),
		  LF_STR_IF(r->dmarc_done && v->reason[0] != '\0',
			    "dmarc_reason", v->reason),
		  LF_STR("action", action));
	free(dkim);
}
