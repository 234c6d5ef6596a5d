/*
 * A test driver for the DKIM verifier (msgauth/dkim.h) until `godwit
 * check` reports DKIM: reads a message on stdin (CRLF made LF, as
 * stored), streams it through dkim_verifier with a resolver that
 * forwards to FORWARDER ("127.0.0.1@PORT"), and prints one line per
 * signature:
 *	RESULT d=D s=S a=ALG bits=N testing=0|1 b=PREFIX reason=TEXT
 * "none" if the message has no signature. Exit 0, or 2 on usage/setup.
 *
 *	dkim_verify FORWARDER [NOW] [CHUNK] < message
 * NOW: the time to judge x= by (default: now); CHUNK: feed the body in
 * pieces of this many octets (default 1, the worst case for the state
 * machines).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "msgauth/dkim.h"
#include "net/dns.h"

static char *
read_all(size_t *len_r)
{
	size_t cap = 1 << 16, len = 0, n, o = 0;
	char *b = malloc(cap);

	while (b != NULL && (n = fread(b + len, 1, cap - len, stdin)) > 0)
		if ((len += n) == cap)
			b = realloc(b, cap *= 2);
	if (b == NULL)
		abort();
	for (size_t i = 0; i < len; i++)
		if (!(b[i] == '\r' && i + 1 < len && b[i + 1] == '\n'))
			b[o++] = b[i];
	*len_r = o;
	return b;
}

static void
done(void *arg)
{
	event_base_loopbreak(arg);
}

static void
feed(struct dkim_verifier *v, const char *m, size_t len, size_t chunk)
{
	size_t pos = 0;

	while (pos < len && m[pos] != '\n') {
		size_t start = pos;
		do {
			const char *nl = memchr(m + pos, '\n', len - pos);
			pos = nl == NULL ? len : (size_t)(nl - m) + 1;
		} while (pos < len && (m[pos] == ' ' || m[pos] == '\t'));
		dkim_verifier_header(v, m + start, pos - start);
	}
	dkim_verifier_header_end(v);
	if (pos < len)
		pos++;
	for (; pos < len; pos += chunk)
		dkim_verifier_body(v, m + pos,
				   len - pos < chunk ? len - pos : chunk);
}

int
main(int argc, char **argv)
{
	const char *fwd[1];
	struct dns_resolver_config cfg = {0};
	const struct dkim_sig_result *res;
	struct event_base *base = event_base_new();
	struct dns_resolver *r;
	struct dkim_verifier *v;
	char *err = NULL, *msg;
	size_t len, n, chunk = 1;
	time_t now = time(NULL);

	if (argc < 2 || argc > 4 || base == NULL) {
		fprintf(stderr, "usage: dkim_verify FORWARDER [NOW] [CHUNK]\n");
		return 2;
	}
	if (argc > 2)
		now = (time_t)strtoll(argv[2], NULL, 10);
	if (argc > 3 && (chunk = strtoul(argv[3], NULL, 10)) == 0)
		chunk = 1;
	fwd[0] = argv[1];
	cfg.forwarders = fwd;
	cfg.nforwarders = 1;
	if ((r = dns_resolver_new(base, &cfg, &err)) == NULL) {
		fprintf(stderr, "dkim_verify: %s\n", err);
		return 2;
	}
	msg = read_all(&len);
	v = dkim_verifier_new(r, now, 5000);
	feed(v, msg, len, chunk);
	dkim_verifier_finish(v, done, base);
	event_base_dispatch(base);
	if ((n = dkim_verifier_results(v, &res)) == 0)
		printf("none\n");
	for (size_t i = 0; i < n; i++)
		printf("%s d=%s s=%s a=%s bits=%u testing=%d b=%s reason=%s\n",
		       dkim_result_name(res[i].result), res[i].domain,
		       res[i].selector, res[i].algorithm, res[i].key_bits,
		       res[i].testing, res[i].b_prefix, res[i].reason);
	dkim_verifier_free(&v);
	dns_resolver_free(&r);
	event_base_free(base);
	free(msg);
	return 0;
}
