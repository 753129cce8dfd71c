/* linux.resources from CRI LinuxContainerResources, for CreateContainer and
 * UpdateContainerResources. Pure: the caller decides what the host cannot
 * enforce (crid_spec_build drops hugepage limits without a hugetlb
 * controller). Field names in messages are relative to the resources
 * message ("cpu_shares: ..."); callers add the path to it. */
#include <stdint.h>
#include <string.h>

#include "oci/oci_spec.h"

/* A cpuset list: "0-3,7". Syntax only; the kernel checks the CPUs. */
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

static int add_cpu(const Runtime__V1__LinuxContainerResources *r, json_t *res, struct crid_err *err)
{
	json_t *cpu;
	int bad = 0;

	if (r->cpu_shares < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpu_shares: %lld is negative",
				    (long long)r->cpu_shares);
	if (r->cpu_period < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpu_period: %lld is negative",
				    (long long)r->cpu_period);
	if (r->cpuset_cpus && *r->cpuset_cpus && !cpuset_syntax_ok(r->cpuset_cpus))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpuset_cpus: \"%s\" is not a list like 0-3,7",
				    r->cpuset_cpus);
	if (r->cpuset_mems && *r->cpuset_mems && !cpuset_syntax_ok(r->cpuset_mems))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cpuset_mems: \"%s\" is not a list like 0-1",
				    r->cpuset_mems);
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

static int add_memory(const Runtime__V1__LinuxContainerResources *r, json_t *res, struct crid_err *err)
{
	json_t *mem;
	int bad = 0;

	if (r->memory_limit_in_bytes < -1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "memory_limit_in_bytes: %lld is negative",
				    (long long)r->memory_limit_in_bytes);
	if (r->memory_swap_limit_in_bytes < -1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "memory_swap_limit_in_bytes: %lld is negative",
				    (long long)r->memory_swap_limit_in_bytes);
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

static int add_hugepages(const Runtime__V1__LinuxContainerResources *r, json_t *res, struct crid_err *err)
{
	json_t *a;

	if (r->n_hugepage_limits == 0)
		return 0;
	a = json_array();
	if (json_object_set_new(res, "hugepageLimits", a) < 0)
		return crid_err_nomem(err, "linux.resources.hugepageLimits");
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const Runtime__V1__HugepageLimit *h = r->hugepage_limits[i];
		json_t *o;
		int bad = 0;

		if (!h->page_size || !*h->page_size)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "hugepage_limits[%zu].page_size is empty",
					    i);
		/* "2MB", "1GB": the name the kernel's hugetlb files use. */
		if (h->page_size[0] < '0' || h->page_size[0] > '9' || strpbrk(h->page_size, "/."))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "hugepage_limits[%zu].page_size: \"%s\" is not a size like 2MB", i,
					    h->page_size);
		if (h->limit > (uint64_t)INT64_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "hugepage_limits[%zu].limit is out of range",
					    i);
		o = json_object();
		if (json_array_append_new(a, o) < 0)
			return crid_err_nomem(err, "linux.resources.hugepageLimits");
		bad |= json_object_set_new(o, "pageSize", json_string(h->page_size));
		bad |= json_object_set_new(o, "limit", json_integer((json_int_t)h->limit));
		if (bad)
			return crid_err_nomem(err, "linux.resources.hugepageLimits");
	}
	return 0;
}

int crid_spec_resources(const Runtime__V1__LinuxContainerResources *r, json_t **out, struct crid_err *err)
{
	json_t *res;
	int rc;

	*out = NULL;
	res = json_object();
	if (!res)
		return crid_err_nomem(err, "linux.resources");
	if (r) {
		rc = add_cpu(r, res, err);
		if (rc == 0)
			rc = add_memory(r, res, err);
		if (rc == 0)
			rc = add_hugepages(r, res, err);
		/* unified (cgroup v2 files) is not passed on: runc refuses it on
		 * a cgroup v1 host, and what the kubelet puts there (memory QoS)
		 * is optional. oom_score_adj belongs to process, not here. */
		if (rc < 0) {
			json_decref(res);
			return rc;
		}
	}
	*out = res;
	return 0;
}
