/*
 * DNS block and allow list specs, postscreen style: see dnsbl_spec.h.
 */
#include <string.h>

#include "mail/dnsbl_spec.h"

static bool
is_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The zone, up to '=', '*' or the end: host-name labels (letters,
 * digits, '-' not first or last, '_'), one final dot allowed. */
static const char *
parse_zone(const char **pp, struct dnsbl_spec *r)
{
	size_t n = strcspn(*pp, "=*"), label = 0;
	const char *z = *pp;

	if (n > 0 && z[n - 1] == '.')
		n--;
	if (n == 0)
		return "no zone";
	if (n > DNSBL_ZONE_MAX)
		return "the zone is too long";
	for (size_t i = 0; i < n; i++) {
		char c = z[i];

		if (c == '.') {
			if (label == 0)
				return "empty label in the zone";
			if (z[i - 1] == '-')
				return "a label of the zone ends with '-'";
			label = 0;
		} else if (!is_label_char(c))
			return "the zone is not a domain name";
		else if (label++ == 0 && c == '-')
			return "a label of the zone starts with '-'";
		else if (label > 63)
			return "a label of the zone is longer than 63";
		r->zone[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	if (label == 0)
		return "empty label in the zone";
	if (z[n - 1] == '-')
		return "a label of the zone ends with '-'";
	r->zone[n] = '\0';
	*pp = z + strcspn(z, "=*");
	return NULL;
}

/* A decimal number 0..max, at most 4 digits (no sign). */
static const char *
parse_num(const char **pp, unsigned max, unsigned *v_r)
{
	const char *p = *pp;
	unsigned v = 0, digits = 0;

	while (*p >= '0' && *p <= '9') {
		if (++digits > 4)
			return "number too long";
		v = v * 10 + (unsigned)(*p++ - '0');
	}
	if (digits == 0)
		return "a number was expected";
	if (v > max)
		return "number out of range";
	*pp = p;
	*v_r = v;
	return NULL;
}

static void
set_bits(unsigned char bits[32], unsigned lo, unsigned hi)
{
	for (unsigned i = lo; i <= hi; i++)
		bits[i / 8] |= (unsigned char)(1u << (i % 8));
}

/* "[2..11;15]" */
static const char *
parse_set(const char **pp, unsigned char bits[32])
{
	const char *p = *pp + 1, *err;
	unsigned lo, hi;

	for (;;) {
		if ((err = parse_num(&p, 255, &lo)) != NULL)
			return err;
		hi = lo;
		if (p[0] == '.' && p[1] == '.') {
			p += 2;
			if ((err = parse_num(&p, 255, &hi)) != NULL)
				return err;
			if (hi < lo)
				return "a range runs backwards";
		}
		set_bits(bits, lo, hi);
		if (*p == ']')
			break;
		if (*p != ';')
			return "expected ';' or ']' in a code list";
		p++;
	}
	*pp = p + 1;
	return NULL;
}

/* "127.0.0.[2..11]" */
static const char *
parse_codes(const char **pp, struct dnsbl_spec *r)
{
	const char *p = *pp, *err;

	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (*p != '.')
				return "the codes are not a dotted quad";
			p++;
		}
		if (*p == '[')
			err = parse_set(&p, r->codes[i]);
		else {
			unsigned v;

			if ((err = parse_num(&p, 255, &v)) == NULL)
				set_bits(r->codes[i], v, v);
		}
		if (err != NULL)
			return err;
	}
	*pp = p;
	return NULL;
}

/* "*-3" */
static const char *
parse_weight(const char **pp, struct dnsbl_spec *r)
{
	const char *p = *pp + 1, *err;
	bool neg = false;
	unsigned v;

	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	if ((err = parse_num(&p, DNSBL_WEIGHT_MAX, &v)) != NULL)
		return "the weight is not a number from -1000 to 1000";
	r->weight = neg ? -(int)v : (int)v;
	r->has_weight = true;
	*pp = p;
	return NULL;
}

int
dnsbl_spec_parse(const char *s, struct dnsbl_spec *r, const char **error_r)
{
	const char *p = s, *err;

	memset(r, 0, sizeof(*r));
	r->weight = 1;
	r->any = true;
	if (strlen(s) > DNSBL_SPEC_MAX)
		err = "too long";
	else if ((err = parse_zone(&p, r)) != NULL)
		;
	else if (*p == '=') {
		p++;
		r->any = false;
		err = parse_codes(&p, r);
	}
	if (err == NULL && *p == '*')
		err = parse_weight(&p, r);
	if (err == NULL && *p != '\0')
		err = "unexpected characters after the spec";
	if (err != NULL) {
		*error_r = err;
		return -1;
	}
	return 0;
}

bool
dnsbl_answer_refused(const unsigned char a[4])
{
	return a[0] == 127 && a[1] == 255 && a[2] == 255;
}

bool
dnsbl_spec_match(const struct dnsbl_spec *sp, const unsigned char a[4])
{
	if (dnsbl_answer_refused(a))
		return false;
	if (sp->any)
		return a[0] == 127;
	for (int i = 0; i < 4; i++)
		if (!(sp->codes[i][a[i] / 8] & (1u << (a[i] % 8))))
			return false;
	return true;
}

const char *
dnsbl_spec_check(const char *s)
{
	struct dnsbl_spec sp;
	const char *err;

	return dnsbl_spec_parse(s, &sp, &err) < 0 ? err : NULL;
}

const char *
dnsbl_spec_check_allow(const char *s)
{
	struct dnsbl_spec sp;
	const char *err;

	if (dnsbl_spec_parse(s, &sp, &err) < 0)
		return err;
	if (sp.has_weight)
		return "an allow list takes no weight (any listing skips the "
		       "blocklists)";
	return NULL;
}
