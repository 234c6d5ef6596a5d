/*
 * What imap_fetch.c (FETCH, and the command table) and imap_search_cmd.c
 * (SEARCH) share.
 */
#ifndef GODWIT_IMAP_FETCH_PRIVATE_H
#define GODWIT_IMAP_FETCH_PRIVATE_H

#include "imapd/imap_private.h"

imap_cmd_fn imap_cmd_search;

#endif
