/*
 * The user database front door: picks the backend named in the
 * configuration and frees what lookups hand back. Callers never name a
 * backend themselves.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/userdb.h"

static const struct userdb_ops *const backends[] = {
	&userdb_sqlite_ops,
	&userdb_pgsql_ops,
	&userdb_mysql_ops,
};

int
userdb_open(const struct userdb_config *udb, bool readonly,
	    struct userdb **db_r, char **error_r)
{
	const char *backend = udb->backend;
	const struct userdb_ops *ops = NULL;
	size_t i;

	*db_r = NULL;
	if (backend == NULL || *backend == '\0')
		backend = "sqlite";
	/* Your own schema, read through the configured queries. */
	if (userdb_queries_set(&udb->queries))
		return userdb_query_ops.open(udb, readonly, db_r, error_r);
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, backend) == 0)
			ops = backends[i];
	if (ops == NULL) {
		*error_r = xasprintf("unknown userdb backend \"%s\"", backend);
		return -1;
	}
	return ops->open(udb, readonly, db_r, error_r);
}

int
userdb_ping(struct userdb *db, char **error_r)
{
	return db->ops->ping != NULL ? db->ops->ping(db, error_r) : 0;
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
