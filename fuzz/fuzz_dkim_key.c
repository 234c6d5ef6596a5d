/*
 * Fuzz the DKIM key-record parser. Checks: an error has a message; a
 * parsed record is revoked exactly when it has no key octets, and its
 * key fits its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dkim_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_keyrec k;
	const char *err = NULL;
	char *s = malloc(size ? size : 1);

	memcpy(s, data, size);
	if (dkim_keyrec_parse(s, size, &k, &err) < 0) {
		if (err == NULL)
			abort();
	} else if (k.revoked != (k.p_len == 0) || k.p_len > sizeof(k.p))
		abort();
	free(s);
	return 0;
}
