/*
 * godwit queue list [--json] | show ID | hold|release|delete ID|all
 * [--bounce] | flush: list and show read the queue directories (store/
 * queue.h); the others ask the running daemon over its control socket
 * (mta/control.h), and hold, release and delete move the files
 * themselves when no daemon runs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/strset.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mta/control.h"
#include "store/datadir.h"
#include "store/queue.h"
#include "store/queue_adopt.h"

/* "3d4h", "12m", "40s": a short age for the listing. */
static const char *
fmt_age(int64_t s)
{
	static char buf[32];

	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, sizeof(buf), "%lldd%lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, sizeof(buf), "%lldh%lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, sizeof(buf), "%lldm", (long long)(s / 60));
	else
		snprintf(buf, sizeof(buf), "%llds", (long long)s);
	return buf;
}

static void
list_one(const struct config *config, const char *state,
	 const struct queue_envelope *e, bool json)
{
	static const char *const names[] = {"pending", "done", "failed"};
	struct queue_state st;
	char *err = NULL;
	int64_t now = (int64_t)time(NULL);

	if (queue_state_read(config->data_dir, e->id, e->nrcpts, &st, &err) <
	    0) {
		fprintf(stderr, "godwit: %s\n", err);
		free(err);
	}
	if (json) {
		printf("{\"id\":\"%s\",\"state\":\"%s\",\"arrival\":%lld,"
		       "\"sender\":",
		       e->id, state, (long long)e->arrival);
		cli_json_str(stdout, e->sender);
		printf(",\"size\":%llu,\"attempts\":%u,\"next_attempt\":",
		       (unsigned long long)e->size, st.attempts);
		if (st.attempts > 0 && strcmp(state, "deferred") == 0)
			printf("%lld", (long long)st.next_attempt);
		else
			printf("null");
		printf(",\"last_error\":");
		if (st.last_error[0] != '\0')
			cli_json_str(stdout, st.last_error);
		else
			printf("null");
		printf(",\"recipients\":[");
		for (size_t i = 0; i < e->nrcpts; i++) {
			printf("%s{\"addr\":", i ? "," : "");
			cli_json_str(stdout, e->rcpts[i].addr);
			printf(",\"status\":\"%s\",\"error\":",
			       names[st.status[i]]);
			if (st.errors[i][0] != '\0')
				cli_json_str(stdout, st.errors[i]);
			else
				printf("null");
			putchar('}');
		}
		printf("]}\n");
	} else {
		printf("%-16s %-8s %-8s %-8llu <%s>\n", e->id, state,
		       fmt_age(now - e->arrival), (unsigned long long)e->size,
		       e->sender);
		for (size_t i = 0; i < e->nrcpts; i++) {
			if (st.status[i] == QRS_DONE)
				continue;
			printf("    <%s>%s\n", e->rcpts[i].addr,
			       st.status[i] == QRS_FAILED ? " (failed)" : "");
			if (st.errors[i][0] != '\0')
				printf("        %s\n", st.errors[i]);
		}
		if (st.attempts > 0 && strcmp(state, "deferred") == 0)
			printf("    attempts %u, next in %s\n", st.attempts,
			       fmt_age(st.next_attempt - now));
	}
	queue_state_clear(&st);
}

/*
 * Each state directory is read in turn while the daemon moves files
 * between them (active to deferred after an attempt, deferred to active
 * for the next): a message that moved after its old directory was read
 * and before its new one is seen twice. The listing is a snapshot, each
 * message once, in the state it was first seen in.
 */
static int
queue_list(const struct config *config, bool json)
{
	struct strset seen = {0};
	char **ids = NULL;
	size_t nids = 0;

	if (!json)
		printf("%-16s %-8s %-8s %-8s %s\n", "ID", "STATE", "AGE",
		       "SIZE", "SENDER / RECIPIENTS");
	for (const char *const *s = queue_states; *s != NULL; s++) {
		size_t n;
		char **names = queue_dir_names(config->data_dir, *s, &n);

		for (size_t i = 0; i < n; i++) {
			struct queue_envelope e;
			uint64_t off;
			char *path, *err = NULL;

			path = queue_path(config->data_dir, *s, names[i]);
			if (queue_envelope_read(path, &e, &off, &err) < 0) {
				fprintf(stderr, "godwit: %s\n", err);
				free(err);
			} else {
				if (!strset_contains(&seen, e.id)) {
					ids = xreallocarray(ids, nids + 1,
							    sizeof(*ids));
					ids[nids] = xstrdup(e.id);
					strset_add(&seen, ids[nids++]);
					list_one(config, *s, &e, json);
				}
				queue_envelope_clear(&e);
			}
			free(path);
			free(names[i]);
		}
		free(names);
	}
	if (!json)
		printf("%zu message%s in the queue\n", nids,
		       nids == 1 ? "" : "s");
	strset_clear(&seen);
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	return 0;
}

