/* Unit tests of the pure parsers the hardening added: the UTF-8 and NUL
 * checks of request strings on the wire (rpc/proto_check.c), at any depth
 * and naming the field, and WWW-Authenticate challenges (image/challenge.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "image/challenge.h"
#include "rpc/proto_check.h"
#include "runtime/v1/api.pb-c.h"

START_TEST(test_utf8)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
		{ "", 0, true },
		{ "plain ascii", 11, true },
		{ "caf\xc3\xa9", 5, true },
		{ "\xe2\x82\xac", 3, true },	     /* U+20AC */
		{ "\xf0\x9f\x98\x80", 4, true },     /* U+1F600 */
		{ "\xf4\x8f\xbf\xbf", 4, true },     /* U+10FFFF */
		{ "a\0b", 3, true },		     /* NUL is UTF-8; refused separately */
		{ "\xff", 1, false },
		{ "\x80", 1, false },		     /* a lone continuation */
		{ "\xc0\xaf", 2, false },	     /* overlong '/' */
		{ "\xe0\x80\xaf", 3, false },	     /* overlong */
		{ "\xed\xa0\x80", 3, false },	     /* a surrogate */
		{ "\xf4\x90\x80\x80", 4, false },    /* past U+10FFFF */
		{ "\xc3", 1, false },		     /* cut short */
		{ "\xe2\x82", 2, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(crid_utf8_valid((const uint8_t *)cases[i].s, cases[i].len) == cases[i].ok, "case %zu", i);
}
END_TEST

/* A packed RunPodSandboxRequest whose pod name is name (len bytes). */
static uint8_t *pod_request(const char *name, size_t len, const char *label_key, size_t *out_len)
{
	Runtime__V1__RunPodSandboxRequest req = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	Runtime__V1__PodSandboxConfig__LabelsEntry label = RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
	Runtime__V1__PodSandboxConfig__LabelsEntry *labels[] = { &label };
	char placeholder[64];
	uint8_t *buf;
	size_t n;

	memset(placeholder, 'Q', len);
	placeholder[len] = '\0';
	md.name = placeholder;
	md.uid = (char *)"uid";
	md.namespace_ = (char *)"ns";
	cfg.metadata = &md;
	label.key = (char *)label_key;
	label.value = (char *)"v";
	cfg.labels = labels;
	cfg.n_labels = 1;
	req.config = &cfg;
	n = protobuf_c_message_get_packed_size(&req.base);
	buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	protobuf_c_message_pack(&req.base, buf);
	/* The name's bytes, put in place of the placeholder on the wire. */
	for (size_t i = 0; i + len <= n; i++) {
		if (memcmp(buf + i, placeholder, len) == 0) {
			memcpy(buf + i, name, len);
			break;
		}
	}
	*out_len = n;
	return buf;
}

START_TEST(test_strings_checked_at_depth)
{
	struct crid_err err;
	size_t n;
	uint8_t *buf;

	buf = pod_request("web-0", 5, "app", &n);
	ck_assert_int_eq(crid_proto_check_strings(&runtime__v1__run_pod_sandbox_request__descriptor, buf, n, &err), 0);
	free(buf);

	buf = pod_request("we\xff" "b", 4, "app", &n);
	ck_assert_int_lt(crid_proto_check_strings(&runtime__v1__run_pod_sandbox_request__descriptor, buf, n, &err), 0);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_str_eq(err.msg, "config.metadata.name: not valid UTF-8");
	free(buf);

	buf = pod_request("we\0b", 4, "app", &n);
	ck_assert_int_lt(crid_proto_check_strings(&runtime__v1__run_pod_sandbox_request__descriptor, buf, n, &err), 0);
	ck_assert_str_eq(err.msg, "config.metadata.name: contains a NUL byte");
	free(buf);

	/* A map's entries are named by the map. */
	buf = pod_request("web-0", 5, "a\xc0\xafp", &n);
	ck_assert_int_lt(crid_proto_check_strings(&runtime__v1__run_pod_sandbox_request__descriptor, buf, n, &err), 0);
	ck_assert_str_eq(err.msg, "config.labels key: not valid UTF-8");
	free(buf);
}
END_TEST

