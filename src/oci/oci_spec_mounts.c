/* The mounts of config.json (the runtime's defaults, the pod's /etc files
 * and /dev/shm, the config's bind mounts and image volumes, parents before
 * children) and the masked and read-only paths. Follows containerd's CRI
 * plugin: a config mount replaces a default one at the same path (or above
 * it), bind propagation sets the root's, read-only root file systems get
 * read-only /etc files. Never looks at the host: sources are checked for
 * form only, and the caller's staged sources (resolved host paths,
 * ID-mapped mounts, image volumes) replace the host paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define MOUNT_OPTIONS_MAX 16

struct mnt {
	const char *dest; /* cleaned; owned by the list's names */
	const char *type, *source;
	const char *opts[8 + MOUNT_OPTIONS_MAX];
	size_t n_opts;
	size_t depth, order;
};

/* The runtime's defaults and the pod's files. */
#define N_DEFAULT_MOUNTS 10

struct mnt_list {
	struct mnt *m; /* room for the defaults and the config's */
	size_t n;
	char **owned; /* the config's cleaned destinations */
	size_t n_owned;
};

static void mnt_list_free(struct mnt_list *l)
{
	for (size_t i = 0; i < l->n_owned; i++)
		free(l->owned[i]);
	free(l->owned);
	free(l->m);
}

/* "/a//b/./c/../d/" -> "/a/b/d"; never above "/". path is absolute. */
static char *clean_path(const char *path)
{
	size_t len = strlen(path);
	char *out = malloc(len + 2), *o = out;

	if (!out)
		return NULL;
	*o = '\0';
	for (const char *p = path; *p;) {
		const char *e;
		size_t n;

		while (*p == '/')
			p++;
		e = strchrnul(p, '/');
		n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = strrchr(out, '/');

			o = slash ? slash : out;
			*o = '\0';
		} else {
			*o++ = '/';
			memcpy(o, p, n);
			o += n;
			*o = '\0';
		}
		p = e;
	}
	if (o == out)
		strcpy(out, "/");
	return out;
}

static size_t path_depth(const char *p)
{
	size_t d = 0;

	for (; *p; p++)
		d += *p == '/' && p[1] != '\0';
	return d;
}

/* parent == path, or path is below parent. */
static bool path_within(const char *path, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(path, parent, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static struct mnt *mnt_add(struct mnt_list *l, const char *dest, const char *type, const char *source)
{
	struct mnt *m = &l->m[l->n];

	memset(m, 0, sizeof(*m));
	m->dest = dest;
	m->type = type;
	m->source = source;
	m->depth = path_depth(dest);
	m->order = l->n++;
	return m;
}

#define OPTS(m, ...)                                                                \
	do {                                                                        \
		static const char *const o_[] = { __VA_ARGS__ };                    \
		for (size_t k_ = 0; k_ < CRID_ARRAY_SIZE(o_); k_++)                 \
			(m)->opts[(m)->n_opts++] = o_[k_];                          \
	} while (0)

/* Options a volume may ask for on top of its bind mount: the ones that
 * only take away (and their "back to the default" forms, and atime). */
static const char *const volume_options[] = {
	"nosuid", "nodev", "noexec", "suid", "dev", "exec", "noatime", "relatime", "strictatime", "nodiratime",
	"nosymfollow",
};

bool crid_spec_mount_option_ok(const char *opt)
{
	for (size_t i = 0; i < CRID_ARRAY_SIZE(volume_options); i++) {
		if (strcmp(opt, volume_options[i]) == 0)
			return true;
	}
	return false;
}

/* Checks the config's mounts and records their cleaned destinations. */
static int check_config_mounts(const struct crid_spec_input *in, struct mnt_list *l, struct crid_err *err)
{
	const Runtime__V1__ContainerConfig *config = in->config;

	l->m = calloc(config->n_mounts + N_DEFAULT_MOUNTS, sizeof(*l->m));
	l->owned = calloc(config->n_mounts + 1, sizeof(*l->owned));
	if (!l->m || !l->owned)
		return crid_err_nomem(err, "mounts");
	for (size_t i = 0; i < config->n_mounts; i++) {
		const Runtime__V1__Mount *m = config->mounts[i];
		const char *cp = m->container_path ? m->container_path : "";
		const char *hp = m->host_path ? m->host_path : "";
		bool image = m->image && m->image->image && *m->image->image;
		bool staged = in->mount_sources && in->mount_sources[i];

		if (cp[0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu].container_path \"%s\" is %s", i,
					    cp, *cp ? "not absolute" : "empty");
		if (image && *hp)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "mounts[%zu]: host_path and image are mutually exclusive", i);
		if (image && !staged)
			return crid_err_set(err, CRID_INTERNAL, 0, "mounts[%zu].image: the image volume is not mounted",
					    i);
		if (!image && hp[0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu].host_path \"%s\" is %s", i, hp,
					    *hp ? "not absolute" : "empty");
		if (!image && m->image_sub_path && *m->image_sub_path)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu].image_sub_path needs image", i);
		if ((m->n_uidmappings || m->n_gidmappings) && !staged)
			return crid_err_set(err, CRID_INTERNAL, 0, "mounts[%zu]: the ID-mapped mount is not made", i);
		if (m->n_mount_options > MOUNT_OPTIONS_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu].mount_options: more than %d", i,
					    MOUNT_OPTIONS_MAX);
		for (size_t k = 0; k < m->n_mount_options; k++) {
			if (!crid_spec_mount_option_ok(m->mount_options[k]))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "mounts[%zu].mount_options[%zu]: \"%.32s\" is not one of nosuid, "
						    "nodev, noexec, suid, dev, exec, noatime, relatime, strictatime, "
						    "nodiratime, nosymfollow",
						    i, k, m->mount_options[k]);
		}
		if (m->selinux_relabel && in->host && in->host->selinux)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "mounts[%zu].selinux_relabel: crid does not relabel volumes", i);
		if (m->recursive_read_only && !m->readonly)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "mounts[%zu].recursive_read_only needs readonly", i);
		if (m->recursive_read_only && m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "mounts[%zu].recursive_read_only needs a private propagation", i);
		l->owned[i] = clean_path(cp);
		if (!l->owned[i])
			return crid_err_nomem(err, "mounts");
		l->n_owned = i + 1;
		if (strcmp(l->owned[i], "/") == 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "mounts[%zu].container_path \"%s\": cannot mount over the root", i, cp);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(l->owned[j], l->owned[i]) == 0)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "mounts[%zu].container_path %s is also mounts[%zu]'s", i,
						    l->owned[i], j);
		}
	}
	return 0;
}

