/*
 * The queue runner's process: see runner.h for what it does and why it
 * is shaped so, runner_private.h for how its files divide the work. One
 * event loop; DNS (libunbound) and SMTP connections are asynchronous in
 * it. This file: start and stop, picking mail up (inotify on incoming/,
 * the timer for deferred mail), recovery at start, the control
 * commands, and the reaper thread. Disk work on the loop is small
 * (renames, state files of deferred mail); the reports to senders are
 * written by a committer thread like the workers' (store/deliver.c),
 * durably, before the message they report on is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/workq.h"
#include "mta/control.h"
#include "mta/runner.h"
#include "mta/runner_private.h"
#include "net/dns.h"
#include "net/metrics.h"
#include "store/deliver.h"
#include "store/userdb.h"

#define RUNNER_SLOT 63		/* queue id slot: workers use 0..31 */

/* ---- secrets -------------------------------------------------------- */

int
runner_secrets_load(const struct smarthost_config *sh,
		    struct runner_secrets *s, char **error_r)
{
	char line[1024], *colon, *nl;
	FILE *f;

	memset(s, 0, sizeof(*s));
	if (sh->credentials == NULL)
		return 0;
	if ((f = fopen(sh->credentials, "re")) == NULL) {
		*error_r = xasprintf("%s: %s", sh->credentials,
				     strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		*error_r = xasprintf("%s: empty", sh->credentials);
		return -1;
	}
	fclose(f);
	if ((nl = strpbrk(line, "\r\n")) != NULL)
		*nl = '\0';
	if ((colon = strchr(line, ':')) == NULL || colon == line ||
	    colon[1] == '\0') {
		explicit_bzero(line, sizeof(line));
		*error_r = xasprintf("%s: expected one line user:password",
				     sh->credentials);
		return -1;
	}
	*colon = '\0';
	s->user = xstrdup(line);
	s->pass = xstrdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return 0;
}

void
runner_secrets_clear(struct runner_secrets *s)
{
	free(s->user);
	if (s->pass != NULL) {
		explicit_bzero(s->pass, strlen(s->pass));
		free(s->pass);
	}
	memset(s, 0, sizeof(*s));
}

/* ---- helpers -------------------------------------------------------- */

int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- removing delivered mail ---------------------------------------- */

/*
 * Removing a file can block for a long time: on a file system mounted
 * with "discard", freeing the blocks waits for the device. So delivered
 * messages are unlinked (and their last descriptor closed) by a thread
 * of their own, never on the event loop. A crash before it gets to one
 * delivers that message again (the at-least-once window, runner.h).
 */
struct reap_item {
	char id[QUEUE_ID_LEN + 1];
	int fd;
};

struct reaper {
	struct workq *wq;	/* the reaper thread: one item at a time */
	char *data_dir;
};

static void
reaper_run(void *arg, void **items, size_t n)
{
	struct reaper *rp = arg;
	struct reap_item *it = items[0];
	char *path;

	(void)n;
	path = xasprintf("%s/queue/active/%s", rp->data_dir, it->id);
	unlink(path);
	free(path);
	queue_state_remove(rp->data_dir, it->id);
	if (it->fd >= 0)
		close(it->fd);
	free(it);
}

static struct reaper *
reaper_new(const char *data_dir)
{
	struct reaper *rp = xcalloc(1, sizeof(*rp));

	rp->data_dir = xstrdup(data_dir);
	rp->wq = workq_start("reaper", 1, reaper_run, rp);
	return rp;
}

void
reaper_add(struct reaper *rp, const char *id, int fd)
{
	struct reap_item *it = xcalloc(1, sizeof(*it));

	memcpy(it->id, id, sizeof(it->id));
	it->fd = fd;
	workq_submit(rp->wq, it);
}

/* Finishes what it has, then goes. */
static void
reaper_free(struct reaper **rpp)
{
	struct reaper *rp = *rpp;

	if (rp == NULL)
		return;
	workq_stop(&rp->wq);
	free(rp->data_dir);
	free(rp);
	*rpp = NULL;
}

/* ---- the queue's size, for the metrics ------------------------------ */

/*
 * Every few seconds a thread counts the files of incoming/, active/,
 * deferred/ and hold/ into the queue gauge. Counting the directories is
 * exact whatever moved them (the workers, `godwit queue`, a crash), and
 * off the loop a queue of a hundred thousand files costs no delivery any
 * time.
 */
#define GAUGE_INTERVAL_S 5

struct gauge {
	struct workq *wq;
	char *data_dir;
};

static uint64_t
count_dir(const char *data_dir, const char *sub)
{
	char *path = xasprintf("%s/queue/%s", data_dir, sub);
	DIR *d = opendir(path);
	struct dirent *de;
	uint64_t n = 0;

	free(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (queue_id_valid(de->d_name))
			n++;
	closedir(d);
	return n;
}

static void
gauge_tick(void *arg)
{
	static const struct {
		const char *dir;
		enum metrics_queue_state state;
	} dirs[] = {
	    {"incoming", METRICS_Q_INCOMING},
	    {"active", METRICS_Q_ACTIVE},
	    {"deferred", METRICS_Q_DEFERRED},
	    {"hold", METRICS_Q_HOLD},
	};
	struct gauge *g = arg;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		metrics_queue_set(dirs[i].state,
				  count_dir(g->data_dir, dirs[i].dir));
}

static struct gauge *
gauge_start(const char *data_dir)
{
	struct gauge *g = xcalloc(1, sizeof(*g));

	g->data_dir = xstrdup(data_dir);
	g->wq = workq_start_periodic("queue-gauge", GAUGE_INTERVAL_S,
				     gauge_tick, g);
	return g;
}

static void
gauge_stop(struct gauge **gp)
{
	struct gauge *g = *gp;

	if (g == NULL)
		return;
	workq_stop(&g->wq);
	free(g->data_dir);
	free(g);
	*gp = NULL;
}

/* ---- scheduling --------------------------------------------------- */

void
due_add(struct runner *r, const char *id, int64_t when)
{
	if (due_list_add(&r->due, id, when))
		timer_arm(r);
}

/* ---- picking up ----------------------------------------------------- */

static void
pickup_incoming(struct runner *r)
{
	size_t n;
	char **v = queue_ids(r->config->data_dir, "incoming", &n);
	size_t room = r->nmsgs < ACTIVE_MAX ? ACTIVE_MAX - r->nmsgs : 0;

	r->backlog = n > room;
	msgs_activate(r, (const char *const *)v, n < room ? n : room,
		      "incoming", false);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
timer_arm(struct runner *r)
{
	struct timeval tv = {0, 0};
	int64_t next = INT64_MAX, now = now_s();

	if (r->stopping)
		return;
	if (r->nmsgs >= ACTIVE_MAX) {
		evtimer_del(r->timer);	/* msg_free() calls again */
		return;
	}
	if (r->due.n > 0)
		next = r->due.min;
	if (r->backlog)
		next = now;
	if (next == INT64_MAX) {
		evtimer_del(r->timer);
		return;
	}
	tv.tv_sec = next > now ? (time_t)(next - now) : 0;
	evtimer_add(r->timer, &tv);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	size_t ntodo, room;
	struct due *todo;
	const char **ids;

	(void)fd;
	(void)what;
	if (r->backlog && r->nmsgs < ACTIVE_MAX)
		pickup_incoming(r);
	/* the due ones are taken out first: activating one may add to
	 * due[] (a message deferred again at once) */
	room = r->nmsgs < ACTIVE_MAX ? ACTIVE_MAX - r->nmsgs : 0;
	todo = due_list_take(&r->due, now_s(), room, &ntodo);
	ids = xcalloc(ntodo + 1, sizeof(*ids));
	for (size_t i = 0; i < ntodo; i++)
		ids[i] = todo[i].id;
	msgs_activate(r, ids, ntodo, "deferred", false);
	free(ids);
	free(todo);
	timer_arm(r);
}

static void
inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	char buf[64 * 1024]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	size_t room = r->nmsgs < ACTIVE_MAX ? ACTIVE_MAX - r->nmsgs : 0;
	char **ids = NULL;
	size_t nids = 0, cap = 0;
	ssize_t n;

	(void)what;
	/* everything that arrived, then one move for the lot */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if ((ev->mask & IN_Q_OVERFLOW) != 0) {
				r->backlog = true;
				continue;
			}
			if (ev->len == 0 || r->stopping ||
			    !queue_id_valid(ev->name))
				continue;
			if (nids == room) {
				r->backlog = true;
				continue;
			}
			if (nids == cap) {
				cap = cap ? cap * 2 : 64;
				ids = xreallocarray(ids, cap, sizeof(*ids));
			}
			ids[nids++] = xstrdup(ev->name);
		}
	}
	msgs_activate(r, (const char *const *)ids, nids, "incoming", false);
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	if (r->backlog)
		timer_arm(r);
}

