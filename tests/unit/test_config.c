/*
 * Tests for the configuration loader: valid files checked field by field
 * against the defaults, invalid files against the exact error lines, and
 * the listen-address parser.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "unit.h"

#include "daemon/config.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* ---- a config as text: one "key=value" line per field ---------------- */

static void
dump_cidrs(struct strbuf *b, const struct cidr_list *l)
{
	char addr[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < l->n; i++) {
		assert_non_null(inet_ntop(l->v[i].family, l->v[i].addr, addr,
					  sizeof(addr)));
		strbuf_addf(b, "%s%s/%u", i > 0 ? "," : "", addr,
			    l->v[i].prefix);
	}
}

/* The address as the socket will see it, to check ss against text. */
static void
render_addr(const struct listen_addr *a, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&a->ss;
		assert_int_equal(a->len, sizeof(*sin));
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&a->ss;
		assert_int_equal(a->ss.ss_family, AF_INET6);
		assert_int_equal(a->len, sizeof(*sin6));
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
}

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
		return "info";
	case LOG_WARNING:
		return "warning";
	case LOG_ERR:
		return "error";
	}
	return "?";
}

static char *
dump(const struct config *c)
{
	struct strbuf b = {0};

	strbuf_addf(&b, "path=%s\n", c->path);
	strbuf_addf(&b, "hostname=%s\n", c->hostname);
	strbuf_addf(&b, "data_dir=%s\n", c->data_dir);
	strbuf_addf(&b, "user=%s\n", c->user != NULL ? c->user : "(none)");
	strbuf_addf(&b, "postmaster=%s\n",
		    c->postmaster != NULL ? c->postmaster : "(default)");
	strbuf_addf(&b, "workers=%u\n", c->workers);
	strbuf_addf(&b, "log.format=%s\n",
		    c->log.format == LOG_FORMAT_KV	 ? "kv"
		    : c->log.format == LOG_FORMAT_JSON ? "json"
						       : "?");
	strbuf_addf(&b, "log.file=%s\n",
		    c->log.file != NULL ? c->log.file : "(stderr)");
	strbuf_addf(&b, "log.level=%s\n", level_name(c->log.level));
	strbuf_addf(&b, "log.rotate=%s\n",
		    c->log.rotate == LOG_ROTATE_DAILY ? "daily" : "none");
	strbuf_addf(&b, "userdb.backend=%s\n", c->userdb.backend);
	strbuf_addf(&b, "userdb.path=%s\n", c->userdb.path);
	strbuf_addf(&b, "max_message_size=%llu\n",
		    (unsigned long long)c->smtp.max_message_size);
	strbuf_addf(&b, "max_recipients=%u\n", c->smtp.max_recipients);
	strbuf_addf(&b, "max_errors=%u\n", c->smtp.max_errors);
	strbuf_addf(&b, "max_command_line=%u\n", c->smtp.max_command_line);
	strbuf_addf(&b, "max_text_line=%u\n", c->smtp.max_text_line);
	strbuf_addf(&b, "vrfy=%s\n", c->smtp.vrfy ? "true" : "false");
	if (c->smtp.recipient_delimiter == '\0')
		strbuf_addf(&b, "recipient_delimiter=(none)\n");
	else
		strbuf_addf(&b, "recipient_delimiter=%c\n",
			    c->smtp.recipient_delimiter);
	strbuf_addf(&b, "trusted_networks=");
	dump_cidrs(&b, &c->smtp.trusted_networks);
	strbuf_addf(&b, "\n");
	strbuf_addf(&b, "timeouts=%llu/%llu/%llu\n",
		    (unsigned long long)c->smtp.timeout_command,
		    (unsigned long long)c->smtp.timeout_data_block,
		    (unsigned long long)c->smtp.timeout_data_end);
	strbuf_addf(&b, "min_data_rate=%llu\n",
		    (unsigned long long)c->smtp.min_data_rate);
	strbuf_addf(&b, "max_connections=%u\n", c->limits.max_connections);
	strbuf_addf(&b, "max_connections_per_ip=%u\n",
		    c->limits.max_connections_per_ip);
	strbuf_addf(&b, "connection_rate=%u/%llu\n", c->limits.conn_rate_count,
		    (unsigned long long)c->limits.conn_rate_window);
	strbuf_addf(&b, "greet_pass_ttl=%llu\n",
		    (unsigned long long)c->limits.greet_pass_ttl);
	strbuf_addf(&b, "shutdown_timeout=%llu\n",
		    (unsigned long long)c->limits.shutdown_timeout);
	strbuf_addf(&b, "stress=threshold:%u timeout:%llu\n",
		    c->limits.stress_threshold,
		    (unsigned long long)c->limits.stress_timeout);
	strbuf_addf(&b, "ipv6=/%u wide=/%u x%u\n", c->limits.ipv6_prefix,
		    c->limits.ipv6_wide_prefix, c->limits.ipv6_wide_factor);
	strbuf_addf(&b, "tls.certificates=");
	for (size_t i = 0; i < c->tls.ncerts; i++)
		strbuf_addf(&b, "%s%s+%s@%d", i > 0 ? "," : "",
			    c->tls.certs[i].cert, c->tls.certs[i].key,
			    c->tls.certs[i].line);
	strbuf_addf(&b, "\n");
	strbuf_addf(&b, "tls.min_version=%s\n", c->tls.min_version);
	strbuf_addf(&b, "tls.ciphers=%s\n", c->tls.ciphers);
	strbuf_addf(&b, "tls.ciphersuites=%s\n",
		    c->tls.ciphersuites != NULL ? c->tls.ciphersuites
						: "(openssl)");
	strbuf_addf(&b, "tls.handshake_timeout=%llu\n",
		    (unsigned long long)c->tls.handshake_timeout);
	strbuf_addf(&b, "auth.cram_md5=%s\n",
		    c->auth.cram_md5 ? "true" : "false");
	strbuf_addf(&b, "auth.failures=%u/%u window=%llu ban=%llu\n",
		    c->auth.max_failures_ip, c->auth.max_failures_account,
		    (unsigned long long)c->auth.failure_window,
		    (unsigned long long)c->auth.ban_time);
	strbuf_addf(&b, "auth.delay=%llu..%llu\n",
		    (unsigned long long)c->auth.delay_base_ms,
		    (unsigned long long)c->auth.delay_max_ms);
	strbuf_addf(&b, "submission.check_from=%s\n",
		    c->submission.check_from ? "true" : "false");
	strbuf_addf(&b, "submission.refuse_address_display_name=%s\n",
		    c->submission.refuse_address_display_name ? "true"
							      : "false");
	strbuf_addf(&b, "pop3=timeout:%llu login_delay:%llu\n",
		    (unsigned long long)c->pop3.timeout,
		    (unsigned long long)c->pop3.login_delay);
	strbuf_addf(&b, "pop3.login_timeout=%llu\n",
		    (unsigned long long)c->pop3.login_timeout);
	strbuf_addf(&b, "retention=mail:%llu interval:%llu logs:%llu\n",
		    (unsigned long long)c->retention.mail,
		    (unsigned long long)c->retention.interval,
		    (unsigned long long)c->retention.logs);
	strbuf_addf(&b, "dns=%s", c->dns.mode);
	for (size_t i = 0; i < c->dns.nforwarders; i++)
		strbuf_addf(&b, "%s%s", i ? "," : " fwd:",
			    c->dns.forwarders[i]);
	strbuf_addf(&b, " ta:%s\n",
		    c->dns.trust_anchor ? c->dns.trust_anchor : "-");
	{
		char a4[INET6_ADDRSTRLEN] = "-", a6[INET6_ADDRSTRLEN] = "-";
		if (c->outbound.source4_len > 0)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)&c
					->outbound.source4)->sin_addr,
				  a4, sizeof(a4));
		if (c->outbound.source6_len > 0)
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)&c
					->outbound.source6)->sin6_addr,
				  a6, sizeof(a6));
		strbuf_addf(&b,
			    "outbound=v4:%d v6:%d prefer4:%d src:%s,%s port:%u "
			    "tls:%d conns:%u/%u\n",
			    c->outbound.ipv4, c->outbound.ipv6,
			    c->outbound.prefer_ipv4, a4, a6, c->outbound.port,
			    (int)c->outbound.tls, c->outbound.max_connections,
			    c->outbound.max_per_domain);
	}
	strbuf_addf(&b, "outbound.tls_policy=");
	for (size_t i = 0; i < c->outbound.ntls_policies; i++)
		strbuf_addf(&b, "%s%s:%d", i ? "," : "",
			    c->outbound.tls_policies[i].domain,
			    (int)c->outbound.tls_policies[i].policy);
	strbuf_addf(&b, "\n");
	strbuf_addf(&b, "outbound.timeouts=%llu,%llu,%llu,%llu,%llu,%llu\n",
		    (unsigned long long)c->outbound.timeout_connect,
		    (unsigned long long)c->outbound.timeout_greeting,
		    (unsigned long long)c->outbound.timeout_command,
		    (unsigned long long)c->outbound.timeout_data_init,
		    (unsigned long long)c->outbound.timeout_data_block,
		    (unsigned long long)c->outbound.timeout_data_end);
	strbuf_addf(&b, "queue=lifetime:%llu retry:%llu..%llu warn:%llu\n",
		    (unsigned long long)c->queue.lifetime,
		    (unsigned long long)c->queue.retry_min,
		    (unsigned long long)c->queue.retry_max,
		    (unsigned long long)c->queue.delay_warning);
	strbuf_addf(&b,
		    "smarthost=%s port:%u tls:%d verify:%d creds:%s domains:",
		    c->smarthost.host ? c->smarthost.host : "-",
		    c->smarthost.port, (int)c->smarthost.tls,
		    c->smarthost.verify,
		    c->smarthost.credentials ? c->smarthost.credentials : "-");
	for (size_t i = 0; i < c->smarthost.ndomains; i++)
		strbuf_addf(&b, "%s%s", i ? "," : "", c->smarthost.domains[i]);
	strbuf_addf(&b, "\n");
	/* Before the listener lines, so one override covers every listener. */
	strbuf_addf(&b, "listener_auth=");
	for (size_t i = 0; i < c->nlisteners; i++)
		strbuf_addf(&b, "%s%s:%s%s", i > 0 ? "," : "",
			    c->listeners[i].name,
			    c->listeners[i].auth ? "auth" : "noauth",
			    c->listeners[i].plaintext_auth ? "+plain" : "");
	strbuf_addf(&b, "\n");
	strbuf_addf(&b, "nlisteners=%zu\n", c->nlisteners);
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct config_listener *li = &c->listeners[i];
		strbuf_addf(&b,
			    "listener[%zu]=%s %s line=%d pause=%llu listen=",
			    i, li->name, listener_proto_name(li->proto),
			    li->line, (unsigned long long)li->greet_pause_ms);
		for (size_t j = 0; j < li->naddrs; j++) {
			char r[80];
			render_addr(&li->addrs[j], r, sizeof(r));
			assert_non_null(li->addrs[j].text);
			strbuf_addf(&b, "%s%s", j > 0 ? "," : "",
				    li->addrs[j].text);
			if (strcmp(r, li->addrs[j].text) != 0)
				strbuf_addf(&b, "(%s)", r);
		}
		strbuf_addf(&b, " allow=");
		dump_cidrs(&b, &li->allow);
		strbuf_addf(&b, " deny=");
		dump_cidrs(&b, &li->deny);
		strbuf_addf(&b, "\n");
	}
	return b.s;
}

