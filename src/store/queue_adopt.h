/*
 * `godwit queue adopt DIR`: the queue of another node (its data_dir, or
 * its queue/ directory, mounted here after the machine was lost) moved
 * into this node's queue, so that this node's runner delivers it.
 *
 * Each message is checked (queue_envelope_read(): a torn or foreign file
 * is reported and left where it is), staged in this node's queue/adopt/
 * and made durable, recorded there, committed into queue/incoming/ (or
 * hold/ for held mail), and only then removed at the source. The record
 * (queue/adopt/<srcid>.<id>.t, holding the SHA-256 of the source file)
 * lives until the source is gone, so a crash anywhere leaves each message
 * at the source, here, or both with the record that says so: running
 * adopt again finishes the job and never delivers a message twice.
 *
 * Mail that was active (being delivered when the node died) and deferred
 * mail are delivered again at once: a recipient the dead node reached
 * after its last state file was written may get the message twice (the
 * same at-least-once rule as a restart of one node); recipients the
 * state file marks done or failed are not tried again. A message whose
 * id exists here gets a new one (ids are unique per node only).
 */
#ifndef GODWIT_QUEUE_ADOPT_H
#define GODWIT_QUEUE_ADOPT_H

#include <stddef.h>

enum queue_adopt_what {
	ADOPT_MOVED,	/* moved here (id may be new) */
	ADOPT_FINISHED,	/* an earlier, interrupted adopt's: finished */
	ADOPT_TORN,	/* not a good queue file: left at the source */
	ADOPT_FAILED,	/* an I/O error: left (or finished next time) */
};

struct queue_adopt_stats {
	size_t moved, finished, torn, failed;
};

/* Called once per source message: what happened, the source state
 * directory and id (for a torn file: its name), the id here (NULL when
 * not moved), the destination state, and why (NULL unless torn or
 * failed). */
typedef void queue_adopt_fn(void *arg, enum queue_adopt_what what,
			    const char *src_state, const char *src_id,
			    const char *id, const char *state,
			    const char *why);

/*
 * Adopts the queue at src (a data_dir holding queue/, or a queue
 * directory) into data_dir's queue. queue_id_init() must have been
 * called (new ids). Fills *st and returns 0 once every message was
 * looked at (torn and failed ones are in *st); -1 with *error_r when src
 * is not a queue, is this node's own, or queue/adopt/ cannot be read.
 */
int queue_adopt(const char *data_dir, const char *src, queue_adopt_fn *fn,
		void *arg, struct queue_adopt_stats *st, char **error_r);

#endif
