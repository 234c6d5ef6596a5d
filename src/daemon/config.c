/*
 * godwit's YAML configuration: every section described once by a table
 * (lib/conftab.h: key, type, range, default, offset into the module's
 * struct, a line of documentation), which the loader, `godwit config
 * check` and the defaults all use. docs/configuration.md is the
 * reference for every key. What no generic type covers has a load
 * function here; the lists of mappings (listeners, tls.certificates) are
 * in config_sections.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daemon/config.h"
#include "daemon/config_load.h"
#include "lib/cidr.h"
#include "lib/conftab.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/smtp_parse.h"
#include "store/userdb_query.h"

/*
 * The TLS 1.2 default: forward secrecy (ECDHE) and AEAD ciphers only, in
 * the order Mozilla's "intermediate" profile gives them (without its DHE
 * suites: finite-field DH needs parameters and is slow).
 */
#define TLS_DEFAULT_CIPHERS                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define DAY 86400

/* CONF_ENUM stores an int */
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum tls_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum smarthost_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum listener_proto) == sizeof(int), "enum size");
_Static_assert(sizeof(enum msgauth_action) == sizeof(int), "enum size");

/* ---- value checks and load functions ---------------------------------- */

/* Null here disables, like "": "~" reads as "no delimiter". */
static void
load_delimiter(struct conf_loader *l, const yaml_node_t *n, const char *key,
               void *base)
{
	struct smtpd_config *smtp = base;
	const char *s;
	char buf[CONF_SAFE_BUF];

	if (n == NULL)
		return;
	if (conf_is_null(n)) {
		smtp->recipient_delimiter = '\0';
		return;
	}
	if ((s = conf_scalar(l, n, key, "a string")) == NULL)
		return;
	if (*s == '\0')
		smtp->recipient_delimiter = '\0';
	else if (s[1] == '\0' && strchr("+-_.", s[0]) != NULL)
		smtp->recipient_delimiter = s[0];
	else
		conf_error(l, conf_line(n),
		           "%s: '%s' is not one of \"+\", \"-\", \"_\", \".\" "
		           "or \"\"",
		           key, conf_safe(buf, s));
}

/* "N/DURATION" (60/60s), or "0" / "off" to disable the rate limit. */
static void
load_connection_rate(struct conf_loader *l, const yaml_node_t *n,
                     const char *key, void *base)
{
	struct limits_config *lim = base;
	const char *s, *slash, *error;
	char num[24], buf[CONF_SAFE_BUF];
	uint64_t count, window;

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "N/DURATION")) == NULL)
		return;
	if (strcmp(s, "0") == 0 || strcmp(s, "off") == 0) {
		lim->conn_rate_count = 0;
		lim->conn_rate_window = 0;
		return;
	}
	if ((slash = strchr(s, '/')) == NULL ||
	    (size_t)(slash - s) >= sizeof(num)) {
		conf_error(l, conf_line(n),
		           "%s: '%s' is not N/DURATION (such as 60/60s) or off",
		           key, conf_safe(buf, s));
		return;
	}
	memcpy(num, s, (size_t)(slash - s));
	num[slash - s] = '\0';
	if (parse_uint64(num, &count) < 0) {
		conf_error(l, conf_line(n),
		           "%s: '%s' is not N/DURATION (such as 60/60s) or off",
		           key, conf_safe(buf, s));
		return;
	}
	if (parse_duration(slash + 1, &window, &error) < 0) {
		conf_error(l, conf_line(n), "%s: %s", key, error);
		return;
	}
	if (count < 1 || count > 1000000) {
		conf_error(l, conf_line(n),
		           "%s: the count in '%s' is out of range (1..1000000)",
		           key, conf_safe(buf, s));
		return;
	}
	if (window < 1 || window > 86400) {
		conf_error(l, conf_line(n),
		           "%s: the window in '%s' is out of range (1s..1d)",
		           key, conf_safe(buf, s));
		return;
	}
	lim->conn_rate_count = (unsigned)count;
	lim->conn_rate_window = window;
}

/* 0 keeps forever; anything shorter than a day is a typo */
static void
load_retention_days(struct conf_loader *l, const yaml_node_t *n,
                    const char *key, uint64_t *d)
{
	conf_get_duration(l, n, key, 0, 100ULL * 366 * DAY,
	                  "0, or 1d..100 years", d);
	if (*d > 0 && *d < DAY)
		conf_error(l, conf_line(n),
		           "%s: must be 0 (keep forever) or at least 1d", key);
}

/* retention.mail */
static void
load_retention_mail(struct conf_loader *l, const yaml_node_t *n,
                    const char *key, void *base)
{
	struct retention_config *rc = base;

	load_retention_days(l, n, key, &rc->mail);
}

/* The same rule for log and audit files (retention.logs) */
static void
load_retention_logs(struct conf_loader *l, const yaml_node_t *n,
                    const char *key, void *base)
{
	struct retention_config *rc = base;

	load_retention_days(l, n, key, &rc->logs);
}

static void
load_hostname(struct conf_loader *l, const yaml_node_t *n, const char *key,
              void *base)
{
	const struct config_loading *st = l->ctx;
	struct config *c = base;
	const char *s, *error;
	char buf[CONF_SAFE_BUF], *h;
	size_t len;

	if (conf_is_null(n)) {
		conf_error(l, conf_line(n != NULL ? n : st->root),
		           "missing required key 'hostname' (this server's "
		           "fully qualified domain name)");
		return;
	}
	if ((s = conf_scalar(l, n, key, "a domain name")) == NULL)
		return;
	h = xstrdup(s);
	/* "mail.example.com." is the same name written absolutely. */
	len = strlen(h);
	if (len > 1 && h[len - 1] == '.')
		h[len - 1] = '\0';
	if ((error = config_check_hostname(h)) != NULL) {
		conf_error(l, conf_line(n),
		           "hostname: '%s' is not a valid domain name (%s)",
		           conf_safe(buf, s), error);
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
load_postmaster(struct conf_loader *l, const yaml_node_t *n, const char *key,
                void *base)
{
	struct config *c = base;
	struct smtp_path path;
	struct smtp_error err;
	const char *s, *end;
	char buf[CONF_SAFE_BUF], *text, out[SMTP_PATH_MAX * 4 + 8];

	if (n == NULL || conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "an address")) == NULL)
		return;
	text = xasprintf("<%s>", s);
	if (*s == '\0' || strlen(s) > SMTP_PATH_MAX ||
	    smtp_parse_path(text, false, false, true, &path, &end, &err) < 0 ||
	    *end != '\0' || path.mbox.domain[0] == '\0' ||
	    path.mbox.is_literal ||
	    smtp_mailbox_format(&path.mbox, out, sizeof(out)) < 0) {
		conf_error(l, conf_line(n),
		           "postmaster: '%s' is not an address (local@domain)",
		           conf_safe(buf, s));
		free(text);
		return;
	}
	free(text);
	free(c->postmaster);
	c->postmaster = xstrdup(out);
}

