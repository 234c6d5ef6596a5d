/*
 * The generic configuration loader (lib/conftab.h): libyaml's document
 * API builds the whole tree (the file is at most 1 MiB), then the tables
 * are walked over it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cidr.h"
#include "lib/conftab.h"
#include "lib/util.h"
#include "lib/xalloc.h"

/* Past this many, further errors are counted but not listed. */
#define CONF_MAX_ERRORS 50
#define CONF_MAX_CIPHERS 1024

struct conf_error {
	int line;
	char *msg;
};

void
conf_error(struct conf_loader *l, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (l->nerrs >= CONF_MAX_ERRORS) {
		if (l->dropped++ == 0)
			l->dropped_line = line;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		fprintf(stderr, "godwit: out of memory\n");
		abort();
	}
	va_end(ap);
	l->errs = xreallocarray(l->errs, l->nerrs + 1, sizeof(*l->errs));
	l->errs[l->nerrs].line = line;
	l->errs[l->nerrs].msg = msg;
	l->nerrs++;
}

int
conf_line(const yaml_node_t *n)
{
	return n != NULL ? (int)n->start_mark.line + 1 : 1;
}

yaml_node_t *
conf_node(struct conf_loader *l, int index)
{
	return yaml_document_get_node(l->doc, index);
}

size_t
conf_seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top -
	                n->data.sequence.items.start);
}

yaml_node_t *
conf_seq_item(struct conf_loader *l, const yaml_node_t *n, size_t i)
{
	return conf_node(l, n->data.sequence.items.start[i]);
}

static const char *
scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/*
 * Text from the file, made safe to print in an error: control and
 * non-ASCII bytes become \xNN and long values are cut, so a hostile file
 * cannot write escape sequences to the operator's terminal.
 */
/* The first len bytes of s, as conf_safe() makes them. */
static const char *
safe_text(char *buf, size_t size, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; i < len && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (i < len) {
		buf[o++] = '.';
		buf[o++] = '.';
		buf[o++] = '.';
	}
	buf[o] = '\0';
	return buf;
}

const char *
conf_safe(char buf[CONF_SAFE_BUF], const char *s)
{
	return safe_text(buf, CONF_SAFE_BUF, s, strlen(s));
}

/* An unquoted empty value, ~ or null: the same as leaving the key out. */
bool
conf_is_null(const yaml_node_t *n)
{
	const char *s;

	if (n == NULL)
		return true;
	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = scalar(n);
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/*
 * A scalar as a C string. libyaml allows "\0" in double-quoted scalars,
 * which would silently cut the value short; refuse those.
 */
const char *
conf_scalar(struct conf_loader *l, const yaml_node_t *n, const char *key,
            const char *expected)
{
	if (n->type != YAML_SCALAR_NODE) {
		conf_error(l, conf_line(n), "%s: expected %s", key, expected);
		return NULL;
	}
	if (strlen(scalar(n)) != n->data.scalar.length) {
		conf_error(l, conf_line(n), "%s: contains a NUL character",
		           key);
		return NULL;
	}
	return scalar(n);
}

/*
 * Finds the values of the known keys in a mapping: values_r[i] is the
 * value node for keys[i], or NULL when the key is absent. Unknown,
 * duplicate and non-string keys are errors. "where" names the mapping in
 * messages ("smtp", "listeners[0]", "" for the top level).
 */
bool
conf_mapping(struct conf_loader *l, const yaml_node_t *map, const char *where,
             const struct conf_key *keys, size_t nkeys, yaml_node_t **values_r)
{
	int first_line[48];
	char in[96], buf[CONF_SAFE_BUF];

	if (nkeys > sizeof(first_line) / sizeof(first_line[0]))
		abort();
	for (size_t i = 0; i < nkeys; i++)
		values_r[i] = NULL;
	if (*where == '\0')
		snprintf(in, sizeof(in), "at top level");
	else
		snprintf(in, sizeof(in), "in %s", where);
	if (conf_is_null(map))
		return true;
	if (map->type != YAML_MAPPING_NODE) {
		if (*where == '\0')
			conf_error(l, conf_line(map),
			           "expected a mapping of keys at top level");
		else
			conf_error(l, conf_line(map), "%s: expected a mapping",
			           where);
		return false;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = conf_node(l, p->key);
		yaml_node_t *v = conf_node(l, p->value);
		size_t i;

		if (k == NULL || v == NULL)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			conf_error(l, conf_line(k), "keys must be strings %s",
			           in);
			continue;
		}
		for (i = 0; i < nkeys; i++)
			if (keys[i].name != NULL &&
			    strlen(keys[i].name) == k->data.scalar.length &&
			    strcmp(keys[i].name, scalar(k)) == 0)
				break;
		if (i == nkeys) {
			conf_error(l, conf_line(k), "unknown key '%s' %s",
			           safe_text(buf, sizeof(buf), scalar(k),
			                     k->data.scalar.length),
			           in);
			continue;
		}
		if (values_r[i] != NULL) {
			conf_error(l, conf_line(k),
			           "duplicate key '%s' %s (first on line %d)",
			           keys[i].name, in, first_line[i]);
			continue;
		}
		values_r[i] = v;
		first_line[i] = conf_line(k);
	}
	return true;
}

