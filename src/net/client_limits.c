/*
 * Per-client-IP connection limits shared by every worker process: one
 * anonymous shared mapping (created by the parent before it forks) holding
 * a header with a robust process-shared mutex and per-worker totals, then a
 * set-associative table of per-address entries. See client_limits.h for the
 * model.
 *
 * Everything that can be done without the table (the address key, its hash,
 * range checks) is done before the mutex is taken; under the mutex there is
 * only arithmetic on the mapping, no system call and no allocation, so the
 * critical section is a few hundred nanoseconds even with many workers.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "lib/cidr.h"
#include "net/client_limits.h"
#include "lib/log.h"

#define LIMITS_WAYS 8

/*
 * What an entry's key names. The kind is part of an entry's identity
 * (lookup() compares it with the key), so an account can never share an
 * entry with an address, whatever bytes the two keys hold.
 */
enum entry_kind {
	KIND_IP = 1,	  /* key: client_key(), IPv4 as ::ffff:a.b.c.d */
	KIND_ACCOUNT = 2, /* key: account_key() */
	KIND_WIDE = 3,	  /* key: wide_key(), an IPv6 client's wide network */
	KIND_SENDER = 4,  /* key: account_key(); sending counts */
	KIND_USER = 5,	  /* key: account_key(); IMAP sessions (conns) */
};

struct limits_entry {
	uint8_t key[16];
	uint64_t last_used_ms; /* for least-recently-used replacement */
	uint64_t window_start_ms;
	uint64_t greet_until_ms; /* early-talker pass valid while now < this */
	uint64_t auth_window_end_ms; /* failures count until then */
	uint64_t ban_until_ms;	 /* KIND_IP, KIND_WIDE: refused until */
	uint64_t rate_block_until_ms; /* another node saw the rate spent */
	uint32_t window_count;   /* attempts counted in the current window */
	uint32_t auth_failures;  /* failures in the current auth window */
	/* KIND_SENDER: fixed windows of an hour and a day, and a block */
	uint64_t send_hour_end_ms, send_day_end_ms, send_block_until_ms;
	uint32_t send_count[LIMITS_SEND_NCOUNTS]; /* enum limits_send_verdict - 1 */
	uint8_t send_block_reason; /* enum limits_send_verdict */
	bool in_use;
	uint8_t kind; /* enum entry_kind */
	uint16_t conns[LIMITS_MAX_WORKERS]; /* open connections per worker */
};

/*
 * The mapping itself. seed, nsets and map_size are written once by
 * limits_create() before any fork and only read afterwards, so they are
 * read without the mutex; everything else is guarded by mu.
 */
struct limits {
	pthread_mutex_t mu;
	uint64_t seed[2];	     /* set index */
	uint64_t account_seed[2][2]; /* account keys: two halves */
	size_t map_size;
	size_t nsets;
	unsigned v6_prefix;	 /* client_key() */
	unsigned v6_wide_prefix; /* wide_key(); 0: none */
	uint32_t totals[LIMITS_MAX_WORKERS];
	uint32_t stress;	     /* written under mu, read atomically */
	/* authentication failures of the whole server, for the alerts */
	uint64_t auth_all_end_ms;    /* the window's end */
	uint32_t auth_all_ips;	     /* addresses that began failing in it */
	uint32_t send_gen;	     /* + 1 at every sending block; atomic */
	struct limits_entry entries[];
};

/*
 * SipHash-2-4. The set index comes from a keyed hash with a key drawn at
 * start-up, so a client choosing its source addresses (or account names)
 * cannot aim them all at one set and push other entries out of the table;
 * account names are hashed the same way into their keys. Written out here
 * rather than through OpenSSL's EVP_MAC because that costs a context
 * allocation per call, and the inputs are short.
 *
 * With fold, ASCII capitals are hashed as lower case, so an account name
 * is folded without a copy (and so without a length limit).
 */
static uint64_t
rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t
load_le(const uint8_t *p, size_t n, bool fold)
{
	uint64_t v = 0;
	size_t i;

	for (i = n; i-- > 0;) {
		uint8_t c = p[i];

		if (fold && c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		v = (v << 8) | c;
	}
	return v;
}

#define SIPROUND()                                                             \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = rotl64(v1, 13);                                           \
		v1 ^= v0;                                                      \
		v0 = rotl64(v0, 32);                                           \
		v2 += v3;                                                      \
		v3 = rotl64(v3, 16);                                           \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = rotl64(v3, 21);                                           \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = rotl64(v1, 17);                                           \
		v1 ^= v2;                                                      \
		v2 = rotl64(v2, 32);                                           \
	} while (0)

static uint64_t
siphash24(const uint64_t k[2], const uint8_t *in, size_t len, bool fold)
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k[1] ^ 0x7465646279746573ULL;
	uint64_t m;
	size_t i;

	for (i = 0; len - i >= 8; i += 8) {
		m = load_le(in + i, 8, fold);
		v3 ^= m;
		SIPROUND();
		SIPROUND();
		v0 ^= m;
	}
	m = ((uint64_t)len << 56) | load_le(in + i, len - i, fold);
	v3 ^= m;
	SIPROUND();
	SIPROUND();
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND();
	SIPROUND();
	SIPROUND();
	SIPROUND();
	return v0 ^ v1 ^ v2 ^ v3;
}

