/*
 * What `godwit quickstart` writes (cli/cmd_quickstart.c runs the steps):
 * the production configuration, a self-signed certificate to start with,
 * the hardened systemd unit, a generated password. Every file is made
 * new (O_EXCL): an existing one is kept, never overwritten.
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

#endif
