/*
 * What `godwit quickstart` writes (cli/cmd_quickstart.c runs the steps):
 * the production configuration, a self-signed certificate to start with,
 * the hardened systemd unit, a generated password, the first accounts.
 * Every file is made new (O_EXCL): an existing one is kept, never
 * overwritten; an existing account likewise.
 */
#ifndef GODWIT_QUICKSTART_H
#define GODWIT_QUICKSTART_H

#include <stdbool.h>
#include <sys/types.h>

#define QUICKSTART_CONFIG_DIR "/etc/godwit"
#define QUICKSTART_DATA_DIR "/var/lib/godwit"
#define QUICKSTART_UNIT_DIR "/etc/systemd/system"
#define QUICKSTART_UNIT_NAME "godwit.service"
/* Debian's dns-root-data: the DNSSEC trust anchor */
#define QUICKSTART_TRUST_ANCHOR "/usr/share/dns/root.key"

struct quickstart_params {
	const char *hostname;	/* lower case, no trailing dot */
	const char *domain;	/* the admin's domain */
	const char *admin;	/* the admin's address */
	const char *config_path;	/* the file being written */
	const char *data_dir;
	const char *cert;	/* the certificate and key files */
	const char *key;
	const char *user;	/* the daemon user: "godwit" */
	const char *trust_anchor; /* NULL: no DNSSEC validation */
};

/* The configuration file's text (caller frees). */
char *quickstart_config_text(const struct quickstart_params *p);

/*
 * The systemd unit: binary is the godwit executable, config its -c
 * file, data_dir the one directory it may write (caller frees).
 */
char *quickstart_unit_text(const char *binary, const char *config,
			   const char *data_dir);

/*
 * Writes text to path, a new file of the given mode (fsynced, with its
 * directory). 1 written, 0 path exists (left as it is), -1 with
 * *error_r (caller frees).
 */
int quickstart_write_new(const char *path, const char *text, mode_t mode,
			 char **error_r);

/*
 * A self-signed certificate for hostname (RSA-2048, SHA-256,
 * subjectAltName DNS:hostname, valid 825 days) and its key: key made
 * 0600, cert 0644, both new. 1 made, 0 both exist (kept), -1 with
 * *error_r (also when only one of the two exists).
 */
int quickstart_self_signed(const char *hostname, const char *cert,
			   const char *key, char **error_r);

/* A new random password: 24 characters of [A-Za-z0-9] (about 142
 * bits), from getrandom (caller frees). */
char *quickstart_password(void);

struct config;

enum quickstart_state { QS_NOT_REACHED, QS_KEPT, QS_ADDED };
enum quickstart_pm {
	QS_PM_NOT_REACHED,
	QS_PM_ADMIN,		/* the admin is postmaster@ itself */
	QS_PM_USER,		/* kept: it is a user */
	QS_PM_ALIAS,		/* kept: it is an alias */
	QS_PM_ADDED,		/* added as an alias of the admin */
};

/* What quickstart_accounts found or did, also when it failed midway. */
struct quickstart_accounts {
	enum quickstart_state domain, admin;
	char *password;		/* the admin's new password: QS_ADDED */
	char *postmaster;	/* postmaster@DOMAIN */
	enum quickstart_pm pm;
};

/*
 * The accounts of admin (a normalised address) in config's user
 * database, whose layout exists: its domain, the admin user with a new
 * password (quickstart_password) and postmaster@ the domain as an alias
 * of the admin, each made unless it exists. Every addition writes its
 * audit line (domain-add, user-add, alias-add; actor uid) when
 * audit.enabled. 0, or -1 with *error_r; *res is filled in either way
 * (quickstart_accounts_clear).
 */
int quickstart_accounts(const struct config *config, const char *admin,
			uid_t uid, struct quickstart_accounts *res,
			char **error_r);
void quickstart_accounts_clear(struct quickstart_accounts *res);

#endif
