/*
 * The IMAP server session's core: IMAP4rev2 (RFC 9051) and IMAP4rev1
 * (RFC 3501) over the session core (net/session.h), on protocol imap
 * (143, STARTTLS) and imaps (993, implicit TLS, RFC 8314).
 *
 * Input goes through the resumable parser (mail/imap_parse.h) instead of
 * the core's line reader: the parser takes the octets as they come,
 * literals included. A synchronizing literal gets "+ Ready" once its
 * size is known to be acceptable (RFC 7888: a refused one gets NO
 * [TOOBIG], a refused LITERAL+ one BAD [TOOBIG]); a literal bigger than
 * the parser keeps in memory is written to an unlinked file in the
 * user's Maildir tmp/ (O_TMPFILE) as it arrives, and given to the
 * command as IMAP_ARG_STREAMED with its fd, which the core closes when
 * the command ends. Memory per session is bounded whatever the input.
 *
 * One command runs at a time (imap_private.h): its handler ends it with
 * imap_done(), at once or later (the auth thread, a streamed response,
 * IDLE); until then nothing more is parsed, and pipelined commands wait
 * in the input buffer (bounded by INPUT_HIGH). A command that reads raw
 * lines (AUTHENTICATE's responses, IDLE's DONE) sets line_hook: then the
 * core's line reader feeds it.
 *
 * The commands of the not-authenticated state and the logins are in
 * imap_auth.c; the mailbox commands in imap_mailbox.c, FETCH and SEARCH
 * in imap_fetch.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "imapd/imap_core.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/metrics.h"
#include "net/session.h"
#include "store/imap_store.h"
#include "mail/imap_utf7.h"

#define INPUT_HIGH (64 * 1024)	   /* libevent stops reading past this */
#define OUTPUT_LOW (64 * 1024)	   /* cont runs below this */
#define REPLY_MAX 1024		   /* one status line */
#define LINE_MAX_IMAP (64 * 1024)  /* a line outside literals */
#define INLINE_MAX (64 * 1024)	   /* larger literals go to a file */
#define TOTAL_MAX (256 * 1024)	   /* one command's arguments */
#define DEPTH_MAX 16		   /* list nesting */
#define QUOTED_MAX 1024		   /* longer strings are sent as literals */

static struct imap_core *
core(struct session *ses)
{
	return imap_core(ses);
}

static const char *
state_name(enum imap_state st)
{
	static const char *const names[] = {
	    "TLS", "NOT_AUTHENTICATED", "AUTHENTICATED", "SELECTED", "LOGOUT",
	};
	if ((size_t)st < sizeof(names) / sizeof(names[0]))
		return names[st];
	return "UNKNOWN";
}

/* ---- replies -------------------------------------------------------- */

struct evbuffer *
imap_out(struct imap_session *s)
{
	return bufferevent_get_output(s->ses.bev);
}

/* Not cut to a length: an untagged line is data (FLAGS, SEARCH, ...),
 * bounded by what the caller formats. */
void
imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	struct evbuffer *out = imap_out(s);
	va_list ap;

	evbuffer_add(out, "* ", 2);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* "tag status [code] text" CRLF, cut to REPLY_MAX. */
static void
status_line(struct imap_session *s, const char *tag, const char *status,
	    const char *code, const char *text)
{
	if (code != NULL)
		evbuffer_add_printf(imap_out(s), "%s %s [%s] %.*s\r\n", tag,
				    status, code, REPLY_MAX, text);
	else
		evbuffer_add_printf(imap_out(s), "%s %s %.*s\r\n", tag, status,
				    REPLY_MAX, text);
}

/* A BAD counts: too many and the session ends (the BYE says why). */
static void
count_bad(struct imap_core *c)
{
	if (++c->s.errors < IMAP_MAX_ERRORS || c->s.ses.closing)
		return;
	imap_untagged(&c->s, "BYE Too many invalid commands");
	log_event(LOG_INFO, "imap", "reject", LF_STR("session", c->s.ses.id),
		  LF_STR("ip", c->s.ses.ip),
		  LF_STR("reason", "too-many-errors"),
		  LF_UINT("errors", c->s.errors));
	metrics_reject("too-many-errors");
	session_close(&c->s.ses, "too-many-errors");
}

