/*
 * The filters of incoming mail, the filter: section of the configuration:
 * DNS block and allow lists (dnsbl.h), greylisting (greylist.h), the
 * attachment rules (attach.h), clamd (clamd.h) and milters (milter.h).
 * Each module here is the engine, with no knowledge of SMTP sessions;
 * smtpd/smtp_filter.h runs them stage by stage in the session.
 */
#ifndef GODWIT_FILTER_H
#define GODWIT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/attach.h"
#include "filter/clamd.h"
#include "filter/dnsbl.h"
#include "filter/greylist.h"
#include "filter/milter.h"

/* filter: in the configuration */
struct filter_config {
	struct dnsbl_config dnsbl;	/* filter.dnsbl, .dnswl, .dnsbl_threshold */
	struct greylist_config greylist;	/* filter.greylist */
	struct attach_config attachments;	/* filter.attachments */
	struct clamd_config clamd;	/* filter.clamd */
	struct milter_config *milters;	/* filter.milters, in order */
	size_t nmilters;
};

#endif
