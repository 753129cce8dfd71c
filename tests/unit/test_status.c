/* Unit tests of src/common/error: status names, the errno to status mapping
 * and the struct crid_err contract (set, wrap, nomem, clear), including the
 * truncation of messages that do not fit in CRID_ERR_MSG_MAX bytes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

START_TEST(test_status_names)
{
	static const struct {
		int code;
		const char *name;
	} cases[] = {
		{ CRID_OK, "OK" },
		{ CRID_CANCELLED, "CANCELLED" },
		{ CRID_UNKNOWN, "UNKNOWN" },
		{ CRID_INVALID_ARGUMENT, "INVALID_ARGUMENT" },
		{ CRID_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED" },
		{ CRID_NOT_FOUND, "NOT_FOUND" },
		{ CRID_ALREADY_EXISTS, "ALREADY_EXISTS" },
		{ CRID_PERMISSION_DENIED, "PERMISSION_DENIED" },
		{ CRID_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED" },
		{ CRID_FAILED_PRECONDITION, "FAILED_PRECONDITION" },
		{ CRID_ABORTED, "ABORTED" },
		{ CRID_OUT_OF_RANGE, "OUT_OF_RANGE" },
		{ CRID_UNIMPLEMENTED, "UNIMPLEMENTED" },
		{ CRID_INTERNAL, "INTERNAL" },
		{ CRID_UNAVAILABLE, "UNAVAILABLE" },
		{ CRID_DATA_LOSS, "DATA_LOSS" },
		{ CRID_UNAUTHENTICATED, "UNAUTHENTICATED" },
	};

	ck_assert_uint_eq(sizeof(cases) / sizeof(cases[0]), 17);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* The numeric values are the gRPC ones, 0 to 16 in order. */
		ck_assert_int_eq(cases[i].code, (int)i);
		ck_assert_str_eq(crid_status_name(cases[i].code), cases[i].name);
	}
}
END_TEST

START_TEST(test_status_name_out_of_range)
{
	ck_assert_str_eq(crid_status_name(17), "UNKNOWN");
	ck_assert_str_eq(crid_status_name(100), "UNKNOWN");
	ck_assert_str_eq(crid_status_name(-1), "UNKNOWN");
	ck_assert_str_eq(crid_status_name(-17), "UNKNOWN");
	ck_assert_str_eq(crid_status_name(0x7fffffff), "UNKNOWN");
	ck_assert_str_eq(crid_status_name((int)0x80000000u), "UNKNOWN");
}
END_TEST

