/*
 * godwit dkim keygen|sign|list: the DKIM signing keys under
 * <data_dir>/dkim/<domain>/<selector>.key (msgauth/dkim.h). A key file
 * present is a key godwit signs with; to retire a selector, remove its
 * file and reload.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/xalloc.h"
#include "mail/mail_header.h"
#include "msgauth/dkim.h"
#include "ops/dns_records.h"

#define SIGN_MAX_MESSAGE (64u * 1024 * 1024)

static const char usage_dkim_text[] =
	"usage: godwit dkim keygen DOMAIN [--selector S] "
	"[--algorithm rsa|ed25519]\n"
	"       godwit dkim sign [--domain DOMAIN] < message\n"
	"       godwit dkim list\n";

static char *
keys_dir(const struct config *config)
{
	return xasprintf("%s/dkim", config->data_dir);
}

/* `S._domainkey.D. IN TXT "..." "..."`: strings of at most 255. */
static void
print_record(const struct dkim_key *k)
{
	char *rec = dkim_key_record(k), *txt = dns_txt_strings(rec);

	printf("%s._domainkey.%s. IN TXT %s\n", k->selector, k->domain, txt);
	free(txt);
	free(rec);
}

static const char *
alg_name(enum dkim_alg a)
{
	return a == DKIM_RSA_SHA256 ? "rsa" : "ed25519";
}

static int
keygen_one(const struct config *config, const char *domain,
	   const char *selector, enum dkim_alg alg)
{
	char *dir = keys_dir(config), *err = NULL;
	struct dkim_key *k;
	int r;

	r = dkim_key_create(dir, domain, selector, alg, &k, &err);
	free(dir);
	if (r < 0)
		return cli_fail_free(&err);
	print_record(k);
	dkim_key_free(&k);
	return 0;
}

/* Both keys or none: refuse before making the first if the second exists. */
static int
both_free(const struct config *config, const char *domain, const char *sel)
{
	static const char *const sfx[] = {"rsa", "ed25519"};

	for (size_t i = 0; i < 2; i++) {
		char *path = xasprintf("%s/dkim/%s/%s-%s.key", config->data_dir,
				       domain, sel, sfx[i]);
		bool exists = access(path, F_OK) == 0;
		if (exists)
			cli_fail("%s exists: not overwritten (remove it first "
				 "to replace the key)", path);
		free(path);
		if (exists)
			return 1;
	}
	return 0;
}

static int
cmd_keygen(const struct config *config, int argc, char **argv)
{
	const char *sel = NULL, *alg = NULL;
	char *domain, selbuf[300], month[16];
	time_t now = time(NULL);
	int r = 0;

	if (argc < 3)
		return cli_usage(usage_dkim_text);
	for (int i = 3; i < argc; i += 2) {
		if (i + 1 >= argc)
			return cli_usage(usage_dkim_text);
		if (strcmp(argv[i], "--selector") == 0)
			sel = argv[i + 1];
		else if (strcmp(argv[i], "--algorithm") == 0)
			alg = argv[i + 1];
		else
			return cli_usage(usage_dkim_text);
	}
	if (alg != NULL && strcmp(alg, "rsa") != 0 &&
	    strcmp(alg, "ed25519") != 0)
		return cli_usage(usage_dkim_text);
	if ((domain = cli_parse_domain(argv[2])) == NULL)
		return 1;
	if (cli_prepare_layout(config) != 0) {
		free(domain);
		return 1;
	}
	strftime(month, sizeof(month), "g%Y%m", gmtime(&now));
	if (sel == NULL)
		sel = month;
	if (alg != NULL)
		r = keygen_one(config, domain, sel,
			       strcmp(alg, "rsa") == 0 ? DKIM_RSA_SHA256 :
			       DKIM_ED25519_SHA256);
	else if ((r = both_free(config, domain, sel)) == 0) {
		snprintf(selbuf, sizeof(selbuf), "%s-rsa", sel);
		r = keygen_one(config, domain, selbuf, DKIM_RSA_SHA256);
		snprintf(selbuf, sizeof(selbuf), "%s-ed25519", sel);
		if (r == 0)
			r = keygen_one(config, domain, selbuf,
				       DKIM_ED25519_SHA256);
	}
	free(domain);
	return r;
}

