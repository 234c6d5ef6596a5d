/*
 * The DMARC policy record parser (RFC 7489 6.3, 6.4): see dmarc_record.h
 * for the contract. Pure: no I/O, no allocation; everything it keeps is
 * bounded by the record's fields.
 *
 * Choices where RFC 7489 leaves room (and DMARCbis, which this does not
 * follow, words things differently):
 *  - "v" must be the first tag and its value exactly "DMARC1" (6.3: "MUST
 *    match precisely"); tag names and the values of p, sp, adkim, aspf,
 *    fo and rf are case-insensitive (ABNF strings are).
 *  - A missing or invalid p=, or an invalid sp=: when rua= holds at least
 *    one syntactically valid URI the record counts as p=none (6.6.3, the
 *    sp= given is then dropped too), otherwise the record is invalid.
 *  - An invalid value of an optional tag (adkim, aspf, pct, fo, rf, ri)
 *    is ignored, as if the tag were absent (its default applies), and
 *    so is an item of rua= or ruf= that is not a URI:
 *    the RFC gives no rule, and a typo in an optional tag should not
 *    cost a domain its whole policy. pct must be an integer 0-100.
 *  - A tag given twice: the first one counts.
 *  - Parts that are not "tag=value" are ignored like unknown tags, but
 *    "v=DMARC1" must be followed by ';' or the end.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/dmarc_record.h"

#define WSP(c) ((c) == ' ' || (c) == '\t')
#define TAG_MAX 16

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_NONE:
		return "none";
	case DMARC_P_QUARANTINE:
		return "quarantine";
	case DMARC_P_REJECT:
		return "reject";
	default:
		return "";
	}
}

/* A value: its start and length, blanks around it trimmed. */
struct span {
	const char *p;
	size_t n;
};

