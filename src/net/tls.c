/*
 * TLS server contexts: see tls.h.
 *
 * One SSL_CTX per configured certificate, all set up alike. The first is
 * the default and carries the SNI callback, which moves a connection to
 * the context whose certificate names the requested host. The list of
 * contexts hangs off the default one as ex_data with a free callback, so
 * the others live exactly as long as the default does: until the last
 * session that still uses it after a reload is gone.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/xalloc.h"
#include "net/tls.h"

/* A PEM private key is a few KiB; anything far larger is not one. */
#define TLS_MAX_KEY_FILE (256 * 1024)

struct tls_set {
	SSL_CTX **ctx; /* ctx[0] is the default and owns this set */
	size_t n;
};

static int set_index = -1;

/* The last OpenSSL error, for a message; clears the error queue. */
static const char *
ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

static void
set_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
	    void *argp)
{
	struct tls_set *set = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (set == NULL)
		return;
	for (size_t i = 1; i < set->n; i++)
		SSL_CTX_free(set->ctx[i]);
	free(set->ctx);
	free(set);
}

/*
 * Reads the key through one descriptor that was checked, so the file
 * cannot be swapped between the check and the read (symlinks, as in
 * /etc/letsencrypt/live, are followed: the target is what is checked).
 * Refuses what OpenSMTPD's check_file_secrecy refuses.
 */
static EVP_PKEY *
read_key(const char *path, const char *where, char **error_r)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t len = 0;
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int fd;
	char reason[256];

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) <
	    0) {
		*error_r = xasprintf("%skey file %s: %s", where, path,
				     strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("%skey file %s: %s", where, path,
				     strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%skey file %s is not a regular file",
				     where, path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		*error_r = xasprintf("%skey file %s is readable by group or "
				     "others; chmod 600 %s",
				     where, path, path);
		goto out;
	}
	if (st.st_size > TLS_MAX_KEY_FILE) {
		*error_r = xasprintf("%skey file %s is larger than %d bytes",
				     where, path, TLS_MAX_KEY_FILE);
		goto out;
	}
	buf = xmalloc(TLS_MAX_KEY_FILE + 1);
	for (;;) {
		ssize_t r = read(fd, buf + len, TLS_MAX_KEY_FILE + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = xasprintf("%skey file %s: %s", where, path,
					     strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > TLS_MAX_KEY_FILE) {
			*error_r = xasprintf("%skey file %s is larger than "
					     "%d bytes",
					     where, path, TLS_MAX_KEY_FILE);
			goto out;
		}
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		*error_r = xasprintf("%skey file %s: %s", where, path,
				     ssl_reason(reason, sizeof(reason)));
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		*error_r = xasprintf("%skey file %s: no PEM private key (%s)",
				     where, path,
				     ssl_reason(reason, sizeof(reason)));
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	close(fd);
	return pkey;
}

/* Counts the names in a ':'-separated list. */
static size_t
count_names(const char *list)
{
	size_t n = 0;

	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ":");
		if (len > 0)
			n++;
		p += len;
		if (*p == ':')
			p++;
	}
	return n;
}

/*
 * Counts the TLS 1.3 suites and the older ciphers the context would
 * offer: OpenSSL silently drops names it does not know, so a typo would
 * otherwise leave a version without ciphers.
 */
static void
count_ciphers(SSL_CTX *ctx, size_t *tls13_r, size_t *tls12_r)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);

	*tls13_r = *tls12_r = 0;
	for (int i = 0; sk != NULL && i < sk_SSL_CIPHER_num(sk); i++) {
		const char *v = SSL_CIPHER_get_version(sk_SSL_CIPHER_value(sk, i));
		if (strcmp(v, "TLSv1.3") == 0)
			(*tls13_r)++;
		else
			(*tls12_r)++;
	}
}

