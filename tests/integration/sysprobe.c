/* sysprobe: tries system calls from inside a container and prints what the
 * kernel answered, one "name=RESULT" line each (RESULT: OK or the errno's
 * name), so that tests read the effect of seccomp, capabilities and
 * namespaces where it happens. Each probe runs in a child of its own, so
 * that one that changes something (a mount, the hostname) leaves the
 * others as they were. Built static by the test suite, shipped in an image.
 *
 *   sysprobe userns mount sethostname mkdir keyctl clone3 personality vsock
 *            ptrace chroot bpf
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* Each returns 0 or an errno value. */
static int p_userns(void)
{
	return unshare(CLONE_NEWUSER) < 0 ? errno : 0;
}

static int p_mount(void)
{
	mkdir("/tmp/sysprobe-mnt", 0755);
	return mount("sysprobe", "/tmp/sysprobe-mnt", "tmpfs", 0, "size=64k") < 0 ? errno : 0;
}

static int p_sethostname(void)
{
	char name[256] = "";

	gethostname(name, sizeof(name) - 1);
	return sethostname(name, strlen(name)) < 0 ? errno : 0;
}

static int p_mkdir(void)
{
	if (mkdir("/tmp/sysprobe-dir", 0755) < 0 && errno != EEXIST)
		return errno;
	rmdir("/tmp/sysprobe-dir");
	return 0;
}

/* KEYCTL_GET_KEYRING_ID of the session keyring: the key store is not
 * namespaced, so the default profile denies the whole call. */
static int p_keyctl(void)
{
	return syscall(SYS_keyctl, 0, -3, 0) < 0 ? errno : 0;
}

/* clone3 with no arguments: EFAULT/EINVAL from the kernel, ENOSYS from a
 * filter that wants glibc to fall back to clone. */
static int p_clone3(void)
{
	long r = syscall(SYS_clone3, NULL, 0);

	if (r == 0)
		_exit(0);
	return errno == EFAULT || errno == EINVAL ? 0 : errno;
}

/* ADDR_NO_RANDOMIZE: not one of the personalities containers may set. */
static int p_personality(void)
{
	return personality(0x0040000) < 0 ? errno : 0;
}

static int p_vsock(void)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	/* A kernel without vsock answers this when the filter let it in. */
	return errno == EAFNOSUPPORT ? 0 : errno;
}

static int p_ptrace(void)
{
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 ? errno : 0;
}

static int p_chroot(void)
{
	return chroot("/") < 0 ? errno : 0;
}

/* BPF_PROG_LOAD with nothing: EINVAL/EFAULT when the call got through. */
static int p_bpf(void)
{
	long r = syscall(SYS_bpf, 5, NULL, 0);

	return r < 0 && errno != EINVAL && errno != EFAULT && errno != E2BIG ? errno : 0;
}

/* A System V segment of a fixed key: made in one container, found from
 * another only when both are in one IPC namespace. */
#define SHM_PROBE_KEY 0x43524944

static int p_shmmake(void)
{
	return shmget(SHM_PROBE_KEY, 4096, IPC_CREAT | 0600) < 0 ? errno : 0;
}

static int p_shmfind(void)
{
	return shmget(SHM_PROBE_KEY, 0, 0) < 0 ? errno : 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} probes[] = {
	{ "userns", p_userns },	      { "mount", p_mount },   { "sethostname", p_sethostname },
	{ "mkdir", p_mkdir },	      { "keyctl", p_keyctl }, { "clone3", p_clone3 },
	{ "personality", p_personality }, { "vsock", p_vsock }, { "ptrace", p_ptrace },
	{ "chroot", p_chroot },	      { "bpf", p_bpf },       { "shmmake", p_shmmake },
	{ "shmfind", p_shmfind },
};

int main(int argc, char **argv)
{
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		size_t k = 0;
		pid_t pid;
		int status = 0;

		while (k < sizeof(probes) / sizeof(probes[0]) && strcmp(probes[k].name, argv[i]) != 0)
			k++;
		if (k == sizeof(probes) / sizeof(probes[0])) {
			printf("%s=UNKNOWN-PROBE\n", argv[i]);
			rc = 2;
			continue;
		}
		pid = fork();
		if (pid == 0)
			_exit(probes[k].fn() & 0xff);
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
			printf("%s=CRASHED\n", argv[i]);
			continue;
		}
		if (WEXITSTATUS(status) == 0)
			printf("%s=OK\n", argv[i]);
		else
			printf("%s=%s\n", argv[i], strerrorname_np(WEXITSTATUS(status)) ?: "?");
	}
	return rc;
}
