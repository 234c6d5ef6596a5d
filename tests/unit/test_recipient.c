/*
 * Recipient resolution and the relay rule, against a real SQLite user
 * database built in a temporary directory. One table row per RCPT: every
 * classic open-relay trick must be refused for an untrusted client, and
 * local users, sub-addresses, aliases, catch-alls and postmaster must
 * resolve to exactly the mailboxes and remote addresses expected.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "daemon/config.h"
#include "lib/xalloc.h"
#include "store/recipient.h"
#include "store/userdb.h"

static char tmpdir[] = "/tmp/godwit-rcpt-XXXXXX";
static struct userdb *rodb;

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
must(int r, char *err)
{
	if (r < 0)
		fail_msg("setup: %s", err != NULL ? err : "?");
}

static void
add_alias(struct userdb *db, const char *source, const char *target)
{
	char *err = NULL;

	must(db->ops->alias_add(db, source, target, &err), err);
}

static int
setup_db(void **state)
{
	static const char *const domains[] = {
		"example.test", "catchall.test", "pm.test",
	};
	static const char *const users[] = {
		"alice@example.test", "bob@example.test",
		"carol@example.test", "dave@example.test",
		"dave+special@example.test", "admin@catchall.test",
	};
	static const char *const aliases[][2] = {
		{"info@example.test", "alice@example.test"},
		{"info@example.test", "bob@example.test"},
		{"fwd@example.test", "Some.One@remote.example"},
		{"chain1@example.test", "chain2@example.test"},
		{"chain2@example.test", "chain3@example.test"},
		{"chain3@example.test", "alice@example.test"},
		{"loop1@example.test", "loop2@example.test"},
		{"loop2@example.test", "loop1@example.test"},
		{"loopmix@example.test", "loop1@example.test"},
		{"loopmix@example.test", "carol@example.test"},
		{"self@example.test", "self@example.test"},
		{"dead@example.test", "nobody@example.test"},
		{"mixed@example.test", "alice@example.test"},
		{"mixed@example.test", "nobody@example.test"},
		{"mixed@example.test", "x@remote.example"},
		{"dup@example.test", "info@example.test"},
		{"dup@example.test", "alice@example.test"},
		{"dup@example.test", "bob@example.test"},
		{"list@example.test", "bob@example.test"},
		{"tagfwd@example.test", "alice+lists@example.test"},
		{"both@example.test", "info@example.test"},
		{"both@example.test", "fwd@example.test"},
		{"@catchall.test", "admin@catchall.test"},
		{"postmaster@pm.test", "alice@example.test"},
	};
	struct config config = {0};
	struct userdb *db;
	char *err = NULL, path[128], src[64], dst[64];
	size_t i;
	int d;

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		fail_msg("mkdtemp");
	snprintf(path, sizeof(path), "%s/db/godwit.sqlite", tmpdir);
	config.userdb.backend = "sqlite";
	config.userdb.path = path;
	must(userdb_open(&config.userdb, false, &db, &err), err);
	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		must(db->ops->domain_add(db, domains[i], &err), err);
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		must(db->ops->user_add(db, users[i], "$y$x", &err), err);
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		add_alias(db, aliases[i][0], aliases[i][1]);
	/* d1 -> ... -> d8 -> alice: eight aliases deep, the limit.
	 * e1 -> ... -> e9 -> alice: one too many. */
	for (d = 1; d <= 8; d++) {
		snprintf(src, sizeof(src), "d%d@example.test", d);
		snprintf(dst, sizeof(dst), d < 8 ? "d%d@example.test"
						 : "alice@example.test",
			 d + 1);
		add_alias(db, src, dst);
	}
	for (d = 1; d <= 9; d++) {
		snprintf(src, sizeof(src), "e%d@example.test", d);
		snprintf(dst, sizeof(dst), d < 9 ? "e%d@example.test"
						 : "alice@example.test",
			 d + 1);
		add_alias(db, src, dst);
	}
	userdb_close(&db);

	/* The daemon's view: read-only, as a worker opens it. */
	must(userdb_open(&config.userdb, true, &rodb, &err), err);
	return 0;
}

