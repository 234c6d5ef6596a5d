/*
 * Connection plumbing shared by the SMTP and POP3 sessions: replies, the
 * end of a connection, and deadlines against slow clients (below).
 *
 * Replies: session_vreply() formats one line, cuts it to fit size - 2
 * octets and appends CRLF to the bufferevent's output.
 *
 * The end of a connection: stop
 * reading, let the last reply go out, then free the session. Under TLS
 * "out" means out of the underlying socket's buffer too, which the TLS
 * bufferevent's own write callback does not wait for; a short timer polls
 * for it, bounded by CLOSE_WAIT_MAX_MS.
 */
#ifndef GODWIT_SESSION_IO_H
#define GODWIT_SESSION_IO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct evbuffer;
struct event;
struct event_base;

void session_vreply(struct bufferevent *bev, size_t size, const char *fmt,
		    va_list ap) __attribute__((format(printf, 3, 0)));

#define CLOSE_WAIT_MAX_MS 10000

struct close_wait {
	struct event *timer;	/* polls the underlying socket's buffer */
	uint64_t since_ms;
	struct bufferevent *bev;
	void (*done)(void *arg);	/* frees the session */
	void *arg;
};

/*
 * Stops reading and bounds the flush by a 10 s write timeout; the write
 * callback (low watermark 0) runs once the output is empty, at once if it
 * already is.
 */
void close_wait_begin(struct bufferevent *bev);

/*
 * From the write callback of a closing session. Returns true when the
 * session may be freed now. Otherwise returns false: either output is
 * still queued (the write callback comes again), or TLS output sits in the
 * underlying socket's buffer and done(arg) will be called once it is gone
 * or after CLOSE_WAIT_MAX_MS.
 */
bool close_wait_flushed(struct close_wait *cw, struct event_base *base,
			struct bufferevent *bev, void (*done)(void *),
			void *arg);

/* Frees the timer, if any. */
void close_wait_clear(struct close_wait *cw);

/*
 * Deadlines against slow clients (slowloris). libevent's read timeout
 * starts again with every read, so a client sending one byte every few
 * seconds would hold its connection forever. A deadline instead bounds
 * one whole unit of input from when the session starts waiting for it:
 *
 *	DEADLINE_LINE	a command line (or a SASL response): allow_ms
 *	DEADLINE_TLS	a TLS handshake: allow_ms
 *	DEADLINE_DATA	a message's text (DATA, a BDAT chunk): allow_ms plus
 *			1 s for every `rate` octets received, so a client
 *			that keeps up at least that rate is never cut, and
 *			one that drips is cut once it falls behind
 *
 * One timer per session; starting a deadline replaces the one before.
 * The octet count is only added up as input arrives; the timer works out
 * the real end when it fires and sleeps again if there is time left, so
 * a busy transfer costs no timer updates. When the time is up,
 * expired(arg, kind) is called (once; the deadline is then stopped).
 */
enum deadline_kind {
	DEADLINE_NONE = 0,
	DEADLINE_LINE,
	DEADLINE_TLS,
	DEADLINE_DATA,
};

struct deadline {
	struct event *timer;
	enum deadline_kind kind;
	uint64_t start_ms;	/* mono_ms() when the wait began */
	uint64_t allow_ms;
	uint64_t rate;		/* octets per second; 0: no credit */
	uint64_t octets;	/* received since start */
	void (*expired)(void *arg, enum deadline_kind kind);
	void *arg;
};

void deadline_init(struct deadline *d, struct event_base *base,
		   void (*expired)(void *, enum deadline_kind), void *arg);
void deadline_start(struct deadline *d, enum deadline_kind kind,
		    uint64_t allow_ms, uint64_t rate);
void deadline_stop(struct deadline *d);
/* Credit for n octets received (DEADLINE_DATA). */
void deadline_add_octets(struct deadline *d, uint64_t n);
/*
 * Brings the end of a running LINE or TLS deadline forward to at most
 * allow_ms from now (server under stress); DATA deadlines are left alone.
 */
void deadline_shorten(struct deadline *d, uint64_t allow_ms);
void deadline_clear(struct deadline *d);

/* "line", "tls-handshake", "data": for the log. */
const char *deadline_kind_name(enum deadline_kind kind);

/*
 * A TLS bufferevent (libevent's OpenSSL one) set up for a session: a
 * close without close_notify is an end of file, as it is in tls.c's
 * context (SSL_OP_IGNORE_UNEXPECTED_EOF).
 */
void session_tls_bev_setup(struct bufferevent *bev);

/*
 * Why a connection ended, from a bufferevent event other than
 * BEV_EVENT_CONNECTED, in the disconnect vocabulary shared by SMTP and
 * POP3 (docs/operations.md, "Disconnect reasons"): "eof" (the client
 * closed or reset it, with or without TLS close_notify), "timeout",
 * "write-timeout", "tls-error" (err gets OpenSSL's reason, e.g. "wrong
 * version number") or "io-error" (err gets strerror). Drains the
 * bufferevent's OpenSSL error queue.
 */
const char *session_end_reason(struct bufferevent *bev, short what,
			       char *err, size_t size);

/*
 * The bounded line reader. line_take() takes the next LF-ended line from
 * in: 1 with its n octets (LF included) copied to buf (*n_r = n); 0 if
 * more input is needed; -1 if a line longer than max (or than size) was
 * thrown away, or the start of one that has no LF yet within max octets
 * (its rest is then thrown away as it comes, up to its LF). After -1 the
 * caller answers "line too long" and calls again. No copy is made of a
 * line it throws away.
 */
struct line_reader {
	bool skip;		/* discarding the rest of an over-long line */
};

int line_take(struct line_reader *lr, struct evbuffer *in, size_t max,
	      char *buf, size_t size, size_t *n_r);

#endif
