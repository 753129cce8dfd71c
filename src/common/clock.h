/* Time in nanoseconds: wall clock for what the CRI reports (created_at,
 * finished_at), monotonic for deadlines and durations. */
#ifndef CRID_COMMON_CLOCK_H
#define CRID_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t crid_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t crid_realtime_ns(void)
{
	return crid_clock_ns(CLOCK_REALTIME);
}

static inline int64_t crid_monotonic_ns(void)
{
	return crid_clock_ns(CLOCK_MONOTONIC);
}

#endif
