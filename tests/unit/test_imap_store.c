/*
 * The IMAP store over temp Maildirs: UID assignment and a Dovecot-written
 * dovecot-uidlist, keywords, flags by rename (seen by a second view and
 * found again by base name), expunge, concurrent removal (gone, then
 * EXPUNGE), append, copy, rename (INBOX too), delete, subscriptions, a
 * stale dotlock, LIST matching, and inotify notification.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "lib/util.h"
#include "mail/imap_seq.h"
#include "store/imap_store.h"
#include "store/deliver.h"
#include "store/maildir_watch.h"

struct fx {
	char dir[256];
	char md[300];
	struct imap_store *st;
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *t = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/godwit-imapst-XXXXXX",
		 t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->md, sizeof(f->md), "%s/Maildir", f->dir);
	if (imap_store_open(f->md, &f->st) < 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	imap_store_close(f->st);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
put(const char *md, const char *rel, const char *data)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", md, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		fail_msg("create %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static char *
slurp(const char *md, const char *rel)
{
	static char buf[8192];
	char path[1024];
	ssize_t k;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", md, rel);
	if ((fd = open(path, O_RDONLY)) < 0)
		return NULL;
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[k > 0 ? k : 0] = '\0';
	return buf;
}

static bool
exists(const char *md, const char *rel)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", md, rel);
	return access(path, F_OK) == 0;
}

/* ---- tests ---------------------------------------------------------- */

