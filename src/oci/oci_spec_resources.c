/* linux.resources from CRI LinuxContainerResources, for CreateContainer and
 * UpdateContainerResources, and back (what ContainerStatus reports). Checked
 * against the host when one is given: cpusets within its online CPUs and
 * memory nodes, swap only where it can be limited, hugepage limits dropped
 * without a hugetlb controller (the kubelet sends a 0 for each page size),
 * unified (cgroup v2 files) as they are on cgroup v2 and turned into their
 * v1 equivalents on v1, where a file with none is refused. Field names in
 * messages are relative to the resources message ("cpu_shares: ..."); callers
 * add the path to it. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define OOM_SCORE_ADJ_MIN (-1000)
#define OOM_SCORE_ADJ_MAX 1000
#define UNIFIED_VALUE_MAX 4096

/* A cpuset list: "0-3,7". Syntax only. */
static bool cpuset_syntax_ok(const char *s)
{
	bool digit = false;

	for (const char *p = s; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			digit = true;
		} else if ((*p == ',' || *p == '-') && digit) {
			digit = false;
		} else {
			return false;
		}
	}
	return digit;
}

struct range {
	unsigned long lo, hi;
};

/* Parses a list into at most max ranges; -1 when malformed or longer. */
static int parse_ranges(const char *s, struct range *v, size_t max)
{
	size_t n = 0;

	while (*s) {
		char *end;

		if (n == max || *s < '0' || *s > '9')
			return -1;
		errno = 0;
		v[n].lo = v[n].hi = strtoul(s, &end, 10);
		if (*end == '-') {
			s = end + 1;
			if (*s < '0' || *s > '9')
				return -1;
			v[n].hi = strtoul(s, &end, 10);
		}
		if (errno || v[n].hi < v[n].lo || (*end && *end != ','))
			return -1;
		n++;
		s = *end ? end + 1 : end;
	}
	return (int)n;
}

/* The first number of the given ranges not in the online ones, or -1. */
static long first_missing(const struct range *given, int n_given, const struct range *online, int n_online)
{
	for (int i = 0; i < n_given; i++) {
		unsigned long c = given[i].lo;

		while (c <= given[i].hi) {
			int k = 0;

			while (k < n_online && !(c >= online[k].lo && c <= online[k].hi))
				k++;
			if (k == n_online)
				return (long)c;
			if (online[k].hi >= given[i].hi)
				break;
			c = online[k].hi + 1;
		}
	}
	return -1;
}

static int check_cpuset(const char *field, const char *what, const char *given, const char *online,
			struct crid_err *err)
{
	struct range g[64], on[256];
	int ng, non;
	long missing;

	if (!given || !*given)
		return 0;
	ng = parse_ranges(given, g, CRID_ARRAY_SIZE(g));
	if (!cpuset_syntax_ok(given) || ng < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: \"%.64s\" is not a list like 0-3,7", field, given);
	non = online ? parse_ranges(online, on, CRID_ARRAY_SIZE(on)) : -1;
	if (non <= 0)
		return 0; /* the host's list is unknown: the kernel decides */
	missing = first_missing(g, ng, on, non);
	if (missing >= 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: %s %ld is not online on this node (online: %s)",
				    field, what, missing, online);
	return 0;
}

static int add_cpu(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host, json_t *res,
		   struct crid_err *err)
{
	json_t *cpu;
	int rc, bad = 0;

	if (r->cpu_shares < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpu_shares: %lld is negative",
				    (long long)r->cpu_shares);
	if (r->cpu_period < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpu_period: %lld is negative",
				    (long long)r->cpu_period);
	if (r->cpu_quota < -1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpu_quota: %lld is negative (-1 is no limit)",
				    (long long)r->cpu_quota);
	if ((rc = check_cpuset("cpuset_cpus", "CPU", r->cpuset_cpus, host ? host->cpus : NULL, err)) < 0 ||
	    (rc = check_cpuset("cpuset_mems", "memory node", r->cpuset_mems, host ? host->mems : NULL, err)) < 0)
		return rc;
	if (!r->cpu_shares && !r->cpu_quota && !r->cpu_period && !(r->cpuset_cpus && *r->cpuset_cpus) &&
	    !(r->cpuset_mems && *r->cpuset_mems))
		return 0;

