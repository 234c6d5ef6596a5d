/*
 * The hash chain of lines: see hashchain.h.
 */
#include <string.h>

#include <openssl/evp.h>

#include "lib/hashchain.h"

void
hashchain_hex(const unsigned char *p, size_t n, char *hex_r)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex_r[2 * i] = digits[p[i] >> 4];
		hex_r[2 * i + 1] = digits[p[i] & 0xf];
	}
	hex_r[2 * n] = '\0';
}

void
hashchain_sha256_hex(const void *p, size_t n, char hex_r[HASHCHAIN_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != HASHCHAIN_HEX_LEN / 2) {
		/* OpenSSL without SHA-256 cannot happen; never a valid hash */
		memset(hex_r, 'x', HASHCHAIN_HEX_LEN);
		hex_r[HASHCHAIN_HEX_LEN] = '\0';
		return;
	}
	hashchain_hex(md, mdlen, hex_r);
}

static bool
is_hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool
hashchain_is_hash(const char *s)
{
	return strlen(s) == HASHCHAIN_HEX_LEN &&
	       is_hex_lower(s, HASHCHAIN_HEX_LEN);
}

int
hashchain_line_prev(const char *line, size_t len,
		    char prev_r[HASHCHAIN_HEX_LEN + 1], const char **why_r)
{
	const size_t hend = HASHCHAIN_PREFIX_LEN + HASHCHAIN_HEX_LEN;

	if (len == 0) {
		*why_r = "empty line";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f) {
			*why_r = "control character in the line";
			return -1;
		}
	}
	if (len < hend + 2 ||
	    memcmp(line, HASHCHAIN_PREFIX, HASHCHAIN_PREFIX_LEN) != 0 ||
	    !is_hex_lower(line + HASHCHAIN_PREFIX_LEN, HASHCHAIN_HEX_LEN) ||
	    line[hend] != '"' ||
	    (line[hend + 1] != ',' && line[hend + 1] != '}')) {
		*why_r = "does not begin with {\"prev\":\"<sha256>\"";
		return -1;
	}
	if (line[len - 1] != '}') {
		*why_r = "does not end with }";
		return -1;
	}
	memcpy(prev_r, line + HASHCHAIN_PREFIX_LEN, HASHCHAIN_HEX_LEN);
	prev_r[HASHCHAIN_HEX_LEN] = '\0';
	return 0;
}

void
hashchain_walk_init(struct hashchain_walk *w)
{
	memset(w, 0, sizeof(*w));
}

int
hashchain_walk_line(struct hashchain_walk *w, const char *line, size_t len,
		    const char **why_r)
{
	char prev[HASHCHAIN_HEX_LEN + 1];

	if (hashchain_line_prev(line, len, prev, why_r) < 0)
		return -1;
	if (!w->any)
		memcpy(w->first_prev, prev, sizeof(prev));
	else if (memcmp(prev, w->head, HASHCHAIN_HEX_LEN) != 0) {
		*why_r = "prev is not the hash of the line before (that line "
			 "was changed, or lines were removed or inserted)";
		return -1;
	}
	hashchain_sha256_hex(line, len, w->head);
	w->any = true;
	w->lines++;
	return 0;
}
