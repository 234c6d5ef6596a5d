/*
 * The Redis client (net/redis.h): two hiredis asynchronous connections on
 * the loop, their handshake, the up/down state, per-command timers and the
 * reconnect backoff.
 *
 * hiredis frees a context itself after a failed connect and after its
 * disconnect callback, and calls every pending command's callback (with a
 * NULL reply) when a context is freed. So our pointers to the contexts are
 * cleared before anything can free them, every callback first checks that
 * its context is still ours, and a connection is only ever dropped from a
 * deferred event (never from inside one of hiredis's callbacks).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/alert.h"
#include "net/redis.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define TIMEOUTS_TO_DROP 3
#define HASHKEY_HEX 64

enum redis_state {
	ST_DOWN,	/* waiting for the backoff timer */
	ST_CONNECTING,	/* contexts made, handshake running */
	ST_UP,
};

struct redis_req {
	TAILQ_ENTRY(redis_req) entry;
	struct redis *r;
	redis_reply_fn *fn;
	void *arg;
	struct event *timer;
	bool answered;	/* fn ran, timed out or was cancelled */
};

struct redis {
	struct event_base *base;
	char *host;		/* or the socket path */
	int port;
	bool unix_sock;
	char *password;
	unsigned database;
	char *prefix;
	uint64_t timeout_ms;
	char *who;
	char *server;		/* the address, for the logs */

	enum redis_state state;
	bool ever_up;		/* for the level of the first up line */
	bool logged_down;	/* the current down was logged */
	redisAsyncContext *cmd;	/* commands */
	redisAsyncContext *sub;	/* SUBSCRIBE */
	bool cmd_ready, sub_ready;
	struct event *retry;	/* backoff, or the connect deadline */
	struct event *drop_ev;	/* deferred drop */
	const char *drop_reason;
	uint64_t backoff_ms;
	unsigned timeouts;	/* in a row */
	unsigned inflight;
	TAILQ_HEAD(, redis_req) reqs;
	unsigned char hashkey[HASHKEY_HEX / 2];

	redis_message_fn *msg_fn;
	void *msg_arg;
	redis_up_fn *up_fn;
	void *up_arg;
};

static void
hex_encode(const unsigned char *p, size_t n, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n && 2 * i + 2 < size; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * i] = '\0';
}

