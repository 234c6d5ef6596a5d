/*
 * The attachment walk (attach.h): the message parsed by GMime, every
 * leaf part decoded (base64, quoted-printable, uuencode) and checked by
 * its names (Content-Disposition filename and Content-Type name, RFC
 * 2231 and RFC 2047 decoded by GMime) and by its content; text parts
 * searched for uuencoded files; archives handed to attach_archive.c.
 * Before GMime sees the message, a count of its lines bounds what GMime
 * would build (see prescan()).
 *
 * Content: data that starts with no executable's or archive's signature
 * is neither; a PE, an ELF executable and a zip are decided by their
 * headers; libmagic decides the rest (see decided()). Parts sent 7bit,
 * 8bit or binary are looked at in place, base64 and quoted-printable
 * decoded in one step (decode()).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <magic.h>

#include "filter/attach.h"
#include "filter/attach_private.h"
#include "lib/xalloc.h"
#include "mail/attach_name.h"

/* libmagic is given this much of a file at most */
#define SNIFF_MAX (1024 * 1024)
/* a part that is neither text nor a message is decoded this far, then
 * further only if it starts like an executable or an archive (past the
 * last signature: an ISO image's, at 36865); in steps of DECODE_STEP
 * encoded octets */
#define PART_HEAD (40 * 1024)
#define DECODE_STEP (16 * 1024)
/* a file is sniffed when this much of its start is not plain text */
#define TEXT_PROBE 4096

/* ---- the verdict ------------------------------------------------------- */

bool
walk_stopped(const struct walk *w)
{
	return w->r->status != ATTACH_OK;
}

void
walk_refuse(struct walk *w, const char *inner, const char *reason,
	    const char *fmt, ...)
{
	char what[96], in[ATTACH_NAME_SHOW + 1];
	struct attach_result *r = w->r;
	va_list ap;

	if (walk_stopped(w))
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r->status = ATTACH_REFUSED;
	r->reason = reason;
	r->code = 554;
	r->enh = "5.7.1";
	if (inner != NULL)
		attach_name_clean(inner, in);
	if (w->top[0] != '\0' && inner != NULL)
		snprintf(r->text, sizeof(r->text),
			 "Message refused: attachment \"%s\" holds \"%s\", %s",
			 w->top, in, what);
	else if (w->top[0] != '\0')
		snprintf(r->text, sizeof(r->text),
			 "Message refused: attachment \"%s\" is %s", w->top,
			 what);
	else if (inner != NULL)
		snprintf(r->text, sizeof(r->text),
			 "Message refused: a part of the message holds \"%s\", "
			 "%s",
			 in, what);
	else
		snprintf(r->text, sizeof(r->text),
			 "Message refused: a part of the message is %s", what);
}

void
walk_limit(struct walk *w, const char *which)
{
	struct attach_result *r = w->r;
	bool size = strcmp(which, "decoded size") == 0;

	if (walk_stopped(w))
		return;
	r->status = ATTACH_LIMIT;
	r->reason = size ? "attach-limit-size"
			 : strcmp(which, "nesting depth") == 0
			       ? "attach-limit-depth"
			       : "attach-limit-parts";
	r->code = size ? 552 : 554;
	r->enh = size ? "5.3.4" : "5.7.1";
	snprintf(r->text, sizeof(r->text),
		 "Message refused: too complex to check its attachments "
		 "(%s over the limit)",
		 which);
}

bool
walk_count(struct walk *w, unsigned depth)
{
	if (walk_stopped(w))
		return false;
	if (depth > w->cfg->max_depth) {
		walk_limit(w, "nesting depth");
		return false;
	}
	if (++w->r->parts > w->cfg->max_parts) {
		walk_limit(w, "part count");
		return false;
	}
	return true;
}

bool
walk_decoded(struct walk *w, size_t n)
{
	if (walk_stopped(w))
		return false;
	w->r->decoded += n;
	if (w->r->decoded > w->cfg->max_decoded_size) {
		walk_limit(w, "decoded size");
		return false;
	}
	return true;
}

/* ---- the rules ---------------------------------------------------------- */

