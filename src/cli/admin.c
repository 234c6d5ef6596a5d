/*
 * The user database administration commands (godwit domain|user|alias),
 * run by the operator on the server against the database directly.
 *
 * Input is checked strictly here, before it reaches the database: a user
 * or alias with a malformed or mixed-case address could never be found by
 * the lookups the daemon makes.
 */
#include <crypt.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/admin.h"
#include "daemon/config.h"
#include "store/datadir.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/sasl.h"
#include "store/password.h"
#include "store/userdb.h"

#define PASSWORD_MAX 1024	/* bytes, without the newline */
#define LOCAL_MAX 64		/* RFC 5321 4.5.3.1.1 */
#define DOMAIN_MAX 253		/* a name as DNS carries it, no root dot */
#define ADDRESS_MAX 254		/* RFC 3696 erratum: what fits a path */

static const char usage_domain_text[] =
	"usage: godwit domain add DOMAIN\n"
	"       godwit domain del DOMAIN\n"
	"       godwit domain list\n";
static const char usage_user_text[] =
	"usage: godwit user add ADDRESS [--password-stdin]\n"
	"       godwit user del ADDRESS\n"
	"       godwit user list [DOMAIN]\n"
	"       godwit user passwd ADDRESS [--password-stdin]\n"
	"       godwit user import FILE|- [--create-domains] [--update]\n";
static const char usage_alias_text[] =
	"usage: godwit alias add SOURCE TARGET   (SOURCE @DOMAIN: catch-all)\n"
	"       godwit alias del SOURCE [TARGET]\n"
	"       godwit alias list [DOMAIN]\n";

static int
usage(const char *text)
{
	fputs(text, stderr);
	return 2;
}

static int __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("godwit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Prints a backend's error and frees it. */
static int
fail_free(char **error)
{
	fail("%s", *error != NULL ? *error : "unknown error");
	xfree(error);
	return 1;
}

/* ---- input checks ---------------------------------------------------- */

/*
 * A host name as we accept it for a mail domain: LDH labels of 1..63
 * octets, at most 253 in all, the last label not all digits (that would
 * be an IPv4 address). Internationalised names go in their xn-- form.
 * s is lower-cased already.
 */
static bool
valid_domain(const char *s, const char **why_r)
{
	size_t len = strlen(s), label = 0;
	bool digits = true;
	const char *p;

	*why_r = "not a valid domain name";
	if (len == 0 || len > DOMAIN_MAX)
		return false;
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			digits = true;
			continue;
		}
		if (c >= 0x80) {
			*why_r = "use the ASCII (xn--) form of the domain";
			return false;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (c < '0' || c > '9')
			digits = false;
		if (++label > 63)
			return false;
	}
	return label > 0 && p[-1] != '-' && !digits;
}

/*
 * A dot-atom local part (RFC 5322 3.2.3), ASCII only. Our own users'
 * names also may not hold '/': the name becomes a directory under mail/.
 */
static bool
valid_local(const char *s, bool ours)
{
	size_t len = strlen(s);
	const char *p;

	if (len == 0 || len > LOCAL_MAX || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (p[1] == '.')
				return false;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		if (c == '\0' || strchr("!#$%&'*+-/=?^_`{|}~", c) == NULL)
			return false;
		if (ours && c == '/')
			return false;
	}
	return true;
}

/* A DOMAIN argument: lower-cased, one trailing dot dropped. */
static char *
parse_domain(const char *arg)
{
	const char *why;
	char *d = xstrdup(arg);
	size_t len = strlen(d);

	ascii_lower(d);
	if (len > 1 && d[len - 1] == '.')
		d[len - 1] = '\0';
	if (!valid_domain(d, &why)) {
		fail("%s: %s", arg, why);
		free(d);
		return NULL;
	}
	return d;
}

/*
 * An ADDRESS argument, local@domain (or @domain when catchall). The
 * domain is lower-cased; so is the local part when lower_local, which is
 * how every address in one of our domains is stored. On error returns
 * NULL with *why_r a malloc'd message naming arg.
 */
