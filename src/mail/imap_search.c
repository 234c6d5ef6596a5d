/*
 * The search-key parser of imap_search.h: the arguments of SEARCH (as
 * mail/imap_parse.h delivers them) into a tree, every key of RFC 9051
 * and RFC 3501, bounded in nodes and depth.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"
#include "mail/imap_parse.h"
#include "mail/imap_search.h"

#define SEQ_RANGES_MAX 10000

struct parser {
	const struct imap_arg *a;
	size_t n, pos;
	size_t nodes;
	const char *error;
};

static const char *const months[12] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

long
imap_search_date(const char *s, size_t len)
{
	long d = 0, y = 0;
	size_t i = 0, k;
	int mon = -1;

	for (k = 0; i < len && k < 2 && isdigit((unsigned char)s[i]); k++)
		d = d * 10 + (s[i++] - '0');
	if (k == 0 || d < 1 || d > 31 || i + 5 > len || s[i] != '-')
		return -1;
	for (int m = 0; m < 12; m++)
		if (strncasecmp(s + i + 1, months[m], 3) == 0)
			mon = m;
	if (mon < 0 || s[i + 4] != '-')
		return -1;
	i += 5;
	for (k = 0; i < len && k < 4 && isdigit((unsigned char)s[i]); k++)
		y = y * 10 + (s[i++] - '0');
	if (k != 4 || i != len)
		return -1;
	return y * 10000 + (mon + 1) * 100 + d;
}

static struct imap_search_node *
node(struct parser *p, struct imap_search_node *n, enum imap_search_type t)
{
	memset(n, 0, sizeof(*n));
	n->type = t;
	n->keyword = -1;
	p->nodes++;
	return n;
}

static const struct imap_arg *
next_arg(struct parser *p)
{
	if (p->pos >= p->n) {
		p->error = "Missing search argument";
		return NULL;
	}
	return &p->a[p->pos++];
}

/* An astring argument, copied; NULL if missing or not a string. */
static char *
string_arg(struct parser *p, bool lower)
{
	const struct imap_arg *a = next_arg(p);
	const char *s;
	size_t len;
	char *r;

	if (a == NULL)
		return NULL;
	if (!imap_arg_astring(a, &s, &len) || len > IMAP_SEARCH_STRING_MAX ||
	    memchr(s, '\0', len) != NULL) {
		p->error = "Invalid search string";
		return NULL;
	}
	r = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		r[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	r[len] = '\0';
	return r;
}

static bool
number_arg(struct parser *p, uint64_t *v_r)
{
	const struct imap_arg *a = next_arg(p);
	uint64_t v = 0;

	if (a == NULL)
		return false;
	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
		goto bad;
	for (size_t i = 0; i < a->len; i++) {
		if (!isdigit((unsigned char)a->str[i]))
			goto bad;
		v = v * 10 + (uint64_t)(a->str[i] - '0');
	}
	*v_r = v;
	return true;
bad:
	p->error = "Invalid number";
	return false;
}

static bool
date_arg(struct parser *p, long *d_r)
{
	const struct imap_arg *a = next_arg(p);
	const char *s;
	size_t len;

	if (a == NULL)
		return false;
	if (!imap_arg_astring(a, &s, &len) ||
	    (*d_r = imap_search_date(s, len)) < 0) {
		p->error = "Invalid date";
		return false;
	}
	return true;
}

static bool
is_seqset(const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0)
		return false;
	for (size_t i = 0; i < a->len; i++)
		if (!isdigit((unsigned char)a->str[i]) && a->str[i] != ':' &&
		    a->str[i] != ',' && a->str[i] != '*')
			return false;
	return true;
}

static bool set_arg(struct parser *p, const struct imap_arg *a,
		    struct imap_search_node *n, enum imap_search_type t);
static bool parse_key(struct parser *p, struct imap_search_node *n,
		      unsigned depth);

struct flag_key {
	const char *name;
	unsigned flag;
	bool set;
};

