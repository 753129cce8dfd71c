/* Resource usage of a cgroup, read from cgroup v1 controllers or from the
 * cgroup v2 unified hierarchy, whichever holds each controller on this
 * host. Owns the layout found at start-up and the parsers of the kernel's
 * files; it only reads, never creates, moves or removes a cgroup. */
#ifndef CRID_STATS_CGROUP_H
#define CRID_STATS_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CRID_CGROUP_NO_LIMIT UINT64_MAX

/* One reading; a group of fields is valid only when its has_ flag is. */
struct crid_cgroup_sample {
	int64_t timestamp; /* CLOCK_REALTIME ns, when read */

	bool has_cpu;
	uint64_t cpu_usage_ns; /* cumulative, all cores */

	bool has_memory;
	uint64_t mem_usage;	    /* v1 usage_in_bytes, v2 memory.current */
	uint64_t mem_working_set;   /* usage minus inactive file, as the kubelet counts it */
	uint64_t mem_rss;	    /* v1 total_rss, v2 anon */
	uint64_t mem_limit;	    /* CRID_CGROUP_NO_LIMIT when unlimited */
	uint64_t mem_pgfault;
	uint64_t mem_pgmajfault;

	bool has_swap;
	uint64_t swap_usage;
	uint64_t swap_limit; /* CRID_CGROUP_NO_LIMIT when unlimited */

	bool has_pids;
	uint64_t pids; /* tasks in the cgroup and below */
};

/* Which hierarchy serves a controller. */
enum crid_cgroup_source {
	CRID_CGROUP_NONE = 0,
	CRID_CGROUP_V1,
	CRID_CGROUP_V2,
};

struct crid_cgroup_layout {
	enum crid_cgroup_source cpu, memory, pids;
	int v1_cpu_fd, v1_memory_fd, v1_pids_fd; /* controller roots, -1 when absent */
	int v2_fd;				  /* the unified root, -1 when absent */
	bool v2_memory, v2_pids;		  /* controllers the unified root offers */
};

/* Finds the hierarchies under root ("/sys/fs/cgroup"): a pure v2 mount, v1
 * controllers, and a hybrid host's unified mount (root/unified). Each
 * controller is read from v1 when mounted there, else from v2 when the
 * unified hierarchy has it; cpu usage is always in v2's cpu.stat. */
int crid_cgroup_layout_open(struct crid_cgroup_layout *l, const char *root, struct crid_err *err);
void crid_cgroup_layout_close(struct crid_cgroup_layout *l);

/* Reads the cgroup at path (relative to each hierarchy's root, "/a/b" or
 * "a/b"; ".." refused) into *out, each file once. A controller whose files
 * are missing (the cgroup is gone, or the controller is not enabled there)
 * leaves its has_ flag false: that is no error. */
int crid_cgroup_read(const struct crid_cgroup_layout *l, const char *path, struct crid_cgroup_sample *out,
		     struct crid_err *err);

/* The readers of each version, for tests that aim at one hierarchy. dirfd is
 * the cgroup's own directory. */
void crid_cgroup_v1_read_cpu(int dirfd, struct crid_cgroup_sample *out);
void crid_cgroup_v1_read_memory(int dirfd, struct crid_cgroup_sample *out);
void crid_cgroup_v1_read_pids(int dirfd, struct crid_cgroup_sample *out);
void crid_cgroup_v2_read_cpu(int dirfd, struct crid_cgroup_sample *out);
void crid_cgroup_v2_read_memory(int dirfd, struct crid_cgroup_sample *out);
void crid_cgroup_v2_read_pids(int dirfd, struct crid_cgroup_sample *out);

/* ---- parsers of the kernel's text (cgroup_parse.c), pure ---- */

/* "12345\n" → 12345; "max\n" → CRID_CGROUP_NO_LIMIT. -EINVAL otherwise. */
int crid_cgroup_parse_u64(const char *text, uint64_t *out);

/* The value of key in a flat keyed file ("key value\n" lines: memory.stat,
 * cpu.stat). -ENOENT when absent, -EINVAL when not a number. */
int crid_cgroup_parse_keyed(const char *text, const char *key, uint64_t *out);

/* Lines of text (cgroup.procs): how many non-empty ones. */
uint64_t crid_cgroup_count_lines(const char *text);

/* v1 memory: usage_in_bytes, limit_in_bytes and memory.stat's text, plus
 * memsw files (NULL when absent), into out's memory and swap fields. */
int crid_cgroup_v1_memory_parse(const char *usage, const char *limit, const char *stat, const char *memsw_usage,
				const char *memsw_limit, struct crid_cgroup_sample *out);

/* v2 memory: memory.current, memory.max, memory.stat, and memory.swap.*
 * (NULL when absent). */
int crid_cgroup_v2_memory_parse(const char *current, const char *max, const char *stat, const char *swap_current,
				const char *swap_max, struct crid_cgroup_sample *out);

/* v2 cpu.stat's usage_usec, in ns. */
int crid_cgroup_v2_cpu_parse(const char *cpu_stat, uint64_t *usage_ns);

#endif
