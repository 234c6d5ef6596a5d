/*
 * The parent's side of the alerts (daemon/alerts.h): the channel, the
 * rate limit, the log line, the mail to postmaster, alerts.command, and
 * the two kinds the parent raises itself (cert-expiry, crash-loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "daemon/alerts.h"
#include "daemon/config.h"
#include "lib/logfmt.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/alert.h"
#include "net/redis.h"
#include "net/tls.h"
#include "store/queue.h"
#include "store/recipient.h"
#include "store/userdb.h"

#define ALERTS_SEEN 256		/* kinds+subjects remembered for the rate */
#define ALERTS_COMMANDS 4	/* commands running at once */
#define ALERTS_CRASHES 1024	/* worker deaths remembered */
#define ALERTS_QUEUE_SLOT 62	/* queue id slot: workers 0..31, runner 63 */
#define ALERTS_JSON_MAX 2048

struct seen {
	uint32_t kind;
	char subject[ALERT_SUBJECT_MAX];
	uint64_t last_ms;
};

struct command {
	pid_t pid;
	struct event *timer;
	struct alerts *al;
};

struct alerts {
	struct event_base *base;
	const struct config *config;
	struct alerts_ids ids;
	int fds[2];
	struct event *rd;
	struct event *cert_timer;
	struct seen seen[ALERTS_SEEN];
	struct command cmds[ALERTS_COMMANDS];
	struct redis *redis;	/* redis: the nodes' shared rate limit */
	uint64_t crashes[ALERTS_CRASHES];	/* a ring of mono_ms() */
	unsigned ncrashes, crash_next;
};

/* ---- the rate limit ---------------------------------------------------- */

/*
 * Whether a mail for (kind, subject) went out less than interval ago; if
 * not, this one is recorded as sent. A full table forgets the oldest.
 */
static bool
rate_limited(struct alerts *al, const struct alert *a, uint64_t now)
{
	uint64_t interval = al->config->alerts.interval * 1000;
	struct seen *s, *oldest = &al->seen[0];

	for (size_t i = 0; i < ALERTS_SEEN; i++) {
		s = &al->seen[i];
		if (s->kind == a->kind &&
		    strcmp(s->subject, a->subject) == 0) {
			if (now - s->last_ms < interval)
				return true;
			s->last_ms = now;
			return false;
		}
		if (s->last_ms < oldest->last_ms)
			oldest = s;
	}
	oldest->kind = a->kind;
	memcpy(oldest->subject, a->subject, sizeof(oldest->subject));
	oldest->last_ms = now;
	return false;
}

/* ---- the JSON ---------------------------------------------------------- */

/* {"time":..,"host":..,"kind":..,...} into buf; its length, 0 if cut. */
static size_t
alert_json(const struct alerts *al, const struct alert *a, char *buf,
	   size_t size)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	struct logfmt_out o = {.buf = buf, .cap = size - 3};

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const struct log_field f[] = {
	    LF_STR("time", when),
	    LF_STR("host", al->config->hostname),
	    LF_STR("kind", alert_kind_name(a->kind)),
	    LF_STR("subject", a->subject),
	    LF_STR("text", alert_kind_text(a->kind)),
	    LF_UINT("count", a->count),
	    LF_UINT("limit", a->limit),
	    LF_UINT("window_s", a->window_s),
	    {.key = NULL},
	};
	if (!logfmt_fields(&o, LOGFMT_JSON, f) || o.len == 0 ||
	    buf[0] != ',')
		return 0;
	/* the fields begin with a comma: that is where the brace goes */
	buf[0] = '{';
	buf[o.len] = '}';
	buf[o.len + 1] = '\n';
	buf[o.len + 2] = '\0';
	return o.len + 2;
}

/* ---- the mail to postmaster ------------------------------------------- */

static char *
alert_message(const struct alerts *al, const struct alert *a,
	      const char *to, const char *id, const char *json)
{
	const char *host = al->config->hostname;
	char date[64];

	rfc5322_date(date, sizeof(date), (int64_t)time(NULL));
	return xasprintf(
	    "From: godwit <MAILER-DAEMON@%s>\n"
	    "To: <%s>\n"
	    "Subject: [godwit alert] %s: %s on %s\n"
	    "Date: %s\n"
	    "Message-ID: <%s.alert@%s>\n"
	    "Auto-Submitted: auto-generated\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "\n"
	    "%s\n\n"
	    "kind:    %s\n"
	    "subject: %s\n"
	    "count:   %llu (alert at %llu, window %llu s)\n"
	    "host:    %s\n\n"
	    "At most one mail per kind and subject is sent per "
	    "alerts.interval;\nthe log has every event=alert line.\n\n"
	    "%s",
	    host, to, alert_kind_name(a->kind), a->subject, host, date, id,
	    host, alert_kind_text(a->kind), alert_kind_name(a->kind),
	    a->subject, (unsigned long long)a->count,
	    (unsigned long long)a->limit, (unsigned long long)a->window_s,
	    host, json);
}

