/*
 * `godwit serve`: the parent process. It alone runs as root: it reads the
 * configuration, prepares the data directory, binds every listener (IPv4
 * and IPv6), and forks the workers, which drop privileges before they touch
 * the network. Then it only watches:
 *
 *   SIGTERM/SIGINT  workers finish their transactions and exit; then we do
 *   SIGHUP          reload: a new configuration that fails to load is
 *                   refused (logged) and the old one stays; a good one gets
 *                   new workers (reusing the sockets that stay), and the old
 *                   workers drain: no connection is dropped
 *   SIGCHLD         a worker that died unexpectedly is replaced
 *   SIGUSR1         log.file is reopened by its name (logfile.h); the
 *                   children write through the parent and need no telling
 *                   (one sent to a child is passed on to the parent)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/alerts.h"
#include "net/auth.h"
#include "daemon/audit_tick.h"
#include "daemon/config.h"
#include "daemon/logfile.h"
#include "store/datadir.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/client_limits.h"
#include "net/metrics.h"
#include "lib/log.h"
#include "store/queue.h"
#include "mta/runner.h"
#include "daemon/server.h"
#include "net/tls.h"
#include "store/userdb.h"
#include "daemon/version.h"
#include "daemon/worker.h"
#include "msgauth/dkim.h"
#include "msgauth/dmarc.h"

#define SERVER_MAX_GROUPS 64	/* of the daemon user, supplementary too */
#define LIMITS_ENTRIES 16384

struct child {
	pid_t pid;
	unsigned slot;
	unsigned gen;
	bool draining;
	uint64_t started_ms;
};

struct server {
	struct event_base *base;
	struct config *config;		/* current generation */
	unsigned gen;
	struct bound_socket *socks;
	size_t nsocks;
	struct limits *limits;
	struct metrics *metrics;	/* shared with every child */
	SSL_CTX *tls_ctx;		/* loaded here, as root; NULL: no TLS */
	struct dkim_keyring *keyring;	/* DKIM signing keys, as root */
	struct child children[LIMITS_MAX_WORKERS];
	bool slot_used[LIMITS_MAX_WORKERS];
	bool stopping;
	struct event *kill_timer;
	struct event *respawn_timer;
	uid_t uid;
	gid_t gid;
	bool drop;
	/* the user's groups in /etc/group (clamav, to reach clamd's
	 * socket...), looked up once as root */
	gid_t groups[SERVER_MAX_GROUPS];
	int ngroups;
	/* the queue runner: one, replaced when it dies and at reload */
	pid_t runner_pid;
	uint64_t runner_started_ms;
	bool runner_restart;		/* reload: start anew when it exits */
	struct runner_secrets secrets;	/* read as root, before the fork */
	struct alerts *alerts;		/* the channel, mail and command */
	struct logfile *logfile;	/* every process's lines go through it */
	struct audit_tick *audit;	/* NULL when audit.enabled is off */
};

/* ---- sockets -------------------------------------------------------- */

#define LISTEN_BACKLOG 1024

