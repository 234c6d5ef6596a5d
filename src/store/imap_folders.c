/*
 * The user's folders: names to Maildir++ directories and back, the
 * special-use folders (created, and subscribed until the user has a
 * subscriptions file), LIST, CREATE, DELETE, RENAME, subscriptions,
 * STATUS, APPEND; flag letters in file names; the dovecot-keywords file.
 * See imap_store.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/strbuf.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/imap_utf7.h"
#include "store/deliver.h"
#include "store/imap_store_private.h"
#include "store/mailbox.h"
#include "store/queue.h"

static const struct {
	const char *name;
	enum imap_special special;
} specials[] = {
	{"Sent", IMAP_SPECIAL_SENT},
	{"Drafts", IMAP_SPECIAL_DRAFTS},
	{"Junk", IMAP_SPECIAL_JUNK},
	{"Trash", IMAP_SPECIAL_TRASH},
};

/* flag bits and their letters, in the order names carry them */
static const struct {
	char c;
	unsigned bit;
} letters[] = {
	{'D', IMAP_F_DRAFT},  {'F', IMAP_F_FLAGGED}, {'P', IMAP_F_FORWARDED},
	{'R', IMAP_F_ANSWERED}, {'S', IMAP_F_SEEN},  {'T', IMAP_F_DELETED},
};

static bool
is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

enum imap_special
folder_special(const char *name)
{
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		if (strcmp(name, specials[i].name) == 0)
			return specials[i].special;
	return IMAP_SPECIAL_NONE;
}

/* "A/B" → ".A.B" (levels modified UTF-7); NULL if not a valid name. */
static char *
disk_name(const char *name)
{
	struct strbuf b = {0};
	const char *s = name;

	if (*name == '\0' || strlen(name) > 1000)
		goto bad;
	for (const char *p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '.')
			goto bad;
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
		if (n == 0)
			goto bad;
		strbuf_addc(&b, '.');
		if (imap_utf8_to_utf7(s, n, &b) < 0)
			goto bad;
		if (slash == NULL)
			break;
		s = slash + 1;
	}
	if (b.len > DOVECOT_NAME_MAX)
		goto bad;
	return strbuf_steal(&b);
bad:
	strbuf_free(&b);
	errno = EINVAL;
	return NULL;
}

/* ".A.B" → "A/B" in UTF-8; NULL if it is not a folder of ours. */
static char *
utf8_name(const char *disk)
{
	struct strbuf b = {0};
	const char *s = disk + 1;

	if (disk[0] != '.' || disk[1] == '\0')
		return NULL;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t n = dot != NULL ? (size_t)(dot - s) : strlen(s);
		if (n == 0 || memchr(s, '/', n) != NULL)
			goto bad;
		if (b.len > 0)
			strbuf_addc(&b, '/');
		if (imap_utf7_to_utf8(s, n, &b) < 0)
			goto bad;
		if (dot == NULL)
			break;
		s = dot + 1;
	}
	return strbuf_steal(&b);
bad:
	strbuf_free(&b);
	return NULL;
}

char *
folder_dir(const struct imap_store *st, const char *name)
{
	char *d, *r;

	if (is_inbox(name))
		return xstrdup(st->root);
	if ((d = disk_name(name)) == NULL)
		return NULL;
	r = xasprintf("%s/%s", st->root, d);
	free(d);
	return r;
}

char *
folder_dir_existing(const struct imap_store *st, const char *name)
{
	char *dir = folder_dir(st, name), *cur;

	if (dir == NULL)
		return NULL;
	cur = xasprintf("%s/cur", dir);
	if (access(cur, F_OK) != 0) {
		free(dir);
		dir = NULL;
		errno = ENOENT;
	}
	free(cur);
	return dir;
}

/* ---- flags in names ------------------------------------------------ */

void
name_flags(const char *name, unsigned *flags_r, uint32_t *kw_r)
{
	const char *info = strchr(name, ':');

	*flags_r = 0;
	*kw_r = 0;
	if (info == NULL || strncmp(info, ":2,", 3) != 0)
		return;
	for (const char *p = info + 3; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*kw_r |= 1u << (*p - 'a');
		for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++)
			if (*p == letters[i].c)
				*flags_r |= letters[i].bit;
	}
}