static const struct flag_key flag_keys[] = {
	{"ANSWERED", IMAP_SEARCH_F_ANSWERED, true},
	{"DELETED", IMAP_SEARCH_F_DELETED, true},
	{"DRAFT", IMAP_SEARCH_F_DRAFT, true},
	{"FLAGGED", IMAP_SEARCH_F_FLAGGED, true},
	{"SEEN", IMAP_SEARCH_F_SEEN, true},
	{"UNANSWERED", IMAP_SEARCH_F_ANSWERED, false},
	{"UNDELETED", IMAP_SEARCH_F_DELETED, false},
	{"UNDRAFT", IMAP_SEARCH_F_DRAFT, false},
	{"UNFLAGGED", IMAP_SEARCH_F_FLAGGED, false},
	{"UNSEEN", IMAP_SEARCH_F_SEEN, false},
};

struct arg_key {
	const char *name;
	enum imap_search_type type;
	const char *field;	/* HEADER shorthands */
};

static const struct arg_key arg_keys[] = {
	{"BCC", IMAP_SK_HEADER, "Bcc"},
	{"CC", IMAP_SK_HEADER, "Cc"},
	{"FROM", IMAP_SK_HEADER, "From"},
	{"SUBJECT", IMAP_SK_HEADER, "Subject"},
	{"TO", IMAP_SK_HEADER, "To"},
	{"BODY", IMAP_SK_BODY, NULL},
	{"TEXT", IMAP_SK_TEXT, NULL},
	{"BEFORE", IMAP_SK_BEFORE, NULL},
	{"ON", IMAP_SK_ON, NULL},
	{"SINCE", IMAP_SK_SINCE, NULL},
	{"SENTBEFORE", IMAP_SK_SENTBEFORE, NULL},
	{"SENTON", IMAP_SK_SENTON, NULL},
	{"SENTSINCE", IMAP_SK_SENTSINCE, NULL},
	{"LARGER", IMAP_SK_LARGER, NULL},
	{"SMALLER", IMAP_SK_SMALLER, NULL},
};

/* NOT n: the node wraps a new kid. */
static struct imap_search_node *
wrap_not(struct parser *p, struct imap_search_node *n)
{
	struct imap_search_node *k = xcalloc(1, sizeof(*k));

	node(p, n, IMAP_SK_NOT);
	n->kids = k;
	n->nkids = 1;
	return k;
}

/* A key with a fixed meaning and no argument; false if not one. */
static bool
simple_key(struct parser *p, const char *w, struct imap_search_node *n)
{
	for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
		if (strcasecmp(w, flag_keys[i].name) == 0) {
			struct imap_search_node *f = n;

			if (!flag_keys[i].set)
				f = wrap_not(p, n);
			node(p, f, IMAP_SK_FLAG)->flag = flag_keys[i].flag;
			return true;
		}
	if (strcasecmp(w, "ALL") == 0)
		node(p, n, IMAP_SK_ALL);
	else if (strcasecmp(w, "RECENT") == 0)
		node(p, n, IMAP_SK_RECENT);
	else if (strcasecmp(w, "OLD") == 0)
		node(p, wrap_not(p, n), IMAP_SK_RECENT);
	else if (strcasecmp(w, "NEW") == 0) {
		/* RECENT UNSEEN */
		node(p, n, IMAP_SK_AND);
		n->kids = xcalloc(2, sizeof(*n->kids));
		n->nkids = 2;
		node(p, &n->kids[0], IMAP_SK_RECENT);
		node(p, wrap_not(p, &n->kids[1]), IMAP_SK_FLAG)->flag =
		    IMAP_SEARCH_F_SEEN;
	} else
		return false;
	return true;
}

static bool
keyword_key(struct parser *p, struct imap_search_node *n, bool not)
{
	char *kw = string_arg(p, false);

	if (kw == NULL)
		return false;
	if (not)
		n = wrap_not(p, n);
	if (strcasecmp(kw, "$Forwarded") == 0) {
		node(p, n, IMAP_SK_FLAG)->flag = IMAP_SEARCH_F_FORWARDED;
		free(kw);
	} else
		node(p, n, IMAP_SK_KEYWORD)->str = kw;
	return true;
}

