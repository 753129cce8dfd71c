/* Clean child start-up (spawn.h). */
#include "common/spawn.h"

#include <signal.h>

int crid_spawn_init(struct crid_spawn *s, short extra_flags)
{
	sigset_t none, all;
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	r = posix_spawnattr_init(&s->attr);
	if (r != 0)
		return r;
	r = posix_spawn_file_actions_init(&s->actions);
	if (r != 0) {
		posix_spawnattr_destroy(&s->attr);
		return r;
	}
	if ((r = posix_spawnattr_setsigmask(&s->attr, &none)) == 0 &&
	    (r = posix_spawnattr_setsigdefault(&s->attr, &all)) == 0)
		r = posix_spawnattr_setflags(&s->attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extra_flags);
	if (r != 0)
		crid_spawn_destroy(s);
	return r;
}

void crid_spawn_destroy(struct crid_spawn *s)
{
	posix_spawn_file_actions_destroy(&s->actions);
	posix_spawnattr_destroy(&s->attr);
}
