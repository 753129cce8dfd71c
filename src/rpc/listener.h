/* The listening Unix socket and the lock that makes it crid's alone. */
#ifndef CRID_RPC_LISTENER_H
#define CRID_RPC_LISTENER_H

#include "common/error.h"

struct crid_listener {
	int fd;      /* listening, non-blocking */
	int lock_fd; /* flock held on "<socket>.lock" while we serve */
	char *path;
	char *lock_path;
};

int crid_listener_open(struct crid_listener *l, const char *path, struct crid_err *err);

/* Stops listening, removes the socket, releases the lock. */
void crid_listener_close(struct crid_listener *l);

#endif
