/* The database file of the store (store_internal.h): created 0600, opened
 * with the schema in place, and kept on disk. SQLite holds its files open,
 * so a crid.db deleted while crid runs goes unnoticed and every later write
 * is lost at the next start: each use of the store looks first, and writes
 * the database back from the open connection when it is gone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "store/store_internal.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS images ("
	" id TEXT PRIMARY KEY,"
	" manifest_digest TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" pulled_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS image_names ("
	" name TEXT PRIMARY KEY,"
	" image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	" is_digest INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS image_names_by_image ON image_names(image_id);"
	"CREATE TABLE IF NOT EXISTS layers ("
	" chain_id TEXT PRIMARY KEY,"
	" diff_id TEXT NOT NULL,"
	" blob_digest TEXT NOT NULL,"
	" blob_size INTEGER NOT NULL,"
	" disk_bytes INTEGER NOT NULL,"
	" disk_inodes INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS image_layers ("
	" image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	" position INTEGER NOT NULL,"
	" chain_id TEXT NOT NULL REFERENCES layers(chain_id),"
	" PRIMARY KEY (image_id, position));"
	"CREATE INDEX IF NOT EXISTS image_layers_by_chain ON image_layers(chain_id);"
	"CREATE TABLE IF NOT EXISTS objects ("
	" kind TEXT NOT NULL,"
	" id TEXT NOT NULL,"
	" config BLOB NOT NULL,"
	" state TEXT NOT NULL,"
	" PRIMARY KEY (kind, id));"
	"CREATE TABLE IF NOT EXISTS layer_users ("
	" user_id TEXT NOT NULL,"
	" chain_id TEXT NOT NULL,"
	" PRIMARY KEY (user_id, chain_id));"
	/* Layers a pull is about to put in place, until its image is
	 * recorded: at start-up, such a layer is an interrupted pull's, while
	 * a layer neither recorded nor pending is one the database lost. */
	"CREATE TABLE IF NOT EXISTS pending_layers ("
	" chain_id TEXT PRIMARY KEY);";

static const char *const db_files[] = { "crid.db", "crid.db-wal", "crid.db-shm", "crid.db-journal" };

/* The database holds every container's environment: 0600, and so its WAL
 * and shared memory files, which SQLite creates with the database's mode.
 * An older installation's files are fixed here. */
