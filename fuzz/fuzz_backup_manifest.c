/*
 * libFuzzer target for mail/backup_manifest.c. The input is one MANIFEST
 * line (cut at the first NUL or line end, as a restore splits them).
 * Checked, with abort(): a parsed entry's path points into the line, ends
 * with it and passes manifest_path_ok(); it has no "." or ".." component
 * and does not start with '/'; a file's hash is 64 lower-case hex digits;
 * the mode fits 07777.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/backup_manifest.h"

static void
check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct manifest_entry e;
	size_t n = 0;

	while (n < size && data[n] != '\0' && data[n] != '\n')
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	if (manifest_entry_parse(line, &e)) {
		check(e.path > line && e.path < line + n);
		check(e.path + strlen(e.path) == line + n);
		check(manifest_path_ok(e.path));
		check(e.path[0] != '/' && strstr(e.path, "/../") == NULL &&
		      strstr(e.path, "/./") == NULL);
		check(strcmp(e.path + strlen(e.path) - (strlen(e.path) >= 3 ? 3 : 0),
			     "/..") != 0);
		check(e.mode <= 07777);
		check(e.type == 'D' || e.type == 'F');
		if (e.type == 'F')
			check(strlen(e.hash) == 64 &&
			      strspn(e.hash, "0123456789abcdef") == 64);
	}
	free(line);
	return 0;
}
