/*
 * Loading and validating godwit's YAML configuration.
 *
 * libyaml's document API builds the whole tree (the file is at most 1 MiB),
 * then a walker checks it against the schema below, section by section.
 * The walker never stops at the first problem: every error is collected
 * as "file:line: message" so that one `godwit config check` run shows all
 * of them. Only the keys the schema names are ever descended into, so the
 * depth of the walk is fixed by the schema, whatever the input nests or
 * aliases.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <yaml.h>

#include "daemon/config.h"
#include "mail/smtp_parse.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define CONFIG_MAX_FILE (1024 * 1024)
/* Past this many, further errors are counted but not listed. */
#define CONFIG_MAX_ERRORS 50
/* Bounds that keep the duplicate-address check quadratic in small numbers. */
#define CONFIG_MAX_LISTENERS 64
#define CONFIG_MAX_ADDRS 64
#define CONFIG_MAX_NAME 32
#define CONFIG_MAX_PATH 4095
#define CONFIG_MAX_CERTS 64
#define CONFIG_MAX_CIPHERS 1024

/*
 * The TLS 1.2 default: forward secrecy (ECDHE) and AEAD ciphers only, in
 * the order Mozilla's "intermediate" profile gives them (without its DHE
 * suites: finite-field DH needs parameters and is slow).
 */
#define TLS_DEFAULT_CIPHERS                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct config_error {
	int line;
	char *msg;
};

struct loader {
	const char *name;
	yaml_document_t *doc;
	struct config *config;
	struct config_error *errs;
	size_t nerrs;
	size_t dropped;   /* errors past CONFIG_MAX_ERRORS */
	int dropped_line; /* line of the first one dropped */
	/* tls.certificates was written (even if wrong): a listener that
	 * needs a certificate is then not reported a second time. */
	bool tls_certs_given;
};

static void error_at(struct loader *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
error_at(struct loader *l, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (l->nerrs >= CONFIG_MAX_ERRORS) {
		if (l->dropped++ == 0)
			l->dropped_line = line;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		fprintf(stderr, "godwit: out of memory\n");
		abort();
	}
	va_end(ap);
	l->errs = xreallocarray(l->errs, l->nerrs + 1, sizeof(*l->errs));
	l->errs[l->nerrs].line = line;
	l->errs[l->nerrs].msg = msg;
	l->nerrs++;
}

static int
node_line(const yaml_node_t *n)
{
	return n != NULL ? (int)n->start_mark.line + 1 : 1;
}

/*
 * Text from the file, made safe to print in an error: control and
 * non-ASCII bytes become \xNN and long values are cut, so a hostile file
 * cannot write escape sequences to the operator's terminal.
 */
static const char *
safe_text(char *buf, size_t size, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; i < len && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (i < len) {
		buf[o++] = '.';
		buf[o++] = '.';
		buf[o++] = '.';
	}
	buf[o] = '\0';
	return buf;
}

#define SAFE_BUF 80

/* ---- node helpers ---------------------------------------------------- */

static yaml_node_t *
get_node(struct loader *l, int index)
{
	return yaml_document_get_node(l->doc, index);
}

static const char *
scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* An unquoted empty value, ~ or null: the same as leaving the key out. */
static bool
is_null(const yaml_node_t *n)
{
	const char *s;

	if (n == NULL)
		return true;
	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = scalar(n);
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/*
 * A scalar as a C string. libyaml allows "\0" in double-quoted scalars,
 * which would silently cut the value short; refuse those.
 */
static const char *
get_scalar(struct loader *l, const yaml_node_t *n, const char *key,
           const char *expected)
{
	if (n->type != YAML_SCALAR_NODE) {
		error_at(l, node_line(n), "%s: expected %s", key, expected);
		return NULL;
	}
	if (strlen(scalar(n)) != n->data.scalar.length) {
		error_at(l, node_line(n), "%s: contains a NUL character", key);
		return NULL;
	}
	return scalar(n);
}

/*
 * Finds the values of the known keys in a mapping: values_r[i] is the
 * value node for keys[i], or NULL when the key is absent. Unknown,
 * duplicate and non-string keys are errors. "where" names the mapping in
 * messages ("smtp", "listeners[0]", "" for the top level).
 */
static bool
get_mapping(struct loader *l, const yaml_node_t *map, const char *where,
            const char *const *keys, size_t nkeys, yaml_node_t **values_r)
{
	int first_line[32];
	char in[96], buf[SAFE_BUF];

	if (nkeys > sizeof(first_line) / sizeof(first_line[0]))
		abort();
	for (size_t i = 0; i < nkeys; i++)
		values_r[i] = NULL;
	if (*where == '\0')
		snprintf(in, sizeof(in), "at top level");
	else
		snprintf(in, sizeof(in), "in %s", where);
	if (is_null(map))
		return true;
	if (map->type != YAML_MAPPING_NODE) {
		if (*where == '\0')
			error_at(l, node_line(map),
			         "expected a mapping of keys at top level");
		else
			error_at(l, node_line(map), "%s: expected a mapping",
			         where);
		return false;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = get_node(l, p->key);
		yaml_node_t *v = get_node(l, p->value);
		size_t i;

		if (k == NULL || v == NULL)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			error_at(l, node_line(k), "keys must be strings %s",
			         in);
			continue;
		}
		for (i = 0; i < nkeys; i++)
			if (strlen(keys[i]) == k->data.scalar.length &&
			    strcmp(keys[i], scalar(k)) == 0)
				break;
		if (i == nkeys) {
			error_at(l, node_line(k), "unknown key '%s' %s",
			         safe_text(buf, sizeof(buf), scalar(k),
			                   k->data.scalar.length),
			         in);
			continue;
		}
		if (values_r[i] != NULL) {
			error_at(l, node_line(k),
			         "duplicate key '%s' %s (first on line %d)",
			         keys[i], in, first_line[i]);
			continue;
		}
		values_r[i] = v;
		first_line[i] = node_line(k);
	}
	return true;
}

static void
get_uint(struct loader *l, const yaml_node_t *n, const char *key, unsigned min,
         unsigned max, unsigned *r)
{
	const char *s;
	uint64_t v;
	char buf[SAFE_BUF];

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "a number")) == NULL)
		return;
	if (parse_uint64(s, &v) < 0) {
		error_at(l, node_line(n), "%s: expected a number", key);
		return;
	}
	if (v < min || v > max) {
		error_at(l, node_line(n), "%s: '%s' is out of range (%u..%u)",
		         key, safe_text(buf, sizeof(buf), s, strlen(s)), min,
		         max);
		return;
	}
	*r = (unsigned)v;
}

/*
 * A duration (seconds) or a size (bytes), parsed by parse; "range" is how
 * min..max reads in a message.
 */
static void
get_scaled(struct loader *l, const yaml_node_t *n, const char *key,
	   const char *what,
	   int (*parse)(const char *, uint64_t *, const char **),
	   uint64_t min, uint64_t max, const char *range, uint64_t *r)
{
	const char *s, *error;
	uint64_t v;
	char buf[SAFE_BUF];

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, what)) == NULL)
		return;
	if (parse(s, &v, &error) < 0) {
		error_at(l, node_line(n), "%s: %s", key, error);
		return;
	}
	if (v < min || v > max) {
		error_at(l, node_line(n), "%s: '%s' is out of range (%s)", key,
		         safe_text(buf, sizeof(buf), s, strlen(s)), range);
		return;
	}
	*r = v;
}

static void
get_duration(struct loader *l, const yaml_node_t *n, const char *key,
             uint64_t min, uint64_t max, const char *range, uint64_t *r)
{
	get_scaled(l, n, key, "a duration", parse_duration, min, max, range,
		   r);
}

static void
get_size(struct loader *l, const yaml_node_t *n, const char *key, uint64_t min,
         uint64_t max, const char *range, uint64_t *r)
{
	get_scaled(l, n, key, "a size", parse_size, min, max, range, r);
}

static void
get_bool(struct loader *l, const yaml_node_t *n, const char *key, bool *r)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
	                                  "YES",  "on",   "On",   "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No",
	                                 "NO",    "off",   "Off",   "OFF"};
	const char *s;

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "true or false")) == NULL)
		return;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*r = true;
			return;
		}
		if (strcmp(s, no[i]) == 0) {
			*r = false;
			return;
		}
	}
	error_at(l, node_line(n), "%s: expected true or false", key);
}

/*
 * One of a fixed set of words. Returns the index into names, or -1 (with
 * an error reported) when n is something else or null.
 */
static int
get_enum(struct loader *l, const yaml_node_t *n, const char *key,
         const char *const *names, size_t count, const char *allowed)
{
	const char *s;
	char buf[SAFE_BUF];

	if ((s = get_scalar(l, n, key, "a string")) == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	error_at(l, node_line(n), "%s: '%s' is not one of %s", key,
	         safe_text(buf, sizeof(buf), s, strlen(s)), allowed);
	return -1;
}

/*
 * A file-system path: not empty, no control characters (a newline in a
 * path is never intended and would break log lines). Replaces *r.
 */
static void
get_path(struct loader *l, const yaml_node_t *n, const char *key, char **r)
{
	const char *s;

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "a path")) == NULL)
		return;
	if (*s == '\0') {
		error_at(l, node_line(n), "%s: must not be empty", key);
		return;
	}
	if (strlen(s) > CONFIG_MAX_PATH) {
		error_at(l, node_line(n), "%s: longer than %d characters", key,
		         CONFIG_MAX_PATH);
		return;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			error_at(l, node_line(n),
			         "%s: contains a control character", key);
			return;
		}
	}
	free(*r);
	*r = xstrdup(s);
}

/*
 * A list of CIDR networks. The array is sized once from the node count
 * (cidr_list_add grows one element at a time, which a long list would
 * make quadratic).
 */
static void
get_cidr_list(struct loader *l, const yaml_node_t *n, const char *key,
              struct cidr_list *list)
{
	size_t count;
	char buf[SAFE_BUF];

	if (is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		error_at(l, node_line(n),
		         "%s: expected a list of networks such as "
		         "[\"192.0.2.0/24\", \"2001:db8::/32\"]",
		         key);
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count == 0)
		return;
	list->v = xreallocarray(list->v, list->n + count, sizeof(*list->v));
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = get_node(l, *it);
		const char *s, *error;
		struct cidr c;