static int
teardown_db(void **state)
{
	(void)state;
	userdb_close(&rodb);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Sorted, comma-joined: order of expansion is not part of the contract. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
join(char **v, size_t n, char *buf, size_t size)
{
	size_t i;

	buf[0] = '\0';
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_str);
	for (i = 0; i < n; i++) {
		if (i > 0)
			strncat(buf, ",", size - strlen(buf) - 1);
		strncat(buf, v[i], size - strlen(buf) - 1);
	}
}

enum who { ANON, TRUSTED, AUTHED };

struct rcpt_case {
	const char *local;
	const char *domain;
	bool quoted;
	bool literal;
	enum who who;
	int code;		/* 250 accept, else the reply code */
	const char *enh;
	const char *mailboxes;	/* sorted, comma-joined */
	const char *remotes;
};

#define OK(mb, rem) 250, "2.1.5", mb, rem
#define UNKNOWN 550, "5.1.1", "", ""
#define RELAY 554, "5.7.1", "", ""
#define SYNTAX 501, "5.1.3", "", ""

static const struct rcpt_case cases[] = {
	/* ---- open-relay tricks, untrusted client: all refused ---- */
	/* user%other.example@local: '%' is not routing */
	{"user%other.example", "example.test", false, false, ANON, UNKNOWN},
	{"alice%remote.example", "example.test", false, false, ANON, UNKNOWN},
	/* "user@other.example"@local */
	{"user@other.example", "example.test", true, false, ANON, UNKNOWN},
	{"alice@remote.example", "example.test", true, false, ANON, UNKNOWN},
	/* @local:user@other.example: the parser drops the source route */
	{"user", "other.example", false, false, ANON, RELAY},
	/* other.example!user@local (UUCP bang path) */
	{"other.example!user", "example.test", false, false, ANON, UNKNOWN},
	{"remote.example!alice", "example.test", false, false, ANON, UNKNOWN},
	/* address literals are never local */
	{"user", "[192.0.2.1]", false, true, ANON, RELAY},
	{"user", "[IPv6:::1]", false, true, ANON, RELAY},
	{"alice", "[127.0.0.1]", false, true, ANON, RELAY},
	{"postmaster", "[192.0.2.1]", false, true, ANON, RELAY},
	/* remote domain in any case, with a trailing dot */
	{"user", "OTHER.EXAMPLE", false, false, ANON, RELAY},
	{"user", "Other.Example", false, false, ANON, RELAY},
	{"user", "other.example.", false, false, ANON, RELAY},
	/* look-alikes of a local domain */
	{"user", "example.test.evil.org", false, false, ANON, RELAY},
	{"user", "evilexample.test", false, false, ANON, RELAY},
	{"user", "example.tes", false, false, ANON, RELAY},
	{"user", "xample.test", false, false, ANON, RELAY},
	{"alice", "sub.example.test", false, false, ANON, RELAY},
	{"alice", "test", false, false, ANON, RELAY},
	/* postmaster elsewhere is just another remote address */
	{"postmaster", "other.example", false, false, ANON, RELAY},
	/* "+tag" with nothing before it is not the catch-all "" */
	{"+tag", "example.test", false, false, ANON, UNKNOWN},
	/* the tricks against a catch-all domain land in its mailbox */
	{"user%other.example", "catchall.test", false, false, ANON,
	 OK("admin@catchall.test", "")},
	{"user@other.example", "catchall.test", true, false, ANON,
	 OK("admin@catchall.test", "")},
	{"other.example!user", "catchall.test", false, false, ANON,
	 OK("admin@catchall.test", "")},

	/* ---- local users ---- */
	{"alice", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"ALICE", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"Alice", "EXAMPLE.TEST", false, false, ANON,
	 OK("alice@example.test", "")},
	{"alice", "example.test.", false, false, ANON,
	 OK("alice@example.test", "")},
	/* "alice"@ is alice@ (RFC 5321 4.1.2: quoting is not meaning) */
	{"alice", "example.test", true, false, ANON,
	 OK("alice@example.test", "")},
	{"nobody", "example.test", false, false, ANON, UNKNOWN},
	{"alic", "example.test", false, false, ANON, UNKNOWN},
	{"alice.", "example.test", false, false, ANON, UNKNOWN},
	/* sub-addresses */
	{"alice+tag", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"Alice+Tag", "Example.Test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"alice+a+b", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"dave+special", "example.test", false, false, ANON,
	 OK("dave+special@example.test", "")},
	{"dave+other", "example.test", false, false, ANON,
	 OK("dave@example.test", "")},
	{"nobody+tag", "example.test", false, false, ANON, UNKNOWN},
	{"list+foo", "example.test", false, false, ANON,
	 OK("bob@example.test", "")},

	/* ---- aliases ---- */
	{"info", "example.test", false, false, ANON,
	 OK("alice@example.test,bob@example.test", "")},
	{"INFO", "example.test", false, false, ANON,
	 OK("alice@example.test,bob@example.test", "")},
	{"fwd", "example.test", false, false, ANON,
	 OK("", "Some.One@remote.example")},
	{"chain1", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"loop1", "example.test", false, false, ANON, UNKNOWN},
	{"self", "example.test", false, false, ANON, UNKNOWN},
	{"loopmix", "example.test", false, false, ANON,
	 OK("carol@example.test", "")},
	{"dead", "example.test", false, false, ANON, UNKNOWN},
	{"mixed", "example.test", false, false, ANON,
	 OK("alice@example.test", "x@remote.example")},
	{"dup", "example.test", false, false, ANON,
	 OK("alice@example.test,bob@example.test", "")},
	{"tagfwd", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"both", "example.test", false, false, ANON,
	 OK("alice@example.test,bob@example.test", "Some.One@remote.example")},
	{"d1", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"e1", "example.test", false, false, ANON, UNKNOWN},
	{"e2", "example.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"info+tag", "example.test", false, false, ANON,
	 OK("alice@example.test,bob@example.test", "")},
	/* catch-all: after users and aliases, never before */
	{"anything", "catchall.test", false, false, ANON,
	 OK("admin@catchall.test", "")},
	{"admin", "catchall.test", false, false, ANON,
	 OK("admin@catchall.test", "")},

	/* ---- postmaster: always accepted (RFC 5321 4.5.1) ---- */
	{"postmaster", "example.test", false, false, ANON,
	 OK("postmaster@example.test", "")},
	{"PostMaster", "example.test", false, false, ANON,
	 OK("postmaster@example.test", "")},
	{"postmaster", "pm.test", false, false, ANON,
	 OK("alice@example.test", "")},
	{"postmaster", "catchall.test", false, false, ANON,
	 OK("admin@catchall.test", "")},
	/* postmaster of the host name (not a local domain), bare or not:
	 * postmaster@ the first domain (catchall.test: its catch-all) */
	{"postmaster", "", false, false, ANON,
	 OK("admin@catchall.test", "")},
	{"POSTMASTER", "", false, false, ANON,
	 OK("admin@catchall.test", "")},
	{"postmaster", "mx.example.test", false, false, ANON,
	 OK("admin@catchall.test", "")},
	{"PostMaster", "mx.example.test.", false, false, ANON,
	 OK("admin@catchall.test", "")},
	{"alice", "mx.example.test", false, false, ANON, RELAY},
	{"postmaster", "[127.0.0.1]", true, false, ANON, RELAY},
	{"alice", "", false, false, ANON, SYNTAX},
	{"", "example.test", false, false, ANON, SYNTAX},

	/* ---- trusted and authenticated clients may relay ---- */
	{"user", "other.example", false, false, TRUSTED,
	 OK("", "user@other.example")},
	{"User", "OTHER.Example.", false, false, AUTHED,
	 OK("", "User@other.example")},
	{"a b", "other.example", true, false, AUTHED,
	 OK("", "\"a b\"@other.example")},
	{"a\"b", "other.example", true, false, AUTHED,
	 OK("", "\"a\\\"b\"@other.example")},
	{".a", "other.example", true, false, AUTHED,
	 OK("", "\".a\"@other.example")},
	{"user", "[192.0.2.1]", false, true, TRUSTED,
	 OK("", "user@[192.0.2.1]")},
	{"postmaster", "other.example", false, false, AUTHED,
	 OK("", "postmaster@other.example")},
	/* ... but local domains stay local, unknown users stay unknown */
	{"alice", "example.test", false, false, TRUSTED,
	 OK("alice@example.test", "")},
	{"nobody", "example.test", false, false, TRUSTED, UNKNOWN},
	{"user%other.example", "example.test", false, false, AUTHED, UNKNOWN},
	{"user@other.example", "example.test", true, false, TRUSTED, UNKNOWN},
};