static void
load_user(struct conf_loader *l, const yaml_node_t *n, const char *key,
          void *base)
{
	struct config *c = base;
	const char *s;
	char buf[CONF_SAFE_BUF];

	if (n == NULL)
		return;
	/* Unlike elsewhere, an explicit null is meaningful: do not drop. */
	if (conf_is_null(n)) {
		xfree(&c->user);
		return;
	}
	if ((s = conf_scalar(l, n, key, "a user name")) == NULL)
		return;
	if (*s == '\0') {
		xfree(&c->user);
		return;
	}
	if (!config_check_token(s, 32)) {
		conf_error(l, conf_line(n),
		           "user: '%s' is not a valid user name (1 to 32 "
		           "letters, digits, '-', '_' or '.')",
		           conf_safe(buf, s));
		return;
	}
	free(c->user);
	c->user = xstrdup(s);
}

/* checks.authserv_id: a host name (an RFC 8601 value, written bare) */
static void
load_authserv_id(struct conf_loader *l, const yaml_node_t *n,
                 const char *key, void *base)
{
	struct checks_config *cc = base;
	const char *s, *error;
	char buf[CONF_SAFE_BUF];

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "a domain name")) == NULL)
		return;
	if ((error = config_check_hostname(s)) != NULL) {
		conf_error(l, conf_line(n), "%s: '%s' is not a domain name (%s)",
		           key, conf_safe(buf, s), error);
		return;
	}
	free(cc->authserv_id);
	cc->authserv_id = xstrdup(s);
	ascii_lower(cc->authserv_id);
}

/* dmarc.allow: a domain, an address or a network */
static const char *
check_allow_item(const char *s)
{
	struct cidr c;
	const char *error;

	if (cidr_parse(s, &c, &error) == 0)
		return NULL;
	if (strchr(s, ':') != NULL || strchr(s, '/') != NULL)
		return error;
	return config_check_hostname(s);
}

/* ---- tables ------------------------------------------------------------ */

/* A bare name ("mail.log") is a file in <data_dir>/log/ (check_root
 * makes it absolute); anything else is a path as it stands. */
static void
load_log_file(struct conf_loader *l, const yaml_node_t *n, const char *key,
              void *base)
{
	struct log_config *lc = base;

	conf_get_path(l, n, key, &lc->file);
	if (lc->file == NULL || lc->file[0] == '/')
		return;
	if (strchr(lc->file, '/') != NULL || strcmp(lc->file, ".") == 0 ||
	    strcmp(lc->file, "..") == 0 || lc->file[0] == '\0')
		conf_error(l, conf_line(n),
		           "%s: an absolute path, or a file name in "
		           "<data_dir>/log/ (no '/')",
		           key);
}

static const char *const log_formats[] = {"kv", "json"};
static const char *const log_rotations[] = {"daily", "none"};
static const char *const log_levels[] = {"debug", "info", "warning", "error"};
static const int log_level_values[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING,
                                       LOG_ERR};
static const struct conf_key log_keys[] = {
    {"format", CONF_ENUM, F(log_config, format), .def = LOG_FORMAT_KV,
     WORDS(log_formats, "kv, json"),
     .doc = "kv (key=value lines) or json (one object per line)"},
    {"file", CONF_PATH, F(log_config, file), .load = load_log_file,
     .doc = "append to this file (a bare name: in <data_dir>/log/); "
            "default: stderr"},
    {"level", CONF_ENUM, F(log_config, level), .def = LOG_INFO,
     WORDS(log_levels, "debug, info, warning, error"),
     .values = log_level_values, .doc = "the least severe logged"},
    {"rotate", CONF_ENUM, F(log_config, rotate), .def = LOG_ROTATE_DAILY,
     WORDS(log_rotations, "daily, none"),
     .doc = "daily: file -> file.YYYY-MM-DD at local midnight; "
            "none: an outside logrotate (SIGUSR1 reopens)"},
};

/* userdb.dsn: a connection string, kept as written (no control
 * characters: it goes into logs of connect failures) */
static void
load_userdb_dsn(struct conf_loader *l, const yaml_node_t *n, const char *key,
                void *base)
{
	struct userdb_config *u = base;
	const char *s;

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "a connection string")) == NULL)
		return;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			conf_error(l, conf_line(n),
			           "%s: control character in the connection "
			           "string", key);
			return;
		}
	if (strlen(s) > 4096) {
		conf_error(l, conf_line(n), "%s: longer than 4096 bytes", key);
		return;
	}
	free(u->dsn);
	u->dsn = xstrdup(s);
}

/* v: backend driver path dsn connect_timeout queries */
static void
check_userdb(struct conf_loader *l, const yaml_node_t *map,
             yaml_node_t *const *v, void *base)
{
	struct userdb_config *u = base;
	bool network;

	(void)map;
	if (v[0] != NULL && v[1] != NULL)
		conf_error(l, conf_line(v[1]),
		           "userdb.driver: the old spelling of userdb.backend; "
		           "set only backend");
	else if (v[1] != NULL && u->driver != NULL) {
		free(u->backend);
		u->backend = xstrdup(u->driver);
	}
	network = u->backend != NULL && strcmp(u->backend, "sqlite") != 0;
	if (network && u->dsn == NULL && v[3] == NULL)
		conf_error(l, conf_line(v[0] != NULL ? v[0] : v[1]),
		           "userdb: backend %s needs dsn (e.g. \"host=db "
		           "dbname=godwit user=godwit password=...\")",
		           u->backend);
	if (network && v[2] != NULL)
		conf_error(l, conf_line(v[2]),
		           "userdb.path: only for backend sqlite (%s uses dsn)",
		           u->backend);
	if (!network && v[3] != NULL)
		conf_error(l, conf_line(v[3]),
		           "userdb.dsn: only for backend postgresql or mysql "
		           "(sqlite uses path)");
	if (!network && v[5] != NULL && userdb_queries_set(&u->queries))
		conf_error(l, conf_line(v[5]),
		           "userdb.queries: only for backend postgresql or "
		           "mysql");
}

/* userdb.queries.*: one SELECT each, placeholders %s %u %d (bound, never
 * spliced): compiled now so that a mistake has its file:line */
static void
load_userdb_query(struct conf_loader *l, const yaml_node_t *n, const char *key,
                  void *base)
{
	struct userdb_queries *q = base;
	struct userdb_query_stmt st;
	const char *s, *name = strrchr(key, '.') + 1;
	char **slot, *err;

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "an SQL SELECT")) == NULL)
		return;
	if (userdb_query_compile(s, &st, &err) < 0) {
		conf_error(l, conf_line(n), "%s: %s", key, err);
		free(err);
		return;
	}
	userdb_query_stmt_clear(&st);
	slot = strcmp(name, "domain") == 0     ? &q->domain
	       : strcmp(name, "user") == 0     ? &q->user
	       : strcmp(name, "password") == 0 ? &q->password
	       : strcmp(name, "alias") == 0    ? &q->alias
	                                       : &q->domains;
	free(*slot);
	*slot = xstrdup(s);
}

