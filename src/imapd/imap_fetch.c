/*
 * FETCH and SEARCH (imap_private.h): FETCH's file. This is the
 * placeholder the core links with until FETCH's imap_fetch.c replaces
 * it: an empty command table.
 */
#include "imapd/imap_private.h"

const struct imap_cmd_def imap_fetch_cmds[] = {
	{NULL, NULL, 0, false},
};
