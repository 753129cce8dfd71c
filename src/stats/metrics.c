/* The counters of metrics.h and their rendering. The CRI's methods are
 * known from the generated service descriptors, so every counter is a slot
 * in fixed arrays: counting is an atomic add, with no lock and no memory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "runtime/v1/api.pb-c.h"
#include "stats/metrics.h"

#define N_CODES 17
static const double rpc_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				      0.25,   0.5,   1,      2.5,   5,    10,    30,   60 };
#define N_RPC_BUCKETS (sizeof(rpc_buckets) / sizeof(rpc_buckets[0]))
static const double pull_buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600 };
#define N_PULL_BUCKETS (sizeof(pull_buckets) / sizeof(pull_buckets[0]))

struct rpc_slot {
	const char *service, *method;
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t errors[N_CODES];
	atomic_uint_fast64_t buckets[N_RPC_BUCKETS]; /* not cumulative: summed when rendered */
	atomic_uint_fast64_t sum_ns;
};

struct crid_metrics {
	struct rpc_slot *rpcs; /* every CRI method, then "unknown" */
	size_t n_rpcs;
	atomic_uint_fast64_t pulls_ok, pulls_failed, pull_bytes, pull_sum_ns;
	atomic_uint_fast64_t pull_buckets[N_PULL_BUCKETS];
	pthread_mutex_t lock; /* gauges_fn */
	crid_metrics_gauges_fn gauges_fn;
	void *gauges_data;
	int64_t start_time; /* realtime ns */
};

int crid_metrics_new(struct crid_metrics **out, struct crid_err *err)
{
	const ProtobufCServiceDescriptor *services[] = { &runtime__v1__runtime_service__descriptor,
							 &runtime__v1__image_service__descriptor };
	struct crid_metrics *m = calloc(1, sizeof(*m));
	size_t n = 1, k = 0;

	if (!m)
		return crid_err_nomem(err, "metrics");
	for (size_t s = 0; s < 2; s++)
		n += services[s]->n_methods;
	m->rpcs = calloc(n, sizeof(*m->rpcs));
	if (!m->rpcs) {
		free(m);
		return crid_err_nomem(err, "metrics");
	}
	for (size_t s = 0; s < 2; s++) {
		for (unsigned i = 0; i < services[s]->n_methods; i++) {
			m->rpcs[k].service = services[s]->short_name;
			m->rpcs[k++].method = services[s]->methods[i].name;
		}
	}
	m->rpcs[k].service = "unknown";
	m->rpcs[k++].method = "unknown";
	m->n_rpcs = k;
	pthread_mutex_init(&m->lock, NULL);
	m->start_time = crid_realtime_ns();
	*out = m;
	return 0;
}

void crid_metrics_free(struct crid_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->rpcs);
	free(m);
}

void crid_metrics_set_gauges(struct crid_metrics *m, crid_metrics_gauges_fn fn, void *data)
{
	pthread_mutex_lock(&m->lock);
	m->gauges_fn = fn;
	m->gauges_data = data;
	pthread_mutex_unlock(&m->lock);
}

static size_t bucket_of(const double *bounds, size_t n, int64_t dur_ns)
{
	double s = (double)dur_ns / 1e9;
	size_t i = 0;

	while (i < n && s > bounds[i])
		i++;
	return i; /* n: only +Inf */
}

void crid_metrics_rpc_done(struct crid_metrics *m, const char *service, const char *method, int status,
			   int64_t dur_ns)
{
	struct rpc_slot *slot;
	size_t b;

	if (!m)
		return;
	slot = &m->rpcs[m->n_rpcs - 1];
	for (size_t i = 0; service && method && i + 1 < m->n_rpcs; i++) {
		if (strcmp(m->rpcs[i].method, method) == 0 && strcmp(m->rpcs[i].service, service) == 0) {
			slot = &m->rpcs[i];
			break;
		}
	}
	if (dur_ns < 0)
		dur_ns = 0;
	atomic_fetch_add(&slot->count, 1);
	if (status > 0 && status < N_CODES)
		atomic_fetch_add(&slot->errors[status], 1);
	b = bucket_of(rpc_buckets, N_RPC_BUCKETS, dur_ns);
	if (b < N_RPC_BUCKETS)
		atomic_fetch_add(&slot->buckets[b], 1);
	atomic_fetch_add(&slot->sum_ns, (uint64_t)dur_ns);
}

