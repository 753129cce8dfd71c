#include "common/unix_connect.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"

int crid_unix_connect_in(const char *dir, const char *name, int type)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int s = -1;

	if (dfd < 0)
		return -errno;
	/* "/proc/self/fd/N/" is short whatever dir's length; name is ours. */
	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dfd, name) >=
	    sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -errno;
	return take_fd(&s);
}
