/*
 * The queue file's envelope and state records: format and parse (see
 * envelope.h and docs/queue-format.md). Every string value is xtext.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/envelope.h"

#define STATE_MAGIC "godwit-state 1"

bool
queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return i == QUEUE_ID_LEN;
}

/* ---- xtext ---------------------------------------------------------- */

static void
xtext_put(FILE *f, const char *s)
{
	if (*s == '\0') {
		fputc('+', f);	/* "+" alone: the empty string */
		return;
	}
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=')
			fprintf(f, "+%02X", c);
		else
			fputc(c, f);
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *
xtext_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	if (len == 1 && s[0] == '+') {
		out[0] = '\0';
		return out;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			int h, l;
			if (i + 2 >= len)
				goto bad;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				goto bad;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if ((unsigned char)s[i] < 33 ||
			   (unsigned char)s[i] > 126 || s[i] == '=') {
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* ---- the envelope: writing ------------------------------------------ */

char *
queue_envelope_format(const struct queue_envelope *e, size_t *len_r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "%s %d\n", QUEUE_MAGIC, QUEUE_VERSION);
	fprintf(f, "id %s\n", e->id);
	fprintf(f, "arrival %lld\n", (long long)e->arrival);
	fputs("client ", f);
	xtext_put(f, e->client_ip);
	fputs("\nhelo ", f);
	xtext_put(f, e->helo);
	fputs("\nsender ", f);
	xtext_put(f, e->sender);
	fputs("\nbody ", f);
	xtext_put(f, smtp_body_name(e->body));
	fprintf(f, "\nsmtputf8 %d\nret ", e->smtputf8 ? 1 : 0);
	xtext_put(f, e->ret);
	fputs("\nenvid ", f);
	xtext_put(f, e->envid);
	if (e->auth != NULL && e->auth[0] != '\0') {
		fputs("\nauth ", f);
		xtext_put(f, e->auth);
	}
	fputc('\n', f);
	for (size_t i = 0; i < e->nrcpts; i++) {
		fputs("rcpt ", f);
		xtext_put(f, e->rcpts[i].addr);
		fprintf(f, " %u ", e->rcpts[i].notify);
		xtext_put(f, e->rcpts[i].orcpt);
		fputc('\n', f);
	}
	fprintf(f, "size %llu\n\n", (unsigned long long)e->size);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len_r = len;
	return buf;
}

void
queue_rcpt_add(struct queue_envelope *e, const char *addr, unsigned notify,
	       const char *orcpt)
{
	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*e->rcpts));
	e->rcpts[e->nrcpts].addr = xstrdup(addr);
	e->rcpts[e->nrcpts].notify = notify;
	e->rcpts[e->nrcpts].orcpt = xstrdup(orcpt != NULL ? orcpt : "");
	e->nrcpts++;
}

void
queue_envelope_clear(struct queue_envelope *e)
{
	free(e->client_ip);
	free(e->helo);
	free(e->sender);
	free(e->ret);
	free(e->envid);
	free(e->auth);
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
	}
	free(e->rcpts);
	memset(e, 0, sizeof(*e));
}

/* ---- the envelope: reading ------------------------------------------ */

/* What an envelope parse has seen so far. */
struct env_parse {
	struct queue_envelope *e;
	bool have_magic;
	bool have_body;
	bool have_size;
};

/* An xtext string field, once. */
static int
env_string(char **dst, const char *v, size_t vlen)
{
	if (*dst != NULL)
		return -1;	/* repeated */
	*dst = xtext_decode(v, vlen);
	return *dst == NULL ? -1 : 0;
}

/* A decimal of at most 23 digits. */
static int
env_uint(const char *v, size_t vlen, uint64_t *n_r)
{
	char tmp[24];

	if (vlen >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, vlen);
	tmp[vlen] = '\0';
	return parse_uint64(tmp, n_r);
}

static int
env_body(struct env_parse *ps, const char *v, size_t vlen)
{
	char *name = NULL;

	if (ps->have_body || env_string(&name, v, vlen) < 0)
		return -1;
	ps->have_body = true;
	if (strcmp(name, smtp_body_name(SMTP_BODY_8BITMIME)) == 0)
		ps->e->body = SMTP_BODY_8BITMIME;
	else if (strcmp(name, smtp_body_name(SMTP_BODY_BINARYMIME)) == 0)
		ps->e->body = SMTP_BODY_BINARYMIME;
	else
		ps->e->body = SMTP_BODY_7BIT;
	free(name);
	return 0;
}

