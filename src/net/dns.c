/*
 * Routing by DNS over libunbound (see dns.h for the contract).
 *
 * libunbound answers asynchronously through one pipe fd: a persistent
 * libevent read event on ub_fd() calls ub_process(), which runs our
 * per-lookup callbacks in the caller's thread. Those callbacks never call
 * the caller back directly: a finished route is handed over from a
 * separate "done" event, so the caller may free the resolver or cancel
 * other queries from its callback without pulling the rug from under
 * ub_process().
 *
 * libunbound's background worker is a thread (ub_ctx_async(ctx, 1)),
 * never its default forked process. The queue runner has threads of its
 * own (the committer, the reaper), and a child forked from a threaded
 * process inherits every lock another thread held at that moment, locked
 * for good: such a worker hung at its first allocation, so every lookup
 * of that runner timed out at once, and the worker of a killed runner
 * hung in the leak check at its exit and outlived the daemon. A forked
 * worker also kept a copy of every descriptor open at the fork (queue
 * files long since delivered and deleted). A thread dies with its process
 * and shares its descriptors.
 *
 * A libunbound callback finds its lookup through a handle (slot number
 * and generation) in the resolver's table, never through a raw pointer:
 * an answer for a lookup that was cancelled or timed out finds an empty
 * or reused slot and is dropped.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound.h>

#include "net/dns.h"
#include "net/metrics.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/util.h"

#define RR_TYPE_A 1
#define RR_TYPE_MX 15
#define RR_TYPE_AAAA 28
#define RR_CLASS_IN 1

#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

#define MX_RECORDS_MAX 1024	/* MX records looked at per answer */
#define ROUTE_TIMEOUT_S 60	/* a whole route lookup, then TEMPFAIL */
#define LITERAL_MAX 64		/* "[IPv6:" + 45 + "]" fits */
#define SUBS_MAX (1 + 2 * DNS_MAX_HOSTS)

enum sub_kind { SUB_MX, SUB_A, SUB_AAAA, SUB_RAW };

/* Outcome of one libunbound lookup. */
enum answer { ANS_DATA, ANS_NODATA, ANS_NXDOMAIN, ANS_TEMP };

/* State of one family's lookup for one host. */
enum fam_state { FAM_NONE, FAM_PENDING, FAM_OK, FAM_NODATA, FAM_NXDOMAIN,
		 FAM_TEMP };

/* One outstanding libunbound lookup of a query. */
struct dns_sub {
	struct dns_query *q;
	enum sub_kind kind;
	size_t host;		/* A/AAAA: index in q->hosts */
	int async_id;
	uint32_t slot;
	bool pending;
	int rrtype;		/* for the metrics: what was asked, when */
	uint64_t started_us;
};

struct qhost {
	char name[DNS_NAME_MAX + 1];
	unsigned pref;
	enum fam_state st4, st6;
	struct sockaddr_storage a4[DNS_MAX_ADDRS], a6[DNS_MAX_ADDRS];
	size_t n4, n6;
	bool secure4, secure6;
};

/* What dns_route_free() frees: the public route and its kind, which only
 * `godwit route` asks for (route is first, so the pointers coincide). */
struct route_priv {
	struct dns_route route;
	enum dns_route_kind kind;
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;
	char domain[DNS_NAME_MAX + 1];
	struct dns_lookup_opts opts;
	dns_route_cb *cb;
	void *arg;

	enum dns_route_kind kind;
	struct qhost *hosts;	/* route lookups: DNS_MAX_HOSTS of them */
	size_t nhosts;
	struct dns_sub subs[SUBS_MAX];
	size_t nsubs, npending;
	bool mx_secure;

	/* set when the outcome is known before any address lookup */
	bool decided;
	enum dns_status status;
	char error[sizeof(((struct dns_route *)0)->error)];
	char temperr[sizeof(((struct dns_route *)0)->error)];

	struct route_priv *route;	/* built by finish() */
	/* a raw lookup (dns_lookup): one sub, its answer */
	bool raw;
	int rrtype;
	char qname[4 * (DNS_NAME_MAX + 1) + 1];	/* raw: escaped name */
	dns_answer_cb *acb;
	struct dns_answer *answer;
	struct event *done_ev;
	struct event *timer;
};

struct slot {
	struct dns_sub *sub;	/* NULL: free */
	uint32_t gen;
};

struct dns_cache;

struct dns_resolver {
	struct event_base *base;
	struct dns_cache *cache;	/* answers of dns_lookup(), or NULL */
	struct ub_ctx *ctx;	/* NULL after a failed rebuild */
	bool started;		/* ctx's worker thread runs */
	struct event *ev;
	struct dns_query *queries;

	struct slot *slots;
	size_t nslots;
	uint32_t *freelist;
	size_t nfree;

	/* a copy of the configuration, to rebuild ctx */
	char *mode;
	char **forwarders;
	size_t nforwarders;
	char *trust_anchor;
};

/*
 * The resolver whose ub_process() is running. libunbound calls a lookup's
 * callback only from inside ub_process(), in the thread that called it
 * (its worker thread only passes answers through the pipe), so this tells
 * sub_done() whose handle table its handle belongs to.
 */
static struct dns_resolver *processing;

static void query_finish(struct dns_query *q);
static void sub_done(void *arg, int err, struct ub_result *res);

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One answer from libunbound, counted by type, result and time. */
static void
sub_count(const struct dns_sub *sub, int err, const struct ub_result *res)
{
	enum metrics_dns_result mr;

	if (err != 0 || res == NULL)
		mr = METRICS_DNS_ERROR;
	else if (res->bogus)
		mr = METRICS_DNS_BOGUS;
	else if (res->rcode == RCODE_NXDOMAIN || res->nxdomain)
		mr = METRICS_DNS_NXDOMAIN;
	else if (res->rcode == 2)
		mr = METRICS_DNS_SERVFAIL;
	else if (res->rcode == 5)
		mr = METRICS_DNS_REFUSED;
	else if (res->rcode != 0)
		mr = METRICS_DNS_RCODE;
	else
		mr = res->havedata ? METRICS_DNS_OK : METRICS_DNS_NODATA;
	metrics_dns(sub->rrtype, mr, mono_us() - sub->started_us);
}

/*
 * snprintf for messages, where cutting a long name short is the right
 * thing (a 253-octet domain does not fit a 256-byte error twice over).
 */
