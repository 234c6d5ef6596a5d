/*
 * iprev: forward-confirmed reverse DNS of a client (see iprev.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "msgauth/iprev.h"

struct iprev_check {
	struct dns_resolver *r;
	unsigned timeout_ms;
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	iprev_done_cb *cb;
	void *arg;
	struct dns_query *ptr;
	/* the forward lookups, one per PTR name */
	struct iprev_fwd {
		struct iprev_check *c;
		struct dns_query *q;
		char name[DNS_NAME_MAX + 1];
	} fwd[IPREV_MAX_NAMES];
	size_t nfwd, npending;
	bool tempfail;
	struct iprev_outcome out;
};

const char *
iprev_result_name(enum iprev_result r)
{
	switch (r) {
	case IPREV_PASS:
		return "pass";
	case IPREV_FAIL:
		return "fail";
	case IPREV_TEMPERROR:
		return "temperror";
	case IPREV_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

/* Reports and frees: the last thing a check does. */
static void
finish(struct iprev_check *c)
{
	iprev_done_cb *cb = c->cb;
	void *arg = c->arg;
	struct iprev_outcome out = c->out;

	for (size_t i = 0; i < c->nfwd; i++)
		dns_query_cancel(c->fwd[i].q);
	free(c);
	cb(&out, arg);
}

static void
fwd_cb(struct dns_answer *a, void *arg)
{
	struct iprev_fwd *f = arg;
	struct iprev_check *c = f->c;
	size_t alen = c->family == AF_INET ? 4 : 16;

	f->q = NULL;
	c->npending--;
	if (a->status == DNS_ANS_TEMPFAIL)
		c->tempfail = true;
	for (size_t i = 0; a->status == DNS_ANS_OK && i < a->nrr; i++) {
		if (a->rrlen[i] == alen &&
		    memcmp(a->rr[i], c->addr, alen) == 0) {
			c->out.result = IPREV_PASS;
			snprintf(c->out.name, sizeof(c->out.name), "%s",
				 f->name);
			c->out.reason[0] = '\0';
			dns_answer_free(&a);
			finish(c);
			return;
		}
	}
	dns_answer_free(&a);
	if (c->npending > 0)
		return;
	if (c->tempfail) {
		c->out.result = IPREV_TEMPERROR;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "temporary failure looking up the names' addresses");
	} else {
		c->out.result = IPREV_FAIL;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "no name of the address maps back to it");
	}
	finish(c);
}

/* The PTR answer: every name (up to the limit) looked up at once. */
static void
ptr_cb(struct dns_answer *a, void *arg)
{
	struct iprev_check *c = arg;
	int rrtype = c->family == AF_INET ? DNS_T_A : DNS_T_AAAA;

	c->ptr = NULL;
	switch (a->status) {
	case DNS_ANS_OK:
		break;
	case DNS_ANS_NXDOMAIN:
	case DNS_ANS_NODATA:
		c->out.result = IPREV_FAIL;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "no PTR record");
		goto done;
	case DNS_ANS_TEMPFAIL:
		c->out.result = IPREV_TEMPERROR;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "PTR lookup: %.120s", a->error);
		goto done;
	default:
		c->out.result = IPREV_PERMERROR;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "not an address");
		goto done;
	}
	for (size_t i = 0; i < a->nrr && c->nfwd < IPREV_MAX_NAMES; i++) {
		struct iprev_fwd *f = &c->fwd[c->nfwd];
		if (dns_name_rdata_parse(a->rr[i], a->rrlen[i], f->name,
					 sizeof(f->name)) < 0 ||
		    f->name[0] == '\0')
			continue;
		f->c = c;
		c->nfwd++;
	}
	if (c->nfwd == 0) {
		c->out.result = IPREV_FAIL;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "no usable PTR record");
		goto done;
	}
	c->npending = c->nfwd;
	for (size_t i = 0; i < c->nfwd; i++)
		c->fwd[i].q = dns_lookup(c->r, c->fwd[i].name, rrtype,
					 c->timeout_ms, fwd_cb, &c->fwd[i]);
	dns_answer_free(&a);
	return;
done:
	dns_answer_free(&a);
	finish(c);
}

struct iprev_check *
iprev_start(struct dns_resolver *r, const char *ip, unsigned timeout_ms,
	    iprev_done_cb *cb, void *arg)
{
	struct iprev_check *c = xcalloc(1, sizeof(*c));
	char rev[128];

	c->r = r;
	c->timeout_ms = timeout_ms;
	c->cb = cb;
	c->arg = arg;
	if (inet_pton(AF_INET, ip, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, c->addr) == 1)
		c->family = AF_INET6;
	/* not an address: an invalid name, answered DNS_ANS_INVALID from
	 * the loop like any other answer (permerror) */
	if (c->family == 0 || dns_reverse_name(ip, rev, sizeof(rev)) < 0)
		rev[0] = '\0';
	c->ptr = dns_lookup(r, rev, DNS_T_PTR, timeout_ms, ptr_cb, c);
	return c;
}

void
iprev_cancel(struct iprev_check *c)
{
	if (c == NULL)
		return;
	dns_query_cancel(c->ptr);
	for (size_t i = 0; i < c->nfwd; i++)
		dns_query_cancel(c->fwd[i].q);
	free(c);
}
