/*
 * TLS server contexts built from the configuration (OpenSSL 3): protocol
 * floor, cipher lists, certificate chains and keys, and the choice of
 * certificate by SNI. No I/O on connections here: sessions wrap their
 * sockets themselves (libevent's OpenSSL bufferevents).
 */
#ifndef GODWIT_TLS_H
#define GODWIT_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "daemon/config.h"

/*
 * Builds the server context for config->tls_*: TLS 1.2+ (or 1.3 only),
 * no compression, no renegotiation, the server's cipher order, the first
 * certificate as default and the others chosen by SNI. Every certificate's
 * key must match it and its key file must be a regular file readable by
 * its owner only. Returns 0, or -1 with *error_r set ("FILE:LINE: ..."
 * naming the configuration line when there is one; caller frees). Called
 * again on SIGHUP to reload: the old context lives on, reference-counted,
 * in the sessions that use it.
 */
int tls_ctx_new(const struct config *config, SSL_CTX **ctx_r, char **error_r);
/* Drops the caller's reference (the SNI contexts go with the last one). */
void tls_ctx_free(SSL_CTX **ctx);

/*
 * For the Received header, in the words RFC 8314 4.3 and Postfix use:
 * "using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" (the
 * caller adds the parentheses around it). NULL when ssl has no finished
 * handshake or buf is too small.
 */
const char *tls_describe(SSL *ssl, char *buf, size_t size);

#endif