char *
name_with_flags(const char *base, size_t baselen, unsigned flags, uint32_t kw)
{
	char info[3 + 6 + 26 + 1];
	size_t k = 0;

	for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++)
		if (flags & letters[i].bit)
			info[k++] = letters[i].c;
	for (int i = 0; i < IMAP_KEYWORDS_MAX; i++)
		if (kw & (1u << i))
			info[k++] = (char)('a' + i);
	info[k] = '\0';
	return xasprintf("%.*s:2,%s", (int)baselen, base, info);
}

uint64_t
file_vsize(const char *dir, const char *name)
{
	char *path, buf[16384];
	uint64_t size = 0;
	ssize_t k;
	char last = '\0';
	int fd;

	if (mailbox_name_size(name, &size) == 1)
		return size;
	path = xasprintf("%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	free(path);
	if (fd < 0)
		return 0;
	while ((k = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < k; i++) {
			size += 1 + (buf[i] == '\n' && last != '\r');
			last = buf[i];
		}
	close(fd);
	return size;
}

void
store_new_base(const struct imap_store *st, char *buf, size_t size,
	       uint64_t octets, uint64_t vsize)
{
	static unsigned seq;
	char id[QUEUE_ID_LEN + 1];

	queue_id_new(id);
	maildir_name(buf, size, st->host, (int)getpid(), id, seq++, octets,
		     vsize);
}

/* ---- dovecot-keywords ---------------------------------------------- */

void
keywords_read(const char *dir, char *names[IMAP_KEYWORDS_MAX])
{
	char *path = xasprintf("%s/" KEYWORDS_FILE, dir), *buf;
	size_t len = 0;

	buf = read_small_file(path, &len);
	dovecot_keywords_parse(buf != NULL ? buf : "", len, names);
	free(buf);
	free(path);
}

void
keywords_free(char *names[IMAP_KEYWORDS_MAX])
{
	for (size_t i = 0; i < IMAP_KEYWORDS_MAX; i++)
		xfree(&names[i]);
}

static int
keyword_find(char *names[IMAP_KEYWORDS_MAX], const char *name)
{
	for (int i = 0; i < IMAP_KEYWORDS_MAX; i++)
		if (names[i] != NULL && strcasecmp(names[i], name) == 0)
			return i;
	return -1;
}

int
keyword_index(const char *dir, char *names[IMAP_KEYWORDS_MAX],
	      const char *name, bool create)
{
	char *path;
	int i, fd, r;

	if ((i = keyword_find(names, name)) >= 0)
		return i;
	if (!create) {
		errno = ENOENT;
		return -1;
	}
	if (!dovecot_keyword_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	path = xasprintf("%s/" KEYWORDS_FILE, dir);
	if ((fd = dotlock_take(path)) < 0) {
		free(path);
		return -1;
	}
	keywords_free(names);
	keywords_read(dir, names);	/* another may have added some */
	if ((i = keyword_find(names, name)) >= 0) {
		dotlock_release(path, fd);
		free(path);
		return i;
	}
	for (i = 0; i < IMAP_KEYWORDS_MAX && names[i] != NULL; i++)
		;
	if (i == IMAP_KEYWORDS_MAX) {
		dotlock_release(path, fd);
		free(path);
		errno = ENOSPC;
		return -1;
	}
	names[i] = xstrdup(name);
	struct strbuf b = {0};
	dovecot_keywords_write(names, &b);
	r = dotlock_replace(path, fd, b.s, b.len);
	strbuf_free(&b);
	free(path);
	if (r < 0) {
		xfree(&names[i]);
		return -1;
	}
	return i;
}

/* ---- the store ----------------------------------------------------- */

static int
subs_change(struct imap_store *st, const char *name, bool on);

/*
 * The special-use folders: each one missing is created and subscribed.
 * While there is no subscriptions file yet (no IMAP session has run on
 * this Maildir) the ones that already exist are subscribed too: a .Sent
 * made by submission's save_sent or a .Junk by quarantine before the
 * first login must not stay hidden from clients that list subscribed
 * folders only (Dovecot's autosubscribe does the same).
 */
static void
specials_ensure(struct imap_store *st)
{
	char *subs = xasprintf("%s/" SUBS_FILE, st->root);
	bool first = access(subs, F_OK) != 0 && errno == ENOENT;

	free(subs);
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		char *d = xasprintf("%s/.%s", st->root, specials[i].name);
		bool sub = first;

		if (access(d, F_OK) != 0) {
			char *f = xasprintf(".%s", specials[i].name);
			sub = maildir_folder_create(st->root, f) == 0;
			free(f);
		}
		if (sub)
			(void)subs_change(st, specials[i].name, true);
		free(d);
	}
}

int
imap_store_open(const char *maildir, struct imap_store **st_r)
{
	struct imap_store *st;
	size_t i;

	if (access(maildir, F_OK) != 0 && maildir_create(maildir) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	st->root = xstrdup(maildir);
	if (gethostname(st->host, sizeof(st->host) - 1) < 0)
		strlcpy_checked(st->host, "localhost", sizeof(st->host));
	for (i = 0; st->host[i] != '\0'; i++)
		if (st->host[i] == '/' || st->host[i] == ':')
			st->host[i] = '_';
	specials_ensure(st);
	*st_r = st;
	return 0;
}

void
imap_store_close(struct imap_store *st)
{
	if (st == NULL)
		return;
	free(st->root);
	free(st);
}

/* ---- subscriptions ------------------------------------------------- */

static void
subs_read(const struct imap_store *st, char ***names_r, size_t *n_r)
{
	char *path = xasprintf("%s/" SUBS_FILE, st->root), *buf;
	size_t len = 0;

	buf = read_small_file(path, &len);
	dovecot_subs_parse(buf != NULL ? buf : "", len, names_r, n_r);
	free(buf);
	free(path);
}

static void
names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
subs_change(struct imap_store *st, const char *name, bool on)
{
	char *path = xasprintf("%s/" SUBS_FILE, st->root), **names;
	struct strbuf b = {0};
	size_t n, i, j;
	bool found = false;
	int fd, r;

	if ((fd = dotlock_take(path)) < 0) {
		free(path);
		return -1;
	}
	subs_read(st, &names, &n);
	for (i = j = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			if (found || !on) {
				free(names[i]);
				continue;
			}
			found = true;
		}
		names[j++] = names[i];
	}
	n = j;
	if (on && !found) {
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(name);
	}
	if (dovecot_subs_write(names, n, &b) < 0) {
		dotlock_release(path, fd);
		errno = EINVAL;
		r = -1;
	} else
		r = dotlock_replace(path, fd, b.s, b.len);
	strbuf_free(&b);
	names_free(names, n);
	free(path);
	return r;
}

int
imap_store_subscribe(struct imap_store *st, const char *name, bool on)
{
	char *d;

	if (is_inbox(name))
		name = "INBOX";
	else if ((d = disk_name(name)) == NULL)
		return -1;
	else
		free(d);
	return subs_change(st, name, on);
}

/* ---- LIST ------------------------------------------------------------ */

bool
imap_list_match(const char *pattern, const char *name)
{
	for (; *pattern != '\0'; pattern++, name++) {
		if (*pattern == '*' || *pattern == '%') {
			for (const char *s = name;; s++) {
				if (imap_list_match(pattern + 1, s))
					return true;
				if (*s == '\0' || (*pattern == '%' && *s == '/'))
					return false;
			}
		}
		if (*name == '\0' || *pattern != *name)
			return false;
	}
	return *name == '\0';
}

struct flist {
	struct imap_folder_info *v;
	size_t n, cap;
};

static struct imap_folder_info *
flist_get(struct flist *l, const char *name, bool add)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	if (!add)
		return NULL;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	l->v[l->n].name = xstrdup(name);
	l->v[l->n].special = folder_special(name);
	return &l->v[l->n++];
}

static int
cmp_info(const void *a, const void *b)
{
	const struct imap_folder_info *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;

	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void
list_dirs(const struct imap_store *st, struct flist *l)
{
	DIR *d = opendir(st->root);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *name;
		if (de->d_name[0] != '.' ||
		    (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) ||
		    (name = utf8_name(de->d_name)) == NULL)
			continue;
		if (!is_inbox(name)) {
			char *sub = xasprintf("%s/%s/cur", st->root, de->d_name);
			struct stat sb;
			if (stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
				(void)flist_get(l, name, true);
			free(sub);
		}
		free(name);
	}
	closedir(d);
}

/* parents that have no directory: \Noselect; children attributes */
static void
list_parents(struct flist *l)
{
	size_t n = l->n;

	for (size_t i = 0; i < n; i++) {
		char *p = xstrdup(l->v[i].name), *slash;
		while ((slash = strrchr(p, '/')) != NULL) {
			*slash = '\0';
			struct imap_folder_info *fi = flist_get(l, p, false);
			if (fi == NULL) {
				fi = flist_get(l, p, true);
				fi->attrs |= IMAP_FA_NOSELECT;
			}
		}
		free(p);
	}
	for (size_t i = 0; i < l->n; i++) {
		size_t len = strlen(l->v[i].name);
		bool kids = false;
		for (size_t j = 0; j < l->n && !kids; j++)
			kids = strncmp(l->v[j].name, l->v[i].name, len) == 0 &&
			       l->v[j].name[len] == '/';
		l->v[i].attrs |= kids ? IMAP_FA_HASCHILDREN
				      : IMAP_FA_HASNOCHILDREN;
	}
}

int
imap_store_list(struct imap_store *st, struct imap_folder_info **list_r,
		size_t *n_r)
{
	struct flist l = {0};
	char **subs;
	size_t nsubs;

	(void)flist_get(&l, "INBOX", true);
	list_dirs(st, &l);
	list_parents(&l);
	subs_read(st, &subs, &nsubs);
	for (size_t i = 0; i < nsubs; i++) {
		const char *name = is_inbox(subs[i]) ? "INBOX" : subs[i];
		struct imap_folder_info *fi = flist_get(&l, name, false);
		if (fi == NULL) {
			fi = flist_get(&l, name, true);
			fi->attrs |= IMAP_FA_NONEXISTENT | IMAP_FA_NOSELECT;
		}
		fi->attrs |= IMAP_FA_SUBSCRIBED;
	}
	names_free(subs, nsubs);
	qsort(l.v, l.n, sizeof(*l.v), cmp_info);
	*list_r = l.v;
	*n_r = l.n;
	return 0;
}

void
imap_store_list_free(struct imap_folder_info *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

/* ---- CREATE DELETE RENAME -------------------------------------------- */

int
imap_store_create(struct imap_store *st, const char *name)
{
	char *d;
	struct stat sb;
	int r;

	if (is_inbox(name)) {
		errno = EEXIST;
		return -1;
	}
	if ((d = disk_name(name)) == NULL)
		return -1;
	char *path = xasprintf("%s/%s", st->root, d);
	if (lstat(path, &sb) == 0) {
		errno = EEXIST;
		r = -1;
	} else
		r = maildir_folder_create(st->root, d);
	free(path);
	free(d);
	return r;
}

/* Removes the files of dir/sub (one level) and sub itself. */
static void
remove_sub(const char *dir, const char *sub)
{
	char *path = xasprintf("%s/%s", dir, sub);
	DIR *d = opendir(path);
	struct dirent *de;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	(void)rmdir(path);
	free(path);
}

int
imap_store_delete(struct imap_store *st, const char *name)
{
	static unsigned seq;
	char *dir, *trash;
	static const char *const subs[] = {"tmp", "new", "cur"};
	int r;

	if (is_inbox(name)) {
		errno = EPERM;
		return -1;
	}
	if ((dir = folder_dir(st, name)) == NULL)
		return -1;
	/* out of sight first (".." names are no folder), then removed; the
	 * name unique among the nodes sharing the mail_dir */
	trash = xasprintf("%s/..deleted.%s.%d.%u", st->root, st->host,
			  (int)getpid(), seq++);
	r = rename(dir, trash);
	if (r == 0) {
		for (size_t i = 0; i < 3; i++)
			remove_sub(trash, subs[i]);
		remove_sub(st->root, trash + strlen(st->root) + 1);
		(void)fsync_dir(st->root);
	}
	free(trash);
	free(dir);
	return r;
}

static int
rename_inbox(struct imap_store *st, const char *to);

/* ".from.x" → ".to.x" for every child (listed first: no renaming while
 * the directory is read). */
static void
rename_children(struct imap_store *st, const char *from, const char *to)
{
	size_t fl = strlen(from), n = 0, cap = 0;
	DIR *d = opendir(st->root);
	struct dirent *de;
	char **kids = NULL;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, from, fl) != 0 || de->d_name[fl] != '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			kids = xreallocarray(kids, cap, sizeof(*kids));
		}
		kids[n++] = xstrdup(de->d_name + fl);
	}
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < n; i++) {
		char *a = xasprintf("%s/%s%s", st->root, from, kids[i]);
		char *b = xasprintf("%s/%s%s", st->root, to, kids[i]);
		(void)rename(a, b);
		free(a);
		free(b);
		free(kids[i]);
	}
	free(kids);
}

