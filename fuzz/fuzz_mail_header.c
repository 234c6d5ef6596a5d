/*
 * Fuzz the RFC 5322 header parser: every field of the input as a header
 * section, each field's unfolded value and the whole input as an address
 * list, and display names through the encoded-word decoder. Checks: the
 * iterator makes progress and stops; every field name is ftext; unfolded
 * values have no line ends; every parsed addr-spec has an '@' and parses
 * again to exactly itself (the normal form is stable).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_header.h"

static void
check_list(const char *v, size_t len)
{
	struct mail_address_list l;
	const char *err;

	if (mail_address_list_parse(v, len, &l, &err) < 0) {
		if (err == NULL || l.n != 0 || l.v != NULL)
			abort();
		return;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct mail_mailbox *m = &l.v[i];
		struct mail_address_list again;
		char **addrs;
		size_t n;

		if (strchr(m->addr, '@') == NULL)
			abort();
		if (mail_address_list_parse(m->addr, strlen(m->addr), &again,
					    &err) < 0 ||
		    again.n != 1 || strcmp(again.v[0].addr, m->addr) != 0)
			abort();
		mail_address_list_clear(&again);
		if (m->display != NULL) {
			n = mail_display_addresses(m->display, &addrs);
			for (size_t k = 0; k < n; k++)
				if (strchr(addrs[k], '@') == NULL)
					abort();
			mail_strings_free(&addrs, n);
		}
		if (m->comment != NULL) {
			n = mail_display_addresses(m->comment, &addrs);
			mail_strings_free(&addrs, n);
		}
	}
	mail_address_list_clear(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	const char *err;
	size_t fields = 0;
	int r;
	char *s;

	mail_header_iter_init(&it, data, size);
	while ((r = mail_header_next(&it, &f, &err)) == 1) {
		char *v;
		if (++fields > size || f.name_len == 0)
			abort();
		for (size_t i = 0; i < f.name_len; i++)
			if ((unsigned char)f.name[i] < 33 ||
			    (unsigned char)f.name[i] > 126 || f.name[i] == ':')
				abort();
		v = mail_header_unfold(&f);
		if (strchr(v, '\n') != NULL || strchr(v, '\r') != NULL)
			abort();
		check_list(v, strlen(v));
		free(v);
	}
	if (r < 0 && (err == NULL || mail_header_next(&it, &f, &err) != -1))
		abort();
	check_list((const char *)data, size);
	/* NUL-terminated copy for the decoder */
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	free(mail_display_decode(s));
	free(s);
	return 0;
}