		if (item == NULL)
			continue;
		if ((s = get_scalar(l, item, key, "a network")) == NULL)
			continue;
		if (cidr_parse(s, &c, &error) < 0) {
			error_at(l, node_line(item), "%s: '%s': %s", key,
			         safe_text(buf, sizeof(buf), s, strlen(s)),
			         error);
			continue;
		}
		list->v[list->n++] = c;
	}
}

/* ---- value checks ---------------------------------------------------- */

/*
 * RFC 1035 host name syntax: labels of letters, digits and hyphens, 1..63
 * long, not starting or ending with a hyphen, 253 in all. A last label of
 * digits only is an IP address, not a name.
 */
static const char *
check_hostname(const char *s)
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

/* A log field value and a user name: no quoting ever needed. */
static bool
check_token(const char *s, size_t max)
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

/* ---- listen addresses ------------------------------------------------ */

int
parse_listen_addr(const char *s, struct listen_addr *r, const char **error_r)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_s;
	uint64_t port;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL) {
			*error_r = "missing ']' after the IPv6 address";
			return -1;
		}
		hlen = (size_t)(end - s - 1);
		if (hlen >= sizeof(host)) {
			*error_r = "not an IPv6 address";
			return -1;
		}
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (end[1] != ':') {
			*error_r = "missing ':PORT' after the address";
			return -1;
		}
		port_s = end + 2;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*error_r = "not an IPv6 address";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		r->len = sizeof(*sin6);
	} else {
		const char *colon = strchr(s, ':');
		if (colon == NULL) {
			*error_r = "missing ':PORT' after the address";
			return -1;
		}
		if (strchr(colon + 1, ':') != NULL) {
			*error_r = "an IPv6 address must be written in "
			           "brackets, as in [::1]:25";
			return -1;
		}
		hlen = (size_t)(colon - s);
		if (hlen == 0) {
			*error_r = "missing address (use 0.0.0.0 or [::] for "
			           "all addresses)";
			return -1;
		}
		if (hlen >= sizeof(host)) {
			*error_r = "not an IPv4 address";
			return -1;
		}
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		port_s = colon + 1;
		struct sockaddr_in *sin = (struct sockaddr_in *)&r->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*error_r = "not an IPv4 address (host names are not "
			           "allowed)";
			return -1;
		}
		sin->sin_family = AF_INET;
		r->len = sizeof(*sin);
	}
	if (parse_uint64(port_s, &port) < 0 || port < 1 || port > 65535) {
		*error_r = "the port must be a number from 1 to 65535";
		memset(r, 0, sizeof(*r));
		return -1;
	}
	if (r->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&r->ss)->sin6_port =
		    htons((uint16_t)port);
	else
		((struct sockaddr_in *)&r->ss)->sin_port =
		    htons((uint16_t)port);
	r->text = xstrdup(s);
	return 0;
}

const char *
listener_proto_name(enum listener_proto proto)
{
	switch (proto) {
	case PROTO_SMTP:
		return "smtp";
	case PROTO_SUBMISSION:
		return "submission";
	case PROTO_SUBMISSIONS:
		return "submissions";
	case PROTO_POP3:
		return "pop3";
	case PROTO_POP3S:
		return "pop3s";
	}
	return "unknown";
}

static const char *const proto_names[] = {"smtp", "submission", "submissions",
                                          "pop3", "pop3s"};
static const unsigned proto_ports[] = {25, 587, 465, 110, 995};

static bool
same_addr(const struct listen_addr *a, const struct listen_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss;
		const struct sockaddr_in *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)&a->ss;
	const struct sockaddr_in6 *y = (const void *)&b->ss;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
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

static void
default_addrs(struct config_listener *li)
{
	char buf[32];
	unsigned port = proto_ports[li->proto];

	snprintf(buf, sizeof(buf), "0.0.0.0:%u", port);
	add_addr(li, buf);
	snprintf(buf, sizeof(buf), "[::]:%u", port);
	add_addr(li, buf);
}

/* ---- sections -------------------------------------------------------- */

/*
 * An address may be used once across all listeners: the second bind()
 * would fail at start-up, far from the line that caused it.
 */
static void
check_addr_unique(struct loader *l, const struct config_listener *li,
                  const struct listen_addr *a, int line, const char *key)
{
	const struct config *c = l->config;

	for (const struct config_listener *o = c->listeners; o <= li; o++) {
		for (size_t i = 0; i < o->naddrs; i++) {
			if (&o->addrs[i] == a)
				return;
			if (same_addr(&o->addrs[i], a)) {
				error_at(l, line,
				         "%s: address '%s' is already used by "
				         "listener '%s'",
				         key, a->text, o->name);
				return;
			}
		}
	}
}

static void
load_listen_item(struct loader *l, const yaml_node_t *item, const char *key,
                 struct config_listener *li)
{
	const char *s, *error;
	char buf[SAFE_BUF];

	if ((s = get_scalar(l, item, key, "an address such as \"[::]:25\"")) ==
	    NULL)
		return;
	if (parse_listen_addr(s, &li->addrs[li->naddrs], &error) < 0) {
		error_at(l, node_line(item), "%s: '%s': %s", key,
		         safe_text(buf, sizeof(buf), s, strlen(s)), error);
		return;
	}
	li->naddrs++;
	check_addr_unique(l, li, &li->addrs[li->naddrs - 1], node_line(item),
	                  key);
}

/* A list of addresses, or a single one as a string. */
static void
load_listen(struct loader *l, const yaml_node_t *n, const char *key,
            struct config_listener *li)
{
	size_t count;

	if (n->type == YAML_SCALAR_NODE) {
		li->addrs = xcalloc(1, sizeof(*li->addrs));
		load_listen_item(l, n, key, li);
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		error_at(l, node_line(n),
		         "%s: expected an address or a list of addresses", key);
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count == 0) {
		error_at(l, node_line(n),
		         "%s: must name at least one address "
		         "(leave it out for the protocol's default)",
		         key);
		return;
	}
	if (count > CONFIG_MAX_ADDRS) {
		error_at(l, node_line(n), "%s: more than %d addresses", key,
		         CONFIG_MAX_ADDRS);
		return;
	}
	li->addrs = xcalloc(count, sizeof(*li->addrs));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item =
		    get_node(l, n->data.sequence.items.start[i]);
		if (item != NULL)
			load_listen_item(l, item, key, li);
	}
}

/*
 * A duration kept in milliseconds: "1s", "2m", a plain number of seconds,
 * or milliseconds written as "500ms". range is how 0..max_ms reads in a
 * message.
 */
static void
get_duration_ms(struct loader *l, const yaml_node_t *n, const char *key,
		uint64_t max_ms, const char *range, uint64_t *ms_r)
{
	const char *s, *error;
	uint64_t v;
	size_t len;
	char buf[SAFE_BUF];

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "a duration")) == NULL)
		return;
	len = strlen(s);
	if (len > 2 && strcmp(s + len - 2, "ms") == 0) {
		char num[24];
		if (len - 2 >= sizeof(num)) {
			error_at(l, node_line(n), "%s: invalid duration", key);
			return;
		}
		memcpy(num, s, len - 2);
		num[len - 2] = '\0';
		if (parse_uint64(num, &v) < 0) {
			error_at(l, node_line(n),
			         "%s: invalid duration (use e.g. 500ms, 1s)",
			         key);
			return;
		}
	} else {
		if (parse_duration(s, &v, &error) < 0) {
			error_at(l, node_line(n), "%s: %s", key, error);
			return;
		}
		v = v > UINT64_MAX / 1000 ? UINT64_MAX : v * 1000;
	}
	if (v > max_ms) {
		error_at(l, node_line(n), "%s: '%s' is out of range (%s)", key,
		         safe_text(buf, sizeof(buf), s, strlen(s)), range);
		return;
	}
	*ms_r = v;
}

enum {
	LI_NAME,
	LI_PROTOCOL,
	LI_LISTEN,
	LI_ALLOW,
	LI_DENY,
	LI_GREET_PAUSE,
	LI_AUTH,
	LI_PLAINTEXT_AUTH,
	LI_COUNT
};
static const char *const listener_keys[] = {
    [LI_NAME] = "name",     [LI_PROTOCOL] = "protocol",
    [LI_LISTEN] = "listen", [LI_ALLOW] = "allow",
    [LI_DENY] = "deny",     [LI_GREET_PAUSE] = "greet_pause",
    [LI_AUTH] = "auth",     [LI_PLAINTEXT_AUTH] = "plaintext_auth",
};

/*
 * A listener with an unknown protocol or a bad name is still checked key
 * by key, so that one run reports everything wrong with it.
 */
static void
load_listener(struct loader *l, const yaml_node_t *n, size_t idx,
              struct config_listener *li)
{
	const struct config *c = l->config;
	yaml_node_t *v[LI_COUNT];
	char where[32], key[64], buf[SAFE_BUF];
	int proto = -1;

	snprintf(where, sizeof(where), "listeners[%zu]", idx);
	li->line = node_line(n);
	if (n->type != YAML_MAPPING_NODE) {
		error_at(l, node_line(n), "%s: expected a mapping", where);
		li->name = xstrdup(where);
		return;
	}
	get_mapping(l, n, where, listener_keys, LI_COUNT, v);

	snprintf(key, sizeof(key), "%s.protocol", where);
	if (is_null(v[LI_PROTOCOL]))
		error_at(l, node_line(n),
		         "%s: missing required key 'protocol' (smtp, "
		         "submission, submissions, pop3 or pop3s)",
		         where);
	else
		proto = get_enum(l, v[LI_PROTOCOL], key, proto_names,
		                 sizeof(proto_names) / sizeof(proto_names[0]),
		                 "smtp, submission, submissions, pop3, pop3s");
	if (proto >= 0)
		li->proto = (enum listener_proto)proto;

