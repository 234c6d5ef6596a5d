/*
 * The queue runner's destinations and connections: a destination (a
 * recipient domain, or the smarthost) has a queue of jobs, a route
 * (MX hosts and their addresses, from net/dns.c) and up to
 * outbound.max_per_domain connections (outbound.max_connections in
 * all); each connection tries the route's addresses in order and, once
 * in, takes jobs until none is left.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "mta/runner.h"
#include "mta/runner_private.h"
#include "net/dns.h"

static void conn_try(struct conn *c);
static void conn_next_job(struct conn *c);

bool
uses_smarthost(const struct runner_settings *c, const char *domain)
{
	if (c->smarthost.host == NULL)
		return false;
	if (c->smarthost.ndomains == 0)
		return true;
	for (size_t i = 0; i < c->smarthost.ndomains; i++)
		if (strcasecmp(c->smarthost.domains[i], domain) == 0)
			return true;
	return false;
}

static enum tls_policy
mx_policy(const struct runner_settings *c, const char *domain)
{
	for (size_t i = 0; i < c->outbound.ntls_policies; i++)
		if (strcasecmp(c->outbound.tls_policies[i].domain, domain) == 0)
			return c->outbound.tls_policies[i].policy;
	return c->outbound.tls;
}

/* ---- destinations --------------------------------------------------- */

struct dest *
dest_get(struct runner *r, const char *key, bool smarthost)
{
	struct dest *d;

	TAILQ_FOREACH(d, &r->dests, entry)
		if (d->smarthost == smarthost && strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->r = r;
	d->key = xstrdup(key);
	d->smarthost = smarthost;
	TAILQ_INIT(&d->jobs);
	TAILQ_INIT(&d->conns);
	TAILQ_INSERT_TAIL(&r->dests, d, entry);
	return d;
}

static void
dest_maybe_free(struct dest *d)
{
	if (d->njobs > 0 || d->nconns > 0)
		return;
	if (d->q != NULL)
		dns_query_cancel(d->q);
	dns_route_free(&d->route);
	TAILQ_REMOVE(&d->r->dests, d, entry);
	free(d->key);
	free(d);
}

/*
 * Fails (or defers) a job's recipients with one reply. soft: whatever
 * its code, the reply only defers (connection-level trouble: the reply
 * is kept as the server gave it, for the operator, with a 4 as its
 * class).
 */
static void
job_fail(struct job *j, int code, const char *enh, const char *text,
	 const char *relay, bool soft)
{
	for (size_t i = 0; i < j->n; i++) {
		struct outcome *o = &j->m->out[j->idx[i]];
		outcome_set(o, code, enh, text, relay);
		if (soft && o->code >= 500) {
			o->code = 400 + o->code % 100;
			o->enh[0] = '4';
		}
	}
	job_finish(j);
}

/*
 * No address of the route took us: every job still waiting here gets
 * this failure, unless another connection is still at work on them.
 */
static void
dest_fail_all(struct dest *d, int code, const char *enh, const char *text,
	      const char *relay, bool soft)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&d->jobs)) != NULL) {
		TAILQ_REMOVE(&d->jobs, j, entry);
		d->njobs--;
		job_fail(j, code, enh, text, relay, soft);
	}
}

void
dests_kick(struct runner *r, const struct dest *except)
{
	struct dest *d, *dn;

	TAILQ_FOREACH_SAFE(d, &r->dests, entry, dn)
		if (d != except && d->njobs > d->nconnecting)
			dest_kick(d);
}

void
dests_free(struct runner *r)
{
	struct dest *d;

	while ((d = TAILQ_FIRST(&r->dests)) != NULL) {
		struct conn *c;
		struct job *j;
		while ((c = TAILQ_FIRST(&d->conns)) != NULL) {
			if (c->job != NULL) {
				free(c->job->idx);
				free(c->job);
			}
			smtp_client_free(&c->c);
			TAILQ_REMOVE(&d->conns, c, entry);
			free(c->rcpts);
			free(c);
		}
		while ((j = TAILQ_FIRST(&d->jobs)) != NULL) {
			TAILQ_REMOVE(&d->jobs, j, entry);
			free(j->idx);
			free(j);
		}
		if (d->q != NULL)
			dns_query_cancel(d->q);
		dns_route_free(&d->route);
		TAILQ_REMOVE(&r->dests, d, entry);
		free(d->key);
		free(d);
	}
}

