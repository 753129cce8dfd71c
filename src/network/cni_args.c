/* What a pod gives its plugins (cni.h): CNI_ARGS from its metadata, the
 * capability arguments of runtimeConfig from its ports, annotations, DNS
 * and the node's pod CIDR, and each plugin's configuration as libcni
 * builds it. Every value comes from a client and is checked here. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "network/cni.h"

#define INGRESS_ANNOTATION "kubernetes.io/ingress-bandwidth"
#define EGRESS_ANNOTATION "kubernetes.io/egress-bandwidth"
/* The kubelet's bounds on the bandwidth annotations, in bits per second. */
#define BANDWIDTH_MIN 1000ULL
#define BANDWIDTH_MAX 1000000000000000ULL
/* The bandwidth plugin needs a burst; like the kubelet's other runtimes,
 * crid gives the largest one it takes. */
#define BANDWIDTH_BURST 4294967295ULL

/* Whether s is valid UTF-8 (what JSON, and so every record, can hold). */
static bool valid_utf8(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

/* A CNI_ARGS value may hold neither separator. */
static int check_arg(const char *what, const char *v, struct crid_err *err)
{
	for (const char *s = v; *s; s++)
		if (*s == ';' || *s == '=' || iscntrl((unsigned char)*s))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "%s \"%.64s\" holds a ';', '=' or control character, which CNI_ARGS cannot carry",
					    what, v);
	if (!valid_utf8(v))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s is not valid UTF-8", what);
	return 0;
}

int crid_cni_pod_args(const Runtime__V1__PodSandboxConfig *c, const char *pod_id, char **out, struct crid_err *err)
{
	const Runtime__V1__PodSandboxMetadata *m = c->metadata;
	int r;

	*out = NULL;
	if ((r = check_arg("config.metadata.namespace", m->namespace_, err)) < 0 ||
	    (r = check_arg("config.metadata.name", m->name, err)) < 0 ||
	    (r = check_arg("config.metadata.uid", m->uid, err)) < 0)
		return r;
	if (asprintf(out, "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
		     m->namespace_, m->name, pod_id, m->uid) < 0) {
		*out = NULL;
		return crid_err_nomem(err, "CNI_ARGS");
	}
	return 0;
}

/* The suffixes of a Kubernetes quantity, and what each multiplies by. */
static const struct {
	const char *suffix;
	long double factor;
} suffixes[] = {
	{ "Ki", 1024.0L }, { "Mi", 1048576.0L }, { "Gi", 1073741824.0L }, { "Ti", 1099511627776.0L },
	{ "Pi", 1125899906842624.0L }, { "Ei", 1152921504606846976.0L }, { "n", 1e-9L }, { "u", 1e-6L },
	{ "m", 1e-3L }, { "", 1.0L }, { "k", 1e3L }, { "M", 1e6L }, { "G", 1e9L }, { "T", 1e12L },
	{ "P", 1e15L }, { "E", 1e18L },
};

int crid_cni_parse_bandwidth(const char *s, uint64_t *bps)
{
	const char *p = s, *digits;
	long double mantissa, value = -1;
	char num[48], *end;
	bool dot = false;

	if (*p == '+')
		p++;
	digits = p;
	/* Digits with at most one '.', as Kubernetes writes quantities; no
	 * sign, no hex, no inf or nan that strtold would take. */
	while (isdigit((unsigned char)*p) || (*p == '.' && !dot)) {
		dot = dot || *p == '.';
		p++;
	}
	if (p == digits || (p == digits + 1 && *digits == '.') || p - digits > 40)
		return -EINVAL;
	/* Only the digits: strtold would take an exponent as its own. */
	memcpy(num, digits, (size_t)(p - digits));
	num[p - digits] = '\0';
	errno = 0;
	mantissa = strtold(num, &end);
	if (errno || *end)
		return -EINVAL;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(suffixes); i++)
		if (strcmp(p, suffixes[i].suffix) == 0)
			value = mantissa * suffixes[i].factor;
	if (value < 0 && (*p == 'e' || *p == 'E')) {
		char *exp_end;
		long e = strtol(p + 1, &exp_end, 10);

		if (*exp_end == '\0' && exp_end != p + 1 && e >= -30 && e <= 30) {
			value = mantissa;
			for (; e > 0; e--)
				value *= 10.0L;
			for (; e < 0; e++)
				value /= 10.0L;
		}
	}
	if (value < 0)
		return -EINVAL;
	if (value > (long double)BANDWIDTH_MAX)
		return -ERANGE;
	/* A fraction of a bit counts as one, as the kubelet's Value() rounds up. */
	*bps = (uint64_t)value;
	if ((long double)*bps < value)
		(*bps)++;
	if (*bps < BANDWIDTH_MIN || *bps > BANDWIDTH_MAX)
		return -ERANGE;
	return 0;
}

