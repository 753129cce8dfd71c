/* Unit tests of src/image/reference.c: the reference grammar, Docker's
 * normalisation, and the messages of what is refused. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "image/reference.h"

#define HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HEX2 "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define HEX_UPPER "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
#define DG "sha256:" HEX
#define DG2 "sha256:" HEX2

struct valid_case {
	const char *in;
	const char *domain, *path, *tag, *digest;
	const char *str; /* crid_image_ref_string */
};

static const struct valid_case valid[] = {
	/* Docker Hub official images */
	{ "busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest" },
	{ "busybox:1.36", "docker.io", "library/busybox", "1.36", NULL, "docker.io/library/busybox:1.36" },
	{ "busybox:latest", "docker.io", "library/busybox", "latest", NULL,
	  "docker.io/library/busybox:latest" },
	{ "library/busybox:musl", "docker.io", "library/busybox", "musl", NULL,
	  "docker.io/library/busybox:musl" },
	{ "docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
	  "docker.io/library/busybox:latest" },
	{ "docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
	  "docker.io/library/busybox:1.36" },
	{ "index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
	  "docker.io/library/busybox:latest" },
	{ "index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", NULL,
	  "docker.io/library/busybox:1" },
	/* Docker Hub user images */
	{ "user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest" },
	{ "user/app:v1.2.3", "docker.io", "user/app", "v1.2.3", NULL, "docker.io/user/app:v1.2.3" },
	{ "user/team/app:edge", "docker.io", "user/team/app", "edge", NULL, "docker.io/user/team/app:edge" },
	{ "docker.io/user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest" },
	{ "index.docker.io/user/app:1", "docker.io", "user/app", "1", NULL, "docker.io/user/app:1" },
	/* localhost */
	{ "localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest" },
	{ "localhost:5000/app:dev", "localhost:5000", "app", "dev", NULL, "localhost:5000/app:dev" },
	{ "localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest", NULL, "localhost:5000/a/b/c:latest" },
	/* no '/': "localhost" is a Hub name, and ":5000" its tag */
	{ "localhost", "docker.io", "library/localhost", "latest", NULL,
	  "docker.io/library/localhost:latest" },
	{ "localhost:5000", "docker.io", "library/localhost", "5000", NULL,
	  "docker.io/library/localhost:5000" },
	/* other registries */
	{ "registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", NULL, "registry.k8s.io/pause:3.9" },
	{ "gcr.io/google-containers/pause:3.1", "gcr.io", "google-containers/pause", "3.1", NULL,
	  "gcr.io/google-containers/pause:3.1" },
	{ "quay.io/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd", "v3.5.0", NULL,
	  "quay.io/coreos/etcd:v3.5.0" },
	{ "ghcr.io/owner/repo/sub:sha-0123abc", "ghcr.io", "owner/repo/sub", "sha-0123abc", NULL,
	  "ghcr.io/owner/repo/sub:sha-0123abc" },
	{ "registry:5000/app", "registry:5000", "app", "latest", NULL, "registry:5000/app:latest" },
	{ "example.com:443/team/app", "example.com:443", "team/app", "latest", NULL,
	  "example.com:443/team/app:latest" },
	{ "my-registry.example.com/app", "my-registry.example.com", "app", "latest", NULL,
	  "my-registry.example.com/app:latest" },
	{ "a.b-c.d--e.io:65535/x/y", "a.b-c.d--e.io:65535", "x/y", "latest", NULL,
	  "a.b-c.d--e.io:65535/x/y:latest" },
	{ "xn--bcher-kva.example/app", "xn--bcher-kva.example", "app", "latest", NULL,
	  "xn--bcher-kva.example/app:latest" },
	/* a first component with uppercase letters is a host (Docker's rule) */
	{ "Registry.Example.COM/app", "Registry.Example.COM", "app", "latest", NULL,
	  "Registry.Example.COM/app:latest" },
	{ "MyRegistry/app", "MyRegistry", "app", "latest", NULL, "MyRegistry/app:latest" },
	/* IP addresses */
	{ "127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", NULL, "127.0.0.1:5000/app:latest" },
	{ "10.0.0.1/ns/app:1", "10.0.0.1", "ns/app", "1", NULL, "10.0.0.1/ns/app:1" },
	{ "[::1]:5000/app:1", "[::1]:5000", "app", "1", NULL, "[::1]:5000/app:1" },
	{ "[2001:db8::1]/app", "[2001:db8::1]", "app", "latest", NULL, "[2001:db8::1]/app:latest" },
	{ "[fe80::1:2]:443/a/b@" DG, "[fe80::1:2]:443", "a/b", NULL, DG, "[fe80::1:2]:443/a/b@" DG },
	/* digests */
	{ "busybox@" DG, "docker.io", "library/busybox", NULL, DG, "docker.io/library/busybox@" DG },
	/* both: the digest names the image */
	{ "busybox:1.36@" DG, "docker.io", "library/busybox", "1.36", DG, "docker.io/library/busybox@" DG },
	{ "docker.io/library/busybox@" DG2, "docker.io", "library/busybox", NULL, DG2,
	  "docker.io/library/busybox@" DG2 },
	{ "localhost:5000/app@" DG, "localhost:5000", "app", NULL, DG, "localhost:5000/app@" DG },
	{ "localhost:5000/app:v2@" DG, "localhost:5000", "app", "v2", DG, "localhost:5000/app@" DG },
	/* path component separators */
	{ "foo_bar", "docker.io", "library/foo_bar", "latest", NULL, "docker.io/library/foo_bar:latest" },
	{ "foo__bar", "docker.io", "library/foo__bar", "latest", NULL, "docker.io/library/foo__bar:latest" },
	{ "foo-bar", "docker.io", "library/foo-bar", "latest", NULL, "docker.io/library/foo-bar:latest" },
	{ "foo---bar", "docker.io", "library/foo---bar", "latest", NULL,
	  "docker.io/library/foo---bar:latest" },
	{ "foo.bar", "docker.io", "library/foo.bar", "latest", NULL, "docker.io/library/foo.bar:latest" },
	{ "a", "docker.io", "library/a", "latest", NULL, "docker.io/library/a:latest" },
	{ "0", "docker.io", "library/0", "latest", NULL, "docker.io/library/0:latest" },
	{ "ns/a1.b2_c3__d4-e5/f6", "docker.io", "ns/a1.b2_c3__d4-e5/f6", "latest", NULL,
	  "docker.io/ns/a1.b2_c3__d4-e5/f6:latest" },
	/* tags */
	{ "busybox:_under", "docker.io", "library/busybox", "_under", NULL,
	  "docker.io/library/busybox:_under" },
	{ "busybox:UPPER.case-1", "docker.io", "library/busybox", "UPPER.case-1", NULL,
	  "docker.io/library/busybox:UPPER.case-1" },
	{ "busybox:v1.2.3-rc.1", "docker.io", "library/busybox", "v1.2.3-rc.1", NULL,
	  "docker.io/library/busybox:v1.2.3-rc.1" },
	{ "busybox:A", "docker.io", "library/busybox", "A", NULL, "docker.io/library/busybox:A" },
	{ "busybox:1..--__", "docker.io", "library/busybox", "1..--__", NULL,
	  "docker.io/library/busybox:1..--__" },
};