	snprintf(key, sizeof(key), "%s.name", where);
	if (!is_null(v[LI_NAME])) {
		const char *s = get_scalar(l, v[LI_NAME], key, "a string");
		if (s != NULL && !check_token(s, CONFIG_MAX_NAME))
			error_at(l, node_line(v[LI_NAME]),
			         "%s: '%s' must be 1 to %d letters, digits, "
			         "'-', '_' or '.'",
			         key, safe_text(buf, sizeof(buf), s, strlen(s)),
			         CONFIG_MAX_NAME);
		else if (s != NULL)
			li->name = xstrdup(s);
	} else if (proto >= 0) {
		li->name = xstrdup(proto_names[proto]);
	}
	if (li->name != NULL) {
		/* Names appear in logs as listener=NAME: one per listener. */
		for (const struct config_listener *o = c->listeners; o < li;
		     o++) {
			if (strcmp(o->name, li->name) != 0)
				continue;
			error_at(
			    l, node_line(is_null(v[LI_NAME]) ? n : v[LI_NAME]),
			    "%s: name '%s' is already used by the "
			    "listener on line %d%s",
			    is_null(v[LI_NAME]) ? where : key, li->name,
			    o->line,
			    is_null(v[LI_NAME])
			        ? " (without a name, a listener is "
			          "named after its protocol)"
			        : "");
			break;
		}
	} else {
		li->name = xstrdup(where);
	}

	snprintf(key, sizeof(key), "%s.listen", where);
	if (!is_null(v[LI_LISTEN])) {
		load_listen(l, v[LI_LISTEN], key, li);
	} else if (proto >= 0) {
		default_addrs(li);
		for (size_t i = 0; i < li->naddrs; i++)
			check_addr_unique(l, li, &li->addrs[i], li->line,
			                  where);
	}

	snprintf(key, sizeof(key), "%s.allow", where);
	get_cidr_list(l, v[LI_ALLOW], key, &li->allow);
	snprintf(key, sizeof(key), "%s.deny", where);
	get_cidr_list(l, v[LI_DENY], key, &li->deny);

	/*
	 * The early-talker test waits for the client to speak out of turn;
	 * with implicit TLS the client always speaks first (its TLS hello),
	 * so a pause there would fail every honest client.
	 */
	li->greet_pause_ms = proto == PROTO_SMTP ? 1000 : 0;
	snprintf(key, sizeof(key), "%s.greet_pause", where);
	/* 0 to 60 s: a longer pause outlasts the patience of real senders. */
	get_duration_ms(l, v[LI_GREET_PAUSE], key, 60000, "0..60s",
			&li->greet_pause_ms);
	if (li->greet_pause_ms > 0 &&
	    (proto == PROTO_SUBMISSIONS || proto == PROTO_POP3S))
		error_at(l, node_line(v[LI_GREET_PAUSE]),
		         "%s: must be 0 for protocol %s (with implicit TLS "
		         "the client speaks first)",
		         key, proto_names[proto]);

	/* Users log in on submission and POP3; servers on 25 do not. */
	li->auth = proto >= 0 && proto != PROTO_SMTP;
	snprintf(key, sizeof(key), "%s.auth", where);
	get_bool(l, v[LI_AUTH], key, &li->auth);
	li->plaintext_auth = false;
	snprintf(key, sizeof(key), "%s.plaintext_auth", where);
	get_bool(l, v[LI_PLAINTEXT_AUTH], key, &li->plaintext_auth);

	/*
	 * Implicit TLS cannot start without a certificate, and submission
	 * must not take a password before STARTTLS (RFC 8314 3.3).
	 */
	if ((proto == PROTO_SUBMISSION || proto == PROTO_SUBMISSIONS ||
	     proto == PROTO_POP3S) &&
	    c->ntls_certs == 0 && !l->tls_certs_given)
		error_at(l, li->line,
		         "%s: protocol %s requires a TLS certificate "
		         "(tls.certificates)",
		         where, proto_names[proto]);
}

static void
load_listeners(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	size_t count = 0;

	if (is_null(n)) {
		error_at(l, node_line(n),
		         "listeners: must name at least one listener "
		         "(leave the key out for the default)");
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		error_at(l, node_line(n),
		         "listeners: expected a list of listeners");
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count == 0) {
		error_at(l, node_line(n),
		         "listeners: must name at least one listener "
		         "(leave the key out for the default)");
		return;
	}
	if (count > CONFIG_MAX_LISTENERS) {
		error_at(l, node_line(n), "listeners: more than %d listeners",
		         CONFIG_MAX_LISTENERS);
		return;
	}
	c->listeners = xcalloc(count, sizeof(*c->listeners));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item =
		    get_node(l, n->data.sequence.items.start[i]);

		if (item == NULL)
			continue;
		/* Counted first: config_free must see a partial listener. */
		load_listener(l, item, i, &c->listeners[c->nlisteners++]);
	}
}

enum { LOG_K_FORMAT, LOG_K_FILE, LOG_K_LEVEL, LOG_K_COUNT };
static const char *const log_keys[] = {
    [LOG_K_FORMAT] = "format",
    [LOG_K_FILE] = "file",
    [LOG_K_LEVEL] = "level",
};

static void
load_log(struct loader *l, const yaml_node_t *n)
{
	static const char *const formats[] = {"kv", "json"};
	static const char *const levels[] = {"debug", "info", "warning",
	                                     "error"};
	static const int level_values[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING,
	                                   LOG_ERR};
	struct config *c = l->config;
	yaml_node_t *v[LOG_K_COUNT];
	int i;

	if (!get_mapping(l, n, "log", log_keys, LOG_K_COUNT, v))
		return;
	if (!is_null(v[LOG_K_FORMAT]) &&
	    (i = get_enum(l, v[LOG_K_FORMAT], "log.format", formats, 2,
	                  "kv, json")) >= 0)
		c->log_format = i == 0 ? LOG_FORMAT_KV : LOG_FORMAT_JSON;
	get_path(l, v[LOG_K_FILE], "log.file", &c->log_file);
	if (!is_null(v[LOG_K_LEVEL]) &&
	    (i = get_enum(l, v[LOG_K_LEVEL], "log.level", levels, 4,
	                  "debug, info, warning, error")) >= 0)
		c->log_level = level_values[i];
}

enum { UDB_DRIVER, UDB_PATH, UDB_COUNT };
static const char *const userdb_keys[] = {
    [UDB_DRIVER] = "driver",
    [UDB_PATH] = "path",
};

static void
load_userdb(struct loader *l, const yaml_node_t *n)
{
	static const char *const drivers[] = {"sqlite"};
	struct config *c = l->config;
	yaml_node_t *v[UDB_COUNT];

	if (!get_mapping(l, n, "userdb", userdb_keys, UDB_COUNT, v))
		return;
	if (!is_null(v[UDB_DRIVER]))
		(void)get_enum(l, v[UDB_DRIVER], "userdb.driver", drivers, 1,
		               "sqlite");
	get_path(l, v[UDB_PATH], "userdb.path", &c->userdb_path);
}

enum { TO_COMMAND, TO_DATA_BLOCK, TO_DATA_END, TO_COUNT };
static const char *const timeout_keys[] = {
    [TO_COMMAND] = "command",
    [TO_DATA_BLOCK] = "data_block",
    [TO_DATA_END] = "data_end",
};

enum {
	SMTP_MAX_MESSAGE_SIZE,
	SMTP_MAX_RECIPIENTS,
	SMTP_MAX_ERRORS,
	SMTP_MAX_COMMAND_LINE,
	SMTP_MAX_TEXT_LINE,
	SMTP_VRFY,
	SMTP_RECIPIENT_DELIMITER,
	SMTP_TRUSTED_NETWORKS,
	SMTP_TIMEOUTS,
	SMTP_MIN_DATA_RATE,
	SMTP_COUNT
};
static const char *const smtp_keys[] = {
    [SMTP_MAX_MESSAGE_SIZE] = "max_message_size",
    [SMTP_MAX_RECIPIENTS] = "max_recipients",
    [SMTP_MAX_ERRORS] = "max_errors",
    [SMTP_MAX_COMMAND_LINE] = "max_command_line",
    [SMTP_MAX_TEXT_LINE] = "max_text_line",
    [SMTP_VRFY] = "vrfy",
    [SMTP_RECIPIENT_DELIMITER] = "recipient_delimiter",
    [SMTP_TRUSTED_NETWORKS] = "trusted_networks",
    [SMTP_TIMEOUTS] = "timeouts",
    [SMTP_MIN_DATA_RATE] = "min_data_rate",
};

static void
load_smtp(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	yaml_node_t *v[SMTP_COUNT], *t[TO_COUNT];
	const yaml_node_t *d;
	char buf[SAFE_BUF];

	if (!get_mapping(l, n, "smtp", smtp_keys, SMTP_COUNT, v))
		return;
	get_size(l, v[SMTP_MAX_MESSAGE_SIZE], "smtp.max_message_size", 1024,
	         (uint64_t)4 << 30, "1K..4G", &c->max_message_size);
	get_uint(l, v[SMTP_MAX_RECIPIENTS], "smtp.max_recipients", 1, 100000,
	         &c->max_recipients);
	get_uint(l, v[SMTP_MAX_ERRORS], "smtp.max_errors", 1, 1000,
	         &c->max_errors);
	get_uint(l, v[SMTP_MAX_COMMAND_LINE], "smtp.max_command_line", 512,
	         4096, &c->max_command_line);
	get_uint(l, v[SMTP_MAX_TEXT_LINE], "smtp.max_text_line", 1000, 65536,
	         &c->max_text_line);
	get_bool(l, v[SMTP_VRFY], "smtp.vrfy", &c->vrfy);

	/* Null here disables, like "": "~" reads as "no delimiter". */
	d = v[SMTP_RECIPIENT_DELIMITER];
	if (d != NULL && is_null(d)) {
		c->recipient_delimiter = '\0';
	} else if (d != NULL) {
		const char *s =
		    get_scalar(l, d, "smtp.recipient_delimiter", "a string");
		if (s == NULL)
			;
		else if (*s == '\0')
			c->recipient_delimiter = '\0';
		else if (s[1] == '\0' && strchr("+-_.", s[0]) != NULL)
			c->recipient_delimiter = s[0];
		else
			error_at(l, node_line(d),
			         "smtp.recipient_delimiter: '%s' is not one "
			         "of \"+\", \"-\", \"_\", \".\" or \"\"",
			         safe_text(buf, sizeof(buf), s, strlen(s)));
	}
	get_cidr_list(l, v[SMTP_TRUSTED_NETWORKS], "smtp.trusted_networks",
	              &c->trusted_networks);
	get_size(l, v[SMTP_MIN_DATA_RATE], "smtp.min_data_rate", 0,
	         (uint64_t)1 << 30, "0..1G", &c->min_data_rate);

	if (!get_mapping(l, v[SMTP_TIMEOUTS], "smtp.timeouts", timeout_keys,
	                 TO_COUNT, t))
		return;
	get_duration(l, t[TO_COMMAND], "smtp.timeouts.command", 1, 86400,
	             "1s..1d", &c->timeout_command);
	get_duration(l, t[TO_DATA_BLOCK], "smtp.timeouts.data_block", 1, 86400,
	             "1s..1d", &c->timeout_data_block);
	get_duration(l, t[TO_DATA_END], "smtp.timeouts.data_end", 1, 86400,
	             "1s..1d", &c->timeout_data_end);
}

