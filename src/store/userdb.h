/*
 * The user database: domains, users (with password hashes) and aliases.
 * Callers see only this interface; each backend (userdb_sqlite.c, and
 * userdb_sql.c for PostgreSQL and MySQL/MariaDB) fills in a struct
 * userdb_ops.
 *
 * Addresses passed in are already normalised: domain lower-case ASCII,
 * local part lower-cased (ASCII letters only). A catch-all alias has an
 * empty local part: "@example.test".
 *
 * Lookups return 1 found, 0 not found, -1 on a database error (the
 * session answers 451 4.3.0 and the client retries).
 *
 * A user's password is kept in every form a SASL mechanism needs: the
 * libcrypt hash (PLAIN, LOGIN), the SCRAM-SHA-256 secret in the text form
 * of sasl_scram_format() (salted keys, never the password), and, only
 * when auth.cram_md5 is on, the plaintext-equivalent CRAM-MD5 secret.
 */
#ifndef GODWIT_USERDB_H
#define GODWIT_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct userdb;

/* userdb.queries: in the configuration; NULL: not set */
struct userdb_queries {
	char *domain;	/* a row when the domain is ours */
	char *user;	/* a row when the mailbox exists (and is active) */
	char *password;	/* first column of the first row: the crypt hash,
			 * with or without a Dovecot {SCHEME} prefix */
	char *alias;	/* the targets: each row's first column, a
			 * comma-separated list (PostfixAdmin's goto) */
	char *domains;	/* optional: every domain, for doctor and dns */
};

/* True when any query is set: the read-only mode is on. */
static inline int
userdb_queries_set(const struct userdb_queries *q)
{
	return q->domain != NULL || q->user != NULL || q->password != NULL ||
	       q->alias != NULL || q->domains != NULL;
}

/* userdb: in the configuration */
struct userdb_config {
	char *backend;		/* "sqlite", "postgresql", "mysql" */
	char *driver;		/* the old spelling of backend, as loaded
				 * (the loader copies it to backend) */
	char *path;		/* sqlite; the loader's default:
				 * <data_dir>/db/godwit.sqlite */
	char *dsn;		/* postgresql, mysql: the connection string */
	uint64_t connect_timeout; /* seconds, for the connect and each
				   * statement of a network backend */
	/* set: read-only, your own schema (store/userdb_query.h) */
	struct userdb_queries queries;
};

enum userdb_txn {
	USERDB_BEGIN,
	USERDB_COMMIT,
	USERDB_ROLLBACK,
};

struct userdb_alias_list {
	char **targets;		/* full addresses */
	size_t n;
};

struct userdb_ops {
	const char *name;
	/*
	 * A network backend connects lazily, at the first operation, so
	 * that a daemon starts while its database server is down (lookups
	 * then fail with -1 until it is back); ping connects now.
	 */
	int (*open)(const struct userdb_config *udb, bool readonly,
		    struct userdb **db_r, char **error_r);
	void (*close)(struct userdb *db);
	/* Connects (if not yet) and checks the schema: 0 or -1. */
	int (*ping)(struct userdb *db, char **error_r);

	int (*domain_exists)(struct userdb *db, const char *domain);
	int (*user_exists)(struct userdb *db, const char *address);
	/* source is "local@domain" or "@domain" */
	int (*alias_lookup)(struct userdb *db, const char *source,
			    struct userdb_alias_list *r);
	int (*password_hash)(struct userdb *db, const char *address,
			     char **hash_r);
	/*
	 * The SCRAM-SHA-256 secret text and the CRAM-MD5 secret: 1 with a
	 * malloc'd *secret_r, 0 if the user is unknown or has no such
	 * secret (e.g. imported hashes have no SCRAM secret until the next
	 * password change), -1 on error. The caller wipes and frees.
	 */
	int (*scram_secret)(struct userdb *db, const char *address,
			    char **secret_r);
	int (*cram_secret)(struct userdb *db, const char *address,
			   char **secret_r);

	/* administration */
	int (*domain_add)(struct userdb *db, const char *domain, char **error_r);
	int (*domain_del)(struct userdb *db, const char *domain, char **error_r);
	int (*domain_list)(struct userdb *db, char ***domains_r, size_t *n_r,
			   char **error_r);
	int (*user_add)(struct userdb *db, const char *address,
			const char *hash, char **error_r);
	int (*user_del)(struct userdb *db, const char *address, char **error_r);
	/*
	 * Replaces every stored form of the user's password at once: hash
	 * (required), scram and cram (NULL: none, which also drops a secret
	 * derived from an older password).
	 */
	int (*user_set_secrets)(struct userdb *db, const char *address,
				const char *hash, const char *scram,
				const char *cram, char **error_r);
	int (*user_list)(struct userdb *db, const char *domain, char ***users_r,
			 size_t *n_r, char **error_r);
	int (*alias_add)(struct userdb *db, const char *source,
			 const char *target, char **error_r);
	int (*alias_del)(struct userdb *db, const char *source,
			 const char *target, char **error_r);
	/* each entry "source target" */
	int (*alias_list)(struct userdb *db, const char *domain,
			  char ***aliases_r, size_t *n_r, char **error_r);

	/*
	 * godwit db: the schema version found (0: no schema yet) and the
	 * latest this godwit knows; migrate runs the missing migrations in
	 * order, each in a transaction where the engine allows, and lists
	 * what it ran ("1: domains, users, aliases").
	 */
	int (*schema_version)(struct userdb *db, int *version_r, int *latest_r,
			      char **error_r);
	int (*migrate)(struct userdb *db, char ***done_r, size_t *n_r,
		       char **error_r);
	/* One transaction around admin operations (godwit db import). */
	int (*transaction)(struct userdb *db, enum userdb_txn what,
			   char **error_r);
};

struct userdb {
	const struct userdb_ops *ops;
};

/* Opens the backend named by udb->backend. */
int userdb_open(const struct userdb_config *udb, bool readonly,
		struct userdb **db_r, char **error_r);
void userdb_close(struct userdb **db);
void userdb_alias_list_clear(struct userdb_alias_list *l);
void userdb_string_list_free(char ***list, size_t n);

/* Connects a network backend now (the admin commands want a clear error
 * rather than a failed lookup); a no-op for SQLite. */
int userdb_ping(struct userdb *db, char **error_r);

extern const struct userdb_ops userdb_sqlite_ops;
extern const struct userdb_ops userdb_pgsql_ops;
extern const struct userdb_ops userdb_mysql_ops;
extern const struct userdb_ops userdb_query_ops;

/* Convenience wrappers that call through ops. */
static inline int
userdb_domain_exists(struct userdb *db, const char *domain)
{
	return db->ops->domain_exists(db, domain);
}
static inline int
userdb_user_exists(struct userdb *db, const char *address)
{
	return db->ops->user_exists(db, address);
}
static inline int
userdb_alias_lookup(struct userdb *db, const char *source,
		    struct userdb_alias_list *r)
{
	return db->ops->alias_lookup(db, source, r);
}

#endif
