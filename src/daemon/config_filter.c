/*
 * The filter: section of the configuration (filter/filter.h): its tables,
 * one per filter, and the load functions of the keys no generic type
 * covers. docs/configuration.md documents every key; docs/filtering.md
 * explains the filters.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config_load.h"
#include "filter/filter.h"
#include "lib/conftab.h"
#include "lib/xalloc.h"
#include "mail/attach_name.h"
#include "mail/dnsbl_spec.h"

#define DAY 86400

/* ---- filter.greylist ---------------------------------------------------- */

static const struct conf_key greylist_keys[] = {
    {"enabled", CONF_BOOL, F(greylist_config, enabled), .def = 0,
     .doc = "greylist mail on port 25 (451 4.7.1 on first sight)"},
    {"delay", CONF_DURATION, F(greylist_config, delay),
     SPAN(1, DAY, "1s..1d", 300),
     .doc = "how long a first sight waits before its retry is accepted"},
    {"window", CONF_DURATION, F(greylist_config, window),
     SPAN(1, 30 * DAY, "1s..30d", 2 * DAY),
     .doc = "how long a first sight waits for its retry"},
    {"expire", CONF_DURATION, F(greylist_config, expire),
     SPAN(1, 365 * DAY, "1s..365d", 35 * DAY),
     .doc = "how long a passed triplet and an allowed client are kept "
            "after their last use"},
    {"auto_allow", CONF_UINT, F(greylist_config, auto_allow),
     UINT(0, 1000, 5),
     .doc = "deliveries after which a client is no longer greylisted; "
            "0: never"},
    {"skip_domains", CONF_STRINGS, F(greylist_config, skip_domains),
     .offset_n = offsetof(struct greylist_config, nskip_domains),
     .lower = true, .allowed = "domains",
     .doc = "mail with dkim=pass or spf=pass from these domains is never "
            "greylisted"},
    {"max_entries", CONF_UINT, F(greylist_config, max_entries),
     UINT(100, 10000000, 100000),
     .doc = "triplets (and client networks) kept at most; the least "
            "recently used go first"},
};
/* The delay must fit in the window, or no retry could ever pass. */
static void
greylist_section_check(struct conf_loader *l, const yaml_node_t *map,
               yaml_node_t *const *v, void *base)
{
	const struct greylist_config *g = base;

	(void)v;
	if (g->delay >= g->window)
		conf_error(l, conf_line(map),
		           "filter.greylist: delay must be shorter than window");
}

static const struct conf_section greylist_section =
    SECTION("filter.greylist", greylist_keys, greylist_section_check);

/* ---- filter.attachments ------------------------------------------------- */

static const char *const encrypted_names[] = {"refuse", "allow"};

static const char *
check_extension(const char *s)
{
	return attach_ext_valid(s[0] == '.' ? s + 1 : s);
}

/* Absent: the default list (mail/attach_name.c); [] blocks no
 * extension. An item may be written with its dot. */
static void
load_blocked_extensions(struct conf_loader *l, const yaml_node_t *n,
			const char *key, void *base)
{
	struct attach_config *c = base;

	if (conf_is_null(n)) {
		c->blocked_extensions =
		    xcalloc(attach_ndefault_extensions, sizeof(char *));
		for (size_t i = 0; i < attach_ndefault_extensions; i++)
			c->blocked_extensions[i] =
			    xstrdup(attach_default_extensions[i]);
		c->nblocked_extensions = attach_ndefault_extensions;
		return;
	}
	conf_get_strings(l, n, key, "extensions", check_extension, true,
			 &c->blocked_extensions, &c->nblocked_extensions);
	for (size_t i = 0; i < c->nblocked_extensions; i++) {
		char *e = c->blocked_extensions[i];

		if (e[0] == '.')
			memmove(e, e + 1, strlen(e));
	}
}

static const struct conf_key attachments_keys[] = {
    {"enabled", CONF_BOOL, F(attach_config, enabled), .def = 1,
     .doc = "refuse dangerous attachments (554 5.7.1 naming the file)"},
    {"blocked_extensions", CONF_STRINGS,
     F(attach_config, blocked_extensions),
     .offset_n = offsetof(struct attach_config, nblocked_extensions),
     .load = load_blocked_extensions,
     .doc = "file extensions refused (default: Gmail's list)"},
    {"encrypted_archives", CONF_ENUM, F(attach_config, encrypted_archives),
     WORDS(encrypted_names, "refuse, allow"), .def = 0,
     .doc = "password-protected archives: refuse (their content cannot be "
            "checked) or allow"},
    {"max_depth", CONF_UINT, F(attach_config, max_depth), UINT(1, 100, 20),
     .doc = "multiparts, messages and archives nested, at most"},
    {"max_parts", CONF_UINT, F(attach_config, max_parts),
     UINT(10, 100000, 1000),
     .doc = "MIME parts and archive members in a message, at most"},
    {"max_decoded_size", CONF_SIZE, F(attach_config, max_decoded_size),
     SPAN(1024 * 1024, 4ULL << 30, "1M..4G", 100ULL << 20),
     .doc = "octets decoded and unpacked to check a message, at most"},
};
static const struct conf_section attachments_section =
    SECTION("filter.attachments", attachments_keys, NULL);