struct limits *
limits_create(unsigned nentries, const struct limits_grouping *g)
{
	pthread_mutexattr_t attr;
	struct limits *l;
	size_t n, size;
	void *p;
	ssize_t got;
	size_t off;
	uint8_t seed[sizeof(l->seed) + sizeof(l->account_seed)];

	if (g != NULL &&
	    (g->ipv6_prefix < 1 || g->ipv6_prefix > 128 ||
	     g->ipv6_wide_prefix >= g->ipv6_prefix)) {
		errno = EINVAL;
		return NULL;
	}
	/* Zero entries would track nothing at all; one set is the minimum. */
	n = ((size_t)nentries + LIMITS_WAYS - 1) / LIMITS_WAYS * LIMITS_WAYS;
	if (n == 0)
		n = LIMITS_WAYS;
	if (n >
	    (SIZE_MAX - sizeof(struct limits)) / sizeof(struct limits_entry)) {
		errno = ENOMEM;
		return NULL;
	}
	size = sizeof(struct limits) + n * sizeof(struct limits_entry);

	for (off = 0; off < sizeof(seed); off += (size_t)got) {
		got = getrandom(seed + off, sizeof(seed) - off, 0);
		if (got < 0) {
			if (errno == EINTR) {
				got = 0;
				continue;
			}
			return NULL;
		}
	}

	/* Anonymous mappings are zero-filled: every entry starts unused. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	         -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	l = p;
	l->map_size = size;
	l->nsets = n / LIMITS_WAYS;
	l->v6_prefix = g != NULL ? g->ipv6_prefix : 128;
	l->v6_wide_prefix = g != NULL ? g->ipv6_wide_prefix : 0;
	memcpy(l->seed, seed, sizeof(l->seed));
	memcpy(l->account_seed, seed + sizeof(l->seed),
	       sizeof(l->account_seed));
	explicit_bzero(seed, sizeof(seed));

	/*
	 * Robust: if a worker is killed while holding the mutex, the next
	 * locker gets EOWNERDEAD instead of waiting forever.
	 */
	if (pthread_mutexattr_init(&attr) != 0)
		goto fail;
	if (pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&l->mu, &attr) != 0) {
		pthread_mutexattr_destroy(&attr);
		goto fail;
	}
	pthread_mutexattr_destroy(&attr);
	return l;
fail:
	munmap(p, size);
	errno = ENOMEM;
	return NULL;
}

/*
 * Unmaps this process's view only. The mutex is not destroyed: other
 * processes may still be using the mapping, and it disappears with the last
 * of them.
 */
void
limits_destroy(struct limits **lp)
{
	struct limits *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	munmap(l, l->map_size);
}

/*
 * A holder that died left at most one half-done update behind, and every
 * field tolerates that: the dead worker's counts are cleared by
 * limits_worker_reset(), a torn key or timestamp only makes one entry
 * useless until it is replaced, and a torn rate or failure count, window
 * end or ban time only shifts one key's limit, delay or ban once. So the
 * mutex is simply marked consistent again.
 */
static void
limits_lock(struct limits *l)
{
	int rc;

	rc = pthread_mutex_lock(&l->mu);
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&l->mu);
	if (rc != 0)
		fatalx("limits: cannot lock the shared table: %s",
		       strerror(rc));
}

static void
limits_unlock(struct limits *l)
{
	pthread_mutex_unlock(&l->mu);
}

static void
check_worker(unsigned worker)
{
	if (worker >= LIMITS_MAX_WORKERS)
		fatalx("limits: worker slot %u out of range", worker);
}

/*
 * Only IPv4 and IPv6 clients are tracked; anything else (a NULL or AF_UNIX
 * address in tests or tools) would otherwise all share the all-zero key.
 * An IPv6 address is cut to its client network; an IPv4 one, also when it
 * comes IPv4-mapped over an IPv6 socket, is a client of its own. Returns
 * false for an address that is not tracked.
 */