/* v: domain user password alias domains */
static void
check_userdb_queries(struct conf_loader *l, const yaml_node_t *map,
                     yaml_node_t *const *v, void *base)
{
	static const char *const need[] = {"domain", "user", "password"};

	(void)base;
	if (map == NULL || (v[0] == NULL && v[1] == NULL && v[2] == NULL &&
	                    v[3] == NULL && v[4] == NULL))
		return;
	for (size_t i = 0; i < 3; i++)
		if (v[i] == NULL)
			conf_error(l, conf_line(map),
			           "userdb.queries: %s is missing (domain, user "
			           "and password are needed; alias and domains "
			           "are optional)",
			           need[i]);
}

static const struct conf_key userdb_query_keys[] = {
    {"domain", CONF_STRING, F(userdb_queries, domain),
     .load = load_userdb_query, .doc = "a row when %s is one of our domains"},
    {"user", CONF_STRING, F(userdb_queries, user), .load = load_userdb_query,
     .doc = "a row when the mailbox %s exists"},
    {"password", CONF_STRING, F(userdb_queries, password),
     .load = load_userdb_query,
     .doc = "one column: the crypt hash of %s ({SCHEME} prefixes of the "
            "crypt family understood)"},
    {"alias", CONF_STRING, F(userdb_queries, alias), .load = load_userdb_query,
     .doc = "rows of targets of %s (each a comma-separated list)"},
    {"domains", CONF_STRING, F(userdb_queries, domains),
     .load = load_userdb_query,
     .doc = "every domain (for domain list, doctor and dns)"},
};
static const struct conf_section userdb_queries_section =
    SECTION("userdb.queries", userdb_query_keys, check_userdb_queries);

static const char *const userdb_backends[] = {"sqlite", "postgresql",
                                              "mysql"};
static const struct conf_key userdb_keys[] = {
    {"backend", CONF_ENUM_STR, F(userdb_config, backend), .def_str = "sqlite",
     WORDS(userdb_backends, "sqlite, postgresql or mysql"),
     .doc = "the user database's backend"},
    {"driver", CONF_ENUM_STR, F(userdb_config, driver),
     WORDS(userdb_backends, "sqlite, postgresql or mysql"),
     .doc = "the old spelling of backend"},
    {"path", CONF_PATH, F(userdb_config, path),
     .doc = "sqlite; default: <data_dir>/db/godwit.sqlite"},
    {"dsn", CONF_STRING, F(userdb_config, dsn), .load = load_userdb_dsn,
     .doc = "postgresql, mysql: \"host=... dbname=... user=... "
            "password=...\" (or a postgresql:// URI)"},
    {"connect_timeout", CONF_DURATION, F(userdb_config, connect_timeout),
     SPAN(1, 300, "1s..5m", 5),
     .doc = "network backends: for the connect and for each statement"},
    {"queries", CONF_SECTION, F(userdb_config, queries),
     .sub = &userdb_queries_section,
     .doc = "read-only: your own schema, through these SELECTs"},
};

static const struct conf_key smtp_timeout_keys[] = {
    {"command", CONF_DURATION, F(smtpd_config, timeout_command),
     SPAN(1, DAY, "1s..1d", 300), .doc = "for a whole command line"},
    {"data_block", CONF_DURATION, F(smtpd_config, timeout_data_block),
     SPAN(1, DAY, "1s..1d", 180), .doc = "without a byte of DATA or BDAT"},
    {"data_end", CONF_DURATION, F(smtpd_config, timeout_data_end),
     SPAN(1, DAY, "1s..1d", 600),
     .doc = "for the reply after the end of the data"},
};
static const struct conf_section smtp_timeouts =
    SECTION("smtp.timeouts", smtp_timeout_keys, NULL);

static const struct conf_key smtp_keys[] = {
    {"max_message_size", CONF_SIZE, F(smtpd_config, max_message_size),
     SPAN(1024, (uint64_t)4 << 30, "1K..4G", 25 * 1024 * 1024),
     .doc = "bytes; SIZE and DATA enforce it"},
    {"max_recipients", CONF_UINT, F(smtpd_config, max_recipients),
     UINT(1, 100000, 100), .doc = "per message; 452 4.5.3 past it"},
    {"max_errors", CONF_UINT, F(smtpd_config, max_errors), UINT(1, 1000, 10),
     .doc = "per session; then 421 and close"},
    {"max_command_line", CONF_UINT, F(smtpd_config, max_command_line),
     UINT(512, 4096, 512), .doc = "octets with CRLF (RFC 5321: 512)"},
    {"max_text_line", CONF_UINT, F(smtpd_config, max_text_line),
     UINT(1000, 65536, 1000), .doc = "octets with CRLF (RFC 5321: 1000)"},
    {"vrfy", CONF_BOOL, F(smtpd_config, vrfy),
     .doc = "answer VRFY; false: 252"},
    {"recipient_delimiter", CONF_CHAR, F(smtpd_config, recipient_delimiter),
     .def = '+', .load = load_delimiter,
     .doc = "\"+\", \"-\", \"_\", \".\" or \"\" (no sub-addressing)"},
    {"trusted_networks", CONF_CIDRS, F(smtpd_config, trusted_networks),
     .doc = "networks that may relay"},
    /* Postfix's smtpd_min_data_rate */
    {"min_data_rate", CONF_SIZE, F(smtpd_config, min_data_rate),
     SPAN(0, 1 << 30, "0..1G", 500),
     .doc = "octets/s DATA must keep up after data_block; 0: off"},
    {"timeouts", CONF_SECTION, .sub = &smtp_timeouts},
};

static void
check_limits(struct conf_loader *l, const yaml_node_t *map,
             yaml_node_t *const *v, void *base)
{
	const struct limits_config *lim = base;

	(void)map;
	if (lim->ipv6_wide_prefix != 0 &&
	    lim->ipv6_wide_prefix >= lim->ipv6_prefix)
		conf_error(l, conf_line(v[9] != NULL ? v[9] : v[8]),
		           "limits.ipv6_wide_prefix: must be 0 (none) or "
		           "shorter than limits.ipv6_prefix");
}

