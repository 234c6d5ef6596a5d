/*
 * DKIM verification (RFC 6376 6, RFC 8463, RFC 8301) as the message
 * streams: each DKIM-Signature field is parsed when it arrives and its
 * key lookup (s._domainkey.d TXT) starts at once; the body hashes run
 * while the body streams, one per distinct (canonicalisation, hash,
 * l=) and shared by the signatures that name it; at the end the header
 * hashes and the RSA / Ed25519 checks (OpenSSL 3 EVP). See dkim.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/xalloc.h"
#include "mail/dkim_canon.h"
#include "mail/dkim_sig.h"
#include "msgauth/dkim.h"
#include "msgauth/dkim_private.h"
#include "net/dns.h"

#define MAX_FIELDS_REPORTED (4 * DKIM_MAX_SIGS)	/* results kept */

struct bodyhash {
	enum dkim_canon_alg canon;
	enum dkim_hash_alg hash;
	uint64_t limit;			/* l=, or UINT64_MAX */
	struct dkim_body_canon bc;
	EVP_MD_CTX *md;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen;
	uint64_t total;			/* the whole canonical body */
};

enum key_state { KEY_NONE, KEY_PENDING, KEY_DONE };

struct vsig {
	struct dkim_verifier *v;
	size_t idx;			/* in v->res */
	struct dkim_sig *sig;		/* NULL: judged at once */
	char *field;			/* the raw field, b= emptied */
	size_t field_len;
	struct dns_query *q;
	enum key_state kstate;
	struct dkim_keyrec *key;	/* NULL: key_result says why */
	enum dkim_result key_result;
	char key_reason[160];
	int bh;				/* index in v->bh, -1: none */
};

struct dkim_verifier {
	struct dns_resolver *r;
	time_t now;
	unsigned timeout_ms;
	struct dkim_hdrs hdrs;
	struct vsig sigs[DKIM_MAX_SIGS];
	size_t nsigs;
	struct dkim_sig_result res[MAX_FIELDS_REPORTED];
	size_t nres;
	struct bodyhash bh[DKIM_MAX_SIGS];
	size_t nbh;
	size_t pending;			/* key lookups not answered */
	bool header_done, finished;
	dkim_done_cb *cb;
	void *cb_arg;
	struct event *ev;		/* defers cb to the loop */
};

const char *
dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = {
		"none", "pass", "fail", "policy", "neutral", "temperror",
		"permerror",
	};

	return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* ---- header fields kept ----------------------------------------------- */

void
dkim_hdrs_add(struct dkim_hdrs *h, const char *field, size_t len)
{
	if (h->n == DKIM_HDR_MAX_FIELDS || len > DKIM_HDR_MAX_BYTES - h->bytes)
		return;
	if (h->n == h->cap) {
		h->cap = h->cap == 0 ? 32 : h->cap * 2;
		h->f = xreallocarray(h->f, h->cap, sizeof(*h->f));
		h->len = xreallocarray(h->len, h->cap, sizeof(*h->len));
	}
	h->f[h->n] = xmalloc(len + 1);
	memcpy(h->f[h->n], field, len);
	h->f[h->n][len] = '\0';
	h->len[h->n++] = len;
	h->bytes += len;
}

void
dkim_hdrs_clear(struct dkim_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->f[i]);
	free(h->f);
	free(h->len);
	memset(h, 0, sizeof(*h));
}

bool
dkim_field_name_is(const char *field, size_t len, const char *name)
{
	size_t n = strlen(name), i = n;

	if (len < n || strncasecmp(field, name, n) != 0)
		return false;
	while (i < len && (field[i] == ' ' || field[i] == '\t'))
		i++;
	return i < len && field[i] == ':';
}

char *
dkim_header_input(const struct dkim_hdrs *h, const char *const *names,
		  size_t nnames, enum dkim_canon_alg c, const char *sigfield,
		  size_t siglen, size_t *len_r)
{
	bool *used = xcalloc(h->n + 1, sizeof(*used));
	size_t cap = 2 * (h->bytes + siglen) + 2 * nnames + 4, o = 0;
	char *out = xmalloc(cap);

	for (size_t k = 0; k < nnames; k++) {
		for (size_t i = h->n; i-- > 0;) {
			if (used[i] ||
			    !dkim_field_name_is(h->f[i], h->len[i], names[k]))
				continue;
			used[i] = true;	/* each field once: bottom-up */
			o += dkim_canon_header(c, h->f[i], h->len[i], true,
					       out + o);
			break;
		}
	}
	o += dkim_canon_header(c, sigfield, siglen, false, out + o);
	free(used);
	*len_r = o;
	return out;
}

