/*
 * DKIM tag lists (RFC 6376 3.2): see dkim_tags.h.
 */
#include <string.h>

#include "mail/dkim_tags.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_valchar(char c)
{
	return (unsigned char)c >= 0x21 && (unsigned char)c <= 0x7e &&
	    c != ';';
}

/*
 * Skips FWS from *pos: white space and folded line ends (a line end must
 * be followed by white space). -1 on a line end that does not fold.
 */
static int
skip_fws(const char *s, size_t len, size_t *pos)
{
	size_t i = *pos;

	for (;;) {
		if (i < len && is_wsp(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		if (j < len && s[j] == '\r')
			j++;
		if (j < len && s[j] == '\n') {
			j++;
			if (j >= len || !is_wsp(s[j]))
				return -1;
			i = j;
			continue;
		}
		if (j != i)	/* a bare CR */
			return -1;
		break;
	}
	*pos = i;
	return 0;
}

/* One tag-spec at *pos, up to the ';' or the end. */
static int
parse_spec(const char *s, size_t len, size_t *pos, struct dkim_tag *t,
	   const char **error_r)
{
	size_t i = *pos, vend;

	if (skip_fws(s, len, &i) < 0)
		goto bad;
	t->name = s + i;
	if (i >= len || !is_alpha(s[i])) {
		*error_r = "missing or malformed tag name";
		return -1;
	}
	while (i < len && (is_alpha(s[i]) || (s[i] >= '0' && s[i] <= '9') ||
			   s[i] == '_'))
		i++;
	t->name_len = (size_t)(s + i - t->name);
	if (skip_fws(s, len, &i) < 0 || i >= len || s[i] != '=')
		goto bad;
	i++;
	t->after_eq = s + i;
	if (skip_fws(s, len, &i) < 0)
		goto bad;
	t->value = s + i;
	vend = i;
	while (i < len && s[i] != ';') {
		if (is_valchar(s[i])) {
			i++;
			vend = i;
		} else {
			size_t i0 = i;
			if (skip_fws(s, len, &i) < 0 || i == i0)
				goto bad;
		}
	}
	t->value_len = vend - (size_t)(t->value - s);
	t->end = s + i;
	*pos = i;
	return 0;
bad:
	*error_r = "malformed tag list";
	return -1;
}

int
dkim_tags_parse(const char *s, size_t len, struct dkim_tag_list *l,
		const char **error_r)
{
	size_t pos = 0;

	l->n = 0;
	for (;;) {
		struct dkim_tag t;
		size_t rest = pos;

		/* after a ';': only FWS may follow (the optional final ';') */
		if (l->n > 0) {
			if (skip_fws(s, len, &rest) < 0) {
				*error_r = "malformed tag list";
				return -1;
			}
			if (rest == len)
				return 0;
		}
		if (parse_spec(s, len, &pos, &t, error_r) < 0)
			return -1;
		for (size_t k = 0; k < l->n; k++)
			if (l->v[k].name_len == t.name_len &&
			    memcmp(l->v[k].name, t.name, t.name_len) == 0) {
				*error_r = "duplicate tag";
				return -1;
			}
		if (l->n == DKIM_TAGS_MAX) {
			*error_r = "too many tags";
			return -1;
		}
		l->v[l->n++] = t;
		if (pos == len)
			return 0;
		pos++;	/* the ';' */
	}
}

const struct dkim_tag *
dkim_tags_find(const struct dkim_tag_list *l, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].name_len == n && memcmp(l->v[i].name, name, n) == 0)
			return &l->v[i];
	return NULL;
}

bool
dkim_tag_is(const struct dkim_tag *t, const char *str)
{
	return t->value_len == strlen(str) &&
	    memcmp(t->value, str, t->value_len) == 0;
}

int
dkim_tag_compact(const struct dkim_tag *t, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (o + 1 >= size)
			return -1;
		out[o++] = c;
	}
	if (size == 0)
		return -1;
	out[o] = '\0';
	return 0;
}