static const char *annotation(const Runtime__V1__PodSandboxConfig *c, const char *key)
{
	for (size_t i = 0; i < c->n_annotations; i++)
		if (c->annotations[i]->key && strcmp(c->annotations[i]->key, key) == 0)
			return c->annotations[i]->value ? c->annotations[i]->value : "";
	return NULL;
}

static int bandwidth(const Runtime__V1__PodSandboxConfig *c, json_t *rc, struct crid_err *err)
{
	static const struct {
		const char *annotation, *rate, *burst;
	} dirs[] = {
		{ INGRESS_ANNOTATION, "ingressRate", "ingressBurst" },
		{ EGRESS_ANNOTATION, "egressRate", "egressBurst" },
	};
	json_t *bw = NULL;

	for (size_t i = 0; i < CRID_ARRAY_SIZE(dirs); i++) {
		const char *v = annotation(c, dirs[i].annotation);
		uint64_t bps;
		int r;

		if (!v)
			continue;
		r = crid_cni_parse_bandwidth(v, &bps);
		if (r == -ERANGE)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "annotation %s: \"%.32s\" is out of range (1k to 1P bits per second)",
					    dirs[i].annotation, v);
		if (r < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "annotation %s: \"%.32s\" is not a quantity such as 10M", dirs[i].annotation, v);
		if (!bw && (!(bw = json_object()) || json_object_set_new(rc, "bandwidth", bw) < 0))
			return crid_err_nomem(err, "runtimeConfig");
		if (json_object_set_new(bw, dirs[i].rate, json_integer((json_int_t)bps)) < 0 ||
		    json_object_set_new(bw, dirs[i].burst, json_integer((json_int_t)BANDWIDTH_BURST)) < 0)
			return crid_err_nomem(err, "runtimeConfig");
	}
	return 0;
}

static int port_mappings(const Runtime__V1__PodSandboxConfig *c, json_t *rc, struct crid_err *err)
{
	json_t *list = json_array();

	if (!list || json_object_set_new(rc, "portMappings", list) < 0)
		return crid_err_nomem(err, "runtimeConfig");
	for (size_t i = 0; i < c->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *pm = c->port_mappings[i];
		unsigned char addr[sizeof(struct in6_addr)];
		const char *proto;
		json_t *m;

		switch (pm->protocol) {
		case RUNTIME__V1__PROTOCOL__TCP:
			proto = "tcp";
			break;
		case RUNTIME__V1__PROTOCOL__UDP:
			proto = "udp";
			break;
		case RUNTIME__V1__PROTOCOL__SCTP:
			proto = "sctp";
			break;
		default:
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.port_mappings[%zu].protocol: %d is not TCP, UDP or SCTP",
					    i, (int)pm->protocol);
		}
		if (pm->container_port < 1 || pm->container_port > 65535)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.port_mappings[%zu].container_port: %d is not a port",
					    i, pm->container_port);
		if (pm->host_port < 0 || pm->host_port > 65535)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.port_mappings[%zu].host_port: %d is not a port",
					    i, pm->host_port);
		if (pm->host_ip && *pm->host_ip && inet_pton(AF_INET, pm->host_ip, addr) != 1 &&
		    inet_pton(AF_INET6, pm->host_ip, addr) != 1)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "config.port_mappings[%zu].host_ip: \"%.64s\" is not an IP address", i, pm->host_ip);
		/* A container port needs no mapping to be reached on the pod IP. */
		if (pm->host_port == 0)
			continue;
		m = json_pack("{s:i, s:i, s:s}", "hostPort", pm->host_port, "containerPort", pm->container_port, "protocol",
			      proto);
		if (!m || (pm->host_ip && *pm->host_ip && json_object_set_new(m, "hostIP", json_string(pm->host_ip)) < 0) ||
		    json_array_append_new(list, m) < 0)
			return crid_err_nomem(err, "runtimeConfig");
	}
	return 0;
}

