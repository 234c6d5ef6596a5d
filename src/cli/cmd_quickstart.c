/*
 * godwit quickstart HOSTNAME ADMIN_ADDRESS [--config-dir DIR]
 * [--data-dir DIR]: a production set-up in one command (ops/quickstart.h
 * writes the files). Each step makes what is missing and says what it
 * kept: a second run changes nothing.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/xalloc.h"
#include "msgauth/dkim.h"
#include "ops/dns_records.h"
#include "ops/firewall.h"
#include "ops/quickstart.h"

#define DAEMON_USER "godwit"

static const char usage_quickstart_text[] =
	"usage: godwit quickstart HOSTNAME ADMIN_ADDRESS [--config-dir DIR] "
	"[--data-dir DIR]\n"
	"  HOSTNAME       this server's name (the MX and PTR records point "
	"to it)\n"
	"  ADMIN_ADDRESS  the first account; its domain is the first "
	"domain\n"
	"  --config-dir   default " QUICKSTART_CONFIG_DIR "\n"
	"  --data-dir     default " QUICKSTART_DATA_DIR "\n";

struct qs {
	char *hostname, *admin, *domain;
	char *config_dir, *data_dir, *config_path;
	const char *cflag;	/* "" or " -c PATH" for the commands shown */
	char *cflag_buf;
	struct config *config;
};

