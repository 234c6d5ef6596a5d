/*
 * Recipient resolution and the relay rule: the one place that
 * decides whether a RCPT is ours, someone else's that we may relay to, or
 * refused. See recipient.h for the rule itself.
 *
 * Every lookup is exact. The classic relay tricks (user%host@us,
 * host!user@us, "user@host"@us, source routes, address literals, look-alike
 * domains) all come down to "is this exact domain in the database, and is
 * this exact local part a user or alias there": nothing here interprets
 * '%', '!' or a quoted '@' as routing, so none of them can reach a remote
 * address unless an administrator wrote that address into an alias.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/recipient.h"
#include "store/userdb.h"

/* Nested alias expansions followed before giving up on a chain. */
#define ALIAS_DEPTH_MAX 8
/* "local@domain" as the parser can hand it to us, plus the NUL. */
#define KEY_MAX (sizeof(((struct smtp_mailbox *)0)->local) + 1 + \
		 sizeof(((struct smtp_mailbox *)0)->domain))

struct strvec {
	char **v;
	size_t n;
};

/* State of one resolution: results so far, and the aliases already
 * expanded (which is what makes alias loops harmless). */
struct resolve {
	const struct recipient_ctx *ctx;
	struct strvec mailboxes;
	struct strvec remotes;
	struct strvec seen;
};

static bool
strvec_has(const struct strvec *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

static void
strvec_add_unique(struct strvec *sv, const char *s)
{
	if (strvec_has(sv, s))
		return;
	sv->v = xreallocarray(sv->v, sv->n + 1, sizeof(*sv->v));
	sv->v[sv->n++] = xstrdup(s);
}

static void
strvec_clear(struct strvec *sv)
{
	userdb_string_list_free(&sv->v, sv->n);
	sv->n = 0;
}

/* Joins local "@" domain into buf; false if it does not fit. */
static bool
make_key(char *buf, size_t size, const char *local, const char *domain)
{
	size_t ll = strlen(local), dl = strlen(domain);

	if (ll + 1 + dl + 1 > size)
		return false;
	memcpy(buf, local, ll);
	buf[ll] = '@';
	memcpy(buf + ll + 1, domain, dl + 1);
	return true;
}

/* Copies a domain lower-cased, without one trailing dot. The parser has
 * done both already; doing them again keeps a sloppy caller from turning
 * one of our own domains into a "remote" one. */
static bool
normalise_domain(char *buf, size_t size, const char *domain)
{
	size_t len;

	if (strlcpy_checked(buf, domain, size) < 0)
		return false;
	ascii_lower(buf);
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '.')
		buf[len - 1] = '\0';
	return true;
}

static int resolve_name(struct resolve *rs, const char *local,
			const char *domain, int depth, bool catchall);

/*
 * An alias target: a local address resolves further (user, alias,
 * sub-address), anything else is queued as remote with its domain
 * lower-cased and its local part as the administrator wrote it. A target
 * in a local domain that resolves to nothing is dropped.
 */
static int
resolve_target(struct resolve *rs, const char *target, int depth)
{
	char local[KEY_MAX], domain[KEY_MAX], addr[KEY_MAX];
	const char *at = strrchr(target, '@');
	size_t ll;
	int r;

	if (at == NULL || at == target || at[1] == '\0')
		return 0;
	ll = (size_t)(at - target);
	if (ll >= sizeof(local) ||
	    !normalise_domain(domain, sizeof(domain), at + 1) ||
	    domain[0] == '\0')
		return 0;
	memcpy(local, target, ll);
	local[ll] = '\0';

	if ((r = userdb_domain_exists(rs->ctx->db, domain)) < 0)
		return -1;
	if (r == 0 || domain[0] == '[') {
		if (make_key(addr, sizeof(addr), local, domain))
			strvec_add_unique(&rs->remotes, addr);
		return 0;
	}
	ascii_lower(local);
	return resolve_name(rs, local, domain, depth, false) < 0 ? -1 : 0;
}

/*
 * Expands the alias whose source is key. Returns 1 if it exists (even if
 * it adds nothing new, as when it was expanded already), 0 if not, -1 on
 * a database error.
 */
static int
expand_alias(struct resolve *rs, const char *key, int depth)
{
	struct userdb_alias_list l = {NULL, 0};
	size_t i;
	int r;

	if (strvec_has(&rs->seen, key))
		return 1;
	if ((r = userdb_alias_lookup(rs->ctx->db, key, &l)) <= 0)
		return r;
	strvec_add_unique(&rs->seen, key);
	if (depth < ALIAS_DEPTH_MAX) {
		for (i = 0; i < l.n; i++) {
			if (resolve_target(rs, l.targets[i], depth + 1) < 0) {
				userdb_alias_list_clear(&l);
				return -1;
			}
		}
	}
	userdb_alias_list_clear(&l);
	return 1;
}

