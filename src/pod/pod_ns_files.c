/* The pure half of pod_ns.h: checking a pod's hostname, sysctls and DNS
 * configuration, and writing its /etc/hostname, /etc/hosts and
 * /etc/resolv.conf. Nothing here touches a namespace or a mount. */
#include "pod/pod_ns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"

#define HOSTNAME_MAX 64	      /* HOST_NAME_MAX: what sethostname takes */
#define SYSCTL_KEY_MAX 255    /* longer than any real one */
#define DNS_NAME_MAX 253      /* a domain name's text form */
#define DNS_OPTION_MAX 255
#define MAX_NAMESERVERS 3     /* MAXNS of glibc and musl: later ones are ignored */
#define HOST_FILE_MAX (1 << 20)
#define QUOTE_MAX 160

/* Lines of /etc/hosts for a pod with its own network namespace; the
 * kubelet usually mounts its own hosts file over it. */
static const char default_hosts[] = "127.0.0.1\tlocalhost\n"
				     "::1\tlocalhost ip6-localhost ip6-loopback\n";

/* s between double quotes for a message: printable ASCII as is, '"' and
 * '\' escaped, other bytes as \xNN, "..." when cut short. */
static const char *quote(char *buf, size_t size, const char *s)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		int n;

		if (c == '"' || c == '\\')
			n = snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n = snprintf(buf + o, size - o, "\\x%02x", c);
		else
			n = snprintf(buf + o, size - o, "%c", c);
		if (n < 0 || (size_t)n >= size - o - 5)
			break;
		o += (size_t)n;
	}
	snprintf(buf + o, size - o, "%s\"", s[i] ? "..." : "");
	return buf;
}

static bool is_space_or_control(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

int crid_pod_ns_check_hostname(const char *hostname, struct crid_err *err)
{
	char q[QUOTE_MAX];
	size_t len = strlen(hostname);

	if (len > HOSTNAME_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "hostname %s: longer than %d bytes",
				    quote(q, sizeof(q), hostname), HOSTNAME_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)hostname[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_'))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "hostname %s: only letters, digits, '-', '.' and '_' are allowed",
					    quote(q, sizeof(q), hostname));
	}
	return 0;
}

/* ---- sysctls ---- */

enum sysctl_kind { SYSCTL_NET, SYSCTL_IPC, SYSCTL_OTHER };

/* rel is the key with slashes ("net/ipv4/ip_forward"). */
static enum sysctl_kind sysctl_kind(const char *rel)
{
	static const char *const ipc_prefixes[] = { "kernel/shm", "kernel/msg", "kernel/sem", "fs/mqueue/" };

	if (strncmp(rel, "net/", 4) == 0)
		return SYSCTL_NET;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(ipc_prefixes); i++) {
		if (strncmp(rel, ipc_prefixes[i], strlen(ipc_prefixes[i])) == 0)
			return SYSCTL_IPC;
	}
	return SYSCTL_OTHER;
}

