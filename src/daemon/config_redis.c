/*
 * The redis: section of the configuration (net/redis.h): where the Redis
 * server that several nodes share is, and how to talk to it. No section,
 * or an empty address: off (every limit, ban and greylist stays local).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config_load.h"
#include "lib/conftab.h"
#include "lib/xalloc.h"
#include "net/redis.h"

#define PREFIX_MAX 64
#define PASSWORD_MAX 512

static void
set_string(void *base, size_t offset, const char *s)
{
	char **f = (char **)(void *)((char *)base + offset);

	free(*f);
	*f = xstrdup(s);
}

static void
load_address(struct conf_loader *l, const yaml_node_t *n, const char *key,
	     void *base)
{
	char host[256], safe[CONF_SAFE_BUF];
	const char *s, *error;
	int port;
	bool unix_sock;

	if (conf_is_null(n) ||
	    (s = conf_scalar(l, n, key, "host:port, [IPv6]:port or a socket "
				       "path")) == NULL)
		return;
	if (s[0] != '\0' &&
	    redis_address_parse(s, host, sizeof(host), &port, &unix_sock,
				&error) < 0) {
		conf_error(l, conf_line(n), "%s: %s: %s", key,
			   conf_safe(safe, s), error);
		return;
	}
	set_string(base, offsetof(struct redis_config, address), s);
}

static void
load_password(struct conf_loader *l, const yaml_node_t *n, const char *key,
	      void *base)
{
	const char *s;

	if (conf_is_null(n) || (s = conf_scalar(l, n, key, "a string")) == NULL)
		return;
	if (strlen(s) > PASSWORD_MAX || strpbrk(s, "\r\n") != NULL) {
		conf_error(l, conf_line(n),
			   "%s: at most %d characters, on one line", key,
			   PASSWORD_MAX);
		return;
	}
	set_string(base, offsetof(struct redis_config, password), s);
}

static void
load_prefix(struct conf_loader *l, const yaml_node_t *n, const char *key,
	    void *base)
{
	char safe[CONF_SAFE_BUF];
	const char *s;

	if (conf_is_null(n) || (s = conf_scalar(l, n, key, "a string")) == NULL)
		return;
	for (const char *p = s; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '*' || *p == '?' ||
		    *p == '[' || *p == ']' || *p == '\\') {
			conf_error(l, conf_line(n),
				   "%s: %s: printable ASCII without spaces "
				   "or the pattern characters * ? [ ] \\",
				   key, conf_safe(safe, s));
			return;
		}
	if (strlen(s) > PREFIX_MAX) {
		conf_error(l, conf_line(n), "%s: at most %d characters", key,
			   PREFIX_MAX);
		return;
	}
	set_string(base, offsetof(struct redis_config, prefix), s);
}

static const struct conf_key redis_keys[] = {
    {"address", CONF_STRING, F(redis_config, address), .load = load_address,
     .doc = "host:port, [IPv6]:port or /path/to/redis.sock; empty: off"},
    {"password", CONF_STRING, F(redis_config, password),
     .load = load_password, .doc = "sent with AUTH; default: none"},
    {"database", CONF_UINT, F(redis_config, database), UINT(0, 1000, 0),
     .doc = "SELECTed database number"},
    {"prefix", CONF_STRING, F(redis_config, prefix), .def_str = "godwit:",
     .load = load_prefix,
     .doc = "of every key and of the channel; one per cluster"},
    {"timeout", CONF_DURATION_MS, F(redis_config, timeout_ms),
     SPAN(1, 10000, "1ms..10s", 250),
     .doc = "a command's answer is waited for at most this, then the "
            "local answer stands"},
};

const struct conf_section config_redis_section =
    SECTION("redis", redis_keys, NULL);