static char *
normalise_address(const char *arg, bool catchall, bool ours, bool lower_local,
		  char **why_r)
{
	const char *at = strrchr(arg, '@'), *why;
	char *local, *domain, *r;
	size_t len;

	*why_r = NULL;
	if (at == NULL) {
		*why_r = xasprintf("%s: not an address (expected local@domain)",
				   arg);
		return NULL;
	}
	if (strlen(arg) > ADDRESS_MAX) {
		*why_r = xasprintf("%s: address too long (at most %d octets)",
				   arg, ADDRESS_MAX);
		return NULL;
	}
	local = xstrndup(arg, (size_t)(at - arg));
	domain = xstrdup(at + 1);
	ascii_lower(domain);
	if ((len = strlen(domain)) > 1 && domain[len - 1] == '.')
		domain[len - 1] = '\0';
	if (lower_local)
		ascii_lower(local);
	r = NULL;
	if (!valid_domain(domain, &why))
		*why_r = xasprintf("%s: %s", arg, why);
	else if (local[0] == '\0' && !catchall)
		*why_r = xasprintf("%s: empty local part", arg);
	else if (local[0] != '\0' && !valid_local(local, ours))
		*why_r = xasprintf("%s: local part must be letters, digits, "
				   "dots and !#$%%&'*+-=?^_`{|}~%s (no "
				   "leading, trailing or double dots)",
				   arg, ours ? "" : "/");
	else
		r = xasprintf("%s@%s", local, domain);
	free(local);
	free(domain);
	return r;
}

/* The same, printing the error. */
static char *
parse_address(const char *arg, bool catchall, bool ours, bool lower_local)
{
	char *why = NULL, *r;

	if ((r = normalise_address(arg, catchall, ours, lower_local, &why)) ==
	    NULL)
		fail_free(&why);
	return r;
}

/* ---- opening the database ---------------------------------------------- */

/*
 * Before a command writes to the data directory: the whole layout, as
 * `godwit serve` makes it (datadir.c), so that the database this command
 * may create (and its directory) are root's, readable by the daemon
 * user's group, whichever of the two runs first.
 */
static int
prepare_layout(const struct config *config)
{
	struct datadir_ids ids;
	char *err = NULL;

	if (datadir_ids(config, &ids, &err) < 0) {
		fprintf(stderr, "godwit: warning: %s; what this command makes "
				"stays root's\n",
			err);
		xfree(&err);
		ids.drop = false;
		ids.uid = geteuid();
		ids.gid = getegid();
	}
	if (datadir_prepare(config, &ids, &err) < 0)
		return fail_free(&err);
	return 0;
}

static struct userdb *
open_db(const struct config *config, bool readonly)
{
	struct userdb *db;
	char *err = NULL;

	if (!readonly && prepare_layout(config) != 0)
		return NULL;
	if (userdb_open(config, readonly, &db, &err) < 0) {
		fail_free(&err);
		return NULL;
	}
	return db;
}

/* ---- passwords ----------------------------------------------------------- */

/*
 * One line from fd, byte by byte so that nothing past the newline is
 * consumed and no copy lingers in a stdio buffer. Returns the length
 * without the newline (and a CR before it), or -1.
 */
static int
read_line(int fd, char *buf, size_t size, const char **error_r)
{
	size_t n = 0;
	ssize_t r;
	char c;

	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = strerror(errno);
			return -1;
		}
		if (r == 0 || c == '\n')
			break;
		if (c == '\0') {
			*error_r = "the password contains a NUL byte";
			return -1;
		}
		if (n + 1 >= size) {
			*error_r = "the password is too long";
			return -1;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static struct termios tty_saved;

/* Puts the terminal's echo back before dying of the signal. */
static void
tty_restore_and_die(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
read_tty(const char *prompt, char *buf, size_t size, const char **error_r)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
	struct sigaction sa, old[sizeof(sigs) / sizeof(sigs[0])];
	struct termios t;
	size_t i;
	int r;

	if (tcgetattr(STDIN_FILENO, &tty_saved) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_restore_and_die;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old[i]);

	t = tty_saved;
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	r = read_line(STDIN_FILENO, buf, size, error_r);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &old[i], NULL);
	return r;
}

/*
 * Every stored form of one password (see userdb.h). scram and cram may
 * be NULL: not possible, or not wanted.
 */
struct secrets {
	char *hash;
	char *scram;
	char *cram;
};

