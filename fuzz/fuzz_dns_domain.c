/*
 * libFuzzer target for the pure parts of dns.c. The first byte chooses:
 *	0 mod 3  dns_domain_parse on the rest as a C string
 *	1 mod 3  dns_mx_rdata_parse on the rest as rdata
 *	2 mod 3  the rest split into 3-byte records (16-bit preference, a
 *		 name byte) for dns_mx_order
 * Invariants, abort() on violation: a parsed name is a clean lower-case
 * host name of at most DNS_NAME_MAX octets that parses again to itself;
 * a literal has the family and length it claims; an MX name parses as a
 * domain (unless it is the root); a smaller buffer never yields another
 * name; ordering is a sorted permutation and null MX means exactly one
 * root record.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

#define INPUT_MAX 1024

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_name(const char *name)
{
	size_t n = strnlen(name, DNS_NAME_MAX + 1);
	const char *p;

	check(n <= DNS_NAME_MAX);
	for (p = name; *p != '\0'; p++)
		check((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.');
	if (n > 0)
		check(name[0] != '.' && name[n - 1] != '.' &&
		      strstr(name, "..") == NULL);
}

static void
fuzz_domain(const uint8_t *data, size_t size)
{
	static char in[INPUT_MAX + 1];
	char name[DNS_NAME_MAX + 1], again[DNS_NAME_MAX + 1];
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int rc;

	memcpy(in, data, size);
	in[size] = '\0';
	rc = dns_domain_parse(in, name, sizeof(name), &ss, &len);
	check(rc >= -1 && rc <= 1);
	if (rc == 1) {
		check(in[0] == '[');
		check((ss.ss_family == AF_INET &&
		       len == sizeof(struct sockaddr_in) &&
		       ((struct sockaddr_in *)&ss)->sin_port == 0) ||
		      (ss.ss_family == AF_INET6 &&
		       len == sizeof(struct sockaddr_in6) &&
		       ((struct sockaddr_in6 *)&ss)->sin6_port == 0));
	} else if (rc == 0) {
		check_name(name);
		check(name[0] != '\0');
		check(dns_domain_parse(name, again, sizeof(again), &ss,
				       &len) == 0);
		check(strcmp(name, again) == 0);
		/* a buffer one short of the name's size is refused */
		check(dns_domain_parse(in, again, strlen(name), &ss, &len) ==
		      -1);
	}
}

static void
fuzz_rdata(const uint8_t *data, size_t size)
{
	char name[DNS_NAME_MAX + 1], small[16], again[DNS_NAME_MAX + 1];
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned pref = 0, pref2 = 0;
	int rc;

	rc = dns_mx_rdata_parse(data, size, &pref, name, sizeof(name));
	check(rc == 0 || rc == -1);
	if (rc == 0) {
		check(size >= 3);
		check(pref == ((unsigned)data[0] << 8 | data[1]));
		check_name(name);
		if (name[0] != '\0') {
			check(dns_domain_parse(name, again, sizeof(again), &ss,
					       &len) == 0);
			check(strcmp(name, again) == 0);
		}
	}
	rc = dns_mx_rdata_parse(data, size, &pref2, small, sizeof(small));
	if (rc == 0)
		check(strcmp(small, name) == 0 && pref2 == pref);
}

static unsigned
rnd_from(unsigned n, void *arg)
{
	const uint8_t **p = arg;

	/* any value, even out of range: dns_mx_order must cope */
	return n + *(*p)++;
}

static void
fuzz_order(const uint8_t *data, size_t size)
{
	static const char *const names[4] = { "", "a", "b", "c" };
	struct dns_mx mx[INPUT_MAX / 3];
	unsigned count[4] = { 0 }, after[4] = { 0 };
	const uint8_t *rp = data;
	size_t n = size / 3, i;
	bool null;

	for (i = 0; i < n; i++) {
		mx[i].pref = (unsigned)data[3 * i] << 8 | data[3 * i + 1];
		mx[i].name = (char *)names[data[3 * i + 2] & 3];
		count[data[3 * i + 2] & 3]++;
	}
	/* rnd reads the same bytes again: at most n - 1 calls per run,
	 * fewer than the 3 n bytes there are */
	null = dns_mx_order(mx, n, rnd_from, &rp);
	check(rp <= data + size);
	check(null == (n == 1 && mx[0].name[0] == '\0'));
	for (i = 0; i < n; i++) {
		check(i == 0 || mx[i - 1].pref <= mx[i].pref);
		after[mx[i].name[0] == '\0' ? 0 : mx[i].name[0] - 'a' + 1]++;
	}
	check(memcmp(count, after, sizeof(count)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (size - 1 > INPUT_MAX)
		size = INPUT_MAX + 1;
	switch (data[0] % 3) {
	case 0:
		fuzz_domain(data + 1, size - 1);
		break;
	case 1:
		fuzz_rdata(data + 1, size - 1);
		break;
	default:
		fuzz_order(data + 1, size - 1);
		break;
	}
	return 0;
}
