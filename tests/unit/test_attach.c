/*
 * Unit tests for filter/attach.c, the attachment walk (GMime, libmagic,
 * libarchive), over the seed messages of fuzz/corpus/fuzz_mime_walk (made
 * by tests/integration/attach_samples.py): a row per message with the
 * verdict and the reason; then the limits and the encrypted-archive
 * policy on the same messages. tests/integration/test_attachments.py
 * runs the same rules through the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "filter/attach.h"
#include "mail/attach_name.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SEEDS "fuzz/corpus/fuzz_mime_walk/"

static struct attach_scanner *sc;

static const struct row {
	const char *file;
	enum attach_status status;
	const char *reason;	/* NULL for a pass */
	const char *text;	/* the reply's text starts so */
} rows[] = {
	{"blocked_ext.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"setup.exe\" is a blocked file type "
	 "(.exe)"},
	{"double_ext.eml", ATTACH_REFUSED, "double-extension",
	 "Message refused: attachment \"invoice.pdf.exe\" is a blocked file "
	 "type (.exe)"},
	{"rlo.eml", ATTACH_REFUSED, "hidden-extension",
	 "Message refused: attachment \"invoice?fdp.exe\" is a file whose "
	 "name hides its type"},
	{"pe_as_pdf.eml", ATTACH_REFUSED, "executable",
	 "Message refused: attachment \"invoice.pdf\" is an executable ("},
	{"zip_exe.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"docs.zip\" holds \"setup.exe\", a "
	 "blocked file type (.exe)"},
	{"zip_in_zip.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"o.zip\" holds \"e.scr\""},
	{"zip_enc.eml", ATTACH_REFUSED, "encrypted-archive",
	 "Message refused: attachment \"s.zip\" is an encrypted archive"},
	{"7z_enc_hdr.eml", ATTACH_REFUSED, "encrypted-archive",
	 "Message refused: attachment \"s.7z\" is an encrypted archive"},
	{"7z.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"a.7z\" holds \"x.exe\""},
	{"targz.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"a.tgz\" holds \"t.bat\""},
	{"gz.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"a.exe.gz\" holds \"a.exe\""},
	{"rfc2231.eml", ATTACH_REFUSED, "double-extension",
	 "Message refused: attachment \"r?sum.pdf.exe\""},
	{"rfc2047.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"r?sum?.scr\""},
	{"qp.eml", ATTACH_OK, NULL, ""},
	{"nested.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"evil.exe\""},
	{"b64_rfc822.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"evil.exe\""},
	{"uu.eml", ATTACH_REFUSED, "blocked-extension",
	 "Message refused: attachment \"evil.exe\""},
	{"xuu.eml", ATTACH_REFUSED, "executable",
	 "Message refused: attachment \"f.bin\" is an executable ("},
	{"deep.eml", ATTACH_OK, NULL, ""},
	{"many.eml", ATTACH_OK, NULL, ""},
	{"pdf.eml", ATTACH_OK, NULL, ""},
	{"png.eml", ATTACH_OK, NULL, ""},
	{"plain.eml", ATTACH_OK, NULL, ""},
};

static unsigned char *
slurp(const char *name, size_t *len_r)
{
	char path[256];
	unsigned char *buf = malloc(1 << 20);
	FILE *f;

	snprintf(path, sizeof(path), SEEDS "%s", name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("%s: cannot open", path);
	*len_r = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static struct attach_config
config(void)
{
	return (struct attach_config){
	    .enabled = true,
	    .blocked_extensions = (char **)attach_default_extensions,
	    .nblocked_extensions = attach_ndefault_extensions,
	    .encrypted_archives = ATTACH_ENCRYPTED_REFUSE,
	    .max_depth = 20,
	    .max_parts = 1000,
	    .max_decoded_size = 100 << 20,
	};
}

static void
scan(const char *file, const struct attach_config *cfg,
     struct attach_result *r)
{
	size_t len;
	unsigned char *msg = slurp(file, &len);

	attach_scan(sc, cfg, msg, len, r);
	free(msg);
}

static void
test_rules(void **state)
{
	struct attach_config cfg = config();

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *w = &rows[i];
		struct attach_result r;

		scan(w->file, &cfg, &r);
		if (r.status != w->status ||
		    (w->reason == NULL) != (r.reason == NULL) ||
		    (w->reason != NULL && strcmp(r.reason, w->reason) != 0) ||
		    strncmp(r.text, w->text, strlen(w->text)) != 0)
			fail_msg("%s: %d %s '%s'", w->file, r.status,
				 r.reason != NULL ? r.reason : "-", r.text);
		if (r.status != ATTACH_OK &&
		    (r.code != 554 || strcmp(r.enh, "5.7.1") != 0))
			fail_msg("%s: %d %s", w->file, r.code, r.enh);
	}
}

static void
test_limits(void **state)
{
	struct attach_config cfg = config();
	struct attach_result r;

	(void)state;
	cfg.max_depth = 5;
	scan("deep.eml", &cfg, &r);	/* 12 multiparts deep */
	assert_int_equal(r.status, ATTACH_LIMIT);
	assert_string_equal(r.reason, "attach-limit-depth");
	assert_int_equal(r.code, 554);
	cfg = config();
	cfg.max_parts = 30;
	scan("many.eml", &cfg, &r);	/* 60 parts */
	assert_int_equal(r.status, ATTACH_LIMIT);
	assert_string_equal(r.reason, "attach-limit-parts");
	cfg = config();
	cfg.max_decoded_size = 100;
	scan("pdf.eml", &cfg, &r);
	assert_int_equal(r.status, ATTACH_LIMIT);
	assert_string_equal(r.reason, "attach-limit-size");
	assert_int_equal(r.code, 552);
	assert_string_equal(r.enh, "5.3.4");
	assert_string_equal(r.text, "Message refused: too complex to check "
				    "its attachments (decoded size over the "
				    "limit)");
}

static void
test_policies(void **state)
{
	struct attach_config cfg = config();
	struct attach_result r;

	(void)state;
	cfg.encrypted_archives = ATTACH_ENCRYPTED_ALLOW;
	scan("zip_enc.eml", &cfg, &r);
	assert_int_equal(r.status, ATTACH_OK);
	scan("7z_enc_hdr.eml", &cfg, &r);
	assert_int_equal(r.status, ATTACH_OK);
	/* no extension blocked: the content rules stay */
	cfg = config();
	cfg.nblocked_extensions = 0;
	scan("blocked_ext.eml", &cfg, &r);
	assert_int_equal(r.status, ATTACH_OK);
	scan("pe_as_pdf.eml", &cfg, &r);
	assert_int_equal(r.status, ATTACH_REFUSED);
	assert_string_equal(r.reason, "executable");
}

static int
setup(void **state)
{
	char *error = NULL;

	(void)state;
	sc = attach_scanner_new(&error);
	return sc == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	attach_scanner_free(&sc);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_policies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