static bool
client_key(const struct limits *l, const struct sockaddr *sa, uint8_t key[16])
{
	if (sa == NULL ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return false;
	sockaddr_key(sa, key);
	if (!key_is_v4(key))
		key_mask(key, l->v6_prefix);
	return true;
}

/* An IPv6 client's wide network; false for IPv4 or when there is none. */
static bool
wide_key(const struct limits *l, const struct sockaddr *sa, uint8_t key[16])
{
	if (l->v6_wide_prefix == 0 || !client_key(l, sa, key) ||
	    key_is_v4(key))
		return false;
	key_mask(key, l->v6_wide_prefix);
	return true;
}

void
limits_net_text(const struct limits *l, const struct sockaddr *sa, bool wide,
                char *buf, size_t size)
{
	uint8_t key[16];

	if (size > 0)
		buf[0] = '\0';
	if (wide ? !wide_key(l, sa, key) : !client_key(l, sa, key))
		return;
	key_net_text(key, key_is_v4(key) ? 128 : wide ? l->v6_wide_prefix
	                                              : l->v6_prefix,
	             buf, size);
}

bool
limits_verdict_wide(enum limits_verdict v)
{
	return v == LIMITS_TOO_MANY_FROM_NET || v == LIMITS_RATE_NET;
}

/* x * factor, saturating; the wide network's share of a budget. */
static uint64_t
scaled(uint64_t x, unsigned factor)
{
	return factor != 0 && x > UINT64_MAX / factor ? UINT64_MAX
	                                              : x * factor;
}

static struct limits_entry *
set_of(struct limits *l, const uint8_t key[16])
{
	size_t set = (size_t)(siphash24(l->seed, key, 16, false) % l->nsets);

	return &l->entries[set * LIMITS_WAYS];
}

static struct limits_entry *
lookup(struct limits_entry *set, enum entry_kind kind, const uint8_t key[16])
{
	int i;

	for (i = 0; i < LIMITS_WAYS; i++)
		if (set[i].in_use && set[i].kind == kind &&
		    memcmp(set[i].key, key, 16) == 0)
			return &set[i];
	return NULL;
}

static unsigned
entry_connections(const struct limits_entry *e)
{
	unsigned n = 0;
	int w;

	for (w = 0; w < LIMITS_MAX_WORKERS; w++)
		n += e->conns[w];
	return n;
}

static bool
window_expired(const struct limits_entry *e, const struct limits_policy *p,
               uint64_t now)
{
	/* A clock that went backwards also starts a new window. */
	return now < e->window_start_ms ||
	       now - e->window_start_ms >= p->rate_window_ms;
}

static bool
ban_active(const struct limits_entry *e, uint64_t now)
{
	return now < e->ban_until_ms;
}

/*
 * An entry that must not be replaced: open connections (their counts must
 * survive until the matching disconnects) and an active ban (forgetting
 * it would hand a guessing client a fresh start) weigh the same.
 */
static bool
entry_pinned(const struct limits_entry *e, uint64_t now)
{
	return entry_connections(e) != 0 || ban_active(e, now) ||
	       now < e->send_block_until_ms || now < e->rate_block_until_ms;
}

/*
 * Nothing in the entry matters any more. Authentication calls carry no
 * connection policy, so for them a rate window that has ever counted is
 * taken to be live: such an entry then only goes through the LRU fallback.
 */
static bool
entry_stale(const struct limits_entry *e, const struct limits_policy *p,
            uint64_t now)
{
	bool rate_done = p != NULL
	                     ? p->rate_count == 0 || window_expired(e, p, now)
	                     : e->window_count == 0;

	return now >= e->greet_until_ms && rate_done &&
	       (e->auth_failures == 0 || now >= e->auth_window_end_ms) &&
	       now >= e->send_day_end_ms;
}

/*
 * An entry for (kind, key), claiming a slot in its set if it has none.
 * Replacement takes, in order: an unused slot; the least recently used
 * unpinned entry that remembers nothing that matters (entry_stale()); the
 * least recently used unpinned entry. Pinned entries (open connections or
 * an active ban) are never replaced; if all eight are, NULL: the key goes
 * untracked. keep, when not NULL, is an entry the caller holds and must not
 * lose to this claim (the same set can hold an address and an account).
 * p may be NULL (authentication calls).
 */
static struct limits_entry *
find_or_claim(struct limits_entry *set, const struct limits_policy *p,
              enum entry_kind kind, const uint8_t key[16], uint64_t now,
              const struct limits_entry *keep)
{
	struct limits_entry *e, *idle = NULL, *stale = NULL;
	int i;

	if ((e = lookup(set, kind, key)) != NULL)
		return e;
	for (i = 0; i < LIMITS_WAYS && e == NULL; i++) {
		struct limits_entry *c = &set[i];

		if (!c->in_use) {
			e = c;
		} else if (c != keep && !entry_pinned(c, now)) {
			if (idle == NULL ||
			    c->last_used_ms < idle->last_used_ms)
				idle = c;
			if (entry_stale(c, p, now) &&
			    (stale == NULL ||
			     c->last_used_ms < stale->last_used_ms))
				stale = c;
		}
	}
	if (e == NULL)
		e = stale != NULL ? stale : idle;
	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, 16);
	e->kind = (uint8_t)kind;
	e->window_start_ms = now;
	e->last_used_ms = now;
	e->in_use = true;
	return e;
}

static unsigned
total_connections(const struct limits *l)
{
	unsigned n = 0;
	int w;

	for (w = 0; w < LIMITS_MAX_WORKERS; w++)
		n += l->totals[w];
	return n;
}

/*
 * Order of the checks: the total first (it protects the whole server), then
 * the per-address count, then the rate. The rate window is fixed: it starts
 * with the first attempt and a new one starts with the first attempt after
 * rate_window_ms. Every attempt that gets past the first two checks is
 * counted in it, including one the rate limit itself refuses, so the count
 * is the number of attempts the client really made (what metrics and a
 * later sliding or penalty window would want); with a fixed window that
 * changes no verdict, since everything past the limit is refused until the
 * window ends anyway. Attempts refused by the total or the per-address
 * count are not charged to the rate: a client turned away because the
 * server, or its own share of it, is full should not find its rate budget
 * spent when room appears.
 */
/*
 * Counts one attempt in e's fixed rate window and says whether it is over
 * limit.
 */
