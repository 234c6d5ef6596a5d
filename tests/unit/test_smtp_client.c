/*
 * Tests for the outbound SMTP client (smtp_client.c): the reply parser
 * and the EHLO keyword parser table by table, then the whole state
 * machine against a scripted server on 127.0.0.1 inside one event loop:
 * the script says which lines (or pipelined groups, DATA content, BDAT
 * chunks) the client must send and what the server answers.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "unit.h"
#include "mta/smtp_client.h"
#include "mail/smtp_parse.h"

/* ---- reply parser ------------------------------------------------------ */

struct reply_case {
	const char *name;
	const char *lines[6];	/* fed in order; NULL ends */
	int ret;		/* of the last line fed */
	int code;
	const char *enh;
	const char *text;
};

static const struct reply_case reply_cases[] = {
	{"single", {"250 ok"}, 1, 250, "", "ok"},
	{"code only", {"250"}, 1, 250, "", ""},
	{"code and space", {"250 "}, 1, 250, "", ""},
	{"enhanced", {"550 5.1.1 no such user"}, 1, 550, "5.1.1",
	 "no such user"},
	{"enhanced alone", {"250 2.0.0"}, 1, 250, "2.0.0", ""},
	{"enhanced wrong class", {"550 4.1.1 x"}, 1, 550, "", "4.1.1 x"},
	{"enhanced 3-digit parts", {"451 4.123.456 busy"}, 1, 451,
	 "4.123.456", "busy"},
	{"enhanced 4-digit part", {"451 4.1234.5 busy"}, 1, 451, "",
	 "4.1234.5 busy"},
	{"enhanced glued", {"250 2.0.0x"}, 1, 250, "", "2.0.0x"},
	{"multi-line", {"250-a", "250-b", "250 c"}, 1, 250, "", "a b c"},
	{"multi enh repeated", {"550-5.7.1 a", "550 5.7.1 b"}, 1, 550,
	 "5.7.1", "a b"},
	{"multi enh differs later", {"550-5.7.1 a", "550 5.7.2 b"}, 1, 550,
	 "5.7.1", "a 5.7.2 b"},
	{"multi empty line", {"250-a", "250-", "250 b"}, 1, 250, "", "a b"},
	{"continues", {"250-a"}, 0, 0, NULL, NULL},
	{"code changes", {"250-a", "251 b"}, -1, 0, NULL, NULL},
	{"bad separator", {"250+ok"}, -1, 0, NULL, NULL},
	{"bad separator later", {"250-a", "250_b"}, -1, 0, NULL, NULL},
	{"too short", {"25"}, -1, 0, NULL, NULL},
	{"empty", {""}, -1, 0, NULL, NULL},
	{"letters", {"2x0 ok"}, -1, 0, NULL, NULL},
	{"1xx", {"150 ok"}, -1, 0, NULL, NULL},
	{"6xx", {"600 ok"}, -1, 0, NULL, NULL},
	{"0xx", {"099 ok"}, -1, 0, NULL, NULL},
	{"control chars", {"250 a\tb\x01" "c\x7f\xff"}, 1, 250, "",
	 "a?b?c??"},
	{"354", {"354 go ahead"}, 1, 354, "", "go ahead"},
};

static void
test_reply_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]);
	     i++) {
		const struct reply_case *t = &reply_cases[i];
		struct smtp_reply_parser p;
		struct smtp_reply r;
		int ret = 0;

		smtp_reply_parser_init(&p);
		memset(&r, 0, sizeof(r));
		for (size_t k = 0; k < 6 && t->lines[k] != NULL; k++) {
			ret = smtp_reply_parser_line(&p, t->lines[k],
						     strlen(t->lines[k]), &r);
			if (t->lines[k + 1] != NULL && ret != 0)
				break;
		}
		if (ret != t->ret)
			fail_msg("%s: ret %d, want %d", t->name, ret, t->ret);
		if (ret != 1)
			continue;
		if (r.code != t->code || strcmp(r.enh, t->enh) != 0 ||
		    strcmp(r.text, t->text) != 0)
			fail_msg("%s: got %d [%s] [%s]", t->name, r.code, r.enh,
				 r.text);
	}
}

/* Lines are bounded, text is cut, the parser starts over after a reply
 * or an error. */
