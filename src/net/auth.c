/* SASL credentials from the user database, and the sender policy. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <time.h>

#include "net/auth.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/loopq.h"
#include "lib/workq.h"
#include "store/password.h"
#include "store/userdb.h"

int
auth_normalize(const char *authcid, char *buf, size_t size)
{
	const char *at = strrchr(authcid, '@');

	if (at == NULL || at == authcid || at[1] == '\0' ||
	    strlcpy_checked(buf, authcid, size) < 0)
		return -1;
	ascii_lower(buf);
	return 0;
}

/*
 * An unknown user costs the same hash computation as a known one, so the
 * time of a reply does not tell which accounts exist.
 */
static const char *
dummy_hash(void)
{
	static char *hash;
	const char *err;

	if (hash == NULL)
		hash = password_hash("godwit-dummy-password", &err);
	return hash;
}

/*
 * Successful password checks are remembered for a while (Dovecot's
 * auth_cache does the same), so that a client that logs in every few
 * minutes costs one yescrypt computation an hour instead of one per login.
 * An entry holds HMAC-SHA-256 of the password under a random per-process
 * key and SHA-256 of the stored hash (a password change makes it stale).
 * Failures are never cached: every wrong password pays the full hash.
 *
 * Two times per entry. `expires` (an hour after the hash was computed):
 * while the database still returns the same hash, a matching password
 * skips the hash. `confirmed_ms` (the last time the database returned that
 * hash): within auth.cache_ttl of it, a matching password skips the
 * database lookup too, so a password change or a deleted user reaches
 * this node up to cache_ttl late (0: always ask the database). A password
 * that does not match always goes to the database, and a database that
 * is down does not stop a login still within cache_ttl.
 * Only the auth thread touches the cache.
 */
#define CACHE_SIZE 1024
#define CACHE_TTL_S 3600

struct cache_entry {
	char account[320];
	unsigned char hash_digest[32];
	unsigned char pw_mac[32];
	time_t expires;		/* the hash may be skipped until then */
	uint64_t confirmed_ms;	/* last seen in the database (mono_ms) */
};

static struct cache_entry *cache;
static unsigned char cache_key[32];
static uint64_t cache_lookup_ttl_ms;	/* auth.cache_ttl; set before the
					 * thread starts */

void
auth_cache_set_ttl(uint64_t seconds)
{
	cache_lookup_ttl_ms =
	    (seconds > CACHE_TTL_S ? CACHE_TTL_S : seconds) * 1000;
}

static unsigned
cache_slot(const char *account)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a: placement only */

	for (const char *p = account; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (unsigned)(h % CACHE_SIZE);
}

static void
cache_mac(const char *password, unsigned char mac[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), cache_key, sizeof(cache_key),
	     (const unsigned char *)password, strlen(password), mac, &len);
}

/* The account's entry, or NULL. */
static struct cache_entry *
cache_find(const char *account)
{
	struct cache_entry *e;

	if (cache == NULL)
		return NULL;
	e = &cache[cache_slot(account)];
	return strcmp(e->account, account) == 0 ? e : NULL;
}

/* Within cache_ttl of the database's last word, and the same password? */
static bool
cache_fresh(const char *account, const char *password)
{
	struct cache_entry *e = cache_find(account);
	unsigned char mac[32];
	uint64_t now = mono_ms();

	if (e == NULL || e->expires < time(NULL) || now < e->confirmed_ms ||
	    now - e->confirmed_ms >= cache_lookup_ttl_ms)
		return false;
	cache_mac(password, mac);
	return CRYPTO_memcmp(mac, e->pw_mac, 32) == 0;
}

/* The database returned `hash`: may the hash computation be skipped? */
static bool
cache_hit(const char *account, const char *hash, const char *password)
{
	struct cache_entry *e = cache_find(account);
	unsigned char digest[32], mac[32];

	if (e == NULL || e->expires < time(NULL))
		return false;
	SHA256((const unsigned char *)hash, strlen(hash), digest);
	cache_mac(password, mac);
	if (CRYPTO_memcmp(digest, e->hash_digest, 32) != 0 ||
	    CRYPTO_memcmp(mac, e->pw_mac, 32) != 0)
		return false;
	e->confirmed_ms = mono_ms();
	return true;
}

static void
cache_store(const char *account, const char *hash, const char *password)
{
	struct cache_entry *e;

	if (cache == NULL) {
		if (RAND_bytes(cache_key, sizeof(cache_key)) != 1)
			return;
		cache = xcalloc(CACHE_SIZE, sizeof(*cache));
	}
	e = &cache[cache_slot(account)];
	snprintf(e->account, sizeof(e->account), "%s", account);
	SHA256((const unsigned char *)hash, strlen(hash), e->hash_digest);
	cache_mac(password, e->pw_mac);
	e->confirmed_ms = mono_ms();
	e->expires = time(NULL) + CACHE_TTL_S;
}