/* A default mount is left out when a config mount is at or above it. */
static bool overridden(const struct mnt_list *l, const char *dest, bool exact)
{
	for (size_t i = 0; i < l->n_owned; i++) {
		if (exact ? strcmp(dest, l->owned[i]) == 0 : path_within(dest, l->owned[i]))
			return true;
	}
	return false;
}

static void add_defaults(const struct crid_spec_input *in, bool privileged, bool readonly, struct mnt_list *l)
{
	struct mnt *m;

	if (!overridden(l, "/proc", false)) {
		m = mnt_add(l, "/proc", "proc", "proc");
		OPTS(m, "nosuid", "noexec", "nodev");
	}
	if (!overridden(l, "/dev", false)) {
		m = mnt_add(l, "/dev", "tmpfs", "tmpfs");
		OPTS(m, "nosuid", "strictatime", "mode=755", "size=65536k");
	}
	if (!overridden(l, "/dev/pts", false)) {
		m = mnt_add(l, "/dev/pts", "devpts", "devpts");
		OPTS(m, "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5");
	}
	if (!overridden(l, "/dev/shm", false)) {
		if (in->shm_path) {
			m = mnt_add(l, "/dev/shm", "bind", in->shm_path);
			OPTS(m, "rbind", "rprivate", "rw");
		} else {
			m = mnt_add(l, "/dev/shm", "tmpfs", "shm");
			OPTS(m, "nosuid", "noexec", "nodev", "mode=1777", "size=65536k");
		}
	}
	if (!overridden(l, "/dev/mqueue", false)) {
		m = mnt_add(l, "/dev/mqueue", "mqueue", "mqueue");
		OPTS(m, "nosuid", "noexec", "nodev");
	}
	if (!overridden(l, "/sys", false)) {
		m = mnt_add(l, "/sys", "sysfs", "sysfs");
		OPTS(m, "nosuid", "noexec", "nodev");
		m->opts[m->n_opts++] = privileged ? "rw" : "ro";
	}
	if (!overridden(l, "/sys/fs/cgroup", false)) {
		m = mnt_add(l, "/sys/fs/cgroup", "cgroup", "cgroup");
		OPTS(m, "nosuid", "noexec", "nodev", "relatime");
		m->opts[m->n_opts++] = privileged ? "rw" : "ro";
	}

	/* The pod's files, read-only with a read-only root (containerd). */
	static const char *const etc[] = { "/etc/hosts", "/etc/resolv.conf", "/etc/hostname" };
	const char *srcs[] = { in->hosts_file, in->resolv_conf_file, in->hostname_file };

	for (size_t i = 0; i < CRID_ARRAY_SIZE(etc); i++) {
		if (!srcs[i] || overridden(l, etc[i], true))
			continue;
		m = mnt_add(l, etc[i], "bind", srcs[i]);
		OPTS(m, "rbind", "rprivate");
		m->opts[m->n_opts++] = readonly ? "ro" : "rw";
	}
}

