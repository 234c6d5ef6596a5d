/*
 * Unit tests for mail/attach_name.c: the file-name rules of the
 * attachment filter (a row per name with the verdict and the extension),
 * the name as a reply shows it, and uuencoded files found in text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "mail/attach_name.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct name_row {
	const char *name;
	enum attach_name_verdict v;
	const char *ext;
} name_rows[] = {
	{"setup.exe", ATTACH_NAME_BLOCKED, "exe"},
	{"SETUP.EXE", ATTACH_NAME_BLOCKED, "exe"},
	{"run.Ps1", ATTACH_NAME_BLOCKED, "ps1"},
	{"x.ex_", ATTACH_NAME_BLOCKED, "ex_"},
	{".exe", ATTACH_NAME_BLOCKED, "exe"},
	{"a.msixbundle", ATTACH_NAME_BLOCKED, "msixbundle"},
	/* what Windows drops at the end */
	{"setup.exe.", ATTACH_NAME_BLOCKED, "exe"},
	{"setup.exe . . ", ATTACH_NAME_BLOCKED, "exe"},
	{"setup.exe\t\r\n", ATTACH_NAME_BLOCKED, "exe"},
	/* the last path component */
	{"C:\\Users\\x\\evil.scr", ATTACH_NAME_BLOCKED, "scr"},
	{"dir/sub/evil.js", ATTACH_NAME_BLOCKED, "js"},
	{"evil.exe/readme.txt", ATTACH_NAME_OK, ""},
	/* double extensions */
	{"invoice.pdf.exe", ATTACH_NAME_DOUBLE, "exe"},
	{"Invoice.PDF.Exe", ATTACH_NAME_DOUBLE, "exe"},
	{"scan.jpeg.scr", ATTACH_NAME_DOUBLE, "scr"},
	{"invoice.pdf      .exe", ATTACH_NAME_DOUBLE, "exe"},
	{"v1.2.exe", ATTACH_NAME_DOUBLE, "exe"},
	{"my.long-name.exe", ATTACH_NAME_BLOCKED, "exe"},
	{"report.2024.pdf", ATTACH_NAME_OK, ""},
	{"backup.tar.gz", ATTACH_NAME_OK, ""},
	{"invoice.exe.pdf", ATTACH_NAME_OK, ""},
	/* hidden by bidirectional controls: U+202E, U+202D, U+2067 */
	{"invoice\xe2\x80\xae" "fdp.exe", ATTACH_NAME_HIDDEN, ""},
	{"photo\xe2\x80\xae" "gpj.txt", ATTACH_NAME_HIDDEN, ""},
	{"a\xe2\x80\xad" "b.pdf", ATTACH_NAME_HIDDEN, ""},
	{"a\xe2\x81\xa7" "b.pdf", ATTACH_NAME_HIDDEN, ""},
	/* not controls: U+200C (Persian names), U+2028, a cut sequence */
	{"a\xe2\x80\x8c" "b.pdf", ATTACH_NAME_OK, ""},
	{"a\xe2\x80\xa8" "b.pdf", ATTACH_NAME_OK, ""},
	{"a\xe2\x80", ATTACH_NAME_OK, ""},
	/* harmless */
	{"report.pdf", ATTACH_NAME_OK, ""},
	{"exe", ATTACH_NAME_OK, ""},
	{"noext", ATTACH_NAME_OK, ""},
	{"", ATTACH_NAME_OK, ""},
	{".", ATTACH_NAME_OK, ""},
	{"...", ATTACH_NAME_OK, ""},
	{"file.exe2", ATTACH_NAME_OK, ""},
	{"file.xexe", ATTACH_NAME_OK, ""},
	{"r\xc3\xa9sum\xc3\xa9.txt", ATTACH_NAME_OK, ""},
	{"r\xc3\xa9sum\xc3\xa9.exe", ATTACH_NAME_BLOCKED, "exe"},
	/* an extension too long to be one */
	{"a.exeexeexeexeexeexeexeexeexeexeexe", ATTACH_NAME_OK, ""},
};

