/*
 * Tests for the shared connection-limit table (src/net/client_limits.c):
 * table-driven scenarios of connect/disconnect/time steps with the expected
 * verdicts and counts, authentication failures with the expected delays and
 * bans, then real multi-process tests: exact counts under concurrent
 * workers, limits that hold under contention, a ban that happens exactly at
 * the threshold when several workers fail at once, and a worker killed while
 * it holds the table's mutex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#include "net/client_limits.h"

/* ---- scenarios -------------------------------------------------------- */

enum op {
	END = 0,
	CONNECT,    /* worker, addr: expect a verdict; `repeat` times */
	DISCONNECT, /* worker, addr; `repeat` times */
	ADVANCE,    /* arg ms */
	PASS,       /* addr: limits_greet_pass */
	PASSED,     /* addr: expect limits_greet_passed (0/1) */
	RESET,      /* worker: limits_worker_reset */
	IP_CONNS,   /* addr: expect limits_ip_connections */
	TOTAL,      /* expect limits_total_connections */
	AUTH_FAIL,  /* addr, account: expect the delay and `banned` */
	IS_BANNED,  /* addr: expect limits_banned (0/1); arg: until - start */
	AUTH_OK,    /* addr, account: limits_auth_success */
	REWIND,     /* arg ms: the clock goes backwards */
	STRESS,     /* expect limits_stress_update's change, then
	             * limits_stress() == arg */
};

struct step {
	enum op op;
	unsigned worker;
	const char *addr;
	uint64_t arg;
	long expect;
	unsigned repeat;
	const char *account;
	int banned;
};

/* clang-format off */
#define CONN(w, a, v) { CONNECT, w, a, 0, v, 1 }
#define CONN_N(w, a, v, n) { CONNECT, w, a, 0, v, n }
#define DISC(w, a) { DISCONNECT, w, a, 0, 0, 1 }
#define DISC_N(w, a, n) { DISCONNECT, w, a, 0, 0, n }
#define ADV(ms) { ADVANCE, 0, NULL, ms, 0, 1 }
#define GPASS(a) { PASS, 0, a, 0, 0, 1 }
#define GPASSED(a, yes) { PASSED, 0, a, 0, yes, 1 }
#define RST(w) { RESET, w, NULL, 0, 0, 1 }
#define IPN(a, n) { IP_CONNS, 0, a, 0, n, 1 }
#define TOT(n) { TOTAL, 0, NULL, 0, n, 1 }
#define FAIL(a, acct, delay, ban) { AUTH_FAIL, 0, a, 0, delay, 1, acct, ban }
#define FAIL_N(a, acct, delay, ban, n) \
	{ AUTH_FAIL, 0, a, 0, delay, n, acct, ban }
#define BANNED(a) { IS_BANNED, 0, a, 0, 0, 1 }
#define BANNED_UNTIL(a, t) { IS_BANNED, 0, a, t, 1, 1 }
#define BACK(ms) { REWIND, 0, NULL, ms, 0, 1 }
#define SUCCESS(a, acct) { AUTH_OK, 0, a, 0, 0, 1, acct }
#define STRESSED(change, on) { STRESS, 0, NULL, on, change, 1 }
/* clang-format on */

#define OK LIMITS_OK
#define TOO_MANY LIMITS_TOO_MANY_TOTAL
#define FROM_IP LIMITS_TOO_MANY_FROM_IP
#define RATE LIMITS_RATE
#define FROM_NET LIMITS_TOO_MANY_FROM_NET
#define RATE_NET LIMITS_RATE_NET
/* FAIL's `banned`: 1 this failure started a ban, 2 one was active before */
#define BEFORE 2

/*
 * Policy fields in order: total, per IP, rate count, window ms, pass ttl,
 * wide factor, stress on, stress off. Authentication policy: max failures
 * per IP, per account, window ms, ban ms, delay base ms, delay max ms, wide
 * factor. Grouping: IPv6 client prefix, wide prefix.
 */
struct scenario {
	const char *name;
	unsigned nentries;
	struct limits_policy pol;
	struct step steps[48];
	struct limits_auth_policy auth;
	struct limits_grouping grp; /* zero: each address a client (NULL) */
};

#define A "192.0.2.1"
#define B "192.0.2.2"
#define C "192.0.2.3"
#define D "192.0.2.4"