static void
test_resolve_table(void **state)
{
	struct recipient_ctx ctx = {
		.db = rodb,
		.hostname = "MX.Example.Test",
		.delimiter = '+',
	};
	char mb[1024], rem[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcpt_case *c = &cases[i];
		struct smtp_mailbox m = {0};
		struct recipient_result r;

		snprintf(m.local, sizeof(m.local), "%s", c->local);
		snprintf(m.domain, sizeof(m.domain), "%s", c->domain);
		m.quoted = c->quoted;
		m.is_literal = c->literal;
		ctx.trusted = c->who == TRUSTED;
		ctx.authenticated = c->who == AUTHED;

		recipient_resolve(&ctx, &m, &r);
		join(r.mailboxes, r.nmailboxes, mb, sizeof(mb));
		join(r.remotes, r.nremotes, rem, sizeof(rem));
		if (r.code != c->code || strcmp(r.enh, c->enh) != 0 ||
		    strcmp(mb, c->mailboxes) != 0 ||
		    strcmp(rem, c->remotes) != 0 ||
		    (r.verdict == RCPT_ACCEPT) != (c->code == 250) ||
		    r.text == NULL)
			fail_msg("row %zu <%s%s%s@%s>: got %d %s [%s] [%s], "
				 "want %d %s [%s] [%s]",
				 i, c->quoted ? "\"" : "", c->local,
				 c->quoted ? "\"" : "", c->domain, r.code,
				 r.enh, mb, rem, c->code, c->enh,
				 c->mailboxes, c->remotes);
		recipient_result_clear(&r);
		assert_null(r.mailboxes);
		assert_null(r.remotes);
	}
}

