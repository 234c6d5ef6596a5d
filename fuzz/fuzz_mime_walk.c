/*
 * libFuzzer target for the attachment walk (filter/attach.h): whole
 * messages through GMime, the name rules, libmagic and libarchive, with
 * the default extension list and small limits (depth 8, 200 parts, 4 MB
 * decoded) so that deep and wide inputs reach them. Invariants, abort()
 * on violation:
 *  - the status is one of the three; a refusal has a reason, 554 5.7.1,
 *    or 552 5.3.4 for the decoded size; a pass has neither;
 *  - the reply text is printable ASCII, starts "Message refused: " and
 *    fits its field;
 *  - the counts stay within the limits plus one (the one that stopped
 *    the walk) and the decoded octets within the limit but for the
 *    last read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter/attach.h"
#include "mail/attach_name.h"

static struct attach_scanner *sc;

static void
check(const struct attach_config *cfg, const struct attach_result *r)
{
	size_t n = strnlen(r->text, sizeof(r->text));

	if (n == sizeof(r->text))
		abort();
	for (size_t i = 0; i < n; i++)
		if (r->text[i] < 0x20 || r->text[i] > 0x7e)
			abort();
	switch (r->status) {
	case ATTACH_OK:
		if (r->reason != NULL || n != 0)
			abort();
		break;
	case ATTACH_REFUSED:
	case ATTACH_LIMIT:
		if (r->reason == NULL || strncmp(r->text, "Message refused: ",
						 17) != 0)
			abort();
		if (!((r->code == 554 && strcmp(r->enh, "5.7.1") == 0) ||
		      (r->code == 552 && strcmp(r->enh, "5.3.4") == 0 &&
		       strcmp(r->reason, "attach-limit-size") == 0)))
			abort();
		break;
	default:
		abort();
	}
	if (r->parts > cfg->max_parts + 1 ||
	    r->decoded > cfg->max_decoded_size + (1 << 20))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct attach_config cfg = {
	    .enabled = true,
	    .blocked_extensions = (char **)attach_default_extensions,
	    .max_depth = 8,
	    .max_parts = 200,
	    .max_decoded_size = 4 << 20,
	};
	struct attach_config c = cfg;
	struct attach_result r;
	char *error = NULL;

	if (sc == NULL && (sc = attach_scanner_new(&error)) == NULL)
		abort();
	c.nblocked_extensions = attach_ndefault_extensions;
	/* the first byte's low bit: the encrypted archive policy */
	c.encrypted_archives = size > 0 && (data[0] & 1)
				   ? ATTACH_ENCRYPTED_ALLOW
				   : ATTACH_ENCRYPTED_REFUSE;
	attach_scan(sc, &c, data, size, &r);
	check(&c, &r);
	return 0;
}