/* Where the mail goes: postmaster's mailboxes and remote addresses. */
static int
postmaster_rcpts(const struct alerts *al, struct queue_envelope *e,
		 char **error_r)
{
	const struct config *c = al->config;
	struct userdb *db = NULL;
	struct recipient_result res;
	struct recipient_ctx ctx = {0};
	char *err = NULL;

	if (userdb_open(&c->userdb, true, &db, &err) < 0) {
		*error_r = xasprintf("user database: %s", err);
		free(err);
		return -1;
	}
	ctx.db = db;
	ctx.hostname = c->hostname;
	ctx.postmaster = c->postmaster;
	ctx.delimiter = c->smtp.recipient_delimiter;
	recipient_postmaster(&ctx, &res);
	if (res.verdict == RCPT_ACCEPT) {
		for (size_t i = 0; i < res.nmailboxes; i++)
			queue_rcpt_add(e, res.mailboxes[i], 0, "");
		for (size_t i = 0; i < res.nremotes; i++)
			queue_rcpt_add(e, res.remotes[i], 0, "");
	}
	recipient_result_clear(&res);
	userdb_close(&db);
	if (e->nrcpts == 0) {
		*error_r = xstrdup("postmaster has no mailbox or address");
		return -1;
	}
	return 0;
}

static void
alert_mail(struct alerts *al, const struct alert *a, const char *json)
{
	struct queue_envelope e = {0};
	char *msg, *err = NULL;

	queue_id_new(e.id);
	e.arrival = (int64_t)time(NULL);
	e.client_ip = xstrdup("127.0.0.1");
	e.helo = xstrdup(al->config->hostname);
	e.sender = xstrdup("");
	e.ret = xstrdup("");
	e.envid = xstrdup("");
	if (postmaster_rcpts(al, &e, &err) == 0) {
		msg = alert_message(al, a, e.rcpts[0].addr, e.id, json);
		if (queue_inject(al->config->data_dir, &e, msg, strlen(msg),
				 al->ids.drop ? al->ids.uid : (uid_t)-1,
				 al->ids.gid, &err) == 0)
			log_event(LOG_INFO, "alert", "queued",
				  LF_STR("id", e.id),
				  LF_STR("kind", alert_kind_name(a->kind)),
				  LF_STR("to", e.rcpts[0].addr),
				  LF_UINT("nrcpt", e.nrcpts));
		free(msg);
	}
	if (err != NULL) {
		log_event(LOG_ERR, "alert", "error", LF_STR("action", "mail"),
			  LF_STR("error", err));
		free(err);
	}
	queue_envelope_clear(&e);
}

/* ---- alerts.command ---------------------------------------------------- */

/* In the forked child: stdin from the pipe, the daemon user, then sh. */
static void __attribute__((noreturn))
command_exec(const struct alerts *al, int in, const char *command)
{
	sigset_t none;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (dup2(in, 0) < 0 || (null >= 0 && dup2(null, 1) < 0))
		_exit(126);
	if (al->ids.drop &&
	    (setgroups((size_t)al->ids.ngroups, al->ids.groups) < 0 ||
	     setgid(al->ids.gid) < 0 || setuid(al->ids.uid) < 0 ||
	     setuid(0) == 0))
		_exit(126);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execl("/bin/sh", "sh", "-c", command, (char *)NULL);
	_exit(127);
}

static void
command_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct command *c = arg;

	(void)fd;
	(void)what;
	if (c->pid <= 0)
		return;
	log_event(LOG_WARNING, "alert", "error", LF_STR("action", "command"),
		  LF_INT("pid", c->pid), LF_STR("error", "timed out: killed"));
	kill(c->pid, SIGKILL);
}

