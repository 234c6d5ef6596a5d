/*
 * Configuration tables: a section of a YAML configuration file described
 * once, key by key (name, type, range, default, offset into the section's
 * struct, one line of documentation), and the generic loader that walks a
 * mapping against such a table. The loader collects every error as
 * "file:line: message" instead of stopping at the first, so one check
 * shows all of them; it descends only into the keys a table names, so
 * the depth of the walk is fixed by the tables, whatever the input nests.
 *
 * Keys whose syntax no generic type covers name a load function; the
 * table still gives their storage type and default. Checks across the
 * keys of a section run after them (conf_section.check).
 */
#ifndef GODWIT_CONFTAB_H
#define GODWIT_CONFTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#define CONF_MAX_FILE (1024 * 1024) /* bytes of YAML read at most */
#define CONF_MAX_PATH 4095
#define CONF_SAFE_BUF 80 /* for conf_safe() */

struct conf_loader;
struct conf_section;

enum conf_type {
	CONF_NONE,        /* stored by its load function alone */
	CONF_BOOL,        /* bool: true/false, yes/no, on/off */
	CONF_UINT,        /* unsigned, min..max */
	CONF_SIZE,        /* uint64_t bytes: "10M", "4G"; min..max */
	CONF_DURATION,    /* uint64_t seconds: "30s", "5m", "1d"; min..max */
	CONF_DURATION_MS, /* uint64_t milliseconds: "500ms", "1s"; 0..max */
	CONF_CHAR,        /* char (load function) */
	CONF_STRING,      /* char * (load function) */
	CONF_PATH,        /* char *: not empty, no control characters */
	CONF_FILE,        /* char *: a readable file; "" leaves it unset */
	CONF_CIPHERS,     /* char *: an OpenSSL cipher list's shape */
	CONF_ENUM,        /* int: the index of the word in names, or values[] */
	CONF_ENUM_STR,    /* char *: the word of names chosen */
	CONF_CIDRS,       /* struct cidr_list: ["192.0.2.0/24", ...] */
	CONF_STRINGS,     /* char ** and the size_t at offset_n; each item
	                   * passes check (NULL: any non-empty string) */
	CONF_SECTION,     /* a mapping described by sub, at offset */
};

struct conf_key {
	const char *name; /* NULL: a field only defaulted and freed here
	                   * (set by the load function of another key) */
	enum conf_type type;
	size_t offset;            /* of the field in the section's struct */
	uint64_t min, max;        /* numbers and durations */
	const char *range;        /* min..max as messages say it: "1s..1d" */
	uint64_t def;             /* numbers, bools, chars, CONF_ENUM's value */
	const char *def_str;      /* strings; NULL: none */
	const char *const *names; /* CONF_ENUM(_STR): the words allowed */
	size_t nnames;
	const int *values;   /* CONF_ENUM: stored instead of the index */
	const char *allowed; /* CONF_ENUM(_STR): "kv, json" in messages;
	                      * CONF_STRINGS: what an item is, plural */
	size_t offset_n;     /* CONF_STRINGS: the count */
	bool lower;          /* CONF_STRINGS: lower-cased, no final dot */
	const char *(*check)(const char *s); /* CONF_STRINGS: item check */
	const struct conf_section *sub;      /* CONF_SECTION */
	/* Instead of the generic parser for type: called with the value's
	 * node (NULL when the key is absent), the key as messages name it
	 * ("smtp.recipient_delimiter") and the section's struct. */
	void (*load)(struct conf_loader *l, const yaml_node_t *n,
	             const char *key, void *base);
	const char *doc; /* one line; docs/configuration.md has more */
};

struct conf_section {
	const char *name; /* as messages name it: "smtp.timeouts"; ""
	                   * for the top level */
	const struct conf_key *keys;
	size_t nkeys;
	/* After the keys: checks across them. v[i] is the node of keys[i],
	 * NULL when absent. */
	void (*check)(struct conf_loader *l, const yaml_node_t *map,
	              yaml_node_t *const *v, void *base);
};

