/* Maildir paths: a mailbox name can never escape its directory. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "store/deliver.h"

static const struct {
	const char *mailbox;
	const char *path;	/* NULL: refused */
} cases[] = {
	{"alice@example.test", "/d/mail/example.test/alice/Maildir"},
	{"a.b+c@example.test", "/d/mail/example.test/a.b+c/Maildir"},
	{"../../etc@example.test", "/d/mail/example.test/%2E.%2F..%2Fetc/Maildir"},
	{"x@../../etc", "/d/mail/%2E.%2F..%2Fetc/x/Maildir"},
	{"a/b@example.test", "/d/mail/example.test/a%2Fb/Maildir"},
	{".hidden@example.test", "/d/mail/example.test/%2Ehidden/Maildir"},
	{"100%@example.test", "/d/mail/example.test/100%25/Maildir"},
	{"ctl\x01@example.test", "/d/mail/example.test/ctl%01/Maildir"},
	{"\"q@x\"@example.test", "/d/mail/example.test/\"q@x\"/Maildir"},
	{"noat", NULL},
	{"@example.test", NULL},
	{"user@", NULL},
};

static void
test_maildir_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = maildir_path("/d/mail", cases[i].mailbox);
		if (cases[i].path == NULL) {
			if (p != NULL)
				fail_msg("%s: got %s", cases[i].mailbox, p);
			continue;
		}
		if (p == NULL || strcmp(p, cases[i].path) != 0)
			fail_msg("%s: got %s, want %s", cases[i].mailbox,
				 p ? p : "NULL", cases[i].path);
		free(p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maildir_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