void
imap_bad(struct imap_core *c, const char *tag, const char *code,
	 const char *text)
{
	status_line(&c->s, tag, "BAD", code, text);
	count_bad(c);
}

void
imap_close_streamed(struct imap_core *c)
{
	for (size_t i = 0; i < c->nfds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->nfds = 0;
	if (c->stream_fd >= 0 && !c->streaming)
		c->stream_fd = -1;
}

static void maybe_shutdown(struct imap_core *c);

void
imap_done(struct imap_session *s, const char *status, const char *code,
	  const char *fmt, ...)
{
	struct imap_core *c = (struct imap_core *)s;
	char text[REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->cmd != NULL)
		status_line(s, s->cmd->tag, status, code, text);
	if (s->cont != NULL)
		bufferevent_setwatermark(s->ses.bev, EV_WRITE, 0, 0);
	if (s->ses.sasl != NULL && s->ses.auth_job == NULL)
		sasl_free(&s->ses.sasl);	/* an exchange cut short */
	s->cmd = NULL;
	s->cont = NULL;
	s->line_hook = NULL;
	s->cleanup = NULL;
	s->cmd_state = NULL;
	imap_close_streamed(c);
	if (strcmp(status, "BAD") == 0)
		count_bad(c);
	maybe_shutdown(c);
	if (!c->in_loop && !s->ses.closing && s->state != IMAP_S_LOGOUT)
		session_process(&s->ses);
}

/* ---- strings -------------------------------------------------------- */

static bool name_ok(const char *s, size_t len);

/* Fit for a quoted string; UTF-8 too when utf8 (RFC 9051, RFC 6855). */
static bool
quotable(const char *str, size_t len, bool utf8)
{
	bool eight = false;

	if (len > QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)str[i];
		if (ch < 0x20 || ch == 0x7f)
			return false;
		eight |= ch >= 0x80;
	}
	return !eight || (utf8 && name_ok(str, len));
}

static void
write_string(struct evbuffer *out, const char *str, size_t len, bool utf8)
{
	if (str == NULL) {
		evbuffer_add(out, "NIL", 3);
		return;
	}
	if (!quotable(str, len, utf8)) {
		evbuffer_add_printf(out, "{%zu}\r\n", len);
		evbuffer_add(out, str, len);
		return;
	}
	evbuffer_add(out, "\"", 1);
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i == len || str[i] == '"' || str[i] == '\\') {
			evbuffer_add(out, str + start, i - start);
			if (i < len)
				evbuffer_add(out, "\\", 1);
			start = i;
		}
	}
	evbuffer_add(out, "\"", 1);
}

void
imap_write_string(struct evbuffer *out, const char *str, size_t len)
{
	write_string(out, str, len, false);
}

/* ---- capabilities --------------------------------------------------- */

bool
imap_login_allowed(const struct imap_core *c)
{
	return c->listener->auth &&
	       (c->s.ses.tls || c->listener->plaintext_auth);
}

bool
imap_starttls_offered(const struct imap_core *c)
{
	return c->listener->proto == PROTO_IMAP &&
	       c->s.ses.srv->tls_ctx != NULL && !c->s.ses.tls;
}

/* What the whole server does, once logged in. */
#define CAPS_LOGGED                                                          \
	"IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE NAMESPACE "     \
	"UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS "          \
	"SPECIAL-USE ESEARCH SEARCHRES STATUS=SIZE BINARY UTF8=ACCEPT"

void
imap_capabilities(const struct imap_core *c, char *buf, size_t size)
{
	if (c->s.ses.logged_in) {
		snprintf(buf, size, "%s", CAPS_LOGGED);
		return;
	}
	snprintf(buf, size, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID%s%s",
		 imap_starttls_offered(c) ? " STARTTLS" : "",
		 imap_login_allowed(c) ? " AUTH=PLAIN AUTH=SCRAM-SHA-256"
				       : " LOGINDISABLED");
}

/* ---- literals ------------------------------------------------------- */

/* An unlinked file for a streamed literal, in the Maildir's tmp/. */
static int
stream_file(struct imap_core *c)
{
	char *dir;
	int fd;

	if (c->s.maildir == NULL)
		return -1;
	dir = xasprintf("%s/tmp", c->s.maildir);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		char *path = xasprintf("%s/.imap-literal.XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
		free(path);
	}
	if (fd < 0)
		log_event(LOG_ERR, "imap", "literal-error",
			  LF_STR("session", c->s.ses.id),
			  LF_STR("user", c->s.account), LF_INT("errno", errno));
	free(dir);
	return fd;
}