/* "N/DURATION" (60/60s), or "0" / "off" to disable the rate limit. */
static void
load_connection_rate(struct loader *l, const yaml_node_t *n)
{
	static const char *const key = "limits.connection_rate";
	struct config *c = l->config;
	const char *s, *slash, *error;
	char num[24], buf[SAFE_BUF];
	uint64_t count, window;

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "N/DURATION")) == NULL)
		return;
	if (strcmp(s, "0") == 0 || strcmp(s, "off") == 0) {
		c->conn_rate_count = 0;
		c->conn_rate_window = 0;
		return;
	}
	if ((slash = strchr(s, '/')) == NULL ||
	    (size_t)(slash - s) >= sizeof(num)) {
		error_at(l, node_line(n),
		         "%s: '%s' is not N/DURATION (such as 60/60s) or off",
		         key, safe_text(buf, sizeof(buf), s, strlen(s)));
		return;
	}
	memcpy(num, s, (size_t)(slash - s));
	num[slash - s] = '\0';
	if (parse_uint64(num, &count) < 0) {
		error_at(l, node_line(n),
		         "%s: '%s' is not N/DURATION (such as 60/60s) or off",
		         key, safe_text(buf, sizeof(buf), s, strlen(s)));
		return;
	}
	if (parse_duration(slash + 1, &window, &error) < 0) {
		error_at(l, node_line(n), "%s: %s", key, error);
		return;
	}
	if (count < 1 || count > 1000000) {
		error_at(l, node_line(n),
		         "%s: the count in '%s' is out of range (1..1000000)",
		         key, safe_text(buf, sizeof(buf), s, strlen(s)));
		return;
	}
	if (window < 1 || window > 86400) {
		error_at(l, node_line(n),
		         "%s: the window in '%s' is out of range (1s..1d)", key,
		         safe_text(buf, sizeof(buf), s, strlen(s)));
		return;
	}
	c->conn_rate_count = (unsigned)count;
	c->conn_rate_window = window;
}

enum {
	LIM_MAX_CONNECTIONS,
	LIM_MAX_CONNECTIONS_PER_IP,
	LIM_CONNECTION_RATE,
	LIM_GREET_PASS_TTL,
	LIM_SHUTDOWN_TIMEOUT,
	LIM_STRESS_THRESHOLD,
	LIM_STRESS_TIMEOUT,
	LIM_IPV6_PREFIX,
	LIM_IPV6_WIDE_PREFIX,
	LIM_IPV6_WIDE_FACTOR,
	LIM_COUNT
};
static const char *const limits_keys[] = {
    [LIM_MAX_CONNECTIONS] = "max_connections",
    [LIM_MAX_CONNECTIONS_PER_IP] = "max_connections_per_ip",
    [LIM_CONNECTION_RATE] = "connection_rate",
    [LIM_GREET_PASS_TTL] = "greet_pass_ttl",
    [LIM_SHUTDOWN_TIMEOUT] = "shutdown_timeout",
    [LIM_STRESS_THRESHOLD] = "stress_threshold",
    [LIM_STRESS_TIMEOUT] = "stress_timeout",
    [LIM_IPV6_PREFIX] = "ipv6_prefix",
    [LIM_IPV6_WIDE_PREFIX] = "ipv6_wide_prefix",
    [LIM_IPV6_WIDE_FACTOR] = "ipv6_wide_factor",
};

static void
load_limits(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	yaml_node_t *v[LIM_COUNT];

	if (!get_mapping(l, n, "limits", limits_keys, LIM_COUNT, v))
		return;
	get_uint(l, v[LIM_MAX_CONNECTIONS], "limits.max_connections", 1,
	         1000000, &c->max_connections);
	get_uint(l, v[LIM_MAX_CONNECTIONS_PER_IP],
	         "limits.max_connections_per_ip", 1, 1000000,
	         &c->max_connections_per_ip);
	load_connection_rate(l, v[LIM_CONNECTION_RATE]);
	get_duration(l, v[LIM_GREET_PASS_TTL], "limits.greet_pass_ttl", 0,
	             90 * 86400, "0..90d", &c->greet_pass_ttl);
	get_duration(l, v[LIM_SHUTDOWN_TIMEOUT], "limits.shutdown_timeout", 0,
	             3600, "0..1h", &c->shutdown_timeout);
	get_uint(l, v[LIM_STRESS_THRESHOLD], "limits.stress_threshold", 0, 100,
	         &c->stress_threshold);
	get_duration(l, v[LIM_STRESS_TIMEOUT], "limits.stress_timeout", 1,
	             3600, "1s..1h", &c->stress_timeout);
	get_uint(l, v[LIM_IPV6_PREFIX], "limits.ipv6_prefix", 16, 128,
	         &c->ipv6_prefix);
	get_uint(l, v[LIM_IPV6_WIDE_PREFIX], "limits.ipv6_wide_prefix", 0, 127,
	         &c->ipv6_wide_prefix);
	get_uint(l, v[LIM_IPV6_WIDE_FACTOR], "limits.ipv6_wide_factor", 1,
	         1000, &c->ipv6_wide_factor);
	if (c->ipv6_wide_prefix != 0 &&
	    c->ipv6_wide_prefix >= c->ipv6_prefix)
		error_at(l,
		         node_line(v[LIM_IPV6_WIDE_PREFIX] != NULL
		                       ? v[LIM_IPV6_WIDE_PREFIX]
		                       : v[LIM_IPV6_PREFIX]),
		         "limits.ipv6_wide_prefix: must be 0 (none) or shorter "
		         "than limits.ipv6_prefix");
}

enum { CERT_CERT, CERT_KEY, CERT_COUNT };
static const char *const cert_keys[] = {
    [CERT_CERT] = "cert",
    [CERT_KEY] = "key",
};

static void
load_certificates(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	size_t count;

	if (is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		l->tls_certs_given = true;
		error_at(l, node_line(n),
		         "tls.certificates: expected a list of {cert, key}");
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	/* An empty list is no certificate: listeners that need one say so. */
	l->tls_certs_given = count > 0;
	if (count > CONFIG_MAX_CERTS) {
		error_at(l, node_line(n),
		         "tls.certificates: more than %d certificates",
		         CONFIG_MAX_CERTS);
		return;
	}
	if (count == 0)
		return;
	c->tls_certs = xcalloc(count, sizeof(*c->tls_certs));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item =
		    get_node(l, n->data.sequence.items.start[i]);
		yaml_node_t *v[CERT_COUNT];
		struct config_certificate *cc;
		char where[48], key[64];

		if (item == NULL)
			continue;
		snprintf(where, sizeof(where), "tls.certificates[%zu]", i);
		if (item->type != YAML_MAPPING_NODE) {
			error_at(l, node_line(item), "%s: expected a mapping",
			         where);
			continue;
		}
		/* Counted first: config_free must see a partial entry. */
		cc = &c->tls_certs[c->ntls_certs++];
		cc->line = node_line(item);
		get_mapping(l, item, where, cert_keys, CERT_COUNT, v);
		snprintf(key, sizeof(key), "%s.cert", where);
		if (is_null(v[CERT_CERT]))
			error_at(l, cc->line, "%s: missing required key 'cert'",
			         where);
		else
			get_path(l, v[CERT_CERT], key, &cc->cert);
		snprintf(key, sizeof(key), "%s.key", where);
		if (is_null(v[CERT_KEY]))
			error_at(l, cc->line, "%s: missing required key 'key'",
			         where);
		else
			get_path(l, v[CERT_KEY], key, &cc->key);
	}
}

/*
 * An OpenSSL cipher list. Only its shape is checked here (printable
 * ASCII, no spaces-only value); whether OpenSSL knows the names is checked
 * when the TLS context is built (tls_ctx_new), which config check runs too.
 */
static void
get_cipher_list(struct loader *l, const yaml_node_t *n, const char *key,
                char **r)
{
	const char *s;

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "a cipher list")) == NULL)
		return;
	if (*s == '\0') {
		error_at(l, node_line(n), "%s: must not be empty", key);
		return;
	}
	if (strlen(s) > CONFIG_MAX_CIPHERS) {
		error_at(l, node_line(n), "%s: longer than %d characters", key,
		         CONFIG_MAX_CIPHERS);
		return;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			error_at(l, node_line(n),
			         "%s: only printable ASCII without spaces is "
			         "allowed (separate names with ':')",
			         key);
			return;
		}
	}
	free(*r);
	*r = xstrdup(s);
}

enum { TLS_CERTIFICATES, TLS_MIN_VERSION, TLS_CIPHERS, TLS_CIPHERSUITES,
       TLS_HANDSHAKE_TIMEOUT, TLS_COUNT };
static const char *const tls_keys[] = {
    [TLS_CERTIFICATES] = "certificates",
    [TLS_MIN_VERSION] = "min_version",
    [TLS_CIPHERS] = "ciphers",
    [TLS_CIPHERSUITES] = "ciphersuites",
    [TLS_HANDSHAKE_TIMEOUT] = "handshake_timeout",
};

