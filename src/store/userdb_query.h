/*
 * Bring your own schema (store/userdb_query.c): the user database read
 * through SQL queries written in the configuration (userdb.queries), as
 * Postfix's mysql:/pgsql: maps and Dovecot's passdb/userdb SQL read an
 * existing database (PostfixAdmin's, for one). Read-only: godwit never
 * writes to a database it does not own.
 *
 * In a query the lookup key is written as Postfix writes it: %s the whole
 * address (or the domain, in the domain query), %u the local part, %d the
 * domain, %% a '%' (in quoted strings too, as in Postfix: a LIKE
 * pattern is written '%%x'). Each is turned into a bound parameter
 * ($1..$n), never spliced into the text: '%u' in quotes (the way Postfix
 * and Dovecot queries quote them) is the same parameter as a bare %u.
 */
#ifndef GODWIT_USERDB_QUERY_H
#define GODWIT_USERDB_QUERY_H

#include <stddef.h>

/* struct userdb_queries (the configuration) is in store/userdb.h */

enum userdb_query_value {
	UQV_ADDRESS,	/* %s */
	UQV_LOCAL,	/* %u */
	UQV_DOMAIN,	/* %d */
};

#define USERDB_QUERY_MAX_PARAMS 16
#define USERDB_QUERY_MAX_LEN 4096

/* A query with its placeholders turned into $1..$n */
struct userdb_query_stmt {
	char *sql;
	/* $k+1 is bound to the value vals[k] */
	enum userdb_query_value vals[USERDB_QUERY_MAX_PARAMS];
	size_t nvals;
};

/*
 * Compiles a query of the configuration: one SELECT (or WITH) statement,
 * placeholders %s %u %d %%, no $n nor ? of its own. 0, or -1 with a
 * malloc'd *error_r saying what is wrong.
 */
int userdb_query_compile(const char *text, struct userdb_query_stmt *st,
			 char **error_r);
void userdb_query_stmt_clear(struct userdb_query_stmt *st);

/*
 * A stored password as libcrypt checks it: a Dovecot scheme prefix of the
 * crypt family ({CRYPT}, {MD5-CRYPT}, {SHA256-CRYPT}, {SHA512-CRYPT},
 * {BLF-CRYPT}, {DES-CRYPT}, {MD5}) is skipped; a value without a prefix is
 * taken as it is. NULL for another scheme ({PLAIN}, {SSHA}, ...): such a
 * password cannot be checked, and the login fails.
 */
const char *userdb_query_crypt_hash(const char *stored);

#endif