/* Without a delimiter, "+" is an ordinary character. */
static void
test_no_delimiter(void **state)
{
	struct recipient_ctx ctx = {.db = rodb, .hostname = "mx.example.test"};
	struct smtp_mailbox m = {.local = "alice+tag", .domain = "example.test"};
	struct recipient_result r;

	(void)state;
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_REJECT);
	assert_int_equal(r.code, 550);
	recipient_result_clear(&r);

	strcpy(m.local, "dave+special");
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_ACCEPT);
	assert_int_equal(r.nmailboxes, 1);
	assert_string_equal(r.mailboxes[0], "dave+special@example.test");
	recipient_result_clear(&r);
}

/* Bare <postmaster> when the host name is itself a local domain. */
static void
test_bare_postmaster_local_hostname(void **state)
{
	struct recipient_ctx ctx = {.db = rodb, .hostname = "PM.test."};
	struct smtp_mailbox m = {.local = "postmaster"};
	struct recipient_result r;

	(void)state;
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_ACCEPT);
	assert_int_equal(r.nmailboxes, 1);
	assert_string_equal(r.mailboxes[0], "alice@example.test");
	recipient_result_clear(&r);

	ctx.hostname = NULL;
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_ACCEPT);
	assert_string_equal(r.mailboxes[0], "admin@catchall.test");
	recipient_result_clear(&r);
}