	cpu = json_object();
	if (json_object_set_new(res, "cpu", cpu) < 0)
		return crid_err_nomem(err, "linux.resources.cpu");
	/* 0 means "not set" in CRI; quota -1 (no limit) is passed through. */
	if (r->cpu_shares)
		bad |= json_object_set_new(cpu, "shares", json_integer(r->cpu_shares));
	if (r->cpu_quota)
		bad |= json_object_set_new(cpu, "quota", json_integer(r->cpu_quota));
	if (r->cpu_period)
		bad |= json_object_set_new(cpu, "period", json_integer(r->cpu_period));
	if (r->cpuset_cpus && *r->cpuset_cpus)
		bad |= json_object_set_new(cpu, "cpus", json_string(r->cpuset_cpus));
	if (r->cpuset_mems && *r->cpuset_mems)
		bad |= json_object_set_new(cpu, "mems", json_string(r->cpuset_mems));
	return bad ? crid_err_nomem(err, "linux.resources.cpu") : 0;
}

static int add_memory(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host, json_t *res,
		      struct crid_err *err)
{
	json_t *mem;
	int bad = 0;

	if (r->memory_limit_in_bytes < -1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "memory_limit_in_bytes: %lld is negative",
				    (long long)r->memory_limit_in_bytes);
	if (r->memory_swap_limit_in_bytes < -1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "memory_swap_limit_in_bytes: %lld is negative",
				    (long long)r->memory_swap_limit_in_bytes);
	/* The kubelet sends a swap limit only where the host can set one. */
	if (r->memory_swap_limit_in_bytes && host && !host->swap)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
				    "memory_swap_limit_in_bytes: this host cannot limit swap (no memory.memsw.* files: "
				    "swap accounting is off)");
	if (!r->memory_limit_in_bytes && !r->memory_swap_limit_in_bytes)
		return 0;
	mem = json_object();
	if (json_object_set_new(res, "memory", mem) < 0)
		return crid_err_nomem(err, "linux.resources.memory");
	if (r->memory_limit_in_bytes)
		bad |= json_object_set_new(mem, "limit", json_integer(r->memory_limit_in_bytes));
	/* The kubelet computes memory+swap itself (NoSwap sends swap equal
	 * to the limit, and only when the host has a swap controller), so
	 * the swap limit is never derived here. */
	if (r->memory_swap_limit_in_bytes)
		bad |= json_object_set_new(mem, "swap", json_integer(r->memory_swap_limit_in_bytes));
	return bad ? crid_err_nomem(err, "linux.resources.memory") : 0;
}

static int add_hugepages(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host, json_t *res,
			 struct crid_err *err)
{
	json_t *a;

	if (r->n_hugepage_limits == 0)
		return 0;
	a = json_array();
	if (!a)
		return crid_err_nomem(err, "linux.resources.hugepageLimits");
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const Runtime__V1__HugepageLimit *h = r->hugepage_limits[i];
		json_t *o;
		int bad = 0;

		if (!h->page_size || !*h->page_size) {
			json_decref(a);
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "hugepage_limits[%zu].page_size is empty", i);
		}
		/* "2MB", "1GB": the name the kernel's hugetlb files use. */
		if (h->page_size[0] < '0' || h->page_size[0] > '9' || strpbrk(h->page_size, "/.") ||
		    strlen(h->page_size) > 8) {
			json_decref(a);
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "hugepage_limits[%zu].page_size: \"%.16s\" is not a size like 2MB", i,
					    h->page_size);
		}
		if (h->limit > (uint64_t)INT64_MAX) {
			json_decref(a);
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "hugepage_limits[%zu].limit is out of range",
					    i);
		}
		o = json_object();
		bad |= json_array_append_new(a, o);
		bad |= json_object_set_new(o, "pageSize", json_string(h->page_size));
		bad |= json_object_set_new(o, "limit", json_integer((json_int_t)h->limit));
		if (bad) {
			json_decref(a);
			return crid_err_nomem(err, "linux.resources.hugepageLimits");
		}
	}
	/* Without a hugetlb controller runc fails on any limit; there is
	 * nothing to limit with, as containerd also concludes. */
	if (host && !host->hugetlb) {
		json_decref(a);
		return 0;
	}
	if (json_object_set_new(res, "hugepageLimits", a) < 0)
		return crid_err_nomem(err, "linux.resources.hugepageLimits");
	return 0;
}

