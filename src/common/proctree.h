/* Ending a tree of processes from the host: what ExecSync started inside a
 * container when its time is up. Reads /proc; never signals a process that
 * is not a descendant of the roots it is given. */
#ifndef CRID_COMMON_PROCTREE_H
#define CRID_COMMON_PROCTREE_H

#include <stddef.h>
#include <sys/types.h>

/* Stops every process descended from roots (roots included) top-down, so
 * that none can fork away while the tree is walked, and every member of a
 * process group one of them leads (an orphan whose parent already exited
 * keeps its group); then kills them all with SIGKILL, and waits up to
 * wait_ms until none is running (gone or a zombie). Returns how many were
 * still running at the end. Roots <= 1 are ignored. */
int crid_kill_tree(const pid_t *roots, size_t n_roots, int wait_ms);

/* From /proc/<pid>/stat: the parent, the process group and the state
 * letter (R, S, Z...); -ENOENT when there is no such process. */
int crid_proc_stat(pid_t pid, pid_t *ppid, pid_t *pgrp, char *state);

#endif