START_TEST(test_status_from_errno)
{
	static const struct {
		int errnum, status;
	} cases[] = {
		{ 0, CRID_OK },
		{ ENOENT, CRID_NOT_FOUND },
		{ EEXIST, CRID_ALREADY_EXISTS },
		{ EINVAL, CRID_INVALID_ARGUMENT },
		{ ENAMETOOLONG, CRID_INVALID_ARGUMENT },
		{ EPERM, CRID_PERMISSION_DENIED },
		{ EACCES, CRID_PERMISSION_DENIED },
		{ ENOMEM, CRID_RESOURCE_EXHAUSTED },
		{ ENOSPC, CRID_RESOURCE_EXHAUSTED },
		{ EMFILE, CRID_RESOURCE_EXHAUSTED },
		{ ENFILE, CRID_RESOURCE_EXHAUSTED },
		{ ETIMEDOUT, CRID_DEADLINE_EXCEEDED },
		{ ECANCELED, CRID_CANCELLED },
		{ ENOSYS, CRID_UNIMPLEMENTED },
		{ EOPNOTSUPP, CRID_UNIMPLEMENTED },
		{ EIO, CRID_INTERNAL },
		{ EBADF, CRID_INTERNAL },
		{ EPIPE, CRID_INTERNAL },
		{ 99999, CRID_INTERNAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(crid_status_from_errno(cases[i].errnum) == cases[i].status,
			      "errno %d: got %s, want %s", cases[i].errnum,
			      crid_status_name(crid_status_from_errno(cases[i].errnum)),
			      crid_status_name(cases[i].status));
}
END_TEST

START_TEST(test_err_clear)
{
	struct crid_err err;

	memset(&err, 'x', sizeof(err));
	crid_err_clear(&err);
	ck_assert_int_eq(err.status, CRID_OK);
	ck_assert_int_eq(err.errnum, 0);
	ck_assert_str_eq(err.msg, "");
}
END_TEST

START_TEST(test_err_set_without_errno)
{
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_err_set(&err, CRID_NOT_FOUND, 0, "pod %s not found (%d)", "abc", 3), -EINVAL);
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_int_eq(err.errnum, 0);
	ck_assert_str_eq(err.msg, "pod abc not found (3)");
}
END_TEST

START_TEST(test_err_set_with_errno)
{
	struct crid_err err;
	char expect[256];

	crid_err_clear(&err);
	ck_assert_int_eq(crid_err_set(&err, CRID_INTERNAL, ENOENT, "open %s", "/x"), -ENOENT);
	ck_assert_int_eq(err.status, CRID_INTERNAL);
	ck_assert_int_eq(err.errnum, ENOENT);
	ck_assert_str_eq(err.msg, "open /x: No such file or directory");

	/* The status given is kept even when the errno maps elsewhere. */
	ck_assert_int_eq(crid_err_set(&err, CRID_UNAVAILABLE, EACCES, "bind"), -EACCES);
	ck_assert_int_eq(err.status, CRID_UNAVAILABLE);
	ck_assert_int_eq(err.errnum, EACCES);
	snprintf(expect, sizeof(expect), "bind: %s", strerror(EACCES));
	ck_assert_str_eq(err.msg, expect);

	/* A second set replaces the first entirely. */
	ck_assert_int_eq(crid_err_set(&err, CRID_ABORTED, 0, "short"), -EINVAL);
	ck_assert_int_eq(err.status, CRID_ABORTED);
	ck_assert_int_eq(err.errnum, 0);
	ck_assert_str_eq(err.msg, "short");
}
END_TEST

START_TEST(test_err_set_unknown_errno)
{
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_err_set(&err, CRID_INTERNAL, 9999, "weird"), -9999);
	ck_assert_int_eq(err.errnum, 9999);
	ck_assert_msg(strncmp(err.msg, "weird: ", 7) == 0 && strlen(err.msg) > 7, "msg \"%s\"", err.msg);
}
END_TEST

START_TEST(test_err_set_truncates)
{
	struct crid_err err;
	char big[3000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	crid_err_clear(&err);
	ck_assert_int_eq(crid_err_set(&err, CRID_INTERNAL, 0, "%s", big), -EINVAL);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(err.msg[CRID_ERR_MSG_MAX - 1], '\0');

	/* With errno and a message that already fills the buffer. */
	ck_assert_int_eq(crid_err_set(&err, CRID_INTERNAL, EIO, "%s", big), -EIO);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(err.errnum, EIO);

	/* A message that leaves room for part of ": strerror". */
	ck_assert_int_eq(crid_err_set(&err, CRID_INTERNAL, EIO, "%.*s", CRID_ERR_MSG_MAX - 5, big), -EIO);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(memcmp(err.msg + CRID_ERR_MSG_MAX - 5, ": In", 4), 0);
}
END_TEST

START_TEST(test_err_wrap)
{
	struct crid_err err;

	crid_err_clear(&err);
	crid_err_set(&err, CRID_NOT_FOUND, ENOENT, "open %s", "/etc/x");
	ck_assert_int_eq(crid_err_wrap(&err, "load %s: ", "config"), -ENOENT);
	ck_assert_int_eq(crid_err_wrap(&err, "start: "), -ENOENT);
	ck_assert_str_eq(err.msg, "start: load config: open /etc/x: No such file or directory");
	/* Wrapping keeps status and errno. */
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_int_eq(err.errnum, ENOENT);
}
END_TEST

START_TEST(test_err_wrap_without_errno)
{
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_err_set(&err, CRID_INVALID_ARGUMENT, 0, "bad name"), -EINVAL);
	ck_assert_int_eq(crid_err_wrap(&err, "create pod %d: ", 7), -EINVAL);
	ck_assert_str_eq(err.msg, "create pod 7: bad name");
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_err_wrap_empty_prefix)
{
	struct crid_err err;

	crid_err_clear(&err);
	crid_err_set(&err, CRID_INTERNAL, EIO, "read");
	ck_assert_int_eq(crid_err_wrap(&err, "%s", ""), -EIO);
	ck_assert_str_eq(err.msg, "read: Input/output error");
}
END_TEST

