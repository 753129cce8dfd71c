/* Unit tests of src/rpc/grpc_wire: the 5-byte message prefix, the unary body
 * check, grpc-timeout parsing, grpc-message percent-encoding and the
 * content-type check. Everything here is a pure function, so every expected
 * value is written out by hand rather than computed by the code under test. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "rpc/grpc_wire.h"

#define NS_PER_S 1000000000LL

/* ---------------------------------------------------------------- prefix */

static void check_prefix(uint32_t len, const uint8_t expect[CRID_GRPC_PREFIX_LEN])
{
	uint8_t buf[CRID_GRPC_PREFIX_LEN + 1];
	int compressed = -1;
	uint32_t got = 0x12345678u ^ len;

	memset(buf, 0xAA, sizeof(buf));
	crid_grpc_prefix_write(buf, len);
	ck_assert_msg(memcmp(buf, expect, CRID_GRPC_PREFIX_LEN) == 0,
		      "prefix of %u: %02x %02x %02x %02x %02x", len, buf[0], buf[1], buf[2], buf[3], buf[4]);
	ck_assert_msg(buf[CRID_GRPC_PREFIX_LEN] == 0xAA, "prefix_write wrote past 5 bytes");
	crid_grpc_prefix_read(buf, &compressed, &got);
	ck_assert_int_eq(compressed, 0);
	ck_assert_uint_eq(got, len);
}

START_TEST(test_prefix_round_trip)
{
	check_prefix(0, (const uint8_t[]){ 0, 0, 0, 0, 0 });
	check_prefix(1, (const uint8_t[]){ 0, 0, 0, 0, 1 });
	check_prefix(255, (const uint8_t[]){ 0, 0, 0, 0, 0xff });
	check_prefix(256, (const uint8_t[]){ 0, 0, 0, 1, 0 });
	check_prefix(65535, (const uint8_t[]){ 0, 0, 0, 0xff, 0xff });
	check_prefix(65536, (const uint8_t[]){ 0, 0, 1, 0, 0 });
	check_prefix(0x01020304u, (const uint8_t[]){ 0, 1, 2, 3, 4 });
	check_prefix(0x80000000u, (const uint8_t[]){ 0, 0x80, 0, 0, 0 });
	check_prefix(0xFFFFFFFFu, (const uint8_t[]){ 0, 0xff, 0xff, 0xff, 0xff });
}
END_TEST

START_TEST(test_prefix_read_compressed_flag)
{
	const uint8_t flagged[] = { 1, 0, 0, 0x01, 0x02 };
	const uint8_t other_flag[] = { 0x80, 0xff, 0xff, 0xff, 0xff };
	const uint8_t plain[] = { 0, 0, 0, 0, 7 };
	int compressed = -1;
	uint32_t len = 0;

	crid_grpc_prefix_read(flagged, &compressed, &len);
	ck_assert_int_ne(compressed, 0);
	ck_assert_uint_eq(len, 258);

	compressed = -1;
	crid_grpc_prefix_read(other_flag, &compressed, &len);
	ck_assert_int_ne(compressed, 0);
	ck_assert_uint_eq(len, 0xFFFFFFFFu);

	compressed = -1;
	crid_grpc_prefix_read(plain, &compressed, &len);
	ck_assert_int_eq(compressed, 0);
	ck_assert_uint_eq(len, 7);
}
END_TEST

/* ------------------------------------------------------------ unary body */

START_TEST(test_unary_body_exact)
{
	const uint8_t body[] = { 0, 0, 0, 0, 3, 'a', 'b', 'c' };
	const uint8_t *msg = NULL;
	size_t msg_len = 99;
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_grpc_unary_body(body, sizeof(body), &msg, &msg_len, &err), 0);
	ck_assert_ptr_eq(msg, body + 5);
	ck_assert_uint_eq(msg_len, 3);
	ck_assert_int_eq(err.status, CRID_OK);
}
END_TEST

START_TEST(test_unary_body_empty_message)
{
	const uint8_t body[] = { 0, 0, 0, 0, 0 };
	const uint8_t *msg = NULL;
	size_t msg_len = 99;
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_int_eq(crid_grpc_unary_body(body, sizeof(body), &msg, &msg_len, &err), 0);
	ck_assert_ptr_eq(msg, body + 5);
	ck_assert_uint_eq(msg_len, 0);
}
END_TEST

