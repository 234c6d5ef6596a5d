/*
 * The milter protocol's packets and replies: see milter_proto.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

#include "lib/xalloc.h"
#include "mail/milter_proto.h"

/* ---- the encoder ------------------------------------------------------ */

void
milter_buf_clear(struct milter_buf *b)
{
	strbuf_free(&b->out);
}

static void
put(struct milter_buf *b, const void *p, size_t n)
{
	strbuf_add(&b->out, p, n);
}

static void
put_u32(struct milter_buf *b, uint32_t v)
{
	unsigned char o[4] = {v >> 24, v >> 16, v >> 8, v};

	put(b, o, 4);
}

static void
put_str(struct milter_buf *b, const char *s)
{
	put(b, s, strlen(s) + 1);
}

/* Starts a packet: its length is filled in by end(). */
static size_t
begin(struct milter_buf *b, enum milter_cmd cmd)
{
	size_t at = b->out.len;
	unsigned char c = (unsigned char)cmd;

	put_u32(b, 0);
	put(b, &c, 1);
	return at;
}

static void
end(struct milter_buf *b, size_t at)
{
	size_t n = b->out.len - at - 4;
	unsigned char *o = (unsigned char *)b->out.s + at;

	if (n > UINT32_MAX)
		fatal("milter packet too large");
	o[0] = n >> 24;
	o[1] = n >> 16;
	o[2] = n >> 8;
	o[3] = n;
}

void
milter_put_simple(struct milter_buf *b, enum milter_cmd cmd)
{
	end(b, begin(b, cmd));
}

void
milter_put_optneg(struct milter_buf *b, uint32_t actions, uint32_t protocol)
{
	size_t at = begin(b, MC_OPTNEG);

	put_u32(b, MILTER_VERSION);
	put_u32(b, actions);
	put_u32(b, protocol);
	end(b, at);
}

void
milter_put_connect(struct milter_buf *b, const char *hostname, char family,
		   uint16_t port, const char *addr)
{
	size_t at = begin(b, MC_CONNECT);
	unsigned char p[2] = {port >> 8, port & 0xff};

	put_str(b, hostname);
	put(b, &family, 1);
	if (family != 'U') {
		put(b, p, 2);
		put_str(b, addr);
	}
	end(b, at);
}

void
milter_put_helo(struct milter_buf *b, const char *helo)
{
	size_t at = begin(b, MC_HELO);

	put_str(b, helo);
	end(b, at);
}

void
milter_put_envaddr(struct milter_buf *b, enum milter_cmd cmd,
		   const char *addr, const char *const *args, size_t nargs)
{
	size_t at = begin(b, cmd);

	put_str(b, addr);
	for (size_t i = 0; i < nargs; i++)
		put_str(b, args[i]);
	end(b, at);
}

void
milter_put_header(struct milter_buf *b, const char *name, const char *value)
{
	size_t at = begin(b, MC_HEADER);

	put_str(b, name);
	put_str(b, value);
	end(b, at);
}

void
milter_put_body(struct milter_buf *b, const void *data, size_t len)
{
	size_t at = begin(b, MC_BODY);

	if (len > MILTER_CHUNK)
		fatal("milter body chunk too large");
	put(b, data, len);
	end(b, at);
}

void
milter_put_macros(struct milter_buf *b, enum milter_cmd cmd,
		  const char *const *names, const char *const *values,
		  size_t n)
{
	size_t at = begin(b, MC_MACRO);
	unsigned char c = (unsigned char)cmd;

	put(b, &c, 1);
	for (size_t i = 0; i < n; i++) {
		put_str(b, names[i]);
		put_str(b, values[i]);
	}
	end(b, at);
}

/* ---- the reply parser ------------------------------------------------- */

/* A reader over a packet's data: every take is bounded by its end. */
struct rd {
	const unsigned char *p, *end;
	const char *error;
};

static bool
take_u32(struct rd *d, uint32_t *v)
{
	if (d->end - d->p < 4) {
		d->error = "short packet";
		return false;
	}
	*v = (uint32_t)d->p[0] << 24 | (uint32_t)d->p[1] << 16 |
	     (uint32_t)d->p[2] << 8 | d->p[3];
	d->p += 4;
	return true;
}

/* A NUL-terminated string inside the packet. */
static const char *
take_str(struct rd *d)
{
	const unsigned char *nul = memchr(d->p, '\0', (size_t)(d->end - d->p));
	const char *s = (const char *)d->p;

	if (nul == NULL) {
		d->error = "string without its NUL";
		return NULL;
	}
	d->p = nul + 1;
	return s;
}

static bool
done(struct rd *d)
{
	if (d->p != d->end) {
		d->error = "trailing octets";
		return false;
	}
	return true;
}

static bool
digits3(const char *s, int *code_r)
{
	for (int i = 0; i < 3; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	*code_r = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return true;
}

/*
 * A REPLYCODE's text: "ddd text" or "ddd-text\r\nddd text", every line
 * with the same 4xx/5xx code, an enhanced code (if any: "d.d.d " after
 * the code) of the same class; printable characters only.
 */
static bool
replycode_check(const char *s, int *code_r)
{
	int code, c;
	const char *p = s;

	if (!digits3(s, &code) || code < 400 || code > 599)
		return false;
	for (;;) {
		const char *eol = strstr(p, "\r\n");
		size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);

		if (n < 3 || !digits3(p, &c) || c != code)
			return false;
		if (n > 3 && p[3] != ' ' && p[3] != '-')
			return false;
		if ((eol != NULL) != (n > 3 && p[3] == '-'))
			return false;
		if (n > 5 && p[4] >= '2' && p[4] <= '5' && p[5] == '.' &&
		    p[4] != p[0])
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 ||
			    (unsigned char)p[i] > 0x7e)
				return false;
		if (eol == NULL)
			break;
		p = eol + 2;
	}
	*code_r = code;
	return true;
}