static void
load_tls(struct loader *l, const yaml_node_t *n)
{
	static const char *const versions[] = {"TLSv1.2", "TLSv1.3"};
	struct config *c = l->config;
	yaml_node_t *v[TLS_COUNT];
	int i;

	if (!get_mapping(l, n, "tls", tls_keys, TLS_COUNT, v))
		return;
	load_certificates(l, v[TLS_CERTIFICATES]);
	if (!is_null(v[TLS_MIN_VERSION]) &&
	    (i = get_enum(l, v[TLS_MIN_VERSION], "tls.min_version", versions,
	                  2, "TLSv1.2, TLSv1.3")) >= 0) {
		free(c->tls_min_version);
		c->tls_min_version = xstrdup(versions[i]);
	}
	get_cipher_list(l, v[TLS_CIPHERS], "tls.ciphers", &c->tls_ciphers);
	get_cipher_list(l, v[TLS_CIPHERSUITES], "tls.ciphersuites",
	                &c->tls_ciphersuites);
	get_duration(l, v[TLS_HANDSHAKE_TIMEOUT], "tls.handshake_timeout", 1,
	             3600, "1s..1h", &c->tls_handshake_timeout);
}

enum {
	AUTH_CRAM_MD5,
	AUTH_MAX_FAILURES_IP,
	AUTH_MAX_FAILURES_ACCOUNT,
	AUTH_FAILURE_WINDOW,
	AUTH_BAN_TIME,
	AUTH_DELAY_BASE,
	AUTH_DELAY_MAX,
	AUTH_COUNT
};
static const char *const auth_keys[] = {
    [AUTH_CRAM_MD5] = "cram_md5",
    [AUTH_MAX_FAILURES_IP] = "max_failures_ip",
    [AUTH_MAX_FAILURES_ACCOUNT] = "max_failures_account",
    [AUTH_FAILURE_WINDOW] = "failure_window",
    [AUTH_BAN_TIME] = "ban_time",
    [AUTH_DELAY_BASE] = "delay_base",
    [AUTH_DELAY_MAX] = "delay_max",
};

static void
load_auth(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	yaml_node_t *v[AUTH_COUNT];

	if (!get_mapping(l, n, "auth", auth_keys, AUTH_COUNT, v))
		return;
	get_bool(l, v[AUTH_CRAM_MD5], "auth.cram_md5", &c->auth_cram_md5);
	get_uint(l, v[AUTH_MAX_FAILURES_IP], "auth.max_failures_ip", 1,
	         1000000, &c->auth_max_failures_ip);
	get_uint(l, v[AUTH_MAX_FAILURES_ACCOUNT], "auth.max_failures_account",
	         1, 1000000, &c->auth_max_failures_account);
	get_duration(l, v[AUTH_FAILURE_WINDOW], "auth.failure_window", 1,
	             30 * 86400, "1s..30d", &c->auth_failure_window);
	get_duration(l, v[AUTH_BAN_TIME], "auth.ban_time", 1, 30 * 86400,
	             "1s..30d", &c->auth_ban_time);
	get_duration_ms(l, v[AUTH_DELAY_BASE], "auth.delay_base", 60000,
	                "0..60s", &c->auth_delay_base_ms);
	get_duration_ms(l, v[AUTH_DELAY_MAX], "auth.delay_max", 300000,
	                "0..5m", &c->auth_delay_max_ms);
	if (c->auth_delay_max_ms < c->auth_delay_base_ms)
		error_at(l,
		         node_line(v[AUTH_DELAY_MAX] != NULL
		                       ? v[AUTH_DELAY_MAX]
		                       : v[AUTH_DELAY_BASE]),
		         "auth.delay_max: must not be less than "
		         "auth.delay_base");
}

enum { SUB_CHECK_FROM, SUB_REFUSE_ADDRESS_DISPLAY_NAME, SUB_COUNT };
static const char *const submission_keys[] = {
    [SUB_CHECK_FROM] = "check_from",
    [SUB_REFUSE_ADDRESS_DISPLAY_NAME] = "refuse_address_display_name",
};

static void
load_submission(struct loader *l, const yaml_node_t *n)
{
	yaml_node_t *v[SUB_COUNT];

	if (!get_mapping(l, n, "submission", submission_keys, SUB_COUNT, v))
		return;
	get_bool(l, v[SUB_CHECK_FROM], "submission.check_from",
	         &l->config->submission_check_from);
	get_bool(l, v[SUB_REFUSE_ADDRESS_DISPLAY_NAME],
	         "submission.refuse_address_display_name",
	         &l->config->submission_refuse_address_display_name);
}

enum { POP3_TIMEOUT, POP3_LOGIN_DELAY, POP3_LOGIN_TIMEOUT, POP3_COUNT };
static const char *const pop3_keys[] = {
    [POP3_TIMEOUT] = "timeout",
    [POP3_LOGIN_DELAY] = "login_delay",
    [POP3_LOGIN_TIMEOUT] = "login_timeout",
};

static void
load_pop3(struct loader *l, const yaml_node_t *n)
{
	yaml_node_t *v[POP3_COUNT];

	if (!get_mapping(l, n, "pop3", pop3_keys, POP3_COUNT, v))
		return;
	/* RFC 1939 section 3: an autologout timer of at least 10 minutes */
	get_duration(l, v[POP3_TIMEOUT], "pop3.timeout", 600, 86400,
		     "10m..1d", &l->config->pop3_timeout);
	get_duration(l, v[POP3_LOGIN_DELAY], "pop3.login_delay", 0, 86400,
		     "0..1d", &l->config->pop3_login_delay);
	/* before login the client has no session to lose: shorter is
	 * allowed, as a defence against hoarded connections */
	get_duration(l, v[POP3_LOGIN_TIMEOUT], "pop3.login_timeout", 1, 86400,
		     "1s..1d", &l->config->pop3_login_timeout);
}

enum { RET_MAIL, RET_INTERVAL, RET_COUNT };
static const char *const retention_keys[] = {
    [RET_MAIL] = "mail",
    [RET_INTERVAL] = "interval",
};

static void
load_retention(struct loader *l, const yaml_node_t *n)
{
	yaml_node_t *v[RET_COUNT];

	if (!get_mapping(l, n, "retention", retention_keys, RET_COUNT, v))
		return;
	/* 0 keeps mail forever; anything shorter than a day is a typo */
	get_duration(l, v[RET_MAIL], "retention.mail", 0, 100ULL * 366 * 86400,
		     "0, or 1d..100 years", &l->config->retention_mail);
	if (l->config->retention_mail > 0 && l->config->retention_mail < 86400)
		error_at(l, node_line(v[RET_MAIL]),
		         "retention.mail: must be 0 (keep forever) or at "
		         "least 1d");
	get_duration(l, v[RET_INTERVAL], "retention.interval", 60, 7 * 86400,
		     "1m..1w", &l->config->retention_interval);
}

/* ---- outbound (issue 6) ---------------------------------------------- */

/* A list of strings; each checked by check (NULL = any non-empty). */
static void
get_string_list(struct loader *l, const yaml_node_t *n, const char *key,
		const char *expected, const char *(*check)(const char *),
		bool lower, char ***v_r, size_t *n_r)
{
	char buf[SAFE_BUF];
	size_t count;

	if (is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		error_at(l, node_line(n), "%s: expected a list of %s", key,
			 expected);
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	for (size_t i = 0; i < *n_r; i++)
		free((*v_r)[i]);
	free(*v_r);
	*v_r = NULL;
	*n_r = 0;
	if (count == 0)
		return;
	*v_r = xcalloc(count, sizeof(**v_r));
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = get_node(l, *it);
		const char *s, *error = NULL;
		char *d;

		if (item == NULL)
			continue;
		if ((s = get_scalar(l, item, key, expected)) == NULL)
			continue;
		d = xstrdup(s);
		if (lower) {
			size_t len = strlen(d);
			if (len > 1 && d[len - 1] == '.')
				d[len - 1] = '\0';
			ascii_lower(d);
		}
		if (*d == '\0')
			error = "must not be empty";
		else if (check != NULL)
			error = check(d);
		if (error != NULL) {
			error_at(l, node_line(item), "%s: '%s': %s", key,
				 safe_text(buf, sizeof(buf), s, strlen(s)),
				 error);
			free(d);
			continue;
		}
		(*v_r)[(*n_r)++] = d;
	}
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

static const char *
check_domain(const char *s)
{
	return check_hostname(s);
}

enum { DNS_RESOLVER, DNS_TRUST_ANCHOR, DNS_COUNT };
static const char *const dns_keys[] = {
    [DNS_RESOLVER] = "resolver",
    [DNS_TRUST_ANCHOR] = "trust_anchor",
};

static void
load_dns(struct loader *l, const yaml_node_t *n)
{
	static const char *const modes[] = {"system", "recursive"};
	struct config *c = l->config;
	yaml_node_t *v[DNS_COUNT];
	const yaml_node_t *r;

	if (!get_mapping(l, n, "dns", dns_keys, DNS_COUNT, v))
		return;
	r = v[DNS_RESOLVER];
	if (r != NULL && r->type == YAML_SEQUENCE_NODE) {
		get_string_list(l, r, "dns.resolver",
				"forwarder addresses such as "
				"[\"192.0.2.53\", \"2001:db8::53@5353\"]",
				check_forwarder, false, &c->dns_forwarders,
				&c->ndns_forwarders);
		if (c->ndns_forwarders == 0 &&
		    r->data.sequence.items.top == r->data.sequence.items.start)
			error_at(l, node_line(r),
				 "dns.resolver: the list of forwarders is "
				 "empty");
	} else if (!is_null(r)) {
		int i = get_enum(l, r, "dns.resolver", modes, 2,
				 "system, recursive, or a list of "
				 "forwarder addresses");
		if (i >= 0) {
			free(c->dns_mode);
			c->dns_mode = xstrdup(modes[i]);
		}
	}
	if (v[DNS_TRUST_ANCHOR] != NULL && !is_null(v[DNS_TRUST_ANCHOR])) {
		const char *s = get_scalar(l, v[DNS_TRUST_ANCHOR],
					   "dns.trust_anchor", "a path");
		if (s != NULL && *s != '\0')
			get_path(l, v[DNS_TRUST_ANCHOR], "dns.trust_anchor",
				 &c->dns_trust_anchor);
		if (c->dns_trust_anchor != NULL &&
		    access(c->dns_trust_anchor, R_OK) != 0)
			error_at(l, node_line(v[DNS_TRUST_ANCHOR]),
				 "dns.trust_anchor: %s: %s",
				 c->dns_trust_anchor, strerror(errno));
	}
}

static const char *const tls_policy_names[] = {"none", "may", "encrypt",
					       "verify"};
#define TLS_POLICY_ALLOWED "none, may, encrypt or verify"

static void
load_tls_policies(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	char buf[SAFE_BUF];
	size_t count;

	if (is_null(n))
		return;
	if (n->type != YAML_MAPPING_NODE) {
		error_at(l, node_line(n),
			 "outbound.tls_policy: expected a mapping of "
			 "domain: policy");
		return;
	}
	count = (size_t)(n->data.mapping.pairs.top -
			 n->data.mapping.pairs.start);
	c->tls_policies = xcalloc(count + 1, sizeof(*c->tls_policies));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = get_node(l, p->key);
		yaml_node_t *val = get_node(l, p->value);
		const char *s, *error;
		char *d;
		size_t len;
		int i;

		if (k == NULL || val == NULL)
			continue;
		if ((s = get_scalar(l, k, "outbound.tls_policy",
				    "a domain")) == NULL)
			continue;
		d = xstrdup(s);
		len = strlen(d);
		if (len > 1 && d[len - 1] == '.')
			d[len - 1] = '\0';
		ascii_lower(d);
		if ((error = check_hostname(d)) != NULL) {
			error_at(l, node_line(k),
				 "outbound.tls_policy: '%s' is not a domain "
				 "(%s)",
				 safe_text(buf, sizeof(buf), s, strlen(s)),
				 error);
			free(d);
			continue;
		}
		for (size_t j = 0; j < c->ntls_policies; j++)
			if (strcmp(c->tls_policies[j].domain, d) == 0) {
				error_at(l, node_line(k),
					 "outbound.tls_policy: duplicate "
					 "domain '%s'",
					 d);
				xfree(&d);
				break;
			}
		if (d == NULL)
			continue;
		i = get_enum(l, val, "outbound.tls_policy", tls_policy_names,
			     4, TLS_POLICY_ALLOWED);
		if (i < 0) {
			free(d);
			continue;
		}
		c->tls_policies[c->ntls_policies].domain = d;
		c->tls_policies[c->ntls_policies].policy = (enum tls_policy)i;
		c->ntls_policies++;
	}
}

