/*
 * The selected folder: its view (sequence numbers → UIDs, flags, names),
 * synced with the disk (delivery, POP3, other IMAP sessions and Dovecot
 * change it under us), flag changes by renaming, EXPUNGE, COPY and
 * opening messages. See imap_store.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/imap_seq.h"
#include "store/imap_store_private.h"
#include "store/mailbox.h"

struct imap_folder_private {
	struct imap_store *st;
	char *dir;
	char *kw[IMAP_KEYWORDS_MAX];
	bool uidless;		/* the last scan left files without a UID */
};

static size_t
msg_baselen(const struct imap_msg *m)
{
	return strcspn(m->name + 4, ":");
}

static void
keywords_count(struct imap_folder *f)
{
	size_t n = 0;

	for (size_t i = 0; i < IMAP_KEYWORDS_MAX; i++)
		if (f->priv->kw[i] != NULL)
			n = i + 1;
	f->keywords = f->priv->kw;
	f->nkeywords = n;
}

/* Finds message m again by its base name (another session renamed or
 * moved it): 0 and m->name updated, or -1 ENOENT. */
static int
relocate(struct imap_folder *f, struct imap_msg *m)
{
	struct scan sc;
	size_t bl = msg_baselen(m);
	int r = -1;

	if (scan_dir(f->priv->dir, &sc) < 0)
		return -1;
	for (size_t i = 0; i < sc.n; i++)
		if (sc.e[i].baselen == bl &&
		    memcmp(scan_base(&sc.e[i]), m->name + 4, bl) == 0) {
			free(m->name);
			m->name = sc.e[i].name;
			sc.e[i].name = xstrdup("");
			r = 0;
			break;
		}
	scan_free(&sc);
	if (r < 0)
		errno = ENOENT;
	return r;
}

/* new/<x> → cur/<x>:2, (this session's \Recent). */
static void
take_new(struct imap_folder *f, struct imap_msg *m)
{
	char *from, *to, *nn;

	if (f->readonly || strncmp(m->name, "new/", 4) != 0)
		return;
	nn = strchr(m->name, ':') != NULL ? xasprintf("cur/%s", m->name + 4)
					  : xasprintf("cur/%s:2,", m->name + 4);
	from = xasprintf("%s/%s", f->priv->dir, m->name);
	to = xasprintf("%s/%s", f->priv->dir, nn);
	if (rename(from, to) == 0) {
		m->recent = true;
		free(m->name);
		m->name = nn;
		nn = NULL;
	}
	free(nn);
	free(from);
	free(to);
}

static void
msg_fill(struct imap_folder *f, struct imap_msg *m, struct scan_ent *e)
{
	memset(m, 0, sizeof(*m));
	m->uid = e->uid;
	m->name = e->name;
	e->name = xstrdup("");
	name_flags(m->name, &m->flags, &m->keywords);
	m->internaldate = IMAP_DATE_UNKNOWN;	/* a stat when asked for */
	m->size = file_vsize(f->priv->dir, m->name);
}

