/* Tests of src/image/unpack: tar streams built here with libarchive's writer
 * (pax, plain, gzip or zstd) go through crid_unpack_start/write/finish into
 * a fresh directory, and the result is read back with lstat, readlink and
 * getxattr. The unpacker child is this binary (/proc/self/exe), dispatched
 * in main. Needs root: the child chroots, chowns, mknods and sets trusted.*
 * xattrs. Every layer directory has an "outside" sibling holding a canary
 * that escape attempts must leave untouched. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "image/unpack.h"

#define FMT(buf, ...) ck_assert_int_lt(snprintf(buf, sizeof(buf), __VA_ARGS__), (int)sizeof(buf))

#define CANARY "canary\n"
#define BIG_SIZE (256 * 1024)
#define T_ROOT 1500000000
#define T_DIR 1600000000
#define T_FILE 1600000100
#define T_LINK 1600000200

enum filter { PLAIN, GZIP, ZSTD };

static char parent_dir[PATH_MAX];
static char test_dir[PATH_MAX];
static char layer[PATH_MAX];
static char outside[PATH_MAX];
static struct stat outside_before;

/* ---- files ---- */

static void in(char *buf, size_t size, const char *dir, const char *rel)
{
	ck_assert_int_lt(snprintf(buf, size, "%s/%s", dir, rel), (int)size);
}

static void write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	ck_assert_int_eq(close(fd), 0);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = 0;
	ssize_t n;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	while ((n = read(fd, buf + len, size - len)) > 0)
		len += (size_t)n;
	ck_assert_int_ge(n, 0);
	close(fd);
	return len;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* FTW_PHYS: never follow the layers' symlinks ("link -> /"). */
static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Unmounts whatever an overlay test left mounted below dir, even after a
 * failed (forked) test that never reached its own cleanup. */
static void unmount_below(const char *dir)
{
	size_t dlen = strlen(dir);
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX];

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strncmp(mnt, dir, dlen) == 0 &&
		    mnt[dlen] == '/')
			umount2(mnt, MNT_DETACH);
	}
	fclose(f);
}

static void setup(void)
{
	char canary[PATH_MAX];

	FMT(test_dir, "%s/t-XXXXXX", parent_dir);
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
	FMT(layer, "%s/layer", test_dir);
	FMT(outside, "%s/outside", test_dir);
	ck_assert_int_eq(mkdir(layer, 0755), 0);
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	in(canary, sizeof(canary), outside, "canary");
	write_file(canary, CANARY);
	ck_assert_int_eq(stat(outside, &outside_before), 0);
}

static void teardown(void)
{
	unmount_below(test_dir);
	rm_rf(test_dir);
}

/* The outside directory holds its canary and nothing else, unchanged. */
static void assert_outside_untouched(void)
{
	char canary[PATH_MAX], buf[64];
	struct stat st;
	struct dirent *de;
	DIR *d;
	int n = 0;

	d = opendir(outside);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ck_assert_str_eq(de->d_name, "canary");
		n++;
	}
	closedir(d);
	ck_assert_int_eq(n, 1);
	in(canary, sizeof(canary), outside, "canary");
	ck_assert_int_eq(lstat(canary, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(read_file(canary, buf, sizeof(buf)), strlen(CANARY));
	ck_assert(memcmp(buf, CANARY, strlen(CANARY)) == 0);
	ck_assert_int_eq(stat(outside, &st), 0);
	ck_assert_int_eq(st.st_mtim.tv_sec, outside_before.st_mtim.tv_sec);
	ck_assert_int_eq(st.st_mtim.tv_nsec, outside_before.st_mtim.tv_nsec);
}

static void assert_absent(const char *path)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) < 0 && errno == ENOENT, "%s exists", path);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void assert_reaped(pid_t pid)
{
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}

/* ---- building tar streams ---- */

struct buf {
	char *data;
	size_t len, cap;
};

static void buf_free(struct buf *b)
{
	free(b->data);
}

static la_ssize_t buf_write(struct archive *a, void *data, const void *p, size_t n)
{
	struct buf *b = data;

	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64 * 1024;
		char *grown;

		while (cap < b->len + n)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown)
			return -1;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return (la_ssize_t)n;
}

struct ent {
	const char *path;
	mode_t type;	  /* AE_IFREG when 0 */
	mode_t perm;	  /* 0644, or 0755 for a directory, when 0 */
	unsigned uid, gid;
	time_t mtime;
	long mtime_ns;
	const char *data; /* regular files */
	size_t size;	  /* of data; strlen(data) when 0 */
	const char *symlink;
	const char *hardlink;
	unsigned dev_major, dev_minor;
	const char *xattr;
	const void *xattr_value;
	size_t xattr_size;
};