static void check_str(const char *what, const char *in, const char *got, const char *want)
{
	if (!want)
		ck_assert_msg(got == NULL, "%s: %s is \"%s\", expected none", in, what, got);
	else
		ck_assert_msg(got && strcmp(got, want) == 0, "%s: %s is \"%s\", expected \"%s\"", in, what,
			      got ? got : "(null)", want);
}

static void check_ref(const struct crid_image_ref *ref, const struct valid_case *c)
{
	check_str("domain", c->in, ref->domain, c->domain);
	check_str("path", c->in, ref->path, c->path);
	check_str("tag", c->in, ref->tag, c->tag);
	check_str("digest", c->in, ref->digest, c->digest);
}

START_TEST(test_valid)
{
	const struct valid_case *c = &valid[_i];
	struct crid_image_ref ref, again;
	struct crid_err err = { 0 };
	_cleanup_free_ char *str = NULL;
	int r;

	r = crid_image_ref_parse(c->in, &ref, &err);
	ck_assert_msg(r == 0, "%s: %s", c->in, err.msg);
	check_ref(&ref, c);
	str = crid_image_ref_string(&ref);
	check_str("string", c->in, str, c->str);
	/* The normalised string parses to the same reference (less the tag
	 * when a digest names the image). */
	r = crid_image_ref_parse(str, &again, &err);
	ck_assert_msg(r == 0, "%s: %s", str, err.msg);
	check_str("domain again", str, again.domain, c->domain);
	check_str("path again", str, again.path, c->path);
	check_str("tag again", str, again.tag, c->digest ? NULL : c->tag);
	check_str("digest again", str, again.digest, c->digest);
	crid_image_ref_free(&again);
	crid_image_ref_free(&ref);
	ck_assert_ptr_null(ref.domain);
}
END_TEST

