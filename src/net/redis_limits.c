/*
 * Client limits through Redis (net/redis_limits.h): the Lua scripts that
 * count and decide in one round trip, the messages the nodes publish, and
 * their installation in the local table.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/redis_limits.h"

#define NET_TEXT_MAX 64
#define BANS_LOADED_MAX 100000

struct redis_limits {
	struct redis *r;
	struct limits *l;
};

/*
 * KEYS: client count, wide count, account count, client ban, wide ban.
 * ARGV: window ms, client max, wide max, ban ms, channel, client net,
 * wide net, has wide (0/1), has account (0/1). Returns {client count,
 * wide count, account count, bans begun (1 client, 2 wide)}; a client
 * already banned: {-1, 0, 0, 0}, not counted (as the local table does).
 */
static const char auth_script[] =
    "local function bump(k, w)\n"
    "  local n = redis.call('INCR', k)\n"
    "  if n == 1 then redis.call('PEXPIRE', k, w) end\n"
    "  return n\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[4]) == 1 or "
    "   (ARGV[8] == '1' and redis.call('EXISTS', KEYS[5]) == 1) then\n"
    "  return {-1, 0, 0, 0}\n"
    "end\n"
    "local res = {0, 0, 0, 0}\n"
    "if ARGV[6] ~= '' then\n"
    "  local n = bump(KEYS[1], ARGV[1])\n"
    "  res[1] = n\n"
    "  if tonumber(ARGV[2]) > 0 and n >= tonumber(ARGV[2]) then\n"
    "    redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])\n"
    "    redis.call('DEL', KEYS[1])\n"
    "    redis.call('PUBLISH', ARGV[5], 'ban 0 ' .. ARGV[4] .. ' ' .. "
    "ARGV[6])\n"
    "    res[4] = 1\n"
    "  end\n"
    "end\n"
    "if ARGV[8] == '1' then\n"
    "  local n = bump(KEYS[2], ARGV[1])\n"
    "  res[2] = n\n"
    "  if tonumber(ARGV[3]) > 0 and n >= tonumber(ARGV[3]) then\n"
    "    redis.call('SET', KEYS[5], '1', 'PX', ARGV[4])\n"
    "    redis.call('DEL', KEYS[2])\n"
    "    redis.call('PUBLISH', ARGV[5], 'ban 1 ' .. ARGV[4] .. ' ' .. "
    "ARGV[7])\n"
    "    res[4] = res[4] + 2\n"
    "  end\n"
    "end\n"
    "if ARGV[9] == '1' then res[3] = bump(KEYS[3], ARGV[1]) end\n"
    "return res\n";

/*
 * KEYS: client count, wide count. ARGV: window ms, client limit, wide
 * limit, channel, client net, wide net, has wide. The attempt that goes
 * one past a limit publishes the block for the window's time left.
 */
static const char rate_script[] =
    "local function one(k, lim, wide, net)\n"
    "  local n = redis.call('INCR', k)\n"
    "  if n == 1 then redis.call('PEXPIRE', k, ARGV[1]) end\n"
    "  if lim > 0 and n == lim + 1 then\n"
    "    local t = redis.call('PTTL', k)\n"
    "    if t > 0 then\n"
    "      redis.call('PUBLISH', ARGV[4], 'rate ' .. wide .. ' ' .. t .. "
    "' ' .. net)\n"
    "    end\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "local a = one(KEYS[1], tonumber(ARGV[2]), '0', ARGV[5])\n"
    "local b = 0\n"
    "if ARGV[7] == '1' then b = one(KEYS[2], tonumber(ARGV[3]), '1', "
    "ARGV[6]) end\n"
    "return {a, b}\n";

/*
 * KEYS: hour count, day count (of messages or of recipients), the
 * account's block. ARGV: hour limit, day limit, hour ms, day ms, the
 * verdicts of the hour and of the day. Returns {verdict, count, ttl ms,
 * block begun}; verdict 0: taken.
 */