static int
cmp_uid(const void *a, const void *b)
{
	const struct scan_ent *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static const struct imap_folder *sort_view;

static int
cmp_view_base(const void *a, const void *b)
{
	const struct imap_msg *x = &sort_view->msgs[*(const size_t *)a];
	const struct imap_msg *y = &sort_view->msgs[*(const size_t *)b];
	size_t xl = msg_baselen(x), yl = msg_baselen(y);
	int c = memcmp(x->name + 4, y->name + 4, xl < yl ? xl : yl);

	return c != 0 ? c : xl < yl ? -1 : xl > yl;
}

/* UIDs from the view for the files it knows (by base name): how many of
 * sc got one. When that is all, the uidlist need not be read. */
static size_t
known_uids(struct imap_folder *f, struct scan *sc)
{
	size_t *ix, i = 0, j = 0, found = 0;

	if (f->n == 0 || sc->n == 0)
		return 0;
	ix = xcalloc(f->n, sizeof(*ix));
	for (size_t k = 0; k < f->n; k++)
		ix[k] = k;
	sort_view = f;
	qsort(ix, f->n, sizeof(*ix), cmp_view_base);
	while (i < sc->n && j < f->n) {
		const struct imap_msg *m = &f->msgs[ix[j]];
		size_t ml = msg_baselen(m), el = sc->e[i].baselen;
		int c = memcmp(scan_base(&sc->e[i]), m->name + 4,
			       el < ml ? el : ml);
		if (c == 0)
			c = el < ml ? -1 : el > ml;
		if (c == 0) {
			sc->e[i++].uid = m->uid;
			j++;
			found++;
		} else if (c < 0)
			i++;
		else
			j++;
	}
	free(ix);
	return found;
}

/* The scan with UIDs, ordered by UID, those without one dropped. */
static int
scan_by_uid(struct imap_folder *f, struct scan *sc, bool assign)
{
	size_t j = 0;

	if (scan_dir(f->priv->dir, sc) < 0)
		return -1;
	if (sc->n > 0 && known_uids(f, sc) == sc->n) {
		sc->uidvalidity = f->uidvalidity;	/* nothing new */
		sc->uidnext = f->uidnext;
	} else if (scan_uids(f->priv->dir, sc, assign) < 0) {
		if (!assign) {
			scan_free(sc);
			return -1;
		}
		/* no lock: what has a UID is still shown */
		if (scan_uids(f->priv->dir, sc, false) < 0 ||
		    sc->uidvalidity == 0) {
			scan_free(sc);
			errno = EAGAIN;
			return -1;
		}
	}
	for (size_t i = 0; i < sc->n; i++) {
		if (sc->e[i].uid == 0) {
			free(sc->e[i].name);
			continue;
		}
		sc->e[j++] = sc->e[i];
	}
	if (assign)
		f->priv->uidless = j < sc->n;
	sc->n = j;
	if (sc->n > 1)
		qsort(sc->e, sc->n, sizeof(*sc->e), cmp_uid);
	return 0;
}

static struct scan_ent *
find_uid(struct scan *sc, uint32_t uid)
{
	struct scan_ent key = {.uid = uid};

	return sc->n > 0 ? bsearch(&key, sc->e, sc->n, sizeof(*sc->e), cmp_uid)
			 : NULL;
}

int
imap_folder_open(struct imap_store *st, const char *name, bool readonly,
		 struct imap_folder **f_r)
{
	struct imap_folder *f;
	struct imap_changes ch;
	char *dir = folder_dir_existing(st, name);

	if (dir == NULL)
		return -1;
	f = xcalloc(1, sizeof(*f));
	f->priv = xcalloc(1, sizeof(*f->priv));
	f->priv->st = st;
	f->priv->dir = dir;
	f->name = xstrdup(name);
	f->special = folder_special(name);
	f->readonly = readonly;
	keywords_read(dir, f->priv->kw);
	keywords_count(f);
	if (imap_folder_sync(f, true, &ch) < 0) {
		int saved = errno;
		imap_folder_close(f);
		errno = saved;
		return -1;
	}
	imap_changes_free(&ch);
	*f_r = f;
	return 0;
}

const char *
imap_folder_path(const struct imap_folder *f)
{
	return f->priv->dir;
}

void
imap_folder_close(struct imap_folder *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->msgs[i].name);
	free(f->msgs);
	keywords_free(f->priv->kw);
	free(f->priv->dir);
	free(f->priv);
	free(f->name);
	free(f);
}

void
imap_changes_free(struct imap_changes *ch)
{
	free(ch->expunged);
	free(ch->flagged);
	memset(ch, 0, sizeof(*ch));
}

/* The keyword list re-read: true if it grew. */
static bool
keywords_refresh(struct imap_folder *f)
{
	char *kw[IMAP_KEYWORDS_MAX];
	bool grew = false;

	keywords_read(f->priv->dir, kw);
	for (size_t i = 0; i < IMAP_KEYWORDS_MAX; i++) {
		if (kw[i] == NULL)
			continue;	/* never dropped from a session's view */
		if (f->priv->kw[i] == NULL ||
		    strcmp(f->priv->kw[i], kw[i]) != 0) {
			free(f->priv->kw[i]);
			f->priv->kw[i] = kw[i];
			kw[i] = NULL;
			grew = true;
		}
	}
	keywords_free(kw);
	keywords_count(f);
	return grew;
}