/* ---- body hashes ------------------------------------------------------ */

static const EVP_MD *
md_of(enum dkim_hash_alg h)
{
	return h == DKIM_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
}

static void
bh_out(void *arg, const void *p, size_t n)
{
	struct bodyhash *b = arg;

	if (EVP_DigestUpdate(b->md, p, n) != 1)
		abort();
}

/* The body hash a signature needs: shared, or a new one. */
static int
bodyhash_for(struct dkim_verifier *v, const struct dkim_sig *sig)
{
	uint64_t limit = sig->has_l ? sig->l : UINT64_MAX;
	struct bodyhash *b;

	for (size_t i = 0; i < v->nbh; i++)
		if (v->bh[i].canon == sig->bcanon &&
		    v->bh[i].hash == sig->hash && v->bh[i].limit == limit)
			return (int)i;
	b = &v->bh[v->nbh];
	b->canon = sig->bcanon;
	b->hash = sig->hash;
	b->limit = limit;
	if ((b->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(b->md, md_of(sig->hash), NULL) != 1)
		abort();
	dkim_body_canon_init(&b->bc, sig->bcanon, limit, bh_out, b);
	return (int)v->nbh++;
}

/* ---- key records ------------------------------------------------------ */

static void maybe_done(struct dkim_verifier *v);

static void
key_error(struct vsig *s, enum dkim_result r, const char *why)
{
	s->key_result = r;
	snprintf(s->key_reason, sizeof(s->key_reason), "%s", why);
}

/* The first TXT record that parses as a key record. */
static void
key_from_answer(struct vsig *s, const struct dns_answer *a)
{
	char txt[4096];
	const char *err = "no key";
	size_t n;

	s->key = xcalloc(1, sizeof(*s->key));
	for (size_t i = 0; i < a->nrr; i++) {
		if (dns_txt_rdata(a->rr[i], a->rrlen[i], txt, sizeof(txt),
				  &n) < 0) {
			err = "key record too long or malformed";
			continue;
		}
		if (dkim_keyrec_parse(txt, n, s->key, &err) == 0)
			return;
	}
	xfree(&s->key);
	key_error(s, DKIM_PERMERROR, err);
}

static void
key_answer(struct dns_answer *a, void *arg)
{
	struct vsig *s = arg;
	struct dkim_verifier *v = s->v;

	s->q = NULL;
	s->kstate = KEY_DONE;
	switch (a->status) {
	case DNS_ANS_OK:
		key_from_answer(s, a);
		break;
	case DNS_ANS_NODATA:
	case DNS_ANS_NXDOMAIN:
		key_error(s, DKIM_PERMERROR, "no key");
		break;
	case DNS_ANS_INVALID:
		key_error(s, DKIM_PERMERROR, "bad key name");
		break;
	default:
		snprintf(s->key_reason, sizeof(s->key_reason),
			 "key lookup failed: %.100s", a->error);
		s->key_result = DKIM_TEMPERROR;
		break;
	}
	dns_answer_free(&a);
	v->pending--;
	maybe_done(v);
}

static void
key_lookup(struct vsig *s)
{
	char name[600];

	snprintf(name, sizeof(name), "%s._domainkey.%s", s->sig->selector,
		 s->sig->domain);
	if (strlen(name) > DNS_NAME_MAX || !dns_name_valid(name)) {
		s->kstate = KEY_DONE;
		key_error(s, DKIM_PERMERROR, "bad key name");
		return;
	}
	s->kstate = KEY_PENDING;
	s->v->pending++;
	s->q = dns_lookup(s->v->r, name, DNS_T_TXT, s->v->timeout_ms,
			  key_answer, s);
}

/* ---- the fields ------------------------------------------------------- */

struct dkim_verifier *
dkim_verifier_new(struct dns_resolver *r, time_t now, unsigned timeout_ms)
{
	struct dkim_verifier *v = xcalloc(1, sizeof(*v));

	v->r = r;
	v->now = now;
	v->timeout_ms = timeout_ms;
	return v;
}

static struct dkim_sig_result *
new_result(struct dkim_verifier *v)
{
	struct dkim_sig_result *res;

	if (v->nres == MAX_FIELDS_REPORTED)
		return NULL;
	res = &v->res[v->nres++];
	memset(res, 0, sizeof(*res));
	return res;
}

static void
fill_ids(struct dkim_sig_result *res, const struct dkim_sig *sig)
{
	snprintf(res->domain, sizeof(res->domain), "%s", sig->domain);
	snprintf(res->selector, sizeof(res->selector), "%s", sig->selector);
	snprintf(res->algorithm, sizeof(res->algorithm), "%s",
		 sig->algorithm);
	snprintf(res->b_prefix, sizeof(res->b_prefix), "%s", sig->b_prefix);
}

static void
signature_field(struct dkim_verifier *v, const char *field, size_t len)
{
	struct dkim_sig_result *res;
	struct dkim_sig *sig;
	struct vsig *s;
	const char *colon = memchr(field, ':', len), *err;
	size_t vlen = len - (size_t)(colon + 1 - field);
	long n;

	if ((res = new_result(v)) == NULL)
		return;
	if (vlen > 0 && colon[vlen] == '\n')	/* the field's own line end */
		vlen--;
	if (vlen > 0 && colon[vlen] == '\r')
		vlen--;
	sig = xmalloc(sizeof(*sig));
	if (dkim_sig_parse(colon + 1, vlen, sig, &err) < 0) {
		fill_ids(res, sig);
		res->result = DKIM_NEUTRAL;
		snprintf(res->reason, sizeof(res->reason), "%s", err);
		free(sig);
		return;
	}
	fill_ids(res, sig);
	if (v->nsigs == DKIM_MAX_SIGS) {
		res->result = DKIM_PERMERROR;
		snprintf(res->reason, sizeof(res->reason),
			 "too many signatures");
		free(sig);
		return;
	}
	s = &v->sigs[v->nsigs++];
	s->v = v;
	s->idx = v->nres - 1;
	s->sig = sig;
	s->bh = -1;
	s->field = xmalloc(len + 1);
	if ((n = dkim_sig_strip_b(field, len, s->field)) < 0)
		abort();	/* it parsed above */
	s->field_len = (size_t)n;
	if (sig->has_x && (uint64_t)v->now > sig->x) {
		s->kstate = KEY_DONE;	/* judged without a key */
		key_error(s, DKIM_FAIL, "signature expired");
		return;
	}
	key_lookup(s);
}

void
dkim_verifier_header(struct dkim_verifier *v, const char *field, size_t len)
{
	if (v->header_done)
		return;
	dkim_hdrs_add(&v->hdrs, field, len);
	if (dkim_field_name_is(field, len, "DKIM-Signature"))
		signature_field(v, field, len);
}

void
dkim_verifier_header_end(struct dkim_verifier *v)
{
	if (v->header_done)
		return;
	v->header_done = true;
	for (size_t i = 0; i < v->nsigs; i++) {
		struct vsig *s = &v->sigs[i];
		if (s->kstate == KEY_DONE && s->key_result == DKIM_FAIL)
			continue;	/* expired: no body hash needed */
		s->bh = bodyhash_for(v, s->sig);
	}
}

void
dkim_verifier_body(struct dkim_verifier *v, const char *p, size_t n)
{
	if (!v->header_done)
		dkim_verifier_header_end(v);
	if (v->finished)
		return;
	for (size_t i = 0; i < v->nbh; i++)
		dkim_body_canon_update(&v->bh[i].bc, p, n);
}

/* ---- judging ---------------------------------------------------------- */

/* The public key of a key record, of the type k= names. */
static EVP_PKEY *
key_decode(const struct dkim_keyrec *k)
{
	const unsigned char *p = k->p;

	if (k->key_type == DKIM_KEY_ED25519)
		return k->p_len != 32 ? NULL :
		    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->p,
						k->p_len);
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)k->p_len);
	if (pk == NULL) {	/* a bare RSAPublicKey (PKCS#1) is seen too */
		p = k->p;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)k->p_len);
	}
	if (pk != NULL && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
		EVP_PKEY_free(pk), pk = NULL;
	return pk;
}