/* ---- unified ---- */

/* "controller.file": lower-case letters, digits, '_' and dots; never a
 * cgroup core file (cgroup.procs would move processes). */
static bool unified_key_ok(const char *k)
{
	const char *dot = strchr(k, '.');
	size_t n = strlen(k);

	return dot && dot != k && dot[1] && n <= 64 && strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_.") == n &&
	       strncmp(k, "cgroup.", 7) != 0;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return *s && !errno && *end == '\0' && *out >= 0 ? 0 : -1;
}

/* One cgroup v2 file in v1 terms, into res. -EINVAL: its value is bad;
 * -ENOENT: v1 has no equivalent. */
static int unified_to_v1(const char *k, const char *v, json_t *res)
{
	json_t *cpu = json_object_get(res, "cpu"), *mem = json_object_get(res, "memory");
	int64_t n, period;
	char quota[32];

	if (strcmp(k, "cpu.weight") == 0 || strcmp(k, "cpu.max") == 0 || strcmp(k, "cpuset.cpus") == 0 ||
	    strcmp(k, "cpuset.mems") == 0) {
		if (!cpu && json_object_set_new(res, "cpu", cpu = json_object()) < 0)
			return -ENOMEM;
	}
	if (strcmp(k, "cpu.weight") == 0) {
		if (parse_i64(v, &n) < 0 || n < 1 || n > 10000)
			return -EINVAL;
		/* The inverse of the shares-to-weight mapping runc and the
		 * kubelet use: 2..262144 onto 1..10000. */
		return json_object_set_new(cpu, "shares", json_integer(2 + ((n - 1) * 262142) / 9999));
	}
	if (strcmp(k, "cpu.max") == 0) {
		int fields = sscanf(v, "%31s %" SCNd64, quota, &period);

		if (fields == 1)
			period = 100000; /* the kernel's default */
		if (fields < 1 || period <= 0)
			return -EINVAL;
		if (strcmp(quota, "max") == 0)
			n = -1;
		else if (parse_i64(quota, &n) < 0 || n == 0)
			return -EINVAL;
		return json_object_set_new(cpu, "quota", json_integer(n)) |
		       json_object_set_new(cpu, "period", json_integer(period));
	}
	if (strcmp(k, "cpuset.cpus") == 0 || strcmp(k, "cpuset.mems") == 0) {
		if (!cpuset_syntax_ok(v))
			return -EINVAL;
		return json_object_set_new(cpu, strcmp(k, "cpuset.cpus") == 0 ? "cpus" : "mems", json_string(v));
	}
	if (strcmp(k, "memory.max") == 0) {
		if (strcmp(v, "max") == 0)
			n = -1;
		else if (parse_i64(v, &n) < 0)
			return -EINVAL;
		if (!mem && json_object_set_new(res, "memory", mem = json_object()) < 0)
			return -ENOMEM;
		return json_object_set_new(mem, "limit", json_integer(n));
	}
	if (strcmp(k, "pids.max") == 0) {
		if (strcmp(v, "max") == 0)
			n = -1;
		else if (parse_i64(v, &n) < 0)
			return -EINVAL;
		return json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)n));
	}
	return -ENOENT;
}

static int add_unified(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host, json_t *res,
		       struct crid_err *err)
{
	json_t *u = NULL;

	for (size_t i = 0; i < r->n_unified; i++) {
		const char *k = r->unified[i]->key ? r->unified[i]->key : "";
		const char *v = r->unified[i]->value ? r->unified[i]->value : "";
		int rc;

		if (!unified_key_ok(k))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unified: \"%.64s\" is not a cgroup v2 file name",
					    k);
		if (strlen(v) > UNIFIED_VALUE_MAX || strchr(v, '\n'))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unified[%s]: the value is not one line", k);
		if (!host || host->cgroup2) {
			if (!u && json_object_set_new(res, "unified", u = json_object()) < 0)
				return crid_err_nomem(err, "linux.resources.unified");
			if (json_object_set_new(u, k, json_string(v)) < 0)
				return crid_err_nomem(err, "linux.resources.unified");
			continue;
		}
		rc = unified_to_v1(k, v, res);
		if (rc == -ENOENT)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "unified[%s]: this host's cgroups are v1, which have no equivalent", k);
		if (rc == -EINVAL)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unified[%s]: \"%.64s\" is not a valid value", k,
					    v);
		if (rc < 0)
			return crid_err_nomem(err, "linux.resources");
	}
	return 0;
}

