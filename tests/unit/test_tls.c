/*
 * Tests for the TLS contexts: keys and self-signed certificates are made
 * here (EC P-256) in a temporary directory; configurations are checked
 * for the exact refusal, and SNI and protocol versions by real handshakes
 * between a client and the server context over memory BIOs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "daemon/config.h"
#include "lib/xalloc.h"
#include "net/tls.h"

static char tmpdir[64];

/* ---- making keys and certificates ------------------------------------ */

static EVP_PKEY *
make_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* Self-signed; san is "DNS:a,DNS:b" or NULL for a CN-only certificate. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn,
						    -1, -1, 0),
			 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	if (san != NULL) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(
		    NULL, &v3, NID_subject_alt_name, san);
		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static char *
write_pem(const char *file, mode_t mode, X509 *cert, EVP_PKEY *key)
{
	char *path = xasprintf("%s/%s", tmpdir, file);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	FILE *f;

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0); /* whatever the umask */
	f = fdopen(fd, "w");
	assert_non_null(f);
	if (cert != NULL)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	if (key != NULL)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0,
						      NULL, NULL),
				 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Certificate and key files under tmpdir: NAME.crt and NAME.key. */
static void
make_pair(const char *base, const char *cn, const char *san)
{
	EVP_PKEY *k = make_key();
	X509 *x = make_cert(k, cn, san);
	char file[64];

	snprintf(file, sizeof(file), "%s.crt", base);
	free(write_pem(file, 0644, x, NULL));
	snprintf(file, sizeof(file), "%s.key", base);
	free(write_pem(file, 0600, NULL, k));
	snprintf(file, sizeof(file), "%s-open.key", base);
	free(write_pem(file, 0644, NULL, k));
	X509_free(x);
	EVP_PKEY_free(k);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/godwit-test-tls.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	make_pair("a", "a.example.test", "DNS:a.example.test");
	make_pair("b", "b.example.test",
		  "DNS:b.example.test,DNS:*.w.example.test");
	make_pair("cn", "CN-Only.Example.Test", NULL);
	/* The CN must be ignored when the certificate has DNS names. */
	make_pair("sanonly", "cn.example.test", "DNS:other.example.test");
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

/* ---- configurations -------------------------------------------------- */

struct cert_row {
	const char *cert, *key; /* names under tmpdir, or absolute */
};

static struct config *
make_config(const struct cert_row *rows, size_t n, const char *min_version,
	    const char *ciphers, const char *suites)
{
	struct config *c = xcalloc(1, sizeof(*c));

	c->path = xstrdup("t.yaml");
	c->tls.certs = xcalloc(n > 0 ? n : 1, sizeof(*c->tls.certs));
	c->tls.ncerts = n;
	for (size_t i = 0; i < n; i++) {
		c->tls.certs[i].cert = xasprintf("%s/%s", tmpdir, rows[i].cert);
		c->tls.certs[i].key = xasprintf("%s/%s", tmpdir, rows[i].key);
		c->tls.certs[i].line = (int)(10 + i);
	}
	c->tls.min_version = xstrdup(min_version != NULL ? min_version
							 : "TLSv1.2");
	c->tls.ciphers = xstrdup(ciphers != NULL
				     ? ciphers
				     : "ECDHE-ECDSA-AES128-GCM-SHA256:"
				       "ECDHE-RSA-AES128-GCM-SHA256");
	c->tls.ciphersuites = suites != NULL ? xstrdup(suites) : NULL;
	return c;
}

struct load_case {
	const char *name;
	struct cert_row certs[3];
	size_t ncerts;
	const char *min_version, *ciphers, *suites;
	const char *error; /* NULL: loads; %s is tmpdir, up to 3 times */
};

static const struct load_case load_cases[] = {
	{"one certificate", {{"a.crt", "a.key"}}, 1},
	{"three certificates",
	 {{"a.crt", "a.key"}, {"b.crt", "b.key"}, {"cn.crt", "cn.key"}},
	 3},
	{"TLS 1.3 only with chosen suites", {{"a.crt", "a.key"}}, 1,
	 "TLSv1.3", NULL, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"},
	{"no certificates: no context, no error", {{NULL, NULL}}, 0},
	{"key of another certificate",
	 {{"a.crt", "a.key"}, {"a.crt", "b.key"}},
	 2, NULL, NULL, NULL,
	 "t.yaml:11: key file %s/b.key does not match certificate "
	 "%s/a.crt"},
	{"key readable by others",
	 {{"a.crt", "a-open.key"}},
	 1, NULL, NULL, NULL,
	 "t.yaml:10: key file %s/a-open.key is readable by group or others; "
	 "chmod 600 %s/a-open.key"},
	{"key is a directory", {{"a.crt", "."}}, 1, NULL, NULL, NULL,
	 "t.yaml:10: key file %s/. is not a regular file"},
	{"missing key", {{"a.crt", "none.key"}}, 1, NULL, NULL, NULL,
	 "t.yaml:10: key file %s/none.key: No such file or directory"},
	{"missing certificate", {{"none.crt", "a.key"}}, 1, NULL, NULL, NULL,
	 "t.yaml:10: certificate file %s/none.crt: No such file or "
	 "directory"},
	{"a key file where the certificate should be",
	 {{"a.key", "a.key"}},
	 1, NULL, NULL, NULL, "t.yaml:10: certificate file %s/a.key: *"},
	{"unknown TLS 1.2 cipher list", {{"a.crt", "a.key"}}, 1, NULL,
	 "BOGUS-CIPHER", NULL,
	 "t.yaml: tls.ciphers: no cipher OpenSSL knows in 'BOGUS-CIPHER'"},
	{"a TLS 1.2 list that selects nothing", {{"a.crt", "a.key"}}, 1,
	 NULL, "eNULL:!eNULL", NULL,
	 "t.yaml: tls.ciphers: no cipher OpenSSL knows in 'eNULL:!eNULL'"},
	{"unknown TLS 1.3 suite", {{"a.crt", "a.key"}}, 1, NULL, NULL,
	 "TLS_AES_256_GCM_SHA384:TLS_BOGUS",
	 "t.yaml: tls.ciphersuites: unknown TLS 1.3 cipher suite in "
	 "'TLS_AES_256_GCM_SHA384:TLS_BOGUS'"},
};

/* "%s" in pattern is tmpdir; a final "*" matches any rest. */
static void
assert_error(const char *pattern, const char *got)
{
	char *want = xmalloc(strlen(pattern) * 2 + 4 * sizeof(tmpdir));
	size_t len = 0;

	for (const char *p = pattern; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 's') {
			memcpy(want + len, tmpdir, strlen(tmpdir));
			len += strlen(tmpdir);
			p++;
		} else {
			want[len++] = *p;
		}
	}
	want[len] = '\0';

	assert_non_null(got);
	if (len > 0 && want[len - 1] == '*') {
		if (strncmp(got, want, len - 1) != 0)
			print_error("want %s\n got %s\n", want, got);
		assert_int_equal(strncmp(got, want, len - 1), 0);
	} else {
		assert_string_equal(got, want);
	}
	free(want);
}

static void
test_load(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]);
	     i++) {
		const struct load_case *tc = &load_cases[i];
		struct config *c;
		SSL_CTX *ctx = (void *)1;
		char *error = (void *)1;
		int r;

		print_message("load: %s\n", tc->name);
		c = make_config(tc->certs, tc->ncerts, tc->min_version,
				tc->ciphers, tc->suites);
		r = tls_ctx_new(&c->tls, c->path, &ctx, &error);
		if (tc->error == NULL) {
			if (r != 0)
				print_error("unexpected: %s\n", error);
			assert_int_equal(r, 0);
			assert_null(error);
			if (tc->ncerts > 0)
				assert_non_null(ctx);
			else
				assert_null(ctx);
		} else {
			assert_int_equal(r, -1);
			assert_null(ctx);
			assert_error(tc->error, error);
		}
		assert_int_equal(ERR_peek_error(), 0);
		free(error);
		tls_ctx_free(&ctx);
		assert_null(ctx);
		config_free(&c);
	}
}

