/*
 * godwit backup FILE and godwit restore FILE --data-dir DIR: arguments
 * and printing; the work is ops/backup.c and ops/restore.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/xalloc.h"
#include "ops/backup.h"

static const char usage_backup_text[] = "usage: godwit backup FILE\n";
static const char usage_restore_text[] =
	"usage: godwit restore FILE --data-dir DIR [-c CONFIG] "
	"[--user NAME] [--force]\n";

int
cmd_backup(const struct config *config, int argc, char **argv)
{
	struct backup_stats st;
	char *err = NULL;

	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(usage_backup_text);
	if (backup_create(config, argv[1], &st, &err) < 0)
		return cli_fail_free(&err);
	printf("backup %s: %zu files (%llu bytes), %zu directories, %zu "
	       "databases\n",
	       argv[1], st.files, (unsigned long long)st.bytes, st.dirs,
	       st.databases);
	if (st.moved > 0 || st.vanished > 0)
		printf("  %zu moved while copied (found again), %zu gone "
		       "(delivered or deleted meanwhile)\n",
		       st.moved, st.vanished);
	if (st.skipped > 0)
		printf("  %zu left out: links, sockets or odd names\n",
		       st.skipped);
	for (size_t i = 0; i < st.noutside; i++)
		printf("  not included (outside the configuration's "
		       "directory): %s\n",
		       st.outside[i]);
	{
		/* a mail_dir elsewhere (a store shared by several nodes) is
		 * backed up where it lives, not by each node */
		size_t dl = strlen(config->data_dir);
		if (strncmp(config->mail_dir, config->data_dir, dl) != 0 ||
		    config->mail_dir[dl] != '/')
			printf("  not included: mail_dir %s (outside data_dir: "
			       "back it up on its own)\n",
			       config->mail_dir);
	}
	backup_stats_clear(&st);
	return 0;
}

/* An absolute path for p (restore writes it into the configuration's
 * world, where relative paths would mean something else). */
static char *
absolute(const char *p)
{
	char cwd[4096];

	if (p[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(p);
	return xasprintf("%s/%s", cwd, p);
}

static void
restore_report(const struct restore_options *o,
	       const struct restore_result *res)
{
	printf("restored %s into %s: %zu files (%llu bytes), %zu "
	       "directories; SHA-256 of each checked\n",
	       o->archive, o->data_dir, res->files,
	       (unsigned long long)res->bytes, res->dirs);
	printf("configuration: %s\n", res->config_path);
	if (strcmp(res->old_data_dir, o->data_dir) != 0)
		printf("  it says data_dir: %s: change that to %s before "
		       "`godwit serve`\n",
		       res->old_data_dir, o->data_dir);
	if (res->userdb_path != NULL)
		printf("user database: %s\n", res->userdb_path);
}

int
cmd_restore(const char *config_path, int argc, char **argv)
{
	struct restore_options o = {0};
	struct restore_result res;
	char *dir = NULL, *conf, *err = NULL;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			o.user = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			o.force = true;
		else if (argv[i][0] != '-' && o.archive == NULL)
			o.archive = argv[i];
		else
			return cli_usage(usage_restore_text);
	}
	if (o.archive == NULL || dir == NULL || dir[0] == '\0')
		return cli_usage(usage_restore_text);
	dir = absolute(dir);
	conf = absolute(config_path);
	o.data_dir = dir;
	o.config_out = conf;
	r = backup_restore(&o, &res, &err);
	if (r < 0)
		r = cli_fail_free(&err);
	else {
		restore_report(&o, &res);
		/* the restored chain shows the restore (a failed one left
		 * no tree to write into) */
		if (res.audit) {
			char *archive = absolute(o.archive);
			r = cmd_audit_admin(dir, getuid(), "restore", archive,
					    true);
			free(archive);
		}
	}
	restore_result_clear(&res);
	free(dir);
	free(conf);
	return r;
}
