/*
 * libFuzzer target for mail/envelope.c, the queue file's records. The
 * first byte chooses: even, the input after it is an envelope (in a
 * buffer of exactly its size, as store/queue.c hands it over); odd, a
 * state file for (byte >> 1) % 8 recipients (NUL-terminated; input
 * holding a NUL is skipped, as the reader refuses it). What parses must
 * survive a round trip, checked with abort(): the text formatted from
 * it parses again to the same record, and formats to the same text;
 * size is within QUEUE_SIZE_MAX and the header length within the input;
 * an error is a short printable message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/envelope.h"

#define IN_MAX 65536

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_error(const char *error)
{
	size_t n;

	check(error != NULL);
	n = strlen(error);
	check(n > 0 && n < 80);
	for (; *error != '\0'; error++)
		check((unsigned char)*error >= 0x20 &&
		      (unsigned char)*error < 0x7f);
}

static void
same_envelope(const struct queue_envelope *a, const struct queue_envelope *b)
{
	check(strcmp(a->id, b->id) == 0);
	check(a->arrival == b->arrival);
	check(strcmp(a->client_ip, b->client_ip) == 0);
	check(strcmp(a->helo, b->helo) == 0);
	check(strcmp(a->sender, b->sender) == 0);
	check(a->body == b->body);
	check(a->smtputf8 == b->smtputf8);
	check(strcmp(a->ret, b->ret) == 0);
	check(strcmp(a->envid, b->envid) == 0);
	check(a->size == b->size);
	check(a->nrcpts == b->nrcpts);
	for (size_t i = 0; i < a->nrcpts; i++) {
		check(strcmp(a->rcpts[i].addr, b->rcpts[i].addr) == 0);
		check(a->rcpts[i].notify == b->rcpts[i].notify);
		check(strcmp(a->rcpts[i].orcpt, b->rcpts[i].orcpt) == 0);
	}
}

static void
fuzz_envelope(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *text, *text2, *err = NULL;
	struct queue_envelope e, e2;
	size_t hdr_len, len, len2, hdr2;

	memcpy(buf, data, size);
	if (queue_envelope_parse(buf, size, &e, &hdr_len, &err) < 0) {
		check_error(err);
		free(err);
		free(buf);
		return;
	}
	check(hdr_len >= 2 && hdr_len <= size);
	check(buf[hdr_len - 1] == '\n' && buf[hdr_len - 2] == '\n');
	check(e.size <= QUEUE_SIZE_MAX && e.nrcpts > 0);
	check(queue_id_valid(e.id));
	text = queue_envelope_format(&e, &len);
	check(text != NULL);
	check(queue_envelope_parse(text, len, &e2, &hdr2, &err) == 0);
	check(hdr2 == len);
	same_envelope(&e, &e2);
	text2 = queue_envelope_format(&e2, &len2);
	check(len2 == len && memcmp(text, text2, len) == 0);
	free(text2);
	free(text);
	queue_envelope_clear(&e2);
	queue_envelope_clear(&e);
	free(buf);
}

static void
fuzz_state(size_t nrcpts, const uint8_t *data, size_t size)
{
	struct queue_state st, st2;
	const char *why = NULL;
	char *buf, *text;
	size_t len;

	if (memchr(data, '\0', size) != NULL)
		return;
	buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	queue_state_init(&st, nrcpts);
	if (queue_state_parse(buf, &st, &why) < 0) {
		check(why != NULL && *why != '\0');
		queue_state_clear(&st);
		free(buf);
		return;
	}
	text = queue_state_format(&st, &len);
	check(strlen(text) == len);
	queue_state_init(&st2, nrcpts);
	check(queue_state_parse(text, &st2, &why) == 0);
	check(st2.attempts == st.attempts && st2.warned == st.warned);
	check(st2.next_attempt == (st.next_attempt < 0 ? 0 : st.next_attempt));
	check(strcmp(st2.last_error, st.last_error) == 0);
	for (size_t i = 0; i < nrcpts; i++) {
		check(st2.status[i] == st.status[i]);
		check(strcmp(st2.errors[i], st.errors[i]) == 0);
	}
	free(text);
	queue_state_clear(&st2);
	queue_state_clear(&st);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > IN_MAX)
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_envelope(data + 1, size - 1);
	else
		fuzz_state((size_t)(data[0] >> 1) % 8, data + 1, size - 1);
	return 0;
}
