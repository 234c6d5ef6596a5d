/*
 * libFuzzer target for sasl.c and lib/base64.c. The first byte chooses:
 *	bits 0-1  the mechanism (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256)
 *	bit 2     messages are raw bytes that the harness base64-encodes, so
 *		  the fuzzer reaches the mechanism parsers directly; otherwise
 *		  they go in as wire text and exercise the decoder
 *	bit 3     the client sends no initial response (first step NULL)
 *	bit 4     random server nonces and CRAM challenges instead of the
 *		  fixed test ones (the fixed ones let the fuzzer echo a nonce)
 *	bit 5     instead of a session: the rest is a stored SCRAM secret
 *	bit 6     SCRAM: the harness answers the server-first-message itself
 *		  with a correct client-final (password "pencil") for whatever
 *		  client-first the fuzzer wrote, so the proof check, the
 *		  ServerSignature and the final empty answer are fuzzed too;
 *		  for the one known user the server must accept and sign
 *		  exactly as RFC 5802 says
 * The rest of the input is split on '\n' into client messages, fed in
 * until the exchange ends. Invariants that callers rely on are checked
 * and abort() on violation: a challenge exactly with SASL_CONTINUE and
 * always canonical base64, a finished session takes nothing more, an
 * authcid is a clean bounded name, and success only for the right
 * password. Leaks are reported by the fuzzer's LeakSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "lib/base64.h"
#include "net/sasl.h"

#define MSG_MAX 8192

static const unsigned char fuzz_salt[] = "fuzz-salt-16byte";
static struct sasl_scram_secret pencil;
static unsigned char salted_pencil[32];	/* SaltedPassword, for bit 6 */

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static int
verify_password(void *ctx, const char *user, const char *password)
{
	(void)ctx;
	check(user != NULL && password != NULL);
	if (strcmp(user, "temp") == 0)
		return -1;
	return strcmp(user, "user") == 0 && strcmp(password, "pencil") == 0;
}

static int
scram_secret(void *ctx, const char *user, struct sasl_scram_secret *r)
{
	(void)ctx;
	if (strcmp(user, "temp") == 0)
		return -1;
	if (strcmp(user, "bad") == 0) {
		memset(r, 0, sizeof(*r));
		return 1;
	}
	if (strcmp(user, "user") != 0)
		return 0;
	*r = pencil;
	return 1;
}

static int
cram_secret(void *ctx, const char *user, char **secret_r)
{
	(void)ctx;
	if (strcmp(user, "temp") == 0)
		return -1;
	if (strcmp(user, "null") == 0) {
		*secret_r = NULL;
		return 1;
	}
	if (strcmp(user, "user") != 0)
		return 0;
	*secret_r = strdup("pencil");
	return *secret_r != NULL ? 1 : -1;
}

static const struct sasl_creds creds = {
	.verify_password = verify_password,
	.scram_secret = scram_secret,
	.cram_secret = cram_secret,
};

/* The authcid, once there, is a name that can go into a log line. */
static void
check_authcid(const struct sasl_session *s)
{
	const char *a = sasl_authcid(s);
	size_t n;

	if (a == NULL)
		return;
	n = strnlen(a, SASL_NAME_MAX + 1);
	check(n >= 1 && n <= SASL_NAME_MAX);
	for (; *a != '\0'; a++)
		check((unsigned char)*a >= 0x20 && *a != 0x7f);
}

/* A challenge is canonical base64 of a bounded text without NUL. */
static void
check_challenge(const char *c)
{
	static unsigned char buf[MSG_MAX];
	size_t n = strnlen(c, MSG_MAX);
	ssize_t r;

	check(n < MSG_MAX);
	r = base64_decode(c, n, buf, sizeof(buf));
	check(r >= 0);
	check(memchr(buf, '\0', (size_t)r) == NULL);
}

/*
 * Bit 6: a correct client-final for client_first (n bytes) and the
 * server-first-message sf, into *final_r; the ServerSignature the server
 * must send back goes into *v_r. Returns -1 if client_first has no
 * gs2-header to bind to (the server has then refused it anyway).
 */
