/*
 * The DKIM signing keys: <dir>/<domain>/<selector>.key, PEM PKCS#8, RSA
 * or Ed25519, read once (by the parent, as root). A key file present is
 * a key godwit signs with. See dkim.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "msgauth/dkim.h"

#define MAX_KEYS 1000

struct dkim_keyring {
	struct dkim_key **keys;	/* by domain, RSA first, then selector */
	size_t n;
};

static void
key_free(struct dkim_key **kp)
{
	struct dkim_key *k = *kp;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->domain);
	free(k->selector);
	free(k->path);
	free(k);
	*kp = NULL;
}

/* A name usable as a domain or selector: [a-z0-9_-] labels. */
static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static struct dkim_key *
key_read(const char *path, const char *domain, const char *selector,
	 char **error_r)
{
	struct dkim_key *k;
	struct stat sb;
	EVP_PKEY *pk;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		*error_r = xasprintf("dkim key %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &sb) < 0 || (sb.st_mode & 077) != 0) {
		fclose(f);
		*error_r = xasprintf("dkim key %s: readable by group or others "
				     "(chmod 600 it)", path);
		return NULL;
	}
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL) {
		*error_r = xasprintf("dkim key %s: not a PEM private key",
				     path);
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pk;
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		k->alg = DKIM_RSA_SHA256;
		k->bits = (unsigned)EVP_PKEY_get_bits(pk);
	} else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		k->alg = DKIM_ED25519_SHA256;
		k->bits = 256;
	} else {
		EVP_PKEY_free(pk);
		free(k);
		*error_r = xasprintf("dkim key %s: neither RSA nor Ed25519",
				     path);
		return NULL;
	}
	if (k->alg == DKIM_RSA_SHA256 && (k->bits < 1024 || k->bits > 4096)) {
		*error_r = xasprintf("dkim key %s: RSA keys must have 1024 to "
				     "4096 bits, not %u", path, k->bits);
		key_free(&k);
		return NULL;
	}
	k->domain = xstrdup(domain);
	k->selector = xstrdup(selector);
	k->path = xstrdup(path);
	return k;
}

static void
keyring_add(struct dkim_keyring *kr, struct dkim_key *k)
{
	kr->keys = xreallocarray(kr->keys, kr->n + 1, sizeof(*kr->keys));
	kr->keys[kr->n++] = k;
}

/* The *.key files of one domain directory. */
static int
load_domain(struct dkim_keyring *kr, const char *dir, const char *domain,
	    char **error_r)
{
	char *path = xasprintf("%s/%s", dir, domain);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if ((d = opendir(path)) == NULL) {
		*error_r = xasprintf("dkim keys %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char *sel, *file;
		struct dkim_key *k;

		if (n <= 4 || strcmp(de->d_name + n - 4, ".key") != 0)
			continue;
		sel = xstrndup(de->d_name, n - 4);
		file = xasprintf("%s/%s", path, de->d_name);
		if (!name_ok(sel)) {
			*error_r = xasprintf("dkim key %s: the selector must "
					     "be lower-case letters, digits, "
					     "'-', '_' and dots", file);
			r = -1;
		} else if (kr->n == MAX_KEYS) {
			*error_r = xasprintf("dkim keys: more than %d", MAX_KEYS);
			r = -1;
		} else if ((k = key_read(file, domain, sel, error_r)) == NULL)
			r = -1;
		else
			keyring_add(kr, k);
		free(sel);
		free(file);
	}
	closedir(d);
	free(path);
	return r;
}

/* A directory entry that is a directory (not following symlinks). */
static bool
is_dir(const char *dir, const struct dirent *de)
{
	struct stat st;
	char *path;
	bool r;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	path = xasprintf("%s/%s", dir, de->d_name);
	r = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
	free(path);
	return r;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct dkim_key *x = *(struct dkim_key *const *)a;
	const struct dkim_key *y = *(struct dkim_key *const *)b;
	int c;

	if ((c = strcmp(x->domain, y->domain)) != 0)
		return c;
	if (x->alg != y->alg)
		return x->alg == DKIM_RSA_SHA256 ? -1 : 1;
	return strcmp(x->selector, y->selector);
}

int
dkim_keyring_load(const char *dir, struct dkim_keyring **kr_r,
		  char **error_r)
{
	struct dkim_keyring *kr = xcalloc(1, sizeof(*kr));
	struct dirent *de;
	DIR *d;
	int r = 0;

	*error_r = NULL;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT) {
			*kr_r = kr;
			return 0;
		}
		*error_r = xasprintf("dkim keys %s: %s", dir, strerror(errno));
		dkim_keyring_free(&kr);
		return -1;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !is_dir(dir, de))
			continue;	/* a stray file is not a domain */
		if (!name_ok(de->d_name)) {
			*error_r = xasprintf("dkim keys %s/%s: not a lower-case "
					     "domain name", dir, de->d_name);
			r = -1;
		} else
			r = load_domain(kr, dir, de->d_name, error_r);
	}
	closedir(d);
	if (r < 0) {
		dkim_keyring_free(&kr);
		return -1;
	}
	if (kr->n > 0)
		qsort(kr->keys, kr->n, sizeof(*kr->keys), key_cmp);
	*kr_r = kr;
	return 0;
}