static void
wipe_free(char **p)
{
	if (*p == NULL)
		return;
	explicit_bzero(*p, strlen(*p));
	xfree(p);
}

static void
secrets_free(struct secrets *sc)
{
	wipe_free(&sc->hash);
	wipe_free(&sc->scram);
	wipe_free(&sc->cram);
}

/* SCRAM needs a printable US-ASCII password (no SASLprep, see sasl.h). */
static bool
scram_possible(const char *password)
{
	const unsigned char *p;

	for (p = (const unsigned char *)password; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/*
 * Derives every form of password for address. A password SCRAM cannot
 * take gets no SCRAM secret and a note on stderr (prefix: what to print
 * before it, e.g. "FILE:LINE: "); the CRAM-MD5 secret is kept only when
 * auth.cram_md5 is on, because it is as good as the password itself.
 */
static int
secrets_make(const struct config *config, const char *address,
	     const char *password, const char *prefix, struct secrets *r,
	     const char **error_r)
{
	struct sasl_scram_secret sec;

	memset(r, 0, sizeof(*r));
	if ((r->hash = password_hash(password, error_r)) == NULL)
		return -1;
	if (scram_possible(password)) {
		if (sasl_scram_generate(password, &sec) < 0 ||
		    (r->scram = sasl_scram_format(&sec)) == NULL) {
			explicit_bzero(&sec, sizeof(sec));
			*error_r = "cannot derive the SCRAM-SHA-256 secret";
			secrets_free(r);
			return -1;
		}
		explicit_bzero(&sec, sizeof(sec));
	} else {
		fflush(stdout);
		fprintf(stderr,
			"%snote: the password of %s is not printable ASCII, "
			"so it cannot be used with SCRAM-SHA-256 (PLAIN and "
			"LOGIN work)\n",
			prefix, address);
	}
	if (config->auth_cram_md5)
		r->cram = xstrdup(password);
	return 0;
}

/*
 * The new password: asked twice on a terminal, else (or with
 * --password-stdin) exactly one line from standard input. Returns 0 with
 * *r filled in, or -1 after printing why.
 */
static int
new_password_secrets(const struct config *config, const char *address,
		     bool from_stdin, struct secrets *r)
{
	char *pw = xmalloc(PASSWORD_MAX + 2), *again = NULL;
	const char *err = NULL;
	int n, ret = -1;

	memset(r, 0, sizeof(*r));
	if (!from_stdin && isatty(STDIN_FILENO)) {
		again = xmalloc(PASSWORD_MAX + 2);
		if ((n = read_tty("Password: ", pw, PASSWORD_MAX + 2, &err)) <
			    0 ||
		    (n > 0 && read_tty("Retype password: ", again,
				       PASSWORD_MAX + 2, &err) < 0))
			goto out;
		if (n > 0 && strcmp(pw, again) != 0) {
			err = "the passwords do not match";
			goto out;
		}
	} else if ((n = read_line(STDIN_FILENO, pw, PASSWORD_MAX + 2, &err)) <
		   0)
		goto out;
	if (n == 0) {
		err = "empty password refused";
		goto out;
	}
	ret = secrets_make(config, address, pw, "godwit: ", r, &err);
out:
	if (ret < 0)
		fail("%s", err != NULL ? err : "cannot read the password");
	explicit_bzero(pw, PASSWORD_MAX + 2);
	free(pw);
	if (again != NULL) {
		explicit_bzero(again, PASSWORD_MAX + 2);
		free(again);
	}
	return ret;
}

/*
 * Adds a user with all its secrets. The backend adds the user with the
 * hash first; should storing the rest fail, the user is removed again so
 * that "add" either happens whole or not at all.
 */
static int
store_new_user(struct userdb *db, const char *address,
	       const struct secrets *sc, char **err_r)
{
	char *err2 = NULL;

	if (db->ops->user_add(db, address, sc->hash, err_r) < 0)
		return -1;
	if (sc->scram == NULL && sc->cram == NULL)
		return 0;
	if (db->ops->user_set_secrets(db, address, sc->hash, sc->scram,
				      sc->cram, err_r) < 0) {
		if (db->ops->user_del(db, address, &err2) < 0)
			free(err2);
		return -1;
	}
	return 0;
}

/* ---- the commands --------------------------------------------------------- */

static void
print_list(char ***list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%s\n", (*list)[i]);
	fflush(stdout);
	userdb_string_list_free(list, n);
}

/* "user list [DOMAIN]" and "alias list [DOMAIN]". */
static int
list_command(const struct config *config, int argc, char **argv,
	     const char *usage_text, bool aliases)
{
	struct userdb *db;
	char *domain = NULL, *err = NULL, **v = NULL;
	size_t n = 0;
	int r = 1, lr;

	if (argc > 3)
		return usage(usage_text);
	if (argc == 3 && (domain = parse_domain(argv[2])) == NULL)
		return 1;
	if ((db = open_db(config, true)) != NULL) {
		lr = aliases ? db->ops->alias_list(db, domain, &v, &n, &err)
			     : db->ops->user_list(db, domain, &v, &n, &err);
		if (lr < 0)
			fail_free(&err);
		else {
			print_list(&v, n);
			r = 0;
		}
	}
	userdb_close(&db);
	free(domain);
	return r;
}

int
admin_domain(const struct config *config, int argc, char **argv)
{
	struct userdb *db = NULL;
	char *domain = NULL, *err = NULL, **v = NULL;
	size_t n = 0;
	int r = 1;

	if (argc < 2)
		return usage(usage_domain_text);
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return usage(usage_domain_text);
		if ((db = open_db(config, true)) == NULL)
			return 1;
		if (db->ops->domain_list(db, &v, &n, &err) < 0)
			r = fail_free(&err);
		else {
			print_list(&v, n);
			r = 0;
		}
		userdb_close(&db);
		return r;
	}
	if ((strcmp(argv[1], "add") != 0 && strcmp(argv[1], "del") != 0) ||
	    argc != 3)
		return usage(usage_domain_text);
	if ((domain = parse_domain(argv[2])) == NULL)
		return 1;
	if ((db = open_db(config, false)) == NULL)
		goto out;
	if (strcmp(argv[1], "add") == 0) {
		if (db->ops->domain_add(db, domain, &err) < 0)
			goto out;
		printf("added domain %s\n", domain);
	} else {
		if (db->ops->domain_del(db, domain, &err) < 0)
			goto out;
		printf("deleted domain %s\n", domain);
	}
	r = 0;
out:
	if (err != NULL)
		r = fail_free(&err);
	userdb_close(&db);
	free(domain);
	return r;
}

/* "user add|passwd ADDRESS [--password-stdin]": the option anywhere. */
static int
address_and_flag(int argc, char **argv, const char **address_r,
		 bool *from_stdin_r)
{
	int i;

	*address_r = NULL;
	*from_stdin_r = false;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			*from_stdin_r = true;
		else if (argv[i][0] == '-' || *address_r != NULL)
			return -1;
		else
			*address_r = argv[i];
	}
	return *address_r != NULL ? 0 : -1;
}

