/*
 * The load functions of the configuration keys no generic type covers
 * (config_load.h): the lists of mappings, listeners and tls.certificates,
 * each entry checked key by key against its table so that one run reports
 * everything wrong with it; and dns.resolver, dns.trust_anchor, the
 * outbound source addresses, IP version and TLS policies, and the
 * smarthost's host, port and credentials.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/config_load.h"
#include "lib/util.h"
#include "lib/xalloc.h"

/* Bounds that keep the duplicate-address check quadratic in small numbers. */
#define CONFIG_MAX_LISTENERS 64
#define CONFIG_MAX_ADDRS 64
#define CONFIG_MAX_NAME 32
#define CONFIG_MAX_CERTS 64
#define PROTO_COUNT 8

static const char *const proto_names[PROTO_COUNT] = {
    "smtp", "submission", "submissions", "pop3", "pop3s", "metrics", "imap",
    "imaps"};

#define LI_FIELD(f) .offset = offsetof(struct config_listener, f)

enum {
	LI_NAME,
	LI_PROTOCOL,
	LI_LISTEN,
	LI_ALLOW,
	LI_DENY,
	LI_GREET_PAUSE,
	LI_AUTH,
	LI_PLAINTEXT_AUTH,
	LI_PROXY_PROTOCOL,
	LI_PROXY_TRUSTED,
	LI_COUNT
};

/* listeners[]: the defaults of the last four depend on the protocol */
const struct conf_key config_listener_keys[] = {
    [LI_NAME] = {"name", CONF_STRING, LI_FIELD(name),
                 .doc = "unique, in logs as listener=NAME; default: the "
                        "protocol"},
    [LI_PROTOCOL] = {"protocol", CONF_ENUM, LI_FIELD(proto),
                     .names = proto_names, .nnames = PROTO_COUNT,
                     .allowed = "smtp, submission, submissions, pop3, pop3s, "
                                "metrics, imap, imaps",
                     .doc = "required"},
    [LI_LISTEN] = {"listen", CONF_NONE,
                   .doc = "an address or a list: \"[::]:25\", \"0.0.0.0:25\"; "
                          "default: the protocol's port on all addresses "
                          "(metrics: 127.0.0.1:9925 and [::1]:9925)"},
    [LI_ALLOW] = {"allow", CONF_CIDRS, LI_FIELD(allow),
                  .doc = "networks that may connect; empty: all"},
    [LI_DENY] = {"deny", CONF_CIDRS, LI_FIELD(deny),
                 .doc = "networks refused, even when allowed"},
    [LI_GREET_PAUSE] = {"greet_pause", CONF_DURATION_MS,
                        LI_FIELD(greet_pause_ms), .max = 60000,
                        .range = "0..60s",
                        .doc = "early-talker pause before the greeting; 1s for "
                               "smtp, else 0"},
    [LI_AUTH] = {"auth", CONF_BOOL, LI_FIELD(auth),
                 .doc = "offer AUTH; default: all but smtp"},
    [LI_PLAINTEXT_AUTH] =
        {"plaintext_auth", CONF_BOOL, LI_FIELD(plaintext_auth),
         .doc = "allow passwords without TLS (e.g. on loopback)"},
    [LI_PROXY_PROTOCOL] =
        {"proxy_protocol", CONF_BOOL, LI_FIELD(proxy_protocol),
         .doc = "a PROXY protocol header (v1 or v2) from a TCP balancer "
                "comes first; default false"},
    [LI_PROXY_TRUSTED] =
        {"proxy_trusted_networks", CONF_CIDRS, LI_FIELD(proxy_trusted),
         .doc = "the balancers that may send it; required with "
                "proxy_protocol"},
};
const size_t config_nlistener_keys = LI_COUNT;

const struct conf_key config_certificate_keys[] = {
    {"cert", CONF_PATH, offsetof(struct tls_certificate, cert),
     .doc = "PEM chain, leaf first; required"},
    {"key", CONF_PATH, offsetof(struct tls_certificate, key),
     .doc = "PEM private key, readable by its owner only; required"},
};
const size_t config_ncertificate_keys = 2;