static const struct conf_key limits_keys[] = {
    {"max_connections", CONF_UINT, F(limits_config, max_connections),
     UINT(1, 1000000, 1000), .doc = "all listeners, all workers"},
    {"max_connections_per_ip", CONF_UINT,
     F(limits_config, max_connections_per_ip), UINT(1, 1000000, 20),
     .doc = "per client (an IPv4 address or an IPv6 ipv6_prefix)"},
    {"connection_rate", CONF_UINT, F(limits_config, conn_rate_count), .def = 60,
     .load = load_connection_rate,
     .doc = "N/DURATION (60/60s) per client, or off"},
    {NULL, CONF_DURATION, F(limits_config, conn_rate_window), .def = 60},
    {"greet_pass_ttl", CONF_DURATION, F(limits_config, greet_pass_ttl),
     SPAN(0, 90 * DAY, "0..90d", DAY),
     .doc = "how long a client that waited for the greeting is trusted"},
    {"shutdown_timeout", CONF_DURATION, F(limits_config, shutdown_timeout),
     SPAN(0, 3600, "0..1h", 30), .doc = "what transactions get at SIGTERM"},
    {"stress_threshold", CONF_UINT, F(limits_config, stress_threshold),
     UINT(0, 100, 75), .doc = "% of max_connections; 0: never stress"},
    /* Postfix's smtpd_timeout under stress */
    {"stress_timeout", CONF_DURATION, F(limits_config, stress_timeout),
     SPAN(1, 3600, "1s..1h", 10),
     .doc = "line and handshake deadline before login under stress"},
    {"ipv6_prefix", CONF_UINT, F(limits_config, ipv6_prefix), UINT(16, 128, 64),
     .doc = "an IPv6 client is this network"},
    {"ipv6_wide_prefix", CONF_UINT, F(limits_config, ipv6_wide_prefix),
     UINT(0, 127, 48), .doc = "a second, wider budget; 0: none"},
    {"ipv6_wide_factor", CONF_UINT, F(limits_config, ipv6_wide_factor),
     UINT(1, 1000, 4), .doc = "the wide budget, times the client's"},
};

static const char *const tls_versions[] = {"TLSv1.2", "TLSv1.3"};
static const struct conf_key tls_keys[] = {
    {"certificates", CONF_NONE, .load = config_load_certificates,
     .doc = "[{cert, key}, ...]: the first is the default, others by "
            "SNI"},
    {"min_version", CONF_ENUM_STR, F(tls_config, min_version),
     .def_str = "TLSv1.2", WORDS(tls_versions, "TLSv1.2, TLSv1.3"),
     .doc = "TLSv1.2 or TLSv1.3"},
    {"ciphers", CONF_CIPHERS, F(tls_config, ciphers),
     .def_str = TLS_DEFAULT_CIPHERS,
     .doc = "TLS 1.2 cipher list, OpenSSL syntax"},
    {"ciphersuites", CONF_CIPHERS, F(tls_config, ciphersuites),
     .doc = "TLS 1.3 suites, OpenSSL syntax; default: OpenSSL's"},
    {"handshake_timeout", CONF_DURATION, F(tls_config, handshake_timeout),
     SPAN(1, 3600, "1s..1h", 30), .doc = "for a whole handshake"},
};

static void
check_auth(struct conf_loader *l, const yaml_node_t *map, yaml_node_t *const *v,
           void *base)
{
	const struct auth_config *a = base;

	(void)map;
	if (a->delay_max_ms < a->delay_base_ms)
		conf_error(l, conf_line(v[6] != NULL ? v[6] : v[5]),
		           "auth.delay_max: must not be less than "
		           "auth.delay_base");
}

static const struct conf_key auth_keys[] = {
    {"cram_md5", CONF_BOOL, F(auth_config, cram_md5),
     .doc = "store and offer CRAM-MD5 (a plaintext-equivalent secret)"},
    {"max_failures_ip", CONF_UINT, F(auth_config, max_failures_ip),
     UINT(1, 1000000, 10), .doc = "per client in the window; then a ban"},
    {"max_failures_account", CONF_UINT, F(auth_config, max_failures_account),
     UINT(1, 1000000, 10),
     .doc = "per account in the window; then delays grow"},
    {"failure_window", CONF_DURATION, F(auth_config, failure_window),
     SPAN(1, 30 * DAY, "1s..30d", 3600),
     .doc = "how long failures are counted"},
    {"ban_time", CONF_DURATION, F(auth_config, ban_time),
     SPAN(1, 30 * DAY, "1s..30d", 3600), .doc = "how long a ban lasts"},
    {"delay_base", CONF_DURATION_MS, F(auth_config, delay_base_ms),
     SPAN(0, 60000, "0..60s", 1000), .doc = "the first failure's delay"},
    {"delay_max", CONF_DURATION_MS, F(auth_config, delay_max_ms),
     SPAN(0, 300000, "0..5m", 15000), .doc = "the growing delay's cap"},
    {"cache_ttl", CONF_DURATION, F(auth_config, cache_ttl),
     SPAN(0, 3600, "0..1h", 30),
     .doc = "a confirmed password logs in again without a database lookup"},
};

static const struct conf_key account_limit_keys[] = {
    {"messages_per_hour", CONF_UINT, F(limits_send_policy, messages_per_hour),
     UINT(0, 10000000, 0)},
    {"recipients_per_hour", CONF_UINT,
     F(limits_send_policy, recipients_per_hour), UINT(0, 10000000, 0)},
    {"messages_per_day", CONF_UINT, F(limits_send_policy, messages_per_day),
     UINT(0, 10000000, 0)},
    {"recipients_per_day", CONF_UINT,
     F(limits_send_policy, recipients_per_day), UINT(0, 10000000, 0)},
};

/* A login name as the sessions keep it: printable, no space, an '@'. */
static bool
account_name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len < 3 || len > 319 || strchr(s, '@') == NULL)
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

/* One account of submission.limits.accounts: NULL if it is not one. */
static char *
limit_account(struct conf_loader *l, const struct submission_config *sc,
              const yaml_node_t *k, const char *key)
{
	char buf[CONF_SAFE_BUF], *a;
	const char *s;

	if ((s = conf_scalar(l, k, key, "an account")) == NULL)
		return NULL;
	if (!account_name_ok(s)) {
		conf_error(l, conf_line(k), "%s: '%s' is not an account "
		           "(local@domain)", key, conf_safe(buf, s));
		return NULL;
	}
	a = xstrdup(s);
	ascii_lower(a);
	for (size_t i = 0; i < sc->naccount_limits; i++)
		if (strcmp(sc->account_limits[i].account, a) == 0) {
			conf_error(l, conf_line(k), "%s: '%s' given twice",
			           key, a);
			xfree(&a);
			break;
		}
	return a;
}

/*
 * submission.limits.accounts: {ACCOUNT: {messages_per_hour: N, ...}};
 * loaded after the general limits, which the keys not given keep.
 */
static void
load_account_limits(struct conf_loader *l, const yaml_node_t *n,
                    const char *key, void *base)
{
	static const struct conf_section sec = SECTION(
	    "submission.limits.accounts.ACCOUNT", account_limit_keys, NULL);
	struct submission_config *sc = base;
	size_t count;

	if (n == NULL || conf_is_null(n))
		return;
	if (n->type != YAML_MAPPING_NODE) {
		conf_error(l, conf_line(n),
		           "%s: expected a mapping of account: limits", key);
		return;
	}
	count = (size_t)(n->data.mapping.pairs.top -
	                 n->data.mapping.pairs.start);
	sc->account_limits = xcalloc(count + 1, sizeof(*sc->account_limits));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = conf_node(l, p->key);
		yaml_node_t *val = conf_node(l, p->value);
		struct submission_account_limits *al =
		    &sc->account_limits[sc->naccount_limits];
		char *a;

		if (k == NULL || val == NULL ||
		    (a = limit_account(l, sc, k, key)) == NULL)
			continue;
		al->account = a;
		al->limits = sc->limits;
		conf_load_section(l, val, &sec, &al->limits);
		sc->naccount_limits++;
	}
}