/* "rcpt ADDR NOTIFY ORCPT" */
static int
env_rcpt(struct queue_envelope *e, const char *v, size_t vlen)
{
	const char *end = v + vlen, *s1 = memchr(v, ' ', vlen), *s2;
	char *addr, *orcpt, num[8];
	uint64_t notify;
	int ret = -1;

	if (s1 == NULL)
		return -1;
	s2 = memchr(s1 + 1, ' ', (size_t)(end - s1 - 1));
	if (s2 == NULL || (size_t)(s2 - s1 - 1) >= sizeof(num))
		return -1;
	memcpy(num, s1 + 1, (size_t)(s2 - s1 - 1));
	num[s2 - s1 - 1] = '\0';
	if (parse_uint64(num, &notify) < 0 || notify > 15)
		return -1;
	addr = xtext_decode(v, (size_t)(s1 - v));
	orcpt = xtext_decode(s2 + 1, (size_t)(end - s2 - 1));
	if (addr != NULL && orcpt != NULL && *addr != '\0') {
		queue_rcpt_add(e, addr, (unsigned)notify, orcpt);
		ret = 0;
	}
	free(addr);
	free(orcpt);
	return ret;
}

static int
env_id(struct queue_envelope *e, const char *v, size_t vlen)
{
	if (vlen != QUEUE_ID_LEN)
		return -1;
	memcpy(e->id, v, vlen);
	e->id[vlen] = '\0';
	return queue_id_valid(e->id) ? 0 : -1;
}

/* One "key value" line after the first; -1 if it is not a good one. */
static int
env_field(struct env_parse *ps, const char *k, size_t klen, const char *v,
	  size_t vlen)
{
	struct queue_envelope *e = ps->e;
	uint64_t n;

#define KEY(s) (klen == strlen(s) && memcmp(k, s, klen) == 0)
	if (KEY("id"))
		return env_id(e, v, vlen);
	if (KEY("arrival")) {
		if (env_uint(v, vlen, &n) < 0 || n > INT64_MAX)
			return -1;
		e->arrival = (int64_t)n;
		return 0;
	}
	if (KEY("client"))
		return env_string(&e->client_ip, v, vlen);
	if (KEY("helo"))
		return env_string(&e->helo, v, vlen);
	if (KEY("sender"))
		return env_string(&e->sender, v, vlen);
	if (KEY("body"))
		return env_body(ps, v, vlen);
	if (KEY("smtputf8")) {
		if (vlen != 1 || (v[0] != '0' && v[0] != '1'))
			return -1;
		e->smtputf8 = v[0] == '1';
		return 0;
	}
	if (KEY("ret"))
		return env_string(&e->ret, v, vlen);
	if (KEY("envid"))
		return env_string(&e->envid, v, vlen);
	if (KEY("auth"))
		return env_string(&e->auth, v, vlen);
	if (KEY("rcpt"))
		return env_rcpt(e, v, vlen);
	if (KEY("size")) {
		/* bounded before anyone adds to it (QUEUE_SIZE_MAX) */
		if (env_uint(v, vlen, &e->size) < 0 ||
		    e->size > QUEUE_SIZE_MAX)
			return -1;
		ps->have_size = true;
		return 0;
	}
#undef KEY
	return -1;
}

/* The first line: magic and version. */
static int
env_magic(const char *k, size_t klen, const char *v, size_t vlen)
{
	if (klen != strlen(QUEUE_MAGIC) || memcmp(k, QUEUE_MAGIC, klen) != 0)
		return -1;
	return vlen == 1 && v[0] == '0' + QUEUE_VERSION ? 0 : -1;
}

/* At the blank line: everything a delivery needs is there. */
static bool
env_complete(struct env_parse *ps)
{
	struct queue_envelope *e = ps->e;
	char **opt[] = {&e->client_ip, &e->helo, &e->ret, &e->envid,
			&e->auth};

	if (!ps->have_magic || !ps->have_size || e->id[0] == '\0' ||
	    e->sender == NULL || e->nrcpts == 0)
		return false;
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (*opt[i] == NULL)
			*opt[i] = xstrdup("");
	return true;
}

int
queue_envelope_parse(const char *buf, size_t len, struct queue_envelope *e,
		     size_t *hdr_len_r, char **error_r)
{
	struct env_parse ps = {.e = e};
	const char *p = buf, *end = buf + len, *nl;
	int lineno = 0;

	memset(e, 0, sizeof(*e));
	for (; p < end; p = nl + 1) {
		const char *sp;
		int r;

		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if (nl == p) {	/* blank line: end of envelope */
			if (!env_complete(&ps)) {
				*error_r = xstrdup("incomplete envelope");
				goto fail;
			}
			*hdr_len_r = (size_t)(nl + 1 - buf);
			return 0;
		}
		if ((sp = memchr(p, ' ', (size_t)(nl - p))) == NULL)
			goto bad;
		if (!ps.have_magic) {
			r = env_magic(p, (size_t)(sp - p), sp + 1,
				      (size_t)(nl - sp - 1));
			ps.have_magic = r == 0;
		} else {
			r = env_field(&ps, p, (size_t)(sp - p), sp + 1,
				      (size_t)(nl - sp - 1));
		}
		if (r < 0)
			goto bad;
	}
	*error_r = xstrdup("truncated envelope");
	goto fail;
bad:
	*error_r = xasprintf("malformed envelope line %d", lineno);
fail:
	queue_envelope_clear(e);
	return -1;
}

