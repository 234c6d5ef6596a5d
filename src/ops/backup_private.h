/*
 * What backup.c (the archive and its manifest) and backup_walk.c (what is
 * copied, in which order) share.
 */
#ifndef GODWIT_BACKUP_PRIVATE_H
#define GODWIT_BACKUP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct bk;
struct config;

int bk_fail(struct bk *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int bk_add_dir(struct bk *b, const char *apath, mode_t mode, time_t mtime);
int bk_add_mem(struct bk *b, const char *apath, const void *data, size_t len,
	       mode_t mode, time_t mtime);
int bk_add_fd(struct bk *b, const char *apath, int fd, const struct stat *sb);
int bk_add_sqlite(struct bk *b, const char *apath, const char *path,
		  const struct stat *sb);
int bk_add_outside_file(struct bk *b, const char *path, const char *apath);
/* a file the configuration names that is not included */
void bk_note_outside(struct bk *b, const char *path);
int bk_open_rel(struct bk *b, const char *rel, int flags);
/* 1 added (or skipped: not a regular file), 0 gone (ENOENT), -1 error */
int bk_add_rel(struct bk *b, const char *rel);
bool bk_name_ok(const char *name);
const char *bk_data_dir(const struct bk *b);
const char *bk_userdb_rel(const struct bk *b);
struct backup_stats *bk_stats(struct bk *b);

/* backup_walk.c: data/ and userdb/, in the order backup.h gives */
int bk_data(struct bk *b, const struct config *config);
/* the files the configuration names below dir, as config/<rel> */
int bk_config_refs(struct bk *b, const struct config *config,
		   const char *dir);

#endif