/*
 * Whether a literal of size octets is taken for the command partial:
 * APPEND up to imap.max_append once logged in, anything else up to what
 * the parser holds in memory.
 */
static bool
literal_ok(const struct imap_core *c, const struct imap_command *partial,
	   uint64_t size)
{
	if (strcmp(partial->tag, "*") == 0 || partial->name[0] == '\0')
		return false;
	if (strcmp(partial->name, "APPEND") == 0)
		return c->s.ses.logged_in &&
		       size <= c->s.config->imap.max_append;
	return size <= INLINE_MAX;
}

static void
literal_refused(struct imap_core *c, uint64_t size, bool sync)
{
	const struct imap_command *p = imap_parser_partial(c->s.parser);

	log_event(LOG_INFO, "imap", "literal-refused",
		  LF_STR("session", c->s.ses.id), LF_STR("ip", c->s.ses.ip),
		  LF_STR("cmd", p->name[0] != '\0' ? p->name : "-"),
		  LF_UINT("octets", size), LF_BOOL("sync", sync));
	metrics_reject("too-big");
}

/* CONTINUE: "+ Ready", or NO [TOOBIG] and the command is forgotten. */
static void
on_continue(struct imap_core *c)
{
	const struct imap_command *p = imap_parser_partial(c->s.parser);
	uint64_t size = imap_parser_stream_size(c->s.parser);
	char tag[IMAP_TAG_MAX + 1];
	bool named = p->name[0] != '\0';

	if (literal_ok(c, p, size) && !c->refused) {
		evbuffer_add_printf(imap_out(&c->s), "+ Ready for literal data\r\n");
		c->parse_again = true;
		return;
	}
	snprintf(tag, sizeof(tag), "%s", p->tag[0] != '\0' ? p->tag : "*");
	literal_refused(c, size, true);
	imap_parser_reset(c->s.parser);	/* p is gone */
	imap_close_streamed(c);
	c->refused = false;
	if (strcmp(tag, "*") == 0 || !named) {
		imap_bad(c, tag, NULL, "Invalid command");
		return;
	}
	/* RFC 7888 section 4, RFC 9051 TOOBIG: the client sends nothing */
	status_line(&c->s, tag, "NO", "TOOBIG", "Literal too big");
}

/* STREAM: the literal goes to a file, or to nowhere if refused. */
static void
on_stream(struct imap_core *c)
{
	const struct imap_command *p = imap_parser_partial(c->s.parser);
	uint64_t size = imap_parser_stream_size(c->s.parser);

	c->streaming = true;
	c->stream_left = size;
	c->stream_fd = -1;
	if (!literal_ok(c, p, size) || c->refused ||
	    c->nfds >= IMAP_MAX_STREAMED) {
		if (!c->refused)
			literal_refused(c, size, false);
		c->refused = true;
		return;
	}
	if ((c->stream_fd = stream_file(c)) < 0)
		c->refused = c->spool_failed = true;
	else
		c->fds[c->nfds++] = c->stream_fd;
}

/* The octets of a streamed literal; 1 if some were taken. */
static int
stream_in(struct imap_core *c, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	size_t n;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
		/* the command's deadline runs on (started if it was not:
		 * the command's line may have come in one read) */
		session_wait_line(&c->s.ses);
		return -1;
	}
	n = v.iov_len;
	if (n > c->stream_left)
		n = (size_t)c->stream_left;
	if (c->stream_fd >= 0 && write_full(c->stream_fd, v.iov_base, n) < 0) {
		log_event(LOG_ERR, "imap", "literal-error",
			  LF_STR("session", c->s.ses.id),
			  LF_STR("user", c->s.account), LF_INT("errno", errno));
		c->refused = c->spool_failed = true;
		c->stream_fd = -1;	/* closed with the command's fds */
	}
	evbuffer_drain(in, n);
	c->stream_left -= n;
	if (c->stream_left == 0) {
		c->streaming = false;
		imap_parser_stream_done(c->s.parser, c->stream_fd);
	}
	return 1;
}

/* ---- dispatch ------------------------------------------------------- */

