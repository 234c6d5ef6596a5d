/*
 * The DKIM-Signature field and key records (RFC 6376 3.5, 3.6.1; RFC
 * 8463; RFC 8301): see dkim_sig.h.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "mail/dkim_sig.h"
#include "mail/dkim_tags.h"

/* Copies a tag's value, lower-cased, into out; -1 if it does not fit. */
static int
copy_lower(const struct dkim_tag *t, char *out, size_t size)
{
	if (t->value_len >= size)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[t->value_len] = '\0';
	return 0;
}

/* A domain (or selector): dot-separated labels of letters, digits, '-'
 * and '_' (RFC 6376 3.5: sub-domain; '_' is seen in selectors). */
static bool
domain_ok(const char *s)
{
	size_t label = 0, n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0;
}

/* Decodes a base64 value with FWS in it (b=, bh=, p=). */
static long
decode_b64(const struct dkim_tag *t, unsigned char *out, size_t size)
{
	char buf[4096];
	ssize_t n;

	if (dkim_tag_compact(t, buf, sizeof(buf)) < 0)
		return -1;
	if ((n = base64_decode(buf, strlen(buf), out, size)) < 0)
		return -1;
	return (long)n;
}

/* 1 to 12 digits (t=, x=) or up to 76 (l=, capped); -1 if not digits. */
static int
parse_num(const struct dkim_tag *t, size_t maxdigits, uint64_t *v_r)
{
	uint64_t v = 0;

	if (t->value_len == 0 || t->value_len > maxdigits)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (t->value[i] < '0' || t->value[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			v = UINT64_MAX;	/* l= beyond any body */
		else
			v = v * 10 + (uint64_t)(t->value[i] - '0');
	}
	*v_r = v;
	return 0;
}

static int
parse_algorithm(const struct dkim_tag *t, struct dkim_sig *sig)
{
	if (t->value_len >= sizeof(sig->algorithm))
		return -1;
	memcpy(sig->algorithm, t->value, t->value_len);
	sig->algorithm[t->value_len] = '\0';
	if (strcmp(sig->algorithm, "rsa-sha256") == 0) {
		sig->key_type = DKIM_KEY_RSA;
		sig->hash = DKIM_HASH_SHA256;
	} else if (strcmp(sig->algorithm, "rsa-sha1") == 0) {
		sig->key_type = DKIM_KEY_RSA;
		sig->hash = DKIM_HASH_SHA1;
	} else if (strcmp(sig->algorithm, "ed25519-sha256") == 0) {
		sig->key_type = DKIM_KEY_ED25519;
		sig->hash = DKIM_HASH_SHA256;
	} else
		return -1;
	return 0;
}

static int
canon_name(const char *s, size_t n, enum dkim_canon_alg *c)
{
	if (n == 6 && memcmp(s, "simple", 6) == 0)
		*c = DKIM_CANON_SIMPLE;
	else if (n == 7 && memcmp(s, "relaxed", 7) == 0)
		*c = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

static int
parse_canon(const struct dkim_tag *t, struct dkim_sig *sig)
{
	const char *slash = memchr(t->value, '/', t->value_len);

	sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
	if (slash == NULL)
		return canon_name(t->value, t->value_len, &sig->hcanon);
	if (canon_name(t->value, (size_t)(slash - t->value), &sig->hcanon) < 0)
		return -1;
	return canon_name(slash + 1,
			  t->value_len - (size_t)(slash - t->value) - 1,
			  &sig->bcanon);
}

/* h=: names separated by ':', FWS allowed around them; From required. */
static int
parse_h(const struct dkim_tag *t, struct dkim_sig *sig)
{
	char *p, *name;
	bool from = false;

	if (dkim_tag_compact(t, sig->h_buf, sizeof(sig->h_buf)) < 0)
		return -1;
	sig->nh = 0;
	for (p = sig->h_buf; p != NULL;) {
		name = p;
		if ((p = strchr(p, ':')) != NULL)
			*p++ = '\0';
		if (name[0] == '\0' || sig->nh == DKIM_SIG_H_MAX)
			return -1;
		for (const char *c = name; *c != '\0'; c++)
			if ((unsigned char)*c < 33 || (unsigned char)*c > 126)
				return -1;
		if (strcasecmp(name, "from") == 0)
			from = true;
		sig->h[sig->nh++] = name;
	}
	return from ? 0 : -1;
}

/* i=: [local-part] "@" domain, the domain d= or below it. */
static int
parse_auid(const struct dkim_tag *t, struct dkim_sig *sig)
{
	const char *at;
	size_t dl, n;

	if (t == NULL) {
		snprintf(sig->auid, sizeof(sig->auid), "@%s", sig->domain);
		memcpy(sig->auid_domain, sig->domain, sizeof(sig->domain));
		return 0;
	}
	if (dkim_tag_compact(t, sig->auid, sizeof(sig->auid)) < 0 ||
	    (at = strrchr(sig->auid, '@')) == NULL)
		return -1;
	if (strlen(at + 1) >= sizeof(sig->auid_domain))
		return -1;
	for (n = 0; at[1 + n] != '\0'; n++) {
		char c = at[1 + n];
		sig->auid_domain[n] = c >= 'A' && c <= 'Z' ?
		    (char)(c - 'A' + 'a') : c;
	}
	sig->auid_domain[n] = '\0';
	if (!domain_ok(sig->auid_domain))
		return -1;
	dl = strlen(sig->domain);
	if (strcmp(sig->auid_domain, sig->domain) == 0)
		return 0;
	if (n > dl && sig->auid_domain[n - dl - 1] == '.' &&
	    strcmp(sig->auid_domain + n - dl, sig->domain) == 0)
		return 0;
	return -1;
}

/* q=: a list that must name dns/txt. */
static int
parse_q(const struct dkim_tag *t)
{
	char buf[256], *p, *m;

	if (t == NULL)
		return 0;
	if (dkim_tag_compact(t, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p != NULL;) {
		m = p;
		if ((p = strchr(p, ':')) != NULL)
			*p++ = '\0';
		if (strcmp(m, "dns/txt") == 0)
			return 0;
	}
	return -1;
}

/* d=, s=, a= and b='s prefix first, so an error can still name them. */
static int
parse_ids(const struct dkim_tag_list *l, struct dkim_sig *sig,
	  const char **error_r)
{
	const struct dkim_tag *t;

	if ((t = dkim_tags_find(l, "d")) == NULL ||
	    copy_lower(t, sig->domain, sizeof(sig->domain)) < 0 ||
	    !domain_ok(sig->domain)) {
		sig->domain[0] = '\0';
		*error_r = "missing or bad d=";
		return -1;
	}
	if ((t = dkim_tags_find(l, "s")) == NULL ||
	    copy_lower(t, sig->selector, sizeof(sig->selector)) < 0 ||
	    !domain_ok(sig->selector)) {
		sig->selector[0] = '\0';
		*error_r = "missing or bad s=";
		return -1;
	}
	if ((t = dkim_tags_find(l, "b")) != NULL) {
		char full[4096];
		if (dkim_tag_compact(t, full, sizeof(full)) == 0)
			snprintf(sig->b_prefix, sizeof(sig->b_prefix), "%.8s",
				 full);
	}
	if ((t = dkim_tags_find(l, "a")) == NULL ||
	    parse_algorithm(t, sig) < 0) {
		*error_r = t == NULL ? "missing a=" : "unknown algorithm";
		return -1;
	}
	return 0;
}

static int
parse_times(const struct dkim_tag_list *l, struct dkim_sig *sig,
	    const char **error_r)
{
	const struct dkim_tag *t;

	if ((t = dkim_tags_find(l, "l")) != NULL) {
		if (parse_num(t, 76, &sig->l) < 0)
			goto bad;
		sig->has_l = true;
	}
	if ((t = dkim_tags_find(l, "t")) != NULL) {
		if (parse_num(t, 12, &sig->t) < 0)
			goto bad;
		sig->has_t = true;
	}
	if ((t = dkim_tags_find(l, "x")) != NULL) {
		if (parse_num(t, 12, &sig->x) < 0)
			goto bad;
		sig->has_x = true;
	}
	if (sig->has_t && sig->has_x && sig->x < sig->t) {
		*error_r = "x= is before t=";
		return -1;
	}
	return 0;
bad:
	*error_r = "bad number in l=, t= or x=";
	return -1;
}

int
dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig,
	       const char **error_r)
{
	struct dkim_tag_list l;
	const struct dkim_tag *t, *b, *bh;
	long n;

	memset(sig, 0, sizeof(*sig));
	if (dkim_tags_parse(value, len, &l, error_r) < 0)
		return -1;
	if (parse_ids(&l, sig, error_r) < 0)
		return -1;
	if ((t = dkim_tags_find(&l, "v")) == NULL || !dkim_tag_is(t, "1")) {
		*error_r = "missing or unknown v=";
		return -1;
	}
	b = dkim_tags_find(&l, "b");
	bh = dkim_tags_find(&l, "bh");
	if (b == NULL || (n = decode_b64(b, sig->b, sizeof(sig->b))) <= 0) {
		*error_r = "missing or bad b=";
		return -1;
	}
	sig->b_len = (size_t)n;
	if (bh == NULL || (n = decode_b64(bh, sig->bh, sizeof(sig->bh))) <= 0) {
		*error_r = "missing or bad bh=";
		return -1;
	}
	sig->bh_len = (size_t)n;
	if ((t = dkim_tags_find(&l, "c")) != NULL && parse_canon(t, sig) < 0) {
		*error_r = "unknown canonicalization";
		return -1;
	}
	if ((t = dkim_tags_find(&l, "h")) == NULL || parse_h(t, sig) < 0) {
		*error_r = "missing or bad h= (it must name From)";
		return -1;
	}
	if (parse_auid(dkim_tags_find(&l, "i"), sig) < 0) {
		*error_r = "bad i= (not in d=)";
		return -1;
	}
	if (parse_q(dkim_tags_find(&l, "q")) < 0) {
		*error_r = "unknown query method";
		return -1;
	}
	return parse_times(&l, sig, error_r);
}

long
dkim_sig_strip_b(const char *field, size_t len, char *out)
{
	struct dkim_tag_list l;
	const struct dkim_tag *b;
	const char *colon, *err;
	size_t flen = len, head, tail;

	if (flen > 0 && field[flen - 1] == '\n')
		flen--;
	if (flen > 0 && field[flen - 1] == '\r')
		flen--;
	if ((colon = memchr(field, ':', flen)) == NULL)
		return -1;
	if (dkim_tags_parse(colon + 1, (size_t)(field + flen - colon - 1), &l,
			    &err) < 0 ||
	    (b = dkim_tags_find(&l, "b")) == NULL)
		return -1;
	head = (size_t)(b->after_eq - field);
	tail = flen - (size_t)(b->end - field);
	memcpy(out, field, head);
	memcpy(out + head, b->end, tail);
	return (long)(head + tail);
}

/* Whether a ':'-separated list (FWS allowed) has item. */
static bool
list_has(const struct dkim_tag *t, const char *item)
{
	char buf[512], *p, *m;

	if (dkim_tag_compact(t, buf, sizeof(buf)) < 0)
		return false;
	for (p = buf; p != NULL;) {
		m = p;
		if ((p = strchr(p, ':')) != NULL)
			*p++ = '\0';
		if (strcmp(m, item) == 0)
			return true;
	}
	return false;
}

static int
keyrec_type(const struct dkim_tag_list *l, struct dkim_keyrec *k)
{
	const struct dkim_tag *t = dkim_tags_find(l, "k");

	k->key_type = DKIM_KEY_RSA;
	if (t == NULL || dkim_tag_is(t, "rsa"))
		return 0;
	if (dkim_tag_is(t, "ed25519")) {
		k->key_type = DKIM_KEY_ED25519;
		return 0;
	}
	return -1;
}

int
dkim_keyrec_parse(const char *txt, size_t len, struct dkim_keyrec *k,
		  const char **error_r)
{
	struct dkim_tag_list l;
	const struct dkim_tag *t;
	long n;

	memset(k, 0, sizeof(*k));
	if (dkim_tags_parse(txt, len, &l, error_r) < 0)
		return -1;
	if ((t = dkim_tags_find(&l, "v")) != NULL &&
	    (t != &l.v[0] || !dkim_tag_is(t, "DKIM1"))) {
		*error_r = "bad v= in key record";
		return -1;
	}
	if (keyrec_type(&l, k) < 0) {
		*error_r = "unknown key type k=";
		return -1;
	}
	k->allows_sha256 = k->allows_sha1 = true;
	if ((t = dkim_tags_find(&l, "h")) != NULL) {
		k->allows_sha256 = list_has(t, "sha256");
		k->allows_sha1 = list_has(t, "sha1");
	}
	if ((t = dkim_tags_find(&l, "s")) != NULL && !list_has(t, "*") &&
	    !list_has(t, "email")) {
		*error_r = "key not for email (s=)";
		return -1;
	}
	if ((t = dkim_tags_find(&l, "t")) != NULL) {
		k->testing = list_has(t, "y");
		k->strict = list_has(t, "s");
	}
	if ((t = dkim_tags_find(&l, "p")) == NULL) {
		*error_r = "key record without p=";
		return -1;
	}
	if (t->value_len == 0) {
		k->revoked = true;
		return 0;
	}
	if ((n = decode_b64(t, k->p, sizeof(k->p))) <= 0) {
		*error_r = "bad p= in key record";
		return -1;
	}
	k->p_len = (size_t)n;
	return 0;
}