static bool
same_addr(const struct listen_addr *a, const struct listen_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static int
bind_one(const struct listen_addr *a, char **error_r)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "[::]:25" must not swallow IPv4: each family has its own socket */
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	/* the queue every worker accepts from: a burst of connections
	 * waits here, and what does not fit is dropped and only retried by
	 * the client's TCP 1, 3, 7... s later (the kernel caps it at
	 * net.core.somaxconn; the workers must not listen() again) */
	if (listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	*error_r = xasprintf("cannot listen on %s: %s", a->text,
			     strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * Sockets for every address of config; those already bound in old are
 * reused (moved: old's fd becomes -1). Returns -1 and binds nothing new on
 * failure.
 */
static int
bind_all(const struct config *config, struct bound_socket *old, size_t nold,
	 struct bound_socket **socks_r, size_t *n_r, char **error_r)
{
	struct bound_socket *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < config->nlisteners; i++) {
		const struct config_listener *l = &config->listeners[i];
		for (size_t j = 0; j < l->naddrs; j++) {
			const struct listen_addr *a = &l->addrs[j];
			int fd = -1;

			for (size_t k = 0; k < nold; k++) {
				if (old[k].fd >= 0 &&
				    same_addr(old[k].addr, a)) {
					fd = old[k].fd;
					old[k].fd = -1;
					break;
				}
			}
			if (fd < 0 && (fd = bind_one(a, error_r)) < 0) {
				/* give back what we took, close what we made */
				for (size_t k = 0; k < n; k++) {
					bool reused = false;
					for (size_t m = 0; m < nold; m++) {
						if (old[m].fd < 0 &&
						    same_addr(old[m].addr,
							      v[k].addr)) {
							old[m].fd = v[k].fd;
							reused = true;
							break;
						}
					}
					if (!reused)
						close(v[k].fd);
				}
				free(v);
				return -1;
			}
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n].fd = fd;
			v[n].listener = l;
			v[n].addr_text = a->text;
			v[n].addr = a;
			n++;
		}
	}
	*socks_r = v;
	*n_r = n;
	return 0;
}

static void
close_socks(struct bound_socket *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].fd >= 0)
			close(v[i].fd);
	free(v);
}

/* ---- set-up ---------------------------------------------------------- */

static int
resolve_user(struct server *sv, const struct config *config, char **error_r)
{
	struct datadir_ids ids;

	if (datadir_ids(config->user, &ids, error_r) < 0)
		return -1;
	sv->drop = ids.drop;
	sv->uid = ids.uid;
	sv->gid = ids.gid;
	sv->groups[0] = ids.gid;
	sv->ngroups = SERVER_MAX_GROUPS;
	if (ids.drop && getgrouplist(config->user, ids.gid, sv->groups,
				     &sv->ngroups) < 0) {
		*error_r = xasprintf("user %s is in more than %d groups",
				     config->user, SERVER_MAX_GROUPS);
		return -1;
	}
	return 0;
}

/*
 * The layout of data_dir (datadir.c), then the user database's schema,
 * which the workers, opening it read-only, cannot create themselves.
 */
static int
prepare_data_dir(struct server *sv, const struct config *config,
		 char **error_r)
{
	struct datadir_ids ids = {.drop = sv->drop, .uid = sv->uid,
				  .gid = sv->gid};
	struct datadir_config dc;
	struct userdb *db = NULL;
	char *err = NULL;

	config_datadir(config, &dc);
	if (datadir_prepare(&dc, &ids, error_r) < 0)
		return -1;
	if (userdb_open(&config->userdb, false, &db, &err) < 0) {
		*error_r = xasprintf("user database: %s", err);
		free(err);
		return -1;
	}
	userdb_close(&db);
	return 0;
}

/*
 * Files left in queue/tmp/ by a crash were never acknowledged (the 250
 * comes after they are linked or renamed elsewhere): remove them. Only at
 * start, before any worker runs.
 */
static void
clean_queue_tmp(const struct config *config)
{
	char *dir = xasprintf("%s/queue/tmp", config->data_dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				n++;
		}
		closedir(d);
	}
	if (n > 0)
		log_info("removed %u unacknowledged file%s from %s", n,
			 n == 1 ? "" : "s", dir);
	free(dir);
}

/* Certificates and keys are read here, by root, before any fork. */
/* The Public Suffix List for DMARC, loaded once here so that every
 * child shares it; without one DMARC still runs (each domain its own
 * organizational domain), with a warning. */
static void
load_psl(const struct config *config)
{
	char *error = NULL;

	if (config->checks.dmarc && dmarc_psl_init(&error) < 0) {
		log_warnx("%s", error);
		free(error);
	}
}

/* The DKIM signing keys under <data_dir>/dkim, read as root like the TLS
 * keys (dkim.sign false: none). A key that cannot be used is an error
 * naming its file. */