/* An old message against the scan: kept (true) or vanished. */
static bool
sync_old(struct imap_msg *m, struct scan *sc, struct scan *sc2, bool *changed)
{
	struct scan_ent *e = find_uid(sc, m->uid);
	unsigned flags;
	uint32_t kw;

	if (e == NULL && sc2 != NULL)
		e = find_uid(sc2, m->uid);
	*changed = false;
	if (e == NULL)
		return false;
	if (strcmp(e->name, m->name) != 0) {
		free(m->name);
		m->name = e->name;
		e->name = xstrdup("");
	}
	name_flags(m->name, &flags, &kw);
	*changed = m->gone || flags != m->flags || kw != m->keywords;
	m->flags = flags;
	m->keywords = kw;
	m->gone = false;
	return true;
}

int
imap_folder_sync(struct imap_folder *f, bool expunges, struct imap_changes *ch)
{
	struct scan sc, sc2 = {0};
	bool have2 = false, changed;
	struct imap_msg *nv;
	size_t i, nn = 0, missing = 0;
	uint32_t last = f->n > 0 ? f->msgs[f->n - 1].uid : 0;

	memset(ch, 0, sizeof(*ch));
	if (scan_by_uid(f, &sc, true) < 0)
		return -1;
	ch->incomplete = f->priv->uidless;
	for (i = 0; i < f->n; i++)
		missing += find_uid(&sc, f->msgs[i].uid) == NULL;
	/* a rename during readdir can hide a file: look twice */
	if (missing > 0 && scan_by_uid(f, &sc2, false) == 0)
		have2 = true;
	nv = xcalloc(f->n + sc.n + 1, sizeof(*nv));
	ch->expunged = xcalloc(f->n + 1, sizeof(*ch->expunged));
	ch->flagged = xcalloc(f->n + 1, sizeof(*ch->flagged));
	for (i = 0; i < f->n; i++) {
		struct imap_msg *m = &f->msgs[i];
		bool kept = sync_old(m, &sc, have2 ? &sc2 : NULL, &changed);
		if (kept || !expunges) {
			if (!kept)
				m->gone = true;	/* EXPUNGE not yet allowed */
			if (changed)
				ch->flagged[ch->nflagged++] = nn;
			nv[nn++] = *m;
			continue;
		}
		ch->expunged[ch->nexpunged] = (uint32_t)(i + 1 - ch->nexpunged);
		ch->nexpunged++;
		free(m->name);
	}
	for (i = 0; i < sc.n; i++) {
		if (sc.e[i].uid <= last)
			continue;
		msg_fill(f, &nv[nn], &sc.e[i]);
		take_new(f, &nv[nn]);
		nn++;
		ch->new_messages = true;
	}
	free(f->msgs);
	f->msgs = nv;
	f->n = nn;
	f->uidvalidity = sc.uidvalidity;
	f->uidnext = sc.uidnext;
	if (nn > 0 && f->msgs[nn - 1].uid >= f->uidnext)
		f->uidnext = f->msgs[nn - 1].uid + 1;
	ch->exists = nn;
	ch->keywords_changed = keywords_refresh(f);
	scan_free(&sc);
	if (have2)
		scan_free(&sc2);
	return 0;
}

int
imap_folder_set_flags(struct imap_folder *f, size_t i, unsigned flags,
		      uint32_t keywords)
{
	struct imap_msg *m;
	char *nn, *from, *to;
	int r = -1;

	if (i >= f->n) {
		errno = EINVAL;
		return -1;
	}
	m = &f->msgs[i];
	if (f->readonly) {
		errno = EPERM;
		return -1;
	}
	if (m->gone) {
		errno = ENOENT;
		return -1;
	}
	flags &= 0x3f;
	keywords &= (1u << IMAP_KEYWORDS_MAX) - 1;
	if (flags == m->flags && keywords == m->keywords &&
	    strncmp(m->name, "cur/", 4) == 0)
		return 0;
	for (int tries = 0; tries < 3 && r < 0; tries++) {
		char *f2 = name_with_flags(m->name + 4, msg_baselen(m), flags,
					   keywords);
		nn = xasprintf("cur/%s", f2);
		free(f2);
		from = xasprintf("%s/%s", f->priv->dir, m->name);
		to = xasprintf("%s/%s", f->priv->dir, nn);
		r = rename(from, to);
		free(from);
		free(to);
		if (r == 0) {
			free(m->name);
			m->name = nn;
			m->flags = flags;
			m->keywords = keywords;
			return 0;
		}
		free(nn);
		if (errno != ENOENT)
			return -1;
		if (relocate(f, m) < 0) {
			m->gone = true;
			return -1;
		}
	}
	errno = EIO;
	return -1;
}

