/* The error contract of error.h. */
#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
	"OK",		      "CANCELLED",	   "UNKNOWN",	       "INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",  "NOT_FOUND",	   "ALREADY_EXISTS",   "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",	       "OUT_OF_RANGE",
	"UNIMPLEMENTED",      "INTERNAL",	   "UNAVAILABLE",      "DATA_LOSS",
	"UNAUTHENTICATED",
};

const char *crid_status_name(int status)
{
	if (status < 0 || (size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
		return "UNKNOWN";
	return status_names[status];
}

int crid_status_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return CRID_OK;
	case ENOENT:
		return CRID_NOT_FOUND;
	case EEXIST:
		return CRID_ALREADY_EXISTS;
	case EINVAL:
	case ENAMETOOLONG:
		return CRID_INVALID_ARGUMENT;
	case EACCES:
	case EPERM:
		return CRID_PERMISSION_DENIED;
	case ENOMEM:
	case ENOSPC:
	case EMFILE:
	case ENFILE:
		return CRID_RESOURCE_EXHAUSTED;
	case ETIMEDOUT:
		return CRID_DEADLINE_EXCEEDED;
	case ECANCELED:
		return CRID_CANCELLED;
	case ENOSYS:
	case EOPNOTSUPP:
		return CRID_UNIMPLEMENTED;
	default:
		return CRID_INTERNAL;
	}
}

void crid_err_clear(struct crid_err *err)
{
	err->status = CRID_OK;
	err->errnum = 0;
	err->msg[0] = '\0';
}

int crid_err_set(struct crid_err *err, int status, int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	err->status = status;
	err->errnum = errnum;
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		err->msg[0] = '\0';
	if (errnum != 0) {
		size_t len = strlen(err->msg);
		char buf[128];

		snprintf(err->msg + len, sizeof(err->msg) - len, ": %s",
			 strerror_r(errnum, buf, sizeof(buf)));
	}
	return errnum ? -errnum : -EINVAL;
}

int crid_err_wrap(struct crid_err *err, const char *fmt, ...)
{
	char prefix[CRID_ERR_MSG_MAX];
	char old[CRID_ERR_MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n > 0) {
		size_t plen = strnlen(prefix, sizeof(prefix) - 1);
		size_t olen;

		memcpy(old, err->msg, sizeof(old));
		old[sizeof(old) - 1] = '\0';
		olen = strlen(old);
		/* Truncates the inner cause when the whole does not fit. */
		if (plen + olen >= sizeof(err->msg))
			olen = sizeof(err->msg) - 1 - plen;
		memcpy(err->msg, prefix, plen);
		memcpy(err->msg + plen, old, olen);
		err->msg[plen + olen] = '\0';
	}
	return err->errnum ? -err->errnum : -EINVAL;
}

int crid_err_nomem(struct crid_err *err, const char *what)
{
	return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, ENOMEM, "allocate %s", what);
}
