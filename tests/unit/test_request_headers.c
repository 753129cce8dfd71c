/* Unit tests of src/rpc/request_headers (the RFC 9113 request checks crid
 * makes instead of nghttp2) and src/common/ratelimit.h (the budget of the
 * warnings they cause). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/ratelimit.h"
#include "rpc/request_headers.h"

struct field {
	const char *name, *value;
};

#define F(n, v) ((struct field){ (n), (v) })
#define END ((struct field){ NULL, NULL })

/* Feeds a whole request header block; returns the reason ("" when fine). */
static const char *request(struct crid_request_headers *h, const struct field *fields)
{
	crid_request_headers_init(h);
	for (const struct field *f = fields; f->name; f++)
		crid_request_headers_field(h, (const uint8_t *)f->name, strlen(f->name), (const uint8_t *)f->value,
					   strlen(f->value));
	crid_request_headers_end(h);
	return h->malformed;
}

#define GRPC_FIELDS                                                                      \
	F(":method", "POST"), F(":scheme", "http"), F(":path", "/runtime.v1.RuntimeService/Version")

START_TEST(test_authority_is_anything)
{
	static const char *const authorities[] = { "/run/crid/crid.sock", "localhost", "127.0.0.1:1", "", "a b/c" };
	struct crid_request_headers h;

	for (size_t i = 0; i < sizeof(authorities) / sizeof(authorities[0]); i++) {
		struct field fields[] = { GRPC_FIELDS, F(":authority", authorities[i]),
					  F("content-type", "application/grpc"), F("te", "trailers"), END };

		ck_assert_msg(strcmp(request(&h, fields), "") == 0, "authority \"%s\": %s", authorities[i],
			      h.malformed);
	}
	{
		struct field none[] = { GRPC_FIELDS, F("content-type", "application/grpc"), END };

		ck_assert_str_eq(request(&h, none), "");
	}
}
END_TEST

struct bad_case {
	struct field fields[8];
	const char *reason;
};

START_TEST(test_malformed_requests)
{
	static const struct bad_case cases[] = {
		{ { F(":scheme", "http"), F(":path", "/x"), END }, "request without :method" },
		{ { F(":method", "POST"), F(":path", "/x"), END }, "request without :scheme" },
		{ { F(":method", "POST"), F(":scheme", "http"), END }, "request without :path" },
		{ { F(":method", "POST"), F(":scheme", "http"), F(":path", "x/y"), END },
		  ":path is not an absolute path" },
		{ { F(":method", ""), F(":scheme", "http"), F(":path", "/x"), END }, "empty pseudo-header :method" },
		{ { GRPC_FIELDS, F("te", "trailers"), F(":authority", "a"), END },
		  "pseudo-header :authority after regular header fields" },
		{ { GRPC_FIELDS, F(":path", "/y"), END }, "repeated pseudo-header :path" },
		{ { GRPC_FIELDS, F(":authority", "a"), F(":authority", "a"), END },
		  "repeated pseudo-header :authority" },
		{ { GRPC_FIELDS, F(":status", "200"), END }, "unknown pseudo-header :status" },
		{ { GRPC_FIELDS, F("connection", "close"), END }, "connection-specific header field \"connection\"" },
		{ { GRPC_FIELDS, F("keep-alive", "1"), END }, "connection-specific header field \"keep-alive\"" },
		{ { GRPC_FIELDS, F("proxy-connection", "x"), END },
		  "connection-specific header field \"proxy-connection\"" },
		{ { GRPC_FIELDS, F("transfer-encoding", "chunked"), END },
		  "connection-specific header field \"transfer-encoding\"" },
		{ { GRPC_FIELDS, F("upgrade", "h2c"), END }, "connection-specific header field \"upgrade\"" },
		{ { GRPC_FIELDS, F("te", "gzip"), END }, "te header field other than \"trailers\"" },
		{ { GRPC_FIELDS, F("te", "trailers, gzip"), END }, "te header field other than \"trailers\"" },
		{ { GRPC_FIELDS, F("Content-Type", "application/grpc"), END },
		  "header field name \"Content-Type\" is not lowercase" },
		{ { GRPC_FIELDS, F("x\"y", "1"), END }, "header field name \"x?y\" has an invalid character" },
		{ { GRPC_FIELDS, F("", "1"), END }, "empty header field name" },
		{ { GRPC_FIELDS, F("x-a", "1\n2"), END }, "header field \"x-a\" has NUL, CR or LF in its value" },
		{ { GRPC_FIELDS, F("x-a", " 1"), END }, "header field \"x-a\" has white space around its value" },
		{ { GRPC_FIELDS, F("content-length", "-1"), END }, "content-length is not a number" },
		{ { GRPC_FIELDS, F("content-length", ""), END }, "content-length is not a number" },
		{ { GRPC_FIELDS, F("content-length", "1"), F("content-length", "1"), END }, "repeated content-length" },
	};
	struct crid_request_headers h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(strcmp(request(&h, cases[i].fields), cases[i].reason) == 0,
			      "case %zu: got \"%s\", want \"%s\"", i, h.malformed, cases[i].reason);
}
END_TEST

