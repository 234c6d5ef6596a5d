/*
 * The header cache file of a folder, read and written for SEARCH (see
 * imapd/imap_hcache_io.h and mail/imap_hcache.h). Concurrent sessions
 * and processes need no lock: appends are whole records in one write(2)
 * with O_APPEND, and a record torn or interleaved anyway fails its sum
 * and is skipped; a compaction racing with an append may drop that
 * append's records (they are re-read from the messages next time). On a
 * mail_dir shared over NFS, O_APPEND from two nodes is not atomic and one
 * node's records may overwrite another's: the sums catch that too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imapd/imap_hcache_io.h"
#include "lib/xalloc.h"

#define COMPACT_MIN (256 * 1024)	/* a smaller file is left as it is */

static bool
read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

void
imap_hcache_load(struct imap_hcache_io *h, const char *dir)
{
	struct stat st;
	int fd;

	memset(h, 0, sizeof(*h));
	h->path = xasprintf("%s/%s", dir, IMAP_HCACHE_FILE);
	fd = open(h->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		h->replace = errno != ENOENT;
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > IMAP_HCACHE_FILE_MAX) {
		h->replace = true;
		close(fd);
		return;
	}
	h->len = (size_t)st.st_size;
	h->buf = xmalloc(h->len + 1);
	if (!read_all(fd, h->buf, h->len))
		h->len = 0;	/* shrunk under us: as if empty */
	close(fd);
	imap_hcache_parse(h->buf, h->len, &h->c);
}

const struct imap_hcache_ent *
imap_hcache_get(struct imap_hcache_io *h, const char *entry)
{
	size_t nlen;
	const char *b = imap_hcache_basename(entry, &nlen);
	struct imap_hcache_ent *e = imap_hcache_find(&h->c, b, nlen);

	if (e != NULL)
		e->used = true;
	return e;
}

void
imap_hcache_put(struct imap_hcache_io *h, const char *entry,
		const char *hdr, size_t hlen)
{
	size_t nlen;
	const char *b = imap_hcache_basename(entry, &nlen);

	(void)imap_hcache_record(&h->add, b, nlen, hdr, hlen);
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* Most of the file is dead (vanished messages, garbage): rewrite it. */
static bool
worth_compacting(const struct imap_hcache_io *h)
{
	size_t live = 0;

	if (h->replace)
		return true;
	if (h->len < COMPACT_MIN)
		return false;
	for (size_t i = 0; i < h->c.n; i++)
		if (h->c.v[i].used)
			live += imap_hcache_record_len(h->c.v[i].nlen,
						       h->c.v[i].hlen);
	return live < h->len / 2;
}

static void
compact(struct imap_hcache_io *h)
{
	struct strbuf out = {0};
	char host[64], *tmp;
	int fd;

	/* host and pid: unique among the nodes sharing the mail_dir */
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p != '\0'; p++)
		if (*p == '/')
			*p = '_';
	tmp = xasprintf("%s.tmp.%s.%ld", h->path, host, (long)getpid());

	for (size_t i = 0; i < h->c.n; i++)
		if (h->c.v[i].used)
			(void)imap_hcache_record(&out, h->c.v[i].name,
						 h->c.v[i].nlen,
						 h->c.v[i].hdr,
						 h->c.v[i].hlen);
	strbuf_add(&out, h->add.s, h->add.len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd >= 0) {
		bool ok = write_all(fd, out.s, out.len);

		if (close(fd) < 0 || !ok || rename(tmp, h->path) < 0)
			(void)unlink(tmp);
	}
	free(tmp);
	strbuf_free(&out);
}

void
imap_hcache_finish(struct imap_hcache_io *h)
{
	int fd;

	if (worth_compacting(h))
		compact(h);
	else if (h->add.len > 0 &&
		 (fd = open(h->path, O_WRONLY | O_APPEND | O_CREAT |
			    O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600)) >= 0) {
		(void)write_all(fd, h->add.s, h->add.len);
		close(fd);
	}
	imap_hcache_free(&h->c);
	strbuf_free(&h->add);
	free(h->buf);
	free(h->path);
	memset(h, 0, sizeof(*h));
}
