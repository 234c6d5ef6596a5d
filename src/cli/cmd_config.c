/*
 * godwit config check: the configuration loads (main.c has done that),
 * and the certificates, keys and cipher lists load as serve loads them;
 * warnings on stderr when nobody would read postmaster's mail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/xalloc.h"
#include "mail/smtp_parse.h"
#include "net/tls.h"
#include "store/recipient.h"
#include "store/userdb.h"

/*
 * config check: where mail for postmaster@hostname and "<postmaster>"
 * goes (RFC 5321 4.5.1 requires someone to read it). A warning on
 * stderr when nobody would: the check still passes.
 */
static void
check_postmaster(const struct config *config)
{
	struct recipient_ctx ctx = {.hostname = config->hostname,
				    .postmaster = config->postmaster};
	struct recipient_result r;
	char *err = NULL;

	if (userdb_open(&config->userdb, true, &ctx.db, &err) < 0 ||
	    userdb_ping(ctx.db, &err) < 0) {
		userdb_close(&ctx.db);
		fprintf(stderr,
			"godwit: warning: postmaster: no user database yet "
			"(%s): mail to postmaster@%s and <postmaster> gets "
			"451 until a domain exists with a postmaster@ "
			"alias\n",
			err, config->hostname);
		free(err);
		return;
	}
	if (config->postmaster != NULL) {
		/* the configured address alone, without the fallback */
		struct recipient_ctx one = ctx;
		one.postmaster = NULL;
		one.hostname = NULL;
		one.trusted = true;
		char *text = xasprintf("<%s>", config->postmaster);
		struct smtp_path path;
		struct smtp_error perr;
		const char *end;
		memset(&r, 0, sizeof(r));
		if (smtp_parse_path(text, false, false, true, &path, &end,
				    &perr) == 0) {
			recipient_resolve(&one, &path.mbox, &r);
			if (r.verdict != RCPT_ACCEPT || r.unowned)
				fprintf(stderr,
					"godwit: warning: postmaster: %s "
					"%s\n",
					config->postmaster,
					r.verdict == RCPT_TEMPFAIL
					    ? "could not be looked up"
					    : "is no user, alias or "
					      "catch-all here");
			recipient_result_clear(&r);
		}
		free(text);
	}
	recipient_postmaster(&ctx, &r);
	if (r.verdict != RCPT_ACCEPT)
		fprintf(stderr,
			"godwit: warning: postmaster: no address resolves "
			"and there is no local domain: mail to "
			"postmaster@%s and <postmaster> (RFC 5321 4.5.1) "
			"gets 451: add a domain and `godwit alias add "
			"postmaster@DOMAIN you@DOMAIN`, or set "
			"`postmaster:`\n",
			config->hostname);
	else if (r.unowned)
		fprintf(stderr,
			"godwit: warning: postmaster: no user, alias or "
			"catch-all receives postmaster mail: mail to "
			"postmaster@%s and <postmaster> (RFC 5321 4.5.1) "
			"goes to the mailbox %s, which nobody reads: `godwit "
			"alias add %s you@...`, or set `postmaster:`\n",
			config->hostname, r.mailboxes[0], r.mailboxes[0]);
	recipient_result_clear(&r);
	userdb_close(&ctx.db);
}

int
cmd_config_check(const struct config *config, const char *path)
{
	SSL_CTX *ctx = NULL;
	char *err = NULL;

	if (tls_ctx_new(&config->tls, config->path, &ctx, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		return 1;
	}
	tls_ctx_free(&ctx);
	check_postmaster(config);
	printf("%s: ok\n", path);
	return 0;
}
