/*
 * Server-side SASL mechanisms: PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256
 * (see sasl.h for the contract). Each client message is decoded into one
 * bounded stack buffer, parsed there, and the buffer wiped before the step
 * returns; only what the next step needs is kept in the session. All
 * cryptography is libcrypto's; this file only strings it together.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/xalloc.h"
#include "net/sasl.h"

#define SCRAM_NONCE_MAX 255	/* client nonce, and our test nonce bound */
#define SCRAM_SNONCE_BYTES 18	/* random bytes in our nonce: 24 chars */
#define SCRAM_GS2_MAX (SASL_NAME_MAX * 3 + 8)	/* "n,a=<escaped>," */
#define TEST_NONCE_MAX 128
#define TEST_CHALLENGE_MAX 512
#define HOSTNAME_MAX 255
#define MD5_LEN 16

enum sasl_state {
	ST_START,		/* nothing received yet */
	ST_PLAIN,		/* empty challenge sent, want the response */
	ST_LOGIN_USER,		/* "Username:" sent */
	ST_LOGIN_PASS,		/* "Password:" sent */
	ST_CRAM,		/* challenge sent, want "user digest" */
	ST_SCRAM_FIRST,		/* empty challenge sent, want client-first */
	ST_SCRAM_FINAL,		/* server-first sent, want client-final */
	ST_SCRAM_ACK,		/* server-final sent, want an empty line */
	ST_DONE,		/* a final status was returned */
};

struct sasl_session {
	enum sasl_mech mech;
	enum sasl_state state;
	const struct sasl_creds *ops;
	void *ctx;
	char hostname[HOSTNAME_MAX + 1];
	char *authcid;		/* once the client has named itself */

	char *cram_challenge;	/* "<random.time@host>", decoded */

	/* SCRAM: what the AuthMessage and the final checks need */
	char *gs2_header;	/* "n,," or "y,a=name," */
	char *client_first_bare;
	char *server_first;
	char *nonce;		/* client nonce + server nonce */
	struct sasl_scram_secret secret;
	bool user_known;	/* false: secret is a decoy */
};

static const char *const mech_names[SASL_MECH_COUNT] = {
	[SASL_PLAIN] = "PLAIN",
	[SASL_LOGIN] = "LOGIN",
	[SASL_CRAM_MD5] = "CRAM-MD5",
	[SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
};

#ifdef GODWIT_TEST_HOOKS
/* Test-only fixed server nonce and CRAM-MD5 challenge ("" when unset). */
static char test_nonce[TEST_NONCE_MAX + 1];
static char test_challenge[TEST_CHALLENGE_MAX + 1];
#endif

/*
 * The fixed server nonce and CRAM-MD5 challenge the tests set, or NULL:
 * always NULL in the daemon, which is built without the hooks.
 */
static const char *
fixed_nonce(void)
{
#ifdef GODWIT_TEST_HOOKS
	if (test_nonce[0] != '\0')
		return test_nonce;
#endif
	return NULL;
}

static const char *
fixed_challenge(void)
{
#ifdef GODWIT_TEST_HOOKS
	if (test_challenge[0] != '\0')
		return test_challenge;
#endif
	return NULL;
}

/*
 * The key for the decoy salts of unknown SCRAM users (RFC 5802 section 9):
 * the same unknown name gets the same salt every time, so the
 * server-first-message does not tell who exists. The daemon sets it from
 * its persistent secret (sasl_set_decoy_key()), so every worker, and the
 * next start, give the same salt; without that (tools, tests) a key drawn
 * once per process is used.
 */
static unsigned char decoy_key[32];
static bool decoy_key_ok;
static bool decoy_key_given;
static pthread_once_t decoy_once = PTHREAD_ONCE_INIT;

static void
decoy_init(void)
{
	if (!decoy_key_given)
		decoy_key_ok = RAND_bytes(decoy_key, sizeof(decoy_key)) == 1;
}

void
sasl_set_decoy_key(const unsigned char key[32])
{
	memcpy(decoy_key, key, sizeof(decoy_key));
	decoy_key_given = true;
	decoy_key_ok = true;
}

/* ---- small helpers ----------------------------------------------------- */

static void
free_secret_str(char **p)
{
	if (*p != NULL) {
		OPENSSL_cleanse(*p, strlen(*p));
		xfree(p);
	}
}

static int
hmac(const char *digest, const void *key, size_t keylen, const void *data,
     size_t len, unsigned char *out, size_t outsize)
{
	size_t outlen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, key, keylen, data, len,
		      out, outsize, &outlen) == NULL ||
	    outlen != outsize)
		return -1;
	return 0;
}