void
conf_get_uint(struct conf_loader *l, const yaml_node_t *n, const char *key,
              unsigned min, unsigned max, unsigned *r)
{
	const char *s;
	uint64_t v;
	char buf[CONF_SAFE_BUF];

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "a number")) == NULL)
		return;
	if (parse_uint64(s, &v) < 0) {
		conf_error(l, conf_line(n), "%s: expected a number", key);
		return;
	}
	if (v < min || v > max) {
		conf_error(l, conf_line(n), "%s: '%s' is out of range (%u..%u)",
		           key, conf_safe(buf, s), min, max);
		return;
	}
	*r = (unsigned)v;
}

/*
 * A duration (seconds) or a size (bytes), parsed by parse; "range" is how
 * min..max reads in a message.
 */
static void
get_scaled(struct conf_loader *l, const yaml_node_t *n, const char *key,
           const char *what,
           int (*parse)(const char *, uint64_t *, const char **), uint64_t min,
           uint64_t max, const char *range, uint64_t *r)
{
	const char *s, *error;
	uint64_t v;
	char buf[CONF_SAFE_BUF];

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, what)) == NULL)
		return;
	if (parse(s, &v, &error) < 0) {
		conf_error(l, conf_line(n), "%s: %s", key, error);
		return;
	}
	if (v < min || v > max) {
		conf_error(l, conf_line(n), "%s: '%s' is out of range (%s)",
		           key, conf_safe(buf, s), range);
		return;
	}
	*r = v;
}

void
conf_get_duration(struct conf_loader *l, const yaml_node_t *n, const char *key,
                  uint64_t min, uint64_t max, const char *range, uint64_t *r)
{
	get_scaled(l, n, key, "a duration", parse_duration, min, max, range, r);
}

static void
get_size(struct conf_loader *l, const yaml_node_t *n, const char *key,
         uint64_t min, uint64_t max, const char *range, uint64_t *r)
{
	get_scaled(l, n, key, "a size", parse_size, min, max, range, r);
}

void
conf_get_bool(struct conf_loader *l, const yaml_node_t *n, const char *key,
              bool *r)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
	                                  "YES",  "on",   "On",   "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No",
	                                 "NO",    "off",   "Off",   "OFF"};
	const char *s;

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "true or false")) == NULL)
		return;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*r = true;
			return;
		}
		if (strcmp(s, no[i]) == 0) {
			*r = false;
			return;
		}
	}
	conf_error(l, conf_line(n), "%s: expected true or false", key);
}

/*
 * One of a fixed set of words. Returns the index into names, or -1 (with
 * an error reported) when n is something else or null.
 */
int
conf_get_enum(struct conf_loader *l, const yaml_node_t *n, const char *key,
              const char *const *names, size_t count, const char *allowed)
{
	const char *s;
	char buf[CONF_SAFE_BUF];

	if ((s = conf_scalar(l, n, key, "a string")) == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	conf_error(l, conf_line(n), "%s: '%s' is not one of %s", key,
	           conf_safe(buf, s), allowed);
	return -1;
}

/*
 * A scalar that must be given, not empty and at most max characters: the
 * value, or NULL (nothing given, or an error reported).
 */
static const char *
bounded_scalar(struct conf_loader *l, const yaml_node_t *n, const char *key,
               const char *expected, size_t max)
{
	const char *s;

	if (conf_is_null(n))
		return NULL;
	if ((s = conf_scalar(l, n, key, expected)) == NULL)
		return NULL;
	if (*s == '\0') {
		conf_error(l, conf_line(n), "%s: must not be empty", key);
		return NULL;
	}
	if (strlen(s) > max) {
		conf_error(l, conf_line(n), "%s: longer than %zu characters",
		           key, max);
		return NULL;
	}
	return s;
}

/*
 * A file-system path: not empty, no control characters (a newline in a
 * path is never intended and would break log lines). Replaces *r.
 */
void
conf_get_path(struct conf_loader *l, const yaml_node_t *n, const char *key,
              char **r)
{
	const char *s = bounded_scalar(l, n, key, "a path", CONF_MAX_PATH);

	if (s == NULL)
		return;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			conf_error(l, conf_line(n),
			           "%s: contains a control character", key);
			return;
		}
	}
	free(*r);
	*r = xstrdup(s);
}