static const char send_script[] =
    "local b = redis.call('GET', KEYS[3])\n"
    "if b then return {tonumber(b), 0, redis.call('PTTL', KEYS[3]), 0} "
    "end\n"
    "local h = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local d = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local lh, ld = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local v, c, k = 0, 0, nil\n"
    "if lh > 0 and h >= lh then v, c, k = tonumber(ARGV[5]), h, KEYS[1]\n"
    "elseif ld > 0 and d >= ld then v, c, k = tonumber(ARGV[6]), d, "
    "KEYS[2] end\n"
    "if v ~= 0 then\n"
    "  local t = redis.call('PTTL', k)\n"
    "  if t <= 0 then t = 1000 end\n"
    "  redis.call('SET', KEYS[3], v, 'PX', t)\n"
    "  return {v, c, t, 1}\n"
    "end\n"
    "if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', "
    "KEYS[1], ARGV[3]) end\n"
    "if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', "
    "KEYS[2], ARGV[4]) end\n"
    "return {0, 0, 0, 0}\n";

/*
 * The live bans, at (re)connect: {key, ttl ms, ...} of ARGV[1]'s
 * pattern, at most ARGV[2] of them. SCAN inside the script keeps it one
 * round trip; the bound keeps a huge keyspace from stalling Redis long.
 */
static const char bans_script[] =
    "local out, cursor, n = {}, '0', 0\n"
    "repeat\n"
    "  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', "
    "1000)\n"
    "  cursor = r[1]\n"
    "  for _, k in ipairs(r[2]) do\n"
    "    local t = redis.call('PTTL', k)\n"
    "    if t > 0 and n < tonumber(ARGV[2]) then\n"
    "      out[#out + 1] = k\n"
    "      out[#out + 1] = t\n"
    "      n = n + 1\n"
    "    end\n"
    "  end\n"
    "until cursor == '0'\n"
    "return out\n";

/* ---- the published messages --------------------------------------------- */

/* "192.0.2.7/32" or "2001:db8::/64": an address in ss (the prefix is the
 * table's own, so it is only checked for shape). */
