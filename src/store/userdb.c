/*
 * The user database front door: picks the backend named in the
 * configuration and frees what lookups hand back. Callers never name a
 * backend themselves, so adding PostgreSQL later touches only this file.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/userdb.h"

static const struct userdb_ops *const backends[] = {
	&userdb_sqlite_ops,
};

int
userdb_open(const struct userdb_config *udb, bool readonly,
	    struct userdb **db_r, char **error_r)
{
	const char *driver = udb->driver;
	const struct userdb_ops *ops = NULL;
	char *path;
	size_t i;
	int r;

	*db_r = NULL;
	if (driver == NULL || *driver == '\0')
		driver = "sqlite";
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, driver) == 0)
			ops = backends[i];
	if (ops == NULL) {
		*error_r = xasprintf("unknown userdb driver \"%s\"", driver);
		return -1;
	}

	/* The loader fills in the default (<data_dir>/db/godwit.sqlite). */
	if (udb->path != NULL && *udb->path != '\0') {
		path = xstrdup(udb->path);
	} else {
		*error_r = xstrdup("no userdb path configured");
		return -1;
	}
	r = ops->open(path, readonly, db_r, error_r);
	free(path);
	return r;
}

void
userdb_close(struct userdb **db)
{
	if (*db == NULL)
		return;
	(*db)->ops->close(*db);
	*db = NULL;
}

void
userdb_alias_list_clear(struct userdb_alias_list *l)
{
	userdb_string_list_free(&l->targets, l->n);
	l->n = 0;
}

void
userdb_string_list_free(char ***list, size_t n)
{
	size_t i;

	if (*list == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
}
