/*
 * Fuzz the configuration loader: arbitrary bytes as a YAML file. Exactly
 * one of a config or an error text comes back; a config that loads keeps
 * every documented invariant, and every error line names the file and a
 * line. The same bytes also go to parse_listen_addr.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

static void
check_config(const struct config *c)
{
	if (c->hostname == NULL || c->data_dir == NULL ||
	    c->userdb.backend == NULL)
		abort();
	/* sqlite has a file and no dsn; the network backends a dsn */
	if (strcmp(c->userdb.backend, "sqlite") == 0
		? c->userdb.path == NULL || c->userdb.dsn != NULL
		: c->userdb.dsn == NULL)
		abort();
	if (c->smtp.max_command_line < 512 || c->smtp.max_command_line > 4096 ||
	    c->smtp.max_text_line < 1000 || c->smtp.max_text_line > 65536 ||
	    c->smtp.max_message_size < 1024 || c->smtp.max_recipients < 1 ||
	    c->smtp.timeout_command < 1 || c->smtp.timeout_data_block < 1 ||
	    c->smtp.timeout_data_end < 1)
		abort();
	if ((c->limits.conn_rate_count == 0) != (c->limits.conn_rate_window == 0))
		abort();
	if (c->smtp.recipient_delimiter != '\0' &&
	    strchr("+-_.", c->smtp.recipient_delimiter) == NULL)
		abort();
	if (c->nlisteners < 1)
		abort();
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct config_listener *li = &c->listeners[i];
		if (li->name == NULL || li->naddrs < 1 ||
		    li->greet_pause_ms > 60000)
			abort();
		for (size_t j = 0; j < li->naddrs; j++)
			if (li->addrs[j].text == NULL || li->addrs[j].len == 0)
				abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(li->name, c->listeners[j].name) == 0)
				abort();
	}
}

static void
check_errors(const char *errors)
{
	static const char prefix[] = "fuzz.yaml";
	const char *line = errors;

	for (;;) {
		const char *nl = strchr(line, '\n');
		if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
			abort();
		for (const char *p = line; p != (nl ? nl : p + strlen(p)); p++)
			if ((unsigned char)*p < 0x20)
				abort(); /* file text escaped in messages */
		if (nl == NULL)
			break;
		line = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char *errors = NULL;

	if (config_load_buffer("fuzz.yaml", data, size, &c, &errors) == 0) {
		if (c == NULL || errors != NULL)
			abort();
		check_config(c);
		config_free(&c);
		if (c != NULL)
			abort();
	} else {
		if (c != NULL || errors == NULL)
			abort();
		check_errors(errors);
		free(errors);
	}

	if (size < 128) {
		char s[128];
		struct listen_addr a;
		const char *error;
		memcpy(s, data, size);
		s[size] = '\0';
		if (parse_listen_addr(s, &a, &error) == 0) {
			if (a.text == NULL || strcmp(a.text, s) != 0)
				abort();
			free(a.text);
		}
	}
	return 0;
}
