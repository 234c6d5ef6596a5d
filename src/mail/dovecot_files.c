/*
 * Dovecot's dovecot-uidlist, dovecot-keywords and subscriptions files:
 * see dovecot_files.h. Pure: bytes in, structures out, and back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/dovecot_files.h"
#include "mail/imap_utf7.h"

/* The next line of buf (without its LF), or NULL at the end. */
static const char *
next_line(const char **p, const char *end, size_t *len_r)
{
	const char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	*len_r = (size_t)((nl != NULL ? nl : end) - s);
	*p = nl != NULL ? nl + 1 : end;
	return s;
}

/* A decimal uint32 at s[0..len-1] exactly, > 0 unless zero_ok. */
static bool
parse_u32(const char *s, size_t len, uint32_t *v_r, bool zero_ok)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX || (v == 0 && !zero_ok))
		return false;
	*v_r = (uint32_t)v;
	return true;
}

static bool
clean(const char *s, size_t len, bool space_ok)
{
	if (memchr(s, '\0', len) != NULL)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
		    (!space_ok && s[i] == ' '))
			return false;
	return true;
}

/* ---- dovecot-uidlist ---------------------------------------------- */

static bool
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static int
parse_header3(const char *s, size_t len, struct dovecot_uidlist *ul)
{
	const char *end = s + len;
	struct strbuf ext = {0};
	bool v = false, nx = false;

	while (s < end) {
		const char *sp = memchr(s, ' ', (size_t)(end - s));
		size_t n = (size_t)((sp != NULL ? sp : end) - s);
		if (n >= 2 && s[0] == 'V')
			v = parse_u32(s + 1, n - 1, &ul->uidvalidity, false);
		else if (n >= 2 && s[0] == 'N')
			nx = parse_u32(s + 1, n - 1, &ul->uidnext, false);
		else if (n == 33 && s[0] == 'G' && is_hex(s + 1, 32)) {
			memcpy(ul->guid, s + 1, 32);
			ul->guid[32] = '\0';
		} else if (n > 0) {
			if (ext.len > 0)
				strbuf_addc(&ext, ' ');
			strbuf_add(&ext, s, n);
		}
		s += n + (sp != NULL);
	}
	ul->hdr_ext = strbuf_steal(&ext);
	return v && nx ? 0 : -1;
}

static int
parse_header(const char *s, size_t len, struct dovecot_uidlist *ul)
{
	const char *sp;

	if (len < 2 || s[1] != ' ')
		return -1;
	if (s[0] == '2' || s[0] == '3') {
		ul->version = (unsigned)(s[0] - '0');
		return parse_header3(s + 2, len - 2, ul);
	}
	if (s[0] != '1')
		return -1;
	ul->version = 1;
	s += 2, len -= 2;
	if ((sp = memchr(s, ' ', len)) == NULL)
		return -1;
	return parse_u32(s, (size_t)(sp - s), &ul->uidvalidity, false) &&
		       parse_u32(sp + 1, len - (size_t)(sp + 1 - s),
				 &ul->uidnext, false)
		   ? 0
		   : -1;
}

void
dovecot_uidlist_add(struct dovecot_uidlist *ul, uint32_t uid,
		    const char *base, const char *ext)
{
	if (ul->n == ul->cap) {
		ul->cap = ul->cap ? ul->cap * 2 : 64;
		ul->recs = xreallocarray(ul->recs, ul->cap, sizeof(*ul->recs));
	}
	ul->recs[ul->n].uid = uid;
	ul->recs[ul->n].base = xstrdup(base);
	ul->recs[ul->n].ext = ext != NULL && *ext != '\0' ? xstrdup(ext) : NULL;
	ul->n++;
}

