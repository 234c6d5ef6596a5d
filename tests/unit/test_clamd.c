/*
 * Unit tests for clamd: mail/clamd_reply.c (clamd's reply, from a table),
 * the socket syntax of filter/clamd.c (a table), and the INSTREAM client
 * on a libevent loop against a fake clamd in a thread on a UNIX socket.
 * The fake checks the framing (the command, chunk lengths, the final
 * zero-length chunk, the message octets in order) and answers as told:
 * the whole reply, in one-octet pieces, garbled, too long, nothing, an
 * early ERROR, or never. The integration tests (test_clamd.py) run the
 * real clamd; these give it the replies it never sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "unit.h"

#include "filter/clamd.h"
#include "lib/xalloc.h"
#include "mail/clamd_reply.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the reply ---------------------------------------------------------- */

static const struct reply_row {
	const char *in;
	size_t len;	/* 0: strlen(in) */
	enum clamd_reply_kind kind;
	const char *out;	/* name (FOUND) or text (ERROR, BAD) */
} reply_rows[] = {
	{"stream: OK", 0, CLAMD_REPLY_OK, ""},
	{"stream: OK\0", 11, CLAMD_REPLY_OK, ""},
	{"stream: OK\n", 0, CLAMD_REPLY_OK, ""},
	{"stream: OK\r\n", 0, CLAMD_REPLY_OK, ""},
	{"stream: Win.Test.EICAR_HDB-1 FOUND", 0, CLAMD_REPLY_FOUND,
	 "Win.Test.EICAR_HDB-1"},
	{"stream: Eicar-Signature FOUND\0", 30, CLAMD_REPLY_FOUND,
	 "Eicar-Signature"},
	/* ExtendedDetectionInfo */
	{"stream: Eicar-Test(44d88612fea8a8f36de82e1278abb02f:68) FOUND", 0,
	 CLAMD_REPLY_FOUND, "Eicar-Test(44d88612fea8a8f36de82e1278abb02f:68)"},
	{"stream: Heuristics.Phishing.Email.SpoofedDomain FOUND", 0,
	 CLAMD_REPLY_FOUND, "Heuristics.Phishing.Email.SpoofedDomain"},
	/* names are cleaned: no quotes, angle brackets, '%' or 8-bit */
	{"stream: a\"b<c>%d\xc3\xa9 FOUND", 0, CLAMD_REPLY_FOUND,
	 "a_b_c__d__"},
	{"stream: OK FOUND", 0, CLAMD_REPLY_FOUND, "OK"},
	{"INSTREAM size limit exceeded. ERROR", 0, CLAMD_REPLY_ERROR,
	 "INSTREAM size limit exceeded."},
	{"stream: Can't allocate memory ERROR\0", 36, CLAMD_REPLY_ERROR,
	 "stream: Can't allocate memory"},
	{"stream: bad\xff ERROR", 0, CLAMD_REPLY_ERROR, "stream: bad?"},
	{" ERROR", 0, CLAMD_REPLY_ERROR, ""},
	/* garbled */
	{"", 0, CLAMD_REPLY_BAD, ""},
	{"\0", 1, CLAMD_REPLY_BAD, ""},
	{"PONG", 0, CLAMD_REPLY_BAD, "PONG"},
	{"UNKNOWN COMMAND", 0, CLAMD_REPLY_BAD, "UNKNOWN COMMAND"},
	{"stream: ok", 0, CLAMD_REPLY_BAD, "stream: ok"},
	{"stream: OK ", 0, CLAMD_REPLY_BAD, "stream: OK "},
	{"stream:OK", 0, CLAMD_REPLY_BAD, "stream:OK"},
	{"1: stream: OK", 0, CLAMD_REPLY_BAD, "1: stream: OK"},
	{"stream: FOUND", 0, CLAMD_REPLY_BAD, "stream: FOUND"},
	{"stream:  FOUND", 0, CLAMD_REPLY_BAD, "stream:  FOUND"},
	{"stream: two words FOUND", 0, CLAMD_REPLY_BAD,
	 "stream: two words FOUND"},
	{"stream: X FOUND trailing", 0, CLAMD_REPLY_BAD,
	 "stream: X FOUND trailing"},
	{"stream: OK\0stream: X FOUND", 26, CLAMD_REPLY_BAD,
	 "stream: OK?stream: X FOUND"},
	{"stream: X\tFOUND", 0, CLAMD_REPLY_BAD, "stream: X?FOUND"},
	{"stream: X\nstream: OK", 0, CLAMD_REPLY_BAD, "stream: X?stream: OK"},
	{"stream: X FOUND\x7f", 0, CLAMD_REPLY_BAD, "stream: X FOUND?"},
};

