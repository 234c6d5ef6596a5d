/*
 * Unit tests for ops/quickstart: the configuration text loads (with the
 * self-signed certificate it names) and says what it should; files are
 * written once and then kept; a half pair of certificate files is
 * refused; the password's alphabet and length; the unit's hardening;
 * the accounts made once, with their audit lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include "daemon/config.h"
#include "lib/xalloc.h"
#include "ops/quickstart.h"

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = xcalloc(1, 65536);

	assert_non_null(f);
	assert_true(fread(buf, 1, 65535, f) > 0);
	fclose(f);
	return buf;
}

static void
test_config(void **state)
{
	char dir[] = "/tmp/test_quickstart.XXXXXX", *err = NULL, *cmd;
	char *cert, *key, *text, *errors = NULL;
	struct config *c = NULL;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	cert = xasprintf("%s/tls/h.crt", dir);
	key = xasprintf("%s/tls/h.key", dir);
	assert_int_equal(quickstart_self_signed("mail.example.com", cert, key,
						&err), 1);
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* both exist: kept */
	assert_int_equal(quickstart_self_signed("mail.example.com", cert, key,
						&err), 0);
	struct quickstart_params p = {
		.hostname = "mail.example.com", .domain = "example.com",
		.admin = "admin@example.com", .config_path = "/etc/g.yaml",
		.data_dir = dir, .cert = cert, .key = key, .user = "godwit",
		.trust_anchor = NULL,
	};
	text = quickstart_config_text(&p);
	if (config_load_buffer("q.yaml", text, strlen(text), &c, &errors) < 0)
		fail_msg("%s\n%s", errors, text);
	assert_string_equal(c->hostname, "mail.example.com");
	assert_string_equal(c->data_dir, dir);
	/* the seven mail listeners (IMAP on 143 and 993 last), then
	 * metrics on loopback */
	assert_int_equal(c->nlisteners, 8);
	assert_int_equal(c->listeners[5].proto, PROTO_IMAP);
	assert_string_equal(c->listeners[5].addrs[0].text, "0.0.0.0:143");
	assert_string_equal(c->listeners[5].addrs[1].text, "[::]:143");
	assert_int_equal(c->listeners[6].proto, PROTO_IMAPS);
	assert_string_equal(c->listeners[6].addrs[0].text, "0.0.0.0:993");
	assert_string_equal(c->listeners[6].name, "imaps");
	assert_int_equal(c->listeners[7].proto, PROTO_METRICS);
	assert_string_equal(c->listeners[7].addrs[0].text, "127.0.0.1:9925");
	for (size_t i = 0; i < c->nlisteners; i++) {
		assert_int_equal(c->listeners[i].naddrs, 2);
		assert_string_equal(strrchr(c->listeners[i].addrs[0].text, ':')
					    + 1,
				    strrchr(c->listeners[i].addrs[1].text, ':')
					    + 1);
	}
	assert_true(c->filter.greylist.enabled);
	assert_true(strstr(text, "letsencrypt/live/mail.example.com/"
				 "fullchain.pem") != NULL);
	assert_null(strstr(text, "trust_anchor"));
	config_free(&c);
	free(text);

	/* one of the pair missing: refused, nothing made */
	assert_int_equal(unlink(cert), 0);
	assert_int_equal(quickstart_self_signed("mail.example.com", cert, key,
						&err), -1);
	assert_non_null(strstr(err, "does not"));
	xfree(&err);
	assert_int_not_equal(access(cert, F_OK), 0);
	free(cert);
	free(key);
	cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
test_write_new(void **state)
{
	char dir[] = "/tmp/test_quickstart.XXXXXX", *err = NULL, *path, *s;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/a/b/f", dir);
	assert_int_equal(quickstart_write_new(path, "one\n", 0640, &err), 1);
	assert_int_equal(quickstart_write_new(path, "two\n", 0644, &err), 0);
	s = slurp(path);
	assert_string_equal(s, "one\n");
	free(s);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	unlink(path);
	free(path);
	path = xasprintf("%s/a/b", dir);
	rmdir(path);
	free(path);
	path = xasprintf("%s/a", dir);
	rmdir(path);
	free(path);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_password(void **state)
{
	char *a, *b;

	(void)state;
	a = quickstart_password();
	b = quickstart_password();
	assert_int_equal(strlen(a), 24);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
				   "opqrstuvwxyz0123456789"), 24);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

