/*
 * Tests for the configuration tables (lib/conftab.h): the generic loader
 * on a small table of its own, and godwit's tables against their
 * reference, docs/configuration.md (every key documented there and given
 * a doc line). test_config checks the loaded values and error texts of
 * the real configuration.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "daemon/config.h"
#include "lib/cidr.h"
#include "lib/conftab.h"
#include "lib/xalloc.h"

/* ---- a table of every generic type ------------------------------------- */

struct sample {
	bool flag;
	unsigned count;
	uint64_t size, wait, pause_ms, hidden;
	int colour;
	char *path, *word;
	struct cidr_list nets;
	char **names;
	size_t nnames;
	uint64_t inner;
};

static const char *const colours[] = {"red", "green", "blue"};
static const int colour_values[] = {10, 20, 30};
static const char *const words[] = {"one", "two"};

static const struct conf_key inner_keys[] = {
    {"wait", CONF_DURATION, offsetof(struct sample, inner), .min = 1,
     .max = 60, .range = "1s..1m", .def = 5},
};
static const struct conf_section inner = {"sample.inner", inner_keys, 1,
                                          NULL};

static const struct conf_key sample_keys[] = {
    {"flag", CONF_BOOL, offsetof(struct sample, flag), .def = 1},
    {"count", CONF_UINT, offsetof(struct sample, count), .min = 2, .max = 9,
     .def = 3},
    {"size", CONF_SIZE, offsetof(struct sample, size), .min = 1024,
     .max = 1 << 20, .range = "1K..1M", .def = 4096},
    {"wait", CONF_DURATION, offsetof(struct sample, wait), .min = 1,
     .max = 3600, .range = "1s..1h", .def = 30},
    {"pause", CONF_DURATION_MS, offsetof(struct sample, pause_ms),
     .max = 2000, .range = "0..2s", .def = 250},
    {NULL, CONF_DURATION, offsetof(struct sample, hidden), .def = 7},
    {"colour", CONF_ENUM, offsetof(struct sample, colour), .def = 20,
     .names = colours, .nnames = 3, .values = colour_values,
     .allowed = "red, green, blue"},
    {"path", CONF_PATH, offsetof(struct sample, path), .def_str = "/x"},
    {"word", CONF_ENUM_STR, offsetof(struct sample, word), .names = words,
     .nnames = 2, .allowed = "one, two"},
    {"nets", CONF_CIDRS, offsetof(struct sample, nets)},
    {"names", CONF_STRINGS, offsetof(struct sample, names),
     .offset_n = offsetof(struct sample, nnames), .allowed = "names",
     .lower = true},
    {"inner", CONF_SECTION, .sub = &inner},
};
static const struct conf_section sample = {"sample", sample_keys,
                                           CONF_NKEYS(sample_keys), NULL};

static const struct conf_key top_keys[] = {
    {"sample", CONF_SECTION, .sub = &sample},
};
static const struct conf_section top = {"", top_keys, 1, NULL};

static void
load_top(struct conf_loader *l, const yaml_node_t *n)
{
	conf_load_section(l, n, &top, l->ctx);
}

/* Loads text into s (defaults first); returns the errors or NULL. */
static char *
load(const char *text, struct sample *s)
{
	char *errors = NULL;

	memset(s, 0, sizeof(*s));
	conf_defaults(&top, s);
	if (conf_parse("t.yaml", text, strlen(text), load_top, s, &errors) <
	    0)
		return errors;
	assert_null(errors);
	return NULL;
}

static void
test_defaults(void **state)
{
	struct sample s;

	(void)state;
	assert_null(load("", &s));
	assert_true(s.flag);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.size, 4096);
	assert_int_equal(s.wait, 30);
	assert_int_equal(s.pause_ms, 250);
	assert_int_equal(s.hidden, 7);
	assert_int_equal(s.colour, 20);
	assert_string_equal(s.path, "/x");
	assert_null(s.word);
	assert_int_equal(s.nets.n, 0);
	assert_int_equal(s.nnames, 0);
	assert_int_equal(s.inner, 5);
	conf_free(&top, &s);
	assert_null(s.path);
}

