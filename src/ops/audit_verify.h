/*
 * `godwit audit verify`: walks every file of the audit log's chain in
 * order (store/audit.h: the rotated audit.log.YYYY-MM-DD[.N], then
 * audit.log) and finds the first line that breaks it (lib/hashchain.h):
 * one that was changed, removed or inserted shows as the line after it
 * no longer carrying its hash; a torn or malformed line is named as such.
 * With an expected hash (one anchored outside: the hourly audit-head log
 * line), the chain must also contain a line with that hash, so a cut tail
 * is found too.
 */
#ifndef GODWIT_AUDIT_VERIFY_H
#define GODWIT_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/hashchain.h"

struct audit_verify_report {
	size_t files;
	uint64_t lines;
	char head[HASHCHAIN_HEX_LEN + 1];	/* hash of the last line */
	char first_prev[HASHCHAIN_HEX_LEN + 1];	/* where the chain starts */
	bool expect_found;
	/* the first broken line: its file (a path), number and why */
	char *file;
	uint64_t line;
	const char *why;
};

/*
 * 0: the chain is whole (and holds expect, when not NULL); 1: broken
 * (rep->file, line, why; or !expect_found); -1: could not be read
 * (*error_r).
 */
int audit_verify(const char *data_dir, const char *expect,
		 struct audit_verify_report *rep, char **error_r);
void audit_verify_report_clear(struct audit_verify_report *rep);

#endif