static int make_db_private(const char *state_root, struct crid_err *err)
{
	_cleanup_close_ int dirfd = open(state_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = -1;

	if (dirfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", state_root);
	fd = openat(dirfd, "crid.db", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s/crid.db", state_root);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(db_files); i++)
		if (crid_make_private_at(dirfd, db_files[i], err) < 0)
			return crid_err_wrap(err, "%s: ", state_root);
	return 0;
}

static ino_t wal_inode(const struct crid_store *s)
{
	char wal[4096];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	return stat(wal, &st) == 0 ? st.st_ino : 0;
}

/* Opens the connection: WAL, foreign keys, the schema. */
static int connect_db(struct crid_store *s, struct crid_err *err)
{
	sqlite3_stmt *st = NULL;
	char *msg = NULL;
	int tables = -1;

	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return crid_err_set(err, CRID_INTERNAL, 0, "open %s: %s", s->path,
				    s->db ? sqlite3_errmsg(s->db) : "out of memory");
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		tables = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (tables < 0)
		return crid_err_set(err, CRID_INTERNAL, 0,
				    "read %s: %s (restore it from a backup, or move it away to start with an "
				    "empty one: running containers are kept either way)",
				    s->path, sqlite3_errmsg(s->db));
	s->was_empty = tables == 0;
	/* WAL with synchronous=NORMAL: a commit is durable against a crash of
	 * crid (it is in the kernel's page cache when COMMIT returns) and the
	 * database stays consistent through a crash of the machine, which may
	 * lose the last commits; only checkpoints fsync. What a lost commit
	 * named is what a reboot ends anyway (pods, containers: their record
	 * copies bring them back) or found again (layers: kept and adopted by
	 * the next pull of their image). */
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL,
			 NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		int r = crid_err_set(err, CRID_INTERNAL, 0, "set up %s: %s", s->path, msg ? msg : "unknown error");

		sqlite3_free(msg);
		return r;
	}
	s->wal_ino = wal_inode(s);
	return 0;
}

int crid_store_open(struct crid_store **out, const char *state_root, struct crid_err *err)
{
	struct crid_store *s;
	int r;

	if ((r = make_db_private(state_root, err)) < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return crid_err_nomem(err, "store");
	pthread_mutex_init(&s->lock, NULL);
	s->dir = strdup(state_root);
	if (!s->dir || asprintf(&s->path, "%s/crid.db", state_root) < 0) {
		s->path = NULL;
		crid_store_close(s);
		return crid_err_nomem(err, "database path");
	}
	r = connect_db(s, err);
	if (r < 0) {
		crid_store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void crid_store_close(struct crid_store *s)
{
	if (!s)
		return;
	if (s->db)
		sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s->path);
	free(s);
}

bool crid_store_was_empty(struct crid_store *s)
{
	return s->was_empty;
}

static bool moved(struct crid_store *s)
{
	int has_moved = 0;
	ino_t wal;

	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &has_moved) == SQLITE_OK && has_moved)
		return true;
	wal = wal_inode(s);
	return s->wal_ino && wal != s->wal_ino;
}

/* The current content, from the open connection, into a new file that
 * takes the database's place; then a new connection to it. */
static int write_back(struct crid_store *s, struct crid_err *err)
{
	_cleanup_free_ char *tmp = NULL, *sql = NULL;
	_cleanup_close_ int dirfd = -1;
	char rnd[17], *msg = NULL;
	int r;

	if ((r = crid_random_hex(rnd, 16, err)) < 0)
		return r;
	if (asprintf(&tmp, "%s.restore-%s", s->path, rnd) < 0) {
		tmp = NULL;
		return crid_err_nomem(err, "database path");
	}
	sql = sqlite3_mprintf("VACUUM INTO %Q", tmp);
	if (!sql)
		return crid_err_nomem(err, "database copy");
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		r = crid_err_set(err, CRID_INTERNAL, 0, "copy the database: %s", msg ? msg : "unknown error");
		sqlite3_free(msg);
		unlink(tmp);
		return r;
	}
	sqlite3_free(take_ptr(&sql));
	/* The old files go with the old connection (it removes its WAL by
	 * name: a WAL left at the path would be replayed onto the copy). */
	sqlite3_close(s->db);
	s->db = NULL;
	dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", s->dir);
	for (size_t i = 1; i < CRID_ARRAY_SIZE(db_files); i++)
		unlinkat(dirfd, db_files[i], 0);
	if (chmod(tmp, 0600) < 0 || rename(tmp, s->path) < 0 || fsync(dirfd) < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "put the copy in place");
		unlink(tmp);
		return r;
	}
	return connect_db(s, err);
}

void crid_store_check_locked(struct crid_store *s)
{
	struct crid_err err;

	if (!s->db || !moved(s))
		return;
	log_error("crid.db was deleted or replaced while crid ran: writing it back from crid's open copy; "
		  "do not remove crid's state while it runs",
		  "path", s->path);
	crid_err_clear(&err);
	if (write_back(s, &err) < 0) {
		if (!s->lost)
			log_error("cannot write crid.db back: changes are lost when crid stops", "path", s->path,
				  "error", err.msg);
		s->lost = true;
		return;
	}
	log_error("crid.db written back", "path", s->path);
}

void crid_store_check(struct crid_store *s)
{
	pthread_mutex_lock(&s->lock);
	crid_store_check_locked(s);
	pthread_mutex_unlock(&s->lock);
}