/*
 * A list of CIDR networks. The array is sized once from the node count
 * (cidr_list_add grows one element at a time, which a long list would
 * make quadratic).
 */
static void
get_cidr_list(struct conf_loader *l, const yaml_node_t *n, const char *key,
              struct cidr_list *list)
{
	size_t count;
	char buf[CONF_SAFE_BUF];

	if (conf_is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		conf_error(l, conf_line(n),
		           "%s: expected a list of networks such as "
		           "[\"192.0.2.0/24\", \"2001:db8::/32\"]",
		           key);
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count == 0)
		return;
	list->v = xreallocarray(list->v, list->n + count, sizeof(*list->v));
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = conf_node(l, *it);
		const char *s, *error;
		struct cidr c;

		if (item == NULL)
			continue;
		if ((s = conf_scalar(l, item, key, "a network")) == NULL)
			continue;
		if (cidr_parse(s, &c, &error) < 0) {
			conf_error(l, conf_line(item), "%s: '%s': %s", key,
			           conf_safe(buf, s), error);
			continue;
		}
		list->v[list->n++] = c;
	}
}

/*
 * A duration kept in milliseconds: "1s", "2m", a plain number of seconds,
 * or milliseconds written as "500ms". range is how 0..max_ms reads in a
 * message.
 */
static void
get_duration_ms(struct conf_loader *l, const yaml_node_t *n, const char *key,
                uint64_t max_ms, const char *range, uint64_t *ms_r)
{
	const char *s, *error;
	uint64_t v;
	size_t len;
	char buf[CONF_SAFE_BUF];

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "a duration")) == NULL)
		return;
	len = strlen(s);
	if (len > 2 && strcmp(s + len - 2, "ms") == 0) {
		char num[24];
		if (len - 2 >= sizeof(num)) {
			conf_error(l, conf_line(n), "%s: invalid duration",
			           key);
			return;
		}
		memcpy(num, s, len - 2);
		num[len - 2] = '\0';
		if (parse_uint64(num, &v) < 0) {
			conf_error(l, conf_line(n),
			           "%s: invalid duration (use e.g. 500ms, 1s)",
			           key);
			return;
		}
	} else {
		if (parse_duration(s, &v, &error) < 0) {
			conf_error(l, conf_line(n), "%s: %s", key, error);
			return;
		}
		v = v > UINT64_MAX / 1000 ? UINT64_MAX : v * 1000;
	}
	if (v > max_ms) {
		conf_error(l, conf_line(n), "%s: '%s' is out of range (%s)",
		           key, conf_safe(buf, s), range);
		return;
	}
	*ms_r = v;
}

/*
 * An OpenSSL cipher list. Only its shape is checked here (printable
 * ASCII, no spaces-only value); whether OpenSSL knows the names is checked
 * when the TLS context is built (tls_ctx_new), which config check runs too.
 */
static void
get_cipher_list(struct conf_loader *l, const yaml_node_t *n, const char *key,
                char **r)
{
	const char *s = bounded_scalar(l, n, key, "a cipher list",
	                               CONF_MAX_CIPHERS);

	if (s == NULL)
		return;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			conf_error(l, conf_line(n),
			           "%s: only printable ASCII without spaces is "
			           "allowed (separate names with ':')",
			           key);
			return;
		}
	}
	free(*r);
	*r = xstrdup(s);
}

