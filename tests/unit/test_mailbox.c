/*
 * The POP3 view of a Maildir: UIDLs and sizes from names, the lock (also
 * across processes and crashes), the snapshot, opening and deleting
 * messages that moved, and retention. Each test works in its own mkdtemp
 * directory under $TMPDIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "store/mailbox.h"

#define X10 "xxxxxxxxxx"
#define X70 X10 X10 X10 X10 X10 X10 X10
#define DAY (24 * 60 * 60)

/* ---- helpers -------------------------------------------------------- */

struct fx {
	char dir[256];		/* the test's own directory */
	char md[300];		/* <dir>/Maildir */
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
	snprintf(f->dir, sizeof(f->dir), "%s/godwit-mailbox-XXXXXX",
		 t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->md, sizeof(f->md), "%s/Maildir", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Writes len octets to <dir>/<rel>. */
static void
put(const char *dir, const char *rel, const char *data, size_t len)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		fail_msg("create %s: %s", path, strerror(errno));
	if (len > 0 && write(fd, data, len) != (ssize_t)len)
		fail_msg("write %s", path);
	close(fd);
}

static void
puts_file(const char *dir, const char *rel, const char *text)
{
	put(dir, rel, text, strlen(text));
}

static void
mk(const char *dir, const char *rel)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void
maildir(const char *md)
{
	mkdir(md, 0750);
	mk(md, "tmp");
	mk(md, "new");
	mk(md, "cur");
}

static bool
exists(const char *dir, const char *rel)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static void
set_mtime(const char *dir, const char *rel, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("utimensat %s: %s", path, strerror(errno));
}

static void
move(const char *dir, const char *from, const char *to)
{
	char a[1024], b[1024];

	snprintf(a, sizeof(a), "%s/%s", dir, from);
	snprintf(b, sizeof(b), "%s/%s", dir, to);
	if (rename(a, b) < 0)
		fail_msg("rename %s %s: %s", a, b, strerror(errno));
}

static void
lock_scan(struct mailbox *mb, const char *md, size_t max)
{
	assert_int_equal(mailbox_lock(mb, md, NULL), 0);
	assert_int_equal(mailbox_scan(mb, max), 0);
}

/* ---- names ---------------------------------------------------------- */

static const struct {
	const char *name;
	const char *uidl;
} uidl_cases[] = {
	/* godwit's own names, in new/ and after a move to cur/ */
	{"1700000000.M123456P42Q0ABCDEF_1.mx.example,S=10,W=12",
	 "1700000000.M123456P42Q0ABCDEF_1.mx.example"},
	{"new/1700000000.M123456P42Q0ABCDEF_1.mx.example,S=10,W=12",
	 "1700000000.M123456P42Q0ABCDEF_1.mx.example"},
	{"cur/1700000000.M123456P42Q0ABCDEF_1.mx.example,S=10,W=12:2,S",
	 "1700000000.M123456P42Q0ABCDEF_1.mx.example"},
	/* Dovecot-style */
	{"cur/1700000001.M1P2.host,S=100,W=103:2,RS", "1700000001.M1P2.host"},
	{"1700000001.M1P2.host:2,", "1700000001.M1P2.host"},
	{"1700000001.M1P2.host", "1700000001.M1P2.host"},
	{"cur/abc:2,FS", "abc"},
	{"a", "a"},
	{"!~", "!~"},
	/* 70 octets is the limit; 71 is hashed */
	{X70, X70},
	{"new/" X70 ",S=1", X70},
	{X70 "x", "X87a1e4c1c92b7b7a7c46433d780de6cc"},
	{"cur/" X70 "x:2,S", "X87a1e4c1c92b7b7a7c46433d780de6cc"},
	{"1700000000.M1P2Q3_4." X10 X10 X10 X10 X10 X10 ",S=1,W=2",
	 "Xcccbc5871ceffe3e08a17fd9ce534c90"},
	/* octets outside 0x21..0x7e */
	{"a b", "Xc8687a08aa5d6ed2044328fa6a697ab8"},
	{"new/a b,S=1", "Xc8687a08aa5d6ed2044328fa6a697ab8"},
	{"caf\xc3\xa9", "X850f7dc43910ff890f8879c0ed26fe69"},
	{"tab\there:2,S", "X5b8765931ded06ac39c11c47f83f7457"},
	{"del\x7f", "X57f6be097c6ef8eec80e34f415e74345"},
	/* no base name at all: hashed too (a UIDL has 1..70 characters) */
	{"", "Xe3b0c44298fc1c149afbf4c8996fb924"},
	{"cur/:2,S", "Xe3b0c44298fc1c149afbf4c8996fb924"},
	{",S=1", "Xe3b0c44298fc1c149afbf4c8996fb924"},
};

static void
test_uidl(void **state)
{
	char out[MAILBOX_UIDL_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(uidl_cases) / sizeof(uidl_cases[0]);
	     i++) {
		size_t len;

		memset(out, '#', sizeof(out));
		mailbox_uidl(uidl_cases[i].name, out);
		if (strcmp(out, uidl_cases[i].uidl) != 0)
			fail_msg("row %zu: got %s, want %s", i, out,
				 uidl_cases[i].uidl);
		/* RFC 1939: 1..70 characters 0x21..0x7e */
		len = strlen(out);
		assert_true(len >= 1 && len <= MAILBOX_UIDL_MAX);
		for (size_t j = 0; j < len; j++)
			assert_true(out[j] >= 0x21 && out[j] <= 0x7e);
	}
}

static const struct {
	const char *name;
	int ok;
	uint64_t size;
} size_cases[] = {
	{"b,S=10,W=12", 1, 12},
	{"new/b,S=10,W=12", 1, 12},
	{"cur/b,S=10,W=12:2,S", 1, 12},
	{"b,S=10,W=12:", 1, 12},
	{"b,W=12,S=10", 1, 12},		/* not last */
	{"b,W=0", 1, 0},
	{"b,W=007", 1, 7},
	{"b,W=18446744073709551615", 1, UINT64_MAX},
	{"b,W=18446744073709551616", 0, 0},	/* overflow */
	{"b,W=99999999999999999999999", 0, 0},
	{"b", 0, 0},
	{"b,S=10", 0, 0},
	{"b:2,S", 0, 0},
	{"b:2,W=5", 0, 0},		/* the info part is flags */
	{"b,S=1:2,W=5", 0, 0},
	{"b,W=", 0, 0},
	{"b,W=,S=1", 0, 0},
	{"b,W=:2,S", 0, 0},
	{"b,W=12x", 0, 0},
	{"b,W=1 2", 0, 0},
	{"b,W=-1", 0, 0},
	{"b,W=+1", 0, 0},
	{"b,W= 1", 0, 0},
	{"b,W=12\n", 0, 0},
	{"b,w=12", 0, 0},
	{"b,XW=12", 0, 0},
	{"b,SW=12", 0, 0},
	{"bW=12", 0, 0},		/* no field separator: base name */
	{"W=12", 0, 0},
	/*
	 * A "W=" inside the part after the base name that is not ours (a
	 * host name with a ',' in it): the last field wins, and godwit and
	 * Dovecot write W= last.
	 */
	{"1.M1P1Q1_1.ho,W=5st,S=10,W=12", 1, 12},
	{"1.M1P1Q1_1.ho,W=5,S=10,W=12", 1, 12},
	{"b,W=12,W=1x", 0, 0},
	{"b,W=1,W=2", 1, 2},
};

static void
test_name_size(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]);
	     i++) {
		uint64_t v = 424242;
		int r = mailbox_name_size(size_cases[i].name, &v);

		if (r != size_cases[i].ok)
			fail_msg("row %zu (%s): got %d", i, size_cases[i].name,
				 r);
		if (r == 1 && v != size_cases[i].size)
			fail_msg("row %zu (%s): size %llu", i,
				 size_cases[i].name, (unsigned long long)v);
		if (r == 0 && v != 424242)
			fail_msg("row %zu: size written on failure", i);
	}
}