static int
scram_answer(const char *client_first, size_t n, const char *sf,
	     char **final_r, char **v_r)
{
	unsigned char ckey[32], stored[32], skey[32], csig[32], ssig[32];
	unsigned char proof[32];
	const char *c1, *c2;
	char *gs2_b64, *wp, *am, *p64, *v64;
	size_t nonce_len = strcspn(sf + 2, ","), i;
	unsigned len;

	c1 = memchr(client_first, ',', n);
	c2 = c1 != NULL ? memchr(c1 + 1, ',', n - (size_t)(c1 + 1 - client_first))
			: NULL;
	if (c2 == NULL || strncmp(sf, "r=", 2) != 0)
		return -1;
	gs2_b64 = base64_encode_alloc(client_first,
				      (size_t)(c2 + 1 - client_first));
	if (asprintf(&wp, "c=%s,r=%.*s", gs2_b64, (int)nonce_len, sf + 2) < 0 ||
	    asprintf(&am, "%.*s,%s,%s", (int)(n - (size_t)(c2 + 1 - client_first)),
		     c2 + 1, sf, wp) < 0)
		abort();
	check(HMAC(EVP_sha256(), salted_pencil, 32,
		   (const unsigned char *)"Client Key", 10, ckey, &len) != NULL);
	SHA256(ckey, 32, stored);
	check(HMAC(EVP_sha256(), stored, 32, (const unsigned char *)am,
		   strlen(am), csig, &len) != NULL);
	for (i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ csig[i];
	check(HMAC(EVP_sha256(), salted_pencil, 32,
		   (const unsigned char *)"Server Key", 10, skey, &len) != NULL);
	check(HMAC(EVP_sha256(), skey, 32, (const unsigned char *)am,
		   strlen(am), ssig, &len) != NULL);
	p64 = base64_encode_alloc(proof, 32);
	v64 = base64_encode_alloc(ssig, 32);
	if (asprintf(final_r, "%s,p=%s", wp, p64) < 0 ||
	    asprintf(v_r, "v=%s", v64) < 0)
		abort();
	free(gs2_b64);
	free(wp);
	free(am);
	free(p64);
	free(v64);
	return 0;
}

/* Wire text that decodes must re-encode to itself: one spelling only. */
static void
check_b64_roundtrip(const char *text)
{
	static unsigned char bin[MSG_MAX];
	static char again[MSG_MAX * 2];
	size_t n = strlen(text);
	ssize_t r;

	r = base64_decode(text, n, bin, sizeof(bin));
	if (r < 0)
		return;
	check(base64_encode(bin, (size_t)r, again, sizeof(again)) ==
	      (ssize_t)n);
	check(memcmp(again, text, n) == 0);
}

static void
fuzz_secret(const uint8_t *data, size_t size)
{
	static char text[MSG_MAX + 1];
	struct sasl_scram_secret r;
	char *again;

	if (size > MSG_MAX)
		size = MSG_MAX;
	memcpy(text, data, size);
	text[size] = '\0';
	if (sasl_scram_parse(text, &r) != 0)
		return;
	check(r.iterations >= SASL_SCRAM_ITER_MIN &&
	      r.iterations <= SASL_SCRAM_ITER_MAX);
	check(r.saltlen >= 1 && r.saltlen <= SASL_SCRAM_SALT_MAX);
	/* the parser is strict, so formatting gives back the very text */
	again = sasl_scram_format(&r);
	check(again != NULL && strcmp(again, text) == 0);
	free(again);
}

/* Decodes a challenge known to be canonical base64 into buf. */
static void
decode_challenge(const char *c, char *buf, size_t size)
{
	ssize_t r = base64_decode(c, strlen(c), buf, size - 1);

	check(r >= 0);
	buf[r] = '\0';
}

/*
 * Bit 6, after the server-first-message sf in reply to the client-first
 * cf: sends the harness's own client-final and checks the outcome.
 * Returns the status, or SASL_CONTINUE unchanged when there is nothing to
 * answer.
 */
static enum sasl_status
scram_helper(struct sasl_session *s, const char *cf, size_t cflen,
	     const char *sf)
{
	static char dec[MSG_MAX];
	enum sasl_status st;
	char *final, *v, *wire, *chal = NULL;
	bool known;

	if (scram_answer(cf, cflen, sf, &final, &v) < 0)
		return SASL_CONTINUE;
	known = strcmp(sasl_authcid(s), "user") == 0;
	wire = base64_encode_alloc(final, strlen(final));
	st = sasl_step(s, wire, &chal);
	free(wire);
	if (known) {
		/* the right proof for the right user: accepted and signed */
		check(st == SASL_CONTINUE && chal != NULL);
		decode_challenge(chal, dec, sizeof(dec));
		check(strcmp(dec, v) == 0);
	} else {
		/* a decoy: no proof passes */
		check(st == SASL_FAIL_CREDENTIALS && chal == NULL);
	}
	free(chal);
	free(final);
	free(v);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char piece[MSG_MAX + 1], msg[MSG_MAX + 1], sf[MSG_MAX];
	static bool init;
	struct sasl_session *s;
	enum sasl_status st;
	const uint8_t *p, *end, *nl;
	char *chal, *wire;
	unsigned flags;
	bool first = true, last = false, helped = false;
	size_t n, msglen;
	ssize_t r;

	if (!init) {
		check(sasl_scram_derive("pencil", fuzz_salt, 16, 4096,
					&pencil) == 0);
		check(PKCS5_PBKDF2_HMAC("pencil", 6, fuzz_salt, 16, 4096,
					EVP_sha256(), 32, salted_pencil) == 1);
		init = true;
	}
	if (size == 0)
		return 0;
	flags = data[0];
	p = data + 1;
	end = data + size;

	if (flags & 0x20) {
		fuzz_secret(p, (size_t)(end - p));
		return 0;
	}
	if (flags & 0x10) {
		sasl_scram_set_test_nonce(NULL);
		sasl_cram_set_test_challenge(NULL);
	} else {
		check(sasl_scram_set_test_nonce("fuzz") == 0);
		check(sasl_cram_set_test_challenge("<1.2@fuzz>") == 0);
	}

	s = sasl_start((enum sasl_mech)(flags & 3), &creds, NULL, "fuzz.test");
	check(s != NULL);
	st = SASL_CONTINUE;
	if (flags & 0x08) {
		st = sasl_step(s, NULL, &chal);
		check((st == SASL_CONTINUE) == (chal != NULL));
		if (chal != NULL)
			check_challenge(chal);
		free(chal);
		first = false;
	}
	while (st == SASL_CONTINUE && !last) {
		nl = memchr(p, '\n', (size_t)(end - p));
		last = nl == NULL;
		n = (size_t)((nl != NULL ? nl : end) - p);
		if (n > MSG_MAX)
			n = MSG_MAX;
		memcpy(piece, p, n);
		piece[n] = '\0';
		p = nl != NULL ? nl + 1 : end;

		if (flags & 0x04) {
			/* "=" for an empty initial response, as on the wire */
			wire = first && n == 0 ? strdup("=")
					       : base64_encode_alloc(piece, n);
			check(wire != NULL);
			memcpy(msg, piece, n + 1);
			msglen = n;
		} else {
			wire = piece;
			check_b64_roundtrip(piece);
			r = base64_decode(piece, n, msg, MSG_MAX);
			msglen = r > 0 ? (size_t)r : 0;
			msg[msglen] = '\0';
		}
		chal = NULL;
		st = sasl_step(s, wire, &chal);
		if (wire != piece)
			free(wire);
		first = false;
		check((st == SASL_CONTINUE) == (chal != NULL));
		if (chal != NULL)
			check_challenge(chal);
		check_authcid(s);

		if ((flags & 0x40) && !helped && st == SASL_CONTINUE &&
		    (flags & 3) == SASL_SCRAM_SHA_256 && sasl_authcid(s)) {
			/* chal is the server-first-message for msg */
			decode_challenge(chal, sf, sizeof(sf));
			helped = true;
			st = scram_helper(s, msg, msglen, sf);
			check_authcid(s);
		}
		free(chal);
	}

	if (st == SASL_OK) {
		/* only ever as the stub's one user */
		check(sasl_authcid(s) != NULL &&
		      strcmp(sasl_authcid(s), "user") == 0);
	}
	if (st != SASL_CONTINUE) {
		chal = (char *)1;
		check(sasl_step(s, "AAAA", &chal) == SASL_FAIL_SYNTAX);
		check(chal == NULL);
	}
	sasl_free(&s);
	check(s == NULL);
	return 0;
}