START_TEST(test_err_wrap_long_cause)
{
	struct crid_err err;
	char cause[CRID_ERR_MSG_MAX];

	/* A cause of 1023 characters, the most the buffer holds. */
	memset(cause, 'c', sizeof(cause) - 1);
	cause[sizeof(cause) - 1] = '\0';
	crid_err_clear(&err);
	crid_err_set(&err, CRID_INTERNAL, 0, "%s", cause);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(crid_err_wrap(&err, "outer: "), -EINVAL);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(strncmp(err.msg, "outer: ", 7), 0);
	for (size_t i = 7; i < CRID_ERR_MSG_MAX - 1; i++)
		ck_assert_int_eq(err.msg[i], 'c');
	ck_assert_int_eq(err.status, CRID_INTERNAL);
}
END_TEST

START_TEST(test_err_wrap_long_prefix)
{
	struct crid_err err;
	char prefix[2000];

	/* A prefix longer than the buffer: the result is the clipped prefix, still
	 * NUL-terminated, and nothing past the buffer is touched (ASan). */
	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	crid_err_clear(&err);
	crid_err_set(&err, CRID_NOT_FOUND, ENOENT, "cause");
	ck_assert_int_eq(crid_err_wrap(&err, "%s", prefix), -ENOENT);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	for (size_t i = 0; i < CRID_ERR_MSG_MAX - 1; i++)
		ck_assert_int_eq(err.msg[i], 'p');
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_int_eq(err.errnum, ENOENT);
}
END_TEST

START_TEST(test_err_wrap_long_prefix_and_long_cause)
{
	struct crid_err err;
	char prefix[CRID_ERR_MSG_MAX - 1]; /* 1022 characters */
	char cause[CRID_ERR_MSG_MAX];      /* 1023 characters */

	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	memset(cause, 'c', sizeof(cause) - 1);
	cause[sizeof(cause) - 1] = '\0';
	crid_err_clear(&err);
	crid_err_set(&err, CRID_INTERNAL, 0, "%s", cause);
	crid_err_wrap(&err, "%s", prefix);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(strncmp(err.msg, prefix, sizeof(prefix) - 1), 0);
	ck_assert_int_eq(err.msg[CRID_ERR_MSG_MAX - 2], 'c');
}
END_TEST

START_TEST(test_err_wrap_repeatedly)
{
	struct crid_err err;

	crid_err_clear(&err);
	crid_err_set(&err, CRID_INTERNAL, EIO, "x");
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(crid_err_wrap(&err, "layer %d: ", i), -EIO);
	ck_assert_uint_eq(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
	ck_assert_int_eq(strncmp(err.msg, "layer 499: layer 498: ", 22), 0);
}
END_TEST

START_TEST(test_err_nomem)
{
	struct crid_err err;
	char expect[128];

	crid_err_clear(&err);
	ck_assert_int_eq(crid_err_nomem(&err, "pod record"), -ENOMEM);
	ck_assert_int_eq(err.status, CRID_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(err.errnum, ENOMEM);
	snprintf(expect, sizeof(expect), "allocate pod record: %s", strerror(ENOMEM));
	ck_assert_str_eq(err.msg, expect);
	ck_assert_str_eq(err.msg, "allocate pod record: Cannot allocate memory");
}
END_TEST

static Suite *status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_status_names);
	tcase_add_test(tc, test_status_name_out_of_range);
	tcase_add_test(tc, test_status_from_errno);
	tcase_add_test(tc, test_err_clear);
	tcase_add_test(tc, test_err_set_without_errno);
	tcase_add_test(tc, test_err_set_with_errno);
	tcase_add_test(tc, test_err_set_unknown_errno);
	tcase_add_test(tc, test_err_set_truncates);
	tcase_add_test(tc, test_err_wrap);
	tcase_add_test(tc, test_err_wrap_without_errno);
	tcase_add_test(tc, test_err_wrap_empty_prefix);
	tcase_add_test(tc, test_err_wrap_long_cause);
	tcase_add_test(tc, test_err_wrap_long_prefix);
	tcase_add_test(tc, test_err_wrap_long_prefix_and_long_cause);
	tcase_add_test(tc, test_err_wrap_repeatedly);
	tcase_add_test(tc, test_err_nomem);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(status_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