static int
user_add_or_passwd(const struct config *config, struct userdb *db,
		   const char *address, bool add, bool from_stdin,
		   char **err_r)
{
	struct secrets sc;
	const char *domain = strrchr(address, '@') + 1;
	int r;

	/* Everything that can be checked is, before asking for a password. */
	if (add) {
		if ((r = db->ops->domain_exists(db, domain)) <= 0) {
			*err_r = r < 0 ? xstrdup("database lookup failed")
				       : xasprintf("domain %s is not local: "
						   "godwit domain add %s",
						   domain, domain);
			return -1;
		}
		if ((r = db->ops->user_exists(db, address)) != 0) {
			*err_r = r < 0 ? xstrdup("database lookup failed")
				       : xasprintf("user %s already exists",
						   address);
			return -1;
		}
	} else if ((r = db->ops->user_exists(db, address)) <= 0) {
		*err_r = r < 0 ? xstrdup("database lookup failed")
			       : xasprintf("user %s does not exist", address);
		return -1;
	}
	if (new_password_secrets(config, address, from_stdin, &sc) < 0)
		return -1;
	r = add ? store_new_user(db, address, &sc, err_r)
		: db->ops->user_set_secrets(db, address, sc.hash, sc.scram,
					    sc.cram, err_r);
	secrets_free(&sc);
	return r;
}