static int
sha256(const void *data, size_t len, unsigned char out[SASL_SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	if (EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) != 1 ||
	    outlen != SASL_SCRAM_KEY_LEN)
		return -1;
	return 0;
}

/*
 * A name (authcid, authzid): 1..SASL_NAME_MAX octets of valid UTF-8 (no
 * overlong forms, no surrogates, nothing above U+10FFFF) without C0 or C1
 * control characters or DEL, so it can go into a log line as it is.
 */
static bool
name_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, k, more;
	uint32_t cp, min;

	if (n == 0 || n > SASL_NAME_MAX)
		return false;
	while (i < n) {
		cp = s[i++];
		if (cp < 0x80) {
			if (cp < 0x20 || cp == 0x7f)
				return false;
			continue;
		}
		if (cp >= 0xc2 && cp <= 0xdf) {
			more = 1;
			cp &= 0x1f;
			min = 0x80;
		} else if (cp >= 0xe0 && cp <= 0xef) {
			more = 2;
			cp &= 0x0f;
			min = 0x800;
		} else if (cp >= 0xf0 && cp <= 0xf4) {
			more = 3;
			cp &= 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i < more)
			return false;
		for (k = 0; k < more; k++, i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		if (cp >= 0x80 && cp <= 0x9f)
			return false;
	}
	return true;
}

/* Printable ASCII but ',' (RFC 5802 "printable"): a SCRAM nonce. */
static bool
nonce_ok(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/*
 * Decodes one client message into buf (SASL_MSG_MAX + 1 bytes) and
 * NUL-terminates it; the message itself may contain NULs, so the length
 * is returned in *len_r. "=" is the empty message when initial is set.
 */
static int
decode_msg(const char *b64, bool initial, unsigned char *buf, size_t *len_r)
{
	size_t n = strnlen(b64, base64_encoded_len(SASL_MSG_MAX) + 1);
	ssize_t r;

	if (initial) {
		if (strcmp(b64, "=") == 0) {
			buf[0] = '\0';
			*len_r = 0;
			return 0;
		}
		/* RFC 4954: an empty initial response is "=", never "" */
		if (n == 0)
			return -1;
	}
	if (n > base64_encoded_len(SASL_MSG_MAX))
		return -1;
	r = base64_decode(b64, n, buf, SASL_MSG_MAX);
	if (r < 0)
		return -1;
	buf[r] = '\0';
	*len_r = (size_t)r;
	return 0;
}

static void
set_authcid(struct sasl_session *s, const char *name, size_t n)
{
	free(s->authcid);
	s->authcid = xstrndup(name, n);
}

static enum sasl_status
challenge(char **challenge_r, const void *data, size_t n)
{
	*challenge_r = base64_encode_alloc(data, n);
	return SASL_CONTINUE;
}

/* A callback result (1, 0, -1, or anything a buggy one returns). */
static enum sasl_status
lookup_status(int r)
{
	if (r == 1)
		return SASL_OK;
	if (r == 0)
		return SASL_FAIL_CREDENTIALS;
	return SASL_FAIL_TEMP;
}

/* ---- PLAIN (RFC 4616) -------------------------------------------------- */

/* message = [authzid] UTF8NUL authcid UTF8NUL passwd */
static enum sasl_status
plain_response(struct sasl_session *s, const unsigned char *msg, size_t n)
{
	const unsigned char *nul1, *nul2, *authcid, *pass;
	size_t zlen, clen, plen;

	nul1 = memchr(msg, '\0', n);
	if (nul1 == NULL)
		return SASL_FAIL_SYNTAX;
	nul2 = memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL)
		return SASL_FAIL_SYNTAX;
	zlen = (size_t)(nul1 - msg);
	authcid = nul1 + 1;
	clen = (size_t)(nul2 - authcid);
	pass = nul2 + 1;
	plen = n - (size_t)(pass - msg);
	/* a third NUL: in the password, where none may be */
	if (memchr(pass, '\0', plen) != NULL)
		return SASL_FAIL_SYNTAX;
	if (!name_ok(authcid, clen) || (zlen != 0 && !name_ok(msg, zlen)))
		return SASL_FAIL_SYNTAX;
	if (plen > SASL_PASSWORD_MAX)
		return SASL_FAIL_SYNTAX;
	set_authcid(s, (const char *)authcid, clen);
	/* well formed, and wrong: a failed login like any other (535,
	 * logged and counted), not an undecodable response */
	if (plen == 0)
		return SASL_FAIL_CREDENTIALS;
	if (zlen != 0 && (zlen != clen || memcmp(msg, authcid, clen) != 0))
		return SASL_FAIL_CREDENTIALS;
	return lookup_status(s->ops->verify_password(s->ctx, s->authcid,
						     (const char *)pass));
}

