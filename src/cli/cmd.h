/*
 * The admin commands, one module each (cli/cmd_*.c); cli/main.c picks one
 * by argv[0]:
 *
 *	godwit config check
 *	godwit domain add|del|list [DOMAIN]
 *	godwit user add|del|list|passwd ADDRESS|[DOMAIN]
 *	godwit user import FILE|- [--create-domains] [--update]
 *	godwit alias add|del|list SOURCE [TARGET]
 *	godwit queue list [--json]|show|hold|release|delete|flush ...
 *	godwit route [-4|-6] [-n] DOMAIN
 *	godwit check --ip ADDR --helo NAME --mail-from ADDR [--json] < msg
 *	godwit dkim keygen|sign|list ...
 *	godwit dns [DOMAIN]
 *	godwit quickstart HOSTNAME ADMIN_ADDRESS [--config-dir DIR] [--data-dir DIR]
 *	godwit firewall [--format nftables|iptables|ufw|firewalld]
 *	godwit doctor [--timeout S] [--outbound-target ADDR:PORT] ...
 *	godwit backup FILE
 *	godwit restore FILE --data-dir DIR [-c CONFIG] [--user U] [--force]
 *	godwit mailbox import|export ADDRESS ...
 *	godwit db init|migrate|export [FILE]|import [FILE] [--replace]
 *
 * argv[0] is the command's name ("domain"); each returns the process exit
 * code (0 ok, 1 error with a readable message on stderr, 2 usage).
 */
#ifndef GODWIT_CMD_H
#define GODWIT_CMD_H

#include <stdbool.h>
#include <sys/types.h>

struct config;

/* path: the configuration file config was loaded from, for "PATH: ok" */
int cmd_config_check(const struct config *config, const char *path);
int cmd_domain(const struct config *config, int argc, char **argv);
int cmd_user(const struct config *config, int argc, char **argv);
/* "user import ...", argv as for cmd_user */
int cmd_user_import(const struct config *config, int argc, char **argv);
int cmd_alias(const struct config *config, int argc, char **argv);
/*
 * godwit db init (the schema in an empty database), migrate (what is
 * missing), export [FILE] (a dump, mail/userdump.h, to stdout without
 * FILE or with -), import [FILE] [--replace] (a dump, in one transaction).
 */
int cmd_db(const struct config *config, int argc, char **argv);
/*
 * godwit queue: list and show read the queue directories; hold, release,
 * delete and flush ask the running daemon over its control socket (hold,
 * release and delete move the files themselves when no daemon runs).
 */
int cmd_queue(const struct config *config, int argc, char **argv);
/*
 * `godwit route [-4|-6] [-n] DOMAIN`: looks the route up with the
 * configuration's dns: and outbound: sections (-4/-6 override
 * ip_version; -n: DOMAIN is a host, no MX lookup, as for a smarthost) and
 * prints to stdout
 *	b.test: MX
 *	  10 mx1.b.test 198.18.0.12 fd00::12
 * ("no MX, implicit MX ...", "host ...", "address literal" instead of MX;
 * " (DNSSEC secure)" appended when validated), or one line
 * "b.test: null MX (RFC 7505): domain accepts no mail",
 * "b.test: permanent failure: ...", "b.test: temporary failure: ...".
 * Exit code 0 found, 1 DNS_PERMFAIL/NULLMX, 2 TEMPFAIL or usage.
 */
int cmd_route(const struct config *config, int argc, char **argv);
/*
 * `godwit check --ip ADDR --helo NAME --mail-from ADDR [--json] < message`:
 * runs the checks the server runs on a message (SPF so far, msgauth/)
 * with the configuration's dns: section and prints the
 * Authentication-Results header it would add
 *	Authentication-Results: HOST; spf=pass smtp.mailfrom=a@b.test
 * (smtp.helo=NAME when the null sender makes HELO the identity), or with
 * --json one object {"spf": {"result", "identity", "domain", "sender",
 * "mechanism", "explanation", "reason"}}. The message on stdin is read
 * to its end. Exit code 0 when the checks ran, whatever their verdict;
 * 1 configuration or resolver errors; 2 usage.
 */