const struct dkim_key *const *
dkim_keyring_find(const struct dkim_keyring *kr, const char *domain,
		  size_t *n_r)
{
	const char *d = domain;

	*n_r = 0;
	while (d != NULL && *d != '\0') {
		size_t i = 0, n = 0;
		while (i < kr->n && strcasecmp(kr->keys[i]->domain, d) != 0)
			i++;
		while (i + n < kr->n &&
		       strcasecmp(kr->keys[i + n]->domain, d) == 0)
			n++;
		if (n > 0) {
			*n_r = n;
			return (const struct dkim_key *const *)&kr->keys[i];
		}
		if ((d = strchr(d, '.')) != NULL)
			d++;
	}
	return NULL;
}

size_t
dkim_keyring_all(const struct dkim_keyring *kr,
		 const struct dkim_key *const **keys_r)
{
	*keys_r = (const struct dkim_key *const *)kr->keys;
	return kr->n;
}

void
dkim_keyring_free(struct dkim_keyring **krp)
{
	struct dkim_keyring *kr = *krp;

	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->n; i++)
		key_free(&kr->keys[i]);
	free(kr->keys);
	free(kr);
	*krp = NULL;
}

void
dkim_key_free(struct dkim_key **k)
{
	key_free(k);
}

char *
dkim_key_record(const struct dkim_key *k)
{
	unsigned char raw[64], *der = NULL;
	size_t rawlen = sizeof(raw);
	char *b64, *rec;
	int n;

	if (k->alg == DKIM_ED25519_SHA256) {
		if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1)
			abort();
		b64 = base64_encode_alloc(raw, rawlen);
	} else {
		if ((n = i2d_PUBKEY(k->pkey, &der)) <= 0)
			abort();
		b64 = base64_encode_alloc(der, (size_t)n);
		OPENSSL_free(der);
	}
	rec = xasprintf("v=DKIM1; k=%s; p=%s",
			k->alg == DKIM_ED25519_SHA256 ? "ed25519" : "rsa", b64);
	free(b64);
	return rec;
}

static EVP_PKEY *
key_generate(enum dkim_alg alg)
{
	if (alg == DKIM_ED25519_SHA256)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

/* The PEM into a temporary file, then linked to its name: a key is
 * never overwritten, and never seen half-written. */
static int
key_write(EVP_PKEY *pk, const char *ddir, const char *path, char **error_r)
{
	char *tmp = xasprintf("%s/.tmp.%ld", ddir, (long)getpid());
	int fd, r = -1;
	FILE *f;

	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0
	    || (f = fdopen(fd, "w")) == NULL) {
		*error_r = xasprintf("%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return -1;
	}
	if (PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(f) != 0 || fsync(fd) < 0)
		*error_r = xasprintf("%s: cannot write the key", tmp);
	else if (link(tmp, path) < 0)
		*error_r = errno == EEXIST ?
		    xasprintf("%s exists: not overwritten (remove it first "
			      "to replace the key)", path) :
		    xasprintf("%s: %s", path, strerror(errno));
	else if (fsync_dir(ddir) < 0)
		*error_r = xasprintf("%s: fsync: %s", ddir, strerror(errno));
	else
		r = 0;
	fclose(f);
	(void)unlink(tmp);
	free(tmp);
	return r;
}

/* dir (the keyring) and dir/domain, 0700, owned by whoever makes them. */
static int
key_dirs(const char *dir, const char *ddir, char **error_r)
{
	const char *const dirs[] = {dir, ddir};

	for (size_t i = 0; i < 2; i++) {
		if (mkdir_p(dirs[i], 0700) < 0 || chmod(dirs[i], 0700) < 0) {
			*error_r = xasprintf("%s: %s", dirs[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
dkim_key_create(const char *dir, const char *domain, const char *selector,
		enum dkim_alg alg, struct dkim_key **key_r, char **error_r)
{
	char *ddir, *path;
	struct dkim_key *k;
	EVP_PKEY *pk;

	*error_r = NULL;
	if (!name_ok(domain) || !name_ok(selector)) {
		*error_r = xasprintf("bad domain or selector \"%s\" / \"%s\" "
				     "(lower-case letters, digits, '-', '_', "
				     "dots)", domain, selector);
		return -1;
	}
	ddir = xasprintf("%s/%s", dir, domain);
	path = xasprintf("%s/%s.key", ddir, selector);
	if (access(path, F_OK) == 0) {
		*error_r = xasprintf("%s exists: not overwritten (remove it "
				     "first to replace the key)", path);
		goto fail;
	}
	if (key_dirs(dir, ddir, error_r) < 0)
		goto fail;
	if ((pk = key_generate(alg)) == NULL) {
		*error_r = xstrdup("key generation failed");
		goto fail;
	}
	if (key_write(pk, ddir, path, error_r) < 0) {
		EVP_PKEY_free(pk);
		goto fail;
	}
	EVP_PKEY_free(pk);
	k = key_read(path, domain, selector, error_r);
	free(ddir);
	free(path);
	if (k == NULL)
		return -1;
	*key_r = k;
	return 0;
fail:
	free(ddir);
	free(path);
	return -1;
}