static void add_entry(struct archive *a, const struct ent *e)
{
	struct archive_entry *ae = archive_entry_new();
	mode_t type = e->type ? e->type : AE_IFREG;
	size_t size = e->data ? (e->size ? e->size : strlen(e->data)) : 0;

	ck_assert_ptr_nonnull(ae);
	archive_entry_set_pathname(ae, e->path);
	archive_entry_set_filetype(ae, type);
	archive_entry_set_perm(ae, e->perm ? e->perm : (type == AE_IFDIR ? 0755 : 0644));
	archive_entry_set_uid(ae, e->uid);
	archive_entry_set_gid(ae, e->gid);
	archive_entry_set_mtime(ae, e->mtime ? e->mtime : T_FILE, e->mtime_ns);
	if (e->symlink)
		archive_entry_set_symlink(ae, e->symlink);
	if (e->hardlink)
		archive_entry_set_hardlink(ae, e->hardlink);
	if (type == AE_IFCHR || type == AE_IFBLK)
		archive_entry_set_rdev(ae, makedev(e->dev_major, e->dev_minor));
	if (e->xattr)
		archive_entry_xattr_add_entry(ae, e->xattr, e->xattr_value, e->xattr_size);
	archive_entry_set_size(ae, (la_int64_t)size);
	ck_assert_msg(archive_write_header(a, ae) == ARCHIVE_OK, "%s", archive_error_string(a));
	if (size)
		ck_assert_int_eq(archive_write_data(a, e->data, size), (la_ssize_t)size);
	archive_entry_free(ae);
}

/* A pax archive of ents, xattrs in SCHILY.xattr records as Docker and
 * containerd write them. */
static struct buf make_tar(enum filter filter, const struct ent *ents, size_t n)
{
	struct buf b = { 0 };
	struct archive *a = archive_write_new();

	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(archive_write_set_format_pax(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY"), ARCHIVE_OK);
	if (filter == GZIP)
		ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (filter == ZSTD)
		ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	/* Compressed output ends where the compressor's does, as registries
	 * serve it; libarchive would pad it with zeros to 10 KiB. */
	if (filter != PLAIN)
		ck_assert_int_eq(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open(a, &b, NULL, buf_write, NULL), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++)
		add_entry(a, &ents[i]);
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return b;
}

/* ---- running the unpacker ---- */

/* Any well-formed diff ID, for runs that never get to the check. */
#define SOME_DIFF_ID "sha256:0000000000000000000000000000000000000000000000000000000000000000"

/* The diff ID of a layer blob: sha256 of its decompressed bytes, worked
 * out here with a reader of its own. Bytes that are no known compression
 * count as they are. */
static void diff_id_of(const void *data, size_t len, char out[CRID_DIGEST_LEN + 1])
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct crid_sha256 *h;
	struct crid_err err;
	const void *block;
	size_t size;
	la_int64_t off;

	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(crid_sha256_new(&h, &err), 0);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a);
	/* Garbage has no diff ID worth the name: its raw bytes will do. */
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
		crid_sha256_update(h, data, len);
	else if (archive_read_next_header(a, &e) == ARCHIVE_OK)
		while (archive_read_data_block(a, &block, &size, &off) == ARCHIVE_OK)
			crid_sha256_update(h, block, size);
	crid_sha256_final(h, out);
	crid_sha256_free(h);
	archive_read_free(a);
}

/* Writes in uneven pieces, as a download would. Returns the result and
 * checks that the child is gone whatever happened. */
static int unpack_into(const char *dir, const void *data, size_t len, struct crid_err *err)
{
	struct crid_unpack u;
	const char *p = data;
	pid_t pid;
	int r;

	char diff_id[CRID_DIGEST_LEN + 1];

	crid_err_clear(err);
	diff_id_of(data, len, diff_id);
	r = crid_unpack_start(&u, dir, diff_id, err);
	ck_assert_msg(r == 0, "start: %s", err->msg);
	pid = u.pid;
	while (len > 0) {
		size_t n = len < 7777 ? len : 7777;

		r = crid_unpack_write(&u, p, n, err);
		if (r < 0) {
			ck_assert_int_ne(err->status, CRID_OK);
			crid_unpack_abort(&u);
			assert_reaped(pid);
			return r;
		}
		p += n;
		len -= n;
	}
	r = crid_unpack_finish(&u, err);
	assert_reaped(pid);
	ck_assert_int_eq(u.stream_fd, -1);
	ck_assert_int_eq(u.err_fd, -1);
	if (r == 0)
		ck_assert_int_eq(err->status, CRID_OK);
	return r;
}

static int unpack_ents(enum filter filter, const struct ent *ents, size_t n, struct crid_err *err)
{
	struct buf b = make_tar(filter, ents, n);
	int r = unpack_into(layer, b.data, b.len, err);

	buf_free(&b);
	return r;
}

static void unpack_ok(enum filter filter, const struct ent *ents, size_t n)
{
	struct crid_err err;

	ck_assert_msg(unpack_ents(filter, ents, n, &err) == 0, "unpack: %s", err.msg);
}

/* The layer must be refused, INVALID_ARGUMENT, with a message that starts
 * "unpack layer: " and names the entry. */
static void unpack_refused(const struct ent *ents, size_t n, const char *needle)
{
	struct crid_err err;

	ck_assert_int_lt(unpack_ents(PLAIN, ents, n, &err), 0);
	ck_assert_msg(err.status == CRID_INVALID_ARGUMENT, "status %d: %s", err.status, err.msg);
	ck_assert_msg(strncmp(err.msg, "unpack layer: ", 14) == 0, "%s", err.msg);
	ck_assert_msg(strstr(err.msg, needle) != NULL, "\"%s\" not in: %s", needle, err.msg);
}

/* ---- 1, 2: metadata, compression ---- */

/* vfs_cap_data, revision 2: cap_net_bind_service (10) permitted and
 * effective, little endian. */