static void
test_open_list(void **state)
{
	struct fx *f = *state;
	struct imap_folder_info *l;
	size_t n;

	struct imap_folder *fo;
	struct imap_changes ch;

	/* an empty INBOX: selected, synced, expunged */
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &fo), 0);
	assert_int_equal(fo->n, 0);
	assert_int_equal(fo->uidnext, 1);
	assert_true(fo->uidvalidity > 0);
	assert_int_equal(imap_folder_sync(fo, true, &ch), 0);
	imap_changes_free(&ch);
	assert_int_equal(imap_folder_expunge(fo, NULL, &ch), 0);
	imap_changes_free(&ch);
	imap_folder_close(fo);
	assert_int_equal(imap_folder_open(f->st, "Nope", false, &fo), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(exists(f->md, ".Sent/cur"));
	assert_true(exists(f->md, ".Junk/maildirfolder"));
	assert_string_equal(slurp(f->md, "subscriptions"),
			    "V\t2\n\nSent\nDrafts\nJunk\nTrash\n");
	assert_int_equal(imap_store_create(f->st, "A/B\xc3\xbc"), 0);
	assert_true(exists(f->md, ".A.B&APw-/cur"));
	assert_int_equal(imap_store_list(f->st, &l, &n), 0);
	assert_int_equal(n, 7);
	assert_string_equal(l[0].name, "INBOX");
	assert_string_equal(l[1].name, "A");
	assert_true(l[1].attrs & IMAP_FA_NOSELECT);
	assert_true(l[1].attrs & IMAP_FA_HASCHILDREN);
	assert_string_equal(l[2].name, "A/B\xc3\xbc");
	assert_true(l[2].attrs & IMAP_FA_HASNOCHILDREN);
	assert_string_equal(l[4].name, "Junk");
	assert_int_equal(l[4].special, IMAP_SPECIAL_JUNK);
	assert_true(l[4].attrs & IMAP_FA_SUBSCRIBED);
	imap_store_list_free(l, n);
	/* bad names */
	assert_int_equal(imap_store_create(f->st, "a.b"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(imap_store_create(f->st, "a//b"), -1);
	assert_int_equal(imap_store_create(f->st, "\xff"), -1);
	assert_int_equal(imap_store_create(f->st, "inbox"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(imap_store_create(f->st, "Sent"), -1);
	assert_int_equal(errno, EEXIST);
}

static void
test_uid_assignment(void **state)
{
	struct fx *f = *state;
	struct imap_folder *fo, *ro;
	struct imap_changes ch;
	struct imap_status s;

	put(f->md, "new/1000.M1P1.h,S=5,W=7", "a\nb\n");
	put(f->md, "cur/1001.M1P1.h:2,S", "x\n");
	put(f->md, "new/0999.M1P1.h", "y\r\nz\n");
	assert_int_equal(imap_store_status(f->st, "INBOX", &s), 0);
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.recent, 2);
	assert_int_equal(s.unseen, 2);
	assert_int_equal(s.uidnext, 4);
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &fo), 0);
	assert_int_equal(fo->n, 3);
	assert_int_equal(fo->uidvalidity, s.uidvalidity);
	assert_int_equal(fo->uidnext, 4);
	/* base-name order */
	assert_int_equal(fo->msgs[0].uid, 1);
	assert_string_equal(fo->msgs[0].name, "cur/0999.M1P1.h:2,");
	assert_true(fo->msgs[0].recent);
	assert_int_equal(fo->msgs[0].size, 6);	/* a CRLF counted once */
	assert_int_equal(fo->msgs[1].size, 7);	/* from W= */
	assert_false(fo->msgs[2].recent);
	assert_int_equal(fo->msgs[2].flags, IMAP_F_SEEN);
	char *ul = slurp(f->md, "dovecot-uidlist");
	assert_non_null(ul);
	assert_int_equal(strncmp(ul, "3 V", 3), 0);
	assert_non_null(strstr(ul, " N4 G"));
	assert_non_null(strstr(ul, "\n1 :0999.M1P1.h\n2 :1000.M1P1.h,S=5,W=7\n"
				   "3 :1001.M1P1.h\n"));
	/* a second view sees the same UIDs; new mail gets the next */
	assert_int_equal(imap_folder_open(f->st, "INBOX", true, &ro), 0);
	assert_int_equal(ro->n, 3);
	assert_false(ro->msgs[0].recent);
	put(f->md, "new/1002.M1P1.h", "new\n");
	assert_int_equal(imap_folder_sync(ro, true, &ch), 0);
	assert_true(ch.new_messages);
	assert_int_equal(ch.exists, 4);
	assert_int_equal(ro->msgs[3].uid, 4);
	assert_string_equal(ro->msgs[3].name, "new/1002.M1P1.h");	/* EXAMINE */
	imap_changes_free(&ch);
	assert_int_equal(imap_folder_sync(fo, true, &ch), 0);
	assert_int_equal(fo->msgs[3].uid, 4);
	assert_true(fo->msgs[3].recent);
	assert_int_equal(fo->uidnext, 5);
	imap_changes_free(&ch);
	imap_folder_close(fo);
	imap_folder_close(ro);
}

/* APPEND into a folder never looked at: the files already there get
 * their UIDs first (arrival order), the appended message the next. */
static void
test_append_after_unseen_mail(void **state)
{
	struct fx *f = *state;
	struct imap_folder *fo;
	uint32_t uv, uid;

	put(f->md, "new/1000.M1P1.h", "old\n");
	put(f->md, "cur/1001.M1P1.h:2,S", "older\n");
	assert_int_equal(imap_store_append(f->st, "INBOX", -1, "n\r\n", 3, 0,
					   NULL, 0, 0, &uv, &uid),
			 0);
	assert_int_equal(uid, 3);
	assert_int_equal(imap_folder_open(f->st, "INBOX", true, &fo), 0);
	assert_int_equal(fo->n, 3);
	assert_int_equal(fo->uidvalidity, uv);
	assert_string_equal(fo->msgs[0].name, "new/1000.M1P1.h");
	assert_int_equal(fo->msgs[0].uid, 1);
	assert_int_equal(fo->msgs[1].uid, 2);
	assert_int_equal(fo->msgs[2].uid, 3);
	assert_int_equal(fo->uidnext, 4);
	imap_folder_close(fo);
}

static void
test_dovecot_uidlist(void **state)
{
	struct fx *f = *state;
	struct imap_folder *fo;

	put(f->md, "dovecot-uidlist",
	    "3 V1700000000 N20 G00112233445566778899aabbccddeeff\n"
	    "5 :1.M1P1.dovecot,S=3,W=4\n"
	    "9 W10 :2.M2P2.dovecot,S=8\n"
	    "12 :3.gone\n");
	put(f->md, "dovecot-keywords", "0 $Forwarded\n1 work\n");
	put(f->md, "cur/1.M1P1.dovecot,S=3,W=4:2,FSb", "ab\n");
	put(f->md, "cur/2.M2P2.dovecot,S=8:2,T", "abcdefg\n");
	put(f->md, "new/4.M4P4.dovecot", "new\n");
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &fo), 0);
	assert_int_equal(fo->uidvalidity, 1700000000u);
	assert_int_equal(fo->n, 3);
	assert_int_equal(fo->msgs[0].uid, 5);
	assert_int_equal(fo->msgs[0].flags, IMAP_F_FLAGGED | IMAP_F_SEEN);
	assert_int_equal(fo->msgs[0].keywords, 2);
	assert_int_equal(fo->msgs[1].uid, 9);
	assert_int_equal(fo->msgs[1].flags, IMAP_F_DELETED);
	assert_int_equal(fo->msgs[2].uid, 20);
	assert_int_equal(fo->uidnext, 21);
	assert_int_equal(fo->nkeywords, 2);
	assert_string_equal(fo->keywords[1], "work");
	assert_int_equal(imap_folder_keyword(fo, "WORK", false), 1);
	assert_int_equal(imap_folder_keyword(fo, "other", false), -1);
	assert_int_equal(errno, ENOENT);
	/* the extension and the GUID are kept; the gone record dropped */
	char *ul = slurp(f->md, "dovecot-uidlist");
	assert_string_equal(ul,
	    "3 V1700000000 N21 G00112233445566778899aabbccddeeff\n"
	    "5 :1.M1P1.dovecot,S=3,W=4\n"
	    "9 W10 :2.M2P2.dovecot,S=8\n"
	    "20 :4.M4P4.dovecot\n");
	imap_folder_close(fo);
}