static int
queue_show(const struct config *config, const char *id)
{
	struct queue_envelope e;
	uint64_t off;
	char *path, *header, *err = NULL;
	int i;

	if (!queue_id_valid(id)) {
		fprintf(stderr, "godwit: %s: not a queue id\n", id);
		return 1;
	}
	if ((i = queue_locate(config->data_dir, id)) < 0) {
		fprintf(stderr, "godwit: %s: no such message in the queue\n",
			id);
		return 1;
	}
	path = queue_path(config->data_dir, queue_states[i], id);
	if (queue_envelope_read(path, &e, &off, &err) < 0) {
		fprintf(stderr, "godwit: %s\n", err);
		free(err);
		free(path);
		return 1;
	}
	printf("id: %s\nstate: %s\narrival: %lld\nclient: %s\n"
	       "helo: %s\nsender: <%s>\nsize: %llu\n",
	       e.id, queue_states[i], (long long)e.arrival, e.client_ip,
	       e.helo, e.sender, (unsigned long long)e.size);
	if (e.auth != NULL && e.auth[0] != '\0')
		printf("user: %s\n", e.auth);
	for (size_t j = 0; j < e.nrcpts; j++)
		printf("recipient: <%s>\n", e.rcpts[j].addr);
	if ((header = queue_message_header(path, off)) != NULL) {
		putchar('\n');
		fputs(header, stdout);
		free(header);
	}
	queue_envelope_clear(&e);
	free(path);
	return 0;
}

/*
 * Sends cmd to the running daemon's queue runner (mta/control.h).
 * Returns its answer (caller frees), or NULL with errno when nobody
 * listens.
 */
static char *
ask_daemon(const struct config *config, const struct control_cmd *cmd)
{
	char *path = control_path(config->data_dir), *answer;
	int saved;

	answer = control_request(path, cmd);
	saved = errno;
	free(path);
	errno = saved;
	return answer;
}

static int
queue_control(const struct config *config, enum control_op cop,
	      const char *target, bool bounce)
{
	struct control_cmd cmd = {cop, target, bounce};
	const char *op = control_op_name(cop);
	char *answer;
	int count = 0;

	if (strcmp(target, "all") != 0 && !queue_id_valid(target)) {
		fprintf(stderr, "godwit: %s: not a queue id\n", target);
		return 1;
	}
	if ((answer = ask_daemon(config, &cmd)) != NULL) {
		int r = strncmp(answer, "ok ", 3) == 0 ? 0 : 1;
		if (r == 0)
			printf("%s: %s message%s\n", op, answer + 3,
			       strcmp(answer + 3, "1") == 0 ? "" : "s");
		else
			fprintf(stderr, "godwit: %s\n",
				strncmp(answer, "error ", 6) == 0 ? answer + 6
								  : answer);
		free(answer);
		return r;
	}
	if (bounce) {
		fprintf(stderr,
			"godwit: delete --bounce needs the running daemon "
			"(%s)\n",
			strerror(errno));
		return 1;
	}
	/* no daemon: the files are ours to move, as the daemon's user, so
	 * that the state files written here stay the runner's to rewrite */
	{
		char *err = NULL;
		if (datadir_become_daemon(config->user, &err) < 0) {
			fprintf(stderr, "godwit: %s\n", err);
			free(err);
			return 1;
		}
	}
	if (strcmp(target, "all") == 0) {
		for (const char *const *s = queue_states; *s != NULL; s++) {
			size_t n;
			char **v = queue_ids(config->data_dir, *s, &n);
			for (size_t i = 0; i < n; i++) {
				if (queue_file_op(config->data_dir, op, v[i]) >
				    0)
					count++;
				free(v[i]);
			}
			free(v);
		}
	} else {
		int r = queue_file_op(config->data_dir, op, target);
		if (r < 0) {
			fprintf(stderr, "godwit: %s: %s\n", target,
				strerror(errno));
			return 1;
		}
		if (r == 0) {
			fprintf(stderr,
				"godwit: %s: no such message (or not one "
				"%s applies to)\n",
				target, op);
			return 1;
		}
		count = 1;
	}
	printf("%s: %d message%s (daemon not running)\n", op, count,
	       count == 1 ? "" : "s");
	return 0;
}

