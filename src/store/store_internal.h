/* Shared by the files of the store only: the store itself, and keeping its
 * database file on disk (store_file.c). Nothing outside src/store includes
 * this. */
#ifndef CRID_STORE_INTERNAL_H
#define CRID_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/types.h>

#include "store/store.h"

struct crid_store {
	pthread_mutex_t lock; /* the connection, and everything below */
	sqlite3 *db;
	char *dir;	 /* the state root */
	char *path;	 /* <dir>/crid.db */
	bool was_empty;	 /* the database had no tables when crid opened it */
	ino_t wal_ino;	 /* of <path>-wal while the connection is open, 0 if unknown */
	bool lost;	 /* writing it back failed: said once */
};

/* Notices that the database file (or its WAL) was deleted or replaced
 * since it was opened, says so at error level, and writes the database
 * back from the open connection. Lock held. */
void crid_store_check_locked(struct crid_store *s);

#endif
