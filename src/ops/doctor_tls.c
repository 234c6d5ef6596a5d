/*
 * godwit doctor, the certificates (ops/doctor_private.h): each of
 * tls.certificates read as the server reads it, and checked for what
 * makes clients refuse it: expired or not yet valid, expiring within
 * the warning window, no certificate naming the host name, not issued
 * by a CA of the system's store.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "daemon/config.h"
#include "ops/doctor_private.h"

/* The PEM chain of path: leaf first. NULL when none can be read. */
static STACK_OF(X509) *
read_chain(const char *path)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL || chain == NULL) {
		if (f != NULL)
			fclose(f);
		sk_X509_free(chain);
		return NULL;
	}
	while (sk_X509_num(chain) < 16 &&
	       (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		sk_X509_push(chain, x);
	fclose(f);
	if (sk_X509_num(chain) == 0) {
		sk_X509_free(chain);
		return NULL;
	}
	return chain;
}

static void
time_text(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, size, "?");
}

static void
check_dates(struct doctor *d, const char *path, X509 *leaf)
{
	const ASN1_TIME *nb = X509_get0_notBefore(leaf);
	const ASN1_TIME *na = X509_get0_notAfter(leaf);
	char until[64];
	int days = 0, secs = 0;

	time_text(na, until, sizeof(until));
	if (X509_cmp_current_time(nb) > 0) {
		doctor_say(d, DOCTOR_FAIL, "tls", "%s: not valid yet (the "
			   "clock, or a certificate issued for later): check "
			   "the time and the certificate", path);
		return;
	}
	if (X509_cmp_current_time(na) < 0) {
		doctor_say(d, DOCTOR_FAIL, "tls", "%s: EXPIRED on %s: renew "
			   "it (certbot renew) and reload (systemctl reload "
			   "godwit)", path, until);
		return;
	}
	ASN1_TIME_diff(&days, &secs, NULL, na);
	if (days < (int)d->o.cert_days)
		doctor_say(d, DOCTOR_WARN, "tls", "%s: expires in %d day%s "
			   "(%s): renew it now", path, days,
			   days == 1 ? "" : "s", until);
	else
		doctor_say(d, DOCTOR_OK, "tls", "%s: valid until %s (%d "
			   "days)", path, until, days);
}

/* Whether the system's CAs vouch for the chain. */
static bool
check_trust(STACK_OF(X509) *chain, char *why, size_t size)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;

	if (st != NULL && ctx != NULL &&
	    X509_STORE_set_default_paths(st) == 1 &&
	    X509_STORE_CTX_init(ctx, st, sk_X509_value(chain, 0), chain) ==
		    1) {
		/* dates are check_dates()'s: judge the issuer only */
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
		ok = X509_verify_cert(ctx) == 1;
		snprintf(why, size, "%s", X509_verify_cert_error_string(
			X509_STORE_CTX_get_error(ctx)));
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

void
doctor_tls(struct doctor *d)
{
	const struct tls_config *t = &d->c->tls;
	const char *host = d->c->hostname;
	STACK_OF(X509) *chain;
	bool named = false;
	char why[200];
	size_t i;

	if (t->ncerts == 0) {
		doctor_say(d, DOCTOR_WARN, "tls", "no tls.certificates: port "
			   "25 offers no STARTTLS and mail arrives in the "
			   "clear; add a certificate for %s", host);
		return;
	}
	for (i = 0; i < t->ncerts; i++) {
		const char *path = t->certs[i].cert;
		if ((chain = read_chain(path)) == NULL) {
			doctor_say(d, DOCTOR_FAIL, "tls", "%s: no certificate "
				   "can be read from it: fix tls.certificates",
				   path);
			continue;
		}
		check_dates(d, path, sk_X509_value(chain, 0));
		if (X509_check_host(sk_X509_value(chain, 0), host, 0, 0,
				    NULL) == 1)
			named = true;
		if (!check_trust(chain, why, sizeof(why)))
			doctor_say(d, DOCTOR_WARN, "tls", "%s: not issued by a "
				   "CA the system trusts (%s): servers that "
				   "verify (MTA-STS, DANE) and mail clients "
				   "refuse it; get one from Let's Encrypt",
				   path, why);
		sk_X509_pop_free(chain, X509_free);
	}
	if (named)
		doctor_say(d, DOCTOR_OK, "tls", "a certificate names %s", host);
	else
		doctor_say(d, DOCTOR_FAIL, "tls", "no certificate names the "
			   "host name %s: clients that verify refuse it; get "
			   "one for %s (its subjectAltName)", host, host);
}

/* Whether x is the leaf of one of tls.certificates. */
static bool
configured(const struct doctor *d, X509 *x)
{
	const struct tls_config *t = &d->c->tls;
	STACK_OF(X509) *chain;
	bool same = false;
	size_t i;

	for (i = 0; i < t->ncerts && !same; i++) {
		if ((chain = read_chain(t->certs[i].cert)) == NULL)
			continue;
		same = X509_cmp(sk_X509_value(chain, 0), x) == 0;
		sk_X509_pop_free(chain, X509_free);
	}
	return same;
}

void
doctor_tls_served(struct doctor *d, const char *where, SSL *ssl)
{
	X509 *x = SSL_get1_peer_certificate(ssl);
	char until[64];

	if (x == NULL)
		return;
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		time_text(X509_get0_notAfter(x), until, sizeof(until));
		doctor_say(d, DOCTOR_FAIL, "tls", "%s serves a certificate "
			   "that EXPIRED on %s: renew it and reload", where,
			   until);
	} else if (!configured(d, x))
		doctor_say(d, DOCTOR_WARN, "tls", "%s serves a certificate "
			   "that is not the one in tls.certificates: renewed "
			   "without a reload? (systemctl reload godwit)", where);
	X509_free(x);
}
