/*
 * Sending limits of authenticated users (R4.3; net/client_limits.h
 * describes the budgets): a MAIL takes a message and a RCPT a recipient
 * from the account's hourly and daily budgets, shared by every worker.
 * Past a limit the command gets 451 4.7.1 — a temporary refusal, so a
 * person's client keeps the message and tries later — the refusal is
 * logged (reason sending-limit), and the first refusal raises the
 * sending-limit alert; the queue runner holds the account's queued mail
 * while the block lasts (mta/message.c).
 */
#include <stdio.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/alert.h"
#include "net/client_limits.h"
#include "net/metrics.h"
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

bool
smtp_send_allowed(struct smtp_session *s, bool message, const char *addr)
{
	struct limits_send_result r;
	enum limits_send_verdict v;
	char text[160];

	if (!s->ses.logged_in || s->account[0] == '\0')
		return true;
	v = limits_send(s->ses.srv->limits,
			submission_limits_for(&s->config->submission,
					      s->account),
			s->account, message, now_ms(), &r);
	if (v == LIMITS_SEND_OK)
		return true;
	log_event(LOG_WARNING, "smtp", "reject", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("user", s->account),
		  LF_STR_IF(message, "from", addr),
		  LF_STR_IF(!message, "to", addr), LF_UINT("code", 451),
		  LF_STR("reason", "sending-limit"),
		  LF_STR("limit", limits_send_verdict_text(v)),
		  LF_UINT("count", r.count), LF_UINT("max", r.limit));
	metrics_reject("sending-limit");
	if (r.block_started && s->ses.srv->alerts.enabled)
		alert_raise_kind(ALERT_SENDING_LIMIT, s->account, r.count,
				 r.limit,
				 v == LIMITS_SEND_MESSAGES_HOUR ||
					 v == LIMITS_SEND_RECIPIENTS_HOUR
				     ? 3600
				     : 86400);
	snprintf(text, sizeof(text),
		 "Error: sending limit reached (%s), try again later",
		 limits_send_verdict_text(v));
	smtp_reply_error(s, 451, "4.7.1", text);
	return false;
}
