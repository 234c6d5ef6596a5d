/*
 * libFuzzer target for mail/imap_search.h. The input is split at its
 * first NUL: before it, the arguments of a SEARCH command, which go
 * through the real command parser (mail/imap_parse.h) as
 * "a SEARCH <text>\r\n"; after it, a stored message the tree is
 * evaluated against. Invariants, abort() on violation: the parser
 * returns one of its three results (a tree only on OK, an error text
 * on BAD); evaluation over memory never fails and answers 0 or 1; a
 * tree that needs no content answers the same without it; and NOT of
 * the tree answers the opposite.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "mail/imap_mime.h"
#include "mail/imap_parse.h"
#include "mail/imap_search.h"

struct mem {
	const uint8_t *p;
	size_t len;
};

static ssize_t
mem_read(void *arg, uint64_t off, void *buf, size_t n)
{
	struct mem *m = arg;

	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - (size_t)off;
	memcpy(buf, m->p + off, n);
	return (ssize_t)n;
}

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static int
lookup(void *arg, const char *name)
{
	(void)arg;
	return name[0] == 'a' ? 1 : -1;
}

static void
evaluate(struct imap_search_node *t, const uint8_t *msg, size_t len)
{
	static const uint32_t saved[] = {2, 5, 9};
	struct mem mem = {msg, len};
	struct imap_mime_src src = {mem_read, &mem, len};
	struct imap_search_ctx ctx = {12, 40, saved, 3};
	struct imap_search_msg m = {
		5, 9, 0x0b, 0x2, true, 1234, 1057128757, &src,
	};
	struct imap_search_node not = {0};
	int r, r2;

	imap_search_keywords(t, lookup, NULL);
	r = imap_search_eval(t, &ctx, &m);
	check(r == 0 || r == 1);
	if (!imap_search_needs_content(t)) {
		m.src = NULL;
		check(imap_search_eval(t, &ctx, &m) == r);
		m.src = &src;
	}
	not.type = IMAP_SK_NOT;
	not.kids = t;
	not.nkids = 1;
	r2 = imap_search_eval(&not, &ctx, &m);
	check(r2 == !r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_parser_limits lim = {
		8192, 4096, 65536, 16,
	};
	const uint8_t *nul = memchr(data, '\0', size);
	size_t klen = nul != NULL ? (size_t)(nul - data) : size;
	struct strbuf line = {0};
	struct imap_parser *p;
	const struct imap_command *cmd;
	struct imap_search_node *t;
	const char *error;
	size_t used;
	int r;

	if (size > 64 * 1024 || memchr(data, '\n', klen) != NULL ||
	    memchr(data, '\r', klen) != NULL)
		return 0;
	strbuf_addstr(&line, "a SEARCH ");
	strbuf_add(&line, data, klen);
	strbuf_addstr(&line, "\r\n");
	p = imap_parser_new(&lim);
	if (imap_parse(p, line.s, line.len, &used, &cmd) == IMAP_PARSE_DONE) {
		r = imap_search_parse(cmd->args, cmd->nargs, &t, &error);
		check(r == IMAP_SEARCH_OK || r == IMAP_SEARCH_BAD ||
		      r == IMAP_SEARCH_BADCHARSET);
		check((r == IMAP_SEARCH_OK) == (t != NULL));
		check(r != IMAP_SEARCH_BAD || error != NULL);
		if (t != NULL) {
			evaluate(t, nul != NULL ? nul + 1 : data,
				 nul != NULL ? size - klen - 1 : 0);
			imap_search_free(&t);
		}
	}
	imap_parser_free(p);
	strbuf_free(&line);
	return 0;
}
