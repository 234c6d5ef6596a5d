/*
 * Archives in the attachment walk (attach_private.h): the members of a
 * zip, rar, 7z, tar, cpio, cab, iso... listed with libarchive (and a
 * lone compressed file, .gz .bz2 .xz, read as its one member), each
 * checked by the name rules and, from its first octets, by content (the
 * rest of a member is not decompressed unless it starts like an
 * executable or an archive); a member that is itself an archive is read
 * whole (within the decoded size limit) and listed in turn, within the
 * nesting depth. A zip is opened with the zip readers only. Encrypted
 * members follow filter.attachments.encrypted_archives; an archive
 * libarchive cannot read is refused, as it cannot be checked.
 */
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "filter/attach.h"
#include "filter/attach_private.h"
#include "lib/xalloc.h"

/* the start of a member that tells whether it has a signature (the
 * last ones are an ISO image's, at 36865) */
#define MEMBER_HEAD (40 * 1024)
/* the start of a member given to libmagic */
#define MEMBER_SNIFF (256 * 1024)
#define CHUNK (64 * 1024)

static void
encrypted(struct walk *w, const char *self)
{
	if (w->cfg->encrypted_archives == ATTACH_ENCRYPTED_REFUSE)
		walk_refuse(w, self, "encrypted-archive",
			    "an encrypted archive");
}

/*
 * Reads the member on into *buf (*len octets so far, *cap allocated) up
 * to want octets or its end: 1 at its end, 0 at want, -1 on an error
 * (or past the decoded size limit).
 */
static int
read_on(struct walk *w, struct archive *a, unsigned char **buf, size_t *len,
	size_t *cap, size_t want)
{
	while (*len < want) {
		size_t n = want - *len < CHUNK ? want - *len : CHUNK;
		la_ssize_t got;

		if (*len + n > *cap) {
			*cap = *cap == 0 ? CHUNK : *cap * 2;
			while (*cap < *len + n)
				*cap *= 2;
			*buf = xreallocarray(*buf, *cap, 1);
		}
		if ((got = archive_read_data(a, *buf + *len, n)) < 0)
			return -1;
		if (got == 0)
			return 1;
		if (!walk_decoded(w, (size_t)got))
			return -1;
		*len += (size_t)got;
	}
	return 0;
}

/*
 * A member's content: its first MEMBER_HEAD octets decide whether it may
 * be an executable or an archive (walk_has_signature()); only then is
 * more of it read (MEMBER_SNIFF for libmagic, all of it for an archive
 * inside, which is listed in turn). A member that starts like neither is
 * not decompressed further.
 */
static void
member_content(struct walk *w, struct archive *a, struct archive_entry *e,
	       const char *name, unsigned depth)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	const char *mime;
	int rc;

	rc = read_on(w, a, &buf, &len, &cap, MEMBER_HEAD);
	if (rc == 0 && walk_has_signature(buf, len))
		rc = read_on(w, a, &buf, &len, &cap, MEMBER_SNIFF);
	if (rc < 0 && !walk_stopped(w) && archive_entry_is_encrypted(e))
		encrypted(w, name);
	if (walk_stopped(w) || len == 0)
		goto out;
	mime = walk_sniff(w, buf, len);
	if (!attach_is_archive_type(mime)) {
		walk_check_sniffed(w, name, mime, buf, len, depth);
		goto out;
	}
	/* a nested archive is listed from all of it */
	if (rc == 0 && read_on(w, a, &buf, &len, &cap, SIZE_MAX) < 0)
		goto out;
	walk_archive(w, name, buf, len, depth + 1);
out:
	free(buf);
}

/* The name a lone compressed file stands for: "x.exe" for "x.exe.gz". */
static void
raw_name(const char *outer, char *out, size_t size)
{
	const char *dot;

	snprintf(out, size, "%s", outer);
	if ((dot = strrchr(out, '.')) != NULL && dot != out)
		out[dot - out] = '\0';
}

static void
member(struct walk *w, struct archive *a, struct archive_entry *e,
       const char *self, unsigned depth)
{
	char rawbuf[512];
	const char *name;

	if (archive_format(a) == ARCHIVE_FORMAT_RAW) {
		raw_name(self != NULL ? self : w->top, rawbuf, sizeof(rawbuf));
		name = rawbuf;
	} else if ((name = archive_entry_pathname_utf8(e)) == NULL &&
		   (name = archive_entry_pathname(e)) == NULL) {
		name = "";
	}
	if (archive_entry_filetype(e) == AE_IFDIR)
		return;
	walk_check_name(w, name, true);
	if (walk_stopped(w))
		return;
	if (archive_entry_is_encrypted(e)) {
		encrypted(w, self);
		return;
	}
	member_content(w, a, e, name, depth);
}

/* A lone file that is not compressed is not an archive libarchive
 * knows: read raw, it would only be itself again. */
static bool
raw_uncompressed(struct archive *a)
{
	return archive_format(a) == ARCHIVE_FORMAT_RAW &&
	       archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE;
}

void
walk_archive(struct walk *w, const char *self, const unsigned char *data,
	     size_t len, unsigned depth)
{
	struct archive *a;
	struct archive_entry *e;
	int rc;

	if (!walk_count(w, depth))
		return;
	a = archive_read_new();
	if (len >= 4 && (memcmp(data, "PK\x03\x04", 4) == 0 ||
			 memcmp(data, "PK\x05\x06", 4) == 0)) {
		/* a zip: its readers only (the seekable one, which reads
		 * the central directory, and the streaming one), as
		 * libarchive would pick among all; setting up every
		 * format and filter costs more than listing a small zip */
		archive_read_support_format_zip(a);
	} else {
		archive_read_support_filter_all(a);
		archive_read_support_format_all(a);
		archive_read_support_format_raw(a);
	}
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
		goto damaged;
	while (!walk_stopped(w)) {
		rc = archive_read_next_header(a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc < ARCHIVE_WARN || raw_uncompressed(a)) {
			if (archive_read_has_encrypted_entries(a) > 0) {
				encrypted(w, self);
				break;
			}
			goto damaged;
		}
		if (walk_count(w, depth))
			member(w, a, e, self, depth);
	}
	archive_read_free(a);
	return;
damaged:
	walk_refuse(w, self, "unreadable-archive",
		    "an archive that cannot be checked");
	archive_read_free(a);
}