int
imap_store_rename(struct imap_store *st, const char *from, const char *to)
{
	char *fd_ = NULL, *td = NULL;
	struct stat sb;
	int r = -1;

	if (is_inbox(from))
		return rename_inbox(st, to);
	if (is_inbox(to)) {
		errno = EEXIST;
		return -1;
	}
	if ((fd_ = disk_name(from)) == NULL || (td = disk_name(to)) == NULL)
		goto out;
	if (strncmp(td, fd_, strlen(fd_)) == 0 && td[strlen(fd_)] == '.') {
		errno = EINVAL;		/* under itself */
		goto out;
	}
	char *fp = xasprintf("%s/%s", st->root, fd_);
	char *tp = xasprintf("%s/%s", st->root, td);
	if (lstat(tp, &sb) == 0)
		errno = EEXIST;
	else if (rename(fp, tp) == 0)
		r = 0;
	free(fp);
	free(tp);
	if (r == 0) {
		rename_children(st, fd_, td);
		(void)fsync_dir(st->root);
	}
out:
	free(fd_);
	free(td);
	return r;
}

/* RFC 9051 6.3.6: INBOX's messages move into a new folder "to"; its
 * uidlist and keywords go along, so the messages keep their UIDs. */
static int
rename_inbox(struct imap_store *st, const char *to)
{
	char *td, *dst, *ul = xasprintf("%s/" UIDLIST_FILE, st->root);
	struct scan sc;
	int fd, r;

	if ((td = disk_name(to)) == NULL) {
		free(ul);
		return -1;
	}
	dst = xasprintf("%s/%s", st->root, td);
	if (access(dst, F_OK) == 0) {
		errno = EEXIST;
		r = -1;
	} else if ((fd = dotlock_take(ul)) < 0)
		r = -1;
	else {
		r = maildir_folder_create(st->root, td);
		if (r == 0 && scan_dir(st->root, &sc) == 0) {
			for (size_t i = 0; i < sc.n; i++) {
				char *a = xasprintf("%s/%s", st->root, sc.e[i].name);
				char *b = xasprintf("%s/%s", dst, sc.e[i].name);
				(void)rename(a, b);
				free(a);
				free(b);
			}
			scan_free(&sc);
			char *a = xasprintf("%s/" KEYWORDS_FILE, st->root);
			char *b = xasprintf("%s/" KEYWORDS_FILE, dst);
			(void)rename(a, b);
			free(a);
			free(b);
			b = xasprintf("%s/" UIDLIST_FILE, dst);
			(void)rename(ul, b);	/* INBOX gets a new one */
			free(b);
			char *n = xasprintf("%s/new", dst), *c = xasprintf("%s/cur", dst);
			(void)fsync_dir(n);
			(void)fsync_dir(c);
			(void)fsync_dir(dst);
			free(n);
			free(c);
		}
		dotlock_release(ul, fd);
	}
	free(dst);
	free(td);
	free(ul);
	return r;
}