static int
load_keys(const struct config *config, struct dkim_keyring **kr_r)
{
	char *dir = keys_dir(config), *err = NULL;
	int r = dkim_keyring_load(dir, kr_r, &err);

	free(dir);
	return r < 0 ? cli_fail_free(&err) : 0;
}

static int
cmd_list(const struct config *config, int argc)
{
	const struct dkim_key *const *keys;
	struct dkim_keyring *kr;
	size_t n;

	if (argc != 2)
		return cli_usage(usage_dkim_text);
	if (load_keys(config, &kr) != 0)
		return 1;
	n = dkim_keyring_all(kr, &keys);
	for (size_t i = 0; i < n; i++) {
		printf("%s %s %s %u ", keys[i]->domain, keys[i]->selector,
		       alg_name(keys[i]->alg), keys[i]->bits);
		print_record(keys[i]);
	}
	dkim_keyring_free(&kr);
	return 0;
}

/* stdin, CRLF line ends made LF (the stored form). NULL if too big. */
static char *
read_message(size_t *len_r)
{
	size_t cap = 65536, len = 0, n, o = 0;
	char *buf = xmalloc(cap);

	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap) {
			if (cap >= SIGN_MAX_MESSAGE) {
				free(buf);
				return NULL;
			}
			cap *= 2;
			buf = xreallocarray(buf, cap, 1);
		}
	}
	for (size_t i = 0; i < len; i++)
		if (!(buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n'))
			buf[o++] = buf[i];
	*len_r = o;
	return buf;
}

/* The domain of the first address in the From field, or NULL. */
static char *
from_domain(const char *msg, size_t len)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	struct mail_address_list l;
	const char *err, *at;
	char *v, *d = NULL;

	mail_header_iter_init(&it, msg, len);
	while (mail_header_next(&it, &f, &err) == 1) {
		if (!mail_header_name_is(&f, "From"))
			continue;
		v = mail_header_unfold(&f);
		if (mail_address_list_parse(v, strlen(v), &l, &err) == 0) {
			if (l.n > 0 && (at = strrchr(l.v[0].addr, '@')) != NULL)
				d = xstrdup(at + 1);
			mail_address_list_clear(&l);
		}
		free(v);
		break;
	}
	return d;
}

static int
sign_with(const struct dkim_keyring *kr, const char *domain, const char *msg,
	  size_t len)
{
	const struct dkim_key *const *keys;
	char *sigs, *err = NULL;
	size_t n;

	if ((keys = dkim_keyring_find(kr, domain, &n)) == NULL)
		return cli_fail("no DKIM key for %s (godwit dkim keygen %s)",
				domain, domain);
	if ((sigs = dkim_sign_message(msg, len, keys, n, time(NULL), &err))
	    == NULL)
		return cli_fail_free(&err);
	fputs(sigs, stdout);
	fwrite(msg, 1, len, stdout);
	free(sigs);
	return fflush(stdout) == 0 ? 0 : cli_fail("writing the message failed");
}

static int
cmd_sign(const struct config *config, int argc, char **argv)
{
	struct dkim_keyring *kr = NULL;
	char *msg, *domain = NULL;
	size_t len;
	int r;

	if (argc == 4 && strcmp(argv[2], "--domain") == 0) {
		if ((domain = cli_parse_domain(argv[3])) == NULL)
			return 1;
	} else if (argc != 2)
		return cli_usage(usage_dkim_text);
	if ((msg = read_message(&len)) == NULL) {
		free(domain);
		return cli_fail("the message is larger than %u octets",
				SIGN_MAX_MESSAGE);
	}
	if (domain == NULL && (domain = from_domain(msg, len)) == NULL)
		r = cli_fail("the message has no From address with a domain "
			     "(give --domain)");
	else if ((r = load_keys(config, &kr)) == 0)
		r = sign_with(kr, domain, msg, len);
	dkim_keyring_free(&kr);
	free(domain);
	free(msg);
	return r;
}

int
cmd_dkim(const struct config *config, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(usage_dkim_text);
	if (strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(config, argc, argv);
	if (strcmp(argv[1], "sign") == 0)
		return cmd_sign(config, argc, argv);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(config, argc);
	return cli_usage(usage_dkim_text);
}
