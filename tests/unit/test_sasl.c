/*
 * Unit tests for sasl.c. A table of scripted exchanges (what the client
 * sends at each step, what status and challenge must come back) covers
 * PLAIN, LOGIN, CRAM-MD5 and the RFC 7677 SCRAM-SHA-256 example; a small
 * SCRAM client written here against libcrypto computes real proofs for
 * the SCRAM rows that need one. The credentials callbacks are a stub user
 * database that records what it was asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "unit.h"

#include "lib/base64.h"
#include "net/sasl.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 7677 section 3 */
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_C1 "n,,n=user,r=" RFC_CNONCE
#define RFC_S1 "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096"
#define RFC_C2                                                                 \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE                                      \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_S2 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* the same secret in PostgreSQL's form (computed independently) */
#define RFC_SECRET                                                             \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"                         \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* RFC 2195 section 2 */
#define RFC_CRAM_CHAL "<1896.697170952@postoffice.reston.mci.net>"
#define RFC_CRAM_RESP "tim b913a602c7eda7a495b4e6e7334d3890"

/* ---- the stub user database ------------------------------------------- */

static struct db {
	struct sasl_scram_secret pencil;	/* "user", "a,b=c" */
	char last_user[1024];
	char last_pass[2048];
	int calls;
} db;

static void
record(const char *user, const char *pass)
{
	snprintf(db.last_user, sizeof(db.last_user), "%s", user);
	snprintf(db.last_pass, sizeof(db.last_pass), "%s", pass ? pass : "");
	db.calls++;
}

static int
verify_password(void *ctx, const char *user, const char *password)
{
	assert_ptr_equal(ctx, &db);
	record(user, password);
	if (strcmp(user, "tempfail") == 0)
		return -1;
	if (strcmp(user, "alice") == 0 && strcmp(password, "wonderland") == 0)
		return 1;
	/* a Latin-1 password, as some LOGIN clients send */
	if (strcmp(user, "latin") == 0 && strcmp(password, "caf\xe9") == 0)
		return 1;
	return 0;
}

static int
scram_secret(void *ctx, const char *user, struct sasl_scram_secret *r)
{
	assert_ptr_equal(ctx, &db);
	record(user, NULL);
	if (strcmp(user, "tempfail") == 0)
		return -1;
	if (strcmp(user, "corrupt") == 0) {
		*r = db.pencil;
		r->iterations = 1;
		return 1;
	}
	if (strcmp(user, "user") == 0 || strcmp(user, "a,b=c") == 0) {
		*r = db.pencil;
		return 1;
	}
	return 0;
}

static int
cram_secret(void *ctx, const char *user, char **secret_r)
{
	assert_ptr_equal(ctx, &db);
	record(user, NULL);
	if (strcmp(user, "tempfail") == 0)
		return -1;
	if (strcmp(user, "nullsecret") == 0) {
		*secret_r = NULL;
		return 1;
	}
	if (strcmp(user, "tim") == 0) {
		*secret_r = strdup("tanstaaftanstaaf");
		return 1;
	}
	return 0;
}

static const struct sasl_creds creds = {
	.verify_password = verify_password,
	.scram_secret = scram_secret,
	.cram_secret = cram_secret,
};

