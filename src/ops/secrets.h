/*
 * A user's password as the admin commands take it (asked on a terminal,
 * or one line of standard input) and every form of it the user database
 * stores (store/userdb.h): the crypt hash, the SCRAM-SHA-256 secret and,
 * when auth.cram_md5 is on, the CRAM-MD5 secret.
 */
#ifndef GODWIT_SECRETS_H
#define GODWIT_SECRETS_H

#include <stdbool.h>

#define PASSWORD_MAX 1024	/* bytes, without the newline */

struct config;
struct userdb;

/* scram and cram may be NULL: not possible, or not wanted. */
struct secrets {
	char *hash;
	char *scram;
	char *cram;
};

/* Wipes and frees what sc holds. */
void secrets_clear(struct secrets *sc);

/*
 * Derives every form of password for address. A password SCRAM cannot
 * take gets no SCRAM secret and a note on stderr (prefix: what to print
 * before it, e.g. "FILE:LINE: "); the CRAM-MD5 secret is kept only when
 * auth.cram_md5 is on, because it is as good as the password itself.
 */
int secrets_make(const struct config *config, const char *address,
		 const char *password, const char *prefix, struct secrets *r,
		 const char **error_r);

/*
 * The new password: asked twice on a terminal, else (or with
 * --password-stdin) exactly one line from standard input. Returns 0 with
 * *r filled in, or -1 after printing why.
 */
int new_password_secrets(const struct config *config, const char *address,
			 bool from_stdin, struct secrets *r);

/*
 * Adds a user with all its secrets. The backend adds the user with the
 * hash first; should storing the rest fail, the user is removed again so
 * that "add" either happens whole or not at all.
 */
int store_new_user(struct userdb *db, const char *address,
		   const struct secrets *sc, char **err_r);

#endif