static bool
rate_exceeded(struct limits_entry *e, const struct limits_policy *p,
              uint64_t limit, uint64_t now)
{
	if (window_expired(e, p, now)) {
		e->window_start_ms = now;
		e->window_count = 0;
	}
	if (e->window_count < UINT32_MAX)
		e->window_count++;
	return e->window_count > limit;
}

/*
 * 65535 connections from one client on one worker: count this one in the
 * total only, as if untracked; the later disconnect cannot take the entry
 * below zero.
 */
static void
count_connection(struct limits_entry *e, unsigned worker)
{
	if (e != NULL && e->conns[worker] < UINT16_MAX)
		e->conns[worker]++;
}

enum limits_verdict
limits_connect(struct limits *l, const struct limits_policy *p, unsigned worker,
               const struct sockaddr *sa, uint64_t now_ms)
{
	struct limits_policy pol = *p;
	struct limits_entry *set = NULL, *wset = NULL, *e = NULL, *we = NULL;
	enum limits_verdict v = LIMITS_OK;
	uint8_t key[16], wkey[16];
	bool e_over, we_over;

	check_worker(worker);
	if (client_key(l, sa, key))
		set = set_of(l, key);
	if (pol.wide_factor != 0 && wide_key(l, sa, wkey))
		wset = set_of(l, wkey);

	limits_lock(l);
	if (pol.max_connections != 0 &&
	    total_connections(l) >= pol.max_connections) {
		v = LIMITS_TOO_MANY_TOTAL;
		goto out;
	}
	if (set != NULL)
		e = find_or_claim(set, &pol, KIND_IP, key, now_ms, NULL);
	if (wset != NULL)
		we = find_or_claim(wset, &pol, KIND_WIDE, wkey, now_ms, e);
	if (e != NULL)
		e->last_used_ms = now_ms;
	if (we != NULL)
		we->last_used_ms = now_ms;
	if (pol.max_connections_per_ip != 0) {
		if (e != NULL &&
		    entry_connections(e) >= pol.max_connections_per_ip) {
			v = LIMITS_TOO_MANY_FROM_IP;
			goto out;
		}
		if (we != NULL &&
		    entry_connections(we) >=
		        scaled(pol.max_connections_per_ip, pol.wide_factor)) {
			v = LIMITS_TOO_MANY_FROM_NET;
			goto out;
		}
	}
	if (e != NULL && now_ms < e->rate_block_until_ms) {
		v = LIMITS_RATE;
		goto out;
	}
	if (we != NULL && now_ms < we->rate_block_until_ms) {
		v = LIMITS_RATE_NET;
		goto out;
	}
	if (pol.rate_count != 0) {
		/* both windows count the attempt, whichever refuses it */
		e_over = e != NULL && rate_exceeded(e, &pol, pol.rate_count,
		                                    now_ms);
		we_over = we != NULL &&
		          rate_exceeded(we, &pol,
		                        scaled(pol.rate_count, pol.wide_factor),
		                        now_ms);
		if (e_over || we_over) {
			v = e_over ? LIMITS_RATE : LIMITS_RATE_NET;
			goto out;
		}
	}
	count_connection(e, worker);
	count_connection(we, worker);
	if (l->totals[worker] < UINT32_MAX)
		l->totals[worker]++;
out:
	limits_unlock(l);
	return v;
}

/*
 * An address that was untracked at connect time has no entry (or, rarely,
 * has since got one holding other connections): either way the per-address
 * count is only lowered while it is above zero, so it can undercount for a
 * moment but never wraps.
 */
void
limits_disconnect(struct limits *l, unsigned worker, const struct sockaddr *sa)
{
	struct limits_entry *set = NULL, *wset = NULL, *e;
	uint8_t key[16], wkey[16];

	check_worker(worker);
	if (client_key(l, sa, key))
		set = set_of(l, key);
	if (wide_key(l, sa, wkey))
		wset = set_of(l, wkey);

	limits_lock(l);
	if (set != NULL && (e = lookup(set, KIND_IP, key)) != NULL &&
	    e->conns[worker] > 0)
		e->conns[worker]--;
	if (wset != NULL && (e = lookup(wset, KIND_WIDE, wkey)) != NULL &&
	    e->conns[worker] > 0)
		e->conns[worker]--;
	if (l->totals[worker] > 0)
		l->totals[worker]--;
	limits_unlock(l);
}

bool
limits_greet_passed(struct limits *l, const struct sockaddr *sa,
                    uint64_t now_ms)
{
	struct limits_entry *set, *e;
	uint8_t key[16];
	bool passed = false;

	if (!client_key(l, sa, key))
		return false;
	set = set_of(l, key);
	limits_lock(l);
	if ((e = lookup(set, KIND_IP, key)) != NULL &&
	    now_ms < e->greet_until_ms) {
		passed = true;
		e->last_used_ms = now_ms;
	}
	limits_unlock(l);
	return passed;
}

/* A pass that finds no free slot is dropped: the client is tested again. */
void
limits_greet_pass(struct limits *l, const struct limits_policy *p,
                  const struct sockaddr *sa, uint64_t now_ms)
{
	struct limits_policy pol = *p;
	struct limits_entry *set, *e;
	uint8_t key[16];
	uint64_t until;

	if (!client_key(l, sa, key))
		return;
	set = set_of(l, key);
	until = now_ms + pol.greet_pass_ttl_ms;
	if (until < now_ms)
		until = UINT64_MAX;
	limits_lock(l);
	if ((e = find_or_claim(set, &pol, KIND_IP, key, now_ms, NULL)) !=
	    NULL) {
		e->greet_until_ms = until;
		e->last_used_ms = now_ms;
	}
	limits_unlock(l);
}