static int
hex_decode_fixed(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit((unsigned char)s[2 * i]);
		int lo = hi < 0 ? -1 : hex_digit((unsigned char)s[2 * i + 1]);

		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* ---- addresses ---------------------------------------------------------- */

int
redis_address_parse(const char *a, char *host, size_t hostsize, int *port_r,
		    bool *unix_r, const char **error_r)
{
	const char *colon, *hs, *he;
	unsigned long port;
	char *end;

	*unix_r = false;
	*port_r = 0;
	if (a == NULL || a[0] == '\0') {
		*error_r = "empty address";
		return -1;
	}
	if (a[0] == '/') {
		if (strlen(a) >= hostsize || strlen(a) >= 108) {
			*error_r = "socket path too long";
			return -1;
		}
		snprintf(host, hostsize, "%s", a);
		*unix_r = true;
		return 0;
	}
	if (a[0] == '[') {
		hs = a + 1;
		if ((he = strchr(hs, ']')) == NULL || he[1] != ':') {
			*error_r = "expected [IPv6]:port";
			return -1;
		}
		colon = he + 1;
	} else {
		hs = a;
		if ((colon = strrchr(a, ':')) == NULL ||
		    strchr(a, ':') != colon) {
			*error_r = "expected host:port, [IPv6]:port or "
				   "/path/to/socket";
			return -1;
		}
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= hostsize) {
		*error_r = "bad host";
		return -1;
	}
	for (const char *p = hs; p < he; p++)
		if (*p <= ' ' || *p >= 0x7f) {
			*error_r = "bad host";
			return -1;
		}
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port == 0 ||
	    port > 65535) {
		*error_r = "bad port";
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	*port_r = (int)port;
	return 0;
}

/* ---- state -------------------------------------------------------------- */

static void connect_all(struct redis *r);

static void
log_down(struct redis *r, const char *reason)
{
	if (r->logged_down)
		return;
	r->logged_down = true;
	log_event(LOG_ERR, "redis", "down", LF_STR("server", r->server),
		  LF_STR("reason", reason));
	/* the parent's rate limit makes it one per interval, whoever saw it */
	alert_raise_kind(ALERT_REDIS_DOWN, r->server, 1, 0, 0);
}

static void
retry_after(struct redis *r, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
			     (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(r->retry, &tv);
}

/*
 * Both connections gone, down, and the next attempt scheduled. The
 * pending commands' callbacks run from inside redisAsyncFree (NULL
 * replies): the callers decide locally.
 */
static void
drop_now(struct redis *r, const char *reason)
{
	redisAsyncContext *c = r->cmd, *s = r->sub;

	r->cmd = r->sub = NULL;
	r->cmd_ready = r->sub_ready = false;
	r->state = ST_DOWN;
	r->timeouts = 0;
	log_down(r, reason);
	if (c != NULL)
		redisAsyncFree(c);
	if (s != NULL)
		redisAsyncFree(s);
	evtimer_del(r->retry);
	retry_after(r, r->backoff_ms);
	r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							   : r->backoff_ms * 2;
}

static void
drop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis *r = arg;

	(void)fd;
	(void)what;
	drop_now(r, r->drop_reason != NULL ? r->drop_reason : "error");
}

/* From inside hiredis's callbacks: drop on the next loop turn. */
static void
drop_later(struct redis *r, const char *reason)
{
	if (r->state == ST_DOWN)
		return;
	/* not usable from now on */
	r->state = ST_CONNECTING;
	r->cmd_ready = false;
	if (r->drop_reason == NULL || !event_pending(r->drop_ev, EV_TIMEOUT,
						     NULL))
		r->drop_reason = reason;
	event_active(r->drop_ev, EV_TIMEOUT, 0);
}

static void
maybe_up(struct redis *r)
{
	if (!r->cmd_ready || !r->sub_ready || r->state == ST_UP)
		return;
	r->state = ST_UP;
	r->backoff_ms = BACKOFF_MIN_MS;
	evtimer_del(r->retry);
	log_event(r->ever_up || r->logged_down ? LOG_WARNING : LOG_INFO,
		  "redis", "up", LF_STR("server", r->server));
	r->ever_up = true;
	r->logged_down = false;
	if (r->up_fn != NULL)
		r->up_fn(r->up_arg);
}

/* ---- the handshake ------------------------------------------------------ */

static bool
reply_ok(const redisReply *rp)
{
	return rp != NULL && rp->type != REDIS_REPLY_ERROR;
}

static void
handshake_cb(redisAsyncContext *c, void *reply, void *priv)
{
	struct redis *r = c->data;
	redisReply *rp = reply;
	const char *step = priv;

	if (r == NULL || (c != r->cmd && c != r->sub))
		return;
	if (!reply_ok(rp)) {
		log_event(LOG_ERR, "redis", "error", LF_STR("command", step),
			  LF_STR("error", rp != NULL && rp->str != NULL
					      ? rp->str
					      : "no reply"));
		drop_later(r, step);
		return;
	}
	if (strcmp(step, "GET") == 0) {
		unsigned char k[HASHKEY_HEX / 2];

		if (rp->type != REDIS_REPLY_STRING || rp->len != HASHKEY_HEX ||
		    hex_decode_fixed(rp->str, k, sizeof(k)) < 0) {
			drop_later(r, "bad hashkey");
			return;
		}
		memcpy(r->hashkey, k, sizeof(k));
		r->cmd_ready = true;
		maybe_up(r);
	}
}

static void
message_cb(redisAsyncContext *c, void *reply, void *priv)
{
	struct redis *r = c->data;
	redisReply *rp = reply;

	(void)priv;
	if (r == NULL || c != r->sub)
		return;
	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements != 3 ||
	    rp->element[0]->type != REDIS_REPLY_STRING) {
		if (rp != NULL && rp->type == REDIS_REPLY_ERROR)
			drop_later(r, "SUBSCRIBE");
		return;
	}
	if (strcmp(rp->element[0]->str, "subscribe") == 0) {
		r->sub_ready = true;
		maybe_up(r);
		return;
	}
	if (strcmp(rp->element[0]->str, "message") == 0 &&
	    rp->element[2]->type == REDIS_REPLY_STRING && r->msg_fn != NULL)
		r->msg_fn(rp->element[2]->str, rp->element[2]->len,
			  r->msg_arg);
}

static void
auth_and_select(struct redis *r, redisAsyncContext *c, bool select)
{
	char db[16];

	if (r->password != NULL && r->password[0] != '\0')
		redisAsyncCommand(c, handshake_cb, "AUTH", "AUTH %s",
				  r->password);
	if (select && r->database != 0) {
		snprintf(db, sizeof(db), "%u", r->database);
		redisAsyncCommand(c, handshake_cb, "SELECT", "SELECT %s", db);
	}
}

