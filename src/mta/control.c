/*
 * The control socket, both halves (control.h): the server reads one
 * line, hands the command to the runner, writes the answer and closes;
 * the client connects, writes the line and reads the answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/envelope.h"
#include "mta/control.h"

#define CTL_LINE_MAX 256
#define CTL_CLIENTS_MAX 16

static const char *const op_names[] = {"flush", "hold", "release", "delete"};

const char *
control_op_name(enum control_op op)
{
	return op_names[op];
}

char *
control_path(const char *data_dir)
{
	return xasprintf("%s/control/control.sock", data_dir);
}

int
control_parse(char *line, struct control_cmd *cmd_r)
{
	char *argv[4] = {NULL}, *save = NULL;
	int argc = 0, op = -1;
	bool bounce;

	memset(cmd_r, 0, sizeof(*cmd_r));
	for (char *t = strtok_r(line, " ", &save); t != NULL && argc < 4;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	if (argc == 1 && strcmp(argv[0], "flush") == 0) {
		cmd_r->op = CONTROL_FLUSH;
		return 0;
	}
	for (int i = CONTROL_HOLD; argc > 0 && i <= CONTROL_DELETE; i++)
		if (strcmp(argv[0], op_names[i]) == 0)
			op = i;
	bounce = argc == 3 && strcmp(argv[2], "bounce") == 0;
	if (op < 0 || argc < 2 || (argc == 3 && !bounce) || argc > 3 ||
	    (bounce && op != CONTROL_DELETE))
		return -1;
	cmd_r->op = (enum control_op)op;
	cmd_r->target = argv[1];
	cmd_r->bounce = bounce;
	if (strcmp(argv[1], "all") != 0 && !queue_id_valid(argv[1]))
		return -2;
	return 0;
}

/* ---- server ---------------------------------------------------------- */

struct control_client {
	struct control *ctl;
	struct bufferevent *bev;
	TAILQ_ENTRY(control_client) entry;
};

struct control {
	struct event_base *base;
	struct evconnlistener *l;
	char *path;
	control_fn *fn;
	void *arg;
	TAILQ_HEAD(, control_client) clients;
	unsigned nclients;
};

static void
client_reply(struct control_client *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_reply(struct control_client *cc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(cc->bev), fmt, ap);
	va_end(ap);
}

static void
client_free(struct control_client *cc)
{
	TAILQ_REMOVE(&cc->ctl->clients, cc, entry);
	cc->ctl->nclients--;
	bufferevent_free(cc->bev);
	free(cc);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	client_free(arg);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	client_free(arg);
}

/* Parses, runs and answers one command line, and logs what it did. */
static void
client_execute(struct control_client *cc, char *line)
{
	struct control_cmd cmd;
	int count;

	switch (control_parse(line, &cmd)) {
	case -1:
		client_reply(cc, "error unknown command\n");
		return;
	case -2:
		client_reply(cc, "error %s: not a queue id\n", cmd.target);
		return;
	}
	count = cc->ctl->fn(&cmd, cc->ctl->arg);
	if (cmd.op == CONTROL_FLUSH) {
		log_event(LOG_INFO, "queue", "flush", LF_INT("messages", count));
		client_reply(cc, "ok %d\n", count);
		return;
	}
	if (count == 0 && strcmp(cmd.target, "all") != 0) {
		client_reply(cc, "error %s: no such message\n", cmd.target);
		return;
	}
	log_event(LOG_INFO, "queue", control_op_name(cmd.op),
		  LF_STR("target", cmd.target), LF_INT("messages", count),
		  LF_STR_IF(cmd.bounce, "bounce", "yes"));
	client_reply(cc, "ok %d\n", count);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct control_client *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			client_free(cc);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (len > CTL_LINE_MAX)
		client_reply(cc, "error line too long\n");
	else
		client_execute(cc, line);
	free(line);
	bufferevent_setcb(bev, NULL, client_write_cb, client_event_cb, cc);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(cc);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct control *ctl = arg;
	struct control_client *cc;
	struct timeval tv = {10, 0};

	(void)l;
	(void)sa;
	(void)salen;
	if (ctl->nclients >= CTL_CLIENTS_MAX) {
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->ctl = ctl;
	cc->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(cc->bev, client_read_cb, NULL, client_event_cb, cc);
	bufferevent_set_timeouts(cc->bev, &tv, &tv);
	bufferevent_enable(cc->bev, EV_READ);
	TAILQ_INSERT_TAIL(&ctl->clients, cc, entry);
	ctl->nclients++;
}

/* A struct sockaddr_un for path; -1 if it does not fit. */
static int
unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -1;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/* The listening socket, bound owner-only; -1 (logged) if not. */
static int
listen_fd(const char *path)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	if (unix_addr(path, &sun) < 0) {
		log_warnx("control socket path too long: %s", path);
		return -1;
	}
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 0)) < 0)
		return -1;
	/* owner only: the admin commands run as root or as our user */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		log_warn("control socket %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	return fd;
}

struct control *
control_listen(struct event_base *base, const char *path, control_fn *fn,
	       void *arg)
{
	struct control *ctl;
	int fd;

	if ((fd = listen_fd(path)) < 0)
		return NULL;
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->base = base;
	ctl->path = xstrdup(path);
	ctl->fn = fn;
	ctl->arg = arg;
	TAILQ_INIT(&ctl->clients);
	ctl->l = evconnlistener_new(base, accept_cb, ctl,
				    LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (ctl->l == NULL) {
		close(fd);
		free(ctl->path);
		free(ctl);
		return NULL;
	}
	return ctl;
}

void
control_free(struct control **ctlp)
{
	struct control *ctl = *ctlp;

	if (ctl == NULL)
		return;
	evconnlistener_free(ctl->l);
	unlink(ctl->path);
	while (!TAILQ_EMPTY(&ctl->clients))
		client_free(TAILQ_FIRST(&ctl->clients));
	free(ctl->path);
	free(ctl);
	*ctlp = NULL;
}

/* ---- client ---------------------------------------------------------- */

char *
control_request(const char *path, const struct control_cmd *cmd)
{
	struct sockaddr_un sun;
	struct timeval tv = {30, 0};
	char line[CTL_LINE_MAX + 2], buf[512];
	size_t o = 0;
	ssize_t n;
	int fd;

	if (unix_addr(path, &sun) < 0) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (cmd->op == CONTROL_FLUSH)
		snprintf(line, sizeof(line), "flush\n");
	else
		snprintf(line, sizeof(line), "%s %s%s\n",
			 control_op_name(cmd->op), cmd->target,
			 cmd->bounce ? " bounce" : "");
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write_full(fd, line, strlen(line)) < 0) {
		close(fd);
		return xstrdup("error cannot talk to the daemon");
	}
	while (o + 1 < sizeof(buf) &&
	       (n = read(fd, buf + o, sizeof(buf) - 1 - o)) > 0)
		o += (size_t)n;
	close(fd);
	buf[o] = '\0';
	if (o > 0 && buf[o - 1] == '\n')
		buf[o - 1] = '\0';
	return xstrdup(o > 0 ? buf : "error no answer from the daemon");
}
