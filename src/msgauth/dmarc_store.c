/*
 * The DMARC aggregate-report record store: one line per message received
 * on port 25 with a From domain, appended to <data_dir>/dmarc/records.log
 * for the reports a later version sends (RFC 7489 7.2, appendix C). The
 * line is built by the log field encoder (lib/logfmt), so nothing a
 * sender chose (a From domain, a DKIM d=, an envelope sender) can become
 * a field or a line of its own; its format is in docs/operations.md,
 * "DMARC records". Each line is one write() on an O_APPEND descriptor:
 * lines of several workers never interleave, and a line cut short by a
 * crash lacks its newline, so readers can tell.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msgauth/dmarc.h"
#include "lib/log.h"
#include "lib/logfmt.h"
#include "lib/xalloc.h"

#define RECORD_LINE_MAX 8192
#define RECORDS_VERSION 1
#define DKIM_FIELD_MAX (DKIM_MAX_SIGS * 540)

/* Copies s with ',' and ':' (separators in the dkim field) made '?'. */
static size_t
dkim_part(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 1 < size; s++)
		out[n++] = (*s == ',' || *s == ':') ? '?' : *s;
	out[n] = '\0';
	return n;
}

/* "domain:selector:result,..." for every signature. */
static void
dkim_field(const struct dmarc_record_info *info, char *out, size_t size)
{
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < info->nsigs && i < DKIM_MAX_SIGS; i++) {
		const struct dkim_sig_result *s = &info->sigs[i];

		if (n + 1 >= size)
			break;
		if (i > 0)
			out[n++] = ',';
		n += dkim_part(out + n, size - n, s->domain);
		if (n + 1 < size)
			out[n++] = ':';
		n += dkim_part(out + n, size - n, s->selector);
		n += (size_t)snprintf(out + n, size - n, ":%s",
		                      dkim_result_name(s->result));
		if (n >= size)
			n = size - 1;
	}
	out[n] = '\0';
}

/* The fields of one line, in order, into fl (FIELDS_N + 1 entries). */
#define FIELDS_N 16
static void
record_fields(const struct dmarc_verdict *v, const struct dmarc_found *f,
              const struct dmarc_record_info *info, const char *when,
              const char *dkim, struct log_field *fl)
{
	bool rec = f->status == DMARC_PASS;
	const struct log_field pct = rec
	    ? (struct log_field)LF_UINT("pct", f->rec.pct)
	    : (struct log_field)LF_STR("pct", "");
	const struct log_field all[FIELDS_N + 1] = {
	    LF_UINT("v", RECORDS_VERSION),
	    LF_STR("time", when),
	    LF_STR("ip", info->ip),
	    LF_STR("header_from", v->from_domain),
	    LF_STR("envelope_from", info->envelope_from),
	    LF_STR("policy_domain", v->policy_domain),
	    LF_STR("p", rec ? dmarc_policy_name(f->rec.p) : ""),
	    LF_STR("sp", rec ? dmarc_policy_name(f->rec.sp) : ""),
	    pct,
	    LF_STR("adkim", !rec ? "" : f->rec.adkim_strict ? "s" : "r"),
	    LF_STR("aspf", !rec ? "" : f->rec.aspf_strict ? "s" : "r"),
	    LF_STR("disposition", dmarc_policy_name(v->disposition)),
	    LF_STR("dmarc", dmarc_result_name(v->result)),
	    LF_STR("dkim", dkim),
	    LF_STR("spf_domain", info->spf_domain),
	    LF_STR("spf", spf_result_name(info->spf)),
	    {.key = NULL},
	};

	memcpy(fl, all, sizeof(all));
}

size_t
dmarc_record_format(const struct dmarc_verdict *v, const struct dmarc_found *f,
                    const struct dmarc_record_info *info, char *buf,
                    size_t size)
{
	static const struct log_field trunc[] = {
	    {.key = "truncated", .type = LOG_FIELD_STR, .v.s = "yes"},
	    {.key = NULL},
	};
	struct log_field fl[FIELDS_N + 1];
	char when[32], dkim[DKIM_FIELD_MAX];
	struct tm tm;
	time_t t = (time_t)info->time;
	struct logfmt_out o = {buf, 0, 0, false};

	/* room for the newline and " truncated=yes" is kept back */
	if (size < 64)
		return 0;
	o.cap = size - 1 - 16;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", info->time);
	dkim_field(info, dkim, sizeof(dkim));
	record_fields(v, f, info, when, dkim, fl);
	if (!logfmt_fields(&o, LOGFMT_KV, fl)) {
		o.cap = size - 1;
		o.full = false;
		(void)logfmt_fields(&o, LOGFMT_KV, trunc);
	}
	if (o.len < 2)
		return 0;
	/* logfmt writes " key=value": the line starts at the first key */
	memmove(buf, buf + 1, o.len - 1);
	buf[o.len - 1] = '\n';
	buf[o.len] = '\0';
	return o.len;
}

/*
 * The records file stays open in each process: opening it for every
 * message cost more than the line. Once a second at most, the path is
 * looked at again, so a file rotated away (renamed or removed) is left
 * for a new one within a second.
 */
static struct {
	int fd;
	char path[4096];
	dev_t dev;
	ino_t ino;
	time_t checked;
} rec = { .fd = -1 };

static int
records_fd(const char *path, char **error_r)
{
	struct stat st;
	time_t now = time(NULL);

	if (rec.fd >= 0 && strcmp(rec.path, path) == 0) {
		if (now == rec.checked)
			return rec.fd;
		rec.checked = now;
		if (stat(path, &st) == 0 && st.st_dev == rec.dev &&
		    st.st_ino == rec.ino)
			return rec.fd;
	}
	if (rec.fd >= 0)
		close(rec.fd);
	rec.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
				    O_NOFOLLOW | O_NOCTTY, 0640);
	if (rec.fd < 0 || fstat(rec.fd, &st) < 0) {
		*error_r =
		    xasprintf("dmarc records: %s: %s", path, strerror(errno));
		if (rec.fd >= 0)
			close(rec.fd);
		rec.fd = -1;
		return -1;
	}
	snprintf(rec.path, sizeof(rec.path), "%s", path);
	rec.dev = st.st_dev;
	rec.ino = st.st_ino;
	rec.checked = now;
	return rec.fd;
}

int
dmarc_record_append(const char *data_dir, const struct dmarc_verdict *v,
                    const struct dmarc_found *f,
                    const struct dmarc_record_info *info, char **error_r)
{
	char path[4096], line[RECORD_LINE_MAX];
	size_t len;
	ssize_t w;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/dmarc/records.log",
	                     data_dir) >= sizeof(path)) {
		*error_r = xasprintf("dmarc records: data_dir too long");
		return -1;
	}
	if ((len = dmarc_record_format(v, f, info, line, sizeof(line))) == 0) {
		*error_r = xasprintf("dmarc records: line does not fit");
		return -1;
	}
	if ((fd = records_fd(path, error_r)) < 0)
		return -1;
	w = write(fd, line, len);
	if (w != (ssize_t)len) {
		*error_r = xasprintf("dmarc records: %s: %s", path,
		                     w < 0 ? strerror(errno) : "short write");
		close(rec.fd);
		rec.fd = -1;
		return -1;
	}
	return 0;
}
