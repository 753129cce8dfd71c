/* libFuzzer target: a layer archive (tar, gzip or zstd) through the real
 * unpacker (image/unpack.c): the fuzzer re-executes itself as crid's
 * confined child, which chroots into an empty directory and unpacks there.
 * A child that a sanitizer stops, or that dies of a signal, is a finding;
 * so is anything written outside its directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "image/unpack.h"

static char base[] = "/tmp/crid-fuzz-unpack-XXXXXX";
static int base_fd = -1;

static void remove_base(void)
{
	struct crid_err err;

	crid_rmtree_at(AT_FDCWD, base, &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* The child: crid's unpacker main, in this binary. */
	if (*argc > 1 && strcmp((*argv)[1], CRID_UNPACK_ARG) == 0)
		crid_unpack_main(*argc, *argv);
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(base) || (base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror("crid fuzz_unpack: temporary directory");
		exit(1);
	}
	atexit(remove_base);
	return 0;
}

/* Only the layer directory itself may exist under base. */
static void check_nothing_escaped(const char *layer)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, layer)) {
			fprintf(stderr, "crid fuzz_unpack: %s/%s appeared outside the layer\n", base, de->d_name);
			abort();
		}
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned n;
	char name[32], dir[sizeof(base) + 32];
	struct crid_unpack u;
	struct crid_err err;
	int r;

	snprintf(name, sizeof(name), "layer-%u", n++);
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if (mkdir(dir, 0755) < 0)
		abort();
	crid_err_clear(&err);
	r = crid_unpack_start(&u, dir, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &err);
	if (r == 0)
		r = crid_unpack_write(&u, data, size, &err);
	if (r == 0)
		r = crid_unpack_finish(&u, &err);
	else
		crid_unpack_abort(&u);
	if (r < 0 && (strstr(err.msg, "Sanitizer") || strstr(err.msg, "runtime error") ||
		      strstr(err.msg, "killed by signal"))) {
		fprintf(stderr, "crid fuzz_unpack: the unpacker crashed: %s\n", err.msg);
		abort();
	}
	check_nothing_escaped(name);
	if (crid_rmtree_at(base_fd, name, &err) < 0) {
		fprintf(stderr, "crid fuzz_unpack: %s\n", err.msg);
		abort();
	}
	return 0;
}
