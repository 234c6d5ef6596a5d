/*
 * What the admin commands (cli/cmd_*.c) share: how they report, and how
 * they check the domains and addresses they are given before these reach
 * the database (a user or alias with a malformed or mixed-case address
 * could never be found by the lookups the daemon makes).
 *
 * Every command writes what it did to stdout and why it failed to stderr
 * as "godwit: ...", and returns the process exit code: 0 ok, 1 error,
 * 2 usage.
 */
#ifndef GODWIT_CLI_H
#define GODWIT_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

struct config;
struct userdb;

/* Prints text (a usage message) to stderr; returns 2. */
int cli_usage(const char *text);
/* Prints "godwit: " fmt to stderr (stdout flushed first); returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_fail() with a backend's error, which it frees; returns 1. */
int cli_fail_free(char **error);

/* A DOMAIN argument, lower-cased, one trailing dot dropped; NULL after
 * printing why it is not one. */
char *cli_parse_domain(const char *arg);
/*
 * An ADDRESS argument, local@domain (or @domain when catchall). The
 * domain is lower-cased; so is the local part when lower_local, which is
 * how every address in one of our domains is stored; ours: the local part
 * becomes a directory name (no '/'). On error returns NULL with *why_r a
 * malloc'd message naming arg.
 */
char *cli_normalise_address(const char *arg, bool catchall, bool ours,
			    bool lower_local, char **why_r);
/* The same, printing the error. */
char *cli_parse_address(const char *arg, bool catchall, bool ours,
			bool lower_local);

/*
 * Before a command writes to the data directory: the whole layout, as
 * `godwit serve` makes it (store/datadir.h). 0, or 1 after printing why.
 */
int cli_prepare_layout(const struct config *config);

/*
 * The user database, read-only or (after making the data directory's
 * layout as `godwit serve` does) for writing; NULL after printing why.
 */
struct userdb *cli_open_db(const struct config *config, bool readonly);

/* One string per line to stdout; frees the list. */
void cli_print_list(char ***list, size_t n);
/* "user list [DOMAIN]" and "alias list [DOMAIN]". */
int cli_list_command(const struct config *config, int argc, char **argv,
		     const char *usage_text, bool aliases);

/*
 * s as a JSON string, quotes included: '"' and '\\' escaped, control
 * characters and octets that are not valid UTF-8 as \u00XX (so the
 * output is always valid JSON), valid UTF-8 as it is.
 */
void cli_json_str(FILE *f, const char *s);

/* `godwit user`'s usage, which `godwit user import` prints too. */
extern const char cli_usage_user[];

#endif
