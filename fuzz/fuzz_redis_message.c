/*
 * libFuzzer target for what godwit reads from Redis and from redis.address
 * without a library's help: the messages the nodes publish on
 * <prefix>events (rlimits_parse_message, net/redis_limits.h) and the
 * address syntax (redis_address_parse, net/redis.h). Both get the input
 * in a buffer of exactly its size, so ASan sees a read past the end.
 * Invariants checked (abort() on violation): a parsed message names an
 * IPv4 or IPv6 address; a parsed address is a NUL-terminated host that
 * fits the buffer, with a port in 1..65535 or a socket path.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/redis.h"
#include "net/redis_limits.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	char host[64], *s;
	const char *err;
	uint64_t ttl;
	bool ban, wide, unix_sock;
	int port;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	if (rlimits_parse_message(s, size, &ban, &wide, &ttl, &ss) == 0)
		check(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	s[size] = '\0';
	if (memchr(s, '\0', size) == NULL &&
	    redis_address_parse(s, host, sizeof(host), &port, &unix_sock,
				&err) == 0) {
		check(memchr(host, '\0', sizeof(host)) != NULL);
		check(unix_sock ? host[0] == '/' : port >= 1 && port <= 65535);
	}
	free(s);
	return 0;
}