int crid_spec_resources(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host,
			json_t **out, struct crid_err *err)
{
	json_t *res;
	int rc;

	*out = NULL;
	res = json_object();
	if (!res)
		return crid_err_nomem(err, "linux.resources");
	if (r) {
		rc = add_cpu(r, host, res, err);
		if (rc == 0)
			rc = add_memory(r, host, res, err);
		if (rc == 0)
			rc = add_hugepages(r, host, res, err);
		/* Last: a unified file wins over the field it stands for. */
		if (rc == 0)
			rc = add_unified(r, host, res, err);
		if (rc < 0) {
			json_decref(res);
			return rc;
		}
	}
	*out = res;
	return 0;
}

int crid_spec_oom_score_adj(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host,
			    int64_t *adj, bool *set, struct crid_err *err)
{
	*set = false;
	*adj = 0;
	if (!r || r->oom_score_adj == 0)
		return 0;
	if (r->oom_score_adj < OOM_SCORE_ADJ_MIN || r->oom_score_adj > OOM_SCORE_ADJ_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "oom_score_adj: %lld is not within -1000..1000",
				    (long long)r->oom_score_adj);
	*set = true;
	*adj = r->oom_score_adj;
	/* The kubelet's negative values (guaranteed pods) cannot be had
	 * without CAP_SYS_RESOURCE: the closest the host allows is applied,
	 * and ContainerStatus reports that value. */
	if (host && *adj < host->oom_floor)
		*adj = host->oom_floor;
	return 0;
}

/* ---- the report ---- */

static int64_t int_at(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

void crid_spec_resources_report(json_t *res, json_t *process, struct crid_resources_report *out)
{
	Runtime__V1__LinuxContainerResources *l = &out->linux;
	json_t *cpu = json_object_get(res, "cpu"), *mem = json_object_get(res, "memory");
	json_t *hp = json_object_get(res, "hugepageLimits"), *u = json_object_get(res, "unified"), *v;
	const char *k;
	size_t i;

	runtime__v1__linux_container_resources__init(l);
	l->cpu_shares = int_at(cpu, "shares");
	l->cpu_quota = int_at(cpu, "quota");
	l->cpu_period = int_at(cpu, "period");
	l->cpuset_cpus = (char *)(json_string_value(json_object_get(cpu, "cpus")) ?: "");
	l->cpuset_mems = (char *)(json_string_value(json_object_get(cpu, "mems")) ?: "");
	l->memory_limit_in_bytes = int_at(mem, "limit");
	l->memory_swap_limit_in_bytes = int_at(mem, "swap");
	l->oom_score_adj = int_at(process, "oomScoreAdj");
	json_array_foreach(hp, i, v) {
		if (l->n_hugepage_limits == CRID_ARRAY_SIZE(out->hugepages))
			break;
		runtime__v1__hugepage_limit__init(&out->hugepages[i]);
		out->hugepages[i].page_size = (char *)(json_string_value(json_object_get(v, "pageSize")) ?: "");
		out->hugepages[i].limit = (uint64_t)int_at(v, "limit");
		out->hugepage_ptrs[i] = &out->hugepages[i];
		l->n_hugepage_limits++;
	}
	l->hugepage_limits = out->hugepage_ptrs;
	json_object_foreach(u, k, v) {
		size_t n = l->n_unified;

		if (n == CRID_ARRAY_SIZE(out->unified))
			break;
		runtime__v1__linux_container_resources__unified_entry__init(&out->unified[n]);
		out->unified[n].key = (char *)k;
		out->unified[n].value = (char *)(json_string_value(v) ?: "");
		out->unified_ptrs[n] = &out->unified[n];
		l->n_unified++;
	}
	l->unified = out->unified_ptrs;
}
