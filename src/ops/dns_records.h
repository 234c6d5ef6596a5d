/*
 * The DNS records a domain served by godwit should publish (`godwit dns`,
 * `godwit quickstart`, and what `godwit doctor` compares the published
 * records with): MX, SPF, one TXT per DKIM selector, DMARC, TLS-RPT, the
 * host name's addresses when the host is inside the domain, and advice
 * as comments (PTR of each public address, MTA-STS not yet served).
 *
 * The records are built as structs from the configuration, the DKIM
 * keyring and the machine's addresses, then written as zone-file text
 * that nsd, BIND, Knot or unbound load as is: every name fully
 * qualified with its trailing dot, an explicit TTL and class on every
 * line, TXT text split into strings of at most 255 octets. No $ORIGIN
 * and no SOA: the lines are meant to be added to the domain's zone.
 */
#ifndef GODWIT_DNS_RECORDS_H
#define GODWIT_DNS_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct dkim_keyring;

#define DNS_RECORDS_TTL 3600

enum dns_rr_kind {
	DNS_RR_MX,	/* DOMAIN. MX 10 HOSTNAME. */
	DNS_RR_SPF,	/* DOMAIN. TXT "v=spf1 ..." */
	DNS_RR_DKIM,	/* SEL._domainkey.DOMAIN. TXT "v=DKIM1; ..." */
	DNS_RR_DMARC,	/* _dmarc.DOMAIN. TXT "v=DMARC1; ..." */
	DNS_RR_TLSRPT,	/* _smtp._tls.DOMAIN. TXT "v=TLSRPTv1; ..." */
	DNS_RR_ADDR,	/* HOSTNAME. A / AAAA (only a host inside DOMAIN) */
};

struct dns_record {
	enum dns_rr_kind kind;
	char *name;		/* fully qualified, lower case, trailing dot */
	const char *type;	/* "MX", "TXT", "A", "AAAA" */
	unsigned ttl;
	unsigned preference;	/* MX only */
	/* MX: the target with its dot; TXT: the text, unquoted and not
	 * split; A/AAAA: the address */
	char *value;
	char *selector;		/* DKIM only */
};

/* A public address the server listens on (or, for a wildcard listener,
 * one of the machine's), whose PTR should name the host. */
struct dns_ptr_advice {
	char *addr;		/* "203.0.113.5", "2001:db8::5" */
	char *reverse;		/* "5.113.0.203.in-addr.arpa." */
	bool from_interface;	/* found by getifaddrs (wildcard listener) */
};

struct dns_records {
	char *domain;		/* no trailing dot */
	char *hostname;		/* no trailing dot */
	struct dns_record *v;
	size_t n;
	struct dns_ptr_advice *ptr;
	size_t nptr;
	bool wildcard;		/* some listener binds 0.0.0.0 or [::] */
	bool no_dkim;		/* the keyring has no key for the domain */
	char **notes;		/* comment lines, without "; " */
	size_t nnotes;
};

/*
 * Builds the records for domain (lower case, no trailing dot) from c,
 * the keys of kr for exactly that domain (kr may be NULL: no keys), and
 * host_addrs, the machine's addresses in text (what dns_host_addresses()
 * finds; used only when a listener binds a wildcard address; loopback,
 * link-local and private addresses are skipped).
 */
struct dns_records *dns_records_build(const struct config *c,
				      const char *domain,
				      const struct dkim_keyring *kr,
				      char *const *host_addrs,
				      size_t nhost_addrs);
/*
 * The same with the keyring of <data_dir>/dkim and the machine's own
 * addresses. NULL with *error_r (caller frees) when the keyring cannot
 * be read.
 */
struct dns_records *dns_records_for(const struct config *c,
				    const char *domain, char **error_r);
void dns_records_free(struct dns_records **r);

/* The records as zone-file text: a comment header, the records, the
 * notes as "; " comments (caller frees). */
char *dns_records_zone(const struct dns_records *r);

/*
 * One record's data as a zone file writes it: MX "10 host.", A/AAAA the
 * address, TXT the quoted strings of at most 255 octets each, '"' and
 * '\\' escaped, separated by spaces (caller frees).
 */
char *dns_record_rdata(const struct dns_record *rec);
/* text as quoted TXT character-strings, as dns_record_rdata() does. */
char *dns_txt_strings(const char *text);

/*
 * The machine's addresses from getifaddrs(), in text, without loopback
 * and link-local ones; -1 with errno when getifaddrs fails.
 */
int dns_host_addresses(char ***addrs_r, size_t *n_r);
void dns_host_addresses_free(char ***addrs, size_t n);

/* Whether a text address is one that can have a public PTR: not
 * loopback, link-local, private (RFC 1918, ULA), CGNAT or unspecified. */
bool dns_addr_is_public(const char *addr);

#endif