/*
 * Walks the whole table under the mutex; it runs once per worker death, so
 * the pause (microseconds per thousand entries) is not worth avoiding.
 */
void
limits_worker_reset(struct limits *l, unsigned worker)
{
	size_t i, n;

	check_worker(worker);
	n = l->nsets * LIMITS_WAYS;
	limits_lock(l);
	for (i = 0; i < n; i++)
		l->entries[i].conns[worker] = 0;
	l->totals[worker] = 0;
	limits_unlock(l);
}

unsigned
limits_ip_connections(struct limits *l, const struct sockaddr *sa)
{
	struct limits_entry *set, *e;
	uint8_t key[16];
	unsigned n = 0;

	if (!client_key(l, sa, key))
		return 0;
	set = set_of(l, key);
	limits_lock(l);
	if ((e = lookup(set, KIND_IP, key)) != NULL)
		n = entry_connections(e);
	limits_unlock(l);
	return n;
}

unsigned
limits_total_connections(struct limits *l)
{
	unsigned n;

	limits_lock(l);
	n = total_connections(l);
	limits_unlock(l);
	return n;
}

/* ---- authentication failures ------------------------------------------ */

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/*
 * An account's key: 0xff 0x61 ('a'), then 112 bits of two SipHashes of the
 * ASCII-lower-cased name under keys of their own. Accounts are hashed
 * rather than stored so an entry stays 16 bytes whatever the name's
 * length, and with a secret key so nobody can pick names that share a key
 * or a set. The leading bytes make the key a multicast address (ff00::/8),
 * which is never the source of a TCP connection; the entry's kind is what
 * really keeps accounts and addresses apart.
 */
static bool
account_key(const struct limits *l, const char *account, uint8_t key[16])
{
	uint64_t h0, h1;
	size_t len;
	int i;

	if (account == NULL || account[0] == '\0')
		return false;
	len = strlen(account);
	h0 = siphash24(l->account_seed[0], (const uint8_t *)account, len, true);
	h1 = siphash24(l->account_seed[1], (const uint8_t *)account, len, true);
	key[0] = 0xff;
	key[1] = 'a';
	for (i = 0; i < 8; i++)
		key[2 + i] = (uint8_t)(h0 >> (8 * i));
	for (i = 0; i < 6; i++)
		key[10 + i] = (uint8_t)(h1 >> (8 * i));
	return true;
}

bool
limits_account_key(struct limits *l, const char *account, uint8_t key_r[16])
{
	return account_key(l, account, key_r);
}

/* min(base * 2^(n-1), max) without overflow; 0 for no failure. */
static uint64_t
growing_delay(const struct limits_auth_policy *p, uint32_t n)
{
	uint64_t d;

	if (n == 0)
		return 0;
	if (n - 1 >= 64 || p->delay_base_ms > (UINT64_MAX >> (n - 1)))
		d = UINT64_MAX;
	else
		d = p->delay_base_ms << (n - 1);
	return d < p->delay_max_ms ? d : p->delay_max_ms;
}

/*
 * Counts one failure in e's fixed window (it starts with the first failure
 * and lasts window_ms; a clock that went backwards starts a new one) and
 * returns the count in the window.
 */
static uint32_t
count_failure(struct limits_entry *e, const struct limits_auth_policy *p,
              uint64_t now)
{
	if (e->auth_failures == 0 || now >= e->auth_window_end_ms ||
	    e->auth_window_end_ms - now > p->window_ms) {
		e->auth_failures = 0;
		e->auth_window_end_ms = add_sat(now, p->window_ms);
	}
	if (e->auth_failures < UINT32_MAX)
		e->auth_failures++;
	return e->auth_failures;
}

/*
 * Counts a failure on a client (limit max_failures_ip) or wide network
 * entry (limit max) and bans it at the limit; returns the count.
 */
static uint32_t
count_and_ban(struct limits_entry *e, const struct limits_auth_policy *p,
              uint64_t max, uint64_t now, bool *started_r)
{
	uint32_t n = count_failure(e, p, now);

	e->last_used_ms = now;
	if (max != 0 && n >= max) {
		/*
		 * The ban uses up the count: when it ends, the client starts
		 * again from zero.
		 */
		e->ban_until_ms = add_sat(now, p->ban_ms);
		e->auth_failures = 0;
		*started_r = true;
	}
	return n;
}

/*
 * The server's count of addresses whose failures began in its window (one
 * window of window_ms for the whole server, like an address's): many
 * addresses each failing a little is a spread guess that no ban sees.
 */
static void
count_failing_ip(struct limits *l, const struct limits_auth_policy *p,
                 uint64_t now)
{
	if (now >= l->auth_all_end_ms ||
	    l->auth_all_end_ms - now > p->window_ms) {
		l->auth_all_ips = 0;
		l->auth_all_end_ms = add_sat(now, p->window_ms);
	}
	if (l->auth_all_ips < UINT32_MAX)
		l->auth_all_ips++;
}