static int
net_parse(const char *s, size_t len, struct sockaddr_storage *ss)
{
	char buf[NET_TEXT_MAX];
	char *slash;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	memset(ss, 0, sizeof(*ss));
	if (strchr(buf, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		return inet_pton(AF_INET, buf, &s4->sin_addr) == 1 ? 0 : -1;
	}
}

int
rlimits_parse_message(const char *msg, size_t len, bool *ban_r, bool *wide_r,
		      uint64_t *ttl_ms_r, struct sockaddr_storage *ss_r)
{
	const char *p = msg, *end = msg + len, *sp;
	uint64_t ttl = 0;

	if (len > 4 && memcmp(p, "ban ", 4) == 0) {
		*ban_r = true;
		p += 4;
	} else if (len > 5 && memcmp(p, "rate ", 5) == 0) {
		*ban_r = false;
		p += 5;
	} else {
		return -1;
	}
	if (end - p < 2 || (p[0] != '0' && p[0] != '1') || p[1] != ' ')
		return -1;
	*wide_r = p[0] == '1';
	p += 2;
	for (sp = p; sp < end && *sp >= '0' && *sp <= '9'; sp++) {
		if (ttl > UINT64_MAX / 10 - 10)
			return -1;
		ttl = ttl * 10 + (uint64_t)(*sp - '0');
	}
	if (sp == p || sp >= end || *sp != ' ')
		return -1;
	*ttl_ms_r = ttl;
	return net_parse(sp + 1, (size_t)(end - sp - 1), ss_r);
}

static void
install(struct redis_limits *rl, bool ban, bool wide, uint64_t ttl,
	const struct sockaddr_storage *ss)
{
	uint64_t now = now_ms();

	if (ban)
		limits_ban_install(rl->l, (const struct sockaddr *)ss, wide,
				   now + ttl, now);
	else
		limits_rate_block(rl->l, (const struct sockaddr *)ss, wide,
				  now + ttl, now);
}

static void
on_message(const char *msg, size_t len, void *arg)
{
	struct redis_limits *rl = arg;
	struct sockaddr_storage ss;
	uint64_t ttl;
	bool ban, wide;

	if (rlimits_parse_message(msg, len, &ban, &wide, &ttl, &ss) < 0) {
		log_event(LOG_WARNING, "redis", "error",
			  LF_STR("command", "message"),
			  LF_STR("error", "malformed message on the channel"));
		return;
	}
	install(rl, ban, wide, ttl, &ss);
}

/* ---- the bans at connect ------------------------------------------------ */

static void
bans_loaded(struct redisReply *rp, void *arg)
{
	struct redis_limits *rl = arg;
	char ip[REDIS_KEY_MAX], net[REDIS_KEY_MAX];
	size_t lip, lnet, n = 0;

	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY)
		return;
	if (!redis_key(rl->r, ip, sizeof(ip), "ban:ip:", "") ||
	    !redis_key(rl->r, net, sizeof(net), "ban:net:", ""))
		return;
	lip = strlen(ip);
	lnet = strlen(net);
	for (size_t i = 0; i + 1 < rp->elements; i += 2) {
		const redisReply *k = rp->element[i], *t = rp->element[i + 1];
		struct sockaddr_storage ss;
		bool wide;
		size_t skip;

		if (k->type != REDIS_REPLY_STRING ||
		    t->type != REDIS_REPLY_INTEGER || t->integer <= 0)
			continue;
		if (k->len > lip && memcmp(k->str, ip, lip) == 0) {
			wide = false;
			skip = lip;
		} else if (k->len > lnet && memcmp(k->str, net, lnet) == 0) {
			wide = true;
			skip = lnet;
		} else {
			continue;
		}
		if (net_parse(k->str + skip, k->len - skip, &ss) < 0)
			continue;
		install(rl, true, wide, (uint64_t)t->integer, &ss);
		n++;
	}
	log_event(LOG_INFO, "redis", "bans-loaded", LF_UINT("bans", n));
}

static void
on_up(void *arg)
{
	struct redis_limits *rl = arg;
	char pat[REDIS_KEY_MAX], max[24];
	const char *argv[5];

	if (!redis_key(rl->r, pat, sizeof(pat), "ban:*", ""))
		return;
	snprintf(max, sizeof(max), "%d", BANS_LOADED_MAX);
	argv[0] = "EVAL";
	argv[1] = bans_script;
	argv[2] = "0";
	argv[3] = pat;
	argv[4] = max;
	redis_command(rl->r, bans_loaded, rl, 5, argv, NULL);
}

/* ---- life ---------------------------------------------------------------- */

struct redis_limits *
rlimits_new(struct redis *r, struct limits *l)
{
	struct redis_limits *rl;

	if (r == NULL)
		return NULL;
	rl = xcalloc(1, sizeof(*rl));
	rl->r = r;
	rl->l = l;
	redis_on_message(r, on_message, rl);
	redis_on_up(r, on_up, rl);
	return rl;
}

void
rlimits_free(struct redis_limits **rlp)
{
	struct redis_limits *rl = *rlp;

	if (rl == NULL)
		return;
	*rlp = NULL;
	redis_on_message(rl->r, NULL, NULL);
	redis_on_up(rl->r, NULL, NULL);
	free(rl);
}

struct redis *
rlimits_redis(const struct redis_limits *rl)
{
	return rl != NULL ? rl->r : NULL;
}

/* ---- the calls ----------------------------------------------------------- */

static uint64_t
scaled(uint64_t x, unsigned factor)
{
	return factor != 0 && x > UINT64_MAX / factor ? UINT64_MAX
						      : x * factor;
}