static void
test_reply_limits(void **state)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	char line[SMTP_CLIENT_LINE_MAX];
	unsigned i;

	(void)state;
	smtp_reply_parser_init(&p);
	for (i = 0; i < SMTP_CLIENT_REPLY_LINES - 1; i++)
		assert_int_equal(smtp_reply_parser_line(&p, "250-x", 5, &r), 0);
	assert_int_equal(smtp_reply_parser_line(&p, "250 y", 5, &r), 1);
	assert_int_equal(r.code, 250);
	assert_int_equal(strlen(r.text), 2 * SMTP_CLIENT_REPLY_LINES - 1);

	smtp_reply_parser_init(&p);
	for (i = 0; i < SMTP_CLIENT_REPLY_LINES; i++)
		assert_int_equal(smtp_reply_parser_line(&p, "250-x", 5, &r), 0);
	assert_int_equal(smtp_reply_parser_line(&p, "250 y", 5, &r), -1);
	/* and it starts over */
	assert_int_equal(smtp_reply_parser_line(&p, "221 bye", 7, &r), 1);
	assert_string_equal(r.text, "bye");

	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	assert_int_equal(smtp_reply_parser_line(&p, line, sizeof(line), &r), 1);
	assert_int_equal(strlen(r.text), SMTP_CLIENT_TEXT_MAX - 1);
	line[3] = '-';
	for (i = 0; i < 3; i++)
		assert_int_equal(smtp_reply_parser_line(&p, line, sizeof(line),
							&r), 0);
	assert_int_equal(smtp_reply_parser_line(&p, "250 end", 7, &r), 1);
	assert_int_equal(strlen(r.text), SMTP_CLIENT_TEXT_MAX - 1);
	/* a NUL inside the line is a control character */
	assert_int_equal(smtp_reply_parser_line(&p, "250 a\0b", 7, &r), 1);
	assert_string_equal(r.text, "a?b");
}

/* ---- EHLO keywords ----------------------------------------------------- */

struct ehlo_case {
	const char *line;
	unsigned ext;
	uint64_t size;
};

static const struct ehlo_case ehlo_cases[] = {
	{"PIPELINING", SMTP_EXT_PIPELINING, 0},
	{"pipelining", SMTP_EXT_PIPELINING, 0},
	{"PIPELININGX", 0, 0},
	{"PIPE", 0, 0},
	{"SIZE", SMTP_EXT_SIZE, 0},
	{"SIZE 1000", SMTP_EXT_SIZE, 1000},
	{"size   52428800  ", SMTP_EXT_SIZE, 52428800},
	{"SIZE 0", SMTP_EXT_SIZE, 0},
	{"SIZE 18446744073709551615", SMTP_EXT_SIZE, UINT64_MAX},
	{"SIZE 18446744073709551616", SMTP_EXT_SIZE, 0},
	{"SIZE 99999999999999999999999", SMTP_EXT_SIZE, 0},
	{"SIZE 10M", SMTP_EXT_SIZE, 0},
	{"SIZE -5", SMTP_EXT_SIZE, 0},
	{"SIZE 1 2", SMTP_EXT_SIZE, 0},
	{"SIZE=100", 0, 0},
	{"8BITMIME", SMTP_EXT_8BITMIME, 0},
	{"SMTPUTF8", SMTP_EXT_SMTPUTF8, 0},
	{"Chunking", SMTP_EXT_CHUNKING, 0},
	{"BINARYMIME", SMTP_EXT_BINARYMIME, 0},
	{"STARTTLS", SMTP_EXT_STARTTLS, 0},
	{"DSN", SMTP_EXT_DSN, 0},
	{"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES, 0},
	{"AUTH PLAIN LOGIN", SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN, 0},
	{"AUTH CRAM-MD5 login", SMTP_EXT_AUTH_LOGIN, 0},
	{"auth   plain", SMTP_EXT_AUTH_PLAIN, 0},
	{"AUTH=LOGIN PLAIN", SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN, 0},
	{"AUTH PLAINX", 0, 0},
	{"AUTH", 0, 0},
	{"XCLIENT ADDR", 0, 0},
	{"", 0, 0},
	{" PIPELINING", 0, 0},
};

static void
test_ehlo_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ehlo_cases) / sizeof(ehlo_cases[0]);
	     i++) {
		const struct ehlo_case *t = &ehlo_cases[i];
		struct smtp_ehlo e = {0, 0};

		smtp_ehlo_line(&e, t->line, strlen(t->line));
		if (e.ext != t->ext || e.size != t->size)
			fail_msg("[%s]: ext %#x size %llu", t->line, e.ext,
				 (unsigned long long)e.size);
	}
}

/* ---- the scripted server ----------------------------------------------- */

enum step_kind {
	S_END,
	S_SEND,		/* write s */
	S_EXPECT,	/* one line equal to s, and nothing after it yet */
	S_GROUP,	/* these octets (a pipelined group) */
	S_DATA,		/* DATA content up to and including ".\r\n" */
	S_BDAT,		/* chunks until LAST, each answered with s */
	S_BDAT1,	/* one chunk (not LAST), answered with s */
	S_CLOSE,
	S_HANG,		/* answer nothing more */
};