static const struct imap_cmd_def *
find_command(const char *name)
{
	const struct imap_cmd_def *const tables[] = {
	    imap_core_cmds, imap_mailbox_cmds, imap_fetch_cmds};

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct imap_cmd_def *d = tables[t]; d->name != NULL;
		     d++)
			if (strcmp(d->name, name) == 0)
				return d;
	return NULL;
}

static unsigned
state_bit(enum imap_state st)
{
	switch (st) {
	case IMAP_S_NOTAUTH:
		return IMAP_IN_NOTAUTH;
	case IMAP_S_AUTH:
		return IMAP_IN_AUTH;
	case IMAP_S_SELECTED:
		return IMAP_IN_SELECTED;
	default:
		return 0;
	}
}

/* Output drains below the low mark: cont gets its turn then. */
static void
arm_cont(struct imap_core *c)
{
	struct bufferevent *bev = c->s.ses.bev;

	bufferevent_setwatermark(bev, EV_WRITE, OUTPUT_LOW, 0);
	if (evbuffer_get_length(bufferevent_get_output(bev)) < OUTPUT_LOW) {
		bufferevent_enable(bev, EV_WRITE);
		bufferevent_trigger(bev, EV_WRITE,
				    BEV_TRIG_IGNORE_WATERMARKS |
					BEV_TRIG_DEFER_CALLBACKS);
	}
}

static void
dispatch(struct imap_core *c, const struct imap_command *cmd)
{
	struct imap_session *s = &c->s;
	const struct imap_cmd_def *d = find_command(cmd->name);

	if (d == NULL || (cmd->uid && !d->uid)) {
		log_event(LOG_DEBUG, "imap", "bad-command",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("cmd", d != NULL ? d->name : "unknown"));
		imap_close_streamed(c);
		imap_bad(c, cmd->tag, NULL, "Unknown command");
		return;
	}
	if ((d->states & state_bit(s->state)) == 0) {
		imap_close_streamed(c);
		imap_bad(c, cmd->tag, NULL,
			 s->state == IMAP_S_NOTAUTH	 ? "Not logged in"
			 : d->states == IMAP_IN_NOTAUTH ? "Already logged in"
			 : d->states == IMAP_IN_SELECTED
			     ? "No mailbox selected"
			     : "Not allowed now");
		return;
	}
	c->commands++;
	s->cmd = cmd;
	c->in_loop = true;
	d->fn(s, cmd);
	c->in_loop = false;
	if (s->cmd != NULL && s->cont != NULL)
		arm_cont(c);
}

/* The parser said DONE or ERROR. */
static void
on_command(struct imap_core *c, const struct imap_command *cmd)
{
	deadline_stop(&c->s.ses.deadline);
	if (c->spool_failed) {
		c->spool_failed = c->refused = false;
		imap_close_streamed(c);
		status_line(&c->s, cmd->tag, "NO", "UNAVAILABLE",
			    "Cannot store the literal now");
		return;
	}
	if (c->refused) {
		c->refused = false;
		imap_close_streamed(c);
		imap_bad(c, cmd->tag, "TOOBIG", "Literal too big");
		return;
	}
	dispatch(c, cmd);
}

static void
on_error(struct imap_core *c)
{
	const struct imap_command *p = imap_parser_partial(c->s.parser);
	const struct imap_cmd_def *d;

	deadline_stop(&c->s.ses.deadline);
	imap_close_streamed(c);
	c->refused = c->spool_failed = false;
	d = p->name[0] != '\0' ? find_command(p->name) : NULL;
	log_event(LOG_DEBUG, "imap", "bad-command",
		  LF_STR("session", c->s.ses.id), LF_STR("ip", c->s.ses.ip),
		  LF_STR("cmd", d != NULL ? d->name : "unknown"));
	imap_bad(c, p->tag[0] != '\0' ? p->tag : "*", NULL,
		 imap_parser_error(c->s.parser));
}

/* The client pipelines but does not read: wait (as the core does). */
static bool
output_full(struct imap_core *c)
{
	struct session *ses = &c->s.ses;

	if (evbuffer_get_length(bufferevent_get_output(ses->bev)) <=
	    IMAP_OUTPUT_HIGH)
		return false;
	ses->paused = true;
	bufferevent_disable(ses->bev, EV_READ);
	deadline_stop(&ses->deadline);
	return true;
}