bool
config_check_token(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max || s[0] == '-')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		      *s == '.'))
			return false;
	return true;
}

static void
add_addr(struct config_listener *li, const char *text)
{
	const char *error;

	li->addrs =
	    xreallocarray(li->addrs, li->naddrs + 1, sizeof(*li->addrs));
	if (parse_listen_addr(text, &li->addrs[li->naddrs], &error) < 0)
		abort(); /* only called with our own defaults */
	li->naddrs++;
}

/* All addresses; metrics only on loopback (it answers anybody there). */
static void
default_addrs(struct config_listener *li)
{
	char buf[32];
	unsigned port = listener_proto_port(li->proto);
	bool lo = li->proto == PROTO_METRICS;

	snprintf(buf, sizeof(buf), "%s:%u", lo ? "127.0.0.1" : "0.0.0.0", port);
	add_addr(li, buf);
	snprintf(buf, sizeof(buf), "[%s]:%u", lo ? "::1" : "::", port);
	add_addr(li, buf);
}

/*
 * An address may be used once across all listeners: the second bind()
 * would fail at start-up, far from the line that caused it.
 */
static void
check_addr_unique(struct conf_loader *l, const struct config_listener *li,
                  const struct listen_addr *a, int line, const char *key)
{
	const struct config *c = ((struct config_loading *)l->ctx)->config;

	for (const struct config_listener *o = c->listeners; o <= li; o++) {
		for (size_t i = 0; i < o->naddrs; i++) {
			if (&o->addrs[i] == a)
				return;
			if (listen_addr_equal(&o->addrs[i], a)) {
				conf_error(
				    l, line,
				    "%s: address '%s' is already used by "
				    "listener '%s'",
				    key, a->text, o->name);
				return;
			}
		}
	}
}

static void
load_listen_item(struct conf_loader *l, const yaml_node_t *item,
                 const char *key, struct config_listener *li)
{
	const char *s, *error;
	char buf[CONF_SAFE_BUF];

	if ((s = conf_scalar(l, item, key, "an address such as \"[::]:25\"")) ==
	    NULL)
		return;
	if (parse_listen_addr(s, &li->addrs[li->naddrs], &error) < 0) {
		conf_error(l, conf_line(item), "%s: '%s': %s", key,
		           conf_safe(buf, s), error);
		return;
	}
	li->naddrs++;
	check_addr_unique(l, li, &li->addrs[li->naddrs - 1], conf_line(item),
	                  key);
}

/* A list of addresses, or a single one as a string. */
static void
load_listen(struct conf_loader *l, const yaml_node_t *n, const char *key,
            struct config_listener *li)
{
	size_t count;

	if (n->type == YAML_SCALAR_NODE) {
		li->addrs = xcalloc(1, sizeof(*li->addrs));
		load_listen_item(l, n, key, li);
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		conf_error(l, conf_line(n),
		           "%s: expected an address or a list of addresses",
		           key);
		return;
	}
	count = conf_seq_len(n);
	if (count == 0) {
		conf_error(l, conf_line(n),
		           "%s: must name at least one address "
		           "(leave it out for the protocol's default)",
		           key);
		return;
	}
	if (count > CONFIG_MAX_ADDRS) {
		conf_error(l, conf_line(n), "%s: more than %d addresses", key,
		           CONFIG_MAX_ADDRS);
		return;
	}
	li->addrs = xcalloc(count, sizeof(*li->addrs));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = conf_seq_item(l, n, i);
		if (item != NULL)
			load_listen_item(l, item, key, li);
	}
}

/*
 * A listener with an unknown protocol or a bad name is still checked key
 * by key, so that one run reports everything wrong with it.
 */
