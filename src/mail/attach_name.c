/*
 * Attachment rules on file names, and uuencoded files in text: see
 * attach_name.h. Pure: no I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mail/attach_name.h"

const char *const attach_default_extensions[] = {
    "ade",  "adp",	  "apk",     "appx",	 "appxbundle", "bat",
    "cab",  "chm",	  "cmd",     "com",	 "cpl",	       "diagcab",
    "diagcfg", "diagpack", "dll",    "dmg",	 "ex",	       "ex_",
    "exe",  "hta",	  "img",     "ins",	 "iso",	       "isp",
    "jar",  "jnlp",	  "js",	     "jse",	 "lib",	       "lnk",
    "mde",  "mdt",	  "msc",     "msi",	 "msix",       "msixbundle",
    "msp",  "mst",	  "nsh",     "pif",	 "ps1",	       "scr",
    "sct",  "shb",	  "sys",     "vb",	 "vbe",	       "vbs",
    "vhd",  "vxd",	  "wsc",     "wsf",	 "wsh",	       "xll",
};
const size_t attach_ndefault_extensions =
    sizeof(attach_default_extensions) / sizeof(attach_default_extensions[0]);

/* U+202A..U+202E (embeddings, overrides) and U+2066..U+2069 (isolates):
 * the controls that reorder what a reader sees. */