/* ---- delivery state ------------------------------------------------- */

void
queue_state_init(struct queue_state *st, size_t nrcpts)
{
	memset(st, 0, sizeof(*st));
	st->last_error = xstrdup("");
	st->nrcpts = nrcpts;
	st->status = xcalloc(nrcpts + 1, sizeof(*st->status));
	st->errors = xcalloc(nrcpts + 1, sizeof(*st->errors));
	for (size_t i = 0; i < nrcpts; i++)
		st->errors[i] = xstrdup("");
}

void
queue_state_clear(struct queue_state *st)
{
	if (st->errors != NULL)
		for (size_t i = 0; i < st->nrcpts; i++)
			free(st->errors[i]);
	free(st->errors);
	free(st->status);
	free(st->last_error);
	memset(st, 0, sizeof(*st));
}

/* "attempts N", "next N", "warned N" */
static int
state_number(struct queue_state *st, const char *key, const char *v,
	     const char **why_r)
{
	uint64_t n;

	if (parse_uint64(v, &n) < 0) {
		*why_r = "a bad number";
		return -1;
	}
	if (key[0] == 'a')
		st->attempts = n > 1000000 ? 1000000 : (unsigned)n;
	else if (key[0] == 'n')
		st->next_attempt = (int64_t)(n > INT64_MAX ? INT64_MAX : n);
	else
		st->warned = n != 0;
	return 0;
}

/* "rcpt INDEX STATUS ERROR" */
static int
state_rcpt(struct queue_state *st, char *v, const char **why_r)
{
	char *f2 = strchr(v, ' '), *f3, *e2;
	uint64_t idx;

	if (f2 == NULL || (f3 = strchr(f2 + 1, ' ')) == NULL) {
		*why_r = "a short rcpt line";
		return -1;
	}
	*f2++ = '\0';
	*f3++ = '\0';
	if (parse_uint64(v, &idx) < 0 || idx >= st->nrcpts) {
		*why_r = "a recipient index out of range";
		return -1;
	}
	if (strcmp(f2, "pending") == 0)
		st->status[idx] = QRS_PENDING;
	else if (strcmp(f2, "done") == 0)
		st->status[idx] = QRS_DONE;
	else if (strcmp(f2, "failed") == 0)
		st->status[idx] = QRS_FAILED;
	else {
		*why_r = "an unknown recipient status";
		return -1;
	}
	if ((e2 = xtext_decode(f3, strlen(f3))) == NULL) {
		*why_r = "bad xtext";
		return -1;
	}
	free(st->errors[idx]);
	st->errors[idx] = e2;
	return 0;
}

/* One line after the magic. */
static int
state_line(struct queue_state *st, char *line, const char **why_r)
{
	char *sp = strchr(line, ' '), *v, *e2;

	if (sp == NULL) {
		*why_r = "a line without a value";
		return -1;
	}
	*sp = '\0';
	v = sp + 1;
	if (strcmp(line, "attempts") == 0 || strcmp(line, "next") == 0 ||
	    strcmp(line, "warned") == 0)
		return state_number(st, line, v, why_r);
	if (strcmp(line, "rcpt") == 0)
		return state_rcpt(st, v, why_r);
	if (strcmp(line, "error") == 0) {
		if ((e2 = xtext_decode(v, strlen(v))) == NULL) {
			*why_r = "bad xtext";
			return -1;
		}
		free(st->last_error);
		st->last_error = e2;
		return 0;
	}
	*why_r = "an unknown key";
	return -1;
}

int
queue_state_parse(char *buf, struct queue_state *st, const char **why_r)
{
	char *line, *save = NULL;
	bool first = true;

	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (first) {
			if (strcmp(line, STATE_MAGIC) != 0) {
				*why_r = "not a godwit state file (version?)";
				return -1;
			}
			first = false;
		} else if (state_line(st, line, why_r) < 0) {
			return -1;
		}
	}
	if (first) {
		*why_r = "empty";
		return -1;
	}
	return 0;
}

char *
queue_state_format(const struct queue_state *st, size_t *len_r)
{
	static const char *const names[] = {"pending", "done", "failed"};
	char *text = NULL;
	FILE *f;

	if ((f = open_memstream(&text, len_r)) == NULL)
		abort();
	fprintf(f, STATE_MAGIC "\nattempts %u\nnext %lld\nwarned %d\nerror ",
		st->attempts,
		(long long)(st->next_attempt < 0 ? 0 : st->next_attempt),
		st->warned ? 1 : 0);
	xtext_put(f, st->last_error);
	fputc('\n', f);
	for (size_t i = 0; i < st->nrcpts; i++) {
		fprintf(f, "rcpt %zu %s ", i, names[st->status[i]]);
		xtext_put(f, st->errors[i]);
		fputc('\n', f);
	}
	fclose(f);
	return text;
}
