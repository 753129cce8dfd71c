/* Starting child programs from crid and crid-shim: posix_spawn with a clean
 * signal state (empty mask, default dispositions). Both processes block or
 * ignore signals (shutdown signals, SIGPIPE, SIGCHLD) that no child may
 * inherit; every fd they own is close-on-exec, so only what the file
 * actions set up reaches the child. */
#ifndef CRID_COMMON_SPAWN_H
#define CRID_COMMON_SPAWN_H

#include <spawn.h>

struct crid_spawn {
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
};

/* extra_flags: more POSIX_SPAWN_* flags (e.g. POSIX_SPAWN_SETSID).
 * Returns 0 or an errno value; on failure nothing needs destroying. */
int crid_spawn_init(struct crid_spawn *s, short extra_flags);
void crid_spawn_destroy(struct crid_spawn *s);

#endif