START_TEST(test_unary_body_large_message)
{
	size_t n = 70000;
	uint8_t *body = malloc(n + 5);
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	struct crid_err err;

	ck_assert_ptr_nonnull(body);
	crid_grpc_prefix_write(body, (uint32_t)n);
	memset(body + 5, 'x', n);
	crid_err_clear(&err);
	ck_assert_int_eq(crid_grpc_unary_body(body, n + 5, &msg, &msg_len, &err), 0);
	ck_assert_ptr_eq(msg, body + 5);
	ck_assert_uint_eq(msg_len, n);
	free(body);
}
END_TEST

/* A failing call must leave *msg and *msg_len alone, set INTERNAL and a
 * message, and return a negative errno. */
static void check_unary_fails(const uint8_t *body, size_t body_len, const char *const needles[])
{
	const uint8_t sentinel = 0;
	const uint8_t *msg = &sentinel;
	size_t msg_len = 4242;
	struct crid_err err;
	int r;

	crid_err_clear(&err);
	r = crid_grpc_unary_body(body, body_len, &msg, &msg_len, &err);
	ck_assert_int_lt(r, 0);
	ck_assert_int_eq(err.status, CRID_INTERNAL);
	ck_assert_msg(err.msg[0] != '\0', "no message");
	ck_assert_ptr_eq(msg, &sentinel);
	ck_assert_uint_eq(msg_len, 4242);
	for (size_t i = 0; needles[i]; i++)
		ck_assert_msg(strstr(err.msg, needles[i]) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needles[i]);
}

START_TEST(test_unary_body_too_short)
{
	const uint8_t body[] = { 0, 0, 0, 0 };

	check_unary_fails(body, 0, (const char *const[]){ "0 bytes", "prefix", NULL });
	check_unary_fails(body, 1, (const char *const[]){ "1 bytes", NULL });
	check_unary_fails(body, 4, (const char *const[]){ "4 bytes", "prefix", NULL });
}
END_TEST

START_TEST(test_unary_body_prefix_announces_more)
{
	/* Says 10 bytes, holds 3. */
	const uint8_t body[] = { 0, 0, 0, 0, 10, 'a', 'b', 'c' };

	check_unary_fails(body, sizeof(body), (const char *const[]){ "10 bytes", "holds 3", NULL });
}
END_TEST