struct step {
	enum step_kind k;
	const char *s;
};

#define STEPS(...) ((const struct step[]){__VA_ARGS__, {S_END, NULL}})
#define SEND(x) {S_SEND, x}
#define EXPECT(x) {S_EXPECT, x}
#define GROUP(x) {S_GROUP, x}

struct server {
	struct event_base *base;
	int lfd;
	struct event *accept_ev;
	struct bufferevent *bev;
	const struct step *steps;
	size_t i;
	struct evbuffer *cap;	/* DATA/BDAT content as received */
	size_t chunks[64], nchunks;
	bool hdr;		/* BDAT header read */
	size_t want;
	bool last;
	bool gone;
	char why[512];		/* first script failure */
};

struct driver {
	struct event_base *base;
	struct server srv;
	struct smtp_client *c;
	struct smtp_client_params params;
	struct smtp_client_msg msg;
	struct smtp_client_rcpt rcpts[3];
	int ntxn, ntxn_done;
	bool ready_called, ready_ok;
	struct smtp_reply ready_reply;
	bool done_ok;
	bool client_gone;
};

static void
maybe_end(struct driver *d)
{
	struct timeval tv = {0, 100 * 1000};

	if (d->srv.gone && d->client_gone)
		event_base_loopexit(d->base, &tv);
}

static void
server_gone(struct driver *d)
{
	if (d->srv.bev != NULL) {
		bufferevent_free(d->srv.bev);
		d->srv.bev = NULL;
	}
	d->srv.gone = true;
	maybe_end(d);
}

static void
server_fail(struct driver *d, const char *what, const char *got)
{
	if (d->srv.why[0] == '\0')
		snprintf(d->srv.why, sizeof(d->srv.why), "step %zu: %s [%s]",
			 d->srv.i, what, got);
	server_gone(d);
}

/* Runs the script as far as the input allows. */
static void
server_run(struct driver *d)
{
	struct server *s = &d->srv;

	while (s->bev != NULL && s->steps[s->i].k != S_END) {
		const struct step *st = &s->steps[s->i];
		struct evbuffer *in = bufferevent_get_input(s->bev);
		char *line;
		size_t n;

		switch (st->k) {
		case S_SEND:
			bufferevent_write(s->bev, st->s, strlen(st->s));
			s->i++;
			break;
		case S_EXPECT:
			line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL)
				return;
			if (strcmp(line, st->s) != 0) {
				server_fail(d, "unexpected line", line);
			} else if (evbuffer_get_length(in) > 0) {
				server_fail(d, "pipelined without PIPELINING",
					    line);
			}
			free(line);
			s->i++;
			break;
		case S_GROUP:
			n = strlen(st->s);
			if (evbuffer_get_length(in) < n)
				return;
			line = (char *)evbuffer_pullup(in, (ssize_t)n);
			if (memcmp(line, st->s, n) != 0) {
				char got[300];

				snprintf(got, sizeof(got), "%.*s",
					 (int)(n < 299 ? n : 299), line);
				server_fail(d, "group differs", got);
				return;
			}
			evbuffer_drain(in, n);
			s->i++;
			break;
		case S_DATA:
			line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL)
				return;
			evbuffer_add(s->cap, line, n);
			evbuffer_add(s->cap, "\r\n", 2);
			if (strcmp(line, ".") == 0)
				s->i++;
			free(line);
			break;
		case S_BDAT:
		case S_BDAT1:
			if (!s->hdr) {
				char last[8] = "";
				int k;

				line = evbuffer_readln(in, &n,
						       EVBUFFER_EOL_CRLF_STRICT);
				if (line == NULL)
					return;
				k = sscanf(line, "BDAT %zu %7s", &s->want, last);
				if (k < 1 || (k == 2 && strcmp(last, "LAST") != 0)) {
					server_fail(d, "bad BDAT", line);
					free(line);
					return;
				}
				free(line);
				s->last = k == 2;
				s->hdr = true;
			}
			if (evbuffer_get_length(in) < s->want)
				return;
			evbuffer_remove_buffer(in, s->cap, s->want);
			if (s->nchunks < 64)
				s->chunks[s->nchunks++] = s->want;
			s->hdr = false;
			bufferevent_write(s->bev, st->s, strlen(st->s));
			if (st->k == S_BDAT1 && s->last) {
				server_fail(d, "unexpected LAST", "");
				return;
			}
			if (st->k == S_BDAT1 || s->last)
				s->i++;
			break;
		case S_CLOSE:
			s->i++;
			server_gone(d);
			return;
		case S_HANG:
		case S_END:
			return;
		}
	}
}

static void
server_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	server_run(arg);
}

static void
server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	server_gone(arg);
}

