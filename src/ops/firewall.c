/*
 * godwit firewall: the listeners of the configuration as packet filter
 * rules (ops/firewall.h). First a plan, one opening per listener address
 * that is not loopback, then one writer per format over it, each in the
 * same order: deny list, rate limit (MX only), allow list, accept.
 * Listener names go into comments and shell words as they are: the
 * configuration allows only 1 to 32 letters, digits, '-', '_' and '.'.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "lib/cidr.h"
#include "lib/xalloc.h"
#include "ops/firewall.h"

struct fw_open {
	const struct config_listener *li;
	const char *text;		/* the listen address as written */
	int family;			/* AF_INET, AF_INET6 */
	bool any;			/* wildcard: every address */
	char addr[INET6_ADDRSTRLEN];
	unsigned port;
	bool limit;			/* MX: rate-limit new connections */
	/* who may connect: the listener's lists, or behind a balancer
	 * (proxy_protocol) the balancers alone */
	const struct cidr_list *allow;
	const struct cidr_list *deny;
};

struct fw_plan {
	struct fw_open *v;
	size_t n;
	const char *path;
	unsigned rate, burst;
};

int
fw_format_parse(const char *s, enum fw_format *r)
{
	static const char *const names[] = {
		[FW_NFTABLES] = "nftables", [FW_IPTABLES] = "iptables",
		[FW_UFW] = "ufw", [FW_FIREWALLD] = "firewalld",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*r = (enum fw_format)i;
			return 0;
		}
	return -1;
}

void
firewall_rate(const struct config *c, const struct fw_options *o,
	      unsigned *rate_r, unsigned *burst_r)
{
	const struct limits_config *l = &c->limits;
	uint64_t rate = 60;

	if (o->rate_per_min > 0)
		rate = o->rate_per_min;
	else if (l->conn_rate_window > 0 && l->conn_rate_count > 0)
		rate = 2 * (((uint64_t)l->conn_rate_count * 60 +
			     l->conn_rate_window - 1) / l->conn_rate_window);
	if (rate > 100000)
		rate = 100000;
	*rate_r = (unsigned)rate;
	*burst_r = o->burst > 0 ? o->burst : (unsigned)rate;
}

static bool
open_from(const struct config_listener *li, const struct listen_addr *la,
	  struct fw_open *r)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&la->ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&la->ss;

	memset(r, 0, sizeof(*r));
	r->li = li;
	r->text = la->text;
	r->family = la->ss.ss_family;
	r->limit = li->proto == PROTO_SMTP;
	r->allow = &li->allow;
	r->deny = &li->deny;
	if (li->proxy_protocol) {
		/*
		 * Every packet comes from a balancer: the listener's
		 * allow/deny name clients, which the daemon checks once the
		 * PROXY header has named them, and a per-source rate limit
		 * would throttle all clients together.
		 */
		static const struct cidr_list none;

		r->allow = &li->proxy_trusted;
		r->deny = &none;
		r->limit = false;
	}
	if (r->family == AF_INET) {
		if ((ntohl(s4->sin_addr.s_addr) >> 24) == 127)
			return false;
		r->any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
		r->port = ntohs(s4->sin_port);
		inet_ntop(AF_INET, &s4->sin_addr, r->addr, sizeof(r->addr));
	} else if (r->family == AF_INET6) {
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return false;
		r->any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
		r->port = ntohs(s6->sin6_port);
		inet_ntop(AF_INET6, &s6->sin6_addr, r->addr, sizeof(r->addr));
	} else
		return false;
	return true;
}

/* A comment line (prefix "#" or "\t\t#") when no listener needs a rule. */
static void
none_needed(FILE *f, const struct fw_plan *p, const char *indent)
{
	if (p->n == 0)
		fprintf(f, "%s# no listener needs a rule: all are on "
			"loopback\n", indent);
}

static void
plan_make(const struct config *c, const struct fw_options *o,
	  struct fw_plan *p)
{
	size_t i, j, max = 0;