/* One record line; false if malformed. */
static bool
parse_record(const char *s, size_t len, struct dovecot_uidlist *ul)
{
	const char *sp = memchr(s, ' ', len), *end = s + len, *name, *ext;
	size_t extlen = 0;
	uint32_t uid;
	char *base, *x;

	if (sp == NULL || !parse_u32(s, (size_t)(sp - s), &uid, false) ||
	    (ul->n > 0 && uid <= ul->recs[ul->n - 1].uid))
		return false;
	ext = sp + 1;
	if (ul->version == 1)
		name = ext;
	else {
		/* extensions up to " :" (or a ':' right at the start) */
		name = ext;
		while (name < end && *name != ':') {
			const char *n2 = memchr(name, ' ', (size_t)(end - name));
			if (n2 == NULL)
				return false;
			name = n2 + 1;
		}
		if (name >= end)
			return false;
		extlen = name > ext ? (size_t)(name - 1 - ext) : 0;
		name++;
	}
	len = (size_t)(end - name);
	if (len == 0 || len > DOVECOT_NAME_MAX || !clean(name, len, false) ||
	    memchr(name, '/', len) != NULL ||
	    !clean(ext, extlen, true))
		return false;
	base = xstrndup(name, len);
	if ((x = strchr(base, ':')) != NULL)
		*x = '\0';	/* a version 1 name may carry its flags */
	x = extlen > 0 ? xstrndup(ext, extlen) : NULL;
	if (*base != '\0' && *base != '.')
		dovecot_uidlist_add(ul, uid, base, x);
	free(base);
	free(x);
	if (uid >= ul->uidnext && uid < UINT32_MAX)
		ul->uidnext = uid + 1;
	return true;
}

int
dovecot_uidlist_parse(const char *buf, size_t len, struct dovecot_uidlist *ul,
		      const char **error_r)
{
	const char *p = buf, *end = buf + len, *line;
	size_t n;

	memset(ul, 0, sizeof(*ul));
	if ((line = next_line(&p, end, &n)) == NULL ||
	    !clean(line, n, true) || parse_header(line, n, ul) < 0) {
		*error_r = "bad header";
		dovecot_uidlist_free(ul);
		return -1;
	}
	while ((line = next_line(&p, end, &n)) != NULL)
		if (n > 0)
			(void)parse_record(line, n, ul);
	return 0;
}

void
dovecot_uidlist_write(const struct dovecot_uidlist *ul, struct strbuf *out)
{
	strbuf_addf(out, "3 V%u N%u", ul->uidvalidity, ul->uidnext);
	if (ul->guid[0] != '\0')
		strbuf_addf(out, " G%s", ul->guid);
	if (ul->hdr_ext != NULL && *ul->hdr_ext != '\0')
		strbuf_addf(out, " %s", ul->hdr_ext);
	strbuf_addc(out, '\n');
	for (size_t i = 0; i < ul->n; i++) {
		const struct dovecot_uidlist_rec *r = &ul->recs[i];
		strbuf_addf(out, "%u", r->uid);
		if (r->ext != NULL)
			strbuf_addf(out, " %s", r->ext);
		strbuf_addf(out, " :%s\n", r->base);
	}
}

void
dovecot_uidlist_free(struct dovecot_uidlist *ul)
{
	for (size_t i = 0; i < ul->n; i++) {
		free(ul->recs[i].base);
		free(ul->recs[i].ext);
	}
	free(ul->recs);
	free(ul->hdr_ext);
	memset(ul, 0, sizeof(*ul));
}

/* ---- dovecot-keywords --------------------------------------------- */

int
dovecot_keyword_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > DOVECOT_NAME_MAX || name[0] == '\\')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

void
dovecot_keywords_parse(const char *buf, size_t len,
		       char *names[DOVECOT_KEYWORDS_MAX])
{
	const char *p = buf, *end = buf + len, *line, *sp;
	uint32_t idx;
	size_t n;

	for (size_t i = 0; i < DOVECOT_KEYWORDS_MAX; i++)
		names[i] = NULL;
	while ((line = next_line(&p, end, &n)) != NULL) {
		if ((sp = memchr(line, ' ', n)) == NULL ||
		    !parse_u32(line, (size_t)(sp - line), &idx, true) ||
		    idx >= DOVECOT_KEYWORDS_MAX || names[idx] != NULL)
			continue;
		char *name = xstrndup(sp + 1, n - (size_t)(sp + 1 - line));
		if (strlen(name) != n - (size_t)(sp + 1 - line) ||
		    !dovecot_keyword_valid(name)) {
			free(name);
			continue;
		}
		for (size_t i = 0; i < DOVECOT_KEYWORDS_MAX && name; i++)
			if (names[i] != NULL && strcasecmp(names[i], name) == 0)
				xfree(&name);
		names[idx] = name;
	}
}

void
dovecot_keywords_write(char *const names[DOVECOT_KEYWORDS_MAX],
		       struct strbuf *out)
{
	for (size_t i = 0; i < DOVECOT_KEYWORDS_MAX; i++)
		if (names[i] != NULL)
			strbuf_addf(out, "%zu %s\n", i, names[i]);
	if (out->s == NULL)
		strbuf_add(out, "", 0);
}