/* clang-format off */
static const struct scenario scenarios[] = {
{"per-IP limit across worker slots", 64, {0, 2, 0, 0, 0}, {
	CONN(0, A, OK), CONN(1, A, OK), CONN(0, A, FROM_IP), CONN(1, A, FROM_IP),
	CONN(0, B, OK), IPN(A, 2), IPN(B, 1), TOT(3),
	DISC(1, A), IPN(A, 1), CONN(2, A, OK), CONN(2, A, FROM_IP), IPN(A, 2),
	TOT(3)}},
{"total limit", 64, {3, 0, 0, 0, 0}, {
	CONN(0, A, OK), CONN(1, B, OK), CONN(2, C, OK), CONN(0, D, TOO_MANY),
	CONN(1, A, TOO_MANY), TOT(3), IPN(D, 0), IPN(A, 1),
	DISC(1, B), TOT(2), CONN(3, D, OK), IPN(D, 1), CONN(3, D, TOO_MANY),
	TOT(3)}},
{"total checked before per-IP", 64, {2, 1, 0, 0, 0}, {
	CONN(0, A, OK), CONN(0, B, OK), CONN(0, A, TOO_MANY),
	DISC(0, B), CONN(0, A, FROM_IP), TOT(1)}},
{"rate window rollover", 64, {0, 0, 3, 1000, 0}, {
	CONN(0, A, OK), DISC(0, A), CONN(0, A, OK), DISC(0, A),
	CONN(0, A, OK), DISC(0, A), CONN(0, A, RATE), IPN(A, 0), TOT(0),
	ADV(999), CONN(0, A, RATE), CONN(0, B, OK),
	ADV(1), CONN(0, A, OK), CONN(1, A, OK), CONN(2, A, OK),
	CONN(3, A, RATE), IPN(A, 3),
	ADV(1000), CONN(0, A, OK), IPN(A, 4), TOT(5)}},
{"rate window starts at the first attempt, not on a clock grid", 64,
    {0, 0, 1, 1000, 0}, {
	ADV(700), CONN(0, A, OK), ADV(500), CONN(0, A, RATE),
	ADV(499), CONN(0, A, RATE), ADV(1), CONN(0, A, OK)}},
{"per-IP refusals are not charged to the rate", 64, {0, 1, 2, 1000, 0}, {
	CONN(0, A, OK), CONN(0, A, FROM_IP), CONN(1, A, FROM_IP), DISC(0, A),
	CONN(0, A, OK), DISC(0, A), CONN(0, A, RATE)}},
{"stress begins at stress_on, ends below stress_off", 64,
    {8, 0, 0, 0, 0, 0, 6, 4}, {
	CONN_N(0, A, OK, 5), STRESSED(0, 0), CONN(1, B, OK), STRESSED(1, 1),
	STRESSED(0, 1), CONN_N(0, C, OK, 2), CONN(0, D, TOO_MANY),
	STRESSED(0, 1), DISC_N(0, A, 4), TOT(4), STRESSED(0, 1), DISC(1, B),
	TOT(3), STRESSED(-1, 0), STRESSED(0, 0), CONN(1, B, OK),
	STRESSED(0, 0), CONN_N(0, A, OK, 2), STRESSED(1, 1),
	RST(0), STRESSED(-1, 0)}},
{"stress_on 0: never stressed", 64, {3, 0, 0, 0, 0, 0, 0, 0}, {
	CONN_N(0, A, OK, 3), CONN(0, A, TOO_MANY), STRESSED(0, 0)}},
{"total refusals are not charged to the rate", 64, {1, 0, 2, 1000, 0}, {
	CONN(0, B, OK), CONN(0, A, TOO_MANY), CONN(0, A, TOO_MANY), DISC(0, B),
	CONN(0, A, OK), DISC(0, A), CONN(0, A, OK), DISC(0, A),
	CONN(0, A, RATE)}},
{"IPv4, IPv6 and v4-mapped IPv6", 64, {0, 2, 0, 0, 0}, {
	CONN(0, "192.0.2.1", OK), CONN(1, "::ffff:192.0.2.1", OK),
	CONN(0, "192.0.2.1", FROM_IP), CONN(2, "::ffff:192.0.2.1", FROM_IP),
	IPN("192.0.2.1", 2), IPN("::ffff:192.0.2.1", 2),
	/* v4-compatible ::a.b.c.d is a different address */
	CONN(0, "::192.0.2.1", OK), IPN("::192.0.2.1", 1),
	CONN(0, "2001:db8::1", OK), CONN(1, "2001:db8::1", OK),
	CONN(2, "2001:db8::1", FROM_IP), IPN("2001:db8::2", 0),
	CONN(0, "2001:db8::2", OK), CONN(0, "192.0.2.2", OK),
	/* connected as v4-mapped, released as plain IPv4 */
	DISC(1, "192.0.2.1"), IPN("::ffff:192.0.2.1", 1), TOT(6)}},
{"worker reset forgets exactly that slot", 64, {0, 3, 0, 0, 0}, {
	CONN(0, A, OK), CONN(0, A, OK), CONN(1, A, OK), CONN(1, B, OK),
	CONN(2, B, OK), CONN(63, C, OK), CONN(3, A, FROM_IP), TOT(6),
	RST(0), IPN(A, 1), IPN(B, 2), IPN(C, 1), TOT(4),
	CONN(3, A, OK), IPN(A, 2),
	/* a late disconnect for the reset slot changes nothing */
	DISC(0, A), DISC(0, A), IPN(A, 2), TOT(5),
	RST(1), IPN(A, 1), IPN(B, 1), TOT(3),
	DISC(1, B), IPN(B, 1), TOT(3),
	RST(63), IPN(C, 0), TOT(2)}},
{"disconnect never underflows", 64, {0, 0, 0, 0, 0}, {
	DISC(0, A), TOT(0), IPN(A, 0),
	CONN(0, A, OK), DISC_N(0, A, 3), TOT(0), IPN(A, 0),
	CONN(1, A, OK), DISC(0, A), IPN(A, 1), TOT(1)}},
{"greet pass expiry", 64, {0, 0, 0, 0, 5000}, {
	GPASSED(A, 0), GPASS(A), GPASSED(A, 1),
	GPASSED("::ffff:192.0.2.1", 1), GPASSED(B, 0),
	ADV(4999), GPASSED(A, 1), ADV(1), GPASSED(A, 0),
	GPASS(A), GPASSED(A, 1), CONN(0, A, OK),
	ADV(5000), GPASSED(A, 0), IPN(A, 1), TOT(1)}},
{"greet pass with zero ttl never passes", 64, {0, 0, 0, 0, 0}, {
	GPASS(A), GPASSED(A, 0)}},
{"set overflow: the 9th address is untracked but counted", 5,
    {0, 1, 0, 0, 0}, {
	CONN(0, "10.0.0.1", OK), CONN(0, "10.0.0.2", OK),
	CONN(0, "10.0.0.3", OK), CONN(0, "10.0.0.4", OK),
	CONN(0, "10.0.0.5", OK), CONN(0, "10.0.0.6", OK),
	CONN(0, "10.0.0.7", OK), CONN(0, "10.0.0.8", OK),
	CONN(0, "10.0.0.9", OK), IPN("10.0.0.9", 0), TOT(9),
	/* untracked: per-IP not enforced for it */
	CONN(1, "10.0.0.9", OK), TOT(10), CONN(0, "10.0.0.1", FROM_IP),
	/* an untracked disconnect lowers only the total */
	DISC(1, "10.0.0.9"), TOT(9), IPN("10.0.0.1", 1), IPN("10.0.0.8", 1),
	DISC(0, "10.0.0.1"), IPN("10.0.0.1", 0), TOT(8),
	/* the one idle entry is replaced */
	CONN(0, "10.0.0.10", OK), IPN("10.0.0.10", 1),
	CONN(0, "10.0.0.10", FROM_IP), DISC(0, "10.0.0.9"), TOT(8),
	IPN("10.0.0.10", 1), IPN("10.0.0.2", 1)}},
{"replacement prefers an expired entry over the LRU one", 8,
    {0, 0, 1, 1000, 0}, {
	CONN(0, "10.0.0.2", OK), DISC(0, "10.0.0.2"), ADV(500),
	CONN(0, "10.0.0.1", OK), DISC(0, "10.0.0.1"), ADV(100),
	/* touches .2 (used at 600) but its window began at 0 */
	CONN(0, "10.0.0.2", RATE), ADV(100),
	CONN(0, "10.0.0.3", OK), CONN(0, "10.0.0.4", OK),
	CONN(0, "10.0.0.5", OK), CONN(0, "10.0.0.6", OK),
	CONN(0, "10.0.0.7", OK), CONN(0, "10.0.0.8", OK),
	DISC(0, "10.0.0.3"), DISC(0, "10.0.0.4"), DISC(0, "10.0.0.5"),
	DISC(0, "10.0.0.6"), DISC(0, "10.0.0.7"), DISC(0, "10.0.0.8"),
	ADV(500),
	/* t=1200: .1 is least recently used but its window is live */
	CONN(0, "10.0.0.9", OK), IPN("10.0.0.9", 1),
	/* every other entry kept its window, so .2 was the one replaced */
	CONN(0, "10.0.0.1", RATE), CONN(0, "10.0.0.3", RATE),
	CONN(0, "10.0.0.4", RATE), CONN(0, "10.0.0.5", RATE),
	CONN(0, "10.0.0.6", RATE), CONN(0, "10.0.0.7", RATE),
	CONN(0, "10.0.0.8", RATE)}},
{"replacement falls back to the LRU idle entry", 8, {0, 0, 1, 1000, 0}, {
	CONN(0, "10.0.0.1", OK), DISC(0, "10.0.0.1"), ADV(1),
	CONN(0, "10.0.0.2", OK), ADV(1), CONN(0, "10.0.0.3", OK), ADV(1),
	CONN(0, "10.0.0.4", OK), ADV(1), CONN(0, "10.0.0.5", OK), ADV(1),
	CONN(0, "10.0.0.6", OK), ADV(1), CONN(0, "10.0.0.7", OK), ADV(1),
	CONN(0, "10.0.0.8", OK), ADV(1),
	/* only .1 is idle: it goes, window and all */
	CONN(0, "10.0.0.9", OK), CONN(0, "10.0.0.1", OK),
	IPN("10.0.0.1", 0), TOT(9)}},
{"unlimited when every limit is zero", 0, {0, 0, 0, 1000, 0}, {
	CONN_N(0, A, OK, 1000), CONN_N(1, A, OK, 1000), IPN(A, 2000),
	TOT(2000), DISC_N(0, A, 1000), IPN(A, 1000), TOT(1000)}},
{"a worker's count for one address saturates, the total does not", 64,
    {0, 0, 0, 0, 0}, {
	CONN_N(0, A, OK, 70000), IPN(A, 65535), TOT(70000),
	CONN(1, A, OK), IPN(A, 65536),
	DISC_N(0, A, 70000), IPN(A, 1), TOT(1)}},
{"non-IP addresses count in the total only", 64, {0, 1, 1, 1000, 0}, {
	CONN(0, "unix", OK), CONN(0, "unix", OK), CONN(1, NULL, OK), TOT(3),
	IPN("unix", 0), IPN(NULL, 0),
	DISC(0, "unix"), DISC(1, NULL), TOT(1),
	GPASS("unix"), GPASSED("unix", 0)}},

/* ---- authentication failures ---- */
{"auth: delays grow and cap, ban at the threshold", 64, {0}, {
	FAIL(A, NULL, 1000, 0), FAIL(A, NULL, 2000, 0), FAIL(A, NULL, 4000, 0),
	BANNED(A), FAIL(A, NULL, 8000, 0), FAIL(A, NULL, 8000, 0), BANNED(A),
	ADV(10), FAIL(A, NULL, 8000, 1), BANNED_UNTIL(A, 10 + 300000),
	BANNED_UNTIL("::ffff:192.0.2.1", 300010),
	BANNED(B), FAIL(B, NULL, 1000, 0),
	/* a session still mid-AUTH fails during the ban: no extension,
	 * and not counted (the session is told nothing) */
	ADV(1000), FAIL(A, NULL, 8000, BEFORE), BANNED_UNTIL(A, 300010)},
	{6, 0, 60000, 300000, 1000, 8000}},
{"auth: ban expiry, and the ban used up the count", 64, {0}, {
	FAIL_N(A, NULL, 0, 0, 2), FAIL(A, NULL, 0, 1), BANNED_UNTIL(A, 10000),
	ADV(9999), BANNED_UNTIL(A, 10000), FAIL(A, NULL, 0, BEFORE),
	ADV(1), BANNED(A), FAIL(A, NULL, 0, 0), FAIL(A, NULL, 0, 0),
	BANNED(A), FAIL(A, NULL, 0, 1), BANNED_UNTIL(A, 20000)},
	{3, 0, 60000, 10000, 0, 0}},
{"auth: window expiry resets counts", 64, {0}, {
	FAIL(A, NULL, 1000, 0), ADV(999), FAIL(A, NULL, 2000, 0),
	/* the window began with the first failure: it ends now */
	ADV(1), FAIL(A, NULL, 1000, 0), ADV(500), FAIL(A, NULL, 2000, 0),
	ADV(499), FAIL(A, NULL, 4000, 1), BANNED_UNTIL(A, 1999 + 5000)},
	{3, 0, 1000, 5000, 1000, 60000}},
{"auth: a clock that goes backwards starts a new window", 64, {0}, {
	ADV(5000), FAIL(A, NULL, 1000, 0), FAIL(A, NULL, 2000, 0),
	BACK(1), FAIL(A, NULL, 1000, 0), FAIL(A, NULL, 2000, 0),
	/* far back: the window would otherwise last 5001 ms */
	BACK(4000), FAIL(A, NULL, 1000, 0), ADV(999), FAIL(A, NULL, 2000, 0)},
	{10, 0, 1000, 5000, 1000, 60000}},
{"auth: account delays across addresses, never a ban", 64, {0}, {
	FAIL("10.0.0.1", "alice", 1000, 0),
	FAIL("10.0.0.2", "alice", 2000, 0),
	FAIL("10.0.0.3", "ALICE", 4000, 0),
	/* the 4th failure reaches max_failures_account: full brake */
	FAIL("10.0.0.4", "Alice", 16000, 0),
	FAIL("10.0.0.5", "alice", 16000, 0),
	FAIL("2001:db8::5", "aLiCe", 16000, 0),
	FAIL("10.0.0.6", "bob", 1000, 0),
	/* the address's own count wins when it is larger */
	FAIL("10.0.0.6", "carol", 2000, 0), FAIL("10.0.0.6", "dave", 4000, 0),
	FAIL("10.0.0.1", "alice", 16000, 0),
	BANNED("10.0.0.1"), BANNED("10.0.0.4"), BANNED("10.0.0.6"),
	/* the account window ends like the address's */
	ADV(60000), FAIL("10.0.0.7", "alice", 1000, 0),
	/* a NUL-only name and no name are not accounts */
	FAIL("10.0.0.8", "", 1000, 0), FAIL("10.0.0.9", "", 1000, 0),
	FAIL("10.0.0.10", NULL, 1000, 0), FAIL("10.0.0.11", NULL, 1000, 0)},
	{0, 4, 60000, 300000, 1000, 16000}},
{"auth: account counting off", 64, {0}, {
	FAIL("10.0.0.1", "alice", 1000, 0), FAIL("10.0.0.2", "alice", 1000, 0),
	FAIL("10.0.0.3", "alice", 1000, 0)},
	{0, 0, 60000, 300000, 1000, 16000}},
{"auth: success clears the account, not the address", 64, {0}, {
	FAIL(A, "alice", 1000, 0), FAIL(A, "alice", 2000, 0),
	SUCCESS(A, "Alice"),
	/* alice starts again, from another address */
	FAIL(B, "alice", 1000, 0),
	/* but A keeps its count: 3rd, then 4th = the threshold */
	FAIL(A, "alice", 4000, 0), FAIL(A, "dave", 8000, 1),
	BANNED_UNTIL(A, 300000),
	/* a success for another account leaves erin's count alone */
	FAIL(C, "erin", 1000, 0), FAIL(D, "erin", 2000, 0),
	SUCCESS(C, "alice"), SUCCESS(C, NULL), SUCCESS(C, ""),
	FAIL("192.0.2.5", "erin", 4000, 0),
	/* and a success does not lift a ban */
	SUCCESS(A, "dave"), BANNED_UNTIL(A, 300000)},
	{4, 10, 60000, 300000, 1000, 64000}},
{"auth: IPv4 and v4-mapped IPv6 are one address", 64, {0}, {
	FAIL("192.0.2.9", NULL, 1000, 0),
	FAIL("::ffff:192.0.2.9", NULL, 2000, 0),
	BANNED("192.0.2.9"), FAIL("192.0.2.9", NULL, 4000, 1),
	BANNED_UNTIL("::ffff:192.0.2.9", 7000),
	BANNED_UNTIL("192.0.2.9", 7000),
	/* v4-compatible and neighbours are other addresses */
	BANNED("::192.0.2.9"), BANNED("192.0.2.10"),
	FAIL("::192.0.2.9", NULL, 1000, 0)},
	{3, 0, 60000, 7000, 1000, 64000}},
{"auth: no bans when max_failures_ip is 0; non-IP clients", 64, {0}, {
	FAIL(A, NULL, 1000, 0), FAIL(A, NULL, 2000, 0),
	FAIL_N(A, NULL, 4000, 0, 200), BANNED(A),
	FAIL("unix", NULL, 0, 0), FAIL(NULL, NULL, 0, 0),
	FAIL("unix", "zed", 1000, 0), FAIL(NULL, "zed", 2000, 0),
	BANNED("unix"), BANNED(NULL), SUCCESS(NULL, "zed"),
	FAIL("unix", "zed", 1000, 0)},
	{0, 5, 60000, 7000, 1000, 4000}},
{"auth: a ban is never evicted by connection churn", 8, {0}, {
	FAIL("10.0.0.1", NULL, 1000, 1), ADV(1),
	CONN(0, "10.0.0.2", OK), DISC(0, "10.0.0.2"), ADV(1),
	CONN(0, "10.0.0.3", OK), DISC(0, "10.0.0.3"), ADV(1),
	CONN(0, "10.0.0.4", OK), DISC(0, "10.0.0.4"), ADV(1),
	CONN(0, "10.0.0.5", OK), DISC(0, "10.0.0.5"), ADV(1),
	CONN(0, "10.0.0.6", OK), DISC(0, "10.0.0.6"), ADV(1),
	CONN(0, "10.0.0.7", OK), DISC(0, "10.0.0.7"), ADV(1),
	CONN(0, "10.0.0.8", OK), DISC(0, "10.0.0.8"), ADV(1),
	CONN(0, "10.0.0.9", OK), DISC(0, "10.0.0.9"), ADV(1),
	CONN(0, "10.0.0.10", OK), DISC(0, "10.0.0.10"), ADV(1),
	GPASS("10.0.0.11"), GPASS("10.0.0.12"), GPASS("10.0.0.13"),
	BANNED_UNTIL("10.0.0.1", 1000),
	/* once the ban is over, it is an ordinary idle entry */
	ADV(1000), BANNED("10.0.0.1")},
	{1, 0, 60000, 1000, 1000, 8000}},
{"auth: a set full of bans leaves the next address untracked", 8, {0}, {
	FAIL("10.0.0.1", NULL, 1000, 1), FAIL("10.0.0.2", NULL, 1000, 1),
	FAIL("10.0.0.3", NULL, 1000, 1), FAIL("10.0.0.4", NULL, 1000, 1),
	FAIL("10.0.0.5", NULL, 1000, 1), FAIL("10.0.0.6", NULL, 1000, 1),
	FAIL("10.0.0.7", NULL, 1000, 1), FAIL("10.0.0.8", NULL, 1000, 1),
	/* untracked: not let off, the longest delay, but no ban */
	FAIL("10.0.0.9", NULL, 8000, 0), BANNED("10.0.0.9"),
	FAIL("10.0.0.9", "alice", 8000, 0),
	CONN(0, "10.0.0.9", OK), IPN("10.0.0.9", 0), DISC(0, "10.0.0.9"),
	BANNED_UNTIL("10.0.0.1", 5000), BANNED_UNTIL("10.0.0.8", 5000),
	ADV(5000), BANNED("10.0.0.1"),
	FAIL("10.0.0.9", NULL, 1000, 1), BANNED_UNTIL("10.0.0.9", 10000)},
	{1, 10, 60000, 5000, 1000, 8000}},
{"auth: failures make an entry outlive idle ones", 8, {0, 0, 0, 0, 0}, {
	FAIL("10.0.0.1", NULL, 1000, 0), ADV(1),
	CONN(0, "10.0.0.2", OK), DISC(0, "10.0.0.2"), ADV(1),
	CONN(0, "10.0.0.3", OK), DISC(0, "10.0.0.3"), ADV(1),
	CONN(0, "10.0.0.4", OK), DISC(0, "10.0.0.4"), ADV(1),
	CONN(0, "10.0.0.5", OK), DISC(0, "10.0.0.5"), ADV(1),
	CONN(0, "10.0.0.6", OK), DISC(0, "10.0.0.6"), ADV(1),
	CONN(0, "10.0.0.7", OK), DISC(0, "10.0.0.7"), ADV(1),
	CONN(0, "10.0.0.8", OK), DISC(0, "10.0.0.8"), ADV(1),
	/* .1 is the least recently used, but its failures are live */
	CONN(0, "10.0.0.9", OK), DISC(0, "10.0.0.9"),
	FAIL("10.0.0.1", NULL, 2000, 0)},
	{10, 0, 60000, 5000, 1000, 8000}},

/* ---- IPv6 clients grouped by prefix ---- */
{"v6: every address of a /64 is one client", 64, {0, 2, 0, 0, 0, 0}, {
	CONN(0, "2001:db8:1:2::1", OK), CONN(1, "2001:db8:1:2::ffff", OK),
	CONN(2, "2001:db8:1:2:abcd:ef01:2345:6789", FROM_IP),
	CONN(0, "2001:db8:1:2::2", FROM_IP), IPN("2001:db8:1:2::77", 2),
	/* the next /64 is another client */
	CONN(0, "2001:db8:1:3::1", OK), IPN("2001:db8:1:3::2", 1),
	/* a disconnect from any address of the /64 frees its slot */
	DISC(1, "2001:db8:1:2::ffff"), IPN("2001:db8:1:2::1", 1),
	CONN(1, "2001:db8:1:2::99", OK), TOT(3)},
	{0}, {64, 48}},
{"v6: /56 grouping; IPv4 and v4-mapped never grouped", 64,
    {0, 1, 0, 0, 0, 0}, {
	CONN(0, "2001:db8:0:ff::1", OK), CONN(0, "2001:db8:0:1::1", FROM_IP),
	CONN(0, "2001:db8:0:100::1", OK),
	CONN(0, "192.0.2.1", OK), CONN(0, "192.0.2.2", OK),
	CONN(0, "::ffff:192.0.2.3", OK), CONN(0, "::ffff:192.0.2.1", FROM_IP),
	IPN("::ffff:192.0.2.2", 1), TOT(5)},
	{0}, {56, 0}},
{"v6: the connection rate is per /64", 64, {0, 0, 2, 1000, 0, 0}, {
	CONN(0, "2001:db8:1:2::1", OK), CONN(0, "2001:db8:1:2::2", OK),
	CONN(0, "2001:db8:1:2::3", RATE), CONN(0, "2001:db8:1:4::1", OK),
	ADV(1000), CONN(0, "2001:db8:1:2::3", OK)},
	{0}, {64, 48}},
{"v6: early-talker passes are per /64", 64, {0, 0, 0, 0, 5000, 0}, {
	GPASS("2001:db8:1:2::1"), GPASSED("2001:db8:1:2::2", 1),
	GPASSED("2001:db8:1:2:ffff::", 1), GPASSED("2001:db8:1:3::1", 0),
	ADV(5000), GPASSED("2001:db8:1:2::2", 0)},
	{0}, {64, 48}},
{"v6: the /48's wider budget for connections", 256, {0, 1, 0, 0, 0, 3}, {
	CONN(0, "2001:db8:1:1::1", OK), CONN(0, "2001:db8:1:2::1", OK),
	CONN(0, "2001:db8:1:3::1", OK),
	/* a fourth /64 of the same /48: the /48's budget (1 * 3) is spent */
	CONN(0, "2001:db8:1:4::1", FROM_NET),
	/* the /64's own limit still comes first */
	CONN(0, "2001:db8:1:1::2", FROM_IP),
	/* another /48 is untouched */
	CONN(0, "2001:db8:2:4::1", OK),
	DISC(0, "2001:db8:1:2::1"), CONN(0, "2001:db8:1:4::1", OK), TOT(4),
	/* IPv4 has no wide network */
	CONN(0, "192.0.2.1", OK), CONN(0, "192.0.2.2", OK),
	CONN(0, "192.0.2.3", OK), CONN(0, "192.0.2.4", OK)},
	{0}, {64, 48}},
{"v6: wide factor 0 turns the wider budget off", 64, {0, 1, 0, 0, 0, 0}, {
	CONN(0, "2001:db8:1:1::1", OK), CONN(0, "2001:db8:1:2::1", OK),
	CONN(0, "2001:db8:1:3::1", OK), CONN(0, "2001:db8:1:4::1", OK),
	CONN(0, "2001:db8:1:5::1", OK)},
	{0}, {64, 48}},
{"v6: the /48's wider budget for the rate", 256, {0, 0, 1, 1000, 0, 2}, {
	CONN(0, "2001:db8:1:1::1", OK), CONN(0, "2001:db8:1:1::2", RATE),
	CONN(0, "2001:db8:1:2::1", RATE_NET),
	CONN(0, "2001:db8:2:1::1", OK), ADV(1000),
	CONN(0, "2001:db8:1:2::1", OK)},
	{0}, {64, 48}},
{"v6: failures from a /64 ban the whole /64", 64, {0}, {
	FAIL("2001:db8:1:2::1", NULL, 1000, 0),
	FAIL("2001:db8:1:2::2", NULL, 2000, 0),
	FAIL("2001:db8:1:2:dead:beef::1", NULL, 4000, 1),
	BANNED_UNTIL("2001:db8:1:2::99", 5000), BANNED("2001:db8:1:3::1"),
	/* a session of the /64 mid-exchange: not counted, not told */
	FAIL("2001:db8:1:2::7", NULL, 8000, BEFORE),
	FAIL("2001:db8:1:3::1", NULL, 1000, 0),
	ADV(5000), BANNED("2001:db8:1:2::99"),
	FAIL("2001:db8:1:2::1", NULL, 1000, 0)},
	{3, 0, 60000, 5000, 1000, 8000, 0}, {64, 48}},
{"v6: rotating /64s inside a /48 bans the /48", 256, {0}, {
	FAIL("2001:db8:1:1::1", NULL, 1000, 0),
	FAIL("2001:db8:1:2::1", NULL, 1000, 0),
	FAIL("2001:db8:1:3::1", NULL, 1000, 0),
	FAIL("2001:db8:1:4::1", NULL, 1000, 0),
	FAIL("2001:db8:1:5::1", NULL, 1000, 0),
	/* the 6th failure of the /48 (2 * 3): the /48 is banned */
	FAIL("2001:db8:1:6::1", NULL, 1000, 1),
	BANNED_UNTIL("2001:db8:1:ffff::1", 5000),
	BANNED_UNTIL("2001:db8:1:1::1", 5000),
	FAIL("2001:db8:1:7::1", NULL, 8000, BEFORE),
	BANNED("2001:db8:2:1::1"), FAIL("2001:db8:2:1::1", NULL, 1000, 0),
	/* the /48's count was used up; the /64's own (1) was not */
	ADV(5000), BANNED("2001:db8:1:1::1"),
	FAIL("2001:db8:1:1::1", NULL, 2000, 1)},
	{2, 0, 60000, 5000, 1000, 8000, 3}, {64, 48}},
};
/* clang-format on */