/* What a file naming only hostname must load as. */
static const char *const defaults[] = {
	"path=t.yaml",
	"hostname=mail.example.com",
	"data_dir=/var/lib/godwit",
	"user=godwit",
	"postmaster=(default)",
	"workers=0",
	"log.format=kv",
	"log.file=(stderr)",
	"log.level=info",
	"log.rotate=daily",
	"userdb.backend=sqlite",
	"userdb.path=/var/lib/godwit/db/godwit.sqlite",
	"max_message_size=26214400",
	"max_recipients=100",
	"max_errors=10",
	"max_command_line=512",
	"max_text_line=1000",
	"vrfy=false",
	"recipient_delimiter=+",
	"trusted_networks=",
	"timeouts=300/180/600",
	"min_data_rate=500",
	"max_connections=1000",
	"max_connections_per_ip=20",
	"connection_rate=60/60",
	"greet_pass_ttl=86400",
	"shutdown_timeout=30",
	"stress=threshold:75 timeout:10",
	"ipv6=/64 wide=/48 x4",
	"tls.certificates=",
	"tls.min_version=TLSv1.2",
	("tls.ciphers=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
	"tls.ciphersuites=(openssl)",
	"tls.handshake_timeout=30",
	"auth.cram_md5=false",
	"auth.failures=10/10 window=3600 ban=3600",
	"auth.delay=1000..15000",
	"submission.check_from=true",
	"submission.refuse_address_display_name=true",
	"pop3=timeout:600 login_delay:0",
	"pop3.login_timeout=600",
	"retention=mail:0 interval:3600 logs:5184000",
	"dns=system ta:-",
	"outbound=v4:1 v6:1 prefer4:0 src:-,- port:25 tls:1 conns:100/20",
	"outbound.tls_policy=",
	"outbound.timeouts=30,300,300,120,180,600",
	"queue=lifetime:432000 retry:300..14400 warn:0",
	"smarthost=- port:587 tls:0 verify:1 creds:- domains:",
	"listener_auth=mx:noauth",
	"nlisteners=1",
	("listener[0]=mx smtp line=0 pause=1000 listen=0.0.0.0:25,[::]:25 "
	"allow= deny="),
};

#define MAX_OVERRIDES 32

/*
 * The expected dump: the defaults with each "key=value" override put in
 * place of the line with the same key, and overrides of keys that the
 * defaults lack (more listeners) appended in order.
 */
static char *
expected_dump(const char *const *overrides)
{
	struct strbuf b = {0};
	bool used[MAX_OVERRIDES] = {false};
	size_t n = 0;

	while (n < MAX_OVERRIDES && overrides[n] != NULL)
		n++;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		const char *line = defaults[i];
		size_t klen = strcspn(line, "=");
		for (size_t j = 0; j < n; j++) {
			if (strncmp(overrides[j], line, klen + 1) == 0) {
				line = overrides[j];
				used[j] = true;
				break;
			}
		}
		strbuf_addf(&b, "%s\n", line);
	}
	for (size_t j = 0; j < n; j++)
		if (!used[j])
			strbuf_addf(&b, "%s\n", overrides[j]);
	return b.s;
}

/* ---- valid files ----------------------------------------------------- */

struct valid_case {
	const char *name;
	const char *yaml;
	const char *expect[MAX_OVERRIDES]; /* NULL-terminated overrides */
};

static const char full_example[] =
	"hostname: mail.example.com\n"
	"postmaster: ~\n"
	"data_dir: /var/lib/godwit\n"
	"user: godwit\n"
	"workers: 0\n"
	"log:\n"
	"  format: kv\n"
	"  file: /var/log/godwit/mail.log\n"
	"  level: info\n"
	"userdb:\n"
	"  driver: sqlite\n"
	"  path: /var/lib/godwit/db/godwit.sqlite\n"
	"smtp:\n"
	"  max_message_size: 25M\n"
	"  max_recipients: 100\n"
	"  max_errors: 10\n"
	"  max_command_line: 512\n"
	"  max_text_line: 1000\n"
	"  vrfy: false\n"
	"  recipient_delimiter: \"+\"\n"
	"  trusted_networks: []\n"
	"  timeouts:\n"
	"    command: 5m\n"
	"    data_block: 3m\n"
	"    data_end: 10m\n"
	"limits:\n"
	"  max_connections: 1000\n"
	"  max_connections_per_ip: 20\n"
	"  connection_rate: 60/60s\n"
	"  greet_pass_ttl: 1d\n"
	"  shutdown_timeout: 30s\n"
	"  ipv6_prefix: 64\n"
	"  ipv6_wide_prefix: 48\n"
	"  ipv6_wide_factor: 4\n"
	"listeners:\n"
	"  - name: mx\n"
	"    protocol: smtp\n"
	"    listen: [\"0.0.0.0:25\", \"[::]:25\"]\n"
	"    allow: []\n"
	"    deny: [\"192.0.2.0/24\"]\n"
	"    greet_pause: 1s\n";

/* A certificate, written last: the listeners that need one have it. */
#define CERT "tls: {certificates: [{cert: /c.pem, key: /k.pem}]}\n"
#define CERT_DUMP "tls.certificates=/c.pem+/k.pem@"