static const unsigned char cap_blob[20] = {
	0x01, 0x00, 0x00, 0x02, /* VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE */
	0x00, 0x04, 0x00, 0x00, /* permitted[0]: 1 << 10 */
	0x00, 0x00, 0x00, 0x00, /* inheritable[0] */
	0x00, 0x00, 0x00, 0x00, /* permitted[1] */
	0x00, 0x00, 0x00, 0x00, /* inheritable[1] */
};

static char big[BIG_SIZE];

/* Not compressible, so a truncated compressed stream loses real data. */
static void fill_big(void)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof(big); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		big[i] = (char)x;
	}
}

#define UTF8_NAME "caf\xc3\xa9-\xe2\x82\xac"

static const struct ent full_layer[] = {
	{ .path = "./", .type = AE_IFDIR, .perm = 0751, .mtime = T_ROOT },
	{ .path = "d/", .type = AE_IFDIR, .perm = 0750, .uid = 1000, .gid = 1000, .mtime = T_DIR },
	{ .path = "d/file", .perm = 0640, .uid = 1000, .gid = 1000, .mtime = T_FILE, .mtime_ns = 500000000,
	  .data = "hello\n", .xattr = "user.foo", .xattr_value = "bar", .xattr_size = 3 },
	{ .path = "d/empty", .data = NULL },
	{ .path = "suid", .perm = 04755, .uid = 1000, .gid = 1000, .data = "#!/bin/sh\n" },
	{ .path = "sgid-dir/", .type = AE_IFDIR, .perm = 02775, .uid = 1000, .gid = 1000 },
	{ .path = "capbin", .perm = 0755, .data = "\177ELF",
	  .xattr = "security.capability", .xattr_value = cap_blob, .xattr_size = sizeof(cap_blob) },
	{ .path = "rel", .type = AE_IFLNK, .perm = 0777, .uid = 1000, .gid = 1000, .mtime = T_LINK,
	  .symlink = "d/file" },
	{ .path = "abs", .type = AE_IFLNK, .perm = 0777, .symlink = "/etc/passwd" },
	{ .path = "dangling", .type = AE_IFLNK, .perm = 0777, .symlink = "/nonexistent/x" },
	{ .path = "hl", .hardlink = "d/file" },
	{ .path = "fifo", .type = AE_IFIFO, .perm = 0600 },
	{ .path = "null", .type = AE_IFCHR, .perm = 0666, .dev_major = 1, .dev_minor = 3 },
	{ .path = "big", .data = big, .size = BIG_SIZE },
	{ .path = UTF8_NAME, .data = "x" },
};

static void assert_full_layer(void)
{
	char p[PATH_MAX], q[PATH_MAX], link[PATH_MAX];
	static char data[BIG_SIZE + 1];
	unsigned char cap[64];
	struct stat st, st2;
	ssize_t n;

	ck_assert_int_eq(lstat(layer, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0751);
	ck_assert_int_eq(st.st_mtim.tv_sec, T_ROOT);

	/* The directory's time is set after its contents were written. */
	in(p, sizeof(p), layer, "d");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(st.st_uid, 1000);
	ck_assert_int_eq(st.st_gid, 1000);
	ck_assert_int_eq(st.st_mtim.tv_sec, T_DIR);

	in(p, sizeof(p), layer, "d/file");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_uid, 1000);
	ck_assert_int_eq(st.st_gid, 1000);
	ck_assert_int_eq(st.st_mtim.tv_sec, T_FILE);
	ck_assert_int_eq(st.st_mtim.tv_nsec, 500000000);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(read_file(p, data, sizeof(data)), 6);
	ck_assert(memcmp(data, "hello\n", 6) == 0);
	n = lgetxattr(p, "user.foo", data, sizeof(data));
	ck_assert_msg(n == 3 && memcmp(data, "bar", 3) == 0, "user.foo: %zd %s", n, strerror(errno));

	in(q, sizeof(q), layer, "hl");
	ck_assert_int_eq(lstat(q, &st2), 0);
	ck_assert_int_eq(st2.st_ino, st.st_ino);
	ck_assert_int_eq(st2.st_dev, st.st_dev);

	in(p, sizeof(p), layer, "d/empty");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_uid, 0);

	in(p, sizeof(p), layer, "suid");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 04755);
	ck_assert_int_eq(st.st_uid, 1000);
	ck_assert_int_eq(st.st_gid, 1000);

	in(p, sizeof(p), layer, "sgid-dir");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 02775);

	in(p, sizeof(p), layer, "capbin");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0755);
	n = lgetxattr(p, "security.capability", cap, sizeof(cap));
	ck_assert_msg(n == (ssize_t)sizeof(cap_blob), "security.capability: %zd %s", n, strerror(errno));
	ck_assert(memcmp(cap, cap_blob, sizeof(cap_blob)) == 0);

	in(p, sizeof(p), layer, "rel");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(st.st_uid, 1000);
	ck_assert_int_eq(st.st_gid, 1000);
	ck_assert_int_eq(st.st_mtim.tv_sec, T_LINK);
	n = readlink(p, link, sizeof(link));
	ck_assert_int_eq(n, 6);
	ck_assert(memcmp(link, "d/file", 6) == 0);

	in(p, sizeof(p), layer, "abs");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	n = readlink(p, link, sizeof(link));
	ck_assert_int_eq(n, 11);
	ck_assert(memcmp(link, "/etc/passwd", 11) == 0);

	in(p, sizeof(p), layer, "dangling");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));

	in(p, sizeof(p), layer, "fifo");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);

	in(p, sizeof(p), layer, "null");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(major(st.st_rdev), 1);
	ck_assert_int_eq(minor(st.st_rdev), 3);
	ck_assert_int_eq(st.st_mode & 07777, 0666);

	in(p, sizeof(p), layer, "big");
	ck_assert_int_eq(read_file(p, data, sizeof(data)), BIG_SIZE);
	ck_assert(memcmp(data, big, BIG_SIZE) == 0);

	in(p, sizeof(p), layer, UTF8_NAME);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}

