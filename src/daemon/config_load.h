/*
 * Inside the configuration loader: what config.c (the tables) and
 * config_sections.c (the load functions of the keys no generic type
 * covers: the listeners, tls.certificates, dns, outbound, smarthost)
 * share. Not for other modules.
 */
#ifndef GODWIT_CONFIG_LOAD_H
#define GODWIT_CONFIG_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/conftab.h"

struct config;

/* Shorthands of the tables (config.c, config_filter.c). */
#define F(s, f) .offset = offsetof(struct s, f)
#define UINT(lo, hi, d) .min = (lo), .max = (hi), .def = (d)
#define SPAN(lo, hi, r, d) .min = (lo), .max = (hi), .range = (r), .def = (d)
#define WORDS(a, text) .names = (a), .nnames = CONF_NKEYS(a), .allowed = (text)
#define SECTION(n, keys, chk)                                                  \
	{                                                                      \
		(n), (keys), CONF_NKEYS(keys), (chk)                           \
	}

/* conf_loader.ctx while a file is loaded */
struct config_loading {
	struct config *config;
	const yaml_node_t *root; /* for a missing key's line */
	/* tls.certificates was written (even if wrong): a listener that
	 * needs a certificate is then not reported a second time. */
	bool tls_certs_given;
};

/* A log field value and a user name: no quoting ever needed. */
bool config_check_token(const char *s, size_t max);
/* RFC 1035 host name syntax: NULL, or what is wrong. */
const char *config_check_hostname(const char *s);

/* Load functions of the tables (conf_key.load); base is the struct
 * config, and struct tls_config for the certificates. */
void config_load_listeners(struct conf_loader *l, const yaml_node_t *n,
                           const char *key, void *base);
void config_load_certificates(struct conf_loader *l, const yaml_node_t *n,
                              const char *key, void *base);
/* dns: base is struct dns_config */
void config_load_resolver(struct conf_loader *l, const yaml_node_t *n,
                          const char *key, void *base);
void config_load_trust_anchor(struct conf_loader *l, const yaml_node_t *n,
                              const char *key, void *base);
/* outbound: base is struct outbound_config */
void config_load_ip_version(struct conf_loader *l, const yaml_node_t *n,
                            const char *key, void *base);
void config_load_prefer(struct conf_loader *l, const yaml_node_t *n,
                        const char *key, void *base);
void config_load_source4(struct conf_loader *l, const yaml_node_t *n,
                         const char *key, void *base);
void config_load_source6(struct conf_loader *l, const yaml_node_t *n,
                         const char *key, void *base);
void config_load_tls_policies(struct conf_loader *l, const yaml_node_t *n,
                              const char *key, void *base);
/* smarthost: base is struct smarthost_config */
void config_load_relay_host(struct conf_loader *l, const yaml_node_t *n,
                            const char *key, void *base);
void config_load_relay_port(struct conf_loader *l, const yaml_node_t *n,
                            const char *key, void *base);
void config_load_credentials(struct conf_loader *l, const yaml_node_t *n,
                             const char *key, void *base);

/* filter: (config_filter.c); base is struct filter_config */
extern const struct conf_section config_filter_section;
extern const struct conf_section config_redis_section;
struct filter_config;
/* What the filter: tables cannot free themselves (filter.milters). */
void config_filter_free(struct filter_config *fc);

extern const struct conf_key config_listener_keys[];
extern const size_t config_nlistener_keys;
extern const struct conf_key config_certificate_keys[];
extern const size_t config_ncertificate_keys;

#endif