static void
test_reply_table(void **state)
{
	struct clamd_reply r;

	(void)state;
	for (size_t i = 0; i < N(reply_rows); i++) {
		const struct reply_row *row = &reply_rows[i];
		size_t len = row->len != 0 ? row->len : strlen(row->in);
		const char *got;

		memset(&r, 0x5a, sizeof(r));
		clamd_reply_parse(row->in, len, &r);
		if (r.kind != row->kind)
			fail_msg("row %zu \"%s\": kind %s, wanted %s", i,
				 row->in, clamd_reply_kind_name(r.kind),
				 clamd_reply_kind_name(row->kind));
		got = r.kind == CLAMD_REPLY_FOUND ? r.name : r.text;
		if (r.kind != CLAMD_REPLY_OK && strcmp(got, row->out) != 0)
			fail_msg("row %zu \"%s\": \"%s\", wanted \"%s\"", i,
				 row->in, got, row->out);
	}
}

/* Long names and texts are cut at their limits, and stay terminated. */
static void
test_reply_limits(void **state)
{
	char buf[CLAMD_REPLY_MAX];
	struct clamd_reply r;
	size_t n;

	(void)state;
	memcpy(buf, "stream: ", 8);
	memset(buf + 8, 'A', 500);
	memcpy(buf + 508, " FOUND", 6);
	clamd_reply_parse(buf, 514, &r);
	assert_int_equal(r.kind, CLAMD_REPLY_FOUND);
	assert_int_equal(strlen(r.name), CLAMD_NAME_MAX);
	memset(buf, 'e', 900);
	memcpy(buf + 900, " ERROR", 6);
	clamd_reply_parse(buf, 906, &r);
	assert_int_equal(r.kind, CLAMD_REPLY_ERROR);
	assert_int_equal(strlen(r.text), CLAMD_TEXT_MAX);
	n = sizeof(buf);
	memset(buf, 'z', n);
	clamd_reply_parse(buf, n, &r);
	assert_int_equal(r.kind, CLAMD_REPLY_BAD);
	assert_int_equal(strlen(r.text), CLAMD_TEXT_MAX);
	assert_string_equal(clamd_reply_kind_name(CLAMD_REPLY_BAD), "garbled");
}

/* ---- the socket syntax -------------------------------------------------- */

static const struct sock_row {
	const char *in;
	int family;	/* 0: an error */
	const char *addr;	/* path, or the address as inet_ntop gives it */
	unsigned port;
	const char *why;
} sock_rows[] = {
	{"unix:/run/clamav/clamd.ctl", AF_UNIX, "/run/clamav/clamd.ctl", 0,
	 NULL},
	{"inet:127.0.0.1:3310", AF_INET, "127.0.0.1", 3310, NULL},
	{"inet:[::1]:3310", AF_INET6, "::1", 3310, NULL},
	{"inet:::1:3310", AF_INET6, "::1", 3310, NULL},
	{"inet:[2001:db8::5]:65535", AF_INET6, "2001:db8::5", 65535, NULL},
	{"inet:192.0.2.1:1", AF_INET, "192.0.2.1", 1, NULL},
	{"", 0, NULL, 0, "expected unix:/path or inet:host:port"},
	{"unix", 0, NULL, 0, "expected unix:/path"},
	{"UNIX:/x", 0, NULL, 0, "expected unix:/path"},
	{"tcp:127.0.0.1:3310", 0, NULL, 0, "expected unix:/path"},
	{"unix:", 0, NULL, 0, "absolute"},
	{"unix:run/clamd.ctl", 0, NULL, 0, "absolute"},
	{"unix:/a\tb", 0, NULL, 0, "control characters"},
	{"inet:", 0, NULL, 0, "expected inet:host:port"},
	{"inet:127.0.0.1", 0, NULL, 0, "expected inet:host:port"},
	{"inet:127.0.0.1:", 0, NULL, 0, "port"},
	{"inet:127.0.0.1:0", 0, NULL, 0, "port"},
	{"inet:127.0.0.1:65536", 0, NULL, 0, "port"},
	{"inet:127.0.0.1:+1", 0, NULL, 0, "port"},
	{"inet:127.0.0.1:99999999999999999999", 0, NULL, 0, "port"},
	{"inet::3310", 0, NULL, 0, "IP address or localhost"},
	{"inet:[]:3310", 0, NULL, 0, "IP address or localhost"},
	{"inet:[::1]3310", 0, NULL, 0, "[IPv6]"},
	{"inet:[::1:3310", 0, NULL, 0, "[IPv6]"},
	{"inet:localhost:3310", AF_INET, "127.0.0.1", 3310, NULL},
	{"inet6:localhost:3310", AF_INET6, "::1", 3310, NULL},
	{"inet6:[::1]:3310", AF_INET6, "::1", 3310, NULL},
	{"inet6:2001:db8::5:25", AF_INET6, "2001:db8::5", 25, NULL},
	{"inet6:127.0.0.1:3310", 0, NULL, 0, "IPv6 address or localhost"},
	{"inet6:", 0, NULL, 0, "expected inet:host:port"},
	{"inet:mail.example:3310", 0, NULL, 0, "no names"},
	{"inet:[localhost]:3310", AF_INET, "127.0.0.1", 3310, NULL},
	{"inet:[127.0.0.1]:3310", AF_INET, "127.0.0.1", 3310, NULL},
	{"inet:1.2.3:3310", 0, NULL, 0, "no names"},
	{"inet:[fe80::1%eth0]:3310", 0, NULL, 0, "no names"},
};

