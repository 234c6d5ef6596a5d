/*
 * Unit tests for lib/base64.c: the RFC 4648 section 10 vectors both ways,
 * every byte value round-tripped, every character classified, and a table
 * of non-canonical or malformed inputs that the strict decoder must
 * refuse. Output bounds are checked at the exact edge.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "lib/base64.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- RFC 4648 section 10, and a few more ------------------------------- */

static const struct vec {
	const char *bin;
	size_t len;
	const char *text;
} vecs[] = {
	{"", 0, ""},
	{"f", 1, "Zg=="},
	{"fo", 2, "Zm8="},
	{"foo", 3, "Zm9v"},
	{"foob", 4, "Zm9vYg=="},
	{"fooba", 5, "Zm9vYmE="},
	{"foobar", 6, "Zm9vYmFy"},
	/* the last two characters of the alphabet, and NUL bytes */
	{"\xfb\xff", 2, "+/8="},
	{"\xff\xff\xff", 3, "////"},
	{"\x00\x00\x00", 3, "AAAA"},
	{"\x00", 1, "AA=="},
	{"\x00" "alice\x00" "wonderland", 17, "AGFsaWNlAHdvbmRlcmxhbmQ="},
	{"Username:", 9, "VXNlcm5hbWU6"},
	{"Password:", 9, "UGFzc3dvcmQ6"},
};

static void
test_vectors(void **state)
{
	char text[64];
	unsigned char bin[64];
	size_t i;
	ssize_t r;
	char *a;

	(void)state;
	for (i = 0; i < N(vecs); i++) {
		const struct vec *v = &vecs[i];
		size_t tl = strlen(v->text);

		assert_int_equal(base64_encoded_len(v->len), tl);
		r = base64_encode(v->bin, v->len, text, sizeof(text));
		if (r != (ssize_t)tl || strcmp(text, v->text) != 0)
			fail_msg("row %zu: encoded to \"%s\", want \"%s\"", i,
				 text, v->text);
		a = base64_encode_alloc(v->bin, v->len);
		assert_string_equal(a, v->text);
		free(a);

		memset(bin, 0xaa, sizeof(bin));
		r = base64_decode(v->text, tl, bin, sizeof(bin));
		if (r != (ssize_t)v->len || memcmp(bin, v->bin, v->len) != 0)
			fail_msg("row %zu: \"%s\" decoded to %zd bytes", i,
				 v->text, r);
		/* nothing written past the output */
		assert_int_equal(bin[v->len], 0xaa);
	}
}

/* Every byte value in every position of a 3-byte group. */
static void
test_all_bytes(void **state)
{
	unsigned char in[258], out[258];
	char text[400];
	size_t len, i;
	ssize_t r;

	(void)state;
	for (i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	in[256] = 0x80;
	in[257] = 0x7f;
	for (len = 256; len <= 258; len++) {
		r = base64_encode(in, len, text, sizeof(text));
		assert_int_equal(r, (ssize_t)base64_encoded_len(len));
		assert_int_equal(strlen(text), (size_t)r);
		r = base64_decode(text, strlen(text), out, sizeof(out));
		assert_int_equal(r, (ssize_t)len);
		assert_memory_equal(in, out, len);
	}
	/* and shifted, so each byte lands in each position */
	for (i = 0; i < 3; i++) {
		r = base64_encode(in + i, 255, text, sizeof(text));
		assert_true(r > 0);
		r = base64_decode(text, (size_t)r, out, sizeof(out));
		assert_int_equal(r, 255);
		assert_memory_equal(in + i, out, 255);
	}
}

/*
 * Each of the 256 characters in each position of a group: accepted exactly
 * when it is in the alphabet, and mapped to its index.
 */
static void
test_every_char(void **state)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char text[5];
	unsigned char out[3];
	int c, pos;
	ssize_t r;

	(void)state;
	for (c = 0; c < 256; c++) {
		const char *at = c != 0 ? strchr(alphabet, c) : NULL;

		for (pos = 0; pos < 4; pos++) {
			memcpy(text, "AAAA", 5);
			text[pos] = (char)c;
			r = base64_decode(text, 4, out, sizeof(out));
			if (c == '=' && pos == 3) {
				/* "AAA=" is padding, and canonical */
				assert_int_equal(r, 2);
				continue;
			}
			if (at == NULL) {
				if (r != -1)
					fail_msg("char 0x%02x at %d accepted",
						 c, pos);
				continue;
			}
			if (r != 3)
				fail_msg("char '%c' at %d refused", c, pos);
			/* the 24-bit group holds the index at its place */
			{
				unsigned long w = (unsigned long)out[0] << 16 |
						  (unsigned long)out[1] << 8 |
						  out[2];
				unsigned long want = (unsigned long)(at -
								     alphabet)
						     << (18 - 6 * pos);
				assert_int_equal(w, want);
			}
		}
	}
}

