/*
 * libFuzzer target for mail/userdump.c, the lines of a `godwit db
 * import` dump. Invariants, abort() on violation:
 *  - the parser returns 0 or -1; -1 comes with a short reason and leaves
 *    the record empty;
 *  - 0 gives a record whose strings are non-empty, free of NUL and
 *    control characters, and no longer than the line, with the fields
 *    its kind needs;
 *  - what parses, written again by the writer, parses to the same record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "mail/userdump.h"

static void
check_str(const char *s, size_t max, int required)
{
	if (s == NULL) {
		if (required)
			abort();
		return;
	}
	if (*s == '\0' || strlen(s) > max)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct userdump_rec r, r2;
	const char *err = NULL;
	struct strbuf b = {0};

	if (userdump_parse_line((const char *)data, size, &r, &err) != 0) {
		if (err == NULL || strlen(err) > 80 || r.name != NULL ||
		    r.address != NULL || r.source != NULL)
			abort();
		return 0;
	}
	switch (r.kind) {
	case USERDUMP_HEADER:
		strbuf_addf(&b, "{\"format\":\"%s\",\"version\":%lu}\n",
			    USERDUMP_FORMAT, r.version);
		break;
	case USERDUMP_DOMAIN:
		check_str(r.name, size, 1);
		userdump_write_domain(&b, r.name);
		break;
	case USERDUMP_USER:
		check_str(r.address, size, 1);
		check_str(r.hash, size, 1);
		check_str(r.scram, size, 0);
		check_str(r.cram, size, 0);
		userdump_write_user(&b, r.address, r.hash, r.scram, r.cram);
		break;
	case USERDUMP_ALIAS:
		check_str(r.source, size, 1);
		check_str(r.target, size, 1);
		userdump_write_alias(&b, r.source, r.target);
		break;
	case USERDUMP_END:
		userdump_write_end(&b, r.domains, r.users, r.aliases);
		break;
	default:
		abort();
	}
	if (b.len == 0 || b.s[b.len - 1] != '\n' ||
	    userdump_parse_line(b.s, b.len - 1, &r2, &err) != 0)
		abort();
	if (r2.kind != r.kind || r2.version != r.version ||
	    r2.domains != r.domains || r2.users != r.users ||
	    r2.aliases != r.aliases || !same(r.name, r2.name) ||
	    !same(r.address, r2.address) || !same(r.hash, r2.hash) ||
	    !same(r.scram, r2.scram) || !same(r.cram, r2.cram) ||
	    !same(r.source, r2.source) || !same(r.target, r2.target))
		abort();
	userdump_rec_clear(&r2);
	userdump_rec_clear(&r);
	strbuf_free(&b);
	return 0;
}