/*
 * A command is half here (a literal's octets without the CRLF after
 * them, typically): ACK what came at once. A client that writes the
 * literal and the line end in two writes, as Python's imaplib does, has
 * the second held back by Nagle's algorithm until our ACK, which the
 * kernel would otherwise delay by up to 40 ms, as we have nothing to
 * send: that was 50 ms per APPEND instead of 5. One setsockopt, and
 * only for a command that did not come in one read.
 */
static void
quick_ack(struct imap_core *c)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(c->s.ses.bev);

	if (fd >= 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) < 0) {
		/* not TCP (a test's socketpair): nothing to hurry */
	}
}

/* Feeds the parser what has arrived; 1 go round again, -1 wait. */
static int
feed(struct imap_core *c, struct evbuffer *in)
{
	const struct imap_command *cmd = NULL;
	struct evbuffer_iovec v = {.iov_base = NULL, .iov_len = 0};
	size_t used = 0;

	if (output_full(c))
		return -1;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
		v.iov_len = 0;
	if (v.iov_len == 0 && !c->parse_again) {
		session_wait_line(&c->s.ses);
		return -1;
	}
	c->parse_again = false;
	switch (imap_parse(c->s.parser, v.iov_len > 0 ? v.iov_base : "",
			   v.iov_len, &used, &cmd)) {
	case IMAP_PARSE_MORE:
		evbuffer_drain(in, used);
		if (imap_parser_partial(c->s.parser)->tag[0] != '\0')
			quick_ack(c);
		break;
	case IMAP_PARSE_DONE:
		evbuffer_drain(in, used);
		on_command(c, cmd);
		break;
	case IMAP_PARSE_CONTINUE:
		evbuffer_drain(in, used);
		on_continue(c);
		break;
	case IMAP_PARSE_STREAM:
		evbuffer_drain(in, used);
		on_stream(c);
		break;
	case IMAP_PARSE_ERROR:
		evbuffer_drain(in, used);
		on_error(c);
		break;
	}
	return 1;
}

/*
 * The rest of an over-long line read for line_hook, whose command ended
 * on it: thrown away, then the parser reads again.
 */
static int
skip_rest(struct session *ses, struct evbuffer *in)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);

	if (p.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		session_wait_line(ses);
		return -1;
	}
	evbuffer_drain(in, (size_t)p.pos + 1);
	ses->line.skip = false;
	return 1;
}

/* ops->input: the parser reads, unless a command runs. */
static int
imap_input(struct session *ses, struct evbuffer *in)
{
	struct imap_core *c = core(ses);
	struct imap_session *s = &c->s;

	if (ses->closing || s->state == IMAP_S_TLS ||
	    s->state == IMAP_S_LOGOUT)
		return -1;
	if (c->streaming)
		return stream_in(c, in);
	if (ses->line.skip && s->cmd == NULL)
		return skip_rest(ses, in);
	if (s->cmd != NULL)
		return s->line_hook != NULL ? 0 : -1;
	return feed(c, in);
}

/* ops->next_line: a raw line for line_hook (CRLF or LF stripped). */
static int
imap_next_line(struct session *ses, struct evbuffer *in, char *buf,
	       size_t size, size_t *len_r)
{
	struct imap_core *c = core(ses);
	size_t n;
	int r;

	if ((r = line_take(&ses->line, in, size, buf, size, &n)) == 0)
		return 0;
	if (r < 0) {
		c->in_loop = true;
		if (c->s.cmd != NULL)
			imap_done(&c->s, "BAD", NULL, "Line too long");
		c->in_loop = false;
		/* what follows is the parser's again (skip_rest() first):
		 * a read callback soon, for input already there */
		if (!ses->closing && evbuffer_get_length(in) > 0)
			bufferevent_trigger(ses->bev, EV_READ,
					    BEV_TRIG_IGNORE_WATERMARKS |
						BEV_TRIG_DEFER_CALLBACKS);
		return -1;
	}
	n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len_r = n;
	return 1;
}

static void
imap_on_line(struct session *ses, char *line, size_t len)
{
	struct imap_core *c = core(ses);

	if (c->s.line_hook == NULL)
		return;
	c->in_loop = true;
	c->s.line_hook(&c->s, line, len);
	c->in_loop = false;
	if (c->s.cmd != NULL && c->s.cont != NULL)
		arm_cont(c);
}