static int
load_keyring(const struct config *config, struct dkim_keyring **kr_r,
	     char **error_r)
{
	char *dir, *error = NULL;
	int r;

	*kr_r = NULL;
	if (!config->checks.dkim_sign)
		return 0;
	dir = xasprintf("%s/dkim", config->data_dir);
	r = dkim_keyring_load(dir, kr_r, &error);
	free(dir);
	if (r < 0) {
		*error_r = xasprintf("DKIM keys: %s", error);
		free(error);
	}
	return r;
}

static int
load_tls(const struct config *config, SSL_CTX **ctx_r, char **error_r)
{
	*ctx_r = NULL;
	if (config->tls.ncerts == 0)
		return 0;
	return tls_ctx_new(&config->tls, config->path, ctx_r, error_r);
}

/* ---- workers -------------------------------------------------------- */

static unsigned
nworkers(const struct config *config)
{
	long n = config->workers > 0 ? (long)config->workers
				     : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > LIMITS_MAX_WORKERS / 2)
		n = LIMITS_MAX_WORKERS / 2;
	return (unsigned)n;
}

static void
drop_privileges(struct server *sv)
{
	if (!sv->drop)
		return;
	if (setgroups((size_t)sv->ngroups, sv->groups) < 0 ||
	    setgid(sv->gid) < 0 ||
	    setuid(sv->uid) < 0)
		fatal("cannot drop privileges to %s", sv->config->user);
	if (setuid(0) == 0)
		fatalx("privileges were not dropped");
}

/* The signals godwit handles; blocked until a handler is installed. */
static void
signals_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, old);
}

/*
 * fork() for a child process: returns its pid in the parent (-1 on
 * failure), 0 in the child, which then has the signals blocked (its main
 * unblocks them once its own handlers are in place) and none of the
 * parent's event base.
 */
static pid_t
fork_child(struct server *sv)
{
	sigset_t old;
	pid_t pid;

	signals_block(&old);
	pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_warn("fork");
		return -1;
	}
	if (pid == 0) {
		/* the parent's event base (and its signal handling) is not
		 * ours to use: the child makes its own. event_reinit first
		 * gives this copy its own epoll instance; freeing it without
		 * that would unregister the parent's fds from the epoll set
		 * we share with it after fork(). */
		event_reinit(sv->base);
		event_base_free(sv->base);
		sv->base = NULL;
		signal(SIGCHLD, SIG_DFL);
		/* after event_base_free(), which put back the handlers the
		 * parent's base had taken over (SIGUSR1's among them) */
		logfile_child(sv->logfile);
	}
	return pid;
}

static int
spawn(struct server *sv, unsigned slot)
{
	pid_t pid = fork_child(sv);

	if (pid < 0)
		return -1;
	if (pid == 0) {
		alerts_in_child(sv->alerts);
		drop_privileges(sv);
		/* exit(), not _exit(): so LeakSanitizer checks workers too */
		exit(worker_main(sv->config, sv->socks, sv->nsocks,
				 sv->limits, sv->tls_ctx, sv->keyring, slot));
	}
	sv->children[slot].pid = pid;
	sv->children[slot].slot = slot;
	sv->children[slot].gen = sv->gen;
	sv->children[slot].draining = false;
	sv->children[slot].started_ms = mono_ms();
	sv->slot_used[slot] = true;
	return 0;
}

static void
spawn_runner(struct server *sv)
{
	pid_t pid = fork_child(sv);

	if (pid < 0)
		return;
	if (pid == 0) {
		int code;
		/* it listens on nothing */
		close_socks(sv->socks, sv->nsocks);
		sv->socks = NULL;
		sv->nsocks = 0;
		alerts_in_child(sv->alerts);
		drop_privileges(sv);
		proc_title("godwit: queue runner");
		struct runner_settings rs;
		config_runner_settings(sv->config, &rs);
		rs.keyring = sv->keyring;
		rs.limits = sv->limits;
		code = runner_main(&rs, &sv->secrets);
		runner_secrets_clear(&sv->secrets);
		exit(code);
	}
	sv->runner_pid = pid;
	sv->runner_started_ms = mono_ms();
}