void
rlimits_auth_failure(struct redis_limits *rl,
		     const struct limits_auth_policy *p,
		     const struct sockaddr *sa, const char *account)
{
	char k[5][REDIS_KEY_MAX], net[NET_TEXT_MAX], wnet[NET_TEXT_MAX];
	char win[24], maxip[24], maxw[24], ban[24], chan[REDIS_KEY_MAX];
	char acct[REDIS_ACCOUNT_HEX] = "";
	const char *argv[3 + 5 + 9];
	bool has_wide, has_acct;
	int i = 0;

	if (rl == NULL || !redis_up(rl->r))
		return;
	limits_net_text(rl->l, sa, false, net, sizeof(net));
	limits_net_text(rl->l, sa, true, wnet, sizeof(wnet));
	has_wide = p->wide_factor != 0 && wnet[0] != '\0';
	has_acct = p->max_failures_account != 0 &&
		   redis_account_hash(rl->r, account, acct);
	if (net[0] == '\0' && !has_acct)
		return;
	if (!redis_key(rl->r, k[0], sizeof(k[0]), "authfail:ip:", net) ||
	    !redis_key(rl->r, k[1], sizeof(k[1]), "authfail:net:", wnet) ||
	    !redis_key(rl->r, k[2], sizeof(k[2]), "authfail:acct:", acct) ||
	    !redis_key(rl->r, k[3], sizeof(k[3]), "ban:ip:", net) ||
	    !redis_key(rl->r, k[4], sizeof(k[4]), "ban:net:", wnet) ||
	    !redis_key(rl->r, chan, sizeof(chan), "events", ""))
		return;
	snprintf(win, sizeof(win), "%llu",
		 (unsigned long long)(p->window_ms > 0 ? p->window_ms : 1));
	snprintf(maxip, sizeof(maxip), "%u", p->max_failures_ip);
	snprintf(maxw, sizeof(maxw), "%llu",
		 (unsigned long long)scaled(p->max_failures_ip,
					    p->wide_factor));
	snprintf(ban, sizeof(ban), "%llu",
		 (unsigned long long)(p->ban_ms > 0 ? p->ban_ms : 1));
	argv[i++] = "EVAL";
	argv[i++] = auth_script;
	argv[i++] = "5";
	for (int j = 0; j < 5; j++)
		argv[i++] = k[j];
	argv[i++] = win;
	argv[i++] = maxip;
	argv[i++] = maxw;
	argv[i++] = ban;
	argv[i++] = chan;
	argv[i++] = net;
	argv[i++] = wnet;
	argv[i++] = has_wide ? "1" : "0";
	argv[i++] = has_acct ? "1" : "0";
	redis_command(rl->r, NULL, NULL, i, argv, NULL);
}

void
rlimits_connect(struct redis_limits *rl, const struct limits_policy *p,
		const struct sockaddr *sa)
{
	char k[2][REDIS_KEY_MAX], net[NET_TEXT_MAX], wnet[NET_TEXT_MAX];
	char win[24], lim[24], wlim[24], chan[REDIS_KEY_MAX];
	const char *argv[3 + 2 + 7];
	bool has_wide;
	int i = 0;

	if (rl == NULL || p->rate_count == 0 || !redis_up(rl->r))
		return;
	limits_net_text(rl->l, sa, false, net, sizeof(net));
	limits_net_text(rl->l, sa, true, wnet, sizeof(wnet));
	if (net[0] == '\0')
		return;
	has_wide = p->wide_factor != 0 && wnet[0] != '\0';
	if (!redis_key(rl->r, k[0], sizeof(k[0]), "rate:ip:", net) ||
	    !redis_key(rl->r, k[1], sizeof(k[1]), "rate:net:", wnet) ||
	    !redis_key(rl->r, chan, sizeof(chan), "events", ""))
		return;
	snprintf(win, sizeof(win), "%llu",
		 (unsigned long long)(p->rate_window_ms > 0 ? p->rate_window_ms
							   : 1));
	snprintf(lim, sizeof(lim), "%u", p->rate_count);
	snprintf(wlim, sizeof(wlim), "%llu",
		 (unsigned long long)scaled(p->rate_count, p->wide_factor));
	argv[i++] = "EVAL";
	argv[i++] = rate_script;
	argv[i++] = "2";
	argv[i++] = k[0];
	argv[i++] = k[1];
	argv[i++] = win;
	argv[i++] = lim;
	argv[i++] = wlim;
	argv[i++] = chan;
	argv[i++] = net;
	argv[i++] = wnet;
	argv[i++] = has_wide ? "1" : "0";
	redis_command(rl->r, NULL, NULL, i, argv, NULL);
}