static bool
parse_optneg(struct rd *d, struct milter_reply *r)
{
	if (!take_u32(d, &r->version) || !take_u32(d, &r->actions) ||
	    !take_u32(d, &r->protocol))
		return false;
	/* then symbol lists: a stage and its names, until the end */
	while (d->p < d->end) {
		uint32_t stage;
		const char *names;

		if (!take_u32(d, &stage) || (names = take_str(d)) == NULL)
			return false;
		if (stage >= MM_NSTAGES) {
			d->error = "symbol list for an unknown stage";
			return false;
		}
		r->symlist[stage] = names;
	}
	return true;
}

/* The data of a reply of type t; false with d->error. */
static bool
parse_data(struct rd *d, struct milter_reply *r)
{
	uint32_t stage;

	switch (r->type) {
	case MR_ACCEPT: case MR_CONTINUE: case MR_DISCARD: case MR_REJECT:
	case MR_TEMPFAIL: case MR_PROGRESS: case MR_SKIP: case MR_SHUTDOWN:
	case MR_CONN_FAIL:
		return done(d);
	case MR_OPTNEG:
		return parse_optneg(d, r);
	case MR_REPLYCODE:
		if ((r->text = take_str(d)) == NULL || !done(d))
			return false;
		if (!replycode_check(r->text, &r->code)) {
			d->error = "replycode not a valid 4xx/5xx reply";
			return false;
		}
		return true;
	case MR_INSHEADER: case MR_CHGHEADER:
		if (!take_u32(d, &r->index))
			return false;
		/* FALLTHROUGH */
	case MR_ADDHEADER:
		if ((r->name = take_str(d)) == NULL ||
		    (r->value = take_str(d)) == NULL || !done(d))
			return false;
		if (r->name[0] == '\0') {
			d->error = "header without a name";
			return false;
		}
		return true;
	case MR_ADDRCPT: case MR_DELRCPT: case MR_QUARANTINE:
		return (r->addr = take_str(d)) != NULL && done(d);
	case MR_ADDRCPT_PAR: case MR_CHGFROM:
		if ((r->addr = take_str(d)) == NULL)
			return false;
		if (d->p < d->end && (r->args = take_str(d)) == NULL)
			return false;
		return done(d);
	case MR_REPLBODY:
		r->body = d->p;
		r->body_len = (size_t)(d->end - d->p);
		return true;
	case MR_SETSYMLIST:
		if (!take_u32(d, &stage) || stage >= MM_NSTAGES) {
			d->error = "symbol list for an unknown stage";
			return false;
		}
		if ((r->symlist[stage] = take_str(d)) == NULL)
			return false;
		return done(d);
	}
	d->error = "unknown reply";
	return false;
}

int
milter_reply_parse(const unsigned char *buf, size_t len,
		   struct milter_reply *r, size_t *used_r,
		   const char **error_r)
{
	uint32_t n;
	struct rd d;

	memset(r, 0, sizeof(*r));
	if (len < 4)
		return 0;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	if (n == 0 || n > MILTER_REPLY_MAX) {
		*error_r = n == 0 ? "empty packet" : "packet too large";
		return -1;
	}
	if (len - 4 < n)
		return 0;
	r->type = (enum milter_reply_type)buf[4];
	d.p = buf + 5;
	d.end = buf + 4 + n;
	d.error = NULL;
	if (!parse_data(&d, r)) {
		*error_r = d.error != NULL ? d.error : "bad reply";
		return -1;
	}
	*used_r = 4 + (size_t)n;
	return 1;
}

const char *
milter_reply_name(int type)
{
	switch (type) {
	case MR_ADDRCPT: return "addrcpt";
	case MR_DELRCPT: return "delrcpt";
	case MR_ADDRCPT_PAR: return "addrcpt_par";
	case MR_SHUTDOWN: return "shutdown";
	case MR_ACCEPT: return "accept";
	case MR_REPLBODY: return "replbody";
	case MR_CONTINUE: return "continue";
	case MR_DISCARD: return "discard";
	case MR_CHGFROM: return "chgfrom";
	case MR_CONN_FAIL: return "conn_fail";
	case MR_ADDHEADER: return "addheader";
	case MR_INSHEADER: return "insheader";
	case MR_SETSYMLIST: return "setsymlist";
	case MR_CHGHEADER: return "chgheader";
	case MR_OPTNEG: return "optneg";
	case MR_PROGRESS: return "progress";
	case MR_QUARANTINE: return "quarantine";
	case MR_REJECT: return "reject";
	case MR_SKIP: return "skip";
	case MR_TEMPFAIL: return "tempfail";
	case MR_REPLYCODE: return "replycode";
	}
	return "unknown";
}

int
milter_negotiate(const struct milter_reply *r, uint32_t offer_actions,
		 uint32_t offer_protocol, uint32_t *actions_r,
		 uint32_t *protocol_r, const char **error_r)
{
	if (r->type != MR_OPTNEG) {
		*error_r = "expected the option negotiation";
		return -1;
	}
	if (r->version < 2) {
		*error_r = "milter protocol version below 2";
		return -1;
	}
	if ((r->actions & ~offer_actions) != 0) {
		*error_r = "milter asks for actions not offered";
		return -1;
	}
	if ((r->protocol & ~offer_protocol) != 0) {
		*error_r = "milter asks for protocol steps not offered";
		return -1;
	}
	*actions_r = r->actions;
	*protocol_r = r->protocol;
	return 0;
}