static void
bfmt(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
bfmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* ---- pure parts ------------------------------------------------------- */

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * A label of a host name: letters, digits, '-' and '_', not starting or
 * ending with '-' (RFC 5321 sub-domain, plus the underscore that
 * real-world names sometimes carry and that does no harm in a lookup).
 */
static bool
label_ok(const unsigned char *p, size_t n)
{
	size_t i;

	if (n < 1 || n > 63 || p[0] == '-' || p[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '_')
			return false;
	return true;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int
parse_literal(const char *domain, size_t len, struct sockaddr_storage *ss,
	      socklen_t *sslen)
{
	char buf[LITERAL_MAX];
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (len < 3 || len - 2 >= sizeof(buf) || domain[len - 1] != ']')
		return -1;
	memcpy(buf, domain + 1, len - 2);
	buf[len - 2] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, buf + 5, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		*sslen = sizeof(*sin6);
		return 1;
	}
	/* inet_pton takes only strict dotted quads: no "1.2.3", no "01" */
	if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	*sslen = sizeof(*sin);
	return 1;
}

int
dns_domain_parse(const char *domain, char *name, size_t size,
		 struct sockaddr_storage *ss, socklen_t *len)
{
	const unsigned char *p, *dot;
	size_t n = strnlen(domain, DNS_NAME_MAX + 2);

	if (n > 0 && domain[0] == '[')
		return parse_literal(domain, n, ss, len);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	/* one final dot only: "example.org.." has an empty label */
	if (n == 0 || n > DNS_NAME_MAX || n >= size || domain[n - 1] == '.')
		return -1;
	for (p = (const unsigned char *)domain;
	     p < (const unsigned char *)domain + n; p = dot + 1) {
		dot = memchr(p, '.', n - (size_t)(p - (const unsigned char *)domain));
		if (dot == NULL)
			dot = (const unsigned char *)domain + n;
		if (!label_ok(p, (size_t)(dot - p)))
			return -1;
	}
	memcpy(name, domain, n);
	name[n] = '\0';
	lower(name);
	return 0;
}

int
dns_mx_rdata_parse(const unsigned char *rdata, size_t len, unsigned *pref_r,
		   char *name, size_t size)
{
	size_t i = 2, out = 0, l;

	if (len < 3 || size < 1)
		return -1;
	*pref_r = (unsigned)rdata[0] << 8 | rdata[1];
	for (;;) {
		if (i >= len)
			return -1;
		l = rdata[i++];
		if (l == 0)
			break;
		/* 0xc0: a compression pointer; libunbound hands out
		 * uncompressed names, so anything else is malformed */
		if (l > 63 || l > len - i || !label_ok(rdata + i, l))
			return -1;
		/* wire length (i - 2 + l + 1 for the root) is at most 255,
		 * so the text is at most 253 */
		if (i - 2 + l + 1 > 255 || out + (out > 0) + l >= size)
			return -1;
		if (out > 0)
			name[out++] = '.';
		memcpy(name + out, rdata + i, l);
		out += l;
		i += l;
	}
	if (i != len)
		return -1;
	name[out] = '\0';
	lower(name);
	return 0;
}

struct mx_sort {
	struct dns_mx mx;
	size_t idx;
};

static int
mx_cmp(const void *a, const void *b)
{
	const struct mx_sort *x = a, *y = b;

	if (x->mx.pref != y->mx.pref)
		return x->mx.pref < y->mx.pref ? -1 : 1;
	/* stable: the order DNS gave, so a test's rnd sees a known order */
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static unsigned
default_rnd(unsigned n, void *arg)
{
	(void)arg;
	return arc4random_uniform(n);
}

bool
dns_mx_order(struct dns_mx *mx, size_t n,
	     unsigned (*rnd)(unsigned n, void *arg), void *rnd_arg)
{
	struct mx_sort *s;
	struct dns_mx t;
	size_t i, j, k, start;

	if (rnd == NULL)
		rnd = default_rnd;
	if (n > 1) {
		s = xreallocarray(NULL, n, sizeof(*s));
		for (i = 0; i < n; i++) {
			s[i].mx = mx[i];
			s[i].idx = i;
		}
		qsort(s, n, sizeof(*s), mx_cmp);
		for (i = 0; i < n; i++)
			mx[i] = s[i].mx;
		free(s);
	}
	/* Fisher-Yates over each run of equal preference */
	for (start = 0; start < n; start = i) {
		for (i = start + 1; i < n && mx[i].pref == mx[start].pref; i++)
			;
		for (k = i - start; k > 1; k--) {
			j = rnd((unsigned)k, rnd_arg) % k;
			t = mx[start + k - 1];
			mx[start + k - 1] = mx[start + j];
			mx[start + j] = t;
		}
	}
	return n == 1 && mx[0].name != NULL && mx[0].name[0] == '\0';
}

/* ---- the handle table ------------------------------------------------- */

static uintptr_t
slot_take(struct dns_resolver *r, struct dns_sub *sub)
{
	uint32_t i;

	if (r->nfree == 0) {
		if (r->nslots >= UINT32_MAX / 2)
			fatalx("dns: handle table full");
		i = (uint32_t)r->nslots;
		r->slots = xreallocarray(r->slots, r->nslots + 1,
					 sizeof(*r->slots));
		r->freelist = xreallocarray(r->freelist, r->nslots + 1,
					    sizeof(*r->freelist));
		r->slots[i].gen = 0;
		r->nslots++;
	} else
		i = r->freelist[--r->nfree];
	r->slots[i].sub = sub;
	r->slots[i].gen++;
	sub->slot = i;
	/* 64-bit pointers: slot and generation side by side */
	return (uintptr_t)i | (uintptr_t)r->slots[i].gen << 32;
}

static void
slot_release(struct dns_resolver *r, uint32_t i)
{
	r->slots[i].sub = NULL;
	r->freelist[r->nfree++] = i;
}

static struct dns_sub *
slot_find(struct dns_resolver *r, uintptr_t h)
{
	uint32_t i = (uint32_t)(h & 0xffffffffu);
	uint32_t gen = (uint32_t)(h >> 32);

	if (i >= r->nslots || r->slots[i].sub == NULL || r->slots[i].gen != gen)
		return NULL;
	return r->slots[i].sub;
}

/* ---- the answer cache of dns_lookup() --------------------------------
 *
 * libunbound keeps a cache too, but every lookup, even one it answers
 * from there, goes through its worker thread and back over a pipe: two
 * context switches and a dozen system calls. The same few names (a
 * sender domain's SPF, DKIM key and DMARC records) come up message after
 * message, so the answers are kept here as well, per resolver, for their
 * TTL (at most CACHE_TTL_MAX), least recently used out first. Temporary
 * failures are never kept.
 */

#define CACHE_MAX 4096		/* answers kept per resolver */
#define CACHE_BUCKETS 8192	/* a power of two */
#define CACHE_TTL_MAX 3600	/* seconds */

struct centry {
	struct centry *hnext;		/* hash chain */
	struct centry *prev, *next;	/* most recently used first */
	uint64_t expire;		/* mono_ms() */
	uint32_t hash;
	int rrtype;
	struct dns_answer *answer;
	char name[DNS_NAME_MAX + 2];	/* lower case, no final dot */
};

struct dns_cache {
	struct centry *buckets[CACHE_BUCKETS];
	struct centry *head, *tail;
	size_t n;
};

static void
cache_key(const char *name, char *key, size_t size)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < size; i++)
		key[i] = (char)tolower((unsigned char)name[i]);
	if (i > 0 && key[i - 1] == '.')
		i--;
	key[i] = '\0';
}

static uint32_t
cache_hash(const char *key, int rrtype)
{
	uint32_t h = 2166136261u ^ (uint32_t)rrtype;	/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

static struct dns_answer *
answer_copy(const struct dns_answer *a)
{
	struct dns_answer *c = xcalloc(1, sizeof(*c));
	size_t i;

	*c = *a;
	c->rr = NULL;
	c->rrlen = NULL;
	if (a->nrr > 0) {
		c->rr = xcalloc(a->nrr, sizeof(*c->rr));
		c->rrlen = xcalloc(a->nrr, sizeof(*c->rrlen));
	}
	for (i = 0; i < a->nrr; i++) {
		c->rrlen[i] = a->rrlen[i];
		c->rr[i] = xmalloc(a->rrlen[i] + 1);
		memcpy(c->rr[i], a->rr[i], a->rrlen[i] + 1);
	}
	return c;
}

static void
centry_unlink(struct dns_cache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[e->hash & (CACHE_BUCKETS - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	c->n--;
	dns_answer_free(&e->answer);
	free(e);
}

static void
cache_free(struct dns_cache **cp)
{
	struct dns_cache *c = *cp;

	if (c == NULL)
		return;
	while (c->head != NULL)
		centry_unlink(c, c->head);
	free(c);
	*cp = NULL;
}

/* The entry for name and type, or NULL (an expired one is dropped). */
static struct centry *
cache_find(struct dns_cache *c, const char *name, int rrtype)
{
	char key[DNS_NAME_MAX + 2];
	struct centry *e;
	uint32_t h;

	cache_key(name, key, sizeof(key));
	h = cache_hash(key, rrtype);
	for (e = c->buckets[h & (CACHE_BUCKETS - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->rrtype == rrtype &&
		    strcmp(e->name, key) == 0)
			break;
	if (e != NULL && e->expire <= mono_ms()) {
		centry_unlink(c, e);
		e = NULL;
	}
	return e;
}

/* A copy of the kept answer for name and type, or NULL. */
static struct dns_answer *
cache_get(struct dns_resolver *r, const char *name, int rrtype)
{
	struct dns_cache *c = r->cache;
	struct centry *e;

	if (c == NULL || (e = cache_find(c, name, rrtype)) == NULL)
		return NULL;
	if (e != c->head) {	/* to the front */
		e->prev->next = e->next;
		if (e->next != NULL)
			e->next->prev = e->prev;
		else
			c->tail = e->prev;
		e->prev = NULL;
		e->next = c->head;
		c->head->prev = e;
		c->head = e;
	}
	return answer_copy(e->answer);
}

static void
cache_put(struct dns_resolver *r, const char *name, int rrtype,
	  const struct dns_answer *a, int ttl)
{
	struct dns_cache *c;
	struct centry *e;

	if (ttl <= 0 || (a->status != DNS_ANS_OK &&
			 a->status != DNS_ANS_NODATA &&
			 a->status != DNS_ANS_NXDOMAIN))
		return;
	if (r->cache == NULL)
		r->cache = xcalloc(1, sizeof(*r->cache));
	c = r->cache;
	if (cache_find(c, name, rrtype) != NULL)
		return;		/* there already (two lookups raced) */
	if (c->n >= CACHE_MAX)
		centry_unlink(c, c->tail);
	e = xcalloc(1, sizeof(*e));
	cache_key(name, e->name, sizeof(e->name));
	e->rrtype = rrtype;
	e->hash = cache_hash(e->name, rrtype);
	e->expire = mono_ms() +
		    (uint64_t)(ttl < CACHE_TTL_MAX ? ttl : CACHE_TTL_MAX) * 1000;
	e->answer = answer_copy(a);
	e->hnext = c->buckets[e->hash & (CACHE_BUCKETS - 1)];
	c->buckets[e->hash & (CACHE_BUCKETS - 1)] = e;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
	c->n++;
}

/* ---- the resolver ----------------------------------------------------- */

static void
ub_readable(evutil_socket_t fd, short what, void *arg);

static struct ub_ctx *
ctx_create(const struct dns_resolver *r, char **error_r)
{
	struct ub_ctx *ctx;
	const char *what = NULL, *arg = NULL;
	size_t i;
	int e = 0;

	if ((ctx = ub_ctx_create()) == NULL) {
		*error_r = xstrdup("dns: cannot create the libunbound context");
		return NULL;
	}
	/* a thread, not a forked process: see the top of this file */
	what = "option async";
	arg = "thread";
	e = ub_ctx_async(ctx, 1);
	for (i = 0; i < r->nforwarders && e == 0; i++) {
		what = "forwarder";
		arg = r->forwarders[i];
		e = ub_ctx_set_fwd(ctx, arg);
	}
	if (e == 0 && r->nforwarders == 0 && strcmp(r->mode, "system") == 0) {
		what = "resolv.conf";
		arg = "/etc/resolv.conf";
		e = ub_ctx_resolvconf(ctx, NULL);
	}
	/*
	 * libunbound answers some RFC 6761 names itself by default (test.:
	 * NXDOMAIN). When we forward, the resolver forwarded to is the one
	 * that decides about test.: a lab or a site may serve mail domains
	 * there. A transparent local zone without data replaces the
	 * default one and lets every query through. The same holds for the
	 * reverse zones of private and documentation addresses (RFC 1918,
	 * ULA, 2001:db8::/32): SPF's ptr, %{p} and iprev of a client on such
	 * a network must ask the resolver forwarded to, which may know them
	 * (unblock-lan-zones; insecure-lan-zones so that a trust anchor does
	 * not make them bogus). localhost., invalid., onion. and the
	 * loopback reverse zones keep libunbound's answers.
	 */
	if (e == 0 && (r->nforwarders > 0 || strcmp(r->mode, "system") == 0)) {
		what = "option local-zone";
		arg = "test. transparent";
		e = ub_ctx_set_option(ctx, "local-zone:", arg);
		if (e == 0) {
			what = "option unblock-lan-zones";
			arg = "yes";
			e = ub_ctx_set_option(ctx, "unblock-lan-zones:", arg);
		}
		if (e == 0) {
			what = "option insecure-lan-zones";
			e = ub_ctx_set_option(ctx, "insecure-lan-zones:", arg);
		}
	}
	if (e == 0 && r->trust_anchor != NULL) {
		what = "trust anchor";
		arg = r->trust_anchor;
		e = ub_ctx_add_ta_file(ctx, arg);
	}
	if (e != 0) {
		*error_r = xasprintf("dns: %s \"%s\": %s", what, arg,
				     ub_strerror(e));
		ub_ctx_delete(ctx);
		return NULL;
	}
	return ctx;
}

static int
resolver_start(struct dns_resolver *r, char **error_r)
{
	int fd;

	r->started = false;
	if ((r->ctx = ctx_create(r, error_r)) == NULL)
		return -1;
	if ((fd = ub_fd(r->ctx)) < 0 ||
	    (r->ev = event_new(r->base, fd, EV_READ | EV_PERSIST, ub_readable,
			       r)) == NULL ||
	    event_add(r->ev, NULL) < 0) {
		*error_r = xstrdup("dns: cannot watch the resolver's fd");
		if (r->ev != NULL)
			event_free(r->ev);
		r->ev = NULL;
		ub_ctx_delete(r->ctx);
		r->ctx = NULL;
		return -1;
	}
	return 0;
}

static void
resolver_stop(struct dns_resolver *r)
{
	if (r->ev != NULL)
		event_free(r->ev);
	r->ev = NULL;
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	r->ctx = NULL;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base,
		 const struct dns_resolver_config *cfg, char **error_r)
{
	struct dns_resolver *r;
	const char *mode = cfg->mode != NULL && cfg->mode[0] != '\0'
				   ? cfg->mode : "system";
	size_t i;

	*error_r = NULL;
	if (strcmp(mode, "system") != 0 && strcmp(mode, "recursive") != 0) {
		*error_r = xasprintf("dns: unknown resolver mode \"%s\"", mode);
		return NULL;
	}
	if (cfg->trust_anchor != NULL && cfg->trust_anchor[0] != '\0' &&
	    access(cfg->trust_anchor, R_OK) < 0) {
		/* libunbound would only notice at the first lookup */
		*error_r = xasprintf("dns: trust anchor \"%s\": %m",
				     cfg->trust_anchor);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->mode = xstrdup(mode);
	if (cfg->nforwarders > 0)
		r->forwarders = xreallocarray(NULL, cfg->nforwarders,
					      sizeof(*r->forwarders));
	for (i = 0; i < cfg->nforwarders; i++)
		r->forwarders[i] = xstrdup(cfg->forwarders[i]);
	r->nforwarders = cfg->nforwarders;
	if (cfg->trust_anchor != NULL && cfg->trust_anchor[0] != '\0')
		r->trust_anchor = xstrdup(cfg->trust_anchor);
	if (resolver_start(r, error_r) < 0) {
		dns_resolver_free(&r);
		return NULL;
	}
	return r;
}

struct event_base *
dns_resolver_base(const struct dns_resolver *r)
{
	return r->base;
}

/* Forgets a query's pending lookups; with cancel, tells libunbound too. */
static void
query_drop_subs(struct dns_query *q, bool cancel)
{
	struct dns_sub *sub;
	size_t i;

	for (i = 0; i < q->nsubs; i++) {
		sub = &q->subs[i];
		if (!sub->pending)
			continue;
		if (cancel && q->r->ctx != NULL)
			(void)ub_cancel(q->r->ctx, sub->async_id);
		slot_release(q->r, sub->slot);
		sub->pending = false;
		q->npending--;
	}
}

static void
query_free(struct dns_query *q)
{
	struct dns_resolver *r = q->r;

	query_drop_subs(q, true);
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	if (q->done_ev != NULL)
		event_free(q->done_ev);
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->route != NULL)
		dns_route_free((struct dns_route **)&q->route);
	dns_answer_free(&q->answer);
	free(q->hosts);
	free(q);
}

void
dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;
	size_t i;

	if (r == NULL)
		return;
	while (r->queries != NULL)
		query_free(r->queries);
	cache_free(&r->cache);
	resolver_stop(r);
	free(r->slots);
	free(r->freelist);
	free(r->mode);
	for (i = 0; i < r->nforwarders; i++)
		free(r->forwarders[i]);
	free(r->forwarders);
	free(r->trust_anchor);
	free(r);
	*rp = NULL;
}

/*
 * ub_process() failed (the pipe from the worker thread broke, or memory
 * ran out): every pending lookup fails temporarily, and a fresh context
 * takes over so later queries work again.
 */
static void
resolver_rebuild(struct dns_resolver *r, int e)
{
	struct dns_query *q, *next;
	char *err = NULL;

	log_warnx("dns: resolver failed (%s), restarting it", ub_strerror(e));
	for (q = r->queries; q != NULL; q = next) {
		next = q->next;
		if (q->npending == 0)
			continue;
		query_drop_subs(q, false);
		if (q->temperr[0] == '\0')
			bfmt(q->temperr, sizeof(q->temperr),
				 "DNS resolver failed looking up %s: %s",
				 q->domain, ub_strerror(e));
		query_finish(q);
	}
	resolver_stop(r);
	if (resolver_start(r, &err) < 0) {
		log_warnx("%s", err);
		free(err);
	}
}

static void
ub_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	int e;

	(void)fd;
	(void)what;
	processing = r;
	e = ub_process(r->ctx);
	processing = NULL;
	if (e != 0)
		resolver_rebuild(r, e);
}

/* ---- one route lookup ------------------------------------------------- */

static const char *
type_name(enum sub_kind k)
{
	return k == SUB_MX ? "MX" : k == SUB_A ? "A" : k == SUB_AAAA ? "AAAA"
								  : "record";
}

static const char *
rcode_name(int rcode)
{
	static const char *const names[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		"REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
		"NOTZONE",
	};

	if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	return "DNS error";
}

/* What one libunbound answer means; why gets the reason for ANS_TEMP. */
static enum answer
classify(int err, const struct ub_result *res, const char *type,
	 const char *name, char *why, size_t size)
{
	if (err != 0 || res == NULL) {
		bfmt(why, size, "DNS error looking up %s for %s: %s", type,
			 name, ub_strerror(err != 0 ? err : UB_NOMEM));
		return ANS_TEMP;
	}
	if (res->bogus) {
		bfmt(why, size, "DNSSEC validation failed for %s of %s: %s",
			 type, name, res->why_bogus != NULL ? res->why_bogus
							     : "bogus");
		return ANS_TEMP;
	}
	if (res->rcode == RCODE_NXDOMAIN || res->nxdomain)
		return ANS_NXDOMAIN;
	if (res->rcode != 0) {
		bfmt(why, size, "%s looking up %s for %s",
			 rcode_name(res->rcode), type, name);
		return ANS_TEMP;
	}
	return res->havedata && res->data != NULL && res->data[0] != NULL
		       ? ANS_DATA : ANS_NODATA;
}

static void
set_decided(struct dns_query *q, enum dns_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_decided(struct dns_query *q, enum dns_status st, const char *fmt, ...)
{
	va_list ap;

	q->decided = true;
	q->status = st;
	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
}

static void
note_temp(struct dns_query *q, const char *why)
{
	if (q->temperr[0] == '\0')
		bfmt(q->temperr, sizeof(q->temperr), "%s", why);
}

/*
 * ub_resolve_async(). The first call starts libunbound's worker thread,
 * which inherits the caller's signal mask: it is started with the
 * asynchronous signals blocked, so they reach the thread that handles
 * them (the event loop's), never the worker.
 */
static int
resolve_async(struct dns_resolver *r, const char *name, int type, void *h,
	      int *async_id_r)
{
	sigset_t set, old;
	int e;

	if (r->started)
		return ub_resolve_async(r->ctx, name, type, RR_CLASS_IN, h,
					sub_done, async_id_r);
	sigfillset(&set);
	/* faults stay deliverable to the thread that makes them */
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGTRAP);
	sigdelset(&set, SIGABRT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	e = ub_resolve_async(r->ctx, name, type, RR_CLASS_IN, h, sub_done,
			     async_id_r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	r->started = e == 0;
	return e;
}

static void
sub_start(struct dns_query *q, enum sub_kind kind, size_t host,
	  const char *name)
{
	struct dns_resolver *r = q->r;
	struct dns_sub *sub;
	uintptr_t h;
	int type = kind == SUB_MX ? RR_TYPE_MX
		   : kind == SUB_A ? RR_TYPE_A
		   : kind == SUB_AAAA ? RR_TYPE_AAAA : q->rrtype;
	int e;

	if (q->nsubs >= SUBS_MAX)
		fatalx("dns: too many lookups for one route");
	sub = &q->subs[q->nsubs++];
	memset(sub, 0, sizeof(*sub));
	sub->q = q;
	sub->kind = kind;
	sub->host = host;
	if (r->ctx == NULL) {
		/* a rebuild failed earlier: try again now */
		char *err = NULL;

		if (resolver_start(r, &err) < 0) {
			note_temp(q, err);
			free(err);
			goto failed;
		}
	}
	h = slot_take(r, sub);
	e = resolve_async(r, name, type, (void *)h, &sub->async_id);
	if (e != 0) {
		char why[sizeof(q->temperr)];

		slot_release(r, sub->slot);
		bfmt(why, sizeof(why), "DNS error looking up %s for %s: %s",
			 type_name(kind), name, ub_strerror(e));
		note_temp(q, why);
		goto failed;
	}
	sub->pending = true;
	sub->rrtype = type;
	sub->started_us = mono_us();
	q->npending++;
	return;
failed:
	if (kind == SUB_MX || kind == SUB_RAW)
		set_decided(q, DNS_TEMPFAIL, "%s", q->temperr);
	else if (kind == SUB_A)
		q->hosts[host].st4 = FAM_TEMP;
	else
		q->hosts[host].st6 = FAM_TEMP;
}

static void
host_lookups(struct dns_query *q, size_t i)
{
	if (q->opts.want_ipv4) {
		q->hosts[i].st4 = FAM_PENDING;
		sub_start(q, SUB_A, i, q->hosts[i].name);
	}
	if (q->opts.want_ipv6) {
		q->hosts[i].st6 = FAM_PENDING;
		sub_start(q, SUB_AAAA, i, q->hosts[i].name);
	}
}

static void
add_host(struct dns_query *q, const char *name, unsigned pref)
{
	struct qhost *h = &q->hosts[q->nhosts++];

	bfmt(h->name, sizeof(h->name), "%s", name);
	h->pref = pref;
}

/* The MX answer has data: its hosts, in order, become the route's. */
static void
mx_answer(struct dns_query *q, const struct ub_result *res)
{
	struct dns_mx *mx;
	char name[DNS_NAME_MAX + 1];
	unsigned pref;
	size_t i, j, n = 0, bad = 0;
	bool dup;

	for (i = 0; res->data[i] != NULL && i < MX_RECORDS_MAX; i++)
		;
	mx = xcalloc(i, sizeof(*mx));
	for (i = 0; res->data[i] != NULL && i < MX_RECORDS_MAX; i++) {
		if (res->len == NULL || res->len[i] < 0 ||
		    dns_mx_rdata_parse((const unsigned char *)res->data[i],
				       (size_t)res->len[i], &pref, name,
				       sizeof(name)) < 0) {
			bad++;
			continue;
		}
		mx[n].name = xstrdup(name);
		mx[n++].pref = pref;
	}
	if (dns_mx_order(mx, n, NULL, NULL) && bad == 0) {
		set_decided(q, DNS_NULLMX,
			    "%s has a null MX (RFC 7505): it accepts no mail",
			    q->domain);
	} else {
		/* "." among real MX hosts is not a host (RFC 7505 3) */
		for (i = 0; i < n && q->nhosts < DNS_MAX_HOSTS; i++) {
			if (mx[i].name[0] == '\0')
				continue;
			for (dup = false, j = 0; j < q->nhosts && !dup; j++)
				dup = strcmp(q->hosts[j].name, mx[i].name) == 0;
			if (!dup)
				add_host(q, mx[i].name, mx[i].pref);
		}
		if (q->nhosts == 0)
			set_decided(q, DNS_TEMPFAIL,
				    "no usable MX record for %s (%zu malformed)",
				    q->domain, bad);
	}
	for (i = 0; i < n; i++)
		free(mx[i].name);
	free(mx);
	for (i = 0; i < q->nhosts; i++)
		host_lookups(q, i);
}

static void
mx_done(struct dns_query *q, int err, const struct ub_result *res)
{
	char why[sizeof(q->error)];

	switch (classify(err, res, "MX", q->domain, why, sizeof(why))) {
	case ANS_TEMP:
		set_decided(q, DNS_TEMPFAIL, "%s", why);
		break;
	case ANS_NXDOMAIN:
		set_decided(q, DNS_PERMFAIL, "domain %s does not exist "
			    "(NXDOMAIN)", q->domain);
		break;
	case ANS_NODATA:
		/* RFC 5321 5.1: no MX, the domain is its own mail host */
		q->kind = DNS_ROUTE_IMPLICIT;
		add_host(q, q->domain, 0);
		host_lookups(q, 0);
		break;
	case ANS_DATA:
		q->mx_secure = res->secure;
		mx_answer(q, res);
		break;
	}
}

static void
addr_done(struct dns_sub *sub, int err, const struct ub_result *res)
{
	struct dns_query *q = sub->q;
	struct qhost *h = &q->hosts[sub->host];
	bool v4 = sub->kind == SUB_A;
	struct sockaddr_storage *a = v4 ? h->a4 : h->a6;
	size_t *n = v4 ? &h->n4 : &h->n6, want = v4 ? 4 : 16, i;
	enum fam_state *st = v4 ? &h->st4 : &h->st6;
	char why[sizeof(q->temperr)];

	switch (classify(err, res, type_name(sub->kind), h->name, why,
			 sizeof(why))) {
	case ANS_TEMP:
		*st = FAM_TEMP;
		note_temp(q, why);
		return;
	case ANS_NXDOMAIN:
		*st = FAM_NXDOMAIN;
		return;
	case ANS_NODATA:
		*st = FAM_NODATA;
		return;
	case ANS_DATA:
		break;
	}
	for (i = 0; res->data[i] != NULL && *n < DNS_MAX_ADDRS; i++) {
		if (res->len == NULL || res->len[i] != (int)want)
			continue;	/* malformed rdata */
		memset(&a[*n], 0, sizeof(a[*n]));
		if (v4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&a[*n];

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, res->data[i], 4);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a[*n];

			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, res->data[i], 16);
		}
		(*n)++;
	}
	*st = *n > 0 ? FAM_OK : FAM_NODATA;
	if (v4)
		h->secure4 = res->secure;
	else
		h->secure6 = res->secure;
}

#define RAW_RECORDS_MAX 256	/* records kept per raw answer */

static void
raw_done(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_answer *a = q->answer;
	size_t i, n;

	switch (classify(err, res, "record", q->domain, a->error,
			 sizeof(a->error))) {
	case ANS_TEMP:
		a->status = DNS_ANS_TEMPFAIL;
		return;
	case ANS_NXDOMAIN:
		a->status = DNS_ANS_NXDOMAIN;
		return;
	case ANS_NODATA:
		a->status = DNS_ANS_NODATA;
		a->secure = res->secure;
		return;
	case ANS_DATA:
		break;
	}
	for (n = 0; res->data[n] != NULL && n < RAW_RECORDS_MAX; n++)
		;
	a->rr = xcalloc(n, sizeof(*a->rr));
	a->rrlen = xcalloc(n, sizeof(*a->rrlen));
	for (i = 0; i < n; i++) {
		if (res->len == NULL || res->len[i] < 0)
			continue;	/* cannot happen; skipped */
		a->rrlen[a->nrr] = (size_t)res->len[i];
		a->rr[a->nrr] = xmalloc(a->rrlen[a->nrr] + 1);
		memcpy(a->rr[a->nrr], res->data[i], a->rrlen[a->nrr]);
		a->rr[a->nrr][a->rrlen[a->nrr]] = '\0';
		a->nrr++;
	}
	a->status = a->nrr > 0 ? DNS_ANS_OK : DNS_ANS_NODATA;
	a->secure = res->secure;
}

/* raw_done() and, for answers that came, the cache. */
static void
raw_answer(struct dns_query *q, int err, const struct ub_result *res)
{
	raw_done(q, err, res);
	if (err == 0 && res != NULL)
		cache_put(q->r, q->domain, q->rrtype, q->answer, res->ttl);
}

static void
sub_done(void *arg, int err, struct ub_result *res)
{
	struct dns_resolver *r = processing;
	struct dns_sub *sub;
	struct dns_query *q;

	if (r == NULL || (sub = slot_find(r, (uintptr_t)arg)) == NULL) {
		/* cancelled or timed out meanwhile */
		ub_resolve_free(res);
		return;
	}
	q = sub->q;
	sub_count(sub, err, res);
	slot_release(r, sub->slot);
	sub->pending = false;
	q->npending--;
	if (sub->kind == SUB_MX)
		mx_done(q, err, res);
	else if (sub->kind == SUB_RAW)
		raw_answer(q, err, res);
	else
		addr_done(sub, err, res);
	ub_resolve_free(res);
	if (q->npending == 0)
		query_finish(q);
}

/* Appends host h's addresses to out, the preferred family first. */
static void
host_collect(const struct dns_query *q, const struct qhost *h,
	     struct dns_host *out)
{
	bool v4first = q->opts.prefer == DNS_PREFER_IPV4;
	const struct sockaddr_storage *fam[2] = {
		v4first ? h->a4 : h->a6, v4first ? h->a6 : h->a4 };
	size_t nfam[2] = { v4first ? h->n4 : h->n6, v4first ? h->n6 : h->n4 };
	size_t f, i, n = h->n4 + h->n6;

	out->name = xstrdup(h->name);
	out->pref = h->pref;
	out->addrs = xcalloc(n, sizeof(*out->addrs));
	out->addrlens = xcalloc(n, sizeof(*out->addrlens));
	for (f = 0; f < 2; f++)
		for (i = 0; i < nfam[f]; i++) {
			out->addrs[out->naddrs] = fam[f][i];
			out->addrlens[out->naddrs++] =
				fam[f][i].ss_family == AF_INET
					? sizeof(struct sockaddr_in)
					: sizeof(struct sockaddr_in6);
		}
}

/* With no host reachable and no temporary failure: why, for good. */
static void
permfail_reason(const struct dns_query *q, char *buf, size_t size)
{
	const struct qhost *h = &q->hosts[0];
	bool nx = (h->st4 == FAM_NXDOMAIN || h->st4 == FAM_NONE) &&
		  (h->st6 == FAM_NXDOMAIN || h->st6 == FAM_NONE);

	switch (q->kind) {
	case DNS_ROUTE_MX:
		bfmt(buf, size, "no address records for the MX hosts "
			 "of %s", q->domain);
		break;
	case DNS_ROUTE_IMPLICIT:
		bfmt(buf, size, "no MX or address records for %s",
			 q->domain);
		break;
	case DNS_ROUTE_HOST:
		if (nx)
			bfmt(buf, size, "host %s does not exist "
				 "(NXDOMAIN)", q->domain);
		else
			bfmt(buf, size, "no address records for host %s",
				 q->domain);
		break;
	case DNS_ROUTE_LITERAL:
		bfmt(buf, size, "address literal %s is of an address "
			 "family that is not enabled", q->domain);
		break;
	}
}

/* The A/AAAA answers of a host without MX were all validated secure. */
static bool
host_secure(const struct qhost *h)
{
	return (h->n4 > 0 || h->n6 > 0) && (h->n4 == 0 || h->secure4) &&
	       (h->n6 == 0 || h->secure6);
}

static struct route_priv *
route_build(const struct dns_query *q)
{
	struct route_priv *p = xcalloc(1, sizeof(*p));
	struct dns_route *rt = &p->route;
	size_t i;

	p->kind = q->kind;
	if (q->decided) {
		rt->status = q->status;
		bfmt(rt->error, sizeof(rt->error), "%s", q->error);
		rt->secure = q->mx_secure;
		return p;
	}
	rt->hosts = xcalloc(q->nhosts > 0 ? q->nhosts : 1, sizeof(*rt->hosts));
	for (i = 0; i < q->nhosts; i++)
		if (q->hosts[i].n4 + q->hosts[i].n6 > 0)
			host_collect(q, &q->hosts[i], &rt->hosts[rt->nhosts++]);
	if (q->kind == DNS_ROUTE_MX)
		rt->secure = q->mx_secure;
	else if (q->kind != DNS_ROUTE_LITERAL && q->nhosts > 0)
		rt->secure = host_secure(&q->hosts[0]);
	if (rt->nhosts > 0)
		rt->status = DNS_OK;
	else if (q->temperr[0] != '\0') {
		rt->status = DNS_TEMPFAIL;
		bfmt(rt->error, sizeof(rt->error), "%s", q->temperr);
	} else {
		rt->status = DNS_PERMFAIL;
		permfail_reason(q, rt->error, sizeof(rt->error));
	}
	return p;
}

/* The route is complete: hand it over from the event loop. */
static void
query_finish(struct dns_query *q)
{
	if (q->raw) {
		if (q->decided && q->answer->status == DNS_ANS_PENDING_) {
			q->answer->status = DNS_ANS_TEMPFAIL;
			bfmt(q->answer->error, sizeof(q->answer->error), "%s",
			     q->error);
		}
		if (q->answer->status == DNS_ANS_PENDING_) {
			q->answer->status = DNS_ANS_TEMPFAIL;
			bfmt(q->answer->error, sizeof(q->answer->error), "%s",
			     q->temperr);
		}
		evtimer_del(q->timer);
		event_active(q->done_ev, EV_TIMEOUT, 0);
		return;
	}
	if (q->route != NULL)
		return;
	q->route = route_build(q);
	evtimer_del(q->timer);
	event_active(q->done_ev, EV_TIMEOUT, 0);
}

static void
query_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_route *route;
	dns_route_cb *cb = q->cb;
	void *cbarg = q->arg;

	(void)fd;
	(void)what;
	if (q->raw) {
		struct dns_answer *a = q->answer;
		dns_answer_cb *acb = q->acb;

		q->answer = NULL;
		query_free(q);
		acb(a, cbarg);
		return;
	}
	route = &q->route->route;
	q->route = NULL;
	query_free(q);
	cb(route, cbarg);
}

static void
query_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_sub *sub;
	char why[sizeof(q->temperr)];
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < q->nsubs; i++) {
		sub = &q->subs[i];
		if (!sub->pending)
			continue;
		metrics_dns(sub->rrtype, METRICS_DNS_TIMEOUT,
			    mono_us() - sub->started_us);
		bfmt(why, sizeof(why), "timed out looking up %s for %s",
			 type_name(sub->kind),
			 sub->kind == SUB_MX || sub->kind == SUB_RAW
				 ? q->domain
				 : q->hosts[sub->host].name);
		note_temp(q, why);
		if (sub->kind == SUB_MX || sub->kind == SUB_RAW)
			set_decided(q, DNS_TEMPFAIL, "%s", why);
		else if (sub->kind == SUB_A)
			q->hosts[sub->host].st4 = FAM_TEMP;
		else
			q->hosts[sub->host].st6 = FAM_TEMP;
	}
	query_drop_subs(q, true);
	query_finish(q);
}

/* A domain that failed to parse, printable in an error message. */
static void
printable(char *buf, size_t size, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < size && s[i] != '\0'; i++)
		buf[i] = (unsigned char)s[i] >= 0x20 &&
				 (unsigned char)s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
}

