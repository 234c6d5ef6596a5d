/*
 * clamd's reply to INSTREAM: see clamd_reply.h.
 */
#include <stdbool.h>
#include <string.h>

#include "lib/util.h"
#include "mail/clamd_reply.h"

#define PREFIX "stream: "
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define FOUND " FOUND"
#define FOUND_LEN (sizeof(FOUND) - 1)
#define ERROR " ERROR"
#define ERROR_LEN (sizeof(ERROR) - 1)

static bool
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("._-:+/()[]!#@=,", c) != NULL);
}

static bool
ends_with(const char *buf, size_t len, const char *suffix, size_t slen)
{
	return len >= slen && memcmp(buf + len - slen, suffix, slen) == 0;
}

static void
bad(struct clamd_reply *r, const char *buf, size_t len)
{
	r->kind = CLAMD_REPLY_BAD;
	ascii_printable(r->text, sizeof(r->text), buf, len);
}

/* "NAME" of "stream: NAME FOUND": one word, cleaned and cut. */
static void
found(struct clamd_reply *r, const char *name, size_t len, const char *buf,
      size_t blen)
{
	size_t i;

	if (len == 0 || memchr(name, ' ', len) != NULL) {
		bad(r, buf, blen);
		return;
	}
	r->kind = CLAMD_REPLY_FOUND;
	for (i = 0; i < len && i < CLAMD_NAME_MAX; i++)
		r->name[i] = name_char((unsigned char)name[i]) ? name[i] : '_';
	r->name[i] = '\0';
}

void
clamd_reply_parse(const char *buf, size_t len, struct clamd_reply *r)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	while (len > 0 && (buf[len - 1] == '\0' || buf[len - 1] == '\n' ||
			   buf[len - 1] == '\r'))
		len--;
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			bad(r, buf, len);
			return;
		}
	}
	if (ends_with(buf, len, ERROR, ERROR_LEN)) {
		r->kind = CLAMD_REPLY_ERROR;
		ascii_printable(r->text, sizeof(r->text), buf, len - ERROR_LEN);
		return;
	}
	if (len < PREFIX_LEN || memcmp(buf, PREFIX, PREFIX_LEN) != 0) {
		bad(r, buf, len);
		return;
	}
	if (len == PREFIX_LEN + 2 && memcmp(buf + PREFIX_LEN, "OK", 2) == 0) {
		r->kind = CLAMD_REPLY_OK;
		return;
	}
	if (ends_with(buf, len, FOUND, FOUND_LEN) &&
	    len >= PREFIX_LEN + FOUND_LEN) {
		found(r, buf + PREFIX_LEN, len - PREFIX_LEN - FOUND_LEN, buf,
		      len);
		return;
	}
	bad(r, buf, len);
}

const char *
clamd_reply_kind_name(enum clamd_reply_kind kind)
{
	switch (kind) {
	case CLAMD_REPLY_OK:
		return "ok";
	case CLAMD_REPLY_FOUND:
		return "found";
	case CLAMD_REPLY_ERROR:
		return "error";
	case CLAMD_REPLY_BAD:
		break;
	}
	return "garbled";
}
