/*
 * godwit: one binary, subcommands. This file only picks one: serve is
 * daemon/server.c, the admin commands are cli/cmd_*.c (cli/cmd.h).
 *
 *	godwit [-c FILE] serve
 *	godwit [-c FILE] config check
 *	godwit [-c FILE] domain|user|alias ...
 *	godwit [-c FILE] queue list|show|hold|release|delete|flush ...
 *	godwit [-c FILE] route [-4|-6] DOMAIN
 *	godwit [-c FILE] check --ip ADDR --helo NAME --mail-from ADDR [--json]
 *	godwit [-c FILE] dkim keygen|sign|list ...
 *	godwit [-c FILE] dns [DOMAIN]
 *	godwit quickstart HOSTNAME ADMIN_ADDRESS [--config-dir D] [--data-dir D]
 *	godwit [-c FILE] firewall [--format nftables|iptables|ufw|firewalld]
 *	godwit [-c FILE] doctor [--timeout S] ...
 *	godwit [-c FILE] backup FILE
 *	godwit [-c CONFIG] restore FILE --data-dir DIR [--user U] [--force]
 *	godwit [-c FILE] mailbox import|export ADDRESS ...
 *	godwit [-c FILE] audit verify [--expect HASH]|head|rotate
 *	godwit version
 *
 * "-c FILE" may also follow the subcommand (godwit serve -c FILE). The
 * default is $GODWIT_CONFIG, else /etc/godwit/godwit.yaml.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "daemon/version.h"
#include "lib/log.h"
#include "lib/util.h"

#define DEFAULT_CONFIG "/etc/godwit/godwit.yaml"

/* The commands that work on a loaded configuration (cli/cmd.h). */
static const struct {
	const char *name;
	int (*run)(const struct config *config, int argc, char **argv);
} commands[] = {
	{"domain", cmd_domain},
	{"user", cmd_user},
	{"alias", cmd_alias},
	{"queue", cmd_queue},
	{"route", cmd_route},
	{"check", cmd_check},
	{"dkim", cmd_dkim},
	{"dns", cmd_dns},
	{"firewall", cmd_firewall},
	{"doctor", cmd_doctor},
	{"backup", cmd_backup},
	{"mailbox", cmd_mailbox},
	{"audit", cmd_audit},
	{"db", cmd_db},
};

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
		"  queue adopt DIR                take over a lost node's "
		"queue\n"
		"  route [-4|-6] DOMAIN           where mail for DOMAIN "
		"goes (MX, addresses)\n"
		"  check --ip ADDR --helo NAME --mail-from ADDR [--json]\n"
		"                                 check a message on stdin "
		"(SPF)\n"
		"  dkim keygen DOMAIN | sign | list  DKIM signing keys\n"
		"  dns [DOMAIN]                   the DNS records to publish\n"
		"  quickstart HOSTNAME ADMIN_ADDRESS [--config-dir DIR] "
		"[--data-dir DIR]\n"
		"                                 set up a production "
		"server\n"
		"  firewall [--format F]          packet filter rules for "
		"the listeners\n"
		"  doctor [--timeout S]           check the server: ports, "
		"TLS, relay, DNS, queue\n"
		"  backup FILE                    configuration, users, keys, "
		"queue, mail\n"
		"  restore FILE --data-dir DIR [--force]\n"
		"                                 unpack a backup (config to "
		"-c FILE)\n"
		"  mailbox import ADDRESS --mbox FILE | --maildir DIR\n"
		"  mailbox export ADDRESS --mbox FILE\n"
		"                                 a user's mail in and out "
		"(mboxrd)\n"
		"  audit verify [--expect HASH] | head | rotate\n"
		"                                 the hash-chained audit log\n"
		"  db init | migrate              the user database's schema\n"
		"  db export [FILE] | import [FILE] [--replace]\n"
		"                                 dump and load users, "
		"domains, aliases\n"
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
	size_t i;
	uid_t invoker;
	int r;

	if (path == NULL || *path == '\0')
		path = DEFAULT_CONFIG;
	/* godwit writes UTC times only, but libraries call localtime()
	 * (libarchive, for each zip member the attachment walk lists); with
	 * TZ unset glibc stats /etc/localtime at every call. Set here, while
	 * there is one thread, it is read once. */
	setenv("TZ", ":/etc/localtime", 0);
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
	if (strcmp(cmd, "quickstart") == 0)
		return cmd_quickstart(argc, argv);
	if (strcmp(cmd, "restore") == 0)
		return cmd_restore(path, argc, argv);
	if (strcmp(cmd, "config") == 0) {
		if (argc != 2 || strcmp(argv[1], "check") != 0) {
			fprintf(stderr, "usage: godwit config check "
					"[-c FILE]\n");
			return 2;
		}
		if (load(path, &config) < 0)
			return 1;
		r = cmd_config_check(config, path);
		config_free(&config);
		return r;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		fprintf(stderr, "godwit: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	if (load(path, &config) < 0)
		return 1;
	invoker = getuid();
	r = commands[i].run(config, argc, argv);
	r = cmd_audit_record(config, argc, argv, r, invoker);
	config_free(&config);
	return r;
}