static bool
arg_key(struct parser *p, const struct arg_key *k, struct imap_search_node *n)
{
	node(p, n, k->type);
	switch (k->type) {
	case IMAP_SK_HEADER:
		n->field = xstrdup(k->field);
		/* FALLTHROUGH */
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		return (n->str = string_arg(p, true)) != NULL;
	case IMAP_SK_LARGER:
	case IMAP_SK_SMALLER:
		return number_arg(p, &n->num);
	default:
		return date_arg(p, &n->date);
	}
}

/* Two or more kids parsed into n. */
static bool
kids(struct parser *p, struct imap_search_node *n, size_t count,
     unsigned depth)
{
	n->kids = xcalloc(count, sizeof(*n->kids));
	for (size_t i = 0; i < count; i++) {
		n->nkids = i + 1;
		if (!parse_key(p, &n->kids[i], depth + 1))
			return false;
	}
	return true;
}

/* A parenthesised list: its keys ANDed. */
static bool
group(struct parser *p, const struct imap_arg *a, struct imap_search_node *n,
      unsigned depth)
{
	struct parser sub = {a->list, a->nlist, 0, p->nodes, NULL};

	node(p, n, IMAP_SK_AND);
	if (a->nlist == 0) {
		p->error = "Empty search list";
		return false;
	}
	n->kids = xcalloc(a->nlist, sizeof(*n->kids));
	while (sub.pos < sub.n) {
		if (!parse_key(&sub, &n->kids[n->nkids++], depth + 1)) {
			p->error = sub.error;
			return false;
		}
	}
	p->nodes = sub.nodes;
	return true;
}

static bool
word_key(struct parser *p, const char *w, struct imap_search_node *n,
	 unsigned depth)
{
	if (simple_key(p, w, n))
		return true;
	for (size_t i = 0; i < sizeof(arg_keys) / sizeof(arg_keys[0]); i++)
		if (strcasecmp(w, arg_keys[i].name) == 0)
			return arg_key(p, &arg_keys[i], n);
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0)
		return keyword_key(p, n, w[0] == 'U' || w[0] == 'u');
	if (strcasecmp(w, "HEADER") == 0) {
		node(p, n, IMAP_SK_HEADER);
		return (n->field = string_arg(p, false)) != NULL &&
		    (n->str = string_arg(p, true)) != NULL;
	}
	if (strcasecmp(w, "NOT") == 0) {
		node(p, n, IMAP_SK_NOT);
		return kids(p, n, 1, depth);
	}
	if (strcasecmp(w, "OR") == 0) {
		node(p, n, IMAP_SK_OR);
		return kids(p, n, 2, depth);
	}
	if (strcasecmp(w, "UID") == 0) {
		const struct imap_arg *a = next_arg(p);

		return a != NULL && set_arg(p, a, n, IMAP_SK_UID);
	}
	p->error = "Unknown search key";
	return false;
}

static bool
set_arg(struct parser *p, const struct imap_arg *a,
	struct imap_search_node *n, enum imap_search_type t)
{
	node(p, n, t);
	if (a->type == IMAP_ARG_ATOM && a->len == 1 && a->str[0] == '$') {
		n->type = IMAP_SK_SAVED;
		return true;
	}
	if (!is_seqset(a) || imap_seqset_parse(a->str, a->len, SEQ_RANGES_MAX,
					       &n->set) < 0) {
		p->error = "Invalid sequence set";
		return false;
	}
	return true;
}