void
walk_check_name(struct walk *w, const char *name, bool inner)
{
	char ext[ATTACH_EXT_MAX + 1];
	const char *in = inner ? name : NULL;

	switch (attach_name_check(name,
				  (const char *const *)w->cfg->blocked_extensions,
				  w->cfg->nblocked_extensions, ext)) {
	case ATTACH_NAME_OK:
		break;
	case ATTACH_NAME_BLOCKED:
		walk_refuse(w, in, "blocked-extension",
			    "a blocked file type (.%s)", ext);
		break;
	case ATTACH_NAME_DOUBLE:
		walk_refuse(w, in, "double-extension",
			    "a blocked file type (.%s)", ext);
		break;
	case ATTACH_NAME_HIDDEN:
		walk_refuse(w, in, "hidden-extension",
			    "a file whose name hides its type");
		break;
	}
}

static const char *const exec_types[] = {
    "application/x-dosexec",
    "application/x-msdownload",
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-pie-executable",
    "application/x-sharedlib",
    "application/x-mach-binary",
    "application/x-msi",
    "application/x-ms-shortcut",
};

static const char *const archive_types[] = {
    "application/zip",	      "application/x-rar",
    "application/vnd.rar",    "application/x-7z-compressed",
    "application/x-tar",      "application/gzip",
    "application/x-gzip",     "application/x-bzip2",
    "application/x-xz",	      "application/x-lzma",
    "application/zstd",	      "application/x-zstd",
    "application/x-lzip",     "application/x-compress",
    "application/x-cpio",     "application/x-archive",
    "application/vnd.ms-cab-compressed", "application/x-iso9660-image",
    "application/java-archive", "application/x-lzh-compressed",
    "application/x-xar",
};

static bool
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

bool
attach_is_archive_type(const char *mime)
{
	return in_list(mime, archive_types,
		       sizeof(archive_types) / sizeof(archive_types[0]));
}

/* Control octets (or a binary signature) in the first TEXT_PROBE: not
 * plain text. */
static bool
looks_binary(const unsigned char *p, size_t len)
{
	size_t n = len < TEXT_PROBE ? len : TEXT_PROBE;

	if (len >= 2 && (memcmp(p, "MZ", 2) == 0 || memcmp(p, "PK", 2) == 0))
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' &&
		    c != '\f' && c != '\v' && c != 0x1b)
			return true;
		if (c == 0x7f)
			return true;
	}
	return false;
}

/*
 * The signatures of what the rules look for: executables (PE/MZ, ELF,
 * Mach-O, MSI and other compound files, Windows shortcuts) and archives.
 * libmagic, which is slow (some 0.1-0.3 ms a call, whatever the flags
 * or the bytes it is given: it runs its whole database), decides only
 * for data that starts like one of them: what does not is neither for
 * libmagic either.
 */