/* "unix" builds an AF_UNIX address; NULL passes a NULL sockaddr. */
static const struct sockaddr *
make_addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (s == NULL)
		return NULL;
	if (strcmp(s, "unix") == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		sun->sun_family = AF_UNIX;
		return (struct sockaddr *)ss;
	}
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, s, &sin6->sin6_addr) != 1)
			fail_msg("bad test address %s", s);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		if (inet_pton(AF_INET, s, &sin->sin_addr) != 1)
			fail_msg("bad test address %s", s);
	}
	return (struct sockaddr *)ss;
}

/* The old shape: the delay, and whether a ban started or was active. */
static uint64_t
auth_fail(struct limits *l, const struct limits_auth_policy *p,
          const struct sockaddr *sa, const char *account, uint64_t now,
          bool *banned_r)
{
	struct limits_auth_verdict v;

	limits_auth_failure(l, p, sa, account, now, &v);
	*banned_r = v.ban_started || v.banned_before;
	return v.delay_ms;
}

static void
run_scenario(const struct scenario *sc)
{
	struct limits *l = limits_create(
	    sc->nentries, sc->grp.ipv6_prefix != 0 ? &sc->grp : NULL);
	struct sockaddr_storage ss;
	const struct sockaddr *sa;
	const uint64_t start = 1000000;
	uint64_t now = start, until;
	struct limits_auth_verdict v;
	int banned;
	long got;
	size_t i;
	unsigned r;

	assert_non_null(l);
	for (i = 0; i < sizeof(sc->steps) / sizeof(sc->steps[0]); i++) {
		const struct step *st = &sc->steps[i];

		if (st->op == END)
			break;
		sa = make_addr(st->addr, &ss);
		for (r = 0; r < st->repeat; r++) {
			switch (st->op) {
			case CONNECT:
				got = limits_connect(l, &sc->pol, st->worker,
				                     sa, now);
				break;
			case DISCONNECT:
				limits_disconnect(l, st->worker, sa);
				continue;
			case ADVANCE:
				now += st->arg;
				continue;
			case PASS:
				limits_greet_pass(l, &sc->pol, sa, now);
				continue;
			case PASSED:
				got = limits_greet_passed(l, sa, now);
				break;
			case RESET:
				limits_worker_reset(l, st->worker);
				continue;
			case IP_CONNS:
				got = limits_ip_connections(l, sa);
				break;
			case TOTAL:
				got = limits_total_connections(l);
				break;
			case AUTH_FAIL:
				limits_auth_failure(l, &sc->auth, sa,
				                    st->account, now, &v);
				got = (long)v.delay_ms;
				banned = v.ban_started     ? 1
				         : v.banned_before ? BEFORE
				                           : 0;
				if (v.ban_started && v.banned_before)
					fail_msg("%s: started and before",
					         sc->name);
				if (banned != st->banned)
					fail_msg("scenario \"%s\", step %zu "
					         "(%s, repeat %u): banned %d",
					         sc->name, i,
					         st->addr ? st->addr : "-", r,
					         banned);
				break;
			case IS_BANNED:
				until = 0;
				got = limits_banned(l, sa, now, &until, NULL);
				if (got && st->expect &&
				    until != start + st->arg)
					fail_msg("scenario \"%s\", step %zu: "
					         "banned until +%llu, expected "
					         "+%llu",
					         sc->name, i,
					         (unsigned long long)(until -
					                              start),
					         (unsigned long long)st->arg);
				break;
			case REWIND:
				now -= st->arg;
				continue;
			case AUTH_OK:
				limits_auth_success(l, sa, st->account, now);
				continue;
			case STRESS:
				got = limits_stress_update(l, &sc->pol, NULL);
				if (limits_stress(l) != (st->arg != 0))
					fail_msg("scenario \"%s\", step %zu: "
					         "stress %d",
					         sc->name, i, limits_stress(l));
				break;
			default:
				fail_msg("%s: bad op", sc->name);
			}
			if (got != st->expect)
				fail_msg(
				    "scenario \"%s\", step %zu (op %d, %s, "
				    "repeat %u): got %ld, expected %ld",
				    sc->name, i, st->op,
				    st->addr ? st->addr : "-", r, got,
				    st->expect);
		}
	}
	assert_true(i > 0);
	limits_destroy(&l);
	assert_null(l);
}

