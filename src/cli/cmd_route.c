/*
 * godwit route [-4|-6] [-n] DOMAIN: where mail for DOMAIN goes, as the
 * queue runner would find it (net/dns.h), printed (cli/cmd.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/cmd.h"
#include "daemon/config.h"
#include "net/dns.h"

static const char usage_route_text[] =
	"usage: godwit route [-4|-6] [-n] DOMAIN\n"
	"  -4, -6  look up IPv4 or IPv6 addresses only\n"
	"  -n      DOMAIN is a host (as for a smarthost): no MX lookup\n";

static void
print_route(const char *domain, const struct dns_route *rt)
{
	static const char *const kinds[] = {
		[DNS_ROUTE_MX] = "MX",
		[DNS_ROUTE_IMPLICIT] =
			"no MX, implicit MX (the domain's address)",
		[DNS_ROUTE_HOST] = "host (no MX lookup)",
		[DNS_ROUTE_LITERAL] = "address literal",
	};
	char addr[INET6_ADDRSTRLEN];
	const struct sockaddr_storage *ss;
	size_t i, j;

	switch (rt->status) {
	case DNS_NULLMX:
		printf("%s: null MX (RFC 7505): domain accepts no mail\n",
		       domain);
		return;
	case DNS_PERMFAIL:
		printf("%s: permanent failure: %s\n", domain, rt->error);
		return;
	case DNS_TEMPFAIL:
		printf("%s: temporary failure: %s\n", domain, rt->error);
		return;
	case DNS_OK:
		break;
	}
	printf("%s: %s%s\n", domain, kinds[dns_route_kind(rt)],
	       rt->secure ? " (DNSSEC secure)" : "");
	for (i = 0; i < rt->nhosts; i++) {
		printf("  %u %s", rt->hosts[i].pref, rt->hosts[i].name);
		for (j = 0; j < rt->hosts[i].naddrs; j++) {
			ss = &rt->hosts[i].addrs[j];
			if (ss->ss_family == AF_INET)
				inet_ntop(AF_INET,
					  &((const struct sockaddr_in *)ss)
						   ->sin_addr,
					  addr, sizeof(addr));
			else
				inet_ntop(AF_INET6,
					  &((const struct sockaddr_in6 *)ss)
						   ->sin6_addr,
					  addr, sizeof(addr));
			printf(" %s", addr);
		}
		printf("\n");
	}
}

int
cmd_route(const struct config *config, int argc, char **argv)
{
	struct dns_resolver_config rc = {
		.mode = config->dns.mode,
		.forwarders = (const char *const *)config->dns.forwarders,
		.nforwarders = config->dns.nforwarders,
		.trust_anchor = config->dns.trust_anchor,
	};
	struct dns_lookup_opts opts = {
		.want_ipv4 = config->outbound.ipv4,
		.want_ipv6 = config->outbound.ipv6,
		.prefer = config->outbound.prefer_ipv4 ? DNS_PREFER_IPV4
						       : DNS_PREFER_IPV6,
	};
	struct dns_route *route = NULL;
	char *err = NULL;
	int i, code;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-4") == 0) {
			opts.want_ipv4 = true;
			opts.want_ipv6 = false;
		} else if (strcmp(argv[i], "-6") == 0) {
			opts.want_ipv4 = false;
			opts.want_ipv6 = true;
		} else if (strcmp(argv[i], "-n") == 0)
			opts.no_mx = true;
		else
			break;
	}
	if (i != argc - 1) {
		fputs(usage_route_text, stderr);
		return 2;
	}
	if (dns_route_lookup_wait(&rc, argv[i], &opts, &route, &err) < 0) {
		fprintf(stderr, "godwit: %s\n", err);
		free(err);
		fflush(stdout);
		return 2;
	}
	print_route(argv[i], route);
	code = route->status == DNS_OK ? 0
	       : route->status == DNS_TEMPFAIL ? 2 : 1;
	dns_route_free(&route);
	fflush(stdout);
	return code;
}