int crid_pod_ns_sysctl_path(const char *key, bool host_network, bool host_ipc, char **path, struct crid_err *err)
{
	char q[QUOTE_MAX];
	_cleanup_free_ char *rel = NULL;
	size_t len;
	enum sysctl_kind kind;

	*path = NULL;
	if (!key || !*key)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl with an empty name");
	quote(q, sizeof(q), key);
	len = strlen(key);
	if (len > SYSCTL_KEY_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl %s: name longer than %d bytes", q,
				    SYSCTL_KEY_MAX);
	rel = strdup(key);
	if (!rel)
		return crid_err_nomem(err, "sysctl name");
	/* sysctl(8): a name with a slash has slashes for separators and dots
	 * that belong to a component (an interface "eth0.100"). */
	if (!strchr(rel, '/')) {
		for (char *p = rel; *p; p++) {
			if (*p == '.')
				*p = '/';
		}
	}
	for (const char *c = rel; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl %s: not a sysctl name", q);
		for (size_t i = 0; i < n; i++) {
			if (is_space_or_control((unsigned char)c[i]) || (unsigned char)c[i] >= 0x80)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl %s: not a sysctl name", q);
		}
		c += n;
		if (*c == '/') {
			c++;
			if (!*c) /* a trailing separator */
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl %s: not a sysctl name", q);
		}
	}
	kind = sysctl_kind(rel);
	if (kind == SYSCTL_OTHER)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "sysctl %s: not namespaced (a pod may set net.*, kernel.shm*, kernel.msg*, "
				    "kernel.sem and fs.mqueue.*)",
				    q);
	if (kind == SYSCTL_NET && host_network)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "sysctl %s: needs the pod's own network namespace, and the pod uses the host's", q);
	if (kind == SYSCTL_IPC && host_ipc)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "sysctl %s: needs the pod's own IPC namespace, and the pod uses the host's", q);
	if (asprintf(path, "/proc/sys/%s", rel) < 0) {
		*path = NULL;
		return crid_err_nomem(err, "sysctl path");
	}
	return 0;
}

/* ---- resolv.conf ---- */

/* An IPv4 or IPv6 address, the latter with an optional "%zone". */
static bool valid_nameserver(const char *s)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
	const char *zone;
	size_t alen;

	if (inet_pton(AF_INET, s, addr) == 1)
		return true;
	zone = strchr(s, '%');
	alen = zone ? (size_t)(zone - s) : strlen(s);
	if (alen >= INET6_ADDRSTRLEN)
		return false;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET6, buf, addr) != 1)
		return false;
	if (!zone)
		return true;
	zone++;
	if (!*zone || strlen(zone) >= IF_NAMESIZE)
		return false;
	for (; *zone; zone++) {
		if (is_space_or_control((unsigned char)*zone) || *zone == '/' || (unsigned char)*zone >= 0x80)
			return false;
	}
	return true;
}

/* A search domain or an option: one word of printable characters. */
static int check_word(const char *field, size_t i, const char *s, size_t max, struct crid_err *err)
{
	char q[QUOTE_MAX];
	size_t len = strlen(s);

	if (len == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "dns_config.%s[%zu]: empty", field, i);
	if (len > max)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "dns_config.%s[%zu] %s: longer than %zu bytes",
				    field, i, quote(q, sizeof(q), s), max);
	for (size_t k = 0; k < len; k++) {
		if (is_space_or_control((unsigned char)s[k]))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "dns_config.%s[%zu] %s: contains whitespace or a control character",
					    field, i, quote(q, sizeof(q), s));
	}
	return 0;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > *cap) {
		size_t ncap = (*len + n + 1) * 2;
		char *grown = realloc(*buf, ncap);

		if (!grown)
			return -ENOMEM;
		*buf = grown;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	return 0;
}

