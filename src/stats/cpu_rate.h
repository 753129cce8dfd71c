/* CPU use as a rate: nano-cores from two cumulative readings of a cgroup,
 * crid's own previous sample of the same pod or container. Owns only the
 * previous sample; it never reads a cgroup itself. */
#ifndef CRID_STATS_CPU_RATE_H
#define CRID_STATS_CPU_RATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Readings closer than this keep the rate of the last longer interval: a
 * burst of calls would otherwise report noise. */
#define CRID_CPU_RATE_MIN_INTERVAL_NS 1000000000LL

struct crid_cpu_rate {
	pthread_mutex_t lock;
	bool has_prev, has_rate;
	uint64_t prev_usage_ns;
	int64_t prev_ns; /* when prev_usage_ns was read, CLOCK_MONOTONIC */
	uint64_t rate;	 /* nano-cores over the last interval */
};

void crid_cpu_rate_init(struct crid_cpu_rate *r);
void crid_cpu_rate_destroy(struct crid_cpu_rate *r);

/* Takes a reading (usage at now_ns, monotonic); true with *nano_cores set
 * once two readings far enough apart were seen. */
bool crid_cpu_rate_update(struct crid_cpu_rate *r, uint64_t usage_ns, int64_t now_ns, uint64_t *nano_cores);

/* The pure arithmetic: usage grown over an interval, in nano-cores (0 when
 * the counter went back, as after a restart of the cgroup). */
uint64_t crid_cpu_rate_compute(uint64_t prev_usage, uint64_t usage, int64_t interval_ns);

#endif