static void
test_unit(void **state)
{
	char *u = quickstart_unit_text("/usr/sbin/godwit",
				       "/etc/godwit/godwit.yaml",
				       "/var/lib/godwit");
	static const char *const want[] = {
		"\nExecStart=/usr/sbin/godwit -c /etc/godwit/godwit.yaml "
		"serve\n",
		"\nExecStartPre=/usr/sbin/godwit -c /etc/godwit/godwit.yaml "
		"config check\n",
		"\nProtectSystem=strict\n",
		"\nReadWritePaths=/var/lib/godwit\n",
		"\nNoNewPrivileges=yes\n",
		"\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID "
		"CAP_SETGID CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_KILL\n",
		"\nLimitNOFILE=65536\n",
		"\nPrivateTmp=yes\n",
		"\nProtectHome=yes\n",
		"\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
		"\n[Install]\nWantedBy=multi-user.target\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(u, want[i]) == NULL)
			fail_msg("missing: %s", want[i]);
	assert_null(strstr(u, "User="));
	free(u);
}

/* The accounts: made once with their audit lines, then kept; an admin
 * who is postmaster@ gets no alias. */
static void
test_accounts(void **state)
{
	char dir[] = "/tmp/test_quickstart.XXXXXX", *err = NULL, *cmd, *yaml;
	char *path, *log;
	struct quickstart_accounts a;
	struct config *c = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	yaml = xasprintf("hostname: mail.example.com\ndata_dir: %s\n", dir);
	if (config_load_buffer("q.yaml", yaml, strlen(yaml), &c, &err) < 0)
		fail_msg("%s", err);
	path = xasprintf("%s/db", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/log", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);

	assert_int_equal(quickstart_accounts(c, "admin@example.com", 0, &a,
					     &err), 0);
	assert_int_equal(a.domain, QS_ADDED);
	assert_int_equal(a.admin, QS_ADDED);
	assert_int_equal(strlen(a.password), 24);
	assert_int_equal(a.pm, QS_PM_ADDED);
	assert_string_equal(a.postmaster, "postmaster@example.com");
	quickstart_accounts_clear(&a);
	path = xasprintf("%s/log/audit.log", dir);
	log = slurp(path);
	assert_non_null(strstr(log, "\"action\":\"domain-add\",\"object\":"
				    "\"example.com\",\"result\":\"ok\""));
	assert_non_null(strstr(log, "\"action\":\"user-add\",\"object\":"
				    "\"admin@example.com\""));
	assert_non_null(strstr(log, "\"action\":\"alias-add\",\"object\":"
				    "\"postmaster@example.com "
				    "admin@example.com\""));
	free(log);

	/* a second time: everything kept, no line added */
	log = slurp(path);
	assert_int_equal(quickstart_accounts(c, "admin@example.com", 0, &a,
					     &err), 0);
	assert_int_equal(a.domain, QS_KEPT);
	assert_int_equal(a.admin, QS_KEPT);
	assert_null(a.password);
	assert_int_equal(a.pm, QS_PM_ALIAS);
	quickstart_accounts_clear(&a);
	/* postmaster@ as the admin: nothing to alias */
	assert_int_equal(quickstart_accounts(c, "postmaster@example.org", 0,
					     &a, &err), 0);
	assert_int_equal(a.domain, QS_ADDED);
	assert_int_equal(a.admin, QS_ADDED);
	assert_int_equal(a.pm, QS_PM_ADMIN);
	quickstart_accounts_clear(&a);
	{
		char *now = slurp(path);
		/* only the domain's and the user's lines were added */
		assert_true(strncmp(now, log, strlen(log)) == 0);
		assert_non_null(strstr(now + strlen(log),
				       "\"object\":\"postmaster@example.org\""));
		assert_null(strstr(now + strlen(log), "alias-add"));
		free(now);
	}
	/* an address that is an alias cannot become the admin: the
	 * failed addition is recorded as such */
	assert_int_equal(quickstart_accounts(c, "postmaster@example.com", 0,
					     &a, &err), -1);
	assert_non_null(err);
	xfree(&err);
	assert_int_equal(a.admin, QS_NOT_REACHED);
	quickstart_accounts_clear(&a);
	{
		char *now = slurp(path);
		assert_non_null(strstr(now, "\"action\":\"user-add\",\"object\":"
					    "\"postmaster@example.com\",\"result\":"
					    "\"failed\""));
		free(now);
	}
	free(log);
	free(path);
	config_free(&c);
	free(yaml);
	cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_write_new),
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_unit),
		cmocka_unit_test(test_accounts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