static void
test_flags_and_keywords(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a, *b;
	struct imap_changes ch;
	uint64_t sz;
	int fd, k;

	put(f->md, "new/1.M1P1.h", "hello\n");
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &b), 0);
	k = imap_folder_keyword(a, "$Label1", true);
	assert_int_equal(k, 0);
	assert_int_equal(imap_folder_keyword(a, "bad kw", true), -1);
	assert_int_equal(imap_folder_set_flags(a, 0, IMAP_F_SEEN |
					       IMAP_F_ANSWERED |
					       IMAP_F_FORWARDED, 1u << k), 0);
	assert_string_equal(a->msgs[0].name, "cur/1.M1P1.h:2,PRSa");
	assert_true(exists(f->md, "cur/1.M1P1.h:2,PRSa"));
	assert_string_equal(slurp(f->md, "dovecot-keywords"), "0 $Label1\n");
	/* b still has the old name: found again by base name */
	fd = imap_folder_open_msg(b, 0, &sz);
	assert_true(fd >= 0);
	assert_int_equal(sz, 6);
	close(fd);
	assert_int_equal(imap_folder_sync(b, false, &ch), 0);
	assert_int_equal(ch.nflagged, 1);	/* flags new to b's view */
	assert_int_equal(b->msgs[0].flags,
			 IMAP_F_SEEN | IMAP_F_ANSWERED | IMAP_F_FORWARDED);
	imap_changes_free(&ch);
	assert_int_equal(imap_folder_set_flags(a, 0, IMAP_F_FLAGGED, 0), 0);
	assert_int_equal(imap_folder_sync(b, false, &ch), 0);
	assert_int_equal(ch.nflagged, 1);
	assert_int_equal(ch.flagged[0], 0);
	assert_int_equal(b->msgs[0].flags, IMAP_F_FLAGGED);
	assert_false(ch.keywords_changed);
	imap_changes_free(&ch);
	/* b renames from its stale name */
	assert_int_equal(imap_folder_set_flags(a, 0, IMAP_F_DRAFT, 0), 0);
	assert_int_equal(imap_folder_set_flags(b, 0, IMAP_F_SEEN, 0), 0);
	assert_true(exists(f->md, "cur/1.M1P1.h:2,S"));
	/* 26 keywords at most */
	for (int i = 1; i < IMAP_KEYWORDS_MAX; i++) {
		char kw[16];
		snprintf(kw, sizeof(kw), "k%d", i);
		assert_int_equal(imap_folder_keyword(a, kw, true), i);
	}
	assert_int_equal(imap_folder_keyword(a, "one-too-many", true), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(imap_folder_sync(b, false, &ch), 0);
	assert_true(ch.keywords_changed);
	assert_int_equal(b->nkeywords, 26);
	imap_changes_free(&ch);
	imap_folder_close(a);
	imap_folder_close(b);
}

