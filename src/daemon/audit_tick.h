/*
 * The parent's side of the audit log (store/audit.h): once at start and
 * then at every full hour (local time), the head of the chain goes to
 * the normal log as `fac=audit event=audit-head head=HASH`, so that a
 * log store outside this machine anchors it; and at the first tick of a
 * new local day (or at start, when audit.log was last written on an
 * earlier day) audit.log is rotated to audit.log.YYYY-MM-DD, named after
 * the day that ended. The parent rotates because it is root: log/ is
 * root's, the daemon user may only append to audit.log.
 */
#ifndef GODWIT_AUDIT_TICK_H
#define GODWIT_AUDIT_TICK_H

#include <sys/types.h>

struct event_base;
struct audit_tick;

/* uid, gid: the owner of each new audit.log (-1: ours). */
struct audit_tick *audit_tick_new(struct event_base *base,
				  const char *data_dir, uid_t uid, gid_t gid);
void audit_tick_free(struct audit_tick **t);

/* The line of a configuration reload (SIGHUP): "config-reload" of path,
 * result "ok" or "refused". */
void audit_tick_reload(const char *data_dir, const char *path,
		       const char *result);

#endif