static void
row(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
row(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("  %-11s", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* An absolute directory without trailing slashes, or NULL. */
static char *
parse_dir(const char *opt, const char *arg)
{
	char *d;
	size_t n;

	if (arg[0] != '/') {
		cli_fail("%s %s: must be an absolute path", opt, arg);
		return NULL;
	}
	d = xstrdup(arg);
	while ((n = strlen(d)) > 1 && d[n - 1] == '/')
		d[n - 1] = '\0';
	return d;
}

static int
parse_args(struct qs *q, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		char **dst = strcmp(argv[i], "--config-dir") == 0 ? &q->config_dir
			     : strcmp(argv[i], "--data-dir") == 0 ? &q->data_dir
								   : NULL;
		if (dst != NULL) {
			if (i + 1 >= argc || *dst != NULL)
				return cli_usage(usage_quickstart_text);
			if ((*dst = parse_dir(argv[i], argv[i + 1])) == NULL)
				return 1;
			i++;
		} else if (argv[i][0] == '-' || npos == 2)
			return cli_usage(usage_quickstart_text);
		else
			pos[npos++] = argv[i];
	}
	if (npos != 2)
		return cli_usage(usage_quickstart_text);
	if ((q->hostname = cli_parse_domain(pos[0])) == NULL)
		return 1;
	if (strchr(q->hostname, '.') == NULL)
		return cli_fail("%s: the host name must be fully qualified "
				"(mail.example.com)", pos[0]);
	if ((q->admin = cli_parse_address(pos[1], false, true, true)) == NULL)
		return 1;
	q->domain = xstrdup(strrchr(q->admin, '@') + 1);
	if (q->config_dir == NULL)
		q->config_dir = xstrdup(QUICKSTART_CONFIG_DIR);
	if (q->data_dir == NULL)
		q->data_dir = xstrdup(QUICKSTART_DATA_DIR);
	q->config_path = xasprintf("%s/godwit.yaml", q->config_dir);
	q->cflag_buf = xasprintf(" -c %s", q->config_path);
	q->cflag = strcmp(q->config_dir, QUICKSTART_CONFIG_DIR) == 0
			   ? "" : q->cflag_buf;
	return 0;
}

/* The certificate, then the configuration that names it; then loads it. */
static int
write_config(struct qs *q)
{
	char *cert = xasprintf("%s/tls/%s.crt", q->config_dir, q->hostname);
	char *key = xasprintf("%s/tls/%s.key", q->config_dir, q->hostname);
	struct quickstart_params p = {
		.hostname = q->hostname, .domain = q->domain, .admin = q->admin,
		.config_path = q->config_path, .data_dir = q->data_dir,
		.cert = cert, .key = key, .user = DAEMON_USER,
		.trust_anchor = access(QUICKSTART_TRUST_ANCHOR, R_OK) == 0
					? QUICKSTART_TRUST_ANCHOR : NULL,
	};
	char *text = NULL, *err = NULL;
	int r = 0, w;

	if (access(q->config_path, F_OK) == 0)
		row("config", "%s (kept: it exists)", q->config_path);
	else if ((w = quickstart_self_signed(q->hostname, cert, key, &err)) < 0)
		r = cli_fail_free(&err);
	else {
		row("TLS", "%s (%s)", cert,
		    w == 1 ? "self-signed, made now; the configuration says "
			     "how to switch to Let's Encrypt"
			   : "kept: it exists");
		text = quickstart_config_text(&p);
		if ((w = quickstart_write_new(q->config_path, text, 0640,
					      &err)) < 0)
			r = cli_fail_free(&err);
		else
			row("config", "%s (%s)", q->config_path,
			    w == 1 ? "written" : "kept: it exists");
	}
	free(text);
	free(cert);
	free(key);
	if (r == 0 && config_load(q->config_path, &q->config, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		r = 1;
	}
	return r;
}

/* Both DKIM keys of the domain, unless it has a key already. */
static int
dkim_keys(struct qs *q)
{
	char *dir = xasprintf("%s/dkim", q->config->data_dir), *err = NULL;
	struct dkim_keyring *kr = NULL;
	const struct dkim_key *const *keys;
	size_t n, have = 0;
	int r = 0;

	if (dkim_keyring_load(dir, &kr, &err) < 0) {
		free(dir);
		return cli_fail_free(&err);
	}
	n = dkim_keyring_all(kr, &keys);
	for (size_t i = 0; i < n; i++)
		have += strcmp(keys[i]->domain, q->domain) == 0;
	dkim_keyring_free(&kr);
	if (have > 0)
		row("DKIM", "%zu key(s) of %s (kept)", have, q->domain);
	else {
		static const char *const sfx[] = {"rsa", "ed25519"};
		char sel[64], month[16];
		time_t now = time(NULL);
		struct dkim_key *k;
		strftime(month, sizeof(month), "g%Y%m", gmtime(&now));
		for (size_t i = 0; r == 0 && i < 2; i++) {
			snprintf(sel, sizeof(sel), "%s-%s", month, sfx[i]);
			if (dkim_key_create(dir, q->domain, sel,
					    i == 0 ? DKIM_RSA_SHA256
						   : DKIM_ED25519_SHA256,
					    &k, &err) < 0)
				r = cli_fail_free(&err);
			else {
				row("DKIM", "%s (made)", k->path);
				dkim_key_free(&k);
			}
		}
	}
	free(dir);
	return r;
}

/* The rows of what quickstart_accounts found or did. */
static void
accounts_rows(const struct qs *q, const struct quickstart_accounts *a)
{
	if (a->domain != QS_NOT_REACHED)
		row("domain", "%s (%s)", q->domain,
		    a->domain == QS_ADDED ? "added" : "kept");
	if (a->admin == QS_KEPT)
		row("admin", "%s (kept, password unchanged: godwit%s user "
			     "passwd %s sets a new one)",
		    q->admin, q->cflag, q->admin);
	else if (a->admin == QS_ADDED) {
		row("admin", "%s (added)", q->admin);
		row("password", "%s", a->password);
		row("", "(shown this once: only its hash is stored; "
			"godwit%s user passwd %s changes it)",
		    q->cflag, q->admin);
	}
	if (a->pm == QS_PM_USER || a->pm == QS_PM_ALIAS)
		row("postmaster", "%s (kept: it is already a%s)",
		    a->postmaster, a->pm == QS_PM_USER ? " user" : "n alias");
	else if (a->pm == QS_PM_ADDED)
		row("postmaster", "%s -> %s (alias added)", a->postmaster,
		    q->admin);
}

/* The domain, the admin with a new password, printed once, and
 * postmaster@ (ops/quickstart.h). */
static int
accounts(struct qs *q)
{
	struct quickstart_accounts a;
	char *err = NULL;
	int r;

	r = quickstart_accounts(q->config, q->admin, getuid(), &a, &err);
	accounts_rows(q, &a);
	quickstart_accounts_clear(&a);
	return r < 0 ? cli_fail_free(&err) : 0;
}

/*
 * The unit: installed when the configuration is the system's one and
 * systemd's directory is there, else printed to be saved by hand.
 */
static int
systemd_unit(struct qs *q, bool *printed_r)
{
	char exe[PATH_MAX], *unit, *path, *err = NULL;
	struct stat st;
	int r = 0, w;

	*printed_r = false;
	if (realpath("/proc/self/exe", exe) == NULL)
		snprintf(exe, sizeof(exe), "/usr/local/sbin/godwit");
	unit = quickstart_unit_text(exe, q->config_path, q->config->data_dir);
	path = xasprintf("%s/%s", QUICKSTART_UNIT_DIR, QUICKSTART_UNIT_NAME);
	if (strcmp(q->config_dir, QUICKSTART_CONFIG_DIR) == 0 &&
	    stat(QUICKSTART_UNIT_DIR, &st) == 0 && S_ISDIR(st.st_mode)) {
		if ((w = quickstart_write_new(path, unit, 0644, &err)) < 0)
			r = cli_fail_free(&err);
		else
			row("systemd", "%s (%s)", path,
			    w == 1 ? "installed" : "kept: it exists");
	} else {
		row("systemd", "the unit is printed below (not installed: "
			       "not the system's configuration directory)");
		*printed_r = true;
	}
	if (*printed_r) {
		printf("\n--- save as %s ---\n%s--- end ---\n", path, unit);
	}
	free(path);
	free(unit);
	return r;
}

static int
print_dns(struct qs *q)
{
	struct dns_records *r;
	char *err = NULL, *zone;

	if ((r = dns_records_for(q->config, q->domain, &err)) == NULL)
		return cli_fail_free(&err);
	zone = dns_records_zone(r);
	printf("\n1. Publish these records in the DNS zone of %s "
	       "(godwit%s dns prints them again):\n\n%s",
	       q->domain, q->cflag, zone);
	free(zone);
	dns_records_free(&r);
	return 0;
}

static void
print_next(struct qs *q, bool unit_printed)
{
	struct fw_options fw = {.format = FW_NFTABLES};

	printf("\n2. Open the firewall for the listeners (IPv4 and IPv6). "
	       "The nftables rules\n   (Debian's firewall) are below; "
	       "load them with\n"
	       "     godwit%s firewall > %s/firewall.nft && "
	       "nft -f %s/firewall.nft\n"
	       "   and include that file from /etc/nftables.conf to keep "
	       "them at boot\n   (godwit firewall --format iptables, ufw or "
	       "firewalld prints the others):\n\n",
	       q->cflag, q->config_dir, q->config_dir);
	firewall_write(q->config, &fw, stdout);
	printf("\n3. Start godwit:\n");
	if (unit_printed)
		printf("     save the unit above as %s/%s, then\n",
		       QUICKSTART_UNIT_DIR, QUICKSTART_UNIT_NAME);
	printf("     systemctl daemon-reload && systemctl enable --now "
	       "godwit\n");
	printf("\n4. Check everything from outside in: godwit%s doctor\n",
	       q->cflag);
}

static void
qs_clear(struct qs *q)
{
	free(q->hostname);
	free(q->admin);
	free(q->domain);
	free(q->config_dir);
	free(q->data_dir);
	free(q->config_path);
	free(q->cflag_buf);
	config_free(&q->config);
}

/* The daemon user must exist before anything is written. */
static int
have_daemon_user(void)
{
	if (getpwnam(DAEMON_USER) != NULL)
		return 0;
	return cli_fail("user %s does not exist: create it first with\n"
			"  useradd --system --no-create-home --home-dir %s "
			"--shell /usr/sbin/nologin %s",
			DAEMON_USER, QUICKSTART_DATA_DIR, DAEMON_USER);
}

int
cmd_quickstart(int argc, char **argv)
{
	struct qs q = {0};
	bool unit_printed = false;
	int r;

	if ((r = parse_args(&q, argc, argv)) != 0 ||
	    (r = have_daemon_user()) != 0) {
		qs_clear(&q);
		return r;
	}
	printf("godwit quickstart: %s, first account %s\n\n", q.hostname,
	       q.admin);
	if ((r = write_config(&q)) == 0 && strcmp(q.config->data_dir,
						  q.data_dir) != 0)
		fprintf(stderr, "godwit: warning: %s keeps data_dir %s (not "
				"%s)\n", q.config_path, q.config->data_dir,
			q.data_dir);
	if (r == 0 && strcmp(q.config->hostname, q.hostname) != 0)
		fprintf(stderr, "godwit: warning: %s keeps hostname %s (not "
				"%s)\n", q.config_path, q.config->hostname,
			q.hostname);
	if (r == 0)
		row("data", "%s", q.config->data_dir);
	if (r == 0 && (r = cli_prepare_layout(q.config)) == 0 &&
	    (r = dkim_keys(&q)) == 0 && (r = accounts(&q)) == 0 &&
	    (r = systemd_unit(&q, &unit_printed)) == 0) {
		fflush(stdout);
		r = cmd_config_check(q.config, q.config_path);
	}
	if (r == 0 && (r = print_dns(&q)) == 0)
		print_next(&q, unit_printed);
	qs_clear(&q);
	return r;
}