static int
free_slot(struct server *sv)
{
	for (unsigned i = 0; i < LIMITS_MAX_WORKERS; i++)
		if (!sv->slot_used[i])
			return (int)i;
	return -1;
}

static void
spawn_generation(struct server *sv)
{
	unsigned n = nworkers(sv->config);

	for (unsigned i = 0; i < n; i++) {
		int slot = free_slot(sv);
		if (slot < 0) {
			log_warnx("no free worker slot");
			return;
		}
		spawn(sv, (unsigned)slot);
	}
}

static unsigned
live_children(struct server *sv)
{
	unsigned n = sv->runner_pid > 0 ? 1 : 0;

	for (unsigned i = 0; i < LIMITS_MAX_WORKERS; i++)
		if (sv->slot_used[i])
			n++;
	return n;
}

static void
signal_children(struct server *sv, int sig, bool only_old)
{
	for (unsigned i = 0; i < LIMITS_MAX_WORKERS; i++) {
		if (!sv->slot_used[i])
			continue;
		if (only_old && sv->children[i].gen == sv->gen)
			continue;
		kill(sv->children[i].pid, sig);
	}
	if (!only_old && sv->runner_pid > 0)
		kill(sv->runner_pid, sig);
}

static void
respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *sv = arg;
	unsigned want = nworkers(sv->config), have = 0;

	(void)fd;
	(void)what;
	if (sv->stopping)
		return;
	for (unsigned i = 0; i < LIMITS_MAX_WORKERS; i++)
		if (sv->slot_used[i] && sv->children[i].gen == sv->gen)
			have++;
	if (sv->runner_pid == 0)
		spawn_runner(sv);
	while (have < want) {
		int slot = free_slot(sv);
		if (slot < 0 || spawn(sv, (unsigned)slot) < 0)
			break;
		have++;
	}
}

static void
reap(struct server *sv)
{
	pid_t pid;
	int status;
	bool respawn_now = false, respawn_later = false;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = NULL;
		if (alerts_reaped(sv->alerts, pid, status))
			continue;
		if (pid == sv->runner_pid) {
			sv->runner_pid = 0;
			if (sv->stopping)
				continue;
			if (!sv->runner_restart)
				log_event(LOG_ERR, "daemon", "runner-died",
					  LF_INT("pid", pid),
					  LF_INT("status",
						 WIFEXITED(status)
							 ? WEXITSTATUS(status)
							 : -1),
					  LF_INT("signal",
						 WIFSIGNALED(status)
							 ? WTERMSIG(status)
							 : 0));
			if (!sv->runner_restart)
				metrics_restart(true);
			if (!sv->runner_restart &&
			    mono_ms() - sv->runner_started_ms < 1000)
				respawn_later = true;
			else
				spawn_runner(sv);
			sv->runner_restart = false;
			continue;
		}
		for (unsigned i = 0; i < LIMITS_MAX_WORKERS; i++)
			if (sv->slot_used[i] && sv->children[i].pid == pid)
				c = &sv->children[i];
		if (c == NULL)
			continue;
		sv->slot_used[c->slot] = false;
		limits_worker_reset(sv->limits, c->slot);
		bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (sv->stopping || c->gen != sv->gen) {
			log_event(LOG_DEBUG, "daemon", "worker-exit",
				  LF_UINT("slot", c->slot), LF_INT("pid", pid));
			continue;
		}
		if (WIFSIGNALED(status))
			log_event(LOG_ERR, "daemon", "worker-died",
				  LF_UINT("slot", c->slot), LF_INT("pid", pid),
				  LF_INT("signal", WTERMSIG(status)));
		else
			log_event(LOG_ERR, "daemon", "worker-died",
				  LF_UINT("slot", c->slot), LF_INT("pid", pid),
				  LF_INT("status", WEXITSTATUS(status)));
		(void)clean;
		alerts_worker_died(sv->alerts);
		metrics_restart(false);
		/* a worker that dies right after it started would make us
		 * spin: wait a second before replacing it */
		if (mono_ms() - c->started_ms < 1000)
			respawn_later = true;
		else
			respawn_now = true;
	}
	if (sv->stopping && live_children(sv) == 0) {
		event_base_loopexit(sv->base, NULL);
		return;
	}
	if (respawn_now)
		respawn_cb(-1, 0, sv);
	if (respawn_later) {
		struct timeval tv = {1, 0};
		evtimer_add(sv->respawn_timer, &tv);
	}
}

