/*
 * godwit domain add|del|list: the local domains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "store/userdb.h"

static const char usage_domain_text[] =
	"usage: godwit domain add DOMAIN\n"
	"       godwit domain del DOMAIN\n"
	"       godwit domain list\n";

int
cmd_domain(const struct config *config, int argc, char **argv)
{
	struct userdb *db = NULL;
	char *domain = NULL, *err = NULL, **v = NULL;
	size_t n = 0;
	int r = 1;

	if (argc < 2)
		return cli_usage(usage_domain_text);
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return cli_usage(usage_domain_text);
		if ((db = cli_open_db(config, true)) == NULL)
			return 1;
		if (db->ops->domain_list(db, &v, &n, &err) < 0)
			r = cli_fail_free(&err);
		else {
			cli_print_list(&v, n);
			r = 0;
		}
		userdb_close(&db);
		return r;
	}
	if ((strcmp(argv[1], "add") != 0 && strcmp(argv[1], "del") != 0) ||
	    argc != 3)
		return cli_usage(usage_domain_text);
	if ((domain = cli_parse_domain(argv[2])) == NULL)
		return 1;
	if ((db = cli_open_db(config, false)) == NULL)
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
		r = cli_fail_free(&err);
	userdb_close(&db);
	free(domain);
	return r;
}