/* ---- lock ----------------------------------------------------------- */

static void
test_lock_create(void **state)
{
	struct fx *f = *state;
	struct mailbox mb, mb2;
	char lock[512];
	struct stat st;
	time_t last = 1;

	assert_int_equal(mailbox_lock(&mb, f->md, &last), 0);
	assert_int_equal(last, 0);	/* just created */
	assert_true(exists(f->md, "tmp") && exists(f->md, "new") &&
		    exists(f->md, "cur"));
	snprintf(lock, sizeof(lock), "%s/godwit-pop3.lock", f->md);
	assert_int_equal(lstat(lock, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0007, 0);
	assert_true(mb.lock_fd >= 0);
	assert_string_equal(mb.path, f->md);
	assert_int_equal(mb.n, 0);

	/* a second session, same process: in use, and left empty */
	memset(&mb2, 0x5a, sizeof(mb2));
	assert_int_equal(mailbox_lock(&mb2, f->md, &last), 1);
	assert_null(mb2.path);
	assert_int_equal(mb2.lock_fd, -1);
	mailbox_close(&mb2);	/* harmless */

	/* never touched: still "never logged in" */
	mailbox_close(&mb);
	assert_int_equal(mailbox_lock(&mb, f->md, &last), 0);
	assert_int_equal(last, 0);

	/* a login, then the time it happened */
	mailbox_touch_login(&mb);
	mailbox_close(&mb);
	assert_int_equal(mailbox_lock(&mb, f->md, &last), 0);
	assert_true(last > time(NULL) - 60 && last <= time(NULL) + 1);
	mailbox_close(&mb);

	set_mtime(f->md, "godwit-pop3.lock", 123456789);
	assert_int_equal(mailbox_lock(&mb, f->md, &last), 0);
	assert_int_equal(last, 123456789);
	assert_int_equal(mailbox_lock(&mb2, f->md, NULL), 1);
	mailbox_close(&mb);
	mailbox_close(&mb);	/* twice: harmless */
	assert_int_equal(mailbox_lock(&mb2, f->md, NULL), 0);
	mailbox_close(&mb2);

	/* a zeroed struct closes without touching fd 0 */
	{
		bool open0 = fcntl(0, F_GETFD) >= 0;
		memset(&mb, 0, sizeof(mb));
		mailbox_close(&mb);
		assert_int_equal(fcntl(0, F_GETFD) >= 0, open0);
	}
}

static void
test_lock_refused(void **state)
{
	struct fx *f = *state;
	struct mailbox mb;
	char path[512], target[512];

	/* the lock file is a symlink: never followed */
	maildir(f->md);
	snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
	puts_file(f->dir, "elsewhere", "");
	snprintf(path, sizeof(path), "%s/godwit-pop3.lock", f->md);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), -1);
	assert_int_equal(errno, ELOOP);
	assert_null(mb.path);
	unlink(path);

	/* the lock file is a directory */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), -1);
	rmdir(path);

	/* the Maildir is a file */
	snprintf(path, sizeof(path), "%s/elsewhere", f->dir);
	assert_int_equal(mailbox_lock(&mb, path, NULL), -1);
	assert_int_equal(errno, ENOTDIR);
	mailbox_close(&mb);
}