static bool
imap_drained(struct session *ses)
{
	struct imap_core *c = core(ses);

	if (c->s.cmd == NULL || c->s.cont == NULL || ses->closing)
		return false;
	c->s.cont(&c->s);
	return true;
}

/* ---- timeouts and the end ------------------------------------------- */

/* RFC 9051 section 5.4: the autologout timer, shorter before login. */
static uint64_t
imap_line_timeout(const struct session *ses)
{
	const struct imap_session *s = (const struct imap_session *)ses;

	return ses->logged_in ? s->config->imap.timeout
			      : s->config->imap.login_timeout;
}

static void
imap_timeout_reply(struct session *ses)
{
	imap_untagged(&core(ses)->s, "BYE Autologout; idle for too long");
}

/* Waiting for the client: no command, or one that waits for a line
 * (IDLE, an AUTHENTICATE response), not for the auth thread. */
static bool
idle(const struct imap_core *c)
{
	return (c->s.cmd == NULL ||
		(c->s.line_hook != NULL && c->s.ses.auth_job == NULL)) &&
	       !c->streaming &&
	       (c->s.state == IMAP_S_NOTAUTH || c->s.state == IMAP_S_AUTH ||
		c->s.state == IMAP_S_SELECTED);
}

static void
maybe_shutdown(struct imap_core *c)
{
	if (!c->s.ses.srv->stopping || c->s.ses.closing || !idle(c))
		return;
	imap_untagged(&c->s, "BYE Server shutting down");
	session_close(&c->s.ses, "shutdown");
}

static void
imap_shutdown(struct session *ses)
{
	maybe_shutdown(core(ses));
}

static void
imap_closing(struct session *ses)
{
	core(ses)->s.state = IMAP_S_LOGOUT;
}

static void
imap_free(struct session *ses, const char *reason)
{
	struct imap_core *c = core(ses);
	struct imap_session *s = &c->s;

	if (s->cleanup != NULL)
		s->cleanup(s);
	if (ses->logged_in)
		log_event(LOG_INFO, "imap", "logout", LF_STR("session", ses->id),
			  LF_STR("ip", ses->ip), LF_STR("user", s->account),
			  LF_STR("reason", reason),
			  LF_UINT("commands", c->commands));
	log_event(LOG_INFO, "imap", "disconnect", LF_STR("session", ses->id),
		  LF_STR("ip", ses->ip), LF_STR("reason", reason),
		  LF_STR("state", state_name(s->state)),
		  LF_UINT("errors", s->errors),
		  LF_UINT("duration_ms", mono_ms() - ses->started_ms));
	imap_user_release(c);
	imap_close_streamed(c);
	imap_mailbox_end(s);
	if (s->store != NULL)
		imap_store_close(s->store);
	imap_parser_free(s->parser);
	free(s->saved);
	free(s->maildir);
}

/* ---- start ---------------------------------------------------------- */

static void
imap_refusal(const struct session_listener *l, enum session_refusal why,
	     const char *detail, char *buf, size_t size)
{
	(void)l;
	switch (why) {
	case SESSION_REFUSE_ACCESS:
		snprintf(buf, size, "* BYE Access denied\r\n");
		break;
	case SESSION_REFUSE_LIMIT:
		snprintf(buf, size, "* BYE [UNAVAILABLE] %s\r\n", detail);
		break;
	case SESSION_REFUSE_BANNED:
		snprintf(buf, size, "* BYE [UNAVAILABLE] Too many failed logins "
				    "from your address\r\n");
		break;
	}
}

static void
imap_init(struct session *ses)
{
	struct imap_core *c = core(ses);
	const struct imap_parser_limits lim = {
	    .line_max = LINE_MAX_IMAP,
	    .inline_max = INLINE_MAX,
	    .total_max = TOTAL_MAX,
	    .depth_max = DEPTH_MAX,
	};

	c->s.config = ses->listener->settings;
	c->listener = ses->listener->conf;
	ses->write_timeout_s = c->s.config->imap.timeout;
	c->s.parser = imap_parser_new(&lim);
	c->stream_fd = -1;
	c->s.state = ses->tls_pending ? IMAP_S_TLS : IMAP_S_NOTAUTH;
}