/*
 * Sending limits: far above a person (Google Workspace lets a user send
 * 2,000 messages a day; a person rarely sends 50 in an hour) and reached
 * by a spam run within minutes. Postfix has no such limit of its own
 * (policyd-rate-limit and postfwd add one).
 */
static const struct conf_key submission_limit_keys[] = {
    {"messages_per_hour", CONF_UINT,
     F(submission_config, limits.messages_per_hour), UINT(0, 10000000, 200),
     .doc = "per account (MAIL commands); 0: unlimited"},
    {"recipients_per_hour", CONF_UINT,
     F(submission_config, limits.recipients_per_hour),
     UINT(0, 10000000, 500), .doc = "per account (RCPT); 0: unlimited"},
    {"messages_per_day", CONF_UINT,
     F(submission_config, limits.messages_per_day), UINT(0, 10000000, 1000),
     .doc = "per account; 0: unlimited"},
    {"recipients_per_day", CONF_UINT,
     F(submission_config, limits.recipients_per_day),
     UINT(0, 10000000, 2000), .doc = "per account; 0: unlimited"},
    /* after the four: an account's own limits start from them */
    {"accounts", CONF_NONE, .load = load_account_limits,
     .doc = "{account: {messages_per_hour: N, ...}}: limits of its own"},
};
static const struct conf_section submission_limits =
    SECTION("submission.limits", submission_limit_keys, NULL);

static const struct conf_key submission_keys[] = {
    {"limits", CONF_SECTION, .sub = &submission_limits},
    {"check_from", CONF_BOOL, F(submission_config, check_from), .def = 1,
     .doc = "header From: must be an address of the user"},
    {"refuse_address_display_name", CONF_BOOL,
     F(submission_config, refuse_address_display_name), .def = 1,
     .doc = "with check_from: no display name showing another address"},
    {"save_sent", CONF_BOOL, F(submission_config, save_sent), .def = 0,
     .doc = "a copy of each message an authenticated user sends in "
            "their Sent folder"},
};

static const struct conf_key alerts_keys[] = {
    {"enabled", CONF_BOOL, F(alerts_config, enabled), .def = 1,
     .doc = "alert lines, the mail to postmaster, alerts.command"},
    {"command", CONF_PATH, F(alerts_config, command),
     .doc = "run by /bin/sh as the daemon user, the alert as JSON on "
            "stdin; default: none"},
    {"command_timeout", CONF_DURATION, F(alerts_config, command_timeout),
     SPAN(1, 600, "1s..10m", 10), .doc = "then the command is killed"},
    {"interval", CONF_DURATION, F(alerts_config, interval),
     SPAN(60, 7 * DAY, "1m..7d", 3600),
     .doc = "one mail (and command) per kind and subject per interval"},
    {"auth_failures_ip", CONF_UINT, F(alerts_config, auth_failures_ip),
     UINT(0, 1000000, 10),
     .doc = "failed logins per client in auth.failure_window (or a ban); "
            "0: off"},
    {"auth_failures_account", CONF_UINT,
     F(alerts_config, auth_failures_account), UINT(0, 1000000, 20),
     .doc = "failed logins per account in auth.failure_window; 0: off"},
    {"auth_failing_ips", CONF_UINT, F(alerts_config, auth_failing_ips),
     UINT(0, 1000000, 50),
     .doc = "addresses failing in one auth.failure_window; 0: off"},
    {"queue_size", CONF_UINT, F(alerts_config, queue_size),
     UINT(0, 100000000, 1000),
     .doc = "messages in the outbound queue; 0: off"},
    {"bounces_per_hour", CONF_UINT, F(alerts_config, bounces_per_hour),
     UINT(0, 100000000, 100), .doc = "recipients bounced; 0: off"},
    {"cert_expiry", CONF_DURATION, F(alerts_config, cert_expiry),
     SPAN(0, 365 * DAY, "0..365d", 14 * DAY),
     .doc = "a certificate expiring within this (checked daily); 0: off"},
    {"crash_loop", CONF_UINT, F(alerts_config, crash_loop),
     UINT(0, 1000, 5), .doc = "worker deaths within crash_window; 0: off"},
    {"crash_window", CONF_DURATION, F(alerts_config, crash_window),
     SPAN(1, DAY, "1s..1d", 600), .doc = "see crash_loop"},
};

static const struct conf_key pop3_keys[] = {
    /* RFC 1939 section 3: an autologout timer of at least 10 minutes */
    {"timeout", CONF_DURATION, F(pop3d_config, timeout),
     SPAN(600, DAY, "10m..1d", 600),
     .doc = "for a command once logged in (autologout)"},
    {"login_delay", CONF_DURATION, F(pop3d_config, login_delay),
     SPAN(0, DAY, "0..1d", 0), .doc = "between logins per mailbox"},
    /* shorter before login: a defence against hoarded connections */
    {"login_timeout", CONF_DURATION, F(pop3d_config, login_timeout),
     SPAN(1, DAY, "1s..1d", 600), .doc = "for a command before login"},
};

static const struct conf_key imap_keys[] = {
    /* RFC 9051 section 5.4: an autologout timer of at least 30 minutes */
    {"timeout", CONF_DURATION, F(imapd_config, timeout),
     SPAN(1800, DAY, "30m..1d", 1800),
     .doc = "for a command once logged in (autologout)"},
    {"login_timeout", CONF_DURATION, F(imapd_config, login_timeout),
     SPAN(1, DAY, "1s..1d", 60), .doc = "for a command before login"},
    {"max_connections_per_user", CONF_UINT,
     F(imapd_config, max_connections_per_user), UINT(0, 100000, 20),
     .doc = "IMAP sessions one account may hold at once; 0: no limit"},
    {"max_append", CONF_SIZE, F(imapd_config, max_append),
     SPAN(1024, (uint64_t)4 << 30, "1K..4G", 50 * 1024 * 1024),
     .doc = "octets of one APPEND message"},
    {"idle_check_interval", CONF_DURATION,
     F(imapd_config, idle_check_interval), SPAN(0, 3600, "0..1h", 30),
     .doc = "how often a selected folder is checked (stat of new/, cur/ "
            "and the uidlist) for changes inotify cannot see: other nodes' "
            "on a shared mail_dir; 0: never"},
};

static const struct conf_key retention_keys[] = {
    {"mail", CONF_DURATION, F(retention_config, mail),
     .load = load_retention_mail,
     .doc = "how long mail is kept in mailboxes; 0: forever"},
    {"interval", CONF_DURATION, F(retention_config, interval),
     SPAN(60, 7 * DAY, "1m..1w", 3600), .doc = "between sweeps"},
    {"logs", CONF_DURATION, F(retention_config, logs), .def = 60 * DAY,
     .load = load_retention_logs,
     .doc = "how long rotated log and audit files are kept; 0: forever"},
};