static void
test_expunge_and_concurrent(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a;
	struct imap_changes ch;
	struct imap_seq_range r = {3, 3};
	struct imap_seqset set = {&r, 1};

	for (int i = 1; i <= 5; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "cur/%d.M.h:2,%s", i,
			 i % 2 ? "T" : "S");
		put(f->md, rel, "m\n");
	}
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	assert_int_equal(a->n, 5);
	/* UID EXPUNGE 3 */
	assert_int_equal(imap_folder_expunge(a, &set, &ch), 0);
	assert_int_equal(ch.nexpunged, 1);
	assert_int_equal(ch.expunged[0], 3);
	assert_false(exists(f->md, "cur/3.M.h:2,T"));
	imap_changes_free(&ch);
	/* POP3 deletes message 2 (uid 2) meanwhile */
	char p[1024];
	snprintf(p, sizeof(p), "%s/cur/2.M.h:2,S", f->md);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(imap_folder_sync(a, false, &ch), 0);
	assert_int_equal(ch.nexpunged, 0);
	assert_int_equal(a->n, 4);
	assert_true(a->msgs[1].gone);
	assert_int_equal(imap_folder_set_flags(a, 1, IMAP_F_SEEN, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(imap_folder_open_msg(a, 1, NULL), -1);
	imap_changes_free(&ch);
	/* EXPUNGE: 1 and 5 (\Deleted) and the gone one */
	assert_int_equal(imap_folder_sync(a, true, &ch), 0);
	assert_int_equal(ch.nexpunged, 1);
	assert_int_equal(ch.expunged[0], 2);
	imap_changes_free(&ch);
	assert_int_equal(imap_folder_expunge(a, NULL, &ch), 0);
	assert_int_equal(ch.nexpunged, 2);
	assert_int_equal(ch.expunged[0], 1);	/* uid 1: seq 1 */
	assert_int_equal(ch.expunged[1], 2);	/* uid 5: seq 3, then 2 */
	assert_int_equal(a->n, 1);
	assert_int_equal(a->msgs[0].uid, 4);
	imap_changes_free(&ch);
	imap_folder_close(a);
	assert_int_equal(imap_folder_open(f->st, "INBOX", true, &a), 0);
	assert_int_equal(imap_folder_expunge(a, NULL, &ch), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(imap_folder_set_flags(a, 0, IMAP_F_SEEN, 0), -1);
	assert_int_equal(errno, EPERM);
	imap_changes_free(&ch);
	imap_folder_close(a);
}

static void
test_expunge_rechecks(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a, *b;
	struct imap_changes ch;

	put(f->md, "cur/1.M.h:2,T", "m\n");
	put(f->md, "cur/2.M.h:2,T", "m\n");
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &b), 0);
	/* b takes \Deleted off message 1; a has not synced */
	assert_int_equal(imap_folder_set_flags(b, 0, IMAP_F_SEEN, 0), 0);
	assert_int_equal(imap_folder_expunge(a, NULL, &ch), 0);
	assert_int_equal(ch.nexpunged, 1);
	assert_int_equal(ch.expunged[0], 2);
	assert_true(exists(f->md, "cur/1.M.h:2,S"));
	assert_int_equal(a->n, 1);
	assert_int_equal(a->msgs[0].flags, IMAP_F_SEEN);
	imap_changes_free(&ch);
	/* b learns of the expunge at its next sync */
	assert_int_equal(imap_folder_sync(b, true, &ch), 0);
	assert_int_equal(ch.nexpunged, 1);
	assert_int_equal(ch.expunged[0], 2);
	assert_int_equal(b->n, 1);
	imap_changes_free(&ch);
	imap_folder_close(a);
	imap_folder_close(b);
}

