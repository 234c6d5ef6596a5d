/*
 * A DMARC policy record (RFC 7489 6.3): "v=DMARC1; p=reject; sp=none;
 * adkim=s; aspf=r; pct=50; rua=mailto:...; ruf=...; fo=...; rf=afrf;
 * ri=86400". Pure: text in, a record or an error out.
 */
#ifndef GODWIT_DMARC_RECORD_H
#define GODWIT_DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>

enum dmarc_policy {
	DMARC_P_UNSET,		/* not given */
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT,
};
/* "none", "quarantine", "reject" ("" for UNSET) */
const char *dmarc_policy_name(enum dmarc_policy p);

#define DMARC_URI_MAX 512

struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp;	/* UNSET: p applies to subdomains */
	bool adkim_strict;
	bool aspf_strict;
	unsigned pct;		/* 0-100, default 100 */
	char rua[DMARC_URI_MAX];	/* as given, "" if none */
	char ruf[DMARC_URI_MAX];
	char fo[16];		/* as given if valid (lower case, no blanks),
				 * default "0" */
	unsigned ri;		/* default 86400 */
};

/*
 * Parses one TXT record's text. Returns 1 and fills rec for a valid
 * DMARC record; 0 if the text is not a DMARC record at all (does not
 * start with "v=DMARC1", to be ignored like any other TXT record); -1
 * with a readable reason in why (size octets) if it starts like one but
 * is invalid. Unknown tags are ignored (RFC 7489 6.3). "v" must come
 * first with the value exactly "DMARC1"; other tag names and values are
 * case-insensitive, blanks around ';' and '=' are allowed. A missing or
 * invalid p= (or an invalid sp=) is valid as p=none when rua= holds a
 * valid URI (RFC 7489 6.6.3), else -1. An invalid value of any other
 * tag is ignored (the tag's default applies). rua= and ruf= keep the
 * valid URIs as given, comma-separated, as many whole ones as fit
 * (items that are not URIs are left out).
 */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec,
		       char *why, size_t size);

#endif