int
imap_folder_keyword(struct imap_folder *f, const char *name, bool create)
{
	int r = keyword_index(f->priv->dir, f->priv->kw, name, create);

	keywords_count(f);
	return r;
}

/* Unlinks message m (found again by base if it moved): true if it is
 * no longer there. */
static bool
expunge_one(struct imap_folder *f, struct imap_msg *m, bool *dirs)
{
	for (int tries = 0; tries < 3; tries++) {
		char *path = xasprintf("%s/%s", f->priv->dir, m->name);
		int r = unlink(path);
		free(path);
		if (r == 0) {
			dirs[m->name[0] == 'n'] = true;
			return true;
		}
		if (errno != ENOENT)
			return false;
		if (relocate(f, m) < 0)
			return true;	/* gone already: expunged too */
		/* renamed by another session: still \Deleted? */
		name_flags(m->name, &m->flags, &m->keywords);
		if (!(m->flags & IMAP_F_DELETED))
			return false;
	}
	return false;
}

int
imap_folder_expunge(struct imap_folder *f, const struct imap_seqset *uids,
		    struct imap_changes *ch)
{
	bool dirs[2] = {false, false};	/* cur, new */
	uint32_t star = f->n > 0 ? f->msgs[f->n - 1].uid : 0;
	size_t i, j;
	int r = 0;

	memset(ch, 0, sizeof(*ch));
	if (f->readonly) {
		errno = EPERM;
		return -1;
	}
	ch->expunged = xcalloc(f->n + 1, sizeof(*ch->expunged));
	for (i = j = 0; i < f->n; i++) {
		struct imap_msg *m = &f->msgs[i];
		if ((m->flags & IMAP_F_DELETED) &&
		    (uids == NULL || imap_seqset_contains(uids, m->uid, star)) &&
		    (m->gone || expunge_one(f, m, dirs))) {
			ch->expunged[ch->nexpunged] =
			    (uint32_t)(i + 1 - ch->nexpunged);
			ch->nexpunged++;
			free(m->name);
			continue;
		}
		f->msgs[j++] = *m;
	}
	f->n = j;
	ch->exists = j;
	for (i = 0; i < 2; i++) {
		char *d = xasprintf("%s/%s", f->priv->dir, i ? "new" : "cur");
		if (dirs[i] && fsync_dir(d) < 0)
			r = -1;
		free(d);
	}
	return r;
}

time_t
imap_folder_internaldate(struct imap_folder *f, size_t i)
{
	struct imap_msg *m;
	struct stat sb;
	int r = -1;

	if (i >= f->n)
		return 0;
	m = &f->msgs[i];
	if (m->internaldate != IMAP_DATE_UNKNOWN)
		return m->internaldate;
	for (int tries = 0; tries < 3 && r < 0; tries++) {
		char *path = xasprintf("%s/%s", f->priv->dir, m->name);

		r = stat(path, &sb);
		free(path);
		if (r < 0 && (errno != ENOENT || relocate(f, m) < 0))
			break;
	}
	m->internaldate = r == 0 && sb.st_mtime != IMAP_DATE_UNKNOWN ?
	    sb.st_mtime : 0;
	return m->internaldate;
}