static void
greet(struct imap_core *c)
{
	char caps[512];

	c->s.state = IMAP_S_NOTAUTH;
	imap_capabilities(c, caps, sizeof(caps));
	imap_untagged(&c->s, "OK [CAPABILITY %s] %s IMAP4rev2 server ready",
		      caps, c->s.config->hostname);
	session_wait_line(&c->s.ses);
}

static void
imap_start(struct session *ses)
{
	struct imap_core *c = core(ses);

	log_event(LOG_INFO, "imap", "connect", LF_STR("session", ses->id),
		  LF_STR("ip", ses->ip), LF_STR("listener", c->listener->name),
		  LF_STR_IF(ses->proxy[0] != '\0', "proxy", ses->proxy),
		  LF_STR("tls", ses->tls_pending ? "implicit" : "no"));
	if (!ses->tls_pending)
		greet(c);
}

static void
imap_on_tls(struct session *ses)
{
	struct imap_core *c = core(ses);

	if (c->s.state == IMAP_S_TLS)
		greet(c);	/* implicit TLS: now the greeting */
}

static const char *
imap_state_name(const struct session *ses)
{
	return state_name(((const struct imap_session *)ses)->state);
}

const struct session_ops imap_session_ops = {
	.name = "imap",
	.size = sizeof(struct imap_core),
	.input_high = INPUT_HIGH,
	.output_high = IMAP_OUTPUT_HIGH,
	.refusal = imap_refusal,
	.init = imap_init,
	.start = imap_start,
	.on_tls = imap_on_tls,
	.input = imap_input,
	.next_line = imap_next_line,
	.on_line = imap_on_line,
	.line_timeout = imap_line_timeout,
	.timeout_reply = imap_timeout_reply,
	.shutdown = imap_shutdown,
	.closing = imap_closing,
	.auth_done = imap_auth_done,
	.auth_delay_done = imap_auth_delay_done,
	.drained = imap_drained,
	.flush = NULL,
	.state_name = imap_state_name,
	.free = imap_free,
};

/* ---- mailbox names -------------------------------------------------- */

/* Valid UTF-8 without C0 controls or DEL (RFC 9051 mailbox names). */
static bool
name_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char ch = (unsigned char)s[i];
		size_t n = ch < 0x80 ? 1 : ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
		if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && ch < 0xc2) ||
		    ch > 0xf4 || i + n > len)
			return false;
		for (size_t k = 1; k < n; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
		i += n;
	}
	return true;
}

void
imap_write_mailbox(struct imap_session *s, struct evbuffer *out,
		   const char *name)
{
	struct strbuf b = {0};

	/* a name that is not valid UTF-8 is sent as it is */
	if (s->utf8 || imap_utf8_to_utf7(name, strlen(name), &b) < 0)
		write_string(out, name, strlen(name), s->utf8);
	else
		write_string(out, b.s != NULL ? b.s : "", b.len, false);
	strbuf_free(&b);
}

/*
 * The client's name: UTF-8 once it enabled IMAP4rev2 or UTF8=ACCEPT,
 * modified UTF-7 before (RFC 3501 5.1.3; RFC 9051 allows it still, so a
 * rev2 client's '&' name is decoded when it is valid UTF-7).
 */
bool
imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a,
		 struct strbuf *out)
{
	struct strbuf b = {0};
	const char *str;
	size_t len;
	bool ok;

	if (!imap_arg_astring(a, &str, &len) || len == 0 ||
	    memchr(str, '\0', len) != NULL || !name_ok(str, len))
		return false;
	if (len == 5 && strncasecmp(str, "INBOX", 5) == 0) {
		strbuf_addstr(out, "INBOX");
		return true;
	}
	if (memchr(str, '&', len) == NULL) {
		ok = true;
		for (size_t i = 0; !s->utf8 && i < len; i++)
			if ((unsigned char)str[i] >= 0x80)
				ok = false;	/* 8-bit: rev1 sends UTF-7 */
		if (ok)
			strbuf_add(out, str, len);
		return ok;
	}
	ok = imap_utf7_to_utf8(str, len, &b) == 0;
	if (ok)
		strbuf_add(out, b.s != NULL ? b.s : "", b.len);
	else if (s->utf8) {
		strbuf_add(out, str, len);	/* a UTF-8 name with '&' */
		ok = true;
	}
	strbuf_free(&b);
	return ok;
}
