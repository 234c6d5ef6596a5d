/*
 * The configuration: one YAML file (libyaml), loaded into a struct config
 * that every process treats as read-only. Unknown keys are errors; every
 * error names file:line. Defaults are the secure production ones, so a
 * minimal file names only hostname, data_dir and listeners.
 */
#ifndef GODWIT_CONFIG_H
#define GODWIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/cidr.h"

enum listener_proto {
	PROTO_SMTP,		/* MX, port 25: STARTTLS optional, AUTH optional */
	PROTO_SUBMISSION,	/* 587: STARTTLS, AUTH required (issue 4) */
	PROTO_SUBMISSIONS,	/* 465: implicit TLS, AUTH required (issue 4) */
	PROTO_POP3,		/* 110 (issue 5) */
	PROTO_POP3S,		/* 995 (issue 5) */
};

enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };

/* Outbound TLS (issue 6): none = never STARTTLS; may = when offered
 * (opportunistic, RFC 3207, unauthenticated); encrypt = TLS required, the
 * certificate is not checked; verify = TLS required and the certificate
 * must chain to a trusted CA and name the host connected to. */
enum tls_policy { TLS_POLICY_NONE, TLS_POLICY_MAY, TLS_POLICY_ENCRYPT,
		  TLS_POLICY_VERIFY };

struct config_tls_policy {
	char *domain;		/* lower case, no final dot */
	enum tls_policy policy;
};

enum smarthost_tls { SMARTHOST_STARTTLS, SMARTHOST_IMPLICIT,
		     SMARTHOST_NONE };

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char *text;		/* as written: "0.0.0.0:25", "[::1]:2525" */
};

struct config_listener {
	char *name;		/* unique, used in logs: listener=mx */
	enum listener_proto proto;
	struct listen_addr *addrs;
	size_t naddrs;
	struct cidr_list allow;	/* empty: everybody (minus deny) */
	struct cidr_list deny;
	uint64_t greet_pause_ms; /* early-talker test; 0 = off */
	bool auth;		/* offer AUTH (default: submission(s), pop3(s)) */
	bool plaintext_auth;	/* allow AUTH/USER without TLS (e.g. loopback);
				 * default false */
	int line;		/* where it was defined, for messages */
};

/* tls.certificates[]: the first is the default, the others are chosen by
 * SNI against their subjectAltName/CN. */
struct config_certificate {
	char *cert;		/* PEM chain: leaf first */
	char *key;		/* PEM private key; must not be group/world
				 * readable */
	int line;
};

struct config {
	char *path;

	char *hostname;		/* greeting, Received, Message-ID */
	char *postmaster;	/* postmaster of hostname; NULL = default */
	char *data_dir;		/* db/, queue/, mail/, log/ live below */
	char *user;		/* drop to this user when root; NULL = don't */
	unsigned workers;	/* 0 = one per core */

	/* log: */
	enum log_format log_format;
	char *log_file;		/* NULL = stderr */
	int log_level;		/* LOG_DEBUG .. LOG_ERR (syslog.h values) */

	/* userdb: */
	char *userdb_driver;	/* "sqlite" */
	char *userdb_path;	/* default <data_dir>/db/godwit.sqlite */

	/* smtp: */
	uint64_t max_message_size;	/* bytes; SIZE and DATA enforce it */
	unsigned max_recipients;	/* per message; 452 4.5.3 past it */
	unsigned max_errors;		/* per session; then 421 + close */
	unsigned max_command_line;	/* octets incl. CRLF (RFC: 512) */
	unsigned max_text_line;		/* octets incl. CRLF (RFC: 1000) */
	bool vrfy;			/* false: VRFY answers 252 */
	char recipient_delimiter;	/* '+'; '\0' = no sub-addressing */
	struct cidr_list trusted_networks; /* may relay; empty by default */
	uint64_t timeout_command;	/* seconds for a whole command line,
					 * RFC 5321 4.5.3.2 */
	uint64_t timeout_data_block;	/* seconds without a byte in DATA/
					 * BDAT; also the allowance below */
	uint64_t timeout_data_end;
	uint64_t min_data_rate;		/* octets/s DATA/BDAT must keep up
					 * after timeout_data_block; 0 = off */

	/* limits: */
	unsigned max_connections;	/* all listeners, all workers */
	unsigned max_connections_per_ip;
	unsigned conn_rate_count;	/* connections per IP ... */
	uint64_t conn_rate_window;	/* ... per this many seconds; 0 = off */
	uint64_t greet_pass_ttl;	/* seconds an IP that passed is trusted */
	uint64_t shutdown_timeout;	/* seconds transactions get at SIGTERM */
	unsigned stress_threshold;	/* % of max_connections open at which
					 * stress begins; 0 = never */
	uint64_t stress_timeout;	/* seconds: pre-login line and TLS
					 * handshake deadline under stress */
	unsigned ipv6_prefix;		/* an IPv6 client is this network */
	unsigned ipv6_wide_prefix;	/* wider budget per this; 0: none */
	unsigned ipv6_wide_factor;	/* wide budget = per-client * this */

