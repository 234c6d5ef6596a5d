/*
 * SPF records and macros (RFC 7208 4.5, 4.6, 5, 6, 7, 12), pure: the
 * record parser and the macro expander that msgauth/spf.c evaluates over
 * DNS. Nothing here does I/O.
 *
 * The parser checks the whole record (RFC 7208 4.6: a syntax error
 * anywhere is a permerror before anything is evaluated): every mechanism
 * with its qualifier, dual CIDR lengths, redirect= and exp= (each at most
 * once), unknown modifiers (syntax-checked, then ignored), and the
 * macro-string syntax of every domain-spec (the c, r and t letters only
 * in explanation text). Names are case-insensitive.
 */
#ifndef GODWIT_SPF_RECORD_H
#define GODWIT_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum spf_qualifier {
	SPF_Q_PASS,		/* + */
	SPF_Q_FAIL,		/* - */
	SPF_Q_SOFTFAIL,		/* ~ */
	SPF_Q_NEUTRAL,		/* ? */
};

enum spf_mech {
	SPF_M_ALL,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
};

#define SPF_TERM_TEXT_MAX 127	/* longer terms are shown cut */
#define SPF_RECORD_MAX 4096	/* longer records are a permerror */

struct spf_term {
	enum spf_mech mech;
	enum spf_qualifier qual;
	char *spec;		/* domain-spec as written; NULL when none */
	unsigned cidr4;		/* 0..32, 32 when not given */
	unsigned cidr6;		/* 0..128, 128 when not given */
	uint8_t addr[16];	/* ip4: the first 4 octets; ip6: all */
	char text[SPF_TERM_TEXT_MAX + 1];	/* the term as written */
};

struct spf_record {
	struct spf_term *terms;
	size_t nterms;
	char *redirect;		/* domain-spec, NULL when none */
	char *exp;		/* domain-spec, NULL when none */
	bool has_all;		/* an "all" anywhere: redirect is ignored */
};

/* Whether a TXT string is an SPF record: "v=spf1" (any case) followed
 * by a space or the end (RFC 7208 4.5). */
bool spf_record_is_spf(const char *txt, size_t len);

/*
 * Parses an SPF record (len octets, NULs included and refused). 0 with
 * *rec_r (free with spf_record_free()), or -1 with a readable reason in
 * error (errsize octets) — a permerror.
 */
int spf_record_parse(const char *txt, size_t len, struct spf_record **rec_r,
		     char *error, size_t errsize);
void spf_record_free(struct spf_record **rec);

/* ---- macros (RFC 7208 7) ------------------------------------------- */

enum spf_macro_ctx {
	SPF_MACRO_DOMAIN,	/* a domain-spec: no c, r, t; no spaces */
	SPF_MACRO_EXP,		/* explanation text: all letters, spaces */
	SPF_MACRO_ANY,		/* an unknown modifier's value */
};

struct spf_macro_vars {
	const char *sender;	/* s: "local@domain" */
	const char *local;	/* l */
	const char *sender_domain;	/* o */
	const char *domain;	/* d: the current domain */
	const char *helo;	/* h */
	const char *receiver;	/* r */
	const char *ptr;	/* p: validated name, "unknown"; NULL: not
				 * known (expanding %{p} is then an error) */
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* i, c, v: IPv4 in the first 4 octets */
	int64_t now;		/* t */
};

#define SPF_MACRO_OUT_MAX 8192	/* an expansion longer is an error */

/*
 * Checks the syntax of a macro-string (len octets) for ctx. 0 or -1 (with
 * a static reason in *error_r). *uses_p_r (may be NULL) says whether
 * %{p} appears, so the caller can find the validated name first.
 */
int spf_macro_check(const char *s, size_t len, enum spf_macro_ctx ctx,
		    bool *uses_p_r, const char **error_r);

/*
 * Expands a macro-string into out (size octets, NUL-terminated). 0, or
 * -1 with a static reason: bad syntax, a letter not allowed in ctx,
 * %{p} without vars->ptr, or a result that does not fit (size is capped
 * at SPF_MACRO_OUT_MAX).
 */
int spf_macro_expand(const char *s, size_t len, const struct spf_macro_vars *v,
		     enum spf_macro_ctx ctx, char *out, size_t size,
		     const char **error_r);

/*
 * A name expanded from a domain-spec made fit for a query (RFC 7208
 * 7.3): a final dot removed, then while longer than 253 octets the left
 * label and its dot dropped. Works in place.
 */
void spf_domain_truncate(char *name);

#endif