static const struct {
	size_t off;
	size_t len;
	const char *sig;
} signatures[] = {
    {0, 2, "MZ"},
    {0, 4, "\x7f" "ELF"},
    {0, 4, "\xfe\xed\xfa\xce"},
    {0, 4, "\xfe\xed\xfa\xcf"},
    {0, 4, "\xce\xfa\xed\xfe"},
    {0, 4, "\xcf\xfa\xed\xfe"},
    {0, 4, "\xca\xfe\xba\xbe"},
    {0, 8, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"},
    {0, 8, "L\0\0\0\x01\x14\x02\0"},
    {0, 2, "PK"},
    {0, 4, "Rar!"},
    {0, 6, "7z\xbc\xaf\x27\x1c"},
    {0, 2, "\x1f\x8b"},
    {0, 2, "\x1f\x9d"},
    {0, 3, "BZh"},
    {0, 6, "\xfd" "7zXZ\0"},
    {0, 3, "\x5d\0\0"},
    {0, 4, "\x28\xb5\x2f\xfd"},
    {0, 4, "LZIP"},
    {0, 4, "xar!"},
    {0, 4, "MSCF"},
    {0, 7, "!<arch>"},
    {0, 5, "07070"},
    {0, 2, "\xc7\x71"},
    {0, 2, "\x71\xc7"},
    {2, 3, "-lh"},
    {257, 5, "ustar"},
    {32769, 5, "CD001"},
    {34817, 5, "CD001"},
    {36865, 5, "CD001"},
};

bool
walk_has_signature(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < sizeof(signatures) / sizeof(signatures[0]);
	     i++) {
		size_t off = signatures[i].off, n = signatures[i].len;

		if (len >= off + n && memcmp(p + off, signatures[i].sig, n) == 0)
			return true;
	}
	return false;
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * The signatures that decide alone, without libmagic: a PE executable
 * (MZ, and "PE\0\0" where the MZ header's e_lfanew points), an ELF
 * executable or shared object/PIE (e_type 2 or 3), and a zip (a local
 * file header or an empty archive's end record). libmagic calls each of
 * these an executable or an archive too (application/x-dosexec,
 * x-executable, x-sharedlib, x-pie-executable; application/zip), with
 * one difference: it calls a zip whose first member is an Office or
 * OpenDocument manifest (docx, xlsx, odt, epub...) a document, not an
 * archive, so such a zip was not opened; it is listed now, as any zip
 * (a zip holding setup.exe no longer passes by naming its first member
 * "[Content_Types].xml"). Everything else that has a signature above
 * (a DOS MZ without PE, other ELF types, Mach-O, compound files: MSI or
 * Word, shortcuts, the other archives) is left to libmagic, which tells
 * them apart. NULL: not decided here.
 */
static const char *
decided(const unsigned char *p, size_t len)
{
	if (len >= 0x40 && p[0] == 'M' && p[1] == 'Z') {
		uint32_t pe = le32(p + 0x3c);

		if (pe <= len - 4 && memcmp(p + pe, "PE\0\0", 4) == 0)
			return "application/vnd.microsoft.portable-executable";
		return NULL;
	}
	if (len >= 18 && memcmp(p, "\x7f" "ELF", 4) == 0 &&
	    (p[5] == 1 || p[5] == 2)) {
		unsigned type = p[5] == 1 ? p[16] | p[17] << 8
					  : p[16] << 8 | p[17];

		return type == 2 || type == 3 ? "application/x-executable"
					      : NULL;
	}
	if (len >= 4 && (memcmp(p, "PK\x03\x04", 4) == 0 ||
			 memcmp(p, "PK\x05\x06", 4) == 0))
		return "application/zip";
	return NULL;
}

const char *
walk_sniff(struct walk *w, const unsigned char *data, size_t len)
{
	const char *mime;

	if (len == 0 || !walk_has_signature(data, len))
		return "";
	if ((mime = decided(data, len)) != NULL)
		return mime;
	mime = magic_buffer(w->sc->magic, data, len < SNIFF_MAX ? len
							       : SNIFF_MAX);
	return mime != NULL ? mime : "";
}

void
walk_check_sniffed(struct walk *w, const char *inner, const char *mime,
		   const unsigned char *data, size_t len, unsigned depth)
{
	if (in_list(mime, exec_types,
		    sizeof(exec_types) / sizeof(exec_types[0])))
		walk_refuse(w, inner, "executable", "an executable (%s)",
			    mime);
	else if (attach_is_archive_type(mime))
		walk_archive(w, inner, data, len, depth + 1);
}

void
walk_check_content(struct walk *w, const char *inner,
		   const unsigned char *data, size_t len, unsigned depth)
{
	walk_check_sniffed(w, inner, walk_sniff(w, data, len), data, len,
			   depth);
}

/* ---- the MIME walk ------------------------------------------------------ */

static void walk_object(struct walk *w, GMimeObject *o, unsigned depth);

/* uuencoded files in a text part: each is an attachment of its own. */
static void
walk_uuencoded(struct walk *w, const unsigned char *text, size_t len,
	       unsigned depth)
{
	size_t pos = 0, n;
	char name[256];
	unsigned char *data;
	bool truncated;

	if (len == 0 || memmem(text, len, "begin ", 6) == NULL)
		return;
	while (!walk_stopped(w) &&
	       uu_next(text, len, &pos, name, sizeof(name), &data, &n,
		       SIZE_MAX, &truncated)) {
		attach_name_clean(name, w->top);
		if (walk_count(w, depth + 1) && walk_decoded(w, n)) {
			walk_check_name(w, name, false);
			walk_check_content(w, NULL, data, n, depth + 1);
		}
		free(data);
	}
}

/* A part's content decoded: in place (data points into the message) or
 * in buf (malloc'd, or a GByteArray's: arr). */
struct decoded {
	const unsigned char *data;
	size_t len;
	unsigned char *buf;
	GByteArray *arr;
};

static void
decoded_free(struct decoded *d)
{
	free(d->buf);
	if (d->arr != NULL)
		g_byte_array_free(d->arr, TRUE);
	memset(d, 0, sizeof(*d));
}

/*
 * The encoded octets of a part as they lie in the message: GMime's
 * parser over a memory stream gives each part's content as a memory
 * stream on the same array, bounded. false if it is not one.
 */
static bool
raw_octets(GMimeStream *raw, const unsigned char **p_r, size_t *len_r)
{
	GByteArray *ba;
	gint64 start = raw->bound_start, end = raw->bound_end;

	if (!GMIME_IS_STREAM_MEM(raw) ||
	    (ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(raw))) ==
		NULL)
		return false;
	if (end < 0 || end > (gint64)ba->len)
		end = ba->len;
	if (start < 0 || start > end)
		return false;
	*p_r = ba->data + start;
	*len_r = (size_t)(end - start);
	return true;
}

/*
 * Identity encodings are used in place; base64 and quoted-printable are
 * decoded in steps into one buffer (decoding never makes more octets
 * than it reads). Unless the whole is wanted, decoding stops after
 * PART_HEAD octets that start with no signature: such a file is neither
 * an executable nor an archive, whatever follows. false: left to GMime's
 * streams.
 */
static bool
decode_direct(GMimeContentEncoding enc, GMimeStream *raw, bool whole,
	      struct decoded *d)
{
	GMimeEncoding st;
	const unsigned char *p;
	size_t len, n = 0, pos = 0, k;

	if (!raw_octets(raw, &p, &len))
		return false;
	switch (enc) {
	case GMIME_CONTENT_ENCODING_DEFAULT:
	case GMIME_CONTENT_ENCODING_7BIT:
	case GMIME_CONTENT_ENCODING_8BIT:
	case GMIME_CONTENT_ENCODING_BINARY:
		d->data = p;
		d->len = len;
		return true;
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
		break;
	default:
		return false;
	}
	g_mime_encoding_init_decode(&st, enc);
	k = g_mime_encoding_outlen(&st, len);
	d->buf = xmalloc((k > len ? k : len) + 16);
	while (!whole && pos < len && n < PART_HEAD) {
		k = len - pos < DECODE_STEP ? len - pos : DECODE_STEP;
		n += g_mime_encoding_step(&st, (const char *)p + pos, k,
					  (char *)d->buf + n);
		pos += k;
	}
	if ((whole || walk_has_signature(d->buf, n)) && pos < len)
		n += g_mime_encoding_step(&st, (const char *)p + pos,
					  len - pos, (char *)d->buf + n);
	d->data = d->buf;
	d->len = n;
	return true;
}

/* The part's content decoded into *d (its start only, if whole is
 * false and the start decides); false: nothing, or past the limit. */
static bool
decode(struct walk *w, GMimePart *part, bool whole, struct decoded *d)
{
	GMimeDataWrapper *dw = g_mime_part_get_content(part);
	GMimeStream *raw, *mem;
	gint64 enc_len;

	memset(d, 0, sizeof(*d));
	if (dw == NULL || (raw = g_mime_data_wrapper_get_stream(dw)) == NULL)
		return false;
	/* decoding never makes more octets than it reads */
	enc_len = g_mime_stream_length(raw);
	if (enc_len > 0 && w->r->decoded + (uint64_t)enc_len >
			       w->cfg->max_decoded_size &&
	    !walk_decoded(w, (size_t)enc_len))
		return false;
	if (!decode_direct(g_mime_data_wrapper_get_encoding(dw), raw, whole,
			   d)) {
		d->arr = g_byte_array_new();
		mem = g_mime_stream_mem_new_with_byte_array(d->arr);
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
		g_mime_data_wrapper_write_to_stream(dw, mem);
		g_object_unref(mem);
		d->data = d->arr->data;
		d->len = d->arr->len;
	}
	if (!walk_decoded(w, d->len)) {
		decoded_free(d);
		return false;
	}
	return true;
}

static bool
eml_name(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	return n >= 4 && strcasecmp(name + n - 4, ".eml") == 0;
}

/* A leaf that holds a message: message/rfc822 (or global, news) sent
 * encoded, which GMime leaves a leaf, or a file named *.eml. */
static bool
embedded_message(GMimeContentType *ct, const char *fname, const char *cname)
{
	return (ct != NULL && g_mime_content_type_is_type(ct, "message", "*")) ||
	       eml_name(fname) || eml_name(cname);
}

static void walk_message(struct walk *w, const unsigned char *msg,
			 size_t len, unsigned depth);

static void
walk_part(struct walk *w, GMimePart *part, unsigned depth)
{
	GMimeObject *o = GMIME_OBJECT(part);
	const char *fname, *cname;
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	struct decoded d;
	bool text, message;

	fname = g_mime_object_get_content_disposition_parameter(o, "filename");
	cname = g_mime_object_get_content_type_parameter(o, "name");
	attach_name_clean(fname != NULL ? fname : cname != NULL ? cname : "",
			  w->top);
	if (fname != NULL)
		walk_check_name(w, fname, false);
	if (cname != NULL)
		walk_check_name(w, cname, false);
	text = ct == NULL || g_mime_content_type_is_type(ct, "text", "*");
	message = embedded_message(ct, fname, cname);
	if (walk_stopped(w) || !decode(w, part, text || message, &d))
		return;
	walk_check_content(w, NULL, d.data, d.len, depth);
	if (!walk_stopped(w) && text)
		walk_uuencoded(w, d.data, d.len, depth);
	/* a message a client opens as one: its attachments too */
	if (!walk_stopped(w) && message)
		walk_message(w, d.data, d.len, depth + 1);
	decoded_free(&d);
}

static void
walk_object(struct walk *w, GMimeObject *o, unsigned depth)
{
	if (o == NULL || !walk_count(w, depth))
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n && !walk_stopped(w); i++)
			walk_object(w, g_mime_multipart_get_part(mp, i),
				    depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *m =
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));

		if (m != NULL)
			walk_object(w, g_mime_message_get_mime_part(m),
				    depth + 1);
	} else if (GMIME_IS_PART(o)) {
		walk_part(w, GMIME_PART(o), depth);
	}
}