/* ---- LOGIN ------------------------------------------------------------- */

static enum sasl_status
login_user(struct sasl_session *s, const unsigned char *msg, size_t n,
	   char **challenge_r)
{
	if (memchr(msg, '\0', n) != NULL || !name_ok(msg, n))
		return SASL_FAIL_SYNTAX;
	set_authcid(s, (const char *)msg, n);
	s->state = ST_LOGIN_PASS;
	return challenge(challenge_r, "Password:", 9);
}

static enum sasl_status
login_pass(struct sasl_session *s, const unsigned char *msg, size_t n)
{
	if (n > SASL_PASSWORD_MAX || memchr(msg, '\0', n) != NULL)
		return SASL_FAIL_SYNTAX;
	if (n == 0)		/* as in PLAIN: a wrong password */
		return SASL_FAIL_CREDENTIALS;
	return lookup_status(s->ops->verify_password(s->ctx, s->authcid,
						     (const char *)msg));
}

/* ---- CRAM-MD5 (RFC 2195) ----------------------------------------------- */

static enum sasl_status
cram_start(struct sasl_session *s, char **challenge_r)
{
	unsigned char rnd[8];
	char hex[2 * sizeof(rnd) + 1];
	const char *fixed;
	size_t i;

	if ((fixed = fixed_challenge()) != NULL) {
		s->cram_challenge = xstrdup(fixed);
	} else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return SASL_FAIL_TEMP;
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		/* RFC 2195 section 2: a unique string in msg-id form */
		s->cram_challenge = xasprintf("<%s.%lld@%s>", hex,
					      (long long)time(NULL),
					      s->hostname);
	}
	s->state = ST_CRAM;
	return challenge(challenge_r, s->cram_challenge,
			 strlen(s->cram_challenge));
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;		/* RFC 2195: lower-case hex only */
}

