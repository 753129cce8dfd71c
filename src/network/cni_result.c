/* Results (cni.h): whether a plugin's answer is one, and the pod's
 * addresses in it. The 0.3.x, 0.4.0 and 1.0.0 results share the parts
 * read here: "interfaces" and "ips" with an "address" in CIDR form and the
 * index of its interface. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "network/cni.h"

int crid_cni_result_check(const json_t *result, struct crid_err *err)
{
	json_t *ips, *ifs, *v;
	size_t i;

	if (!json_is_object(result))
		return crid_err_set(err, CRID_UNKNOWN, 0, "the result is not a JSON object");
	ips = json_object_get(result, "ips");
	ifs = json_object_get(result, "interfaces");
	if (ips && !json_is_array(ips))
		return crid_err_set(err, CRID_UNKNOWN, 0, "the result's ips is not a list");
	if (ifs && !json_is_array(ifs))
		return crid_err_set(err, CRID_UNKNOWN, 0, "the result's interfaces is not a list");
	json_array_foreach(ips, i, v) {
		if (!json_is_object(v) || !json_is_string(json_object_get(v, "address")))
			return crid_err_set(err, CRID_UNKNOWN, 0, "the result's ips[%zu] has no address", i);
	}
	json_array_foreach(ifs, i, v) {
		if (!json_is_object(v))
			return crid_err_set(err, CRID_UNKNOWN, 0, "the result's interfaces[%zu] is not an object", i);
	}
	return 0;
}

/* "10.1.0.5/24" -> "10.1.0.5" in out, its family; 0 when not an address. */
static int parse_address(const char *cidr, char *out, size_t size, bool *loopback)
{
	unsigned char a[sizeof(struct in6_addr)];
	size_t len = strcspn(cidr, "/");

	if (len == 0 || len >= size)
		return 0;
	memcpy(out, cidr, len);
	out[len] = '\0';
	if (inet_pton(AF_INET, out, a) == 1) {
		*loopback = a[0] == 127;
		return AF_INET;
	}
	if (inet_pton(AF_INET6, out, a) == 1) {
		static const unsigned char one[16] = { [15] = 1 };

		*loopback = memcmp(a, one, sizeof(one)) == 0;
		return AF_INET6;
	}
	return 0;
}

/* Whether ips[i] belongs to the pod's interface: one named ifname, or an
 * address whose interface the result does not say. */
static bool on_ifname(const json_t *result, const json_t *ip, const char *ifname)
{
	json_t *idx = json_object_get(ip, "interface");
	json_t *iface;
	const char *name;

	if (!json_is_integer(idx))
		return true;
	iface = json_array_get(json_object_get(result, "interfaces"), (size_t)json_integer_value(idx));
	name = json_string_value(json_object_get(iface, "name"));
	return !name || strcmp(name, ifname) == 0;
}

int crid_cni_result_ips(const json_t *result, const char *ifname, char ***out, size_t *n_out, struct crid_err *err)
{
	json_t *ips = json_object_get(result, "ips"), *ip;
	char **v = NULL;
	size_t n = 0, i;

	*out = NULL;
	*n_out = 0;
	if (json_array_size(ips) == 0)
		return 0;
	v = calloc(json_array_size(ips), sizeof(*v));
	if (!v)
		return crid_err_nomem(err, "pod IPs");
	/* IPv4 first: the primary address is the one most clients expect. */
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(ips, i, ip) {
			char addr[INET6_ADDRSTRLEN + 1];
			bool loopback = false, dup = false;
			int family = parse_address(json_string_value(json_object_get(ip, "address")) ?: "", addr,
						   sizeof(addr), &loopback);

			if (family != (pass == 0 ? AF_INET : AF_INET6) || loopback || !on_ifname(result, ip, ifname))
				continue;
			for (size_t k = 0; k < n && !dup; k++)
				dup = strcmp(v[k], addr) == 0;
			if (dup)
				continue;
			if (!(v[n] = strdup(addr))) {
				for (size_t k = 0; k < n; k++)
					free(v[k]);
				free(v);
				return crid_err_nomem(err, "pod IPs");
			}
			n++;
		}
	}
	if (n == 0) {
		free(v);
		return 0;
	}
	*out = v;
	*n_out = n;
	return 0;
}