static const enum filter filters[] = { PLAIN, GZIP, ZSTD };

START_TEST(test_full_layer)
{
	fill_big();
	unpack_ok(filters[_i], full_layer, CRID_ARRAY_SIZE(full_layer));
	assert_full_layer();
	assert_outside_untouched();
}
END_TEST

/* Content that is not what the image config claims (the diff ID of another
 * layer) is refused, so it can never be stored under that layer's ID. */
START_TEST(test_diff_id_mismatch)
{
	const struct ent ents[] = { { .path = "file", .data = "EVIL", .size = 4 } };
	const struct ent other[] = { { .path = "file", .data = "real", .size = 4 } };
	struct buf evil = make_tar(filters[_i], ents, 1);
	struct buf real = make_tar(PLAIN, other, 1);
	char claimed[CRID_DIGEST_LEN + 1];
	struct crid_unpack u;
	struct crid_err err;
	pid_t pid;

	diff_id_of(real.data, real.len, claimed);
	ck_assert_int_eq(crid_unpack_start(&u, layer, claimed, &err), 0);
	pid = u.pid;
	ck_assert_int_eq(crid_unpack_write(&u, evil.data, evil.len, &err), 0);
	ck_assert_int_lt(crid_unpack_finish(&u, &err), 0);
	assert_reaped(pid);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strstr(err.msg, "does not match its diff_id") && strstr(err.msg, claimed), "%s", err.msg);
	/* And a bad diff ID is refused before any child starts. */
	ck_assert_int_lt(crid_unpack_start(&u, layer, "sha256:nothex", &err), 0);
	buf_free(&evil);
	buf_free(&real);
}
END_TEST

/* An entry that replaces an earlier one: the new object, not a write
 * through the old (the hard link's other name keeps its content). */
START_TEST(test_replace_entries)
{
	const struct ent ents[] = {
		{ .path = "a", .data = "first" },
		{ .path = "b", .hardlink = "a" },
		{ .path = "b", .data = "second" },
		{ .path = "s", .type = AE_IFLNK, .symlink = "a" },
		{ .path = "s", .data = "not a link" },
		{ .path = "dir/", .type = AE_IFDIR },
		{ .path = "dir", .data = "now a file" },
	};
	char p[PATH_MAX], buf[64];
	struct stat st;

	unpack_ok(PLAIN, ents, CRID_ARRAY_SIZE(ents));
	in(p, sizeof(p), layer, "a");
	ck_assert_int_eq(read_file(p, buf, sizeof(buf)), 5);
	ck_assert(memcmp(buf, "first", 5) == 0);
	in(p, sizeof(p), layer, "b");
	ck_assert_int_eq(read_file(p, buf, sizeof(buf)), 6);
	ck_assert(memcmp(buf, "second", 6) == 0);
	in(p, sizeof(p), layer, "s");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	in(p, sizeof(p), layer, "dir");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

static void assert_stream_fails(const void *data, size_t len, const char *needle)
{
	struct crid_err err;

	ck_assert_int_lt(unpack_into(layer, data, len, &err), 0);
	ck_assert_msg(err.status == CRID_INVALID_ARGUMENT, "status %d: %s", err.status, err.msg);
	ck_assert_msg(strncmp(err.msg, "unpack layer: ", 14) == 0, "%s", err.msg);
	if (needle)
		ck_assert_msg(strstr(err.msg, needle) != NULL, "\"%s\" not in: %s", needle, err.msg);
}

/* Cut in the middle, and cut by a few bytes (the gzip trailer, the zstd
 * checksum): both fail. _i: 0-1 gzip, 2-3 zstd, 4-5 plain. */
START_TEST(test_truncated)
{
	static const enum filter f[] = { GZIP, GZIP, ZSTD, ZSTD, PLAIN, PLAIN };
	const struct ent ents[] = {
		{ .path = "big", .data = big, .size = BIG_SIZE },
		{ .path = "after", .data = "x" },
	};
	struct buf b;
	size_t cut;

	fill_big();
	b = make_tar(f[_i], ents, CRID_ARRAY_SIZE(ents));
	if (f[_i] == PLAIN)
		/* mid-data of "big"; or inside the header of "after" */
		cut = _i % 2 ? 1536 + BIG_SIZE + 100 : BIG_SIZE / 2;
	else
		cut = _i % 2 ? b.len - 3 : b.len / 2;
	assert_stream_fails(b.data, cut, NULL);
	buf_free(&b);
}
END_TEST

START_TEST(test_garbage)
{
	static const unsigned char gzip_garbage[] = { 0x1f, 0x8b, 0x08, 0x00, 'g', 'a', 'r', 'b', 'a', 'g', 'e',
						       0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char zstd_garbage[] = { 0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff,
						       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	char text[4096];

	memset(text, 'z', sizeof(text));
	assert_stream_fails(text, sizeof(text), "read layer");
	assert_stream_fails(gzip_garbage, sizeof(gzip_garbage), "read layer");
	assert_stream_fails(zstd_garbage, sizeof(zstd_garbage), "read layer");
	assert_stream_fails("", 0, "empty");
}
END_TEST

/* A zip is not a layer. */
START_TEST(test_zip_refused)
{
	struct buf b = { 0 };
	struct archive *a = archive_write_new();
	const struct ent e = { .path = "x", .data = "x" };

	ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open(a, &b, NULL, buf_write, NULL), ARCHIVE_OK);
	add_entry(a, &e);
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	assert_stream_fails(b.data, b.len, "read layer");
	buf_free(&b);
}
END_TEST

/* Bytes after the end of the tar (record padding, and then some) are read
 * and ignored; a gzip stream followed by junk still ends cleanly. */
START_TEST(test_trailing_bytes)
{
	const struct ent ents[] = { { .path = "f", .data = "f" } };
	struct buf b = make_tar(GZIP, ents, 1);
	struct crid_err err;
	char p[PATH_MAX];
	struct stat st;
	static char junk[300000];

	ck_assert_int_eq(buf_write(NULL, &b, junk, sizeof(junk)), (la_ssize_t)sizeof(junk));
	ck_assert_msg(unpack_into(layer, b.data, b.len, &err) == 0, "%s", err.msg);
	buf_free(&b);
	in(p, sizeof(p), layer, "f");
	ck_assert_int_eq(lstat(p, &st), 0);
}
END_TEST

/* ---- 3: whiteouts ---- */

static void assert_whiteout(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	in(p, sizeof(p), layer, rel);
	ck_assert_msg(lstat(p, &st) == 0, "%s: %s", rel, strerror(errno));
	ck_assert_msg(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0), "%s is not a whiteout", rel);
}

static void assert_opaque(const char *rel, bool opaque)
{
	char p[PATH_MAX], v[8];
	ssize_t n;

	in(p, sizeof(p), layer, rel);
	n = lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v));
	if (opaque)
		ck_assert_msg(n == 1 && v[0] == 'y', "%s not opaque: %zd %s", rel, n, strerror(errno));
	else
		ck_assert_msg(n < 0 && errno == ENODATA, "%s opaque", rel);
}

