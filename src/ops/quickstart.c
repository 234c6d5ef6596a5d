/*
 * The files `godwit quickstart` writes (ops/quickstart.h): the
 * configuration, the systemd unit, a self-signed certificate, and the
 * admin's generated password; and its accounts: the domain, the admin
 * and the postmaster alias, each addition with its audit line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "daemon/config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "ops/quickstart.h"
#include "ops/secrets.h"
#include "store/audit.h"
#include "store/userdb.h"

#define CERT_DAYS 825

/* ---- the configuration ------------------------------------------------ */

static const char config_head[] =
	"# godwit configuration for %s, written by `godwit quickstart` on %s.\n"
	"# Every key is described in docs/configuration.md. After a change:\n"
	"#   godwit -c %s config check && systemctl reload godwit\n"
	"hostname: %s\n"
	"data_dir: %s\n"
	"# the workers and the queue runner run as this user; only the parent\n"
	"# stays root (to bind the ports and read the TLS and DKIM keys)\n"
	"user: %s\n"
	"# mail to postmaster@%s: the alias quickstart made to %s\n"
	"postmaster: postmaster@%s\n"
	"log:\n"
	"  format: kv\n"
	"  level: info\n";

static const char config_tls[] =
	"# TLS: a self-signed certificate made by quickstart, so that STARTTLS,\n"
	"# submission, POP3 and IMAP work at once. Mail servers accept it on\n"
	"# port 25; mail clients warn about it. To switch to Let's Encrypt:\n"
	"#   certbot certonly --standalone -d %s   (port 80 open for the check)\n"
	"# then replace the two paths below by\n"
	"#   cert: /etc/letsencrypt/live/%s/fullchain.pem\n"
	"#   key: /etc/letsencrypt/live/%s/privkey.pem\n"
	"# and run `systemctl reload godwit` (also as certbot's --deploy-hook,\n"
	"# so that each renewal is picked up).\n"
	"tls:\n"
	"  certificates:\n"
	"    - cert: %s\n"
	"      key: %s\n";

static const char config_listeners[] =
	"# every protocol on its standard port, on all IPv4 and IPv6 addresses\n"
	"listeners:\n"
	"  - name: mx\n"
	"    protocol: smtp\n"
	"    listen: [\"0.0.0.0:25\", \"[::]:25\"]\n"
	"  - name: submission\n"
	"    protocol: submission\n"
	"    listen: [\"0.0.0.0:587\", \"[::]:587\"]\n"
	"  - name: submissions\n"
	"    protocol: submissions\n"
	"    listen: [\"0.0.0.0:465\", \"[::]:465\"]\n"
	"  - name: pop3\n"
	"    protocol: pop3\n"
	"    listen: [\"0.0.0.0:110\", \"[::]:110\"]\n"
	"  - name: pop3s\n"
	"    protocol: pop3s\n"
	"    listen: [\"0.0.0.0:995\", \"[::]:995\"]\n"
	"  - name: imap\n"
	"    protocol: imap\n"
	"    listen: [\"0.0.0.0:143\", \"[::]:143\"]\n"
	"  - name: imaps\n"
	"    protocol: imaps\n"
	"    listen: [\"0.0.0.0:993\", \"[::]:993\"]\n"
	"  # Prometheus metrics (GET /metrics), on loopback only; another\n"
	"  # address needs an allow: list of the networks that may scrape\n"
	"  - name: metrics\n"
	"    protocol: metrics\n"
	"    listen: [\"127.0.0.1:9925\", \"[::1]:9925\"]\n";

/* The blocklists refuse queries from shared resolvers: godwit resolves
 * by itself (docs/filtering.md, "Use your own resolver"). */
static const char config_dns[] =
	"# godwit resolves from the root servers itself: the DNS blocklists\n"
	"# refuse queries that come through shared resolvers (docs/filtering.md)\n"
	"dns:\n"
	"  resolver: recursive\n";

static const char config_filter[] =
	"# filters on port 25 (docs/filtering.md): Spamhaus SBL/XBL refuses\n"
	"# alone, its PBL or SpamCop only together; dnswl.org's trusted senders\n"
	"# are never refused; greylisting spares the big providers; dangerous\n"
	"# attachments are refused (the default). For viruses add clamd\n"
	"# (apt install clamav-daemon, then filter.clamd.enabled: true).\n"
	"filter:\n"
	"  dnsbl:\n"
	"    - zen.spamhaus.org=127.0.0.[2..9]*3\n"
	"    - zen.spamhaus.org=127.0.0.[10;11]*1\n"
	"    - bl.spamcop.net*2\n"
	"  dnsbl_threshold: 3\n"
	"  dnswl:\n"
	"    - list.dnswl.org=127.0.[0..255].[2..3]\n"
	"  greylist:\n"
	"    enabled: true\n"
	"    delay: 5m\n"
	"    skip_domains: [gmail.com, google.com, outlook.com, hotmail.com,\n"
	"                   yahoo.com, icloud.com, apple.com, amazonses.com]\n"
	"  attachments:\n"
	"    enabled: true\n"
	"    encrypted_archives: refuse\n";

