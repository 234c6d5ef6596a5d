/*
 * The SMTP server session (RFC 5321 and extensions): one per connection,
 * an explicit state machine driven by libevent bufferevent callbacks.
 */
#ifndef GODWIT_SMTP_SERVER_H
#define GODWIT_SMTP_SERVER_H

#include "smtpd/smtp_settings.h"

struct session_ops;

/*
 * The SMTP protocol over the session core (net/session.h): MX,
 * submission and submissions listeners.
 */
extern const struct session_ops smtp_session_ops;

#endif