/* The kernel drops the lock of a process that exits or is killed. */
static void
test_lock_processes(void **state)
{
	struct fx *f = *state;
	struct mailbox mb;
	int pfd[2], status;
	char c;
	pid_t pid;

	maildir(f->md);

	/* child locks and _exit()s without closing */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mailbox cm;
		_exit(mailbox_lock(&cm, f->md, NULL) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), 0);
	mailbox_close(&mb);

	/* child holds it until SIGKILL */
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mailbox cm;
		close(pfd[0]);
		c = mailbox_lock(&cm, f->md, NULL) == 0 ? 'L' : 'E';
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	assert_int_equal(c, 'L');
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), 0);
	mailbox_close(&mb);
}

/* ---- snapshot ------------------------------------------------------- */

static void
test_scan_order(void **state)
{
	struct fx *f = *state;
	struct mailbox mb;
	char path[512], target[512];
	static const struct {
		const char *name;
		uint64_t size;
	} want[] = {
		{"cur/0999.B,S=3,W=4:2,S", 4},
		{"new/1000.A,S=5,W=7", 7},	/* from the name, not the file */
		{"cur/1001.C:2,S", 6},		/* computed: "a\r\nb\r\n" */
		{"new/1002.D", 0},		/* empty file */
		{"cur/1003.dup,S=1,W=2:2,S", 2},	/* also in new/: once */
	};

	maildir(f->md);
	puts_file(f->md, "new/1000.A,S=5,W=7", "xx");
	puts_file(f->md, "cur/0999.B,S=3,W=4:2,S", "x");
	puts_file(f->md, "cur/1001.C:2,S", "a\nb\n");
	puts_file(f->md, "new/1002.D", "");
	puts_file(f->md, "new/1003.dup,S=1,W=2", "x");
	puts_file(f->md, "cur/1003.dup,S=1,W=2:2,S", "x");
	/* not messages */
	puts_file(f->md, "tmp/0001.T,S=1,W=2", "x");
	puts_file(f->md, "new/.0002.dot,S=1,W=2", "x");
	puts_file(f->md, "cur/.0002.dot", "x");
	mk(f->md, "new/0003.dir");
	mk(f->md, ".Folder");
	mk(f->md, ".Folder/new");
	puts_file(f->md, ".Folder/new/0004.F,S=1,W=2", "x");
	snprintf(target, sizeof(target), "%s/outside", f->dir);
	puts_file(f->dir, "outside", "secret\n");
	snprintf(path, sizeof(path), "%s/new/0005.link,S=1,W=2", f->md);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/cur/0006.fifo", f->md);
	assert_int_equal(mkfifo(path, 0600), 0);

	lock_scan(&mb, f->md, 0);
	assert_int_equal(mb.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < mb.n; i++) {
		char uidl[MAILBOX_UIDL_MAX + 1];

		if (strcmp(mb.msgs[i].name, want[i].name) != 0)
			fail_msg("msg %zu: %s, want %s", i, mb.msgs[i].name,
				 want[i].name);
		assert_int_equal(mb.msgs[i].size, want[i].size);
		mailbox_uidl(want[i].name, uidl);
		assert_string_equal(mb.msgs[i].uidl, uidl);
		assert_false(mb.msgs[i].deleted);
		assert_false(mb.msgs[i].retrieved);
	}
	assert_string_equal(mb.msgs[4].uidl, "1003.dup");

	/* a second scan replaces the first */
	assert_int_equal(mailbox_scan(&mb, 2), 0);
	assert_int_equal(mb.n, 2);
	assert_string_equal(mb.msgs[1].name, "new/1000.A,S=5,W=7");
	mailbox_close(&mb);
}

