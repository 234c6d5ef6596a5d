/*
 * What the admin commands share (cli/cli.h): reporting, the checks of
 * DOMAIN and ADDRESS arguments, opening the user database.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/datadir.h"
#include "store/userdb.h"

#define LOCAL_MAX 64		/* RFC 5321 4.5.3.1.1 */
#define DOMAIN_MAX 253		/* a name as DNS carries it, no root dot */
#define ADDRESS_MAX 254		/* RFC 3696 erratum: what fits a path */

int
cli_usage(const char *text)
{
	fputs(text, stderr);
	return 2;
}

int
cli_fail(const char *fmt, ...)
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

int
cli_fail_free(char **error)
{
	cli_fail("%s", *error != NULL ? *error : "unknown error");
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

char *
cli_parse_domain(const char *arg)
{
	const char *why;
	char *d = xstrdup(arg);
	size_t len = strlen(d);

	ascii_lower(d);
	if (len > 1 && d[len - 1] == '.')
		d[len - 1] = '\0';
	if (!valid_domain(d, &why)) {
		cli_fail("%s: %s", arg, why);
		free(d);
		return NULL;
	}
	return d;
}

char *
cli_normalise_address(const char *arg, bool catchall, bool ours,
		      bool lower_local, char **why_r)
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

char *
cli_parse_address(const char *arg, bool catchall, bool ours, bool lower_local)
{
	char *why = NULL, *r;

	if ((r = cli_normalise_address(arg, catchall, ours, lower_local,
				       &why)) == NULL)
		cli_fail_free(&why);
	return r;
}

/* ---- opening the database ---------------------------------------------- */

/*
 * Before a command writes to the data directory: the whole layout, as
 * `godwit serve` makes it (datadir.c), so that the database this command
 * may create (and its directory) are root's, readable by the daemon
 * user's group, whichever of the two runs first.
 */
int
cli_prepare_layout(const struct config *config)
{
	struct datadir_ids ids;
	struct datadir_config dc;
	char *err = NULL;

	if (datadir_ids(config->user, &ids, &err) < 0) {
		fprintf(stderr, "godwit: warning: %s; what this command makes "
				"stays root's\n",
			err);
		xfree(&err);
		ids.drop = false;
		ids.uid = geteuid();
		ids.gid = getegid();
	}
	config_datadir(config, &dc);
	if (datadir_prepare(&dc, &ids, &err) < 0)
		return cli_fail_free(&err);
	return 0;
}

struct userdb *
cli_open_db(const struct config *config, bool readonly)
{
	struct userdb *db;
	char *err = NULL;

	if (!readonly && cli_prepare_layout(config) != 0)
		return NULL;
	if (userdb_open(&config->userdb, readonly, &db, &err) < 0) {
		cli_fail_free(&err);
		return NULL;
	}
	/* a network backend connects lazily: here, for a clear error */
	if (userdb_ping(db, &err) < 0) {
		cli_fail("user database (%s): %s", config->userdb.backend,
			 err);
		free(err);
		userdb_close(&db);
		return NULL;
	}
	return db;
}

/* ---- lists ------------------------------------------------------------- */

void
cli_print_list(char ***list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%s\n", (*list)[i]);
	fflush(stdout);
	userdb_string_list_free(list, n);
}

int
cli_list_command(const struct config *config, int argc, char **argv,
		 const char *usage_text, bool aliases)
{
	struct userdb *db;
	char *domain = NULL, *err = NULL, **v = NULL;
	size_t n = 0;
	int r = 1, lr;

	if (argc > 3)
		return cli_usage(usage_text);
	if (argc == 3 && (domain = cli_parse_domain(argv[2])) == NULL)
		return 1;
	if ((db = cli_open_db(config, true)) != NULL) {
		lr = aliases ? db->ops->alias_list(db, domain, &v, &n, &err)
			     : db->ops->user_list(db, domain, &v, &n, &err);
		if (lr < 0)
			cli_fail_free(&err);
		else {
			cli_print_list(&v, n);
			r = 0;
		}
	}
	userdb_close(&db);
	free(domain);
	return r;
}

/* The length of the valid UTF-8 sequence at p (1-4), or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n, i;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void
cli_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	fputc('"', f);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
			continue;
		}
		n = utf8_len(p);
		if (n == 0 || *p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
}