/* At start: what a previous runner left in active/ goes back to
 * incoming/, deferred mail is scheduled by its state. */
static void
recover(struct runner *r)
{
	const struct runner_settings *cf = r->config;
	size_t n;
	char **v = queue_ids(cf->data_dir, "active", &n);
	bool *moved = xcalloc(n + 1, sizeof(*moved));

	queue_move_batch(cf->data_dir, "active", "incoming",
			 (const char *const *)v, n, moved);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(moved);
	v = queue_ids(cf->data_dir, "deferred", &n);
	for (size_t i = 0; i < n; i++) {
		struct queue_envelope e;
		struct queue_state st;
		uint64_t off;
		char *path = xasprintf("%s/queue/deferred/%s", cf->data_dir,
				       v[i]);
		char *err = NULL;
		int64_t when = 0;

		if (queue_envelope_read(path, &e, &off, &err) == 0) {
			if (queue_state_read(cf->data_dir, v[i], e.nrcpts,
					     &st, &err) == 0)
				when = st.next_attempt;
			queue_state_clear(&st);
			queue_envelope_clear(&e);
		}
		free(err);
		free(path);
		due_add(r, v[i], when);
		free(v[i]);
	}
	free(v);
}

/* ---- control commands --------------------------------------------- */

/* One message by id; returns 1 if it was affected. */
static int
ctl_one(struct runner *r, enum control_op op, const char *id, bool bounce)
{
	const struct runner_settings *cf = r->config;
	struct msg *m;
	int where;

	defer_flush(r);	/* none half-way between active/ and deferred/ */
	m = active_msg(r, id);

	if (m != NULL) {
		if (op == CONTROL_HOLD)
			m->hold_req = true;
		else if (op == CONTROL_RELEASE)
			m->hold_req = false;
		else if (op == CONTROL_DELETE) {
			/* a later plain delete (e.g. "delete all") must not
			 * take back a report an earlier --bounce asked for */
			m->delete_req = true;
			m->delete_bounce = m->delete_bounce || bounce;
		}
		return 1;
	}
	if ((where = queue_locate(cf->data_dir, id)) < 0)
		return 0;
	if (op == CONTROL_DELETE && bounce) {
		/* through the active queue, so the report is made like any
		 * other; the message is then removed */
		msgs_activate(r, &id, 1, queue_states[where], true);
		return 1;
	}
	if (queue_file_op(cf->data_dir, control_op_name(op), id) <= 0)
		return 0;
	if (op == CONTROL_RELEASE)
		due_add(r, id, 0);
	return 1;
}