static int
setup(void **state)
{
	unsigned char salt[32];
	ssize_t n;

	(void)state;
	memset(&db, 0, sizeof(db));
	n = base64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt));
	assert_int_equal(n, 16);
	assert_int_equal(sasl_scram_derive("pencil", salt, (size_t)n, 4096,
					   &db.pencil),
			 0);
	assert_int_equal(sasl_scram_set_test_nonce(RFC_SNONCE), 0);
	assert_int_equal(sasl_cram_set_test_challenge(RFC_CRAM_CHAL), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sasl_scram_set_test_nonce(NULL);
	sasl_cram_set_test_challenge(NULL);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static char *
b64(const void *data, size_t n)
{
	return base64_encode_alloc(data, n);
}

/* Decodes a challenge, which must be canonical base64 of text. */
static char *
unb64(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(base64_decoded_max(n) + 1);
	ssize_t r;

	assert_non_null(out);
	r = base64_decode(text, n, out, base64_decoded_max(n));
	if (r < 0)
		fail_msg("challenge \"%s\" is not base64", text);
	out[r] = '\0';
	assert_int_equal(strlen(out), (size_t)r);
	return out;
}

/* One step with raw client bytes; returns the decoded challenge or NULL. */
static enum sasl_status
step_raw(struct sasl_session *s, const void *data, size_t n, char **chal_r)
{
	char *in = b64(data, n), *c = NULL;
	enum sasl_status st;

	st = sasl_step(s, in, &c);
	free(in);
	assert_true((st == SASL_CONTINUE) == (c != NULL));
	*chal_r = c != NULL ? unb64(c) : NULL;
	free(c);
	return st;
}

static enum sasl_status
step_str(struct sasl_session *s, const char *msg, char **chal_r)
{
	return step_raw(s, msg, strlen(msg), chal_r);
}

static void
assert_status(enum sasl_status got, enum sasl_status want, const char *what)
{
	if (got != want)
		fail_msg("%s: got %s, want %s", what, sasl_status_name(got),
			 sasl_status_name(want));
}

/* ---- scripted exchanges ------------------------------------------------ */

enum kind { K_END, K_NULL, K_WIRE, K_DATA };

struct step {
	enum kind k;
	const char *s;		/* K_WIRE: sent as is; K_DATA: base64'd */
	size_t len;		/* K_DATA */
	enum sasl_status want;
	const char *chal;	/* decoded challenge expected, NULL: any */
};

#define NOIR(st, ch) {K_NULL, NULL, 0, st, ch}
#define WIRE(t, st, ch) {K_WIRE, t, 0, st, ch}
#define DATA(lit, st, ch) {K_DATA, lit, sizeof(lit) - 1, st, ch}

#define OK SASL_OK
#define CONT SASL_CONTINUE
#define CRED SASL_FAIL_CREDENTIALS
#define SYNTAX SASL_FAIL_SYNTAX
#define TEMP SASL_FAIL_TEMP
#define CANCEL SASL_CANCELLED

static const struct script {
	const char *name;
	enum sasl_mech mech;
	struct step steps[5];
	const char *authcid;	/* expected afterwards; NULL: none */
	const char *user_seen;	/* what the callback got; NULL: not called */
	const char *pass_seen;
} scripts[] = {
	/* PLAIN (RFC 4616) */
	{"plain ir", SASL_PLAIN, {DATA("\0alice\0wonderland", OK, NULL)},
	 "alice", "alice", "wonderland"},
	{"plain authzid = authcid", SASL_PLAIN,
	 {DATA("alice\0alice\0wonderland", OK, NULL)}, "alice", "alice",
	 "wonderland"},
	{"plain no ir", SASL_PLAIN,
	 {NOIR(CONT, ""), DATA("\0alice\0wonderland", OK, NULL)}, "alice",
	 "alice", "wonderland"},
	{"plain wrong password", SASL_PLAIN,
	 {DATA("\0alice\0wonderlant", CRED, NULL)}, "alice", "alice",
	 "wonderlant"},
	{"plain unknown user", SASL_PLAIN,
	 {DATA("\0bob\0wonderland", CRED, NULL)}, "bob", "bob", "wonderland"},
	{"plain authzid mismatch", SASL_PLAIN,
	 {DATA("admin\0alice\0wonderland", CRED, NULL)}, "alice", NULL},
	{"plain authzid prefix", SASL_PLAIN,
	 {DATA("alic\0alice\0wonderland", CRED, NULL)}, "alice", NULL},
	{"plain tempfail", SASL_PLAIN, {DATA("\0tempfail\0x", TEMP, NULL)},
	 "tempfail", "tempfail", "x"},
	{"plain 8-bit password verbatim", SASL_PLAIN,
	 {DATA("\0latin\0caf\xe9", OK, NULL)}, "latin", "latin", "caf\xe9"},
	{"plain utf-8 name", SASL_PLAIN,
	 {DATA("\0j\xc3\xb6rg\0pw", CRED, NULL)}, "j\xc3\xb6rg",
	 "j\xc3\xb6rg", "pw"},
	{"plain truncated: no password", SASL_PLAIN,
	 {DATA("\0alice", SYNTAX, NULL)}, NULL, NULL},
	/* well formed with an empty password: a wrong password (535),
	 * decided without asking the database */
	{"plain empty password", SASL_PLAIN,
	 {DATA("\0alice\0", CRED, NULL)}, "alice", NULL},
	{"plain truncated: no NUL", SASL_PLAIN, {DATA("alice", SYNTAX, NULL)},
	 NULL, NULL},
	{"plain empty authcid", SASL_PLAIN,
	 {DATA("\0\0wonderland", SYNTAX, NULL)}, NULL, NULL},
	{"plain NUL in password", SASL_PLAIN,
	 {DATA("\0alice\0wonder\0land", SYNTAX, NULL)}, NULL, NULL},
	{"plain NUL in name", SASL_PLAIN,
	 {DATA("\0al\0ice\0wonderland", SYNTAX, NULL)}, NULL, NULL},
	{"plain leading NULs", SASL_PLAIN,
	 {DATA("\0\0\0alice\0wonderland", SYNTAX, NULL)}, NULL, NULL},
	{"plain control char in name", SASL_PLAIN,
	 {DATA("\0al\tice\0wonderland", SYNTAX, NULL)}, NULL, NULL},
	{"plain DEL in name", SASL_PLAIN,
	 {DATA("\0alice\x7f\0wonderland", SYNTAX, NULL)}, NULL, NULL},
	{"plain CR LF in name", SASL_PLAIN,
	 {DATA("\0alice\r\nMAIL FROM:<x>\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain C1 control in name", SASL_PLAIN,
	 {DATA("\0al\xc2\x85ice\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain invalid utf-8 name", SASL_PLAIN,
	 {DATA("\0al\xffice\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain overlong utf-8 name", SASL_PLAIN,
	 {DATA("\0al\xc0\xafice\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain overlong 3-byte utf-8 name", SASL_PLAIN,
	 {DATA("\0al\xe0\x80\xafice\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain utf-8 beyond U+10FFFF", SASL_PLAIN,
	 {DATA("\0al\xf4\x90\x80\x80ice\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain 4-byte utf-8 name", SASL_PLAIN,
	 {DATA("\0\xf0\x9f\x90\xa6\0pw", CRED, NULL)}, "\xf0\x9f\x90\xa6",
	 "\xf0\x9f\x90\xa6", "pw"},
	{"plain surrogate in name", SASL_PLAIN,
	 {DATA("\0al\xed\xa0\x80ice\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain truncated utf-8 name", SASL_PLAIN,
	 {DATA("\0al\xe2\x82\0pw", SYNTAX, NULL)}, NULL, NULL},
	{"plain bad authzid", SASL_PLAIN,
	 {DATA("ad\x01min\0alice\0wonderland", SYNTAX, NULL)}, NULL, NULL},
	{"plain bad base64: no padding", SASL_PLAIN,
	 {WIRE("AGFsaWNlAHdvbmRlcmxhbmQ", SYNTAX, NULL)}, NULL, NULL},
	{"plain bad base64: space", SASL_PLAIN,
	 {WIRE("AGFsaWNl AHdvbmRlcmxhbmQ=", SYNTAX, NULL)}, NULL, NULL},
	{"plain bad base64: junk", SASL_PLAIN, {WIRE("!!!!", SYNTAX, NULL)},
	 NULL, NULL},
	{"plain bad base64 in response", SASL_PLAIN,
	 {NOIR(CONT, ""), WIRE("AGFsaWNlAHdvbmRlcmxhbmQ=\r", SYNTAX, NULL)},
	 NULL, NULL},
	{"plain empty ir '='", SASL_PLAIN, {WIRE("=", SYNTAX, NULL)}, NULL,
	 NULL},
	{"plain ir '' is not '='", SASL_PLAIN, {WIRE("", SYNTAX, NULL)}, NULL,
	 NULL},
	{"plain empty response", SASL_PLAIN,
	 {NOIR(CONT, ""), WIRE("", SYNTAX, NULL)}, NULL, NULL},
	{"plain '=' is not a response", SASL_PLAIN,
	 {NOIR(CONT, ""), WIRE("=", SYNTAX, NULL)}, NULL, NULL},
	{"plain cancel", SASL_PLAIN, {NOIR(CONT, ""), WIRE("*", CANCEL, NULL)},
	 NULL, NULL},
	{"plain '*' as ir is not a cancel", SASL_PLAIN,
	 {WIRE("*", SYNTAX, NULL)}, NULL, NULL},

	/* LOGIN */
	{"login", SASL_LOGIN,
	 {NOIR(CONT, "Username:"), DATA("alice", CONT, "Password:"),
	  DATA("wonderland", OK, NULL)},
	 "alice", "alice", "wonderland"},
	{"login ir", SASL_LOGIN,
	 {DATA("alice", CONT, "Password:"), DATA("wonderland", OK, NULL)},
	 "alice", "alice", "wonderland"},
	{"login wrong password", SASL_LOGIN,
	 {DATA("alice", CONT, "Password:"), DATA("Wonderland", CRED, NULL)},
	 "alice", "alice", "Wonderland"},
	{"login unknown user", SASL_LOGIN,
	 {DATA("carol", CONT, "Password:"), DATA("wonderland", CRED, NULL)},
	 "carol", "carol", "wonderland"},
	{"login 8-bit password", SASL_LOGIN,
	 {DATA("latin", CONT, "Password:"), DATA("caf\xe9", OK, NULL)},
	 "latin", "latin", "caf\xe9"},
	{"login tempfail", SASL_LOGIN,
	 {DATA("tempfail", CONT, "Password:"), DATA("x", TEMP, NULL)},
	 "tempfail", "tempfail", "x"},
	{"login empty ir", SASL_LOGIN, {WIRE("=", SYNTAX, NULL)}, NULL, NULL},
	{"login empty username", SASL_LOGIN,
	 {NOIR(CONT, "Username:"), WIRE("", SYNTAX, NULL)}, NULL, NULL},
	{"login empty password", SASL_LOGIN,
	 {DATA("alice", CONT, "Password:"), WIRE("", CRED, NULL)}, "alice",
	 NULL},
	{"login NUL in username", SASL_LOGIN,
	 {DATA("ali\0ce", SYNTAX, NULL)}, NULL, NULL},
	{"login NUL in password", SASL_LOGIN,
	 {DATA("alice", CONT, "Password:"), DATA("wonder\0land", SYNTAX, NULL)},
	 "alice", NULL},
	{"login bad base64 username", SASL_LOGIN,
	 {NOIR(CONT, "Username:"), WIRE("YWxpY2U", SYNTAX, NULL)}, NULL, NULL},
	{"login bad base64 password", SASL_LOGIN,
	 {DATA("alice", CONT, "Password:"), WIRE("d29uZGVybGFuZA=", SYNTAX,
						 NULL)},
	 "alice", NULL},
	{"login cancel at password", SASL_LOGIN,
	 {DATA("alice", CONT, "Password:"), WIRE("*", CANCEL, NULL)}, "alice",
	 NULL},
	{"login missing response", SASL_LOGIN,
	 {NOIR(CONT, "Username:"), NOIR(SYNTAX, NULL)}, NULL, NULL},

	/* CRAM-MD5 (RFC 2195), with the RFC's challenge injected */
	{"cram rfc 2195 example", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL), DATA(RFC_CRAM_RESP, OK, NULL)}, "tim",
	 "tim", ""},
	{"cram wrong digest", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tim b913a602c7eda7a495b4e6e7334d3891", CRED, NULL)},
	 "tim", "tim", ""},
	{"cram unknown user", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tom b913a602c7eda7a495b4e6e7334d3890", CRED, NULL)},
	 "tom", "tom", ""},
	{"cram name with a space", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tim x b913a602c7eda7a495b4e6e7334d3890", CRED, NULL)},
	 "tim x", "tim x", ""},
	{"cram tempfail", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tempfail b913a602c7eda7a495b4e6e7334d3890", TEMP, NULL)},
	 "tempfail", "tempfail", ""},
	{"cram callback gives no secret", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("nullsecret b913a602c7eda7a495b4e6e7334d3890", TEMP, NULL)},
	 "nullsecret", "nullsecret", ""},
	{"cram upper-case hex", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tim B913A602C7EDA7A495B4E6E7334D3890", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram short digest", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tim b913a602c7eda7a495b4e6e7334d389", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram long digest", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tim b913a602c7eda7a495b4e6e7334d38900", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram no space", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("timb913a602c7eda7a495b4e6e7334d3890", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram no name", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA(" b913a602c7eda7a495b4e6e7334d3890", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram trailing space", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL), DATA(RFC_CRAM_RESP " ", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram NUL", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL),
	  DATA("tim\0 b913a602c7eda7a495b4e6e7334d3890", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram ir refused", SASL_CRAM_MD5, {DATA(RFC_CRAM_RESP, SYNTAX, NULL)},
	 NULL, NULL},
	{"cram empty ir refused", SASL_CRAM_MD5, {WIRE("=", SYNTAX, NULL)},
	 NULL, NULL},
	{"cram cancel", SASL_CRAM_MD5,
	 {NOIR(CONT, RFC_CRAM_CHAL), WIRE("*", CANCEL, NULL)}, NULL, NULL},

	/* SCRAM-SHA-256: RFC 7677 section 3, byte for byte */
	{"scram rfc 7677 example", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1), DATA(RFC_C2, CONT, RFC_S2),
	  WIRE("", OK, NULL)},
	 "user", "user", ""},
	{"scram rfc 7677 example, no ir", SASL_SCRAM_SHA_256,
	 {NOIR(CONT, ""), DATA(RFC_C1, CONT, RFC_S1),
	  DATA(RFC_C2, CONT, RFC_S2), WIRE("", OK, NULL)},
	 "user", "user", ""},
	{"scram wrong proof", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVM=",
	       CRED, NULL)},
	 "user", "user", ""},
	{"scram wrong nonce", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE
	       "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfM"
	       "Hgsqmmiz7AndVQ=",
	       CRED, NULL)},
	 "user", "user", ""},
	{"scram client nonce only", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       CRED, NULL)},
	 "user", "user", ""},
	{"scram c= of another gs2 header", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=eSws,r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       CRED, NULL)},
	 "user", "user", ""},
	{"scram channel binding requested", SASL_SCRAM_SHA_256,
	 {DATA("p=tls-unique,,n=user,r=" RFC_CNONCE, CRED, NULL)}, NULL, NULL},
	{"scram channel binding requested, no ir", SASL_SCRAM_SHA_256,
	 {NOIR(CONT, ""),
	  DATA("p=tls-server-end-point,,n=user,r=abc", CRED, NULL)},
	 NULL, NULL},
	{"scram reserved m=", SASL_SCRAM_SHA_256,
	 {DATA("n,,m=ext,n=user,r=" RFC_CNONCE, CRED, NULL)}, NULL, NULL},
	{"scram authzid mismatch", SASL_SCRAM_SHA_256,
	 {DATA("n,a=admin,n=user,r=abc", CRED, NULL)}, "user", NULL},
	{"scram unknown user", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=nobody,r=" RFC_CNONCE, CONT, NULL),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       CRED, NULL)},
	 "nobody", "nobody", ""},
	{"scram tempfail", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=tempfail,r=abc", TEMP, NULL)}, "tempfail", "tempfail",
	 ""},
	{"scram corrupt secret", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=corrupt,r=abc", TEMP, NULL)}, "corrupt", "corrupt", ""},
	{"scram non-empty final answer", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1), DATA(RFC_C2, CONT, RFC_S2),
	  DATA("x", SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram cancel after server-final", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1), DATA(RFC_C2, CONT, RFC_S2),
	  WIRE("*", CANCEL, NULL)},
	 "user", "user", ""},
	{"scram '=' as final answer", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1), DATA(RFC_C2, CONT, RFC_S2),
	  WIRE("=", SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram bad gs2 flag", SASL_SCRAM_SHA_256,
	 {DATA("x,,n=user,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram gs2 flag without comma", SASL_SCRAM_SHA_256,
	 {DATA("nn=user,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram missing gs2 header", SASL_SCRAM_SHA_256,
	 {DATA("n=user,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram attributes out of order", SASL_SCRAM_SHA_256,
	 {DATA("n,,r=abc,n=user", SYNTAX, NULL)}, NULL, NULL},
	{"scram no nonce", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user", SYNTAX, NULL)}, NULL, NULL},
	{"scram empty nonce", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user,r=", SYNTAX, NULL)}, NULL, NULL},
	{"scram nonce with space", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user,r=a c", SYNTAX, NULL)}, NULL, NULL},
	{"scram empty username", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram bad escape", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=us=2Der,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram lower-case escape", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=us=2cer,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram truncated escape", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user=2,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram malformed extension", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user,r=abc,junk", SYNTAX, NULL)}, NULL, NULL},
	{"scram empty extension", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user,r=abc,", SYNTAX, NULL)}, NULL, NULL},
	{"scram extension with empty value", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=user,r=abc,x=", SYNTAX, NULL)}, NULL, NULL},
	{"scram NUL in client-first", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=us\0er,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram control char in username", SASL_SCRAM_SHA_256,
	 {DATA("n,,n=us\ter,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram bad authzid escape", SASL_SCRAM_SHA_256,
	 {DATA("n,a=x=41,n=user,r=abc", SYNTAX, NULL)}, NULL, NULL},
	{"scram final without proof", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE, SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final proof not last", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,r=" RFC_CNONCE
	       RFC_SNONCE,
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final without c=", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final without r=", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", SYNTAX,
	       NULL)},
	 "user", "user", ""},
	{"scram final bad c= base64", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biw,r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final short proof", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndA==",
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final proof not base64", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE
	       ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final malformed extension", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE
	       ",junk,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final NUL", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1),
	  DATA("c=biws,r=" RFC_CNONCE RFC_SNONCE
	       "\0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       SYNTAX, NULL)},
	 "user", "user", ""},
	{"scram final bad base64", SASL_SCRAM_SHA_256,
	 {DATA(RFC_C1, CONT, RFC_S1), WIRE("Yz1iaXdz!", SYNTAX, NULL)}, "user",
	 "user", ""},
	{"scram cancel before server-first", SASL_SCRAM_SHA_256,
	 {NOIR(CONT, ""), WIRE("*", CANCEL, NULL)}, NULL, NULL},
};

static void
run_script(size_t row, const struct script *sc)
{
	struct sasl_session *s;
	enum sasl_status st = SASL_CONTINUE;
	char *chal, *raw, what[160];
	size_t i;

	db.calls = 0;
	db.last_user[0] = db.last_pass[0] = '\0';
	s = sasl_start(sc->mech, &creds, &db, "mx.example.test");
	assert_non_null(s);
	assert_int_equal(sasl_session_mech(s), sc->mech);
	assert_null(sasl_authcid(s));

	for (i = 0; i < N(sc->steps) && sc->steps[i].k != K_END; i++) {
		const struct step *t = &sc->steps[i];

		snprintf(what, sizeof(what), "row %zu (%s) step %zu", row,
			 sc->name, i);
		chal = NULL;
		switch (t->k) {
		case K_NULL:
			st = sasl_step(s, NULL, &chal);
			break;
		case K_WIRE:
			st = sasl_step(s, t->s, &chal);
			break;
		case K_DATA:
			raw = b64(t->s, t->len);
			st = sasl_step(s, raw, &chal);
			free(raw);
			break;
		case K_END:
			break;
		}
		assert_status(st, t->want, what);
		if (st != SASL_CONTINUE) {
			assert_null(chal);
			continue;
		}
		assert_non_null(chal);
		raw = unb64(chal);
		if (t->chal != NULL && strcmp(raw, t->chal) != 0)
			fail_msg("%s: challenge \"%s\", want \"%s\"", what, raw,
				 t->chal);
		free(raw);
		free(chal);
	}
	/* every script ends the exchange */
	assert_int_not_equal(st, SASL_CONTINUE);

	if (sc->authcid == NULL)
		assert_null(sasl_authcid(s));
	else
		assert_string_equal(sasl_authcid(s), sc->authcid);
	if (sc->user_seen == NULL) {
		if (db.calls != 0)
			fail_msg("row %zu (%s): callback called for \"%s\"",
				 row, sc->name, db.last_user);
	} else {
		assert_int_equal(db.calls, 1);
		assert_string_equal(db.last_user, sc->user_seen);
		assert_string_equal(db.last_pass, sc->pass_seen);
	}

	/* a finished session takes nothing more, not even a valid message */
	chal = (char *)1;
	assert_int_equal(sasl_step(s, "AGFsaWNlAHdvbmRlcmxhbmQ=", &chal),
			 SASL_FAIL_SYNTAX);
	assert_null(chal);
	assert_int_equal(sasl_step(s, "", &chal), SASL_FAIL_SYNTAX);
	assert_int_equal(sasl_step(s, "*", &chal), SASL_FAIL_SYNTAX);
	assert_int_equal(db.calls, sc->user_seen == NULL ? 0 : 1);
	sasl_free(&s);
	assert_null(s);
}

static void
test_scripts(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(scripts); i++)
		run_script(i, &scripts[i]);
}

/* The exact challenge strings on the wire. */
static void
test_wire_challenges(void **state)
{
	struct sasl_session *s;
	char *chal;

	(void)state;
	s = sasl_start(SASL_LOGIN, &creds, &db, NULL);
	assert_int_equal(sasl_step(s, NULL, &chal), SASL_CONTINUE);
	assert_string_equal(chal, "VXNlcm5hbWU6");
	free(chal);
	assert_int_equal(sasl_step(s, "YWxpY2U=", &chal), SASL_CONTINUE);
	assert_string_equal(chal, "UGFzc3dvcmQ6");
	free(chal);
	assert_int_equal(sasl_step(s, "d29uZGVybGFuZA==", &chal), SASL_OK);
	assert_null(chal);
	assert_string_equal(sasl_authcid(s), "alice");
	sasl_free(&s);

	s = sasl_start(SASL_PLAIN, &creds, &db, NULL);
	assert_int_equal(sasl_step(s, NULL, &chal), SASL_CONTINUE);
	assert_string_equal(chal, "");
	free(chal);
	assert_int_equal(sasl_step(s, "AGFsaWNlAHdvbmRlcmxhbmQ=", &chal),
			 SASL_OK);
	sasl_free(&s);

	/* freeing mid-exchange is fine, and NULL is fine */
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	assert_int_equal(step_str(s, RFC_C1, &chal), SASL_CONTINUE);
	free(chal);
	sasl_free(&s);
	sasl_free(&s);
}

/* ---- length limits, at the edge ---------------------------------------- */

static char *
repeat(char c, size_t n)
{
	char *p = malloc(n + 1);

	assert_non_null(p);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

/* PLAIN with the given field lengths; returns the status. */
static enum sasl_status
plain_sizes(size_t zlen, size_t clen, size_t plen)
{
	char *z = repeat('u', zlen), *c = repeat('u', clen);
	char *p = repeat('p', plen), *msg, *chal;
	struct sasl_session *s;
	enum sasl_status st;
	size_t n = zlen + clen + plen + 2;

	msg = malloc(n);
	assert_non_null(msg);
	memcpy(msg, z, zlen);
	msg[zlen] = '\0';
	memcpy(msg + zlen + 1, c, clen);
	msg[zlen + 1 + clen] = '\0';
	memcpy(msg + zlen + clen + 2, p, plen);
	s = sasl_start(SASL_PLAIN, &creds, &db, NULL);
	st = step_raw(s, msg, n, &chal);
	assert_null(chal);
	sasl_free(&s);
	free(z);
	free(c);
	free(p);
	free(msg);
	return st;
}

static enum sasl_status
login_sizes(size_t ulen, size_t plen)
{
	char *u = repeat('u', ulen), *p = repeat('p', plen), *chal;
	struct sasl_session *s;
	enum sasl_status st;

	s = sasl_start(SASL_LOGIN, &creds, &db, NULL);
	st = step_str(s, u, &chal);
	if (st == SASL_CONTINUE) {
		free(chal);
		st = step_str(s, p, &chal);
	}
	assert_null(chal);
	sasl_free(&s);
	free(u);
	free(p);
	return st;
}

static enum sasl_status
scram_user(const char *name)
{
	struct sasl_session *s;
	enum sasl_status st;
	char *msg, *chal;

	if (asprintf(&msg, "n,,n=%s,r=abc", name) < 0)
		fail();
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	st = step_str(s, msg, &chal);
	free(chal);
	sasl_free(&s);
	free(msg);
	return st;
}

static void
test_limits(void **state)
{
	char *u, *chal, *big;
	struct sasl_session *s;
	size_t i;

	(void)state;
	assert_int_equal(plain_sizes(0, 255, 1024), SASL_FAIL_CREDENTIALS);
	assert_int_equal(strlen(db.last_user), 255);
	assert_int_equal(strlen(db.last_pass), 1024);
	assert_int_equal(plain_sizes(0, 256, 10), SASL_FAIL_SYNTAX);
	assert_int_equal(plain_sizes(0, 10, 1025), SASL_FAIL_SYNTAX);
	assert_int_equal(plain_sizes(255, 255, 1024), SASL_FAIL_CREDENTIALS);
	assert_int_equal(plain_sizes(256, 256, 10), SASL_FAIL_SYNTAX);

	assert_int_equal(login_sizes(255, 1024), SASL_FAIL_CREDENTIALS);
	assert_int_equal(login_sizes(256, 10), SASL_FAIL_SYNTAX);
	assert_int_equal(login_sizes(10, 1025), SASL_FAIL_SYNTAX);

	/* SCRAM names count after unescaping */
	u = repeat('u', 255);
	assert_int_equal(scram_user(u), SASL_CONTINUE);
	free(u);
	u = repeat('u', 256);
	assert_int_equal(scram_user(u), SASL_FAIL_SYNTAX);
	free(u);
	u = malloc(3 * 255 + 1);
	for (i = 0; i < 255; i++)
		memcpy(u + 3 * i, "=2C", 3);
	u[3 * 255] = '\0';
	assert_int_equal(scram_user(u), SASL_CONTINUE);
	assert_int_equal(strlen(db.last_user), 255);
	assert_int_equal(db.last_user[254], ',');
	free(u);

	/* a client message past SASL_MSG_MAX is refused before parsing */
	big = repeat('A', base64_encoded_len(SASL_MSG_MAX) + 4);
	s = sasl_start(SASL_PLAIN, &creds, &db, NULL);
	db.calls = 0;
	assert_int_equal(sasl_step(s, big, &chal), SASL_FAIL_SYNTAX);
	assert_int_equal(db.calls, 0);
	sasl_free(&s);
	free(big);
	big = repeat('A', base64_encoded_len(SASL_MSG_MAX));
	s = sasl_start(SASL_LOGIN, &creds, &db, NULL);
	/* 2048 NULs: a name that fails the check, but is decoded */
	assert_int_equal(sasl_step(s, big, &chal), SASL_FAIL_SYNTAX);
	sasl_free(&s);
	free(big);
}

/* ---- SCRAM with a client computed here --------------------------------- */

/* Value of attribute a ("s", "i", "r") in a SCRAM message, malloc'd. */
static char *
attr(const char *msg, char a)
{
	const char *p = msg;

	while (p != NULL) {
		if (p[0] == a && p[1] == '=')
			return strndup(p + 2, strcspn(p + 2, ","));
		p = strchr(p, ',');
		if (p != NULL)
			p++;
	}
	fail_msg("no %c= in %s", a, msg);
	return NULL;
}

struct scram_case {
	const char *name;
	const char *client_first;	/* gs2 header + bare */
	const char *password;
	const char *cbind;	/* c= value; NULL: the right one */
	const char *nonce_suffix;	/* replaces the server nonce */
	const char *ext;	/* ",x=..." before the proof */
	bool flip_proof;
	enum sasl_status want;	/* at client-final; OK: after the ack */
	const char *user_seen;
};

static const struct scram_case scram_cases[] = {
	{"plain n", "n,,n=user,r=abc", "pencil", NULL, NULL, NULL, false, OK,
	 "user"},
	{"flag y", "y,,n=user,r=abc", "pencil", NULL, NULL, NULL, false, OK,
	 "user"},
	{"authzid = user", "n,a=user,n=user,r=abc", "pencil", NULL, NULL, NULL,
	 false, OK, "user"},
	{"escaped name", "n,,n=a=2Cb=3Dc,r=x!y", "pencil", NULL, NULL, NULL,
	 false, OK, "a,b=c"},
	{"extension in client-first", "n,,n=user,r=abc,x=ignored", "pencil",
	 NULL, NULL, NULL, false, OK, "user"},
	{"extension in client-final", "n,,n=user,r=abc", "pencil", NULL, NULL,
	 ",x=ignored,y=too", false, OK, "user"},
	{"wrong password", "n,,n=user,r=abc", "pencil2", NULL, NULL, NULL,
	 false, CRED, "user"},
	{"flipped proof bit", "n,,n=user,r=abc", "pencil", NULL, NULL, NULL,
	 true, CRED, "user"},
	{"c= for y with n", "n,,n=user,r=abc", "pencil", "eSws", NULL, NULL,
	 false, CRED, "user"},
	{"c= for n with y", "y,,n=user,r=abc", "pencil", "biws", NULL, NULL,
	 false, CRED, "user"},
	{"c= without the authzid", "n,a=user,n=user,r=abc", "pencil", "biws",
	 NULL, NULL, false, CRED, "user"},
	{"c= with binding data", "n,,n=user,r=abc", "pencil", "biwsAAAA",
	 NULL, NULL, false, CRED, "user"},
	{"other server nonce", "n,,n=user,r=abc", "pencil", NULL, "XYZ", NULL,
	 false, CRED, "user"},
	{"no server nonce", "n,,n=user,r=abc", "pencil", NULL, "", NULL, false,
	 CRED, "user"},
	{"unknown user, any password", "n,,n=nobody,r=abc", "pencil", NULL,
	 NULL, NULL, false, CRED, "nobody"},
};

/*
 * Runs one exchange as a real client would, checking the server-first
 * and, on success, the ServerSignature. Returns the status of the
 * client-final step, or of the ack after it.
 */
static enum sasl_status
scram_exchange(const struct scram_case *c)
{
	unsigned char salt[64], salted[32], ckey[32], skey[32], stored[32];
	unsigned char csig[32], ssig[32], proof[32];
	char *chal, *sfirst, *nonce, *salt_b64, *iter, *gs2, *cb, *wp, *am;
	char *final = NULL, *p64, *v64, *want_v = NULL;
	const char *bare;
	struct sasl_session *s;
	enum sasl_status st;
	unsigned len;
	ssize_t sl;
	size_t i;

	db.calls = 0;
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, "mx.example.test");
	st = step_str(s, c->client_first, &sfirst);
	assert_status(st, SASL_CONTINUE, c->name);
	assert_string_equal(db.last_user, c->user_seen);

	nonce = attr(sfirst, 'r');
	salt_b64 = attr(sfirst, 's');
	iter = attr(sfirst, 'i');
	/* our nonce extends the client's */
	{
		char *cn = attr(strchr(c->client_first, ',') + 1, 'r');

		assert_true(strncmp(nonce, cn, strlen(cn)) == 0);
		assert_true(strlen(nonce) > strlen(cn));
		free(cn);
	}
	sl = base64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	assert_true(sl > 0);
	assert_string_equal(iter, "4096");

	/* gs2 header: through the second comma */
	bare = strchr(strchr(c->client_first, ',') + 1, ',') + 1;
	gs2 = strndup(c->client_first, (size_t)(bare - c->client_first));
	cb = c->cbind ? strdup(c->cbind) : b64(gs2, strlen(gs2));
	if (c->nonce_suffix != NULL) {
		char *cn = attr(bare, 'r');

		free(nonce);
		if (asprintf(&nonce, "%s%s", cn, c->nonce_suffix) < 0)
			fail();
		free(cn);
	}
	if (asprintf(&wp, "c=%s,r=%s%s", cb, nonce, c->ext ? c->ext : "") < 0 ||
	    asprintf(&am, "%s,%s,%s", bare, sfirst, wp) < 0)
		fail();

	/* RFC 5802 section 3, independently of sasl.c */
	assert_int_equal(PKCS5_PBKDF2_HMAC(c->password,
					   (int)strlen(c->password), salt,
					   (int)sl, 4096, EVP_sha256(), 32,
					   salted),
			 1);
	assert_non_null(HMAC(EVP_sha256(), salted, 32,
			     (const unsigned char *)"Client Key", 10, ckey,
			     &len));
	SHA256(ckey, 32, stored);
	assert_non_null(HMAC(EVP_sha256(), stored, 32,
			     (const unsigned char *)am, strlen(am), csig,
			     &len));
	for (i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ csig[i];
	if (c->flip_proof)
		proof[7] ^= 0x10;
	assert_non_null(HMAC(EVP_sha256(), salted, 32,
			     (const unsigned char *)"Server Key", 10, skey,
			     &len));
	assert_non_null(HMAC(EVP_sha256(), skey, 32,
			     (const unsigned char *)am, strlen(am), ssig,
			     &len));
	p64 = b64(proof, 32);
	v64 = b64(ssig, 32);
	if (asprintf(&final, "%s,p=%s", wp, p64) < 0 ||
	    asprintf(&want_v, "v=%s", v64) < 0)
		fail();

	chal = NULL;
	st = step_str(s, final, &chal);
	if (st == SASL_CONTINUE) {
		assert_string_equal(chal, want_v);
		free(chal);
		chal = (char *)1;
		st = sasl_step(s, "", &chal);
	}
	assert_null(chal);
	if (st == SASL_OK)
		assert_string_equal(sasl_authcid(s), c->user_seen);

	sasl_free(&s);
	free(sfirst);
	free(nonce);
	free(salt_b64);
	free(iter);
	free(gs2);
	free(cb);
	free(wp);
	free(am);
	free(final);
	free(p64);
	free(v64);
	free(want_v);
	return st;
}

static void
test_scram_client(void **state)
{
	size_t i;
	int pass;

	(void)state;
	/* once with the fixed test nonce, once with random nonces */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1)
			sasl_scram_set_test_nonce(NULL);
		for (i = 0; i < N(scram_cases); i++) {
			enum sasl_status st = scram_exchange(&scram_cases[i]);
			char what[128];

			snprintf(what, sizeof(what), "scram case %zu (%s)", i,
				 scram_cases[i].name);
			assert_status(st, scram_cases[i].want, what);
		}
	}
	sasl_scram_set_test_nonce(RFC_SNONCE);
}

/* ---- replay, decoys, fresh challenges ---------------------------------- */

static void
test_scram_replay(void **state)
{
	struct sasl_session *s;
	char *chal;

	(void)state;
	/* the RFC exchange succeeds with its nonce ... */
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	assert_int_equal(step_str(s, RFC_C1, &chal), SASL_CONTINUE);
	free(chal);
	assert_int_equal(step_str(s, RFC_C2, &chal), SASL_CONTINUE);
	assert_string_equal(chal, RFC_S2);
	free(chal);
	/* ... and the same client-final again in that session is refused */
	assert_int_equal(step_str(s, RFC_C2, &chal), SASL_FAIL_SYNTAX);
	assert_null(chal);
	assert_int_equal(sasl_step(s, "", &chal), SASL_FAIL_SYNTAX);
	sasl_free(&s);

	/* in a new session, with a fresh nonce, it no longer fits */
	sasl_scram_set_test_nonce(NULL);
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	assert_int_equal(step_str(s, RFC_C1, &chal), SASL_CONTINUE);
	assert_string_not_equal(chal, RFC_S1);
	/* r=<client nonce><24 characters of base64 of 18 random bytes> */
	assert_int_equal(strcspn(chal, ","),
			 2 + strlen(RFC_CNONCE) + 24);
	free(chal);
	assert_int_equal(step_str(s, RFC_C2, &chal), SASL_FAIL_CREDENTIALS);
	assert_null(chal);
	sasl_free(&s);

	/* two sessions never share a nonce */
	{
		char *a, *b;
		struct sasl_session *s2;

		s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
		s2 = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
		assert_int_equal(step_str(s, RFC_C1, &a), SASL_CONTINUE);
		assert_int_equal(step_str(s2, RFC_C1, &b), SASL_CONTINUE);
		assert_string_not_equal(a, b);
		free(a);
		free(b);
		sasl_free(&s);
		sasl_free(&s2);
	}
	sasl_scram_set_test_nonce(RFC_SNONCE);
}

/* Unknown users get a stable, plausible salt: no user enumeration. */
static void
test_scram_decoy(void **state)
{
	struct sasl_session *s;
	char *a, *b, *c, *salt;
	unsigned char raw[64];

	(void)state;
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	assert_int_equal(step_str(s, "n,,n=nobody,r=abc", &a), SASL_CONTINUE);
	sasl_free(&s);
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	assert_int_equal(step_str(s, "n,,n=nobody,r=abc", &b), SASL_CONTINUE);
	sasl_free(&s);
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	assert_int_equal(step_str(s, "n,,n=someone,r=abc", &c), SASL_CONTINUE);
	sasl_free(&s);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	salt = attr(a, 's');
	assert_int_equal(base64_decode(salt, strlen(salt), raw, sizeof(raw)),
			 SASL_SCRAM_SALT_DEFAULT);
	free(salt);
	assert_non_null(strstr(a, ",i=4096"));
	free(a);
	free(b);
	free(c);
}

/*
 * With the daemon's key (sasl_set_decoy_key(), from its persistent
 * secret) the decoy salt is exactly HMAC-SHA-256(key, folded name) cut to
 * SASL_SCRAM_SALT_DEFAULT octets: the same in every process that holds
 * the key, whatever the name's ASCII case; another key gives another one.
 */
static void
test_scram_decoy_key(void **state)
{
	static const char *const spellings[] = {"nobody@example.test",
						"NoBody@Example.TEST"};
	unsigned char key[32], mac[32], raw[64];
	unsigned int maclen = sizeof(mac);
	struct sasl_session *s;
	char first[128], *chal, *salt, *prev = NULL;
	size_t i;

	(void)state;
	memset(key, 0x5a, sizeof(key));
	HMAC(EVP_sha256(), key, sizeof(key),
	     (const unsigned char *)"nobody@example.test", 19, mac, &maclen);
	for (int round = 0; round < 2; round++) {
		sasl_set_decoy_key(key);
		for (i = 0; i < 2; i++) {
			snprintf(first, sizeof(first), "n,,n=%s,r=abc",
				 spellings[i]);
			s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
			assert_int_equal(step_str(s, first, &chal),
					 SASL_CONTINUE);
			sasl_free(&s);
			salt = attr(chal, 's');
			assert_int_equal(base64_decode(salt, strlen(salt), raw,
						       sizeof(raw)),
					 SASL_SCRAM_SALT_DEFAULT);
			if (round == 0)
				assert_memory_equal(raw, mac,
						    SASL_SCRAM_SALT_DEFAULT);
			else
				assert_memory_not_equal(
				    raw, mac, SASL_SCRAM_SALT_DEFAULT);
			assert_non_null(strstr(chal, ",i=4096"));
			if (i == 1)
				assert_string_equal(salt, prev);
			free(prev);
			prev = salt;
			free(chal);
		}
		key[0] ^= 1;
	}
	free(prev);
}

/* Without the test hook every CRAM-MD5 challenge is fresh, and works. */
static void
test_cram_fresh(void **state)
{
	struct sasl_session *s;
	char *c1, *c2, *resp, hex[33];
	unsigned char mac[16];
	unsigned len, i;

	(void)state;
	sasl_cram_set_test_challenge(NULL);
	s = sasl_start(SASL_CRAM_MD5, &creds, &db, "mx.example.test");
	assert_int_equal(step_raw(s, NULL, 0, &c1), SASL_FAIL_SYNTAX);
	sasl_free(&s);

	s = sasl_start(SASL_CRAM_MD5, &creds, &db, "mx.example.test");
	assert_int_equal(sasl_step(s, NULL, &resp), SASL_CONTINUE);
	c1 = unb64(resp);
	free(resp);
	/* <16 hex digits.decimal time@host> */
	assert_int_equal(c1[0], '<');
	assert_int_equal(strspn(c1 + 1, "0123456789abcdef"), 16);
	assert_int_equal(c1[17], '.');
	assert_true(strspn(c1 + 18, "0123456789") >= 10);
	assert_non_null(strstr(c1, "@mx.example.test>"));
	assert_int_equal(c1[strlen(c1) - 1], '>');

	assert_non_null(HMAC(EVP_md5(), "tanstaaftanstaaf", 16,
			     (const unsigned char *)c1, strlen(c1), mac,
			     &len));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	if (asprintf(&resp, "tim %s", hex) < 0)
		fail();
	assert_int_equal(step_str(s, resp, &c2), SASL_OK);
	assert_string_equal(sasl_authcid(s), "tim");
	sasl_free(&s);

	/* the next challenge differs, so the old response is useless */
	s = sasl_start(SASL_CRAM_MD5, &creds, &db, "mx.example.test");
	assert_int_equal(sasl_step(s, NULL, &c2), SASL_CONTINUE);
	{
		char *d = unb64(c2);

		assert_string_not_equal(d, c1);
		free(d);
	}
	free(c2);
	assert_int_equal(step_str(s, resp, &c2), SASL_FAIL_CREDENTIALS);
	sasl_free(&s);
	free(resp);
	free(c1);
	sasl_cram_set_test_challenge(RFC_CRAM_CHAL);
}

/* ---- names, start, hooks ----------------------------------------------- */

static const struct name_case {
	const char *name;
	int ret;
	enum sasl_mech mech;
} name_cases[] = {
	{"PLAIN", 0, SASL_PLAIN},
	{"plain", 0, SASL_PLAIN},
	{"LOGIN", 0, SASL_LOGIN},
	{"Login", 0, SASL_LOGIN},
	{"CRAM-MD5", 0, SASL_CRAM_MD5},
	{"cram-md5", 0, SASL_CRAM_MD5},
	{"SCRAM-SHA-256", 0, SASL_SCRAM_SHA_256},
	{"scram-sha-256", 0, SASL_SCRAM_SHA_256},
	{"SCRAM-SHA-256-PLUS", -1},
	{"SCRAM-SHA-1", -1},
	{"GSSAPI", -1},
	{"PLAIN ", -1},
	{" PLAIN", -1},
	{"PLAI", -1},
	{"", -1},
};

static void
test_names(void **state)
{
	enum sasl_mech m;
	size_t i;

	(void)state;
	for (i = 0; i < N(name_cases); i++) {
		m = (enum sasl_mech)99;
		if (sasl_mech_from_name(name_cases[i].name, &m) !=
		    name_cases[i].ret)
			fail_msg("row %zu \"%s\"", i, name_cases[i].name);
		if (name_cases[i].ret == 0) {
			assert_int_equal(m, name_cases[i].mech);
			assert_int_equal(
			    strcasecmp(sasl_mech_name(m), name_cases[i].name),
			    0);
		}
	}
	assert_string_equal(sasl_mech_name(SASL_CRAM_MD5), "CRAM-MD5");
	assert_string_equal(sasl_status_name(SASL_FAIL_CREDENTIALS),
			    "FAIL_CREDENTIALS");
	assert_string_equal(sasl_status_name(SASL_CANCELLED), "CANCELLED");
	assert_true(sasl_is_cancel("*"));
	assert_false(sasl_is_cancel("**"));
	assert_false(sasl_is_cancel(""));
	assert_false(sasl_is_cancel(NULL));
}

static void
test_start(void **state)
{
	static const struct sasl_creds only_pw = {
		.verify_password = verify_password,
	};
	static const struct sasl_creds none = {0};
	struct sasl_session *s;
	char *h256;

	(void)state;
	assert_true(sasl_mech_usable(SASL_PLAIN, &only_pw));
	assert_true(sasl_mech_usable(SASL_LOGIN, &only_pw));
	assert_false(sasl_mech_usable(SASL_CRAM_MD5, &only_pw));
	assert_false(sasl_mech_usable(SASL_SCRAM_SHA_256, &only_pw));
	assert_false(sasl_mech_usable(SASL_PLAIN, &none));
	assert_false(sasl_mech_usable(SASL_PLAIN, NULL));
	assert_null(sasl_start(SASL_CRAM_MD5, &only_pw, &db, NULL));
	assert_null(sasl_start(SASL_SCRAM_SHA_256, &only_pw, &db, NULL));
	assert_null(sasl_start(SASL_PLAIN, NULL, &db, NULL));
	assert_null(sasl_start((enum sasl_mech)7, &creds, &db, NULL));

	assert_null(sasl_start(SASL_CRAM_MD5, &creds, &db, ""));
	assert_null(sasl_start(SASL_CRAM_MD5, &creds, &db, "mx example"));
	assert_null(sasl_start(SASL_CRAM_MD5, &creds, &db, "<mx>"));
	assert_null(sasl_start(SASL_CRAM_MD5, &creds, &db, "mx\r\n"));
	h256 = repeat('h', 256);
	assert_null(sasl_start(SASL_CRAM_MD5, &creds, &db, h256));
	h256[255] = '\0';
	s = sasl_start(SASL_CRAM_MD5, &creds, &db, h256);
	assert_non_null(s);
	sasl_free(&s);
	free(h256);

	/* the test hooks refuse what could not be on the wire */
	assert_int_equal(sasl_scram_set_test_nonce("a,b"), -1);
	assert_int_equal(sasl_scram_set_test_nonce(""), -1);
	assert_int_equal(sasl_scram_set_test_nonce("a b"), -1);
	assert_int_equal(sasl_cram_set_test_challenge(""), -1);
	assert_int_equal(sasl_cram_set_test_challenge("<a\r\n>"), -1);
	/* and a refused value leaves the previous one in force */
	s = sasl_start(SASL_SCRAM_SHA_256, &creds, &db, NULL);
	{
		char *chal;

		assert_int_equal(step_str(s, RFC_C1, &chal), SASL_CONTINUE);
		assert_string_equal(chal, RFC_S1);
		free(chal);
	}
	sasl_free(&s);
}

/* ---- SCRAM secrets ----------------------------------------------------- */

static void
test_scram_secret_text(void **state)
{
	struct sasl_scram_secret a, b;
	char *t;

	(void)state;
	t = sasl_scram_format(&db.pencil);
	assert_non_null(t);
	assert_string_equal(t, RFC_SECRET);
	free(t);

	assert_int_equal(sasl_scram_parse(RFC_SECRET, &a), 0);
	assert_int_equal(a.iterations, 4096);
	assert_int_equal(a.saltlen, 16);
	assert_memory_equal(a.salt, db.pencil.salt, 16);
	assert_memory_equal(a.stored_key, db.pencil.stored_key, 32);
	assert_memory_equal(a.server_key, db.pencil.server_key, 32);

	/* generate: random salt, default count, and it round-trips */
	assert_int_equal(sasl_scram_generate("pencil", &a), 0);
	assert_int_equal(sasl_scram_generate("pencil", &b), 0);
	assert_int_equal(a.iterations, SASL_SCRAM_ITER_DEFAULT);
	assert_int_equal(a.saltlen, SASL_SCRAM_SALT_DEFAULT);
	assert_memory_not_equal(a.salt, b.salt, a.saltlen);
	assert_memory_not_equal(a.stored_key, b.stored_key, 32);
	t = sasl_scram_format(&a);
	assert_int_equal(sasl_scram_parse(t, &b), 0);
	assert_int_equal(b.iterations, a.iterations);
	assert_int_equal(b.saltlen, a.saltlen);
	assert_memory_equal(b.salt, a.salt, a.saltlen);
	assert_memory_equal(b.stored_key, a.stored_key, 32);
	assert_memory_equal(b.server_key, a.server_key, 32);
	free(t);

	/* out-of-range secrets are not formatted */
	b = a;
	b.iterations = 4095;
	assert_null(sasl_scram_format(&b));
	b = a;
	b.saltlen = 0;
	assert_null(sasl_scram_format(&b));
	b.saltlen = SASL_SCRAM_SALT_MAX + 1;
	assert_null(sasl_scram_format(&b));
}

static const char *const bad_secrets[] = {
	"",
	"SCRAM-SHA-256$",
	"scram-sha-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$4095:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$04096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$+4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$10000001:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q==:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=:x",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY= :wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	/* a 65-octet salt */
	"SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"$2y$10$abcdefghijklmnopqrstuv",
};

static void
test_scram_parse_bad(void **state)
{
	struct sasl_scram_secret r;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad_secrets); i++) {
		memset(&r, 0x55, sizeof(r));
		if (sasl_scram_parse(bad_secrets[i], &r) != -1)
			fail_msg("row %zu accepted: %s", i, bad_secrets[i]);
	}
	/* the 64-octet maximum salt is fine */
	assert_int_equal(
	    sasl_scram_parse("SCRAM-SHA-256$10000000:"
			     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==$"
			     "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
			     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
			     &r),
	    0);
	assert_int_equal(r.saltlen, 64);
	assert_int_equal(r.iterations, 10000000);
}

static const struct derive_case {
	const char *password;
	size_t saltlen;
	unsigned iterations;
	int ret;
} derive_cases[] = {
	{"pencil", 16, 4096, 0},
	{"a", 1, 4096, 0},
	{"with space ~", 64, 4096, 0},
	{"", 16, 4096, -1},
	{"caf\xc3\xa9", 16, 4096, -1},		/* non-ASCII: no SASLprep */
	{"tab\there", 16, 4096, -1},
	{"del\x7f", 16, 4096, -1},
	{"pencil", 0, 4096, -1},
	{"pencil", 65, 4096, -1},
	{"pencil", 16, 4095, -1},
	{"pencil", 16, 0, -1},
	{"pencil", 16, 10000001, -1},
};

static void
test_scram_derive(void **state)
{
	unsigned char salt[80];
	struct sasl_scram_secret r;
	char *long_pw;
	size_t i;

	(void)state;
	memset(salt, 's', sizeof(salt));
	for (i = 0; i < N(derive_cases); i++) {
		const struct derive_case *c = &derive_cases[i];

		if (sasl_scram_derive(c->password, salt, c->saltlen,
				      c->iterations, &r) != c->ret)
			fail_msg("row %zu \"%s\"", i, c->password);
		if (c->ret == 0) {
			assert_int_equal(r.saltlen, c->saltlen);
			assert_int_equal(r.iterations, c->iterations);
		}
	}
	assert_int_equal(sasl_scram_derive("pencil", NULL, 16, 4096, &r), -1);
	assert_int_equal(sasl_scram_generate("caf\xc3\xa9", &r), -1);
	long_pw = repeat('p', SASL_PASSWORD_MAX);
	assert_int_equal(sasl_scram_derive(long_pw, salt, 16, 4096, &r), 0);
	free(long_pw);
	long_pw = repeat('p', SASL_PASSWORD_MAX + 1);
	assert_int_equal(sasl_scram_derive(long_pw, salt, 16, 4096, &r), -1);
	free(long_pw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_wire_challenges),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_scram_client),
		cmocka_unit_test(test_scram_replay),
		cmocka_unit_test(test_scram_decoy),
		cmocka_unit_test(test_scram_decoy_key),
		cmocka_unit_test(test_cram_fresh),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_start),
		cmocka_unit_test(test_scram_secret_text),
		cmocka_unit_test(test_scram_parse_bad),
		cmocka_unit_test(test_scram_derive),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