static const struct conf_key dns_keys[] = {
    {"resolver", CONF_STRING, F(dns_config, mode), .def_str = "system",
     .load = config_load_resolver,
     .doc = "system, recursive, or a list of forwarders (IP[@port])"},
    {NULL, CONF_STRINGS, F(dns_config, forwarders),
     .offset_n = offsetof(struct dns_config, nforwarders)},
    {"trust_anchor", CONF_STRING, F(dns_config, trust_anchor),
     .load = config_load_trust_anchor,
     .doc = "DNSSEC trust anchor file; default: no validation"},
};

#define OUT_TIMEOUT(n, f, d, text)                                             \
	{                                                                      \
		(n), CONF_DURATION, F(outbound_config, f),                     \
		    SPAN(1, DAY, "1s..1d", (d)), .doc = (text)                 \
	}
/* RFC 5321 4.5.3.2; connect as Postfix's smtp_connect_timeout */
static const struct conf_key outbound_timeout_keys[] = {
    OUT_TIMEOUT("connect", timeout_connect, 30, "TCP connect"),
    OUT_TIMEOUT("greeting", timeout_greeting, 300, "the 220"),
    OUT_TIMEOUT("command", timeout_command, 300, "EHLO, MAIL, RCPT ..."),
    OUT_TIMEOUT("data_init", timeout_data_init, 120, "the 354"),
    OUT_TIMEOUT("data_block", timeout_data_block, 180, "each write"),
    OUT_TIMEOUT("data_end", timeout_data_end, 600, "the final reply"),
};
static const struct conf_section outbound_timeouts =
    SECTION("outbound.timeouts", outbound_timeout_keys, NULL);

static const char *const tls_policy_words[] = {"none", "may", "encrypt",
                                               "verify"};
static const struct conf_key outbound_keys[] = {
    {"ip_version", CONF_BOOL, F(outbound_config, ipv4), .def = 1,
     .load = config_load_ip_version, .doc = "both, ipv4 or ipv6"},
    {NULL, CONF_BOOL, F(outbound_config, ipv6), .def = 1},
    {"prefer", CONF_BOOL, F(outbound_config, prefer_ipv4),
     .load = config_load_prefer, .doc = "ipv6 or ipv4, when both"},
    {"source_ipv4", CONF_NONE, .load = config_load_source4,
     .doc = "source address; default: the kernel's choice"},
    {"source_ipv6", CONF_NONE, .load = config_load_source6,
     .doc = "source address; default: the kernel's choice"},
    {"port", CONF_UINT, F(outbound_config, port), UINT(1, 65535, 25),
     .doc = "of MX hosts"},
    {"tls", CONF_ENUM, F(outbound_config, tls), .def = TLS_POLICY_MAY,
     WORDS(tls_policy_words, "none, may, encrypt or verify"),
     .doc = "the default policy"},
    {"tls_policy", CONF_NONE, .load = config_load_tls_policies,
     .doc = "per destination domain: {domain: policy}"},
    {"ca_file", CONF_FILE, F(outbound_config, ca_file),
     .doc = "CAs for verify; default: the system's"},
    {"max_connections", CONF_UINT, F(outbound_config, max_connections),
     UINT(1, 10000, 100), .doc = "in all"},
    {"max_per_domain", CONF_UINT, F(outbound_config, max_per_domain),
     UINT(1, 10000, 20), .doc = "per destination"},
    {"timeouts", CONF_SECTION, .sub = &outbound_timeouts},
};

static void
check_queue(struct conf_loader *l, const yaml_node_t *map,
            yaml_node_t *const *v, void *base)
{
	const struct queue_config *q = base;

	(void)map;
	if (q->retry_max < q->retry_min)
		conf_error(l, conf_line(v[2] != NULL ? v[2] : v[1]),
		           "queue.retry_max: must not be less than "
		           "queue.retry_min");
}

static const struct conf_key queue_keys[] = {
    {"lifetime", CONF_DURATION, F(queue_config, lifetime),
     SPAN(1, 100 * DAY, "1s..100d", 5 * DAY),
     .doc = "until an undeliverable message bounces"},
    {"retry_min", CONF_DURATION, F(queue_config, retry_min),
     SPAN(1, DAY, "1s..1d", 300), .doc = "the first retry"},
    {"retry_max", CONF_DURATION, F(queue_config, retry_max),
     SPAN(1, 7 * DAY, "1s..1w", 4 * 3600), .doc = "the backoff's cap"},
    {"delay_warning", CONF_DURATION, F(queue_config, delay_warning),
     SPAN(0, 100 * DAY, "0..100d", 0),
     .doc = "warn the sender after; 0: never"},
};

static void
check_smarthost(struct conf_loader *l, const yaml_node_t *map,
                yaml_node_t *const *v, void *base)
{
	const struct smarthost_config *sh = base;

	/* v: host tls port verify ca_file credentials domains */
	if (sh->host == NULL && v[0] == NULL &&
	    (v[2] != NULL || v[5] != NULL || v[6] != NULL))
		conf_error(l, conf_line(map),
		           "smarthost: host is required when other smarthost "
		           "keys are set");
}

static const char *const smarthost_modes[] = {"starttls", "implicit", "none"};
static const struct conf_key smarthost_keys[] = {
    {"host", CONF_STRING, F(smarthost_config, host),
     .load = config_load_relay_host,
     .doc = "name or [IP]; default: none, deliver by MX"},
    {"tls", CONF_ENUM, F(smarthost_config, tls), .def = SMARTHOST_STARTTLS,
     WORDS(smarthost_modes, "starttls, implicit or none"),
     .doc = "starttls, implicit (port 465) or none"},
    {"port", CONF_UINT, F(smarthost_config, port), .def = 587,
     .load = config_load_relay_port, .doc = "587; 465 with tls: implicit"},
    {"verify", CONF_BOOL, F(smarthost_config, verify), .def = 1,
     .doc = "check the certificate"},
    {"ca_file", CONF_FILE, F(smarthost_config, ca_file),
     .doc = "CAs for verify; default: the system's"},
    {"credentials", CONF_FILE, F(smarthost_config, credentials),
     .load = config_load_credentials,
     .doc = "file with user:password, mode 600"},
    {"domains", CONF_STRINGS, F(smarthost_config, domains),
     .offset_n = offsetof(struct smarthost_config, ndomains),
     .allowed = "domains", .lower = true, .check = config_check_hostname,
     .doc = "only mail to these; default: all outbound mail"},
};

