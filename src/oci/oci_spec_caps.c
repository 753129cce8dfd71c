/* process.capabilities: Docker's default set, then the security context's
 * "ALL" adds and drops, then its named adds and drops; privileged is every
 * capability. Never grants what crid itself does not hold (the held mask):
 * the runtime could not raise it and would fail the container at start. */
#include <linux/capability.h>
#include <stdint.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

/* Indexed by capability number, up to CAP_CHECKPOINT_RESTORE (40). */
static const char *const cap_names[] = {
	"CAP_CHOWN",		"CAP_DAC_OVERRIDE",  "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID",		"CAP_KILL",	     "CAP_SETGID",	    "CAP_SETUID",
	"CAP_SETPCAP",		"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",	"CAP_NET_RAW",	     "CAP_IPC_LOCK",	    "CAP_IPC_OWNER",
	"CAP_SYS_MODULE",	"CAP_SYS_RAWIO",     "CAP_SYS_CHROOT",	    "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",	"CAP_SYS_ADMIN",     "CAP_SYS_BOOT",	    "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",	"CAP_SYS_TIME",	     "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
	"CAP_LEASE",		"CAP_AUDIT_WRITE",   "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",	"CAP_MAC_ADMIN",     "CAP_SYSLOG",	    "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",	"CAP_AUDIT_READ",    "CAP_PERFMON",	    "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

#define N_CAPS ((int)CRID_ARRAY_SIZE(cap_names))
#define ALL_CAPS ((UINT64_C(1) << N_CAPS) - 1)
#define BIT(c) (UINT64_C(1) << (c))

/* Docker's (and containerd's) default set. */
static const uint64_t default_caps = BIT(0) /* CHOWN */ | BIT(1) /* DAC_OVERRIDE */ | BIT(4) /* FSETID */ |
				     BIT(3) /* FOWNER */ | BIT(27) /* MKNOD */ | BIT(13) /* NET_RAW */ |
				     BIT(6) /* SETGID */ | BIT(7) /* SETUID */ | BIT(31) /* SETFCAP */ |
				     BIT(8) /* SETPCAP */ | BIT(10) /* NET_BIND_SERVICE */ |
				     BIT(18) /* SYS_CHROOT */ | BIT(5) /* KILL */ | BIT(29) /* AUDIT_WRITE */;

const char *crid_spec_capability_name(int cap)
{
	return cap >= 0 && cap < N_CAPS ? cap_names[cap] : NULL;
}

uint64_t crid_spec_held_capabilities(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d) < 0)
		return ALL_CAPS; /* unknown: let the runtime decide */
	return ((uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32) & ALL_CAPS;
}

/* "NET_ADMIN", "CAP_NET_ADMIN", any case. -1 when unknown. */
static int cap_lookup(const char *name)
{
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (int i = 0; i < N_CAPS; i++) {
		if (strcasecmp(name, cap_names[i] + 4) == 0)
			return i;
	}
	return -1;
}

static bool has_all(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(names[i], "ALL") == 0)
			return true;
	}
	return false;
}

/* Applies the named entries of list (skipping "ALL") to *set. */
static int apply_named(char **names, size_t n, const char *field, bool add, uint64_t held, uint64_t *set,
		       struct crid_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int c;

		if (strcasecmp(names[i], "ALL") == 0)
			continue;
		c = cap_lookup(names[i]);
		if (c < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "linux.security_context.capabilities.%s[%zu]: unknown capability "
					    "\"%s\"",
					    field, i, names[i]);
		if (!add) {
			*set &= ~BIT(c);
			continue;
		}
		if (!(held & BIT(c)))
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "linux.security_context.capabilities.%s[%zu]: %s cannot be granted: "
					    "crid itself does not hold it",
					    field, i, cap_names[c]);
		*set |= BIT(c);
	}
	return 0;
}

static json_t *cap_array(uint64_t set)
{
	json_t *a = json_array();

	for (int i = 0; a && i < N_CAPS; i++) {
		if ((set & BIT(i)) && json_array_append_new(a, json_string(cap_names[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int crid_spec_capability_sets(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t held, uint64_t *set_out,
			      uint64_t *ambient_out, struct crid_err *err)
{
	const Runtime__V1__Capability *c = sc ? sc->capabilities : NULL;
	uint64_t set, ambient = 0;
	int r;

	held &= ALL_CAPS;
	set = default_caps & held;
	*set_out = *ambient_out = 0;
	if (sc && sc->privileged) {
		set = held;
	} else if (c) {
		/* "ALL" first, so that named entries still work on top of it:
		 * add ALL + drop CHOWN is everything but CAP_CHOWN. */
		if (has_all(c->add_capabilities, c->n_add_capabilities))
			set = held;
		if (has_all(c->drop_capabilities, c->n_drop_capabilities))
			set = 0;
		r = apply_named(c->add_capabilities, c->n_add_capabilities, "add_capabilities", true, held, &set, err);
		if (r < 0)
			return r;
		r = apply_named(c->drop_capabilities, c->n_drop_capabilities, "drop_capabilities", false, held, &set,
				err);
		if (r < 0)
			return r;
		/* Ambient capabilities must also be permitted and inheritable
		 * for the kernel to keep them across execve. */
		r = apply_named(c->add_ambient_capabilities, c->n_add_ambient_capabilities, "add_ambient_capabilities",
				true, held, &ambient, err);
		if (r < 0)
			return r;
		set |= ambient;
	}
	*set_out = set;
	*ambient_out = ambient;
	return 0;
}

int crid_spec_capabilities(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t held, json_t **out,
			   struct crid_err *err)
{
	uint64_t set, ambient;
	json_t *o;
	int r, bad = 0;

	*out = NULL;
	r = crid_spec_capability_sets(sc, held, &set, &ambient, err);
	if (r < 0)
		return r;
	o = json_object();
	if (!o)
		return crid_err_nomem(err, "capabilities");
	bad |= json_object_set_new(o, "bounding", cap_array(set));
	bad |= json_object_set_new(o, "effective", cap_array(set));
	bad |= json_object_set_new(o, "permitted", cap_array(set));
	bad |= json_object_set_new(o, "inheritable", cap_array(ambient));
	bad |= json_object_set_new(o, "ambient", cap_array(ambient));
	if (bad) {
		json_decref(o);
		return crid_err_nomem(err, "capabilities");
	}
	*out = o;
	return 0;
}