static void
literal_host(struct dns_query *q, const struct sockaddr_storage *ss)
{
	struct qhost *h = &q->hosts[0];
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	q->kind = DNS_ROUTE_LITERAL;
	q->nhosts = 1;
	if (inet_ntop(ss->ss_family, a, h->name, sizeof(h->name)) == NULL)
		fatalx("dns: inet_ntop failed for a parsed literal");
	bfmt(q->domain, sizeof(q->domain), "%s", h->name);
	if (ss->ss_family == AF_INET && q->opts.want_ipv4)
		h->a4[h->n4++] = *ss;
	else if (ss->ss_family == AF_INET6 && q->opts.want_ipv6)
		h->a6[h->n6++] = *ss;
}

static struct dns_query *
query_new(struct dns_resolver *r, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->r = r;
	q->arg = arg;
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	if ((q->done_ev = event_new(r->base, -1, 0, query_done_cb, q)) ==
		    NULL ||
	    (q->timer = evtimer_new(r->base, query_timeout_cb, q)) == NULL)
		fatalx("dns: event_new failed");
	return q;
}

struct dns_query *
dns_route_lookup(struct dns_resolver *r, const char *domain,
		 const struct dns_lookup_opts *opts, dns_route_cb *cb,
		 void *arg)
{
	struct dns_query *q = query_new(r, arg);
	struct sockaddr_storage ss;
	socklen_t sslen;
	char shown[80];
	int k;

	q->hosts = xcalloc(DNS_MAX_HOSTS, sizeof(*q->hosts));
	q->opts = *opts;
	if (!q->opts.want_ipv4 && !q->opts.want_ipv6)
		q->opts.want_ipv4 = q->opts.want_ipv6 = true;
	q->cb = cb;

	k = dns_domain_parse(domain, q->domain, sizeof(q->domain), &ss, &sslen);
	if (k < 0) {
		printable(shown, sizeof(shown), domain);
		set_decided(q, DNS_PERMFAIL, "invalid domain \"%s\"", shown);
	} else if (k == 1)
		literal_host(q, &ss);
	else if (opts->no_mx) {
		q->kind = DNS_ROUTE_HOST;
		add_host(q, q->domain, 0);
		host_lookups(q, 0);
	} else {
		q->kind = DNS_ROUTE_MX;
		sub_start(q, SUB_MX, 0, q->domain);
	}
	if (q->npending == 0)
		query_finish(q);
	else {
		struct timeval tv = { ROUTE_TIMEOUT_S, 0 };

		evtimer_add(q->timer, &tv);
	}
	return q;
}