static const struct valid_case valid_cases[] = {
	{"only hostname", "hostname: mail.example.com\n", {NULL}},
	{"the full example (every default written out)",
	 full_example,
	 {"log.file=/var/log/godwit/mail.log",
	  ("listener[0]=mx smtp line=36 pause=1000 listen=0.0.0.0:25,[::]:25 "
	  "allow= deny=192.0.2.0/24"),
	  NULL}},
	{"every value changed",
	 "hostname: mx1.example.org\n"
	 "data_dir: /srv/godwit\n"
	 "user: mail\n"
	 "workers: 4\n"
	 "log: {format: json, file: /tmp/m.log, level: debug}\n"
	 "userdb: {driver: sqlite, path: /etc/godwit/users.db}\n"
	 "smtp:\n"
	 "  max_message_size: 10M\n"
	 "  max_recipients: 50\n"
	 "  max_errors: 3\n"
	 "  max_command_line: 1024\n"
	 "  max_text_line: 2000\n"
	 "  vrfy: true\n"
	 "  recipient_delimiter: \"-\"\n"
	 "  trusted_networks: [\"10.0.0.0/8\", \"2001:db8::/32\", "
	 "\"192.0.2.7\"]\n"
	 "  timeouts: {command: 2m, data_block: 1m, data_end: 1h}\n"
	 "limits:\n"
	 "  max_connections: 50\n"
	 "  max_connections_per_ip: 5\n"
	 "  connection_rate: 5/10m\n"
	 "  greet_pass_ttl: 7d\n"
	 "  shutdown_timeout: 0\n"
	 "  ipv6_prefix: 56\n"
	 "  ipv6_wide_prefix: 40\n"
	 "  ipv6_wide_factor: 10\n",
	 {"hostname=mx1.example.org", "data_dir=/srv/godwit", "user=mail",
	  "workers=4", "log.format=json", "log.file=/tmp/m.log",
	  "log.level=debug", "userdb.path=/etc/godwit/users.db",
	  "max_message_size=10485760", "max_recipients=50", "max_errors=3",
	  "max_command_line=1024", "max_text_line=2000", "vrfy=true",
	  "recipient_delimiter=-",
	  "trusted_networks=10.0.0.0/8,2001:db8::/32,192.0.2.7/32",
	  "timeouts=120/60/3600", "max_connections=50",
	  "max_connections_per_ip=5", "connection_rate=5/600",
	  "greet_pass_ttl=604800", "shutdown_timeout=0",
	  "ipv6=/56 wide=/40 x10", NULL}},
	{"pop3 and retention",
	 "hostname: mail.example.com\npop3: {timeout: 1h, login_delay: 5m}\n"
	 "retention:\n  mail: 180d\n  interval: 30m\n",
	 {"pop3=timeout:3600 login_delay:300",
	  "retention=mail:15552000 interval:1800 logs:5184000", NULL}},
	{"outbound delivery",
	 "hostname: mail.example.com\n"
	 "dns: {resolver: [\"198.18.0.53\", \"fd00::53@5353\"]}\n"
	 "outbound:\n"
	 "  ip_version: ipv6\n"
	 "  prefer: ipv4\n"
	 "  source_ipv4: 192.0.2.7\n"
	 "  source_ipv6: \"2001:db8::7\"\n"
	 "  port: 2525\n"
	 "  tls: verify\n"
	 "  tls_policy: {Example.ORG.: encrypt, b.test: none}\n"
	 "  max_connections: 5\n"
	 "  max_per_domain: 2\n"
	 "  timeouts: {connect: 5s, data_end: 1m}\n"
	 "queue: {lifetime: 15s, retry_min: 1s, retry_max: 2s, "
	 "delay_warning: 4h}\n"
	 "smarthost: {host: \"[198.18.0.9]\", tls: implicit, verify: false, "
	 "domains: [A.test, b.test.]}\n",
	 {"dns=system fwd:198.18.0.53,fd00::53@5353 ta:-",
	  "outbound=v4:0 v6:1 prefer4:1 src:192.0.2.7,2001:db8::7 port:2525 "
	  "tls:3 conns:5/2",
	  "outbound.tls_policy=example.org:2,b.test:0",
	  "outbound.timeouts=5,300,300,120,180,60",
	  "queue=lifetime:15 retry:1..2 warn:14400",
	  "smarthost=[198.18.0.9] port:465 tls:1 verify:0 creds:- "
	  "domains:a.test,b.test",
	  NULL}},
	{"dns recursive, smarthost by name with its port",
	 "hostname: mail.example.com\ndns: {resolver: recursive}\n"
	 "smarthost: {host: SMTP.Provider.NET, port: 2587, tls: none}\n",
	 {"dns=recursive ta:-",
	  "smarthost=smtp.provider.net port:2587 tls:2 verify:1 creds:- "
	  "domains:",
	  NULL}},
	{"slow clients: deadlines, data rate, stress",
	 "hostname: mail.example.com\n"
	 "smtp: {min_data_rate: 2K}\n"
	 "limits: {stress_threshold: 50, stress_timeout: 5s}\n"
	 "tls: {handshake_timeout: 1m}\n"
	 "pop3: {login_timeout: 2m}\n",
	 {"min_data_rate=2048", "stress=threshold:50 timeout:5",
	  "tls.handshake_timeout=60", "pop3.login_timeout=120", NULL}},
	{"slow clients: lower bounds (0 turns the rate and stress off)",
	 "hostname: mail.example.com\n"
	 "smtp: {min_data_rate: 0}\n"
	 "limits: {stress_threshold: 0, stress_timeout: 1s}\n"
	 "tls: {handshake_timeout: 1s}\n"
	 "pop3: {login_timeout: 1s}\n",
	 {"min_data_rate=0", "stress=threshold:0 timeout:1",
	  "tls.handshake_timeout=1", "pop3.login_timeout=1", NULL}},
	{"slow clients: upper bounds",
	 "hostname: mail.example.com\n"
	 "smtp: {min_data_rate: 1G}\n"
	 "limits: {stress_threshold: 100, stress_timeout: 1h}\n"
	 "tls: {handshake_timeout: 1h}\n"
	 "pop3: {login_timeout: 1d}\n",
	 {"min_data_rate=1073741824", "stress=threshold:100 timeout:3600",
	  "tls.handshake_timeout=3600", "pop3.login_timeout=86400", NULL}},
	{"pop3 and retention at their bounds",
	 "hostname: mail.example.com\npop3: {timeout: 10m, login_delay: 1d}\n"
	 "retention: {mail: 1d, interval: 1m}\n",
	 {"pop3=timeout:600 login_delay:86400",
	  "retention=mail:86400 interval:60 logs:5184000", NULL}},
	{"log.file: a bare name is a file in <data_dir>/log/",
	 "hostname: mail.example.com\ndata_dir: /srv/g/\n"
	 "log: {file: mail.log, rotate: none}\nretention: {logs: 0}\n",
	 {"data_dir=/srv/g", "userdb.path=/srv/g/db/godwit.sqlite",
	  "log.file=/srv/g/log/mail.log", "log.rotate=none",
	  "retention=mail:0 interval:3600 logs:0", NULL}},
	{"postmaster: an address; its domain lower-cased",
	 "hostname: mail.example.com\npostmaster: Hostmaster@Example.COM\n",
	 {"postmaster=Hostmaster@example.com", NULL}},
	{"postmaster: a remote address, quoted local part",
	 "hostname: mail.example.com\npostmaster: '\"a b\"@other.example'\n",
	 {"postmaster=\"a b\"@other.example", NULL}},
	{"postmaster: ~ is the default",
	 "hostname: mail.example.com\npostmaster: ~\n",
	 {"postmaster=(default)", NULL}},
	{"user: \"\" does not drop privileges",
	 "hostname: mail.example.com\nuser: \"\"\n",
	 {"user=(none)", NULL}},
	{"user: ~ does not drop privileges",
	 "hostname: mail.example.com\nuser: ~\n",
	 {"user=(none)", NULL}},
	{"user: with no value does not drop privileges",
	 "hostname: mail.example.com\nuser:\n",
	 {"user=(none)", NULL}},
	{"userdb path follows data_dir; trailing slashes dropped",
	 "hostname: mail.example.com\ndata_dir: ./run//\n",
	 {"data_dir=./run", "userdb.path=./run/db/godwit.sqlite", NULL}},
	{"hostname is lower-cased and loses a final dot",
	 "hostname: Mail.Example.COM.\n",
	 {NULL}},
	{"single-label hostname and digits inside labels",
	 "hostname: localhost\n",
	 {"hostname=localhost", NULL}},
	{"hostname with hyphens and a numeric label",
	 "hostname: mx-1.123.example.com\n",
	 {"hostname=mx-1.123.example.com", NULL}},
	{"recipient_delimiter empty disables",
	 "hostname: mail.example.com\nsmtp: {recipient_delimiter: \"\"}\n",
	 {"recipient_delimiter=(none)", NULL}},
	{"recipient_delimiter ~ disables",
	 "hostname: mail.example.com\nsmtp: {recipient_delimiter: ~}\n",
	 {"recipient_delimiter=(none)", NULL}},
	{"recipient_delimiter dot and underscore",
	 "hostname: mail.example.com\nsmtp:\n  recipient_delimiter: _\n",
	 {"recipient_delimiter=_", NULL}},
	{"connection_rate off",
	 "hostname: mail.example.com\nlimits: {connection_rate: off}\n",
	 {"connection_rate=0/0", NULL}},
	{"connection_rate 0",
	 "hostname: mail.example.com\nlimits: {connection_rate: 0}\n",
	 {"connection_rate=0/0", NULL}},
	{"connection_rate with plain seconds",
	 "hostname: mail.example.com\nlimits: {connection_rate: 1/1}\n",
	 {"connection_rate=1/1", NULL}},
	{"range boundaries, high",
	 "hostname: mail.example.com\n"
	 "workers: 1024\n"
	 "smtp:\n"
	 "  max_message_size: 4G\n"
	 "  max_recipients: 100000\n"
	 "  max_errors: 1000\n"
	 "  max_command_line: 4096\n"
	 "  max_text_line: 65536\n"
	 "  timeouts: {command: 1d, data_block: 86400, data_end: 24h}\n"
	 "limits:\n"
	 "  max_connections: 1000000\n"
	 "  max_connections_per_ip: 1000000\n"
	 "  connection_rate: 1000000/1d\n"
	 "  greet_pass_ttl: 90d\n"
	 "  shutdown_timeout: 1h\n"
	 "  ipv6_prefix: 128\n"
	 "  ipv6_wide_prefix: 127\n"
	 "  ipv6_wide_factor: 1000\n",
	 {"workers=1024", "max_message_size=4294967296",
	  "max_recipients=100000", "max_errors=1000",
	  "max_command_line=4096", "max_text_line=65536",
	  "timeouts=86400/86400/86400", "max_connections=1000000",
	  "max_connections_per_ip=1000000", "connection_rate=1000000/86400",
	  "greet_pass_ttl=7776000", "shutdown_timeout=3600",
	  "ipv6=/128 wide=/127 x1000", NULL}},
	{"range boundaries, low",
	 "hostname: mail.example.com\n"
	 "smtp:\n"
	 "  max_message_size: 1024\n"
	 "  max_recipients: 1\n"
	 "  max_errors: 1\n"
	 "  timeouts: {command: 1s, data_block: 1, data_end: 1s}\n"
	 "limits:\n"
	 "  max_connections: 1\n"
	 "  max_connections_per_ip: 1\n"
	 "  greet_pass_ttl: 0\n"
	 "  ipv6_prefix: 16\n"
	 "  ipv6_wide_prefix: 0\n"
	 "  ipv6_wide_factor: 1\n",
	 {"max_message_size=1024", "max_recipients=1", "max_errors=1",
	  "timeouts=1/1/1", "max_connections=1", "max_connections_per_ip=1",
	  "greet_pass_ttl=0", "ipv6=/16 wide=/0 x1", NULL}},
	{"booleans in their YAML spellings",
	 "hostname: mail.example.com\nsmtp: {vrfy: yes}\n",
	 {"vrfy=true", NULL}},
	{"booleans: True",
	 "hostname: mail.example.com\nsmtp: {vrfy: True}\n",
	 {"vrfy=true", NULL}},
	{"booleans: off",
	 "hostname: mail.example.com\nsmtp: {vrfy: off}\n",
	 {NULL}},
	{"quoted numbers are numbers",
	 "hostname: \"mail.example.com\"\nworkers: \"8\"\n"
	 "smtp: {max_recipients: '200'}\n",
	 {"workers=8", "max_recipients=200", NULL}},
	{"empty sections and null values mean the defaults",
	 "hostname: mail.example.com\nlog:\nsmtp:\n  timeouts:\n"
	 "  max_errors: ~\nlimits: {}\nworkers: null\ndata_dir:\n",
	 {NULL}},
	{"log levels: warning", "hostname: mail.example.com\nlog:\n"
				"  level: warning\n",
	 {"log.level=warning", NULL}},
	{"log levels: error",
	 "hostname: mail.example.com\nlog:\n  level: error\n",
	 {"log.level=error", NULL}},
	{"listeners: each protocol's default ports and greet_pause",
	 "hostname: mail.example.com\n"
	 "listeners:\n"
	 "  - protocol: smtp\n"
	 "  - protocol: submission\n"
	 "  - protocol: submissions\n"
	 "  - protocol: pop3\n"
	 "  - protocol: pop3s\n"
	 "  - protocol: imap\n"
	 "  - protocol: imaps\n" CERT,
	 {"nlisteners=7", CERT_DUMP "10",
	  "listener_auth=smtp:noauth,submission:auth,submissions:auth,"
	  "pop3:auth,pop3s:auth,imap:auth,imaps:auth",
	  ("listener[0]=smtp smtp line=3 pause=1000 listen=0.0.0.0:25,[::]:25 "
	  "allow= deny="),
	  ("listener[1]=submission submission line=4 pause=0 "
	  "listen=0.0.0.0:587,[::]:587 allow= deny="),
	  ("listener[2]=submissions submissions line=5 pause=0 "
	  "listen=0.0.0.0:465,[::]:465 allow= deny="),
	  ("listener[3]=pop3 pop3 line=6 pause=0 listen=0.0.0.0:110,[::]:110 "
	  "allow= deny="),
	  ("listener[4]=pop3s pop3s line=7 pause=0 listen=0.0.0.0:995,[::]:995 "
	  "allow= deny="),
	  ("listener[5]=imap imap line=8 pause=0 listen=0.0.0.0:143,[::]:143 "
	  "allow= deny="),
	  ("listener[6]=imaps imaps line=9 pause=0 listen=0.0.0.0:993,[::]:993 "
	  "allow= deny="),
	  NULL}},
	{"listeners: single string, loopback, allow and deny, pauses",
	 "hostname: mail.example.com\n"
	 "listeners:\n"
	 "  - name: test-mx\n"
	 "    protocol: smtp\n"
	 "    listen: 127.0.0.1:2525\n"
	 "    greet_pause: 500ms\n"
	 "  - name: sub.local\n"
	 "    protocol: submission\n"
	 "    listen: [\"[::1]:2587\", \"127.0.0.1:2587\"]\n"
	 "    allow: [\"127.0.0.0/8\", \"::1\"]\n"
	 "    deny: [\"127.0.0.2\"]\n"
	 "    greet_pause: 2s\n"
	 "  - name: quiet\n"
	 "    protocol: smtp\n"
	 "    listen: \"[::ffff:192.0.2.1]:25\"\n"
	 "    greet_pause: 0\n" CERT,
	 {"nlisteners=3", CERT_DUMP "17",
	  "listener_auth=test-mx:noauth,sub.local:auth,quiet:noauth",
	  ("listener[0]=test-mx smtp line=3 pause=500 listen=127.0.0.1:2525 "
	  "allow= deny="),
	  ("listener[1]=sub.local submission line=7 pause=2000 "
	  "listen=[::1]:2587,127.0.0.1:2587 allow=127.0.0.0/8,::1/128 "
	  "deny=127.0.0.2/32"),
	  ("listener[2]=quiet smtp line=13 pause=0 "
	  "listen=[::ffff:192.0.2.1]:25 allow= deny="),
	  NULL}},
	{"listeners in flow style; same port on different addresses",
	 "{hostname: mail.example.com, listeners: [{protocol: pop3, listen: "
	 "[\"192.0.2.1:110\"]}, {name: pop3b, protocol: pop3, listen: "
	 "\"192.0.2.2:110\", greet_pause: 60s}]}\n",
	 {"nlisteners=2", "listener_auth=pop3:auth,pop3b:auth",
	  ("listener[0]=pop3 pop3 line=1 pause=0 listen=192.0.2.1:110 allow= "
	  "deny="),
	  ("listener[1]=pop3b pop3 line=1 pause=60000 listen=192.0.2.2:110 "
	  "allow= deny="),
	  NULL}},
	{"anchors and aliases",
	 "hostname: mail.example.com\n"
	 "smtp:\n"
	 "  trusted_networks: &office [\"198.51.100.0/24\"]\n"
	 "listeners:\n"
	 "  - protocol: submission\n"
	 "    allow: *office\n" CERT,
	 {"trusted_networks=198.51.100.0/24", CERT_DUMP "7",
	  "listener_auth=submission:auth",
	  ("listener[0]=submission submission line=5 pause=0 "
	  "listen=0.0.0.0:587,[::]:587 allow=198.51.100.0/24 deny="),
	  NULL}},
	{"tls, auth and submission: every value changed",
	 "hostname: mail.example.com\n"
	 "tls:\n"
	 "  certificates:\n"
	 "    - cert: /etc/godwit/tls/a.crt\n"
	 "      key: /etc/godwit/tls/a.key\n"
	 "    - {cert: b.crt, key: b.key}\n"
	 "  min_version: TLSv1.3\n"
	 "  ciphers: ECDHE-RSA-AES256-GCM-SHA384\n"
	 "  ciphersuites: \"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\"\n"
	 "auth:\n"
	 "  cram_md5: true\n"
	 "  max_failures_ip: 5\n"
	 "  max_failures_account: 3\n"
	 "  failure_window: 10m\n"
	 "  ban_time: 2h\n"
	 "  delay_base: 500ms\n"
	 "  delay_max: 5m\n"
	 "submission: {check_from: false, refuse_address_display_name: no}\n"
	 "listeners:\n"
	 "  - {protocol: smtp, auth: yes}\n"
	 "  - {protocol: submission, listen: \"127.0.0.1:587\", "
	 "plaintext_auth: true}\n"
	 "  - {protocol: pop3, auth: false}\n",
	 {"tls.certificates=/etc/godwit/tls/a.crt+/etc/godwit/tls/a.key@4,"
	  "b.crt+b.key@6",
	  "tls.min_version=TLSv1.3", "tls.ciphers=ECDHE-RSA-AES256-GCM-SHA384",
	  "tls.ciphersuites=TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
	  "auth.cram_md5=true", "auth.failures=5/3 window=600 ban=7200",
	  "auth.delay=500..300000", "submission.check_from=false",
	  "submission.refuse_address_display_name=false",
	  "listener_auth=smtp:auth,submission:auth+plain,pop3:noauth",
	  "nlisteners=3",
	  ("listener[0]=smtp smtp line=20 pause=1000 listen=0.0.0.0:25,[::]:25 "
	  "allow= deny="),
	  ("listener[1]=submission submission line=21 pause=0 "
	  "listen=127.0.0.1:587 allow= deny="),
	  ("listener[2]=pop3 pop3 line=22 pause=0 listen=0.0.0.0:110,[::]:110 "
	  "allow= deny="),
	  NULL}},
	{"auth delays: boundaries, zero, and seconds without a suffix",
	 "hostname: mail.example.com\n"
	 "auth: {delay_base: 0, delay_max: 0ms, failure_window: 1, "
	 "ban_time: 30d, max_failures_ip: 1000000, max_failures_account: 1}\n",
	 {"auth.delay=0..0", "auth.failures=1000000/1 window=1 ban=2592000",
	  NULL}},
	{"auth delay_max 300, plain seconds",
	 "hostname: mail.example.com\nauth: {delay_base: 60, delay_max: 300}\n",
	 {"auth.delay=60000..300000", NULL}},
	{"empty tls, auth and submission sections mean the defaults",
	 "hostname: mail.example.com\ntls:\nauth: {}\nsubmission:\n",
	 {NULL}},
	{"--- and ... markers, comments, CRLF line ends",
	 "# godwit\r\n---\r\nhostname: mail.example.com # the name\r\n"
	 "workers: 2\r\n...\r\n",
	 {"workers=2", NULL}},
	{"unspecified addresses written out in full",
	 "hostname: mail.example.com\nlisteners:\n  - protocol: smtp\n"
	 "    listen: [\"[0:0::0]:25\"]\n",
	 {"listener_auth=smtp:noauth",("listener[0]=smtp smtp line=3 pause=1000 listen=[0:0::0]:25([::]:25) "
	  "allow= deny="),
	  NULL}},
};

