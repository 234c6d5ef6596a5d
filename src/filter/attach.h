/*
 * Attachment rules: the MIME structure of a message walked (GMime), each
 * file checked by name (blocked extensions, double extensions), by
 * content (libmagic: executables) and inside archives (libarchive).
 * (Owner: the attachments helper.)
 */
#ifndef GODWIT_ATTACH_H
#define GODWIT_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* filter.attachments */
struct attach_config {
	bool enabled;		/* on by default */
	char **blocked_extensions;	/* without the dot, lower case */
	size_t nblocked_extensions;
};

#endif
