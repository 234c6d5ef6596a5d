/*
 * What restore.c (reading and checking the archive) and restore_extract.c
 * (writing the tree) share.
 */
#ifndef GODWIT_RESTORE_PRIVATE_H
#define GODWIT_RESTORE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/datadir.h"
#include "store/userdb.h"

struct archive;
struct archive_entry;
struct restore_options;
struct restore_result;

struct rs_rec {
	char *path;
	char type;		/* 'D' or 'F' */
	unsigned mode;
	uint64_t size;
	char hash[65];		/* SHA-256, lower-case hex; files only */
};

struct rs_set {		/* sorted by path */
	struct rs_rec *v;
	size_t n;
};

struct rs_file {
	char *name;
	char *data;
	size_t len;
};

struct rs_mem {		/* the config/ files, read in pass 1 */
	struct rs_file *v;
	size_t n;
};

struct rs_info {		/* the manifest */
	char *data_dir;
	char *config;		/* "config/<name>" */
	struct rs_set files;
};

struct rs_dir {		/* a directory made: its mode is set last */
	char *path;
	unsigned mode;
	uid_t uid;
	gid_t gid;
};

struct rs_ctx {
	const struct restore_options *o;
	struct restore_result *res;
	struct rs_mem conf;
	struct rs_info info;
	char *user;
	char *userdb_rel;	/* below data_dir, or NULL */
	char *userdb_path;
	char *userdb_driver;
	struct userdb_config udb;
	struct datadir_config dcfg;
	struct datadir_ids ids;
	struct rs_dir *dirs;
	size_t ndirs;
};

int rs_fail(char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool rs_path_ok(const char *p);
struct rs_rec *rs_find(struct rs_set *s, const char *path);
void rs_set_clear(struct rs_set *s);
/* the entry's name without a trailing '/' (caller frees), or NULL */
char *rs_name(struct archive_entry *e);
struct archive *rs_open(const char *path, char **error_r);
int rs_data(struct archive *a, const char *name, int fd, bool keep,
	    size_t max, char hex[65], char **keep_r, size_t *len_r,
	    char **error_r);
void rs_mem_add(struct rs_mem *m, const char *name, char *data, size_t len);
const struct rs_file *rs_mem_find(const struct rs_mem *m, const char *name);
void rs_mem_clear(struct rs_mem *m);

/* restore_extract.c */
int rs_manifest_check(const char *path, const char *manifest, size_t len,
		      struct rs_set *seen, struct rs_info *info,
		      char **error_r);
int rs_prepare(struct rs_ctx *c, char **error_r);
int rs_extract(struct rs_ctx *c, char **error_r);
int rs_finish(struct rs_ctx *c, char **error_r);
void rs_ctx_clear(struct rs_ctx *c);

#endif