bool
dns_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		/* printable ASCII; dns_lookup() escapes all but letters,
		 * digits, '-' and '_' */
		if (c < ' ' || c >= 0x7f)
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/*
 * A valid name in the presentation format libunbound reads: every octet
 * but letters, digits, '-', '_' and the dots between labels as \DDD, so
 * a label with blanks, '%' or '\\' (SPF macros make such names) means
 * exactly its octets.
 */
static void
presentation(const char *name, char *out, size_t size)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)name;

	for (; *p != '\0' && o + 5 < size; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, size - o, "\\%03u", *p);
	}
	out[o] = '\0';
}

struct dns_query *
dns_lookup(struct dns_resolver *r, const char *name, int rrtype,
	   unsigned timeout_ms, dns_answer_cb *cb, void *arg)
{
	struct dns_query *q = query_new(r, arg);
	struct dns_answer *a = xcalloc(1, sizeof(*a)), *cached;
	char shown[80];

	q->raw = true;
	q->rrtype = rrtype;
	q->acb = cb;
	q->answer = a;
	a->rrtype = rrtype;
	a->status = DNS_ANS_PENDING_;
	if (!dns_name_valid(name)) {
		printable(shown, sizeof(shown), name);
		a->status = DNS_ANS_INVALID;
		bfmt(a->error, sizeof(a->error), "invalid domain name \"%s\"",
		     shown);
	} else if ((cached = cache_get(r, name, rrtype)) != NULL) {
		dns_answer_free(&q->answer);
		q->answer = cached;
	} else {
		bfmt(q->domain, sizeof(q->domain), "%s", name);
		presentation(name, q->qname, sizeof(q->qname));
		sub_start(q, SUB_RAW, 0, q->qname);
	}
	if (q->npending == 0)
		query_finish(q);
	else {
		struct timeval tv = { timeout_ms / 1000,
				      (timeout_ms % 1000) * 1000 };

		evtimer_add(q->timer, &tv);
	}
	return q;
}

