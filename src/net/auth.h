/*
 * Authentication glue shared by SMTP AUTH and (later) POP3: the SASL
 * credential callbacks over the user database, and the submission sender
 * policy (RFC 6409 section 6.1: a user sends only as an address of theirs).
 */
#ifndef GODWIT_AUTH_H
#define GODWIT_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "net/sasl.h"

struct userdb;

/* SASL callbacks; their ctx is the struct userdb *. */
extern const struct sasl_creds auth_userdb_creds;

/*
 * The account name a client gave, normalised as the database stores it
 * (ASCII lower case), into buf. -1 if it is not local@domain or too long.
 */
int auth_normalize(const char *authcid, char *buf, size_t size);

/*
 * May the authenticated user `account` (normalised) use `sender` (an
 * envelope or header address) as sender? Yes if it is the account itself,
 * the account with a "+tag" (delimiter), or an alias that delivers to the
 * account. 1 yes, 0 no, -1 database error.
 */
int auth_sender_allowed(struct userdb *db, const char *account,
			const char *sender, char delimiter);
/*
 * What auth_sender_allowed() decides without the database: 1 the
 * account itself (or with a "+tag"), 0 not an address at all, -1 only
 * the database can tell (an alias?). Lets the loop skip a lookup.
 */
int auth_sender_own(const char *account, const char *sender, char delimiter);


/*
 * The server's persistent secret: SERVER_SECRET_LEN random octets in
 * DATA_DIR/server-secret, drawn from the kernel's CSPRNG the first time
 * and kept (mode 0600, owned by whoever starts the daemon: root in
 * production). The parent loads it before it forks; workers inherit what
 * is derived from it in memory and never read the file, so it needs no
 * access by the worker user. A file of another size, or readable by group
 * or others, is refused. What it keys today: the decoy salts of unknown
 * SCRAM users (sasl_set_decoy_key()). Returns 0, or -1 with *error_r.
 */
#define SERVER_SECRET_LEN 32
int auth_secret_load(const char *data_dir, char **error_r);

/*
 * SASL steps off the event loop. Checking a password costs a deliberate
 * ~50-100 ms of CPU (yescrypt); run in the loop it would stall every
 * other session of the worker. Each worker has one auth thread with its
 * own read-only database handle; a job carries a SASL session and the
 * client's line there and back, and its done callback runs on the loop
 * thread. While a job is out, the SASL session belongs to the job: a
 * session that goes away clears done (loop thread only) and the queue
 * frees what is left.
 */
struct authq;
struct event_base;
struct userdb_config;

/* auth: in the configuration */
struct auth_config {
	bool cram_md5;			/* store and offer CRAM-MD5; false */
	unsigned max_failures_ip;	/* failures per IP in the window
					 * before a ban; default 10 */
	unsigned max_failures_account;	/* per account: delays grow,
					 * default 10 */
	uint64_t failure_window;	/* seconds failures are counted; 1h */
	uint64_t ban_time;		/* seconds an IP is banned; 1h */
	uint64_t delay_base_ms;		/* first failure's delay; 1000 */
	uint64_t delay_max_ms;		/* cap of the growing delay; 15000 */
	uint64_t cache_ttl;		/* seconds a confirmed password skips
					 * the database; 30, 0 = never */
};

/*
 * auth.cache_ttl for this process's password cache (net/auth.c): within
 * that many seconds of the database confirming an account's hash, the
 * same password logs in without a lookup. Call before authq_new().
 */
void auth_cache_set_ttl(uint64_t seconds);

struct auth_job {
	struct sasl_session *sasl;	/* owned by the job while out */
	char *line;			/* client's base64, or NULL */
	enum sasl_status status;	/* out */
	char *challenge;		/* out, or NULL */
	void (*done)(struct auth_job *job, void *arg);
	void *arg;
	struct auth_job *next;
};

/* NULL with *error_r if the database cannot be opened. */
struct authq *authq_new(struct event_base *base,
			const struct userdb_config *udb,
			char **error_r);
/* The credentials context for sasl_start() (the thread's database). */
void *authq_creds_ctx(struct authq *q);
void authq_submit(struct authq *q, struct auth_job *job);
void authq_free(struct authq **q);

#endif
