/*
 * Server-side SASL: the mechanisms SMTP AUTH (RFC 4954) and POP3 AUTH
 * (RFC 5034) share. PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login),
 * CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802, RFC 7677) without
 * channel binding.
 *
 * Pure: no I/O, no logging, no clock beyond the CRAM-MD5 timestamp. The
 * protocol session feeds in what the client sent and writes out what this
 * module returns; the user database is reached only through the callbacks
 * in struct sasl_creds, so the same code serves every backend.
 *
 * A session, as the SMTP or POP3 code drives it:
 *
 *	s = sasl_start(mech, &creds, ctx, hostname);   // NULL: refuse (504)
 *	st = sasl_step(s, initial_response_or_NULL, &chal);
 *	while (st == SASL_CONTINUE) {
 *		send "334 " chal (SMTP) or "+ " chal (POP3); free(chal);
 *		line = read one line, CRLF removed;
 *		st = sasl_step(s, line, &chal);
 *	}
 *	log sasl_authcid(s) with st; on SASL_OK the session is authenticated
 *	as sasl_authcid(s); sasl_free(&s);
 *
 * Everything crossing sasl_step() is base64 text, exactly as on the wire.
 *
 * Initial response: pass the AUTH command's second argument as-is, or NULL
 * if the client gave none. "=" is the empty initial response (RFC 4954
 * section 4, RFC 5034 section 4). Without an initial response PLAIN and
 * SCRAM-SHA-256 answer with an empty challenge ("334 " / "+ "), LOGIN with
 * "Username:", CRAM-MD5 with its challenge. CRAM-MD5 refuses an initial
 * response, since its server speaks first.
 *
 * Cancellation: a continuation line of exactly "*" makes sasl_step()
 * return SASL_CANCELLED (the caller answers "501 5.0.0 Authentication
 * cancelled" in SMTP, "-ERR" in POP3). sasl_is_cancel() tells the same if
 * the caller wants to check before calling in.
 *
 * SCRAM's server-final-message: RFC 4954 section 4 and RFC 5034 section 4
 * allow it either as "additional data with success" or as one more
 * challenge. We always use the challenge: the step that verifies the
 * ClientProof returns SASL_CONTINUE with the server-final-message
 * ("v=...") as the challenge; the client must answer with an empty line,
 * and only that step returns SASL_OK. So SASL_OK never carries data, and
 * the caller's loop above needs no special case. A wrong proof fails at
 * once with SASL_FAIL_CREDENTIALS; nothing is sent with it.
 *
 * Mapping of the results to replies:
 *
 *	status			SMTP			POP3
 *	SASL_CONTINUE		334 <challenge>		+ <challenge>
 *	SASL_OK			235 2.7.0		+OK
 *	SASL_FAIL_CREDENTIALS	535 5.7.8		-ERR [AUTH]
 *	SASL_FAIL_SYNTAX	501 5.5.2		-ERR
 *	SASL_FAIL_TEMP		454 4.7.0		-ERR [SYS/TEMP]
 *	SASL_CANCELLED		501 5.0.0		-ERR
 *
 * SASL_FAIL_SYNTAX: the text is not base64, or the decoded message does
 * not follow the mechanism's grammar or our bounds (a field too long or
 * empty, NUL or a control character in a name, invalid UTF-8 in a name,
 * missing or out-of-order SCRAM attributes, a bad "=2C"/"=3D" escape,
 * data where an empty response was due).
 * SASL_FAIL_CREDENTIALS: the message was well-formed but authentication
 * failed: wrong password, proof or digest; unknown user; an authorisation
 * identity other than the authentication identity; SCRAM channel binding
 * requested ("p=") or a "c=" that does not match; a wrong SCRAM nonce; the
 * reserved "m=" extension. Brute-force counting should count these.
 * SASL_FAIL_TEMP: a credentials callback returned -1, or the database
 * holds a malformed secret. The client may retry later.
 *
 * Once sasl_step() has returned anything but SASL_CONTINUE the session is
 * finished; further calls return SASL_FAIL_SYNTAX.
 *
 * Names and passwords:
 * - Authentication identities (authcid) are 1 to SASL_NAME_MAX octets of
 *   valid UTF-8 without control characters (U+0000-U+001F, U+007F-U+009F).
 *   They are passed to the callbacks exactly as received (after SCRAM's
 *   "=2C"/"=3D" unescaping); case folding and address normalisation are
 *   the callbacks' business.
 * - An authorisation identity (authzid: PLAIN's first field, SCRAM's
 *   "a=") is allowed only when empty or byte-for-byte equal to the
 *   authcid: nobody may act as someone else.
 * - PLAIN and LOGIN passwords are 1 to SASL_PASSWORD_MAX octets, any
 *   bytes but NUL, passed verbatim to verify_password(): the stored hash
 *   was made from the same bytes, and some LOGIN clients send passwords in
 *   a legacy 8-bit charset.
 * - SASLprep (RFC 4013) is not implemented. RFC 5802 section 2.2 allows
 *   that if non-ASCII passwords are refused for SCRAM, and we do: a SCRAM
 *   password must be printable US-ASCII (0x20-0x7E), for which SASLprep is
 *   the identity. So sasl_scram_derive() refuses other passwords; such a
 *   user can still log in with PLAIN or LOGIN. SCRAM usernames are taken
 *   as sent (checked as above, not normalised).
 *
 * All secrets this module holds (passwords, CRAM secrets, SCRAM keys) are
 * wiped with OPENSSL_cleanse() before their memory is freed.
 */