static void
check_sock_row(const struct sock_row *row)
{
	struct filter_addr a;
	const char *why = NULL;
	char buf[INET6_ADDRSTRLEN];
	int rc = filter_socket_parse(row->in, &a, &why);

	if (row->family == 0) {
		if (rc != -1 || why == NULL || strstr(why, row->why) == NULL)
			fail_msg("\"%s\": rc %d \"%s\", wanted \"%s\"", row->in,
				 rc, why != NULL ? why : "", row->why);
		return;
	}
	if (rc != 0)
		fail_msg("\"%s\": %s", row->in, why);
	assert_int_equal(a.ss.ss_family, row->family);
	if (row->family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)&a.ss;

		assert_string_equal(sun->sun_path, row->addr);
		return;
	}
	if (row->family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&a.ss;

		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(sin->sin_port), row->port);
		assert_int_equal(a.len, sizeof(*sin));
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&a.ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(sin6->sin6_port), row->port);
		assert_int_equal(a.len, sizeof(*sin6));
	}
	assert_string_equal(buf, row->addr);
}

static void
test_socket_table(void **state)
{
	char longpath[200] = "unix:/";
	struct filter_addr a;
	const char *why;

	(void)state;
	for (size_t i = 0; i < N(sock_rows); i++)
		check_sock_row(&sock_rows[i]);
	memset(longpath + 6, 'p', 107);
	assert_int_equal(filter_socket_parse(longpath, &a, &why), -1);
	assert_non_null(strstr(why, "too long"));
	longpath[6 + 106] = '\0';	/* 107 octets with the '/' */
	assert_int_equal(filter_socket_parse(longpath, &a, &why), 0);
}

/* ---- the client against a fake clamd ------------------------------------ */

enum fake_mode {
	FAKE_ANSWER,	/* read it all, then the reply */
	FAKE_PIECES,	/* read it all, then the reply an octet at a time */
	FAKE_EARLY,	/* after `after` octets of chunks: the reply, close */
	FAKE_SILENT,	/* read it all, answer nothing until the client goes */
	FAKE_STALL,	/* read nothing until the client goes */
};

/* What a fake clamd does: its mode, its reply (len octets) and, for
 * FAKE_EARLY, after how many octets of the message it answers. */
struct script {
	enum fake_mode mode;
	const char *reply;
	size_t len;
	size_t after;
};

struct fake {
	char path[108];
	int lfd;
	pthread_t th;
	struct script s;
	/* what it saw */
	bool cmd_ok, framing_ok, terminated, client_closed;
	size_t max_chunk;
	unsigned char *got;
	size_t got_len;
};

static int
read_full(int fd, void *buf, size_t n)
{
	size_t o = 0;

	while (o < n) {
		ssize_t r = recv(fd, (char *)buf + o, n - o, 0);

		if (r <= 0)
			return -1;
		o += (size_t)r;
	}
	return 0;
}

/* Waits (bounded) until the client closes its end, reading nothing. */
static bool
wait_hangup(int fd)
{
	struct pollfd p = {fd, POLLRDHUP, 0};

	return poll(&p, 1, 10000) == 1 && (p.revents & (POLLHUP | POLLRDHUP));
}

