/*
 * godwit user import FILE|- [--create-domains] [--update]: users from a
 * Dovecot passwd-file, with crypt hashes as they are or {PLAIN}
 * passwords.
 */
#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "ops/secrets.h"
#include "lib/xalloc.h"
#include "store/userdb.h"

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
	if ((*address_r = cli_normalise_address(user, false, true, true,
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
	secrets_clear(&sc);
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
int
cmd_user_import(const struct config *config, int argc, char **argv)
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
			return cli_usage(cli_usage_user);
		else
			file = argv[i];
	}
	if (file == NULL)
		return cli_usage(cli_usage_user);
	/* stdin through a FILE of our own, so that the buffer is ours. */
	if (strcmp(file, "-") == 0) {
		name = "(stdin)";
		if ((i = dup(STDIN_FILENO)) < 0 ||
		    (fp = fdopen(i, "r")) == NULL) {
			if (i >= 0)
				close(i);
			return cli_fail("standard input: %s", strerror(errno));
		}
	} else if ((fp = fopen(file, "re")) == NULL)
		return cli_fail("%s: %s", file, strerror(errno));
	else
		name = file;
	/* {PLAIN} lines are passwords: keep stdio's copy where it is wiped. */
	iobuf = xmalloc(BUFSIZ);
	setvbuf(fp, iobuf, _IOFBF, BUFSIZ);
	if ((db = cli_open_db(config, false)) == NULL)
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
		cli_fail("%s: %s", name, strerror(errno));
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