static int
queue_flush(const struct config *config)
{
	struct control_cmd cmd = {CONTROL_FLUSH, NULL, false};
	char *answer = ask_daemon(config, &cmd);

	if (answer == NULL) {
		fprintf(stderr,
			"godwit: queue flush: the daemon is not running "
			"(%s)\n",
			strerror(errno));
		return 1;
	}
	if (strncmp(answer, "ok ", 3) != 0) {
		fprintf(stderr, "godwit: %s\n", answer);
		free(answer);
		return 1;
	}
	printf("flush: %s deferred message%s scheduled now\n", answer + 3,
	       strcmp(answer + 3, "1") == 0 ? "" : "s");
	free(answer);
	return 0;
}

/* queue_id_init() slot of `queue adopt`'s new ids: workers use 0..31,
 * alerts 62, the runner 63 */
#define ADOPT_QUEUE_SLOT 61

static void
adopt_say(void *arg, enum queue_adopt_what what, const char *src_state,
	  const char *src_id, const char *id, const char *state,
	  const char *why)
{
	(void)arg;
	switch (what) {
	case ADOPT_MOVED:
	case ADOPT_FINISHED:
		printf("%s %s/%s -> %s/%s\n",
		       what == ADOPT_MOVED ? "adopted" : "finished", src_state,
		       src_id, state, id);
		break;
	case ADOPT_TORN:
		printf("torn %s/%s: %s (left in place)\n", src_state, src_id,
		       why);
		break;
	case ADOPT_FAILED:
		printf("failed %s/%s: %s (run adopt again)\n", src_state,
		       src_id, why);
		break;
	}
}

/*
 * Another node's queue into ours (store/queue_adopt.h), as the daemon's
 * user so that the files are the runner's; the running daemon's runner
 * sees them arrive in incoming/ (inotify), as it sees accepted mail.
 */
static int
queue_adopt_cmd(const struct config *config, const char *dir)
{
	struct queue_adopt_stats st;
	char *err = NULL;

	if (cli_prepare_layout(config) != 0)
		return 1;
	queue_id_init(ADOPT_QUEUE_SLOT);
	if (datadir_become_daemon(config->user, &err) < 0 ||
	    queue_adopt(config->data_dir, dir, adopt_say, NULL, &st, &err) <
		0) {
		fprintf(stderr, "godwit: queue adopt: %s\n", err);
		free(err);
		return 1;
	}
	printf("adopt %s: %zu moved, %zu finished, %zu torn (left), %zu "
	       "failed\n",
	       dir, st.moved, st.finished, st.torn, st.failed);
	return st.torn > 0 || st.failed > 0 ? 1 : 0;
}

int
cmd_queue(const struct config *config, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return queue_list(config, false);
	if (argc == 3 && strcmp(argv[1], "list") == 0 &&
	    strcmp(argv[2], "--json") == 0)
		return queue_list(config, true);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_show(config, argv[2]);
	if (argc == 2 && strcmp(argv[1], "flush") == 0)
		return queue_flush(config);
	if (argc == 3 && strcmp(argv[1], "adopt") == 0)
		return queue_adopt_cmd(config, argv[2]);
	if (argc == 3 && strcmp(argv[1], "hold") == 0)
		return queue_control(config, CONTROL_HOLD, argv[2], false);
	if (argc == 3 && strcmp(argv[1], "release") == 0)
		return queue_control(config, CONTROL_RELEASE, argv[2], false);
	if (argc == 3 && strcmp(argv[1], "delete") == 0)
		return queue_control(config, CONTROL_DELETE, argv[2], false);
	if (argc == 4 && strcmp(argv[1], "delete") == 0 &&
	    strcmp(argv[3], "--bounce") == 0)
		return queue_control(config, CONTROL_DELETE, argv[2], true);
	fprintf(stderr, "usage: godwit queue list [--json]\n"
			"       godwit queue show ID\n"
			"       godwit queue hold ID|all\n"
			"       godwit queue release ID|all\n"
			"       godwit queue delete ID|all [--bounce]\n"
			"       godwit queue flush\n"
			"       godwit queue adopt DIR\n");
	return 2;
}