/* Does line[0..n) hold word (lower case), in any case? */
static bool
ci_has(const unsigned char *line, size_t n, const char *word)
{
	size_t w = strlen(word);

	for (size_t i = 0; i + w <= n; i++)
		if (strncasecmp((const char *)line + i, word, w) == 0)
			return true;
	return false;
}

static bool
starts(const unsigned char *line, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n >= w && (line[0] | 0x20) == word[0] &&
	       strncasecmp((const char *)line, word, w) == 0;
}

struct prescan {
	size_t types;		/* lines starting "Content-Type" */
	size_t dashes;		/* lines starting "--" */
	bool text_plain;	/* a Content-Type field said text/plain */
	bool files;		/* something that may be or hold a file */
	enum { FIELD_OTHER, FIELD_TYPE, FIELD_CTE } field;
};

/* One line: the counts, and what makes a message more than plain text. */
static void
prescan_line(struct prescan *ps, const unsigned char *p, size_t n)
{
	bool cont = n > 0 && (p[0] == ' ' || p[0] == '\t');

	if (!cont)
		ps->field = FIELD_OTHER;
	/* raw binary in a body is looked at too */
	if (!ps->files && looks_binary(p, n))
		ps->files = true;
	if (starts(p, n, "content-type")) {
		ps->types++;
		ps->field = FIELD_TYPE;
	} else if (starts(p, n, "content-transfer-encoding")) {
		ps->field = FIELD_CTE;
	} else if (starts(p, n, "content-disposition") ||
		   starts(p, n, "begin ")) {
		ps->files = true;
	} else if (n >= 2 && p[0] == '-' && p[1] == '-') {
		ps->dashes++;
	}
	if (ps->field == FIELD_TYPE) {
		if (ci_has(p, n, "text/plain"))
			ps->text_plain = true;
		if (ci_has(p, n, "name") || ci_has(p, n, "multipart") ||
		    ci_has(p, n, "message"))
			ps->files = true;
	} else if (ps->field == FIELD_CTE &&
		   (ci_has(p, n, "base64") || ci_has(p, n, "uu"))) {
		ps->files = true;
	}
}