/* Waits (bounded) until the client closes its end. */
static bool
wait_close(int fd)
{
	char buf[4096];

	for (int i = 0; i < 1000; i++) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
	return false;
}

static void
fake_stream(struct fake *f, int fd)
{
	unsigned char len[4];
	char cmd[10];

	f->cmd_ok = read_full(fd, cmd, 10) == 0 &&
		    memcmp(cmd, "zINSTREAM\0", 10) == 0;
	f->framing_ok = f->cmd_ok;
	while (f->framing_ok) {
		size_t n;

		if (f->s.mode == FAKE_EARLY && f->got_len >= f->s.after)
			return;
		if (read_full(fd, len, 4) < 0) {
			f->framing_ok = false;
			return;
		}
		n = (size_t)len[0] << 24 | (size_t)len[1] << 16 |
		    (size_t)len[2] << 8 | len[3];
		if (n == 0) {
			f->terminated = true;
			return;
		}
		if (n > f->max_chunk)
			f->max_chunk = n;
		f->got = xreallocarray(f->got, f->got_len + n, 1);
		if (read_full(fd, f->got + f->got_len, n) < 0)
			f->framing_ok = false;
		f->got_len += n;
	}
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = {f->lfd, POLLIN, 0};
	struct timeval tv = {0, 10 * 1000};	/* wait_close's step */
	int fd;

	if (poll(&p, 1, 5000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){5, 0},
		   sizeof(struct timeval));
	if (f->s.mode != FAKE_STALL)
		fake_stream(f, fd);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (f->s.mode == FAKE_STALL) {
		f->client_closed = wait_hangup(fd);
	} else if (f->s.mode == FAKE_SILENT) {
		f->client_closed = wait_close(fd);
	} else if (f->s.mode == FAKE_PIECES) {
		for (size_t i = 0; i < f->s.len; i++)
			if (send(fd, f->s.reply + i, 1, MSG_NOSIGNAL) != 1)
				break;
	} else if (f->s.len > 0) {
		send(fd, f->s.reply, f->s.len, MSG_NOSIGNAL);
	}
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, const struct script *sc)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	f->s = *sc;
	snprintf(f->path, sizeof(f->path), "/tmp/godwit-clamd-%d.sock",
		 (int)getpid());
	unlink(f->path);
	memcpy(sun.sun_path, f->path, strlen(f->path) + 1);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

/* The message: size pseudo-random octets, or an error at fail_at. */
struct source {
	size_t size;
	size_t fail_at;		/* 0: never */
	size_t max_read;	/* the largest request seen */
};

static unsigned char
octet(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void
check_framing(const struct fake *f, const struct source *src)
{
	assert_true(f->cmd_ok);
	assert_true(f->framing_ok);
	assert_true(f->terminated);
	assert_int_equal(f->got_len, src->size);
	for (size_t i = 0; i < f->got_len; i++)
		if (f->got[i] != octet(i))
			fail_msg("octet %zu differs", i);
	assert_true(f->max_chunk <= 16 * 1024);
}

/* The fake's end; with src, the framing of what it got checked. */
static void
fake_stop(struct fake *f, const struct source *src)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
	if (src != NULL)
		check_framing(f, src);
	free(f->got);
	f->got = NULL;
}

static ssize_t
source_read(void *arg, uint64_t off, void *buf, size_t n)
{
	struct source *src = arg;
	size_t i;

	if (n > src->max_read)
		src->max_read = n;
	if (src->fail_at != 0 && off >= src->fail_at) {
		errno = EIO;
		return -1;
	}
	for (i = 0; i < n && off + i < src->size; i++)
		((unsigned char *)buf)[i] = octet((size_t)off + i);
	return (ssize_t)i;
}

struct outcome {
	bool done;
	struct clamd_result r;
};

static void
on_done(const struct clamd_result *r, void *arg)
{
	struct outcome *o = arg;

	assert_false(o->done);
	o->done = true;
	o->r = *r;
}

/* One scan of src by the clamd at f (or at spec), to its end. */
static void
scan(struct fake *f, const char *spec, uint64_t timeout, struct source *src,
     struct outcome *o)
{
	struct event_base *base = event_base_new();
	struct clamd_config c = {.enabled = true, .timeout = timeout};
	const char *why;
	char buf[200];
	struct clamd_scan *sc;