	memset(p, 0, sizeof(*p));
	p->path = c->path != NULL ? c->path : "the configuration";
	firewall_rate(c, o, &p->rate, &p->burst);
	for (i = 0; i < c->nlisteners; i++)
		max += c->listeners[i].naddrs;
	p->v = xcalloc(max + 1, sizeof(*p->v));
	for (i = 0; i < c->nlisteners; i++)
		for (j = 0; j < c->listeners[i].naddrs; j++)
			if (open_from(&c->listeners[i],
				      &c->listeners[i].addrs[j], &p->v[p->n]))
				p->n++;
}

/* How many networks of l are of family. */
static size_t
cidr_count(const struct cidr_list *l, int family)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		n += l->v[i].family == family;
	return n;
}

/* "{ a, b }" of l's networks of family, for nft. */
static void
nft_set(FILE *f, const struct cidr_list *l, int family)
{
	char buf[80];
	const char *sep = "";
	size_t i;

	fputs("{ ", f);
	for (i = 0; i < l->n; i++) {
		if (l->v[i].family != family)
			continue;
		cidr_text(&l->v[i], buf, sizeof(buf));
		fprintf(f, "%s%s", sep, buf);
		sep = ", ";
	}
	fputs(" }", f);
}

static void
nft_open(FILE *f, const struct fw_plan *p, const struct fw_open *o)
{
	const char *ip = o->family == AF_INET ? "ip" : "ip6";
	const struct config_listener *li = o->li;
	char m[128];

	if (o->any)
		snprintf(m, sizeof(m), "meta nfproto %s tcp dport %u",
			 o->family == AF_INET ? "ipv4" : "ipv6", o->port);
	else
		snprintf(m, sizeof(m), "%s daddr %s tcp dport %u", ip,
			 o->addr, o->port);
	fprintf(f, "\t\t# %s (%s) %s\n", li->name,
		listener_proto_name(li->proto), o->text);
	if (cidr_count(o->deny, o->family) > 0) {
		fprintf(f, "\t\t%s %s saddr ", m, ip);
		nft_set(f, o->deny, o->family);
		fputs(" drop\n", f);
	}
	if (o->allow->n > 0 && cidr_count(o->allow, o->family) == 0) {
		fprintf(f, "\t\t%s drop\n", m);
		return;
	}
	if (o->allow->n > 0) {
		fprintf(f, "\t\t%s %s saddr != ", m, ip);
		nft_set(f, o->allow, o->family);
		fputs(" drop\n", f);
	}
	if (o->limit)
		fprintf(f,
			"\t\t%s ct state new add @mx_rate%s { %s saddr%s "
			"limit rate over %u/minute burst %u packets } drop\n",
			m, o->family == AF_INET ? "4" : "6", ip,
			o->family == AF_INET ? ""
					     : " and ffff:ffff:ffff:ffff::",
			p->rate, p->burst);
	fprintf(f, "\t\t%s accept\n", m);
}

static void
write_nft(FILE *f, const struct fw_plan *p)
{
	static const char *const fams[] = {"ipv4_addr", "ipv6_addr"};
	size_t i;
	int k;

	fprintf(f,
		"#!/usr/sbin/nft -f\n"
		"# godwit's listeners in %s (godwit firewall --format "
		"nftables).\n"
		"# Load with `nft -f FILE`: it replaces table inet godwit "
		"only.\n"
		"# nftables runs every base chain of a hook: an accept here "
		"does not undo\n"
		"# a drop in another table, so a ruleset that drops by "
		"default must\n"
		"# accept these ports too. MX: at most %u new connections a "
		"minute per\n"
		"# source (an IPv6 source is its /64), burst %u.\n"
		"table inet godwit\n"
		"delete table inet godwit\n"
		"table inet godwit {\n",
		p->path, p->rate, p->burst);
	for (k = 0; k < 2; k++)
		fprintf(f,
			"\tset mx_rate%d {\n\t\ttype %s\n\t\tsize 65536\n"
			"\t\tflags dynamic,timeout\n\t\ttimeout 5m\n\t}\n",
			k == 0 ? 4 : 6, fams[k]);
	fputs("\tchain input {\n"
	      "\t\ttype filter hook input priority filter - 10; "
	      "policy accept;\n",
	      f);
	none_needed(f, p, "\t\t");
	for (i = 0; i < p->n; i++)
		nft_open(f, p, &p->v[i]);
	fputs("\t}\n}\n", f);
}