static void
test_scan_max(void **state)
{
	struct fx *f = *state;
	struct mailbox mb;
	static const size_t max[] = {0, 1, 3, 5, 6, 100};
	char name[64];

	maildir(f->md);
	for (int i = 4; i >= 0; i--) {	/* spread over new/ and cur/ */
		snprintf(name, sizeof(name), "%s/%d.M,S=1,W=%d%s",
			 i % 2 ? "new" : "cur", 1000 + i, i, i % 2 ? "" : ":2,S");
		puts_file(f->md, name, "");
	}
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), 0);
	for (size_t r = 0; r < sizeof(max) / sizeof(max[0]); r++) {
		size_t want = max[r] == 0 || max[r] > 5 ? 5 : max[r];

		assert_int_equal(mailbox_scan(&mb, max[r]), 0);
		assert_int_equal(mb.n, want);
		for (size_t i = 0; i < mb.n; i++) {
			snprintf(name, sizeof(name), "%zu.M", 1000 + i);
			assert_string_equal(mb.msgs[i].uidl, name);
			assert_int_equal(mb.msgs[i].size, i);
		}
	}
	mailbox_close(&mb);
}

/* Sizes of files without ",W=": what RETR sends, unstuffed. */
static void
test_scan_foreign_sizes(void **state)
{
	static const struct {
		const char *data;
		size_t len;
		uint64_t size;
	} cases[] = {
		{"a\nb\n", 4, 6},		/* LF */
		{"a\r\nb\r\n", 6, 6},		/* CRLF kept */
		{"a\rb\n", 4, 5},		/* bare CR kept */
		{"abc", 3, 5},			/* unterminated: + CRLF */
		{"a\nbc", 4, 7},
		{"a\r", 2, 4},			/* final bare CR */
		{"", 0, 0},
		{"\n", 1, 2},
		{"a\n.\n..b\n", 8, 11},		/* no stuffing */
		{"a\r\n\nb", 5, 8},		/* mixed */
		{"x\0y\n", 4, 5},		/* NUL is just an octet */
	};
	struct fx *f = *state;
	struct mailbox mb;
	char name[64];
	char *big;
	size_t n = sizeof(cases) / sizeof(cases[0]);

	maildir(f->md);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "new/%03zu.foreign", i);
		put(f->md, name, cases[i].data, cases[i].len);
	}
	/* big: many read()s, and a CR LF across the 64 KiB boundary */
	big = malloc(300000);
	assert_non_null(big);
	memset(big, 'a', 65535);
	memcpy(big + 65535, "\r\n", 2);
	put(f->md, "cur/900.crlf-split:2,S", big, 65537);
	for (size_t i = 0; i < 100000; i++)
		memcpy(big + 3 * i, "ab\n", 3);
	put(f->md, "cur/901.big:2,S", big, 300000);
	free(big);

	lock_scan(&mb, f->md, 0);
	assert_int_equal(mb.n, n + 2);
	for (size_t i = 0; i < n; i++)
		if (mb.msgs[i].size != cases[i].size)
			fail_msg("row %zu: size %llu, want %llu", i,
				 (unsigned long long)mb.msgs[i].size,
				 (unsigned long long)cases[i].size);
	assert_int_equal(mb.msgs[n].size, 65537);
	assert_int_equal(mb.msgs[n + 1].size, 400000);
	mailbox_close(&mb);
}