static void
test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(name_rows); i++) {
		const struct name_row *r = &name_rows[i];
		char ext[ATTACH_EXT_MAX + 1];
		enum attach_name_verdict v = attach_name_check(
		    r->name, attach_default_extensions,
		    attach_ndefault_extensions, ext);

		if (v != r->v || strcmp(ext, r->ext) != 0)
			fail_msg("'%s': %d '%s', wanted %d '%s'", r->name, v,
				 ext, r->v, r->ext);
	}
}

static void
test_configured_list(void **state)
{
	const char *exts[] = {"txt", "docm"};
	char ext[ATTACH_EXT_MAX + 1];

	(void)state;
	assert_int_equal(attach_name_check("a.TXT", exts, 2, ext),
			 ATTACH_NAME_BLOCKED);
	assert_string_equal(ext, "txt");
	assert_int_equal(attach_name_check("a.exe", exts, 2, ext),
			 ATTACH_NAME_OK);
	assert_int_equal(attach_name_check("a.exe", NULL, 0, ext),
			 ATTACH_NAME_OK);
	/* still refused: the controls hide whatever follows */
	assert_int_equal(attach_name_check("a\xe2\x80\xae" "b", NULL, 0, ext),
			 ATTACH_NAME_HIDDEN);
}

static void
test_default_list(void **state)
{
	(void)state;
	assert_true(attach_ndefault_extensions >= 50);
	for (size_t i = 0; i < attach_ndefault_extensions; i++)
		assert_null(attach_ext_valid(attach_default_extensions[i]));
	assert_non_null(attach_ext_valid(""));
	assert_non_null(attach_ext_valid("e x"));
	assert_non_null(attach_ext_valid("EXE"));
	assert_non_null(attach_ext_valid(".exe"));
	assert_null(attach_ext_valid("ex_"));
}

static void
test_clean(void **state)
{
	char out[ATTACH_NAME_SHOW + 1], big[300];

	(void)state;
	attach_name_clean("invoice.pdf", out);
	assert_string_equal(out, "invoice.pdf");
	attach_name_clean("r\xc3\xa9sum\xc3\xa9 \"x\"\\.exe", out);
	assert_string_equal(out, "r?sum? ?x??.exe");
	attach_name_clean("a\r\nb\x7f\x01.exe", out);
	assert_string_equal(out, "a??b??.exe");
	attach_name_clean("\xe2\x80\xae" "fdp.exe", out);
	assert_string_equal(out, "?fdp.exe");
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 9, "tail.exe", 9);
	attach_name_clean(big, out);
	assert_int_equal(strlen(out), ATTACH_NAME_SHOW);
	assert_non_null(strstr(out, "..."));
	assert_string_equal(out + strlen(out) - 8, "tail.exe");
}

static void
test_uuencode(void **state)
{
	/* "hello world" by Python's binascii.b2a_uu */
	const char *text = "Hi,\n\nbegin 644 evil.exe\n"
			   "+:&5L;&\\@=V]R;&0`\n`\nend\n\nbye\n"
			   "begin 600 second.txt\r\n#86)C\r\n`\r\nend\r\n";
	size_t pos = 0, len;
	unsigned char *data;
	char name[64];
	bool cut;

	(void)state;
	assert_true(uu_next((const unsigned char *)text, strlen(text), &pos,
			    name, sizeof(name), &data, &len, 1000, &cut));
	assert_string_equal(name, "evil.exe");
	assert_int_equal(len, 11);
	assert_memory_equal(data, "hello world", 11);
	assert_false(cut);
	free(data);
	assert_true(uu_next((const unsigned char *)text, strlen(text), &pos,
			    name, sizeof(name), &data, &len, 2, &cut));
	assert_string_equal(name, "second.txt");
	assert_int_equal(len, 0);	/* "abc" is past max: skipped */
	assert_true(cut);
	free(data);
	assert_false(uu_next((const unsigned char *)text, strlen(text), &pos,
			     name, sizeof(name), &data, &len, 1000, &cut));
	/* not begin lines */
	pos = 0;
	text = "begin 6 x\nbegin 644\nbegin x44 y\nbeginning 644 z\n";
	assert_false(uu_next((const unsigned char *)text, strlen(text), &pos,
			     name, sizeof(name), &data, &len, 1000, &cut));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_configured_list),
	    cmocka_unit_test(test_default_list),
	    cmocka_unit_test(test_clean),
	    cmocka_unit_test(test_uuencode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
