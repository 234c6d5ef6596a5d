/*
 * `godwit restore FILE --data-dir DIR`: see backup.h. Two passes over the
 * archive: the first checks every entry against the MANIFEST and writes
 * nothing; the second extracts, checking each file's SHA-256 again (the
 * archive could change between the passes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "daemon/config.h"
#include "lib/hashchain.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/backup_manifest.h"
#include "ops/backup.h"
#include "ops/restore_private.h"
#include "store/datadir.h"

#define MANIFEST_MAX (256u << 20)
#define CONFIG_MAX (4u << 20)

int
rs_fail(char **error_r, const char *fmt, ...)
{
	va_list ap;

	if (*error_r != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(error_r, fmt, ap) < 0)
		*error_r = NULL;
	va_end(ap);
	return -1;
}

static int
cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rs_rec *)a)->path,
		      ((const struct rs_rec *)b)->path);
}

struct rs_rec *
rs_find(struct rs_set *s, const char *path)
{
	struct rs_rec key = {.path = (char *)path};

	return bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_rec);
}

void
rs_set_clear(struct rs_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

bool
rs_path_ok(const char *p)
{
	return manifest_path_ok(p);
}

struct archive *
rs_open(const char *path, char **error_r)
{
	struct archive *a = archive_read_new();

	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		rs_fail(error_r, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

char *
rs_name(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	size_t n;

	if (name == NULL)
		return NULL;
	/* tar writes a directory's name with a '/' at its end */
	n = strlen(name);
	while (n > 1 && name[n - 1] == '/')
		n--;
	return xstrndup(name, n);
}

/*
 * The current entry's data: hashed into hex, kept in *keep_r when keep
 * (up to max octets: more is an error), or written to fd when fd >= 0.
 */
int
rs_data(struct archive *a, const char *name, int fd, bool keep, size_t max,
	char hex[65], char **keep_r, size_t *len_r, char **error_r)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int dlen = 0;
	uint64_t total = 0;
	FILE *f = NULL;
	la_ssize_t n;
	int r = 0;

	*len_r = 0;
	if (keep)
		f = open_memstream(keep_r, len_r);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		total += (uint64_t)n;
		if (f != NULL && (total > max || fwrite(buf, 1, (size_t)n, f) !=
						     (size_t)n))
			r = rs_fail(error_r, "%s: too large", name);
		if (fd >= 0 && write_full(fd, buf, (size_t)n) < 0)
			r = rs_fail(error_r, "%s: %s", name, strerror(errno));
		if (r < 0)
			break;
	}
	if (n < 0)
		r = rs_fail(error_r, "%s: %s", name, archive_error_string(a));
	EVP_DigestFinal_ex(md, d, &dlen);
	EVP_MD_CTX_free(md);
	hashchain_hex(d, dlen, hex);
	if (f != NULL)
		fclose(f);
	*len_r = (size_t)total;
	if (r < 0 && keep)
		xfree(keep_r);
	return r;
}

/* Pass 1: every entry, hashed; the manifest and the config/ files kept. */
static int
rs_scan(const char *path, struct rs_set *seen, char **manifest_r,
	size_t *mlen_r, struct rs_mem *conf, char **error_r)
{
	struct archive *a = rs_open(path, error_r);
	struct archive_entry *e;
	int rc, r = 0;

	if (a == NULL)
		return -1;
	while (r == 0 && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		char *name = rs_name(e);
		mode_t type = archive_entry_filetype(e);
		struct rs_rec rec = {0};
		char *data = NULL;
		size_t len = 0;
		bool is_manifest;

		if (name == NULL || !rs_path_ok(name)) {
			r = rs_fail(error_r, "%s: an entry with a name not of "
				    "a godwit backup: %s", path,
				    name != NULL ? name : "(none)");
			free(name);
			break;
		}
		if (*manifest_r != NULL) {
			r = rs_fail(error_r, "%s: entries after the MANIFEST",
				    path);
			free(name);
			break;
		}
		is_manifest = strcmp(name, "MANIFEST") == 0;
		rec.path = name;
		rec.mode = archive_entry_perm(e) & 07777;
		if (type == AE_IFDIR)
			rec.type = 'D';
		else if (type == AE_IFREG) {
			bool keep = is_manifest || strncmp(name, "config/", 7) == 0;
			rec.type = 'F';
			r = rs_data(a, name, -1, keep,
				    is_manifest ? MANIFEST_MAX : CONFIG_MAX,
				    rec.hash, &data, &len, error_r);
			rec.size = len;
		} else
			r = rs_fail(error_r, "%s: %s is not a file or a "
				    "directory", path, name);
		if (r == 0 && is_manifest) {
			*manifest_r = data;
			*mlen_r = len;
			free(rec.path);
			continue;
		}
		if (r == 0 && data != NULL)
			rs_mem_add(conf, name, data, len);
		else
			free(data);
		seen->v = xreallocarray(seen->v, seen->n + 1, sizeof(*seen->v));
		seen->v[seen->n++] = rec;
	}
	if (r == 0 && rc != ARCHIVE_EOF)
		r = rs_fail(error_r, "%s: %s", path, archive_error_string(a));
	archive_read_free(a);
	if (r == 0 && *manifest_r == NULL)
		r = rs_fail(error_r, "%s: no MANIFEST: not a godwit backup, or "
			    "cut short", path);
	if (seen->n > 1)
		qsort(seen->v, seen->n, sizeof(*seen->v), cmp_rec);
	for (size_t i = 1; r == 0 && i < seen->n; i++)
		if (strcmp(seen->v[i - 1].path, seen->v[i].path) == 0)
			r = rs_fail(error_r, "%s: %s twice", path,
				    seen->v[i].path);
	return r;
}

void
rs_mem_add(struct rs_mem *m, const char *name, char *data, size_t len)
{
	m->v = xreallocarray(m->v, m->n + 1, sizeof(*m->v));
	m->v[m->n].name = xstrdup(name);
	m->v[m->n].data = data;
	m->v[m->n].len = len;
	m->n++;
}

const struct rs_file *
rs_mem_find(const struct rs_mem *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].name, name) == 0)
			return &m->v[i];
	return NULL;
}

void
rs_mem_clear(struct rs_mem *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].data);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

void
restore_result_clear(struct restore_result *res)
{
	free(res->config_path);
	free(res->old_data_dir);
	free(res->userdb_path);
	memset(res, 0, sizeof(*res));
}

/* Pass 1 and the check against the manifest. */
static int
rs_verify(const char *path, struct rs_ctx *c, char **error_r)
{
	struct rs_set seen = {0};
	char *manifest = NULL;
	size_t mlen = 0;
	int r;

	r = rs_scan(path, &seen, &manifest, &mlen, &c->conf, error_r);
	if (r == 0)
		r = rs_manifest_check(path, manifest, mlen, &seen, &c->info,
				      error_r);
	free(manifest);
	rs_set_clear(&seen);
	return r;
}

int
backup_restore(const struct restore_options *o, struct restore_result *res,
	       char **error_r)
{
	struct rs_ctx c = {.o = o, .res = res};
	int r;

	memset(res, 0, sizeof(*res));
	*error_r = NULL;
	r = rs_verify(o->archive, &c, error_r);
	if (r == 0)
		r = rs_prepare(&c, error_r);
	if (r == 0)
		r = rs_extract(&c, error_r);
	if (r == 0)
		r = rs_finish(&c, error_r);
	rs_ctx_clear(&c);
	return r;
}