/* ---- user import (Dovecot passwd-file) ------------------------------------ */

#define IMPORT_LINE_MAX 4096	/* octets, without the newline */

struct import_opts {
	bool create_domains;
	bool update;
};

/*
 * The shapes of the crypt hashes we know well enough to tell a truncated
 * one: the length of the part after the last '$', or of the whole hash.
 */
static const struct {
	const char *prefix;
	size_t tail;
	size_t total;
} crypt_shapes[] = {
	{"$y$", 43, 0},	 {"$gy$", 43, 0}, {"$7$", 43, 0},
	{"$6$", 86, 0},	 {"$5$", 43, 0},  {"$1$", 22, 0},
	{"$2a$", 0, 60}, {"$2b$", 0, 60}, {"$2y$", 0, 60},
};

/*
 * NULL if hash is a crypt string libcrypt can verify, else why not.
 * *legacy_r tells a weak but working method (DES, MD5-crypt).
 */
static const char *
check_crypt_hash(const char *hash, bool *legacy_r)
{
	const unsigned char *p;
	const char *last;
	size_t i, len = strlen(hash);

	*legacy_r = false;
	for (p = (const unsigned char *)hash; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return "not a crypt hash (unexpected character)";
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK:
		break;
	case CRYPT_SALT_METHOD_LEGACY:
	case CRYPT_SALT_TOO_CHEAP:
		*legacy_r = true;
		break;
	case CRYPT_SALT_METHOD_DISABLED:
		return "this crypt method is disabled in libcrypt";
	default:
		return "not a crypt hash libcrypt knows";
	}
	/* DES and BSDi DES ("_"): libcrypt takes any two salt characters,
	 * so "secret" would pass as a DES hash without this. */
	if (hash[0] != '$' && len != (hash[0] == '_' ? 20 : 13))
		return "not a crypt hash libcrypt knows";
	for (i = 0; i < sizeof(crypt_shapes) / sizeof(crypt_shapes[0]); i++) {
		if (strncmp(hash, crypt_shapes[i].prefix,
			    strlen(crypt_shapes[i].prefix)) != 0)
			continue;
		last = strrchr(hash, '$') + 1;
		if ((crypt_shapes[i].total != 0 &&
		     len != crypt_shapes[i].total) ||
		    (crypt_shapes[i].tail != 0 &&
		     strlen(last) != crypt_shapes[i].tail))
			return "truncated or malformed crypt hash";
	}
	return NULL;
}

/* Dovecot's schemes whose hash is a crypt string, and its prefixes. */
static const struct {
	const char *scheme;
	const char *prefixes[3];	/* NULL-terminated; none: any */
} crypt_schemes[] = {
	{"SHA512-CRYPT", {"$6$"}},
	{"SHA256-CRYPT", {"$5$"}},
	{"BLF-CRYPT", {"$2y$", "$2b$", "$2a$"}},
	{"CRYPT", {NULL}},
};

/*
 * One user's line, split at the first two ':'. Fills in *address_r and
 * either *hash_r (a crypt hash as it is) or *plain_r (a pointer into
 * line). Returns 0, or -1 with *why_r (malloc'd).
 */