static int
setup_protocol(const struct tls_config *tls, const char *path, SSL_CTX *ctx,
	       char **error_r)
{
	const char *cfg = path != NULL ? path : "config";
	bool only13 = tls->min_version != NULL &&
		      strcmp(tls->min_version, "TLSv1.3") == 0;
	size_t n13, n12;
	char reason[256];

	if (SSL_CTX_set_min_proto_version(ctx, only13 ? TLS1_3_VERSION
						      : TLS1_2_VERSION) != 1) {
		*error_r = xasprintf("%s: tls.min_version: %s", cfg,
				     ssl_reason(reason, sizeof(reason)));
		return -1;
	}
	/*
	 * No compression (CRIME), no renegotiation (a client could make us
	 * do handshakes forever, and it is gone from TLS 1.3 anyway), and
	 * our cipher order, not the client's. A client that closes the
	 * connection without close_notify has simply closed it: SMTP and
	 * POP3 frame their own data (QUIT, CRLF.CRLF, BDAT sizes), so no
	 * truncation goes unnoticed, and the session logs reason=eof once
	 * instead of a TLS error.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* What libevent's OpenSSL bufferevents expect of non-blocking I/O;
	 * idle sessions give their buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (tls->ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, tls->ciphers) != 1) {
		*error_r = xasprintf("%s: tls.ciphers: no cipher OpenSSL "
				     "knows in '%s'",
				     cfg, tls->ciphers);
		ERR_clear_error();
		return -1;
	}
	if (tls->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, tls->ciphersuites) != 1) {
		*error_r = xasprintf("%s: tls.ciphersuites: invalid list '%s'",
				     cfg, tls->ciphersuites);
		ERR_clear_error();
		return -1;
	}
	count_ciphers(ctx, &n13, &n12);
	if (tls->ciphersuites != NULL &&
	    n13 != count_names(tls->ciphersuites)) {
		*error_r = xasprintf("%s: tls.ciphersuites: unknown TLS 1.3 "
				     "cipher suite in '%s'",
				     cfg, tls->ciphersuites);
		return -1;
	}
	if (n13 == 0) {
		*error_r = xasprintf("%s: tls.ciphersuites: no TLS 1.3 cipher "
				     "suite left",
				     cfg);
		return -1;
	}
	if (!only13 && n12 == 0) {
		*error_r = xasprintf("%s: tls.ciphers: no TLS 1.2 cipher in "
				     "'%s'",
				     cfg,
				     tls->ciphers != NULL
					 ? tls->ciphers
					 : "");
		return -1;
	}
	return 0;
}

static SSL_CTX *
ctx_one(const struct tls_config *tls, const char *path,
	const struct tls_certificate *cc, char **error_r)
{
	char where[4200], reason[256];
	SSL_CTX *ctx;
	EVP_PKEY *pkey;

	if (cc->line > 0)
		snprintf(where, sizeof(where), "%s:%d: ",
			 path != NULL ? path : "config",
			 cc->line);
	else
		where[0] = '\0';
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*error_r = xasprintf("%sTLS context: %s", where,
				     ssl_reason(reason, sizeof(reason)));
		return NULL;
	}
	if (setup_protocol(tls, path, ctx, error_r) < 0)
		goto fail;
	/* The key first: a readable key is refused before anything else. */
	if ((pkey = read_key(cc->key, where, error_r)) == NULL)
		goto fail;
	if (access(cc->cert, R_OK) < 0) {
		*error_r = xasprintf("%scertificate file %s: %s", where,
				     cc->cert, strerror(errno));
		EVP_PKEY_free(pkey);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert) != 1) {
		*error_r = xasprintf("%scertificate file %s: %s", where,
				     cc->cert,
				     ssl_reason(reason, sizeof(reason)));
		EVP_PKEY_free(pkey);
		goto fail;
	}
	/* Also checks that the key belongs to the certificate. */
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		*error_r = xasprintf("%skey file %s does not match certificate "
				     "%s",
				     where, cc->key, cc->cert);
		EVP_PKEY_free(pkey);
		goto fail;
	}
	EVP_PKEY_free(pkey);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * X509_check_host() is the matcher TLS clients use: DNS subjectAltNames,
 * the CN only when there is none, case-insensitive, and "*" only as a
 * whole left-most label matching exactly one label.
 */
static bool
cert_names(SSL_CTX *ctx, const char *name)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);

	return x != NULL &&
	       X509_check_host(x, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
			       NULL) == 1;
}

static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_set *set = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL || set == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < set->n; i++) {
		if (!cert_names(set->ctx[i], name))
			continue;
		if (i > 0 && SSL_set_SSL_CTX(ssl, set->ctx[i]) == NULL)
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		break;
	}
	/* No match: the default certificate, as every server does. */
	return SSL_TLSEXT_ERR_OK;
}

int
tls_ctx_new(const struct tls_config *tls, const char *path, SSL_CTX **ctx_r,
	    char **error_r)
{
	struct tls_set *set;

	*ctx_r = NULL;
	*error_r = NULL;
	if (tls->ncerts == 0)
		return 0;
	if (set_index < 0 &&
	    (set_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
						  set_free_cb)) < 0) {
		*error_r = xasprintf("TLS: no ex_data index");
		return -1;
	}
	set = xcalloc(1, sizeof(*set));
	set->ctx = xcalloc(tls->ncerts, sizeof(*set->ctx));
	for (size_t i = 0; i < tls->ncerts; i++) {
		SSL_CTX *ctx = ctx_one(tls, path, &tls->certs[i], error_r);
		if (ctx == NULL) {
			for (size_t j = 0; j < set->n; j++)
				SSL_CTX_free(set->ctx[j]);
			free(set->ctx);
			free(set);
			return -1;
		}
		set->ctx[set->n++] = ctx;
	}
	if (SSL_CTX_set_ex_data(set->ctx[0], set_index, set) != 1) {
		for (size_t j = 0; j < set->n; j++)
			SSL_CTX_free(set->ctx[j]);
		free(set->ctx);
		free(set);
		*error_r = xasprintf("TLS: cannot attach the SNI contexts");
		return -1;
	}
	/* From here the set is freed with ctx[0]. */
	if (set->n > 1) {
		SSL_CTX_set_tlsext_servername_callback(set->ctx[0], sni_cb);
		SSL_CTX_set_tlsext_servername_arg(set->ctx[0], set);
	}
	*ctx_r = set->ctx[0];
	return 0;
}

void
tls_ctx_free(SSL_CTX **ctxp)
{
	if (*ctxp == NULL)
		return;
	SSL_CTX_free(*ctxp);
	*ctxp = NULL;
}

const char *
tls_describe(SSL *ssl, char *buf, size_t size)
{
	const SSL_CIPHER *c;
	int alg = 0, bits, n;

	if (size == 0)
		return NULL;
	buf[0] = '\0';
	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL)
		return NULL;
	bits = SSL_CIPHER_get_bits(c, &alg);
	n = snprintf(buf, size, "using %s with cipher %s (%d/%d bits)",
		     SSL_get_version(ssl), SSL_CIPHER_get_name(c), bits, alg);
	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return NULL;
	}
	return buf;
}

int
tls_cert_not_after(const char *path, int64_t *t_r, char **error_r)
{
	FILE *f = fopen(path, "re");
	X509 *x = NULL;
	struct tm tm;
	int ok = 0;

	if (f != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (x != NULL)
		ok = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
	X509_free(x);
	if (!ok) {
		*error_r = xasprintf("%s: %s", path,
				     f == NULL ? strerror(errno)
					       : "no certificate in it");
		ERR_clear_error();
		return -1;
	}
	*t_r = (int64_t)timegm(&tm);
	return 0;
}