/* ---- signals -------------------------------------------------------- */

static void
kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *sv = arg;

	(void)fd;
	(void)what;
	log_warnx("workers did not stop in time; killing them");
	signal_children(sv, SIGKILL, false);
}

static void
shutdown_start(struct server *sv)
{
	struct timeval tv = {(time_t)sv->config->limits.shutdown_timeout + 5, 0};

	if (sv->stopping)
		return;
	sv->stopping = true;
	log_event(LOG_INFO, "daemon", "stopping",
		  LF_UINT("children", live_children(sv)));
	signal_children(sv, SIGTERM, false);
	evtimer_add(sv->kill_timer, &tv);
	if (live_children(sv) == 0)
		event_base_loopexit(sv->base, NULL);
}

/* The audit log's tick (daemon/audit_tick.h), as audit.enabled says. */
static void
audit_start(struct server *sv)
{
	if (!sv->config->audit.enabled)
		audit_tick_free(&sv->audit);
	else if (sv->audit == NULL)
		sv->audit = audit_tick_new(sv->base, sv->config->data_dir,
					   sv->drop ? sv->uid : (uid_t)-1,
					   sv->drop ? sv->gid : (gid_t)-1);
}

/* A new configuration that cannot be used: say why, keep the old one. */
static void
reload_refused(struct server *sv, struct config **nc, char *errors)
{
	log_event(LOG_ERR, "daemon", "reload-refused", LF_STR("errors", errors));
	if (sv->config->audit.enabled)
		audit_tick_reload(sv->config->data_dir, sv->config->path,
				  "refused");
	free(errors);
	config_free(nc);
}

/* What a reload does not change, said. */
static void
warn_restart_only(const struct config *old, const struct config *nc)
{
	if (strcmp(nc->data_dir, old->data_dir) != 0 ||
	    strcmp(nc->mail_dir, old->mail_dir) != 0 ||
	    (nc->user == NULL) != (old->user == NULL) ||
	    (nc->user != NULL && strcmp(nc->user, old->user) != 0))
		log_warnx("data_dir, mail_dir and user changes take effect "
			  "at restart");
	if (nc->limits.ipv6_prefix != old->limits.ipv6_prefix ||
	    nc->limits.ipv6_wide_prefix != old->limits.ipv6_wide_prefix)
		log_warnx("limits.ipv6_prefix and limits.ipv6_wide_prefix "
			  "changes take effect at restart");
}

/* The smarthost credentials again; the old ones kept when they fail. */
static void
reload_secrets(struct server *sv)
{
	struct runner_secrets ns;
	char *errors = NULL;

	if (runner_secrets_load(&sv->config->smarthost, &ns, &errors) < 0) {
		log_warnx("smarthost credentials: %s (keeping the old ones)",
			  errors);
		free(errors);
	} else {
		runner_secrets_clear(&sv->secrets);
		sv->secrets = ns;
	}
}