/* listeners[i].name: given, or the protocol's; one per listener. */
static void
listener_name(struct conf_loader *l, const yaml_node_t *n, yaml_node_t **v,
              const char *where, int proto, struct config_listener *li)
{
	const struct config_loading *st = l->ctx;
	const struct config *c = st->config;
	char key[64], buf[CONF_SAFE_BUF];

	snprintf(key, sizeof(key), "%s.name", where);
	if (!conf_is_null(v[LI_NAME])) {
		const char *s = conf_scalar(l, v[LI_NAME], key, "a string");
		if (s != NULL && !config_check_token(s, CONFIG_MAX_NAME))
			conf_error(l, conf_line(v[LI_NAME]),
			           "%s: '%s' must be 1 to %d letters, digits, "
			           "'-', '_' or '.'",
			           key, conf_safe(buf, s), CONFIG_MAX_NAME);
		else if (s != NULL)
			li->name = xstrdup(s);
	} else if (proto >= 0) {
		li->name = xstrdup(listener_proto_name(li->proto));
	}
	if (li->name != NULL) {
		/* Names appear in logs as listener=NAME: one per listener. */
		for (const struct config_listener *o = c->listeners; o < li;
		     o++) {
			if (strcmp(o->name, li->name) != 0)
				continue;
			conf_error(l,
			           conf_line(conf_is_null(v[LI_NAME])
			                         ? n
			                         : v[LI_NAME]),
			           "%s: name '%s' is already used by the "
			           "listener on line %d%s",
			           conf_is_null(v[LI_NAME]) ? where : key,
			           li->name, o->line,
			           conf_is_null(v[LI_NAME])
			               ? " (without a name, a listener is "
			                 "named after its protocol)"
			               : "");
			break;
		}
	} else {
		li->name = xstrdup(where);
	}
}