/* The configured postmaster address: used when it resolves to someone,
 * local or remote; otherwise the default; never the host name's own. */
static void
test_configured_postmaster(void **state)
{
	static const struct {
		const char *postmaster;
		const char *mailbox;	/* "" none */
		const char *remote;	/* "" none */
	} rows[] = {
		{"bob@example.test", "bob@example.test", ""},
		{"list@example.test", "bob@example.test", ""},
		{"Ops@Remote.Example", "", "Ops@remote.example"},
		/* nobody there: the default, postmaster@catchall.test */
		{"nobody@example.test", "admin@catchall.test", ""},
		{"postmaster@pm.test", "alice@example.test", ""},
		/* itself: no loop, the default */
		{"postmaster@mx.example.test", "admin@catchall.test", ""},
		{"not an address", "admin@catchall.test", ""},
	};
	struct recipient_ctx ctx = {.db = rodb, .hostname = "mx.example.test"};
	struct smtp_mailbox m = {.local = "postmaster",
				 .domain = "mx.example.test"};
	struct recipient_result r;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ctx.postmaster = rows[i].postmaster;
		recipient_resolve(&ctx, &m, &r);
		if (r.verdict != RCPT_ACCEPT ||
		    r.nmailboxes != (rows[i].mailbox[0] != '\0') ||
		    r.nremotes != (rows[i].remote[0] != '\0') ||
		    (r.nmailboxes > 0 &&
		     strcmp(r.mailboxes[0], rows[i].mailbox) != 0) ||
		    (r.nremotes > 0 &&
		     strcmp(r.remotes[0], rows[i].remote) != 0))
			fail_msg("row %zu (%s): verdict %d, %zu mailboxes "
				 "%s, %zu remotes %s",
				 i, rows[i].postmaster, r.verdict,
				 r.nmailboxes,
				 r.nmailboxes ? r.mailboxes[0] : "",
				 r.nremotes, r.nremotes ? r.remotes[0] : "");
		assert_false(r.unowned);
		recipient_result_clear(&r);
	}
}

/* No postmaster@ anywhere: accepted into the mailbox nobody reads
 * (marked unowned, for config check); no domain at all: 451. */
static int
one_domain_list(struct userdb *db, char ***domains_r, size_t *n_r,
		char **error_r)
{
	(void)db;
	(void)error_r;
	*domains_r = xmalloc(sizeof(**domains_r));
	(*domains_r)[0] = xstrdup("lonely.test");
	*n_r = 1;
	return 0;
}

static int
no_domain_list(struct userdb *db, char ***domains_r, size_t *n_r,
	       char **error_r)
{
	(void)db;
	(void)error_r;
	*domains_r = NULL;
	*n_r = 0;
	return 0;
}

static int
lonely_domain_exists(struct userdb *db, const char *domain)
{
	(void)db;
	return strcmp(domain, "lonely.test") == 0;
}

static int
nobody_exists(struct userdb *db, const char *address)
{
	(void)db;
	(void)address;
	return 0;
}

static int
no_alias(struct userdb *db, const char *source, struct userdb_alias_list *r)
{
	(void)db;
	(void)source;
	r->targets = NULL;
	r->n = 0;
	return 0;
}

static void
test_postmaster_nobody(void **state)
{
	struct userdb_ops ops = {
		.name = "lonely",
		.domain_exists = lonely_domain_exists,
		.user_exists = nobody_exists,
		.alias_lookup = no_alias,
		.domain_list = one_domain_list,
	};
	struct userdb db = {.ops = &ops};
	struct recipient_ctx ctx = {.db = &db, .hostname = "mx.example.test"};
	struct smtp_mailbox m = {.local = "postmaster"};
	struct recipient_result r;

	(void)state;
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_ACCEPT);
	assert_true(r.unowned);
	assert_int_equal(r.nmailboxes, 1);
	assert_string_equal(r.mailboxes[0], "postmaster@lonely.test");
	recipient_result_clear(&r);

	ops.domain_list = no_domain_list;
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_TEMPFAIL);
	assert_int_equal(r.code, 451);
	assert_null(r.mailboxes);
	recipient_result_clear(&r);
}

