/*
 * Prometheus metrics in one shared mapping (net/metrics.h): the block's
 * layout, the counting functions, the reason table and the render in the
 * text exposition format 0.0.4.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include <event2/buffer.h>

#include "net/listener.h"
#include "net/metrics.h"

#define RR_TYPE_A 1
#define RR_TYPE_NS 2
#define RR_TYPE_PTR 12
#define RR_TYPE_MX 15
#define RR_TYPE_TXT 16
#define RR_TYPE_AAAA 28
#define RR_TYPE_TLSA 52

enum { MECH_PLAIN, MECH_LOGIN, MECH_CRAM_MD5, MECH_SCRAM, MECH_USER,
       MECH_OTHER, MECH_COUNT };
static const char *const mech_labels[MECH_COUNT] = {
    "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "USER", "other"};

enum { TLSV_12, TLSV_13, TLSV_OTHER, TLSV_COUNT };
static const char *const tls_labels[TLSV_COUNT] = {"TLSv1.2", "TLSv1.3",
						   "other"};

enum { DNST_A, DNST_AAAA, DNST_MX, DNST_TXT, DNST_PTR, DNST_TLSA, DNST_OTHER,
       DNST_COUNT };
static const char *const dnst_labels[DNST_COUNT] = {"A",   "AAAA", "MX",
						    "TXT", "PTR",  "TLSA",
						    "other"};

static const char *const conn_labels[METRICS_CONN_COUNT] = {
    "accepted", "access_denied", "limit", "banned"};
static const char *const msg_labels[METRICS_MSG_COUNT] = {
    "accepted", "delivered", "bounced", "deferred"};
static const char *const rej_labels[METRICS_REJ_COUNT] = {
    "relay",	  "unknown_user", "spf_dmarc",	  "dnsbl", "attachment",
    "virus",	  "rate_limit",	  "auth_failure", "other"};
static const char *const queue_labels[METRICS_Q_COUNT] = {
    "incoming", "active", "deferred", "hold"};
static const char *const dnsr_labels[METRICS_DNS_RESULT_COUNT] = {
    "ok",    "nodata", "nxdomain", "servfail", "refused",
    "rcode", "bogus",  "error",	   "timeout"};

/* Upper bounds of the histograms' buckets, in ms and in us. */
static const uint64_t delivery_le_ms[] = {
    1000, 5000, 15000, 60000, 300000, 900000, 3600000, 14400000, 86400000,
    432000000};
#define DELIVERY_NB (sizeof(delivery_le_ms) / sizeof(delivery_le_ms[0]))
static const uint64_t dns_le_us[] = {1000,   5000,   10000,   25000,
				     50000,  100000, 250000,  500000,
				     1000000, 2500000, 5000000};
#define DNS_NB (sizeof(dns_le_us) / sizeof(dns_le_us[0]))

/* A histogram: bucket i counts observations <= le[i] and > le[i-1]
 * (the last one: above every bound); sum in the histogram's unit. */
#define HIST(nb)                                                             \
	struct {                                                             \
		uint64_t bucket[(nb) + 1];                                   \
		uint64_t sum;                                                \
	}

struct metrics {
	uint64_t conns[METRICS_MAX_LISTENERS][METRICS_CONN_COUNT];
	uint64_t msgs[METRICS_MSG_COUNT];
	uint64_t rejects[METRICS_REJ_COUNT];
	uint64_t auth[MECH_COUNT][2];	/* [mech][success] */
	uint64_t tls[2][TLSV_COUNT];	/* [outbound][version] */
	uint64_t queue[METRICS_Q_COUNT];
	uint64_t dns[DNST_COUNT][METRICS_DNS_RESULT_COUNT];
	uint64_t restarts[2];		/* [runner] */
	uint64_t redis[2];		/* [up]: transitions of the clients */
	HIST(DELIVERY_NB) delivery;	/* ms */
	HIST(DNS_NB) dns_time;		/* us */
};

static struct metrics *current;

struct metrics *
metrics_create(void)
{
	void *p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;	/* zero-filled by the kernel */
}