/* Whether a is on the loopback network (127/8, ::1). */
static bool
addr_loopback(const struct listen_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&a->ss;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	return IN6_IS_ADDR_LOOPBACK(
	    &((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/*
 * A metrics listener speaks HTTP without TLS or logins: the keys of the
 * mail protocols are refused, and an address beyond loopback needs an
 * allow list (the counters tell a stranger how much mail flows, which
 * rules refuse it, and when the server is busy).
 */
static void
check_metrics_listener(struct conf_loader *l, yaml_node_t **v,
                       const char *where, const struct config_listener *li)
{
	static const int keys[] = {LI_GREET_PAUSE, LI_AUTH, LI_PLAINTEXT_AUTH,
	                           LI_PROXY_PROTOCOL, LI_PROXY_TRUSTED};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!conf_is_null(v[keys[i]]))
			conf_error(l, conf_line(v[keys[i]]),
			           "%s.%s: not a key of protocol metrics",
			           where, config_listener_keys[keys[i]].name);
	if (li->allow.n > 0)
		return;
	for (size_t i = 0; i < li->naddrs; i++) {
		if (addr_loopback(&li->addrs[i]))
			continue;
		conf_error(l,
		           conf_is_null(v[LI_LISTEN]) ? li->line
		                                      : conf_line(v[LI_LISTEN]),
		           "%s.listen: '%s' is not a loopback address: a "
		           "metrics listener there needs an allow: list of the "
		           "networks that may scrape it",
		           where, li->addrs[i].text);
		return;
	}
}

/* listeners[i].protocol (required): the protocol's index, or -1. */
static int
listener_protocol(struct conf_loader *l, const yaml_node_t *n,
                  yaml_node_t **v, const char *where,
                  struct config_listener *li)
{
	const struct conf_key *keys = config_listener_keys;
	char key[64];
	int proto = -1;

	snprintf(key, sizeof(key), "%s.protocol", where);
	if (conf_is_null(v[LI_PROTOCOL]))
		conf_error(l, conf_line(n),
		           "%s: missing required key 'protocol' (smtp, "
		           "submission, submissions, pop3, pop3s, imap, imaps or "
		           "metrics)",
		           where);
	else
		proto = conf_get_enum(l, v[LI_PROTOCOL], key, proto_names,
		                      PROTO_COUNT, keys[LI_PROTOCOL].allowed);
	if (proto >= 0)
		li->proto = (enum listener_proto)proto;
	return proto;
}

/* listeners[i].greet_pause, whose default depends on the protocol. */
static void
load_greet_pause(struct conf_loader *l, yaml_node_t **v,
                 const char *where, int proto, struct config_listener *li)
{
	const struct conf_key *keys = config_listener_keys;
	char key[64];

	/*
	 * The early-talker test waits for the client to speak out of turn;
	 * with implicit TLS the client always speaks first (its TLS hello),
	 * so a pause there would fail every honest client.
	 */
	li->greet_pause_ms = proto == PROTO_SMTP ? 1000 : 0;
	snprintf(key, sizeof(key), "%s.greet_pause", where);
	/* 0 to 60 s: a longer pause outlasts the patience of real senders. */
	conf_load_key(l, v[LI_GREET_PAUSE], key, &keys[LI_GREET_PAUSE], li);
	if (li->greet_pause_ms > 0 &&
	    (proto == PROTO_SUBMISSIONS || proto == PROTO_POP3S ||
	     proto == PROTO_IMAPS))
		conf_error(l, conf_line(v[LI_GREET_PAUSE]),
		           "%s: must be 0 for protocol %s (with implicit TLS "
		           "the client speaks first)",
		           key, listener_proto_name(li->proto));
}

/*
 * listeners[i].proxy_protocol and proxy_trusted_networks. Without a list
 * of the balancers anyone could name any address as theirs and walk past
 * every per-client limit, ban and access list: the list is required.
 */
static void
load_proxy(struct conf_loader *l, yaml_node_t **v, const char *where,
           struct config_listener *li)
{
	const struct conf_key *keys = config_listener_keys;
	char key[64];

	li->proxy_protocol = false;
	snprintf(key, sizeof(key), "%s.proxy_protocol", where);
	conf_load_key(l, v[LI_PROXY_PROTOCOL], key, &keys[LI_PROXY_PROTOCOL],
	              li);
	snprintf(key, sizeof(key), "%s.proxy_trusted_networks", where);
	conf_load_key(l, v[LI_PROXY_TRUSTED], key, &keys[LI_PROXY_TRUSTED], li);
	/* (a list given with bad entries only has its errors already) */
	if (li->proxy_protocol &&
	    (conf_is_null(v[LI_PROXY_TRUSTED]) ||
	     (v[LI_PROXY_TRUSTED]->type == YAML_SEQUENCE_NODE &&
	      conf_seq_len(v[LI_PROXY_TRUSTED]) == 0)))
		conf_error(l, conf_line(v[LI_PROXY_PROTOCOL]),
		           "%s: proxy_protocol needs a non-empty "
		           "proxy_trusted_networks: the balancers' networks",
		           key);
}

static void
load_listener(struct conf_loader *l, const yaml_node_t *n, size_t idx,
              struct config_listener *li)
{
	const struct config_loading *st = l->ctx;
	const struct config *c = st->config;
	const struct conf_key *keys = config_listener_keys;
	yaml_node_t *v[LI_COUNT];
	char where[32], key[64];
	int proto;

	snprintf(where, sizeof(where), "listeners[%zu]", idx);
	li->line = conf_line(n);
	li->index = (unsigned)idx;
	if (n->type != YAML_MAPPING_NODE) {
		conf_error(l, conf_line(n), "%s: expected a mapping", where);
		li->name = xstrdup(where);
		return;
	}
	conf_mapping(l, n, where, keys, LI_COUNT, v);

	proto = listener_protocol(l, n, v, where, li);
	listener_name(l, n, v, where, proto, li);

	snprintf(key, sizeof(key), "%s.listen", where);
	if (!conf_is_null(v[LI_LISTEN])) {
		load_listen(l, v[LI_LISTEN], key, li);
	} else if (proto >= 0) {
		default_addrs(li);
		for (size_t i = 0; i < li->naddrs; i++)
			check_addr_unique(l, li, &li->addrs[i], li->line,
			                  where);
	}

	snprintf(key, sizeof(key), "%s.allow", where);
	conf_load_key(l, v[LI_ALLOW], key, &keys[LI_ALLOW], li);
	snprintf(key, sizeof(key), "%s.deny", where);
	conf_load_key(l, v[LI_DENY], key, &keys[LI_DENY], li);

	if (proto == PROTO_METRICS) {
		check_metrics_listener(l, v, where, li);
		return;
	}

	load_greet_pause(l, v, where, proto, li);

	/* Users log in on submission, POP3 and IMAP; servers on 25 do
	 * not. */
	li->auth = proto >= 0 && proto != PROTO_SMTP;
	snprintf(key, sizeof(key), "%s.auth", where);
	conf_load_key(l, v[LI_AUTH], key, &keys[LI_AUTH], li);
	li->plaintext_auth = false;
	snprintf(key, sizeof(key), "%s.plaintext_auth", where);
	conf_load_key(l, v[LI_PLAINTEXT_AUTH], key, &keys[LI_PLAINTEXT_AUTH],
	              li);
	load_proxy(l, v, where, li);

	/*
	 * Implicit TLS cannot start without a certificate, and submission
	 * must not take a password before STARTTLS (RFC 8314 3.3).
	 */
	if ((proto == PROTO_SUBMISSION || proto == PROTO_SUBMISSIONS ||
	     proto == PROTO_POP3S || proto == PROTO_IMAPS) &&
	    c->tls.ncerts == 0 && !st->tls_certs_given)
		conf_error(l, li->line,
		           "%s: protocol %s requires a TLS certificate "
		           "(tls.certificates)",
		           where, listener_proto_name(li->proto));
}

void
config_load_listeners(struct conf_loader *l, const yaml_node_t *n,
                      const char *key, void *base)
{
	struct config *c = base;
	size_t count = 0;

	(void)key;
	if (n == NULL) {
		/* the default: an MX on port 25 */
		struct config_listener *li;
		c->listeners = li = xcalloc(1, sizeof(*li));
		c->nlisteners = 1;
		li->name = xstrdup("mx");
		li->proto = PROTO_SMTP;
		li->greet_pause_ms = 1000;
		li->line = 0;
		default_addrs(li);
		return;
	}
	if (conf_is_null(n)) {
		conf_error(l, conf_line(n),
		           "listeners: must name at least one listener "
		           "(leave the key out for the default)");
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		conf_error(l, conf_line(n),
		           "listeners: expected a list of listeners");
		return;
	}
	count = conf_seq_len(n);
	if (count == 0) {
		conf_error(l, conf_line(n),
		           "listeners: must name at least one listener "
		           "(leave the key out for the default)");
		return;
	}
	if (count > CONFIG_MAX_LISTENERS) {
		conf_error(l, conf_line(n), "listeners: more than %d listeners",
		           CONFIG_MAX_LISTENERS);
		return;
	}
	c->listeners = xcalloc(count, sizeof(*c->listeners));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = conf_seq_item(l, n, i);

		if (item == NULL)
			continue;
		/* Counted first: config_free must see a partial listener. */
		load_listener(l, item, i, &c->listeners[c->nlisteners++]);
	}
}

void
config_load_certificates(struct conf_loader *l, const yaml_node_t *n,
                         const char *key_, void *base)
{
	struct config_loading *st = l->ctx;
	struct tls_config *tls = base;
	size_t count;

	(void)key_;
	if (conf_is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		st->tls_certs_given = true;
		conf_error(l, conf_line(n),
		           "tls.certificates: expected a list of {cert, key}");
		return;
	}
	count = conf_seq_len(n);
	/* An empty list is no certificate: listeners that need one say so. */
	st->tls_certs_given = count > 0;
	if (count > CONFIG_MAX_CERTS) {
		conf_error(l, conf_line(n),
		           "tls.certificates: more than %d certificates",
		           CONFIG_MAX_CERTS);
		return;
	}
	if (count == 0)
		return;
	tls->certs = xcalloc(count, sizeof(*tls->certs));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = conf_seq_item(l, n, i);
		yaml_node_t *v[2];
		struct tls_certificate *cc;
		char where[48], key[64];

		if (item == NULL)
			continue;
		snprintf(where, sizeof(where), "tls.certificates[%zu]", i);
		if (item->type != YAML_MAPPING_NODE) {
			conf_error(l, conf_line(item), "%s: expected a mapping",
			           where);
			continue;
		}
		/* Counted first: config_free must see a partial entry. */
		cc = &tls->certs[tls->ncerts++];
		cc->line = conf_line(item);
		conf_mapping(l, item, where, config_certificate_keys, 2, v);
		snprintf(key, sizeof(key), "%s.cert", where);
		if (conf_is_null(v[0]))
			conf_error(l, cc->line,
			           "%s: missing required key 'cert'", where);
		else
			conf_get_path(l, v[0], key, &cc->cert);
		snprintf(key, sizeof(key), "%s.key", where);
		if (conf_is_null(v[1]))
			conf_error(l, cc->line,
			           "%s: missing required key 'key'", where);
		else
			conf_get_path(l, v[1], key, &cc->key);
	}
}

/* ---- dns, outbound, smarthost ---------------------------------------- */

/*
 * RFC 1035 host name syntax: labels of letters, digits and hyphens, 1..63
 * long, not starting or ending with a hyphen, 253 in all. A last label of
 * digits only is an IP address, not a name.
 */
const char *
config_check_hostname(const char *s)
{
	size_t len = strlen(s), label = 0;
	bool digits_only = true;

	if (len == 0)
		return "must not be empty";
	if (len > 253)
		return "longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0)
				return "empty label (two dots, or a leading "
				       "dot)";
			if (s[i - 1] == '-')
				return "a label ends with '-'";
			if (c == '\0')
				break;
			label = 0;
			digits_only = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return "only letters, digits, '-' and '.' are allowed";
		if (label == 0 && c == '-')
			return "a label starts with '-'";
		if (++label > 63)
			return "a label is longer than 63 characters";
		if (c < '0' || c > '9')
			digits_only = false;
	}
	if (digits_only)
		return "an IP address is not a name";
	return NULL;
}

