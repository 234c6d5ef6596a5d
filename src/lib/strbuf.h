/*
 * A growable byte string: appends grow the buffer (doubling), the bytes
 * are always followed by a NUL (so s is a C string when the bytes hold
 * none). A zeroed struct strbuf is empty and needs no init; s stays NULL
 * until the first append. Out of memory or a size overflow aborts (like
 * xalloc.h): use it where the input is already bounded by its caller.
 */
#ifndef GODWIT_STRBUF_H
#define GODWIT_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;		/* NULL until something is added */
	size_t len;		/* bytes, without the NUL */
	size_t cap;		/* allocated, with room for the NUL */
};

/* Room for at least n more bytes and the NUL. */
void strbuf_grow(struct strbuf *b, size_t n);
void strbuf_add(struct strbuf *b, const void *p, size_t n);
void strbuf_addstr(struct strbuf *b, const char *s);
void strbuf_addc(struct strbuf *b, char c);
void strbuf_addf(struct strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empties it and keeps the allocation. */
void strbuf_reset(struct strbuf *b);
/* Frees it; b is empty (zeroed) again. */
void strbuf_free(struct strbuf *b);
/* The string (never NULL), owned by the caller; b is empty again. */
char *strbuf_steal(struct strbuf *b);

#endif