static int
import_parse(char *line, char **address_r, const char **hash_r,
	     const char **plain_r, bool *legacy_r, char **why_r)
{
	char *user = line, *pw, *end;
	const char *scheme = NULL, *why;
	size_t i, j, slen = 0;
	bool ok;

	*address_r = NULL;
	*hash_r = *plain_r = NULL;
	*legacy_r = false;
	if ((pw = strchr(line, ':')) == NULL) {
		*why_r = xstrdup("expected user@domain:{SCHEME}password");
		return -1;
	}
	*pw++ = '\0';
	if ((end = strchr(pw, ':')) != NULL)
		*end = '\0';	/* uid, gid, home ... are not ours */
	if ((*address_r = normalise_address(user, false, true, true,
					    why_r)) == NULL)
		return -1;
	if (pw[0] == '{') {
		if ((end = strchr(pw, '}')) == NULL) {
			*why_r = xstrdup("unterminated {SCHEME}");
			goto fail;
		}
		scheme = pw + 1;
		slen = (size_t)(end - scheme);
		pw = end + 1;
	}
	if (pw[0] == '\0') {
		*why_r = xstrdup("empty password");
		goto fail;
	}
	if (scheme != NULL && ((slen == 5 && strncasecmp(scheme, "PLAIN",
							   5) == 0) ||
			       (slen == 9 &&
				strncasecmp(scheme, "CLEARTEXT", 9) == 0))) {
		if (strlen(pw) > PASSWORD_MAX) {
			*why_r = xasprintf("password too long (at most %d "
					   "octets)",
					   PASSWORD_MAX);
			goto fail;
		}
		*plain_r = pw;
		return 0;
	}
	if (scheme != NULL) {
		for (i = 0; i < sizeof(crypt_schemes) / sizeof(crypt_schemes[0]);
		     i++)
			if (strlen(crypt_schemes[i].scheme) == slen &&
			    strncasecmp(scheme, crypt_schemes[i].scheme,
					slen) == 0)
				break;
		if (i == sizeof(crypt_schemes) / sizeof(crypt_schemes[0])) {
			*why_r = xasprintf(
				"unsupported password scheme {%.*s} (use "
				"SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, CRYPT "
				"or PLAIN)",
				(int)(slen > 32 ? 32 : slen), scheme);
			goto fail;
		}
		ok = crypt_schemes[i].prefixes[0] == NULL;
		for (j = 0; j < 3 && crypt_schemes[i].prefixes[j] != NULL; j++)
			if (strncmp(pw, crypt_schemes[i].prefixes[j],
				    strlen(crypt_schemes[i].prefixes[j])) == 0)
				ok = true;
		if (!ok) {
			*why_r = xasprintf("{%s} hash must start with %s",
					   crypt_schemes[i].scheme,
					   crypt_schemes[i].prefixes[0]);
			goto fail;
		}
	}
	if ((why = check_crypt_hash(pw, legacy_r)) != NULL) {
		*why_r = xstrdup(why);
		goto fail;
	}
	*hash_r = pw;
	return 0;
fail:
	xfree(address_r);
	return -1;
}

enum import_result { IMPORTED, SKIPPED, FAILED };

static enum import_result
import_line(const struct config *config, struct userdb *db, char *line,
	    const struct import_opts *o, const char *where)
{
	struct secrets sc = {0};
	char *address = NULL, *why = NULL;
	const char *hash, *plain, *domain, *err = NULL;
	enum import_result res = FAILED;
	bool legacy;
	int r;

	if (import_parse(line, &address, &hash, &plain, &legacy, &why) < 0)
		goto out;
	domain = strrchr(address, '@') + 1;
	if ((r = db->ops->domain_exists(db, domain)) < 0) {
		why = xstrdup("database lookup failed");
		goto out;
	}
	if (r == 0 && !o->create_domains) {
		why = xasprintf("domain %s is not local: godwit domain add %s "
				"(or import with --create-domains)",
				domain, domain);
		goto out;
	}
	if (r == 0) {
		if (db->ops->domain_add(db, domain, &why) < 0)
			goto out;
		printf("added domain %s\n", domain);
	}
	if ((r = db->ops->user_exists(db, address)) < 0) {
		why = xstrdup("database lookup failed");
		goto out;
	}
	if (r > 0 && !o->update) {
		fflush(stdout);
		fprintf(stderr, "%s: user %s already exists, skipped "
				"(--update replaces its password)\n",
			where, address);
		res = SKIPPED;
		goto out;
	}
	if (plain != NULL) {
		if (secrets_make(config, address, plain, where, &sc, &err) <
		    0) {
			why = xstrdup(err);
			goto out;
		}
	} else
		sc.hash = xstrdup(hash);
	if (r == 0 ? store_new_user(db, address, &sc, &why) < 0
		   : db->ops->user_set_secrets(db, address, sc.hash, sc.scram,
					       sc.cram, &why) < 0)
		goto out;
	if (legacy) {
		fflush(stdout);
		fprintf(stderr, "%s: note: %s has a weak legacy hash; have "
				"the password changed\n",
			where, address);
	}
	res = IMPORTED;
out:
	if (res == FAILED) {
		fflush(stdout);
		fprintf(stderr, "%s: %s\n", where,
			why != NULL ? why : "unknown error");
	}
	free(why);
	free(address);
	secrets_free(&sc);
	return res;
}