/* A list of strings; each checked by check (NULL = any non-empty). */
void
conf_get_strings(struct conf_loader *l, const yaml_node_t *n, const char *key,
                 const char *expected, const char *(*check)(const char *),
                 bool lower, char ***v_r, size_t *n_r)
{
	char buf[CONF_SAFE_BUF];
	size_t count;

	if (conf_is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		conf_error(l, conf_line(n), "%s: expected a list of %s", key,
		           expected);
		return;
	}
	count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	for (size_t i = 0; i < *n_r; i++)
		free((*v_r)[i]);
	free(*v_r);
	*v_r = NULL;
	*n_r = 0;
	if (count == 0)
		return;
	*v_r = xcalloc(count, sizeof(**v_r));
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = conf_node(l, *it);
		const char *s, *error = NULL;
		char *d;

		if (item == NULL)
			continue;
		if ((s = conf_scalar(l, item, key, expected)) == NULL)
			continue;
		d = xstrdup(s);
		if (lower) {
			size_t len = strlen(d);
			if (len > 1 && d[len - 1] == '.')
				d[len - 1] = '\0';
			ascii_lower(d);
		}
		if (*d == '\0')
			error = "must not be empty";
		else if (check != NULL)
			error = check(d);
		if (error != NULL) {
			conf_error(l, conf_line(item), "%s: '%s': %s", key,
			           conf_safe(buf, s), error);
			free(d);
			continue;
		}
		(*v_r)[(*n_r)++] = d;
	}
}

/* An optional readable file: "" leaves it unset. */
void
conf_get_file(struct conf_loader *l, const yaml_node_t *n, const char *key,
              char **r)
{
	const char *s;

	if (conf_is_null(n))
		return;
	if ((s = conf_scalar(l, n, key, "a path")) == NULL)
		return;
	if (*s == '\0') {
		xfree(r);
		return;
	}
	conf_get_path(l, n, key, r);
	if (*r != NULL && access(*r, R_OK) != 0)
		conf_error(l, conf_line(n), "%s: %s: %s", key, *r,
		           strerror(errno));
}

/*
 * libyaml's own message, with where it was and what it was inside. The
 * reader (encoding, control characters) reports a byte offset instead of
 * a mark, so the line is counted from the input.
 */
static void
yaml_error(struct conf_loader *l, const yaml_parser_t *p, const char *data,
           size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "parse error";
	int line = (int)p->problem_mark.line + 1;

	if (p->error == YAML_READER_ERROR) {
		line = 1;
		for (size_t i = 0; i < p->problem_offset && i < len; i++)
			line += data[i] == '\n';
	}

	if (p->error == YAML_MEMORY_ERROR) {
		fprintf(stderr, "godwit: out of memory\n");
		abort();
	}
	if (p->context != NULL)
		conf_error(l, line,
		           "YAML syntax error: %s (%s that starts on line %d)",
		           problem, p->context, (int)p->context_mark.line + 1);
	else
		conf_error(l, line, "YAML syntax error: %s", problem);
}

/* Errors in file order ("file:line: message" lines), then freed. */
static char *
join_errors(struct conf_loader *l)
{
	size_t total = 1;
	char *out, *p;

	/*
	 * By line, keeping the walk's order within a line: an insertion sort
	 * is stable (qsort is not) and there are at most CONF_MAX_ERRORS.
	 */
	for (size_t i = 1; i < l->nerrs; i++) {
		struct conf_error e = l->errs[i];
		size_t j = i;
		while (j > 0 && l->errs[j - 1].line > e.line) {
			l->errs[j] = l->errs[j - 1];
			j--;
		}
		l->errs[j] = e;
	}
	for (size_t i = 0; i < l->nerrs; i++)
		total += strlen(l->name) + strlen(l->errs[i].msg) + 16;
	if (l->dropped > 0) {
		/* Past the cap conf_error would refuse it: add it by hand. */
		l->errs =
		    xreallocarray(l->errs, l->nerrs + 1, sizeof(*l->errs));
		l->errs[l->nerrs].line = l->dropped_line;
		l->errs[l->nerrs].msg =
		    xasprintf("%zu more errors not shown", l->dropped);
		total += strlen(l->name) + strlen(l->errs[l->nerrs].msg) + 16;
		l->nerrs++;
	}
	p = out = xmalloc(total);
	*p = '\0';
	for (size_t i = 0; i < l->nerrs; i++) {
		int n = snprintf(p, total - (size_t)(p - out), "%s%s:%d: %s",
		                 i > 0 ? "\n" : "", l->name, l->errs[i].line,
		                 l->errs[i].msg);
		p += n;
		free(l->errs[i].msg);
	}
	xfree(&l->errs);
	l->nerrs = 0;
	return out;
}

/*
 * libyaml's scanner costs O(depth) per token inside flow collections, so
 * a file of nested "[[[[..." takes minutes to parse (1 MiB of them, the
 * largest file we read, would stall `config check` and every reload).
 * No configuration nests deeper than a few levels: refuse more than
 * CONF_MAX_FLOW_DEPTH before libyaml sees the text. Brackets inside
 * quoted scalars and comments do not count. Returns the line where the
 * limit is passed, or 0.
 */