static void
test_domain_is_local(void **state)
{
	static const struct {
		const char *domain;
		int want;
	} rows[] = {
		{"example.test", 1},
		{"EXAMPLE.test", 1},
		{"example.test.", 1},
		{"catchall.test", 1},
		{"example.test.evil.org", 0},
		{"evilexample.test", 0},
		{"other.example", 0},
		{"[192.0.2.1]", 0},
		{"", 0},
		{".", 0},
	};
	struct recipient_ctx ctx = {.db = rodb};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (recipient_domain_is_local(&ctx, rows[i].domain) !=
		    rows[i].want)
			fail_msg("row %zu: %s", i, rows[i].domain);
}

/*
 * A backend whose lookups fail after a number of successful calls:
 * a database error anywhere in the resolution is a 451, never a guess.
 */
static int fail_after;

static int
flaky(void)
{
	return fail_after-- > 0 ? 0 : -1;
}

static int
flaky_domain_exists(struct userdb *db, const char *domain)
{
	(void)db;
	if (flaky() < 0)
		return -1;
	return strcmp(domain, "example.test") == 0;
}

static int
flaky_user_exists(struct userdb *db, const char *address)
{
	(void)db;
	if (flaky() < 0)
		return -1;
	return strcmp(address, "alice@example.test") == 0;
}

static int
flaky_alias_lookup(struct userdb *db, const char *source,
		   struct userdb_alias_list *r)
{
	(void)db;
	r->targets = NULL;
	r->n = 0;
	if (flaky() < 0)
		return -1;
	if (strcmp(source, "info@example.test") != 0)
		return 0;
	r->targets = xmalloc(2 * sizeof(*r->targets));
	r->targets[0] = xstrdup("x@remote.example");
	r->targets[1] = xstrdup("alice@example.test");
	r->n = 2;
	return 1;
}

static void
test_db_errors_tempfail(void **state)
{
	static const struct userdb_ops flaky_ops = {
		.name = "flaky",
		.domain_exists = flaky_domain_exists,
		.user_exists = flaky_user_exists,
		.alias_lookup = flaky_alias_lookup,
	};
	struct userdb db = {.ops = &flaky_ops};
	struct recipient_ctx ctx = {.db = &db, .delimiter = '+'};
	struct smtp_mailbox m = {.local = "info+x", .domain = "example.test"};
	struct recipient_result r;
	int n, calls = -1;

	(void)state;
	/* Learn how many lookups a full resolution takes ... */
	fail_after = 1000;
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_ACCEPT);
	assert_int_equal(r.nmailboxes, 1);
	assert_int_equal(r.nremotes, 1);
	recipient_result_clear(&r);
	calls = 1000 - fail_after;
	assert_true(calls >= 5);
	/* ... then fail each one in turn. */
	for (n = 0; n < calls; n++) {
		fail_after = n;
		recipient_resolve(&ctx, &m, &r);
		assert_int_equal(r.verdict, RCPT_TEMPFAIL);
		assert_int_equal(r.code, 451);
		assert_string_equal(r.enh, "4.3.0");
		assert_null(r.mailboxes);
		assert_null(r.remotes);
		recipient_result_clear(&r);
	}
	/* Relaying for a trusted client needs the domain lookup too. */
	fail_after = 0;
	ctx.trusted = true;
	strcpy(m.domain, "other.example");
	recipient_resolve(&ctx, &m, &r);
	assert_int_equal(r.verdict, RCPT_TEMPFAIL);
	recipient_result_clear(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_table),
		cmocka_unit_test(test_no_delimiter),
		cmocka_unit_test(test_bare_postmaster_local_hostname),
		cmocka_unit_test(test_configured_postmaster),
		cmocka_unit_test(test_postmaster_nobody),
		cmocka_unit_test(test_domain_is_local),
		cmocka_unit_test(test_db_errors_tempfail),
	};

	return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