/* One range set per CIDR of the pod CIDR ("10.1.0.0/24,fd00::/64"), which
 * UpdateRuntimeConfig checked. */
static int ip_ranges(const char *pod_cidr, json_t *rc, struct crid_err *err)
{
	_cleanup_free_ char *copy = NULL;
	json_t *sets;
	char *save = NULL;

	if (!pod_cidr || !*pod_cidr)
		return 0;
	if (!(copy = strdup(pod_cidr)) || !(sets = json_array()) || json_object_set_new(rc, "ipRanges", sets) < 0)
		return crid_err_nomem(err, "runtimeConfig");
	for (char *cidr = strtok_r(copy, ",", &save); cidr; cidr = strtok_r(NULL, ",", &save))
		if (json_array_append_new(sets, json_pack("[{s:s}]", "subnet", cidr)) < 0)
			return crid_err_nomem(err, "runtimeConfig");
	return 0;
}

static json_t *strings(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i] ? v[i] : "")) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int dns(const Runtime__V1__DNSConfig *d, json_t *rc, struct crid_err *err)
{
	static const char *const fields[] = { "servers", "searches", "options" };
	char **lists[] = { d ? d->servers : NULL, d ? d->searches : NULL, d ? d->options : NULL };
	size_t ns[] = { d ? d->n_servers : 0, d ? d->n_searches : 0, d ? d->n_options : 0 };
	json_t *o;

	if (!d || (d->n_servers == 0 && d->n_searches == 0 && d->n_options == 0))
		return 0;
	for (size_t f = 0; f < CRID_ARRAY_SIZE(fields); f++)
		for (size_t i = 0; i < ns[f]; i++)
			if (lists[f][i] && !valid_utf8(lists[f][i]))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.dns_config.%s[%zu] is not valid UTF-8",
						    fields[f], i);
	o = json_pack("{s:o, s:o, s:o}", "servers", strings(d->servers, d->n_servers), "searches",
		      strings(d->searches, d->n_searches), "options", strings(d->options, d->n_options));
	if (!o || json_object_set_new(rc, "dns", o) < 0)
		return crid_err_nomem(err, "runtimeConfig");
	return 0;
}

int crid_cni_runtime_config(const Runtime__V1__PodSandboxConfig *c, const char *pod_cidr, json_t **out,
			    struct crid_err *err)
{
	json_t *rc = json_object();
	int r;

	*out = NULL;
	if (!rc)
		return crid_err_nomem(err, "runtimeConfig");
	if ((r = port_mappings(c, rc, err)) < 0 || (r = bandwidth(c, rc, err)) < 0 || (r = ip_ranges(pod_cidr, rc, err)) < 0 ||
	    (r = dns(c->dns_config, rc, err)) < 0) {
		json_decref(rc);
		return r;
	}
	*out = rc;
	return 0;
}

json_t *crid_cni_plugin_conf(const struct crid_cni_conflist *l, size_t i, const json_t *runtime_config,
			     const json_t *prev_result)
{
	json_t *plugin = json_array_get(json_object_get(l->list, "plugins"), i);
	json_t *conf = json_deep_copy(plugin), *caps, *rc = NULL;
	const char *cap;
	json_t *on;

	if (!conf)
		return NULL;
	if (json_object_set_new(conf, "name", json_string(l->name)) < 0 ||
	    json_object_set_new(conf, "cniVersion", json_string(l->version)) < 0)
		goto fail;
	/* Only what the plugin says it takes, as libcni does. */
	caps = json_object_get(plugin, "capabilities");
	json_object_foreach(caps, cap, on) {
		json_t *v = json_object_get(runtime_config, cap);

		if (!json_is_true(on) || !v)
			continue;
		if (!rc && (!(rc = json_object()) || json_object_set_new(conf, "runtimeConfig", rc) < 0))
			goto fail;
		if (json_object_set(rc, cap, v) < 0)
			goto fail;
	}
	if (prev_result && json_object_set(conf, "prevResult", (json_t *)prev_result) < 0)
		goto fail;
	return conf;
fail:
	json_decref(conf);
	return NULL;
}