static void
test_scenarios(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_scenario(&scenarios[i]);
}

static void
test_verdict_text(void **state)
{
	static const struct {
		enum limits_verdict v;
		const char *text;
	} cases[] = {
	    {LIMITS_TOO_MANY_TOTAL, "too many connections"},
	    {LIMITS_TOO_MANY_FROM_IP, "too many connections from your address"},
	    {LIMITS_RATE, "connection rate limit exceeded"},
	    {LIMITS_OK, "ok"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(limits_verdict_text(cases[i].v),
		                    cases[i].text);
	assert_non_null(limits_verdict_text((enum limits_verdict)99));
}

/* The n-th failure's delay, min(base * 2^(n-1), max), never wraps. */
/*
 * The counts a failure reports for the alerts: per address, per account,
 * and the addresses that began failing in the server's window.
 */
static void
test_auth_counts_for_alerts(void **state)
{
	static const struct {
		const char *addr, *account;
		uint64_t at;
		uint32_t ip, acc, ips;
		bool ban;
	} steps[] = {
	    {"192.0.2.1", "x@t", 0, 1, 1, 1, false},
	    {"192.0.2.1", "x@t", 10, 2, 2, 1, false},
	    {"192.0.2.2", "x@t", 20, 1, 3, 2, false},
	    {"192.0.2.3", "y@t", 30, 1, 1, 3, false},
	    {"192.0.2.1", "X@T", 40, 3, 4, 3, true}, /* the ban uses it up */
	    {"192.0.2.2", NULL, 50, 2, 0, 3, false},
	    /* the server's window (and each address's) ends */
	    {"192.0.2.2", "x@t", 60 + 3600000, 1, 1, 1, false},
	};
	const struct limits_auth_policy p = {
	    .max_failures_ip = 3, .max_failures_account = 100,
	    .window_ms = 3600000, .ban_ms = 1000, .delay_max_ms = 10};
	struct limits *l = limits_create(64, NULL);
	struct sockaddr_storage ss;

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct limits_auth_verdict v;

		limits_auth_failure(l, &p, make_addr(steps[i].addr, &ss),
				    steps[i].account, 1000 + steps[i].at, &v);
		if (v.ip_failures != steps[i].ip ||
		    v.account_failures != steps[i].acc ||
		    v.failing_ips != steps[i].ips ||
		    v.ban_started != steps[i].ban) {
			print_error("step %zu: ip %u acc %u ips %u ban %d\n",
				    i, v.ip_failures, v.account_failures,
				    v.failing_ips, v.ban_started);
			fail();
		}
	}
	limits_destroy(&l);
}

static void
test_auth_delay_saturates(void **state)
{
	static const struct {
		uint64_t base, max;
		unsigned n;
		uint64_t delay;
	} cases[] = {
	    {1000, 8000, 1, 1000},
	    {1000, 8000, 4, 8000},
	    {1000, 8000, 5, 8000},
	    {1000, 6000, 3, 4000},
	    {1000, 6000, 4, 6000},
	    {1, UINT64_MAX, 64, UINT64_C(1) << 63},
	    {1, UINT64_MAX, 65, UINT64_MAX},
	    {1, UINT64_MAX, 1000, UINT64_MAX},
	    {3, UINT64_MAX, 63, UINT64_C(3) << 62},
	    {3, UINT64_MAX, 64, UINT64_MAX}, /* 3 * 2^63 overflows */
	    {3, UINT64_MAX - 1, 64, UINT64_MAX - 1},
	    {UINT64_MAX, UINT64_MAX, 1, UINT64_MAX},
	    {UINT64_MAX, UINT64_MAX, 2, UINT64_MAX},
	    {0, 5000, 10, 0},
	    {1000, 0, 3, 0},
	};
	struct sockaddr_storage ss;
	const struct sockaddr *sa = make_addr("203.0.113.1", &ss);
	size_t i;
	unsigned j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct limits_auth_policy p = {
		    0, 0, UINT64_MAX, 0, cases[i].base, cases[i].max};
		struct limits *l = limits_create(64, NULL);
		uint64_t d = 0;
		bool banned = true;

		assert_non_null(l);
		for (j = 0; j < cases[i].n; j++)
			d = auth_fail(l, &p, sa, "x", 1, &banned);
		if (d != cases[i].delay || banned)
			fail_msg("case %zu: delay %llu banned %d, expected "
			         "%llu",
			         i, (unsigned long long)d, banned,
			         (unsigned long long)cases[i].delay);
		limits_destroy(&l);
	}
}