void
dns_answer_free(struct dns_answer **ap)
{
	struct dns_answer *a = *ap;

	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nrr; i++)
		free(a->rr[i]);
	free(a->rr);
	free(a->rrlen);
	free(a);
	*ap = NULL;
}

int
dns_txt_rdata(const unsigned char *rdata, size_t len, char *out, size_t size,
	      size_t *outlen_r)
{
	size_t i = 0, o = 0, n;

	if (size == 0)
		return -1;
	while (i < len) {
		n = rdata[i++];
		if (n > len - i)
			return -1;
		if (o + n >= size)
			return -1;
		memcpy(out + o, rdata + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	if (outlen_r != NULL)
		*outlen_r = o;
	return 0;
}

int
dns_name_rdata_parse(const unsigned char *rdata, size_t len, char *name,
		     size_t size)
{
	unsigned char buf[2 + 256];

	/* the MX parser with a zero preference in front */
	if (len > sizeof(buf) - 2)
		return -1;
	buf[0] = buf[1] = 0;
	memcpy(buf + 2, rdata, len);
	{
		unsigned pref;

		return dns_mx_rdata_parse(buf, len + 2, &pref, name, size);
	}
}

int
dns_reverse_name(const char *ip, char *out, size_t size)
{
	unsigned char a[16];
	size_t o = 0;
	int i;

	if (inet_pton(AF_INET, ip, a) == 1) {
		int n = snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a[3],
				 a[2], a[1], a[0]);
		return n < 0 || (size_t)n >= size ? -1 : 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	if (size < 64 + sizeof("ip6.arpa"))
		return -1;
	for (i = 15; i >= 0; i--) {
		static const char hex[] = "0123456789abcdef";

		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", sizeof("ip6.arpa"));
	return 0;
}

void
dns_query_cancel(struct dns_query *q)
{
	if (q != NULL)
		query_free(q);
}

void
dns_route_free(struct dns_route **routep)
{
	struct dns_route *rt = *routep;
	size_t i;

	if (rt == NULL)
		return;
	for (i = 0; i < rt->nhosts; i++) {
		free(rt->hosts[i].name);
		free(rt->hosts[i].addrs);
		free(rt->hosts[i].addrlens);
	}
	free(rt->hosts);
	/* rt is the first member of its route_priv */
	free(rt);
	*routep = NULL;
}

/* ---- one lookup with a loop of its own ------------------------------- */

struct wait_result {
	struct dns_route *route;
	struct event_base *base;
};

static void
wait_done(struct dns_route *route, void *arg)
{
	struct wait_result *res = arg;

	res->route = route;
	event_base_loopbreak(res->base);
}

enum dns_route_kind
dns_route_kind(const struct dns_route *rt)
{
	return ((const struct route_priv *)rt)->kind;
}

int
dns_route_lookup_wait(const struct dns_resolver_config *cfg,
		      const char *domain, const struct dns_lookup_opts *opts,
		      struct dns_route **route_r, char **error_r)
{
	struct wait_result res = {NULL, NULL};
	struct dns_resolver *r = NULL;
	int ret = -1;

	*route_r = NULL;
	if ((res.base = event_base_new()) == NULL) {
		*error_r = xstrdup("event_base_new failed");
		return -1;
	}
	if ((r = dns_resolver_new(res.base, cfg, error_r)) == NULL)
		goto out;
	(void)dns_route_lookup(r, domain, opts, wait_done, &res);
	if (event_base_dispatch(res.base) < 0 || res.route == NULL) {
		*error_r = xstrdup("the event loop failed");
		goto out;
	}
	*route_r = res.route;
	res.route = NULL;
	ret = 0;
out:
	dns_route_free(&res.route);
	dns_resolver_free(&r);
	event_base_free(res.base);
	return ret;
}