static void assert_layer_absent(const char *rel)
{
	char p[PATH_MAX];

	in(p, sizeof(p), layer, rel);
	assert_absent(p);
}

START_TEST(test_whiteouts)
{
	const struct ent ents[] = {
		{ .path = ".wh.gone" },
		{ .path = "sub/", .type = AE_IFDIR, .mtime = T_DIR },
		{ .path = "sub/.wh..wh..opq" },
		{ .path = "sub/keep", .data = "k" },
		{ .path = "new/.wh..wh..opq" },		/* directory not in the tar */
		{ .path = "deep/er/.wh.x", .uid = 7, .gid = 8 }, /* parents not in the tar */
		{ .path = ".wh..wh.plnk" },		/* other metadata: ignored */
		{ .path = "old", .data = "old" },
		{ .path = ".wh.old" },			/* replaces the file */
		{ .path = "olddir/f", .data = "f" },
		{ .path = ".wh.olddir" },			/* replaces the whole directory */
		{ .path = "./.wh.dotted" },
	};
	char p[PATH_MAX];
	struct stat st;

	unpack_ok(PLAIN, ents, CRID_ARRAY_SIZE(ents));
	assert_whiteout("gone");
	assert_layer_absent(".wh.gone");
	assert_opaque("sub", true);
	assert_layer_absent("sub/.wh..wh..opq");
	in(p, sizeof(p), layer, "sub/keep");
	ck_assert_int_eq(lstat(p, &st), 0);
	in(p, sizeof(p), layer, "sub");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(st.st_mtim.tv_sec, T_DIR);
	assert_opaque("new", true);
	assert_layer_absent("new/.wh..wh..opq");
	assert_whiteout("deep/er/x");
	in(p, sizeof(p), layer, "deep/er/x");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(st.st_uid, 7);
	ck_assert_int_eq(st.st_gid, 8);
	assert_opaque("deep", false);
	assert_layer_absent(".wh..wh.plnk");
	assert_layer_absent("plnk");
	assert_layer_absent(".wh..wh..opq");
	assert_opaque(".", false);
	assert_whiteout("old");
	assert_whiteout("olddir");
	assert_whiteout("dotted");
}
END_TEST

/* ---- 4: escapes, each refused with nothing outside the layer changed ---- */

START_TEST(test_escape_dotdot)
{
	const struct ent ents[] = { { .path = "ok", .data = "x" }, { .path = "../outside/x", .data = "pwned" } };

	unpack_refused(ents, CRID_ARRAY_SIZE(ents), "entry \"../outside/x\" escapes the layer directory");
	assert_outside_untouched();
}
END_TEST

START_TEST(test_escape_deep_dotdot)
{
	const struct ent ents[] = { { .path = "../../../../tmp/crid-escape-test", .data = "pwned" } };

	unlink("/tmp/crid-escape-test");
	unpack_refused(ents, 1, "entry \"../../../../tmp/crid-escape-test\" escapes the layer directory");
	assert_outside_untouched();
	assert_absent("/tmp/crid-escape-test");
	assert_layer_absent("tmp");
}
END_TEST