struct redis_req *
rlimits_send(struct redis_limits *rl, const struct limits_send_policy *p,
	     const char *account, bool message, redis_reply_fn *fn, void *arg)
{
	char acct[REDIS_ACCOUNT_HEX], k[3][REDIS_KEY_MAX];
	char lh[24], ld[24], hms[24], dms[24], vh[4], vd[4];
	const char *argv[3 + 3 + 6];
	int i = 0;

	if (rl == NULL || !redis_up(rl->r) ||
	    !redis_account_hash(rl->r, account, acct))
		return NULL;
	if (!redis_key(rl->r, k[0], sizeof(k[0]),
		       message ? "send:mh:" : "send:rh:", acct) ||
	    !redis_key(rl->r, k[1], sizeof(k[1]),
		       message ? "send:md:" : "send:rd:", acct) ||
	    !redis_key(rl->r, k[2], sizeof(k[2]), "send:block:", acct))
		return NULL;
	snprintf(lh, sizeof(lh), "%u",
		 message ? p->messages_per_hour : p->recipients_per_hour);
	snprintf(ld, sizeof(ld), "%u",
		 message ? p->messages_per_day : p->recipients_per_day);
	snprintf(hms, sizeof(hms), "%llu", (unsigned long long)LIMITS_HOUR_MS);
	snprintf(dms, sizeof(dms), "%llu", (unsigned long long)LIMITS_DAY_MS);
	snprintf(vh, sizeof(vh), "%d",
		 message ? LIMITS_SEND_MESSAGES_HOUR
			 : LIMITS_SEND_RECIPIENTS_HOUR);
	snprintf(vd, sizeof(vd), "%d",
		 message ? LIMITS_SEND_MESSAGES_DAY
			 : LIMITS_SEND_RECIPIENTS_DAY);
	argv[i++] = "EVAL";
	argv[i++] = send_script;
	argv[i++] = "3";
	for (int j = 0; j < 3; j++)
		argv[i++] = k[j];
	argv[i++] = lh;
	argv[i++] = ld;
	argv[i++] = hms;
	argv[i++] = dms;
	argv[i++] = vh;
	argv[i++] = vd;
	return redis_command(rl->r, fn, arg, i, argv, NULL);
}

bool
rlimits_send_reply(const struct redisReply *rp, struct rlimits_send_answer *a)
{
	long long v;

	memset(a, 0, sizeof(*a));
	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements != 4)
		return false;
	for (size_t i = 0; i < 4; i++)
		if (rp->element[i]->type != REDIS_REPLY_INTEGER ||
		    rp->element[i]->integer < 0)
			return false;
	v = rp->element[0]->integer;
	if (v < LIMITS_SEND_OK || v > LIMITS_SEND_RECIPIENTS_DAY)
		return false;
	a->verdict = (enum limits_send_verdict)v;
	a->count = (uint64_t)rp->element[1]->integer;
	a->ttl_ms = (uint64_t)rp->element[2]->integer;
	a->block_started = rp->element[3]->integer != 0;
	return true;
}
