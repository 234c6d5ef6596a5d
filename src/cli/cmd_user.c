/*
 * godwit user add|del|list|passwd: mail users and their passwords
 * (import: cmd_import.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "ops/secrets.h"
#include "daemon/config.h"
#include "lib/xalloc.h"
#include "store/userdb.h"

const char cli_usage_user[] =
	"usage: godwit user add ADDRESS [--password-stdin]\n"
	"       godwit user del ADDRESS\n"
	"       godwit user list [DOMAIN]\n"
	"       godwit user passwd ADDRESS [--password-stdin]\n"
	"       godwit user import FILE|- [--create-domains] [--update]\n";

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
	secrets_clear(&sc);
	return r;
}

int
cmd_user(const struct config *config, int argc, char **argv)
{
	struct userdb *db = NULL;
	const char *arg;
	char *address = NULL, *err = NULL;
	bool from_stdin, add;
	int r = 1;

	if (argc < 2)
		return cli_usage(cli_usage_user);
	if (strcmp(argv[1], "list") == 0)
		return cli_list_command(config, argc, argv, cli_usage_user,
					false);
	if (strcmp(argv[1], "import") == 0)
		return cmd_user_import(config, argc, argv);
	if (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "passwd") == 0) {
		add = strcmp(argv[1], "add") == 0;
		if (address_and_flag(argc, argv, &arg, &from_stdin) < 0)
			return cli_usage(cli_usage_user);
		if ((address = cli_parse_address(arg, false, true, true)) ==
		    NULL)
			return 1;
		if ((db = cli_open_db(config, false)) == NULL)
			goto out;
		if (user_add_or_passwd(config, db, address, add, from_stdin,
				       &err) < 0)
			goto out;
		printf(add ? "added user %s\n" : "changed password of %s\n",
		       address);
		r = 0;
	} else if (strcmp(argv[1], "del") == 0) {
		if (argc != 3)
			return cli_usage(cli_usage_user);
		if ((address = cli_parse_address(argv[2], false, true,
						 true)) == NULL)
			return 1;
		if ((db = cli_open_db(config, false)) == NULL)
			goto out;
		if (db->ops->user_del(db, address, &err) < 0)
			goto out;
		/* Mail is not thrown away by a typo in a user name. */
		printf("deleted user %s (the mailbox under %s/ is kept)\n",
		       address,
		       config->mail_dir != NULL ? config->mail_dir : "mail");
		r = 0;
	} else
		return cli_usage(cli_usage_user);
out:
	if (err != NULL)
		r = cli_fail_free(&err);
	userdb_close(&db);
	free(address);
	return r;
}