/* ---- connections ---------------------------------------------------- */

static void
conn_free(struct conn *c, bool quit)
{
	struct dest *d = c->d;
	struct runner *r = c->r;

	if (quit && c->c != NULL)
		smtp_client_quit(c->c);
	else
		smtp_client_free(&c->c);
	TAILQ_REMOVE(&d->conns, c, entry);
	d->nconns--;
	r->nconns--;
	free(c->rcpts);
	free(c);
	/* the global limit was reached and a slot is free: whoever waits
	 * for one may go (below the limit, nobody waits) */
	if (!r->stopping &&
	    r->nconns + 1 == r->config->outbound.max_connections)
		dests_kick(r, d);
}

static void
conn_ready_cb(struct smtp_client *sc, bool ok, const struct smtp_reply *reply,
	      void *arg)
{
	struct conn *c = arg;
	struct dest *d = c->d;

	(void)sc;
	if (ok) {
		d->nconnecting--;
		conn_next_job(c);
		return;
	}
	c->fail = *reply;
	snprintf(c->fail_relay, sizeof(c->fail_relay), "%s",
		 smtp_client_peer(sc));
	smtp_client_free(&c->c);
	conn_try(c);
}

static void
conn_done_cb(struct smtp_client *sc, bool ok, void *arg)
{
	struct conn *c = arg;
	struct job *j = c->job;
	const char *relay = smtp_client_peer(sc);
	bool relayed = (smtp_client_ehlo(sc)->ext & SMTP_EXT_DSN) == 0;
	char tlsbuf[160];
	const char *tls = smtp_client_tls(sc, tlsbuf, sizeof(tlsbuf));

	c->job = NULL;
	for (size_t i = 0; i < j->n; i++) {
		struct outcome *o = &j->m->out[j->idx[i]];
		const struct smtp_reply *rp = &c->rcpts[i].reply;
		outcome_set(o, rp->code, rp->enh, rp->text, relay);
		o->relayed = relayed;
		o->tls = tls != NULL ? xstrdup(tls) : NULL;
	}
	job_finish(j);
	if (ok) {
		conn_next_job(c);
	} else {
		struct dest *d = c->d;
		conn_free(c, false);
		if (d->njobs > 0)
			dest_kick(d);
		else
			dest_maybe_free(d);
	}
}

static void
conn_next_job(struct conn *c)
{
	struct dest *d = c->d;
	struct job *j = TAILQ_FIRST(&d->jobs);
	struct msg *m;

	if (j == NULL || c->r->stopping) {
		conn_free(c, true);
		dest_maybe_free(d);
		return;
	}
	TAILQ_REMOVE(&d->jobs, j, entry);
	d->njobs--;
	c->job = j;
	m = j->m;
	free(c->rcpts);
	c->rcpts = xcalloc(j->n, sizeof(*c->rcpts));
	for (size_t i = 0; i < j->n; i++) {
		struct queue_rcpt *qr = &m->env.rcpts[j->idx[i]];
		c->rcpts[i].addr = qr->addr;
		c->rcpts[i].notify = qr->notify;
		c->rcpts[i].orcpt = qr->orcpt;
	}
	memset(&c->cm, 0, sizeof(c->cm));
	c->cm.sender = m->env.sender;
	c->cm.envid = m->env.envid;
	c->cm.ret = m->env.ret;
	c->cm.body = m->env.body;
	c->cm.smtputf8 = m->env.smtputf8;
	c->cm.fd = m->fd;
	c->cm.offset = m->off;
	c->cm.size = m->env.size;
	c->cm.rcpts = c->rcpts;
	c->cm.nrcpts = j->n;
	smtp_client_send(c->c, &c->cm, conn_done_cb, c);
}

/*
 * The client TLS context, made when first needed (loading the system's
 * CA store takes a while, and a server that only relays in clear never
 * needs it). One context when both ask for the same CA file.
 */