/* What the logs say (net=), which ban applies, and groupings refused. */
static void
test_net_text_and_grouping(void **state)
{
	static const struct {
		const char *addr;
		unsigned prefix, wide;
		const char *net, *wide_net;
	} cases[] = {
	    {"2001:db8:1:2:3:4:5:6", 64, 48, "2001:db8:1:2::/64",
	     "2001:db8:1::/48"},
	    {"2001:db8:1:2:3:4:5:6", 128, 0, "2001:db8:1:2:3:4:5:6/128", ""},
	    {"2001:db8:1:2ff::1", 56, 40, "2001:db8:1:200::/56",
	     "2001:db8::/40"},
	    {"2001:db8:1:2ff::1", 61, 17, "2001:db8:1:2f8::/61",
	     "2001::/17"},
	    {"192.0.2.7", 64, 48, "192.0.2.7/32", ""},
	    {"::ffff:192.0.2.7", 64, 48, "192.0.2.7/32", ""},
	    {"unix", 64, 48, "", ""},
	};
	struct sockaddr_storage ss;
	const struct sockaddr *sa;
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct limits_grouping g = {cases[i].prefix, cases[i].wide};
		struct limits *l = limits_create(8, &g);

		assert_non_null(l);
		sa = make_addr(cases[i].addr, &ss);
		limits_net_text(l, sa, false, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].net);
		limits_net_text(l, sa, true, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].wide_net);
		limits_destroy(&l);
	}
	errno = 0;
	assert_null(limits_create(8, &(struct limits_grouping){0, 0}));
	assert_int_equal(errno, EINVAL);
	assert_null(limits_create(8, &(struct limits_grouping){129, 0}));
	assert_null(limits_create(8, &(struct limits_grouping){64, 64}));
	assert_null(limits_create(8, &(struct limits_grouping){64, 80}));
	assert_true(limits_verdict_wide(LIMITS_TOO_MANY_FROM_NET));
	assert_true(limits_verdict_wide(LIMITS_RATE_NET));
	assert_false(limits_verdict_wide(LIMITS_TOO_MANY_FROM_IP));
	assert_false(limits_verdict_wide(LIMITS_RATE));

	/* limits_banned says which network is banned, and until when */
	{
		const struct limits_auth_policy p = {2, 0, 60000, 5000, 0, 0,
		                                     2};
		struct limits *l =
		    limits_create(256, &(struct limits_grouping){64, 48});
		struct limits_auth_verdict v;
		uint64_t until = 0;
		bool wide = true;

		assert_non_null(l);
		sa = make_addr("2001:db8:1:1::1", &ss);
		limits_auth_failure(l, &p, sa, NULL, 10, &v);
		assert_false(v.ban_started);
		limits_auth_failure(l, &p, sa, NULL, 20, &v);
		assert_true(v.ban_started);
		assert_false(v.wide);
		assert_true(limits_banned(l, sa, 30, &until, &wide));
		assert_false(wide);
		assert_int_equal(until, 5020);
		sa = make_addr("2001:db8:1:2::1", &ss);
		limits_auth_failure(l, &p, sa, NULL, 40, &v);
		assert_false(v.ban_started); /* the /48 has 3 of 4 */
		limits_auth_failure(l, &p, sa, NULL, 50, &v);
		assert_true(v.ban_started); /* both at once: the /64 named */
		assert_false(v.wide);
		sa = make_addr("2001:db8:1:3::1", &ss);
		assert_true(limits_banned(l, sa, 60, &until, &wide));
		assert_true(wide);
		assert_int_equal(until, 5050);
		limits_auth_failure(l, &p, sa, NULL, 70, &v);
		assert_true(v.banned_before);
		assert_true(v.wide);
		limits_destroy(&l);
	}
}

