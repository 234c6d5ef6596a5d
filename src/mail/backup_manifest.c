/*
 * A backup MANIFEST's entry lines and archive paths: see
 * backup_manifest.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mail/backup_manifest.h"

bool
manifest_path_ok(const char *p)
{
	const char *c = p;

	if (strcmp(p, "MANIFEST") == 0 || strcmp(p, "data") == 0)
		return true;
	if (strncmp(p, "data/", 5) != 0 && strncmp(p, "config/", 7) != 0 &&
	    strncmp(p, "userdb/", 7) != 0)
		return false;
	for (const unsigned char *q = (const unsigned char *)p; *q; q++)
		if (*q < 0x20 || *q == 0x7f || *q == '\\')
			return false;
	while (c != NULL) {
		const char *slash = strchr(c, '/');
		size_t n = slash != NULL ? (size_t)(slash - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = slash != NULL ? slash + 1 : NULL;
	}
	return true;
}

bool
manifest_entry_parse(const char *line, struct manifest_entry *e)
{
	const char *p;
	char *end;
	unsigned long long v;

	memset(e, 0, sizeof(*e));
	e->type = line[0];
	if ((line[0] != 'F' && line[0] != 'D') || line[1] != ' ')
		return false;
	p = line + 2;
	if (e->type == 'F') {
		if (strspn(p, "0123456789abcdef") != 64 || p[64] != ' ')
			return false;
		memcpy(e->hash, p, 64);
		e->hash[64] = '\0';
		p += 65;
		if (*p < '0' || *p > '9' || strspn(p, "0123456789") > 20)
			return false;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno != 0 || *end != ' ')
			return false;
		e->size = v;
		p = end + 1;
	}
	if (strspn(p, "01234567") != 4 || p[4] != ' ')
		return false;
	e->mode = (unsigned)strtoul(p, NULL, 8);
	p += 5;
	if (!manifest_path_ok(p) || strcmp(p, "MANIFEST") == 0)
		return false;
	e->path = p;
	return true;
}
