/*
 * The queue runner's control socket, both halves: the server in the
 * runner's event loop, the client the `godwit queue …` commands use.
 * <data_dir>/control/control.sock (the directory is the runner's,
 * store/datadir.c), owner only. One command per connection, one line
 * each way:
 *	flush			-> "ok N"  (N deferred messages due now)
 *	hold ID|all		-> "ok N" or "error TEXT"
 *	release ID|all		   (N: messages affected)
 *	delete ID|all [bounce]
 */
#ifndef GODWIT_CONTROL_H
#define GODWIT_CONTROL_H

#include <stdbool.h>

struct event_base;

enum control_op { CONTROL_FLUSH, CONTROL_HOLD, CONTROL_RELEASE,
		  CONTROL_DELETE };

struct control_cmd {
	enum control_op op;
	const char *target;	/* a queue id or "all"; NULL for flush */
	bool bounce;		/* delete: report to the sender */
};

/* "flush", "hold", "release", "delete" */
const char *control_op_name(enum control_op op);

/* <data_dir>/control/control.sock (caller frees) */
char *control_path(const char *data_dir);

/* ---- server ---------------------------------------------------------- */

/*
 * Carries out one command and returns how many messages it affected;
 * for one id, 0 answers "no such message".
 */
typedef int control_fn(const struct control_cmd *cmd, void *arg);

struct control;

/* Listens on path (replacing a stale socket); NULL if it cannot (the
 * reason is logged). */
struct control *control_listen(struct event_base *base, const char *path,
			       control_fn *fn, void *arg);
/* Closes the socket, removes its name, and drops clients mid-command. */
void control_free(struct control **ctlp);

/*
 * A command line as the client sends it (without the LF; cut up in
 * place). 0; -1 not a command; -2 the target is not a queue id.
 */
int control_parse(char *line, struct control_cmd *cmd_r);

/* ---- client ---------------------------------------------------------- */

/*
 * Sends cmd to the daemon listening on path and returns its answer line
 * without the LF ("ok 3", "error …"; caller frees), or NULL with errno
 * when nobody listens.
 */
char *control_request(const char *path, const struct control_cmd *cmd);

#endif
