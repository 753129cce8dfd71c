/* Unpacking one layer's tar stream (tar, gzip or zstd, detected from the
 * bytes) into an empty directory, in a child process confined to that
 * directory, so that no entry can write outside it. OCI whiteouts become the
 * form overlayfs reads. Ownership, modes, times, xattrs and file
 * capabilities are kept. */
#ifndef CRID_IMAGE_UNPACK_H
#define CRID_IMAGE_UNPACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* The argv[1] with which crid re-executes itself as the unpacker. */
#define CRID_UNPACK_ARG "--internal-unpack-layer"

struct crid_unpack {
	pid_t pid;
	int stream_fd; /* write the layer's bytes here */
	int err_fd;    /* the child's stderr: why it failed */
};

/* Starts an unpacker into dir, which must exist and be empty. The child is
 * /proc/self/exe run with CRID_UNPACK_ARG. diff_id ("sha256:<hex>", from
 * the image config) is what the decompressed stream must hash to: a layer
 * whose content is not what its image claims is refused. */
int crid_unpack_start(struct crid_unpack *u, const char *dir, const char *diff_id, struct crid_err *err);

/* The same, keeping free_reserve bytes (and a few inodes) free on dir's
 * file system: a layer that would use them fails with RESOURCE_EXHAUSTED.
 * 0: no reserve. */
int crid_unpack_start_reserved(struct crid_unpack *u, const char *dir, const char *diff_id, uint64_t free_reserve,
			       struct crid_err *err);

/* Kills what unpackers a previous crid left running on dir's layers (the
 * daemon's tmp/; they die with crid, but may be slow to), and waits until
 * they are gone, so their work can be removed. */
void crid_unpack_kill_strays(const char *tmp_dir);

/* Writes len bytes of the stream; fails when the child died, with its
 * reason, and then has already reaped it. */
int crid_unpack_write(struct crid_unpack *u, const void *buf, size_t len, struct crid_err *err);

/* Ends the stream and waits for the child: 0 when every entry was
 * unpacked, else an error carrying the child's reason ("entry ../x: path
 * escapes the layer"). */
int crid_unpack_finish(struct crid_unpack *u, struct crid_err *err);

/* Kills and reaps the child (the download failed); the caller removes dir.
 * Harmless after a failed start, write or finish, and when called twice. */
void crid_unpack_abort(struct crid_unpack *u);

/* The child's main: argv is {"crid", CRID_UNPACK_ARG, dir, diff_id,
 * parent pid, free reserve}. Dies with its parent. Reads the layer from
 * stdin, confines itself to dir, unpacks. Exit status 0 on success; the
 * reason for a failure goes to stderr as one line (status 1: the layer was
 * refused or is malformed, 2: the host failed, 3: the file system's free
 * reserve was reached). Never returns: it ends the process with _exit, as
 * atexit handlers (a sanitizer's leak check reads /proc) cannot work inside
 * the chroot. */
int crid_unpack_main(int argc, char **argv);

#endif