/* checks:, spf:, dkim:, dmarc: one struct (msgauth.h) */
static const struct conf_key checks_keys[] = {
    {"authserv_id", CONF_STRING, F(checks_config, authserv_id),
     .load = load_authserv_id,
     .doc = "ours in Authentication-Results; default: hostname"},
    {"timeout", CONF_DURATION, F(checks_config, timeout),
     SPAN(1, 300, "1s..5m", 20),
     .doc = "for each DNS lookup of SPF, DKIM, DMARC and iprev"},
};
static const struct conf_key spf_keys[] = {
    {"enabled", CONF_BOOL, F(checks_config, spf), .def = 1,
     .doc = "check SPF on port 25 (Authentication-Results, DMARC)"},
};
static const struct conf_key dkim_keys[] = {
    {"verify", CONF_BOOL, F(checks_config, dkim_verify), .def = 1,
     .doc = "verify DKIM signatures on port 25"},
    {"sign", CONF_BOOL, F(checks_config, dkim_sign), .def = 1,
     .doc = "sign submitted mail and bounces with <data_dir>/dkim keys"},
};
static const char *const reject_actions[] = {"none", "quarantine", "reject"};
static const char *const quarantine_actions[] = {"none", "quarantine"};
static const struct conf_key dmarc_keys[] = {
    {"enabled", CONF_BOOL, F(checks_config, dmarc), .def = 1,
     .doc = "evaluate and enforce DMARC on port 25"},
    {"reject_action", CONF_ENUM, F(checks_config, reject_action),
     .def = MSGAUTH_ACT_REJECT,
     WORDS(reject_actions, "reject, quarantine or none"),
     .doc = "for failing mail of a p=reject domain"},
    {"quarantine_action", CONF_ENUM, F(checks_config, quarantine_action),
     .def = MSGAUTH_ACT_QUARANTINE,
     WORDS(quarantine_actions, "quarantine or none"),
     .doc = "for failing mail of a p=quarantine domain"},
    {"allow", CONF_STRINGS, F(checks_config, allow),
     .offset_n = offsetof(struct checks_config, nallow),
     .allowed = "domains, addresses or networks", .lower = true,
     .check = check_allow_item,
     .doc = "senders (From domains, client networks) never enforced"},
};

static const struct conf_key audit_keys[] = {
    {"enabled", CONF_BOOL, F(audit_config, enabled), .def = 1,
     .doc = "a line per accepted message in log/audit.log"},
};

static const struct conf_section log_section = SECTION("log", log_keys, NULL);
static const struct conf_section audit_section =
    SECTION("audit", audit_keys, NULL);
static const struct conf_section userdb_section =
    SECTION("userdb", userdb_keys, check_userdb);
static const struct conf_section smtp_section =
    SECTION("smtp", smtp_keys, NULL);
static const struct conf_section limits_section =
    SECTION("limits", limits_keys, check_limits);
static const struct conf_section tls_section = SECTION("tls", tls_keys, NULL);
static const struct conf_section auth_section =
    SECTION("auth", auth_keys, check_auth);
static const struct conf_section submission_section =
    SECTION("submission", submission_keys, NULL);
static const struct conf_section alerts_section =
    SECTION("alerts", alerts_keys, NULL);
static const struct conf_section pop3_section =
    SECTION("pop3", pop3_keys, NULL);
static const struct conf_section imap_section =
    SECTION("imap", imap_keys, NULL);
static const struct conf_section retention_section =
    SECTION("retention", retention_keys, NULL);
static const struct conf_section dns_section = SECTION("dns", dns_keys, NULL);
static const struct conf_section outbound_section =
    SECTION("outbound", outbound_keys, NULL);
static const struct conf_section queue_section =
    SECTION("queue", queue_keys, check_queue);
static const struct conf_section smarthost_section =
    SECTION("smarthost", smarthost_keys, check_smarthost);
static const struct conf_section checks_section =
    SECTION("checks", checks_keys, NULL);
static const struct conf_section spf_section = SECTION("spf", spf_keys, NULL);
static const struct conf_section dkim_section =
    SECTION("dkim", dkim_keys, NULL);
static const struct conf_section dmarc_section =
    SECTION("dmarc", dmarc_keys, NULL);

/* root_keys' index of mail_dir, for check_root() */
#define ROOT_MAIL_DIR 3

/*
 * mail_dir may be anywhere (a shared store) but not data_dir itself, a
 * directory above it, or one of data_dir's own directories: Maildirs
 * there would mix with the queue or the keys.
 */
static void
check_mail_dir(struct conf_loader *l, const yaml_node_t *n,
	       const struct config *c)
{
	static const char *const own[] = {"queue", "db",    "log",   "control",
					   "dkim",  "dmarc", "filter"};
	const char *m = c->mail_dir, *d = c->data_dir;
	size_t ml = strlen(m), dl = strlen(d);

	/* (the default follows data_dir, relative in a dev set-up) */
	if (m[0] != '/' && !conf_is_null(n)) {
		conf_error(l, conf_line(n),
			   "mail_dir: %s is not an absolute path", m);
		return;
	}
	if (strcmp(m, d) == 0 ||
	    (strncmp(d, m, ml) == 0 && (d[ml] == '/' || strcmp(m, "/") == 0))) {
		conf_error(l, conf_line(n),
			   "mail_dir: %s is data_dir or above it: give the "
			   "Maildirs a directory of their own", m);
		return;
	}
	if (strncmp(m, d, dl) != 0 || m[dl] != '/')
		return;
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		size_t k = strlen(own[i]);
		if (strncmp(m + dl + 1, own[i], k) == 0 &&
		    (m[dl + 1 + k] == '\0' || m[dl + 1 + k] == '/'))
			conf_error(l, conf_line(n),
				   "mail_dir: %s is inside data_dir's %s/",
				   m, own[i]);
	}
}

/* After every key: the defaults that follow from others. */
static void
check_root(struct conf_loader *l, const yaml_node_t *map, yaml_node_t *const *v,
           void *base)
{
	struct config *c = base;
	size_t len;

	(void)map;
	/* "/var/lib/godwit/" and "/var/lib/godwit" are one directory. */
	len = strlen(c->data_dir);
	while (len > 1 && c->data_dir[len - 1] == '/')
		c->data_dir[--len] = '\0';
	if (c->mail_dir == NULL)
		c->mail_dir = xasprintf("%s/mail", c->data_dir);
	len = strlen(c->mail_dir);
	while (len > 1 && c->mail_dir[len - 1] == '/')
		c->mail_dir[--len] = '\0';
	check_mail_dir(l, v[ROOT_MAIL_DIR], c);
	if (c->userdb.path == NULL)
		c->userdb.path = xasprintf("%s/db/godwit.sqlite", c->data_dir);
	if (c->log.file != NULL && c->log.file[0] != '/') {
		char *abs = xasprintf("%s/log/%s", c->data_dir, c->log.file);
		free(c->log.file);
		c->log.file = abs;
	}
	if (c->checks.authserv_id == NULL && c->hostname != NULL)
		c->checks.authserv_id = xstrdup(c->hostname);
}

#define SUB(n, s, f)                                                           \
	{                                                                      \
		(n), CONF_SECTION, F(config, f), .sub = &(s)                   \
	}
/* In the order they are loaded: tls before the listeners, which check
 * that certificates exist. */