/*
 * A key the table has no room for (its set is full of connections and
 * bans) is not let off: its failure gets the longest delay. Only a table
 * under heavy pressure does this, and then a slow answer to a mistyped
 * password is the lesser harm.
 */
void
limits_auth_failure(struct limits *l, const struct limits_auth_policy *p,
                    const struct sockaddr *ip, const char *account,
                    uint64_t now_ms, struct limits_auth_verdict *v_r)
{
	const struct limits_auth_policy pol = *p;
	struct limits_entry *ipset = NULL, *wset = NULL, *accset = NULL;
	struct limits_entry *ie = NULL, *we = NULL, *ae;
	struct limits_auth_verdict v = {0};
	uint8_t ikey[16], wkey[16], akey[16];
	uint64_t d;
	uint32_t n;
	bool wide_started = false;

	if (client_key(l, ip, ikey))
		ipset = set_of(l, ikey);
	if (pol.wide_factor != 0 && wide_key(l, ip, wkey))
		wset = set_of(l, wkey);
	if (pol.max_failures_account != 0 && account_key(l, account, akey))
		accset = set_of(l, akey);

	limits_lock(l);
	if (ipset != NULL)
		ie = find_or_claim(ipset, NULL, KIND_IP, ikey, now_ms, NULL);
	if (wset != NULL)
		we = find_or_claim(wset, NULL, KIND_WIDE, wkey, now_ms, ie);
	if ((ie != NULL && ban_active(ie, now_ms)) ||
	    (we != NULL && ban_active(we, now_ms))) {
		/* A session that was mid-exchange when the ban began. */
		v.banned_before = true;
		v.wide = ie == NULL || !ban_active(ie, now_ms);
		v.delay_ms = pol.delay_max_ms;
		goto out;
	}
	if (ipset != NULL && ie == NULL)
		v.delay_ms = pol.delay_max_ms;
	if (ie != NULL) {
		n = count_and_ban(ie, &pol, pol.max_failures_ip, now_ms,
		                  &v.ban_started);
		v.delay_ms = growing_delay(&pol, n);
		v.ip_failures = n;
		if (n == 1)
			count_failing_ip(l, &pol, now_ms);
	}
	v.failing_ips = l->auth_all_ips;
	if (we != NULL) {
		count_and_ban(we, &pol,
		              scaled(pol.max_failures_ip, pol.wide_factor),
		              now_ms, &wide_started);
		if (wide_started && !v.ban_started)
			v.wide = true;
		v.ban_started = v.ban_started || wide_started;
	}
	if (accset != NULL) {
		ae = find_or_claim(accset, NULL, KIND_ACCOUNT, akey, now_ms,
		                   ie != NULL ? ie : we);
		if (ae == NULL) {
			d = pol.delay_max_ms;
		} else {
			ae->last_used_ms = now_ms;
			n = count_failure(ae, &pol, now_ms);
			v.account_failures = n;
			d = n >= pol.max_failures_account
			        ? pol.delay_max_ms
			        : growing_delay(&pol, n);
		}
		if (d > v.delay_ms)
			v.delay_ms = d;
	}
out:
	limits_unlock(l);
	*v_r = v;
}

bool
limits_banned(struct limits *l, const struct sockaddr *ip, uint64_t now_ms,
              uint64_t *until_ms_r, bool *wide_r)
{
	struct limits_entry *set, *wset = NULL, *e;
	uint8_t key[16], wkey[16];
	uint64_t until = 0;
	bool wide = false;

	if (!client_key(l, ip, key))
		return false;
	set = set_of(l, key);
	if (wide_key(l, ip, wkey))
		wset = set_of(l, wkey);
	limits_lock(l);
	if ((e = lookup(set, KIND_IP, key)) != NULL && ban_active(e, now_ms))
		until = e->ban_until_ms;
	if (wset != NULL && (e = lookup(wset, KIND_WIDE, wkey)) != NULL &&
	    ban_active(e, now_ms) && e->ban_until_ms > until) {
		until = e->ban_until_ms;
		wide = true;
	}
	limits_unlock(l);
	if (until == 0)
		return false;
	if (until_ms_r != NULL)
		*until_ms_r = until;
	if (wide_r != NULL)
		*wide_r = wide;
	return true;
}

/* The entry of sa's client or wide network, claimed under the mutex. */
static struct limits_entry *
install_entry(struct limits *l, const struct sockaddr *sa, bool wide,
	      uint64_t now_ms)
{
	uint8_t key[16];

	if (wide ? !wide_key(l, sa, key) : !client_key(l, sa, key))
		return NULL;
	return find_or_claim(set_of(l, key), NULL, wide ? KIND_WIDE : KIND_IP,
			     key, now_ms, NULL);
}

void
limits_ban_install(struct limits *l, const struct sockaddr *sa, bool wide,
		   uint64_t until_ms, uint64_t now_ms)
{
	struct limits_entry *e;

	limits_lock(l);
	if ((e = install_entry(l, sa, wide, now_ms)) != NULL) {
		e->last_used_ms = now_ms;
		if (until_ms > e->ban_until_ms) {
			e->ban_until_ms = until_ms;
			e->auth_failures = 0;
		}
	}
	limits_unlock(l);
}