static void
test_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]);
	     i++) {
		const struct valid_case *tc = &valid_cases[i];
		struct config *c = (void *)1;
		char *errors = (void *)1, *got, *want;

		print_message("valid: %s\n", tc->name);
		int r = config_load_buffer("t.yaml", tc->yaml,
					   strlen(tc->yaml), &c, &errors);
		if (r != 0)
			print_error("unexpected errors:\n%s\n", errors);
		assert_int_equal(r, 0);
		assert_null(errors);
		assert_non_null(c);
		got = dump(c);
		want = expected_dump(tc->expect);
		assert_string_equal(got, want);
		free(got);
		free(want);
		config_free(&c);
		assert_null(c);
	}
}

/* ---- invalid files --------------------------------------------------- */

struct invalid_case {
	const char *yaml;
	const char *errors; /* exact, lines joined with "\n" */
};

#define H "hostname: mail.example.com\n"

static const struct invalid_case invalid_cases[] = {
	/* Missing or bad hostname. */
	{"workers: 1\n",
	 "t.yaml:1: missing required key 'hostname' (this server's fully "
	 "qualified domain name)"},
	{"", "t.yaml:1: missing required key 'hostname' (this server's fully "
	     "qualified domain name)"},
	{"# nothing\n\nhostname:\n",
	 "t.yaml:3: missing required key 'hostname' (this server's fully "
	 "qualified domain name)"},
	{"hostname: \"\"\n",
	 "t.yaml:1: hostname: '' is not a valid domain name (must not be "
	 "empty)"},
	{"hostname: mail..example.com\n",
	 "t.yaml:1: hostname: 'mail..example.com' is not a valid domain name "
	 "(empty label (two dots, or a leading dot))"},
	{"hostname: -mail.example.com\n",
	 "t.yaml:1: hostname: '-mail.example.com' is not a valid domain name "
	 "(a label starts with '-')"},
	{"hostname: mail_1.example.com\n",
	 "t.yaml:1: hostname: 'mail_1.example.com' is not a valid domain name "
	 "(only letters, digits, '-' and '.' are allowed)"},
	{"hostname: mail-.example.com\n",
	 "t.yaml:1: hostname: 'mail-.example.com' is not a valid domain name "
	 "(a label ends with '-')"},
	{"hostname: 192.0.2.1\n",
	 "t.yaml:1: hostname: '192.0.2.1' is not a valid domain name (an IP "
	 "address is not a name)"},
	{"hostname: "
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"
	 "\n",
	 "t.yaml:1: hostname: "
	 "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	 "com' is not a valid domain name (a label is longer than 63 "
	 "characters)"},
	/* Long values are cut short in messages. */
	{H "user: "
	   "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	   "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\n",
	 "t.yaml:2: user: "
	 "'uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	 "uu...' is not a valid user name (1 to 32 letters, digits, '-', '_' "
	 "or '.')"},
	{"hostname: [a, b]\n",
	 "t.yaml:1: hostname: expected a domain name"},
	{"hostname: \"mail\\0.example.com\"\n",
	 "t.yaml:1: hostname: contains a NUL character"},
	{"hostname: \"mail\\e[31m.example.com\"\n",
	 "t.yaml:1: hostname: 'mail\\x1b[31m.example.com' is not a valid "
	 "domain name (only letters, digits, '-' and '.' are allowed)"},

	/* Unknown, duplicate and non-string keys. */
	{H "bogus: 1\n", "t.yaml:2: unknown key 'bogus' at top level"},
	{H "smtp:\n  max_errors: 3\n  bogus: x\n",
	 "t.yaml:4: unknown key 'bogus' in smtp"},
	{H "smtp:\n  timeouts:\n    idle: 5m\n",
	 "t.yaml:4: unknown key 'idle' in smtp.timeouts"},
	{H "log: {colour: red}\n", "t.yaml:2: unknown key 'colour' in log"},
	{H "userdb: {host: x}\n", "t.yaml:2: unknown key 'host' in userdb"},
	{H "limits: {max_conn: 5}\n",
	 "t.yaml:2: unknown key 'max_conn' in limits"},
	{H "listeners:\n  - protocol: smtp\n    port: 25\n",
	 "t.yaml:4: unknown key 'port' in listeners[0]"},
	{H "workers: 1\nworkers: 2\n",
	 "t.yaml:3: duplicate key 'workers' at top level (first on line 2)"},
	{H "smtp:\n  vrfy: true\n  vrfy: false\n",
	 "t.yaml:4: duplicate key 'vrfy' in smtp (first on line 3)"},
	{H "hostname: other.example.com\n",
	 "t.yaml:2: duplicate key 'hostname' at top level (first on line 1)"},
	{H "? [a]\n: 1\n", "t.yaml:2: keys must be strings at top level"},

	/* Wrong types. */
	{H "smtp:\n  max_recipients: many\n",
	 "t.yaml:3: smtp.max_recipients: expected a number"},
	{H "smtp:\n  max_recipients: [1]\n",
	 "t.yaml:3: smtp.max_recipients: expected a number"},
	{H "smtp:\n  max_recipients: -5\n",
	 "t.yaml:3: smtp.max_recipients: expected a number"},
	{H "workers: 1.5\n", "t.yaml:2: workers: expected a number"},
	{H "smtp: 5\n", "t.yaml:2: smtp: expected a mapping"},
	{H "smtp: {timeouts: [1]}\n",
	 "t.yaml:2: smtp.timeouts: expected a mapping"},
	{"- hostname: mail.example.com\n",
	 "t.yaml:1: expected a mapping of keys at top level"},
	{H "smtp: {vrfy: maybe}\n",
	 "t.yaml:2: smtp.vrfy: expected true or false"},
	{H "smtp: {vrfy: {a: 1}}\n",
	 "t.yaml:2: smtp.vrfy: expected true or false"},
	{H "log: {file: [a]}\n", "t.yaml:2: log.file: expected a path"},
	{H "smtp: {trusted_networks: 10.0.0.0/8}\n",
	 "t.yaml:2: smtp.trusted_networks: expected a list of networks such "
	 "as [\"192.0.2.0/24\", \"2001:db8::/32\"]"},
	{H "listeners: {protocol: smtp}\n",
	 "t.yaml:2: listeners: expected a list of listeners"},
	{H "listeners:\n  - smtp\n",
	 "t.yaml:3: listeners[0]: expected a mapping"},
	{H "listeners:\n  - protocol: smtp\n    listen: {a: 1}\n",
	 "t.yaml:4: listeners[0].listen: expected an address or a list of "
	 "addresses"},
	{H "smtp: {max_message_size: 10X}\n",
	 "t.yaml:2: smtp.max_message_size: invalid size (use e.g. 512, 64K, "
	 "25M, 1G)"},
	{H "limits: {shutdown_timeout: soon}\n",
	 "t.yaml:2: limits.shutdown_timeout: invalid duration (use e.g. 30s, "
	 "5m, 2h, 7d)"},

	/* Out of range. */
	{H "smtp:\n  max_command_line: 511\n",
	 "t.yaml:3: smtp.max_command_line: '511' is out of range (512..4096)"},
	{H "smtp:\n  max_command_line: 4097\n",
	 "t.yaml:3: smtp.max_command_line: '4097' is out of range "
	 "(512..4096)"},
	{H "smtp:\n  max_text_line: 999\n",
	 "t.yaml:3: smtp.max_text_line: '999' is out of range (1000..65536)"},
	{H "smtp:\n  max_text_line: 65537\n",
	 "t.yaml:3: smtp.max_text_line: '65537' is out of range "
	 "(1000..65536)"},
	{H "smtp:\n  max_message_size: 1023\n",
	 "t.yaml:3: smtp.max_message_size: '1023' is out of range (1K..4G)"},
	{H "smtp:\n  max_message_size: 5G\n",
	 "t.yaml:3: smtp.max_message_size: '5G' is out of range (1K..4G)"},
	{H "smtp:\n  max_recipients: 0\n",
	 "t.yaml:3: smtp.max_recipients: '0' is out of range (1..100000)"},
	{H "smtp:\n  max_errors: 1001\n",
	 "t.yaml:3: smtp.max_errors: '1001' is out of range (1..1000)"},
	{H "workers: 1025\n",
	 "t.yaml:2: workers: '1025' is out of range (0..1024)"},
	{H "workers: 99999999999999999999999\n",
	 "t.yaml:2: workers: expected a number"},
	{H "smtp:\n  min_data_rate: 2G\n",
	 "t.yaml:3: smtp.min_data_rate: '2G' is out of range (0..1G)"},
	{H "smtp:\n  min_data_rate: fast\n",
	 "t.yaml:3: smtp.min_data_rate: invalid size (use e.g. 512, 64K, "
	 "25M, 1G)"},
	{H "limits:\n  stress_threshold: 101\n",
	 "t.yaml:3: limits.stress_threshold: '101' is out of range (0..100)"},
	{H "limits:\n  stress_timeout: 0\n",
	 "t.yaml:3: limits.stress_timeout: '0' is out of range (1s..1h)"},
	{H "limits:\n  stress_timeout: 2h\n",
	 "t.yaml:3: limits.stress_timeout: '2h' is out of range (1s..1h)"},
	{H "tls:\n  handshake_timeout: 0\n",
	 "t.yaml:3: tls.handshake_timeout: '0' is out of range (1s..1h)"},
	{H "tls:\n  handshake_timeout: 61m\n",
	 "t.yaml:3: tls.handshake_timeout: '61m' is out of range (1s..1h)"},
	{H "pop3:\n  login_timeout: 0\n",
	 "t.yaml:3: pop3.login_timeout: '0' is out of range (1s..1d)"},
	{H "pop3:\n  login_timeout: 2d\n",
	 "t.yaml:3: pop3.login_timeout: '2d' is out of range (1s..1d)"},
	{H "smtp:\n  timeouts:\n    data_end: 0\n",
	 "t.yaml:4: smtp.timeouts.data_end: '0' is out of range (1s..1d)"},
	{H "smtp:\n  timeouts:\n    command: 2d\n",
	 "t.yaml:4: smtp.timeouts.command: '2d' is out of range (1s..1d)"},
	{H "limits:\n  max_connections: 0\n",
	 "t.yaml:3: limits.max_connections: '0' is out of range (1..1000000)"},
	{H "limits:\n  max_connections_per_ip: 0\n",
	 "t.yaml:3: limits.max_connections_per_ip: '0' is out of range "
	 "(1..1000000)"},
	{H "limits:\n  ipv6_prefix: 15\n",
	 "t.yaml:3: limits.ipv6_prefix: '15' is out of range (16..128)"},
	{H "limits:\n  ipv6_prefix: 129\n",
	 "t.yaml:3: limits.ipv6_prefix: '129' is out of range (16..128)"},
	{H "limits:\n  ipv6_wide_prefix: 128\n",
	 "t.yaml:3: limits.ipv6_wide_prefix: '128' is out of range (0..127)"},
	{H "limits:\n  ipv6_wide_prefix: 64\n",
	 "t.yaml:3: limits.ipv6_wide_prefix: must be 0 (none) or shorter than "
	 "limits.ipv6_prefix"},
	{H "limits:\n  ipv6_prefix: 48\n",
	 "t.yaml:3: limits.ipv6_wide_prefix: must be 0 (none) or shorter than "
	 "limits.ipv6_prefix"},
	{H "limits:\n  ipv6_prefix: 56\n  ipv6_wide_prefix: 60\n",
	 "t.yaml:4: limits.ipv6_wide_prefix: must be 0 (none) or shorter than "
	 "limits.ipv6_prefix"},
	{H "limits:\n  ipv6_wide_factor: 0\n",
	 "t.yaml:3: limits.ipv6_wide_factor: '0' is out of range (1..1000)"},
	{H "limits:\n  greet_pass_ttl: 91d\n",
	 "t.yaml:3: limits.greet_pass_ttl: '91d' is out of range (0..90d)"},
	{H "limits:\n  shutdown_timeout: 2h\n",
	 "t.yaml:3: limits.shutdown_timeout: '2h' is out of range (0..1h)"},
	{H "limits:\n  connection_rate: 60\n",
	 "t.yaml:3: limits.connection_rate: '60' is not N/DURATION (such as "
	 "60/60s) or off"},
	{H "limits:\n  connection_rate: 0/60s\n",
	 "t.yaml:3: limits.connection_rate: the count in '0/60s' is out of "
	 "range (1..1000000)"},
	{H "limits:\n  connection_rate: 10/0\n",
	 "t.yaml:3: limits.connection_rate: the window in '10/0' is out of "
	 "range (1s..1d)"},
	{H "limits:\n  connection_rate: 10/2d\n",
	 "t.yaml:3: limits.connection_rate: the window in '10/2d' is out of "
	 "range (1s..1d)"},
	{H "limits:\n  connection_rate: ten/1m\n",
	 "t.yaml:3: limits.connection_rate: 'ten/1m' is not N/DURATION (such "
	 "as 60/60s) or off"},
	{H "limits:\n  connection_rate: 10/fortnight\n",
	 "t.yaml:3: limits.connection_rate: invalid duration (use e.g. 30s, "
	 "5m, 2h, 7d)"},

	/* Enumerations and strings. */
	{H "log: {format: xml}\n",
	 "t.yaml:2: log.format: 'xml' is not one of kv, json"},
	{H "log: {level: notice}\n",
	 "t.yaml:2: log.level: 'notice' is not one of debug, info, warning, "
	 "error"},
	{H "userdb: {driver: oracle}\n",
	 "t.yaml:2: userdb.driver: 'oracle' is not one of sqlite, postgresql "
	 "or mysql"},
	{H "userdb: {driver: postgresql}\n",
	 "t.yaml:2: userdb: backend postgresql needs dsn (e.g. \"host=db "
	 "dbname=godwit user=godwit password=...\")"},
	{H "userdb:\n  backend: mysql\n  dsn: \"host=db\"\n"
	   "  path: /x.sqlite\n",
	 "t.yaml:5: userdb.path: only for backend sqlite (mysql uses dsn)"},
	{H "userdb:\n  path: /x.sqlite\n  dsn: \"host=db\"\n",
	 "t.yaml:4: userdb.dsn: only for backend postgresql or mysql (sqlite "
	 "uses path)"},
	{H "userdb:\n  backend: sqlite\n  driver: sqlite\n",
	 "t.yaml:4: userdb.driver: the old spelling of userdb.backend; set "
	 "only backend"},
	{H "userdb:\n  backend: postgresql\n  dsn: \"a\\tb\"\n",
	 "t.yaml:4: userdb.dsn: control character in the connection string"},
	{H "smtp: {recipient_delimiter: \"++\"}\n",
	 "t.yaml:2: smtp.recipient_delimiter: '++' is not one of \"+\", "
	 "\"-\", \"_\", \".\" or \"\""},
	{H "smtp: {recipient_delimiter: \"=\"}\n",
	 "t.yaml:2: smtp.recipient_delimiter: '=' is not one of \"+\", "
	 "\"-\", \"_\", \".\" or \"\""},
	{H "user: \"root:0\"\n",
	 "t.yaml:2: user: 'root:0' is not a valid user name (1 to 32 "
	 "letters, digits, '-', '_' or '.')"},
	{H "data_dir: \"\"\n", "t.yaml:2: data_dir: must not be empty"},
	{H "postmaster: alice\n",
	 "t.yaml:2: postmaster: 'alice' is not an address (local@domain)"},
	{H "postmaster: \"alice@[192.0.2.1]\"\n",
	 "t.yaml:2: postmaster: 'alice@[192.0.2.1]' is not an address "
	 "(local@domain)"},
	{H "postmaster: \"<alice@example.com>\"\n",
	 "t.yaml:2: postmaster: '<alice@example.com>' is not an address "
	 "(local@domain)"},
	{H "postmaster: \"\"\n",
	 "t.yaml:2: postmaster: '' is not an address (local@domain)"},
	{H "log:\n  file: \"/var/log/a\\nb\"\n",
	 "t.yaml:3: log.file: contains a control character"},
	{H "smtp:\n  trusted_networks: [\"10.0.0.1/8\", bogus, [x]]\n",
	 "t.yaml:3: smtp.trusted_networks: '10.0.0.1/8': host bits set after "
	 "the prefix length\n"
	 "t.yaml:3: smtp.trusted_networks: 'bogus': not an IPv4 or IPv6 "
	 "address\n"
	 "t.yaml:3: smtp.trusted_networks: expected a network"},

	/* Listeners. */
	{H "listeners: []\n",
	 "t.yaml:2: listeners: must name at least one listener (leave the key "
	 "out for the default)"},
	{H "listeners:\n",
	 "t.yaml:2: listeners: must name at least one listener (leave the key "
	 "out for the default)"},
	{H "listeners:\n  - name: mx\n",
	 "t.yaml:3: listeners[0]: missing required key 'protocol' (smtp, "
	 "submission, submissions, pop3, pop3s, imap, imaps or metrics)"},
	{H "listeners:\n  - protocol: imap4\n",
	 "t.yaml:3: listeners[0].protocol: 'imap4' is not one of smtp, "
	 "submission, submissions, pop3, pop3s, metrics, imap, imaps"},
	{H "listeners:\n  - protocol: imaps\n",
	 "t.yaml:3: listeners[0]: protocol imaps requires a TLS certificate "
	 "(tls.certificates)"},
	{H "imap:\n  timeout: 10m\n",
	 "t.yaml:3: imap.timeout: '10m' is out of range (30m..1d)"},
	{H "listeners:\n  - protocol: metrics\n    listen: \"[::]:9925\"\n",
	 "t.yaml:4: listeners[0].listen: '[::]:9925' is not a loopback "
	 "address: a metrics listener there needs an allow: list of the "
	 "networks that may scrape it"},
	{H "listeners:\n  - protocol: metrics\n    auth: true\n",
	 "t.yaml:4: listeners[0].auth: not a key of protocol metrics"},
	{H "listeners:\n  - protocol: smtp\n    name: \"m x\"\n",
	 "t.yaml:4: listeners[0].name: 'm x' must be 1 to 32 letters, digits, "
	 "'-', '_' or '.'"},
	{H "listeners:\n  - {protocol: smtp, name: mx, listen: "
	   "\"127.0.0.1:25\"}\n"
	   "  - {protocol: submission, name: mx}\n" CERT,
	 "t.yaml:4: listeners[1].name: name 'mx' is already used by the "
	 "listener on line 3"},
	{H "listeners:\n  - protocol: pop3\n  - protocol: pop3\n",
	 "t.yaml:4: listeners[1]: name 'pop3' is already used by the "
	 "listener on line 3 (without a name, a listener is named after its "
	 "protocol)\n"
	 "t.yaml:4: listeners[1]: address '0.0.0.0:110' is already used by "
	 "listener 'pop3'\n"
	 "t.yaml:4: listeners[1]: address '[::]:110' is already used by "
	 "listener 'pop3'"},
	{H "listeners:\n  - protocol: smtp\n"
	   "  - name: local\n    protocol: submission\n"
	   "    listen: [\"127.0.0.1:587\", \"0.0.0.0:25\"]\n" CERT,
	 "t.yaml:6: listeners[1].listen: address '0.0.0.0:25' is already "
	 "used by listener 'smtp'"},
	{H "listeners:\n  - protocol: smtp\n"
	   "    listen: [\"[::1]:25\", \"[0::1]:25\"]\n",
	 "t.yaml:4: listeners[0].listen: address '[0::1]:25' is already used "
	 "by listener 'smtp'"},
	{H "listeners:\n  - protocol: smtp\n    listen: []\n",
	 "t.yaml:4: listeners[0].listen: must name at least one address "
	 "(leave it out for the protocol's default)"},
	{H "listeners:\n  - protocol: smtp\n"
	   "    listen:\n"
	   "      - ::1:25\n"
	   "      - 127.0.0.1\n"
	   "      - \"[::1]:0\"\n"
	   "      - localhost:25\n"
	   "      - 127.0.0.1:65536\n",
	 "t.yaml:5: listeners[0].listen: '::1:25': an IPv6 address must be "
	 "written in brackets, as in [::1]:25\n"
	 "t.yaml:6: listeners[0].listen: '127.0.0.1': missing ':PORT' after "
	 "the address\n"
	 "t.yaml:7: listeners[0].listen: '[::1]:0': the port must be a number "
	 "from 1 to 65535\n"
	 "t.yaml:8: listeners[0].listen: 'localhost:25': not an IPv4 address "
	 "(host names are not allowed)\n"
	 "t.yaml:9: listeners[0].listen: '127.0.0.1:65536': the port must be "
	 "a number from 1 to 65535"},
	{H "listeners:\n  - protocol: submissions\n    greet_pause: 1s\n" CERT,
	 "t.yaml:4: listeners[0].greet_pause: must be 0 for protocol "
	 "submissions (with implicit TLS the client speaks first)"},
	{H "listeners:\n  - protocol: pop3s\n    greet_pause: 10ms\n" CERT,
	 "t.yaml:4: listeners[0].greet_pause: must be 0 for protocol pop3s "
	 "(with implicit TLS the client speaks first)"},
	/* the PROXY protocol needs its balancers named */
	{H "listeners:\n  - protocol: smtp\n    proxy_protocol: true\n",
	 "t.yaml:4: listeners[0].proxy_trusted_networks: proxy_protocol needs "
	 "a non-empty proxy_trusted_networks: the balancers' networks"},
	{H "listeners:\n  - protocol: imap\n    proxy_protocol: yes\n"
	   "    proxy_trusted_networks: []\n",
	 "t.yaml:4: listeners[0].proxy_trusted_networks: proxy_protocol needs "
	 "a non-empty proxy_trusted_networks: the balancers' networks"},
	{H "listeners:\n  - protocol: smtp\n    proxy_protocol: true\n"
	   "    proxy_trusted_networks: [10.0.0.300/32]\n",
	 "t.yaml:5: listeners[0].proxy_trusted_networks: '10.0.0.300/32': not "
	 "an IPv4 or IPv6 address"},
	{H "listeners:\n  - protocol: metrics\n    proxy_protocol: true\n"
	   "    proxy_trusted_networks: [10.0.0.1]\n",
	 "t.yaml:4: listeners[0].proxy_protocol: not a key of protocol "
	 "metrics\n"
	 "t.yaml:5: listeners[0].proxy_trusted_networks: not a key of "
	 "protocol metrics"},
	/* tls, auth, submission, and what listeners need of them. */
	{H "listeners:\n  - protocol: smtp\n  - protocol: submission\n"
	   "  - protocol: submissions\n  - protocol: pop3\n"
	   "  - protocol: pop3s\n",
	 "t.yaml:4: listeners[1]: protocol submission requires a TLS "
	 "certificate (tls.certificates)\n"
	 "t.yaml:5: listeners[2]: protocol submissions requires a TLS "
	 "certificate (tls.certificates)\n"
	 "t.yaml:7: listeners[4]: protocol pop3s requires a TLS certificate "
	 "(tls.certificates)"},
	{H "tls: {certificates: []}\nlisteners:\n  - protocol: submissions\n",
	 "t.yaml:4: listeners[0]: protocol submissions requires a TLS "
	 "certificate (tls.certificates)"},
	{H "tls:\n  certificates:\n    - {cert: /c.pem}\n    - key: /k.pem\n"
	   "    - /c.pem\n    - {cert: \"\", key: /k, chain: /x}\n"
	   "listeners:\n  - protocol: submission\n",
	 "t.yaml:4: tls.certificates[0]: missing required key 'key'\n"
	 "t.yaml:5: tls.certificates[1]: missing required key 'cert'\n"
	 "t.yaml:6: tls.certificates[2]: expected a mapping\n"
	 "t.yaml:7: unknown key 'chain' in tls.certificates[3]\n"
	 "t.yaml:7: tls.certificates[3].cert: must not be empty"},
	{H "tls: {certificates: /c.pem}\nlisteners: [{protocol: pop3s}]\n",
	 "t.yaml:2: tls.certificates: expected a list of {cert, key}"},
	{H "tls:\n  min_version: TLSv1.1\n  ciphers: \"\"\n"
	   "  ciphersuites: \"TLS_AES_256_GCM_SHA384 TLS_AES_128_GCM_SHA256\"\n"
	   "  protocols: [TLSv1.2]\n",
	 "t.yaml:3: tls.min_version: 'TLSv1.1' is not one of TLSv1.2, TLSv1.3\n"
	 "t.yaml:4: tls.ciphers: must not be empty\n"
	 "t.yaml:5: tls.ciphersuites: only printable ASCII without spaces is "
	 "allowed (separate names with ':')\n"
	 "t.yaml:6: unknown key 'protocols' in tls"},
	{H "tls: [a]\n", "t.yaml:2: tls: expected a mapping"},
	{H "auth:\n  cram_md5: maybe\n  max_failures_ip: 0\n"
	   "  max_failures_account: 1000001\n  failure_window: 0\n"
	   "  ban_time: 31d\n  delay_base: 61s\n  delay_max: 5x\n"
	   "  lockout: 1h\n",
	 "t.yaml:3: auth.cram_md5: expected true or false\n"
	 "t.yaml:4: auth.max_failures_ip: '0' is out of range (1..1000000)\n"
	 "t.yaml:5: auth.max_failures_account: '1000001' is out of range "
	 "(1..1000000)\n"
	 "t.yaml:6: auth.failure_window: '0' is out of range (1s..30d)\n"
	 "t.yaml:7: auth.ban_time: '31d' is out of range (1s..30d)\n"
	 "t.yaml:8: auth.delay_base: '61s' is out of range (0..60s)\n"
	 "t.yaml:9: auth.delay_max: invalid duration (use e.g. 30s, 5m, 2h, "
	 "7d)\n"
	 "t.yaml:10: unknown key 'lockout' in auth"},
	{H "auth:\n  delay_base: 10s\n  delay_max: 2000ms\n",
	 "t.yaml:4: auth.delay_max: must not be less than auth.delay_base"},
	{H "auth:\n  delay_base: 20s\n",
	 "t.yaml:3: auth.delay_max: must not be less than auth.delay_base"},
	{H "auth: {delay_max: 301s, delay_base: xms}\n",
	 "t.yaml:2: auth.delay_base: invalid duration (use e.g. 500ms, 1s)\n"
	 "t.yaml:2: auth.delay_max: '301s' is out of range (0..5m)"},
	{H "pop3: {timeout: 9m, login_delay: 2d, idle: 1}\n",
	 "t.yaml:2: unknown key 'idle' in pop3\n"
	 "t.yaml:2: pop3.timeout: '9m' is out of range (10m..1d)\n"
	 "t.yaml:2: pop3.login_delay: '2d' is out of range (0..1d)"},
	{H "retention:\n  mail: 12h\n  interval: 30s\n",
	 "t.yaml:3: retention.mail: must be 0 (keep forever) or at least 1d\n"
	 "t.yaml:4: retention.interval: '30s' is out of range (1m..1w)"},
	{H "log: {file: sub/mail.log, rotate: weekly}\n"
	   "retention: {logs: 12h}\n",
	 "t.yaml:2: log.file: an absolute path, or a file name in "
	 "<data_dir>/log/ (no '/')\n"
	 "t.yaml:2: log.rotate: 'weekly' is not one of daily, none\n"
	 "t.yaml:3: retention.logs: must be 0 (keep forever) or at least 1d"},
	{H "retention: {mail: forever}\n",
	 "t.yaml:2: retention.mail: invalid duration (use e.g. 30s, 5m, 2h, 7d)"},
	{H "dns: {resolver: [\"198.18.0.300\", \"::1@0\"], trust_anchor: "
	   "/nonexistent/root.key}\n",
	 "t.yaml:2: dns.resolver: '198.18.0.300': not an IP address (IP or "
	 "IP@port)\n"
	 "t.yaml:2: dns.resolver: '::1@0': bad port (IP@port, 1..65535)\n"
	 "t.yaml:2: dns.trust_anchor: /nonexistent/root.key: No such file or "
	 "directory"},
	{H "dns: {resolver: []}\n",
	 "t.yaml:2: dns.resolver: the list of forwarders is empty"},
	{H "dns: {resolver: google}\n",
	 "t.yaml:2: dns.resolver: 'google' is not one of system, recursive, "
	 "or a list of forwarder addresses"},
	{H "outbound:\n  ip_version: 4\n  prefer: v6\n  source_ipv4: \"::1\"\n"
	   "  port: 0\n  tls: maybe\n  tls_policy: {\"-bad-\": may, "
	   "ok.test: always}\n  max_connections: 0\n"
	   "  timeouts: {connect: 0s, idle: 1s}\n",
	 "t.yaml:3: outbound.ip_version: '4' is not one of both, ipv4 or ipv6\n"
	 "t.yaml:4: outbound.prefer: 'v6' is not one of ipv6 or ipv4\n"
	 "t.yaml:5: outbound.source_ipv4: '::1' is not an IPv4 address\n"
	 "t.yaml:6: outbound.port: '0' is out of range (1..65535)\n"
	 "t.yaml:7: outbound.tls: 'maybe' is not one of none, may, encrypt or "
	 "verify\n"
	 "t.yaml:8: outbound.tls_policy: '-bad-' is not a domain (a label "
	 "starts with '-')\n"
	 "t.yaml:8: outbound.tls_policy: 'always' is not one of none, may, "
	 "encrypt or verify\n"
	 "t.yaml:9: outbound.max_connections: '0' is out of range (1..10000)\n"
	 "t.yaml:10: unknown key 'idle' in outbound.timeouts\n"
	 "t.yaml:10: outbound.timeouts.connect: '0s' is out of range (1s..1d)"},
	{H "queue: {lifetime: 0, retry_min: 1h, retry_max: 1m}\n",
	 "t.yaml:2: queue.lifetime: '0' is out of range (1s..100d)\n"
	 "t.yaml:2: queue.retry_max: must not be less than queue.retry_min"},
	{H "smarthost: {host: \"[not-an-ip]\", tls: ssl, credentials: "
	   "/nonexistent/secret}\n",
	 "t.yaml:2: smarthost.host: '[not-an-ip]': expected a host name or [IP "
	 "address]\n"
	 "t.yaml:2: smarthost.tls: 'ssl' is not one of starttls, implicit or "
	 "none\n"
	 "t.yaml:2: smarthost.credentials: /nonexistent/secret: No such file or "
	 "directory"},
	{H "smarthost: {port: 587}\n",
	 "t.yaml:2: smarthost: host is required when other smarthost keys are "
	 "set"},
	{H "submission: {check_from: 1, sign: yes}\n",
	 "t.yaml:2: unknown key 'sign' in submission\n"
	 "t.yaml:2: submission.check_from: expected true or false"},
	{H "submission:\n  refuse_address_display_name: sometimes\n",
	 "t.yaml:3: submission.refuse_address_display_name: expected true or "
	 "false"},
	{H "listeners:\n  - protocol: smtp\n    auth: sometimes\n"
	   "    plaintext_auth: [yes]\n",
	 "t.yaml:4: listeners[0].auth: expected true or false\n"
	 "t.yaml:5: listeners[0].plaintext_auth: expected true or false"},
	{H "listeners:\n  - protocol: smtp\n    greet_pause: 61s\n",
	 "t.yaml:4: listeners[0].greet_pause: '61s' is out of range (0..60s)"},
	{H "listeners:\n  - protocol: smtp\n    greet_pause: 1.5s\n",
	 "t.yaml:4: listeners[0].greet_pause: invalid duration (use e.g. 30s, "
	 "5m, 2h, 7d)"},
	{H "listeners:\n  - protocol: smtp\n"
	   "    greet_pause: 123456789012345678901234567890ms\n",
	 "t.yaml:4: listeners[0].greet_pause: invalid duration"},
	{H "listeners:\n  - protocol: smtp\n    greet_pause: xms\n",
	 "t.yaml:4: listeners[0].greet_pause: invalid duration (use e.g. "
	 "500ms, 1s)"},
	{H "listeners:\n  - protocol: smtp\n    deny: [\"2001:db8::1/32\"]\n",
	 "t.yaml:4: listeners[0].deny: '2001:db8::1/32': host bits set after "
	 "the prefix length"},

	/* YAML itself. */
	{H "smtp: [1\nworkers: 2\n",
	 "t.yaml:3: YAML syntax error: did not find expected ',' or ']' "
	 "(while parsing a flow sequence that starts on line 2)"},
	{H "  workers: 2\n",
	 "t.yaml:2: YAML syntax error: mapping values are not allowed in "
	 "this context"},
	{H "workers: *nothing\n",
	 "t.yaml:2: YAML syntax error: found undefined alias"},
	{H "workers: \"2\n",
	 "t.yaml:3: YAML syntax error: found unexpected end of stream (while "
	 "scanning a quoted scalar that starts on line 2)"},
	{H "workers: 2\n---\nworkers: 3\n",
	 "t.yaml:3: only one YAML document is allowed (remove the '---' "
	 "separator)"},
	{H "workers: 2\n---\nworkers: [3\n",
	 "t.yaml:5: YAML syntax error: did not find expected ',' or ']' "
	 "(while parsing a flow sequence that starts on line 4)"},
	{"hostname: a\x01.example.com\n",
	 "t.yaml:1: YAML syntax error: control characters are not allowed"},
	{H "workers: 1\nuser: a\x01b\n",
	 "t.yaml:3: YAML syntax error: control characters are not allowed"},
	{H "user: \xff\n",
	 "t.yaml:2: YAML syntax error: invalid leading UTF-8 octet"},

	/* Everything at once, reported in file order. */
	{"workers: lots\n"
	 "smtp:\n"
	 "  max_recipients: many\n"
	 "  bogus: 1\n"
	 "  max_command_line: 100\n"
	 "listeners:\n"
	 "  - protocol: ftp\n"
	 "    listen: 0.0.0.0\n",
	 "t.yaml:1: missing required key 'hostname' (this server's fully "
	 "qualified domain name)\n"
	 "t.yaml:1: workers: expected a number\n"
	 "t.yaml:3: smtp.max_recipients: expected a number\n"
	 "t.yaml:4: unknown key 'bogus' in smtp\n"
	 "t.yaml:5: smtp.max_command_line: '100' is out of range (512..4096)\n"
	 "t.yaml:7: listeners[0].protocol: 'ftp' is not one of smtp, "
	 "submission, submissions, pop3, pop3s, metrics, imap, imaps\n"
	 "t.yaml:8: listeners[0].listen: '0.0.0.0': missing ':PORT' after "
	 "the address"},
};