static const struct conf_key root_keys[] = {
    {"hostname", CONF_STRING, F(config, hostname), .load = load_hostname,
     .doc = "this server's fully qualified domain name; required"},
    {"postmaster", CONF_STRING, F(config, postmaster), .load = load_postmaster,
     .doc = "where mail for postmaster goes; default: postmaster@"
            "hostname"},
    {"data_dir", CONF_PATH, F(config, data_dir), .def_str = "/var/lib/godwit",
     .doc = "db/, queue/, mail/, log/"},
    [ROOT_MAIL_DIR] = {"mail_dir", CONF_PATH, F(config, mail_dir),
     .doc = "the Maildirs (<mail_dir>/<domain>/<local>/Maildir); may be "
            "shared by several nodes; default: <data_dir>/mail"},
    {"user", CONF_STRING, F(config, user), .def_str = "godwit",
     .load = load_user, .doc = "drop to this user when started as root"},
    {"workers", CONF_UINT, F(config, workers), UINT(0, 1024, 0),
     .doc = "processes serving sessions; 0: one per core"},
    SUB("log", log_section, log),
    SUB("userdb", userdb_section, userdb),
    SUB("smtp", smtp_section, smtp),
    SUB("limits", limits_section, limits),
    SUB("tls", tls_section, tls),
    SUB("auth", auth_section, auth),
    SUB("submission", submission_section, submission),
    SUB("alerts", alerts_section, alerts),
    SUB("pop3", pop3_section, pop3),
    SUB("imap", imap_section, imap),
    SUB("retention", retention_section, retention),
    SUB("dns", dns_section, dns),
    SUB("outbound", outbound_section, outbound),
    SUB("queue", queue_section, queue),
    SUB("smarthost", smarthost_section, smarthost),
    SUB("checks", checks_section, checks),
    SUB("spf", spf_section, checks),
    SUB("dkim", dkim_section, checks),
    SUB("dmarc", dmarc_section, checks),
    SUB("filter", config_filter_section, filter),
    SUB("redis", config_redis_section, redis),
    SUB("audit", audit_section, audit),
    {"listeners", CONF_NONE, .load = config_load_listeners,
     .doc = "[{name, protocol, listen, ...}]; default: an MX on port 25"},
};
static const struct conf_section root_section =
    SECTION("", root_keys, check_root);

/* ---- the keys, for documentation ---------------------------------------- */

static void
each_key(const struct conf_key *keys, size_t n, const char *prefix,
         void (*fn)(const char *key, const char *doc, void *arg), void *arg)
{
	char key[128];

	for (size_t i = 0; i < n; i++) {
		const struct conf_key *k = &keys[i];

		if (k->name == NULL)
			continue;
		snprintf(key, sizeof(key), "%s%s%s", prefix,
		         *prefix != '\0' ? "." : "", k->name);
		if (k->type == CONF_SECTION)
			each_key(k->sub->keys, k->sub->nkeys, k->sub->name, fn,
			         arg);
		else
			fn(key, k->doc, arg);
	}
}

void
config_keys(void (*fn)(const char *key, const char *doc, void *arg),
            void *arg)
{
	each_key(root_section.keys, root_section.nkeys, "", fn, arg);
	each_key(config_listener_keys, config_nlistener_keys, "", fn, arg);
	each_key(config_certificate_keys, config_ncertificate_keys, "", fn,
	         arg);
}

/* ---- loading ----------------------------------------------------------- */

static void
load_root(struct conf_loader *l, const yaml_node_t *root)
{
	struct config_loading *st = l->ctx;

	st->root = root;
	conf_load_section(l, root, &root_section, st->config);
}

int
config_load_buffer(const char *name, const void *data, size_t len,
                   struct config **config_r, char **errors_r)
{
	struct config *c = xcalloc(1, sizeof(*c));
	struct config_loading st = {.config = c};

	*config_r = NULL;
	c->path = xstrdup(name);
	conf_defaults(&root_section, c);
	if (conf_parse(name, data, len, load_root, &st, errors_r) < 0) {
		config_free(&c);
		return -1;
	}
	*config_r = c;
	return 0;
}

int
config_load(const char *path, struct config **config_r, char **errors_r)
{
	char *data;
	size_t len;
	int ret;

	*config_r = NULL;
	*errors_r = NULL;
	if (conf_read_file(path, &data, &len, errors_r) < 0)
		return -1;
	ret = config_load_buffer(path, data, len, config_r, errors_r);
	free(data);
	return ret;
}

void
config_free(struct config **configp)
{
	struct config *c = *configp;

	if (c == NULL)
		return;
	conf_free(&root_section, c);
	config_filter_free(&c->filter);
	for (size_t i = 0; i < c->submission.naccount_limits; i++)
		free(c->submission.account_limits[i].account);
	free(c->submission.account_limits);
	free(c->path);
	for (size_t i = 0; i < c->nlisteners; i++)
		listener_clear(&c->listeners[i]);
	free(c->listeners);
	for (size_t i = 0; i < c->tls.ncerts; i++) {
		free(c->tls.certs[i].cert);
		free(c->tls.certs[i].key);
	}
	free(c->tls.certs);
	for (size_t i = 0; i < c->outbound.ntls_policies; i++)
		free(c->outbound.tls_policies[i].domain);
	free(c->outbound.tls_policies);
	free(c);
	*configp = NULL;
}

/* ---- what the modules read ---------------------------------------------- */

void
config_datadir(const struct config *c, struct datadir_config *r)
{
	r->data_dir = c->data_dir;
	r->mail_dir = c->mail_dir;
	r->user = c->user;
	r->userdb = &c->userdb;
}

void
config_smtpd_settings(const struct config *c, struct smtpd_settings *r)
{
	r->hostname = c->hostname;
	r->postmaster = c->postmaster;
	r->data_dir = c->data_dir;
	r->smtp = c->smtp;
	r->submission = c->submission;
	r->auth = c->auth;
	r->limits = c->limits;
	r->tls = c->tls;
	r->checks = c->checks;
	r->filter = &c->filter;
}

void
config_pop3d_settings(const struct config *c, struct pop3d_settings *r)
{
	r->hostname = c->hostname;
	r->data_dir = c->data_dir;
	r->mail_dir = c->mail_dir;
	r->pop3 = c->pop3;
	r->auth = c->auth;
	r->limits = c->limits;
	r->tls = c->tls;
	r->retention = c->retention;
}

void
config_imapd_settings(const struct config *c, struct imapd_settings *r)
{
	r->hostname = c->hostname;
	r->data_dir = c->data_dir;
	r->mail_dir = c->mail_dir;
	r->imap = c->imap;
	r->auth = c->auth;
	r->limits = c->limits;
	r->tls = c->tls;
}

void
config_runner_settings(const struct config *c, struct runner_settings *r)
{
	r->hostname = c->hostname;
	r->postmaster = c->postmaster;
	r->data_dir = c->data_dir;
	r->mail_dir = c->mail_dir;
	r->smtp.recipient_delimiter = c->smtp.recipient_delimiter;
	r->userdb = c->userdb;
	r->dns = c->dns;
	r->outbound = c->outbound;
	r->queue = c->queue;
	r->smarthost = c->smarthost;
	r->dkim_sign = c->checks.dkim_sign;
	r->alerts = c->alerts;
	r->audit = c->audit.enabled;
}