void
limits_rate_block(struct limits *l, const struct sockaddr *sa, bool wide,
		  uint64_t until_ms, uint64_t now_ms)
{
	struct limits_entry *e;

	limits_lock(l);
	if ((e = install_entry(l, sa, wide, now_ms)) != NULL) {
		e->last_used_ms = now_ms;
		if (until_ms > e->rate_block_until_ms)
			e->rate_block_until_ms = until_ms;
	}
	limits_unlock(l);
}

/*
 * An account entry holds nothing but its failures, so clearing them frees
 * the slot.
 */
void
limits_auth_success(struct limits *l, const struct sockaddr *ip,
                    const char *account, uint64_t now_ms)
{
	struct limits_entry *set, *e;
	uint8_t key[16];

	(void)ip;
	(void)now_ms;
	if (!account_key(l, account, key))
		return;
	set = set_of(l, key);
	limits_lock(l);
	if ((e = lookup(set, KIND_ACCOUNT, key)) != NULL)
		memset(e, 0, sizeof(*e));
	limits_unlock(l);
}

/* ---- sending limits ---------------------------------------------------- */

/* The counter a verdict names, and its limit in p. */
static uint64_t
send_limit(const struct limits_send_policy *p, enum limits_send_verdict v)
{
	switch (v) {
	case LIMITS_SEND_MESSAGES_HOUR:
		return p->messages_per_hour;
	case LIMITS_SEND_RECIPIENTS_HOUR:
		return p->recipients_per_hour;
	case LIMITS_SEND_MESSAGES_DAY:
		return p->messages_per_day;
	case LIMITS_SEND_RECIPIENTS_DAY:
		return p->recipients_per_day;
	case LIMITS_SEND_OK:
		break;
	}
	return 0;
}

/* New fixed windows for those that ended (or a clock gone backwards). */
static void
send_windows(struct limits_entry *e, uint64_t now)
{
	if (now >= e->send_hour_end_ms ||
	    e->send_hour_end_ms - now > LIMITS_HOUR_MS) {
		e->send_hour_end_ms = add_sat(now, LIMITS_HOUR_MS);
		e->send_count[LIMITS_SEND_MESSAGES_HOUR - 1] = 0;
		e->send_count[LIMITS_SEND_RECIPIENTS_HOUR - 1] = 0;
	}
	if (now >= e->send_day_end_ms ||
	    e->send_day_end_ms - now > LIMITS_DAY_MS) {
		e->send_day_end_ms = add_sat(now, LIMITS_DAY_MS);
		e->send_count[LIMITS_SEND_MESSAGES_DAY - 1] = 0;
		e->send_count[LIMITS_SEND_RECIPIENTS_DAY - 1] = 0;
	}
}

/*
 * Takes one message or recipient from e's budgets, or finds the one that
 * is spent: the hour's before the day's, so the block ends as soon as
 * the tighter window does.
 */
static enum limits_send_verdict
send_take(struct limits_entry *e, const struct limits_send_policy *p,
          bool message)
{
	enum limits_send_verdict hour = message ? LIMITS_SEND_MESSAGES_HOUR
	                                        : LIMITS_SEND_RECIPIENTS_HOUR;
	enum limits_send_verdict day = message ? LIMITS_SEND_MESSAGES_DAY
	                                       : LIMITS_SEND_RECIPIENTS_DAY;
	uint64_t lh = send_limit(p, hour), ld = send_limit(p, day);

	if (lh != 0 && e->send_count[hour - 1] >= lh)
		return hour;
	if (ld != 0 && e->send_count[day - 1] >= ld)
		return day;
	if (e->send_count[hour - 1] < UINT32_MAX)
		e->send_count[hour - 1]++;
	if (e->send_count[day - 1] < UINT32_MAX)
		e->send_count[day - 1]++;
	return LIMITS_SEND_OK;
}

enum limits_send_verdict
limits_send(struct limits *l, const struct limits_send_policy *p,
            const char *account, bool message, uint64_t now_ms,
            struct limits_send_result *r_r)
{
	const struct limits_send_policy pol = *p;
	struct limits_send_result r = {0};
	struct limits_entry *set, *e;
	enum limits_send_verdict v;
	uint8_t key[16];

	if (!account_key(l, account, key)) {
		*r_r = r;
		return LIMITS_SEND_OK;
	}
	set = set_of(l, key);
	limits_lock(l);
	e = find_or_claim(set, NULL, KIND_SENDER, key, now_ms, NULL);
	if (e == NULL) {
		v = LIMITS_SEND_OK; /* untracked: a full table lets it by */
		goto out;
	}
	e->last_used_ms = now_ms;
	send_windows(e, now_ms);
	if (now_ms < e->send_block_until_ms) {
		v = (enum limits_send_verdict)e->send_block_reason;
	} else if ((v = send_take(e, &pol, message)) != LIMITS_SEND_OK) {
		bool hour = v == LIMITS_SEND_MESSAGES_HOUR ||
		            v == LIMITS_SEND_RECIPIENTS_HOUR;
		e->send_block_until_ms = hour ? e->send_hour_end_ms
		                              : e->send_day_end_ms;
		e->send_block_reason = (uint8_t)v;
		r.block_started = true;
		__atomic_add_fetch(&l->send_gen, 1, __ATOMIC_RELAXED);
	}
	if (v != LIMITS_SEND_OK) {
		r.count = e->send_count[v - 1];
		r.limit = send_limit(&pol, v);
		r.until_ms = e->send_block_until_ms;
	}
out:
	limits_unlock(l);
	*r_r = r;
	return v;
}

