/*
 * The user database: domains, users (with password hashes) and aliases.
 * Callers see only this interface; each backend (userdb_sqlite.c now,
 * PostgreSQL later) fills in a struct userdb_ops.
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

struct userdb;

/* userdb: in the configuration */
struct userdb_config {
	char *driver;		/* "sqlite" */
	char *path;		/* the loader's default:
				 * <data_dir>/db/godwit.sqlite */
};

struct userdb_alias_list {
	char **targets;		/* full addresses */
	size_t n;
};

struct userdb_ops {
	const char *name;
	int (*open)(const char *path, bool readonly, struct userdb **db_r,
		    char **error_r);
	void (*close)(struct userdb *db);

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
};

struct userdb {
	const struct userdb_ops *ops;
};

/* Opens the backend named by udb->driver. */
int userdb_open(const struct userdb_config *udb, bool readonly,
		struct userdb **db_r, char **error_r);
void userdb_close(struct userdb **db);
void userdb_alias_list_clear(struct userdb_alias_list *l);
void userdb_string_list_free(char ***list, size_t n);

extern const struct userdb_ops userdb_sqlite_ops;

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
