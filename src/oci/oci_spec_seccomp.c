/* linux.seccomp: which profile a container gets, and the default one
 * (RuntimeDefault). The default denies with EPERM what a container has no
 * business calling and allows the rest; system calls that only a capability
 * makes useful are allowed when the container holds it, so that adding
 * CAP_SYS_ADMIN lets mount(2) through the filter too. The same effect as the
 * container default of the peers (Docker, containerd, CRI-O), written here.
 * Localhost profiles are read by oci_spec_seccomp_file.c. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define CAP(n) (UINT64_C(1) << (n))
enum {
	C_DAC_READ_SEARCH = 2,
	C_SYS_MODULE = 16,
	C_SYS_RAWIO = 17,
	C_SYS_CHROOT = 18,
	C_SYS_PTRACE = 19,
	C_SYS_PACCT = 20,
	C_SYS_ADMIN = 21,
	C_SYS_BOOT = 22,
	C_SYS_NICE = 23,
	C_SYS_TIME = 25,
	C_SYS_TTY_CONFIG = 26,
	C_SYSLOG = 34,
	C_PERFMON = 38,
	C_BPF = 39,
};

/* Allowed to every container. Names an architecture does not have are
 * ignored by the runtime's libseccomp. */
static const char *const allowed[] = {
	"_llseek", "_newselect", "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
	"capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
	"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
	"clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2",
	"dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
	"epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
	"fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr",
	"flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
	"fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait",
	"futex_waitv", "futex_wake", "futimesat", "get_robust_list", "get_thread_area", "getcpu", "getcwd",
	"getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
	"getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
	"getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32",
	"getxattr", "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
	"io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc", "kill", "landlock_add_rule",
	"landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat",
	"listen", "listmount", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lseek", "lsetxattr",
	"lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
	"mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
	"mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
	"mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv",
	"msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat",
	"open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
	"pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
	"prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64",
	"recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
	"restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
	"sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
	"select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
	"sendfile64", "sendmmsg", "sendmsg", "sendto", "set_robust_list", "set_thread_area", "set_tid_address",
	"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
	"setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
	"setresuid32", "setreuid", "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32",
	"setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
	"signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
	"statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
	"sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
	"timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
	"ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
	"utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
};

/* Allowed when the container holds any of the capabilities: what they
 * govern is not namespaced, or reaches the kernel in ways containers do
 * not need otherwise (module loading, raw I/O, the clock, other
 * processes' memory, new namespaces and mounts). */
static const struct {
	const char *name;
	uint64_t caps;
} gated[] = {
	{ "acct", CAP(C_SYS_PACCT) },
	{ "bpf", CAP(C_SYS_ADMIN) | CAP(C_BPF) },
	{ "chroot", CAP(C_SYS_CHROOT) },
	{ "clock_settime", CAP(C_SYS_TIME) },
	{ "clock_settime64", CAP(C_SYS_TIME) },
	{ "clone", CAP(C_SYS_ADMIN) }, /* without it: only with no CLONE_NEW* flag, below */
	{ "clone3", CAP(C_SYS_ADMIN) }, /* without it: ENOSYS, below */
	{ "delete_module", CAP(C_SYS_MODULE) },
	{ "fanotify_init", CAP(C_SYS_ADMIN) },
	{ "finit_module", CAP(C_SYS_MODULE) },
	{ "fsconfig", CAP(C_SYS_ADMIN) },
	{ "fsmount", CAP(C_SYS_ADMIN) },
	{ "fsopen", CAP(C_SYS_ADMIN) },
	{ "fspick", CAP(C_SYS_ADMIN) },
	{ "get_mempolicy", CAP(C_SYS_NICE) },
	{ "init_module", CAP(C_SYS_MODULE) },
	{ "ioperm", CAP(C_SYS_RAWIO) },
	{ "iopl", CAP(C_SYS_RAWIO) },
	{ "kcmp", CAP(C_SYS_PTRACE) },
	{ "lookup_dcookie", CAP(C_SYS_ADMIN) },
	{ "mbind", CAP(C_SYS_NICE) },
	{ "mount", CAP(C_SYS_ADMIN) },
	{ "mount_setattr", CAP(C_SYS_ADMIN) },
	{ "move_mount", CAP(C_SYS_ADMIN) },
	{ "open_by_handle_at", CAP(C_DAC_READ_SEARCH) },
	{ "open_tree", CAP(C_SYS_ADMIN) },
	{ "perf_event_open", CAP(C_SYS_ADMIN) | CAP(C_PERFMON) },
	{ "pidfd_getfd", CAP(C_SYS_PTRACE) },
	{ "process_madvise", CAP(C_SYS_PTRACE) },
	{ "process_vm_readv", CAP(C_SYS_PTRACE) },
	{ "process_vm_writev", CAP(C_SYS_PTRACE) },
	{ "ptrace", CAP(C_SYS_PTRACE) }, /* everyone's from kernel 4.8 on, below */
	{ "quotactl", CAP(C_SYS_ADMIN) },
	{ "quotactl_fd", CAP(C_SYS_ADMIN) },
	{ "reboot", CAP(C_SYS_BOOT) },
	{ "set_mempolicy", CAP(C_SYS_NICE) },
	{ "set_mempolicy_home_node", CAP(C_SYS_NICE) },
	{ "setdomainname", CAP(C_SYS_ADMIN) },
	{ "sethostname", CAP(C_SYS_ADMIN) },
	{ "setns", CAP(C_SYS_ADMIN) },
	{ "settimeofday", CAP(C_SYS_TIME) },
	{ "stime", CAP(C_SYS_TIME) },
	{ "syslog", CAP(C_SYS_ADMIN) | CAP(C_SYSLOG) },
	{ "umount", CAP(C_SYS_ADMIN) },
	{ "umount2", CAP(C_SYS_ADMIN) },
	{ "unshare", CAP(C_SYS_ADMIN) },
	{ "vhangup", CAP(C_SYS_TTY_CONFIG) },
};

