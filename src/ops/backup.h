/*
 * `godwit backup` and `godwit restore`: the server's state in one archive
 * and back, while the server runs.
 *
 * The archive is a pax tar compressed with gzip (libarchive), written to
 * FILE.tmp, fsynced and renamed to FILE (mode 0600: it holds the keys).
 * Its entries, in this order:
 *
 *	config/<name>           the configuration file (-c), and the files it
 *	config/<sub/dir/file>   names that live below its directory (TLS
 *	                        certificates and keys, smarthost credentials
 *	                        and CA file); files named elsewhere (say
 *	                        /etc/letsencrypt) are listed as not included
 *	data/queue/...          the queue: incoming/, active/, deferred/,
 *	                        hold/ and the state/ file of each message
 *	data/mail/...           every Maildir (new/, cur/, Maildir++ folders;
 *	                        tmp/ is left empty: nothing there got a 250)
 *	data/...                everything else below data_dir: the user
 *	                        database, server-secret, dkim/, dmarc/,
 *	                        filter/, log/ (queue/tmp/ and control/ are left
 *	                        empty)
 *	userdb/<name>           the user database when it lives outside
 *	                        data_dir
 *	MANIFEST                last: "godwit-backup 1", then one line per
 *	                        entry (see backup.c), each file with its
 *	                        SHA-256, size and mode
 *
 * Every SQLite database (a file whose name ends in ".sqlite": the user
 * database, filter/greylist.sqlite) is copied with SQLite's online backup
 * API into memory, so a transaction running meanwhile is either wholly in
 * the copy or not at all; its -wal, -shm and -journal files are left out.
 * Nothing below data_dir is followed: symbolic links, sockets and FIFOs
 * are left out (and counted).
 *
 * The guarantee: every message that got its 250 before the backup started
 * is in the archive (unless it was delivered onward or deleted by its
 * reader meanwhile). A message is durable in a Maildir or in
 * queue/incoming/ before its 250; a queue file only moves forward
 * (incoming -> active -> deferred|hold) and leaves the queue after its
 * local copies are in their Maildirs; a Maildir file only moves from new/
 * to cur/ or changes its flags. So the queue is copied first, a file gone
 * from where it was listed is looked for in the other queue directories
 * (and a Maildir file in new/ and cur/ by its base name), and the
 * Maildirs after. A message that moves from the queue into a Maildir
 * while the backup runs can be in both: after a restore it may be
 * delivered a second time, never lost (at least once, as the queue
 * itself).
 */
#ifndef GODWIT_BACKUP_H
#define GODWIT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

#define BACKUP_MAGIC "godwit-backup 1"

struct backup_stats {
	size_t files;		/* regular files in the archive */
	size_t dirs;
	uint64_t bytes;		/* their content */
	size_t databases;	/* copied with the SQLite backup API */
	size_t moved;		/* found again after a move (new/ -> cur/...) */
	size_t vanished;	/* listed, then gone (delivered, deleted) */
	size_t skipped;		/* links, sockets, FIFOs, odd names */
	char **outside;		/* files the configuration names that are not
				 * included (outside its directory) */
	size_t noutside;
};

/*
 * Writes the archive to path (path.tmp, fsync, rename, fsync of the
 * directory). config->path is the configuration file. 0, or -1 with
 * *error_r (caller frees); nothing is left at path.tmp on failure.
 */
int backup_create(const struct config *config, const char *path,
		  struct backup_stats *st, char **error_r);
void backup_stats_clear(struct backup_stats *st);

struct restore_options {
	const char *archive;
	const char *data_dir;	/* where the data goes */
	const char *config_out;	/* the configuration file to write; NULL:
				 * <parent of data_dir>/<its name>.restored */
	const char *user;	/* the daemon user; NULL: the archived
				 * configuration's */
	bool force;		/* a non-empty data_dir, an existing config */
};

struct restore_result {
	size_t files;
	size_t dirs;
	uint64_t bytes;
	char *config_path;	/* where the configuration went */
	char *old_data_dir;	/* data_dir as the archive has it */
	char *userdb_path;	/* where the user database went, or NULL */
	bool audit;		/* the configuration has audit.enabled */
};

/*
 * Reads the whole archive once and checks it against its MANIFEST (every
 * entry listed, every listed one present, each file's SHA-256 and size)
 * before anything is written; then extracts it. Files get their archived
 * mode; owners follow the data directory's table (store/datadir.h): the
 * daemon user's directories' files are the daemon user's, root's are
 * root's; then datadir_prepare() puts every directory of the layout
 * right. -1 with *error_r: the archive is damaged or not ours, the target
 * is not empty (without force), or a write failed.
 */
int backup_restore(const struct restore_options *o, struct restore_result *res,
		   char **error_r);
void restore_result_clear(struct restore_result *res);

#endif