	if (spec == NULL) {
		snprintf(buf, sizeof(buf), "unix:%s", f->path);
		spec = buf;
	}
	assert_int_equal(filter_socket_parse(spec, &c.addr, &why), 0);
	memset(o, 0, sizeof(*o));
	sc = clamd_scan_start(base, &c, source_read, src, on_done, o);
	assert_non_null(sc);
	assert_false(o->done);	/* never before the start returns */
	event_base_dispatch(base);	/* ends when the scan's events do */
	assert_true(o->done);
	event_base_free(base);
}

/* A fake clamd playing sc, one scan of src against it (timeout in
 * seconds), the fake's end: o the outcome, f what the fake saw; with
 * framing, what it got checked against src. */
static void
fake_scan(struct fake *f, struct script sc, uint64_t timeout,
	  struct source *src, bool framing, struct outcome *o)
{
	fake_start(f, &sc);
	scan(f, NULL, timeout, src, o);
	fake_stop(f, framing ? src : NULL);
}

static void
test_clean_and_framing(void **state)
{
	static const char ok[] = "stream: OK";	/* with its NUL */
	struct source src = {.size = 1000 * 1000 + 7};
	struct outcome o;
	struct fake f;

	(void)state;
	fake_scan(&f, (struct script){FAKE_ANSWER, ok, sizeof(ok), 0}, 10,
		  &src, true, &o);
	assert_int_equal(o.r.status, CLAMD_CLEAN);
	assert_int_equal(o.r.sent, src.size);
	/* an empty message is one zero-length chunk */
	src = (struct source){.size = 0};
	fake_scan(&f, (struct script){FAKE_ANSWER, ok, sizeof(ok), 0}, 10,
		  &src, true, &o);
	assert_int_equal(o.r.status, CLAMD_CLEAN);
}

static void
test_virus_in_pieces(void **state)
{
	static const char found[] = "stream: Win.Test.EICAR_HDB-1 FOUND";
	struct source src = {.size = 70000};
	struct outcome o;
	struct fake f;

	(void)state;
	fake_scan(&f, (struct script){FAKE_PIECES, found, sizeof(found), 0},
		  10, &src, true, &o);
	assert_int_equal(o.r.status, CLAMD_VIRUS);
	assert_string_equal(o.r.name, "Win.Test.EICAR_HDB-1");
}

/* A reply the connection's end terminates is taken as it is. */
static void
test_reply_without_nul(void **state)
{
	struct source src = {.size = 10};
	struct outcome o;
	struct fake f;

	(void)state;
	fake_scan(&f, (struct script){FAKE_ANSWER, "stream: X FOUND", 15, 0},
		  10, &src, false, &o);
	assert_int_equal(o.r.status, CLAMD_VIRUS);
	assert_string_equal(o.r.name, "X");
}

#define EARLY (100 * 1000)	/* FAKE_EARLY's answer, into the message */

static const struct fail_row {
	struct script sc;
	const char *error;	/* in the result's error */
} fail_rows[] = {
	{{FAKE_ANSWER, "hello", 6, 0}, "garbled reply: \"hello\""},
	{{FAKE_ANSWER, "stream: OK\nstream: X FOUND", 27, 0}, "garbled"},
	{{FAKE_ANSWER, "", 0, 0}, "closed without a reply"},
	{{FAKE_ANSWER, "INSTREAM size limit exceeded. ERROR", 36, 0},
	 "clamd: INSTREAM size limit exceeded. ERROR"},
	{{FAKE_PIECES, "stream: Can't allocate memory ERROR", 36, 0},
	 "clamd: stream: Can't allocate memory ERROR"},
	{{FAKE_EARLY, "INSTREAM size limit exceeded. ERROR", 36, EARLY},
	 "INSTREAM size limit exceeded"},
	{{FAKE_EARLY, "stream: OK", 11, EARLY}, "OK before the end"},
};

static void
test_failures(void **state)
{
	struct source src;
	struct outcome o;
	struct fake f;

	(void)state;
	for (size_t i = 0; i < N(fail_rows); i++) {
		const struct fail_row *row = &fail_rows[i];

		src = (struct source){.size = 300 * 1000};
		fake_scan(&f, row->sc, 10, &src, false, &o);
		if (o.r.status != CLAMD_FAILED ||
		    strstr(o.r.error, row->error) == NULL)
			fail_msg("row %zu: %s \"%s\", wanted \"%s\"", i,
				 clamd_status_name(o.r.status), o.r.error,
				 row->error);
	}
}