static void
on_connect(const redisAsyncContext *c, int status)
{
	struct redis *r = c->data;
	redisAsyncContext *mc = (redisAsyncContext *)c;
	char key[REDIS_KEY_MAX], hk[HASHKEY_HEX + 1];
	unsigned char rnd[HASHKEY_HEX / 2];

	if (r == NULL || (c != r->cmd && c != r->sub))
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		if (c == r->cmd)
			r->cmd = NULL;
		else
			r->sub = NULL;
		drop_later(r, c->errstr[0] != '\0' ? "connect" : "connect");
		return;
	}
	if (c == r->sub) {
		auth_and_select(r, mc, false);
		redis_key(r, key, sizeof(key), "events", "");
		redisAsyncCommand(mc, message_cb, NULL, "SUBSCRIBE %s", key);
		return;
	}
	auth_and_select(r, mc, true);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		drop_later(r, "getrandom");
		return;
	}
	hex_encode(rnd, sizeof(rnd), hk, sizeof(hk));
	redis_key(r, key, sizeof(key), "hashkey", "");
	/* the first node's key stands; every node reads the one that stood */
	redisAsyncCommand(mc, handshake_cb, "SET", "SET %s %s NX", key, hk);
	redisAsyncCommand(mc, handshake_cb, "GET", "GET %s", key);
}

static void
on_disconnect(const redisAsyncContext *c, int status)
{
	struct redis *r = c->data;

	(void)status;
	if (r == NULL || (c != r->cmd && c != r->sub))
		return;
	/* hiredis frees it after this callback */
	if (c == r->cmd)
		r->cmd = NULL;
	else
		r->sub = NULL;
	drop_later(r, "connection lost");
}

static redisAsyncContext *
new_context(struct redis *r)
{
	redisAsyncContext *c;

	c = r->unix_sock ? redisAsyncConnectUnix(r->host)
			 : redisAsyncConnect(r->host, r->port);
	if (c == NULL)
		return NULL;
	if (c->err != 0) {
		redisAsyncFree(c);
		return NULL;
	}
	c->data = r;
	if (redisLibeventAttach(c, r->base) != REDIS_OK) {
		redisAsyncFree(c);
		return NULL;
	}
	redisAsyncSetConnectCallback(c, on_connect);
	redisAsyncSetDisconnectCallback(c, on_disconnect);
	return c;
}

/* The connect deadline: a black-holed address never answers. */
static uint64_t
connect_deadline_ms(const struct redis *r)
{
	uint64_t ms = r->timeout_ms * 8;

	return ms < 2000 ? 2000 : ms;
}

static void
connect_all(struct redis *r)
{
	r->state = ST_CONNECTING;
	r->cmd_ready = r->sub_ready = false;
	r->drop_reason = NULL;
	if ((r->cmd = new_context(r)) == NULL ||
	    (r->sub = new_context(r)) == NULL) {
		drop_now(r, "connect");
		return;
	}
	retry_after(r, connect_deadline_ms(r));
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis *r = arg;

	(void)fd;
	(void)what;
	if (r->state == ST_DOWN)
		connect_all(r);
	else if (r->state == ST_CONNECTING)
		drop_now(r, "connect timeout");
}

/* ---- life --------------------------------------------------------------- */