struct invalid_case {
	const char *in;
	const char *quoted; /* how the message repeats in; NULL when as is */
	const char *what;   /* a part of the message saying what is wrong */
};

static const struct invalid_case invalid[] = {
	{ "", NULL, "it is empty" },
	{ " ", NULL, "whitespace" },
	{ "busybox latest", NULL, "whitespace" },
	{ " busybox", NULL, "whitespace" },
	{ "busybox\n", "busybox\\x0a", "whitespace" },
	{ "bus\tybox", "bus\\x09ybox", "whitespace" },
	{ "busybox\x01", "busybox\\x01", "byte 0x01 is not allowed" },
	{ "b\xc3\xa4r", "b\\xc3\\xa4r", "byte 0xc3 is not allowed" },
	{ "busybox!", NULL, "character '!' is not allowed" },
	{ "busybox:ta+g", NULL, "character '+' is not allowed" },
	{ "bus\"ybox", "bus\\\"ybox", "character '\"' is not allowed" },
	{ "busybox:", NULL, "nothing after ':'" },
	{ "busybox@", NULL, "nothing after '@'" },
	{ "busybox:tag@", NULL, "nothing after '@'" },
	{ "busybox@sha256:", NULL, "is not \"sha256:\" followed by 64 lowercase hex digits" },
	{ "busybox@sha256:abc", NULL, "digest \"sha256:abc\" is not" },
	{ "busybox@sha256:" HEX "0", NULL, "64 lowercase hex digits" },
	{ "busybox@sha256:" HEX_UPPER, NULL, "64 lowercase hex digits" },
	{ "busybox@" HEX, NULL, "64 lowercase hex digits" },
	{ "busybox@" DG "@" DG, NULL, "64 lowercase hex digits" },
	{ "busybox@sha512:" HEX HEX, NULL, "unsupported digest algorithm \"sha512\"" },
	{ "busybox@md5:d41d8cd98f00b204e9800998ecf8427e", NULL, "unsupported digest algorithm \"md5\"" },
	{ "Busybox", NULL, "repository name must be lowercase" },
	{ "user/App", NULL, "repository name must be lowercase" },
	{ "docker.io/Library/busybox", NULL, "repository name must be lowercase" },
	{ "a//b", NULL, "empty path component" },
	{ "/busybox", NULL, "starts with '/'" },
	{ "busybox/", NULL, "empty path component" },
	{ "foo/bar/", NULL, "empty path component" },
	{ "docker.io/", NULL, "no repository path after the registry host" },
	{ "localhost:5000/", NULL, "no repository path after the registry host" },
	{ "http://registry.example.com/app", NULL, "not a URL (remove the \"http://\")" },
	{ "https://docker.io/library/busybox:latest", NULL, "not a URL (remove the \"https://\")" },
	{ "-busybox", NULL, "path component \"-busybox\" is not valid" },
	{ "busybox-", NULL, "path component \"busybox-\" is not valid" },
	{ "ns/-app", NULL, "path component \"-app\" is not valid" },
	{ "bus..box", NULL, "path component \"bus..box\" is not valid" },
	{ "bus___box", NULL, "path component \"bus___box\" is not valid" },
	{ "bus_.box", NULL, "path component \"bus_.box\" is not valid" },
	{ "busybox:tag:tag2", NULL, "path component \"busybox:tag\" is not valid" },
	{ "busybox:-tag", NULL, "tag \"-tag\" must start with" },
	{ "busybox:.tag", NULL, "tag \".tag\" must start with" },
	{ "host:port/app", NULL, "registry host \"host:port\" is not valid" },
	{ "host:99999/app", NULL, "registry host \"host:99999\" is not valid" },
	{ "host:0/app", NULL, "registry host \"host:0\" is not valid" },
	{ "[::1/app", NULL, "registry host \"[::1\" is not valid" },
	{ "[]:5000/app", NULL, "registry host \"[]:5000\" is not valid" },
	{ "[zz::1]/app", NULL, "registry host \"[zz::1]\" is not valid" },
	{ "-host.io/app", NULL, "registry host \"-host.io\" is not valid" },
	{ "host-.io/app", NULL, "registry host \"host-.io\" is not valid" },
	{ "host..io/app", NULL, "registry host \"host..io\" is not valid" },
	/* a '.' makes the first component a host, and hosts have no '_' */
	{ "a1.b2_c3/f6", NULL, "registry host \"a1.b2_c3\" is not valid" },
	{ "@" DG, NULL, "no repository name" },
	{ ":tag", NULL, "no repository name" },
	{ HEX, NULL, "image ID, not a repository name" },
};