/*
 * Before GMime. GMime builds the whole tree at once, recursing into
 * every multipart and message/rfc822 part, with no limit of its own.
 * What it can build is bounded by lines: a multipart or message part
 * needs a Content-Type field (a line starting "Content-Type"), a part of
 * a multipart a delimiter line (starting "--"). Counted first, these keep
 * its recursion and its part objects within the limits (the delimiter
 * count is generous: other lines start with "--" too).
 *
 * The same pass finds plain text: one text/plain part at most, without a
 * name, a disposition, base64 or uuencode, a "begin " line or a control
 * octet. No file can be in such a message, and the walk (GMime's parse
 * is most of its cost) is skipped: *plain_r.
 */
static bool
prescan(struct walk *w, const unsigned char *msg, size_t len, bool *plain_r)
{
	struct prescan ps = {0};
	const unsigned char *p = msg, *end = msg + len;

	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		prescan_line(&ps, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
		p += n + 1;
	}
	if (ps.types > w->cfg->max_parts ||
	    ps.dashes > 4 * (size_t)w->cfg->max_parts + 16) {
		walk_limit(w, "part count");
		return false;
	}
	*plain_r = !ps.files && (ps.types == 0 ||
				 (ps.types == 1 && ps.text_plain));
	return true;
}

/* A message (the whole one, or one attached encoded or as a .eml file):
 * the line count, then GMime's tree walked. */
