/* SASL credentials from the user database, and the sender policy. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "admin.h"
#include "auth.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "userdb.h"

int
auth_normalize(const char *authcid, char *buf, size_t size)
{
	const char *at = strrchr(authcid, '@');

	if (at == NULL || at == authcid || at[1] == '\0' ||
	    strlcpy_checked(buf, authcid, size) < 0)
		return -1;
	ascii_lower(buf);
	return 0;
}

/*
 * An unknown user costs the same hash computation as a known one, so the
 * time of a reply does not tell which accounts exist.
 */
static const char *
dummy_hash(void)
{
	static char *hash;
	const char *err;

	if (hash == NULL)
		hash = password_hash("godwit-dummy-password", &err);
	return hash;
}

static int
verify_password(void *ctx, const char *user, const char *password)
{
	struct userdb *db = ctx;
	char account[320], *hash = NULL;
	int r;

	if (auth_normalize(user, account, sizeof(account)) < 0) {
		if (dummy_hash() != NULL)
			password_verify(password, dummy_hash());
		return 0;
	}
	r = db->ops->password_hash(db, account, &hash);
	if (r < 0)
		return -1;
	if (r == 0 || hash == NULL) {
		if (dummy_hash() != NULL)
			password_verify(password, dummy_hash());
		free(hash);
		return 0;
	}
	r = password_verify(password, hash);
	free(hash);
	return r < 0 ? -1 : r;
}

static int
scram_secret(void *ctx, const char *user, struct sasl_scram_secret *out)
{
	struct userdb *db = ctx;
	char account[320], *text = NULL;
	int r;

	if (auth_normalize(user, account, sizeof(account)) < 0)
		return 0;
	r = db->ops->scram_secret(db, account, &text);
	if (r <= 0)
		return r;
	r = sasl_scram_parse(text, out) == 0 ? 1 : -1;
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return r;
}

static int
cram_secret(void *ctx, const char *user, char **secret_r)
{
	struct userdb *db = ctx;
	char account[320];

	if (auth_normalize(user, account, sizeof(account)) < 0)
		return 0;
	return db->ops->cram_secret(db, account, secret_r);
}

const struct sasl_creds auth_userdb_creds = {
	.verify_password = verify_password,
	.scram_secret = scram_secret,
	.cram_secret = cram_secret,
};

int
auth_sender_allowed(struct userdb *db, const char *account,
		    const char *sender, char delimiter)
{
	char addr[320], *at, *plus;
	struct userdb_alias_list l = {0};
	int r;

	if (auth_normalize(sender, addr, sizeof(addr)) < 0)
		return 0;
	if (strcmp(addr, account) == 0)
		return 1;
	/* user+tag@domain */
	at = strrchr(addr, '@');
	if (delimiter != '\0' && (plus = memchr(addr, delimiter,
						(size_t)(at - addr))) != NULL) {
		char base[320];
		snprintf(base, sizeof(base), "%.*s%s", (int)(plus - addr), addr,
			 at);
		if (strcmp(base, account) == 0)
			return 1;
	}
	/* an alias that delivers to the account */
	r = userdb_alias_lookup(db, addr, &l);
	if (r <= 0)
		return r;
	r = 0;
	for (size_t i = 0; i < l.n; i++) {
		char t[320];
		if (auth_normalize(l.targets[i], t, sizeof(t)) == 0 &&
		    strcmp(t, account) == 0)
			r = 1;
	}
	userdb_alias_list_free(&l);
	return r;
}
