/*
 * Allocation that cannot fail: out of memory aborts the process (the
 * parent restarts a worker). Sizes are checked for overflow before use.
 */
#ifndef GODWIT_XALLOC_H
#define GODWIT_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *p and sets it to NULL. */
#define xfree(p) do { free(*(p)); *(p) = NULL; } while (0)

#endif
