/*
 * Raising alerts and carrying them to the parent (net/alert.h): the
 * kinds' names, the subject's cleaning, the datagram channel.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "net/alert.h"

static const struct {
	const char *name;
	const char *text;
} kinds[ALERT_KIND_END] = {
    [ALERT_AUTH_FAILURES_IP] = {"auth-failures-ip",
				"A burst of failed logins from one address "
				"(password guessing)."},
    [ALERT_AUTH_FAILURES_ACCOUNT] = {"auth-failures-account",
				     "A burst of failed logins on one "
				     "account, from one or many addresses."},
    [ALERT_AUTH_FAILURES_SPREAD] = {"auth-failures-spread",
				    "Failed logins spread across many "
				    "addresses (a distributed guess)."},
    [ALERT_SENDING_LIMIT] = {"sending-limit",
			     "An account went over its sending limit: its "
			     "queued mail is held (godwit queue list). A "
			     "stolen password is the usual cause: change it, "
			     "then release or delete the held mail."},
    [ALERT_QUEUE_SIZE] = {"queue-size",
			  "The outbound queue is larger than "
			  "alerts.queue_size (godwit queue list)."},
    [ALERT_BOUNCES] = {"bounces",
		       "More recipients bounced in the last hour than "
		       "alerts.bounces_per_hour."},
    [ALERT_CERT_EXPIRY] = {"cert-expiry",
			   "A TLS certificate expires soon (or has "
			   "expired): renew it and reload (SIGHUP)."},
    [ALERT_CRASH_LOOP] = {"crash-loop",
			  "Worker processes keep dying: see the log's "
			  "worker-died lines."},
    [ALERT_REDIS_DOWN] = {"redis-down",
			  "Redis cannot be reached: limits, bans and "
			  "greylisting are per node until it is back; see "
			  "the log's fac=redis lines."},
};

const char *
alert_kind_name(uint32_t kind)
{
	if (kind == 0 || kind >= ALERT_KIND_END)
		return NULL;
	return kinds[kind].name;
}

const char *
alert_kind_text(uint32_t kind)
{
	if (kind == 0 || kind >= ALERT_KIND_END)
		return "";
	return kinds[kind].text;
}

static bool
subject_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' &&
	       c != '>';
}

void
alert_init(struct alert *a, enum alert_kind kind, const char *subject,
	   uint64_t count, uint64_t limit, uint64_t window_s)
{
	size_t i;

	memset(a, 0, sizeof(*a));
	a->version = ALERT_VERSION;
	a->kind = (uint32_t)kind;
	if (subject == NULL || subject[0] == '\0')
		subject = "-";
	for (i = 0; subject[i] != '\0' && i < sizeof(a->subject) - 1; i++)
		a->subject[i] = subject_char_ok((unsigned char)subject[i])
				    ? subject[i]
				    : '?';
	a->count = count;
	a->limit = limit;
	a->window_s = window_s;
}

bool
alert_check(const struct alert *a)
{
	size_t i;

	if (a->version != ALERT_VERSION || alert_kind_name(a->kind) == NULL)
		return false;
	for (i = 0; i < sizeof(a->subject) && a->subject[i] != '\0'; i++)
		if (!subject_char_ok((unsigned char)a->subject[i]))
			return false;
	return i > 0 && i < sizeof(a->subject);
}

static int sink = -1;
static void (*sink_fn)(const struct alert *a, void *arg);
static void *sink_arg;

void
alert_sink_fd(int fd)
{
	sink = fd;
	sink_fn = NULL;
}

void
alert_sink_fn(void (*fn)(const struct alert *a, void *arg), void *arg)
{
	sink = -1;
	sink_fn = fn;
	sink_arg = arg;
}

void
alert_raise(const struct alert *a)
{
	ssize_t n;

	if (sink_fn != NULL) {
		sink_fn(a, sink_arg);
		return;
	}
	do
		n = sink >= 0 ? send(sink, a, sizeof(*a), MSG_DONTWAIT) : -1;
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(*a))
		return;
	/* the parent is behind (or gone): the line at least is kept */
	log_event(LOG_WARNING, "alert", "alert", LF_STR("kind",
		  alert_kind_name(a->kind)), LF_STR("subject", a->subject),
		  LF_UINT("count", a->count), LF_UINT("max", a->limit),
		  LF_STR("notified", "no"),
		  LF_STR("reason", "parent-unreachable"));
}

void
alert_raise_kind(enum alert_kind kind, const char *subject, uint64_t count,
		 uint64_t limit, uint64_t window_s)
{
	struct alert a;

	alert_init(&a, kind, subject, count, limit, window_s);
	alert_raise(&a);
}

int
alert_channel_new(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       fds) < 0)
		return -1;
	return 0;
}

int
alert_receive(int fd, struct alert *a_r)
{
	ssize_t n;

	do
		n = recv(fd, a_r, sizeof(*a_r), MSG_DONTWAIT | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (n != (ssize_t)sizeof(*a_r) || !alert_check(a_r))
		return -1;
	return 1;
}