static void
get_source_addr(struct loader *l, const yaml_node_t *n, const char *key,
		int family, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *s;
	char buf[SAFE_BUF];

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "an IP address")) == NULL)
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
	error_at(l, node_line(n), "%s: '%s' is not an IPv%d address", key,
		 safe_text(buf, sizeof(buf), s, strlen(s)),
		 family == AF_INET ? 4 : 6);
}

enum {
	OT_CONNECT,
	OT_GREETING,
	OT_COMMAND,
	OT_DATA_INIT,
	OT_DATA_BLOCK,
	OT_DATA_END,
	OT_COUNT
};
static const char *const out_timeout_keys[] = {
    [OT_CONNECT] = "connect",	  [OT_GREETING] = "greeting",
    [OT_COMMAND] = "command",	  [OT_DATA_INIT] = "data_init",
    [OT_DATA_BLOCK] = "data_block", [OT_DATA_END] = "data_end",
};

enum {
	OUT_IP_VERSION,
	OUT_PREFER,
	OUT_SOURCE4,
	OUT_SOURCE6,
	OUT_PORT,
	OUT_TLS,
	OUT_TLS_POLICY,
	OUT_CA_FILE,
	OUT_MAX_CONNECTIONS,
	OUT_MAX_PER_DOMAIN,
	OUT_TIMEOUTS,
	OUT_COUNT
};
static const char *const outbound_keys[] = {
    [OUT_IP_VERSION] = "ip_version",
    [OUT_PREFER] = "prefer",
    [OUT_SOURCE4] = "source_ipv4",
    [OUT_SOURCE6] = "source_ipv6",
    [OUT_PORT] = "port",
    [OUT_TLS] = "tls",
    [OUT_TLS_POLICY] = "tls_policy",
    [OUT_CA_FILE] = "ca_file",
    [OUT_MAX_CONNECTIONS] = "max_connections",
    [OUT_MAX_PER_DOMAIN] = "max_per_domain",
    [OUT_TIMEOUTS] = "timeouts",
};

/* An optional readable file: "" leaves it unset. */
static void
get_opt_file(struct loader *l, const yaml_node_t *n, const char *key,
	     char **r)
{
	const char *s;

	if (is_null(n))
		return;
	if ((s = get_scalar(l, n, key, "a path")) == NULL)
		return;
	if (*s == '\0') {
		xfree(r);
		return;
	}
	get_path(l, n, key, r);
	if (*r != NULL && access(*r, R_OK) != 0)
		error_at(l, node_line(n), "%s: %s: %s", key, *r,
			 strerror(errno));
}

static void
load_outbound(struct loader *l, const yaml_node_t *n)
{
	static const char *const versions[] = {"both", "ipv4", "ipv6"};
	static const char *const prefers[] = {"ipv6", "ipv4"};
	struct config *c = l->config;
	yaml_node_t *v[OUT_COUNT], *t[OT_COUNT];
	uint64_t *to[OT_COUNT] = {
	    &c->outbound_timeout_connect,    &c->outbound_timeout_greeting,
	    &c->outbound_timeout_command,    &c->outbound_timeout_data_init,
	    &c->outbound_timeout_data_block, &c->outbound_timeout_data_end,
	};
	int i;

	if (!get_mapping(l, n, "outbound", outbound_keys, OUT_COUNT, v))
		return;
	if (!is_null(v[OUT_IP_VERSION]) &&
	    (i = get_enum(l, v[OUT_IP_VERSION], "outbound.ip_version",
			  versions, 3, "both, ipv4 or ipv6")) >= 0) {
		c->outbound_ipv4 = i != 2;
		c->outbound_ipv6 = i != 1;
	}
	if (!is_null(v[OUT_PREFER]) &&
	    (i = get_enum(l, v[OUT_PREFER], "outbound.prefer", prefers, 2,
			  "ipv6 or ipv4")) >= 0)
		c->outbound_prefer_ipv4 = i == 1;
	get_source_addr(l, v[OUT_SOURCE4], "outbound.source_ipv4", AF_INET,
			&c->outbound_source4, &c->outbound_source4_len);
	get_source_addr(l, v[OUT_SOURCE6], "outbound.source_ipv6", AF_INET6,
			&c->outbound_source6, &c->outbound_source6_len);
	get_uint(l, v[OUT_PORT], "outbound.port", 1, 65535,
		 &c->outbound_port);
	if (!is_null(v[OUT_TLS]) &&
	    (i = get_enum(l, v[OUT_TLS], "outbound.tls", tls_policy_names, 4,
			  TLS_POLICY_ALLOWED)) >= 0)
		c->outbound_tls = (enum tls_policy)i;
	load_tls_policies(l, v[OUT_TLS_POLICY]);
	get_opt_file(l, v[OUT_CA_FILE], "outbound.ca_file",
		     &c->outbound_ca_file);
	get_uint(l, v[OUT_MAX_CONNECTIONS], "outbound.max_connections", 1,
		 10000, &c->outbound_max_connections);
	get_uint(l, v[OUT_MAX_PER_DOMAIN], "outbound.max_per_domain", 1,
		 10000, &c->outbound_max_per_domain);
	if (!get_mapping(l, v[OUT_TIMEOUTS], "outbound.timeouts",
			 out_timeout_keys, OT_COUNT, t))
		return;
	for (int k = 0; k < OT_COUNT; k++) {
		char key[64];
		snprintf(key, sizeof(key), "outbound.timeouts.%s",
			 out_timeout_keys[k]);
		get_duration(l, t[k], key, 1, 86400, "1s..1d", to[k]);
	}
}

enum { Q_LIFETIME, Q_RETRY_MIN, Q_RETRY_MAX, Q_DELAY_WARNING, Q_COUNT };
static const char *const queue_keys[] = {
    [Q_LIFETIME] = "lifetime",
    [Q_RETRY_MIN] = "retry_min",
    [Q_RETRY_MAX] = "retry_max",
    [Q_DELAY_WARNING] = "delay_warning",
};

static void
load_queue(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	yaml_node_t *v[Q_COUNT];

	if (!get_mapping(l, n, "queue", queue_keys, Q_COUNT, v))
		return;
	get_duration(l, v[Q_LIFETIME], "queue.lifetime", 1, 100ULL * 86400,
		     "1s..100d", &c->queue_lifetime);
	get_duration(l, v[Q_RETRY_MIN], "queue.retry_min", 1, 86400,
		     "1s..1d", &c->queue_retry_min);
	get_duration(l, v[Q_RETRY_MAX], "queue.retry_max", 1, 7 * 86400,
		     "1s..1w", &c->queue_retry_max);
	get_duration(l, v[Q_DELAY_WARNING], "queue.delay_warning", 0,
		     100ULL * 86400, "0..100d", &c->queue_delay_warning);
	if (c->queue_retry_max < c->queue_retry_min)
		error_at(l,
			 node_line(v[Q_RETRY_MAX] != NULL ? v[Q_RETRY_MAX]
							  : v[Q_RETRY_MIN]),
			 "queue.retry_max: must not be less than "
			 "queue.retry_min");
}

enum {
	SH_HOST,
	SH_PORT,
	SH_TLS,
	SH_VERIFY,
	SH_CA_FILE,
	SH_CREDENTIALS,
	SH_DOMAINS,
	SH_COUNT
};
static const char *const smarthost_keys[] = {
    [SH_HOST] = "host",		  [SH_PORT] = "port",
    [SH_TLS] = "tls",		  [SH_VERIFY] = "verify",
    [SH_CA_FILE] = "ca_file",	  [SH_CREDENTIALS] = "credentials",
    [SH_DOMAINS] = "domains",
};

