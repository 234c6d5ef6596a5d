/*
 * godwit check [-c FILE] --ip ADDR --helo NAME --mail-from ADDR [--json]
 * < message: the checks the server runs on a message received from ADDR,
 * with the configured resolver, printed as the Authentication-Results
 * header godwit would add, or with --json as one JSON object of the
 * per-method results (cli/cmd.h). The message is read to its end.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "daemon/config.h"
#include "msgauth/spf.h"
#include "net/dns.h"

#define CHECK_TIMEOUT_MS 20000

static const char usage_check_text[] =
	"usage: godwit check [-c FILE] --ip ADDR --helo NAME "
	"--mail-from ADDR [--json] < message\n"
	"  --ip ADDR         the client's address (IPv4 or IPv6)\n"
	"  --helo NAME       its HELO/EHLO name\n"
	"  --mail-from ADDR  the envelope sender; \"\" is the null sender\n"
	"  --json            print the per-method results as JSON\n";

struct check_args {
	const char *ip, *helo, *mail_from;
	bool json;
};

struct check_run {
	struct event_base *base;
	struct spf_outcome spf;
	bool done;
};

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL if not this one. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0' || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int
parse_args(int argc, char **argv, struct check_args *a)
{
	const char *v;
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			a->json = true;
		else if ((v = opt_value(argc, argv, &i, "--ip")) != NULL)
			a->ip = v;
		else if ((v = opt_value(argc, argv, &i, "--helo")) != NULL)
			a->helo = v;
		else if ((v = opt_value(argc, argv, &i, "--mail-from")) !=
			 NULL)
			a->mail_from = v;
		else {
			fprintf(stderr, "godwit check: unknown argument "
					"'%s'\n", argv[i]);
			return -1;
		}
	}
	if (a->ip == NULL || a->helo == NULL || a->mail_from == NULL) {
		fprintf(stderr, "godwit check: --ip, --helo and --mail-from "
				"are required\n");
		return -1;
	}
	return 0;
}

static int
check_ip(const char *ip)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, ip, buf) == 1 ||
	    inet_pton(AF_INET6, ip, buf) == 1)
		return 0;
	fprintf(stderr, "godwit check: --ip '%s' is not an IP address\n", ip);
	return -1;
}

/* Reads the message to its end: the SPF check does not use it. */
static void
drain_stdin(void)
{
	char buf[65536];

	while (fread(buf, 1, sizeof(buf), stdin) > 0)
		;
}

static void
spf_done(const struct spf_outcome *o, void *arg)
{
	struct check_run *run = arg;

	run->spf = *o;
	run->done = true;
	event_base_loopbreak(run->base);
}

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
print_json(const struct check_args *a, const struct spf_outcome *o)
{
	static const char *const keys[] = {"domain", "sender", "mechanism",
					   "explanation", "reason"};
	const char *vals[] = {o->domain, o->sender, o->mechanism,
			      o->explanation, o->reason};
	size_t i;

	(void)a;
	printf("{\"spf\": {\"result\": ");
	json_str(stdout, spf_result_name(o->result));
	printf(", \"identity\": ");
	json_str(stdout, o->identity);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		printf(", \"%s\": ", keys[i]);
		json_str(stdout, vals[i]);
	}
	printf("}}\n");
}

/* A property value (RFC 8601 2.2): as is if plain, else quoted. */
static void
print_pvalue(const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("\"\\()<>,;:[]", *p))
			break;
	if (*p == '\0' && *s != '\0') {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		putchar((unsigned char)*p < ' ' ? '?' : *p);
	}
	putchar('"');
}

static void
print_header(const char *host, const struct check_args *a,
	     const struct spf_outcome *o)
{
	bool helo = strcmp(o->identity, "helo") == 0;

	printf("Authentication-Results: %s; spf=%s %s=", host,
	       spf_result_name(o->result), helo ? "smtp.helo" : "smtp.mailfrom");
	print_pvalue(helo ? a->helo : o->sender);
	putchar('\n');
}

/* Runs the checks in a loop of their own: 0, or -1 on a resolver error. */
static int
run_checks(const struct config *config, const struct check_args *a,
	   struct check_run *run)
{
	struct dns_resolver_config rc = {
		.mode = config->dns.mode,
		.forwarders = (const char *const *)config->dns.forwarders,
		.nforwarders = config->dns.nforwarders,
		.trust_anchor = config->dns.trust_anchor,
	};
	struct spf_request req = {
		.ip = a->ip,
		.helo = a->helo,
		.mail_from = a->mail_from,
		.receiver = config->hostname,
		.timeout_ms = CHECK_TIMEOUT_MS,
	};
	struct dns_resolver *r;
	char *err = NULL;
	int ret = 0;

	if ((run->base = event_base_new()) == NULL) {
		fprintf(stderr, "godwit check: event_base_new failed\n");
		return -1;
	}
	if ((r = dns_resolver_new(run->base, &rc, &err)) == NULL) {
		fprintf(stderr, "godwit check: resolver: %s\n", err);
		free(err);
		event_base_free(run->base);
		return -1;
	}
	(void)spf_check_start(r, &req, spf_done, run);
	if (event_base_dispatch(run->base) < 0 || !run->done) {
		fprintf(stderr, "godwit check: the event loop failed\n");
		ret = -1;
	}
	dns_resolver_free(&r);
	event_base_free(run->base);
	return ret;
}

int
cmd_check(const struct config *config, int argc, char **argv)
{
	struct check_args a;
	struct check_run run;

	if (parse_args(argc, argv, &a) < 0 || check_ip(a.ip) < 0) {
		fputs(usage_check_text, stderr);
		return 2;
	}
	drain_stdin();
	memset(&run, 0, sizeof(run));
	if (run_checks(config, &a, &run) < 0)
		return 1;
	if (a.json)
		print_json(&a, &run.spf);
	else
		print_header(config->hostname, &a, &run.spf);
	fflush(stdout);
	return 0;
}