/* "192.0.2.53", "192.0.2.53@5353", "2001:db8::53@53" */
static const char *
check_forwarder(const char *s)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *at = strchr(s, '@');
	size_t len = at != NULL ? (size_t)(at - s) : strlen(s);
	unsigned char tmp[sizeof(struct in6_addr)];

	if (len == 0 || len >= sizeof(host))
		return "not an IP address";
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, tmp) != 1 &&
	    inet_pton(AF_INET6, host, tmp) != 1)
		return "not an IP address (IP or IP@port)";
	if (at != NULL) {
		char *end;
		unsigned long port;
		errno = 0;
		port = strtoul(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || errno != 0 || port == 0 ||
		    port > 65535)
			return "bad port (IP@port, 1..65535)";
	}
	return NULL;
}

void
config_load_resolver(struct conf_loader *l, const yaml_node_t *r,
                     const char *key, void *base)
{
	static const char *const modes[] = {"system", "recursive"};
	struct dns_config *dns = base;

	if (r != NULL && r->type == YAML_SEQUENCE_NODE) {
		conf_get_strings(l, r, key,
		                 "forwarder addresses such as "
		                 "[\"192.0.2.53\", \"2001:db8::53@5353\"]",
		                 check_forwarder, false, &dns->forwarders,
		                 &dns->nforwarders);
		if (dns->nforwarders == 0 && conf_seq_len(r) == 0)
			conf_error(l, conf_line(r),
			           "dns.resolver: the list of forwarders is "
			           "empty");
	} else if (!conf_is_null(r)) {
		int i = conf_get_enum(l, r, key, modes, 2,
		                      "system, recursive, or a list of "
		                      "forwarder addresses");
		if (i >= 0) {
			free(dns->mode);
			dns->mode = xstrdup(modes[i]);
		}
	}
}

