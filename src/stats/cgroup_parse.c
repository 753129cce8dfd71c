/* The parsers of cgroup.h: the kernel's cgroup files as text, into numbers.
 * Pure: no file is opened here, so the unit tests feed them fixture text of
 * both cgroup versions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stats/cgroup.h"

int crid_cgroup_parse_u64(const char *text, uint64_t *out)
{
	const char *p = text;
	uint64_t v = 0;

	if (!text)
		return -EINVAL;
	if (strncmp(p, "max", 3) == 0 && (p[3] == '\0' || p[3] == '\n')) {
		*out = CRID_CGROUP_NO_LIMIT;
		return 0;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p != '\0' && *p != '\n')
		return -EINVAL;
	*out = v;
	return 0;
}

int crid_cgroup_parse_keyed(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	if (!text)
		return -ENOENT;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			return crid_cgroup_parse_u64(line + klen + 1, out);
		if (!end)
			break;
		line = end + 1;
	}
	return -ENOENT;
}

uint64_t crid_cgroup_count_lines(const char *text)
{
	uint64_t n = 0;

	while (text && *text) {
		const char *end = strchr(text, '\n');

		if (*text != '\n')
			n++;
		if (!end)
			break;
		text = end + 1;
	}
	return n;
}

static uint64_t minus(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* A limit of v1 is a huge page-aligned number when unset. */
static uint64_t v1_limit(uint64_t v)
{
	return v >= (UINT64_C(1) << 62) ? CRID_CGROUP_NO_LIMIT : v;
}

int crid_cgroup_v1_memory_parse(const char *usage, const char *limit, const char *stat, const char *memsw_usage,
				const char *memsw_limit, struct crid_cgroup_sample *out)
{
	uint64_t inactive = 0, lim, memsw, memsw_lim;
	int r;

	if ((r = crid_cgroup_parse_u64(usage, &out->mem_usage)) < 0)
		return r;
	if (crid_cgroup_parse_u64(limit, &lim) < 0)
		lim = CRID_CGROUP_NO_LIMIT;
	out->mem_limit = v1_limit(lim);
	/* total_*: this cgroup and its children, as the kubelet reads them. */
	if (crid_cgroup_parse_keyed(stat, "total_inactive_file", &inactive) < 0)
		inactive = 0;
	out->mem_working_set = minus(out->mem_usage, inactive);
	if (crid_cgroup_parse_keyed(stat, "total_rss", &out->mem_rss) < 0)
		out->mem_rss = 0;
	if (crid_cgroup_parse_keyed(stat, "total_pgfault", &out->mem_pgfault) < 0)
		out->mem_pgfault = 0;
	if (crid_cgroup_parse_keyed(stat, "total_pgmajfault", &out->mem_pgmajfault) < 0)
		out->mem_pgmajfault = 0;
	out->has_memory = true;
	/* memsw counts memory plus swap: swap is the difference. */
	if (memsw_usage && crid_cgroup_parse_u64(memsw_usage, &memsw) == 0) {
		out->has_swap = true;
		out->swap_usage = minus(memsw, out->mem_usage);
		out->swap_limit = CRID_CGROUP_NO_LIMIT;
		if (memsw_limit && crid_cgroup_parse_u64(memsw_limit, &memsw_lim) == 0 &&
		    v1_limit(memsw_lim) != CRID_CGROUP_NO_LIMIT)
			out->swap_limit = minus(v1_limit(memsw_lim), out->mem_limit == CRID_CGROUP_NO_LIMIT
									       ? 0
									       : out->mem_limit);
	}
	return 0;
}

int crid_cgroup_v2_memory_parse(const char *current, const char *max, const char *stat, const char *swap_current,
				const char *swap_max, struct crid_cgroup_sample *out)
{
	uint64_t inactive = 0;
	int r;

	if ((r = crid_cgroup_parse_u64(current, &out->mem_usage)) < 0)
		return r;
	if (crid_cgroup_parse_u64(max, &out->mem_limit) < 0)
		out->mem_limit = CRID_CGROUP_NO_LIMIT;
	if (crid_cgroup_parse_keyed(stat, "inactive_file", &inactive) < 0)
		inactive = 0;
	out->mem_working_set = minus(out->mem_usage, inactive);
	if (crid_cgroup_parse_keyed(stat, "anon", &out->mem_rss) < 0)
		out->mem_rss = 0;
	if (crid_cgroup_parse_keyed(stat, "pgfault", &out->mem_pgfault) < 0)
		out->mem_pgfault = 0;
	if (crid_cgroup_parse_keyed(stat, "pgmajfault", &out->mem_pgmajfault) < 0)
		out->mem_pgmajfault = 0;
	out->has_memory = true;
	if (swap_current && crid_cgroup_parse_u64(swap_current, &out->swap_usage) == 0) {
		out->has_swap = true;
		if (!swap_max || crid_cgroup_parse_u64(swap_max, &out->swap_limit) < 0)
			out->swap_limit = CRID_CGROUP_NO_LIMIT;
	}
	return 0;
}

int crid_cgroup_v2_cpu_parse(const char *cpu_stat, uint64_t *usage_ns)
{
	uint64_t usec;
	int r = crid_cgroup_parse_keyed(cpu_stat, "usage_usec", &usec);

	if (r < 0)
		return r;
	if (usec > UINT64_MAX / 1000)
		return -ERANGE;
	*usage_ns = usec * 1000;
	return 0;
}