/* The control socket's commands (mta/control.h). */
static int
ctl_run(const struct control_cmd *cmd, void *arg)
{
	struct runner *r = arg;
	int count = 0;

	if (cmd->op == CONTROL_FLUSH) {
		count = (int)due_list_flush(&r->due);
		timer_arm(r);
		return count;
	}
	if (strcmp(cmd->target, "all") != 0)
		return ctl_one(r, cmd->op, cmd->target, cmd->bounce);
	/* every message in every directory, active ones included */
	for (int s = 0; queue_states[s] != NULL; s++) {
		size_t n;
		char **v = queue_ids(r->config->data_dir, queue_states[s], &n);
		for (size_t i = 0; i < n; i++) {
			count += ctl_one(r, cmd->op, v[i], cmd->bounce);
			free(v[i]);
		}
		free(v);
	}
	return count;
}

/* ---- main ----------------------------------------------------------- */

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct runner *r = arg;

	(void)what;
	if (sig == SIGHUP)
		return;	/* the parent replaces us on reload */
	r->stopping = true;
	event_base_loopbreak(r->base);
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	defer_flush(arg);
}

static void
runner_shutdown(struct runner *r)
{
	struct msg *m;

	r->stopping = true;
	/* connections go at once: what they carried is retried later, from
	 * active/ via incoming/ at the next start */
	dests_free(r);
	smtp_client_abort_quits();
	/* reports in flight are made durable (their callbacks may finish
	 * messages) before the messages are let go */
	committer_free(&r->committer);
	defer_flush(r);
	while ((m = TAILQ_FIRST(&r->msgs)) != NULL) {
		r->backlog = false;
		msg_free(m);
	}
	while ((m = TAILQ_FIRST(&r->msgs)) != NULL)
		msg_free(m);
	reaper_free(&r->reaper);
	gauge_stop(&r->gauge);
}