/* The ABIs a process of the host's architecture can call the kernel with,
 * each of which the filter must cover, and the calls only that
 * architecture has. */
static const struct {
	const char *machine;
	const char *abis[3];
	const char *calls[7];
} arches[] = {
	{ "x86_64", { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" }, { "arch_prctl", "modify_ldt" } },
	{ "aarch64",
	  { "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM" },
	  { "arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2" } },
	{ "i686", { "SCMP_ARCH_X86" }, { "modify_ldt" } },
	{ "ppc64le", { "SCMP_ARCH_PPC64LE" }, { "swapcontext", "sync_file_range2" } },
	{ "s390x", { "SCMP_ARCH_S390X", "SCMP_ARCH_S390" }, { "s390_pci_mmio_read", "s390_pci_mmio_write" } },
	{ "riscv64", { "SCMP_ARCH_RISCV64" }, { "riscv_flush_icache" } },
};

/* personality(2) values a program may set without leaving Linux's
 * behaviour: PER_LINUX, PER_LINUX32, UNAME26 and those two combined, and
 * 0xffffffff, which only reads the current one. */
static const json_int_t personalities[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };

/* CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
 * CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET: clone(2) flags (its first
 * argument, except on s390) that make a namespace. */
#define CLONE_NEW_MASK 0x7E020000
#define AF_VSOCK_FAMILY 40

static json_t *arg_cmp(int index, json_int_t value, json_int_t value2, const char *op)
{
	json_t *o = json_pack("{s:i, s:I, s:s}", "index", index, "value", value, "op", op);

	if (o && value2 && json_object_set_new(o, "valueTwo", json_integer(value2)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* {"names": [name], "action": action, "args": [cmp]}; cmp (taken) is
 * NULL for no argument check, or when it could not be made (want_cmp). */
static int add_rule(json_t *syscalls, const char *name, const char *action, bool want_cmp, json_t *cmp,
		    int errno_ret)
{
	json_t *r = json_pack("{s:[s], s:s}", "names", name, "action", action), *args;

	if (!r || (want_cmp && !cmp)) {
		json_decref(r);
		json_decref(cmp);
		return -1;
	}
	if (cmp) {
		args = json_array();
		if (json_array_append_new(args, cmp) < 0 || json_object_set_new(r, "args", args) < 0) {
			json_decref(r);
			return -1;
		}
	} else if (errno_ret && json_object_set_new(r, "errnoRet", json_integer(errno_ret)) < 0) {
		json_decref(r);
		return -1;
	}
	return json_array_append_new(syscalls, r);
}

static int add_name(json_t *names, const char *name)
{
	return json_array_append_new(names, json_string(name));
}

int crid_spec_seccomp_default(uint64_t caps, const struct crid_spec_host *host, json_t **out, struct crid_err *err)
{
	json_auto_t *p = json_object();
	json_t *abis = json_array(), *syscalls = json_array(), *names = json_array();
	bool ptrace_for_all = host->kernel[0] > 4 || (host->kernel[0] == 4 && host->kernel[1] >= 8);
	int bad = 0;

	*out = NULL;
	bad |= json_object_set_new(p, "defaultAction", json_string("SCMP_ACT_ERRNO"));
	bad |= json_object_set_new(p, "defaultErrnoRet", json_integer(EPERM));
	bad |= json_object_set_new(p, "architectures", abis);
	bad |= json_object_set_new(p, "syscalls", syscalls);
	{
		json_t *allow = json_object();

		bad |= json_object_set_new(allow, "names", names);
		bad |= json_object_set_new(allow, "action", json_string("SCMP_ACT_ALLOW"));
		bad |= json_array_append_new(syscalls, allow);
	}
	if (bad)
		return crid_err_nomem(err, "linux.seccomp");

	for (size_t i = 0; i < CRID_ARRAY_SIZE(allowed); i++)
		bad |= add_name(names, allowed[i]);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(gated); i++) {
		if ((caps & gated[i].caps) || (ptrace_for_all && strcmp(gated[i].name, "ptrace") == 0))
			bad |= add_name(names, gated[i].name);
	}
	for (size_t i = 0; i < CRID_ARRAY_SIZE(arches); i++) {
		if (strcmp(host->arch, arches[i].machine) != 0)
			continue;
		for (size_t k = 0; k < CRID_ARRAY_SIZE(arches[i].abis) && arches[i].abis[k]; k++)
			bad |= json_array_append_new(abis, json_string(arches[i].abis[k]));
		for (size_t k = 0; k < CRID_ARRAY_SIZE(arches[i].calls) && arches[i].calls[k]; k++)
			bad |= add_name(names, arches[i].calls[k]);
	}

	for (size_t i = 0; i < CRID_ARRAY_SIZE(personalities); i++)
		bad |= add_rule(syscalls, "personality", "SCMP_ACT_ALLOW", true,
				arg_cmp(0, personalities[i], 0, "SCMP_CMP_EQ"), 0);
	/* Sockets of any family but vsock, which reaches the hypervisor
	 * and other VMs' services past every network namespace. */
	bad |= add_rule(syscalls, "socket", "SCMP_ACT_ALLOW", true, arg_cmp(0, AF_VSOCK_FAMILY, 0, "SCMP_CMP_NE"), 0);
	if (!(caps & CAP(C_SYS_ADMIN))) {
		/* Threads and processes, never namespaces. clone3 passes its
		 * flags in memory the filter cannot read: ENOSYS makes the C
		 * library fall back to clone, which the filter can. */
		int flags_arg = strcmp(host->arch, "s390x") == 0 ? 1 : 0;

		bad |= add_rule(syscalls, "clone", "SCMP_ACT_ALLOW", true,
				arg_cmp(flags_arg, CLONE_NEW_MASK, 0, "SCMP_CMP_MASKED_EQ"), 0);
		bad |= add_rule(syscalls, "clone3", "SCMP_ACT_ERRNO", false, NULL, ENOSYS);
	}
	if (bad)
		return crid_err_nomem(err, "linux.seccomp");
	*out = take_ptr(&p);
	return 0;
}

/* ---- which profile ---- */

static const char *const field_deprecated = "linux.security_context.seccomp_profile_path";
static const char *const field_profile = "linux.security_context.seccomp";

enum choice { UNCONFINED, RUNTIME_DEFAULT, LOCALHOST };

/* The profile the security context asks for; *path is the Localhost file. */
static int choose(const Runtime__V1__LinuxContainerSecurityContext *sc, bool seccomp_default, enum choice *c,
		  const char **path, const char **field, struct crid_err *err)
{
	const Runtime__V1__SecurityProfile *sp = sc ? sc->seccomp : NULL;
	const char *name = NULL;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	if (sc && sc->seccomp_profile_path && *sc->seccomp_profile_path)
		name = sc->seccomp_profile_path;
#pragma GCC diagnostic pop
	*path = NULL;
	*field = field_profile;
	*c = seccomp_default ? RUNTIME_DEFAULT : UNCONFINED;
	if (sp) {
		switch (sp->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			*c = RUNTIME_DEFAULT;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			*c = UNCONFINED;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			*c = LOCALHOST;
			*path = sp->localhost_ref ? sp->localhost_ref : "";
			return 0;
		default:
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.profile_type: %d is not a profile type",
					    field_profile, (int)sp->profile_type);
		}
	}
	if (!name)
		return 0;
	*field = field_deprecated;
	if (strcmp(name, "runtime/default") == 0 || strcmp(name, "docker/default") == 0) {
		*c = RUNTIME_DEFAULT;
	} else if (strcmp(name, "unconfined") == 0) {
		*c = UNCONFINED;
	} else if (strncmp(name, "localhost/", 10) == 0) {
		*c = LOCALHOST;
		*path = name + 10;
	} else {
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "%s: \"%s\" is not runtime/default, docker/default, unconfined or "
				    "localhost/<path>",
				    field_deprecated, name);
	}
	return 0;
}

int crid_spec_seccomp(const Runtime__V1__LinuxContainerSecurityContext *sc, bool seccomp_default, uint64_t caps,
		      const struct crid_spec_host *host, json_t **out, struct crid_err *err)
{
	const char *path, *field;
	enum choice c;
	int r;

	*out = NULL;
	r = choose(sc, seccomp_default, &c, &path, &field, err);
	if (r < 0)
		return r;
	/* Checked even for a privileged container, which then runs without:
	 * a bad name is a bad request either way. */
	if (c == LOCALHOST && path[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: localhost profile \"%s\" is not an absolute path",
				    field, path);
	if ((sc && sc->privileged) || c == UNCONFINED)
		return 0;
	if (c == RUNTIME_DEFAULT)
		return crid_spec_seccomp_default(caps, host, out, err);
	r = crid_spec_seccomp_load(path, caps, host, out, err);
	if (r < 0)
		return crid_err_wrap(err, "%s: localhost profile ", field);
	return 0;
}