/* Longer than CLAMD_REPLY_MAX without its NUL: garbled, not kept. */
static void
test_reply_too_long(void **state)
{
	char *big = xmalloc(5000);
	struct source src = {.size = 100};
	struct outcome o;
	struct fake f;

	(void)state;
	memset(big, 'A', 5000);
	fake_scan(&f, (struct script){FAKE_ANSWER, big, 5000, 0}, 10, &src,
		  false, &o);
	free(big);
	assert_int_equal(o.r.status, CLAMD_FAILED);
	assert_non_null(strstr(o.r.error, "longer than"));
}

/* Silent after the message, or not reading at all (the window fills and
 * the source is not read further): the timer ends both. */
static void
test_timeouts(void **state)
{
	struct source src = {.size = 2000};
	struct outcome o;
	struct fake f;

	(void)state;
	fake_scan(&f, (struct script){FAKE_SILENT}, 1, &src, false, &o);
	assert_int_equal(o.r.status, CLAMD_FAILED);
	assert_string_equal(o.r.error,
			    "timed out after 1s waiting for the reply");
	assert_true(o.r.ms >= 900);
	assert_true(f.client_closed);

	src = (struct source){.size = 64 * 1000 * 1000};
	fake_scan(&f, (struct script){FAKE_STALL}, 1, &src, false, &o);
	assert_int_equal(o.r.status, CLAMD_FAILED);
	assert_string_equal(o.r.error,
			    "timed out after 1s sending the message");
	assert_true(f.client_closed);
	/* back-pressure: what was read is what the socket took, plus the
	 * window; nowhere near the 64 MB offered */
	assert_true(o.r.sent < 16 * 1000 * 1000);
	assert_true(src.max_read <= 16 * 1024);
}

static void
test_connect_failures(void **state)
{
	struct source src = {.size = 10};
	struct outcome o;
	int fd;

	(void)state;
	scan(NULL, "unix:/nonexistent/godwit-clamd.sock", 5, &src, &o);
	assert_int_equal(o.r.status, CLAMD_FAILED);
	assert_non_null(strstr(o.r.error, "connecting: "));
	/* a port nothing listens on: bound, never listened */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t len = sizeof(sin);
		char spec[64];

		sin.sin_addr.s_addr = htonl(0x7f000001);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)),
				 0);
		getsockname(fd, (struct sockaddr *)&sin, &len);
		snprintf(spec, sizeof(spec), "inet:127.0.0.1:%u",
			 ntohs(sin.sin_port));
		scan(NULL, spec, 5, &src, &o);
	}
	close(fd);
	assert_int_equal(o.r.status, CLAMD_FAILED);
	assert_string_equal(o.r.error, "connecting: Connection refused");
}

static void
test_source_error(void **state)
{
	struct source src = {.size = 500 * 1000, .fail_at = 1};
	struct outcome o;
	struct fake f;

	(void)state;
	fake_scan(&f, (struct script){FAKE_SILENT}, 10, &src, false, &o);
	assert_int_equal(o.r.status, CLAMD_LOCAL);
	assert_string_equal(o.r.error,
			    "reading the message: Input/output error");
	assert_true(f.client_closed);
}

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct clamd_config c = {.enabled = true, .timeout = 10};
	struct source src = {.size = 10};
	struct clamd_scan *sc;
	struct outcome o = {0};
	const char *why;
	char spec[200];
	struct fake f;

	(void)state;
	fake_start(&f, &(struct script){FAKE_SILENT});
	snprintf(spec, sizeof(spec), "unix:%s", f.path);
	assert_int_equal(filter_socket_parse(spec, &c.addr, &why), 0);
	sc = clamd_scan_start(base, &c, source_read, &src, on_done, &o);
	event_base_loop(base, EVLOOP_ONCE);
	clamd_scan_cancel(&sc);
	assert_null(sc);
	clamd_scan_cancel(&sc);
	event_base_dispatch(base);	/* nothing left */
	fake_stop(&f, NULL);
	assert_false(o.done);
	assert_true(f.client_closed);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_table),
	    cmocka_unit_test(test_reply_limits),
	    cmocka_unit_test(test_socket_table),
	    cmocka_unit_test(test_clean_and_framing),
	    cmocka_unit_test(test_virus_in_pieces),
	    cmocka_unit_test(test_reply_without_nul),
	    cmocka_unit_test(test_failures),
	    cmocka_unit_test(test_reply_too_long),
	    cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_connect_failures),
	    cmocka_unit_test(test_source_error),
	    cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
