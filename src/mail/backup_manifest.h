/*
 * The lines of a backup's MANIFEST (ops/backup.h) that name entries, and
 * the archive paths a restore accepts: pure parsing of what comes from an
 * archive, which may come from anywhere.
 *
 *	D <mode> <path>                  a directory, mode 4 octal digits
 *	F <sha256> <size> <mode> <path>  a file: 64 lower-case hex digits,
 *	                                 decimal size, mode, path
 */
#ifndef GODWIT_BACKUP_MANIFEST_H
#define GODWIT_BACKUP_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

struct manifest_entry {
	char type;		/* 'D' or 'F' */
	unsigned mode;		/* <= 07777 */
	uint64_t size;		/* files */
	char hash[65];		/* files: NUL-terminated hex */
	const char *path;	/* points into the line */
};

/*
 * A path an archive may hold: "MANIFEST", "data", or below "data/",
 * "config/" or "userdb/"; no empty, "." or ".." component, no control
 * character or backslash.
 */
bool manifest_path_ok(const char *path);

/* Parses one line (NUL-terminated, no line end) into *e: true if it is
 * an entry line with a path manifest_path_ok() accepts (not "MANIFEST"). */
bool manifest_entry_parse(const char *line, struct manifest_entry *e);

#endif