/* ---- STATUS, APPEND ---------------------------------------------- */

int
imap_store_status(struct imap_store *st, const char *name,
		  struct imap_status *status)
{
	char *dir = folder_dir_existing(st, name);
	struct scan sc;
	unsigned flags;
	uint32_t kw;

	memset(status, 0, sizeof(*status));
	if (dir == NULL)
		return -1;
	if (scan_dir(dir, &sc) < 0 || scan_uids(dir, &sc, true) < 0) {
		int saved = errno;
		scan_free(&sc);
		free(dir);
		errno = saved;
		return -1;
	}
	for (size_t i = 0; i < sc.n; i++) {
		if (sc.e[i].uid == 0)
			continue;
		name_flags(sc.e[i].name, &flags, &kw);
		status->messages++;
		status->recent += strncmp(sc.e[i].name, "new/", 4) == 0;
		status->unseen += !(flags & IMAP_F_SEEN);
		status->deleted += !!(flags & IMAP_F_DELETED);
		status->size += file_vsize(dir, sc.e[i].name);
	}
	status->uidnext = sc.uidnext;
	status->uidvalidity = sc.uidvalidity;
	scan_free(&sc);
	free(dir);
	return 0;
}

/* Copies fd (or buf) with CRLF → LF into out; *vsize_r with CRLF. */
static int
append_copy(int out, int fd, const char *buf, uint64_t size,
	    uint64_t *octets_r, uint64_t *vsize_r)
{
	char in[16384], o[16384];
	uint64_t done = 0;
	bool cr = false;

	*octets_r = *vsize_r = 0;
	while (done < size) {
		size_t want = size - done < sizeof(in) ? (size_t)(size - done)
						       : sizeof(in), k = 0;
		const char *p;
		if (fd >= 0) {
			ssize_t g = pread(fd, in, want, (off_t)done);
			if (g <= 0) {
				errno = g == 0 ? EIO : errno;
				return -1;
			}
			p = in, want = (size_t)g;
		} else
			p = buf + done;
		for (size_t i = 0; i < want; i++) {
			if (cr && p[i] != '\n')
				o[k++] = '\r', (*vsize_r)++;
			cr = p[i] == '\r';
			if (cr)
				continue;
			if (p[i] == '\n')
				(*vsize_r)++;	/* the CR it has on the wire */
			o[k++] = p[i];
			(*vsize_r)++;
			if (k >= sizeof(o) - 2) {
				if (write_full(out, o, k) < 0)
					return -1;
				*octets_r += k, k = 0;
			}
		}
		if (write_full(out, o, k) < 0)
			return -1;
		*octets_r += k;
		done += want;
	}
	if (cr) {
		if (write_full(out, "\r", 1) < 0)
			return -1;
		(*octets_r)++, (*vsize_r)++;
	}
	return 0;
}

