/*
 * godwit mailbox import ADDRESS --mbox FILE | --maildir DIR and godwit
 * mailbox export ADDRESS --mbox FILE: arguments and printing; the work
 * is ops/mailbox_io.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "ops/mailbox_io.h"
#include "store/userdb.h"

static const char usage_mailbox_text[] =
	"usage: godwit mailbox import ADDRESS --mbox FILE | --maildir DIR\n"
	"       godwit mailbox export ADDRESS --mbox FILE\n";

/* The address of an existing user, or NULL after printing why not. */
static char *
user_address(const struct config *config, const char *arg)
{
	struct userdb *db;
	char *address = cli_parse_address(arg, false, true, true);
	int found;

	if (address == NULL)
		return NULL;
	if ((db = cli_open_db(config, true)) == NULL) {
		free(address);
		return NULL;
	}
	found = userdb_user_exists(db, address);
	userdb_close(&db);
	if (found != 1) {
		cli_fail("%s: %s", address,
			 found == 0 ? "no such user" : "user database error");
		free(address);
		return NULL;
	}
	return address;
}

int
cmd_mailbox(const struct config *config, int argc, char **argv)
{
	struct mailbox_io_stats st = {0};
	char *address, *err = NULL;
	bool import;
	int r;

	if (argc != 5 || (strcmp(argv[1], "import") != 0 &&
			  strcmp(argv[1], "export") != 0))
		return cli_usage(usage_mailbox_text);
	import = strcmp(argv[1], "import") == 0;
	if (strcmp(argv[3], "--mbox") != 0 &&
	    (!import || strcmp(argv[3], "--maildir") != 0))
		return cli_usage(usage_mailbox_text);
	if ((address = user_address(config, argv[2])) == NULL)
		return 1;
	if (import && cli_prepare_layout(config) != 0) {
		free(address);
		return 1;
	}
	if (!import)
		r = mailbox_export_mbox(config, address, argv[4], &st, &err);
	else if (strcmp(argv[3], "--mbox") == 0)
		r = mailbox_import_mbox(config, address, argv[4], &st, &err);
	else
		r = mailbox_import_maildir(config, address, argv[4], &st, &err);
	if (r < 0) {
		if (import && st.messages > 0)
			fprintf(stderr, "godwit: %zu messages were imported "
				"before the error\n", st.messages);
		r = cli_fail_free(&err);
	} else if (import)
		printf("imported %zu messages (%llu bytes) into %s\n",
		       st.messages, (unsigned long long)st.bytes, st.maildir);
	else
		printf("exported %zu messages from %s to %s\n", st.messages,
		       st.maildir, argv[4]);
	free(st.maildir);
	free(address);
	return r;
}