static bool
span_is(struct span s, const char *word)
{
	return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

static struct span
trim(const char *p, size_t n)
{
	while (n > 0 && WSP(*p))
		p++, n--;
	while (n > 0 && WSP(p[n - 1]))
		n--;
	return (struct span){p, n};
}

static void
set_why(char *why, size_t size, const char *msg)
{
	if (size > 0)
		snprintf(why, size, "%s", msg);
}

static enum dmarc_policy
policy_value(struct span v)
{
	if (span_is(v, "none"))
		return DMARC_P_NONE;
	if (span_is(v, "quarantine"))
		return DMARC_P_QUARANTINE;
	if (span_is(v, "reject"))
		return DMARC_P_REJECT;
	return DMARC_P_UNSET;
}

/* "r" or "s": 1 strict, 0 relaxed, -1 invalid */
static int
align_value(struct span v)
{
	if (span_is(v, "s"))
		return 1;
	if (span_is(v, "r"))
		return 0;
	return -1;
}

/* A decimal number of at most max; -1 if not one. */
static long long
number_value(struct span v, long long max)
{
	long long n = 0;
	size_t i;

	if (v.n == 0 || v.n > 12)
		return -1;
	for (i = 0; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		n = n * 10 + (v.p[i] - '0');
	}
	return n <= max ? n : -1;
}

/*
 * A colon-separated list whose every item is one of words (NULL-ended),
 * blanks allowed around the colons. Writes it lower case without the
 * blanks into out (size octets, may be 0 for none); false if an item is
 * not one of words or out is too small.
 */
static bool
list_of(struct span v, const char *const *words, char *out, size_t size)
{
	const char *p = v.p, *end = v.p + v.n, *c;
	const char *const *w;
	struct span item;
	size_t len = 0;

	if (v.n == 0)
		return false;
	for (;;) {
		c = memchr(p, ':', (size_t)(end - p));
		item = trim(p, (size_t)((c != NULL ? c : end) - p));
		for (w = words; *w != NULL && !span_is(item, *w); w++)
			;
		if (*w == NULL)
			return false;
		if (size > 0) {
			if (len + (len > 0) + strlen(*w) >= size)
				return false;
			len += (size_t)snprintf(out + len, size - len, "%s%s",
						len > 0 ? ":" : "", *w);
		}
		if (c == NULL)
			return true;
		p = c + 1;
	}
}

/*
 * One DMARC URI (6.4): a URI (scheme ":" something, no blanks or
 * controls, no ',' or '!' which delimit it), then optionally "!" digits
 * and a unit k/m/g/t.
 */
static bool
uri_valid(struct span u)
{
	size_t i = 0, colon, bang = u.n;

	if (u.n == 0 || !((u.p[0] | 0x20) >= 'a' && (u.p[0] | 0x20) <= 'z'))
		return false;
	for (i = 1; i < u.n && u.p[i] != ':'; i++) {
		char c = u.p[i];

		if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') &&
		    !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.')
			return false;
	}
	if (i >= u.n)
		return false;
	colon = i;
	for (i = colon + 1; i < u.n; i++) {
		unsigned char c = (unsigned char)u.p[i];

		if (c <= ' ' || c >= 0x7f || c == ',')
			return false;
		if (c == '!') {
			bang = i;
			break;
		}
	}
	if (bang == colon + 1)
		return false;
	if (bang < u.n) {
		size_t d = bang + 1, end = u.n;

		if (end > d && strchr("kmgtKMGT", u.p[end - 1]) != NULL)
			end--;
		if (end == d)
			return false;
		for (i = d; i < end; i++)
			if (u.p[i] < '0' || u.p[i] > '9')
				return false;
	}
	return true;
}

/*
 * rua= or ruf=: a comma-separated list of DMARC URIs. Copies the valid
 * ones, blanks around each dropped, into out as "uri,uri" while whole
 * URIs fit (those that do not are left out: bounded, never cut); an item
 * that is not a valid URI is left out too (6.6.3 speaks of "at least one
 * syntactically valid reporting URI"). Returns the number of valid URIs
 * (kept or not).
 */
static int
uri_list(struct span v, char *out, size_t size)
{
	const char *p = v.p, *end = v.p + v.n, *c;
	size_t len = 0;
	struct span u;
	int valid = 0;

	out[0] = '\0';
	for (;;) {
		c = memchr(p, ',', (size_t)(end - p));
		u = trim(p, (size_t)((c != NULL ? c : end) - p));
		if (uri_valid(u)) {
			valid++;
			if (len + (len > 0) + u.n < size) {
				if (len > 0)
					out[len++] = ',';
				memcpy(out + len, u.p, u.n);
				len += u.n;
				out[len] = '\0';
			}
		}
		if (c == NULL)
			return valid;
		p = c + 1;
	}
}

/* What the tags set, before the p=/sp= rules are applied. */
struct seen {
	bool p, sp, adkim, aspf, pct, rua, ruf, fo, rf, ri;
	bool p_bad, sp_bad;
	int rua_valid;
};

static void
tag_policy(struct span name, struct span val, struct dmarc_record *rec,
           struct seen *s)
{
	if (span_is(name, "p") && !s->p) {
		s->p = true;
		rec->p = policy_value(val);
		s->p_bad = rec->p == DMARC_P_UNSET;
	} else if (span_is(name, "sp") && !s->sp) {
		s->sp = true;
		rec->sp = policy_value(val);
		s->sp_bad = rec->sp == DMARC_P_UNSET;
	}
}

static void
tag_one(struct span name, struct span val, struct dmarc_record *rec,
        struct seen *s)
{
	static const char *const fo_words[] = {"0", "1", "d", "s", NULL};
	static const char *const rf_words[] = {"afrf", NULL};
	char fo[sizeof(rec->fo)];
	long long n;
	int a;

	if (span_is(name, "p") || span_is(name, "sp")) {
		tag_policy(name, val, rec, s);
	} else if (span_is(name, "adkim") && !s->adkim) {
		s->adkim = true;
		if ((a = align_value(val)) >= 0)
			rec->adkim_strict = a == 1;
	} else if (span_is(name, "aspf") && !s->aspf) {
		s->aspf = true;
		if ((a = align_value(val)) >= 0)
			rec->aspf_strict = a == 1;
	} else if (span_is(name, "pct") && !s->pct) {
		s->pct = true;
		if ((n = number_value(val, 100)) >= 0)
			rec->pct = (unsigned)n;
	} else if (span_is(name, "ri") && !s->ri) {
		s->ri = true;
		if ((n = number_value(val, 4294967295LL)) >= 0)
			rec->ri = (unsigned)n;
	} else if (span_is(name, "rua") && !s->rua) {
		s->rua = true;
		s->rua_valid = uri_list(val, rec->rua, sizeof(rec->rua));
	} else if (span_is(name, "ruf") && !s->ruf) {
		s->ruf = true;
		(void)uri_list(val, rec->ruf, sizeof(rec->ruf));
	} else if (span_is(name, "fo") && !s->fo) {
		s->fo = true;
		if (!list_of(val, fo_words, fo, sizeof(fo)))
			snprintf(fo, sizeof(fo), "0");
		memcpy(rec->fo, fo, sizeof(rec->fo));
	} else if (span_is(name, "rf") && !s->rf) {
		s->rf = true;
		(void)list_of(val, rf_words, NULL, 0); /* only afrf exists */
	}
}

/* A tag name (6.4 ALPHA *ALNUMPUNC, bounded); blanks trimmed already. */
static bool
tag_name_valid(struct span name)
{
	size_t i;

	if (name.n == 0 || name.n > TAG_MAX ||
	    !((name.p[0] | 0x20) >= 'a' && (name.p[0] | 0x20) <= 'z'))
		return false;
	for (i = 1; i < name.n; i++) {
		char c = name.p[i];

		if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') &&
		    !(c >= '0' && c <= '9') && c != '_')
			return false;
	}
	return true;
}

