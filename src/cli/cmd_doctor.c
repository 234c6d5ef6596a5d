/*
 * godwit doctor [--timeout SECONDS] [--outbound-target ADDR:PORT]
 * [--outbound-domain DOMAIN] [--probe-domain DOMAIN]: the self-check
 * (ops/doctor.h), one line per finding on stdout, exit 1 on any FAIL.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "daemon/config.h"
#include "ops/doctor.h"

static const char usage_doctor_text[] =
	"usage: godwit doctor [--timeout SECONDS] [--outbound-target "
	"ADDR:PORT]\n"
	"                     [--outbound-domain DOMAIN] [--probe-domain "
	"DOMAIN]\n"
	"  --timeout S          each connection, read and DNS lookup "
	"(default 5)\n"
	"  --outbound-target A  try outgoing port 25 to A (\"192.0.2.1:25\",\n"
	"                       \"[2001:db8::1]:25\") instead of an MX of\n"
	"                       --outbound-domain (default gmail.com)\n"
	"  --probe-domain D     the outside domain of the relay probes\n"
	"                       (default example.com)\n";

static void
print_line(enum doctor_status st, const char *check, const char *text,
	   void *arg)
{
	(void)arg;
	printf("%-4s %-9s %s\n", doctor_status_name(st), check, text);
	fflush(stdout);
}

/* "5", "2.5", "500ms" as milliseconds, 1 ms .. 10 min. */
static int
parse_timeout(const char *s, unsigned *ms_r)
{
	char *end;
	double v;

	if (s == NULL)
		return -1;
	v = strtod(s, &end);
	if (end == s)
		return -1;
	if (strcmp(end, "ms") == 0)
		v /= 1000;
	else if (strcmp(end, "s") != 0 && *end != '\0')
		return -1;
	if (!(v >= 0.001 && v <= 600))
		return -1;
	*ms_r = (unsigned)(v * 1000);
	return 0;
}

int
cmd_doctor(const struct config *config, int argc, char **argv)
{
	struct doctor_options o = {0};
	unsigned fails;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--timeout") == 0 &&
		    parse_timeout(v, &o.timeout_ms) == 0)
			i++;
		else if (strcmp(a, "--outbound-target") == 0 && v != NULL)
			o.outbound_target = argv[++i];
		else if (strcmp(a, "--outbound-domain") == 0 && v != NULL)
			o.outbound_domain = argv[++i];
		else if (strcmp(a, "--probe-domain") == 0 && v != NULL)
			o.probe_domain = argv[++i];
		else {
			fputs(usage_doctor_text, stderr);
			return 2;
		}
	}
	/* a server that closes while the doctor writes (TLS included) is a
	 * finding, not the end of the doctor */
	signal(SIGPIPE, SIG_IGN);
	fails = doctor_run(config, &o, print_line, NULL);
	if (fails > 0)
		printf("%u check%s FAILED\n", fails, fails == 1 ? "" : "s");
	return fails > 0 ? 1 : 0;
}