static void
reload(struct server *sv)
{
	struct config *nc = NULL;
	struct bound_socket *socks = NULL;
	size_t nsocks = 0;
	char *errors = NULL;

	if (sv->stopping)
		return;
	if (config_load(sv->config->path, &nc, &errors) < 0) {
		reload_refused(sv, &nc, errors);
		return;
	}
	warn_restart_only(sv->config, nc);
	SSL_CTX *tls_ctx = NULL;
	if (load_tls(nc, &tls_ctx, &errors) < 0) {
		reload_refused(sv, &nc, errors);
		return;
	}
	struct dkim_keyring *keyring = NULL;
	if (load_keyring(nc, &keyring, &errors) < 0) {
		tls_ctx_free(&tls_ctx);
		reload_refused(sv, &nc, errors);
		return;
	}
	if (bind_all(nc, sv->socks, sv->nsocks, &socks, &nsocks, &errors) <
	    0) {
		tls_ctx_free(&tls_ctx);
		dkim_keyring_free(&keyring);
		reload_refused(sv, &nc, errors);
		return;
	}
	/* keep the running data_dir and user: see the warning above */
	free(nc->data_dir);
	nc->data_dir = xstrdup(sv->config->data_dir);
	free(nc->mail_dir);
	nc->mail_dir = xstrdup(sv->config->mail_dir);
	if (logfile_configure(sv->logfile, nc, &errors) < 0) {
		log_warnx("log file: %s (keeping the old one)", errors);
		free(errors);
	}
	/* sockets not reused are closed here; old workers keep their own
	 * copies until they have drained */
	close_socks(sv->socks, sv->nsocks);
	sv->socks = socks;
	sv->nsocks = nsocks;
	config_free(&sv->config);
	sv->config = nc;
	alerts_set_config(sv->alerts, sv->config);
	/* running workers keep their own copy; new ones get the new one */
	tls_ctx_free(&sv->tls_ctx);
	sv->tls_ctx = tls_ctx;
	dkim_keyring_free(&sv->keyring);
	sv->keyring = keyring;
	sv->gen++;
	spawn_generation(sv);
	reload_secrets(sv);
	/* one runner at a time: the new one starts when the old is gone */
	if (sv->runner_pid > 0) {
		sv->runner_restart = true;
		kill(sv->runner_pid, SIGTERM);
	}
	for (unsigned i = 0; i < LIMITS_MAX_WORKERS; i++)
		if (sv->slot_used[i] && sv->children[i].gen != sv->gen)
			sv->children[i].draining = true;
	signal_children(sv, SIGUSR2, true);
	log_event(LOG_INFO, "daemon", "reloaded",
		  LF_STR("config", sv->config->path),
		  LF_UINT("workers", nworkers(sv->config)));
	if (sv->config->audit.enabled)
		audit_tick_reload(sv->config->data_dir, sv->config->path, "ok");
	audit_start(sv);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *sv = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		shutdown_start(sv);
		break;
	case SIGHUP:
		reload(sv);
		break;
	case SIGCHLD:
		reap(sv);
		break;
	case SIGUSR1:
		logfile_reopen(sv->logfile);
		break;
	}
}

/* ---- main ----------------------------------------------------------- */

/* The tables every process shares, made before the first fork. */
static void
make_shared(struct server *sv)
{
	if ((sv->limits = limits_create(
		     LIMITS_ENTRIES,
		     &(struct limits_grouping){
			 sv->config->limits.ipv6_prefix,
			 sv->config->limits.ipv6_wide_prefix})) == NULL)
		fatalx("cannot create the shared limits table");
	/* made once: counters outlive reloads and restarted children
	 * (each child inherits the pointer that metrics_use sets) */
	if ((sv->metrics = metrics_create()) == NULL)
		fatalx("cannot create the shared metrics");
	metrics_use(sv->metrics);
}

/* event=start, with every listening address. */
static void
log_start(const struct server *sv)
{
	char addrs[1024];
	size_t o = 0;

	addrs[0] = '\0';
	for (size_t i = 0; i < sv->nsocks && o < sizeof(addrs); i++) {
		int n = snprintf(addrs + o, sizeof(addrs) - o, "%s%s/%s",
				 i ? "," : "", sv->socks[i].listener->name,
				 sv->socks[i].addr_text);
		if (n < 0 || (size_t)n >= sizeof(addrs) - o)
			break;
		o += (size_t)n;
	}
	log_event(LOG_INFO, "daemon", "start",
		  LF_STR("version", GODWIT_VERSION), LF_INT("pid", getpid()),
		  LF_STR("hostname", sv->config->hostname),
		  LF_UINT("workers", nworkers(sv->config)),
		  LF_STR("listen", addrs));
}