/*
 * Decoded public keys, by their p= octets and type: decoding an RSA key
 * (OpenSSL 3's decoder) costs several times what verifying with it does,
 * and the same senders' keys come back message after message. A few
 * dozen, least recently used out; only the loop thread verifies.
 */
#define PKEY_CACHE 64

static struct pkey_slot {
	unsigned char *der;
	size_t len;
	int type;
	EVP_PKEY *pk;
	uint64_t used;
} pkey_cache[PKEY_CACHE];
static uint64_t pkey_clock;

static EVP_PKEY *
key_pkey(const struct dkim_keyrec *k)
{
	struct pkey_slot *e, *victim = &pkey_cache[0];
	EVP_PKEY *pk;
	size_t i;

	for (i = 0; i < PKEY_CACHE; i++) {
		e = &pkey_cache[i];
		if (e->pk != NULL && e->type == (int)k->key_type &&
		    e->len == k->p_len && memcmp(e->der, k->p, e->len) == 0) {
			e->used = ++pkey_clock;
			return EVP_PKEY_up_ref(e->pk) == 1 ? e->pk : NULL;
		}
		if (e->used < victim->used)
			victim = e;
	}
	if ((pk = key_decode(k)) == NULL)
		return NULL;
	if (EVP_PKEY_up_ref(pk) != 1)
		return pk;
	EVP_PKEY_free(victim->pk);
	free(victim->der);
	victim->der = xmalloc(k->p_len > 0 ? k->p_len : 1);
	memcpy(victim->der, k->p, k->p_len);
	victim->len = k->p_len;
	victim->type = (int)k->key_type;
	victim->pk = pk;
	victim->used = ++pkey_clock;
	return pk;
}