/*
 * One line of at most IMPORT_LINE_MAX octets into buf (IMPORT_LINE_MAX +
 * 1 octets), newline and a CR before it removed. Returns 1 with a line,
 * 0 at the end, -1 for a line too long or holding NUL (the rest of it
 * is consumed, so the next call reads the next line).
 */
static int
import_read_line(FILE *fp, char *buf, const char **why_r)
{
	size_t n = 0;
	int c;
	bool too_long = false, nul = false;

	while ((c = getc(fp)) != EOF && c != '\n') {
		if (c == '\0')
			nul = true;
		else if (n >= IMPORT_LINE_MAX)
			too_long = true;
		else
			buf[n++] = (char)c;
	}
	if (c == EOF && n == 0 && !too_long && !nul)
		return 0;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (too_long || nul) {
		*why_r = too_long ? "line too long" : "NUL byte in line";
		return -1;
	}
	return 1;
}

/* "user import FILE|- [--create-domains] [--update]" */
static int
user_import(const struct config *config, int argc, char **argv)
{
	struct import_opts o = {0};
	struct userdb *db = NULL;
	const char *file = NULL, *name, *why;
	char *buf = NULL, *iobuf = NULL, *where;
	size_t lineno = 0, imported = 0, skipped = 0, failed = 0;
	FILE *fp;
	int i, r, rc = 1;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--create-domains") == 0)
			o.create_domains = true;
		else if (strcmp(argv[i], "--update") == 0)
			o.update = true;
		else if ((argv[i][0] == '-' && argv[i][1] != '\0') ||
			 file != NULL)
			return usage(usage_user_text);
		else
			file = argv[i];
	}
	if (file == NULL)
		return usage(usage_user_text);
	/* stdin through a FILE of our own, so that the buffer is ours. */
	if (strcmp(file, "-") == 0) {
		name = "(stdin)";
		if ((i = dup(STDIN_FILENO)) < 0 ||
		    (fp = fdopen(i, "r")) == NULL) {
			if (i >= 0)
				close(i);
			return fail("standard input: %s", strerror(errno));
		}
	} else if ((fp = fopen(file, "re")) == NULL)
		return fail("%s: %s", file, strerror(errno));
	else
		name = file;
	/* {PLAIN} lines are passwords: keep stdio's copy where it is wiped. */
	iobuf = xmalloc(BUFSIZ);
	setvbuf(fp, iobuf, _IOFBF, BUFSIZ);
	if ((db = open_db(config, false)) == NULL)
		goto out;
	buf = xmalloc(IMPORT_LINE_MAX + 1);
	while ((r = import_read_line(fp, buf, &why)) != 0) {
		lineno++;
		where = xasprintf("%s:%zu", name, lineno);
		if (r < 0) {
			fflush(stdout);
			fprintf(stderr, "%s: %s\n", where, why);
			failed++;
		} else if (buf[strspn(buf, " \t")] != '\0' &&
			   buf[strspn(buf, " \t")] != '#') {
			switch (import_line(config, db, buf, &o, where)) {
			case IMPORTED:
				imported++;
				break;
			case SKIPPED:
				skipped++;
				break;
			case FAILED:
				failed++;
				break;
			}
		}
		explicit_bzero(buf, IMPORT_LINE_MAX + 1);
		free(where);
	}
	if (ferror(fp)) {
		fail("%s: %s", name, strerror(errno));
		failed++;
	}
	printf("imported %zu users, skipped %zu\n", imported,
	       skipped + failed);
	rc = failed > 0 ? 1 : 0;
out:
	userdb_close(&db);
	fclose(fp);
	explicit_bzero(iobuf, BUFSIZ);
	free(iobuf);
	free(buf);
	return rc;
}