static void
test_append_copy(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a, *t;
	static const char msg[] = "Subject: x\r\n\r\nbody\r\nlone\rcr\r\n";
	const char *kws[] = {"$Important", "work"};
	uint32_t uv, uid, uids[2];
	size_t idx[2] = {0, 1};

	assert_int_equal(imap_store_append(f->st, "INBOX", -1, msg,
					   sizeof(msg) - 1, IMAP_F_SEEN, kws, 2,
					   1600000000, &uv, &uid), 0);
	assert_int_equal(uid, 1);
	assert_int_equal(imap_store_append(f->st, "Nope", -1, msg, 3, 0, NULL,
					   0, 0, &uv, &uid), -1);
	assert_int_equal(errno, ENOENT);
	/* from a file */
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/lit", f->dir);
	put(f->dir, "lit", "From: a\r\n\r\nb\r\n");
	int fd = open(tmpl, O_RDONLY);
	assert_int_equal(imap_store_append(f->st, "INBOX", fd, NULL, 14, 0,
					   NULL, 0, 0, &uv, &uid), 0);
	close(fd);
	assert_int_equal(uid, 2);
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->uidvalidity, uv);
	assert_int_equal(a->msgs[0].flags, IMAP_F_SEEN);
	assert_int_equal(a->msgs[0].keywords, 3);
	assert_int_equal(a->msgs[0].internaldate, IMAP_DATE_UNKNOWN);
	assert_int_equal(imap_folder_internaldate(a, 0), 1600000000);
	assert_int_equal(a->msgs[0].internaldate, 1600000000);
	assert_int_equal(a->msgs[0].size, sizeof(msg) - 1);
	uint64_t fsz;
	fd = imap_folder_open_msg(a, 0, &fsz);
	assert_true(fd >= 0);
	char buf[128] = {0};
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)fsz);
	assert_string_equal(buf, "Subject: x\n\nbody\nlone\rcr\n");
	close(fd);
	assert_int_equal(a->msgs[1].size, 14);
	/* COPY both into Trash: flags and keywords kept */
	assert_int_equal(imap_folder_copy(a, idx, 2, "Trash", &uv, uids), 0);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 2);
	assert_int_equal(imap_folder_open(f->st, "Trash", false, &t), 0);
	assert_int_equal(t->uidvalidity, uv);
	assert_int_equal(t->n, 2);
	assert_int_equal(t->msgs[0].flags, IMAP_F_SEEN);
	assert_int_equal(t->nkeywords, 2);
	assert_int_equal(t->msgs[0].keywords, 3);
	assert_string_equal(t->keywords[0], "$Important");
	assert_int_equal(imap_folder_internaldate(t, 0), 1600000000);
	assert_int_equal(imap_folder_copy(a, idx, 2, "Nope", &uv, uids), -1);
	assert_int_equal(errno, ENOENT);
	imap_folder_close(t);
	imap_folder_close(a);
}