/* The database says the account is gone: so is its entry. */
static void
cache_forget(const char *account)
{
	struct cache_entry *e = cache_find(account);

	if (e != NULL)
		OPENSSL_cleanse(e, sizeof(*e));
}

static int
verify_password(void *ctx, const char *user, const char *password)
{
	struct userdb *db = ctx;
	char account[320], *hash = NULL;
	int r;

	if (auth_normalize(user, account, sizeof(account)) < 0)
		account[0] = '\0';
	else if (cache_fresh(account, password))
		return 1;
	r = account[0] == '\0'
		    ? 0
		    : db->ops->password_hash(db, account, &hash);
	if (r < 0)
		return -1;
	if (r == 0 || hash == NULL) {
		/* unknown: the same cost as a known user */
		if (account[0] != '\0')
			cache_forget(account);
		if (dummy_hash() != NULL)
			password_verify(password, dummy_hash());
		free(hash);
		return 0;
	}
	if (cache_hit(account, hash, password)) {
		free(hash);
		return 1;
	}
	r = password_verify(password, hash);
	if (r == 1)
		cache_store(account, hash, password);
	free(hash);
	return r < 0 ? -1 : r;
}

static int
scram_secret(void *ctx, const char *user, struct sasl_scram_secret *out)
{
	struct userdb *db = ctx;
	char account[320], *text = NULL;
	int r;

	if (auth_normalize(user, account, sizeof(account)) < 0)
		return 0;
	r = db->ops->scram_secret(db, account, &text);
	if (r <= 0)
		return r;
	r = sasl_scram_parse(text, out) == 0 ? 1 : -1;
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return r;
}

static int
cram_secret(void *ctx, const char *user, char **secret_r)
{
	struct userdb *db = ctx;
	char account[320];

	if (auth_normalize(user, account, sizeof(account)) < 0)
		return 0;
	return db->ops->cram_secret(db, account, secret_r);
}

const struct sasl_creds auth_userdb_creds = {
	.verify_password = verify_password,
	.scram_secret = scram_secret,
	.cram_secret = cram_secret,
};

int
auth_sender_own(const char *account, const char *sender, char delimiter)
{
	char addr[320], *at, *plus;

	if (auth_normalize(sender, addr, sizeof(addr)) < 0)
		return 0;
	if (strcmp(addr, account) == 0)
		return 1;
	/* user+tag@domain */
	at = strrchr(addr, '@');
	if (delimiter != '\0' && (plus = memchr(addr, delimiter,
						(size_t)(at - addr))) != NULL) {
		char base[320];
		snprintf(base, sizeof(base), "%.*s%s", (int)(plus - addr), addr,
			 at);
		if (strcmp(base, account) == 0)
			return 1;
	}
	return -1;
}

int
auth_sender_allowed(struct userdb *db, const char *account,
		    const char *sender, char delimiter)
{
	char addr[320];
	struct userdb_alias_list l = {0};
	int r;

	if ((r = auth_sender_own(account, sender, delimiter)) >= 0)
		return r;
	auth_normalize(sender, addr, sizeof(addr));
	/* an alias that delivers to the account */
	r = userdb_alias_lookup(db, addr, &l);
	if (r <= 0)
		return r;
	r = 0;
	for (size_t i = 0; i < l.n; i++) {
		char t[320];
		if (auth_normalize(l.targets[i], t, sizeof(t)) == 0 &&
		    strcmp(t, account) == 0)
			r = 1;
	}
	userdb_alias_list_clear(&l);
	return r;
}

/* ---- the server secret ------------------------------------------------ */

/* Reads exactly SERVER_SECRET_LEN octets from an open secret file. */
static int
secret_read(int fd, const char *path, unsigned char *key, char **error_r)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		*error_r = xasprintf("%s: readable by group or others (mode "
				     "%03o); chmod 600 it",
				     path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	n = st.st_size == SERVER_SECRET_LEN ? read(fd, key, SERVER_SECRET_LEN)
					     : 0;
	if (n != SERVER_SECRET_LEN) {
		*error_r = xasprintf("%s: %s", path,
				     n < 0 ? strerror(errno)
					   : "not a server secret (wrong size); "
					     "remove it to make a new one");
		return -1;
	}
	return 0;
}