	struct config_listener *listeners;
	size_t nlisteners;

	/* tls: (issue 4) */
	struct config_certificate *tls_certs;
	size_t ntls_certs;
	char *tls_min_version;		/* "TLSv1.2" (default) or "TLSv1.3" */
	char *tls_ciphers;		/* TLS 1.2 list, OpenSSL syntax */
	char *tls_ciphersuites;		/* TLS 1.3 list, OpenSSL syntax */
	uint64_t tls_handshake_timeout;	/* seconds for a whole handshake */

	/* auth: (issue 4) */
	bool auth_cram_md5;		/* store and offer CRAM-MD5; false */
	unsigned auth_max_failures_ip;	/* failures per IP in the window
					 * before a ban; default 10 */
	unsigned auth_max_failures_account; /* per account: delays grow,
					 * default 10 */
	uint64_t auth_failure_window;	/* seconds failures are counted; 1h */
	uint64_t auth_ban_time;		/* seconds an IP is banned; 1h */
	uint64_t auth_delay_base_ms;	/* first failure's delay; 1000 */
	uint64_t auth_delay_max_ms;	/* cap of the growing delay; 15000 */

	/* submission: (issue 4) */
	bool submission_check_from;	/* header From: must be the user's */
	/* with check_from: no display name showing another address */
	bool submission_refuse_address_display_name;

	/* pop3: (issue 5) */
	uint64_t pop3_timeout;		/* seconds for a command line once
					 * logged in (autologout) */
	uint64_t pop3_login_timeout;	/* the same before login */
	uint64_t pop3_login_delay;	/* seconds between logins per
					 * mailbox; 0 = none */

	/* retention: (issue 5) */
	uint64_t retention_mail;	/* seconds mail is kept; 0 = forever */
	uint64_t retention_interval;	/* seconds between sweeps */

	/* dns: (issue 6) */
	char *dns_mode;			/* "system" (default) or "recursive" */
	char **dns_forwarders;		/* "IP" or "IP@port"; replace mode */
	size_t ndns_forwarders;
	char *dns_trust_anchor;		/* NULL: no DNSSEC validation */

	/* outbound: (issue 6) */
	bool outbound_ipv4;		/* ip_version both|ipv4|ipv6 */
	bool outbound_ipv6;
	bool outbound_prefer_ipv4;	/* prefer: ipv6 (default) | ipv4 */
	struct sockaddr_storage outbound_source4; /* source addresses, port */
	socklen_t outbound_source4_len;		  /* 0; len 0 = kernel's */
	struct sockaddr_storage outbound_source6; /* choice */
	socklen_t outbound_source6_len;
	unsigned outbound_port;		/* MX delivery port; 25 */
	enum tls_policy outbound_tls;	/* default policy: may */
	struct config_tls_policy *tls_policies;	/* per destination domain */
	size_t ntls_policies;
	char *outbound_ca_file;		/* verify: CA file; NULL = system */
	unsigned outbound_max_connections;	/* global; 100 */
	unsigned outbound_max_per_domain;	/* per destination; 20 */
	uint64_t outbound_timeout_connect;	/* seconds; 30 */
	uint64_t outbound_timeout_greeting;	/* 300 (RFC 5321 4.5.3.2.1) */
	uint64_t outbound_timeout_command;	/* 300: EHLO MAIL RCPT ... */
	uint64_t outbound_timeout_data_init;	/* 120 */
	uint64_t outbound_timeout_data_block;	/* 180 */
	uint64_t outbound_timeout_data_end;	/* 600 */

	/* queue: (issue 6) */
	uint64_t queue_lifetime;	/* seconds until a bounce; 5d */
	uint64_t queue_retry_min;	/* first retry after; 5m */
	uint64_t queue_retry_max;	/* backoff cap; 4h */
	uint64_t queue_delay_warning;	/* seconds; 0 = no warnings */

	/* smarthost: (issue 6) */
	char *smarthost_host;		/* "name" or "[ip]"; NULL = off */
	unsigned smarthost_port;	/* 587 (465 with tls: implicit) */
	enum smarthost_tls smarthost_tls;
	bool smarthost_verify;		/* check the certificate; true */
	char *smarthost_ca_file;	/* NULL = system store */
	char *smarthost_credentials;	/* file "user:password"; NULL = none */
	char **smarthost_domains;	/* empty: all outbound mail */
	size_t nsmarthost_domains;
};

/*
 * Loads and validates path. On failure returns -1 and sets *errors_r to
 * one or more lines "path:line: message" (caller frees).
 */
int config_load(const char *path, struct config **config_r, char **errors_r);
/* Same from a buffer; name is used in messages (for tests and fuzzing). */
int config_load_buffer(const char *name, const void *data, size_t len,
		       struct config **config_r, char **errors_r);
void config_free(struct config **config);

const char *listener_proto_name(enum listener_proto proto);

/*
 * "0.0.0.0:25", "[::]:25", "[::1]:2525", "127.0.0.1:2525". Returns -1 with
 * *error_r set for anything else.
 */
int parse_listen_addr(const char *s, struct listen_addr *r,
		      const char **error_r);

#endif
