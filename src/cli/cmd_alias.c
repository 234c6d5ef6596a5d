/*
 * godwit alias add|del|list: aliases and catch-alls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/userdb.h"

static const char usage_alias_text[] =
	"usage: godwit alias add SOURCE TARGET   (SOURCE @DOMAIN: catch-all)\n"
	"       godwit alias del SOURCE [TARGET]\n"
	"       godwit alias list [DOMAIN]\n";

/*
 * An alias target: stored lower-cased when its domain is ours (so that it
 * matches a user), with the local part as given when it is remote (the
 * other side may care about case).
 */
static char *
parse_target(struct userdb *db, const char *arg, char **err_r)
{
	char *t = cli_parse_address(arg, false, false, false);
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
		userdb_alias_list_clear(&l);
		return;
	}
	fflush(stdout);
	fprintf(stderr, "godwit: warning: %s is neither a user nor an alias "
			"yet; mail for it will be dropped until it is\n",
		target);
}

int
cmd_alias(const struct config *config, int argc, char **argv)
{
	struct userdb *db = NULL;
	char *source = NULL, *target = NULL, *err = NULL;
	int r = 1;

	if (argc < 2)
		return cli_usage(usage_alias_text);
	if (strcmp(argv[1], "list") == 0)
		return cli_list_command(config, argc, argv, usage_alias_text,
					true);
	if (strcmp(argv[1], "add") == 0) {
		if (argc != 4)
			return cli_usage(usage_alias_text);
	} else if (strcmp(argv[1], "del") == 0) {
		if (argc != 3 && argc != 4)
			return cli_usage(usage_alias_text);
	} else
		return cli_usage(usage_alias_text);

	if ((source = cli_parse_address(argv[2], true, true, true)) == NULL)
		return 1;
	if ((db = cli_open_db(config, false)) == NULL)
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
		r = cli_fail_free(&err);
	userdb_close(&db);
	free(source);
	free(target);
	return r;
}
