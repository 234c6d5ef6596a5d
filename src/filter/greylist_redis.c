/*
 * Greylisting in Redis (greylist.h): the same triplets, passed triplets
 * and auto-allowed client networks as the SQLite database, kept in Redis
 * when redis: is configured so that a retry passes on whichever node it
 * reaches. One Lua script decides a triplet in one round trip with
 * Redis's own clock (TIME), so the nodes' clocks do not matter.
 *
 * Keys under the prefix: grey:t:<sha256 of net, sender, recipient> (a
 * hash: first sight, passed; TTL `window` until it passes, then `expire`
 * from its last use), grey:n:<client net> (a hash: deliveries, TTL
 * `expire` from its last use). Redis's TTLs replace the sweep and
 * max_entries: an entry lives as long as the rules let it matter.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "filter/greylist.h"
#include "net/redis.h"

/*
 * KEYS: triplet, net. ARGV: delay, window, expire, auto_allow (seconds,
 * count). Returns {verdict, wait}: 0 pass, 1 allowed, 2 wait.
 */
static const char check_script[] =
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local delay, window = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local expire, aa = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "if aa > 0 then\n"
    "  local c = tonumber(redis.call('HGET', KEYS[2], 'count') or '0')\n"
    "  if c >= aa then\n"
    "    redis.call('EXPIRE', KEYS[2], expire)\n"
    "    return {1, 0}\n"
    "  end\n"
    "end\n"
    "local t = redis.call('HMGET', KEYS[1], 'first', 'passed')\n"
    "local first = tonumber(t[1])\n"
    "if first and t[2] == '1' then\n"
    "  redis.call('EXPIRE', KEYS[1], expire)\n"
    "  return {0, 0}\n"
    "end\n"
    "if first then\n"
    "  local age = now - first\n"
    "  if age >= 0 and age <= window then\n"
    "    if age >= delay and age > 0 then\n"
    "      redis.call('HSET', KEYS[1], 'passed', '1')\n"
    "      redis.call('EXPIRE', KEYS[1], expire)\n"
    "      return {0, 0}\n"
    "    end\n"
    "    local w = delay - age\n"
    "    if w < 1 then w = 1 end\n"
    "    return {2, w}\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'first', now, 'passed', '0')\n"
    "redis.call('EXPIRE', KEYS[1], window + 1)\n"
    "return {2, delay}\n";

/* KEYS: net. ARGV: expire. */
static const char delivered_script[] =
    "redis.call('HINCRBY', KEYS[1], 'count', 1)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "return 1\n";

static bool
triplet_key(const struct redis *r, const char *net, const char *sender,
	    const char *rcpt, char *key, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[32];
	char hex[2 * sizeof(md) + 1];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok;

	/* the NULs keep ("a", "bc") and ("ab", "c") apart */
	ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, net, strlen(net) + 1) == 1 &&
	     EVP_DigestUpdate(c, sender, strlen(sender) + 1) == 1 &&
	     EVP_DigestUpdate(c, rcpt, strlen(rcpt) + 1) == 1 &&
	     EVP_DigestFinal_ex(c, md, NULL) == 1;
	EVP_MD_CTX_free(c);
	if (!ok)
		return false;
	for (size_t i = 0; i < sizeof(md); i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[sizeof(hex) - 1] = '\0';
	return redis_key(r, key, size, "grey:t:", hex);
}

struct redis_req *
greylist_redis_check(struct redis *r, const struct greylist_config *cf,
		     const char *net, const char *sender, const char *rcpt,
		     redis_reply_fn *fn, void *arg)
{
	char tk[REDIS_KEY_MAX], nk[REDIS_KEY_MAX];
	char delay[24], window[24], expire[24], aa[24];
	const char *argv[9];

	if (!redis_up(r) ||
	    !triplet_key(r, net, sender, rcpt, tk, sizeof(tk)) ||
	    !redis_key(r, nk, sizeof(nk), "grey:n:", net))
		return NULL;
	snprintf(delay, sizeof(delay), "%llu", (unsigned long long)cf->delay);
	snprintf(window, sizeof(window), "%llu",
		 (unsigned long long)cf->window);
	snprintf(expire, sizeof(expire), "%llu",
		 (unsigned long long)cf->expire);
	snprintf(aa, sizeof(aa), "%u", cf->auto_allow);
	argv[0] = "EVAL";
	argv[1] = check_script;
	argv[2] = "2";
	argv[3] = tk;
	argv[4] = nk;
	argv[5] = delay;
	argv[6] = window;
	argv[7] = expire;
	argv[8] = aa;
	return redis_command(r, fn, arg, 9, argv, NULL);
}

bool
greylist_redis_verdict(const struct redisReply *rp,
		       enum greylist_verdict *v_r, uint64_t *wait_r)
{
	*wait_r = 0;
	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 ||
	    rp->element[0]->type != REDIS_REPLY_INTEGER ||
	    rp->element[1]->type != REDIS_REPLY_INTEGER ||
	    rp->element[1]->integer < 0)
		return false;
	switch (rp->element[0]->integer) {
	case 0:
		*v_r = GREYLIST_PASS;
		break;
	case 1:
		*v_r = GREYLIST_ALLOWED;
		break;
	case 2:
		*v_r = GREYLIST_WAIT;
		*wait_r = (uint64_t)rp->element[1]->integer;
		break;
	default:
		return false;
	}
	return true;
}

bool
greylist_redis_delivered(struct redis *r, const struct greylist_config *cf,
			 const char *net)
{
	char nk[REDIS_KEY_MAX], expire[24];
	const char *argv[5];

	if (cf->auto_allow == 0 || !redis_up(r) ||
	    !redis_key(r, nk, sizeof(nk), "grey:n:", net))
		return false;
	snprintf(expire, sizeof(expire), "%llu",
		 (unsigned long long)cf->expire);
	argv[0] = "EVAL";
	argv[1] = delivered_script;
	argv[2] = "1";
	argv[3] = nk;
	argv[4] = expire;
	return redis_command(r, NULL, NULL, 5, argv, NULL) != NULL;
}
