/*
 * SMTP command and address parsing: the verbs of RFC 5321 4.1.1, the
 * address grammar of 4.1.2 with RFC 6531's UTF-8, and the MAIL/RCPT/BDAT
 * parameters of RFC 1870, 6152, 3030, 3461 and 4954.
 *
 * Everything here is pure: it reads a NUL-terminated line and fills a
 * caller's struct, never allocating, logging or touching a socket, so that
 * the whole file can be fuzzed and unit-tested in isolation.
 *
 * Addresses are parsed for what they literally are. A relay trick such as
 * "user%other@local", "other!user@local" or a quoted "@" is never
 * interpreted: the local part stays opaque, and the one place that decides
 * relaying (recipient.c) sees exactly the domain the client named.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "mail/smtp_parse.h"

/*
 * How an address error is reported depends on whose address it is:
 * RFC 3463 has 5.1.7 for a bad sender and 5.1.3 for a bad recipient.
 */
struct role {
	const char *enh;
	const char *usage;	/* the reply when the <> are missing */
};

static const struct role role_sender = {"5.1.7",
					"Syntax: MAIL FROM:<address>"};
static const struct role role_rcpt = {"5.1.3", "Syntax: RCPT TO:<address>"};

static int
fail(struct smtp_error *err_r, int code, const char *enh, const char *text)
{
	if (err_r != NULL) {
		err_r->code = code;
		err_r->enh = enh;
		err_r->text = text;
	}
	return -1;
}

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static unsigned char
to_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/*
 * Case-insensitive ASCII comparison of the first n octets of s with lit.
 * strncasecmp() would follow the process locale; protocol keywords must
 * not. A shorter s mismatches at its NUL, so it is never read past.
 */
static bool
ascii_ieq(const char *s, const char *lit, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (to_lower((unsigned char)s[i]) !=
		    to_lower((unsigned char)lit[i]))
			return false;
	return true;
}

/* RFC 5322 atext, ASCII part; RFC 6531 adds UTF8-non-ascii. */
static bool
is_atext(unsigned char c)
{
	return is_alnum(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629) of a non-ASCII
 * character at p, or 0 if it is malformed: overlong forms, surrogates and
 * code points past U+10FFFF are refused, and so are the C1 controls
 * (U+0080..U+009F), which have no business in an address. p must be
 * NUL-terminated: a NUL is never a continuation byte, so this never reads
 * past the end.
 */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		if (c == 0xc2)
			lo = 0xa0;	/* C1 controls */
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* past U+10FFFF */
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Whether s (NUL-terminated) is entirely well-formed UTF-8 text. */
static bool
utf8_valid(const unsigned char *s)
{
	size_t l;

	while (*s != '\0') {
		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((l = utf8_len(s)) == 0)
			return false;
		s += l;
	}
	return true;
}

/* ---- commands ------------------------------------------------------- */

enum arg_kind { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

static const struct verb {
	const char *name;
	enum smtp_cmd cmd;
	enum arg_kind arg;
	const char *usage;
} verbs[] = {
	{"HELO", SMTP_CMD_HELO, ARG_REQUIRED, "Syntax: HELO hostname"},
	{"EHLO", SMTP_CMD_EHLO, ARG_REQUIRED, "Syntax: EHLO hostname"},
	{"MAIL", SMTP_CMD_MAIL, ARG_REQUIRED, "Syntax: MAIL FROM:<address>"},
	{"RCPT", SMTP_CMD_RCPT, ARG_REQUIRED, "Syntax: RCPT TO:<address>"},
	{"DATA", SMTP_CMD_DATA, ARG_NONE, "Syntax: DATA (no parameters)"},
	{"BDAT", SMTP_CMD_BDAT, ARG_REQUIRED, "Syntax: BDAT size [LAST]"},
	{"RSET", SMTP_CMD_RSET, ARG_NONE, "Syntax: RSET (no parameters)"},
	{"NOOP", SMTP_CMD_NOOP, ARG_OPTIONAL, NULL},
	{"QUIT", SMTP_CMD_QUIT, ARG_NONE, "Syntax: QUIT (no parameters)"},
	{"HELP", SMTP_CMD_HELP, ARG_OPTIONAL, NULL},
	{"VRFY", SMTP_CMD_VRFY, ARG_REQUIRED, "Syntax: VRFY address"},
	{"EXPN", SMTP_CMD_EXPN, ARG_REQUIRED, "Syntax: EXPN list"},
	{"STARTTLS", SMTP_CMD_STARTTLS, ARG_NONE,
	 "Syntax: STARTTLS (no parameters)"},
	{"AUTH", SMTP_CMD_AUTH, ARG_REQUIRED,
	 "Syntax: AUTH mechanism [initial-response]"},
};

int
smtp_parse_command(const char *line, size_t len, struct smtp_command *r,
		   struct smtp_error *err_r)
{
	const char *arg, *p;
	size_t vlen, i;

	/* The caller promises len == strlen(line); a NUL inside would make
	 * everything after it invisible to the argument parsers. */
	if (memchr(line, '\0', len) != NULL)
		return fail(err_r, 500, "5.5.2", "Syntax error (NUL in line)");

	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	arg = line[vlen] == ' ' ? line + vlen + 1 : line + vlen;

	r->cmd = SMTP_CMD_UNKNOWN;
	r->verb = line;
	r->verb_len = vlen;
	r->arg = arg;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    ascii_ieq(line, verbs[i].name, vlen))
			break;
	}
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return 0;
	r->cmd = verbs[i].cmd;

	/* Trailing spaces alone do not make an argument: "QUIT " is QUIT. */
	for (p = arg; *p == ' '; p++)
		;
	switch (verbs[i].arg) {
	case ARG_NONE:
		if (*p != '\0')
			return fail(err_r, 501, "5.5.4", verbs[i].usage);
		r->arg = p;
		break;
	case ARG_REQUIRED:
		if (*p == '\0')
			return fail(err_r, 501, "5.5.4", verbs[i].usage);
		break;
	case ARG_OPTIONAL:
		break;
	}
	return 0;
}

