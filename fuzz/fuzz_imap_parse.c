/*
 * libFuzzer target for imap_parse.c. The first octet picks how the rest
 * is fed (whole, or in pieces of 1..16 octets, as a socket would hand it
 * over) and the parser's bounds; the rest is the client's input, commands
 * and literals. A streamed literal's octets are skipped by the driver as
 * the session would write them to a file. Invariants the IMAP session
 * relies on abort() on violation: used never exceeds what was fed, a
 * whole command has a tag of tag characters and an upper-case name,
 * every argument's text is NUL-terminated at its length, lists nest
 * within the bound, a streamed literal's size and handle are the ones
 * given, and errors are short printable text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap_parse.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_args(const struct imap_arg *a, size_t n, unsigned depth,
	   unsigned max)
{
	check(depth <= max);
	for (size_t i = 0; i < n; i++) {
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
		case IMAP_ARG_STRING:
		case IMAP_ARG_LITERAL:
		case IMAP_ARG_NIL:
			check(a[i].str != NULL && a[i].str[a[i].len] == '\0');
			if (a[i].type != IMAP_ARG_LITERAL)
				check(strlen(a[i].str) == a[i].len);
			if (a[i].type == IMAP_ARG_ATOM)
				check(a[i].len > 0);
			break;
		case IMAP_ARG_LIST:
			check(a[i].nlist == 0 || a[i].list != NULL);
			check_args(a[i].list, a[i].nlist, depth + 1, max);
			break;
		case IMAP_ARG_STREAMED:
			check(a[i].fd == 7 || a[i].fd == -1);
			break;
		default:
			check(false);
		}
	}
}

static void
check_command(const struct imap_command *c, unsigned depth_max)
{
	size_t n = strlen(c->tag);

	check(n > 0 && n <= IMAP_TAG_MAX);
	for (size_t i = 0; i < n; i++)
		check(c->tag[i] > 0x20 && c->tag[i] < 0x7f &&
		      strchr("(){%*\"\\+", c->tag[i]) == NULL);
	check(c->name[0] != '\0');
	for (const char *p = c->name; *p != '\0'; p++)
		check(!(*p >= 'a' && *p <= 'z'));
	check(c->nargs == 0 || c->args != NULL);
	check_args(c->args, c->nargs, 0, depth_max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim = {256, 64, 2048, 4};
	struct imap_parser *p;
	size_t chunk, pos = 0;
	uint64_t skip = 0;
	unsigned rounds = 0;

	if (size < 1)
		return 0;
	chunk = (data[0] & 0x0f) + 1;
	if (data[0] & 0x10)
		chunk = SIZE_MAX;
	if (data[0] & 0x20)
		lim.inline_max = 4;
	data++;
	size--;
	p = imap_parser_new(&lim);
	while (pos < size && rounds++ < 1000000) {
		const struct imap_command *c = NULL;
		size_t n = size - pos < chunk ? size - pos : chunk, used = 0;
		enum imap_parse_result r;
		const char *e;

		if (skip > 0) {
			n = skip < n ? (size_t)skip : n;
			pos += n;
			skip -= n;
			if (skip == 0)
				imap_parser_stream_done(p, (data[0] & 1) ? 7 : -1);
			continue;
		}
		r = imap_parse(p, (const char *)data + pos, n, &used, &c);
		check(used <= n);
		pos += used;
		switch (r) {
		case IMAP_PARSE_MORE:
			check(used == n);
			break;
		case IMAP_PARSE_DONE:
			check_command(c, lim.depth_max);
			break;
		case IMAP_PARSE_CONTINUE:
			check(imap_parser_partial(p)->tag[0] != '\0');
			break;
		case IMAP_PARSE_STREAM:
			skip = imap_parser_stream_size(p);
			check(imap_parser_partial(p)->tag[0] != '\0');
			if (skip == 0)
				imap_parser_stream_done(p, 7);
			break;
		case IMAP_PARSE_ERROR:
			e = imap_parser_error(p);
			check(strlen(e) > 0 && strlen(e) < 64);
			check(imap_parser_partial(p)->tag[0] != '\0');
			break;
		default:
			check(false);
		}
	}
	imap_parser_free(p);
	return 0;
}