/*
 * The first part must be "v=DMARC1" (blanks allowed around '='). 1 if
 * it is; 0 if the text does not start like a DMARC record at all; -1 if
 * "v=DMARC1" is followed by something other than ';' or the end.
 */
static int
version(struct span first)
{
	const char *eq;
	struct span name, val;

	eq = memchr(first.p, '=', first.n);
	if (eq == NULL)
		return 0;
	name = trim(first.p, (size_t)(eq - first.p));
	val = trim(eq + 1, (size_t)(first.p + first.n - eq - 1));
	if (!span_is(name, "v"))
		return 0;
	if (val.n < 6 || memcmp(val.p, "DMARC1", 6) != 0)
		return 0;
	if (val.n > 6 && !WSP(val.p[6]))
		return 0; /* "DMARC10": another version */
	return val.n == 6 ? 1 : -1;
}

static void
record_defaults(struct dmarc_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->p = DMARC_P_UNSET;
	rec->sp = DMARC_P_UNSET;
	rec->pct = 100;
	rec->ri = 86400;
	snprintf(rec->fo, sizeof(rec->fo), "0");
}

/* The p=/sp= rules of 6.6.3 after all tags are read. */
static int
finish(struct dmarc_record *rec, const struct seen *s, char *why, size_t size)
{
	if (!s->p_bad && s->p && !s->sp_bad)
		return 1;
	if (s->rua_valid > 0) {
		/* 6.6.3: as if "v=DMARC1; p=none" had been published */
		rec->p = DMARC_P_NONE;
		rec->sp = DMARC_P_UNSET;
		return 1;
	}
	set_why(why, size,
	        !s->p      ? "no p= tag"
	        : s->p_bad ? "p= is not none, quarantine or reject"
	                   : "sp= is not none, quarantine or reject");
	return -1;
}

int
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec,
                   char *why, size_t size)
{
	const char *p, *end = txt + len, *semi, *eq;
	struct seen s = {0};
	struct span part, name, val;
	int rc;

	record_defaults(rec);
	set_why(why, size, "");
	semi = memchr(txt, ';', len);
	part = trim(txt, (size_t)((semi != NULL ? semi : end) - txt));
	if ((rc = version(part)) <= 0) {
		if (rc < 0)
			set_why(why, size, "no ';' after v=DMARC1");
		return rc;
	}
	if (memchr(txt, '\0', len) != NULL) {
		/* TXT data may hold any octet; a DMARC record is text */
		set_why(why, size, "NUL octet in the record");
		return -1;
	}
	for (p = semi != NULL ? semi + 1 : end; p < end;) {
		semi = memchr(p, ';', (size_t)(end - p));
		part = trim(p, (size_t)((semi != NULL ? semi : end) - p));
		p = semi != NULL ? semi + 1 : end;
		if (part.n == 0 || (eq = memchr(part.p, '=', part.n)) == NULL)
			continue;
		name = trim(part.p, (size_t)(eq - part.p));
		val = trim(eq + 1, (size_t)(part.p + part.n - eq - 1));
		if (tag_name_valid(name))
			tag_one(name, val, rec, &s);
	}
	return finish(rec, &s, why, size);
}
