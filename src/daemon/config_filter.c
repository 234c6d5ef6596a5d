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

static const struct conf_key attachments_keys[] = {
    {"enabled", CONF_BOOL, F(attach_config, enabled), .def = 1,
     .doc = "refuse dangerous attachments (554 5.7.1 naming the file)"},
};
static const struct conf_section attachments_section =
    SECTION("filter.attachments", attachments_keys, NULL);

/* ---- filter.clamd ------------------------------------------------------- */

static const char *const on_error_names[] = {"tempfail", "accept"};

static const struct conf_key clamd_keys[] = {
    {"enabled", CONF_BOOL, F(clamd_config, enabled), .def = 0,
     .doc = "scan every message with clamd"},
    {"socket", CONF_STRING, F(clamd_config, socket),
     .def_str = "unix:/run/clamav/clamd.ctl",
     .doc = "clamd's socket: unix:/path or inet:host:port"},
    {"timeout", CONF_DURATION, F(clamd_config, timeout),
     SPAN(1, 600, "1s..10m", 60), .doc = "for the whole scan"},
    {"on_error", CONF_ENUM, F(clamd_config, on_error),
     WORDS(on_error_names, "tempfail, accept"), .def = 0,
     .doc = "clamd down or too slow: tempfail (451 4.7.1) or accept "
            "(with a header saying it was not scanned)"},
};
static const struct conf_section clamd_section =
    SECTION("filter.clamd", clamd_keys, NULL);

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
};
const struct conf_section config_filter_section =
    SECTION("filter", filter_keys, NULL);