static void
test_cert_as_key(void **state)
{
	const struct cert_row row = {"a.crt", "a.crt"};
	struct config *c;
	SSL_CTX *ctx;
	char *error;

	(void)state;
	/* a.crt is 0644: refused for its mode before its content. */
	c = make_config(&row, 1, NULL, NULL, NULL);
	assert_int_equal(tls_ctx_new(&c->tls, c->path, &ctx, &error), -1);
	assert_error("t.yaml:10: key file %s/a.crt is readable by group or "
		     "others; chmod 600 %s/a.crt",
		     error);
	free(error);
	config_free(&c);
	/* A 0600 file holding only a certificate: no private key in it. */
	EVP_PKEY *k = make_key();
	X509 *x = make_cert(k, "x.example.test", NULL);
	free(write_pem("certonly.key", 0600, x, NULL));
	X509_free(x);
	EVP_PKEY_free(k);
	const struct cert_row row2 = {"a.crt", "certonly.key"};
	c = make_config(&row2, 1, NULL, NULL, NULL);
	assert_int_equal(tls_ctx_new(&c->tls, c->path, &ctx, &error), -1);
	assert_error("t.yaml:10: key file %s/certonly.key: no PEM private "
		     "key (*",
		     error);
	assert_int_equal(ERR_peek_error(), 0);
	free(error);
	config_free(&c);
}

