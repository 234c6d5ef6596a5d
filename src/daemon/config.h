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

#include "filter/filter.h"
#include "lib/log.h"
#include "msgauth/msgauth.h"
#include "mta/runner.h"
#include "net/alert.h"
#include "net/auth.h"
#include "net/client_limits.h"
#include "net/dns.h"
#include "net/listener.h"
#include "net/redis.h"
#include "net/tls.h"
#include "imapd/imap_server.h"
#include "pop3d/pop3_server.h"
#include "smtpd/smtp_server.h"
#include "store/audit.h"
#include "store/datadir.h"
#include "store/queue.h"
#include "store/retention.h"
#include "store/userdb.h"

/*
 * The whole configuration: the top-level keys, then one sub-struct per
 * section, each declared by the module that reads it. The tables in
 * config.c describe every key once (type, range, default, offset, doc).
 */
struct config {
	char *path;

	char *hostname;		/* greeting, Received, Message-ID */
	char *postmaster;	/* postmaster of hostname; NULL = default */
	char *data_dir;		/* db/, queue/, log/ live below */
	char *mail_dir;		/* the Maildirs; default <data_dir>/mail */
	char *user;		/* drop to this user when root; NULL = don't */
	unsigned workers;	/* 0 = one per core */

	struct log_config log;
	struct userdb_config userdb;
	struct smtpd_config smtp;
	struct limits_config limits;
	struct config_listener *listeners;
	size_t nlisteners;
	struct tls_config tls;
	struct auth_config auth;
	struct submission_config submission;
	struct alerts_config alerts;
	struct pop3d_config pop3;
	struct imapd_config imap;
	struct retention_config retention;
	struct dns_config dns;
	struct outbound_config outbound;
	struct queue_config queue;
	struct smarthost_config smarthost;
	struct checks_config checks;	/* checks:, spf:, dkim:, dmarc: */
	struct filter_config filter;	/* filter: */
	struct audit_config audit;
	struct redis_config redis;	/* redis: shared limits, off */
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

/*
 * Calls fn for every key the tables describe, with its full name
 * ("smtp.timeouts.command"; a listener's and a certificate's keys by
 * their own name) and its line of documentation.
 */
void config_keys(void (*fn)(const char *key, const char *doc, void *arg),
		 void *arg);

/* What the protocol sessions, the queue runner and the data directory
 * read of c (borrowed: c outlives them). */
void config_datadir(const struct config *c, struct datadir_config *r);
void config_smtpd_settings(const struct config *c, struct smtpd_settings *r);
void config_pop3d_settings(const struct config *c, struct pop3d_settings *r);
void config_imapd_settings(const struct config *c, struct imapd_settings *r);
void config_runner_settings(const struct config *c,
			    struct runner_settings *r);

#endif
