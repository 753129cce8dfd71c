/* Localhost seccomp profiles: a file in the Docker/OCI JSON format (the one
 * the kubelet's seccomp directory holds), read, checked field by field and
 * turned into linux.seccomp. Docker's additions are resolved here for the
 * container: archMap picks the host's architectures, and a rule's
 * includes/excludes (capabilities, architectures, minimum kernel) keep or
 * drop it. Everything a runtime would reject, or worse silently ignore, is
 * INVALID_ARGUMENT naming the file and the field. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define PROFILE_MAX (1 << 20)
#define SYSCALL_NAME_MAX 64
#define ERRNO_MAX 4095

static const char *const actions[] = {
	"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
	"SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",	  "SCMP_ACT_LOG",	  "SCMP_ACT_NOTIFY",
};
static const char *const operators[] = {
	"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};
static const char *const abis[] = {
	"SCMP_ARCH_X86",	 "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",	    "SCMP_ARCH_ARM",	  "SCMP_ARCH_AARCH64",
	"SCMP_ARCH_MIPS",	 "SCMP_ARCH_MIPS64",   "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
	"SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",      "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
	"SCMP_ARCH_S390X",	 "SCMP_ARCH_PARISC",   "SCMP_ARCH_PARISC64",  "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
};
static const char *const filter_flags[] = {
	"SECCOMP_FILTER_FLAG_TSYNC",
	"SECCOMP_FILTER_FLAG_LOG",
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW",
	"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
};

/* Docker's names for architectures (Go's GOARCH), as in includes.arches,
 * for the host's uname machine. */
static const struct {
	const char *machine, *goarch, *scmp;
} arch_names[] = {
	{ "x86_64", "amd64", "SCMP_ARCH_X86_64" }, { "aarch64", "arm64", "SCMP_ARCH_AARCH64" },
	{ "i686", "386", "SCMP_ARCH_X86" },	   { "ppc64le", "ppc64le", "SCMP_ARCH_PPC64LE" },
	{ "s390x", "s390x", "SCMP_ARCH_S390X" },   { "riscv64", "riscv64", "SCMP_ARCH_RISCV64" },
};

static bool one_of(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, list[i]) == 0)
			return true;
	}
	return false;
}

/* Only the keys listed; anything else is a typo or a feature the runtime
 * would not honour, and a security profile must not be half-applied. */
static int known_keys(json_t *o, const char *const *keys, size_t n, const char *where, struct crid_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		if (!one_of(k, keys, n))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: unknown key \"%s\"", where, k);
	}
	return 0;
}

static int check_errno(json_t *v, const char *where, struct crid_err *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > ERRNO_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not an errno number (0 to %d)", where,
				    ERRNO_MAX);
	return 0;
}

static int check_action(json_t *v, const char *where, struct crid_err *err)
{
	const char *s = json_string_value(v);

	if (!s)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s is %s", where, v ? "not a string" : "missing");
	if (!one_of(s, actions, CRID_ARRAY_SIZE(actions)))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: \"%.64s\" is not a seccomp action", where, s);
	return 0;
}

static bool syscall_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= SYSCALL_NAME_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* "5.4" against the running kernel. */
static int kernel_at_least(json_t *v, const struct crid_spec_host *host, const char *where, bool *yes,
			   struct crid_err *err)
{
	const char *s = json_string_value(v);
	int major, minor, used = 0;

	if (!s || sscanf(s, "%d.%d%n", &major, &minor, &used) != 2 || s[used] != '\0' || major < 0 || minor < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not a kernel version like \"5.4\"", where);
	*yes = host->kernel[0] > major || (host->kernel[0] == major && host->kernel[1] >= minor);
	return 0;
}

static const char *host_goarch(const struct crid_spec_host *host)
{
	for (size_t i = 0; i < CRID_ARRAY_SIZE(arch_names); i++) {
		if (strcmp(host->arch, arch_names[i].machine) == 0)
			return arch_names[i].goarch;
	}
	return host->arch;
}

/* Docker's includes/excludes of one rule: *keep is whether it applies to
 * this container. includes: every capability held, the host's
 * architecture listed, the kernel recent enough; excludes: none of that. */
