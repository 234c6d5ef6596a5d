/*
 * DKIM tag lists (RFC 6376 3.2): "v=1; a=rsa-sha256; d=example.org",
 * the syntax of the DKIM-Signature field's value and of key records.
 * Pure: no I/O, no allocation; tags point into the input.
 *
 *	tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *	tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *	tag-name  = ALPHA *( ALPHA / DIGIT / "_" )
 *	tag-value = [ tval *( 1*(WSP / FWS) tval ) ], tval = 1*(%x21-3A / %x3C-7E)
 *
 * FWS is white space with line ends inside it; a line end is LF or CRLF
 * and must be followed by white space (folding). Names are
 * case-sensitive; a name given twice is an error (RFC 6376 3.2).
 */
#ifndef GODWIT_DKIM_TAGS_H
#define GODWIT_DKIM_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#define DKIM_TAGS_MAX 40	/* tags kept per list; more is an error */

struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;	/* without the FWS around it; FWS inside */
	size_t value_len;
	const char *after_eq;	/* just after the '=' */
	const char *end;	/* the ';' that ends the spec, or the end */
};

struct dkim_tag_list {
	struct dkim_tag v[DKIM_TAGS_MAX];
	size_t n;
};

/*
 * Parses s (len octets, need not be NUL-terminated). 0, or -1 with
 * *error_r a static message ("duplicate tag", "malformed tag list", ...).
 * An empty list (nothing but FWS) is an error.
 */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tag_list *l,
		    const char **error_r);

/* The tag called name (case-sensitive) or NULL. */
const struct dkim_tag *dkim_tags_find(const struct dkim_tag_list *l,
				      const char *name);

/* Whether a tag's value is exactly str. */
bool dkim_tag_is(const struct dkim_tag *t, const char *str);

/*
 * The value with every WSP and line end removed (b=, bh=, p=, h=), NUL-
 * terminated in out (size octets). 0, or -1 if it does not fit.
 */
int dkim_tag_compact(const struct dkim_tag *t, char *out, size_t size);

#endif