#define CONF_MAX_FLOW_DEPTH 64

static int
flow_too_deep(const char *p, size_t len)
{
	int depth = 0, line = 1;
	char quote = 0;
	bool comment = false;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\n') {
			line++;
			comment = false;
			continue;
		}
		if (comment)
			continue;
		if (quote != 0) {
			if (quote == '"' && c == '\\' && i + 1 < len &&
			    p[i + 1] != '\n')
				i++;
			else if (c == quote)
				quote = 0;
			continue;
		}
		if (c == '#' && (i == 0 || p[i - 1] == ' ' ||
		                 p[i - 1] == '\t' || p[i - 1] == '\n'))
			comment = true;
		else if (c == '"' || c == '\'')
			quote = c;
		else if ((c == '[' || c == '{') &&
		         ++depth > CONF_MAX_FLOW_DEPTH)
			return line;
		else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}
	return 0;
}

int
conf_parse(const char *name, const void *data, size_t len,
           void (*root)(struct conf_loader *l, const yaml_node_t *n), void *ctx,
           char **errors_r)
{
	struct conf_loader l = {.name = name, .ctx = ctx};
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int deep;

	*errors_r = NULL;
	if (len > CONF_MAX_FILE) {
		*errors_r =
		    xasprintf("%s: larger than the limit of 1 MiB", name);
		return -1;
	}
	if ((deep = flow_too_deep(data, len)) > 0) {
		*errors_r = xasprintf("%s:%d: nested deeper than %d levels",
		                      name, deep, CONF_MAX_FLOW_DEPTH);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		fprintf(stderr, "godwit: out of memory\n");
		abort();
	}
	yaml_parser_set_input_string(&parser, data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_error(&l, &parser, data, len);
	} else {
		l.doc = &doc;
		/* A second document would be silently ignored: refuse it. */
		if (!yaml_parser_load(&parser, &extra)) {
			yaml_error(&l, &parser, data, len);
		} else {
			if (yaml_document_get_root_node(&extra) != NULL)
				conf_error(&l, (int)extra.start_mark.line + 1,
				           "only one YAML document is allowed "
				           "(remove the '---' separator)");
			yaml_document_delete(&extra);
		}
		root(&l, yaml_document_get_root_node(&doc));
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	if (l.nerrs > 0) {
		*errors_r = join_errors(&l);
		return -1;
	}
	return 0;
}

int
conf_read_file(const char *path, char **data_r, size_t *len_r, char **errors_r)
{
	char *buf;
	size_t len = 0;
	int fd;

	*data_r = NULL;
	*len_r = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		*errors_r =
		    xasprintf("%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	/* One byte over the limit tells "too large" from "exactly 1 MiB". */
	buf = xmalloc(CONF_MAX_FILE + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, CONF_MAX_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*errors_r = xasprintf("%s: cannot read: %s", path,
			                      strerror(errno));
			close(fd);
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_MAX_FILE)
			break;
	}
	close(fd);
	if (len > CONF_MAX_FILE) {
		*errors_r =
		    xasprintf("%s: larger than the limit of 1 MiB", path);
		free(buf);
		return -1;
	}
	*data_r = buf;
	*len_r = len;
	return 0;
}

/* ---- tables ------------------------------------------------------------ */

#define FIELD(base, k, type) ((type *)(void *)((char *)(base) + (k)->offset))

void
conf_defaults(const struct conf_section *sec, void *base)
{
	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct conf_key *k = &sec->keys[i];

		switch (k->type) {
		case CONF_BOOL:
			*FIELD(base, k, bool) = k->def != 0;
			break;
		case CONF_UINT:
			*FIELD(base, k, unsigned) = (unsigned)k->def;
			break;
		case CONF_SIZE:
		case CONF_DURATION:
		case CONF_DURATION_MS:
			*FIELD(base, k, uint64_t) = k->def;
			break;
		case CONF_CHAR:
			*FIELD(base, k, char) = (char)k->def;
			break;
		case CONF_ENUM:
			*FIELD(base, k, int) = (int)k->def;
			break;
		case CONF_STRING:
		case CONF_PATH:
		case CONF_FILE:
		case CONF_CIPHERS:
		case CONF_ENUM_STR:
			if (k->def_str != NULL)
				*FIELD(base, k, char *) = xstrdup(k->def_str);
			break;
		case CONF_SECTION:
			conf_defaults(k->sub, FIELD(base, k, char));
			break;
		case CONF_NONE:
		case CONF_CIDRS:
		case CONF_STRINGS:
			break;
		}
	}
}