/* The config's bind mounts; *prop is the root propagation they need. */
static void add_config_mounts(const struct crid_spec_input *in, struct mnt_list *l, const char **prop)
{
	const Runtime__V1__ContainerConfig *config = in->config;

	for (size_t i = 0; i < config->n_mounts; i++) {
		const Runtime__V1__Mount *cm = config->mounts[i];
		const char *src = in->mount_sources && in->mount_sources[i] ? in->mount_sources[i] : cm->host_path;
		bool image = cm->image && cm->image->image && *cm->image->image;
		struct mnt *m = mnt_add(l, l->owned[i], "bind", src);

		m->opts[m->n_opts++] = "rbind";
		switch (cm->propagation) {
		case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
			m->opts[m->n_opts++] = "rshared";
			*prop = "rshared";
			break;
		case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
			m->opts[m->n_opts++] = "rslave";
			if (!*prop)
				*prop = "rslave";
			break;
		default:
			m->opts[m->n_opts++] = "rprivate";
			break;
		}
		/* selinux_relabel: refused above where SELinux runs; a no-op
		 * without labels. Image volumes are read-only by definition. */
		m->opts[m->n_opts++] = cm->recursive_read_only ? "rro" : (cm->readonly || image) ? "ro" : "rw";
		for (size_t k = 0; k < cm->n_mount_options; k++)
			m->opts[m->n_opts++] = cm->mount_options[k];
	}
}

static int by_depth(const void *a, const void *b)
{
	const struct mnt *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

int crid_spec_mounts(const struct crid_spec_input *in, bool privileged, bool readonly, json_t **mounts,
		     const char **rootfs_propagation, struct crid_err *err)
{
	_cleanup_(mnt_list_free) struct mnt_list l = { 0 };
	json_auto_t *a = NULL;
	int r;

	*mounts = NULL;
	*rootfs_propagation = NULL;
	r = check_config_mounts(in, &l, err);
	if (r < 0)
		return r;
	add_defaults(in, privileged, readonly, &l);
	add_config_mounts(in, &l, rootfs_propagation);
	/* Parents before children; equal depths keep their order. */
	qsort(l.m, l.n, sizeof(l.m[0]), by_depth);

	a = json_array();
	if (!a)
		return crid_err_nomem(err, "mounts");
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = json_object(), *opts = json_array();
		int bad = 0;

		for (size_t k = 0; k < l.m[i].n_opts && opts; k++)
			bad |= json_array_append_new(opts, json_string(l.m[i].opts[k]));
		bad |= json_object_set_new(o, "destination", json_string(l.m[i].dest));
		bad |= json_object_set_new(o, "type", json_string(l.m[i].type));
		bad |= json_object_set_new(o, "source", json_string(l.m[i].source));
		bad |= json_object_set_new(o, "options", opts);
		bad |= json_array_append_new(a, o);
		if (bad)
			return crid_err_nomem(err, "mounts");
	}
	*mounts = take_ptr(&a);
	return 0;
}

/* The usual defaults (Docker's, containerd's), plus powercap
 * (CVE-2020-8694). */
static const char *const default_masked[] = {
	"/proc/acpi",	      "/proc/kcore",	    "/proc/keys",	 "/proc/latency_stats",
	"/proc/timer_list",   "/proc/timer_stats",  "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware",      "/sys/devices/virtual/powercap",
};
static const char *const default_readonly[] = {
	"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static int path_list(char *const *given, size_t n_given, const char *const *defaults, size_t n_defaults,
		     const char *field, json_t **out, struct crid_err *err)
{
	json_auto_t *a = json_array();
	int bad = 0;

	if (!a)
		return crid_err_nomem(err, field);
	for (size_t i = 0; i < n_given; i++) {
		if (given[i][0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "linux.security_context.%s[%zu] \"%s\" is not absolute", field, i,
					    given[i]);
		bad |= json_array_append_new(a, json_string(given[i]));
	}
	for (size_t i = 0; n_given == 0 && i < n_defaults; i++)
		bad |= json_array_append_new(a, json_string(defaults[i]));
	if (bad)
		return crid_err_nomem(err, field);
	*out = take_ptr(&a);
	return 0;
}

int crid_spec_masked_paths(const Runtime__V1__LinuxContainerSecurityContext *sc, bool empty_unmasks, json_t **masked,
			   json_t **readonly, struct crid_err *err)
{
	int r;

	*masked = *readonly = NULL;
	if ((sc && sc->privileged) ||
	    (empty_unmasks && sc && sc->n_masked_paths == 0 && sc->n_readonly_paths == 0)) {
		*masked = json_array();
		*readonly = json_array();
		if (!*masked || !*readonly) {
			json_decref(*masked);
			json_decref(*readonly);
			*masked = *readonly = NULL;
			return crid_err_nomem(err, "maskedPaths");
		}
		return 0;
	}
	/* The kubelet sends its own lists; empty ones outside a user
	 * namespace cannot be told from "not sent": the defaults apply. */
	r = path_list(sc ? sc->masked_paths : NULL, sc ? sc->n_masked_paths : 0, default_masked,
		      CRID_ARRAY_SIZE(default_masked), "masked_paths", masked, err);
	if (r < 0)
		return r;
	r = path_list(sc ? sc->readonly_paths : NULL, sc ? sc->n_readonly_paths : 0, default_readonly,
		      CRID_ARRAY_SIZE(default_readonly), "readonly_paths", readonly, err);
	if (r < 0) {
		json_decref(*masked);
		*masked = NULL;
	}
	return r;
}