/* Exactly local@domain: a user, else an alias. 1 matched, 0 not, -1. */
static int
resolve_exact(struct resolve *rs, const char *local, const char *domain,
	      int depth)
{
	char key[KEY_MAX];
	int r;

	if (!make_key(key, sizeof(key), local, domain))
		return 0;
	if ((r = userdb_user_exists(rs->ctx->db, key)) < 0)
		return -1;
	if (r > 0) {
		strvec_add_unique(&rs->mailboxes, key);
		return 1;
	}
	return expand_alias(rs, key, depth);
}

/*
 * A lower-cased local part in a local domain: exact user or alias, then
 * without its "+tag", then (for what the client asked for, not for alias
 * targets, so that a mistyped target does not land in the catch-all) the
 * domain's catch-all "@domain". The first that exists decides.
 */
static int
resolve_name(struct resolve *rs, const char *local, const char *domain,
	     int depth, bool catchall)
{
	char base[KEY_MAX], key[KEY_MAX];
	const char *delim;
	int r;

	if ((r = resolve_exact(rs, local, domain, depth)) != 0)
		return r;
	/* "+tag" alone is not "" + tag: that would be the catch-all key. */
	if (rs->ctx->delimiter != '\0' &&
	    (delim = strchr(local, rs->ctx->delimiter)) != NULL &&
	    delim != local) {
		memcpy(base, local, (size_t)(delim - local));
		base[delim - local] = '\0';
		if ((r = resolve_exact(rs, base, domain, depth)) != 0)
			return r;
	}
	if (catchall && make_key(key, sizeof(key), "", domain))
		return expand_alias(rs, key, depth);
	return 0;
}

/* Printable characters of RFC 5322 atext besides letters and digits. */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* The local part as it must go on the wire again: quoted unless it is a
 * dot-atom. Returns a malloc'd "local@domain". */
static char *
format_remote(const char *local, const char *domain)
{
	const unsigned char *p;
	bool atom = local[0] != '.';
	char *q, *buf, *r;

	for (p = (const unsigned char *)local; *p != '\0' && atom; p++)
		if (!(is_atext(*p) ||
		      (*p == '.' && p[1] != '.' && p[1] != '\0')))
			atom = false;
	if (atom)
		return xasprintf("%s@%s", local, domain);

	buf = q = xmalloc(strlen(local) * 2 + 3);
	*q++ = '"';
	for (p = (const unsigned char *)local; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			*q++ = '\\';
		*q++ = (char)*p;
	}
	*q++ = '"';
	*q = '\0';
	r = xasprintf("%s@%s", buf, domain);
	free(buf);
	return r;
}

static void
set_reply(struct recipient_result *r, enum recipient_verdict v, int code,
	  const char *enh, const char *text)
{
	r->verdict = v;
	r->code = code;
	r->enh = enh;
	r->text = text;
}

static void
reject_syntax(struct recipient_result *r)
{
	set_reply(r, RCPT_REJECT, 501, "5.1.3", "Bad recipient address syntax");
}

static void
tempfail(struct recipient_result *r)
{
	set_reply(r, RCPT_TEMPFAIL, 451, "4.3.0",
		  "Temporary lookup failure, try again later");
}

static void
take(struct recipient_result *to, struct recipient_result *from)
{
	recipient_result_clear(to);
	*to = *from;
	memset(from, 0, sizeof(*from));
}

int
recipient_postmaster(const struct recipient_ctx *ctx,
		     struct recipient_result *r)
{
	/* an address the administrator chose may be remote; without
	 * c.postmaster, postmaster@hostname as that address comes back
	 * here once, for the default */
	struct recipient_ctx c = *ctx;
	struct recipient_result tmp;
	struct smtp_path path;
	struct smtp_error err;
	const char *end;
	char **domains = NULL, *text, *dberr = NULL;
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	memset(&tmp, 0, sizeof(tmp));
	c.trusted = true;
	c.postmaster = NULL;
	if (ctx->postmaster != NULL && ctx->postmaster[0] != '\0') {
		text = xasprintf("<%s>", ctx->postmaster);
		if (smtp_parse_path(text, false, false, true, &path, &end,
				    &err) == 0 &&
		    *end == '\0' && path.mbox.domain[0] != '\0') {
			recipient_resolve(&c, &path.mbox, &tmp);
			if (tmp.verdict == RCPT_TEMPFAIL ||
			    (tmp.verdict == RCPT_ACCEPT && !tmp.unowned)) {
				free(text);
				take(r, &tmp);
				return 0;
			}
			recipient_result_clear(&tmp);
		}
		free(text);
	}
	/* postmaster@ the first domain, as `godwit domain list` shows them */
	if (ctx->db->ops->domain_list(ctx->db, &domains, &n, &dberr) < 0) {
		free(dberr);
		tempfail(r);
		return 0;
	}
	if (n == 0) {
		set_reply(r, RCPT_TEMPFAIL, 451, "4.3.0",
			  "No postmaster address configured here yet");
	} else {
		memset(&path, 0, sizeof(path));
		strcpy(path.mbox.local, "postmaster");
		if (strlen(domains[0]) < sizeof(path.mbox.domain))
			strcpy(path.mbox.domain, domains[0]);
		recipient_resolve(&c, &path.mbox, &tmp);
		take(r, &tmp);
	}
	userdb_string_list_free(&domains, n);
	return 0;
}