int cmd_check(const struct config *config, int argc, char **argv);
/*
 * `godwit dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]`
 * (without --algorithm: RSA-2048 and Ed25519, selectors S-rsa and
 * S-ed25519, S by default gYYYYMM), `godwit dkim sign [--domain D]`
 * (stdin to stdout, the DKIM-Signature fields on top), `godwit dkim
 * list`. Each key prints as "S._domainkey.D. IN TXT \"v=DKIM1; ...\"".
 */
int cmd_dkim(const struct config *config, int argc, char **argv);
/*
 * `godwit dns [DOMAIN]`: the records to publish for DOMAIN, or for every
 * local domain (a blank line between two), in zone-file syntax
 * (ops/dns_records.h). Exit code 0, 1 when the DKIM keys or the user
 * database cannot be read or there is no domain, 2 usage.
 */
int cmd_dns(const struct config *config, int argc, char **argv);
/*
 * `godwit quickstart HOSTNAME ADMIN_ADDRESS [--config-dir DIR]
 * [--data-dir DIR]` (no configuration loaded: it writes one): the
 * configuration, a self-signed certificate, the DKIM keys, the domain,
 * the admin with a generated password printed once, postmaster@ as its
 * alias, the systemd unit (installed for /etc/godwit, else printed),
 * then the DNS records and the next steps. What exists is kept and
 * named. Exit code 0, 1 error, 2 usage.
 */
int cmd_quickstart(int argc, char **argv);
/*
 * `godwit firewall [--format nftables|iptables|ufw|firewalld] [-4|-6]
 * [--rate N] [--burst N]`: the listeners' packet filter rules on stdout
 * (ops/firewall.h). Exit code 0, 1 when stdout fails, 2 usage.
 */
int cmd_firewall(const struct config *config, int argc, char **argv);
/*
 * `godwit doctor [--timeout S] [--outbound-target ADDR:PORT]
 * [--outbound-domain D] [--probe-domain D]`: the self-check
 * (ops/doctor.h), lines "OK|WARN|FAIL CHECK TEXT" on stdout. Exit code 0
 * without a FAIL, 1 with one, 2 usage.
 */
int cmd_doctor(const struct config *config, int argc, char **argv);

/*
 * `godwit backup FILE` (ops/backup.h): the archive, then one line
 * "backup FILE: N files (B bytes), D directories, K databases" and notes
 * (messages found again after a move, files gone, files the
 * configuration names outside its directory that are not included).
 */
int cmd_backup(const struct config *config, int argc, char **argv);
/*
 * `godwit restore FILE --data-dir DIR [-c CONFIG] [--user NAME]
 * [--force]`: needs no loaded configuration; the archived one is written
 * to config_path (the -c file, else $GODWIT_CONFIG, else the default),
 * refused if it exists, as a non-empty DIR is, unless --force.
 */
int cmd_restore(const char *config_path, int argc, char **argv);
/*
 * `godwit mailbox import ADDRESS --mbox FILE | --maildir DIR` and
 * `godwit mailbox export ADDRESS --mbox FILE` (ops/mailbox_io.h), for an
 * existing user; prints "imported N messages (B bytes) into MAILDIR" or
 * "exported N messages from MAILDIR to FILE".
 */
int cmd_mailbox(const struct config *config, int argc, char **argv);
/*
 * `godwit audit verify [--expect HASH]` (exit 1 naming the first broken
 * line as FILE:LINE, or when no line has HASH), `godwit audit head`
 * (prints the hash of the last line), `godwit audit rotate` (audit.log
 * to audit.log.YYYY-MM-DD now; as root).
 */
int cmd_audit(const struct config *config, int argc, char **argv);
/*
 * After a command ran with exit code r: when it is one that changes
 * something (domain, user, alias add/del..., queue hold/release/delete/
 * flush, dkim keygen, mailbox import) or reads users' mail (mailbox
 * export, backup) and did not fail on its usage,
 * its line in the audit log, naming uid (who ran it, taken before the
 * command, which may have switched to the daemon user) as the actor.
 * Returns r, or 1 when the line could not be written.
 */
int cmd_audit_record(const struct config *config, int argc, char **argv,
		     int r, uid_t uid);
/*
 * One admin line in data_dir's audit log (whose layout exists), actor
 * uid, result "ok" or "failed": for the commands that run outside
 * main.c's table (quickstart's additions, restore). 0, or 1 after
 * printing why it could not be written.
 */
int cmd_audit_admin(const char *data_dir, uid_t uid, const char *action,
		    const char *object, bool ok);

#endif