static void
ipt_open(FILE *f, const struct fw_plan *p, const struct fw_open *o)
{
	const struct config_listener *li = o->li;
	char m[200], net[80];
	size_t i;

	snprintf(m, sizeof(m), "-A GODWIT%s%s%s -p tcp --dport %u "
		 "-m comment --comment \"godwit %s\"",
		 o->any ? "" : " -d ", o->any ? "" : o->addr,
		 o->any ? "" : (o->family == AF_INET ? "/32" : "/128"),
		 o->port, li->name);
	for (i = 0; i < o->deny->n; i++) {
		if (o->deny->v[i].family != o->family)
			continue;
		cidr_text(&o->deny->v[i], net, sizeof(net));
		fprintf(f, "%s -s %s -j DROP\n", m, net);
	}
	if (o->limit)
		fprintf(f,
			"%s -m conntrack --ctstate NEW -m hashlimit "
			"--hashlimit-name godwit-mx%d --hashlimit-mode srcip "
			"--hashlimit-srcmask %d --hashlimit-above %u/minute "
			"--hashlimit-burst %u --hashlimit-htable-expire "
			"300000 -j DROP\n",
			m, o->family == AF_INET ? 4 : 6,
			o->family == AF_INET ? 32 : 64, p->rate, p->burst);
	for (i = 0; i < o->allow->n; i++) {
		if (o->allow->v[i].family != o->family)
			continue;
		cidr_text(&o->allow->v[i], net, sizeof(net));
		fprintf(f, "%s -s %s -j ACCEPT\n", m, net);
	}
	fprintf(f, "%s -j %s\n", m, o->allow->n > 0 ? "DROP" : "ACCEPT");
}

static void
write_ipt_family(FILE *f, const struct fw_plan *p, int family)
{
	const char *cmd = family == AF_INET ? "iptables" : "ip6tables";
	size_t i;

	fprintf(f,
		"# godwit's %s listeners in %s (godwit firewall --format "
		"iptables).\n"
		"# Load with `%s-restore --noflush < FILE` (it replaces the "
		"chain\n"
		"# GODWIT only), and once: `%s -I INPUT -j GODWIT`.\n"
		"# MX: at most %u new connections a minute per source%s, "
		"burst %u.\n"
		"*filter\n:GODWIT - [0:0]\n",
		family == AF_INET ? "IPv4" : "IPv6", p->path, cmd, cmd,
		p->rate, family == AF_INET ? "" : " (its /64)", p->burst);
	none_needed(f, p, "");
	for (i = 0; i < p->n; i++)
		if (p->v[i].family == family)
			ipt_open(f, p, &p->v[i]);
	fputs("COMMIT\n", f);
}

static void
write_ipt(FILE *f, const struct fw_plan *p, int family)
{
	if (family != AF_INET6)
		write_ipt_family(f, p, AF_INET);
	if (family == 0)
		fputs("# ip6tables-restore\n", f);
	if (family != AF_INET)
		write_ipt_family(f, p, AF_INET6);
}

/* ufw's and firewalld's "to" address: ufw's any of a family is its /0. */
static const char *
ufw_to(const struct fw_open *o)
{
	if (!o->any)
		return o->addr;
	return o->family == AF_INET ? "0.0.0.0/0" : "::/0";
}

static void
ufw_open(FILE *f, const struct fw_open *o)
{
	const struct config_listener *li = o->li;
	const char *verb = o->limit ? "limit" : "allow";
	char net[80];
	size_t i;

	fprintf(f, "# %s (%s) %s\n", li->name,
		listener_proto_name(li->proto), o->text);
	for (i = 0; i < o->deny->n; i++) {
		if (o->deny->v[i].family != o->family)
			continue;
		cidr_text(&o->deny->v[i], net, sizeof(net));
		fprintf(f, "ufw prepend deny proto tcp from %s to %s port %u "
			"comment 'godwit %s'\n", net, ufw_to(o), o->port,
			li->name);
	}
	for (i = 0; i < o->allow->n; i++) {
		if (o->allow->v[i].family != o->family)
			continue;
		cidr_text(&o->allow->v[i], net, sizeof(net));
		fprintf(f, "ufw %s proto tcp from %s to %s port %u "
			"comment 'godwit %s'\n", verb, net, ufw_to(o), o->port,
			li->name);
	}
	if (o->allow->n == 0)
		fprintf(f, "ufw %s proto tcp from %s to %s port %u "
			"comment 'godwit %s'\n", verb,
			o->family == AF_INET ? "0.0.0.0/0" : "::/0", ufw_to(o),
			o->port, li->name);
	else if (cidr_count(o->allow, o->family) == 0)
		fputs("# no network of this family in allow: stays closed\n",
		      f);
}