static bool
parse_key(struct parser *p, struct imap_search_node *n, unsigned depth)
{
	const struct imap_arg *a;

	node(p, n, IMAP_SK_ALL);
	p->nodes--;
	if (depth > IMAP_SEARCH_DEPTH_MAX ||
	    p->nodes >= IMAP_SEARCH_NODES_MAX) {
		p->error = "Search too complex";
		return false;
	}
	if ((a = next_arg(p)) == NULL)
		return false;
	if (a->type == IMAP_ARG_LIST)
		return group(p, a, n, depth);
	if (a->type == IMAP_ARG_ATOM &&
	    ((a->len == 1 && a->str[0] == '$') || is_seqset(a)))
		return set_arg(p, a, n, IMAP_SK_SEQ);
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "Invalid search key";
		return false;
	}
	return word_key(p, a->str, n, depth);
}

int
imap_search_parse(const struct imap_arg *args, size_t n,
		  struct imap_search_node **tree_r, const char **error_r)
{
	struct parser p = {args, n, 0, 0, NULL};
	struct imap_search_node *t = xcalloc(1, sizeof(*t));

	*tree_r = NULL;
	*error_r = NULL;
	if (n >= 2 && imap_arg_atom_is(&args[0], "CHARSET")) {
		const char *cs;
		size_t len;

		if (!imap_arg_astring(&args[1], &cs, &len)) {
			*error_r = "Invalid charset";
			free(t);
			return IMAP_SEARCH_BAD;
		}
		if (!(len == 5 && strncasecmp(cs, "UTF-8", 5) == 0) &&
		    !(len == 8 && strncasecmp(cs, "US-ASCII", 8) == 0)) {
			free(t);
			return IMAP_SEARCH_BADCHARSET;
		}
		p.pos = 2;
	}
	node(&p, t, IMAP_SK_AND);
	if (p.pos >= n) {
		*error_r = "Missing search key";
		free(t);
		return IMAP_SEARCH_BAD;
	}
	t->kids = xcalloc(n - p.pos, sizeof(*t->kids));
	while (p.pos < n)
		if (!parse_key(&p, &t->kids[t->nkids++], 1)) {
			*error_r = p.error != NULL ? p.error : "Invalid search";
			imap_search_free(&t);
			return IMAP_SEARCH_BAD;
		}
	*tree_r = t;
	return IMAP_SEARCH_OK;
}

static void
free_node(struct imap_search_node *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		free_node(&n->kids[i]);
	free(n->kids);
	imap_seqset_free(&n->set);
	free(n->field);
	free(n->str);
}

void
imap_search_free(struct imap_search_node **tree)
{
	if (*tree == NULL)
		return;
	free_node(*tree);
	free(*tree);
	*tree = NULL;
}

void
imap_search_keywords(struct imap_search_node *t,
		     int (*lookup)(void *arg, const char *name), void *arg)
{
	if (t->type == IMAP_SK_KEYWORD)
		t->keyword = lookup(arg, t->str);
	for (size_t i = 0; i < t->nkids; i++)
		imap_search_keywords(&t->kids[i], lookup, arg);
}

bool
imap_search_needs_date(const struct imap_search_node *t)
{
	if (t->type >= IMAP_SK_BEFORE && t->type <= IMAP_SK_SENTSINCE)
		return true;
	for (size_t i = 0; i < t->nkids; i++)
		if (imap_search_needs_date(&t->kids[i]))
			return true;
	return false;
}

bool
imap_search_needs_body(const struct imap_search_node *t)
{
	if (t->type == IMAP_SK_BODY || t->type == IMAP_SK_TEXT)
		return true;
	for (size_t i = 0; i < t->nkids; i++)
		if (imap_search_needs_body(&t->kids[i]))
			return true;
	return false;
}

bool
imap_search_needs_content(const struct imap_search_node *t)
{
	if (t->type == IMAP_SK_HEADER || t->type == IMAP_SK_BODY ||
	    t->type == IMAP_SK_TEXT || t->type == IMAP_SK_SENTBEFORE ||
	    t->type == IMAP_SK_SENTON || t->type == IMAP_SK_SENTSINCE)
		return true;
	for (size_t i = 0; i < t->nkids; i++)
		if (imap_search_needs_content(&t->kids[i]))
			return true;
	return false;
}
