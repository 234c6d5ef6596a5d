/*
 * Administration subcommands that work on the user database directly:
 *
 *	godwit domain add|del|list [DOMAIN]
 *	godwit user add|del|list|passwd ADDRESS|[DOMAIN]
 *	godwit user import FILE|- [--create-domains] [--update]
 *	godwit alias add|del|list SOURCE [TARGET]
 *
 * argv[0] is the subcommand name ("domain"); returns the process exit code
 * (0 ok, 1 error with a readable message on stderr, 2 usage).
 */
#ifndef GODWIT_ADMIN_H
#define GODWIT_ADMIN_H

struct config;

int admin_domain(const struct config *config, int argc, char **argv);
int admin_user(const struct config *config, int argc, char **argv);
int admin_alias(const struct config *config, int argc, char **argv);

#endif
