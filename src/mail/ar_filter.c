/*
 * The filter of forged Authentication-Results fields: see ar_filter.h.
 */
#include <string.h>
#include <strings.h>

#include "mail/ar_filter.h"

#define AR_NAME "Authentication-Results"

void
ar_filter_init(struct ar_filter *f, const char *authserv_id)
{
	memset(f, 0, sizeof(*f));
	strncpy(f->id, authserv_id, AR_FILTER_ID_MAX);
	f->at_bol = true;
}

/* Skips CFWS from *i (comments nest; quoted pairs inside them). Returns
 * false if the line ends inside it, or before anything follows. */
static bool
skip_cfws(const char *s, size_t len, size_t *i)
{
	unsigned depth = 0;

	while (*i < len && s[*i] != '\n') {
		char c = s[*i];
		if (depth > 0 && c == '\\') {
			*i += 2;
			continue;
		}
		if (c == '(') {
			if (++depth > 32)
				return false;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && c != ' ' && c != '\t') {
			return true;
		}
		(*i)++;
	}
	return false;
}

/* RFC 2045 token characters */
static bool
is_token(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* The value at s[i..len): a quoted-string or a token, into id. 1 read
 * and whole, -1 not. */
static int
read_id(const char *s, size_t len, size_t i, bool complete, char *id,
	size_t size)
{
	size_t o = 0;

	if (s[i] == '"') {
		for (i++; i < len && s[i] != '"' && s[i] != '\n'; i++) {
			if (s[i] == '\\' && i + 1 < len)
				i++;
			if (o + 1 >= size)
				return -1;
			id[o++] = s[i];
		}
		if (i >= len || s[i] != '"')
			return -1;
		id[o] = '\0';
		return o > 0 ? 1 : -1;
	}
	for (; i < len && is_token((unsigned char)s[i]); i++) {
		if (o + 1 >= size)
			return -1;
		id[o++] = s[i];
	}
	id[o] = '\0';
	if (o == 0 || (i == len && !complete))
		return -1;
	/* what follows must end the token: blanks, a comment, ';', LF */
	if (i < len && strchr(" \t(;\n", s[i]) == NULL)
		return -1;
	return 1;
}

int
ar_field_authserv_id(const char *line, size_t len, bool complete, char *id,
		     size_t size)
{
	const char *colon = memchr(line, ':', len);
	size_t nlen, i;

	if (colon == NULL || memchr(line, '\n', (size_t)(colon - line)))
		return 0;
	nlen = (size_t)(colon - line);
	while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
		nlen--;
	if (nlen != sizeof(AR_NAME) - 1 ||
	    strncasecmp(line, AR_NAME, nlen) != 0)
		return 0;
	i = (size_t)(colon - line) + 1;
	if (!skip_cfws(line, len, &i))
		return -1;
	return read_id(line, len, i, complete, id, size);
}

/* The fields only godwit writes (X-Godwit-DNSBL, -Virus-Scan,
 * -Quarantine...): from outside they are forged. */
#define OURS_PREFIX "X-Godwit-"

/* The held start of a field line is complete (or the hold is full):
 * drop the field or let it pass. */
static size_t
decide(struct ar_filter *f, bool complete, char *out)
{
	char id[AR_FILTER_ID_MAX + 2];
	int r = ar_field_authserv_id(f->hold, f->hold_len, complete, id,
				     sizeof(id));
	size_t n = f->hold_len;

	f->holding = false;
	f->dropping = r < 0 || (r == 1 && strcasecmp(id, f->id) == 0) ||
		      (n >= sizeof(OURS_PREFIX) - 1 &&
		       strncasecmp(f->hold, OURS_PREFIX,
				   sizeof(OURS_PREFIX) - 1) == 0);
	f->hold_len = 0;
	if (f->dropping) {
		f->dropped_fields++;
		f->dropped_octets += n;
		return 0;
	}
	memcpy(out, f->hold, n);
	return n;
}

/* Octets of the current line from in: up to and including its LF. */
static size_t
line_part(const char *in, size_t n, bool *eol_r)
{
	const char *lf = memchr(in, '\n', n);

	*eol_r = lf != NULL;
	return lf != NULL ? (size_t)(lf - in) + 1 : n;
}

/* At the start of a line in the header section. Returns false when the
 * header section ends here (the empty line is left for the body). */
static bool
line_start(struct ar_filter *f, char c)
{
	if (c == '\n') {
		f->body = true;
		f->dropping = false;
		return false;
	}
	f->at_bol = false;
	if (c != ' ' && c != '\t') {
		/* a new field: held until it can be decided */
		f->dropping = false;
		f->holding = true;
		f->hold_len = 0;
	}
	return true;
}

size_t
ar_filter_feed(struct ar_filter *f, const char *in, size_t n, char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		bool eol;
		size_t k;

		if (f->body || (f->at_bol && !line_start(f, in[i]))) {
			memcpy(out + o, in + i, n - i);
			return o + n - i;
		}
		k = line_part(in + i, n - i, &eol);
		if (f->holding) {
			if (k > AR_FILTER_HOLD - f->hold_len) {
				k = AR_FILTER_HOLD - f->hold_len;
				eol = false;
			}
			memcpy(f->hold + f->hold_len, in + i, k);
			f->hold_len += k;
			if (eol || f->hold_len == AR_FILTER_HOLD)
				o += decide(f, eol, out + o);
		} else if (f->dropping) {
			f->dropped_octets += k;
		} else {
			memcpy(out + o, in + i, k);
			o += k;
		}
		if (eol) {
			f->at_bol = true;
			f->dropped_lines += f->dropping;
		}
		i += k;
	}
	return o;
}

size_t
ar_filter_finish(struct ar_filter *f, char *out)
{
	if (!f->holding)
		return 0;
	return decide(f, true, out);
}