void
metrics_destroy(struct metrics **mp)
{
	if (*mp == NULL)
		return;
	if (current == *mp)
		current = NULL;
	munmap(*mp, sizeof(struct metrics));
	*mp = NULL;
}

void
metrics_use(struct metrics *m)
{
	current = m;
}

const struct metrics *
metrics_current(void)
{
	return current;
}

static void
add(uint64_t *slot, uint64_t n)
{
	__atomic_fetch_add(slot, n, __ATOMIC_RELAXED);
}

static uint64_t
get(const uint64_t *slot)
{
	return __atomic_load_n(slot, __ATOMIC_RELAXED);
}

void
metrics_connection(unsigned listener, enum metrics_conn result)
{
	if (current != NULL && listener < METRICS_MAX_LISTENERS &&
	    (unsigned)result < METRICS_CONN_COUNT)
		add(&current->conns[listener][result], 1);
}

void
metrics_message(enum metrics_msg what, uint64_t n)
{
	if (current != NULL && (unsigned)what < METRICS_MSG_COUNT)
		add(&current->msgs[what], n);
}

void
metrics_reject(const char *reason)
{
	if (current != NULL)
		add(&current->rejects[metrics_reject_category(reason)], 1);
}

static unsigned
mech_index(const char *mech)
{
	static const char *const names[MECH_OTHER] = {
	    "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "USER"};

	for (unsigned i = 0; mech != NULL && i < MECH_OTHER; i++)
		if (strcasecmp(mech, names[i]) == 0)
			return i;
	return MECH_OTHER;
}

void
metrics_auth(const char *mech, bool success)
{
	if (current != NULL)
		add(&current->auth[mech_index(mech)][success ? 1 : 0], 1);
}

void
metrics_tls(bool outbound, const char *version)
{
	unsigned v = TLSV_OTHER;

	if (current == NULL)
		return;
	if (version != NULL && strcmp(version, "TLSv1.2") == 0)
		v = TLSV_12;
	else if (version != NULL && strcmp(version, "TLSv1.3") == 0)
		v = TLSV_13;
	add(&current->tls[outbound ? 1 : 0][v], 1);
}

void
metrics_queue_set(enum metrics_queue_state state, uint64_t n)
{
	if (current != NULL && (unsigned)state < METRICS_Q_COUNT)
		__atomic_store_n(&current->queue[state], n, __ATOMIC_RELAXED);
}

static size_t
bucket_of(const uint64_t *le, size_t nb, uint64_t v)
{
	size_t i = 0;

	while (i < nb && v > le[i])
		i++;
	return i;
}

void
metrics_delivery_latency(uint64_t ms)
{
	if (current == NULL)
		return;
	add(&current->delivery.bucket[bucket_of(delivery_le_ms, DELIVERY_NB,
						ms)],
	    1);
	add(&current->delivery.sum, ms);
}

static unsigned
dns_type_index(int rrtype)
{
	switch (rrtype) {
	case RR_TYPE_A:
		return DNST_A;
	case RR_TYPE_AAAA:
		return DNST_AAAA;
	case RR_TYPE_MX:
		return DNST_MX;
	case RR_TYPE_TXT:
		return DNST_TXT;
	case RR_TYPE_PTR:
		return DNST_PTR;
	case RR_TYPE_TLSA:
		return DNST_TLSA;
	default:
		return DNST_OTHER;
	}
}

void
metrics_dns(int rrtype, enum metrics_dns_result result, uint64_t us)
{
	if (current == NULL || (unsigned)result >= METRICS_DNS_RESULT_COUNT)
		return;
	add(&current->dns[dns_type_index(rrtype)][result], 1);
	add(&current->dns_time.bucket[bucket_of(dns_le_us, DNS_NB, us)], 1);
	add(&current->dns_time.sum, us);
}

void
metrics_restart(bool runner)
{
	if (current != NULL)
		add(&current->restarts[runner ? 1 : 0], 1);
}

void
metrics_redis(bool up)
{
	if (current != NULL)
		add(&current->redis[up ? 1 : 0], 1);
}

/* ---- reasons -------------------------------------------------------- */

/*
 * Every reason string that a refusal is logged with (event=reject, the
 * filters' verdicts through sf_reply, auth failures), and its category.
 * A reason that is not here counts as "other"; tests/unit/test_metrics.c
 * holds the list of reasons the code logs, so a new one is a decision.
 */
static const struct {
	const char *reason;
	enum metrics_reject cat;
} reject_table[] = {
    {"relay-denied", METRICS_REJ_RELAY},
    {"unknown-user", METRICS_REJ_UNKNOWN_USER},
    {"spf", METRICS_REJ_SPF_DMARC},
    {"dmarc", METRICS_REJ_SPF_DMARC},
    {"dmarc-temperror", METRICS_REJ_SPF_DMARC},
    {"dnsbl", METRICS_REJ_DNSBL},
    {"blocked-extension", METRICS_REJ_ATTACHMENT},
    {"double-extension", METRICS_REJ_ATTACHMENT},
    {"hidden-extension", METRICS_REJ_ATTACHMENT},
    {"executable", METRICS_REJ_ATTACHMENT},
    {"encrypted-archive", METRICS_REJ_ATTACHMENT},
    {"unreadable-archive", METRICS_REJ_ATTACHMENT},
    {"attach-limit-size", METRICS_REJ_ATTACHMENT},
    {"attach-limit-depth", METRICS_REJ_ATTACHMENT},
    {"attach-limit-parts", METRICS_REJ_ATTACHMENT},
    {"attach-io", METRICS_REJ_ATTACHMENT},
    {"virus", METRICS_REJ_VIRUS},
    {"limit", METRICS_REJ_RATE_LIMIT},
    {"sending-limit", METRICS_REJ_RATE_LIMIT},
    {"login-delay", METRICS_REJ_RATE_LIMIT},
    {"user-connections", METRICS_REJ_RATE_LIMIT},
    {"banned", METRICS_REJ_AUTH_FAILURE},
    {"auth-failures", METRICS_REJ_AUTH_FAILURE},
};

enum metrics_reject
metrics_reject_category(const char *reason)
{
	if (reason == NULL)
		return METRICS_REJ_OTHER;
	for (size_t i = 0; i < sizeof(reject_table) / sizeof(reject_table[0]);
	     i++)
		if (strcmp(reason, reject_table[i].reason) == 0)
			return reject_table[i].cat;
	return METRICS_REJ_OTHER;
}

const char *
metrics_reject_name(enum metrics_reject r)
{
	return (unsigned)r < METRICS_REJ_COUNT ? rej_labels[r] : "other";
}

/* ---- render --------------------------------------------------------- */

static const char *const redis_to[2] = {"down", "up"};

static void
head(struct evbuffer *out, const char *name, const char *type,
     const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
}

/* Listener names are config_check_token()s: safe in a label as is. */
static void
render_conns(const struct metrics *m, const struct config_listener *ls,
	     size_t n, struct evbuffer *out)
{
	head(out, "godwit_connections_total", "counter",
	     "Connections by listener and result.");
	for (size_t i = 0; i < n && i < METRICS_MAX_LISTENERS; i++)
		for (unsigned r = 0; r < METRICS_CONN_COUNT; r++)
			evbuffer_add_printf(
			    out,
			    "godwit_connections_total{listener=\"%s\","
			    "protocol=\"%s\",result=\"%s\"} %llu\n",
			    ls[i].name, listener_proto_name(ls[i].proto),
			    conn_labels[r],
			    (unsigned long long)get(&m->conns[i][r]));
}

/* One counter family over one label and a fixed list of values. */
static void
render_vec(struct evbuffer *out, const char *name, const char *label,
	   const char *const *labels, const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s{%s=\"%s\"} %llu\n", name, label,
				    labels[i], (unsigned long long)get(&v[i]));
}

static void
render_hist(struct evbuffer *out, const char *name, const uint64_t *le,
	    size_t nb, const uint64_t *bucket, uint64_t sum, double unit)
{
	uint64_t cum = 0;

	for (size_t i = 0; i <= nb; i++) {
		cum += get(&bucket[i]);
		if (i < nb)
			evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n",
					    name, (double)le[i] / unit,
					    (unsigned long long)cum);
		else
			evbuffer_add_printf(out,
					    "%s_bucket{le=\"+Inf\"} %llu\n",
					    name, (unsigned long long)cum);
	}
	/* the count is the buckets' total, so the two always agree */
	evbuffer_add_printf(out, "%s_sum %.6f\n%s_count %llu\n", name,
			    (double)sum / unit, name, (unsigned long long)cum);
}