static const struct sockaddr *
v4(struct sockaddr_storage *ss, unsigned a, unsigned b, unsigned c)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "10.%u.%u.%u", a & 255, b & 255, c & 255);
	return make_addr(buf, ss);
}

/*
 * Exactly 8 addresses per set can hold connections. With many more
 * addresses than entries every set gets at least 8 of them (the odds
 * against are astronomically small), so the tracked addresses fill the
 * table exactly, and the total still counts them all.
 */
static void
test_table_capacity(void **state)
{
	static const struct {
		unsigned nentries, naddrs, tracked;
	} cases[] = {
	    {8, 9, 8},      {16, 200, 16},
	    {24, 400, 24},  {17, 600, 24}, /* rounded up to 24 */
	    {1024, 10, 10},
	};
	const struct limits_policy pol = {0, 1, 0, 0, 0};
	struct sockaddr_storage ss;
	size_t i;
	unsigned j, sum, untracked;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct limits *l = limits_create(cases[i].nentries, NULL);

		assert_non_null(l);
		for (j = 0; j < cases[i].naddrs; j++)
			assert_int_equal(limits_connect(l, &pol, 0,
			                                v4(&ss, 9, j >> 8, j),
			                                0),
			                 LIMITS_OK);
		assert_int_equal(limits_total_connections(l), cases[i].naddrs);
		for (sum = 0, untracked = 0, j = 0; j < cases[i].naddrs; j++) {
			unsigned n =
			    limits_ip_connections(l, v4(&ss, 9, j >> 8, j));

			assert_true(n <= 1);
			sum += n;
			untracked += n == 0;
		}
		assert_int_equal(sum, cases[i].tracked);
		assert_int_equal(untracked, cases[i].naddrs - cases[i].tracked);
		for (j = 0; j < cases[i].naddrs; j++)
			limits_disconnect(l, 0, v4(&ss, 9, j >> 8, j));
		assert_int_equal(limits_total_connections(l), 0);
		for (j = 0; j < cases[i].naddrs; j++)
			assert_int_equal(
			    limits_ip_connections(l, v4(&ss, 9, j >> 8, j)), 0);
		limits_destroy(&l);
	}
}

/*
 * An address whose 16 bytes are exactly an account's key must still be a
 * different entry. The table has one set, so both keys land in it and only
 * the entry's kind keeps them apart.
 */
static void
test_account_key_never_collides(void **state)
{
	const struct limits_auth_policy p = {5, 100, 60000, 300000, 1000,
	                                     UINT64_MAX};
	struct limits *l = limits_create(8, NULL);
	struct sockaddr_storage ss, xs, ys;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	const struct sockaddr *coll = (const struct sockaddr *)&ss;
	const struct sockaddr *x = make_addr("198.51.100.1", &xs);
	const struct sockaddr *y = make_addr("198.51.100.2", &ys);
	uint8_t key[16], key2[16];
	bool banned;
	unsigned i;

	(void)state;
	assert_non_null(l);
	assert_false(limits_account_key(l, NULL, key));
	assert_false(limits_account_key(l, "", key));
	assert_true(limits_account_key(l, "Victim@Example.ORG", key2));
	assert_true(limits_account_key(l, "victim@example.org", key));
	assert_memory_equal(key, key2, 16);
	assert_true(limits_account_key(l, "victim@example.orh", key2));
	assert_memory_not_equal(key, key2, 16);

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, key, 16);

	/* Four failures on the account from x: its count is 4. */
	for (i = 1; i <= 4; i++)
		assert_int_equal(auth_fail(l, &p, x,
		                                     "victim@example.org", 0,
		                                     &banned),
		                 1000u << (i - 1));
	/* The look-alike address has no count and no ban of its own. */
	assert_false(limits_banned(l, coll, 0, NULL, NULL));
	assert_int_equal(auth_fail(l, &p, coll, NULL, 0, &banned),
	                 1000);
	assert_false(banned);
	for (i = 2; i <= 4; i++)
		assert_int_equal(
		    auth_fail(l, &p, coll, NULL, 0, &banned),
		    1000u << (i - 1));
	/* The 5th bans it; the ban resets its count, not the account's. */
	assert_int_equal(auth_fail(l, &p, coll, NULL, 0, &banned),
	                 16000);
	assert_true(banned);
	assert_true(limits_banned(l, coll, 0, NULL, NULL));
	assert_int_equal(auth_fail(l, &p, y, "victim@example.org", 0,
	                                     &banned),
	                 16000); /* account's 5th; y's first */
	assert_false(banned);
	assert_false(limits_banned(l, y, 0, NULL, NULL));
	assert_false(limits_banned(l, x, 0, NULL, NULL));

	/* Clearing the account leaves the address's ban alone, and back. */
	limits_auth_success(l, y, "victim@example.org", 0);
	assert_true(limits_banned(l, coll, 0, NULL, NULL));
	assert_int_equal(auth_fail(l, &p, NULL, "victim@example.org",
	                                     0, &banned),
	                 1000);
	/* connections from the look-alike address are its own, too */
	assert_int_equal(limits_connect(l, &(struct limits_policy){0, 1, 0, 0,
	                                                          0},
	                                0, coll, 0),
	                 LIMITS_OK);
	assert_int_equal(limits_ip_connections(l, coll), 1);
	limits_destroy(&l);
}