static bool
has_bidi_control(const unsigned char *p)
{
	for (; *p != '\0'; p++) {
		if (p[0] != 0xe2 || p[1] == '\0' || p[2] == '\0')
			continue;
		if (p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae)
			return true;
		if (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			return true;
	}
	return false;
}

static bool
is_trailing_junk(char c)
{
	/* what Windows drops at the end of a name, and line breaks */
	return c == ' ' || c == '.' || c == '\t' || c == '\r' || c == '\n';
}

/* The extension of name[0..len) (after the last dot), or NULL; *stem_r:
 * the length before the dot, trailing blanks dropped. */
static const char *
extension(const char *name, size_t len, size_t *stem_r, size_t *ext_len_r)
{
	size_t dot = len;

	while (dot > 0 && name[dot - 1] != '.')
		dot--;
	if (dot == 0 || len - dot == 0 || len - dot > ATTACH_EXT_MAX)
		return NULL;
	*ext_len_r = len - dot;
	*stem_r = dot - 1;
	while (*stem_r > 0 && is_trailing_junk(name[*stem_r - 1]) &&
	       name[*stem_r - 1] != '.')
		(*stem_r)--;
	return name + dot;
}

static bool
ext_blocked(const char *ext, size_t len, const char *const *exts,
	    size_t nexts, char *ext_r)
{
	for (size_t i = 0; i < len; i++) {
		char c = ext[i];

		ext_r[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	ext_r[len] = '\0';
	for (size_t i = 0; i < nexts; i++)
		if (strcmp(exts[i], ext_r) == 0)
			return true;
	return false;
}

/* "x.pdf" before the blocked extension: a short extension of letters
 * and digits. */
static bool
has_inner_extension(const char *name, size_t stem)
{
	size_t end = stem, start = stem;

	while (start > 0 && name[start - 1] != '.')
		start--;
	if (start <= 1 || end == start || end - start > 5)
		return false;
	for (size_t i = start; i < end; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

enum attach_name_verdict
attach_name_check(const char *name, const char *const *exts, size_t nexts,
		  char *ext_r)
{
	const char *base = name, *ext;
	size_t len, stem, ext_len;

	ext_r[0] = '\0';
	for (const char *p = name; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	if (has_bidi_control((const unsigned char *)base))
		return ATTACH_NAME_HIDDEN;
	len = strlen(base);
	while (len > 0 && is_trailing_junk(base[len - 1]))
		len--;
	if ((ext = extension(base, len, &stem, &ext_len)) == NULL)
		return ATTACH_NAME_OK;
	if (!ext_blocked(ext, ext_len, exts, nexts, ext_r)) {
		ext_r[0] = '\0';
		return ATTACH_NAME_OK;
	}
	return has_inner_extension(base, stem) ? ATTACH_NAME_DOUBLE
					       : ATTACH_NAME_BLOCKED;
}

const char *
attach_ext_valid(const char *ext)
{
	size_t len = strlen(ext);

	if (len == 0)
		return "must not be empty";
	if (len > ATTACH_EXT_MAX)
		return "too long";
	for (const char *p = ext; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '~' || c == '$'))
			return "an extension is letters, digits and _-~$";
	}
	return NULL;
}

void
attach_name_clean(const char *name, char *out)
{
	char buf[4096];
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)name;

	for (; *p != '\0' && n < sizeof(buf) - 1; p++) {
		if ((*p & 0xc0) == 0x80)
			continue;	/* inside a UTF-8 sequence */
		buf[n++] = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\'
			       ? (char)*p
			       : '?';
	}
	buf[n] = '\0';
	if (n <= ATTACH_NAME_SHOW) {
		memcpy(out, buf, n + 1);
		return;
	}
	/* the head and the tail, with the extension */
	memcpy(out, buf, ATTACH_NAME_SHOW - 33);
	memcpy(out + ATTACH_NAME_SHOW - 33, "...", 3);
	memcpy(out + ATTACH_NAME_SHOW - 30, buf + n - 30, 31);
}

/* ---- uuencode ----------------------------------------------------------- */

/* The line at *pos: its start and length without the line end. */
static bool
next_line(const unsigned char *t, size_t len, size_t *pos,
	  const unsigned char **line_r, size_t *n_r)
{
	const unsigned char *nl;
	size_t n;

	if (*pos >= len)
		return false;
	*line_r = t + *pos;
	nl = memchr(*line_r, '\n', len - *pos);
	n = nl != NULL ? (size_t)(nl - *line_r) : len - *pos;
	*pos += nl != NULL ? n + 1 : n;
	if (n > 0 && (*line_r)[n - 1] == '\r')
		n--;
	*n_r = n;
	return true;
}

/* "begin 644 name": the name into name_r. */
static bool
begin_line(const unsigned char *l, size_t n, char *name_r, size_t size)
{
	size_t i = 6, digits = 0, k = 0;

	if (n < 6 || memcmp(l, "begin ", 6) != 0)
		return false;
	while (i < n && l[i] >= '0' && l[i] <= '7' && digits < 6)
		i++, digits++;
	if (digits < 3 || i >= n || l[i] != ' ')
		return false;
	while (i < n && l[i] == ' ')
		i++;
	if (i >= n || size == 0)
		return false;
	for (; i < n && k < size - 1; i++)
		name_r[k++] = l[i] == '\0' ? '?' : (char)l[i];
	name_r[k] = '\0';
	return true;
}

#define UU(c) (((c) - 0x20) & 0x3f)

/* One data line: false if it is not uuencode (or the length-0 line). */
static bool
uu_line(const unsigned char *l, size_t n, unsigned char *out, size_t *out_n)
{
	size_t want, i;

	if (n == 0 || l[0] < 0x20 || l[0] > 0x60)
		return false;
	want = UU(l[0]);
	if (want == 0)
		return false;
	*out_n = 0;
	for (i = 1; *out_n < want; i += 4) {
		unsigned char c[4];

		for (size_t k = 0; k < 4; k++) {
			unsigned char ch = i + k < n ? l[i + k] : ' ';

			if (ch < 0x20 || ch > 0x60)
				return false;
			c[k] = UU(ch);
		}
		unsigned char b[3] = {(unsigned char)(c[0] << 2 | c[1] >> 4),
				      (unsigned char)(c[1] << 4 | c[2] >> 2),
				      (unsigned char)(c[2] << 6 | c[3])};
		for (size_t k = 0; k < 3 && *out_n < want; k++)
			out[(*out_n)++] = b[k];
	}
	return true;
}

bool
uu_next(const unsigned char *text, size_t len, size_t *pos, char *name_r,
	size_t name_size, unsigned char **data_r, size_t *len_r, size_t max,
	bool *truncated_r)
{
	const unsigned char *l;
	size_t n, cap = 0, dl;
	unsigned char dec[64];

	*data_r = NULL;
	*len_r = 0;
	*truncated_r = false;
	for (;;) {
		if (!next_line(text, len, pos, &l, &n))
			return false;
		if (begin_line(l, n, name_r, name_size))
			break;
	}
	for (;;) {
		size_t save = *pos;

		if (!next_line(text, len, pos, &l, &n))
			break;
		if (!uu_line(l, n, dec, &dl)) {
			if (n > 0 && l[0] == 'b')
				*pos = save;	/* another begin, perhaps */
			break;
		}
		if (*len_r + dl > max) {
			*truncated_r = true;
			continue;
		}
		if (*len_r + dl > cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			if (cap > max)
				cap = max;
			*data_r = xreallocarray(*data_r, cap, 1);
		}
		memcpy(*data_r + *len_r, dec, dl);
		*len_r += dl;
	}
	return true;
}
