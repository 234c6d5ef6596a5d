/*
 * TLS server contexts built from the configuration (OpenSSL 3): protocol
 * floor, cipher lists, certificate chains and keys, and the choice of
 * certificate by SNI. No I/O on connections here: sessions wrap their
 * sockets themselves (libevent's OpenSSL bufferevents).
 */
#ifndef GODWIT_TLS_H
#define GODWIT_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* tls.certificates[]: the first is the default, the others are chosen by
 * SNI against their subjectAltName/CN. */
struct tls_certificate {
	char *cert;		/* PEM chain: leaf first */
	char *key;		/* PEM private key; must not be group/world
				 * readable */
	int line;		/* in the configuration file */
};

/* tls: in the configuration */
struct tls_config {
	struct tls_certificate *certs;
	size_t ncerts;
	char *min_version;		/* "TLSv1.2" (default) or "TLSv1.3" */
	char *ciphers;			/* TLS 1.2 list, OpenSSL syntax */
	char *ciphersuites;		/* TLS 1.3 list, OpenSSL syntax */
	uint64_t handshake_timeout;	/* seconds for a whole handshake */
};

/*
 * Builds the server context for tls (path: the configuration file, for
 * messages; NULL reads "config"): TLS 1.2+ (or 1.3 only),
 * no compression, no renegotiation, the server's cipher order, the first
 * certificate as default and the others chosen by SNI. Every certificate's
 * key must match it and its key file must be a regular file readable by
 * its owner only. Returns 0, or -1 with *error_r set ("FILE:LINE: ..."
 * naming the configuration line when there is one; caller frees). Called
 * again on SIGHUP to reload: the old context lives on, reference-counted,
 * in the sessions that use it.
 */
int tls_ctx_new(const struct tls_config *tls, const char *path,
		SSL_CTX **ctx_r, char **error_r);
/* Drops the caller's reference (the SNI contexts go with the last one). */
void tls_ctx_free(SSL_CTX **ctx);

/*
 * For the Received header, in the words RFC 8314 4.3 and Postfix use:
 * "using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" (the
 * caller adds the parentheses around it). NULL when ssl has no finished
 * handshake or buf is too small.
 */
const char *tls_describe(SSL *ssl, char *buf, size_t size);

/*
 * The notAfter of the first certificate in the PEM file at path, in unix
 * seconds (the cert-expiry alert). 0, or -1 with *error_r (caller frees).
 */
int tls_cert_not_after(const char *path, int64_t *t_r, char **error_r);

#endif