/* ---- the strict decoder ------------------------------------------------ */

static const struct bad {
	const char *text;
	size_t len;		/* 0: strlen */
	const char *why;
} bads[] = {
	{"Zg", 0, "no padding"},
	{"Zg=", 0, "short padding"},
	{"Z", 0, "one character"},
	{"Zm9vY", 0, "length not a multiple of 4"},
	{"=", 0, "lone padding"},
	{"====", 0, "only padding"},
	{"Z===", 0, "three padding characters"},
	{"=Zm9", 0, "padding first"},
	{"Zm=v", 0, "padding inside a group"},
	{"Zg==Zg==", 0, "padding before the end"},
	{"Zg==AAAA", 0, "data after padding"},
	{"Zh==", 0, "non-zero bits under == (RFC 4648 3.5)"},
	{"Zm9=", 0, "non-zero bits under ="},
	{"Zm8=\n", 0, "trailing newline"},
	{"Zm9v\r\n", 0, "trailing CRLF"},
	{" Zm9v", 0, "leading space"},
	{"Zm9 v", 0, "inner space"},
	{"Zm9v\tAAA", 0, "tab"},
	{"Zm9v\nYmFy", 0, "line break (MIME style)"},
	{"Zm9-", 0, "URL-safe '-'"},
	{"Zm9_", 0, "URL-safe '_'"},
	{"Zm9.", 0, "dot"},
	{"Zm9\xc3", 0, "8-bit byte"},
	{"Zm9\x80", 0, "8-bit byte"},
	{"Zm9\0", 4, "NUL inside the given length"},
	{"AAA\0", 4, "NUL as the last character"},
	{"*", 0, "SASL cancel is not base64"},
};

static void
test_bad(void **state)
{
	unsigned char out[64];
	size_t i;
	ssize_t r;

	(void)state;
	for (i = 0; i < N(bads); i++) {
		size_t len = bads[i].len ? bads[i].len : strlen(bads[i].text);

		r = base64_decode(bads[i].text, len, out, sizeof(out));
		if (r != -1)
			fail_msg("row %zu (%s): accepted, %zd bytes", i,
				 bads[i].why, r);
	}
}

/* len, not NUL, ends the input; a prefix of a valid text is decoded. */
static void
test_length_bounds_input(void **state)
{
	unsigned char out[8];

	(void)state;
	assert_int_equal(base64_decode("Zm9vYmFyXXXX", 8, out, sizeof(out)), 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(base64_decode("Zm9vYmFy", 4, out, sizeof(out)), 3);
	assert_int_equal(base64_decode("", 0, out, 0), 0);
	assert_int_equal(base64_decode("Zm9v", 0, NULL, 0), 0);
}

static void
test_output_bounds(void **state)
{
	unsigned char out[8];
	char text[16];

	(void)state;
	/* decode: exactly fits, one short */
	assert_int_equal(base64_decode("Zm9vYmE=", 8, out, 5), 5);
	assert_int_equal(base64_decode("Zm9vYmE=", 8, out, 4), -1);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 6), 6);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 5), -1);
	assert_int_equal(base64_decode("Zg==", 4, out, 1), 1);
	assert_int_equal(base64_decode("Zg==", 4, out, 0), -1);

	/* encode: room for the text and its NUL, or nothing written */
	memset(text, 'x', sizeof(text));
	assert_int_equal(base64_encode("foobar", 6, text, 8), -1);
	assert_int_equal(text[0], 'x');
	assert_int_equal(base64_encode("foobar", 6, text, 9), 8);
	assert_string_equal(text, "Zm9vYmFy");
	assert_int_equal(base64_encode("", 0, text, 1), 0);
	assert_string_equal(text, "");
	assert_int_equal(base64_encode("", 0, text, 0), -1);

	assert_int_equal(base64_encoded_len(0), 0);
	assert_int_equal(base64_encoded_len(1), 4);
	assert_int_equal(base64_encoded_len(3), 4);
	assert_int_equal(base64_encoded_len(4), 8);
	assert_int_equal(base64_encoded_len(SIZE_MAX), SIZE_MAX);
	assert_int_equal(base64_decoded_max(0), 0);
	assert_int_equal(base64_decoded_max(4), 3);
	assert_int_equal(base64_decoded_max(7), 3);
	assert_int_equal(base64_decoded_max(8), 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_all_bytes),
		cmocka_unit_test(test_every_char),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_length_bounds_input),
		cmocka_unit_test(test_output_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
