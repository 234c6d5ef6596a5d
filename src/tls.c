/*
 * TLS server contexts: see tls.h.
 *
 * One SSL_CTX per configured certificate; the first is the default and
 * carries the SNI callback, which switches the connection to the context
 * whose certificate names the requested host. The list of contexts hangs
 * off the default one (ex_data) so that tls_ctx_free() frees them all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "lib/xalloc.h"
#include "tls.h"

/* Modern defaults for TLS 1.2: forward secrecy and AEAD only. */
#define DEFAULT_CIPHERS                                                        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"            \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"            \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

struct tls_set {
	SSL_CTX **ctx;
	X509 **cert;
	size_t n;
};

static int set_index = -1;

static char *
ssl_error(const char *what, const char *path)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return xasprintf("%s %s: %s", what, path, buf);
}

int
tls_check_key_file(const char *path, char **error_r)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		*error_r = xasprintf("key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("key file %s: not a regular file", path);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		*error_r = xasprintf("key file %s is readable by group or "
				     "others; chmod 600 %s",
				     path, path);
		return -1;
	}
	return 0;
}

int
tls_name_match(const char *pattern, const char *name)
{
	if (strcasecmp(pattern, name) == 0)
		return 1;
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(name, '.');
		/* one label only: "*.example.com" matches "a.example.com",
		 * not "example.com" or "a.b.example.com" */
		return dot != NULL && dot != name &&
		       strcasecmp(pattern + 1, dot) == 0;
	}
	return 0;
}

static int
cert_matches(X509 *cert, const char *name)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name,
					       NULL, NULL);
	int found = 0, had_dns = 0;

	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		had_dns = 1;
		const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);
		int len = ASN1_STRING_length(gn->d.dNSName);
		char buf[256];
		if (len <= 0 || (size_t)len >= sizeof(buf) ||
		    memchr(d, '\0', (size_t)len) != NULL)
			continue;
		memcpy(buf, d, (size_t)len);
		buf[len] = '\0';
		if (tls_name_match(buf, name)) {
			found = 1;
			break;
		}
	}
	GENERAL_NAMES_free(sans);
	if (!found && !had_dns) {
		char cn[256];
		if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					      NID_commonName, cn,
					      sizeof(cn)) > 0)
			found = tls_name_match(cn, name);
	}
	return found;
}

static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_set *set = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 1; i < set->n; i++) {
		if (cert_matches(set->cert[i], name)) {
			SSL_set_SSL_CTX(ssl, set->ctx[i]);
			break;
		}
	}
	/* no match: the default certificate */
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
ctx_one(const struct config *config, const struct config_certificate *c,
	char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int min = TLS1_2_VERSION;

	if (ctx == NULL) {
		*error_r = ssl_error("TLS", "context");
		return NULL;
	}
	if (config->tls_min_version != NULL &&
	    strcmp(config->tls_min_version, "TLSv1.3") == 0)
		min = TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, config->tls_ciphers != NULL
						 ? config->tls_ciphers
						 : DEFAULT_CIPHERS) != 1) {
		*error_r = ssl_error("tls.ciphers", "");
		goto fail;
	}
	if (config->tls_ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, config->tls_ciphersuites) != 1) {
		*error_r = ssl_error("tls.ciphersuites", "");
		goto fail;
	}
	if (tls_check_key_file(c->key, error_r) < 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		*error_r = ssl_error("certificate", c->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
		*error_r = ssl_error("key", c->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = xasprintf("key %s does not match certificate %s",
				     c->key, c->cert);
		ERR_clear_error();
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void
set_free(struct tls_set *set)
{
	/* ctx[0] is the one being freed, or never made */
	for (size_t i = 1; i < set->n; i++)
		SSL_CTX_free(set->ctx[i]);
	free(set->ctx);
	free(set->cert);
	free(set);
}

int
tls_ctx_new(const struct config *config, SSL_CTX **ctx_r, char **error_r)
{
	struct tls_set *set;

	*ctx_r = NULL;
	if (config->ntls_certs == 0)
		return 0;
	if (set_index < 0)
		set_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	set = xcalloc(1, sizeof(*set));
	set->ctx = xcalloc(config->ntls_certs, sizeof(*set->ctx));
	set->cert = xcalloc(config->ntls_certs, sizeof(*set->cert));
	for (size_t i = 0; i < config->ntls_certs; i++) {
		set->ctx[i] = ctx_one(config, &config->tls_certs[i], error_r);
		if (set->ctx[i] == NULL) {
			if (i > 0)
				SSL_CTX_free(set->ctx[0]);
			set_free(set);
			return -1;
		}
		set->cert[i] = SSL_CTX_get0_certificate(set->ctx[i]);
		set->n = i + 1;
	}
	SSL_CTX_set_tlsext_servername_callback(set->ctx[0], sni_cb);
	SSL_CTX_set_tlsext_servername_arg(set->ctx[0], set);
	SSL_CTX_set_ex_data(set->ctx[0], set_index, set);
	*ctx_r = set->ctx[0];
	return 0;
}

void
tls_ctx_free(SSL_CTX **ctxp)
{
	SSL_CTX *ctx = *ctxp;

	if (ctx == NULL)
		return;
	struct tls_set *set = SSL_CTX_get_ex_data(ctx, set_index);
	if (set != NULL)
		set_free(set);
	SSL_CTX_free(ctx);
	*ctxp = NULL;
}

const char *
tls_describe(SSL *ssl, char *buf, size_t size)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;

	snprintf(buf, size, "using %s with cipher %s (%d/%d bits)",
		 SSL_get_version(ssl), c != NULL ? SSL_CIPHER_get_name(c) : "?",
		 bits, alg);
	return buf;
}