static void
server_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)what;
	assert_true(cfd >= 0);
	event_del(d->srv.accept_ev);
	d->srv.bev = bufferevent_socket_new(d->base, cfd,
					    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(d->srv.bev, server_read_cb, NULL, server_event_cb,
			  d);
	bufferevent_enable(d->srv.bev, EV_READ | EV_WRITE);
	server_run(d);
}

/* ---- the client side --------------------------------------------------- */

static void done_cb(struct smtp_client *c, bool ok, void *arg);

static void
ready_cb(struct smtp_client *c, bool ok, const struct smtp_reply *r, void *arg)
{
	struct driver *d = arg;

	assert_ptr_equal(c, d->c);
	d->ready_called = true;
	d->ready_ok = ok;
	d->ready_reply = *r;
	if (ok) {
		smtp_client_send(c, &d->msg, done_cb, d);
		return;
	}
	smtp_client_free(&d->c);	/* from inside the callback */
	d->client_gone = true;
	maybe_end(d);
}

static void
done_cb(struct smtp_client *c, bool ok, void *arg)
{
	struct driver *d = arg;

	assert_ptr_equal(c, d->c);
	d->done_ok = ok;
	d->ntxn_done++;
	if (ok && d->ntxn_done < d->ntxn) {
		smtp_client_send(c, &d->msg, done_cb, d);
		return;
	}
	if (ok)
		smtp_client_quit(c);
	else
		smtp_client_free(&c);
	d->c = NULL;
	d->client_gone = true;
	maybe_end(d);
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver *d = arg;

	(void)fd;
	(void)what;
	if (d->srv.why[0] == '\0')
		snprintf(d->srv.why, sizeof(d->srv.why),
			 "watchdog: step %zu, client %s", d->srv.i,
			 d->client_gone ? "gone" : "alive");
	event_base_loopbreak(d->base);
}

/* What the peer must receive: CR LF line ends, stuffing for DATA, the
 * final CR LF added; written apart from pop3_stream.c on purpose. */
static struct evbuffer *
expected_content(const char *in, size_t len, bool data)
{
	struct evbuffer *b = evbuffer_new();
	bool bol = true;

	for (size_t i = 0; i < len; i++) {
		if (data && bol && in[i] == '.')
			evbuffer_add(b, ".", 1);
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			evbuffer_add(b, "\r", 1);
		evbuffer_add(b, &in[i], 1);
		bol = in[i] == '\n';
	}
	if (!bol)
		evbuffer_add(b, "\r\n", 2);
	if (data)
		evbuffer_add(b, ".\r\n", 3);
	return b;
}

#define BIG ((const char *)1)	/* content: big_content() */

struct e2e_case {
	const char *name;
	const struct step *steps;
	const char *content;	/* BIG: generated, big_len octets */
	size_t big_len;
	const char *rcpts[3];
	int ntxn;		/* 0: 1 */
	enum tls_policy tls;
	const char *auth_user;
	bool smtputf8;
	bool dsn;		/* NOTIFY/ORCPT/RET/ENVID on the message */
	bool refused_port;	/* connect to a port nobody listens on */
	bool ready_ok;
	const char *ready_enh;	/* when !ready_ok */
	bool done_ok;
	int codes[3];		/* final reply per recipient */
	const char *enh0;	/* recipient 0's enhanced code */
	const char *text_has;	/* in recipient 0's text or ready's */
	int capture;		/* 0: no check; 'D': DATA; 'B': BDAT */
	size_t nchunks;		/* BDAT chunks expected (0: computed) */
};

#define GREET SEND("220 mx.test ESMTP\r\n"), EXPECT("EHLO client.test")
#define EHLO_BASIC "250-mx.test\r\n250 8BITMIME\r\n"
#define EHLO_PIPE "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
		  "250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_CHUNK "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
#define EHLO_CHUNK1 "250-mx.test\r\n250 CHUNKING\r\n"
#define QUIT EXPECT("QUIT"), SEND("221 bye\r\n"), {S_CLOSE, NULL}
#define SMALL "Subject: x\n\n.foo\nbar\r\n..\n.\nlast"
#define MAIL_A "MAIL FROM:<a@a.test>"
#define RCPT_B "RCPT TO:<b@b.test>"
#define RCPT_C "RCPT TO:<c@b.test>"

