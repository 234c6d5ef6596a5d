/*
 * Sending limits of authenticated users (R4.3; net/client_limits.h
 * describes the budgets): a MAIL takes a message and a RCPT a recipient
 * from the account's hourly and daily budgets, shared by every worker,
 * and with redis: configured by every node (net/redis_limits.h). They
 * are the first step of the MAIL and RCPT filter stages (smtp_filter.h),
 * so a recipient refused for another reason before (unknown, relay) is
 * not counted. Past a limit the command gets 451 4.7.1 — a temporary
 * refusal, so a person's client keeps the message and tries later — the
 * refusal is logged (reason sending-limit), and the first refusal raises
 * the sending-limit alert; the queue runner holds the account's queued
 * mail while the block lasts (mta/message.c).
 *
 * With Redis up the step waits for its answer (at most redis.timeout);
 * the local table takes the unit too, and the stricter verdict stands.
 * A block Redis reports is installed in the local table, so this node's
 * runner holds the mail as well. Redis down or slow: the local table
 * alone decides, as without Redis.
 */
#include <stdio.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/alert.h"
#include "net/client_limits.h"
#include "net/metrics.h"
#include "net/redis_limits.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"

const struct limits_send_policy *
submission_limits_for(const struct submission_config *sc, const char *account)
{
	for (size_t i = 0; i < sc->naccount_limits; i++)
		if (strcasecmp(sc->account_limits[i].account, account) == 0)
			return &sc->account_limits[i].limits;
	return &sc->limits;
}

static const struct limits_send_policy *
policy(const struct smtp_session *s)
{
	return submission_limits_for(&s->config->submission, s->account);
}

static bool
applies(const struct smtp_session *s)
{
	return s->ses.logged_in && s->account[0] != '\0';
}

/* The refusal: logged, alerted, and the verdict (already logged). */
static void
refuse(struct smtp_session *s, bool message, enum limits_send_verdict v,
       const struct limits_send_result *r, struct sf_verdict *sv)
{
	const char *addr = message ? s->txn->sender : sf_rcpt(s);

	log_event(LOG_WARNING, "smtp", "reject", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("user", s->account),
		  LF_STR_IF(message, "from", addr),
		  LF_STR_IF(!message, "to", addr), LF_UINT("code", 451),
		  LF_STR("reason", "sending-limit"),
		  LF_STR("limit", limits_send_verdict_text(v)),
		  LF_UINT("count", r->count), LF_UINT("max", r->limit));
	metrics_reject("sending-limit");
	if (r->block_started && s->ses.srv->alerts.enabled)
		alert_raise_kind(ALERT_SENDING_LIMIT, s->account, r->count,
				 r->limit,
				 v == LIMITS_SEND_MESSAGES_HOUR ||
					 v == LIMITS_SEND_RECIPIENTS_HOUR
				     ? 3600
				     : 86400);
	sf_verdict_set(sv, 451, "4.7.1", "sending-limit",
		       "Error: sending limit reached (%s), try again later",
		       limits_send_verdict_text(v));
	sv->logged = true;
}

/* The local table's verdict (also after Redis said yes). */
static void
local_verdict(struct smtp_session *s, bool message, struct sf_verdict *sv)
{
	struct limits_send_result r;
	enum limits_send_verdict v;

	v = limits_send(s->ses.srv->limits, policy(s), s->account, message,
			now_ms(), &r);
	if (v != LIMITS_SEND_OK)
		refuse(s, message, v, &r, sv);
}

static uint64_t
limit_of(const struct limits_send_policy *p, enum limits_send_verdict v)
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

static void
redis_answer(struct redisReply *reply, void *arg)
{
	struct smtp_session *s = arg;
	bool message = s->send_message;
	struct rlimits_send_answer a;
	struct limits_send_result r = {0};
	struct sf_verdict v = {.action = SF_CONTINUE};
	uint64_t now = now_ms();

	s->send_req = NULL;
	if (!rlimits_send_reply(reply, &a) || a.verdict == LIMITS_SEND_OK) {
		/* Redis took it (or cannot say): the local table too */
		local_verdict(s, message, &v);
	} else {
		limits_send_block(s->ses.srv->limits, s->account, a.verdict,
				  now + a.ttl_ms, now);
		r.block_started = a.block_started;
		r.count = a.count;
		r.limit = limit_of(policy(s), a.verdict);
		r.until_ms = now + a.ttl_ms;
		refuse(s, message, a.verdict, &r, &v);
	}
	sf_resume(s, &v);
}

static bool
step(struct smtp_session *s, bool message, struct sf_verdict *v)
{
	if (!applies(s))
		return true;
	s->send_message = message;
	s->send_req = rlimits_send(s->ses.srv->rlimits, policy(s), s->account,
				   message, redis_answer, s);
	if (s->send_req != NULL)
		return false;
	local_verdict(s, message, v);
	return true;
}

bool
sf_sendlimit_mail(struct smtp_session *s, struct sf_verdict *v)
{
	return step(s, true, v);
}

bool
sf_sendlimit_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	return step(s, false, v);
}

void
sf_sendlimit_session_free(struct smtp_session *s)
{
	redis_cancel(&s->send_req);
}
