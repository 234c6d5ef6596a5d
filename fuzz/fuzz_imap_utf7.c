/*
 * libFuzzer target for mail/imap_utf7.c. The input goes through both
 * directions in a buffer of exactly its size. Invariants checked (abort()
 * on violation): a failed conversion appends nothing; modified UTF-7 out
 * of UTF-8 is printable US-ASCII and decodes back to the same bytes;
 * UTF-8 out of accepted modified UTF-7 encodes back to the same text
 * (the encoding is canonical: RFC 3501 allows one spelling per name).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "mail/imap_utf7.h"

static void
check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf a = {0}, b = {0};
	char *in = malloc(size ? size : 1);

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	if (imap_utf8_to_utf7(in, size, &a) == 0) {
		for (size_t i = 0; i < a.len; i++)
			check(a.s[i] >= 0x20 && a.s[i] < 0x7f);
		check(imap_utf7_to_utf8(a.s, a.len, &b) == 0);
		check(b.len == size && memcmp(b.s, in, size) == 0);
	} else
		check(a.len == 0);
	strbuf_free(&a);
	strbuf_free(&b);
	if (imap_utf7_to_utf8(in, size, &a) == 0) {
		check(imap_utf8_to_utf7(a.s, a.len, &b) == 0);
		check(b.len == size && memcmp(b.s, in, size) == 0);
	} else
		check(a.len == 0);
	strbuf_free(&a);
	strbuf_free(&b);
	free(in);
	return 0;
}