START_TEST(test_escape_dotdot_inside)
{
	/* Lands inside even without the chroot, but a ".." is refused all the same. */
	const struct ent ents[] = { { .path = "a/../b", .data = "x" } };

	unpack_refused(ents, 1, "entry \"a/../b\" escapes the layer directory");
	assert_layer_absent("b");
}
END_TEST

START_TEST(test_escape_absolute)
{
	const struct ent ents[] = { { .path = "/abs/path", .data = "pwned" } };

	unpack_refused(ents, 1, "entry \"/abs/path\" escapes the layer directory (absolute path)");
	assert_outside_untouched();
	assert_absent("/abs");
	assert_layer_absent("abs");
}
END_TEST

START_TEST(test_escape_symlink_relative)
{
	const struct ent ents[] = {
		{ .path = "link", .type = AE_IFLNK, .symlink = "../outside" },
		{ .path = "link/pwned", .data = "pwned" },
	};

	unpack_refused(ents, 2, "entry \"link/pwned\": path goes through the symbolic link \"link\"");
	assert_outside_untouched();
	assert_absent("/pwned");
}
END_TEST

START_TEST(test_escape_symlink_absolute)
{
	const struct ent ents[] = {
		{ .path = "link", .type = AE_IFLNK, .symlink = "/" },
		{ .path = "link/tmp/pwned", .data = "pwned" },
	};

	unlink("/tmp/pwned");
	unpack_refused(ents, 2, "entry \"link/tmp/pwned\": path goes through the symbolic link \"link\"");
	assert_outside_untouched();
	assert_absent("/tmp/pwned");
	assert_absent("/pwned");
	assert_layer_absent("tmp");
}
END_TEST

START_TEST(test_escape_symlink_dir_entry)
{
	const struct ent ents[] = {
		{ .path = "link", .type = AE_IFLNK, .symlink = "../outside" },
		{ .path = "link/sub/", .type = AE_IFDIR },
	};

	unpack_refused(ents, 2, "entry \"link/sub/\": path goes through the symbolic link \"link\"");
	assert_outside_untouched();
}
END_TEST

START_TEST(test_escape_hardlink_dotdot)
{
	const struct ent ents[] = { { .path = "hl", .hardlink = "../outside/canary" } };

	unpack_refused(ents, 1,
		       "entry \"hl\": hard link target \"../outside/canary\" escapes the layer directory");
	assert_outside_untouched();
	assert_layer_absent("hl");
}
END_TEST

START_TEST(test_escape_hardlink_absolute)
{
	const struct ent ents[] = { { .path = "hl", .hardlink = "/etc/passwd" } };
	struct stat before, after;

	ck_assert_int_eq(lstat("/etc/passwd", &before), 0);
	unpack_refused(ents, 1, "entry \"hl\": hard link target \"/etc/passwd\" escapes the layer directory");
	ck_assert_int_eq(lstat("/etc/passwd", &after), 0);
	ck_assert_int_eq(after.st_nlink, before.st_nlink);
	assert_outside_untouched();
	assert_layer_absent("hl");
}
END_TEST

START_TEST(test_escape_hardlink_through_symlink)
{
	const struct ent ents[] = {
		{ .path = "link", .type = AE_IFLNK, .symlink = "../outside" },
		{ .path = "hl", .hardlink = "link/canary" },
	};

	unpack_refused(ents, 2, "entry \"hl\": hard link target goes through the symbolic link \"link\"");
	assert_outside_untouched();
}
END_TEST

START_TEST(test_escape_whiteout_through_symlink)
{
	const struct ent ents[] = {
		{ .path = "link", .type = AE_IFLNK, .symlink = "../outside" },
		{ .path = "link/.wh.canary" },
	};

	unpack_refused(ents, 2, "entry \"link/.wh.canary\": path goes through the symbolic link \"link\"");
	assert_outside_untouched();
}
END_TEST

START_TEST(test_escape_opaque_through_symlink)
{
	const struct ent ents[] = {
		{ .path = "link", .type = AE_IFLNK, .symlink = "../outside" },
		{ .path = "link/.wh..wh..opq" },
	};
	char v[8];

	unpack_refused(ents, 2, "entry \"link/.wh..wh..opq\": path goes through the symbolic link \"link\"");
	assert_outside_untouched();
	ck_assert_int_lt(lgetxattr(outside, "trusted.overlay.opaque", v, sizeof(v)), 0);
}
END_TEST

START_TEST(test_whiteout_bad_names)
{
	static const char *const names[] = { ".wh...", ".wh..", ".wh.", "sub/.wh..." };
	const struct ent ents[] = { { .path = names[_i] } };
	char needle[64];

	FMT(needle, "entry \"%s\": invalid whiteout name", names[_i]);
	unpack_refused(ents, 1, needle);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_overlay_xattr_refused)
{
	const struct ent ents[] = {
		{ .path = "d/", .type = AE_IFDIR, .xattr = "trusted.overlay.redirect", .xattr_value = "/x",
		  .xattr_size = 2 },
	};

	unpack_refused(ents, 1, "entry \"d/\": xattr \"trusted.overlay.redirect\" is reserved for overlayfs");
}
END_TEST

/* ---- the parent side: reaping, fds, signals, early death ---- */