/* "name" or "[IPv4]" / "[IPv6:addr]" / "[addr]" */
static const char *
check_relay_host(const char *s)
{
	size_t len = strlen(s);
	unsigned char tmp[sizeof(struct in6_addr)];
	char ip[INET6_ADDRSTRLEN + 8];

	if (s[0] != '[')
		return check_hostname(s);
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

static void
load_smarthost(struct loader *l, const yaml_node_t *n)
{
	static const char *const modes[] = {"starttls", "implicit", "none"};
	struct config *c = l->config;
	yaml_node_t *v[SH_COUNT];
	const char *s, *error;
	char buf[SAFE_BUF];
	int i;

	if (!get_mapping(l, n, "smarthost", smarthost_keys, SH_COUNT, v))
		return;
	if (!is_null(v[SH_HOST]) &&
	    (s = get_scalar(l, v[SH_HOST], "smarthost.host", "a host")) !=
		NULL &&
	    *s != '\0') {
		char *h = xstrdup(s);
		if (h[0] != '[')
			ascii_lower(h);
		if ((error = check_relay_host(h)) != NULL) {
			error_at(l, node_line(v[SH_HOST]),
				 "smarthost.host: '%s': %s",
				 safe_text(buf, sizeof(buf), s, strlen(s)),
				 error);
			free(h);
		} else {
			free(c->smarthost_host);
			c->smarthost_host = h;
		}
	}
	if (!is_null(v[SH_TLS]) &&
	    (i = get_enum(l, v[SH_TLS], "smarthost.tls", modes, 3,
			  "starttls, implicit or none")) >= 0)
		c->smarthost_tls = (enum smarthost_tls)i;
	c->smarthost_port = c->smarthost_tls == SMARTHOST_IMPLICIT ? 465 : 587;
	get_uint(l, v[SH_PORT], "smarthost.port", 1, 65535,
		 &c->smarthost_port);
	get_bool(l, v[SH_VERIFY], "smarthost.verify", &c->smarthost_verify);
	get_opt_file(l, v[SH_CA_FILE], "smarthost.ca_file",
		     &c->smarthost_ca_file);
	get_opt_file(l, v[SH_CREDENTIALS], "smarthost.credentials",
		     &c->smarthost_credentials);
	if (c->smarthost_credentials != NULL) {
		struct stat st;
		if (stat(c->smarthost_credentials, &st) == 0 &&
		    (st.st_mode & 077) != 0)
			error_at(l, node_line(v[SH_CREDENTIALS]),
				 "smarthost.credentials: %s is readable by "
				 "group or others (chmod 600 it)",
				 c->smarthost_credentials);
		if (c->smarthost_tls == SMARTHOST_NONE)
			error_at(l, node_line(v[SH_CREDENTIALS]),
				 "smarthost.credentials: refusing to send a "
				 "password without TLS (smarthost.tls: none)");
	}
	get_string_list(l, v[SH_DOMAINS], "smarthost.domains", "domains",
			check_domain, true, &c->smarthost_domains,
			&c->nsmarthost_domains);
	if (c->smarthost_host == NULL && v[SH_HOST] == NULL &&
	    (v[SH_PORT] != NULL || v[SH_CREDENTIALS] != NULL ||
	     v[SH_DOMAINS] != NULL))
		error_at(l, node_line(n),
			 "smarthost: host is required when other smarthost "
			 "keys are set");
}

enum {
	TOP_HOSTNAME,
	TOP_POSTMASTER,
	TOP_DATA_DIR,
	TOP_USER,
	TOP_WORKERS,
	TOP_LOG,
	TOP_USERDB,
	TOP_SMTP,
	TOP_LIMITS,
	TOP_TLS,
	TOP_AUTH,
	TOP_SUBMISSION,
	TOP_POP3,
	TOP_RETENTION,
	TOP_DNS,
	TOP_OUTBOUND,
	TOP_QUEUE,
	TOP_SMARTHOST,
	TOP_LISTENERS,
	TOP_COUNT
};
static const char *const top_keys[] = {
    [TOP_HOSTNAME] = "hostname",
    [TOP_POSTMASTER] = "postmaster",
    [TOP_DATA_DIR] = "data_dir",
    [TOP_USER] = "user",
    [TOP_WORKERS] = "workers",
    [TOP_LOG] = "log",
    [TOP_USERDB] = "userdb",
    [TOP_SMTP] = "smtp",
    [TOP_LIMITS] = "limits",
    [TOP_TLS] = "tls",
    [TOP_AUTH] = "auth",
    [TOP_SUBMISSION] = "submission",
    [TOP_POP3] = "pop3",
    [TOP_RETENTION] = "retention",
    [TOP_DNS] = "dns",
    [TOP_OUTBOUND] = "outbound",
    [TOP_QUEUE] = "queue",
    [TOP_SMARTHOST] = "smarthost",
    [TOP_LISTENERS] = "listeners",
};

static void
load_hostname(struct loader *l, const yaml_node_t *root, const yaml_node_t *n)
{
	struct config *c = l->config;
	const char *s, *error;
	char buf[SAFE_BUF], *h;
	size_t len;

	if (is_null(n)) {
		error_at(l, node_line(n != NULL ? n : root),
		         "missing required key 'hostname' (this server's "
		         "fully qualified domain name)");
		return;
	}
	if ((s = get_scalar(l, n, "hostname", "a domain name")) == NULL)
		return;
	h = xstrdup(s);
	/* "mail.example.com." is the same name written absolutely. */
	len = strlen(h);
	if (len > 1 && h[len - 1] == '.')
		h[len - 1] = '\0';
	if ((error = check_hostname(h)) != NULL) {
		error_at(l, node_line(n),
		         "hostname: '%s' is not a valid domain name (%s)",
		         safe_text(buf, sizeof(buf), s, strlen(s)), error);
		free(h);
		return;
	}
	ascii_lower(h);
	c->hostname = h;
}

/*
 * postmaster: the address that mail for the postmaster of this host
 * ("<postmaster>", postmaster@hostname) goes to: a mailbox, as RCPT
 * takes it (no "<>", no address literal); the domain is lower-cased.
 */
static void
load_postmaster(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	struct smtp_path path;
	struct smtp_error err;
	const char *s, *end;
	char buf[SAFE_BUF], *text, out[SMTP_PATH_MAX * 4 + 8];

	if (n == NULL || is_null(n))
		return;
	if ((s = get_scalar(l, n, "postmaster", "an address")) == NULL)
		return;
	text = xasprintf("<%s>", s);
	if (*s == '\0' || strlen(s) > SMTP_PATH_MAX ||
	    smtp_parse_path(text, false, false, true, &path, &end, &err) < 0 ||
	    *end != '\0' || path.mbox.domain[0] == '\0' ||
	    path.mbox.is_literal ||
	    smtp_mailbox_format(&path.mbox, out, sizeof(out)) < 0) {
		error_at(l, node_line(n),
		         "postmaster: '%s' is not an address (local@domain)",
		         safe_text(buf, sizeof(buf), s, strlen(s)));
		free(text);
		return;
	}
	free(text);
	free(c->postmaster);
	c->postmaster = xstrdup(out);
}

static void
load_user(struct loader *l, const yaml_node_t *n)
{
	struct config *c = l->config;
	const char *s;
	char buf[SAFE_BUF];

	if (n == NULL)
		return;
	/* Unlike elsewhere, an explicit null is meaningful: do not drop. */
	if (is_null(n)) {
		xfree(&c->user);
		return;
	}
	if ((s = get_scalar(l, n, "user", "a user name")) == NULL)
		return;
	if (*s == '\0') {
		xfree(&c->user);
		return;
	}
	if (!check_token(s, 32)) {
		error_at(l, node_line(n),
		         "user: '%s' is not a valid user name (1 to 32 "
		         "letters, digits, '-', '_' or '.')",
		         safe_text(buf, sizeof(buf), s, strlen(s)));
		return;
	}
	free(c->user);
	c->user = xstrdup(s);
}

static void
load_root(struct loader *l, const yaml_node_t *root)
{
	struct config *c = l->config;
	yaml_node_t *v[TOP_COUNT];
	size_t len;

	if (!get_mapping(l, root, "", top_keys, TOP_COUNT, v))
		return;
	load_hostname(l, root, v[TOP_HOSTNAME]);
	load_postmaster(l, v[TOP_POSTMASTER]);
	get_path(l, v[TOP_DATA_DIR], "data_dir", &c->data_dir);
	/* "/var/lib/godwit/" and "/var/lib/godwit" are one directory. */
	len = strlen(c->data_dir);
	while (len > 1 && c->data_dir[len - 1] == '/')
		c->data_dir[--len] = '\0';
	load_user(l, v[TOP_USER]);
	get_uint(l, v[TOP_WORKERS], "workers", 0, 1024, &c->workers);
	load_log(l, v[TOP_LOG]);
	load_userdb(l, v[TOP_USERDB]);
	load_smtp(l, v[TOP_SMTP]);
	load_limits(l, v[TOP_LIMITS]);
	/* Before the listeners: they check that certificates exist. */
	load_tls(l, v[TOP_TLS]);
	load_auth(l, v[TOP_AUTH]);
	load_submission(l, v[TOP_SUBMISSION]);
	load_pop3(l, v[TOP_POP3]);
	load_retention(l, v[TOP_RETENTION]);
	load_dns(l, v[TOP_DNS]);
	load_outbound(l, v[TOP_OUTBOUND]);
	load_queue(l, v[TOP_QUEUE]);
	load_smarthost(l, v[TOP_SMARTHOST]);
	if (v[TOP_LISTENERS] == NULL) {
		struct config_listener *li;
		c->listeners = li = xcalloc(1, sizeof(*li));
		c->nlisteners = 1;
		li->name = xstrdup("mx");
		li->proto = PROTO_SMTP;
		li->greet_pause_ms = 1000;
		li->line = 0;
		default_addrs(li);
	} else {
		load_listeners(l, v[TOP_LISTENERS]);
	}
	if (c->userdb_path == NULL)
		c->userdb_path = xasprintf("%s/db/godwit.sqlite", c->data_dir);
}

static struct config *
config_new(const char *path)
{
	struct config *c = xcalloc(1, sizeof(*c));

	c->path = xstrdup(path);
	c->data_dir = xstrdup("/var/lib/godwit");
	c->user = xstrdup("godwit");
	c->workers = 0;
	c->log_format = LOG_FORMAT_KV;
	c->log_level = LOG_INFO;
	c->userdb_driver = xstrdup("sqlite");
	c->max_message_size = 25 * 1024 * 1024;
	c->max_recipients = 100;
	c->max_errors = 10;
	c->max_command_line = 512;
	c->max_text_line = 1000;
	c->vrfy = false;
	c->recipient_delimiter = '+';
	c->timeout_command = 300;
	c->timeout_data_block = 180;
	c->timeout_data_end = 600;
	c->min_data_rate = 500;	/* Postfix's smtpd_min_data_rate */
	c->max_connections = 1000;
	c->max_connections_per_ip = 20;
	c->conn_rate_count = 60;
	c->conn_rate_window = 60;
	c->greet_pass_ttl = 86400;
	c->ipv6_prefix = 64;
	c->ipv6_wide_prefix = 48;
	c->ipv6_wide_factor = 4;
	c->shutdown_timeout = 30;
	c->stress_threshold = 75;
	c->stress_timeout = 10;	/* Postfix's smtpd_timeout under stress */
	c->tls_min_version = xstrdup("TLSv1.2");
	c->tls_ciphers = xstrdup(TLS_DEFAULT_CIPHERS);
	c->tls_ciphersuites = NULL; /* OpenSSL's default */
	c->tls_handshake_timeout = 30;
	c->auth_cram_md5 = false;
	c->auth_max_failures_ip = 10;
	c->auth_max_failures_account = 10;
	c->auth_failure_window = 3600;
	c->auth_ban_time = 3600;
	c->auth_delay_base_ms = 1000;
	c->auth_delay_max_ms = 15000;
	c->submission_check_from = true;
	c->submission_refuse_address_display_name = true;
	c->pop3_timeout = 600;
	c->pop3_login_timeout = 600;
	c->pop3_login_delay = 0;
	c->retention_mail = 0;
	c->retention_interval = 3600;
	c->dns_mode = xstrdup("system");
	c->outbound_ipv4 = true;
	c->outbound_ipv6 = true;
	c->outbound_port = 25;
	c->outbound_tls = TLS_POLICY_MAY;
	c->outbound_max_connections = 100;
	c->outbound_max_per_domain = 20;
	/* RFC 5321 4.5.3.2; connect as Postfix's smtp_connect_timeout */
	c->outbound_timeout_connect = 30;
	c->outbound_timeout_greeting = 300;
	c->outbound_timeout_command = 300;
	c->outbound_timeout_data_init = 120;
	c->outbound_timeout_data_block = 180;
	c->outbound_timeout_data_end = 600;
	c->queue_lifetime = 5 * 86400;
	c->queue_retry_min = 300;
	c->queue_retry_max = 4 * 3600;
	c->queue_delay_warning = 0;
	c->smarthost_port = 587;
	c->smarthost_tls = SMARTHOST_STARTTLS;
	c->smarthost_verify = true;
	return c;
}

/*
 * libyaml's own message, with where it was and what it was inside. The
 * reader (encoding, control characters) reports a byte offset instead of
 * a mark, so the line is counted from the input.
 */
static void
yaml_error(struct loader *l, const yaml_parser_t *p, const char *data,
           size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "parse error";
	int line = (int)p->problem_mark.line + 1;

	if (p->error == YAML_READER_ERROR) {
		line = 1;
		for (size_t i = 0; i < p->problem_offset && i < len; i++)
			line += data[i] == '\n';
	}

	if (p->error == YAML_MEMORY_ERROR) {
		fprintf(stderr, "godwit: out of memory\n");
		abort();
	}
	if (p->context != NULL)
		error_at(l, line,
		         "YAML syntax error: %s (%s that starts on line %d)",
		         problem, p->context, (int)p->context_mark.line + 1);
	else
		error_at(l, line, "YAML syntax error: %s", problem);
}

/* Errors in file order ("file:line: message" lines), then freed. */
static char *
join_errors(struct loader *l)
{
	size_t total = 1;
	char *out, *p;

	/*
	 * By line, keeping the walk's order within a line: an insertion sort
	 * is stable (qsort is not) and there are at most CONFIG_MAX_ERRORS.
	 */
	for (size_t i = 1; i < l->nerrs; i++) {
		struct config_error e = l->errs[i];
		size_t j = i;
		while (j > 0 && l->errs[j - 1].line > e.line) {
			l->errs[j] = l->errs[j - 1];
			j--;
		}
		l->errs[j] = e;
	}
	for (size_t i = 0; i < l->nerrs; i++)
		total += strlen(l->name) + strlen(l->errs[i].msg) + 16;
	if (l->dropped > 0) {
		/* Past the cap error_at would refuse it: add it by hand. */
		l->errs =
		    xreallocarray(l->errs, l->nerrs + 1, sizeof(*l->errs));
		l->errs[l->nerrs].line = l->dropped_line;
		l->errs[l->nerrs].msg =
		    xasprintf("%zu more errors not shown", l->dropped);
		total += strlen(l->name) + strlen(l->errs[l->nerrs].msg) + 16;
		l->nerrs++;
	}
	p = out = xmalloc(total);
	*p = '\0';
	for (size_t i = 0; i < l->nerrs; i++) {
		int n = snprintf(p, total - (size_t)(p - out), "%s%s:%d: %s",
		                 i > 0 ? "\n" : "", l->name, l->errs[i].line,
		                 l->errs[i].msg);
		p += n;
		free(l->errs[i].msg);
	}
	xfree(&l->errs);
	l->nerrs = 0;
	return out;
}

/*
 * libyaml's scanner costs O(depth) per token inside flow collections, so
 * a file of nested "[[[[..." takes minutes to parse (1 MiB of them, the
 * largest file we read, would stall `config check` and every reload).
 * No configuration nests deeper than a few levels: refuse more than
 * CONFIG_MAX_FLOW_DEPTH before libyaml sees the text. Brackets inside
 * quoted scalars and comments do not count. Returns the line where the
 * limit is passed, or 0.
 */
#define CONFIG_MAX_FLOW_DEPTH 64

static int
flow_too_deep(const char *p, size_t len)
{
	int depth = 0, line = 1;
	char quote = 0;
	bool comment = false;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\n') {
			line++;
			comment = false;
			continue;
		}
		if (comment)
			continue;
		if (quote != 0) {
			if (quote == '"' && c == '\\' && i + 1 < len &&
			    p[i + 1] != '\n')
				i++;
			else if (c == quote)
				quote = 0;
			continue;
		}
		if (c == '#' && (i == 0 || p[i - 1] == ' ' || p[i - 1] == '\t' ||
				 p[i - 1] == '\n'))
			comment = true;
		else if (c == '"' || c == '\'')
			quote = c;
		else if ((c == '[' || c == '{') && ++depth > CONFIG_MAX_FLOW_DEPTH)
			return line;
		else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}
	return 0;
}