/* The user database, DNS, committer, reaper, timers and inotify. */
static void
runner_open(struct runner *r, const struct runner_settings *config)
{
	struct dns_resolver_config dc;
	char *error = NULL, *dir;

	if ((r->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (userdb_open(&config->userdb, true, &r->db, &error) < 0)
		fatalx("user database: %s", error);
	memset(&dc, 0, sizeof(dc));
	dc.mode = config->dns.mode;
	dc.forwarders = (const char *const *)config->dns.forwarders;
	dc.nforwarders = config->dns.nforwarders;
	dc.trust_anchor = config->dns.trust_anchor;
	if ((r->dns = dns_resolver_new(r->base, &dc, &error)) == NULL)
		fatalx("dns: %s", error);
	r->committer = committer_new(r->base, config->data_dir,
				     config->mail_dir, config->hostname);
	committer_set_audit(r->committer, config->audit);
	r->reaper = reaper_new(config->data_dir);
	if (metrics_current() != NULL)
		r->gauge = gauge_start(config->data_dir);
	r->timer = evtimer_new(r->base, timer_cb, r);
	r->defer_ev = event_new(r->base, -1, 0, defer_cb, r);

	dir = xasprintf("%s/queue/incoming", config->data_dir);
	r->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r->ino_fd < 0 ||
	    inotify_add_watch(r->ino_fd, dir, IN_MOVED_TO) < 0)
		fatal("inotify on %s", dir);
	free(dir);
	r->ino_ev = event_new(r->base, r->ino_fd, EV_READ | EV_PERSIST,
			      inotify_cb, r);
	event_add(r->ino_ev, NULL);
	dir = control_path(config->data_dir);
	r->ctl = control_listen(r->base, dir, ctl_run, r);
	free(dir);
}

static void
runner_close(struct runner *r)
{
	control_free(&r->ctl);
	event_free(r->ino_ev);
	close(r->ino_fd);
	event_free(r->timer);
	event_free(r->defer_ev);
	dns_resolver_free(&r->dns);
	SSL_CTX_free(r->ssl_mx);
	SSL_CTX_free(r->ssl_relay);
	userdb_close(&r->db);
	due_list_clear(&r->due);
	event_base_free(r->base);
}

int
runner_main(const struct runner_settings *config,
	    const struct runner_secrets *secrets)
{
	struct runner r;
	struct event *sigs[3];
	int sigv[3] = {SIGTERM, SIGINT, SIGHUP};

	memset(&r, 0, sizeof(r));
	log_set_process("runner");
	r.config = config;
	r.secrets = secrets;
	r.sched.retry_min = config->queue.retry_min;
	r.sched.retry_max = config->queue.retry_max;
	r.sched.lifetime = config->queue.lifetime;
	r.sched.delay_warning = config->queue.delay_warning;
	TAILQ_INIT(&r.dests);
	TAILQ_INIT(&r.msgs);
	queue_id_init(RUNNER_SLOT);
	signal(SIGPIPE, SIG_IGN);
	runner_open(&r, config);
	for (size_t i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(r.base, sigv[i], sig_cb, &r);
		evsignal_add(sigs[i], NULL);
	}
	signals_unblock_all();
	log_event(LOG_INFO, "daemon", "runner-start", LF_INT("pid", getpid()));

	/* the watch is in place before the scan: nothing slips between */
	recover(&r);
	pickup_incoming(&r);
	timer_arm(&r);
	watch_start(&r);
	event_base_dispatch(r.base);

	watch_stop(&r);
	runner_shutdown(&r);
	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	runner_close(&r);
	log_event(LOG_DEBUG, "daemon", "runner-exit", LF_INT("pid", getpid()));
	return 0;
}