START_TEST(test_unary_body_prefix_announces_fewer)
{
	/* Says 2 bytes, holds 3: one extra trailing byte (e.g. a second message). */
	const uint8_t body[] = { 0, 0, 0, 0, 2, 'a', 'b', 'c' };
	/* Two complete messages back to back: a unary call carries exactly one. */
	const uint8_t two[] = { 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b' };

	check_unary_fails(body, sizeof(body), (const char *const[]){ "2 bytes", "holds 3", NULL });
	check_unary_fails(two, sizeof(two), (const char *const[]){ "1 bytes", "holds 7", NULL });
}
END_TEST

START_TEST(test_unary_body_huge_announced_length)
{
	const uint8_t body[] = { 0, 0xff, 0xff, 0xff, 0xff, 'a' };

	check_unary_fails(body, sizeof(body), (const char *const[]){ "4294967295 bytes", "holds 1", NULL });
}
END_TEST

START_TEST(test_unary_body_compressed)
{
	const uint8_t body[] = { 1, 0, 0, 0, 3, 'a', 'b', 'c' };

	check_unary_fails(body, sizeof(body), (const char *const[]){ "compressed", NULL });
}
END_TEST

/* --------------------------------------------------------------- timeout */

static int64_t timeout_ok(const char *s)
{
	int64_t ns = -12345;
	int r = crid_grpc_timeout_parse(s, strlen(s), &ns);

	ck_assert_msg(r == 0, "\"%s\" rejected: %d", s, r);
	return ns;
}

static void timeout_bad(const char *s, size_t len)
{
	int64_t ns = -12345;
	int r = crid_grpc_timeout_parse(s, len, &ns);

	ck_assert_msg(r == -EINVAL, "\"%.*s\" gave %d, not -EINVAL", (int)len, s, r);
	ck_assert_msg(ns == -12345, "\"%.*s\" rejected but wrote %lld", (int)len, s, (long long)ns);
}

START_TEST(test_timeout_units)
{
	ck_assert_int_eq(timeout_ok("1H"), 3600LL * NS_PER_S);
	ck_assert_int_eq(timeout_ok("2M"), 120LL * NS_PER_S);
	ck_assert_int_eq(timeout_ok("5S"), 5LL * NS_PER_S);
	ck_assert_int_eq(timeout_ok("100m"), 100000000LL);
	ck_assert_int_eq(timeout_ok("7u"), 7000LL);
	ck_assert_int_eq(timeout_ok("1n"), 1LL);
	ck_assert_int_eq(timeout_ok("0S"), 0LL);
	ck_assert_int_eq(timeout_ok("0n"), 0LL);
	ck_assert_int_eq(timeout_ok("007S"), 7LL * NS_PER_S);
}
END_TEST

START_TEST(test_timeout_eight_digits)
{
	ck_assert_int_eq(timeout_ok("12345678n"), 12345678LL);
	ck_assert_int_eq(timeout_ok("99999999n"), 99999999LL);
	ck_assert_int_eq(timeout_ok("99999999u"), 99999999000LL);
	ck_assert_int_eq(timeout_ok("99999999m"), 99999999000000LL);
	ck_assert_int_eq(timeout_ok("99999999S"), 99999999LL * NS_PER_S);
	/* 99999999 minutes still fits in int64 nanoseconds (~5.99e18). */
	ck_assert_int_eq(timeout_ok("99999999M"), 99999999LL * 60 * NS_PER_S);
	/* The largest hour count that fits: 2562047 h = 9.2233692e18 ns. */
	ck_assert_int_eq(timeout_ok("2562047H"), 2562047LL * 3600 * NS_PER_S);
}
END_TEST

START_TEST(test_timeout_overflow_clamps)
{
	ck_assert_int_eq(timeout_ok("99999999H"), INT64_MAX);
	ck_assert_int_eq(timeout_ok("2562048H"), INT64_MAX);
}
END_TEST

START_TEST(test_timeout_nine_digits_rejected)
{
	timeout_bad("123456789n", 10);
	timeout_bad("000000001S", 10);
}
END_TEST

START_TEST(test_timeout_malformed)
{
	timeout_bad("", 0);
	timeout_bad("S", 1);
	timeout_bad("m", 1);
	timeout_bad("100", 3); /* no unit */
	timeout_bad("5", 1);
	timeout_bad("5s", 2); /* units are case-sensitive: 's' is not 'S' */
	timeout_bad("5h", 2);
	timeout_bad("5x", 2);
	timeout_bad("5ms", 3);
	timeout_bad("1 S", 3);
	timeout_bad(" 1S", 3);
	timeout_bad("-1S", 3);
	timeout_bad("+1S", 3);
	timeout_bad("1.5S", 4);
	timeout_bad("abS", 3);
	timeout_bad("0x1S", 4);
}
END_TEST

START_TEST(test_timeout_uses_len_not_nul)
{
	/* Header values are not NUL-terminated: only len bytes count. */
	int64_t ns = 0;

	ck_assert_int_eq(crid_grpc_timeout_parse("25SXXXX", 3, &ns), 0);
	ck_assert_int_eq(ns, 25LL * NS_PER_S);
	ck_assert_int_eq(crid_grpc_timeout_parse("3m9", 2, &ns), 0);
	ck_assert_int_eq(ns, 3000000LL);
	timeout_bad("25SXXXX", 2);
}
END_TEST

/* ------------------------------------------------------- message encoding */

static void check_encode(const char *in, const char *expect)
{
	size_t cap = 3 * strlen(in) + 1;
	char *out = malloc(cap);
	int r;

	ck_assert_ptr_nonnull(out);
	r = crid_grpc_message_encode(in, out, cap);
	ck_assert_msg(r >= 0, "encode \"%s\": %d", in, r);
	ck_assert_str_eq(out, expect);
	ck_assert_int_eq(r, (int)strlen(expect));
	free(out);
}

START_TEST(test_encode_ascii_kept)
{
	check_encode("", "");
	check_encode("hello", "hello");
	check_encode("not found: pod \"abc\" (ns=default) ~!@#$^&*()_+{}|:<>?[]\\;',./`",
		     "not found: pod \"abc\" (ns=default) ~!@#$^&*()_+{}|:<>?[]\\;',./`");
	check_encode(" ", " ");
	check_encode("~", "~");
}
END_TEST

START_TEST(test_encode_percent)
{
	check_encode("%", "%25");
	check_encode("100%", "100%25");
	check_encode("%%", "%25%25");
	check_encode("50% off", "50%25 off");
}
END_TEST

START_TEST(test_encode_non_ascii)
{
	/* "é" is C3 A9, "€" is E2 82 AC: each byte on its own. */
	check_encode("caf\xc3\xa9", "caf%C3%A9");
	check_encode("\xe2\x82\xac" "5", "%E2%82%AC5");
	check_encode("\xff\x80", "%FF%80");
}
END_TEST

START_TEST(test_encode_control_chars)
{
	check_encode("a\nb", "a%0Ab");
	check_encode("\t", "%09");
	check_encode("\r\n", "%0D%0A");
	check_encode("\x01\x1f", "%01%1F");
	check_encode("del\x7f", "del%7F");
}
END_TEST

START_TEST(test_encode_exact_fit)
{
	char out[16];

	/* "abc" needs 3 + NUL. */
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(crid_grpc_message_encode("abc", out, 4), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(out[4], 'Z');

	/* "%" needs 3 + NUL. */
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(crid_grpc_message_encode("%", out, 4), 3);
	ck_assert_str_eq(out, "%25");
	ck_assert_int_eq(out[4], 'Z');

	/* "a\n" needs 4 + NUL. */
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(crid_grpc_message_encode("a\n", out, 5), 4);
	ck_assert_str_eq(out, "a%0A");
	ck_assert_int_eq(out[5], 'Z');

	/* The empty string needs the NUL alone. */
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(crid_grpc_message_encode("", out, 1), 0);
	ck_assert_int_eq(out[0], '\0');
	ck_assert_int_eq(out[1], 'Z');
}
END_TEST

START_TEST(test_encode_too_small)
{
	char out[16];

	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(crid_grpc_message_encode("abc", out, 3), -ENOSPC);
	ck_assert_int_eq(out[3], 'Z');
	ck_assert_int_eq(crid_grpc_message_encode("abc", out, 1), -ENOSPC);
	ck_assert_int_eq(crid_grpc_message_encode("abc", out, 0), -ENOSPC);
	ck_assert_int_eq(crid_grpc_message_encode("", out, 0), -ENOSPC);
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(crid_grpc_message_encode("%", out, 3), -ENOSPC);
	ck_assert_int_eq(out[3], 'Z');
	ck_assert_int_eq(crid_grpc_message_encode("%", out, 2), -ENOSPC);
	ck_assert_int_eq(crid_grpc_message_encode("a%", out, 4), -ENOSPC);
	ck_assert_int_eq(out[4], 'Z');
	ck_assert_int_eq(crid_grpc_message_encode("a\xc3\xa9", out, 7), -ENOSPC);
	ck_assert_int_eq(out[7], 'Z');
}
END_TEST

START_TEST(test_encode_worst_case_bound)
{
	/* 3*len+1 always suffices: 200 bytes that all need escaping. */
	char in[201], out[601];
	int r;

	memset(in, '%', 200);
	in[200] = '\0';
	r = crid_grpc_message_encode(in, out, sizeof(out));
	ck_assert_int_eq(r, 600);
	ck_assert_uint_eq(strlen(out), 600);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(memcmp(out + 3 * i, "%25", 3), 0);
	ck_assert_int_eq(crid_grpc_message_encode(in, out, 600), -ENOSPC);
}
END_TEST

/* ------------------------------------------------------- message decoding */

static void check_decode(const char *in, const char *expect)
{
	char *s = strdup(in);
	size_t n;

	ck_assert_ptr_nonnull(s);
	n = crid_grpc_message_decode(s);
	ck_assert_str_eq(s, expect);
	ck_assert_uint_eq(n, strlen(expect));
	free(s);
}

START_TEST(test_decode_basic)
{
	check_decode("", "");
	check_decode("plain text", "plain text");
	check_decode("100%25", "100%");
	check_decode("caf%C3%A9", "caf\xc3\xa9");
	check_decode("caf%c3%a9", "caf\xc3\xa9"); /* lower-case hex too */
	check_decode("a%0Ab", "a\nb");
	check_decode("%41%42%43", "ABC");
}
END_TEST

START_TEST(test_decode_malformed_kept)
{
	check_decode("%", "%");
	check_decode("50%", "50%");
	check_decode("%4", "%4");
	check_decode("a%4", "a%4");
	check_decode("%zz", "%zz");
	check_decode("%4g", "%4g");
	check_decode("%g4", "%g4");
	check_decode("%%41", "%A");
	check_decode("%2", "%2");
	check_decode("100% sure", "100% sure");
}
END_TEST

START_TEST(test_encode_decode_round_trip)
{
	static const char *const cases[] = {
		"",
		"hello world",
		"%",
		"100% done, %25 literal",
		"line1\nline2\r\n\ttab",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3",
		"\x01\x02\x7f\x80\xff",
		"quote \" backslash \\ percent-hex %41",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256];
		int r = crid_grpc_message_encode(cases[i], out, sizeof(out));

		ck_assert_int_ge(r, 0);
		for (int j = 0; j < r; j++)
			ck_assert_msg(out[j] >= 0x20 && out[j] <= 0x7e, "case %zu: byte %d not printable", i, j);
		ck_assert_uint_eq(crid_grpc_message_decode(out), strlen(cases[i]));
		ck_assert_str_eq(out, cases[i]);
	}
}
END_TEST

/* ---------------------------------------------------------- content type */

static int ctype(const char *s)
{
	return crid_grpc_content_type_ok(s, strlen(s));
}

START_TEST(test_content_type_accepted)
{
	ck_assert_int_ne(ctype("application/grpc"), 0);
	ck_assert_int_ne(ctype("application/grpc+proto"), 0);
	ck_assert_int_ne(ctype("application/grpc;charset=utf-8"), 0);
	ck_assert_int_ne(ctype("application/grpc+proto;charset=utf-8"), 0);
	/* Media types are case-insensitive (RFC 9110 8.3.1). */
	ck_assert_int_ne(ctype("Application/GRPC"), 0);
	ck_assert_int_ne(ctype("APPLICATION/GRPC+PROTO"), 0);
}
END_TEST

START_TEST(test_content_type_rejected)
{
	ck_assert_int_eq(ctype(""), 0);
	ck_assert_int_eq(ctype("application/grpcx"), 0);
	ck_assert_int_eq(ctype("application/grpc-web"), 0);
	ck_assert_int_eq(ctype("application/grp"), 0);
	ck_assert_int_eq(ctype("application/json"), 0);
	ck_assert_int_eq(ctype("application/proto"), 0);
	ck_assert_int_eq(ctype("text/plain"), 0);
	ck_assert_int_eq(ctype("xapplication/grpc"), 0);
	ck_assert_int_eq(ctype(" application/grpc"), 0);
}
END_TEST

START_TEST(test_content_type_uses_len)
{
	/* Only len bytes count: a longer buffer holding a bad suffix is fine,
	 * and a truncated "application/grp" is not. */
	ck_assert_int_ne(crid_grpc_content_type_ok("application/grpcXYZ", 16), 0);
	ck_assert_int_eq(crid_grpc_content_type_ok("application/grpc", 15), 0);
	ck_assert_int_eq(crid_grpc_content_type_ok("application/grpc", 0), 0);
}
END_TEST

/* grpc_wire.h documents "application/grpc" or "application/grpc+proto" (and
 * any ";params"): crid speaks protobuf only, so another codec subtype must
 * not pass the check (it would be decoded as protobuf). */
START_TEST(test_content_type_other_codec_rejected)
{
	ck_assert_msg(ctype("application/grpc+json") == 0, "application/grpc+json accepted");
	ck_assert_msg(ctype("application/grpc+") == 0, "application/grpc+ accepted");
	ck_assert_msg(ctype("application/grpc+protobuf") == 0, "application/grpc+protobuf accepted");
}
END_TEST

static Suite *grpc_wire_suite(void)
{
	Suite *s = suite_create("grpc_wire");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_prefix_round_trip);
	tcase_add_test(tc, test_prefix_read_compressed_flag);
	tcase_add_test(tc, test_unary_body_exact);
	tcase_add_test(tc, test_unary_body_empty_message);
	tcase_add_test(tc, test_unary_body_large_message);
	tcase_add_test(tc, test_unary_body_too_short);
	tcase_add_test(tc, test_unary_body_prefix_announces_more);
	tcase_add_test(tc, test_unary_body_prefix_announces_fewer);
	tcase_add_test(tc, test_unary_body_huge_announced_length);
	tcase_add_test(tc, test_unary_body_compressed);
	tcase_add_test(tc, test_timeout_units);
	tcase_add_test(tc, test_timeout_eight_digits);
	tcase_add_test(tc, test_timeout_overflow_clamps);
	tcase_add_test(tc, test_timeout_nine_digits_rejected);
	tcase_add_test(tc, test_timeout_malformed);
	tcase_add_test(tc, test_timeout_uses_len_not_nul);
	tcase_add_test(tc, test_encode_ascii_kept);
	tcase_add_test(tc, test_encode_percent);
	tcase_add_test(tc, test_encode_non_ascii);
	tcase_add_test(tc, test_encode_control_chars);
	tcase_add_test(tc, test_encode_exact_fit);
	tcase_add_test(tc, test_encode_too_small);
	tcase_add_test(tc, test_encode_worst_case_bound);
	tcase_add_test(tc, test_decode_basic);
	tcase_add_test(tc, test_decode_malformed_kept);
	tcase_add_test(tc, test_encode_decode_round_trip);
	tcase_add_test(tc, test_content_type_accepted);
	tcase_add_test(tc, test_content_type_rejected);
	tcase_add_test(tc, test_content_type_uses_len);
	tcase_add_test(tc, test_content_type_other_codec_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(grpc_wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