int
config_load_buffer(const char *name, const void *data, size_t len,
                   struct config **config_r, char **errors_r)
{
	struct loader l = {.name = name};
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	struct config *c;
	int deep;

	*config_r = NULL;
	*errors_r = NULL;
	c = config_new(name);
	l.config = c;
	if (len > CONFIG_MAX_FILE) {
		*errors_r =
		    xasprintf("%s: larger than the limit of 1 MiB", name);
		config_free(&c);
		return -1;
	}
	if ((deep = flow_too_deep(data, len)) > 0) {
		*errors_r = xasprintf("%s:%d: nested deeper than %d levels",
		                      name, deep, CONFIG_MAX_FLOW_DEPTH);
		config_free(&c);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		fprintf(stderr, "godwit: out of memory\n");
		abort();
	}
	yaml_parser_set_input_string(&parser, data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_error(&l, &parser, data, len);
	} else {
		l.doc = &doc;
		/* A second document would be silently ignored: refuse it. */
		if (!yaml_parser_load(&parser, &extra)) {
			yaml_error(&l, &parser, data, len);
		} else {
			if (yaml_document_get_root_node(&extra) != NULL)
				error_at(&l, (int)extra.start_mark.line + 1,
				         "only one YAML document is allowed "
				         "(remove the '---' separator)");
			yaml_document_delete(&extra);
		}
		load_root(&l, yaml_document_get_root_node(&doc));
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	if (l.nerrs > 0) {
		*errors_r = join_errors(&l);
		config_free(&c);
		return -1;
	}
	*config_r = c;
	return 0;
}

int
config_load(const char *path, struct config **config_r, char **errors_r)
{
	char *buf;
	size_t len = 0;
	int fd, ret;

	*config_r = NULL;
	*errors_r = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		*errors_r =
		    xasprintf("%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	/* One byte over the limit tells "too large" from "exactly 1 MiB". */
	buf = xmalloc(CONFIG_MAX_FILE + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, CONFIG_MAX_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*errors_r = xasprintf("%s: cannot read: %s", path,
			                      strerror(errno));
			close(fd);
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_FILE)
			break;
	}
	close(fd);
	if (len > CONFIG_MAX_FILE) {
		*errors_r =
		    xasprintf("%s: larger than the limit of 1 MiB", path);
		free(buf);
		return -1;
	}
	ret = config_load_buffer(path, buf, len, config_r, errors_r);
	free(buf);
	return ret;
}

void
config_free(struct config **configp)
{
	struct config *c = *configp;

	if (c == NULL)
		return;
	free(c->path);
	free(c->hostname);
	free(c->postmaster);
	free(c->data_dir);
	free(c->user);
	free(c->log_file);
	free(c->userdb_driver);
	free(c->userdb_path);
	cidr_list_clear(&c->trusted_networks);
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct config_listener *li = &c->listeners[i];
		free(li->name);
		for (size_t j = 0; j < li->naddrs; j++)
			free(li->addrs[j].text);
		free(li->addrs);
		cidr_list_clear(&li->allow);
		cidr_list_clear(&li->deny);
	}
	free(c->listeners);
	for (size_t i = 0; i < c->ntls_certs; i++) {
		free(c->tls_certs[i].cert);
		free(c->tls_certs[i].key);
	}
	free(c->tls_certs);
	free(c->tls_min_version);
	free(c->tls_ciphers);
	free(c->tls_ciphersuites);
	free(c->dns_mode);
	for (size_t i = 0; i < c->ndns_forwarders; i++)
		free(c->dns_forwarders[i]);
	free(c->dns_forwarders);
	free(c->dns_trust_anchor);
	for (size_t i = 0; i < c->ntls_policies; i++)
		free(c->tls_policies[i].domain);
	free(c->tls_policies);
	free(c->outbound_ca_file);
	free(c->smarthost_host);
	free(c->smarthost_ca_file);
	free(c->smarthost_credentials);
	for (size_t i = 0; i < c->nsmarthost_domains; i++)
		free(c->smarthost_domains[i]);
	free(c->smarthost_domains);
	free(c);
	*configp = NULL;
}