/* ---- subscriptions ------------------------------------------------ */

/* One level (on-disk form, unescaped) appended to name as UTF-8. */
static bool
add_level(struct strbuf *name, const char *s, size_t n)
{
	if (n == 0 || n > DOVECOT_NAME_MAX || !clean(s, n, true) ||
	    memchr(s, '/', n) != NULL)
		return false;
	if (name->len > 0)
		strbuf_addc(name, '/');
	if (imap_utf7_to_utf8(s, n, name) < 0)
		strbuf_add(name, s, n);	/* not UTF-7: taken as it is */
	return true;
}

/* A version 2 line: levels split at TAB, each tab-unescaped. */
static bool
parse_v2(const char *s, size_t n, struct strbuf *name)
{
	struct strbuf lvl = {0};
	bool ok = true;

	for (size_t i = 0; ok && i <= n; i++) {
		if (i == n || s[i] == '\t') {
			ok = add_level(name, lvl.s ? lvl.s : "", lvl.len);
			strbuf_reset(&lvl);
		} else if (s[i] == '\001') {
			const char *m = i + 1 < n ? strchr("10trn", s[i + 1])
						  : NULL;
			if (m == NULL || s[i + 1] == '\0')
				ok = false;
			else
				strbuf_addc(&lvl, "\001\0\t\r\n"[m - "10trn"]);
			i++;
		} else
			strbuf_addc(&lvl, s[i]);
	}
	strbuf_free(&lvl);
	return ok;
}

static bool
parse_v1(const char *s, size_t n, struct strbuf *name)
{
	const char *end = s + n;

	while (s <= end) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		const char *e = dot != NULL ? dot : end;
		if (!add_level(name, s, (size_t)(e - s)))
			return false;
		s = e + 1;
	}
	return true;
}

/* Each '/'-separated level of name into lvl as modified UTF-7, out
 * appended with TAB between levels; false if one cannot be written (not
 * UTF-8, empty, or longer than DOVECOT_NAME_MAX encoded). */
static bool
subs_encode(const char *name, struct strbuf *out)
{
	struct strbuf lvl = {0};
	const char *s = name, *slash;
	bool ok = true;

	do {
		slash = strchr(s, '/');
		size_t k = slash != NULL ? (size_t)(slash - s) : strlen(s);
		strbuf_reset(&lvl);
		if (k == 0 || imap_utf8_to_utf7(s, k, &lvl) < 0 ||
		    lvl.len > DOVECOT_NAME_MAX) {
			ok = false;
			break;
		}
		/* modified UTF-7 is printable ASCII: nothing to tab-escape */
		strbuf_add(out, lvl.s, lvl.len);
		strbuf_addc(out, slash != NULL ? '\t' : '\n');
		s = slash != NULL ? slash + 1 : s;
	} while (slash != NULL);
	strbuf_free(&lvl);
	return ok;
}

void
dovecot_subs_parse(const char *buf, size_t len, char ***names_r, size_t *n_r)
{
	static const char v2[] = "V\t2\n\n";
	const char *p = buf, *end = buf + len, *line;
	struct strbuf name = {0}, enc = {0};
	bool is_v2 = false;
	size_t n, cnt = 0, cap = 0;
	char **names = NULL;

	if (len >= sizeof(v2) - 1 && memcmp(buf, v2, sizeof(v2) - 1) == 0) {
		is_v2 = true;
		p += sizeof(v2) - 1;
	}
	while ((line = next_line(&p, end, &n)) != NULL) {
		strbuf_reset(&name);
		if (n == 0 || !(is_v2 ? parse_v2(line, n, &name)
				      : parse_v1(line, n, &name)))
			continue;
		/* a name that could not be written back is no folder */
		strbuf_reset(&enc);
		if (!subs_encode(name.s, &enc))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[cnt++] = xstrdup(name.s);
	}
	strbuf_free(&name);
	strbuf_free(&enc);
	*names_r = names;
	*n_r = cnt;
}

int
dovecot_subs_write(char *const *names, size_t n, struct strbuf *out)
{
	strbuf_addstr(out, "V\t2\n\n");
	for (size_t i = 0; i < n; i++)
		if (!subs_encode(names[i], out))
			return -1;
	return 0;
}
