/*
 * Verifying the audit log's chain: see audit_verify.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/audit_verify.h"
#include "store/audit.h"
#include "lib/xalloc.h"

/* One file's lines, read in chunks into a line buffer bounded by
 * AUDIT_LINE_MAX. */
struct reader {
	int fd;
	char chunk[65536];
	size_t pos, len;
	char *line;
	size_t llen;
};

/* The next line: 1 (rd->line, rd->llen, without the newline), 0 at the
 * end, -1 with *why_r (static) or errno. */
static int
next_line(struct reader *rd, const char **why_r)
{
	rd->llen = 0;
	for (;;) {
		if (rd->pos == rd->len) {
			ssize_t n = read(rd->fd, rd->chunk, sizeof(rd->chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				*why_r = strerror(errno);
				return -1;
			}
			if (n == 0) {
				if (rd->llen == 0)
					return 0;
				*why_r = "the last line is incomplete (no "
					 "newline: a crash during an append, "
					 "or a cut)";
				return -1;
			}
			rd->pos = 0;
			rd->len = (size_t)n;
		}
		char *nl = memchr(rd->chunk + rd->pos, '\n', rd->len - rd->pos);
		size_t take = nl != NULL ? (size_t)(nl - (rd->chunk + rd->pos))
					 : rd->len - rd->pos;
		if (rd->llen + take > AUDIT_LINE_MAX) {
			*why_r = "line longer than the longest line godwit writes";
			return -1;
		}
		memcpy(rd->line + rd->llen, rd->chunk + rd->pos, take);
		rd->llen += take;
		rd->pos += take + (nl != NULL);
		if (nl != NULL)
			return 1;
	}
}

/* One file into the walk; 0, 1 broken (rep filled), -1 error. */
static int
verify_file(const char *path, struct hashchain_walk *w, const char *expect,
	    struct audit_verify_report *rep, char **error_r)
{
	struct reader rd = {.fd = -1};
	const char *why = NULL;
	uint64_t lineno = 0;
	int r;
	bool read_fail = true;

	if ((rd.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	rd.line = xmalloc(AUDIT_LINE_MAX + 1);
	while ((r = next_line(&rd, &why)) == 1) {
		lineno++;
		if (hashchain_walk_line(w, rd.line, rd.llen, &why) < 0) {
			r = -1;
			read_fail = false;
			break;
		}
		if (expect != NULL && strcmp(w->head, expect) == 0)
			rep->expect_found = true;
	}
	close(rd.fd);
	free(rd.line);
	if (r == 0)
		return 0;
	rep->file = xstrdup(path);
	rep->line = read_fail ? lineno + 1 : lineno;
	rep->why = why;
	return 1;
}

int
audit_verify(const char *data_dir, const char *expect,
	     struct audit_verify_report *rep, char **error_r)
{
	struct hashchain_walk w;
	char **names = NULL;
	size_t n = 0, i;
	int r = 0;

	memset(rep, 0, sizeof(*rep));
	hashchain_walk_init(&w);
	if (audit_files(data_dir, &names, &n, error_r) < 0)
		return -1;
	for (i = 0; i < n && r == 0; i++) {
		char *path = xasprintf("%s/%s/%s", data_dir, AUDIT_DIR,
				       names[i]);
		r = verify_file(path, &w, expect, rep, error_r);
		free(path);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	rep->files = n;
	rep->lines = w.lines;
	memcpy(rep->head, w.any ? w.head : HASHCHAIN_GENESIS,
	       sizeof(rep->head));
	memcpy(rep->first_prev, w.any ? w.first_prev : HASHCHAIN_GENESIS,
	       sizeof(rep->first_prev));
	if (r == 0 && expect != NULL && !rep->expect_found)
		r = 1;
	return r;
}

void
audit_verify_report_clear(struct audit_verify_report *rep)
{
	free(rep->file);
	rep->file = NULL;
}