static void
walk_message(struct walk *w, const unsigned char *msg, size_t len,
	     unsigned depth)
{
	GMimeStream *st;
	GMimeParser *parser;
	GMimeObject *top;
	GByteArray *arr;
	bool plain;

	if (len > G_MAXUINT) {
		walk_limit(w, "decoded size");	/* past a GByteArray */
		return;
	}
	if (len == 0 || !prescan(w, msg, len, &plain) || plain)
		return;
	/* GMime reads msg in place: the array is never written, and is
	 * let go without its data */
	arr = g_byte_array_new_take((guint8 *)(uintptr_t)msg, len);
	st = g_mime_stream_mem_new_with_byte_array(arr);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(st), FALSE);
	parser = g_mime_parser_new_with_stream(st);
	g_object_unref(st);
	/* the top part, not a GMimeMessage: its address fields are not
	 * parsed (a third of the cost of a small message) */
	top = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	if (top != NULL) {
		walk_object(w, top, depth);
		g_object_unref(top);
	}
	g_byte_array_free(arr, FALSE);
}

void
attach_scan(struct attach_scanner *sc, const struct attach_config *cfg,
	    const unsigned char *msg, size_t len, struct attach_result *r)
{
	struct walk w = {.sc = sc, .cfg = cfg, .r = r};

	memset(r, 0, sizeof(*r));
	r->status = ATTACH_OK;
	walk_message(&w, msg, len, 0);
	if (r->parts == 0 && r->status == ATTACH_OK)
		r->parts = 1;	/* plain text, not walked */
}

/* ---- the scanner -------------------------------------------------------- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_start(void)
{
	g_mime_init();
}

struct attach_scanner *
attach_scanner_new(char **error_r)
{
	struct attach_scanner *sc;
	magic_t m;
	size_t bytes = SNIFF_MAX;

	pthread_once(&gmime_once, gmime_start);
	m = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS |
		       MAGIC_NO_CHECK_ENCODING | MAGIC_ERROR);
	if (m == NULL) {
		*error_r = xstrdup("libmagic: magic_open failed");
		return NULL;
	}
	if (magic_load(m, NULL) < 0) {
		*error_r = xasprintf("libmagic: %s", magic_error(m));
		magic_close(m);
		return NULL;
	}
	magic_setparam(m, MAGIC_PARAM_BYTES_MAX, &bytes);
	sc = xcalloc(1, sizeof(*sc));
	sc->magic = m;
	return sc;
}

void
attach_scanner_free(struct attach_scanner **scp)
{
	struct attach_scanner *sc = *scp;

	if (sc == NULL)
		return;
	magic_close(sc->magic);
	free(sc);
	*scp = NULL;
}