static const struct e2e_case e2e_cases[] = {
	{"pipelined, one of two rejected",
	 STEPS(GREET, SEND(EHLO_PIPE),
	       GROUP(MAIL_A "\r\n" RCPT_B "\r\n" RCPT_C "\r\nDATA\r\n"),
	       SEND("250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		    "550 5.1.1 no such user\r\n354 go\r\n"),
	       {S_DATA, NULL}, SEND("250 2.0.0 queued as X\r\n"), QUIT),
	 SMALL, 0, {"b@b.test", "c@b.test"}, 0, TLS_POLICY_NONE, NULL, false,
	 false, false, true, NULL, true, {250, 550}, "2.0.0", "queued as X",
	 'D', 0},
	{"not pipelined, stuffing",
	 STEPS(GREET, SEND(EHLO_BASIC), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("250 ok\r\n"), EXPECT("DATA"),
	       SEND("354 go\r\n"), {S_DATA, NULL}, SEND("250 done\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_MAY, NULL, false, false, false,
	 true, NULL, true, {250}, "", "done", 'D', 0},
	{"big DATA streamed",
	 STEPS(GREET, SEND(EHLO_PIPE),
	       GROUP(MAIL_A "\r\n" RCPT_B "\r\nDATA\r\n"),
	       SEND("250 ok\r\n250 ok\r\n354 go\r\n"), {S_DATA, NULL},
	       SEND("250 ok\r\n"), QUIT),
	 BIG, 700000, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {250}, "", "ok", 'D', 0},
	{"all rejected, pipelined, DATA refused",
	 STEPS(GREET, SEND(EHLO_PIPE),
	       GROUP(MAIL_A "\r\n" RCPT_B "\r\nDATA\r\n"),
	       SEND("250 ok\r\n450 4.2.0 later\r\n554 5.5.1 no rcpts\r\n"),
	       QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {450}, "4.2.0", "later", 0, 0},
	{"all rejected, 354 anyway, then RSET",
	 STEPS(GREET, SEND(EHLO_PIPE),
	       GROUP(MAIL_A "\r\n" RCPT_B "\r\nDATA\r\n"),
	       SEND("250 ok\r\n550 no\r\n354 go\r\n"), EXPECT("."),
	       SEND("554 no valid recipients\r\n"),
	       GROUP("RSET\r\n" MAIL_A "\r\n" RCPT_B "\r\nDATA\r\n"),
	       SEND("250 ok\r\n250 ok\r\n550 still no\r\n354 go\r\n"),
	       EXPECT("."), SEND("554 no\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 2, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {550}, "", "still no", 0, 0},
	{"all rejected, not pipelined",
	 STEPS(GREET, SEND(EHLO_BASIC), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("550 5.1.1 unknown\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {550}, "5.1.1", "unknown", 0, 0},
	{"MAIL refused",
	 STEPS(GREET, SEND(EHLO_BASIC), EXPECT(MAIL_A),
	       SEND("451 4.3.0 try later\r\n"), QUIT),
	 SMALL, 0, {"b@b.test", "c@b.test"}, 0, TLS_POLICY_NONE, NULL, false,
	 false, false, true, NULL, true, {451, 451}, "4.3.0", "try later", 0,
	 0},
	{"two transactions",
	 STEPS(GREET, SEND(EHLO_PIPE),
	       GROUP(MAIL_A "\r\n" RCPT_B "\r\nDATA\r\n"),
	       SEND("250 ok\r\n250 ok\r\n354 go\r\n"), {S_DATA, NULL},
	       SEND("250 first\r\n"),
	       GROUP(MAIL_A "\r\n" RCPT_B "\r\nDATA\r\n"),
	       SEND("250 ok\r\n250 ok\r\n354 go\r\n"), {S_DATA, NULL},
	       SEND("250 second\r\n"), QUIT),
	 "a\n", 0, {"b@b.test"}, 2, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {250}, "", "second", 0, 0},
	{"SIZE refusal",
	 STEPS(GREET, SEND("250-mx.test\r\n250 SIZE 10\r\n"), QUIT), SMALL, 0,
	 {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false, true,
	 NULL, true, {552}, "5.3.4", "godwit: message size", 0, 0},
	{"SIZE announced",
	 STEPS(GREET, SEND("250-mx.test\r\n250 SIZE 1000\r\n"),
	       EXPECT(MAIL_A " SIZE=31"), SEND("452 4.3.1 full\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {452}, "4.3.1", "full", 0, 0},
	{"SMTPUTF8 refusal",
	 STEPS(GREET, SEND(EHLO_PIPE), QUIT), SMALL, 0, {"b@b.test"}, 0,
	 TLS_POLICY_NONE, NULL, true, false, false, true, NULL, true, {553},
	 "5.6.7", "SMTPUTF8", 0, 0},
	{"SMTPUTF8 sent",
	 STEPS(GREET, SEND("250-mx.test\r\n250 SMTPUTF8\r\n"),
	       EXPECT(MAIL_A " SMTPUTF8"), SEND("550 no\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, true, false, false,
	 true, NULL, true, {550}, "", "no", 0, 0},
	{"DSN parameters",
	 STEPS(GREET, SEND("250-mx.test\r\n250 DSN\r\n"),
	       EXPECT(MAIL_A " RET=HDRS ENVID=x+2By+3Dz"), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@b.test"),
	       SEND("550 no\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, true, false,
	 true, NULL, true, {550}, "", "no", 0, 0},
	{"BDAT pipelined, chunk sizes",
	 STEPS(GREET, SEND(EHLO_CHUNK), GROUP(MAIL_A "\r\n" RCPT_B "\r\n"),
	       SEND("250 ok\r\n250 ok\r\n"), {S_BDAT, "250 2.0.0 chunk ok\r\n"},
	       QUIT),
	 BIG, 200000, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {250}, "2.0.0", "chunk ok", 'B', 0},
	{"BDAT empty message",
	 STEPS(GREET, SEND(EHLO_CHUNK1), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("250 ok\r\n"), EXPECT("BDAT 0 LAST"),
	       SEND("250 empty ok\r\n"), QUIT),
	 "", 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false,
	 true, NULL, true, {250}, "", "empty ok", 0, 0},
	{"BDAT no dot stuffing",
	 STEPS(GREET, SEND(EHLO_CHUNK1), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("250 ok\r\n"), {S_BDAT, "250 ok\r\n"},
	       QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false,
	 true, NULL, true, {250}, "", "ok", 'B', 1},
	{"BDAT refused midway",
	 STEPS(GREET, SEND(EHLO_CHUNK1), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("250 ok\r\n"), {S_BDAT1, "250 ok\r\n"},
	       {S_BDAT1, "552 5.3.4 too big\r\n"}, QUIT),
	 BIG, 200000, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, true, {552}, "5.3.4", "too big", 0, 0},
	{"BDAT with no recipient accepted",
	 STEPS(GREET, SEND(EHLO_CHUNK), GROUP(MAIL_A "\r\n" RCPT_B "\r\n"),
	       SEND("250 ok\r\n550 no\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false,
	 true, NULL, true, {550}, "", "no", 0, 0},
	{"lost connection mid-DATA",
	 STEPS(GREET, SEND(EHLO_BASIC), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("250 ok\r\n"), EXPECT("DATA"),
	       SEND("354 go\r\n"), {S_CLOSE, NULL}),
	 BIG, 2000000, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false,
	 false, true, NULL, false, {421}, "4.4.2", "lost connection with "
	 "mx.test[127.0.0.1] while", 0, 0},
	{"timeout after MAIL",
	 STEPS(GREET, SEND(EHLO_BASIC), EXPECT(MAIL_A), {S_HANG, NULL}),
	 SMALL, 0, {"b@b.test", "c@b.test"}, 0, TLS_POLICY_NONE, NULL, false,
	 false, false, true, NULL, false, {421, 421}, "4.4.2",
	 "conversation with mx.test[127.0.0.1] timed out while sending MAIL "
	 "FROM", 0, 0},
	{"greeting refused",
	 STEPS(SEND("554 5.7.1 go away\r\n"), {S_HANG, NULL}), SMALL, 0,
	 {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false, false,
	 "5.7.1", false, {0}, NULL, "go away", 0, 0},
	{"greeting timeout",
	 STEPS({S_HANG, NULL}), SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE,
	 NULL, false, false, false, false, "4.4.2", false, {0}, NULL,
	 "timed out while receiving the initial server greeting", 0, 0},
	{"EHLO refused, HELO",
	 STEPS(GREET, SEND("502 5.5.2 what\r\n"), EXPECT("HELO client.test"),
	       SEND("250 hi\r\n"), EXPECT(MAIL_A), SEND("250 ok\r\n"),
	       EXPECT(RCPT_B), SEND("250 ok\r\n"), EXPECT("DATA"),
	       SEND("354 go\r\n"), {S_DATA, NULL}, SEND("250 ok\r\n"), QUIT),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false,
	 true, NULL, true, {250}, "", "ok", 'D', 0},
	{"TLS required, not offered",
	 STEPS(GREET, SEND(EHLO_PIPE), {S_HANG, NULL}), SMALL, 0,
	 {"b@b.test"}, 0, TLS_POLICY_ENCRYPT, NULL, false, false, false, false,
	 "4.7.4", false, {0}, NULL, "TLS is required, but was not offered", 0,
	 0},
	{"AUTH refused without TLS",
	 STEPS(GREET, SEND("250-mx.test\r\n250 AUTH PLAIN\r\n"),
	       {S_HANG, NULL}),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, "user", false, false,
	 false, false, "4.7.0", false, {0}, NULL, "without TLS", 0, 0},
	{"malformed reply",
	 STEPS(GREET, SEND("250-mx.test\r\n251 x\r\n"), {S_HANG, NULL}),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false,
	 false, "4.5.0", false, {0}, NULL, "malformed reply", 0, 0},
	{"reply line too long",
	 STEPS(SEND("220 "), SEND(
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	       {S_HANG, NULL}),
	 SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE, NULL, false, false, false,
	 false, "4.5.0", false, {0}, NULL, "too long", 0, 0},
	{"connection refused",
	 STEPS({S_HANG, NULL}), SMALL, 0, {"b@b.test"}, 0, TLS_POLICY_NONE,
	 NULL, false, false, true, false, "4.4.1", false, {0}, NULL,
	 "connect to mx.test[127.0.0.1]:", 0, 0},
};

static char *
big_content(size_t len)
{
	char *b = malloc(len + 1);
	size_t o = 0, n = 0;

	assert_non_null(b);
	while (o < len) {
		char line[100];
		int k;

		if (n % 37 == 0)
			k = snprintf(line, sizeof(line), ".dot line %zu\n", n);
		else if (n % 11 == 0)
			k = snprintf(line, sizeof(line), "crlf line %zu\r\n", n);
		else if (n % 101 == 0)
			k = snprintf(line, sizeof(line), "\n\n\n\n\n\n\n\n\n");
		else
			k = snprintf(line, sizeof(line),
				     "line %zu of the message, some text\n", n);
		memcpy(b + o, line, (size_t)k < len - o ? (size_t)k : len - o);
		o += (size_t)k < len - o ? (size_t)k : len - o;
		n++;
	}
	b[len] = '\0';
	return b;
}

static int
listen_local(uint16_t *port_r)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

#define ERR(...)                                                               \
	do {                                                                   \
		print_message(__VA_ARGS__);                                    \
		print_message("\n");                                           \
		nerr++;                                                        \
	} while (0)

/* Prints every difference; returns how many. */
static int
check_case(const struct e2e_case *t, struct driver *d, const char *content,
	   size_t clen)
{
	const struct smtp_reply *r0 = &d->rcpts[0].reply;
	int nerr = 0;

	if (d->srv.why[0] != '\0')
		ERR("%s: server: %s", t->name, d->srv.why);
	if (!d->ready_called || d->ready_ok != t->ready_ok)
		ERR("%s: ready %d/%d: %d %s %s", t->name, d->ready_called,
			 d->ready_ok, d->ready_reply.code, d->ready_reply.enh,
			 d->ready_reply.text);
	if (!t->ready_ok) {
		if (strcmp(d->ready_reply.enh, t->ready_enh) != 0 ||
		    strstr(d->ready_reply.text, t->text_has) == NULL)
			ERR("%s: ready reply %d %s %s", t->name,
				 d->ready_reply.code, d->ready_reply.enh,
				 d->ready_reply.text);
		return nerr;
	}
	if (d->ntxn_done != (t->ntxn ? t->ntxn : 1) || d->done_ok != t->done_ok)
		ERR("%s: done %d times, ok %d", t->name, d->ntxn_done,
			 d->done_ok);
	for (size_t i = 0; i < 3 && t->rcpts[i] != NULL; i++)
		if (d->rcpts[i].reply.code != t->codes[i])
			ERR("%s: rcpt %zu: %d %s %s", t->name, i,
				 d->rcpts[i].reply.code, d->rcpts[i].reply.enh,
				 d->rcpts[i].reply.text);
	if (strcmp(r0->enh, t->enh0) != 0 || strstr(r0->text, t->text_has) == NULL)
		ERR("%s: rcpt 0: %d [%s] [%s]", t->name, r0->code, r0->enh,
			 r0->text);
	if (t->capture != 0) {
		struct evbuffer *want = expected_content(content, clen,
							 t->capture == 'D');
		size_t n = evbuffer_get_length(want);

		if (evbuffer_get_length(d->srv.cap) != n ||
		    memcmp(evbuffer_pullup(d->srv.cap, -1),
			   evbuffer_pullup(want, -1), n) != 0)
			ERR("%s: content differs (%zu octets, want %zu)",
				 t->name, evbuffer_get_length(d->srv.cap), n);
		evbuffer_free(want);
	}
	if (t->capture == 'B') {
		size_t want = t->nchunks ? t->nchunks
					 : (clen + 32766) / 32767;

		if (d->srv.nchunks != want)
			ERR("%s: %zu chunks, want %zu", t->name,
				 d->srv.nchunks, want);
		for (size_t i = 0; i < d->srv.nchunks; i++)
			if (d->srv.chunks[i] > 65536 ||
			    (i + 1 < d->srv.nchunks && d->srv.chunks[i] == 0))
				ERR("%s: chunk %zu of %zu octets", t->name,
					 i, d->srv.chunks[i]);
	}
	return nerr;
}

static int
run_case(const struct e2e_case *t, SSL_CTX *ctx)
{
	struct driver d;
	struct sockaddr_in sin;
	struct event *watchdog;
	struct timeval wd = {10, 0};
	const char *content = t->content;
	char *big = NULL;
	size_t clen;
	uint16_t port;
	int mfd, nerr;

	memset(&d, 0, sizeof(d));
	d.base = event_base_new();
	assert_non_null(d.base);
	d.srv.steps = t->steps;
	d.srv.cap = evbuffer_new();
	d.srv.lfd = listen_local(&port);
	if (t->refused_port) {
		close(d.srv.lfd);
		d.srv.lfd = -1;
		d.srv.gone = true;
	} else {
		d.srv.accept_ev = event_new(d.base, d.srv.lfd, EV_READ,
					    server_accept_cb, &d);
		event_add(d.srv.accept_ev, NULL);
	}
	watchdog = evtimer_new(d.base, watchdog_cb, &d);
	evtimer_add(watchdog, &wd);

	if (content == BIG)
		content = big = big_content(t->big_len);
	clen = strlen(content);
	/* the message follows an "envelope" in the file, as in the queue */
	mfd = memfd_create("msg", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	assert_int_equal(write(mfd, "ENVELOPE\n\n", 10), 10);
	assert_int_equal(write(mfd, content, clen), (ssize_t)clen);

	d.ntxn = t->ntxn ? t->ntxn : 1;
	d.msg.sender = "a@a.test";
	d.msg.envid = t->dsn ? "x+y=z" : "";
	d.msg.ret = t->dsn ? "HDRS" : "";
	d.msg.smtputf8 = t->smtputf8;
	d.msg.fd = mfd;
	d.msg.offset = 10;
	d.msg.size = clen;
	d.msg.rcpts = d.rcpts;
	for (size_t i = 0; i < 3 && t->rcpts[i] != NULL; i++) {
		d.rcpts[i].addr = t->rcpts[i];
		d.rcpts[i].orcpt = t->dsn ? "rfc822;b+x@b.test" : "";
		d.rcpts[i].notify = t->dsn ? SMTP_NOTIFY_SUCCESS |
						     SMTP_NOTIFY_FAILURE
					   : 0;
		d.msg.nrcpts++;
	}

	d.params.helo_name = "client.test";
	d.params.server_name = "mx.test";
	d.params.tls = t->tls;
	d.params.ssl_ctx = t->tls != TLS_POLICY_NONE ? ctx : NULL;
	d.params.auth_user = t->auth_user;
	d.params.auth_pass = t->auth_user != NULL ? "secret" : NULL;
	d.params.t_connect = d.params.t_greeting = d.params.t_command = 1;
	d.params.t_data_init = d.params.t_data_block = d.params.t_data_end = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	d.c = smtp_client_new(d.base, &d.params, (struct sockaddr *)&sin,
			      sizeof(sin), NULL, 0, ready_cb, &d);
	assert_non_null(d.c);
	assert_false(d.ready_called);	/* never from inside new() */
	assert_int_equal(strncmp(smtp_client_peer(d.c), "mx.test[127.0.0.1]:",
				 19), 0);
	event_base_dispatch(d.base);

	nerr = check_case(t, &d, content, clen);

	smtp_client_free(&d.c);
	if (d.srv.bev != NULL)
		bufferevent_free(d.srv.bev);
	if (d.srv.accept_ev != NULL)
		event_free(d.srv.accept_ev);
	if (d.srv.lfd >= 0)
		close(d.srv.lfd);
	evbuffer_free(d.srv.cap);
	event_free(watchdog);
	event_base_free(d.base);
	close(mfd);
	free(big);
	return nerr;
}

static void
test_e2e(void **state)
{
	char *error = NULL;
	SSL_CTX *ctx = smtp_client_ssl_ctx_new(NULL, &error);
	int nerr = 0;

	(void)state;
	assert_non_null(ctx);
	for (size_t i = 0; i < sizeof(e2e_cases) / sizeof(e2e_cases[0]); i++)
		nerr += run_case(&e2e_cases[i], ctx);
	SSL_CTX_free(ctx);
	assert_int_equal(nerr, 0);
}

static void
test_ssl_ctx_bad_ca(void **state)
{
	char *error = NULL;

	(void)state;
	assert_null(smtp_client_ssl_ctx_new("/nonexistent/ca.pem", &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "/nonexistent/ca.pem"));
	free(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_table),
		cmocka_unit_test(test_reply_limits),
		cmocka_unit_test(test_ehlo_table),
		cmocka_unit_test(test_ssl_ctx_bad_ca),
		cmocka_unit_test(test_e2e),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
