/*
 * `godwit audit verify [--expect HASH]`, `godwit audit head`,
 * `godwit audit rotate` (store/audit.h, ops/audit_verify.h), and the
 * audit line of every admin command that changes something
 * (cmd_audit_record, called by main.c after the command ran).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "ops/audit_verify.h"
#include "store/audit.h"
#include "store/datadir.h"
#include "lib/hashchain.h"
#include "lib/util.h"
#include "lib/xalloc.h"

static const char usage_audit[] =
	"usage: godwit audit verify [--expect HASH]\n"
	"       godwit audit head\n"
	"       godwit audit rotate\n";

static int
audit_verify_cmd(const struct config *config, const char *expect)
{
	struct audit_verify_report rep;
	char *err = NULL;
	int r;

	if (expect != NULL && !hashchain_is_hash(expect))
		return cli_fail("--expect: not a SHA-256 in lower-case hex: %s",
				expect);
	r = audit_verify(config->data_dir, expect, &rep, &err);
	if (r < 0)
		return cli_fail_free(&err);
	if (r == 0) {
		printf("audit log intact: %llu lines in %zu files\n",
		       (unsigned long long)rep.lines, rep.files);
		if (strcmp(rep.first_prev, HASHCHAIN_GENESIS) != 0)
			printf("starts after %s (older files removed)\n",
			       rep.first_prev);
		printf("head %s\n", rep.head);
	} else if (rep.file != NULL) {
		fflush(stdout);
		fprintf(stderr, "godwit: audit log broken at %s:%llu: %s\n",
			rep.file, (unsigned long long)rep.line, rep.why);
	} else {
		fflush(stdout);
		fprintf(stderr,
			"godwit: audit log: no line has the hash %s (its tail "
			"was cut, or the hash is from another log); head %s\n",
			expect, rep.head);
	}
	audit_verify_report_clear(&rep);
	return r == 0 ? 0 : 1;
}

static int
audit_head_cmd(const struct config *config)
{
	char head[HASHCHAIN_HEX_LEN + 1], *err = NULL;

	if (audit_head(config->data_dir, head, &err) < 0)
		return cli_fail_free(&err);
	printf("%s\n", head);
	return 0;
}

static int
audit_rotate_cmd(const struct config *config)
{
	struct datadir_ids ids;
	char date[16], *err = NULL, *name = NULL;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (cli_prepare_layout(config) != 0)
		return 1;
	if (datadir_ids(config->user, &ids, &err) < 0)
		return cli_fail_free(&err);
	if (ids.drop) {
		uid = ids.uid;
		gid = ids.gid;
	}
	local_date((int64_t)time(NULL), date, sizeof(date));
	if (audit_rotate(config->data_dir, date, uid, gid, &name, &err) < 0)
		return cli_fail_free(&err);
	if (name == NULL)
		printf("audit.log is empty: nothing to rotate\n");
	else
		printf("rotated to %s/%s/%s\n", config->data_dir, AUDIT_DIR,
		       name);
	free(name);
	return 0;
}

int
cmd_audit(const struct config *config, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "verify") == 0)
		return audit_verify_cmd(config, NULL);
	if (argc == 4 && strcmp(argv[1], "verify") == 0 &&
	    strcmp(argv[2], "--expect") == 0)
		return audit_verify_cmd(config, argv[3]);
	if (argc == 2 && strcmp(argv[1], "head") == 0)
		return audit_head_cmd(config);
	if (argc == 2 && strcmp(argv[1], "rotate") == 0)
		return audit_rotate_cmd(config);
	return cli_usage(usage_audit);
}

/*
 * The commands recorded: the ones that change something, and the ones
 * that read users' mail ("command verb"; verb NULL: a command without
 * one, its action is the command's name).
 */
static const char *const recorded[][2] = {
    {"domain", "add"},	 {"domain", "del"},   {"user", "add"},
    {"user", "del"},	 {"user", "passwd"},  {"user", "import"},
    {"alias", "add"},	 {"alias", "del"},    {"queue", "hold"},
    {"queue", "release"}, {"queue", "delete"}, {"queue", "flush"},
    {"dkim", "keygen"},	 {"mailbox", "import"}, {"mailbox", "export"},
    {"backup", NULL},	 {"queue", "adopt"},  {"db", "init"},
    {"db", "migrate"},	 {"db", "import"},    {"db", "export"},
};

/* The index of argv's row in recorded[], or -1. */
static int
recorded_row(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(recorded) / sizeof(recorded[0]); i++)
		if (argc >= 1 && strcmp(argv[0], recorded[i][0]) == 0 &&
		    (recorded[i][1] == NULL ||
		     (argc >= 2 && strcmp(argv[1], recorded[i][1]) == 0)))
			return (int)i;
	return -1;
}

/*
 * Whether there is an audit.log to append to. When there is none, the
 * layout is made first (as root: owned by the daemon user); not always,
 * because a command may have become the daemon user already (`queue
 * hold` without a running daemon), which cannot set owners.
 */
static bool
audit_log_exists(const struct config *config)
{
	char *path = xasprintf("%s/%s/%s", config->data_dir, AUDIT_DIR,
			       AUDIT_FILE);
	bool r = access(path, F_OK) == 0;

	free(path);
	return r;
}

int
cmd_audit_admin(const char *data_dir, uid_t uid, const char *action,
		const char *object, bool ok)
{
	char *err = NULL;

	if (audit_admin_uid(data_dir, uid, action, object, ok, &err) < 0) {
		cli_fail("audit log: %s (the command itself ran)", err);
		free(err);
		return 1;
	}
	return 0;
}

int
cmd_audit_record(const struct config *config, int argc, char **argv, int r,
		 uid_t uid)
{
	char action[64], *object;
	size_t len = 1, at = 0;
	int row, first;

	if (r == 2 || !config->audit.enabled ||
	    (row = recorded_row(argc, argv)) < 0)
		return r;
	if (recorded[row][1] == NULL) {
		snprintf(action, sizeof(action), "%s", argv[0]);
		first = 1;
	} else {
		snprintf(action, sizeof(action), "%s-%s", argv[0], argv[1]);
		first = 2;
	}
	/* the object: the arguments that are not options (no secret is
	 * ever an argument: passwords come on stdin) */
	for (int i = first; i < argc; i++)
		len += strlen(argv[i]) + 1;
	object = xmalloc(len);
	object[0] = '\0';
	for (int i = first; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		at += (size_t)snprintf(object + at, len - at, "%s%s",
				       at > 0 ? " " : "", argv[i]);
	}
	if (!audit_log_exists(config) && cli_prepare_layout(config) != 0)
		r = 1;
	else if (cmd_audit_admin(config->data_dir, uid, action, object,
				 r == 0) != 0)
		r = 1;
	free(object);
	return r;
}