static void
write_ufw(FILE *f, const struct fw_plan *p)
{
	size_t i;

	fprintf(f,
		"#!/bin/sh\n"
		"# godwit's listeners in %s (godwit firewall --format ufw).\n"
		"# Run as root. ufw's own limit is fixed: 6 new connections "
		"in 30 seconds\n"
		"# per source on the MX ports (limit).\n"
		"set -e\n",
		p->path);
	none_needed(f, p, "");
	for (i = 0; i < p->n; i++)
		ufw_open(f, &p->v[i]);
}

static void
fwd_rule(FILE *f, const struct fw_open *o, const char *pri,
	 const char *src, const char *action)
{
	fprintf(f, "firewall-cmd --permanent --add-rich-rule='rule%s "
		"family=\"%s\"", pri, o->family == AF_INET ? "ipv4" : "ipv6");
	if (src != NULL)
		fprintf(f, " source address=\"%s\"", src);
	if (!o->any)
		fprintf(f, " destination address=\"%s\"", o->addr);
	fprintf(f, " port port=\"%u\" protocol=\"tcp\" %s'\n", o->port,
		action);
}

static void
fwd_open(FILE *f, const struct fw_plan *p, const struct fw_open *o)
{
	const struct config_listener *li = o->li;
	char net[80], accept[64];
	size_t i;

	fprintf(f, "# %s (%s) %s\n", li->name,
		listener_proto_name(li->proto), o->text);
	if (o->limit)
		snprintf(accept, sizeof(accept), "accept limit value=\"%u/m\"",
			 p->rate);
	else
		snprintf(accept, sizeof(accept), "accept");
	for (i = 0; i < o->deny->n; i++) {
		if (o->deny->v[i].family != o->family)
			continue;
		cidr_text(&o->deny->v[i], net, sizeof(net));
		fwd_rule(f, o, " priority=\"-10\"", net, "drop");
	}
	for (i = 0; i < o->allow->n; i++) {
		if (o->allow->v[i].family != o->family)
			continue;
		cidr_text(&o->allow->v[i], net, sizeof(net));
		fwd_rule(f, o, "", net, accept);
	}
	if (o->allow->n == 0)
		fwd_rule(f, o, "", NULL, accept);
	else if (cidr_count(o->allow, o->family) == 0)
		fputs("# no network of this family in allow: stays closed\n",
		      f);
}

static void
write_firewalld(FILE *f, const struct fw_plan *p)
{
	size_t i;

	fprintf(f,
		"#!/bin/sh\n"
		"# godwit's listeners in %s (godwit firewall --format "
		"firewalld),\n"
		"# rich rules of the default zone. Run as root. firewalld's "
		"limit counts\n"
		"# all sources of a rule together (%u new connections a "
		"minute on the MX\n"
		"# ports): the per-source limit is the daemon's "
		"(limits.connection_rate).\n"
		"set -e\n",
		p->path, p->rate);
	none_needed(f, p, "");
	for (i = 0; i < p->n; i++)
		fwd_open(f, p, &p->v[i]);
	fputs("firewall-cmd --reload\n", f);
}

void
firewall_write(const struct config *c, const struct fw_options *o, FILE *f)
{
	struct fw_plan p;

	plan_make(c, o, &p);
	switch (o->format) {
	case FW_NFTABLES:
		write_nft(f, &p);
		break;
	case FW_IPTABLES:
		write_ipt(f, &p, o->family);
		break;
	case FW_UFW:
		write_ufw(f, &p);
		break;
	case FW_FIREWALLD:
		write_firewalld(f, &p);
		break;
	}
	free(p.v);
}