/* The keyword bits of names in dir's list (created as needed). */
static int
keyword_bits(const char *dir, const char *const *keywords, size_t n,
	     uint32_t *kw_r)
{
	char *names[IMAP_KEYWORDS_MAX];
	int r = 0;

	*kw_r = 0;
	if (n == 0)
		return 0;
	keywords_read(dir, names);
	for (size_t i = 0; i < n && r == 0; i++) {
		int k = keyword_index(dir, names, keywords[i], true);
		if (k < 0)
			r = -1;
		else
			*kw_r |= 1u << k;
	}
	keywords_free(names);
	return r;
}

int
imap_store_append(struct imap_store *st, const char *name, int fd,
		  const char *buf, uint64_t size, unsigned flags,
		  const char *const *keywords, size_t nkeywords,
		  time_t internaldate, uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	char *dir = folder_dir_existing(st, name), *tmp = NULL, *fname = NULL;
	char base[256];
	uint64_t octets, vsize;
	uint32_t kw;
	int out = -1, r = -1, saved;

	if (dir == NULL)
		return -1;
	if (keyword_bits(dir, keywords, nkeywords, &kw) < 0)
		goto out;
	store_new_base(st, base, sizeof(base), 0, 0);
	tmp = xasprintf("%s/tmp/%s", dir, base);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0)
		goto out;
	struct timespec ts[2] = {{internaldate, 0}, {internaldate, 0}};
	if (append_copy(out, fd, buf, size, &octets, &vsize) < 0 ||
	    (internaldate > 0 && futimens(out, ts) < 0) || fsync(out) < 0)
		goto out;
	store_new_base(st, base, sizeof(base), octets, vsize);
	fname = name_with_flags(base, strlen(base), flags & 0x3f, kw);
	r = uidlist_place(dir, &tmp, &fname, 1, uidvalidity_r, uid_r);
out:
	saved = errno;
	if (out >= 0)
		close(out);
	if (r < 0 && tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	free(fname);
	free(dir);
	errno = saved;
	return r;
}