static int condition(json_t *cond, bool include, uint64_t caps, const struct crid_spec_host *host,
		     const char *where, bool *keep, struct crid_err *err)
{
	static const char *const keys[] = { "caps", "arches", "minKernel" };
	json_t *list, *v;
	size_t i;
	bool all_caps = true, any_cap = false, arch_listed = false, recent = true;
	int r;

	if (!cond || json_is_null(cond))
		return 0;
	if (!json_is_object(cond))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not an object", where);
	if ((r = known_keys(cond, keys, CRID_ARRAY_SIZE(keys), where, err)) < 0)
		return r;
	list = json_object_get(cond, "caps");
	if (list && !json_is_array(list))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.caps: not a list", where);
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(v);
		int cap = -1;

		for (int c = 0; name && crid_spec_capability_name(c); c++) {
			if (strcmp(crid_spec_capability_name(c), name) == 0)
				cap = c;
		}
		if (cap < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.caps[%zu]: not a capability name", where,
					    i);
		if (caps & (UINT64_C(1) << cap))
			any_cap = true;
		else
			all_caps = false;
	}
	list = json_object_get(cond, "arches");
	if (list && !json_is_array(list))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.arches: not a list", where);
	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.arches[%zu]: not a string", where, i);
		if (strcmp(json_string_value(v), host_goarch(host)) == 0)
			arch_listed = true;
	}
	v = json_object_get(cond, "minKernel");
	if (v && !json_is_null(v) && (r = kernel_at_least(v, host, where, &recent, err)) < 0)
		return r;
	if (include)
		*keep = *keep && all_caps && (json_array_size(json_object_get(cond, "arches")) == 0 || arch_listed) &&
			recent;
	else
		*keep = *keep && !any_cap && !arch_listed && !(v && !json_is_null(v) && recent);
	return 0;
}

static int check_args(json_t *args, const char *where, json_t **out, struct crid_err *err)
{
	static const char *const keys[] = { "index", "value", "valueTwo", "op" };
	json_auto_t *a = json_array();
	json_t *arg;
	size_t i;
	int r;

	*out = NULL;
	if (!json_is_array(args))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.args: not a list", where);
	json_array_foreach(args, i, arg) {
		json_t *idx = json_object_get(arg, "index"), *op = json_object_get(arg, "op");
		json_t *value = json_object_get(arg, "value"), *two = json_object_get(arg, "valueTwo");
		json_t *copy;

		if (!json_is_object(arg))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.args[%zu]: not an object", where, i);
		if ((r = known_keys(arg, keys, CRID_ARRAY_SIZE(keys), where, err)) < 0)
			return r;
		if (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 5)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.args[%zu].index: not 0 to 5", where, i);
		if ((value && (!json_is_integer(value) || json_integer_value(value) < 0)) ||
		    (two && (!json_is_integer(two) || json_integer_value(two) < 0)))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "%s.args[%zu]: value and valueTwo must be whole numbers", where, i);
		if (!json_is_string(op) || !one_of(json_string_value(op), operators, CRID_ARRAY_SIZE(operators)))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.args[%zu].op: not a SCMP_CMP_ operator",
					    where, i);
		copy = json_deep_copy(arg);
		if (!copy || json_array_append_new(a, copy) < 0)
			return crid_err_nomem(err, "seccomp profile");
	}
	*out = take_ptr(&a);
	return 0;
}