static void check_invalid(const char *in, const char *quoted, const char *what)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };
	char prefix[1024];
	int r;

	memset(&ref, 0xaa, sizeof(ref));
	r = crid_image_ref_parse(in, &ref, &err);
	ck_assert_msg(r == -EINVAL, "\"%s\" parsed (r=%d, domain=%s path=%s)", quoted, r,
		      r == 0 ? ref.domain : "", r == 0 ? ref.path : "");
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	snprintf(prefix, sizeof(prefix), "invalid image reference \"%s\": ", quoted);
	ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "message \"%s\" does not start with %s",
		      err.msg, prefix);
	ck_assert_msg(strstr(err.msg, what), "message \"%s\" does not say \"%s\"", err.msg, what);
	/* Nothing was handed out. */
	ck_assert_ptr_null(ref.domain);
	ck_assert_ptr_null(ref.path);
	ck_assert_ptr_null(ref.tag);
	ck_assert_ptr_null(ref.digest);
}

START_TEST(test_invalid)
{
	const struct invalid_case *c = &invalid[_i];

	check_invalid(c->in, c->quoted ? c->quoted : c->in, c->what);
}
END_TEST

START_TEST(test_exact_message)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };

	ck_assert_int_eq(crid_image_ref_parse("Busybox", &ref, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "invalid image reference \"Busybox\": repository name must be lowercase");
	ck_assert_int_eq(crid_image_ref_parse("busybox@sha512:" HEX HEX, &ref, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "invalid image reference \"busybox@sha512:" HEX HEX
				  "\": unsupported digest algorithm \"sha512\" (only sha256 is supported)");
}
END_TEST

START_TEST(test_null)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };

	ck_assert_int_eq(crid_image_ref_parse(NULL, &ref, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_ptr_null(ref.domain);
}
END_TEST

/* "docker.io/library/" is 18 characters: a Hub name of n characters makes
 * a repository name of 18 + n. */
START_TEST(test_name_length)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };
	char name[300], quoted[300];

	memset(name, 'a', 237);
	name[237] = '\0';
	ck_assert_msg(crid_image_ref_parse(name, &ref, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(strlen(ref.domain) + 1 + strlen(ref.path), 255);
	crid_image_ref_free(&ref);

	memset(name, 'a', 238);
	name[238] = '\0';
	memcpy(quoted, name, sizeof(name));
	check_invalid(name, quoted, "repository name is 256 characters long, more than 255");

	/* Long names elsewhere: a registry host and path of 255 in all. */
	memset(name, 'b', sizeof(name));
	memcpy(name, "registry.example.com/", 21);
	name[255] = '\0';
	ck_assert_msg(crid_image_ref_parse(name, &ref, &err) == 0, "%s", err.msg);
	crid_image_ref_free(&ref);
	name[255] = 'b';
	name[256] = '\0';
	check_invalid(name, name, "256 characters long");
}
END_TEST

START_TEST(test_long_input_quoted_short)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };
	char name[2000];

	memset(name, 'A', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(crid_image_ref_parse(name, &ref, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "AAA...\": "), "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "must be lowercase"), "%s", err.msg);
}
END_TEST

START_TEST(test_tag_length)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };
	char in[200];

	memcpy(in, "busybox:", 8);
	memset(in + 8, 't', 128);
	in[8 + 128] = '\0';
	ck_assert_msg(crid_image_ref_parse(in, &ref, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(strlen(ref.tag), 128);
	crid_image_ref_free(&ref);
	in[8 + 128] = 't';
	in[8 + 129] = '\0';
	check_invalid(in, in, "tag is 129 characters long, more than 128");
}
END_TEST

START_TEST(test_accessors)
{
	struct crid_image_ref ref;
	struct crid_err err = { 0 };
	_cleanup_free_ char *repo = NULL, *tagged = NULL, *with = NULL, *str = NULL;
	_cleanup_free_ char *tagged2 = NULL, *str2 = NULL, *with2 = NULL;

	ck_assert_int_eq(crid_image_ref_parse("busybox:1.36@" DG, &ref, &err), 0);
	repo = crid_image_ref_repository(&ref);
	tagged = crid_image_ref_tagged(&ref);
	with = crid_image_ref_with_digest(&ref, DG2);
	str = crid_image_ref_string(&ref);
	ck_assert_str_eq(repo, "docker.io/library/busybox");
	ck_assert_str_eq(tagged, "docker.io/library/busybox:1.36");
	ck_assert_str_eq(with, "docker.io/library/busybox@" DG2);
	ck_assert_str_eq(str, "docker.io/library/busybox@" DG);
	crid_image_ref_free(&ref);

	ck_assert_int_eq(crid_image_ref_parse("localhost:5000/ns/app@" DG, &ref, &err), 0);
	tagged2 = crid_image_ref_tagged(&ref);
	str2 = crid_image_ref_string(&ref);
	with2 = crid_image_ref_with_digest(&ref, ref.digest);
	ck_assert_ptr_null(tagged2);
	ck_assert_str_eq(str2, "localhost:5000/ns/app@" DG);
	ck_assert_str_eq(with2, "localhost:5000/ns/app@" DG);
	crid_image_ref_free(&ref);
}
END_TEST

START_TEST(test_digest_valid)
{
	ck_assert(crid_digest_valid(DG));
	ck_assert(crid_digest_valid(DG2));
	ck_assert(!crid_digest_valid(NULL));
	ck_assert(!crid_digest_valid(""));
	ck_assert(!crid_digest_valid("sha256:"));
	ck_assert(!crid_digest_valid(HEX));
	ck_assert(!crid_digest_valid("sha256" HEX));
	ck_assert(!crid_digest_valid("sha256:" HEX_UPPER));
	ck_assert(!crid_digest_valid(DG "0"));
	ck_assert(
		!crid_digest_valid("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
	ck_assert(!crid_digest_valid(
		"sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	ck_assert(!crid_digest_valid("SHA256:" HEX));
	ck_assert(!crid_digest_valid("sha512:" HEX HEX));
	ck_assert(!crid_digest_valid(" " DG));
}
END_TEST

START_TEST(test_free_zeroed)
{
	struct crid_image_ref ref = { 0 };

	crid_image_ref_free(&ref);
	crid_image_ref_free(&ref);
}
END_TEST

static Suite *reference_suite(void)
{
	Suite *s = suite_create("reference");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_valid, 0, (int)CRID_ARRAY_SIZE(valid));
	tcase_add_loop_test(tc, test_invalid, 0, (int)CRID_ARRAY_SIZE(invalid));
	tcase_add_test(tc, test_exact_message);
	tcase_add_test(tc, test_null);
	tcase_add_test(tc, test_name_length);
	tcase_add_test(tc, test_long_input_quoted_short);
	tcase_add_test(tc, test_tag_length);
	tcase_add_test(tc, test_accessors);
	tcase_add_test(tc, test_digest_valid);
	tcase_add_test(tc, test_free_zeroed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reference_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
