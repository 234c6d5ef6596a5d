/*
 * The queue runner: one unprivileged child of the parent that
 * delivers what the workers put in queue/incoming to the rest of the
 * internet — by MX (net/dns.c) or through a smarthost — with the SMTP
 * client (mta/smtp_client.c), retries with backoff (mta/schedule.c), and
 * reports failures, delays and (when asked) successes to the sender
 * (mta/bounce.c, mail/dsn.c). How its files divide the work:
 * mta/runner_private.h.
 *
 * Queue directories (docs/queue-format.md):
 *	incoming/  new mail; picked up at once (inotify), oldest first
 *	active/    being delivered by this process; at start, whatever a
 *		   previous runner left here goes back to incoming/
 *	deferred/  waiting for the next attempt (queue/state/<id>: when,
 *		   and which recipients are done)
 *	hold/      left alone until released
 *
 * A message's recipients are grouped by destination (the recipient
 * domain, or the smarthost); each destination has its queue of jobs and
 * up to outbound.max_per_domain connections (outbound.max_connections in
 * all), each connection taking jobs until none is left. At-least-once:
 * a recipient whose delivery was answered 250 is recorded done before
 * the message is deferred, but a crash between the peer's 250 and that
 * record delivers to it again.
 *
 * The control socket (mta/control.h) takes the `godwit queue` commands:
 * flush, hold, release, delete.
 */
#ifndef GODWIT_RUNNER_H
#define GODWIT_RUNNER_H

struct dkim_keyring;

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mta/smtp_client.h"
#include "net/alert.h"
#include "net/dns.h"
#include "store/queue.h"
#include "store/userdb.h"

/* outbound.tls_policy: one entry per destination domain */
struct outbound_tls_policy {
	char *domain;		/* lower case, no final dot */
	enum tls_policy policy;
};

/* outbound: in the configuration */
struct outbound_config {
	bool ipv4;			/* ip_version both|ipv4|ipv6 */
	bool ipv6;
	bool prefer_ipv4;		/* prefer: ipv6 (default) | ipv4 */
	struct sockaddr_storage source4; /* source addresses, port 0; */
	socklen_t source4_len;		 /* len 0 = the kernel's choice */
	struct sockaddr_storage source6;
	socklen_t source6_len;
	unsigned port;			/* MX delivery port; 25 */
	enum tls_policy tls;		/* default policy: may */
	struct outbound_tls_policy *tls_policies; /* per destination domain */
	size_t ntls_policies;
	char *ca_file;			/* verify: CA file; NULL: system */
	unsigned max_connections;	/* global; 100 */
	unsigned max_per_domain;	/* per destination; 20 */
	uint64_t timeout_connect;	/* seconds; 30 */
	uint64_t timeout_greeting;	/* 300 (RFC 5321 4.5.3.2.1) */
	uint64_t timeout_command;	/* 300: EHLO MAIL RCPT ... */
	uint64_t timeout_data_init;	/* 120 */
	uint64_t timeout_data_block;	/* 180 */
	uint64_t timeout_data_end;	/* 600 */
};

enum smarthost_tls { SMARTHOST_STARTTLS, SMARTHOST_IMPLICIT,
		     SMARTHOST_NONE };

/* smarthost: in the configuration */
struct smarthost_config {
	char *host;		/* "name" or "[ip]"; NULL = off */
	unsigned port;		/* 587 (465 with tls: implicit) */
	enum smarthost_tls tls;
	bool verify;		/* check the certificate; true */
	char *ca_file;		/* NULL = system store */
	char *credentials;	/* file "user:password"; NULL = none */
	char **domains;		/* empty: all outbound mail */
	size_t ndomains;
};

/*
 * What the runner reads of the configuration: the top-level names and
 * copies of the sections it uses. Filled in by the daemon from its
 * configuration, which outlives the runner (the strings are borrowed).
 */
struct runner_settings {
	const char *hostname;
	const char *postmaster;		/* NULL = postmaster@hostname */
	const char *data_dir;
	const char *mail_dir;	/* the Maildirs (config.h) */
	struct {
		char recipient_delimiter;	/* the one key of smtp: */
	} smtp;
	struct userdb_config userdb;
	struct dns_config dns;
	struct outbound_config outbound;
	struct queue_config queue;
	struct smarthost_config smarthost;
	bool dkim_sign;			/* dkim.sign: reports are signed */
	bool audit;			/* audit.enabled (store/audit.h) */
	const struct dkim_keyring *keyring;	/* the parent's, or NULL */
	struct limits *limits;		/* the shared table: sending blocks */
	struct alerts_config alerts;	/* queue-size, bounces */
};

/* Smarthost credentials, read by the parent (root) before the fork. */
struct runner_secrets {
	char *user;
	char *pass;
};

/* Reads sh->credentials ("user:password" on the first line). 0, or -1
 * with *error_r (caller frees). */
int runner_secrets_load(const struct smarthost_config *sh,
			struct runner_secrets *s, char **error_r);
void runner_secrets_clear(struct runner_secrets *s);

/* The process's main loop; returns the exit code. */
int runner_main(const struct runner_settings *config,
		const struct runner_secrets *secrets);

#endif
