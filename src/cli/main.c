/*
 * godwit: one binary, subcommands.
 *
 *	godwit [-c FILE] serve
 *	godwit [-c FILE] config check
 *	godwit [-c FILE] domain|user|alias ...
 *	godwit [-c FILE] queue list|show|hold|release|delete|flush ...
 *	godwit [-c FILE] route [-4|-6] DOMAIN
 *	godwit version
 *
 * "-c FILE" may also follow the subcommand (godwit serve -c FILE). The
 * default is $GODWIT_CONFIG, else /etc/godwit/godwit.yaml.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin.h"
#include "daemon/config.h"
#include "net/dns.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "store/queue.h"
#include "store/recipient.h"
#include "daemon/server.h"
#include "net/tls.h"
#include "store/userdb.h"
#include "daemon/version.h"

#define DEFAULT_CONFIG "/etc/godwit/godwit.yaml"

/*
 * config check: where mail for postmaster@hostname and "<postmaster>"
 * goes (RFC 5321 4.5.1 requires someone to read it). A warning on
 * stderr when nobody would: the check still passes.
 */
static void
check_postmaster(const struct config *config)
{
	struct recipient_ctx ctx = {.hostname = config->hostname,
				    .postmaster = config->postmaster};
	struct recipient_result r;
	char *err = NULL;

	if (userdb_open(&config->userdb, true, &ctx.db, &err) < 0) {
		fprintf(stderr,
			"godwit: warning: postmaster: no user database yet "
			"(%s): mail to postmaster@%s and <postmaster> gets "
			"451 until a domain exists with a postmaster@ "
			"alias\n",
			err, config->hostname);
		free(err);
		return;
	}
	if (config->postmaster != NULL) {
		/* the configured address alone, without the fallback */
		struct recipient_ctx one = ctx;
		one.postmaster = NULL;
		one.hostname = NULL;
		one.trusted = true;
		char *text = xasprintf("<%s>", config->postmaster);
		struct smtp_path path;
		struct smtp_error perr;
		const char *end;
		memset(&r, 0, sizeof(r));
		if (smtp_parse_path(text, false, false, true, &path, &end,
				    &perr) == 0) {
			recipient_resolve(&one, &path.mbox, &r);
			if (r.verdict != RCPT_ACCEPT || r.unowned)
				fprintf(stderr,
					"godwit: warning: postmaster: %s "
					"%s\n",
					config->postmaster,
					r.verdict == RCPT_TEMPFAIL
					    ? "could not be looked up"
					    : "is no user, alias or "
					      "catch-all here");
			recipient_result_free(&r);
		}
		free(text);
	}
	recipient_postmaster(&ctx, &r);
	if (r.verdict != RCPT_ACCEPT)
		fprintf(stderr,
			"godwit: warning: postmaster: no address resolves "
			"and there is no local domain: mail to "
			"postmaster@%s and <postmaster> (RFC 5321 4.5.1) "
			"gets 451: add a domain and `godwit alias add "
			"postmaster@DOMAIN you@DOMAIN`, or set "
			"`postmaster:`\n",
			config->hostname);
	else if (r.unowned)
		fprintf(stderr,
			"godwit: warning: postmaster: no user, alias or "
			"catch-all receives postmaster mail: mail to "
			"postmaster@%s and <postmaster> (RFC 5321 4.5.1) "
			"goes to the mailbox %s, which nobody reads: `godwit "
			"alias add %s you@...`, or set `postmaster:`\n",
			config->hostname, r.mailboxes[0], r.mailboxes[0]);
	recipient_result_free(&r);
	userdb_close(&ctx.db);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: godwit [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  serve                          run the mail server "
		"(foreground)\n"
		"  config check                   validate the configuration\n"
		"  domain add|del|list [DOMAIN]   local domains\n"
		"  user add|del|list|passwd ...   mail users\n"
		"  alias add|del|list ...         aliases and catch-alls\n"
		"  queue list [--json] | show ID  the outbound queue\n"
		"  queue hold|release ID|all      keep mail from delivery, "
		"or let it go\n"
		"  queue delete ID|all [--bounce] remove mail (and tell "
		"the sender)\n"
		"  queue flush                    retry deferred mail now\n"
		"  route [-4|-6] DOMAIN           where mail for DOMAIN "
		"goes (MX, addresses)\n"
		"  version                        print the version\n"
		"\n"
		"The configuration is FILE, else $GODWIT_CONFIG, else %s.\n",
		DEFAULT_CONFIG);
}

/* Removes "-c FILE" / "--config FILE" / "--config=FILE" from argv. */
static int
take_config_opt(int *argc, char **argv, const char **path)
{
	int i = 0;

	while (i < *argc) {
		int drop = 0;
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--config") == 0)) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "godwit: %s needs a file\n",
					argv[i]);
				return -1;
			}
			*path = argv[i + 1];
			drop = 2;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			*path = argv[i] + 9;
			drop = 1;
		}
		if (drop == 0) {
			i++;
			continue;
		}
		memmove(&argv[i], &argv[i + drop],
			(size_t)(*argc - i - drop + 1) * sizeof(*argv));
		*argc -= drop;
	}
	return 0;
}

static int
load(const char *path, struct config **config_r)
{
	char *errors = NULL;

	if (config_load(path, config_r, &errors) < 0) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = getenv("GODWIT_CONFIG");
	struct config *config = NULL;
	const char *cmd;
	int r;

	if (path == NULL || *path == '\0')
		path = DEFAULT_CONFIG;
	proc_title_init(argc, argv);
	argc--;
	argv++;
	if (take_config_opt(&argc, argv, &path) < 0)
		return 2;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	cmd = argv[0];
	log_init("godwit", LOG_FORMAT_KV, LOG_INFO);

	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("godwit %s\n", GODWIT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0) {
		if (argc != 1) {
			usage(stderr);
			return 2;
		}
		return serve_main(path);
	}
	if (strcmp(cmd, "config") == 0) {
		if (argc != 2 || strcmp(argv[1], "check") != 0) {
			fprintf(stderr, "usage: godwit config check "
					"[-c FILE]\n");
			return 2;
		}
		if (load(path, &config) < 0)
			return 1;
		/* certificates, keys and cipher lists too, as serve loads them */
		SSL_CTX *ctx = NULL;
		char *err = NULL;
		if (tls_ctx_new(&config->tls, config->path, &ctx, &err) < 0) {
			fprintf(stderr, "%s\n", err);
			free(err);
			config_free(&config);
			return 1;
		}
		tls_ctx_free(&ctx);
		check_postmaster(config);
		printf("%s: ok\n", path);
		config_free(&config);
		return 0;
	}
	if (strcmp(cmd, "domain") != 0 && strcmp(cmd, "user") != 0 &&
	    strcmp(cmd, "alias") != 0 && strcmp(cmd, "queue") != 0 &&
	    strcmp(cmd, "route") != 0) {
		fprintf(stderr, "godwit: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	if (load(path, &config) < 0)
		return 1;
	if (strcmp(cmd, "domain") == 0)
		r = admin_domain(config, argc, argv);
	else if (strcmp(cmd, "user") == 0)
		r = admin_user(config, argc, argv);
	else if (strcmp(cmd, "alias") == 0)
		r = admin_alias(config, argc, argv);
	else if (strcmp(cmd, "route") == 0)
		r = dns_route_cli(&config->dns, config->outbound.ipv4,
				  config->outbound.ipv6,
				  config->outbound.prefer_ipv4, argc, argv);
	else
		r = queue_admin(config->data_dir, config->user, argc, argv);
	config_free(&config);
	return r;
}
