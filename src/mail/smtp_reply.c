/*
 * SMTP reply and EHLO keyword parsers: see smtp_reply.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/smtp_reply.h"

/* ---- replies ---------------------------------------------------------- */

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static bool
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* 1 to 3 digits at s[*i]: advances *i. */
static bool
digits13(const char *s, size_t len, size_t *i)
{
	size_t n = 0;

	while (*i < len && is_digit(s[*i]) && n < 4) {
		(*i)++;
		n++;
	}
	return n >= 1 && n <= 3;
}

/* An RFC 3463 code "class.subject.detail" at the start of s, followed by
 * a space or the end: its length, else 0. */
static size_t
enh_code_len(const char *s, size_t len, char class)
{
	size_t i = 2;

	if (len < 5 || s[0] != class || s[1] != '.')
		return 0;
	if (!digits13(s, len, &i) || i >= len || s[i] != '.')
		return 0;
	i++;
	if (!digits13(s, len, &i))
		return 0;
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Appends one line's text: joined with " ", bytes outside printable
 * ASCII replaced by '?', cut at the size. */
static void
text_append(struct smtp_reply_parser *p, const char *s, size_t len)
{
	size_t room, i;

	if (len == 0)
		return;
	if (p->textlen > 0 && p->textlen < SMTP_CLIENT_TEXT_MAX - 1)
		p->r.text[p->textlen++] = ' ';
	room = SMTP_CLIENT_TEXT_MAX - 1 - p->textlen;
	if (len > room)
		len = room;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		p->r.text[p->textlen++] = ch < 0x20 || ch >= 0x7f ? '?'
								   : (char)ch;
	}
	p->r.text[p->textlen] = '\0';
}

int
smtp_reply_parser_line(struct smtp_reply_parser *p, const char *line,
		       size_t len, struct smtp_reply *r)
{
	const char *text;
	size_t tlen, n;
	int code;

	if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
	    !is_digit(line[2]) || (len > 3 && line[3] != '-' && line[3] != ' '))
		goto bad;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (p->nlines > 0 && code != p->code)
		goto bad;
	if (++p->nlines > SMTP_CLIENT_REPLY_LINES)
		goto bad;
	p->code = p->r.code = code;
	text = len > 4 ? line + 4 : line + len;
	tlen = len > 4 ? len - 4 : 0;
	if (p->nlines == 1) {
		if ((n = enh_code_len(text, tlen, line[0])) > 0) {
			memcpy(p->r.enh, text, n);
			p->r.enh[n] = '\0';
		}
	} else {
		/* RFC 2034: the code may repeat on every line */
		n = strlen(p->r.enh);
		if (n == 0 || tlen < n || memcmp(text, p->r.enh, n) != 0 ||
		    (tlen > n && text[n] != ' '))
			n = 0;
	}
	if (n > 0) {
		text += n;
		tlen -= n;
		if (tlen > 0) {
			text++;
			tlen--;
		}
	}
	text_append(p, text, tlen);
	if (len > 3 && line[3] == '-')
		return 0;
	*r = p->r;
	smtp_reply_parser_init(p);
	return 1;
bad:
	smtp_reply_parser_init(p);
	return -1;
}

/* ---- EHLO keywords ---------------------------------------------------- */

static bool
keyword_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* "SIZE n": n must be all digits and fit; anything else means no
 * known limit. */
static uint64_t
ehlo_size(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0, n = 0;

	while (i < len && s[i] == ' ')
		i++;
	for (; i < len && is_digit(s[i]); i++, n++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	while (i < len && s[i] == ' ')
		i++;
	return n > 0 && i == len ? v : 0;
}

static void
ehlo_auth(struct smtp_ehlo *e, const char *s, size_t len)
{
	size_t i = 0, start;

	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (keyword_is(s + start, i - start, "PLAIN"))
			e->ext |= SMTP_EXT_AUTH_PLAIN;
		else if (keyword_is(s + start, i - start, "LOGIN"))
			e->ext |= SMTP_EXT_AUTH_LOGIN;
	}
}

void
smtp_ehlo_line(struct smtp_ehlo *e, const char *line, size_t len)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
		{"PIPELINING", SMTP_EXT_PIPELINING},
		{"8BITMIME", SMTP_EXT_8BITMIME},
		{"SMTPUTF8", SMTP_EXT_SMTPUTF8},
		{"CHUNKING", SMTP_EXT_CHUNKING},
		{"BINARYMIME", SMTP_EXT_BINARYMIME},
		{"STARTTLS", SMTP_EXT_STARTTLS},
		{"DSN", SMTP_EXT_DSN},
		{"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
	};
	size_t k = 0, i;

	while (k < len && line[k] != ' ' && line[k] != '=')
		k++;
	if (keyword_is(line, k, "AUTH")) {
		/* "AUTH=LOGIN PLAIN" is the pre-RFC 2554 spelling */
		if (k < len)
			ehlo_auth(e, line + k + 1, len - k - 1);
		return;
	}
	if (k < len && line[k] == '=')
		return;
	if (keyword_is(line, k, "SIZE")) {
		e->ext |= SMTP_EXT_SIZE;
		e->size = ehlo_size(line + k, len - k);
		return;
	}
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (keyword_is(line, k, words[i].name))
			e->ext |= words[i].bit;
}