/* response = user SP 32 lower-case hex digits of HMAC-MD5 */
static enum sasl_status
cram_response(struct sasl_session *s, const unsigned char *msg, size_t n)
{
	unsigned char want[MD5_LEN], got[MD5_LEN];
	const unsigned char *sp;
	char *secret = NULL;
	enum sasl_status st;
	size_t ulen, i;
	int hi, lo, r;

	if (memchr(msg, '\0', n) != NULL)
		return SASL_FAIL_SYNTAX;
	/* the last space: the digest has none, a name could */
	sp = memrchr(msg, ' ', n);
	if (sp == NULL)
		return SASL_FAIL_SYNTAX;
	ulen = (size_t)(sp - msg);
	if (!name_ok(msg, ulen) || n - ulen - 1 != 2 * MD5_LEN)
		return SASL_FAIL_SYNTAX;
	for (i = 0; i < MD5_LEN; i++) {
		hi = hex_val((char)sp[1 + 2 * i]);
		lo = hex_val((char)sp[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return SASL_FAIL_SYNTAX;
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	set_authcid(s, (const char *)msg, ulen);

	r = s->ops->cram_secret(s->ctx, s->authcid, &secret);
	st = lookup_status(r);
	if (st == SASL_OK && secret == NULL)
		st = SASL_FAIL_TEMP;
	if (st == SASL_OK) {
		if (hmac("MD5", secret, strlen(secret), s->cram_challenge,
			 strlen(s->cram_challenge), want, sizeof(want)) < 0)
			st = SASL_FAIL_TEMP;
		else if (CRYPTO_memcmp(want, got, sizeof(want)) != 0)
			st = SASL_FAIL_CREDENTIALS;
	}
	free_secret_str(&secret);
	OPENSSL_cleanse(want, sizeof(want));
	return st;
}

/* ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) -------------------------------- */

/* The length of the attribute value at p: up to ',' or the end. */
static size_t
attr_len(const char *p)
{
	return strcspn(p, ",");
}

/*
 * saslname: "=2C" is ',' and "=3D" is '='; any other '=' is an error.
 * Unescapes n characters at p into out (SASL_NAME_MAX + 1 bytes) and
 * checks the result as a name.
 */
static int
scram_unescape(const char *p, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (o >= SASL_NAME_MAX)
			return -1;
		if (p[i] != '=') {
			out[o++] = p[i];
		} else if (n - i >= 3 && p[i + 1] == '2' && p[i + 2] == 'C') {
			out[o++] = ',';
			i += 2;
		} else if (n - i >= 3 && p[i + 1] == '3' && p[i + 2] == 'D') {
			out[o++] = '=';
			i += 2;
		} else {
			return -1;
		}
	}
	out[o] = '\0';
	return name_ok((const unsigned char *)out, o) ? 0 : -1;
}

/*
 * extensions = attr-val *("," attr-val), attr-val = ALPHA "=" 1*value-char.
 * RFC 5802 section 7: unknown extensions are ignored, but must be
 * well-formed. p points at the "," before the first one, or at the end;
 * stop is where they must end. Returns 0 or -1.
 */
static int
scram_skip_extensions(const char *p, const char *stop)
{
	size_t n;

	while (p < stop) {
		if (*p != ',')
			return -1;
		p++;
		n = attr_len(p);
		if (p + n > stop)
			n = (size_t)(stop - p);
		if (n < 3 || !((p[0] >= 'a' && p[0] <= 'z') ||
			       (p[0] >= 'A' && p[0] <= 'Z')) ||
		    p[1] != '=')
			return -1;
		p += n;
	}
	return 0;
}

/*
 * A decoy secret for a user the database does not know: the salt is
 * HMAC-SHA-256(key, name) cut to the length and the iteration count is the
 * one sasl_scram_generate() gives every real user, so the two look alike.
 * The name is ASCII-lower-cased first, as the database lookup does
 * (auth_normalize()): "Bob@x" and "bob@x" get one salt, as a real user's
 * two spellings do.
 */
static int
scram_decoy(const char *user, struct sasl_scram_secret *r)
{
	unsigned char mac[32];
	char folded[SASL_NAME_MAX + 1];
	size_t i, n = strlen(user);

	pthread_once(&decoy_once, decoy_init);
	if (!decoy_key_ok || n >= sizeof(folded))
		return -1;
	for (i = 0; i <= n; i++)
		folded[i] = user[i] >= 'A' && user[i] <= 'Z'
				    ? (char)(user[i] - 'A' + 'a')
				    : user[i];
	if (hmac("SHA256", decoy_key, sizeof(decoy_key), folded, n, mac,
		 sizeof(mac)) < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->iterations = SASL_SCRAM_ITER_DEFAULT;
	r->saltlen = SASL_SCRAM_SALT_DEFAULT;
	memcpy(r->salt, mac, r->saltlen);
	/* keys that no proof can match: the check also tests user_known */
	if (RAND_bytes(r->stored_key, sizeof(r->stored_key)) != 1 ||
	    RAND_bytes(r->server_key, sizeof(r->server_key)) != 1)
		return -1;
	return 0;
}

static bool
scram_secret_ok(const struct sasl_scram_secret *r)
{
	return r->iterations >= SASL_SCRAM_ITER_MIN &&
	       r->iterations <= SASL_SCRAM_ITER_MAX && r->saltlen >= 1 &&
	       r->saltlen <= SASL_SCRAM_SALT_MAX;
}

/*
 * client-first-message = gs2-header client-first-message-bare
 * gs2-header = ("n" / "y" / "p=" cb-name) "," ["a=" saslname] ","
 * client-first-message-bare = ["m=" ... ","] "n=" saslname "," "r=" nonce
 *			       ["," extensions]
 */
static enum sasl_status
scram_client_first(struct sasl_session *s, const char *msg, size_t n,
		   char **challenge_r)
{
	char authzid[SASL_NAME_MAX + 1], user[SASL_NAME_MAX + 1];
	char snonce[TEST_NONCE_MAX + 1], *salt_b64;
	unsigned char rnd[SCRAM_SNONCE_BYTES];
	const char *p = msg, *bare, *cnonce, *fixed;
	bool have_authzid = false;
	size_t len, cnlen;
	int r;

	if (strlen(msg) != n)
		return SASL_FAIL_SYNTAX;

	/* gs2-cbind-flag: we offer no -PLUS mechanism, so no binding */
	if (strncmp(p, "p=", 2) == 0)
		return SASL_FAIL_CREDENTIALS;
	if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		return SASL_FAIL_SYNTAX;
	p += 2;
	if (strncmp(p, "a=", 2) == 0) {
		len = attr_len(p + 2);
		if (p[2 + len] != ',' || scram_unescape(p + 2, len, authzid) < 0)
			return SASL_FAIL_SYNTAX;
		have_authzid = true;
		p += 2 + len;
	}
	if (*p != ',')
		return SASL_FAIL_SYNTAX;
	p++;
	bare = p;

	/* RFC 5802 section 5.1: "m" must make authentication fail */
	if (strncmp(p, "m=", 2) == 0)
		return SASL_FAIL_CREDENTIALS;
	if (strncmp(p, "n=", 2) != 0)
		return SASL_FAIL_SYNTAX;
	len = attr_len(p + 2);
	if (p[2 + len] != ',' || scram_unescape(p + 2, len, user) < 0)
		return SASL_FAIL_SYNTAX;
	p += 2 + len + 1;
	if (strncmp(p, "r=", 2) != 0)
		return SASL_FAIL_SYNTAX;
	cnonce = p + 2;
	cnlen = attr_len(cnonce);
	if (!nonce_ok(cnonce, cnlen, SCRAM_NONCE_MAX))
		return SASL_FAIL_SYNTAX;
	if (scram_skip_extensions(cnonce + cnlen, msg + n) < 0)
		return SASL_FAIL_SYNTAX;

	set_authcid(s, user, strlen(user));
	if (have_authzid && strcmp(authzid, user) != 0)
		return SASL_FAIL_CREDENTIALS;

	r = s->ops->scram_secret(s->ctx, user, &s->secret);
	if (r == 1) {
		if (!scram_secret_ok(&s->secret))
			return SASL_FAIL_TEMP;
		s->user_known = true;
	} else if (r == 0) {
		/* carry on with a decoy, fail at the proof */
		if (scram_decoy(user, &s->secret) < 0)
			return SASL_FAIL_TEMP;
		s->user_known = false;
	} else {
		return SASL_FAIL_TEMP;
	}

	if ((fixed = fixed_nonce()) != NULL) {
		memcpy(snonce, fixed, strlen(fixed) + 1);
	} else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return SASL_FAIL_TEMP;
		if (base64_encode(rnd, sizeof(rnd), snonce, sizeof(snonce)) < 0)
			return SASL_FAIL_TEMP;
	}

	s->gs2_header = xstrndup(msg, (size_t)(bare - msg));
	s->client_first_bare = xstrdup(bare);
	s->nonce = xasprintf("%.*s%s", (int)cnlen, cnonce, snonce);
	salt_b64 = base64_encode_alloc(s->secret.salt, s->secret.saltlen);
	s->server_first = xasprintf("r=%s,s=%s,i=%u", s->nonce, salt_b64,
				    s->secret.iterations);
	free(salt_b64);
	s->state = ST_SCRAM_FINAL;
	return challenge(challenge_r, s->server_first, strlen(s->server_first));
}

/*
 * client-final-message = "c=" base64(gs2-header) "," "r=" nonce
 *			  ["," extensions] "," "p=" base64(ClientProof)
 */
static enum sasl_status
scram_client_final(struct sasl_session *s, const char *msg, size_t n,
		   char **challenge_r)
{
	unsigned char cbind[SCRAM_GS2_MAX + 1], proof[SASL_SCRAM_KEY_LEN];
	unsigned char sig[SASL_SCRAM_KEY_LEN], key[SASL_SCRAM_KEY_LEN];
	unsigned char h[SASL_SCRAM_KEY_LEN];
	const char *p = msg, *nonce, *proof_at, *without_proof_end;
	char *auth_msg, *b64, *final;
	size_t len, nlen, i;
	ssize_t r;
	enum sasl_status st = SASL_FAIL_CREDENTIALS;
	bool ok;

	if (strlen(msg) != n)
		return SASL_FAIL_SYNTAX;
	/* the proof is the last attribute */
	proof_at = strrchr(msg, ',');
	if (proof_at == NULL || strncmp(proof_at, ",p=", 3) != 0)
		return SASL_FAIL_SYNTAX;
	without_proof_end = proof_at;
	proof_at += 3;
	if (base64_decode(proof_at, strlen(proof_at), proof, sizeof(proof)) !=
	    (ssize_t)sizeof(proof))
		return SASL_FAIL_SYNTAX;

	if (strncmp(p, "c=", 2) != 0)
		return SASL_FAIL_SYNTAX;
	len = attr_len(p + 2);
	if (p + 2 + len >= without_proof_end)
		return SASL_FAIL_SYNTAX;
	r = base64_decode(p + 2, len, cbind, sizeof(cbind) - 1);
	if (r < 0)
		return SASL_FAIL_SYNTAX;
	p += 2 + len + 1;
	if (strncmp(p, "r=", 2) != 0)
		return SASL_FAIL_SYNTAX;
	nonce = p + 2;
	nlen = attr_len(nonce);
	if (nonce + nlen > without_proof_end)
		return SASL_FAIL_SYNTAX;
	if (scram_skip_extensions(nonce + nlen, without_proof_end) < 0)
		return SASL_FAIL_SYNTAX;

	/* without channel binding, c= is the gs2-header itself */
	if ((size_t)r != strlen(s->gs2_header) ||
	    memcmp(cbind, s->gs2_header, (size_t)r) != 0)
		return SASL_FAIL_CREDENTIALS;
	if (nlen != strlen(s->nonce) || memcmp(nonce, s->nonce, nlen) != 0)
		return SASL_FAIL_CREDENTIALS;

	/* AuthMessage = client-first-bare "," server-first "," final-w/o-proof */
	auth_msg = xasprintf("%s,%s,%.*s", s->client_first_bare,
			     s->server_first, (int)(without_proof_end - msg),
			     msg);
	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage) */
	if (hmac("SHA256", s->secret.stored_key, SASL_SCRAM_KEY_LEN, auth_msg,
		 strlen(auth_msg), sig, sizeof(sig)) < 0) {
		st = SASL_FAIL_TEMP;
		goto out;
	}
	for (i = 0; i < SASL_SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (sha256(key, sizeof(key), h) < 0) {
		st = SASL_FAIL_TEMP;
		goto out;
	}
	ok = CRYPTO_memcmp(h, s->secret.stored_key, SASL_SCRAM_KEY_LEN) == 0;
	if (!ok || !s->user_known) {
		st = SASL_FAIL_CREDENTIALS;
		goto out;
	}

	/* server-final-message = "v=" base64(HMAC(ServerKey, AuthMessage)) */
	if (hmac("SHA256", s->secret.server_key, SASL_SCRAM_KEY_LEN, auth_msg,
		 strlen(auth_msg), sig, sizeof(sig)) < 0) {
		st = SASL_FAIL_TEMP;
		goto out;
	}
	b64 = base64_encode_alloc(sig, sizeof(sig));
	final = xasprintf("v=%s", b64);
	free(b64);
	s->state = ST_SCRAM_ACK;
	st = challenge(challenge_r, final, strlen(final));
	free(final);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	free(auth_msg);
	return st;
}

/* ---- the session ------------------------------------------------------- */

const char *
sasl_mech_name(enum sasl_mech mech)
{
	if ((unsigned)mech >= SASL_MECH_COUNT)
		return "UNKNOWN";
	return mech_names[mech];
}

int
sasl_mech_from_name(const char *name, enum sasl_mech *mech_r)
{
	unsigned i;

	for (i = 0; i < SASL_MECH_COUNT; i++) {
		if (strcasecmp(name, mech_names[i]) == 0) {
			*mech_r = (enum sasl_mech)i;
			return 0;
		}
	}
	return -1;
}

bool
sasl_mech_usable(enum sasl_mech mech, const struct sasl_creds *ops)
{
	if (ops == NULL)
		return false;
	switch (mech) {
	case SASL_PLAIN:
	case SASL_LOGIN:
		return ops->verify_password != NULL;
	case SASL_CRAM_MD5:
		return ops->cram_secret != NULL;
	case SASL_SCRAM_SHA_256:
		return ops->scram_secret != NULL;
	}
	return false;
}

const char *
sasl_status_name(enum sasl_status st)
{
	switch (st) {
	case SASL_CONTINUE:
		return "CONTINUE";
	case SASL_OK:
		return "OK";
	case SASL_FAIL_CREDENTIALS:
		return "FAIL_CREDENTIALS";
	case SASL_FAIL_SYNTAX:
		return "FAIL_SYNTAX";
	case SASL_FAIL_TEMP:
		return "FAIL_TEMP";
	case SASL_CANCELLED:
		return "CANCELLED";
	}
	return "UNKNOWN";
}

bool
sasl_is_cancel(const char *line)
{
	return line != NULL && strcmp(line, "*") == 0;
}

static bool
hostname_ok(const char *h)
{
	size_t n = strnlen(h, HOSTNAME_MAX + 1), i;

	if (n == 0 || n > HOSTNAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (h[i] < 0x21 || h[i] > 0x7e || h[i] == '<' || h[i] == '>')
			return false;
	return true;
}

struct sasl_session *
sasl_start(enum sasl_mech mech, const struct sasl_creds *ops, void *ctx,
	   const char *hostname)
{
	struct sasl_session *s;

	if ((unsigned)mech >= SASL_MECH_COUNT || !sasl_mech_usable(mech, ops))
		return NULL;
	if (hostname == NULL)
		hostname = "localhost";
	if (!hostname_ok(hostname))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->mech = mech;
	s->state = ST_START;
	s->ops = ops;
	s->ctx = ctx;
	memcpy(s->hostname, hostname, strlen(hostname) + 1);
	return s;
}

/* The first step: the initial response, if any, is in msg. */
static enum sasl_status
step_start(struct sasl_session *s, const unsigned char *msg, size_t n,
	   bool have_ir, char **challenge_r)
{
	switch (s->mech) {
	case SASL_PLAIN:
		if (!have_ir) {
			s->state = ST_PLAIN;
			return challenge(challenge_r, "", 0);
		}
		return plain_response(s, msg, n);
	case SASL_LOGIN:
		if (!have_ir) {
			s->state = ST_LOGIN_USER;
			return challenge(challenge_r, "Username:", 9);
		}
		return login_user(s, msg, n, challenge_r);
	case SASL_CRAM_MD5:
		if (have_ir)
			return SASL_FAIL_SYNTAX;
		return cram_start(s, challenge_r);
	case SASL_SCRAM_SHA_256:
		if (!have_ir) {
			s->state = ST_SCRAM_FIRST;
			return challenge(challenge_r, "", 0);
		}
		return scram_client_first(s, (const char *)msg, n, challenge_r);
	}
	return SASL_FAIL_SYNTAX;
}

enum sasl_status
sasl_step(struct sasl_session *s, const char *client_b64,
	  char **challenge_b64_r)
{
	unsigned char msg[SASL_MSG_MAX + 1];
	enum sasl_status st = SASL_FAIL_SYNTAX;
	bool initial = s->state == ST_START;
	size_t n = 0;

	*challenge_b64_r = NULL;
	if (s->state == ST_DONE)
		return SASL_FAIL_SYNTAX;
	if (!initial && sasl_is_cancel(client_b64)) {
		s->state = ST_DONE;
		return SASL_CANCELLED;
	}
	/* only the first step may come without a message */
	if ((client_b64 == NULL && !initial) ||
	    (client_b64 != NULL &&
	     decode_msg(client_b64, initial, msg, &n) < 0)) {
		s->state = ST_DONE;
		OPENSSL_cleanse(msg, sizeof(msg));
		return SASL_FAIL_SYNTAX;
	}

	switch (s->state) {
	case ST_START:
		st = step_start(s, msg, n, client_b64 != NULL, challenge_b64_r);
		break;
	case ST_PLAIN:
		st = plain_response(s, msg, n);
		break;
	case ST_LOGIN_USER:
		st = login_user(s, msg, n, challenge_b64_r);
		break;
	case ST_LOGIN_PASS:
		st = login_pass(s, msg, n);
		break;
	case ST_CRAM:
		st = cram_response(s, msg, n);
		break;
	case ST_SCRAM_FIRST:
		st = scram_client_first(s, (const char *)msg, n,
					challenge_b64_r);
		break;
	case ST_SCRAM_FINAL:
		st = scram_client_final(s, (const char *)msg, n,
					challenge_b64_r);
		break;
	case ST_SCRAM_ACK:
		/* RFC 4954 section 4: the client answers the final data empty */
		st = n == 0 ? SASL_OK : SASL_FAIL_SYNTAX;
		break;
	case ST_DONE:
		break;
	}
	OPENSSL_cleanse(msg, sizeof(msg));
	if (st != SASL_CONTINUE) {
		s->state = ST_DONE;
		/* a failed step must not leave a challenge behind */
		xfree(challenge_b64_r);
	}
	return st;
}

const char *
sasl_authcid(const struct sasl_session *s)
{
	return s->authcid;
}

enum sasl_mech
sasl_session_mech(const struct sasl_session *s)
{
	return s->mech;
}

void
sasl_free(struct sasl_session **sp)
{
	struct sasl_session *s = *sp;

	if (s == NULL)
		return;
	free(s->authcid);
	free(s->cram_challenge);
	free(s->gs2_header);
	free(s->client_first_bare);
	free(s->server_first);
	free(s->nonce);
	OPENSSL_cleanse(s, sizeof(*s));
	xfree(sp);
}

/* ---- SCRAM secrets ----------------------------------------------------- */

int
sasl_scram_derive(const char *password, const unsigned char *salt,
		  size_t saltlen, unsigned iterations,
		  struct sasl_scram_secret *r)
{
	unsigned char salted[SASL_SCRAM_KEY_LEN], client_key[SASL_SCRAM_KEY_LEN];
	size_t plen = strnlen(password, SASL_PASSWORD_MAX + 1), i;
	int ret = -1;

	if (plen == 0 || plen > SASL_PASSWORD_MAX)
		return -1;
	/* printable US-ASCII only: SASLprep is then the identity */
	for (i = 0; i < plen; i++)
		if (password[i] < 0x20 || password[i] > 0x7e)
			return -1;
	if (salt == NULL || saltlen == 0 || saltlen > SASL_SCRAM_SALT_MAX ||
	    iterations < SASL_SCRAM_ITER_MIN || iterations > SASL_SCRAM_ITER_MAX)
		return -1;

	memset(r, 0, sizeof(*r));
	if (PKCS5_PBKDF2_HMAC(password, (int)plen, salt, (int)saltlen,
			      (int)iterations, EVP_sha256(), sizeof(salted),
			      salted) != 1)
		goto out;
	if (hmac("SHA256", salted, sizeof(salted), "Client Key", 10,
		 client_key, sizeof(client_key)) < 0 ||
	    sha256(client_key, sizeof(client_key), r->stored_key) < 0 ||
	    hmac("SHA256", salted, sizeof(salted), "Server Key", 10,
		 r->server_key, sizeof(r->server_key)) < 0)
		goto out;
	r->iterations = iterations;
	r->saltlen = saltlen;
	memcpy(r->salt, salt, saltlen);
	ret = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (ret < 0)
		OPENSSL_cleanse(r, sizeof(*r));
	return ret;
}

int
sasl_scram_generate(const char *password, struct sasl_scram_secret *r)
{
	unsigned char salt[SASL_SCRAM_SALT_DEFAULT];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	return sasl_scram_derive(password, salt, sizeof(salt),
				 SASL_SCRAM_ITER_DEFAULT, r);
}

char *
sasl_scram_format(const struct sasl_scram_secret *sec)
{
	char *salt, *stored, *server, *out;

	if (!scram_secret_ok(sec))
		return NULL;
	salt = base64_encode_alloc(sec->salt, sec->saltlen);
	stored = base64_encode_alloc(sec->stored_key, SASL_SCRAM_KEY_LEN);
	server = base64_encode_alloc(sec->server_key, SASL_SCRAM_KEY_LEN);
	out = xasprintf("SCRAM-SHA-256$%u:%s$%s:%s", sec->iterations, salt,
			stored, server);
	free(salt);
	free(stored);
	free(server);
	return out;
}

int
sasl_scram_parse(const char *text, struct sasl_scram_secret *r)
{
	static const char prefix[] = "SCRAM-SHA-256$";
	const char *p, *colon, *dollar, *colon2;
	unsigned long iter = 0;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (strncmp(text, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	p = text + sizeof(prefix) - 1;

	/* iterations: decimal, no sign, no leading zero, bounded */
	colon = strchr(p, ':');
	if (colon == NULL || colon == p || colon - p > 8 || *p == '0')
		return -1;
	for (; p < colon; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		iter = iter * 10 + (unsigned long)(*p - '0');
	}
	if (iter < SASL_SCRAM_ITER_MIN || iter > SASL_SCRAM_ITER_MAX)
		return -1;
	p = colon + 1;

	dollar = strchr(p, '$');
	if (dollar == NULL)
		return -1;
	n = base64_decode(p, (size_t)(dollar - p), r->salt, sizeof(r->salt));
	if (n < 1)
		goto bad;
	r->saltlen = (size_t)n;
	p = dollar + 1;

	colon2 = strchr(p, ':');
	if (colon2 == NULL ||
	    base64_decode(p, (size_t)(colon2 - p), r->stored_key,
			  SASL_SCRAM_KEY_LEN) != SASL_SCRAM_KEY_LEN)
		goto bad;
	p = colon2 + 1;
	if (base64_decode(p, strlen(p), r->server_key, SASL_SCRAM_KEY_LEN) !=
	    SASL_SCRAM_KEY_LEN)
		goto bad;
	r->iterations = (unsigned)iter;
	return 0;
bad:
	OPENSSL_cleanse(r, sizeof(*r));
	return -1;
}

#ifdef GODWIT_TEST_HOOKS
int
sasl_scram_set_test_nonce(const char *nonce)
{
	if (nonce == NULL) {
		test_nonce[0] = '\0';
		return 0;
	}
	if (!nonce_ok(nonce, strnlen(nonce, TEST_NONCE_MAX + 1),
		      TEST_NONCE_MAX))
		return -1;
	memcpy(test_nonce, nonce, strlen(nonce) + 1);
	return 0;
}

int
sasl_cram_set_test_challenge(const char *challenge)
{
	size_t n, i;

	if (challenge == NULL) {
		test_challenge[0] = '\0';
		return 0;
	}
	n = strnlen(challenge, TEST_CHALLENGE_MAX + 1);
	if (n == 0 || n > TEST_CHALLENGE_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (challenge[i] < 0x20 || challenge[i] > 0x7e)
			return -1;
	memcpy(test_challenge, challenge, n + 1);
	return 0;
}
#endif
