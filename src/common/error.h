/* One error contract for all of crid: a function that can fail returns an int,
 * >= 0 on success, a negative errno on failure, and fills the struct crid_err
 * passed last with the gRPC status the failure maps to and a message that
 * reads from outer context to inner cause. Never allocates, so it works when
 * memory is short. */
#ifndef CRID_COMMON_ERROR_H
#define CRID_COMMON_ERROR_H

#include <stddef.h>

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum crid_status {
	CRID_OK = 0,
	CRID_CANCELLED = 1,
	CRID_UNKNOWN = 2,
	CRID_INVALID_ARGUMENT = 3,
	CRID_DEADLINE_EXCEEDED = 4,
	CRID_NOT_FOUND = 5,
	CRID_ALREADY_EXISTS = 6,
	CRID_PERMISSION_DENIED = 7,
	CRID_RESOURCE_EXHAUSTED = 8,
	CRID_FAILED_PRECONDITION = 9,
	CRID_ABORTED = 10,
	CRID_OUT_OF_RANGE = 11,
	CRID_UNIMPLEMENTED = 12,
	CRID_INTERNAL = 13,
	CRID_UNAVAILABLE = 14,
	CRID_DATA_LOSS = 15,
	CRID_UNAUTHENTICATED = 16,
};

#define CRID_ERR_MSG_MAX 1024

struct crid_err {
	int status;  /* enum crid_status */
	int errnum;  /* errno behind the failure, 0 when none */
	char msg[CRID_ERR_MSG_MAX];
};

/* Sets status and message; when errnum is not 0, ": strerror(errnum)" is
 * appended. Returns -errnum, or -EINVAL when errnum is 0. */
int crid_err_set(struct crid_err *err, int status, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prepends context ("pull busybox: " + cause). Returns the same negative value
 * crid_err_set returned for the cause. */
int crid_err_wrap(struct crid_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Out of memory in a request path: RESOURCE_EXHAUSTED naming what was being
 * allocated. Returns -ENOMEM. */
int crid_err_nomem(struct crid_err *err, const char *what);

void crid_err_clear(struct crid_err *err);

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for a value out of range. */
const char *crid_status_name(int status);

/* The status a bare errno maps to when nothing more specific is known. */
int crid_status_from_errno(int errnum);

#endif