/* One entry of "syscalls": checked, and appended to out when it applies. */
static int convert_rule(json_t *rule, size_t index, uint64_t caps, const struct crid_spec_host *host, bool *notify,
			json_t *out, struct crid_err *err)
{
	static const char *const keys[] = { "names", "name", "action", "errnoRet", "args",
					    "includes", "excludes", "comment" };
	json_t *names = json_object_get(rule, "names"), *name = json_object_get(rule, "name"), *v;
	json_auto_t *o = json_object();
	json_auto_t *list = json_array();
	json_t *args = NULL;
	char where[64];
	bool keep = true;
	size_t i;
	int r, bad = 0;

	snprintf(where, sizeof(where), "syscalls[%zu]", index);
	if (!json_is_object(rule))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not an object", where);
	if ((r = known_keys(rule, keys, CRID_ARRAY_SIZE(keys), where, err)) < 0)
		return r;
	if (names && !json_is_array(names))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.names: not a list", where);
	if (name && !json_is_string(name))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.name: not a string", where);
	if (name)
		bad |= json_array_append(list, name);
	json_array_foreach(names, i, v) {
		if (!json_is_string(v) || !syscall_name_ok(json_string_value(v)))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.names[%zu]: not a system call name",
					    where, i);
		bad |= json_array_append(list, v);
	}
	if (name && !syscall_name_ok(json_string_value(name)))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.name: not a system call name", where);
	if (json_array_size(list) == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: no system call names", where);
	snprintf(where, sizeof(where), "syscalls[%zu].action", index);
	if ((r = check_action(json_object_get(rule, "action"), where, err)) < 0)
		return r;
	snprintf(where, sizeof(where), "syscalls[%zu]", index);
	v = json_object_get(rule, "errnoRet");
	if (v && (r = check_errno(v, "errnoRet", err)) < 0)
		return crid_err_wrap(err, "%s.", where);
	if (json_object_get(rule, "args") && !json_is_null(json_object_get(rule, "args")) &&
	    (r = check_args(json_object_get(rule, "args"), where, &args, err)) < 0)
		return r;
	snprintf(where, sizeof(where), "syscalls[%zu].includes", index);
	r = condition(json_object_get(rule, "includes"), true, caps, host, where, &keep, err);
	if (r == 0) {
		snprintf(where, sizeof(where), "syscalls[%zu].excludes", index);
		r = condition(json_object_get(rule, "excludes"), false, caps, host, where, &keep, err);
	}
	if (r < 0 || !keep) {
		json_decref(args);
		return r;
	}
	if (strcmp(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_NOTIFY") == 0)
		*notify = true;
	bad |= json_object_set(o, "names", list);
	bad |= json_object_set(o, "action", json_object_get(rule, "action"));
	if (v)
		bad |= json_object_set(o, "errnoRet", v);
	if (args)
		bad |= json_object_set_new(o, "args", args);
	bad |= json_array_append(out, o);
	return bad ? crid_err_nomem(err, "seccomp profile") : 0;
}

/* architectures, or Docker's archMap: the host's entry and its sub-ABIs. */
static int convert_arches(json_t *doc, const struct crid_spec_host *host, json_t *out, struct crid_err *err)
{
	json_t *given = json_object_get(doc, "architectures"), *map = json_object_get(doc, "archMap"), *v;
	const char *native = NULL;
	size_t i;
	int bad = 0;

	if (given && !json_is_null(given)) {
		if (!json_is_array(given))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "architectures: not a list");
		json_array_foreach(given, i, v) {
			if (!json_is_string(v) || !one_of(json_string_value(v), abis, CRID_ARRAY_SIZE(abis)))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "architectures[%zu]: not a SCMP_ARCH_ name", i);
			bad |= json_array_append(out, v);
		}
	}
	if (!map || json_is_null(map))
		return bad ? crid_err_nomem(err, "seccomp profile") : 0;
	if (!json_is_array(map))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "archMap: not a list");
	for (size_t k = 0; k < CRID_ARRAY_SIZE(arch_names); k++) {
		if (strcmp(host->arch, arch_names[k].machine) == 0)
			native = arch_names[k].scmp;
	}
	json_array_foreach(map, i, v) {
		json_t *a = json_object_get(v, "architecture"), *subs = json_object_get(v, "subArchitectures"), *s;
		size_t j;

		if (!json_is_string(a) || !one_of(json_string_value(a), abis, CRID_ARRAY_SIZE(abis)))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "archMap[%zu].architecture: not a SCMP_ARCH_ name",
					    i);
		if (subs && !json_is_null(subs) && !json_is_array(subs))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "archMap[%zu].subArchitectures: not a list", i);
		json_array_foreach(subs, j, s) {
			if (!json_is_string(s) || !one_of(json_string_value(s), abis, CRID_ARRAY_SIZE(abis)))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "archMap[%zu].subArchitectures[%zu]: not a SCMP_ARCH_ name", i, j);
		}
		if (!native || strcmp(json_string_value(a), native) != 0)
			continue;
		bad |= json_array_append(out, a);
		json_array_foreach(subs, j, s)
			bad |= json_array_append(out, s);
	}
	return bad ? crid_err_nomem(err, "seccomp profile") : 0;
}