void crid_metrics_pull_done(struct crid_metrics *m, uint64_t bytes, int64_t dur_ns, bool ok)
{
	size_t b;

	if (!m)
		return;
	if (dur_ns < 0)
		dur_ns = 0;
	atomic_fetch_add(ok ? &m->pulls_ok : &m->pulls_failed, 1);
	atomic_fetch_add(&m->pull_bytes, bytes);
	atomic_fetch_add(&m->pull_sum_ns, (uint64_t)dur_ns);
	b = bucket_of(pull_buckets, N_PULL_BUCKETS, dur_ns);
	if (b < N_PULL_BUCKETS)
		atomic_fetch_add(&m->pull_buckets[b], 1);
}

/* ---- rendering ---- */

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		{
			size_t cap = (t->cap + (size_t)n + 1) * 2;
			char *grown = realloc(t->buf, cap);

			if (!grown) {
				t->failed = true;
				return;
			}
			t->buf = grown;
			t->cap = cap;
		}
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_histogram(struct text *t, const char *name, const char *labels, const double *bounds, size_t n,
			  atomic_uint_fast64_t *buckets, uint64_t count, uint64_t sum_ns)
{
	uint64_t cum = 0;
	const char *sep = *labels ? "," : "";

	for (size_t i = 0; i < n; i++) {
		cum += atomic_load(&buckets[i]);
		put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], (unsigned long long)cum);
	}
	put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)count);
	put(t, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", (double)sum_ns / 1e9);
	put(t, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)count);
}

/* VmRSS and VmSize from /proc/self/status, in bytes. */
static void own_memory(uint64_t *rss, uint64_t *vsize)
{
	char buf[4096];
	_cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	const char *p;

	*rss = *vsize = 0;
	if (n <= 0)
		return;
	buf[n] = '\0';
	if ((p = strstr(buf, "VmRSS:")))
		*rss = strtoull(p + 6, NULL, 10) * 1024;
	if ((p = strstr(buf, "VmSize:")))
		*vsize = strtoull(p + 7, NULL, 10) * 1024;
}

static uint64_t own_fds(void)
{
	_cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	return n > 0 ? n - 1 : 0; /* the directory's own fd */
}

static void render_rpcs(struct crid_metrics *m, struct text *t)
{
	static const char *const codes[N_CODES] = {
		"OK",	     "CANCELLED",	  "UNKNOWN",	      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS",	  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED",   "OUT_OF_RANGE",	  "UNIMPLEMENTED",    "INTERNAL",	  "UNAVAILABLE",
		"DATA_LOSS", "UNAUTHENTICATED",
	};
	char labels[160];

	family(t, "crid_grpc_requests_total", "counter", "CRI calls handled, by method.");
	for (size_t i = 0; i < m->n_rpcs; i++) {
		uint64_t c = atomic_load(&m->rpcs[i].count);

		if (c)
			put(t, "crid_grpc_requests_total{service=\"%s\",method=\"%s\"} %llu\n", m->rpcs[i].service,
			    m->rpcs[i].method, (unsigned long long)c);
	}
	family(t, "crid_grpc_errors_total", "counter", "CRI calls that ended with an error, by method and gRPC code.");
	for (size_t i = 0; i < m->n_rpcs; i++) {
		for (int code = 1; code < N_CODES; code++) {
			uint64_t c = atomic_load(&m->rpcs[i].errors[code]);

			if (c)
				put(t, "crid_grpc_errors_total{service=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
				    m->rpcs[i].service, m->rpcs[i].method, codes[code], (unsigned long long)c);
		}
	}
	family(t, "crid_grpc_request_duration_seconds", "histogram", "Time from a CRI call's request to its end.");
	for (size_t i = 0; i < m->n_rpcs; i++) {
		uint64_t c = atomic_load(&m->rpcs[i].count);

		if (!c)
			continue;
		snprintf(labels, sizeof(labels), "service=\"%s\",method=\"%s\"", m->rpcs[i].service, m->rpcs[i].method);
		put_histogram(t, "crid_grpc_request_duration_seconds", labels, rpc_buckets, N_RPC_BUCKETS,
			      m->rpcs[i].buckets, c, atomic_load(&m->rpcs[i].sum_ns));
	}
}

