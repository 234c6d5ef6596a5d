/*
 * Password hashes as the user database stores them: libcrypt, yescrypt
 * ("$y$") for new hashes, any scheme libcrypt knows when checking. The
 * admin commands hash, the login code (net/auth.c) verifies.
 */
#ifndef GODWIT_PASSWORD_H
#define GODWIT_PASSWORD_H

/*
 * Hashes a password with libcrypt (yescrypt, "$y$"). Returns a malloc'd
 * hash or NULL with *error_r set.
 */
char *password_hash(const char *password, const char **error_r);
/* 1 if password matches hash (any libcrypt scheme), 0 if not, -1 error. */
int password_verify(const char *password, const char *hash);

#endif
