/*
 * Authentication glue shared by SMTP AUTH and (later) POP3: the SASL
 * credential callbacks over the user database, and the submission sender
 * policy (RFC 6409 section 6.1: a user sends only as an address of theirs).
 */
#ifndef GODWIT_AUTH_H
#define GODWIT_AUTH_H

#include "sasl.h"

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

#endif
