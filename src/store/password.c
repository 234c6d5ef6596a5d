/*
 * Password hashes (store/password.h): libcrypt's yescrypt, compared in
 * constant time.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/password.h"

char *
password_hash(const char *password, const char **error_r)
{
	struct crypt_data *cd;
	char *salt, *h, *r = NULL;

	if ((salt = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL) {
		*error_r = "cannot make a password salt (libcrypt without "
			   "yescrypt?)";
		return NULL;
	}
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, salt, cd, sizeof(*cd));
	/* Failure is NULL, or a string starting with '*' from some builds. */
	if (h == NULL || h[0] == '*')
		*error_r = "password hashing failed";
	else
		r = xstrdup(h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	free(salt);
	return r;
}

int
password_verify(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *h;
	size_t len;
	unsigned char diff = 0;
	int r;

	/* Locked or disabled accounts, as in /etc/shadow. */
	if (hash == NULL || hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return 0;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, hash, cd, sizeof(*cd));
	if (h == NULL || h[0] == '*') {
		r = -1;
	} else if ((len = strlen(h)) != strlen(hash)) {
		r = 0;
	} else {
		/* Every byte compared, whatever the first difference. */
		for (size_t i = 0; i < len; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		r = diff == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}