static int convert(json_t *doc, uint64_t caps, const struct crid_spec_host *host, json_t **out, struct crid_err *err)
{
	static const char *const keys[] = { "defaultAction", "defaultErrnoRet", "architectures", "archMap",
					    "syscalls", "flags", "listenerPath", "listenerMetadata" };
	json_auto_t *o = json_object();
	json_t *arches = json_array(), *rules = json_array(), *v;
	bool notify = false;
	size_t i;
	int r, bad = 0;

	*out = NULL;
	bad |= json_object_set_new(o, "architectures", arches);
	bad |= json_object_set_new(o, "syscalls", rules);
	if (bad)
		return crid_err_nomem(err, "seccomp profile");
	if (!json_is_object(doc))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "not a JSON object");
	if ((r = known_keys(doc, keys, CRID_ARRAY_SIZE(keys), "the profile", err)) < 0)
		return r;
	if ((r = check_action(json_object_get(doc, "defaultAction"), "defaultAction", err)) < 0)
		return r;
	if (strcmp(json_string_value(json_object_get(doc, "defaultAction")), "SCMP_ACT_NOTIFY") == 0)
		notify = true;
	bad |= json_object_set(o, "defaultAction", json_object_get(doc, "defaultAction"));
	v = json_object_get(doc, "defaultErrnoRet");
	if (v && !json_is_null(v)) {
		if ((r = check_errno(v, "defaultErrnoRet", err)) < 0)
			return r;
		bad |= json_object_set(o, "defaultErrnoRet", v);
	}
	if ((r = convert_arches(doc, host, arches, err)) < 0)
		return r;
	v = json_object_get(doc, "syscalls");
	if (v && !json_is_null(v) && !json_is_array(v))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "syscalls: not a list");
	for (i = 0; i < json_array_size(v); i++) {
		if ((r = convert_rule(json_array_get(v, i), i, caps, host, &notify, rules, err)) < 0)
			return r;
	}
	v = json_object_get(doc, "flags");
	if (v && !json_is_null(v)) {
		json_t *f;

		if (!json_is_array(v))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "flags: not a list");
		json_array_foreach(v, i, f) {
			if (!json_is_string(f) || !one_of(json_string_value(f), filter_flags, CRID_ARRAY_SIZE(filter_flags)))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "flags[%zu]: not a SECCOMP_FILTER_FLAG_ name",
						    i);
		}
		bad |= json_object_set(o, "flags", v);
	}
	v = json_object_get(doc, "listenerPath");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_value(v)[0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "listenerPath: not an absolute path");
		bad |= json_object_set(o, "listenerPath", v);
		v = json_object_get(doc, "listenerMetadata");
		if (v && !json_is_null(v)) {
			if (!json_is_string(v))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "listenerMetadata: not a string");
			bad |= json_object_set(o, "listenerMetadata", v);
		}
	} else if (notify) {
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "SCMP_ACT_NOTIFY needs a listenerPath (a seccomp agent's socket)");
	}
	if (bad)
		return crid_err_nomem(err, "seccomp profile");
	*out = take_ptr(&o);
	return 0;
}

int crid_spec_seccomp_load(const char *path, uint64_t caps, const struct crid_spec_host *host, json_t **out,
			   struct crid_err *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	json_auto_t *doc = NULL;
	json_error_t jerr;
	struct stat st;
	size_t len = 0;
	int r;

	*out = NULL;
	if (!path || path[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\": not an absolute path", path ? path : "");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not a regular file", path);
	if (st.st_size > PROFILE_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: larger than %d bytes", path, PROFILE_MAX);
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return crid_err_nomem(err, "seccomp profile");
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "%s: read", path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not JSON: line %d: %.200s", path, jerr.line,
				    jerr.text);
	r = convert(doc, caps, host, out, err);
	if (r < 0)
		return crid_err_wrap(err, "%s: ", path);
	return 0;
}