static void
test_invalid(void **state)
{
	size_t failed = 0;

	(void)state;
	for (size_t i = 0;
	     i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *tc = &invalid_cases[i];
		struct config *c = (void *)1;
		char *errors = NULL;

		int r = config_load_buffer("t.yaml", tc->yaml,
					   strlen(tc->yaml), &c, &errors);
		assert_int_equal(r, -1);
		assert_null(c);
		assert_non_null(errors);
		/* Every mismatching row is shown, not just the first. */
		if (strcmp(errors, tc->errors) != 0) {
			print_error("invalid case %zu:\n--- want\n%s\n"
				    "--- got\n%s\n",
				    i, tc->errors, errors);
			failed++;
		}
		free(errors);
	}
	assert_int_equal(failed, 0);
}

/* More errors than are listed: the rest are counted on one last line. */
static void
test_error_cap(void **state)
{
	struct strbuf b = {0};
	struct config *c;
	char *errors;
	size_t lines = 1;

	(void)state;
	strbuf_addf(&b, H);
	for (int i = 0; i < 70; i++)
		strbuf_addf(&b, "k%d: 1\n", i);
	assert_int_equal(config_load_buffer("t.yaml", b.s, b.len, &c, &errors),
			 -1);
	assert_null(c);
	for (const char *p = errors; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 51);
	assert_non_null(strstr(errors, "t.yaml:2: unknown key 'k0' at top "
				       "level\n"));
	assert_non_null(strstr(errors, "t.yaml:51: unknown key 'k49' at top "
				       "level\n"));
	assert_null(strstr(errors, "'k50'"));
	assert_non_null(strstr(errors, "\nt.yaml:52: 20 more errors not "
				       "shown"));
	free(errors);
	free(b.s);
}