char *
quickstart_config_text(const struct quickstart_params *p)
{
	char *out = NULL, date[32];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	time_t now = time(NULL);

	if (f == NULL)
		abort();
	strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
	fprintf(f, config_head, p->hostname, date, p->config_path, p->hostname,
		p->data_dir, p->user, p->domain, p->admin, p->domain);
	fprintf(f, config_tls, p->hostname, p->hostname, p->hostname, p->cert,
		p->key);
	fputs(config_listeners, f);
	fputs(config_dns, f);
	if (p->trust_anchor != NULL)
		fprintf(f, "  # answers must validate (DNSSEC)\n"
			   "  trust_anchor: %s\n", p->trust_anchor);
	fputs(config_filter, f);
	if (fclose(f) != 0)
		abort();
	return out;
}

/* ---- the systemd unit ------------------------------------------------- */

/*
 * The parent needs, as root: to bind ports below 1024
 * (NET_BIND_SERVICE); to switch its children to the daemon user
 * (SETUID, SETGID: setgroups, setgid, setuid); to make the data
 * directory's layout, giving each entry its owner and mode (CHOWN,
 * FOWNER) and entering and cleaning the daemon user's directories
 * (queue/tmp) (DAC_OVERRIDE); to signal its children, which run as
 * another user (KILL). NoNewPrivileges only stops execve() from
 * gaining privileges; setuid() down to the daemon user is not one.
 */
static const char unit_text[] =
	"# godwit mail server: written by `godwit quickstart`.\n"
	"# The parent runs as root only to bind the ports, read the TLS and\n"
	"# DKIM keys and prepare %s; the workers and the queue\n"
	"# runner switch to the daemon user. The only directory it may write\n"
	"# is %s (a log.file elsewhere must be added to\n"
	"# ReadWritePaths).\n"
	"[Unit]\n"
	"Description=godwit mail server\n"
	"After=network-online.target\n"
	"Wants=network-online.target\n"
	"\n"
	"[Service]\n"
	"Type=simple\n"
	"ExecStartPre=%s -c %s config check\n"
	"ExecStart=%s -c %s serve\n"
	"ExecReload=/bin/kill -HUP $MAINPID\n"
	"KillMode=mixed\n"
	"TimeoutStopSec=60\n"
	"Restart=on-failure\n"
	"RestartSec=2s\n"
	"LimitNOFILE=65536\n"
	"UMask=0027\n"
	"NoNewPrivileges=yes\n"
	"CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID "
	"CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_KILL\n"
	"ProtectSystem=strict\n"
	"ReadWritePaths=%s\n"
	"ProtectHome=yes\n"
	"PrivateTmp=yes\n"
	"PrivateDevices=yes\n"
	"ProtectKernelTunables=yes\n"
	"ProtectKernelModules=yes\n"
	"ProtectKernelLogs=yes\n"
	"ProtectControlGroups=yes\n"
	"ProtectClock=yes\n"
	"ProtectHostname=yes\n"
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
	"RestrictNamespaces=yes\n"
	"RestrictRealtime=yes\n"
	"RestrictSUIDSGID=yes\n"
	"LockPersonality=yes\n"
	"MemoryDenyWriteExecute=yes\n"
	"SystemCallArchitectures=native\n"
	"SystemCallFilter=@system-service\n"
	"SystemCallErrorNumber=EPERM\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

char *
quickstart_unit_text(const char *binary, const char *config,
		     const char *data_dir)
{
	return xasprintf(unit_text, data_dir, data_dir, binary, config, binary,
			 config, data_dir);
}