#define CONF_NKEYS(a) (sizeof(a) / sizeof((a)[0]))

struct conf_error;

struct conf_loader {
	const char *name; /* the file, in messages */
	yaml_document_t *doc;
	void *ctx; /* the caller's */
	struct conf_error *errs;
	size_t nerrs;
	size_t dropped;   /* errors past the cap */
	int dropped_line; /* line of the first one dropped */
};

/*
 * Parses data (name: the file, in messages) as one YAML document and
 * calls root(l, node) on its root node (NULL for an empty file), with
 * l->ctx = ctx. Returns 0, or -1 with *errors_r set to the errors,
 * "name:line: message" lines in file order (caller frees).
 */
int conf_parse(const char *name, const void *data, size_t len,
               void (*root)(struct conf_loader *l, const yaml_node_t *n),
               void *ctx, char **errors_r);
/* Reads a file of at most CONF_MAX_FILE bytes: 0, or -1 with *errors_r. */
int conf_read_file(const char *path, char **data_r, size_t *len_r,
                   char **errors_r);

/* Sets the table's defaults in base (every field the table names). */
void conf_defaults(const struct conf_section *sec, void *base);
/* Frees the strings, lists and networks the table names in base. */
void conf_free(const struct conf_section *sec, void *base);
/*
 * Loads the mapping n into base by the table; unknown, duplicate and
 * non-string keys are errors. False (with an error) when n is neither a
 * mapping nor null; the keys and the check are then skipped.
 */
bool conf_load_section(struct conf_loader *l, const yaml_node_t *n,
                       const struct conf_section *sec, void *base);
/* One key (n may be NULL: absent) by the generic parser of its type. */
void conf_load_key(struct conf_loader *l, const yaml_node_t *n, const char *key,
                   const struct conf_key *k, void *base);
/* The value nodes of the table's keys in the mapping n (as above). */
bool conf_mapping(struct conf_loader *l, const yaml_node_t *n,
                  const char *where, const struct conf_key *keys, size_t nkeys,
                  yaml_node_t **v);

/* For load functions. */
void conf_error(struct conf_loader *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int conf_line(const yaml_node_t *n);     /* 1 for NULL */
bool conf_is_null(const yaml_node_t *n); /* absent, ~, null or empty */
yaml_node_t *conf_node(struct conf_loader *l, int index);
size_t conf_seq_len(const yaml_node_t *n); /* of a sequence */
yaml_node_t *conf_seq_item(struct conf_loader *l, const yaml_node_t *n,
                           size_t i);
/* The scalar's text, or NULL with "key: expected <expected>". */
const char *conf_scalar(struct conf_loader *l, const yaml_node_t *n,
                        const char *key, const char *expected);
/* s made printable for a message: \xNN escapes, long values cut. */
const char *conf_safe(char buf[CONF_SAFE_BUF], const char *s);
/* The generic parsers of the types above, each on one node. */
void conf_get_bool(struct conf_loader *l, const yaml_node_t *n, const char *key,
                   bool *r);
void conf_get_uint(struct conf_loader *l, const yaml_node_t *n, const char *key,
                   unsigned min, unsigned max, unsigned *r);
void conf_get_duration(struct conf_loader *l, const yaml_node_t *n,
                       const char *key, uint64_t min, uint64_t max,
                       const char *range, uint64_t *r);
int conf_get_enum(struct conf_loader *l, const yaml_node_t *n, const char *key,
                  const char *const *names, size_t count, const char *allowed);
void conf_get_path(struct conf_loader *l, const yaml_node_t *n, const char *key,
                   char **r);
void conf_get_file(struct conf_loader *l, const yaml_node_t *n, const char *key,
                   char **r);
void conf_get_strings(struct conf_loader *l, const yaml_node_t *n,
                      const char *key, const char *expected,
                      const char *(*check)(const char *), bool lower,
                      char ***v_r, size_t *n_r);

#endif