int
imap_folder_open_msg(struct imap_folder *f, size_t i, uint64_t *fsize_r)
{
	struct imap_msg *m;
	int fd = -1;

	if (i >= f->n) {
		errno = EINVAL;
		return -1;
	}
	m = &f->msgs[i];
	for (int tries = 0; tries < 3 && fd < 0; tries++) {
		char *path = xasprintf("%s/%s", f->priv->dir, m->name);
		fd = maildir_msg_open(AT_FDCWD, path, fsize_r);
		free(path);
		if (fd < 0 && (errno != ENOENT || relocate(f, m) < 0))
			return -1;
	}
	return fd;
}

/* A copy of src at dst (a new file): contents, mtime, fsync'd. */
static int
copy_file(int in, const char *dst)
{
	char buf[16384];
	struct stat sb;
	ssize_t k;
	int out, r = 0;

	if (fstat(in, &sb) < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0)
		return -1;
	for (off_t off = 0; r == 0 && (k = pread(in, buf, sizeof(buf), off)) != 0;
	     off += k)
		r = k < 0 ? -1 : write_full(out, buf, (size_t)k);
	struct timespec ts[2] = {sb.st_mtim, sb.st_mtim};
	if (r == 0 && (futimens(out, ts) < 0 || fsync(out) < 0))
		r = -1;
	close(out);
	return r;
}

/* Message idx into dest_dir/tmp/: *tmp_r, and *name_r its cur/ name. */
static int
copy_one(struct imap_folder *f, size_t idx, const char *dest_dir,
	 char *dkw[IMAP_KEYWORDS_MAX], char **tmp_r, char **name_r)
{
	struct imap_msg *m = &f->msgs[idx];
	char base[256], *src;
	uint64_t fsize;
	uint32_t kw = 0;
	int fd, r;

	for (int k = 0; k < IMAP_KEYWORDS_MAX; k++) {
		if (!(m->keywords & (1u << k)) || f->priv->kw[k] == NULL)
			continue;
		int d = keyword_index(dest_dir, dkw, f->priv->kw[k], true);
		if (d < 0)
			return -1;
		kw |= 1u << d;
	}
	if ((fd = imap_folder_open_msg(f, idx, &fsize)) < 0)
		return -1;
	store_new_base(f->priv->st, base, sizeof(base), fsize, m->size);
	*tmp_r = xasprintf("%s/tmp/%s", dest_dir, base);
	src = xasprintf("%s/%s", f->priv->dir, m->name);
	r = link(src, *tmp_r);
	if (r < 0 && errno != EEXIST)
		r = copy_file(fd, *tmp_r);
	free(src);
	close(fd);
	if (r < 0) {
		xfree(tmp_r);
		return -1;
	}
	*name_r = name_with_flags(base, strlen(base), m->flags, kw);
	return 0;
}

int
imap_folder_copy(struct imap_folder *f, const size_t *idx, size_t n,
		 const char *dest, uint32_t *uidvalidity_r, uint32_t *uids_r)
{
	char *dir = folder_dir_existing(f->priv->st, dest);
	char *dkw[IMAP_KEYWORDS_MAX], **tmp, **names;
	size_t i, done = 0;
	int r = 0, saved;

	if (dir == NULL)
		return -1;
	keywords_read(dir, dkw);
	tmp = xcalloc(n + 1, sizeof(*tmp));
	names = xcalloc(n + 1, sizeof(*names));
	for (i = 0; i < n && r == 0; i++, done++)
		if (idx[i] >= f->n) {
			errno = EINVAL;
			r = -1;
		} else
			r = copy_one(f, idx[i], dir, dkw, &tmp[i], &names[i]);
	if (r == 0 && n > 0) {
		char *t = xasprintf("%s/tmp", dir);
		r = fsync_dir(t);
		free(t);
	}
	if (r == 0 && n > 0)
		r = uidlist_place(dir, tmp, names, n, uidvalidity_r, uids_r);
	else if (r == 0) {
		struct imap_status s;
		if ((r = imap_store_status(f->priv->st, dest, &s)) == 0)
			*uidvalidity_r = s.uidvalidity;
	}
	saved = errno;
	for (i = 0; i < done; i++) {
		if (r < 0 && tmp[i] != NULL)
			(void)unlink(tmp[i]);
		free(tmp[i]);
		free(names[i]);
	}
	free(tmp);
	free(names);
	keywords_free(dkw);
	free(dir);
	errno = saved;
	return r;
}