static void
test_scan_dirs(void **state)
{
	struct fx *f = *state;
	struct mailbox mb;
	char path[512], target[512];

	/* missing new/ and cur/ are empty */
	assert_int_equal(mkdir(f->md, 0750), 0);
	assert_int_equal(mailbox_lock(&mb, f->md, NULL), 0);
	assert_int_equal(mailbox_scan(&mb, 0), 0);
	assert_int_equal(mb.n, 0);
	mk(f->md, "cur");
	puts_file(f->md, "cur/1.x:2,S", "a\n");
	assert_int_equal(mailbox_scan(&mb, 0), 0);
	assert_int_equal(mb.n, 1);

	/* new/ as a symlink to a directory elsewhere: refused */
	mk(f->dir, "other");
	puts_file(f->dir, "other/2.y,S=1,W=2", "x");
	snprintf(target, sizeof(target), "%s/other", f->dir);
	snprintf(path, sizeof(path), "%s/new", f->md);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(mailbox_scan(&mb, 0), -1);
	assert_int_equal(mb.n, 0);
	mailbox_close(&mb);

	/* not locked */
	memset(&mb, 0, sizeof(mb));
	assert_int_equal(mailbox_scan(&mb, 0), -1);
	assert_int_equal(errno, EINVAL);
}

/* ---- open and commit ------------------------------------------------ */

static void
read_all(int fd, const char *want)
{
	char buf[64];
	ssize_t r = read(fd, buf, sizeof(buf));

	assert_true(r >= 0);
	assert_int_equal((size_t)r, strlen(want));
	assert_memory_equal(buf, want, (size_t)r);
	close(fd);
}