int
admin_user(const struct config *config, int argc, char **argv)
{
	struct userdb *db = NULL;
	const char *arg;
	char *address = NULL, *err = NULL;
	bool from_stdin, add;
	int r = 1;

	if (argc < 2)
		return usage(usage_user_text);
	if (strcmp(argv[1], "list") == 0)
		return list_command(config, argc, argv, usage_user_text, false);
	if (strcmp(argv[1], "import") == 0)
		return user_import(config, argc, argv);
	if (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "passwd") == 0) {
		add = strcmp(argv[1], "add") == 0;
		if (address_and_flag(argc, argv, &arg, &from_stdin) < 0)
			return usage(usage_user_text);
		if ((address = parse_address(arg, false, true, true)) == NULL)
			return 1;
		if ((db = open_db(config, false)) == NULL)
			goto out;
		if (user_add_or_passwd(config, db, address, add, from_stdin,
				       &err) < 0)
			goto out;
		printf(add ? "added user %s\n" : "changed password of %s\n",
		       address);
		r = 0;
	} else if (strcmp(argv[1], "del") == 0) {
		if (argc != 3)
			return usage(usage_user_text);
		if ((address = parse_address(argv[2], false, true, true)) == NULL)
			return 1;
		if ((db = open_db(config, false)) == NULL)
			goto out;
		if (db->ops->user_del(db, address, &err) < 0)
			goto out;
		/* Mail is not thrown away by a typo in a user name. */
		printf("deleted user %s (the mailbox under %s/mail/ is kept)\n",
		       address,
		       config->data_dir != NULL ? config->data_dir : ".");
		r = 0;
	} else
		return usage(usage_user_text);
out:
	if (err != NULL)
		r = fail_free(&err);
	userdb_close(&db);
	free(address);
	return r;
}

/*
 * An alias target: stored lower-cased when its domain is ours (so that it
 * matches a user), with the local part as given when it is remote (the
 * other side may care about case).
 */
static char *
parse_target(struct userdb *db, const char *arg, char **err_r)
{
	char *t = parse_address(arg, false, false, false);
	int r;

	if (t == NULL)
		return NULL;
	if ((r = db->ops->domain_exists(db, strrchr(t, '@') + 1)) < 0) {
		*err_r = xstrdup("database lookup failed");
		free(t);
		return NULL;
	}
	if (r > 0)
		ascii_lower(t);
	return t;
}

/*
 * A local target that is no one yet is allowed (the user may come next),
 * but mail to it would be dropped, so say so.
 */
static void
warn_dangling(struct userdb *db, const char *target)
{
	struct userdb_alias_list l;

	if (db->ops->domain_exists(db, strrchr(target, '@') + 1) != 1 ||
	    db->ops->user_exists(db, target) != 0)
		return;
	if (db->ops->alias_lookup(db, target, &l) != 0) {
		userdb_alias_list_free(&l);
		return;
	}
	fflush(stdout);
	fprintf(stderr, "godwit: warning: %s is neither a user nor an alias "
			"yet; mail for it will be dropped until it is\n",
		target);
}

int
admin_alias(const struct config *config, int argc, char **argv)
{
	struct userdb *db = NULL;
	char *source = NULL, *target = NULL, *err = NULL;
	int r = 1;

	if (argc < 2)
		return usage(usage_alias_text);
	if (strcmp(argv[1], "list") == 0)
		return list_command(config, argc, argv, usage_alias_text, true);
	if (strcmp(argv[1], "add") == 0) {
		if (argc != 4)
			return usage(usage_alias_text);
	} else if (strcmp(argv[1], "del") == 0) {
		if (argc != 3 && argc != 4)
			return usage(usage_alias_text);
	} else
		return usage(usage_alias_text);

	if ((source = parse_address(argv[2], true, true, true)) == NULL)
		return 1;
	if ((db = open_db(config, false)) == NULL)
		goto out;
	if (argc == 4 && (target = parse_target(db, argv[3], &err)) == NULL)
		goto out;
	if (strcmp(argv[1], "add") == 0) {
		if (strcmp(source, target) == 0) {
			err = xasprintf("%s: an alias cannot point to itself",
					source);
			goto out;
		}
		if (db->ops->alias_add(db, source, target, &err) < 0)
			goto out;
		printf("added alias %s -> %s\n", source, target);
		warn_dangling(db, target);
	} else {
		if (db->ops->alias_del(db, source, target, &err) < 0)
			goto out;
		if (target != NULL)
			printf("deleted alias %s -> %s\n", source, target);
		else
			printf("deleted alias %s\n", source);
	}
	r = 0;
out:
	if (err != NULL)
		r = fail_free(&err);
	userdb_close(&db);
	free(source);
	free(target);
	return r;
}