#ifndef GODWIT_SASL_H
#define GODWIT_SASL_H

#include <stdbool.h>
#include <stddef.h>

#define SASL_NAME_MAX 255	   /* authcid, authzid (RFC 4616 minimum) */
#define SASL_PASSWORD_MAX 1024	   /* PLAIN, LOGIN passwords */
#define SASL_MSG_MAX 2048	   /* one decoded client message */
#define SASL_SCRAM_KEY_LEN 32	   /* SHA-256 output */
#define SASL_SCRAM_SALT_MAX 64	   /* octets */
#define SASL_SCRAM_SALT_DEFAULT 16 /* octets, as PostgreSQL */
#define SASL_SCRAM_ITER_MIN 4096   /* RFC 7677 section 4 */
#define SASL_SCRAM_ITER_DEFAULT 4096
/* A higher count only makes clients slow, or hangs them: refuse it. */
#define SASL_SCRAM_ITER_MAX 10000000

enum sasl_mech {
	SASL_PLAIN,
	SASL_LOGIN,
	SASL_CRAM_MD5,
	SASL_SCRAM_SHA_256,
};
#define SASL_MECH_COUNT 4

enum sasl_status {
	SASL_CONTINUE,		/* send the challenge, feed in the answer */
	SASL_OK,		/* authenticated as sasl_authcid() */
	SASL_FAIL_CREDENTIALS,
	SASL_FAIL_SYNTAX,
	SASL_FAIL_TEMP,
	SASL_CANCELLED,
};

/*
 * What the user database stores for SCRAM-SHA-256 (RFC 5802 section 3):
 * never the password, only the salt, the iteration count and two keys
 * derived from SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i):
 *	StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key"))
 *	ServerKey = HMAC(SaltedPassword, "Server Key")
 */
struct sasl_scram_secret {
	unsigned iterations;
	size_t saltlen;		/* 1 .. SASL_SCRAM_SALT_MAX */
	unsigned char salt[SASL_SCRAM_SALT_MAX];
	unsigned char stored_key[SASL_SCRAM_KEY_LEN];
	unsigned char server_key[SASL_SCRAM_KEY_LEN];
};

/*
 * The caller's window onto the user database. Each returns 1 (found /
 * correct), 0 (wrong password or unknown user: the two must look the same
 * to the client) or -1 (temporary failure, e.g. the database is down).
 * A callback may be NULL; the mechanisms that need it are then refused by
 * sasl_start(). user is the authcid as described above.
 */
struct sasl_creds {
	/* PLAIN and LOGIN: check password against the stored hash. */
	int (*verify_password)(void *ctx, const char *user,
			       const char *password);
	/* SCRAM-SHA-256: fill in *r (e.g. with sasl_scram_parse()). */
	int (*scram_secret)(void *ctx, const char *user,
			    struct sasl_scram_secret *r);
	/*
	 * CRAM-MD5: the plaintext-equivalent secret (the password itself),
	 * in *secret_r allocated with malloc() (xstrdup() is fine); this
	 * module wipes and frees it.
	 */
	int (*cram_secret)(void *ctx, const char *user, char **secret_r);
};

struct sasl_session;

/*
 * The IANA name of a mechanism ("PLAIN", "LOGIN", "CRAM-MD5",
 * "SCRAM-SHA-256"), and back: case-insensitive; returns 0, or -1 for an
 * unknown name (the caller answers 504 5.5.4).
 */
const char *sasl_mech_name(enum sasl_mech mech);
int sasl_mech_from_name(const char *name, enum sasl_mech *mech_r);

/* True if ops has the callback mech needs. */
bool sasl_mech_usable(enum sasl_mech mech, const struct sasl_creds *ops);