/* ---- several processes ------------------------------------------------ */

#define NCHILD 6
#define ITER 20000
#define HOLD 4   /* connections each child keeps open at any time */
#define NADDR 16 /* addresses shared by all children */

static pid_t
spawn(void (*fn)(struct limits *, unsigned, int), struct limits *l, unsigned i,
      int fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		fn(l, i, fd); /* never returns */
	return pid;
}

/* Waits for the parent to close the pipe, so the children start together. */
static void
wait_start(int fd)
{
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

static void
churn_child(struct limits *l, unsigned i, int fd)
{
	const struct limits_policy pol = {0, 0, 0, 0, 0};
	struct sockaddr_storage ss;
	unsigned j, worker = i % 2;

	wait_start(fd);
	for (j = 0; j < ITER; j++) {
		if (limits_connect(l, &pol, worker, v4(&ss, 1, 0, j % NADDR),
		                   j) != LIMITS_OK)
			_exit(1);
		if (j >= HOLD)
			limits_disconnect(l, worker,
			                  v4(&ss, 1, 0, (j - HOLD) % NADDR));
	}
	_exit(0);
}

/*
 * Forks NCHILD children running fn; they wait on a pipe until all exist, so
 * they really run at the same time.
 */
static void
start_children(void (*fn)(struct limits *, unsigned, int), struct limits *l,
               pid_t pids[NCHILD])
{
	int p[2];
	unsigned i;

	assert_int_equal(pipe(p), 0);
	for (i = 0; i < NCHILD; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(p[1]);
			fn(l, i, p[0]); /* never returns */
		}
	}
	close(p[0]);
	close(p[1]); /* go */
}

static int
child_status(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
test_concurrent_exact_counts(void **state)
{
	struct limits *l = limits_create(1024, NULL);
	struct sockaddr_storage ss;
	unsigned expect[NADDR] = {0}, i, j, sum = 0;
	pid_t pids[NCHILD];

	(void)state;
	assert_non_null(l);
	start_children(churn_child, l, pids);
	for (i = 0; i < NCHILD; i++)
		assert_int_equal(child_status(pids[i]), 0);

	/* Each child left its last HOLD connections open. */
	for (i = 0; i < NCHILD; i++)
		for (j = ITER - HOLD; j < ITER; j++)
			expect[j % NADDR]++;
	for (j = 0; j < NADDR; j++) {
		assert_int_equal(limits_ip_connections(l, v4(&ss, 1, 0, j)),
		                 expect[j]);
		sum += expect[j];
	}
	assert_int_equal(sum, NCHILD * HOLD);
	assert_int_equal(limits_total_connections(l), NCHILD * HOLD);

	/* Odd children used worker slot 1: resetting it drops exactly those. */
	limits_worker_reset(l, 1);
	assert_int_equal(limits_total_connections(l), (NCHILD + 1) / 2 * HOLD);
	limits_worker_reset(l, 0);
	assert_int_equal(limits_total_connections(l), 0);
	for (j = 0; j < NADDR; j++)
		assert_int_equal(limits_ip_connections(l, v4(&ss, 1, 0, j)), 0);
	limits_destroy(&l);
}

#define GRAB_TRIES 200
#define PER_IP_LIMIT 5
#define TOTAL_LIMIT 7

/* Grabs as many connections from one address as the per-IP limit allows. */
static void
grab_one_ip_child(struct limits *l, unsigned i, int fd)
{
	const struct limits_policy pol = {0, PER_IP_LIMIT, 0, 0, 0};
	struct sockaddr_storage ss;
	int got = 0, j;

	wait_start(fd);
	for (j = 0; j < GRAB_TRIES; j++) {
		enum limits_verdict v =
		    limits_connect(l, &pol, i % 2, v4(&ss, 2, 0, 1), 0);

		if (v == LIMITS_OK)
			got++;
		else if (v != LIMITS_TOO_MANY_FROM_IP)
			_exit(255);
	}
	_exit(got);
}

/* Grabs connections from many addresses until the total limit stops it. */
static void
grab_total_child(struct limits *l, unsigned i, int fd)
{
	const struct limits_policy pol = {TOTAL_LIMIT, 0, 0, 0, 0};
	struct sockaddr_storage ss;
	int got = 0, j;

	wait_start(fd);
	for (j = 0; j < GRAB_TRIES; j++) {
		enum limits_verdict v =
		    limits_connect(l, &pol, i % 2, v4(&ss, 3, i, j), 0);

		if (v == LIMITS_OK)
			got++;
		else if (v != LIMITS_TOO_MANY_TOTAL)
			_exit(255);
	}
	_exit(got);
}

static void
test_concurrent_limits_hold(void **state)
{
	static const struct {
		void (*fn)(struct limits *, unsigned, int);
		unsigned limit;
	} cases[] = {
	    {grab_one_ip_child, PER_IP_LIMIT},
	    {grab_total_child, TOTAL_LIMIT},
	};
	struct sockaddr_storage ss;
	pid_t pids[NCHILD];
	size_t c;
	unsigned i, got;

	(void)state;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct limits *l = limits_create(256, NULL);

		assert_non_null(l);
		start_children(cases[c].fn, l, pids);
		for (got = 0, i = 0; i < NCHILD; i++) {
			int n = child_status(pids[i]);

			assert_true(n != 255);
			got += (unsigned)n;
		}
		assert_int_equal(got, cases[c].limit);
		assert_int_equal(limits_total_connections(l), cases[c].limit);
		if (cases[c].fn == grab_one_ip_child)
			assert_int_equal(
			    limits_ip_connections(l, v4(&ss, 2, 0, 1)),
			    PER_IP_LIMIT);
		limits_destroy(&l);
	}
}

/*
 * Several workers fail authentications from one address at the same time.
 * Failure n (counted over all of them) earns 2^(n-1) ms, so the delays say
 * exactly which numbers each child got: every number below the threshold
 * must have been handed out once, the threshold itself once (with the ban),
 * and every later failure must have met the ban.
 */
#define AUTH_MAX_IP 60 /* below 64, so 2^(n-1) is exact for every n */
#define AUTH_PER_CHILD 20

struct auth_result {
	uint64_t ok_bits;      /* OR of the delays of unbanned failures */
	uint64_t trigger_bits; /* OR of the delays of failures that banned */
	unsigned ok, ok_popcount, triggers, during, bad;
};

static int auth_result_fd = -1;

