/*
 * godwit firewall [--format nftables|iptables|ufw|firewalld] [-4|-6]
 * [--rate N] [--burst N]: the listeners' packet filter rules
 * (ops/firewall.h) on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/util.h"
#include "ops/firewall.h"

static const char usage_firewall_text[] =
	"usage: godwit firewall [--format nftables|iptables|ufw|firewalld] "
	"[-4|-6]\n"
	"                       [--rate N] [--burst N]\n"
	"  --format F  the rules' syntax (default nftables)\n"
	"  -4, -6      iptables: only the iptables-restore (IPv4) or the\n"
	"              ip6tables-restore (IPv6) part\n"
	"  --rate N    new connections a minute per source to the MX "
	"ports\n"
	"              (default: twice limits.connection_rate, else 60)\n"
	"  --burst N   above the rate (default: the rate)\n";

static int
number(const char *s, unsigned *r)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 100000)
		return -1;
	*r = (unsigned)v;
	return 0;
}

int
cmd_firewall(const struct config *config, int argc, char **argv)
{
	struct fw_options o = {.format = FW_NFTABLES};
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-4") == 0)
			o.family = AF_INET;
		else if (strcmp(a, "-6") == 0)
			o.family = AF_INET6;
		else if (strcmp(a, "--format") == 0 && v != NULL &&
			 fw_format_parse(v, &o.format) == 0)
			i++;
		else if (strcmp(a, "--rate") == 0 &&
			 number(v, &o.rate_per_min) == 0)
			i++;
		else if (strcmp(a, "--burst") == 0 &&
			 number(v, &o.burst) == 0)
			i++;
		else {
			fputs(usage_firewall_text, stderr);
			return 2;
		}
	}
	firewall_write(config, &o, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("godwit firewall: stdout");
		return 1;
	}
	return 0;
}