struct redis *
redis_new(struct event_base *base, const struct redis_config *cf,
	  const char *who)
{
	struct redis *r;
	char host[256];
	const char *error;
	int port;
	bool unix_sock;

	if (cf == NULL || cf->address == NULL || cf->address[0] == '\0')
		return NULL;
	if (redis_address_parse(cf->address, host, sizeof(host), &port,
				&unix_sock, &error) < 0) {
		/* the configuration check refused it already */
		log_event(LOG_ERR, "redis", "down",
			  LF_STR("server", cf->address), LF_STR("reason", error));
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->host = xstrdup(host);
	r->port = port;
	r->unix_sock = unix_sock;
	r->password = cf->password != NULL ? xstrdup(cf->password) : NULL;
	r->database = cf->database;
	r->prefix = xstrdup(cf->prefix != NULL ? cf->prefix : "godwit:");
	r->timeout_ms = cf->timeout_ms > 0 ? cf->timeout_ms : 250;
	r->who = xstrdup(who);
	r->server = xstrdup(cf->address);
	r->backoff_ms = BACKOFF_MIN_MS;
	TAILQ_INIT(&r->reqs);
	r->retry = evtimer_new(base, retry_cb, r);
	r->drop_ev = evtimer_new(base, drop_cb, r);
	if (r->retry == NULL || r->drop_ev == NULL)
		fatalx("redis: event_new failed");
	connect_all(r);
	return r;
}

static void
req_release(struct redis_req *q)
{
	if (q->timer != NULL) {
		event_free(q->timer);
		q->timer = NULL;
	}
}

void
redis_free(struct redis **rp)
{
	struct redis *r = *rp;
	struct redis_req *q;
	redisAsyncContext *c, *s;

	if (r == NULL)
		return;
	*rp = NULL;
	/* no callback of ours may run from here on */
	TAILQ_FOREACH(q, &r->reqs, entry) {
		q->answered = true;
		q->r = NULL;
		req_release(q);
	}
	TAILQ_INIT(&r->reqs);
	c = r->cmd;
	s = r->sub;
	r->cmd = r->sub = NULL;
	if (c != NULL) {
		c->data = NULL;
		redisAsyncFree(c);
	}
	if (s != NULL) {
		s->data = NULL;
		redisAsyncFree(s);
	}
	event_free(r->retry);
	event_free(r->drop_ev);
	if (r->password != NULL)
		explicit_bzero(r->password, strlen(r->password));
	explicit_bzero(r->hashkey, sizeof(r->hashkey));
	free(r->password);
	free(r->host);
	free(r->prefix);
	free(r->who);
	free(r->server);
	free(r);
}

bool
redis_up(const struct redis *r)
{
	return r != NULL && r->state == ST_UP;
}

const char *
redis_prefix(const struct redis *r)
{
	return r->prefix;
}

void
redis_on_message(struct redis *r, redis_message_fn *fn, void *arg)
{
	r->msg_fn = fn;
	r->msg_arg = arg;
}

void
redis_on_up(struct redis *r, redis_up_fn *fn, void *arg)
{
	r->up_fn = fn;
	r->up_arg = arg;
}

/* ---- commands ----------------------------------------------------------- */

static void
req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_req *q = arg;
	struct redis *r = q->r;

	(void)fd;
	(void)what;
	if (q->answered || r == NULL)
		return;
	q->answered = true;
	if (q->fn != NULL)
		q->fn(NULL, q->arg);
	if (++r->timeouts >= TIMEOUTS_TO_DROP && r->state == ST_UP)
		drop_later(r, "timeout");
}

static void
req_reply_cb(redisAsyncContext *c, void *reply, void *priv)
{
	struct redis_req *q = priv;
	struct redis *r = q->r;
	redisReply *rp = reply;

	(void)c;
	if (r != NULL) {
		TAILQ_REMOVE(&r->reqs, q, entry);
		r->inflight--;
		if (rp != NULL)
			r->timeouts = 0;
		if (rp != NULL && rp->type == REDIS_REPLY_ERROR)
			log_event(LOG_WARNING, "redis", "error",
				  LF_STR("command", "reply"),
				  LF_STR("error", rp->str != NULL ? rp->str
								  : ""));
	}
	if (!q->answered) {
		q->answered = true;
		if (q->fn != NULL)
			q->fn(rp != NULL && rp->type != REDIS_REPLY_ERROR ? rp
									  : NULL,
			      q->arg);
	}
	req_release(q);
	free(q);
}

struct redis_req *
redis_command(struct redis *r, redis_reply_fn *fn, void *arg, int argc,
	      const char **argv, const size_t *argvlen)
{
	struct redis_req *q;
	struct timeval tv;

	if (!redis_up(r) || r->cmd == NULL || r->inflight >= REDIS_MAX_INFLIGHT)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->fn = fn;
	q->arg = arg;
	if (redisAsyncCommandArgv(r->cmd, req_reply_cb, q, argc, argv,
				  argvlen) != REDIS_OK) {
		free(q);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->reqs, q, entry);
	r->inflight++;
	q->timer = evtimer_new(r->base, req_timeout_cb, q);
	tv.tv_sec = (time_t)(r->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
	if (q->timer != NULL)
		evtimer_add(q->timer, &tv);
	return q;
}

void
redis_cancel(struct redis_req **qp)
{
	struct redis_req *q = *qp;

	if (q == NULL)
		return;
	*qp = NULL;
	q->answered = true;
	if (q->timer != NULL)
		evtimer_del(q->timer);
}

/* ---- names -------------------------------------------------------------- */

bool
redis_key(const struct redis *r, char *buf, size_t size, const char *a,
	  const char *b)
{
	int n = snprintf(buf, size, "%s%s%s", r->prefix, a, b);

	return n >= 0 && (size_t)n < size;
}

bool
redis_account_hash(const struct redis *r, const char *account,
		   char out[REDIS_ACCOUNT_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t len;
	char *low;

	if (!redis_up(r) || account == NULL || account[0] == '\0')
		return false;
	len = strlen(account);
	low = xstrdup(account);
	ascii_lower(low);
	if (HMAC(EVP_sha256(), r->hashkey, sizeof(r->hashkey),
		 (const unsigned char *)low, len, md, &mdlen) == NULL ||
	    mdlen < 16) {
		free(low);
		return false;
	}
	free(low);
	hex_encode(md, 16, out, REDIS_ACCOUNT_HEX);
	return true;
}
