/*
 * libFuzzer target for proxy_proto.c. The input is what a balancer's
 * connection starts with. Invariants the listener relies on are checked
 * and abort() on violation: a complete header is never longer than the
 * input, PROXY_HEADER_MAX or (version 1) 107 octets, and its result does
 * not depend on what follows it; "need more" asks for more than it was
 * given, within PROXY_HEADER_MAX, and every shorter prefix of the input
 * asks for more too (so the octets it took were all header); an error is
 * short printable text and stays an error with more input after it.
 * The input is copied into a buffer of exactly its size so ASan sees a
 * read past the end.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/proxy_proto.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_error(const char *error)
{
	size_t n;

	check(error != NULL);
	n = strlen(error);
	check(n > 0 && n < 80);
	for (; *error != '\0'; error++)
		check((unsigned char)*error >= 0x20 &&
		      (unsigned char)*error < 0x7f);
}

static void
check_info(const struct proxy_info *r)
{
	check(r->version == 1 || r->version == 2);
	if (r->local)
		return;
	check((r->src.ss_family == AF_INET &&
	       r->srclen == sizeof(struct sockaddr_in)) ||
	      (r->src.ss_family == AF_INET6 &&
	       r->srclen == sizeof(struct sockaddr_in6)));
	check((r->dst.ss_family == AF_INET &&
	       r->dstlen == sizeof(struct sockaddr_in)) ||
	      (r->dst.ss_family == AF_INET6 &&
	       r->dstlen == sizeof(struct sockaddr_in6)));
	if (r->src.ss_family == AF_INET6)
		check(!IN6_IS_ADDR_V4MAPPED(
		    &((const struct sockaddr_in6 *)&r->src)->sin6_addr));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info r, r2;
	const char *error, *error2;
	unsigned char *buf;
	size_t need, need2;
	int ret, ret2;

	if (size > 4 * PROXY_HEADER_MAX)
		return 0;
	buf = malloc(size + 1);
	check(buf != NULL);
	memcpy(buf, data, size);
	ret = proxy_parse(buf, size, &r, &need, &error);
	if (ret > 0) {
		check((size_t)ret <= size && ret <= PROXY_HEADER_MAX);
		check(r.version == 2 || ret <= PROXY_V1_MAX);
		check_info(&r);
		/* what follows is not looked at */
		ret2 = proxy_parse(buf, (size_t)ret, &r2, &need2, &error2);
		check(ret2 == ret && r2.local == r.local &&
		      r2.version == r.version);
		check(r.local || memcmp(&r.src, &r2.src, sizeof(r.src)) == 0);
		/* every strict prefix asks for more */
		for (size_t n = 0; n < (size_t)ret; n++) {
			check(proxy_parse(buf, n, &r2, &need2, &error2) == 0);
			check(need2 > n && need2 <= (size_t)ret);
		}
	} else if (ret == 0) {
		check(need > size && need <= PROXY_HEADER_MAX);
		for (size_t n = 0; n < size; n++)
			check(proxy_parse(buf, n, &r2, &need2, &error2) == 0);
	} else {
		check(ret == -1);
		check_error(error);
		/* more input does not make it valid */
		buf[size] = '\n';
		check(proxy_parse(buf, size + 1, &r2, &need2, &error2) == -1);
	}
	free(buf);
	return 0;
}
