/*
 * godwit check [-c FILE] --ip ADDR --helo NAME --mail-from ADDR [--json]
 * < message: the checks the server runs on a message received from ADDR
 * on port 25 (msgauth: iprev, SPF, DKIM, DMARC), with the configured
 * resolver and the checks: settings, printed as the Authentication-Results
 * field godwit would add, or with --json as one JSON object of the
 * per-method results (cli/cmd.h). The message (CRLF or LF line ends) is
 * read to its end and fed to the checks as the server stores it.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "msgauth/iprev.h"
#include "msgauth/msgauth.h"
#include "net/dns.h"

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
	struct msgauth *m;
	bool auth_done, iprev_done;
	struct iprev_outcome iprev;
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

/* The message from stdin, its line ends made LF (the stored form). */
static void
feed_stdin(struct msgauth *m)
{
	char buf[65536], out[65536];
	bool cr = false;
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			if (cr && buf[i] != '\n')
				out[o++] = '\r';
			cr = buf[i] == '\r';
			if (!cr)
				out[o++] = buf[i];
		}
		msgauth_feed(m, out, o);
	}
	if (cr)
		msgauth_feed(m, "\r", 1);
}

static void
maybe_stop(struct check_run *run)
{
	if (run->auth_done && run->iprev_done)
		event_base_loopbreak(run->base);
}

static void
auth_done(struct msgauth *m, void *arg)
{
	struct check_run *run = arg;

	(void)m;
	run->auth_done = true;
	maybe_stop(run);
}

static void
iprev_done(const struct iprev_outcome *o, void *arg)
{
	struct check_run *run = arg;

	run->iprev = *o;
	run->iprev_done = true;
	maybe_stop(run);
}

static void
json_kv(const char *key, const char *val, bool first)
{
	printf("%s\"%s\": ", first ? "" : ", ", key);
	cli_json_str(stdout, val);
}

static void
json_spf(const struct spf_outcome *o)
{
	printf("\"spf\": {");
	json_kv("result", spf_result_name(o->result), true);
	json_kv("identity", o->identity != NULL ? o->identity : "", false);
	json_kv("domain", o->domain, false);
	json_kv("sender", o->sender, false);
	json_kv("mechanism", o->mechanism, false);
	json_kv("explanation", o->explanation, false);
	json_kv("reason", o->reason, false);
	printf("}");
}

static void
json_dkim(const struct msgauth_results *r)
{
	printf(", \"dkim\": [");
	for (size_t i = 0; r->dkim_done && i < r->nsigs; i++) {
		const struct dkim_sig_result *g = &r->sigs[i];
		printf("%s{", i > 0 ? ", " : "");
		json_kv("result", dkim_result_name(g->result), true);
		json_kv("domain", g->domain, false);
		json_kv("selector", g->selector, false);
		json_kv("algorithm", g->algorithm, false);
		json_kv("reason", g->reason, false);
		printf("}");
	}
	printf("]");
}

static void
json_dmarc(const struct msgauth_results *r)
{
	const struct dmarc_verdict *v = &r->dmarc;

	printf(", \"dmarc\": {");
	json_kv("result", dmarc_result_name(v->result), true);
	json_kv("policy", dmarc_policy_name(v->policy), false);
	json_kv("disposition", dmarc_policy_name(v->disposition), false);
	json_kv("from_domain", r->from == MSGAUTH_FROM_ONE ? r->from_domain
							    : "",
		false);
	json_kv("policy_domain", v->policy_domain, false);
	printf(", \"spf_aligned\": %s, \"dkim_aligned\": %s",
	       v->spf_aligned ? "true" : "false",
	       v->dkim_aligned ? "true" : "false");
	json_kv("reason", v->reason, false);
	printf("}");
}

static void
print_json(const struct check_run *run, const char *ar)
{
	const struct msgauth_results *r = msgauth_results(run->m);

	printf("{");
	json_spf(&r->spf);
	json_dkim(r);
	json_dmarc(r);
	printf(", \"iprev\": {");
	json_kv("result", iprev_result_name(run->iprev.result), true);
	json_kv("name", run->iprev.name, false);
	json_kv("reason", run->iprev.reason, false);
	printf("}");
	json_kv("authentication_results", ar, false);
	printf("}\n");
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
	/* all of them, whatever the configuration turns off: the command
	 * is asked for the results */
	struct msgauth_config mc = {
		.authserv_id = config->checks.authserv_id,
		.hostname = config->hostname,
		.timeout_ms = (unsigned)config->checks.timeout * 1000,
		.spf = true,
		.dkim = true,
		.dmarc = true,
	};
	struct dns_resolver *r;
	char *err = NULL, *ar;
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
	(void)iprev_start(r, a->ip, mc.timeout_ms, iprev_done, run);
	run->m = msgauth_new(run->base, r, &mc, a->ip, a->helo);
	msgauth_mail(run->m, a->mail_from);
	feed_stdin(run->m);
	msgauth_finish(run->m, auth_done, run);
	if (event_base_dispatch(run->base) < 0 || !run->auth_done ||
	    !run->iprev_done) {
		fprintf(stderr, "godwit check: the event loop failed\n");
		ret = -1;
	} else {
		ar = msgauth_ar_header(run->m, &run->iprev, a->ip);
		if (a->json)
			print_json(run, ar);
		else
			fputs(ar, stdout);
		free(ar);
	}
	msgauth_free(&run->m);
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
	memset(&run, 0, sizeof(run));
	if (run_checks(config, &a, &run) < 0)
		return 1;
	fflush(stdout);
	return 0;
}
