/*
 * libFuzzer target for mail/dovecot_files.c: the input is taken as a
 * dovecot-uidlist, a dovecot-keywords and a subscriptions file (all
 * three parsers see every input, in a buffer of exactly its size).
 * Invariants checked (abort() on violation): uidlist records ascend, are
 * non-zero and below uidnext when uidnext allows, names are non-empty,
 * hold no '/', ':' or control character; writing and re-parsing gives the
 * same records; keyword names are valid and distinct; subscription names
 * are non-empty and written back and re-read unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "mail/dovecot_files.h"

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
uidlist(const char *in, size_t size)
{
	struct dovecot_uidlist ul, u2;
	struct strbuf out = {0};
	const char *err;

	if (dovecot_uidlist_parse(in, size, &ul, &err) < 0)
		return;
	for (size_t i = 0; i < ul.n; i++) {
		const char *b = ul.recs[i].base;
		check(ul.recs[i].uid > 0);
		check(i == 0 || ul.recs[i].uid > ul.recs[i - 1].uid);
		check(ul.recs[i].uid < ul.uidnext ||
		      ul.recs[i].uid == UINT32_MAX);
		check(*b != '\0' && strpbrk(b, "/:\n\r") == NULL);
	}
	dovecot_uidlist_write(&ul, &out);
	check(dovecot_uidlist_parse(out.s, out.len, &u2, &err) == 0);
	check(u2.n == ul.n && u2.uidvalidity == ul.uidvalidity &&
	      u2.uidnext == ul.uidnext);
	for (size_t i = 0; i < ul.n; i++)
		check(u2.recs[i].uid == ul.recs[i].uid &&
		      strcmp(u2.recs[i].base, ul.recs[i].base) == 0);
	dovecot_uidlist_free(&u2);
	dovecot_uidlist_free(&ul);
	strbuf_free(&out);
}

static void
keywords(const char *in, size_t size)
{
	char *names[DOVECOT_KEYWORDS_MAX];

	dovecot_keywords_parse(in, size, names);
	for (int i = 0; i < DOVECOT_KEYWORDS_MAX; i++) {
		if (names[i] == NULL)
			continue;
		check(dovecot_keyword_valid(names[i]));
		for (int j = 0; j < i; j++)
			check(names[j] == NULL ||
			      strcasecmp(names[i], names[j]) != 0);
	}
	for (int i = 0; i < DOVECOT_KEYWORDS_MAX; i++)
		free(names[i]);
}

static void
subs(const char *in, size_t size)
{
	struct strbuf out = {0};
	char **n, **n2;
	size_t cnt, cnt2;

	dovecot_subs_parse(in, size, &n, &cnt);
	for (size_t i = 0; i < cnt; i++)
		check(n[i][0] != '\0');
	if (dovecot_subs_write(n, cnt, &out) == 0) {
		dovecot_subs_parse(out.s, out.len, &n2, &cnt2);
		check(cnt2 == cnt);
		for (size_t i = 0; i < cnt2; i++) {
			check(strcmp(n[i], n2[i]) == 0);
			free(n2[i]);
		}
		free(n2);
	}
	for (size_t i = 0; i < cnt; i++)
		free(n[i]);
	free(n);
	strbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	uidlist(in, size);
	keywords(in, size);
	subs(in, size);
	free(in);
	return 0;
}
