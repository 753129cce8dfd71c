/* The CPU rate of cpu_rate.h. */
#include "stats/cpu_rate.h"

void crid_cpu_rate_init(struct crid_cpu_rate *r)
{
	*r = (struct crid_cpu_rate){ .has_prev = false };
	pthread_mutex_init(&r->lock, NULL);
}

void crid_cpu_rate_destroy(struct crid_cpu_rate *r)
{
	pthread_mutex_destroy(&r->lock);
}

uint64_t crid_cpu_rate_compute(uint64_t prev_usage, uint64_t usage, int64_t interval_ns)
{
	if (interval_ns <= 0 || usage < prev_usage)
		return 0;
	/* In floating point: the product overflows 64 bits after an hour of a core. */
	return (uint64_t)((double)(usage - prev_usage) * 1e9 / (double)interval_ns);
}

bool crid_cpu_rate_update(struct crid_cpu_rate *r, uint64_t usage_ns, int64_t now_ns, uint64_t *nano_cores)
{
	bool ok;

	pthread_mutex_lock(&r->lock);
	if (r->has_prev && usage_ns < r->prev_usage_ns) {
		r->has_prev = r->has_rate = false; /* a new cgroup under the same name */
	}
	if (!r->has_prev) {
		r->has_prev = true;
		r->prev_usage_ns = usage_ns;
		r->prev_ns = now_ns;
	} else if (now_ns - r->prev_ns >= CRID_CPU_RATE_MIN_INTERVAL_NS) {
		r->rate = crid_cpu_rate_compute(r->prev_usage_ns, usage_ns, now_ns - r->prev_ns);
		r->has_rate = true;
		r->prev_usage_ns = usage_ns;
		r->prev_ns = now_ns;
	}
	ok = r->has_rate;
	*nano_cores = r->rate;
	pthread_mutex_unlock(&r->lock);
	return ok;
}
