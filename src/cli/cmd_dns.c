/*
 * godwit dns [DOMAIN]: the DNS records to publish for DOMAIN, or for
 * every local domain, as zone-file text (ops/dns_records.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "ops/dns_records.h"
#include "store/userdb.h"

static const char usage_dns_text[] = "usage: godwit dns [DOMAIN]\n";

static int
print_domain(const struct config *config, const char *domain)
{
	struct dns_records *r;
	char *err = NULL, *zone;

	if ((r = dns_records_for(config, domain, &err)) == NULL)
		return cli_fail_free(&err);
	zone = dns_records_zone(r);
	fputs(zone, stdout);
	free(zone);
	dns_records_free(&r);
	return 0;
}

/* Every domain of the user database, a blank line between two. */
static int
print_all(const struct config *config)
{
	struct userdb *db;
	char *err = NULL, **v = NULL;
	size_t n = 0;
	int r = 0;

	if ((db = cli_open_db(config, true)) == NULL)
		return 1;
	if (db->ops->domain_list(db, &v, &n, &err) < 0)
		r = cli_fail_free(&err);
	else if (n == 0)
		r = cli_fail("no local domain yet (godwit domain add DOMAIN)");
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (i > 0)
			printf("\n");
		r = print_domain(config, v[i]);
	}
	userdb_string_list_free(&v, n);
	userdb_close(&db);
	return r;
}

int
cmd_dns(const struct config *config, int argc, char **argv)
{
	char *domain;
	int r;

	if (argc == 1)
		return print_all(config);
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(usage_dns_text);
	if ((domain = cli_parse_domain(argv[1])) == NULL)
		return 1;
	r = print_domain(config, domain);
	free(domain);
	return r;
}
