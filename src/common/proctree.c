/* Process trees from /proc (proctree.h). */
#include "common/proctree.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"

/* A tree bigger than this is not a probe's: the rest is left alone rather
 * than grown without bound. */
#define MAX_TREE 4096
#define MAX_ROUNDS 32

int crid_proc_stat(pid_t pid, pid_t *ppid, pid_t *pgrp, char *state)
{
	char path[64], buf[512];
	_cleanup_close_ int fd = -1;
	const char *close_paren;
	ssize_t n;
	long parent, group;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	/* "pid (comm) S ppid pgrp ...": comm may hold anything, ')' included. */
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(close_paren + 1, " %c %ld %ld", state, &parent, &group) != 3)
		return -EIO;
	*ppid = (pid_t)parent;
	*pgrp = (pid_t)group;
	return 0;
}

static bool running(pid_t pid)
{
	pid_t ppid, pgrp;
	char state;

	return crid_proc_stat(pid, &ppid, &pgrp, &state) == 0 && state != 'Z' && state != 'X';
}

/* The processes to end, and the process groups that are theirs: a group
 * one of them leads, or one whose leader is no longer running (an OCI
 * runtime's helper that made a session for the command and exited). A
 * group led by anyone else, the container's init say, is never theirs.
 * A group's number is not reused while any member lives, so a leader that
 * is gone cannot be mistaken for a new process. */
struct tree {
	pid_t *pids;
	size_t n;
	pid_t *groups;
	size_t n_groups;
};

static bool in_list(const pid_t *list, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == pid)
			return true;
	return false;
}

static void tree_add(struct tree *t, pid_t pid, pid_t pgrp)
{
	kill(pid, SIGSTOP);
	t->pids[t->n++] = pid;
	if (pgrp > 1 && !in_list(t->groups, t->n_groups, pgrp) && (pgrp == pid || !running(pgrp)))
		t->groups[t->n_groups++] = pgrp;
}

/* One pass over /proc: adds the children of the tree and the members of
 * its groups; returns how many were added. */
static size_t add_members(struct tree *t)
{
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	struct dirent *de;
	size_t added = 0;

	if (!proc)
		return 0;
	while ((de = readdir(proc)) && t->n < MAX_TREE) {
		pid_t pid, ppid, pgrp;
		char state;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (pid_t)strtol(de->d_name, NULL, 10);
		if (in_list(t->pids, t->n, pid) || crid_proc_stat(pid, &ppid, &pgrp, &state) < 0)
			continue;
		if (!in_list(t->pids, t->n, ppid) && !in_list(t->groups, t->n_groups, pgrp))
			continue;
		tree_add(t, pid, pgrp);
		added++;
	}
	return added;
}

int crid_kill_tree(const pid_t *roots, size_t n_roots, int wait_ms)
{
	_cleanup_free_ pid_t *pids = calloc(MAX_TREE, sizeof(*pids));
	_cleanup_free_ pid_t *groups = calloc(MAX_TREE, sizeof(*groups));
	int64_t deadline = crid_monotonic_ns() + (int64_t)wait_ms * 1000000;
	struct tree t = { .pids = pids, .groups = groups };
	int left;

	if (!pids || !groups) {
		/* Without memory, the roots at least. */
		for (size_t i = 0; i < n_roots; i++)
			if (roots[i] > 1)
				kill(roots[i], SIGKILL);
		return 0;
	}
	for (size_t i = 0; i < n_roots && t.n < MAX_TREE; i++) {
		pid_t ppid, pgrp;
		char state;

		if (roots[i] <= 1 || in_list(t.pids, t.n, roots[i]))
			continue;
		if (crid_proc_stat(roots[i], &ppid, &pgrp, &state) < 0)
			pgrp = 0;
		tree_add(&t, roots[i], pgrp);
	}
	for (int round = 0; round < MAX_ROUNDS && t.n > 0 && add_members(&t) > 0; round++)
		;
	for (size_t i = 0; i < t.n; i++)
		kill(t.pids[i], SIGKILL);
	for (;;) {
		struct timespec pause = { 0, 5 * 1000000 };

		left = 0;
		for (size_t i = 0; i < t.n; i++)
			left += running(t.pids[i]);
		if (left == 0 || crid_monotonic_ns() >= deadline)
			break;
		nanosleep(&pause, NULL);
	}
	return left;
}
