/* A budget of events per time window, for log lines a hostile or broken
 * client could otherwise repeat without end. Not thread-safe: each limiter
 * belongs to one thread (the event loop's). */
#ifndef CRID_COMMON_RATELIMIT_H
#define CRID_COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct crid_ratelimit {
	int64_t interval_ns;
	unsigned burst;
	int64_t window_start_ns;
	unsigned used;
	unsigned suppressed; /* refused since the last event allowed */
};

#define CRID_RATELIMIT_INIT(interval, n) { .interval_ns = (interval), .burst = (n) }

/* Whether one more event may be reported at now_ns. When it may,
 * *suppressed receives how many were refused since the last one allowed
 * (for a "suppressed=N" field) and the count starts again. */
static inline bool crid_ratelimit_allow(struct crid_ratelimit *rl, int64_t now_ns, unsigned *suppressed)
{
	if (rl->used == 0 || now_ns - rl->window_start_ns >= rl->interval_ns) {
		rl->window_start_ns = now_ns;
		rl->used = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return false;
	}
	rl->used++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

#endif
