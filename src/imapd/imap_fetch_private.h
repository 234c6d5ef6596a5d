/*
 * What imap_fetch.c (FETCH, and the command table) and imap_search_cmd.c
 * (SEARCH) share.
 */
#ifndef GODWIT_IMAP_FETCH_PRIVATE_H
#define GODWIT_IMAP_FETCH_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "imapd/imap_private.h"

imap_cmd_fn imap_cmd_search;
/* struct imap_mime_src's read over a message file: arg points at the fd
 * (pread, EINTR retried) */
ssize_t imap_fd_read(void *arg, uint64_t off, void *buf, size_t n);

#endif