static void
test_rename_delete(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a;
	struct imap_status s;
	uint32_t uv0;

	put(f->md, "new/1.M.h", "a\n");
	put(f->md, "new/2.M.h", "b\n");
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	uv0 = a->uidvalidity;
	imap_folder_close(a);
	assert_int_equal(imap_store_rename(f->st, "INBOX", "Old"), 0);
	assert_int_equal(imap_folder_open(f->st, "Old", false, &a), 0);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->uidvalidity, uv0);	/* UIDs kept */
	assert_int_equal(a->msgs[1].uid, 2);
	imap_folder_close(a);
	assert_int_equal(imap_store_status(f->st, "INBOX", &s), 0);
	assert_int_equal(s.messages, 0);
	/* a folder with a child */
	assert_int_equal(imap_store_create(f->st, "P"), 0);
	assert_int_equal(imap_store_create(f->st, "P/C"), 0);
	assert_int_equal(imap_store_rename(f->st, "P", "Q"), 0);
	assert_true(exists(f->md, ".Q.C/cur"));
	assert_false(exists(f->md, ".P"));
	assert_int_equal(imap_store_rename(f->st, "Q", "Q/C/D"), -1);
	assert_int_equal(errno, EINVAL);	/* under itself */
	assert_int_equal(imap_store_rename(f->st, "Q", "Old"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(imap_store_rename(f->st, "Nope", "X"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(imap_store_delete(f->st, "Old"), 0);
	assert_false(exists(f->md, ".Old"));
	assert_int_equal(imap_store_delete(f->st, "Old"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(imap_store_delete(f->st, "INBOX"), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(imap_store_delete(f->st, "Trash"), 0);
	assert_int_equal(imap_store_status(f->st, "Trash", &s), -1);
	assert_int_equal(errno, ENOENT);
}

/*
 * Special-use folders made before the first IMAP login (a .Sent by
 * submission's save_sent, a .Junk by quarantine) are subscribed when the
 * subscriptions file does not exist yet; once it does, a folder the user
 * unsubscribed stays unsubscribed.
 */
static void
test_autosubscribe(void **state)
{
	struct fx *f = *state;
	struct imap_store *st;
	char md[400];

	snprintf(md, sizeof(md), "%s/Other", f->dir);
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(maildir_folder_create(md, ".Sent"), 0);
	assert_int_equal(maildir_folder_create(md, ".Junk"), 0);
	assert_false(exists(md, "subscriptions"));
	assert_int_equal(imap_store_open(md, &st), 0);
	assert_string_equal(slurp(md, "subscriptions"),
			    "V\t2\n\nSent\nDrafts\nJunk\nTrash\n");
	assert_int_equal(imap_store_subscribe(st, "Sent", false), 0);
	imap_store_close(st);
	assert_int_equal(imap_store_open(md, &st), 0);
	assert_string_equal(slurp(md, "subscriptions"),
			    "V\t2\n\nDrafts\nJunk\nTrash\n");
	imap_store_close(st);
}

static void
test_subscriptions(void **state)
{
	struct fx *f = *state;
	struct imap_folder_info *l;
	size_t n;

	put(f->md, "subscriptions", "INBOX\nOld.Child\n");	/* old form */
	assert_int_equal(imap_store_subscribe(f->st, "Gone", true), 0);
	assert_int_equal(imap_store_subscribe(f->st, "INBOX", false), 0);
	assert_string_equal(slurp(f->md, "subscriptions"),
			    "V\t2\n\nOld\tChild\nGone\n");
	assert_int_equal(imap_store_list(f->st, &l, &n), 0);
	bool seen = false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, "Gone") == 0) {
			seen = true;
			assert_int_equal(l[i].attrs & (IMAP_FA_SUBSCRIBED |
						       IMAP_FA_NONEXISTENT),
					 IMAP_FA_SUBSCRIBED |
						 IMAP_FA_NONEXISTENT);
		} else if (strcmp(l[i].name, "INBOX") == 0)
			assert_false(l[i].attrs & IMAP_FA_SUBSCRIBED);
	assert_true(seen);
	imap_store_list_free(l, n);
}

static void
test_stale_lock(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a;
	struct timespec old[2] = {{time(NULL) - 600, 0}, {time(NULL) - 600, 0}};
	char p[1024];

	put(f->md, "dovecot-uidlist.lock", "");
	snprintf(p, sizeof(p), "%s/dovecot-uidlist.lock", f->md);
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	put(f->md, "new/1.M.h", "a\n");
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	assert_int_equal(a->n, 1);
	assert_false(exists(f->md, "dovecot-uidlist.lock"));
	imap_folder_close(a);
}

/* A live lock (another process's, fresh) is waited for briefly: the sync
 * and STATUS go on with the UIDs known, an APPEND fails with EAGAIN, and
 * the new mail appears at the first sync after the lock is gone. With no
 * uidlist yet there is no UIDVALIDITY to show: EAGAIN. */
static void
test_busy_lock(void **state)
{
	struct fx *f = *state;
	struct imap_folder *a, *a2;
	struct imap_status s;
	struct imap_changes ch;
	uint32_t uv, uid;
	uint64_t t0;
	char p[1024];

	put(f->md, "new/1.M.h", "a\n");
	assert_int_equal(imap_folder_open(f->st, "INBOX", false, &a), 0);
	assert_int_equal(a->n, 1);
	put(f->md, "dovecot-uidlist.lock", "");
	put(f->md, "new/2.M.h", "b\n");
	t0 = mono_ms();
	assert_int_equal(imap_folder_sync(a, true, &ch), 0);
	assert_false(ch.new_messages);
	assert_true(ch.incomplete);	/* imapd syncs again next time */
	imap_changes_free(&ch);
	assert_int_equal(a->n, 1);
	assert_int_equal(imap_store_status(f->st, "INBOX", &s), 0);
	assert_int_equal(s.messages, 1);
	assert_int_equal(imap_store_append(f->st, "INBOX", -1, "c\r\n", 3, 0,
					   NULL, 0, 0, &uv, &uid), -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(mono_ms() - t0 < 3000);	/* three waits, not 15 s */
	put(f->md, ".Sent/dovecot-uidlist.lock", "");
	assert_int_equal(imap_folder_open(f->st, "Sent", false, &a2), -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(exists(f->md, "dovecot-uidlist.lock"));	/* not broken */
	snprintf(p, sizeof(p), "%s/dovecot-uidlist.lock", f->md);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(imap_folder_sync(a, true, &ch), 0);
	assert_true(ch.new_messages);
	assert_false(ch.incomplete);
	imap_changes_free(&ch);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->msgs[1].uid, 2);
	imap_folder_close(a);
}

/* Four processes deliver and sync at once: every file gets one UID, the
 * same in every view, none given twice. */
static void
test_concurrent_uids(void **state)
{
	struct fx *f = *state;
	enum { PROCS = 4, ROUNDS = 15 };
	struct imap_folder *a;
	pid_t pids[PROCS];

	for (int p = 0; p < PROCS; p++) {
		if ((pids[p] = fork()) == 0) {
			struct imap_store *st;
			int bad = imap_store_open(f->md, &st) < 0;
			for (int r = 0; r < ROUNDS && !bad; r++) {
				char rel[64];
				struct imap_folder *v;
				snprintf(rel, sizeof(rel), "new/%d.P%d.h", r, p);
				put(f->md, rel, "x\n");
				if (imap_folder_open(st, "INBOX", r % 2, &v) < 0)
					bad = 1;
				else {
					for (size_t i = 1; i < v->n; i++)
						bad |= v->msgs[i].uid <=
						       v->msgs[i - 1].uid;
					imap_folder_close(v);
				}
			}
			imap_store_close(st);
			_exit(bad);
		}
		assert_true(pids[p] > 0);
	}
	for (int p = 0; p < PROCS; p++) {
		int status;
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(imap_folder_open(f->st, "INBOX", true, &a), 0);
	assert_int_equal(a->n, PROCS * ROUNDS);
	assert_int_equal(a->uidnext, a->msgs[a->n - 1].uid + 1);
	assert_true(a->uidnext <= PROCS * ROUNDS + 1);	/* none wasted */
	assert_false(exists(f->md, "dovecot-uidlist.lock"));
	imap_folder_close(a);
}

static void
test_list_match(void **state)
{
	(void)state;
	assert_true(imap_list_match("*", "A/B"));
	assert_true(imap_list_match("%", "INBOX"));
	assert_false(imap_list_match("%", "A/B"));
	assert_true(imap_list_match("A/%", "A/B"));
	assert_false(imap_list_match("A/%", "A/B/C"));
	assert_true(imap_list_match("A/*", "A/B/C"));
	assert_true(imap_list_match("*B*", "xAByy"));
	assert_false(imap_list_match("B", "b"));
	assert_true(imap_list_match("", ""));
	assert_false(imap_list_match("", "A"));
}

static void
cb_count(void *arg)
{
	(*(int *)arg)++;
}

static void
test_watch(void **state)
{
	struct fx *f = *state;
	struct maildir_watch *w = maildir_watch_new();
	struct maildir_watch_entry *e1, *e2;
	int n1 = 0, n2 = 0;
	struct pollfd pfd;

	assert_non_null(w);
	e1 = maildir_watch_add(w, f->md, cb_count, &n1);
	e2 = maildir_watch_add(w, f->md, cb_count, &n2);
	assert_non_null(e1);
	assert_non_null(e2);
	assert_null(maildir_watch_add(w, "/nonexistent", cb_count, &n1));
	put(f->md, "new/1.M.h", "a\n");
	put(f->md, "new/2.M.h", "b\n");
	pfd.fd = maildir_watch_fd(w);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	maildir_watch_dispatch(w);
	assert_int_equal(n1, 1);	/* once per dispatch */
	assert_int_equal(n2, 1);
	maildir_watch_remove(w, e1);
	char a[1024], b[1024];
	snprintf(a, sizeof(a), "%s/new/1.M.h", f->md);
	snprintf(b, sizeof(b), "%s/cur/1.M.h:2,S", f->md);
	assert_int_equal(rename(a, b), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	maildir_watch_dispatch(w);
	assert_int_equal(n1, 1);
	assert_int_equal(n2, 2);
	maildir_watch_remove(w, e2);
	maildir_watch_free(w);
}

struct reent {
	struct maildir_watch *w;
	struct maildir_watch_entry *other;
	int calls;
};

/* removes the other entry, dispatches again, frees the watch */
static void
cb_reent(void *arg)
{
	struct reent *r = arg;

	r->calls++;
	if (r->other != NULL)
		maildir_watch_remove(r->w, r->other);
	r->other = NULL;
	maildir_watch_dispatch(r->w);
	maildir_watch_free(r->w);
}

static void
test_watch_reentry(void **state)
{
	struct fx *f = *state;
	struct reent a = {0}, b = {0};
	struct pollfd pfd;

	a.w = b.w = maildir_watch_new();
	assert_non_null(a.w);
	assert_non_null(maildir_watch_add(a.w, f->md, cb_reent, &a));
	b.other = NULL;
	a.other = maildir_watch_add(a.w, f->md, cb_reent, &b);
	assert_non_null(a.other);
	put(f->md, "new/1.M.h", "a\n");
	pfd.fd = maildir_watch_fd(a.w);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	/* the first callback removes the second and frees the watch: the
	 * second is not called, the watch is gone after the dispatch (ASan
	 * sees any use after that) */
	maildir_watch_dispatch(a.w);
	assert_int_equal(a.calls + b.calls, 1);
}

int
main(void)
{
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_open_list),
		T(test_uid_assignment),
		T(test_append_after_unseen_mail),
		T(test_dovecot_uidlist),
		T(test_flags_and_keywords),
		T(test_expunge_and_concurrent),
		T(test_expunge_rechecks),
		T(test_append_copy),
		T(test_rename_delete),
		T(test_subscriptions),
		T(test_autosubscribe),
		T(test_stale_lock),
		T(test_busy_lock),
		T(test_concurrent_uids),
		cmocka_unit_test(test_list_match),
		T(test_watch),
		T(test_watch_reentry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