/* Whether the signature over the header input verifies. */
static bool
header_verifies(struct dkim_verifier *v, const struct vsig *s, EVP_PKEY *pk)
{
	const struct dkim_sig *sig = s->sig;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned dlen;
	size_t len;
	char *in;
	bool ok = false;

	in = dkim_header_input(&v->hdrs, sig->h, sig->nh, sig->hcanon,
			       s->field, s->field_len, &len);
	if (ctx == NULL)
		abort();
	if (sig->key_type == DKIM_KEY_ED25519) {
		/* RFC 8463: Ed25519 signs the SHA-256 hash */
		if (EVP_Digest(in, len, dg, &dlen, EVP_sha256(), NULL) == 1 &&
		    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
			ok = EVP_DigestVerify(ctx, sig->b, sig->b_len, dg,
					      dlen) == 1;
	} else if (EVP_DigestVerifyInit(ctx, NULL, md_of(sig->hash), NULL,
					pk) == 1)
		ok = EVP_DigestVerify(ctx, sig->b, sig->b_len,
				      (unsigned char *)in, len) == 1;
	EVP_MD_CTX_free(ctx);
	free(in);
	return ok;
}

#define SET(res, r, ...) \
	do { (res)->result = (r); \
	     snprintf((res)->reason, sizeof((res)->reason), __VA_ARGS__); \
	} while (0)

/* The key record's own conditions (RFC 6376 3.6.1, 6.1.2). */
static bool
key_acceptable(const struct vsig *s, struct dkim_sig_result *res)
{
	const struct dkim_keyrec *k = s->key;
	const struct dkim_sig *sig = s->sig;

	res->testing = k->testing;
	if (k->revoked)
		SET(res, DKIM_FAIL, "key revoked");
	else if (k->key_type != sig->key_type)
		SET(res, DKIM_PERMERROR, "key type (k=) does not match a=");
	else if (!(sig->hash == DKIM_HASH_SHA256 ? k->allows_sha256
						 : k->allows_sha1))
		SET(res, DKIM_PERMERROR, "key h= does not allow %s",
		    sig->hash == DKIM_HASH_SHA256 ? "sha256" : "sha1");
	else if (k->strict && strcmp(sig->auid_domain, sig->domain) != 0)
		SET(res, DKIM_PERMERROR,
		    "i= is a subdomain of d= but the key has t=s");
	else
		return true;
	return false;
}

/* Crypto is valid; what RFC 8301 and the l= rule make of it. */
static void
judge_valid(const struct vsig *s, const struct bodyhash *b, bool valid,
	    struct dkim_sig_result *res)
{
	const char *c = valid ? "signature valid" : "signature did not verify";

	if (s->sig->hash == DKIM_HASH_SHA1)
		SET(res, DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301); %s",
		    c);
	else if (s->sig->key_type == DKIM_KEY_RSA && res->key_bits < 1024)
		SET(res, DKIM_POLICY, "RSA key of %u bits is too short "
		    "(RFC 8301); %s", res->key_bits, c);
	else if (s->sig->has_l && b->total > s->sig->l)
		SET(res, DKIM_POLICY, "l= leaves the body partly unsigned; %s",
		    c);
	else if (!valid)
		SET(res, DKIM_FAIL, "signature did not verify");
	else
		SET(res, DKIM_PASS, "%s", "");
}