int
serve_main(const char *config_path)
{
	struct server sv;
	struct event *sigs[5];
	int sigv[5] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1};
	char *errors = NULL;

	memset(&sv, 0, sizeof(sv));
	/* a SIGTERM or SIGHUP during start-up waits for the handlers */
	signals_block(NULL);
	log_init("parent", LOG_FORMAT_KV, LOG_INFO);
	if (config_load(config_path, &sv.config, &errors) < 0) {
		fprintf(stderr, "%s\n", errors);
		fprintf(stderr, "godwit: configuration not loaded\n");
		free(errors);
		return 1;
	}
	if (resolve_user(&sv, sv.config, &errors) < 0 ||
	    prepare_data_dir(&sv, sv.config, &errors) < 0 ||
	    logfile_open(sv.config, &sv.logfile, &errors) < 0 ||
	    auth_secret_load(sv.config->data_dir, &errors) < 0 ||
	    load_tls(sv.config, &sv.tls_ctx, &errors) < 0 ||
	    load_keyring(sv.config, &sv.keyring, &errors) < 0 ||
	    runner_secrets_load(&sv.config->smarthost, &sv.secrets, &errors) < 0 ||
	    bind_all(sv.config, NULL, 0, &sv.socks, &sv.nsocks, &errors) < 0) {
		fprintf(stderr, "godwit: %s\n", errors);
		log_event(LOG_ERR, "daemon", "start-failed",
			  LF_STR("msg", "see stderr"));
		free(errors);
		tls_ctx_free(&sv.tls_ctx);
		dkim_keyring_free(&sv.keyring);
		config_free(&sv.config);
		logfile_close(&sv.logfile);
		return 1;
	}
	clean_queue_tmp(sv.config);
	load_psl(sv.config);
	signal(SIGPIPE, SIG_IGN);
	make_shared(&sv);
	if ((sv.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	for (size_t i = 0; i < 5; i++) {
		sigs[i] = evsignal_new(sv.base, sigv[i], signal_cb, &sv);
		evsignal_add(sigs[i], NULL);
	}
	sv.alerts = alerts_new(sv.base, sv.config,
			       &(struct alerts_ids){sv.drop, sv.uid, sv.gid,
						    sv.groups, sv.ngroups});
	if (sv.alerts == NULL)
		fatal("cannot create the alert channel");
	sv.kill_timer = evtimer_new(sv.base, kill_cb, &sv);
	sv.respawn_timer = evtimer_new(sv.base, respawn_cb, &sv);
	logfile_attach(sv.logfile, sv.base);
	signals_unblock_all();

	log_start(&sv);
	audit_start(&sv);
	spawn_generation(&sv);
	spawn_runner(&sv);
	event_base_dispatch(sv.base);

	logfile_close(&sv.logfile);	/* the children's last lines */
	log_event(LOG_INFO, "daemon", "stopped", LF_INT("pid", getpid()));
	for (size_t i = 0; i < 5; i++)
		event_free(sigs[i]);
	event_free(sv.kill_timer);
	event_free(sv.respawn_timer);
	alerts_free(&sv.alerts);
	audit_tick_free(&sv.audit);
	event_base_free(sv.base);
	close_socks(sv.socks, sv.nsocks);
	limits_destroy(&sv.limits);
	metrics_destroy(&sv.metrics);
	tls_ctx_free(&sv.tls_ctx);
	dkim_keyring_free(&sv.keyring);
	runner_secrets_clear(&sv.secrets);
	config_free(&sv.config);
	return 0;
}
