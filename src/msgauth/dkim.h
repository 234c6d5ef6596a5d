/*
 * DKIM (RFC 6376, RFC 8463 Ed25519, RFC 8301): verifying the signatures
 * of a message as it streams in, and signing. The tag-list, signature and
 * key-record parsers and the canonicalisation are pure (mail/dkim_*); the
 * key lookups go through net/dns; RSA and Ed25519 through OpenSSL 3 EVP.
 *
 * Input is the message in its stored form: lines end in LF (a CRLF on
 * the wire); canonicalisation treats each LF as CRLF.
 */
#ifndef GODWIT_DKIM_H
#define GODWIT_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct dns_resolver;

enum dkim_result {
	DKIM_NONE,	/* not used for a signature: the message has none */
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_POLICY,	/* valid but not acceptable (rsa-sha1, l= short) */
	DKIM_NEUTRAL,	/* syntax error in the signature */
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

/* "none", "pass", "fail", "policy", "neutral", "temperror", "permerror" */
const char *dkim_result_name(enum dkim_result r);

#define DKIM_MAX_SIGS 8	/* signatures verified per message; more are
			 * reported permerror "too many signatures" */

struct dkim_sig_result {
	enum dkim_result result;
	char domain[256];	/* d=, lower case ("" if unparsable) */
	char selector[256];	/* s= */
	char algorithm[32];	/* a= as given, e.g. "rsa-sha256" */
	char b_prefix[16];	/* first 8 characters of b= (RFC 6008) */
	unsigned key_bits;	/* RSA modulus bits; 256 for Ed25519 */
	bool testing;		/* the key record has t=y */
	char reason[160];	/* not pass: why, readable */
};

/* ---- verifying -------------------------------------------------------- */

/*
 * The results, and the reasons that come with them:
 *  pass (reason "");
 *  fail: "body hash mismatch", "signature did not verify", "key
 *	revoked", "signature expired" (x= is past; no key is looked up),
 *	"l= is longer than the body";
 *  policy: rsa-sha1 (RFC 8301), an RSA key of less than 1024 bits, an
 *	l= that leaves part of the body unsigned; the reason ends in
 *	"signature valid" or "signature did not verify";
 *  neutral: the field does not parse (the parser's reason);
 *  temperror: "key lookup failed: ..." (SERVFAIL, timeout);
 *  permerror: "no key" (NXDOMAIN, NODATA), a key record that does not
 *	parse or is not for email, k= or h= not allowing a=, t=s with an
 *	i= below d=, an unusable p=, "too many signatures".
 * Up to 4 * DKIM_MAX_SIGS fields get a result; later ones are ignored.
 */

struct dkim_verifier;

/* now: the time x= and t= are judged against. timeout_ms bounds each
 * key lookup (then temperror). */
struct dkim_verifier *dkim_verifier_new(struct dns_resolver *r, time_t now,
					unsigned timeout_ms);
/*
 * One complete header field exactly as in the message: name, colon,
 * value with its folding, LF line ends, the final LF included. Fields
 * come in message order. A DKIM-Signature field starts its key lookup
 * at once. Bounded: fields beyond what is kept are not signed over.
 */
void dkim_verifier_header(struct dkim_verifier *v, const char *field,
			  size_t len);
/* The empty line that ends the header (also for a message without one). */
void dkim_verifier_header_end(struct dkim_verifier *v);
/* Body octets, in any chunking (the same hash however it is split). */
void dkim_verifier_body(struct dkim_verifier *v, const char *p, size_t n);
/* The end of the message: cb runs once every key is in and every
 * signature is judged, always from the event loop, never inside. */
typedef void dkim_done_cb(void *arg);
void dkim_verifier_finish(struct dkim_verifier *v, dkim_done_cb *cb,
			  void *arg);
/* After cb: the results, one per DKIM-Signature field (in order). */
size_t dkim_verifier_results(const struct dkim_verifier *v,
			     const struct dkim_sig_result **res_r);
/* Cancels pending lookups (cb is then never called). */
void dkim_verifier_free(struct dkim_verifier **v);

/* ---- keys ------------------------------------------------------------- */

enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

struct dkim_key {
	char *domain;		/* lower case */
	char *selector;
	enum dkim_alg alg;
	unsigned bits;
	void *pkey;		/* EVP_PKEY * */
	char *path;
};

/*
 * The signing keys: dir/<domain>/<selector>.key (PEM, PKCS#8; RSA or
 * Ed25519), read by the parent as root before it drops privileges. A
 * missing dir is an empty keyring. -1 with *error_r (caller frees) on
 * a key that cannot be read or used, naming its path.
 */
struct dkim_keyring;
int dkim_keyring_load(const char *dir, struct dkim_keyring **kr_r,
		      char **error_r);
/* The keys for a From domain: its own, else those of the nearest parent
 * domain that has keys (relaxed alignment). n_r = 0 if none. */
const struct dkim_key *const *dkim_keyring_find(const struct dkim_keyring *kr,
						const char *domain,
						size_t *n_r);
size_t dkim_keyring_all(const struct dkim_keyring *kr,
			const struct dkim_key *const **keys_r);
void dkim_keyring_free(struct dkim_keyring **kr);

/*
 * Makes a key (RSA-2048 or Ed25519) and writes it to
 * dir/<domain>/<selector>.key (mode 0600; the directories made 0700),
 * never over an existing file. 0 with *key_r (free it with
 * dkim_key_free()), or -1 with *error_r (caller frees).
 */
int dkim_key_create(const char *dir, const char *domain,
		    const char *selector, enum dkim_alg alg,
		    struct dkim_key **key_r, char **error_r);
void dkim_key_free(struct dkim_key **k);
/* The key record to publish at <selector>._domainkey.<domain>:
 * "v=DKIM1; k=rsa; p=..." (caller frees). */
char *dkim_key_record(const struct dkim_key *k);

/* ---- signing ---------------------------------------------------------- */

struct dkim_signer;

/* relaxed/relaxed, sha256, the recommended header set with From signed
 * twice (over-signed), t= now, no l= and no x=. */
struct dkim_signer *dkim_signer_new(time_t now);
void dkim_signer_header(struct dkim_signer *s, const char *field,
			size_t len);
void dkim_signer_header_end(struct dkim_signer *s);
void dkim_signer_body(struct dkim_signer *s, const char *p, size_t n);
/*
 * The DKIM-Signature fields, one per key, folded, LF line ends, to be
 * put at the top of the message; NULL if nkeys is 0 or signing failed
 * (*error_r, caller frees). The caller frees the string.
 */
char *dkim_signer_finish(struct dkim_signer *s,
			 const struct dkim_key *const *keys, size_t nkeys,
			 char **error_r);
void dkim_signer_free(struct dkim_signer **s);

/* A whole message at once (bounces, `godwit dkim sign`): the fields to
 * put at its top, as dkim_signer_finish(). */
char *dkim_sign_message(const char *msg, size_t len,
			const struct dkim_key *const *keys, size_t nkeys,
			time_t now, char **error_r);

#endif