/* "CONTINUE", "OK", "FAIL_CREDENTIALS", ... for logs. */
const char *sasl_status_name(enum sasl_status st);

/*
 * Starts an exchange. ops and ctx must outlive the session. hostname is
 * the server's name, used only in the CRAM-MD5 challenge (NULL means
 * "localhost"); it must be 1 to 255 characters of printable ASCII without
 * '<' or '>'. Returns NULL if the mechanism is unknown, its callback is
 * missing or hostname is unfit.
 */
struct sasl_session *sasl_start(enum sasl_mech mech,
				const struct sasl_creds *ops, void *ctx,
				const char *hostname);

/*
 * Feeds in one client message and returns what to do next (see the top of
 * this file). client_b64 is the base64 text as received, without CRLF; on
 * the first call it is the initial response or NULL. *challenge_b64_r is
 * set to a new base64 string (possibly "") when SASL_CONTINUE is returned,
 * which the caller frees, and to NULL otherwise.
 */
enum sasl_status sasl_step(struct sasl_session *s, const char *client_b64,
			   char **challenge_b64_r);

/*
 * The authentication identity the client claimed, or NULL if it has not
 * said yet. It is available as soon as the client sent it, so that
 * failures can be logged and counted per account, but it is proven only
 * once sasl_step() has returned SASL_OK.
 */
const char *sasl_authcid(const struct sasl_session *s);

enum sasl_mech sasl_session_mech(const struct sasl_session *s);

/* Wipes and frees the session; *s becomes NULL. NULL is fine. */
void sasl_free(struct sasl_session **s);

/*
 * The key (32 octets) from which the salts of unknown SCRAM users are
 * derived (see scram_decoy() in sasl.c). The daemon's parent sets it from
 * its persistent secret before it forks the workers, so all of them, and
 * the next start, answer an unknown name with the same salt. Call it
 * before any session starts.
 */
void sasl_set_decoy_key(const unsigned char key[32]);

/* True if line is the client's "*" that cancels an exchange. */
bool sasl_is_cancel(const char *line);

/* ---- SCRAM secrets for the user database ---------------------------- */

/*
 * Computes the SCRAM-SHA-256 secret of password with the given salt
 * (1..SASL_SCRAM_SALT_MAX octets) and iteration count
 * (SASL_SCRAM_ITER_MIN..SASL_SCRAM_ITER_MAX). Returns 0, or -1 if an
 * argument is out of range or the password is not 1 to SASL_PASSWORD_MAX
 * characters of printable ASCII (see SASLprep above), or libcrypto fails.
 */
int sasl_scram_derive(const char *password, const unsigned char *salt,
		      size_t saltlen, unsigned iterations,
		      struct sasl_scram_secret *r);

/*
 * The same with a fresh random salt of SASL_SCRAM_SALT_DEFAULT octets and
 * SASL_SCRAM_ITER_DEFAULT iterations: what `godwit user passwd` stores.
 */
int sasl_scram_generate(const char *password, struct sasl_scram_secret *r);

/*
 * The text form for the database, PostgreSQL's:
 *	SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
 * sasl_scram_format() returns a new string (free it), or NULL if *sec is
 * out of range. sasl_scram_parse() accepts exactly that form (strict
 * base64, 32-octet keys, the ranges above) and returns 0 or -1.
 */
char *sasl_scram_format(const struct sasl_scram_secret *sec);
int sasl_scram_parse(const char *text, struct sasl_scram_secret *r);

#ifdef GODWIT_TEST_HOOKS
/*
 * FOR TESTS ONLY, and only in the builds the tests use (the Makefile
 * compiles a second sasl.o with GODWIT_TEST_HOOKS that only the unit
 * tests and fuzz targets link, never either daemon binary): makes every SCRAM session started afterwards use nonce
 * (printable ASCII, no ',', at most 128 characters) as its server nonce
 * instead of a random one, so the RFC 7677 example exchange can be
 * replayed byte for byte; NULL restores random nonces. A fixed nonce
 * destroys SCRAM's replay protection: the daemon never calls this.
 * Returns 0, or -1 if nonce is unfit.
 */
int sasl_scram_set_test_nonce(const char *nonce);

/*
 * FOR TESTS ONLY: likewise makes CRAM-MD5 sessions use challenge (the
 * decoded text, e.g. RFC 2195's "<1896.697170952@postoffice.reston.mci.net>":
 * printable ASCII, at most 512 characters) instead of a fresh unique one,
 * which is what stops a captured response from being replayed. NULL
 * restores fresh challenges. Returns 0, or -1 if challenge is unfit.
 */
int sasl_cram_set_test_challenge(const char *challenge);
#endif

#endif