static SSL_CTX *
ssl_ctx_for(struct runner *r, bool smarthost)
{
	const struct runner_settings *cf = r->config;
	const char *mx_ca = cf->outbound.ca_file;
	const char *sh_ca = cf->smarthost.ca_file;
	bool same = (mx_ca == NULL && sh_ca == NULL) ||
		    (mx_ca != NULL && sh_ca != NULL && strcmp(mx_ca, sh_ca) == 0);
	SSL_CTX **slot = smarthost && !same ? &r->ssl_relay : &r->ssl_mx;
	char *error = NULL;

	if (*slot == NULL &&
	    (*slot = smtp_client_ssl_ctx_new(smarthost ? sh_ca : mx_ca,
					     &error)) == NULL) {
		log_event(LOG_ERR, "delivery", "tls-setup-failed",
			  LF_STR("error", error));
		free(error);
	}
	return *slot;
}

/*
 * The route is used up: the connection goes, and the last connection
 * out takes the waiting jobs with it; while others live, they take
 * them. A refusal at the door of every host (greeting, EHLO, even a
 * smarthost refusing our password) is not the mail's fault: it only
 * defers (soft), as in Postfix, with the server's reply kept.
 */
static void
conn_give_up(struct conn *c)
{
	struct dest *d = c->d;
	char text[SMTP_CLIENT_TEXT_MAX + 16], enh[16], relay[300];
	int code = c->fail.code != 0 ? c->fail.code : 451;

	snprintf(enh, sizeof(enh), "%s",
		 c->fail.enh[0] != '\0' ? c->fail.enh : "4.4.1");
	snprintf(text, sizeof(text), "%s",
		 c->fail.code != 0 ? c->fail.text : "no address to connect to");
	snprintf(relay, sizeof(relay), "%s", c->fail_relay);
	d->nconnecting--;
	conn_free(c, false);
	if (d->nconns == 0)
		dest_fail_all(d, code, enh, text,
			      relay[0] != '\0' ? relay : NULL, true);
	dest_maybe_free(d);
}

/* The client's parameters for host h of destination d. */
static void
conn_params(struct runner *r, struct dest *d, const struct dns_host *h,
	    struct smtp_client_params *p)
{
	const struct runner_settings *cf = r->config;

	memset(p, 0, sizeof(*p));
	p->helo_name = cf->hostname;
	p->server_name = h->name;
	p->t_connect = cf->outbound.timeout_connect;
	p->t_greeting = cf->outbound.timeout_greeting;
	p->t_command = cf->outbound.timeout_command;
	p->t_data_init = cf->outbound.timeout_data_init;
	p->t_data_block = cf->outbound.timeout_data_block;
	p->t_data_end = cf->outbound.timeout_data_end;
	if (d->smarthost) {
		p->implicit_tls = cf->smarthost.tls == SMARTHOST_IMPLICIT;
		p->tls = cf->smarthost.tls == SMARTHOST_NONE ? TLS_POLICY_NONE
			 : cf->smarthost.verify ? TLS_POLICY_VERIFY
						: TLS_POLICY_ENCRYPT;
		p->auth_user = r->secrets->user;
		p->auth_pass = r->secrets->pass;
	} else {
		p->tls = mx_policy(cf, d->key);
	}
	/* without a context the client cannot do TLS: "may" goes on in
	 * clear, the stricter policies fail (deferred), as they must */
	if (p->tls != TLS_POLICY_NONE || p->implicit_tls)
		p->ssl_ctx = ssl_ctx_for(r, d->smarthost);
}

/* The port to connect to, and the source address for ss's family. */
static void
conn_addrs(const struct runner_settings *cf, bool smarthost,
	   struct sockaddr_storage *ss, const struct sockaddr **src_r,
	   socklen_t *srclen_r)
{
	unsigned port = smarthost ? cf->smarthost.port : cf->outbound.port;

	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	*src_r = NULL;
	*srclen_r = 0;
	if (ss->ss_family == AF_INET && cf->outbound.source4_len > 0) {
		*src_r = (const struct sockaddr *)&cf->outbound.source4;
		*srclen_r = cf->outbound.source4_len;
	} else if (ss->ss_family == AF_INET6 && cf->outbound.source6_len > 0) {
		*src_r = (const struct sockaddr *)&cf->outbound.source6;
		*srclen_r = cf->outbound.source6_len;
	}
}