START_TEST(test_first_problem_is_kept)
{
	struct field fields[] = { F("connection", "x"), F(":method", "POST"), END };
	struct crid_request_headers h;

	ck_assert_str_eq(request(&h, fields), "connection-specific header field \"connection\"");
}
END_TEST

START_TEST(test_hostile_name_is_clipped_and_cleaned)
{
	char name[200];
	struct crid_request_headers h;

	memset(name, 'A', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	name[1] = '\x1b';
	{
		struct field fields[] = { GRPC_FIELDS, F(name, "v"), END };

		request(&h, fields);
	}
	ck_assert_msg(strstr(h.malformed, "\x1b") == NULL, "escape byte copied: %s", h.malformed);
	ck_assert_msg(strstr(h.malformed, "A?AAA") != NULL, "%s", h.malformed);
	ck_assert_uint_lt(strlen(h.malformed), sizeof(h.malformed));
}
END_TEST

START_TEST(test_content_length)
{
	struct field fields[] = { GRPC_FIELDS, F("content-length", "10"), END };
	struct crid_request_headers h;

	ck_assert_str_eq(request(&h, fields), "");
	crid_request_headers_data(&h, 4);
	crid_request_headers_data(&h, 6);
	crid_request_headers_stream_end(&h);
	ck_assert_str_eq(h.malformed, "");

	request(&h, fields);
	crid_request_headers_data(&h, 11);
	ck_assert_str_eq(h.malformed, "more DATA than the content-length of 10 bytes");

	request(&h, fields);
	crid_request_headers_data(&h, 9);
	crid_request_headers_stream_end(&h);
	ck_assert_str_eq(h.malformed, "content-length of 10 bytes disagrees with the 9 bytes of DATA received");

	/* Without content-length any amount is fine. */
	{
		struct field plain[] = { GRPC_FIELDS, END };

		request(&h, plain);
		crid_request_headers_data(&h, 1 << 20);
		crid_request_headers_stream_end(&h);
		ck_assert_str_eq(h.malformed, "");
	}
}
END_TEST

static void trailer(struct crid_request_headers *h, const char *name, const char *value)
{
	crid_request_trailers_field(h, (const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value));
}

START_TEST(test_trailers)
{
	struct field fields[] = { GRPC_FIELDS, END };
	struct crid_request_headers h;

	request(&h, fields);
	crid_request_trailers_begin(&h, true);
	trailer(&h, "x-checksum", "1");
	ck_assert_str_eq(h.malformed, "");

	request(&h, fields);
	crid_request_trailers_begin(&h, true);
	trailer(&h, ":path", "/x");
	ck_assert_str_eq(h.malformed, "pseudo-header :path in trailers");

	request(&h, fields);
	crid_request_trailers_begin(&h, false);
	ck_assert_str_eq(h.malformed, "a header block after the request's that does not end the stream");

	request(&h, fields);
	crid_request_trailers_begin(&h, true);
	trailer(&h, "connection", "close");
	ck_assert_str_eq(h.malformed, "connection-specific header field \"connection\"");
}
END_TEST

START_TEST(test_ratelimit)
{
	struct crid_ratelimit rl = CRID_RATELIMIT_INIT(1000, 3);
	unsigned suppressed = 99;

	ck_assert(crid_ratelimit_allow(&rl, 5000, &suppressed));
	ck_assert_uint_eq(suppressed, 0);
	ck_assert(crid_ratelimit_allow(&rl, 5001, &suppressed));
	ck_assert(crid_ratelimit_allow(&rl, 5002, &suppressed));
	for (int i = 0; i < 7; i++)
		ck_assert(!crid_ratelimit_allow(&rl, 5500, &suppressed));
	/* A new window: allowed again, and told how many were dropped. */
	ck_assert(crid_ratelimit_allow(&rl, 6000, &suppressed));
	ck_assert_uint_eq(suppressed, 7);
	ck_assert(crid_ratelimit_allow(&rl, 6001, &suppressed));
	ck_assert_uint_eq(suppressed, 0);
}
END_TEST

static Suite *request_headers_suite(void)
{
	Suite *s = suite_create("request_headers");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_authority_is_anything);
	tcase_add_test(tc, test_malformed_requests);
	tcase_add_test(tc, test_first_problem_is_kept);
	tcase_add_test(tc, test_hostile_name_is_clipped_and_cleaned);
	tcase_add_test(tc, test_content_length);
	tcase_add_test(tc, test_trailers);
	tcase_add_test(tc, test_ratelimit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(request_headers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