/* ---- filter.clamd ------------------------------------------------------- */

static const char *const on_error_names[] = {"tempfail", "accept"};

/* "unix:/path" or "inet:host:port", parsed once here (clamd.h). */
static void
load_clamd_socket(struct conf_loader *l, const yaml_node_t *n,
		  const char *key, void *base)
{
	struct clamd_config *c = base;
	struct filter_addr a;
	char buf[CONF_SAFE_BUF];
	const char *s, *error;

	if (conf_is_null(n))
		s = c->socket;	/* the default */
	else if ((s = conf_scalar(l, n, key, "unix:/path or inet:host:port")) ==
		 NULL)
		return;
	if (filter_socket_parse(s, &a, &error) < 0) {
		conf_error(l, conf_line(n), "%s: '%s': %s", key,
			   conf_safe(buf, s), error);
		return;
	}
	c->addr = a;
	if (s != c->socket) {
		free(c->socket);
		c->socket = xstrdup(s);
	}
}

static const struct conf_key clamd_keys[] = {
    {"enabled", CONF_BOOL, F(clamd_config, enabled), .def = 0,
     .doc = "scan every message with clamd (554 5.7.1 naming a virus)"},
    {"socket", CONF_STRING, F(clamd_config, socket),
     .def_str = "unix:/run/clamav/clamd.ctl", .load = load_clamd_socket,
     .doc = "clamd's socket: unix:/path or inet:host:port (an IP address; "
            "IPv6 in brackets)"},
    {"timeout", CONF_DURATION, F(clamd_config, timeout),
     SPAN(1, 600, "1s..10m", 60),
     .doc = "for the whole scan: connecting, sending, clamd's verdict"},
    {"on_error", CONF_ENUM, F(clamd_config, on_error),
     WORDS(on_error_names, "tempfail, accept"), .def = CLAMD_ON_ERROR_TEMPFAIL,
     .doc = "clamd down, too slow or failing: tempfail (451 4.7.1) or accept "
            "(with a header saying it was not scanned)"},
    {"max_size", CONF_SIZE, F(clamd_config, max_size),
     SPAN(1024, (uint64_t)4 << 30, "1K..4G", 25 * 1024 * 1024),
     .doc = "larger messages are accepted unscanned (with a header saying "
            "so); keep clamd's StreamMaxLength at least this"},
};
static const struct conf_section clamd_section =
    SECTION("filter.clamd", clamd_keys, NULL);

/* ---- filter.milters ------------------------------------------------------ */

#define MILTERS_MAX 16

enum {
	MI_NAME,
	MI_SOCKET,
	MI_ON_ERROR,
	MI_TIMEOUT,
	MI_JUNK_HEADER,
	MI_COUNT
};

static const struct conf_key milter_keys[] = {
    [MI_NAME] = {"name", CONF_STRING, F(milter_config, name),
                 .doc = "required, unique; in logs as milter=NAME"},
    [MI_SOCKET] = {"socket", CONF_STRING, F(milter_config, socket),
                   .doc = "required: unix:/path, inet:host:port or "
                          "inet6:host:port"},
    [MI_ON_ERROR] = {"on_error", CONF_ENUM, F(milter_config, on_error),
                     WORDS(on_error_names, "tempfail, accept"), .def = 0,
                     .doc = "milter down, too slow or broken: tempfail "
                            "(451 4.7.1) or accept (skip it)"},
    [MI_TIMEOUT] = {"timeout", CONF_DURATION, F(milter_config, timeout),
                    SPAN(1, 600, "1s..10m", 30),
                    .doc = "connect and each reply"},
    [MI_JUNK_HEADER] = {"junk_header", CONF_STRING,
                        F(milter_config, junk_header),
                        .doc = "\"Name: value\" the milter adds to spam: "
                               "the message goes to .Junk"},
};

/* "Name: value": a field name (printable, no colon), then a value. */
static bool
junk_header_valid(const char *s)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL || colon == s || strlen(s) > 200)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e ||
		    (p < colon && *p == ' '))
			return false;
	return true;
}

static void
milter_strings(struct conf_loader *l, yaml_node_t *const *v,
               const char *where, struct milter_config *m)
{
	char key[64];
	const char *s, *err;

	snprintf(key, sizeof(key), "%s.name", where);
	if (conf_is_null(v[MI_NAME]))
		conf_error(l, m->line, "%s: missing required key 'name'", where);
	else if ((s = conf_scalar(l, v[MI_NAME], key, "a name")) != NULL) {
		if (!config_check_token(s, 32))
			conf_error(l, conf_line(v[MI_NAME]),
			           "%s: not a valid name (1 to 32 letters, "
			           "digits, '-', '_' or '.')", key);
		else
			m->name = xstrdup(s);
	}
	snprintf(key, sizeof(key), "%s.socket", where);
	if (conf_is_null(v[MI_SOCKET]))
		conf_error(l, m->line, "%s: missing required key 'socket'",
		           where);
	else if ((s = conf_scalar(l, v[MI_SOCKET], key, "a socket")) != NULL) {
		if (filter_socket_parse(s, &m->addr, &err) < 0)
			conf_error(l, conf_line(v[MI_SOCKET]), "%s: %s", key,
			           err);
		else
			m->socket = xstrdup(s);
	}
	snprintf(key, sizeof(key), "%s.junk_header", where);
	if (!conf_is_null(v[MI_JUNK_HEADER]) &&
	    (s = conf_scalar(l, v[MI_JUNK_HEADER], key, "Name: value")) !=
	        NULL) {
		if (!junk_header_valid(s))
			conf_error(l, conf_line(v[MI_JUNK_HEADER]),
			           "%s: expected \"Name: value\"", key);
		else
			m->junk_header = xstrdup(s);
	}
}

