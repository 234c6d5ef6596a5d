/*
 * The user database administration commands (godwit domain|user|alias),
 * run by the operator on the server against the database directly, and
 * the password hashing they and the login code share.
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

#include "admin.h"
#include "config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "userdb.h"

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
	"       godwit user passwd ADDRESS [--password-stdin]\n";
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
 * how every address in one of our domains is stored.
 */
static char *
parse_address(const char *arg, bool catchall, bool ours, bool lower_local)
{
	const char *at = strrchr(arg, '@'), *why;
	char *local, *domain, *r;
	size_t len;

	if (at == NULL) {
		fail("%s: not an address (expected local@domain)", arg);
		return NULL;
	}
	if (strlen(arg) > ADDRESS_MAX) {
		fail("%s: address too long (at most %d octets)", arg,
		     ADDRESS_MAX);
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
		fail("%s: %s", arg, why);
	else if (local[0] == '\0' && !catchall)
		fail("%s: empty local part", arg);
	else if (local[0] != '\0' && !valid_local(local, ours))
		fail("%s: local part must be letters, digits, dots and "
		     "!#$%%&'*+-=?^_`{|}~%s (no leading, trailing or "
		     "double dots)",
		     arg, ours ? "" : "/");
	else
		r = xasprintf("%s@%s", local, domain);
	free(local);
	free(domain);
	return r;
}

/* ---- opening the database ---------------------------------------------- */

/*
 * The database file and its directory, when this command created them,
 * stay root's but go to the group of the account the daemon drops to
 * (file 0640, directory 0750), as `godwit serve` also does: the workers
 * must read it, and must not be able to change it.
 */
static void
give_to_daemon(const struct config *config, const char *path,
	       bool file_created, bool dir_created)
{
	struct passwd *pw;
	char *dir, *slash;

	if (geteuid() != 0 || config->user == NULL || config->user[0] == '\0' ||
	    (!file_created && !dir_created))
		return;
	if ((pw = getpwnam(config->user)) == NULL) {
		fprintf(stderr, "godwit: warning: user %s does not exist; %s "
				"stays readable by root only\n",
			config->user, path);
		return;
	}
	if (file_created && chown(path, 0, pw->pw_gid) < 0)
		fprintf(stderr, "godwit: warning: chown %s: %s\n", path,
			strerror(errno));
	if (!dir_created)
		return;
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (chown(dir, 0, pw->pw_gid) < 0)
			fprintf(stderr, "godwit: warning: chown %s: %s\n", dir,
				strerror(errno));
	}
	free(dir);
}

static char *
sqlite_path(const struct config *config)
{
	if (config->userdb_driver != NULL && config->userdb_driver[0] != '\0' &&
	    strcmp(config->userdb_driver, "sqlite") != 0)
		return NULL;
	if (config->userdb_path != NULL && config->userdb_path[0] != '\0')
		return xstrdup(config->userdb_path);
	if (config->data_dir != NULL && config->data_dir[0] != '\0')
		return xasprintf("%s/db/godwit.sqlite", config->data_dir);
	return NULL;
}

static struct userdb *
open_db(const struct config *config, bool readonly)
{
	struct userdb *db;
	struct stat sb;
	char *err = NULL, *path, *slash;
	bool file_created = false, dir_created = false;

	path = readonly ? NULL : sqlite_path(config);
	if (path != NULL) {
		file_created = stat(path, &sb) < 0 && errno == ENOENT;
		if ((slash = strrchr(path, '/')) != NULL && slash != path) {
			*slash = '\0';
			dir_created = stat(path, &sb) < 0 && errno == ENOENT;
			*slash = '/';
		}
	}
	if (userdb_open(config, readonly, &db, &err) < 0) {
		fail_free(&err);
		free(path);
		return NULL;
	}
	if (path != NULL)
		give_to_daemon(config, path, file_created, dir_created);
	free(path);
	return db;
}

/* ---- passwords ----------------------------------------------------------- */

char *
password_hash(const char *password, const char **error_r)
{
	struct crypt_data *cd;
	char *salt, *h, *r = NULL;

	if ((salt = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL) {
		*error_r = "cannot make a password salt (libcrypt without "
			   "yescrypt?)";
		return NULL;
	}
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, salt, cd, sizeof(*cd));
	/* Failure is NULL, or a string starting with '*' from some builds. */
	if (h == NULL || h[0] == '*')
		*error_r = "password hashing failed";
	else
		r = xstrdup(h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	free(salt);
	return r;
}

int
password_verify(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *h;
	size_t len;
	unsigned char diff = 0;
	int r;

	/* Locked or disabled accounts, as in /etc/shadow. */
	if (hash == NULL || hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return 0;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, hash, cd, sizeof(*cd));
	if (h == NULL || h[0] == '*') {
		r = -1;
	} else if ((len = strlen(h)) != strlen(hash)) {
		r = 0;
	} else {
		/* Every byte compared, whatever the first difference. */
		for (size_t i = 0; i < len; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		r = diff == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

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
 * The new password: asked twice on a terminal, else (or with
 * --password-stdin) exactly one line from standard input. Returns a
 * malloc'd hash, or NULL after printing why.
 */
static char *
new_password_hash(bool from_stdin)
{
	char *pw = xmalloc(PASSWORD_MAX + 2), *again = NULL, *hash = NULL;
	const char *err = NULL;
	int n;

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
	hash = password_hash(pw, &err);
out:
	if (hash == NULL)
		fail("%s", err != NULL ? err : "cannot read the password");
	explicit_bzero(pw, PASSWORD_MAX + 2);
	free(pw);
	if (again != NULL) {
		explicit_bzero(again, PASSWORD_MAX + 2);
		free(again);
	}
	return hash;
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
user_add_or_passwd(struct userdb *db, const char *address, bool add,
		   bool from_stdin, char **err_r)
{
	char *hash;
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
	if ((hash = new_password_hash(from_stdin)) == NULL)
		return -1;
	r = add ? db->ops->user_add(db, address, hash, err_r)
		: db->ops->user_set_password(db, address, hash, err_r);
	explicit_bzero(hash, strlen(hash));
	free(hash);
	return r;
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
	if (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "passwd") == 0) {
		add = strcmp(argv[1], "add") == 0;
		if (address_and_flag(argc, argv, &arg, &from_stdin) < 0)
			return usage(usage_user_text);
		if ((address = parse_address(arg, false, true, true)) == NULL)
			return 1;
		if ((db = open_db(config, false)) == NULL)
			goto out;
		if (user_add_or_passwd(db, address, add, from_stdin, &err) < 0)
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