START_TEST(test_no_leaks)
{
	const struct ent ents[] = { { .path = "f", .data = "f" } };
	const struct ent bad[] = { { .path = "../f", .data = "f" } };
	struct buf good = make_tar(GZIP, ents, 1);
	struct crid_err err;
	int before = count_fds();

	for (int i = 0; i < 3; i++) {
		char dir[PATH_MAX];
		struct crid_unpack u;
		pid_t pid;

		FMT(dir, "%s/run-%d", test_dir, i);
		ck_assert_int_eq(mkdir(dir, 0755), 0);
		ck_assert_msg(unpack_into(dir, good.data, good.len, &err) == 0, "%s", err.msg);
		ck_assert_int_lt(unpack_ents(PLAIN, bad, 1, &err), 0);
		ck_assert_int_lt(unpack_into(dir, "junk", 4, &err), 0);
		/* abort while the child waits for more */
		ck_assert_int_eq(crid_unpack_start(&u, dir, SOME_DIFF_ID, &err), 0);
		pid = u.pid;
		ck_assert_int_eq(crid_unpack_write(&u, good.data, good.len / 2, &err), 0);
		crid_unpack_abort(&u);
		assert_reaped(pid);
		ck_assert_int_eq(u.pid, -1);
		crid_unpack_abort(&u); /* twice is harmless */
	}
	ck_assert_int_eq(count_fds(), before);
	buf_free(&good);
}
END_TEST

/* The child dies on the first entry while megabytes are still to come: the
 * write fails with the child's reason, and nothing is left behind. */
START_TEST(test_write_after_refusal)
{
	static char payload[8 * 1024 * 1024];
	const struct ent ents[] = { { .path = "../evil", .data = payload, .size = sizeof(payload) } };
	struct buf b = make_tar(PLAIN, ents, 1);
	struct crid_err err;
	struct crid_unpack u;
	size_t off = 0;
	pid_t pid;
	int r = 0, fds = count_fds();

	ck_assert_int_eq(crid_unpack_start(&u, layer, SOME_DIFF_ID, &err), 0);
	pid = u.pid;
	while (off < b.len && r == 0) {
		size_t n = b.len - off < 65536 ? b.len - off : 65536;

		r = crid_unpack_write(&u, b.data + off, n, &err);
		off += n;
	}
	ck_assert_int_lt(r, 0);
	ck_assert_int_lt(off, b.len);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strstr(err.msg, "unpack layer: entry \"../evil\" escapes the layer directory"), "%s",
		      err.msg);
	assert_reaped(pid);
	/* finish and abort after the child is gone */
	ck_assert_int_lt(crid_unpack_write(&u, "x", 1, &err), 0);
	ck_assert_int_lt(crid_unpack_finish(&u, &err), 0);
	crid_unpack_abort(&u);
	ck_assert_int_eq(count_fds(), fds);
	buf_free(&b);
}
END_TEST

static unsigned long long status_mask(pid_t pid, const char *key)
{
	char path[64], line[256];
	unsigned long long v = ~0ULL;
	size_t klen = strlen(key);
	FILE *f;

	FMT(path, "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			v = strtoull(line + klen + 1, NULL, 16);
	}
	fclose(f);
	return v;
}

/* As in the daemon: shutdown signals blocked, SIGPIPE ignored. The child
 * has neither, and none of the parent's environment. */