START_TEST(test_malformed_wire_left_to_the_decoder)
{
	static const uint8_t cut[] = { 0x0a, 0x10, 0x0a };	 /* a length past the end */
	static const uint8_t group[] = { 0x0b, 0x0c };		 /* a group */
	static const uint8_t varint[] = { 0x08, 0xff, 0xff };	 /* a cut varint */
	struct crid_err err;

	ck_assert_int_eq(crid_proto_check_strings(&runtime__v1__run_pod_sandbox_request__descriptor, cut, sizeof(cut), &err), 0);
	ck_assert_int_eq(crid_proto_check_strings(&runtime__v1__run_pod_sandbox_request__descriptor, group, sizeof(group), &err), 0);
	ck_assert_int_eq(crid_proto_check_strings(&runtime__v1__version_request__descriptor, varint, sizeof(varint), &err), 0);
}
END_TEST

START_TEST(test_challenges)
{
	struct crid_challenge c;
	struct crid_err err;

	ck_assert_int_eq(crid_challenge_parse("Bearer realm=\"https://auth.example/token\",service=\"reg\","
					      "scope=\"repository:a/b:pull\"",
					      &c, &err),
			 0);
	ck_assert_int_eq(c.scheme, CRID_CHALLENGE_BEARER);
	ck_assert_str_eq(c.realm, "https://auth.example/token");
	ck_assert_str_eq(c.service, "reg");
	ck_assert_str_eq(c.scope, "repository:a/b:pull");
	crid_challenge_free(&c);

	/* Names ignore case; tokens unquoted; escapes in quoted strings. */
	ck_assert_int_eq(crid_challenge_parse("bearer REALM=http://a/t , Service=\"x\\\"y\"", &c, &err), 0);
	ck_assert_str_eq(c.realm, "http://a/t");
	ck_assert_str_eq(c.service, "x\"y");
	ck_assert_ptr_null(c.scope);
	crid_challenge_free(&c);

	/* "realm" inside another parameter's value is not the realm. */
	ck_assert_int_eq(crid_challenge_parse("Bearer service=\"x realm=http://evil\", realm=\"http://good\"", &c,
					      &err),
			 0);
	ck_assert_str_eq(c.realm, "http://good");
	crid_challenge_free(&c);

	/* Only the first challenge is read. */
	ck_assert_int_eq(crid_challenge_parse("Basic realm=\"r\", Bearer realm=\"http://b\"", &c, &err), 0);
	ck_assert_int_eq(c.scheme, CRID_CHALLENGE_BASIC);
	ck_assert_str_eq(c.realm, "r");
	crid_challenge_free(&c);

	ck_assert_int_eq(crid_challenge_parse("Negotiate abc==", &c, &err), 0);
	ck_assert_int_eq(c.scheme, CRID_CHALLENGE_OTHER);
	ck_assert_str_eq(c.scheme_name, "Negotiate");
	crid_challenge_free(&c);

	ck_assert_int_lt(crid_challenge_parse("", &c, &err), 0);
	ck_assert_int_lt(crid_challenge_parse("Bearer realm=\"unterminated", &c, &err), 0);
	ck_assert_int_lt(crid_challenge_parse("Bearer realm=\"a\" junk", &c, &err), 0);
	{
		char *long_value = malloc(CRID_CHALLENGE_VALUE_MAX + 32);

		ck_assert_ptr_nonnull(long_value);
		strcpy(long_value, "Bearer realm=\"");
		memset(long_value + 14, 'a', CRID_CHALLENGE_VALUE_MAX + 1);
		strcpy(long_value + 15 + CRID_CHALLENGE_VALUE_MAX, "\"");
		ck_assert_int_lt(crid_challenge_parse(long_value, &c, &err), 0);
		ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
		free(long_value);
	}
}
END_TEST

static Suite *parsers_suite(void)
{
	Suite *s = suite_create("hardening parsers");
	TCase *tc = tcase_create("parsers");

	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_strings_checked_at_depth);
	tcase_add_test(tc, test_malformed_wire_left_to_the_decoder);
	tcase_add_test(tc, test_challenges);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(parsers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