static void
auth_fail_child(struct limits *l, unsigned i, int fd)
{
	const struct limits_auth_policy p = {AUTH_MAX_IP, 0, 3600000, 3600000,
	                                     1, UINT64_MAX};
	struct sockaddr_storage ss;
	struct auth_result r = {0};
	unsigned j;

	(void)i;
	wait_start(fd);
	for (j = 0; j < AUTH_PER_CHILD; j++) {
		bool banned;
		uint64_t d = auth_fail(l, &p, v4(&ss, 5, 0, 1),
		                                 "someone", 1000 + j, &banned);

		if (!banned) {
			r.ok++;
			r.ok_bits |= d;
			r.ok_popcount += (unsigned)__builtin_popcountll(d);
		} else if (d != UINT64_MAX) {
			r.triggers++;
			r.trigger_bits |= d;
		} else {
			r.during++;
		}
		if (d == 0)
			r.bad++;
	}
	if (write(auth_result_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

static void
test_concurrent_auth_ban_at_threshold(void **state)
{
	struct limits *l = limits_create(256, NULL);
	struct auth_result sum = {0}, r;
	struct sockaddr_storage ss;
	pid_t pids[NCHILD];
	uint64_t until = 0;
	int p[2];
	unsigned i;

	(void)state;
	assert_non_null(l);
	assert_true(NCHILD * AUTH_PER_CHILD > AUTH_MAX_IP);
	assert_int_equal(pipe(p), 0);
	auth_result_fd = p[1];
	start_children(auth_fail_child, l, pids);
	close(p[1]);
	auth_result_fd = -1;
	for (i = 0; i < NCHILD; i++)
		assert_int_equal(child_status(pids[i]), 0);
	for (i = 0; i < NCHILD; i++) {
		assert_int_equal(read(p[0], &r, sizeof(r)), sizeof(r));
		assert_true((sum.ok_bits & r.ok_bits) == 0);
		sum.ok_bits |= r.ok_bits;
		sum.trigger_bits |= r.trigger_bits;
		sum.ok += r.ok;
		sum.ok_popcount += r.ok_popcount;
		sum.triggers += r.triggers;
		sum.during += r.during;
		sum.bad += r.bad;
	}
	close(p[0]);
	assert_int_equal(sum.bad, 0);
	assert_int_equal(sum.ok, AUTH_MAX_IP - 1);
	assert_int_equal(sum.ok_popcount, AUTH_MAX_IP - 1);
	assert_true(sum.ok_bits == (UINT64_C(1) << (AUTH_MAX_IP - 1)) - 1);
	assert_int_equal(sum.triggers, 1);
	assert_true(sum.trigger_bits == UINT64_C(1) << (AUTH_MAX_IP - 1));
	assert_int_equal(sum.during, NCHILD * AUTH_PER_CHILD - AUTH_MAX_IP);
	assert_true(limits_banned(l, v4(&ss, 5, 0, 1), 1000, &until, NULL));
	assert_true(until >= 1000 + 3600000 &&
	            until < 1000 + AUTH_PER_CHILD + 3600000);
	limits_destroy(&l);
}

/* Loops on the table forever, until killed. */
static void
loop_child(struct limits *l, unsigned i, int fd)
{
	const struct limits_policy pol = {0, 0, 0, 0, 0};
	struct sockaddr_storage ss;
	unsigned j;

	(void)i;
	(void)fd;
	for (j = 0;; j++) {
		limits_connect(l, &pol, 1, v4(&ss, 4, 0, j % 64), j);
		limits_disconnect(l, 1, v4(&ss, 4, 0, j % 64));
	}
}

/* A process that takes the table's mutex once, then reports on fd. */
static void
probe_child(struct limits *l, unsigned i, int fd)
{
	(void)i;
	(void)limits_total_connections(l);
	if (write(fd, "x", 1) != 1)
		_exit(1);
	_exit(0);
}

static bool
readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1;
}

/* Fails the test if the probe is stuck, without leaving processes behind. */
static void
probe_must_finish(int fd, pid_t probe, pid_t child)
{
	if (readable(fd, 10000))
		return;
	kill(probe, SIGKILL);
	waitpid(probe, NULL, 0);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	fail_msg("a process is stuck on the mutex of a dead holder");
}

/* 'S' when the process sleeps (a probe blocked on the mutex futex). */
static char
proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0' || p[2] == '\0')
		return '?';
	return p[2];
}

/*
 * A worker killed while it holds the mutex must not wedge the others.
 * A child loops on the table; we stop it and let a probe process try to
 * take the mutex. If the probe gets stuck, the stopped child holds the
 * mutex: we kill it with SIGKILL and the probe must then finish (the robust
 * mutex hands over with EOWNERDEAD). Repeated until that has happened a few
 * times, so the test cannot pass without exercising the recovery.
 */
/* IMAP sessions per account: counted per worker, any case of the name,
 * given back, forgotten with a dead worker. */
static void
test_user_sessions(void **state)
{
	struct limits *l = limits_create(64, NULL);
	unsigned n;

	(void)state;
	assert_non_null(l);
	assert_true(limits_user_connect(l, 0, "a@x.test", 2, 1000, &n));
	assert_int_equal(n, 0);
	assert_true(limits_user_connect(l, 1, "A@X.test", 2, 1000, &n));
	assert_int_equal(n, 1);
	assert_false(limits_user_connect(l, 0, "a@x.test", 2, 1000, &n));
	assert_int_equal(n, 2);
	/* another account, and no limit */
	assert_true(limits_user_connect(l, 0, "b@x.test", 2, 1000, &n));
	assert_true(limits_user_connect(l, 0, "a@x.test", 0, 1000, &n));
	limits_user_disconnect(l, 0, "a@x.test");
	limits_user_disconnect(l, 0, "a@x.test");
	assert_true(limits_user_connect(l, 0, "a@x.test", 2, 1000, &n));
	assert_int_equal(n, 1);
	/* the worker that died held one of them */
	limits_worker_reset(l, 1);
	assert_true(limits_user_connect(l, 0, "a@x.test", 2, 1000, &n));
	assert_int_equal(n, 1);
	/* never below zero; no account, no count */
	for (int i = 0; i < 5; i++)
		limits_user_disconnect(l, 0, "a@x.test");
	assert_true(limits_user_connect(l, 0, "a@x.test", 1, 1000, &n));
	assert_int_equal(n, 0);
	assert_true(limits_user_connect(l, 0, "", 1, 1000, &n));
	limits_destroy(&l);
}

static void
test_worker_killed_holding_mutex(void **state)
{
	const struct limits_policy pol = {0, 2, 0, 0, 0};
	struct limits *l = limits_create(256, NULL);
	struct sockaddr_storage ss;
	const struct sockaddr *a;
	unsigned caught = 0, attempt;
	pid_t child, probe;
	int p[2], st;
	char c;

	(void)state;
	assert_non_null(l);
	alarm(120); /* a wedged mutex fails the test instead of hanging it */
	a = make_addr("198.51.100.7", &ss);
	assert_int_equal(limits_connect(l, &pol, 0, a, 0), LIMITS_OK);
	assert_int_equal(limits_connect(l, &pol, 0, a, 0), LIMITS_OK);

	child = spawn(loop_child, l, 0, -1);
	for (attempt = 0; attempt < 2000 && caught < 3; attempt++) {
		usleep(200 + (unsigned)rand() % 2000);
		assert_int_equal(kill(child, SIGSTOP), 0);
		assert_int_equal(waitpid(child, &st, WUNTRACED), child);
		assert_true(WIFSTOPPED(st));

		assert_int_equal(pipe(p), 0);
		probe = spawn(probe_child, l, 0, p[1]);
		close(p[1]);
		if (readable(p[0], 200) || proc_state(probe) != 'S') {
			/* Not holding it (or inconclusive): let it run on. */
			assert_int_equal(kill(child, SIGCONT), 0);
			probe_must_finish(p[0], probe, child);
		} else {
			caught++;
			assert_int_equal(kill(child, SIGKILL), 0);
			assert_int_equal(waitpid(child, &st, 0), child);
			assert_true(WIFSIGNALED(st));
			/* The probe must now get the mutex. */
			probe_must_finish(p[0], probe, -1);
			child = spawn(loop_child, l, 0, -1);
		}
		assert_int_equal(read(p[0], &c, 1), 1);
		close(p[0]);
		assert_int_equal(child_status(probe), 0);
	}
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &st, 0), child);
	print_message("caught the child holding the mutex %u times in %u "
	              "attempts\n",
	              caught, attempt);
	assert_true(caught >= 1);

	/* The table still works, and the dead workers' slot can be cleared. */
	limits_worker_reset(l, 1);
	assert_int_equal(limits_total_connections(l), 2);
	assert_int_equal(limits_ip_connections(l, a), 2);
	assert_int_equal(limits_connect(l, &pol, 0, a, 0),
	                 LIMITS_TOO_MANY_FROM_IP);
	limits_disconnect(l, 0, a);
	assert_int_equal(limits_connect(l, &pol, 2, a, 0), LIMITS_OK);
	assert_int_equal(limits_total_connections(l), 2);
	alarm(0);
	limits_destroy(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scenarios),
	    cmocka_unit_test(test_verdict_text),
	    cmocka_unit_test(test_auth_delay_saturates),
	    cmocka_unit_test(test_auth_counts_for_alerts),
	    cmocka_unit_test(test_net_text_and_grouping),
	    cmocka_unit_test(test_account_key_never_collides),
	    cmocka_unit_test(test_table_capacity),
	    cmocka_unit_test(test_concurrent_exact_counts),
	    cmocka_unit_test(test_concurrent_limits_hold),
	    cmocka_unit_test(test_concurrent_auth_ban_at_threshold),
	    cmocka_unit_test(test_worker_killed_holding_mutex),
	    cmocka_unit_test(test_user_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