static void
test_values(void **state)
{
	struct sample s;

	(void)state;
	assert_null(load("sample:\n"
	                 "  flag: off\n"
	                 "  count: 9\n"
	                 "  size: 64K\n"
	                 "  wait: 2m\n"
	                 "  pause: 500ms\n"
	                 "  colour: blue\n"
	                 "  path: /var/x\n"
	                 "  word: two\n"
	                 "  nets: [192.0.2.0/24, \"2001:db8::/32\"]\n"
	                 "  names: [Example.COM., b.test]\n"
	                 "  inner: {wait: 1m}\n",
	                 &s));
	assert_false(s.flag);
	assert_int_equal(s.count, 9);
	assert_int_equal(s.size, 65536);
	assert_int_equal(s.wait, 120);
	assert_int_equal(s.pause_ms, 500);
	assert_int_equal(s.colour, 30);
	assert_string_equal(s.path, "/var/x");
	assert_string_equal(s.word, "two");
	assert_int_equal(s.nets.n, 2);
	assert_int_equal(s.nnames, 2);
	assert_string_equal(s.names[0], "example.com");
	assert_string_equal(s.names[1], "b.test");
	assert_int_equal(s.inner, 60);
	conf_free(&top, &s);
	assert_null(s.names);
	assert_int_equal(s.nnames, 0);
}

/* Every error of a section at once, in file order, and the values that
 * were wrong keep their defaults. */
static void
test_errors(void **state)
{
	struct sample s;
	char *errors;

	(void)state;
	errors = load("sample:\n"
	              "  count: 10\n"
	              "  size: 1M1\n"
	              "  colour: purple\n"
	              "  nope: 1\n"
	              "  count: 4\n"
	              "  inner: {wait: 0}\n"
	              "  pause: 3s\n",
	              &s);
	assert_non_null(errors);
	assert_string_equal(
	    errors,
	    "t.yaml:2: sample.count: '10' is out of range (2..9)\n"
	    "t.yaml:3: sample.size: invalid size (use e.g. 512, 64K, 25M, 1G)\n"
	    "t.yaml:4: sample.colour: 'purple' is not one of red, green, "
	    "blue\n"
	    "t.yaml:5: unknown key 'nope' in sample\n"
	    "t.yaml:6: duplicate key 'count' in sample (first on line 2)\n"
	    "t.yaml:7: sample.inner.wait: '0' is out of range (1s..1m)\n"
	    "t.yaml:8: sample.pause: '3s' is out of range (0..2s)");
	assert_int_equal(s.count, 3);
	assert_int_equal(s.colour, 20);
	free(errors);
	conf_free(&top, &s);
}

/* ---- godwit's tables and their reference --------------------------------- */

struct doc_check {
	char *text;
	unsigned keys;
	unsigned missing;
};

static void
check_documented(const char *key, const char *doc, void *arg)
{
	struct doc_check *d = arg;
	char quoted[160];

	d->keys++;
	snprintf(quoted, sizeof(quoted), "`%s`", key);
	if (strstr(d->text, quoted) == NULL || doc == NULL || *doc == '\0') {
		print_error("%s: %s\n", key,
		            doc == NULL ? "no doc line in its table"
		                        : "not in docs/configuration.md");
		d->missing++;
	}
}

static void
test_keys_documented(void **state)
{
	struct doc_check d = {0};
	size_t len;
	FILE *f;

	(void)state;
	f = fopen("docs/configuration.md", "r");
	assert_non_null(f);
	d.text = xmalloc(1 << 20);
	len = fread(d.text, 1, (1 << 20) - 1, f);
	d.text[len] = '\0';
	fclose(f);
	config_keys(check_documented, &d);
	assert_true(d.keys > 90);
	assert_int_equal(d.missing, 0);
	free(d.text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_keys_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
