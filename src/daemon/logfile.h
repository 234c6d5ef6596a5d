/*
 * The mail log's destination, kept by the parent alone (see logfile.c):
 * standard error (journald) or a file, rotated at local midnight to
 * FILE.YYYY-MM-DD and reopened on SIGUSR1; and the daily removal of
 * rotated log and audit files older than retention.logs.
 */
#ifndef GODWIT_LOGFILE_H
#define GODWIT_LOGFILE_H

struct config;
struct event_base;
struct logfile;

/* At start, as root: the children's pipe, and log.file opened. */
int logfile_open(const struct config *config, struct logfile **lf_r,
		 char **error_r);
/* In a child just forked: from now on its lines go into the pipe and it
 * holds no descriptor of the file; a SIGUSR1 it gets (`kill -USR1` on
 * whichever godwit pid a script found) is passed on to the parent. */
void logfile_child(struct logfile *lf);
/* The parent's loop: the children's lines, the midnight tick (rotation,
 * then retention.logs); both run once now. */
void logfile_attach(struct logfile *lf, struct event_base *base);
/* SIGUSR1: reopen log.file by its name (after an outside logrotate). */
void logfile_reopen(struct logfile *lf);
/* Reload: the new log: section. -1 (and *error_r) keeps the old file. */
int logfile_configure(struct logfile *lf, const struct config *config,
		      char **error_r);
/* At exit, after the children: their last lines, then free. */
void logfile_close(struct logfile **lf);

#endif