/*
 * A new secret is written whole to a temporary file, made durable, and
 * then linked to its name, so a crash never leaves a short secret behind
 * and two starts at once agree on one (link() fails for the second).
 */
static int
secret_create(const char *data_dir, const char *path, char **error_r)
{
	unsigned char key[SERVER_SECRET_LEN];
	char *tmp = xasprintf("%s/.server-secret.%d", data_dir, (int)getpid());
	size_t off = 0;
	ssize_t n;
	int fd, r = -1;

	while (off < sizeof(key)) {
		n = getrandom(key + off, sizeof(key) - off, 0);
		if (n < 0 && errno != EINTR)
			goto out_key;
		off += n > 0 ? (size_t)n : 0;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		goto out_key;
	if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) ||
	    fsync(fd) < 0) {
		close(fd);
		goto out_unlink;
	}
	if (close(fd) < 0)
		goto out_unlink;
	if (link(tmp, path) < 0 && errno != EEXIST)
		goto out_unlink;
	if (fsync_dir(data_dir) < 0)
		goto out_unlink;
	r = 0;
out_unlink:
	if (r < 0)
		*error_r = xasprintf("%s: %s", path, strerror(errno));
	unlink(tmp);
	free(tmp);
	OPENSSL_cleanse(key, sizeof(key));
	return r;
out_key:
	*error_r = xasprintf("%s: %s", path, strerror(errno));
	free(tmp);
	OPENSSL_cleanse(key, sizeof(key));
	return -1;
}

int
auth_secret_load(const char *data_dir, char **error_r)
{
	static const char label[] = "godwit scram decoy salt v1";
	unsigned char secret[SERVER_SECRET_LEN], key[32];
	unsigned int len = sizeof(key);
	char *path = xasprintf("%s/server-secret", data_dir);
	int fd, r = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (secret_create(data_dir, path, error_r) < 0)
			goto out;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	r = secret_read(fd, path, secret, error_r);
	close(fd);
	if (r < 0)
		goto out;
	/* a key of its own per use, so no two uses ever share one */
	if (HMAC(EVP_sha256(), secret, sizeof(secret),
		 (const unsigned char *)label, sizeof(label) - 1, key,
		 &len) == NULL) {
		*error_r = xasprintf("%s: cannot derive a key", path);
		r = -1;
		goto out;
	}
	sasl_set_decoy_key(key);
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(key, sizeof(key));
	free(path);
	return r;
}

/* ---- the auth thread -------------------------------------------------- */

struct authq {
	struct userdb *db;	/* used by the thread only */
	struct workq *wq;	/* the auth thread: one job at a time */
	struct loopq *back;	/* finished steps, to the loop */
};

/* The auth thread: one step, then the job goes back to the loop. */
static void
authq_run(void *arg, void **items, size_t n)
{
	struct authq *q = arg;
	struct auth_job *job = items[0];

	(void)n;
	job->challenge = NULL;
	job->status = sasl_step(job->sasl, job->line, &job->challenge);
	loopq_put(q->back, items, 1);
}

static void
job_free(struct auth_job *job)
{
	sasl_free(&job->sasl);
	free(job->challenge);
	if (job->line != NULL) {
		OPENSSL_cleanse(job->line, strlen(job->line));
		free(job->line);
	}
	free(job);
}

/* Loop thread: a finished step to its session. */
static void
authq_deliver(void *arg, void *item)
{
	struct auth_job *job = item;

	(void)arg;
	if (job->done != NULL)
		job->done(job, job->arg);	/* takes sasl, challenge */
	job_free(job);
}

struct authq *
authq_new(struct event_base *base, const struct userdb_config *udb,
	  char **error_r)
{
	struct authq *q = xcalloc(1, sizeof(*q));

	if (userdb_open(udb, true, &q->db, error_r) < 0) {
		free(q);
		return NULL;
	}
	q->back = loopq_new(base, authq_deliver, q);
	q->wq = workq_start("auth", 1, authq_run, q);
	return q;
}

void *
authq_creds_ctx(struct authq *q)
{
	return q->db;
}

void
authq_submit(struct authq *q, struct auth_job *job)
{
	job->next = NULL;
	workq_submit(q->wq, job);
}

void
authq_free(struct authq **qp)
{
	struct authq *q = *qp;

	if (q == NULL)
		return;
	workq_stop(&q->wq);
	loopq_free(&q->back);
	userdb_close(&q->db);
	if (cache != NULL) {
		OPENSSL_cleanse(cache, CACHE_SIZE * sizeof(*cache));
		free(cache);
		cache = NULL;
	}
	free(q);
	*qp = NULL;
}