static void
judge(struct dkim_verifier *v, const struct vsig *s)
{
	struct dkim_sig_result *res = &v->res[s->idx];
	const struct bodyhash *b;
	EVP_PKEY *pk;

	if (s->key == NULL) {
		SET(res, s->key_result, "%s", s->key_reason);
		return;
	}
	if (!key_acceptable(s, res))
		return;
	if ((pk = key_pkey(s->key)) == NULL) {
		SET(res, DKIM_PERMERROR, "unusable public key in p=");
		return;
	}
	res->key_bits = s->sig->key_type == DKIM_KEY_ED25519 ? 256 :
	    (unsigned)EVP_PKEY_get_bits(pk);
	b = &v->bh[s->bh];
	if (s->sig->has_l && b->total < s->sig->l)
		SET(res, DKIM_FAIL, "l= is longer than the body");
	else if (b->dlen != s->sig->bh_len ||
		 memcmp(b->digest, s->sig->bh, b->dlen) != 0)
		SET(res, DKIM_FAIL, "body hash mismatch");
	else
		judge_valid(s, b, header_verifies(v, s, pk), res);
	EVP_PKEY_free(pk);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dkim_verifier *v = arg;

	(void)fd;
	(void)what;
	v->cb(v->cb_arg);	/* may free v */
}

/* Once finished and every key is in: judge all, then cb. */
static void
maybe_done(struct dkim_verifier *v)
{
	if (!v->finished || v->pending > 0 || v->cb == NULL)
		return;
	for (size_t i = 0; i < v->nsigs; i++)
		judge(v, &v->sigs[i]);
	if (v->ev != NULL) {
		struct timeval tv = {0, 0};
		evtimer_add(v->ev, &tv);
		return;
	}
	v->cb(v->cb_arg);	/* may free v */
}

void
dkim_verifier_finish(struct dkim_verifier *v, dkim_done_cb *cb, void *arg)
{
	if (!v->header_done)
		dkim_verifier_header_end(v);
	if (v->finished)
		return;
	v->finished = true;
	for (size_t i = 0; i < v->nbh; i++) {
		struct bodyhash *b = &v->bh[i];
		b->total = dkim_body_canon_finish(&b->bc);
		if (EVP_DigestFinal_ex(b->md, b->digest, &b->dlen) != 1)
			abort();
	}
	v->cb = cb;
	v->cb_arg = arg;
	/* called from inside: defer cb to the loop */
	if ((v->ev = evtimer_new(dns_resolver_base(v->r), done_cb, v)) == NULL)
		abort();
	maybe_done(v);
	if (v->ev != NULL && v->pending > 0) {
		event_free(v->ev);	/* a DNS answer will call cb */
		v->ev = NULL;
	}
}

size_t
dkim_verifier_results(const struct dkim_verifier *v,
		      const struct dkim_sig_result **res_r)
{
	*res_r = v->res;
	return v->nres;
}

void
dkim_verifier_free(struct dkim_verifier **vp)
{
	struct dkim_verifier *v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nsigs; i++) {
		struct vsig *s = &v->sigs[i];
		dns_query_cancel(s->q);
		free(s->sig);
		free(s->field);
		free(s->key);
	}
	for (size_t i = 0; i < v->nbh; i++)
		EVP_MD_CTX_free(v->bh[i].md);
	if (v->ev != NULL)
		event_free(v->ev);
	dkim_hdrs_clear(&v->hdrs);
	free(v);
	*vp = NULL;
}
