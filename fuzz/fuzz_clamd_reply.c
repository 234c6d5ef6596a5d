/*
 * libFuzzer target for clamd's reply parser (mail/clamd_reply.c): the
 * input is what clamd sent up to its terminator, in a buffer of exactly
 * its length so ASan sees any read past it. Checked invariants (abort()
 * on violation): the kind is one of the four; a FOUND name is not empty,
 * at most CLAMD_NAME_MAX octets of the allowed characters; an ERROR or
 * garbled text is printable ASCII within CLAMD_TEXT_MAX; a reply that
 * starts with "stream: OK" and is longer than it (terminators aside) is
 * never OK.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/clamd_reply.h"

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
check_text(const char *s, size_t max, int name)
{
	size_t n = strnlen(s, max + 1);

	check(n <= max);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		check(c >= (name ? 0x21 : 0x20) && c < 0x7f);
		if (name)
			check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') ||
			      strchr("._-:+/()[]!#@=,", c) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clamd_reply r;
	char *buf;
	size_t core = size;

	if (size > 2 * CLAMD_REPLY_MAX)
		return 0;
	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	clamd_reply_parse(buf, size, &r);
	switch (r.kind) {
	case CLAMD_REPLY_OK:
		while (core > 0 && (buf[core - 1] == '\0' ||
				    buf[core - 1] == '\n' || buf[core - 1] == '\r'))
			core--;
		check(core == 10 && memcmp(buf, "stream: OK", 10) == 0);
		break;
	case CLAMD_REPLY_FOUND:
		check(r.name[0] != '\0');
		check_text(r.name, CLAMD_NAME_MAX, 1);
		break;
	case CLAMD_REPLY_ERROR:
	case CLAMD_REPLY_BAD:
		check_text(r.text, CLAMD_TEXT_MAX, 0);
		break;
	default:
		abort();
	}
	free(buf);
	return 0;
}
