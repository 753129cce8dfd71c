/* Why a container's process never ran (container.h). The OCI runtime's
 * init reports a failed exec (a 1 MiB environment: "Argument list too
 * long", a missing binary) on the container's stderr, which the shim puts
 * in the CRI log, and exits: the log's first record is then all there is
 * of the runtime's error, and ContainerStatus must carry it. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "container/container.h"

/* The runtime's error is one short record at the very start of the log. */
#define LOG_HEAD 8192

/* The text of a CRI log line ("<time> stderr F <text>"), NULL when the
 * line is not a complete stderr record. */
static char *stderr_text(char *line)
{
	char *p = strchr(line, ' ');

	if (!p || strncmp(p + 1, "stderr F ", 9) != 0)
		return NULL;
	return p + 10;
}

/* Whether path[0..len) names the program the process was to run (the
 * runtime reports it resolved through PATH: "sh" becomes "/bin/sh"). */
static bool names_program(const char *path, size_t len, const char *program)
{
	const char *base = program ? strrchr(program, '/') : NULL;
	size_t blen;

	if (!program || !*program)
		return false;
	base = base ? base + 1 : program;
	blen = strlen(base);
	return len >= blen && memcmp(path + len - blen, base, blen) == 0 &&
	       (len == blen || path[len - blen - 1] == '/');
}

/* crun: {"msg":"exec container process `/bin/sh`: Argument list too long","level":"error",...}
 * runc: exec /bin/sh: argument list too long */
static char *runtime_exec_error(const char *text, const char *program)
{
	static const char crun_prefix[] = "exec container process `";
	const char *path, *end;
	json_t *doc;
	char *msg = NULL;

	if (text[0] == '{' && (doc = json_loads(text, 0, NULL))) {
		const char *m = json_string_value(json_object_get(doc, "msg"));
		const char *level = json_string_value(json_object_get(doc, "level"));

		if (m && level && strcmp(level, "error") == 0 &&
		    strncmp(m, crun_prefix, sizeof(crun_prefix) - 1) == 0) {
			path = m + sizeof(crun_prefix) - 1;
			end = strchr(path, '`');
			if (end && names_program(path, (size_t)(end - path), program))
				msg = strdup(m);
		}
		json_decref(doc);
		return msg;
	}
	if (strncmp(text, "exec ", 5) != 0)
		return NULL;
	path = text + 5;
	end = strstr(path, ": ");
	return end && names_program(path, (size_t)(end - path), program) ? strdup(text) : NULL;
}

char *crid_container_start_failure(const struct crid_container *c)
{
	_cleanup_close_ int fd = -1;
	char buf[LOG_HEAD + 1], *nl, *text;
	ssize_t n;

	if (!c->log_path || !*c->log_path || c->exit_code == 0)
		return NULL;
	fd = open(c->log_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, LOG_HEAD);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	/* Exactly one record: the process's own output would come after. */
	nl = strchr(buf, '\n');
	if (!nl || nl[1] != '\0')
		return NULL;
	*nl = '\0';
	text = stderr_text(buf);
	return text ? runtime_exec_error(text, json_string_value(json_array_get(
							 json_object_get(c->process, "args"), 0)))
		    : NULL;
}