/* ---- addresses ------------------------------------------------------ */

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 4.1.2), with RFC 6531's U-labels when utf8 is set: a non-ASCII
 * character counts as a letter (IDNA's finer rules belong to whoever turns
 * it into an A-label). ASCII is lower-cased into out (SMTP_DOMAIN_MAX + 1
 * bytes); one trailing dot is accepted and dropped, because a fully
 * qualified "example.org." names the same domain. Stops at the first
 * character that cannot continue the domain, leaving *pp there.
 */
static int
parse_dotted_domain(const char **pp, char *out, bool *utf8_r,
		    const char **why_r)
{
	const unsigned char *p = (const unsigned char *)*pp;
	size_t n = 0, label, l;
	bool hyphen;

	for (;;) {
		if (!is_alnum(*p) && *p < 0x80) {
			*why_r = "Bad domain syntax";
			return -1;
		}
		label = n;
		hyphen = false;
		for (;;) {
			if (is_alnum(*p) || *p == '-') {
				l = 1;
			} else if (*p >= 0x80) {
				if ((l = utf8_len(p)) == 0) {
					*why_r = "Malformed UTF-8 in domain";
					return -1;
				}
				*utf8_r = true;
			} else {
				break;
			}
			if (n + l > SMTP_DOMAIN_MAX) {
				*why_r = "Domain too long";
				return -1;
			}
			hyphen = *p == '-';
			while (l-- > 0)
				out[n++] = (char)to_lower(*p++);
			if (n - label > 63) {
				*why_r = "Domain label too long";
				return -1;
			}
		}
		if (hyphen) {
			*why_r = "Bad domain syntax";
			return -1;
		}
		if (*p != '.')
			break;
		if (is_alnum(p[1]) || p[1] >= 0x80) {
			if (n + 1 > SMTP_DOMAIN_MAX) {
				*why_r = "Domain too long";
				return -1;
			}
			out[n++] = '.';
			p++;
			continue;
		}
		if (p[1] == '.' || p[1] == '-') {
			*why_r = "Bad domain syntax";
			return -1;
		}
		p++;		/* the one trailing dot */
		break;
	}
	out[n] = '\0';
	*pp = (const char *)p;
	return 0;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]". The two IP forms are checked with
 * inet_pton and kept in inet_ntop's canonical form, so that
 * [IPv6:2001:DB8:0::1] and [IPv6:2001:db8::1] compare equal. General
 * literals name no address family we could deliver to: refused.
 */