void
config_load_trust_anchor(struct conf_loader *l, const yaml_node_t *n,
                         const char *key, void *base)
{
	struct dns_config *dns = base;
	const char *s;

	if (conf_is_null(n))
		return;
	s = conf_scalar(l, n, key, "a path");
	if (s != NULL && *s != '\0')
		conf_get_path(l, n, key, &dns->trust_anchor);
	if (dns->trust_anchor != NULL && access(dns->trust_anchor, R_OK) != 0)
		conf_error(l, conf_line(n), "%s: %s: %s", key,
		           dns->trust_anchor, strerror(errno));
}

static const char *const tls_policy_names[] = {"none", "may", "encrypt",
                                               "verify"};
#define TLS_POLICY_ALLOWED "none, may, encrypt or verify"

void
config_load_tls_policies(struct conf_loader *l, const yaml_node_t *n,
                         const char *key, void *base)
{
	struct outbound_config *o = base;
	char buf[CONF_SAFE_BUF];
	size_t count;

	if (conf_is_null(n))
		return;
	if (n->type != YAML_MAPPING_NODE) {
		conf_error(l, conf_line(n),
		           "%s: expected a mapping of domain: policy", key);
		return;
	}
	count =
	    (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	o->tls_policies = xcalloc(count + 1, sizeof(*o->tls_policies));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = conf_node(l, p->key);
		yaml_node_t *val = conf_node(l, p->value);
		const char *s, *error;
		char *d;
		size_t len;
		int i;

		if (k == NULL || val == NULL)
			continue;
		if ((s = conf_scalar(l, k, key, "a domain")) == NULL)
			continue;
		d = xstrdup(s);
		len = strlen(d);
		if (len > 1 && d[len - 1] == '.')
			d[len - 1] = '\0';
		ascii_lower(d);
		if ((error = config_check_hostname(d)) != NULL) {
			conf_error(l, conf_line(k),
			           "outbound.tls_policy: '%s' is not a domain "
			           "(%s)",
			           conf_safe(buf, s), error);
			free(d);
			continue;
		}
		for (size_t j = 0; j < o->ntls_policies; j++)
			if (strcmp(o->tls_policies[j].domain, d) == 0) {
				conf_error(l, conf_line(k),
				           "outbound.tls_policy: duplicate "
				           "domain '%s'",
				           d);
				xfree(&d);
				break;
			}
		if (d == NULL)
			continue;
		i = conf_get_enum(l, val, key, tls_policy_names, 4,
		                  TLS_POLICY_ALLOWED);
		if (i < 0) {
			free(d);
			continue;
		}
		o->tls_policies[o->ntls_policies].domain = d;
		o->tls_policies[o->ntls_policies].policy = (enum tls_policy)i;
		o->ntls_policies++;
	}
}