void
limits_send_block(struct limits *l, const char *account,
		  enum limits_send_verdict reason, uint64_t until_ms,
		  uint64_t now_ms)
{
	struct limits_entry *e;
	uint8_t key[16];

	if (reason == LIMITS_SEND_OK || !account_key(l, account, key))
		return;
	limits_lock(l);
	e = find_or_claim(set_of(l, key), NULL, KIND_SENDER, key, now_ms,
			  NULL);
	if (e != NULL) {
		e->last_used_ms = now_ms;
		send_windows(e, now_ms);
		if (until_ms > e->send_block_until_ms) {
			if (now_ms >= e->send_block_until_ms)
				__atomic_add_fetch(&l->send_gen, 1,
						   __ATOMIC_RELAXED);
			e->send_block_until_ms = until_ms;
			e->send_block_reason = (uint8_t)reason;
		}
	}
	limits_unlock(l);
}

bool
limits_send_blocked(struct limits *l, const char *account, uint64_t now_ms)
{
	struct limits_entry *set, *e;
	uint8_t key[16];
	bool blocked = false;

	if (!account_key(l, account, key))
		return false;
	set = set_of(l, key);
	limits_lock(l);
	if ((e = lookup(set, KIND_SENDER, key)) != NULL)
		blocked = now_ms < e->send_block_until_ms;
	limits_unlock(l);
	return blocked;
}

/* ---- sessions per account ---------------------------------------------- */

bool
limits_user_connect(struct limits *l, unsigned worker, const char *account,
                    unsigned max, uint64_t now_ms, unsigned *count_r)
{
	struct limits_entry *set, *e;
	uint8_t key[16];
	bool ok = true;

	check_worker(worker);
	*count_r = 0;
	if (!account_key(l, account, key))
		return true;
	set = set_of(l, key);
	limits_lock(l);
	e = find_or_claim(set, NULL, KIND_USER, key, now_ms, NULL);
	if (e != NULL) {	/* untracked: a full table lets it in */
		e->last_used_ms = now_ms;
		*count_r = entry_connections(e);
		if (max != 0 && *count_r >= max)
			ok = false;
		else
			count_connection(e, worker);
	}
	limits_unlock(l);
	return ok;
}

void
limits_user_disconnect(struct limits *l, unsigned worker, const char *account)
{
	struct limits_entry *set, *e;
	uint8_t key[16];

	check_worker(worker);
	if (!account_key(l, account, key))
		return;
	set = set_of(l, key);
	limits_lock(l);
	if ((e = lookup(set, KIND_USER, key)) != NULL && e->conns[worker] > 0)
		e->conns[worker]--;
	limits_unlock(l);
}

uint32_t
limits_send_generation(struct limits *l)
{
	return __atomic_load_n(&l->send_gen, __ATOMIC_RELAXED);
}

const char *
limits_send_verdict_text(enum limits_send_verdict v)
{
	switch (v) {
	case LIMITS_SEND_OK:
		return "ok";
	case LIMITS_SEND_MESSAGES_HOUR:
		return "messages-per-hour";
	case LIMITS_SEND_RECIPIENTS_HOUR:
		return "recipients-per-hour";
	case LIMITS_SEND_MESSAGES_DAY:
		return "messages-per-day";
	case LIMITS_SEND_RECIPIENTS_DAY:
		return "recipients-per-day";
	}
	return "sending-limit";
}

int
limits_stress_update(struct limits *l, const struct limits_policy *p,
                     unsigned *total_r)
{
	unsigned total;
	int change = 0;
	bool on;

	limits_lock(l);
	total = total_connections(l);
	on = l->stress != 0;
	if (!on && p->stress_on != 0 && total >= p->stress_on) {
		__atomic_store_n(&l->stress, 1, __ATOMIC_RELAXED);
		change = 1;
	} else if (on && (p->stress_on == 0 || total < p->stress_off)) {
		__atomic_store_n(&l->stress, 0, __ATOMIC_RELAXED);
		change = -1;
	}
	limits_unlock(l);
	if (total_r != NULL)
		*total_r = total;
	return change;
}

bool
limits_stress(struct limits *l)
{
	return __atomic_load_n(&l->stress, __ATOMIC_RELAXED) != 0;
}

const char *
limits_verdict_text(enum limits_verdict v)
{
	switch (v) {
	case LIMITS_OK:
		return "ok";
	case LIMITS_TOO_MANY_TOTAL:
		return "too many connections";
	case LIMITS_TOO_MANY_FROM_IP:
		return "too many connections from your address";
	case LIMITS_RATE:
		return "connection rate limit exceeded";
	case LIMITS_TOO_MANY_FROM_NET:
		return "too many connections from your network";
	case LIMITS_RATE_NET:
		return "connection rate limit exceeded for your network";
	}
	return "connection refused";
}