static int
parse_literal(const char **pp, char *out, const char **why_r)
{
	const unsigned char *p = (const unsigned char *)*pp + 1;
	char text[64], canon[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	size_t n = 0;
	int ret;

	for (; *p != ']'; p++) {
		/* dcontent: %d33-90 / %d94-126 */
		if (*p < 33 || *p > 126 || *p == '[' || *p == '\\' ||
		    n + 1 >= sizeof(text)) {
			*why_r = "Bad address literal";
			return -1;
		}
		text[n++] = (char)*p;
	}
	text[n] = '\0';
	p++;

	if (ascii_ieq(text, "IPv6:", 5)) {
		if (inet_pton(AF_INET6, text + 5, addr) != 1 ||
		    inet_ntop(AF_INET6, addr, canon, sizeof(canon)) == NULL) {
			*why_r = "Bad IPv6 address literal";
			return -1;
		}
		ret = snprintf(out, SMTP_DOMAIN_MAX + 1, "[IPv6:%s]", canon);
	} else if (strchr(text, ':') != NULL) {
		*why_r = "Address literal type not supported";
		return -1;
	} else {
		if (inet_pton(AF_INET, text, addr) != 1 ||
		    inet_ntop(AF_INET, addr, canon, sizeof(canon)) == NULL) {
			*why_r = "Bad IPv4 address literal";
			return -1;
		}
		ret = snprintf(out, SMTP_DOMAIN_MAX + 1, "[%s]", canon);
	}
	if (ret < 0 || ret > SMTP_DOMAIN_MAX) {
		*why_r = "Bad address literal";
		return -1;
	}
	*pp = (const char *)p;
	return 0;
}

/*
 * Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2). The quoted
 * form is stored unquoted, with its quoted-pairs resolved. The 64-octet
 * limit applies to the local part as sent, quotes included; the unquoted
 * form is never longer, which also keeps it within m->local.
 *
 * An empty quoted local part ("") is grammatical but names no real
 * mailbox; refusing it means no consumer ever sees an empty local part.
 */
static int
parse_local(const char **pp, struct smtp_mailbox *m, bool *utf8_r,
	    const char **why_r)
{
	const unsigned char *start = (const unsigned char *)*pp, *p = start;
	size_t n = 0, l, atom;

	if (*p == '"') {
		m->quoted = true;
		for (p++; *p != '"'; p += l) {
			if (*p == '\\' && p[1] >= 32 && p[1] <= 126) {
				p++;
				l = 1;
			} else if (*p >= 32 && *p <= 126 && *p != '\\') {
				l = 1;
			} else if (*p >= 0x80) {
				if ((l = utf8_len(p)) == 0) {
					*why_r = "Malformed UTF-8 in address";
					return -1;
				}
				*utf8_r = true;
			} else {
				/* control character, NUL (no closing quote),
				 * or a backslash quoting one of those */
				*why_r = "Bad address syntax";
				return -1;
			}
			if ((size_t)(p + l - start) > SMTP_LOCAL_MAX) {
				*why_r = "Local part too long";
				return -1;
			}
			memcpy(m->local + n, p, l);
			n += l;
		}
		p++;
		if ((size_t)(p - start) > SMTP_LOCAL_MAX) {
			*why_r = "Local part too long";
			return -1;
		}
		if (n == 0) {
			*why_r = "Empty local part";
			return -1;
		}
	} else {
		for (;;) {
			for (atom = 0;; atom++, p += l) {
				if (is_atext(*p)) {
					l = 1;
				} else if (*p >= 0x80) {
					if ((l = utf8_len(p)) == 0) {
						*why_r = "Malformed UTF-8 in "
							 "address";
						return -1;
					}
					*utf8_r = true;
				} else {
					break;
				}
				if ((size_t)(p + l - start) > SMTP_LOCAL_MAX) {
					*why_r = "Local part too long";
					return -1;
				}
				memcpy(m->local + n, p, l);
				n += l;
			}
			if (atom == 0) {
				*why_r = "Bad address syntax";
				return -1;
			}
			if (*p != '.')
				break;
			if ((size_t)(p + 1 - start) > SMTP_LOCAL_MAX) {
				*why_r = "Local part too long";
				return -1;
			}
			m->local[n++] = '.';
			p++;
		}
	}
	m->local[n] = '\0';
	*pp = (const char *)p;
	return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static int
parse_mailbox(const char **pp, struct smtp_mailbox *m, const char **why_r)
{
	const char *p = *pp;
	bool utf8 = false;

	memset(m, 0, sizeof(*m));
	if (parse_local(&p, m, &utf8, why_r) < 0)
		return -1;
	if (*p != '@') {
		*why_r = "Bad address syntax";
		return -1;
	}
	p++;
	if (*p == '[') {
		if (parse_literal(&p, m->domain, why_r) < 0)
			return -1;
		m->is_literal = true;
	} else if (parse_dotted_domain(&p, m->domain, &utf8, why_r) < 0) {
		return -1;
	}
	m->needs_utf8 = utf8;
	*pp = p;
	return 0;
}

static int
parse_path(const char *s, bool null_ok, bool postmaster_ok, bool utf8_ok,
	   const struct role *role, struct smtp_path *r, const char **end_r,
	   struct smtp_error *err_r)
{
	char scratch[SMTP_DOMAIN_MAX + 1];
	const char *p = s, *why = "Bad address syntax";
	bool route_utf8 = false;

	memset(r, 0, sizeof(*r));
	if (*p != '<')
		return fail(err_r, 501, "5.5.4", role->usage);
	p++;

	if (*p == '>') {
		if (!null_ok)
			return fail(err_r, 501, role->enh,
				    "Null address not allowed here");
		r->null = true;
		p++;
		goto done;
	}

	/* RFC 5321 4.5.3.1.3 names the bare "<postmaster>" only for RCPT;
	 * it is the one mailbox without a domain. */
	if (postmaster_ok && ascii_ieq(p, "postmaster>", 11)) {
		memcpy(r->mbox.local, "postmaster", sizeof("postmaster"));
		p += 11;
		goto done;
	}

	/* A source route (A-d-l ":") is obsolete: checked, then ignored
	 * (RFC 5321 4.1.1.3 and appendix C). The mailbox after it is the
	 * address; the route's hosts are never contacted, so whether they
	 * are UTF-8 does not matter for SMTPUTF8. */
	if (*p == '@') {
		for (;;) {
			p++;
			if (parse_dotted_domain(&p, scratch, &route_utf8,
						&why) < 0)
				return fail(err_r, 501, role->enh, why);
			if (*p == ':')
				break;
			if (p[0] != ',' || p[1] != '@')
				return fail(err_r, 501, role->enh,
					    "Bad source route syntax");
			p++;
		}
		p++;
	}

	if (parse_mailbox(&p, &r->mbox, &why) < 0)
		return fail(err_r, 501, role->enh, why);
	if (*p != '>')
		return fail(err_r, 501, role->enh, "Bad address syntax");
	p++;

done:
	if ((size_t)(p - s) > SMTP_PATH_MAX)
		return fail(err_r, 501, role->enh, "Path too long");
	if (*p != '\0' && *p != ' ')
		return fail(err_r, 501, "5.5.4", role->usage);
	if (r->mbox.needs_utf8 && !utf8_ok)
		return fail(err_r, 553, "5.6.7",
			    "Non-ASCII address requires SMTPUTF8");
	*end_r = p;
	return 0;
}

/*
 * Only a reverse-path may be null, so null_ok tells a sender's path from
 * a recipient's for the enhanced status code.
 */
int
smtp_parse_path(const char *s, bool null_ok, bool postmaster_ok, bool utf8_ok,
		struct smtp_path *r, const char **end_r,
		struct smtp_error *err_r)
{
	return parse_path(s, null_ok, postmaster_ok, utf8_ok,
			  null_ok ? &role_sender : &role_rcpt, r, end_r, err_r);
}

/* ---- parameters ----------------------------------------------------- */

struct param {
	const char *key;
	size_t keylen;
	const char *val;	/* NULL if the keyword had no "=" */
	size_t vallen;
};

/*
 * The next esmtp-param = esmtp-keyword ["=" esmtp-value] after any
 * spaces. Returns 1 with *pr filled, 0 at the end of the line, -1 on bad
 * syntax. Several spaces between parameters, and trailing spaces, are
 * tolerated: they are harmless and common.
 */
static int
next_param(const char **pp, struct param *pr)
{
	const unsigned char *p = (const unsigned char *)*pp;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return 0;
	if (!is_alnum(*p))
		return -1;
	pr->key = (const char *)p;
	while (is_alnum(*p) || *p == '-')
		p++;
	pr->keylen = (size_t)((const char *)p - pr->key);
	pr->val = NULL;
	pr->vallen = 0;
	if (*p == '=') {
		pr->val = (const char *)++p;
		while (*p >= 33 && *p <= 126 && *p != '=')
			p++;
		pr->vallen = (size_t)((const char *)p - pr->val);
		if (pr->vallen == 0)
			return -1;
	}
	if (*p != ' ' && *p != '\0')
		return -1;
	*pp = (const char *)p;
	return 1;
}

static bool
key_is(const struct param *pr, const char *name)
{
	return strlen(name) == pr->keylen &&
	       ascii_ieq(pr->key, name, pr->keylen);
}

static bool
val_is(const char *v, size_t len, const char *name)
{
	return strlen(name) == len && ascii_ieq(v, name, len);
}


/*
 * xtext (RFC 3461 4): xchar is "!".."~" except "+" and "=", and "+XX"
 * encodes any octet. RFC 3461 spells hex in upper case; lower case is
 * unambiguous and accepted. The decoded text ends up in queue files and
 * DSN headers, so control characters (a CRLF would inject a header) are
 * refused, and non-ASCII must be well-formed UTF-8. out gets a
 * NUL-terminated string; -1 if malformed or it does not fit.
 */
static int
xtext_decode(const char *s, size_t len, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n = 0;
	int hi, lo;
	unsigned char c;

	while (i < len) {
		if (p[i] == '+') {
			if (len - i < 3 || (hi = hex_digit(p[i + 1])) < 0 ||
			    (lo = hex_digit(p[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 3;
		} else if (p[i] >= 33 && p[i] <= 126 && p[i] != '=') {
			c = p[i++];
		} else {
			return -1;
		}
		if (c < 32 || c == 127 || n + 1 >= size)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return utf8_valid((const unsigned char *)out) ? 0 : -1;
}

/* size-value = 1*20DIGIT (RFC 1870), refused if it overflows. */
static int
parse_decimal(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;
	unsigned d;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

/* "FROM:" or "TO:", case-insensitive, then at most one space. */
static const char *
skip_keyword(const char *arg, const char *kw)
{
	size_t n = strlen(kw);

	if (!ascii_ieq(arg, kw, n))
		return NULL;
	arg += n;
	if (*arg == ' ')
		arg++;
	return arg;
}

enum {
	MP_SIZE = 1 << 0,
	MP_BODY = 1 << 1,
	MP_SMTPUTF8 = 1 << 2,
	MP_RET = 1 << 3,
	MP_ENVID = 1 << 4,
	MP_AUTH = 1 << 5,
};

const char *
smtp_body_name(enum smtp_body body)
{
	switch (body) {
	case SMTP_BODY_8BITMIME:
		return "8BITMIME";
	case SMTP_BODY_BINARYMIME:
		return "BINARYMIME";
	case SMTP_BODY_7BIT:
		break;
	}
	return "7BIT";
}

int
smtp_parse_mail(const char *arg, struct smtp_mail_args *r,
		struct smtp_error *err_r)
{
	char scratch[SMTP_XTEXT_MAX + 1];
	struct param pr;
	const char *p;
	unsigned seen = 0, bit;
	int ret;

	memset(r, 0, sizeof(*r));
	if ((p = skip_keyword(arg, "FROM:")) == NULL)
		return fail(err_r, 501, "5.5.4", role_sender.usage);
	/* SMTPUTF8 comes after the path: judge non-ASCII once it is known */
	if (parse_path(p, true, false, true, &role_sender, &r->path, &p,
		       err_r) < 0)
		return -1;

	while ((ret = next_param(&p, &pr)) > 0) {
		if (key_is(&pr, "SIZE"))
			bit = MP_SIZE;
		else if (key_is(&pr, "BODY"))
			bit = MP_BODY;
		else if (key_is(&pr, "SMTPUTF8"))
			bit = MP_SMTPUTF8;
		else if (key_is(&pr, "RET"))
			bit = MP_RET;
		else if (key_is(&pr, "ENVID"))
			bit = MP_ENVID;
		else if (key_is(&pr, "AUTH"))
			bit = MP_AUTH;
		else
			return fail(err_r, 555, "5.5.4",
				    "Unsupported MAIL parameter");
		if (seen & bit)
			return fail(err_r, 555, "5.5.4",
				    "Duplicate MAIL parameter");
		seen |= bit;

		if (bit == MP_SMTPUTF8) {
			if (pr.val != NULL)
				return fail(err_r, 501, "5.5.4",
					    "SMTPUTF8 takes no value");
			r->smtputf8 = true;
			continue;
		}
		if (pr.val == NULL)
			return fail(err_r, 501, "5.5.4",
				    "MAIL parameter requires a value");
		switch (bit) {
		case MP_SIZE:
			if (parse_decimal(pr.val, pr.vallen, &r->size) < 0)
				return fail(err_r, 501, "5.5.4",
					    "Bad SIZE value");
			r->has_size = true;
			break;
		case MP_BODY:
			if (val_is(pr.val, pr.vallen, "7BIT"))
				r->body = SMTP_BODY_7BIT;
			else if (val_is(pr.val, pr.vallen, "8BITMIME"))
				r->body = SMTP_BODY_8BITMIME;
			else if (val_is(pr.val, pr.vallen, "BINARYMIME"))
				r->body = SMTP_BODY_BINARYMIME;
			else
				return fail(err_r, 501, "5.5.4",
					    "Bad BODY value");
			break;
		case MP_RET:
			if (val_is(pr.val, pr.vallen, "FULL"))
				r->ret = SMTP_RET_FULL;
			else if (val_is(pr.val, pr.vallen, "HDRS"))
				r->ret = SMTP_RET_HDRS;
			else
				return fail(err_r, 501, "5.5.4",
					    "Bad RET value");
			break;
		case MP_ENVID:
			if (xtext_decode(pr.val, pr.vallen, r->envid,
					 sizeof(r->envid)) < 0)
				return fail(err_r, 501, "5.5.4",
					    "Bad ENVID value");
			break;
		case MP_AUTH:
			/* RFC 4954 5: accepted and ignored; we do not act
			 * on another server's claim of who sent this. */
			if (xtext_decode(pr.val, pr.vallen, scratch,
					 sizeof(scratch)) < 0)
				return fail(err_r, 501, "5.5.4",
					    "Bad AUTH value");
			break;
		}
	}
	if (ret < 0)
		return fail(err_r, 501, "5.5.4", "Syntax error in parameters");
	if (r->path.mbox.needs_utf8 && !r->smtputf8)
		return fail(err_r, 553, "5.6.7",
			    "Non-ASCII address requires SMTPUTF8");
	return 0;
}

/* NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) */
static int
parse_notify(const char *v, size_t len, unsigned *r)
{
	const char *end = v + len, *comma;
	size_t n;
	unsigned bit;

	*r = 0;
	while (v <= end) {
		comma = memchr(v, ',', (size_t)(end - v));
		n = comma != NULL ? (size_t)(comma - v) : (size_t)(end - v);
		if (val_is(v, n, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (val_is(v, n, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (val_is(v, n, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (val_is(v, n, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (*r & bit)
			return -1;
		*r |= bit;
		v += n + 1;
	}
	if ((*r & SMTP_NOTIFY_NEVER) && *r != SMTP_NOTIFY_NEVER)
		return -1;
	return 0;
}

/*
 * ORCPT = addr-type ";" xtext. addr-type is an atom in RFC 3461; in
 * practice "rfc822" or "utf-8" (RFC 6533), so letters, digits and "-".
 * Stored as given type, ";", decoded address.
 */
static int
parse_orcpt(const char *v, size_t len, char *out, size_t size)
{
	const char *semi = memchr(v, ';', len);
	size_t tlen, i;

	if (semi == NULL || semi == v)
		return -1;
	tlen = (size_t)(semi - v);
	for (i = 0; i < tlen; i++)
		if (!is_alnum((unsigned char)v[i]) && v[i] != '-')
			return -1;
	if (tlen + 1 >= size || semi + 1 == v + len)
		return -1;
	memcpy(out, v, tlen);
	out[tlen] = ';';
	return xtext_decode(semi + 1, len - tlen - 1, out + tlen + 1,
			    size - tlen - 1);
}

int
smtp_parse_rcpt(const char *arg, bool utf8_ok, struct smtp_rcpt_args *r,
		struct smtp_error *err_r)
{
	struct param pr;
	const char *p;
	bool have_orcpt = false;
	int ret;

	memset(r, 0, sizeof(*r));
	if ((p = skip_keyword(arg, "TO:")) == NULL)
		return fail(err_r, 501, "5.5.4", role_rcpt.usage);
	if (parse_path(p, false, true, utf8_ok, &role_rcpt, &r->path, &p,
		       err_r) < 0)
		return -1;

	while ((ret = next_param(&p, &pr)) > 0) {
		if (key_is(&pr, "NOTIFY")) {
			if (r->notify != 0)
				return fail(err_r, 555, "5.5.4",
					    "Duplicate RCPT parameter");
			if (pr.val == NULL ||
			    parse_notify(pr.val, pr.vallen, &r->notify) < 0)
				return fail(err_r, 501, "5.5.4",
					    "Bad NOTIFY value");
		} else if (key_is(&pr, "ORCPT")) {
			if (have_orcpt)
				return fail(err_r, 555, "5.5.4",
					    "Duplicate RCPT parameter");
			have_orcpt = true;
			if (pr.val == NULL ||
			    parse_orcpt(pr.val, pr.vallen, r->orcpt,
					sizeof(r->orcpt)) < 0)
				return fail(err_r, 501, "5.5.4",
					    "Bad ORCPT value");
		} else {
			return fail(err_r, 555, "5.5.4",
				    "Unsupported RCPT parameter");
		}
	}
	if (ret < 0)
		return fail(err_r, 501, "5.5.4", "Syntax error in parameters");
	return 0;
}

/* bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] (RFC 3030 2) */
int
smtp_parse_bdat(const char *arg, uint64_t *size_r, bool *last_r,
		struct smtp_error *err_r)
{
	size_t n = strspn(arg, "0123456789");
	uint64_t v;

	if (parse_decimal(arg, n, &v) < 0)
		return fail(err_r, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	arg += n;
	if (*arg == '\0') {
		*last_r = false;
	} else if (ascii_ieq(arg, " LAST", sizeof(" LAST"))) {
		*last_r = true;
	} else {
		return fail(err_r, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	}
	*size_r = v;
	return 0;
}

/*
 * RFC 5321 4.1.1.1: EHLO SP ( Domain / address-literal ). RFC 6531 keeps
 * the EHLO argument ASCII (A-labels), so non-ASCII is refused here.
 */
int
smtp_parse_helo(const char *arg, struct smtp_error *err_r)
{
	char out[SMTP_DOMAIN_MAX + 1];
	const char *p = arg, *why;
	bool utf8 = false;
	int ret;

	if (*p == '[')
		ret = parse_literal(&p, out, &why);
	else
		ret = parse_dotted_domain(&p, out, &utf8, &why);
	if (ret < 0 || *p != '\0' || utf8)
		return fail(err_r, 501, "5.5.4", "Invalid HELO/EHLO hostname");
	return 0;
}

/* ---- formatting ----------------------------------------------------- */

/* Whether s can be sent as a Dot-string, i.e. needs no quotes. */
static bool
is_dot_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t l, atom;

	for (;;) {
		for (atom = 0;; atom++, p += l) {
			if (is_atext(*p))
				l = 1;
			else if (*p >= 0x80 && (l = utf8_len(p)) != 0)
				;
			else
				break;
		}
		if (atom == 0)
			return false;
		if (*p == '\0')
			return true;
		if (*p != '.')
			return false;
		p++;
	}
}

/*
 * A local part that a client could not have sent (control characters,
 * malformed UTF-8) is refused like one that does not fit: writing it out
 * would produce an address that means something else.
 */
int
smtp_mailbox_format(const struct smtp_mailbox *m, char *buf, size_t size)
{
	const unsigned char *p;
	bool quote;
	size_t n = 0, dlen;

	if (size == 0 || memchr(m->local, '\0', sizeof(m->local)) == NULL)
		return -1;
	for (p = (const unsigned char *)m->local; *p != '\0'; p++)
		if (*p < 32 || *p == 127)
			return -1;
	if (!utf8_valid((const unsigned char *)m->local))
		return -1;
	quote = !is_dot_string(m->local);

#define PUT(c)                                                                 \
	do {                                                                   \
		if (n + 1 >= size)                                             \
			return -1;                                             \
		buf[n++] = (char)(c);                                          \
	} while (0)

	if (quote)
		PUT('"');
	for (p = (const unsigned char *)m->local; *p != '\0'; p++) {
		if (quote && (*p == '"' || *p == '\\'))
			PUT('\\');
		PUT(*p);
	}
	if (quote)
		PUT('"');
#undef PUT
	dlen = strnlen(m->domain, sizeof(m->domain));
	if (dlen == sizeof(m->domain))
		return -1;
	if (dlen > 0) {
		if (n + 1 + dlen >= size)
			return -1;
		buf[n++] = '@';
		memcpy(buf + n, m->domain, dlen);
		n += dlen;
	}
	buf[n] = '\0';
	return 0;
}