/* ---- files ------------------------------------------------------------ */

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* A new file at path (O_EXCL); -2 if it exists, -1 with *error_r. */
static int
create_new(const char *path, mode_t mode, char **error_r)
{
	char *dir = dir_of(path);
	int fd;

	if (mkdir_p(dir, 0755) < 0) {
		*error_r = xasprintf("%s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  mode);
	if (fd < 0 && errno == EEXIST)
		return -2;
	if (fd < 0 || fchmod(fd, mode) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* fsync and close fd, fsync its directory; on failure remove path. */
static int
finish_new(int fd, const char *path, char **error_r)
{
	char *dir = dir_of(path);
	int r = 0;

	if (fsync(fd) < 0 || close(fd) < 0 || fsync_dir(dir) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		unlink(path);
		r = -1;
	}
	free(dir);
	return r;
}

int
quickstart_write_new(const char *path, const char *text, mode_t mode,
		     char **error_r)
{
	int fd = create_new(path, mode, error_r);

	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	if (write_full(fd, text, strlen(text)) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return finish_new(fd, path, error_r) < 0 ? -1 : 1;
}

/* ---- the certificate -------------------------------------------------- */

static int
ssl_error(const char *what, char **error_r)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	*error_r = xasprintf("%s: %s", what, buf);
	ERR_clear_error();
	return -1;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static X509 *
make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x = X509_new();
	X509_NAME *name;
	BIGNUM *serial = BN_new();
	char *san = xasprintf("DNS:%s", hostname);
	bool ok;

	ok = x != NULL && serial != NULL && X509_set_version(x, 2) == 1 &&
	     BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
	     BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != NULL &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	     X509_gmtime_adj(X509_getm_notAfter(x),
			     (long)CERT_DAYS * 86400) != NULL &&
	     X509_set_pubkey(x, pkey) == 1 &&
	     (name = X509_get_subject_name(x)) != NULL &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)hostname, -1,
					-1, 0) == 1 &&
	     X509_set_issuer_name(x, name) == 1 &&
	     add_ext(x, NID_subject_alt_name, san) == 0 &&
	     add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
	     add_ext(x, NID_ext_key_usage, "serverAuth") == 0 &&
	     X509_sign(x, pkey, EVP_sha256()) > 0;
	BN_free(serial);
	free(san);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Writes the PEM of pkey (key) or x (cert) to the new file at path. */
static int
write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x,
	  char **error_r)
{
	int fd = create_new(path, mode, error_r);
	BIO *bio;
	int ok;

	if (fd == -2) {
		*error_r = xasprintf("%s: appeared while quickstart ran", path);
		return -1;
	}
	if (fd < 0)
		return -1;
	if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
		close(fd);
		unlink(path);
		return ssl_error(path, error_r);
	}
	ok = pkey != NULL ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
						     NULL, NULL)
			  : PEM_write_bio_X509(bio, x);
	if (BIO_flush(bio) != 1)
		ok = 0;
	BIO_free(bio);
	if (ok != 1) {
		close(fd);
		unlink(path);
		return ssl_error(path, error_r);
	}
	return finish_new(fd, path, error_r);
}

int
quickstart_self_signed(const char *hostname, const char *cert,
		       const char *key, char **error_r)
{
	bool have_cert = access(cert, F_OK) == 0;
	bool have_key = access(key, F_OK) == 0;
	EVP_PKEY *pkey;
	X509 *x;
	int r = -1;

	if (have_cert && have_key)
		return 0;
	if (have_cert != have_key) {
		*error_r = xasprintf("%s exists but %s does not: put the "
				     "missing one back, or remove the other "
				     "to have a new pair made",
				     have_cert ? cert : key,
				     have_cert ? key : cert);
		return -1;
	}
	if ((pkey = EVP_RSA_gen(2048)) == NULL)
		return ssl_error("making an RSA key", error_r);
	if ((x = make_cert(pkey, hostname)) == NULL)
		r = ssl_error("making the certificate", error_r);
	else if (write_pem(key, 0600, pkey, NULL, error_r) == 0) {
		if (write_pem(cert, 0644, NULL, x, error_r) == 0)
			r = 1;
		else
			unlink(key);
	}
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}

/* ---- the password ----------------------------------------------------- */

char *
quickstart_password(void)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char buf[64];
	char *pw = xmalloc(25);
	size_t n = 0;

	while (n < 24) {
		if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
			abort();
		/* 248 = 4 * 62: no bias */
		for (size_t i = 0; i < sizeof(buf) && n < 24; i++)
			if (buf[i] < 248)
				pw[n++] = alphabet[buf[i] % 62];
	}
	pw[n] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return pw;
}

/* ---- the accounts ----------------------------------------------------- */

struct quickstart_ctx {
	const struct config *config;
	const char *admin, *domain;
	uid_t uid;
	struct quickstart_accounts *res;
};

/*
 * The audit line of one addition, as the command doing it alone would
 * write it (user-add ADDRESS, ...); r: the addition's result, returned
 * unless the line cannot be written (-1, *error_r then says so, unless
 * the addition's own error is there already).
 */