/* ---- handshakes ------------------------------------------------------ */

/*
 * Runs a handshake between a client and a server over two memory BIO
 * pairs, both non-blocking, as the event loop will. Returns 1 when both
 * finish, 0 when either fails.
 */
static int
handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, const char *sni,
	  SSL **client_r, SSL **server_r)
{
	SSL *s = SSL_new(server_ctx), *cl = SSL_new(client_ctx);
	BIO *c2s_r, *c2s_w, *s2c_r, *s2c_w;
	int cdone = 0, sdone = 0;

	assert_non_null(s);
	assert_non_null(cl);
	assert_int_equal(BIO_new_bio_pair(&c2s_w, 0, &c2s_r, 0), 1);
	assert_int_equal(BIO_new_bio_pair(&s2c_w, 0, &s2c_r, 0), 1);
	SSL_set_bio(cl, s2c_r, c2s_w);
	SSL_set_bio(s, c2s_r, s2c_w);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(s);
	if (sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(cl, sni), 1);
	for (int round = 0; round < 20 && !(cdone && sdone); round++) {
		int r;
		if (!cdone) {
			r = SSL_do_handshake(cl);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(cl, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	ERR_clear_error();
	*client_r = cl;
	*server_r = s;
	return cdone && sdone;
}

static SSL_CTX *
client_ctx(int min, int max)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	assert_non_null(c);
	/* Old versions need security level 0 in OpenSSL 3 to be offered. */
	SSL_CTX_set_security_level(c, 0);
	if (min != 0)
		assert_int_equal(SSL_CTX_set_min_proto_version(c, min), 1);
	if (max != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(c, max), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

/* The CN of the certificate the client was shown. */
static void
peer_cn(SSL *cl, char *buf, size_t size)
{
	X509 *x = SSL_get1_peer_certificate(cl);

	assert_non_null(x);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					      NID_commonName, buf,
					      (int)size) > 0);
	X509_free(x);
}

struct sni_case {
	const char *sni;
	const char *want_cn;
};

static const struct sni_case sni_cases[] = {
	{NULL, "a.example.test"},		/* no SNI: the default */
	{"a.example.test", "a.example.test"},
	{"b.example.test", "b.example.test"},
	{"B.Example.TEST", "b.example.test"},	/* case-insensitive */
	{"x.w.example.test", "b.example.test"}, /* wildcard, one label */
	{"X.W.EXAMPLE.TEST", "b.example.test"},
	{"y.x.w.example.test", "a.example.test"}, /* not two labels */
	{"w.example.test", "a.example.test"},	/* not zero labels */
	{"unknown.example.org", "a.example.test"},
	{"cn-only.example.test", "CN-Only.Example.Test"}, /* CN, no SAN */
	{"cn.example.test", "a.example.test"},	/* CN ignored beside SAN */
	{"other.example.test", "cn.example.test"},
};

static void
test_sni(void **state)
{
	const struct cert_row rows[] = {{"a.crt", "a.key"},
					{"b.crt", "b.key"},
					{"cn.crt", "cn.key"},
					{"sanonly.crt", "sanonly.key"}};
	struct config *c = make_config(rows, 4, NULL, NULL, NULL);
	SSL_CTX *ctx, *cctx = client_ctx(0, 0);
	char *error;

	(void)state;
	assert_int_equal(tls_ctx_new(&c->tls, c->path, &ctx, &error), 0);
	for (size_t i = 0; i < sizeof(sni_cases) / sizeof(sni_cases[0]);
	     i++) {
		const struct sni_case *tc = &sni_cases[i];
		SSL *cl, *s;
		char cn[256], desc[128];

		print_message("sni: %s\n", tc->sni != NULL ? tc->sni : "(none)");
		assert_int_equal(handshake(ctx, cctx, tc->sni, &cl, &s), 1);
		peer_cn(cl, cn, sizeof(cn));
		assert_string_equal(cn, tc->want_cn);
		/* The server side describes what was agreed. */
		assert_non_null(tls_describe(s, desc, sizeof(desc)));
		assert_true(strncmp(desc, "using TLSv1.3 with cipher TLS_", 30) ==
			    0);
		SSL_free(cl);
		SSL_free(s);
	}
	/* Sessions outlive the context reference the caller drops (reload):
	 * switch to an SNI context, then free the contexts first. */
	SSL *cl, *s;
	assert_int_equal(handshake(ctx, cctx, "b.example.test", &cl, &s), 1);
	tls_ctx_free(&ctx);
	assert_null(ctx);
	char cn[256];
	peer_cn(cl, cn, sizeof(cn));
	assert_string_equal(cn, "b.example.test");
	SSL_free(cl);
	SSL_free(s);
	SSL_CTX_free(cctx);
	config_free(&c);
}

struct version_case {
	const char *name;
	const char *server_min;
	int client_min, client_max;
	int ok;
	const char *want_version; /* on success */
	const char *cipher; /* TLS 1.2 ciphers, NULL for the default */
};

static const struct version_case version_cases[] = {
	{"default client: TLS 1.3", "TLSv1.2", 0, 0, 1, "TLSv1.3"},
	{"TLS 1.2 client", "TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION, 1,
	 "TLSv1.2"},
	{"TLS 1.1 client refused", "TLSv1.2", TLS1_1_VERSION, TLS1_1_VERSION,
	 0},
	{"TLS 1.0 client refused", "TLSv1.2", TLS1_VERSION, TLS1_VERSION, 0},
	{"TLS 1.3-only server refuses a TLS 1.2 client", "TLSv1.3", 0,
	 TLS1_2_VERSION, 0},
	{"TLS 1.3-only server, TLS 1.3 client", "TLSv1.3", TLS1_3_VERSION, 0,
	 1, "TLSv1.3"},
};

static void
test_versions(void **state)
{
	const struct cert_row row = {"a.crt", "a.key"};

	(void)state;
	for (size_t i = 0; i < sizeof(version_cases) / sizeof(version_cases[0]);
	     i++) {
		const struct version_case *tc = &version_cases[i];
		struct config *c =
		    make_config(&row, 1, tc->server_min, NULL, NULL);
		SSL_CTX *ctx, *cctx = client_ctx(tc->client_min,
						 tc->client_max);
		SSL *cl, *s;
		char *error, desc[128];

		print_message("version: %s\n", tc->name);
		assert_int_equal(tls_ctx_new(&c->tls, c->path, &ctx, &error), 0);
		assert_int_equal(handshake(ctx, cctx, NULL, &cl, &s), tc->ok);
		if (tc->ok) {
			assert_string_equal(SSL_get_version(s),
					    tc->want_version);
			assert_non_null(tls_describe(s, desc, sizeof(desc)));
			if (strcmp(tc->want_version, "TLSv1.2") == 0)
				assert_string_equal(
				    desc, "using TLSv1.2 with cipher "
					  "ECDHE-ECDSA-AES128-GCM-SHA256 "
					  "(128/128 bits)");
		} else {
			assert_null(tls_describe(s, desc, 0));
		}
		SSL_free(cl);
		SSL_free(s);
		tls_ctx_free(&ctx);
		SSL_CTX_free(cctx);
		config_free(&c);
	}
}

/* The options that must hold on every context, SNI ones included. */
static void
test_options(void **state)
{
	const struct cert_row row = {"a.crt", "a.key"};
	struct config *c = make_config(&row, 1, NULL, NULL, NULL);
	SSL_CTX *ctx;
	char *error, small[8];
	uint64_t opts;

	(void)state;
	assert_int_equal(tls_ctx_new(&c->tls, c->path, &ctx, &error), 0);
	opts = SSL_CTX_get_options(ctx);
	assert_true(opts & SSL_OP_NO_COMPRESSION);
	assert_true(opts & SSL_OP_NO_RENEGOTIATION);
	assert_true(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	/* A buffer too small gives NULL and an empty string, not a cut. */
	SSL_CTX *cctx = client_ctx(0, 0);
	SSL *cl, *s;
	assert_int_equal(handshake(ctx, cctx, NULL, &cl, &s), 1);
	assert_null(tls_describe(s, small, sizeof(small)));
	assert_string_equal(small, "");
	SSL_free(cl);
	SSL_free(s);
	SSL_CTX_free(cctx);
	tls_ctx_free(&ctx);
	tls_ctx_free(&ctx); /* twice is harmless */
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_cert_as_key),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_options),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