static void
render_auth_tls(const struct metrics *m, struct evbuffer *out)
{
	static const char *const dirs[2] = {"inbound", "outbound"};

	head(out, "godwit_auth_total", "counter",
	     "Authentications by mechanism and result.");
	for (unsigned i = 0; i < MECH_COUNT; i++)
		for (unsigned ok = 0; ok < 2; ok++)
			evbuffer_add_printf(
			    out,
			    "godwit_auth_total{mechanism=\"%s\","
			    "result=\"%s\"} %llu\n",
			    mech_labels[i], ok ? "success" : "failure",
			    (unsigned long long)get(&m->auth[i][ok]));
	head(out, "godwit_tls_handshakes_total", "counter",
	     "Completed TLS handshakes by direction and protocol version.");
	for (unsigned d = 0; d < 2; d++)
		for (unsigned v = 0; v < TLSV_COUNT; v++)
			evbuffer_add_printf(
			    out,
			    "godwit_tls_handshakes_total{direction=\"%s\","
			    "version=\"%s\"} %llu\n",
			    dirs[d], tls_labels[v],
			    (unsigned long long)get(&m->tls[d][v]));
}

static void
render_dns(const struct metrics *m, struct evbuffer *out)
{
	head(out, "godwit_dns_lookups_total", "counter",
	     "DNS queries by record type and result.");
	for (unsigned t = 0; t < DNST_COUNT; t++)
		for (unsigned r = 0; r < METRICS_DNS_RESULT_COUNT; r++)
			evbuffer_add_printf(
			    out,
			    "godwit_dns_lookups_total{type=\"%s\","
			    "result=\"%s\"} %llu\n",
			    dnst_labels[t], dnsr_labels[r],
			    (unsigned long long)get(&m->dns[t][r]));
	head(out, "godwit_dns_lookup_duration_seconds", "histogram",
	     "Time from a DNS query to its answer.");
	render_hist(out, "godwit_dns_lookup_duration_seconds", dns_le_us,
		    DNS_NB, m->dns_time.bucket, get(&m->dns_time.sum), 1e6);
}