static void
alert_command(struct alerts *al, const char *json, size_t len)
{
	const struct alerts_config *ac = &al->config->alerts;
	struct timeval tv = {(time_t)ac->command_timeout, 0};
	struct command *c = NULL;
	int p[2];
	pid_t pid;

	for (size_t i = 0; i < ALERTS_COMMANDS && c == NULL; i++)
		if (al->cmds[i].pid == 0)
			c = &al->cmds[i];
	if (c == NULL) {
		log_event(LOG_WARNING, "alert", "error",
			  LF_STR("action", "command"),
			  LF_STR("error", "too many still running"));
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_warn("alerts.command: pipe");
		return;
	}
	if ((pid = fork()) == 0)
		command_exec(al, p[0], ac->command);
	close(p[0]);
	if (pid < 0) {
		log_warn("alerts.command: fork");
		close(p[1]);
		return;
	}
	/* at most ALERTS_JSON_MAX < PIPE_BUF octets into an empty pipe:
	 * one write that cannot block; a command that never reads gets
	 * killed by the timer */
	if (write_full(p[1], json, len) < 0)
		log_warn("alerts.command: write");
	close(p[1]);
	c->pid = pid;
	c->al = al;
	if (c->timer == NULL)
		c->timer = evtimer_new(al->base, command_timeout_cb, c);
	evtimer_add(c->timer, &tv);
}

bool
alerts_reaped(struct alerts *al, pid_t pid, int status)
{
	for (size_t i = 0; al != NULL && i < ALERTS_COMMANDS; i++) {
		struct command *c = &al->cmds[i];

		if (c->pid != pid)
			continue;
		c->pid = 0;
		evtimer_del(c->timer);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			log_event(LOG_WARNING, "alert", "error",
				  LF_STR("action", "command"),
				  LF_INT("pid", pid),
				  LF_INT("status", WIFEXITED(status)
						       ? WEXITSTATUS(status)
						       : -1),
				  LF_INT("signal", WIFSIGNALED(status)
						       ? WTERMSIG(status)
						       : 0));
		return true;
	}
	return false;
}

/* ---- one alert ----------------------------------------------------------- */

/* The rate limit said yes or no: the log line, then the mail. */
static void
alert_decided(struct alerts *al, const struct alert *a, bool limited,
	      const char *why)
{
	const struct alerts_config *ac = &al->config->alerts;
	char json[ALERTS_JSON_MAX];
	size_t len;

	log_event(LOG_WARNING, "alert", "alert",
		  LF_STR("kind", alert_kind_name(a->kind)),
		  LF_STR("subject", a->subject), LF_UINT("count", a->count),
		  LF_UINT("max", a->limit), LF_UINT("window_s", a->window_s),
		  LF_STR("notified", limited ? "no" : "yes"),
		  LF_STR_IF(limited, "reason", why));
	if (limited)
		return;
	len = alert_json(al, a, json, sizeof(json));
	if (len == 0) {
		log_warnx("alert too long for its JSON");
		return;
	}
	alert_mail(al, a, json);
	if (ac->command != NULL)
		alert_command(al, json, len);
}

struct shared_ask {
	struct alerts *al;
	struct alert a;
};

/* SET NX's answer: OK, this node mails; nil, another one did. */
static void
shared_answer(struct redisReply *reply, void *arg)
{
	struct shared_ask *q = arg;

	alert_decided(q->al, &q->a,
		      reply != NULL && reply->type == REDIS_REPLY_NIL,
		      "rate-limited-cluster");
	free(q);
}

/*
 * Redis up: the interval is also held cluster-wide (SET NX PX on
 * <prefix>alert:<kind>:<subject>), so two nodes do not both mail the
 * same alert; no answer, this node's own rate limit stands.
 */
static bool
ask_shared(struct alerts *al, const struct alert *a)
{
	char key[REDIS_KEY_MAX], px[24], kind[24];
	struct shared_ask *q;
	const char *argv[6];

	if (!redis_up(al->redis))
		return false;
	snprintf(kind, sizeof(kind), "alert:%s:", alert_kind_name(a->kind));
	if (!redis_key(al->redis, key, sizeof(key), kind, a->subject))
		return false;
	snprintf(px, sizeof(px), "%llu",
		 (unsigned long long)al->config->alerts.interval * 1000);
	q = xcalloc(1, sizeof(*q));
	q->al = al;
	q->a = *a;
	argv[0] = "SET";
	argv[1] = key;
	argv[2] = "1";
	argv[3] = "NX";
	argv[4] = "PX";
	argv[5] = px;
	if (redis_command(al->redis, shared_answer, q, 6, argv, NULL) ==
	    NULL) {
		free(q);
		return false;
	}
	return true;
}

static void
alert_handle(const struct alert *a, void *arg)
{
	struct alerts *al = arg;
	const struct alerts_config *ac = &al->config->alerts;

	if (!ac->enabled)
		return;
	if (rate_limited(al, a, mono_ms())) {
		alert_decided(al, a, true, "rate-limited");
		return;
	}
	if (!ask_shared(al, a))
		alert_decided(al, a, false, NULL);
}