int crid_metrics_render(struct crid_metrics *m, char **text, size_t *len, struct crid_err *err)
{
	struct crid_metrics_gauges g = { 0 };
	struct text t = { .cap = 16384 };
	uint64_t rss, vsize, ok, failed;

	t.buf = malloc(t.cap);
	if (!t.buf)
		return crid_err_nomem(err, "metrics text");

	pthread_mutex_lock(&m->lock);
	if (m->gauges_fn)
		m->gauges_fn(m->gauges_data, &g);
	pthread_mutex_unlock(&m->lock);
	render_rpcs(m, &t);

	family(&t, "crid_pods", "gauge", "Pod sandboxes, by state.");
	put(&t, "crid_pods{state=\"ready\"} %llu\n", (unsigned long long)g.pods_ready);
	put(&t, "crid_pods{state=\"notready\"} %llu\n", (unsigned long long)g.pods_notready);
	family(&t, "crid_containers", "gauge", "Containers, by state.");
	put(&t, "crid_containers{state=\"created\"} %llu\n", (unsigned long long)g.containers_created);
	put(&t, "crid_containers{state=\"running\"} %llu\n", (unsigned long long)g.containers_running);
	put(&t, "crid_containers{state=\"exited\"} %llu\n", (unsigned long long)g.containers_exited);
	put(&t, "crid_containers{state=\"unknown\"} %llu\n", (unsigned long long)g.containers_unknown);
	family(&t, "crid_shims", "gauge", "crid-shim processes running, one per container not yet exited.");
	put(&t, "crid_shims %llu\n", (unsigned long long)g.shims);

	ok = atomic_load(&m->pulls_ok);
	failed = atomic_load(&m->pulls_failed);
	family(&t, "crid_image_pulls_total", "counter", "Image pulls, by result.");
	put(&t, "crid_image_pulls_total{result=\"success\"} %llu\n", (unsigned long long)ok);
	put(&t, "crid_image_pulls_total{result=\"failure\"} %llu\n", (unsigned long long)failed);
	family(&t, "crid_image_pull_bytes_total", "counter", "Bytes of blobs fetched from registries by pulls.");
	put(&t, "crid_image_pull_bytes_total %llu\n", (unsigned long long)atomic_load(&m->pull_bytes));
	family(&t, "crid_image_pull_duration_seconds", "histogram", "Time an image pull took.");
	put_histogram(&t, "crid_image_pull_duration_seconds", "", pull_buckets, N_PULL_BUCKETS, m->pull_buckets,
		      ok + failed, atomic_load(&m->pull_sum_ns));

	own_memory(&rss, &vsize);
	family(&t, "process_resident_memory_bytes", "gauge", "Resident memory of crid itself, in bytes.");
	put(&t, "process_resident_memory_bytes %llu\n", (unsigned long long)rss);
	family(&t, "process_virtual_memory_bytes", "gauge", "Virtual memory of crid itself, in bytes.");
	put(&t, "process_virtual_memory_bytes %llu\n", (unsigned long long)vsize);
	family(&t, "process_open_fds", "gauge", "File descriptors crid has open.");
	put(&t, "process_open_fds %llu\n", (unsigned long long)own_fds());
	family(&t, "process_start_time_seconds", "gauge", "When crid started, in seconds since the epoch.");
	put(&t, "process_start_time_seconds %.3f\n", (double)m->start_time / 1e9);
	if (t.failed) {
		free(t.buf);
		return crid_err_nomem(err, "metrics text");
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}