START_TEST(test_child_signals_and_env)
{
	struct crid_unpack u;
	struct crid_err err;
	sigset_t sigs;
	char path[64], env[4096];
	size_t n;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &sigs, NULL), 0);
	signal(SIGPIPE, SIG_IGN);
	setenv("CRID_TEST_SECRET", "leak", 1);
	ck_assert_msg(crid_unpack_start(&u, layer, SOME_DIFF_ID, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(status_mask(u.pid, "SigBlk"), 0);
	/* glibc's posix_spawn leaves its own internal signals (32, 33) ignored */
	ck_assert_int_eq(status_mask(u.pid, "SigIgn") & 0x7fffffffULL, 0);
	FMT(path, "/proc/%d/environ", (int)u.pid);
	n = read_file(path, env, sizeof(env) - 1);
	for (size_t i = 0; i < n; i++)
		if (env[i] == '\0')
			env[i] = '\n';
	env[n] = '\0';
	ck_assert_msg(strstr(env, "CRID_TEST_SECRET") == NULL, "%s", env);
	ck_assert_msg(strstr(env, "PATH=") != NULL, "%s", env);
	crid_unpack_abort(&u);
}
END_TEST

START_TEST(test_missing_dir)
{
	char dir[PATH_MAX];
	const struct ent ents[] = { { .path = "f", .data = "f" } };
	struct buf b = make_tar(PLAIN, ents, 1);
	struct crid_err err;

	FMT(dir, "%s/does-not-exist", test_dir);
	ck_assert_int_lt(unpack_into(dir, b.data, b.len, &err), 0);
	ck_assert_int_eq(err.status, CRID_INTERNAL);
	ck_assert_msg(strstr(err.msg, "unpack layer: confine to ") && strstr(err.msg, "No such file"), "%s",
		      err.msg);
	buf_free(&b);
}
END_TEST

/* ---- 5: stacking the layers with overlayfs ---- */

START_TEST(test_overlay_stacking)
{
	const struct ent lower[] = {
		{ .path = "a", .data = "a" },
		{ .path = "d/", .type = AE_IFDIR },
		{ .path = "d/x", .data = "x" },
		{ .path = "keep", .data = "keep" },
	};
	const struct ent upper[] = {
		{ .path = ".wh.a" },
		{ .path = "d/", .type = AE_IFDIR },
		{ .path = "d/.wh..wh..opq" },
		{ .path = "d/y", .data = "y" },
	};
	char l1[PATH_MAX], l2[PATH_MAX], mnt[PATH_MAX], opts[3 * PATH_MAX], p[PATH_MAX];
	struct crid_err err;
	struct buf b;
	struct stat st;

	FMT(l1, "%s/l1", test_dir);
	FMT(l2, "%s/l2", test_dir);
	FMT(mnt, "%s/mnt", test_dir);
	ck_assert_int_eq(mkdir(l1, 0755), 0);
	ck_assert_int_eq(mkdir(l2, 0755), 0);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	b = make_tar(GZIP, lower, CRID_ARRAY_SIZE(lower));
	ck_assert_msg(unpack_into(l1, b.data, b.len, &err) == 0, "%s", err.msg);
	buf_free(&b);
	b = make_tar(ZSTD, upper, CRID_ARRAY_SIZE(upper));
	ck_assert_msg(unpack_into(l2, b.data, b.len, &err) == 0, "%s", err.msg);
	buf_free(&b);

	FMT(opts, "lowerdir=%s:%s", l2, l1);
	if (mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0) {
		ck_assert_msg(errno == EPERM || errno == ENODEV, "mount overlay: %s", strerror(errno));
		fprintf(stderr, "test_overlay_stacking: SKIPPED, cannot mount overlay here: %s\n",
			strerror(errno));
		return;
	}
	in(p, sizeof(p), mnt, "a");
	assert_absent(p);
	in(p, sizeof(p), mnt, "d/x");
	assert_absent(p);
	in(p, sizeof(p), mnt, "d/y");
	ck_assert_int_eq(lstat(p, &st), 0);
	in(p, sizeof(p), mnt, "keep");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
}
END_TEST

static void unmount_teardown(void)
{
	unmount_below(parent_dir);
}

static Suite *unpack_suite(void)
{
	Suite *s = suite_create("unpack");
	TCase *tc = tcase_create("layer");
	TCase *esc = tcase_create("escape");
	TCase *proc = tcase_create("process");
	TCase *ovl = tcase_create("overlay");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_full_layer, 0, (int)CRID_ARRAY_SIZE(filters));
	tcase_add_test(tc, test_replace_entries);
	tcase_add_loop_test(tc, test_diff_id_mismatch, 0, (int)CRID_ARRAY_SIZE(filters));
	tcase_add_loop_test(tc, test_truncated, 0, 6);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_zip_refused);
	tcase_add_test(tc, test_trailing_bytes);
	tcase_add_test(tc, test_whiteouts);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(esc, setup, teardown);
	tcase_add_test(esc, test_escape_dotdot);
	tcase_add_test(esc, test_escape_deep_dotdot);
	tcase_add_test(esc, test_escape_dotdot_inside);
	tcase_add_test(esc, test_escape_absolute);
	tcase_add_test(esc, test_escape_symlink_relative);
	tcase_add_test(esc, test_escape_symlink_absolute);
	tcase_add_test(esc, test_escape_symlink_dir_entry);
	tcase_add_test(esc, test_escape_hardlink_dotdot);
	tcase_add_test(esc, test_escape_hardlink_absolute);
	tcase_add_test(esc, test_escape_hardlink_through_symlink);
	tcase_add_test(esc, test_escape_whiteout_through_symlink);
	tcase_add_test(esc, test_escape_opaque_through_symlink);
	tcase_add_loop_test(esc, test_whiteout_bad_names, 0, 4);
	tcase_add_test(esc, test_overlay_xattr_refused);
	suite_add_tcase(s, esc);

	tcase_add_checked_fixture(proc, setup, teardown);
	tcase_set_timeout(proc, 30);
	tcase_add_test(proc, test_no_leaks);
	tcase_add_test(proc, test_write_after_refusal);
	tcase_add_test(proc, test_child_signals_and_env);
	tcase_add_test(proc, test_missing_dir);
	suite_add_tcase(s, proc);

	tcase_add_checked_fixture(ovl, setup, teardown);
	tcase_add_unchecked_fixture(ovl, NULL, unmount_teardown);
	tcase_add_test(ovl, test_overlay_stacking);
	suite_add_tcase(s, ovl);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	/* The unpacker child is this binary run again (/proc/self/exe). */
	if (argc > 1 && strcmp(argv[1], CRID_UNPACK_ARG) == 0)
		return crid_unpack_main(argc, argv);
	/* As in the daemon: a dead child is EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* For the UTF-8 names the tests write (the child sets its own). */
	setlocale(LC_CTYPE, "C.UTF-8");
	if (geteuid() != 0) {
		fprintf(stderr, "test_unpack needs root (chroot, chown, mknod, trusted xattrs)\n");
		return 1;
	}
	if (snprintf(parent_dir, sizeof(parent_dir), "%s/crid-test-unpack-XXXXXX",
		     getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") >= (int)sizeof(parent_dir) ||
	    !mkdtemp(parent_dir)) {
		perror("mkdtemp");
		return 1;
	}
	sr = srunner_create(unpack_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unmount_below(parent_dir);
	rm_rf(parent_dir);
	return failed == 0 ? 0 : 1;
}