static void
get_source_addr(struct conf_loader *l, const yaml_node_t *n, const char *key,
                int family, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *s;
	char buf[CONF_SAFE_BUF];

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "an IP address")) == NULL)
		return;
	if (*s == '\0') {
		*len = 0;
		return;
	}
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			*len = sizeof(*sin);
			return;
		}
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			*len = sizeof(*sin6);
			return;
		}
	}
	conf_error(l, conf_line(n), "%s: '%s' is not an IPv%d address", key,
	           conf_safe(buf, s), family == AF_INET ? 4 : 6);
}

void
config_load_source4(struct conf_loader *l, const yaml_node_t *n,
                    const char *key, void *base)
{
	struct outbound_config *o = base;

	get_source_addr(l, n, key, AF_INET, &o->source4, &o->source4_len);
}

void
config_load_source6(struct conf_loader *l, const yaml_node_t *n,
                    const char *key, void *base)
{
	struct outbound_config *o = base;

	get_source_addr(l, n, key, AF_INET6, &o->source6, &o->source6_len);
}

/* ip_version: both, ipv4 or ipv6 */
void
config_load_ip_version(struct conf_loader *l, const yaml_node_t *n,
                       const char *key, void *base)
{
	static const char *const versions[] = {"both", "ipv4", "ipv6"};
	struct outbound_config *o = base;
	int i;

	if (!conf_is_null(n) &&
	    (i = conf_get_enum(l, n, key, versions, 3, "both, ipv4 or ipv6")) >=
	        0) {
		o->ipv4 = i != 2;
		o->ipv6 = i != 1;
	}
}

