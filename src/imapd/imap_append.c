/*
 * APPEND (RFC 9051 section 6.3.12) with APPENDUID (RFC 4315): a message
 * given as a literal held in memory, or as one the core streamed into a
 * file (IMAP_ARG_STREAMED), saved into a folder of the user's Maildir.
 * The size bound is imap.max_append.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/imap_mbox.h"
#include "imapd/imap_private.h"
#include "lib/strbuf.h"
#include "store/imap_store.h"

static const char *const months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static bool
digits(const char *p, size_t n, int *v_r)
{
	size_t i;

	*v_r = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v_r = *v_r * 10 + (p[i] - '0');
	}
	return true;
}

/* date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (the day may be " d" or "d"). */
static bool
parse_date_time(const char *s, time_t *t_r)
{
	struct tm tm;
	int day, year, h, m, sec, zh, zm, mon;
	char buf[32];
	size_t len;
	time_t t;

	if (*s == ' ')
		s++;
	len = strlen(s);
	if (len == 25) {	/* one-digit day */
		if (snprintf(buf, sizeof(buf), "0%s", s) >= (int)sizeof(buf))
			return false;
		s = buf;
	} else if (len != 26)
		return false;
	if (!digits(s, 2, &day) || s[2] != '-' || s[6] != '-' ||
	    !digits(s + 7, 4, &year) || s[11] != ' ' ||
	    !digits(s + 12, 2, &h) || s[14] != ':' ||
	    !digits(s + 15, 2, &m) || s[17] != ':' ||
	    !digits(s + 18, 2, &sec) || s[20] != ' ' ||
	    (s[21] != '+' && s[21] != '-') || !digits(s + 22, 2, &zh) ||
	    !digits(s + 24, 2, &zm))
		return false;
	for (mon = 0; mon < 12; mon++)
		if (strncasecmp(s + 3, months[mon], 3) == 0)
			break;
	if (mon == 12 || day < 1 || day > 31 || h > 23 || m > 59 ||
	    sec > 60 || zm > 59 || year < 1970)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	t -= (s[21] == '+' ? 1 : -1) * (zh * 3600 + zm * 60);
	*t_r = t > 0 ? t : 1;
	return true;
}

struct append_req {
	struct strbuf name;
	struct imap_flagset fs;
	time_t date;
	const struct imap_arg *msg;
};

/* The arguments: mailbox [flags] [date-time] message. */
static bool
append_parse(struct imap_session *s, const struct imap_command *c,
	     struct append_req *req, const char **err_r)
{
	size_t i = 1;

	*err_r = "APPEND needs a mailbox and a message";
	if (c->nargs < 2 || !imap_mailbox_arg(s, &c->args[0], &req->name))
		return false;
	if (i < c->nargs - 1 && c->args[i].type == IMAP_ARG_LIST) {
		if (!imap_flags_parse(c->args[i].list, c->args[i].nlist,
				      &req->fs, err_r))
			return false;
		i++;
	}
	if (i < c->nargs - 1 && c->args[i].type == IMAP_ARG_STRING) {
		*err_r = "invalid date-time";
		if (!parse_date_time(c->args[i].str, &req->date))
			return false;
		i++;
	}
	*err_r = "APPEND takes one message";
	if (i != c->nargs - 1)
		return false;
	req->msg = &c->args[i];
	return req->msg->type == IMAP_ARG_LITERAL ||
	       req->msg->type == IMAP_ARG_STREAMED;
}

static void
append_free(struct append_req *req)
{
	strbuf_free(&req->name);
	imap_flagset_free(&req->fs);
}

void
imap_cmd_append(struct imap_session *s, const struct imap_command *c)
{
	struct append_req req;
	const char *err;
	uint32_t uidvalidity, uid;
	char code[64];
	uint64_t size;
	int fd = -1, r;

	memset(&req, 0, sizeof(req));
	if (!append_parse(s, c, &req, &err)) {
		append_free(&req);
		imap_done(s, "BAD", NULL, "%s", err);
		return;
	}
	size = req.msg->type == IMAP_ARG_STREAMED ? req.msg->size
						  : req.msg->len;
	if (req.msg->type == IMAP_ARG_STREAMED)
		fd = req.msg->fd;
	if (s->config->imap.max_append && size > s->config->imap.max_append) {
		append_free(&req);
		imap_done(s, "NO", "TOOBIG", "message larger than %llu octets",
			  (unsigned long long)s->config->imap.max_append);
		return;
	}
	if (size == 0 || (req.msg->type == IMAP_ARG_STREAMED && fd < 0)) {
		append_free(&req);
		imap_done(s, "NO", NULL, "no message to save");
		return;
	}
	r = imap_store_append(s->store, req.name.s, fd,
			      fd < 0 ? req.msg->str : NULL, size, req.fs.flags,
			      req.fs.kw, req.fs.nkw, req.date, &uidvalidity,
			      &uid);
	append_free(&req);
	if (r < 0) {
		imap_store_fail(s, errno, true, "APPEND");
		return;
	}
	(void)snprintf(code, sizeof(code), "APPENDUID %u %u", uidvalidity,
		       uid);
	imap_sync_report(s, true);
	imap_done(s, "OK", code, "APPEND completed");
}