void
conf_free(const struct conf_section *sec, void *base)
{
	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct conf_key *k = &sec->keys[i];

		switch (k->type) {
		case CONF_STRING:
		case CONF_PATH:
		case CONF_FILE:
		case CONF_CIPHERS:
		case CONF_ENUM_STR:
			xfree(FIELD(base, k, char *));
			break;
		case CONF_CIDRS:
			cidr_list_clear(FIELD(base, k, struct cidr_list));
			break;
		case CONF_STRINGS: {
			char ***v = FIELD(base, k, char **);
			size_t *n =
			    (size_t *)(void *)((char *)base + k->offset_n);
			for (size_t j = 0; j < *n; j++)
				free((*v)[j]);
			xfree(v);
			*n = 0;
			break;
		}
		case CONF_SECTION:
			conf_free(k->sub, FIELD(base, k, char));
			break;
		default:
			break;
		}
	}
}

void
conf_load_key(struct conf_loader *l, const yaml_node_t *n, const char *key,
              const struct conf_key *k, void *base)
{
	int i;

	switch (k->type) {
	case CONF_BOOL:
		conf_get_bool(l, n, key, FIELD(base, k, bool));
		break;
	case CONF_UINT:
		conf_get_uint(l, n, key, (unsigned)k->min, (unsigned)k->max,
		              FIELD(base, k, unsigned));
		break;
	case CONF_SIZE:
		get_size(l, n, key, k->min, k->max, k->range,
		         FIELD(base, k, uint64_t));
		break;
	case CONF_DURATION:
		conf_get_duration(l, n, key, k->min, k->max, k->range,
		                  FIELD(base, k, uint64_t));
		break;
	case CONF_DURATION_MS:
		get_duration_ms(l, n, key, k->max, k->range,
		                FIELD(base, k, uint64_t));
		break;
	case CONF_PATH:
		conf_get_path(l, n, key, FIELD(base, k, char *));
		break;
	case CONF_FILE:
		conf_get_file(l, n, key, FIELD(base, k, char *));
		break;
	case CONF_CIPHERS:
		get_cipher_list(l, n, key, FIELD(base, k, char *));
		break;
	case CONF_ENUM:
	case CONF_ENUM_STR:
		if (conf_is_null(n) ||
		    (i = conf_get_enum(l, n, key, k->names, k->nnames,
		                       k->allowed)) < 0)
			break;
		if (k->type == CONF_ENUM_STR) {
			free(*FIELD(base, k, char *));
			*FIELD(base, k, char *) = xstrdup(k->names[i]);
		} else {
			*FIELD(base, k, int) =
			    k->values != NULL ? k->values[i] : i;
		}
		break;
	case CONF_CIDRS:
		get_cidr_list(l, n, key, FIELD(base, k, struct cidr_list));
		break;
	case CONF_STRINGS:
		conf_get_strings(
		    l, n, key, k->allowed, k->check, k->lower,
		    FIELD(base, k, char **),
		    (size_t *)(void *)((char *)base + k->offset_n));
		break;
	case CONF_SECTION:
		conf_load_section(l, n, k->sub, FIELD(base, k, char));
		break;
	case CONF_NONE:
	case CONF_CHAR:
	case CONF_STRING:
		break; /* only by a load function */
	}
}

bool
conf_load_section(struct conf_loader *l, const yaml_node_t *n,
                  const struct conf_section *sec, void *base)
{
	yaml_node_t *v[48];
	char key[128];

	if (sec->nkeys > sizeof(v) / sizeof(v[0]))
		abort();
	if (!conf_mapping(l, n, sec->name, sec->keys, sec->nkeys, v))
		return false;
	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct conf_key *k = &sec->keys[i];

		if (k->name == NULL)
			continue;
		snprintf(key, sizeof(key), "%s%s%s", sec->name,
		         *sec->name != '\0' ? "." : "", k->name);
		if (k->load != NULL)
			k->load(l, v[i], key, base);
		else if (v[i] != NULL || k->type == CONF_SECTION)
			conf_load_key(l, v[i], key, k, base);
	}
	if (sec->check != NULL)
		sec->check(l, n, v, base);
	return true;
}
