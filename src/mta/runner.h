/*
 * The queue runner (R3.3): one unprivileged child of the parent that
 * delivers what the workers put in queue/incoming to the rest of the
 * internet — by MX (net/dns.c) or through a smarthost — with the SMTP
 * client (mta/smtp_client.c), retries with backoff (mta/schedule.c), and
 * reports failures, delays and (when asked) successes to the sender
 * (mta/bounce.c, mail/dsn.c). How its files divide the work:
 * mta/runner_private.h.
 *
 * Queue directories (docs/queue-format.md):
 *	incoming/  new mail; picked up at once (inotify), oldest first
 *	active/    being delivered by this process; at start, whatever a
 *		   previous runner left here goes back to incoming/
 *	deferred/  waiting for the next attempt (queue/state/<id>: when,
 *		   and which recipients are done)
 *	hold/      left alone until released
 *
 * A message's recipients are grouped by destination (the recipient
 * domain, or the smarthost); each destination has its queue of jobs and
 * up to outbound.max_per_domain connections (outbound.max_connections in
 * all), each connection taking jobs until none is left. At-least-once:
 * a recipient whose delivery was answered 250 is recorded done before
 * the message is deferred, but a crash between the peer's 250 and that
 * record delivers to it again.
 *
 * The control socket (mta/control.h) takes the `godwit queue` commands:
 * flush, hold, release, delete.
 */
#ifndef GODWIT_RUNNER_H
#define GODWIT_RUNNER_H

struct config;

/* Smarthost credentials, read by the parent (root) before the fork. */
struct runner_secrets {
	char *user;
	char *pass;
};

/* Reads config->smarthost_credentials ("user:password" on the first
 * line). 0, or -1 with *error_r (caller frees). */
int runner_secrets_load(const struct config *config,
			struct runner_secrets *s, char **error_r);
void runner_secrets_free(struct runner_secrets *s);

/* The process's main loop; returns the exit code. */
int runner_main(const struct config *config,
		const struct runner_secrets *secrets);

#endif