/* Connects to the next address of the route; at the end, gives up. */
static void
conn_try(struct conn *c)
{
	struct runner *r = c->r;
	struct dest *d = c->d;
	struct dns_route *rt = d->route;
	struct smtp_client_params p;
	struct sockaddr_storage ss;
	const struct sockaddr *src;
	socklen_t srclen, salen;
	struct dns_host *h;

	while (rt != NULL && c->host < rt->nhosts &&
	       c->addr >= rt->hosts[c->host].naddrs) {
		c->host++;
		c->addr = 0;
	}
	if (rt == NULL || c->host >= rt->nhosts || r->stopping) {
		conn_give_up(c);
		return;
	}
	h = &rt->hosts[c->host];
	memcpy(&ss, &h->addrs[c->addr], sizeof(ss));
	salen = h->addrlens[c->addr];
	c->addr++;
	conn_addrs(r->config, d->smarthost, &ss, &src, &srclen);
	conn_params(r, d, h, &p);
	c->c = smtp_client_new(r->base, &p, (struct sockaddr *)&ss, salen, src,
			       srclen, conn_ready_cb, c);
}

static void
conn_start(struct dest *d)
{
	struct runner *r = d->r;
	struct conn *c = xcalloc(1, sizeof(*c));

	c->r = r;
	c->d = d;
	TAILQ_INSERT_TAIL(&d->conns, c, entry);
	d->nconns++;
	d->nconnecting++;
	r->nconns++;
	conn_try(c);
}

/* ---- routes --------------------------------------------------------- */

/*
 * RFC 5321 5.1: when we are one of the MX hosts, only the ones
 * preferred to us may be used. Returns false (the route freed) when
 * none is left: a loop.
 */
static bool
route_cut_self(struct dns_route *route, const char *me)
{
	for (size_t i = 0; i < route->nhosts; i++) {
		size_t cut = 0;
		if (strcasecmp(route->hosts[i].name, me) != 0)
			continue;
		/* hosts sorted by preference: keep the ones below ours */
		while (cut < route->nhosts &&
		       route->hosts[cut].pref < route->hosts[i].pref)
			cut++;
		if (cut == 0)
			return false;
		for (size_t k = cut; k < route->nhosts; k++) {
			free(route->hosts[k].name);
			free(route->hosts[k].addrs);
			free(route->hosts[k].addrlens);
		}
		route->nhosts = cut;
		break;
	}
	return true;
}

/* The lookup failed: every job here gets the answer. */
static void
route_failed(struct dest *d, struct dns_route *route)
{
	int code = route->status == DNS_TEMPFAIL ? 451 : 550;
	const char *enh = route->status == DNS_NULLMX	 ? "5.1.10"
			  : route->status == DNS_TEMPFAIL ? "4.4.3"
							  : "5.1.2";
	char text[300];

	snprintf(text, sizeof(text), "%s",
		 route->status == DNS_NULLMX
			 ? "Domain does not accept mail (null MX)"
			 : route->error);
	if (route->status == DNS_NULLMX)
		code = 556;
	dns_route_free(&route);
	dest_fail_all(d, code, enh, text, NULL, false);
	dest_maybe_free(d);
}

static void
route_cb(struct dns_route *route, void *arg)
{
	struct dest *d = arg;

	d->q = NULL;
	if (route->status != DNS_OK) {
		route_failed(d, route);
		return;
	}
	if (!d->smarthost && !route_cut_self(route, d->r->config->hostname)) {
		char text[300];
		snprintf(text, sizeof(text), "mail for %s loops back to myself",
			 d->key);
		dns_route_free(&route);
		dest_fail_all(d, 554, "5.4.6", text, NULL, false);
		dest_maybe_free(d);
		return;
	}
	d->route = route;
	dest_kick(d);
}

void
dest_kick(struct dest *d)
{
	struct runner *r = d->r;
	const struct runner_settings *cf = r->config;

	if (r->stopping || d->q != NULL)
		return;
	if (d->route == NULL) {
		struct dns_lookup_opts o;
		const char *name = d->smarthost ? cf->smarthost.host : d->key;
		o.want_ipv4 = cf->outbound.ipv4;
		o.want_ipv6 = cf->outbound.ipv6;
		o.prefer = cf->outbound.prefer_ipv4 ? DNS_PREFER_IPV4
						    : DNS_PREFER_IPV6;
		o.no_mx = d->smarthost;
		d->q = dns_route_lookup(r->dns, name, &o, route_cb, d);
		return;
	}
	while (d->njobs > d->nconnecting &&
	       d->nconns < cf->outbound.max_per_domain &&
	       r->nconns < cf->outbound.max_connections)
		conn_start(d);
}