/* Deep nesting must neither crash nor recurse; the walk stops early. */
static void
test_deep_nesting(void **state)
{
	size_t depth = 200000;
	char *y = xmalloc(sizeof(H) + 8 + 2 * depth);
	struct config *c;
	char *errors;
	size_t len;

	(void)state;
	len = (size_t)sprintf(y, H "x: ");
	memset(y + len, '[', depth);
	memset(y + len + depth, ']', depth);
	len += 2 * depth;
	assert_int_equal(config_load_buffer("t.yaml", y, len, &c, &errors),
			 -1);
	assert_string_equal(errors, "t.yaml:2: nested deeper than 64 levels");
	free(errors);

	/* The same, unclosed: refused the same way, not a crash. */
	assert_int_equal(
		config_load_buffer("t.yaml", y, len - depth, &c, &errors), -1);
	assert_string_equal(errors, "t.yaml:2: nested deeper than 64 levels");
	free(errors);

	/* 64 levels are parsed (and x is not a key); brackets in quoted
	 * scalars and comments do not count. */
	len = (size_t)sprintf(y, H "x: ");
	memset(y + len, '[', 64);
	memset(y + len + 64, ']', 64);
	len += 128;
	len += (size_t)sprintf(y + len,
			       " # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
			       "[[[[[[[[[[[[[[[[[[[[[[[[\n"
			       "hostname: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
			       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n");
	assert_int_equal(config_load_buffer("t.yaml", y, len, &c, &errors),
			 -1);
	assert_non_null(strstr(errors, "t.yaml:2: unknown key 'x'"));
	assert_null(strstr(errors, "nested deeper"));
	free(errors);
	free(y);
}

/* An alias may point back at its own mapping: the walk must still end. */
static void
test_recursive_alias(void **state)
{
	static const char y[] = H "smtp: &s\n  timeouts: *s\n";
	struct config *c;
	char *errors;

	(void)state;
	assert_int_equal(
		config_load_buffer("t.yaml", y, strlen(y), &c, &errors), -1);
	assert_string_equal(errors,
			    "t.yaml:3: unknown key 'timeouts' in smtp.timeouts");
	free(errors);
}

/* The size bounds: the largest allowed loads, one more is an error. */
static void
test_bounds(void **state)
{
	struct strbuf b;
	struct config *c;
	char *errors, *want;
	char name[300];

	(void)state;
	for (int n = 64; n <= 65; n++) {
		b = (struct strbuf){0};
		strbuf_addf(&b, H "listeners:\n");
		for (int i = 0; i < n; i++)
			strbuf_addf(&b, "  - {name: l%d, protocol: smtp, "
				    "listen: \"127.0.0.1:%d\"}\n", i,
				    1000 + i);
		int r = config_load_buffer("t.yaml", b.s, b.len, &c, &errors);
		if (n == 64) {
			assert_int_equal(r, 0);
			assert_int_equal(c->nlisteners, 64);
			assert_string_equal(c->listeners[63].name, "l63");
			assert_string_equal(c->listeners[63].addrs[0].text,
					    "127.0.0.1:1063");
			config_free(&c);
		} else {
			assert_int_equal(r, -1);
			assert_string_equal(errors, "t.yaml:3: listeners: more "
						    "than 64 listeners");
			free(errors);
		}
		free(b.s);
	}

	for (int n = 64; n <= 65; n++) {
		b = (struct strbuf){0};
		strbuf_addf(&b, H "listeners:\n  - protocol: smtp\n"
				  "    listen:\n");
		for (int i = 0; i < n; i++)
			strbuf_addf(&b, "      - \"[::1]:%d\"\n", 2000 + i);
		int r = config_load_buffer("t.yaml", b.s, b.len, &c, &errors);
		if (n == 64) {
			assert_int_equal(r, 0);
			assert_int_equal(c->listeners[0].naddrs, 64);
			config_free(&c);
		} else {
			assert_int_equal(r, -1);
			assert_string_equal(errors, "t.yaml:5: listeners[0].listen: "
						    "more than 64 addresses");
			free(errors);
		}
		free(b.s);
	}

	for (size_t n = 4095; n <= 4096; n++) {
		b = (struct strbuf){0};
		strbuf_addf(&b, H "data_dir: /");
		for (size_t i = 1; i < n; i++)
			strbuf_addf(&b, "d");
		strbuf_addf(&b, "\n");
		int r = config_load_buffer("t.yaml", b.s, b.len, &c, &errors);
		if (n == 4095) {
			assert_int_equal(r, 0);
			assert_int_equal(strlen(c->data_dir), 4095);
			config_free(&c);
		} else {
			assert_int_equal(r, -1);
			assert_string_equal(errors, "t.yaml:2: data_dir: longer "
						    "than 4095 characters");
			free(errors);
		}
		free(b.s);
	}

	/* 253 characters: labels of 63 with dots, then a short last one. */
	for (size_t n = 253; n <= 254; n++) {
		memset(name, 'a', n);
		name[n] = '\0';
		for (size_t i = 63; i < n; i += 64)
			name[i] = '.';
		want = xasprintf("hostname: %s\n", name);
		int r = config_load_buffer("t.yaml", want, strlen(want), &c,
					   &errors);
		free(want);
		if (n == 253) {
			assert_int_equal(r, 0);
			assert_string_equal(c->hostname, name);
			config_free(&c);
		} else {
			assert_int_equal(r, -1);
			assert_non_null(strstr(errors, "is not a valid domain name "
						       "(longer than 253 "
						       "characters)"));
			free(errors);
		}
	}
}

/* ---- files ----------------------------------------------------------- */

static char *
write_temp(const void *data, size_t len)
{
	char *path = xstrdup("/tmp/godwit-test-config-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void
test_files(void **state)
{
	struct config *c;
	char *errors, *path, *want;
	size_t size = 1024 * 1024;
	char *big = xmalloc(size + 1);

	(void)state;
	/* config_load: path recorded, messages name the file. */
	path = write_temp(H "workers: 3\n", strlen(H "workers: 3\n"));
	assert_int_equal(config_load(path, &c, &errors), 0);
	assert_null(errors);
	assert_string_equal(c->path, path);
	assert_int_equal(c->workers, 3);
	config_free(&c);
	unlink(path);
	free(path);

	path = write_temp(H "vrfy: 1\n", strlen(H "vrfy: 1\n"));
	assert_int_equal(config_load(path, &c, &errors), -1);
	assert_null(c);
	want = xasprintf("%s:2: unknown key 'vrfy' at top level", path);
	assert_string_equal(errors, want);
	free(want);
	free(errors);
	unlink(path);
	free(path);

	/* Exactly 1 MiB is allowed: hostname then comment lines. */
	memset(big, '#', size);
	memcpy(big, H, strlen(H));
	for (size_t i = 100; i < size; i += 100)
		big[i] = '\n';
	big[size - 1] = '\n';
	path = write_temp(big, size);
	assert_int_equal(config_load(path, &c, &errors), 0);
	assert_string_equal(c->hostname, "mail.example.com");
	config_free(&c);
	unlink(path);
	free(path);

	/* One byte more is refused, from a file and from a buffer. */
	big[size] = '\n';
	path = write_temp(big, size + 1);
	assert_int_equal(config_load(path, &c, &errors), -1);
	assert_null(c);
	want = xasprintf("%s: larger than the limit of 1 MiB", path);
	assert_string_equal(errors, want);
	free(want);
	free(errors);
	unlink(path);
	free(path);
	assert_int_equal(config_load_buffer("b.yaml", big, size + 1, &c,
					    &errors),
			 -1);
	assert_string_equal(errors, "b.yaml: larger than the limit of 1 MiB");
	free(errors);
	free(big);

	assert_int_equal(config_load("/nonexistent/godwit.yaml", &c, &errors),
			 -1);
	assert_null(c);
	assert_string_equal(errors, "/nonexistent/godwit.yaml: cannot open: "
				    "No such file or directory");
	free(errors);

	assert_int_equal(config_load("/", &c, &errors), -1);
	assert_string_equal(errors, "/: cannot read: Is a directory");
	free(errors);

	/* config_free on NULL is a no-op. */
	c = NULL;
	config_free(&c);
	assert_null(c);
}

/* ---- parse_listen_addr and listener_proto_name ------------------------ */

struct addr_case {
	const char *in;
	int family;		/* 0: must fail */
	const char *addr;	/* inet_ntop form */
	unsigned port;
	const char *error;
};

static const struct addr_case addr_cases[] = {
	{"0.0.0.0:25", AF_INET, "0.0.0.0", 25, NULL},
	{"127.0.0.1:2525", AF_INET, "127.0.0.1", 2525, NULL},
	{"192.0.2.1:65535", AF_INET, "192.0.2.1", 65535, NULL},
	{"192.0.2.1:1", AF_INET, "192.0.2.1", 1, NULL},
	{"[::]:25", AF_INET6, "::", 25, NULL},
	{"[::1]:2525", AF_INET6, "::1", 2525, NULL},
	{"[2001:db8::25]:587", AF_INET6, "2001:db8::25", 587, NULL},
	{"[::ffff:192.0.2.1]:25", AF_INET6, "::ffff:192.0.2.1", 25, NULL},
	{"::1:25", 0, NULL, 0,
	 "an IPv6 address must be written in brackets, as in [::1]:25"},
	{"::", 0, NULL, 0,
	 "an IPv6 address must be written in brackets, as in [::1]:25"},
	{"[::1]", 0, NULL, 0, "missing ':PORT' after the address"},
	{"[::1]25", 0, NULL, 0, "missing ':PORT' after the address"},
	{"[::1:25", 0, NULL, 0, "missing ']' after the IPv6 address"},
	{"[127.0.0.1]:25", 0, NULL, 0, "not an IPv6 address"},
	{"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:25", 0, NULL, 0,
	 "not an IPv6 address"},
	{"0000000000000000000000000000000000000000000000000000.0.0.0:25", 0,
	 NULL, 0, "not an IPv4 address"},
	{"[fe80::1%eth0]:25", 0, NULL, 0, "not an IPv6 address"},
	{"[" "1111:2222:3333:4444:5555:6666:7777:8888:9999" "]:25", 0, NULL,
	 0, "not an IPv6 address"},
	{"127.0.0.1", 0, NULL, 0, "missing ':PORT' after the address"},
	{":25", 0, NULL, 0,
	 "missing address (use 0.0.0.0 or [::] for all addresses)"},
	{"", 0, NULL, 0, "missing ':PORT' after the address"},
	{"*:25", 0, NULL, 0,
	 "not an IPv4 address (host names are not allowed)"},
	{"localhost:25", 0, NULL, 0,
	 "not an IPv4 address (host names are not allowed)"},
	{"127.1:25", 0, NULL, 0,
	 "not an IPv4 address (host names are not allowed)"},
	{"127.0.0.1:0", 0, NULL, 0,
	 "the port must be a number from 1 to 65535"},
	{"127.0.0.1:65536", 0, NULL, 0,
	 "the port must be a number from 1 to 65535"},
	{"127.0.0.1:", 0, NULL, 0, "the port must be a number from 1 to 65535"},
	{"127.0.0.1:+25", 0, NULL, 0,
	 "the port must be a number from 1 to 65535"},
	{"127.0.0.1:25 ", 0, NULL, 0,
	 "the port must be a number from 1 to 65535"},
	{"127.0.0.1:smtp", 0, NULL, 0,
	 "the port must be a number from 1 to 65535"},
	{"[::]:99999999999999999999999", 0, NULL, 0,
	 "the port must be a number from 1 to 65535"},
};

static void
test_parse_listen_addr(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]);
	     i++) {
		const struct addr_case *tc = &addr_cases[i];
		struct listen_addr a;
		const char *error = NULL;
		char host[INET6_ADDRSTRLEN];

		print_message("listen addr: '%s'\n", tc->in);
		int r = parse_listen_addr(tc->in, &a, &error);
		if (tc->family == 0) {
			assert_int_equal(r, -1);
			assert_string_equal(error, tc->error);
			assert_null(a.text);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(a.ss.ss_family, tc->family);
		assert_string_equal(a.text, tc->in);
		if (tc->family == AF_INET) {
			const struct sockaddr_in *sin = (const void *)&a.ss;
			assert_int_equal(a.len, sizeof(*sin));
			assert_int_equal(ntohs(sin->sin_port), tc->port);
			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		} else {
			const struct sockaddr_in6 *sin6 = (const void *)&a.ss;
			assert_int_equal(a.len, sizeof(*sin6));
			assert_int_equal(ntohs(sin6->sin6_port), tc->port);
			inet_ntop(AF_INET6, &sin6->sin6_addr, host,
				  sizeof(host));
		}
		assert_string_equal(host, tc->addr);
		free(a.text);
	}
}

static void
test_proto_names(void **state)
{
	static const struct {
		enum listener_proto proto;
		const char *name;
	} cases[] = {
		{PROTO_SMTP, "smtp"},		{PROTO_SUBMISSION, "submission"},
		{PROTO_SUBMISSIONS, "submissions"}, {PROTO_POP3, "pop3"},
		{PROTO_POP3S, "pop3s"},		{PROTO_METRICS, "metrics"},
		{PROTO_IMAP, "imap"},		{PROTO_IMAPS, "imaps"},
		{(enum listener_proto)99, "unknown"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(listener_proto_name(cases[i].proto),
				    cases[i].name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_recursive_alias),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_parse_listen_addr),
		cmocka_unit_test(test_proto_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