void
config_load_prefer(struct conf_loader *l, const yaml_node_t *n, const char *key,
                   void *base)
{
	static const char *const prefers[] = {"ipv6", "ipv4"};
	struct outbound_config *o = base;
	int i;

	if (!conf_is_null(n) &&
	    (i = conf_get_enum(l, n, key, prefers, 2, "ipv6 or ipv4")) >= 0)
		o->prefer_ipv4 = i == 1;
}

/* "name" or "[IPv4]" / "[IPv6:addr]" / "[addr]" */
static const char *
check_relay_host(const char *s)
{
	size_t len = strlen(s);
	unsigned char tmp[sizeof(struct in6_addr)];
	char ip[INET6_ADDRSTRLEN + 8];

	if (s[0] != '[')
		return config_check_hostname(s);
	if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(ip))
		return "expected a host name or [IP address]";
	memcpy(ip, s + 1, len - 2);
	ip[len - 2] = '\0';
	if (inet_pton(AF_INET, ip, tmp) == 1)
		return NULL;
	if (strncasecmp(ip, "IPv6:", 5) == 0 &&
	    inet_pton(AF_INET6, ip + 5, tmp) == 1)
		return NULL;
	if (inet_pton(AF_INET6, ip, tmp) == 1)
		return NULL;
	return "expected a host name or [IP address]";
}

void
config_load_relay_host(struct conf_loader *l, const yaml_node_t *n,
                       const char *key, void *base)
{
	struct smarthost_config *sh = base;
	const char *s, *error;
	char buf[CONF_SAFE_BUF], *h;

	if (conf_is_null(n) || (s = conf_scalar(l, n, key, "a host")) == NULL ||
	    *s == '\0')
		return;
	h = xstrdup(s);
	if (h[0] != '[')
		ascii_lower(h);
	if ((error = check_relay_host(h)) != NULL) {
		conf_error(l, conf_line(n), "%s: '%s': %s", key,
		           conf_safe(buf, s), error);
		free(h);
		return;
	}
	free(sh->host);
	sh->host = h;
}

/* The default follows smarthost.tls, loaded before. */
void
config_load_relay_port(struct conf_loader *l, const yaml_node_t *n,
                       const char *key, void *base)
{
	struct smarthost_config *sh = base;

	sh->port = sh->tls == SMARTHOST_IMPLICIT ? 465 : 587;
	conf_get_uint(l, n, key, 1, 65535, &sh->port);
}

void
config_load_credentials(struct conf_loader *l, const yaml_node_t *n,
                        const char *key, void *base)
{
	struct smarthost_config *sh = base;
	struct stat st;

	conf_get_file(l, n, key, &sh->credentials);
	if (sh->credentials == NULL)
		return;
	if (stat(sh->credentials, &st) == 0 && (st.st_mode & 077) != 0)
		conf_error(l, conf_line(n),
		           "%s: %s is readable by group or others (chmod 600 "
		           "it)",
		           key, sh->credentials);
	if (sh->tls == SMARTHOST_NONE)
		conf_error(l, conf_line(n),
		           "%s: refusing to send a password without TLS "
		           "(smarthost.tls: none)",
		           key);
}