static int
audited(const struct config *config, uid_t uid, const char *action,
	const char *object, int r, char **error_r)
{
	char *err = NULL;

	if (!config->audit.enabled)
		return r;
	if (audit_admin_uid(config->data_dir, uid, action, object, r == 0,
			    &err) < 0) {
		if (*error_r == NULL)
			*error_r = xasprintf("audit log: %s (the %s was done)",
					     err, action);
		free(err);
		return -1;
	}
	return r;
}

static int
qs_domain(struct quickstart_ctx *q, struct userdb *db, char **error_r)
{
	int r = db->ops->domain_exists(db, q->domain);

	if (r < 0) {
		*error_r = xasprintf("%s: database lookup failed", q->domain);
		return -1;
	}
	if (r > 0) {
		q->res->domain = QS_KEPT;
		return 0;
	}
	if (db->ops->domain_add(db, q->domain, error_r) < 0)
		return audited(q->config, q->uid, "domain-add", q->domain, -1,
			       error_r);
	q->res->domain = QS_ADDED;
	return audited(q->config, q->uid, "domain-add", q->domain, 0,
		       error_r);
}

static int
qs_admin(struct quickstart_ctx *q, struct userdb *db, char **error_r)
{
	struct secrets sc;
	const char *why = NULL;
	char *pw;
	int r = db->ops->user_exists(db, q->admin);

	if (r < 0) {
		*error_r = xasprintf("%s: database lookup failed", q->admin);
		return -1;
	}
	if (r > 0) {
		q->res->admin = QS_KEPT;
		return 0;
	}
	pw = quickstart_password();
	if (secrets_make(q->config, q->admin, pw, "", &sc, &why) < 0) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
		*error_r = xasprintf("%s: %s", q->admin, why);
		return -1;
	}
	r = store_new_user(db, q->admin, &sc, error_r) < 0 ? -1 : 0;
	secrets_clear(&sc);
	if (r == 0) {
		/* kept even when its audit line fails: it must be shown */
		q->res->admin = QS_ADDED;
		q->res->password = pw;
	} else {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	return audited(q->config, q->uid, "user-add", q->admin, r, error_r);
}

static int
qs_postmaster(struct quickstart_ctx *q, struct userdb *db, char **error_r)
{
	struct quickstart_accounts *res = q->res;
	struct userdb_alias_list l = {0};
	char *obj;
	bool aliased;
	int r, a, u;

	if (strcmp(res->postmaster, q->admin) == 0) {
		res->pm = QS_PM_ADMIN;
		return 0;
	}
	a = db->ops->alias_lookup(db, res->postmaster, &l);
	u = db->ops->user_exists(db, res->postmaster);
	aliased = l.n > 0;
	userdb_alias_list_clear(&l);
	if (a < 0 || u < 0) {
		*error_r = xasprintf("%s: database lookup failed",
				     res->postmaster);
		return -1;
	}
	if (u > 0 || aliased) {
		res->pm = u > 0 ? QS_PM_USER : QS_PM_ALIAS;
		return 0;
	}
	r = db->ops->alias_add(db, res->postmaster, q->admin, error_r) < 0
		    ? -1 : 0;
	if (r == 0)
		res->pm = QS_PM_ADDED;
	obj = xasprintf("%s %s", res->postmaster, q->admin);
	r = audited(q->config, q->uid, "alias-add", obj, r, error_r);
	free(obj);
	return r;
}

int
quickstart_accounts(const struct config *config, const char *admin,
		    uid_t uid, struct quickstart_accounts *res,
		    char **error_r)
{
	struct quickstart_ctx q = {
		.config = config, .admin = admin, .uid = uid, .res = res,
		.domain = strrchr(admin, '@') + 1,
	};
	struct userdb *db;
	int r;

	memset(res, 0, sizeof(*res));
	*error_r = NULL;
	res->postmaster = xasprintf("postmaster@%s", q.domain);
	if (userdb_open(&config->userdb, false, &db, error_r) < 0)
		return -1;
	r = qs_domain(&q, db, error_r);
	if (r == 0)
		r = qs_admin(&q, db, error_r);
	if (r == 0)
		r = qs_postmaster(&q, db, error_r);
	userdb_close(&db);
	return r;
}

void
quickstart_accounts_clear(struct quickstart_accounts *res)
{
	if (res->password != NULL)
		explicit_bzero(res->password, strlen(res->password));
	free(res->password);
	free(res->postmaster);
	memset(res, 0, sizeof(*res));
}