static void
test_open(void **state)
{
	struct fx *f = *state;
	struct mailbox mb;

	maildir(f->md);
	puts_file(f->md, "new/1.a,S=2,W=3", "A\n");
	puts_file(f->md, "new/2.b,S=2,W=3", "B\n");
	puts_file(f->md, "cur/3.c:2,S", "C\n");
	lock_scan(&mb, f->md, 0);
	assert_int_equal(mb.n, 3);

	{
		uint64_t fsize = 0;
		read_all(mailbox_open(&mb, 0, &fsize), "A\n");
		assert_int_equal(fsize, 2);
	}

	/* moved new/ -> cur/ by another client: found by base name */
	move(f->md, "new/2.b,S=2,W=3", "cur/2.b,S=2,W=3:2,S");
	read_all(mailbox_open(&mb, 1, NULL), "B\n");
	assert_string_equal(mb.msgs[1].name, "cur/2.b,S=2,W=3:2,S");
	assert_string_equal(mb.msgs[1].uidl, "2.b");

	/* other flags, same directory; and back to new/ */
	move(f->md, "cur/3.c:2,S", "cur/3.c:2,RS");
	read_all(mailbox_open(&mb, 2, NULL), "C\n");
	assert_string_equal(mb.msgs[2].name, "cur/3.c:2,RS");
	move(f->md, "cur/3.c:2,RS", "new/3.c");
	read_all(mailbox_open(&mb, 2, NULL), "C\n");
	assert_string_equal(mb.msgs[2].name, "new/3.c");

	/* gone */
	{
		char path[512];
		snprintf(path, sizeof(path), "%s/new/1.a,S=2,W=3", f->md);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(mailbox_open(&mb, 0, NULL), -1);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(mb.msgs[0].name, "new/1.a,S=2,W=3");

	/* a same-prefix name is not the same base name */
	puts_file(f->md, "cur/1.ab:2,S", "X\n");
	assert_int_equal(mailbox_open(&mb, 0, NULL), -1);
	assert_int_equal(errno, ENOENT);

	/* replaced by a symlink, or a FIFO: not a message */
	{
		char path[512], target[512];
		snprintf(target, sizeof(target), "%s/outside", f->dir);
		puts_file(f->dir, "outside", "secret\n");
		snprintf(path, sizeof(path), "%s/cur/2.b,S=2,W=3:2,S", f->md);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(symlink(target, path), 0);
		assert_int_equal(mailbox_open(&mb, 1, NULL), -1);
		assert_int_equal(errno, ENOENT);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(mkfifo(path, 0600), 0);
		assert_int_equal(mailbox_open(&mb, 1, NULL), -1);	/* no hang */
		assert_int_equal(errno, ENOENT);
	}

	assert_int_equal(mailbox_open(&mb, 3, NULL), -1);
	assert_int_equal(errno, EINVAL);
	mailbox_close(&mb);
}

static void
test_commit(void **state)
{
	static const struct {
		const char *file;
		bool del;
		bool retr;
		const char *after;	/* what to do before the commit */
		const char *left;	/* where it is afterwards, or NULL */
	} rows[] = {
		{"new/1.a,S=1,W=2", true, false, NULL, NULL},
		{"new/2.b,S=1,W=2", false, true, NULL, "new/2.b,S=1,W=2"},
		{"cur/3.c,S=1,W=2:2,S", true, true, NULL, NULL},
		{"cur/4.d:2,S", false, false, NULL, "cur/4.d:2,S"},
		/* moved between the snapshot and the commit */
		{"new/5.e,S=1,W=2", true, false, "cur/5.e,S=1,W=2:2,S", NULL},
		/* already gone: neither removed nor failed */
		{"new/6.f", true, false, "", NULL},
		/* cannot be removed: replaced by a directory */
		{"cur/7.g:2,S", true, false, "dir", "cur/7.g:2,S"},
		{"new/8.h", false, false, "cur/8.h:2,S", "cur/8.h:2,S"},
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	struct fx *f = *state;
	struct mailbox mb;
	size_t failed = 99;
	char path[512];

	maildir(f->md);
	for (size_t i = 0; i < n; i++)
		puts_file(f->md, rows[i].file, "x\n");
	lock_scan(&mb, f->md, 0);
	assert_int_equal(mb.n, n);
	puts_file(f->md, "new/9.late", "x\n");	/* after the snapshot */
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(mb.msgs[i].name, rows[i].file);
		mb.msgs[i].deleted = rows[i].del;
		mb.msgs[i].retrieved = rows[i].retr;
		if (rows[i].after == NULL)
			continue;
		if (strcmp(rows[i].after, "dir") == 0) {
			snprintf(path, sizeof(path), "%s/%s", f->md,
				 rows[i].file);
			assert_int_equal(unlink(path), 0);
			assert_int_equal(mkdir(path, 0700), 0);
		} else if (rows[i].after[0] == '\0') {
			snprintf(path, sizeof(path), "%s/%s", f->md,
				 rows[i].file);
			assert_int_equal(unlink(path), 0);
		} else
			move(f->md, rows[i].file, rows[i].after);
	}

	assert_int_equal(mailbox_commit(&mb, &failed), 3);
	assert_int_equal(failed, 1);
	for (size_t i = 0; i < n; i++) {
		if (rows[i].left != NULL && !exists(f->md, rows[i].left))
			fail_msg("row %zu: %s is gone", i, rows[i].left);
		if (rows[i].left == NULL &&
		    (exists(f->md, rows[i].file) ||
		     (rows[i].after != NULL && rows[i].after[0] != '\0' &&
		      exists(f->md, rows[i].after))))
			fail_msg("row %zu: still there", i);
	}
	assert_true(exists(f->md, "new/9.late"));
	mailbox_close(&mb);

	/* nothing deleted: nothing removed, and NULL failed_r is fine */
	lock_scan(&mb, f->md, 0);
	assert_int_equal(mailbox_commit(&mb, NULL), 0);
	mailbox_close(&mb);
}

/* ---- retention ------------------------------------------------------ */

static void
test_expire(void **state)
{
	struct fx *f = *state;
	struct mailbox_expire_stats st;
	struct mailbox bob;
	char data[300], mail[320], path[512], target[512];
	time_t now = time(NULL), old = now - 10 * DAY;
	time_t cutoff = now - DAY, last = 1;
	static const char *const alice = "mail/example.test/alice/Maildir";
	static const char *const bobmd = "mail/example.test/bob/Maildir";
	static const char *const dave = "mail/other.test/dave/Maildir";

	snprintf(data, sizeof(data), "%s/data", f->dir);
	assert_int_equal(mkdir(data, 0750), 0);
	snprintf(mail, sizeof(mail), "%s/mail", data);

	/* no mail/ yet: nothing to do, and nothing created */
	memset(&st, 0x5a, sizeof(st));
	assert_int_equal(mailbox_expire(mail, cutoff, &st), 0);
	assert_int_equal(st.mailboxes + st.skipped + st.removed + st.errors, 0);
	assert_int_equal(st.bytes, 0);
	assert_false(exists(data, "mail"));

	mk(data, "mail");
	mk(data, "mail/example.test");
	mk(data, "mail/example.test/alice");
	mk(data, "mail/example.test/bob");
	mk(data, "mail/other.test");
	mk(data, "mail/other.test/dave");
	snprintf(path, sizeof(path), "%s/%s", data, alice);
	maildir(path);
	snprintf(path, sizeof(path), "%s/%s", data, bobmd);
	maildir(path);
	snprintf(path, sizeof(path), "%s/%s", data, dave);
	maildir(path);

	/* alice: two old messages, one fresh, and things to leave alone */
	snprintf(path, sizeof(path), "%s/%s", data, alice);
	put(path, "new/1.old,S=100,W=100", X70 X10 X10 X10, 100);
	put(path, "cur/2.old:2,S", X10 X10 X10 X10 X10, 50);
	puts_file(path, "new/3.fresh", "x\n");
	puts_file(path, "tmp/4.oldtmp", "x\n");
	puts_file(path, "new/.5.olddot", "x\n");
	puts_file(path, "old-other-file", "x\n");
	mk(path, "new/6.olddir");
	puts_file(f->dir, "outside", "secret\n");
	snprintf(target, sizeof(target), "%s/outside", f->dir);
	{
		char l[600];
		snprintf(l, sizeof(l), "%s/new/7.oldlink", path);
		assert_int_equal(symlink(target, l), 0);
	}
	set_mtime(path, "new/1.old,S=100,W=100", old);
	set_mtime(path, "cur/2.old:2,S", old);
	set_mtime(path, "tmp/4.oldtmp", old);
	set_mtime(path, "new/.5.olddot", old);
	set_mtime(path, "old-other-file", old);
	set_mtime(path, "new/6.olddir", old);
	set_mtime(path, "new/7.oldlink", old);
	set_mtime(f->dir, "outside", old);
	/* just before and at the cutoff */
	puts_file(path, "cur/8.edge:2,S", "x\n");
	set_mtime(path, "cur/8.edge:2,S", cutoff);
	puts_file(path, "cur/9.before:2,S", "abc\n");
	set_mtime(path, "cur/9.before:2,S", cutoff - 1);

	/* alice's .Junk folder: old quarantined mail goes too */
	mk(path, ".Junk");
	{
		char junk[600];

		snprintf(junk, sizeof(junk), "%s/.Junk", path);
		maildir(junk);
		put(junk, "new/10.oldjunk", "0123456789", 10);
		set_mtime(junk, "new/10.oldjunk", old);
		puts_file(junk, "cur/11.freshjunk:2,S", "x\n");
	}

	/* bob: in a POP3 session */
	snprintf(path, sizeof(path), "%s/%s", data, bobmd);
	puts_file(path, "new/1.old", "x\n");
	set_mtime(path, "new/1.old", old);
	assert_int_equal(mailbox_lock(&bob, path, NULL), 0);

	/* dave: no lock file yet */
	snprintf(path, sizeof(path), "%s/%s", data, dave);
	puts_file(path, "cur/1.old:2,S", "1234567\n");
	set_mtime(path, "cur/1.old:2,S", old);

	/* carol: a symlink to a Maildir outside the tree */
	mk(f->dir, "carol");
	snprintf(path, sizeof(path), "%s/carol/Maildir", f->dir);
	maildir(path);
	puts_file(path, "new/1.old", "x\n");
	set_mtime(path, "new/1.old", old);
	snprintf(target, sizeof(target), "%s/carol", f->dir);
	snprintf(path, sizeof(path), "%s/mail/example.test/carol", data);
	assert_int_equal(symlink(target, path), 0);
	/* and a domain that is a symlink, and stray files */
	snprintf(path, sizeof(path), "%s/mail/evil.test", data);
	assert_int_equal(symlink(f->dir, path), 0);
	puts_file(data, "mail/stray", "x\n");
	puts_file(data, "mail/example.test/stray", "x\n");

	assert_int_equal(mailbox_expire(mail, cutoff, &st), 0);
	assert_int_equal(st.mailboxes, 3);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.removed, 5);
	assert_int_equal(st.bytes, 100 + 50 + 4 + 8 + 10);
	assert_int_equal(st.errors, 0);

	snprintf(path, sizeof(path), "%s/%s", data, alice);
	assert_false(exists(path, "new/1.old,S=100,W=100"));
	assert_false(exists(path, "cur/2.old:2,S"));
	assert_false(exists(path, "cur/9.before:2,S"));
	assert_true(exists(path, "cur/8.edge:2,S"));
	assert_true(exists(path, "new/3.fresh"));
	assert_true(exists(path, "tmp/4.oldtmp"));
	assert_true(exists(path, "new/.5.olddot"));
	assert_true(exists(path, "old-other-file"));
	assert_true(exists(path, "new/6.olddir"));
	assert_true(exists(path, "new/7.oldlink"));
	assert_false(exists(path, ".Junk/new/10.oldjunk"));
	assert_true(exists(path, ".Junk/cur/11.freshjunk:2,S"));
	assert_true(exists(f->dir, "outside"));
	snprintf(path, sizeof(path), "%s/%s", data, bobmd);
	assert_true(exists(path, "new/1.old"));
	snprintf(path, sizeof(path), "%s/%s", data, dave);
	assert_false(exists(path, "cur/1.old:2,S"));
	assert_true(exists(f->dir, "carol/Maildir/new/1.old"));

	/* the lock file expiry created does not count as a login */
	{
		struct mailbox d;
		assert_int_equal(mailbox_lock(&d, path, &last), 0);
		assert_int_equal(last, 0);
		mailbox_close(&d);
	}

	/* bob's session ends: his turn next round */
	mailbox_close(&bob);
	assert_int_equal(mailbox_expire(mail, cutoff, &st), 0);
	assert_int_equal(st.mailboxes, 3);
	assert_int_equal(st.skipped, 0);
	assert_int_equal(st.removed, 1);
	assert_int_equal(st.bytes, 2);
	snprintf(path, sizeof(path), "%s/%s", data, bobmd);
	assert_false(exists(path, "new/1.old"));

	/* mail/ that is not a directory */
	snprintf(path, sizeof(path), "%s/data2", f->dir);
	assert_int_equal(mkdir(path, 0750), 0);
	puts_file(path, "mail", "x");
	strncat(path, "/mail", sizeof(path) - strlen(path) - 1);
	assert_int_equal(mailbox_expire(path, cutoff, &st), -1);
	assert_int_equal(errno, ENOTDIR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidl),
		cmocka_unit_test(test_name_size),
		cmocka_unit_test_setup_teardown(test_lock_create, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lock_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lock_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_scan_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_scan_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_foreign_sizes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_scan_dirs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