static void
load_milter(struct conf_loader *l, const yaml_node_t *n, size_t idx,
            struct filter_config *fc)
{
	struct milter_config *m = &fc->milters[fc->nmilters++];
	yaml_node_t *v[MI_COUNT];
	char where[40], key[64];

	snprintf(where, sizeof(where), "filter.milters[%zu]", idx);
	m->line = conf_line(n);
	m->timeout = milter_keys[MI_TIMEOUT].def;
	m->on_error = MILTER_ON_ERROR_TEMPFAIL;
	if (n->type != YAML_MAPPING_NODE) {
		conf_error(l, m->line, "%s: expected a mapping", where);
		return;
	}
	conf_mapping(l, n, where, milter_keys, MI_COUNT, v);
	milter_strings(l, v, where, m);
	snprintf(key, sizeof(key), "%s.on_error", where);
	conf_load_key(l, v[MI_ON_ERROR], key, &milter_keys[MI_ON_ERROR], m);
	snprintf(key, sizeof(key), "%s.timeout", where);
	conf_load_key(l, v[MI_TIMEOUT], key, &milter_keys[MI_TIMEOUT], m);
	for (size_t i = 0; m->name != NULL && i + 1 < fc->nmilters; i++)
		if (fc->milters[i].name != NULL &&
		    strcmp(fc->milters[i].name, m->name) == 0)
			conf_error(l, conf_line(v[MI_NAME]),
			           "%s.name: '%s' is already the name of "
			           "filter.milters[%zu]",
			           where, m->name, i);
}

static void
load_milters(struct conf_loader *l, const yaml_node_t *n, const char *key,
             void *base)
{
	struct filter_config *fc = base;
	size_t count;

	(void)key;
	if (conf_is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		conf_error(l, conf_line(n),
		           "filter.milters: expected a list of milters");
		return;
	}
	count = conf_seq_len(n);
	if (count > MILTERS_MAX) {
		conf_error(l, conf_line(n), "filter.milters: more than %d",
		           MILTERS_MAX);
		return;
	}
	if (count == 0)
		return;
	fc->milters = xcalloc(count, sizeof(*fc->milters));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = conf_seq_item(l, n, i);

		if (item != NULL)
			load_milter(l, item, i, fc);
	}
}

void
config_filter_free(struct filter_config *fc)
{
	for (size_t i = 0; i < fc->nmilters; i++) {
		free(fc->milters[i].name);
		free(fc->milters[i].socket);
		free(fc->milters[i].junk_header);
	}
	xfree(&fc->milters);
	fc->nmilters = 0;
}

/* ---- filter: ------------------------------------------------------------ */

#define FSUB(n, s, f)                                                          \
	{                                                                      \
		(n), CONF_SECTION, F(filter_config, f), .sub = &(s)            \
	}

static const struct conf_key filter_keys[] = {
    {"dnsbl", CONF_STRINGS, F(filter_config, dnsbl.dnsbl),
     .offset_n = offsetof(struct filter_config, dnsbl.ndnsbl),
     .allowed = "blocklist specs", .check = dnsbl_spec_check,
     .doc = "DNS blocklists: zone[=codes][*weight], postscreen style"},
    {"dnswl", CONF_STRINGS, F(filter_config, dnsbl.dnswl),
     .offset_n = offsetof(struct filter_config, dnsbl.ndnswl),
     .allowed = "allow list specs", .check = dnsbl_spec_check_allow,
     .doc = "DNS allow lists: a listed client skips the blocklists"},
    {"dnsbl_threshold", CONF_UINT, F(filter_config, dnsbl.threshold),
     UINT(1, 1000, 1),
     .doc = "the blocklist score that refuses a client"},
    {"dnsbl_timeout", CONF_DURATION_MS, F(filter_config, dnsbl.timeout_ms),
     SPAN(100, 60000, "100ms..60s", 5000),
     .doc = "each blocklist lookup (A, then TXT for a listing)"},
    FSUB("greylist", greylist_section, greylist),
    FSUB("attachments", attachments_section, attachments),
    FSUB("clamd", clamd_section, clamd),
    {"milters", CONF_NONE, .load = load_milters,
     .doc = "milters in order: [{name, socket, on_error, timeout, "
            "junk_header}]"},
};
const struct conf_section config_filter_section =
    SECTION("filter", filter_keys, NULL);