static void
channel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct alert a;
	int r;

	(void)what;
	/* bounded: the loop has other work; the rest waits for the next
	 * round */
	for (int i = 0; i < 64; i++) {
		if ((r = alert_receive(fd, &a)) == 0)
			break;
		if (r < 0) {
			log_event(LOG_WARNING, "alert", "error",
				  LF_STR("action", "receive"),
				  LF_STR("error", "malformed alert dropped"));
			continue;
		}
		alert_handle(&a, arg);
	}
}

/* ---- what the parent sees itself ---------------------------------------- */

static void
check_certs(struct alerts *al)
{
	const struct config *c = al->config;
	int64_t now = (int64_t)time(NULL), t;
	char *err = NULL;

	if (c->alerts.cert_expiry == 0)
		return;
	for (size_t i = 0; i < c->tls.ncerts; i++) {
		if (tls_cert_not_after(c->tls.certs[i].cert, &t, &err) < 0) {
			log_event(LOG_WARNING, "alert", "error",
				  LF_STR("action", "cert-expiry"),
				  LF_STR("error", err));
			free(err);
			err = NULL;
			continue;
		}
		if (t - now >= (int64_t)c->alerts.cert_expiry)
			continue;
		/* count: the days left (0: expired) */
		alert_raise_kind(ALERT_CERT_EXPIRY, c->tls.certs[i].cert,
				 t > now ? (uint64_t)(t - now) / 86400 : 0,
				 c->alerts.cert_expiry / 86400, 0);
	}
}

static void
cert_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct alerts *al = arg;
	struct timeval day = {86400, 0};

	(void)fd;
	(void)what;
	check_certs(al);
	evtimer_add(al->cert_timer, &day);
}

void
alerts_worker_died(struct alerts *al)
{
	const struct alerts_config *ac = &al->config->alerts;
	uint64_t now = mono_ms(), window = ac->crash_window * 1000;
	unsigned n = 0;

	al->crashes[al->crash_next] = now;
	al->crash_next = (al->crash_next + 1) % ALERTS_CRASHES;
	if (al->ncrashes < ALERTS_CRASHES)
		al->ncrashes++;
	if (ac->crash_loop == 0)
		return;
	for (unsigned i = 0; i < al->ncrashes; i++)
		if (now - al->crashes[i] < window)
			n++;
	/* once as the count reaches the threshold (the rate limit takes
	 * care of a loop that goes on) */
	if (n >= ac->crash_loop)
		alert_raise_kind(ALERT_CRASH_LOOP, "workers", n, ac->crash_loop,
				 ac->crash_window);
}

/* ---- life ------------------------------------------------------------------ */

struct alerts *
alerts_new(struct event_base *base, const struct config *config,
	   const struct alerts_ids *ids)
{
	struct alerts *al = xcalloc(1, sizeof(*al));
	struct timeval now = {0, 0};

	al->base = base;
	al->config = config;
	al->ids = *ids;
	if (alert_channel_new(al->fds) < 0) {
		free(al);
		return NULL;
	}
	queue_id_init(ALERTS_QUEUE_SLOT);
	al->rd = event_new(base, al->fds[0], EV_READ | EV_PERSIST, channel_cb,
			   al);
	event_add(al->rd, NULL);
	alert_sink_fn(alert_handle, al);
	/* down until connected; the alerts are never held for it */
	al->redis = redis_new(base, &config->redis, "parent");
	al->cert_timer = evtimer_new(base, cert_timer_cb, al);
	evtimer_add(al->cert_timer, &now);
	return al;
}

/* The new certificates are looked at now, not a day later. */
void
alerts_set_config(struct alerts *al, const struct config *config)
{
	al->config = config;
	check_certs(al);
}

void
alerts_in_child(struct alerts *al)
{
	if (al->fds[0] >= 0)
		close(al->fds[0]);
	al->fds[0] = -1;
	alert_sink_fd(al->fds[1]);
	/* al->redis is the parent's and is left alone: fork_child() gave
	 * the base its events live in to nobody, and a child never handles
	 * alerts (its sink is the channel) */
}

void
alerts_free(struct alerts **alp)
{
	struct alerts *al = *alp;

	if (al == NULL)
		return;
	*alp = NULL;
	for (size_t i = 0; i < ALERTS_COMMANDS; i++)
		if (al->cmds[i].timer != NULL)
			event_free(al->cmds[i].timer);
	redis_free(&al->redis);
	event_free(al->rd);
	event_free(al->cert_timer);
	if (al->fds[0] >= 0)
		close(al->fds[0]);
	close(al->fds[1]);
	alert_sink_fn(NULL, NULL);
	free(al);
}