int crid_pod_ns_render_resolv(const Runtime__V1__DNSConfig *dns, char **out, size_t *out_len, struct crid_err *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	char q[QUOTE_MAX];
	int r = 0;

	*out = NULL;
	*out_len = 0;
	if (!dns || (dns->n_servers == 0 && dns->n_searches == 0 && dns->n_options == 0))
		return 0;
	if (dns->n_servers > MAX_NAMESERVERS)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "dns_config.servers: %zu nameservers, and resolvers use only the first %d",
				    dns->n_servers, MAX_NAMESERVERS);
	for (size_t i = 0; i < dns->n_servers; i++) {
		if (!valid_nameserver(dns->servers[i]))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "dns_config.servers[%zu] %s: not an IP address", i,
					    quote(q, sizeof(q), dns->servers[i]));
	}
	for (size_t i = 0; i < dns->n_searches; i++) {
		if ((r = check_word("searches", i, dns->searches[i], DNS_NAME_MAX, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < dns->n_options; i++) {
		if ((r = check_word("options", i, dns->options[i], DNS_OPTION_MAX, err)) < 0)
			return r;
	}
	/* containerd's order: search, nameservers, options. */
	if (dns->n_searches > 0) {
		r = append(&buf, &len, &cap, "search");
		for (size_t i = 0; r == 0 && i < dns->n_searches; i++) {
			if ((r = append(&buf, &len, &cap, " ")) == 0)
				r = append(&buf, &len, &cap, dns->searches[i]);
		}
		if (r == 0)
			r = append(&buf, &len, &cap, "\n");
	}
	for (size_t i = 0; r == 0 && i < dns->n_servers; i++) {
		if ((r = append(&buf, &len, &cap, "nameserver ")) == 0 &&
		    (r = append(&buf, &len, &cap, dns->servers[i])) == 0)
			r = append(&buf, &len, &cap, "\n");
	}
	if (r == 0 && dns->n_options > 0) {
		r = append(&buf, &len, &cap, "options");
		for (size_t i = 0; r == 0 && i < dns->n_options; i++) {
			if ((r = append(&buf, &len, &cap, " ")) == 0)
				r = append(&buf, &len, &cap, dns->options[i]);
		}
		if (r == 0)
			r = append(&buf, &len, &cap, "\n");
	}
	if (r < 0)
		return crid_err_nomem(err, "resolv.conf");
	*out = take_ptr(&buf);
	*out_len = len;
	return 0;
}

/* ---- the files ---- */

/* The content of a host file such as /etc/resolv.conf, which may be a
 * symlink (systemd-resolved): *data NULL when it does not exist. */
static int read_host_file(const char *path, char **data, size_t *len, struct crid_err *err)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	int r;

	*data = NULL;
	*len = 0;
	if (!real) {
		if (errno == ENOENT)
			return 0;
		return crid_err_set(err, CRID_INTERNAL, errno, "read %s", path);
	}
	r = crid_read_file_at(AT_FDCWD, real, HOST_FILE_MAX, data, len, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return 0;
	if (r < 0)
		return crid_err_wrap(err, "copy the host's %s: ", path);
	return 0;
}

static int write_file(int dirfd, const char *name, const char *data, size_t len, struct crid_err *err)
{
	int r = crid_replace_file_at(dirfd, name, data, len, 0644, err);

	if (r < 0)
		return r;
	/* Whatever the daemon's umask: containers of any user read these. */
	if (fchmodat(dirfd, name, 0644, 0) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "chmod %s", name);
	return 0;
}

int crid_pod_ns_write_files(int dirfd, const struct crid_pod_ns_options *o, struct crid_err *err)
{
	_cleanup_free_ char *hostname_line = NULL, *hosts = NULL, *resolv = NULL;
	char host[HOST_NAME_MAX + 1];
	const char *name = o->hostname;
	size_t len;
	int r;

	if (!name || !*name) {
		/* No name asked for: the pod keeps the one it inherits. */
		if (gethostname(host, sizeof(host)) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "gethostname");
		host[sizeof(host) - 1] = '\0';
		name = host;
	}
	if (asprintf(&hostname_line, "%s\n", name) < 0) {
		hostname_line = NULL;
		return crid_err_nomem(err, "hostname");
	}
	if ((r = write_file(dirfd, "hostname", hostname_line, strlen(hostname_line), err)) < 0)
		return r;

	if (o->host_network && (r = read_host_file("/etc/hosts", &hosts, &len, err)) < 0)
		return r;
	if (hosts)
		r = write_file(dirfd, "hosts", hosts, len, err);
	else
		r = write_file(dirfd, "hosts", default_hosts, strlen(default_hosts), err);
	if (r < 0)
		return r;

	if ((r = crid_pod_ns_render_resolv(o->dns, &resolv, &len, err)) < 0)
		return r;
	if (!resolv && (r = read_host_file("/etc/resolv.conf", &resolv, &len, err)) < 0)
		return r;
	return write_file(dirfd, "resolv.conf", resolv ? resolv : "", resolv ? len : 0, err);
}