int
recipient_resolve(const struct recipient_ctx *ctx,
		  const struct smtp_mailbox *rcpt, struct recipient_result *r)
{
	struct resolve rs = {.ctx = ctx};
	char local[sizeof(rcpt->local)], domain[sizeof(rcpt->domain)];
	char key[KEY_MAX];
	bool bare_postmaster = false;
	int is_local = 0;

	memset(r, 0, sizeof(*r));
	if (memchr(rcpt->local, '\0', sizeof(rcpt->local)) == NULL ||
	    memchr(rcpt->domain, '\0', sizeof(rcpt->domain)) == NULL ||
	    rcpt->local[0] == '\0') {
		reject_syntax(r);
		return 0;
	}
	memcpy(local, rcpt->local, sizeof(local));
	ascii_lower(local);

	if (rcpt->domain[0] == '\0') {
		/* Only "<postmaster>" may come without a domain (RFC 5321
		 * 4.1.1.3); it means the postmaster of this host. */
		if (strcmp(local, "postmaster") != 0) {
			reject_syntax(r);
			return 0;
		}
		bare_postmaster = true;
		if (ctx->hostname == NULL ||
		    !normalise_domain(domain, sizeof(domain), ctx->hostname) ||
		    domain[0] == '\0')
			strcpy(domain, "localhost");
	} else
		normalise_domain(domain, sizeof(domain), rcpt->domain);

	/* An address literal names a host, never one of our domains. */
	if (!rcpt->is_literal && domain[0] != '[' &&
	    (is_local = userdb_domain_exists(ctx->db, domain)) < 0) {
		tempfail(r);
		return 0;
	}

	if (is_local) {
		if (resolve_name(&rs, local, domain, 0, true) < 0) {
			tempfail(r);
			goto out;
		}
		/* RFC 5321 4.5.1: postmaster is always accepted. */
		if (rs.mailboxes.n == 0 && rs.remotes.n == 0 &&
		    strcmp(local, "postmaster") == 0 &&
		    make_key(key, sizeof(key), local, domain)) {
			strvec_add_unique(&rs.mailboxes, key);
			r->unowned = true;
		}
		if (rs.mailboxes.n == 0 && rs.remotes.n == 0) {
			set_reply(r, RCPT_REJECT, 550, "5.1.1",
				  "Recipient address rejected: "
				  "user unknown in local recipient table");
			goto out;
		}
	} else if (strcmp(local, "postmaster") == 0 &&
		   (bare_postmaster ||
		    (ctx->hostname != NULL &&
		     normalise_domain(key, sizeof(key), ctx->hostname) &&
		     strcmp(key, domain) == 0))) {
		/* RFC 5321 4.5.1: postmaster of this host, which is not one
		 * of our mail domains */
		strvec_clear(&rs.seen);
		recipient_postmaster(ctx, r);
		return 0;
	} else if (ctx->trusted || ctx->authenticated) {
		rs.remotes.v = xmalloc(sizeof(*rs.remotes.v));
		rs.remotes.v[0] = format_remote(rcpt->local, domain);
		rs.remotes.n = 1;
	} else {
		set_reply(r, RCPT_REJECT, 554, "5.7.1", "Relay access denied");
		goto out;
	}

	set_reply(r, RCPT_ACCEPT, 250, "2.1.5", "OK");
	r->mailboxes = rs.mailboxes.v;
	r->nmailboxes = rs.mailboxes.n;
	r->remotes = rs.remotes.v;
	r->nremotes = rs.remotes.n;
	rs.mailboxes.v = rs.remotes.v = NULL;
	rs.mailboxes.n = rs.remotes.n = 0;
out:
	strvec_clear(&rs.mailboxes);
	strvec_clear(&rs.remotes);
	strvec_clear(&rs.seen);
	return 0;
}

void
recipient_result_clear(struct recipient_result *r)
{
	userdb_string_list_free(&r->mailboxes, r->nmailboxes);
	userdb_string_list_free(&r->remotes, r->nremotes);
	r->nmailboxes = r->nremotes = 0;
}

int
recipient_domain_is_local(const struct recipient_ctx *ctx, const char *domain)
{
	char buf[SMTP_DOMAIN_MAX + 1];

	if (!normalise_domain(buf, sizeof(buf), domain) || buf[0] == '\0' ||
	    buf[0] == '[')
		return 0;
	return userdb_domain_exists(ctx->db, buf);
}