void
metrics_render(const struct metrics *m, const struct config_listener *ls,
	       size_t n, struct evbuffer *out)
{
	static const char *const procs[2] = {"worker", "runner"};

	render_conns(m, ls, n, out);
	head(out, "godwit_messages_total", "counter",
	     "Messages accepted, and recipients delivered, bounced or "
	     "deferred.");
	render_vec(out, "godwit_messages_total", "result", msg_labels,
		   m->msgs, METRICS_MSG_COUNT);
	head(out, "godwit_rejections_total", "counter",
	     "Refusals by reason.");
	render_vec(out, "godwit_rejections_total", "reason", rej_labels,
		   m->rejects, METRICS_REJ_COUNT);
	render_auth_tls(m, out);
	head(out, "godwit_queue_messages", "gauge",
	     "Messages in the outbound queue by state.");
	render_vec(out, "godwit_queue_messages", "state", queue_labels,
		   m->queue, METRICS_Q_COUNT);
	head(out, "godwit_delivery_duration_seconds", "histogram",
	     "Time from a message's arrival to a recipient's final fate.");
	render_hist(out, "godwit_delivery_duration_seconds", delivery_le_ms,
		    DELIVERY_NB, m->delivery.bucket, get(&m->delivery.sum),
		    1e3);
	render_dns(m, out);
	head(out, "godwit_worker_restarts_total", "counter",
	     "Workers and queue runners that died and were replaced.");
	render_vec(out, "godwit_worker_restarts_total", "process", procs,
		   m->restarts, 2);
	head(out, "godwit_redis_transitions_total", "counter",
	     "Redis clients (one per process) that went down or came up.");
	render_vec(out, "godwit_redis_transitions_total", "to", redis_to,
		   m->redis, 2);
}
