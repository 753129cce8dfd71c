/* Unit tests of the streaming server's pure parts: HTTP/1.1 request heads
 * (src/streaming/http), SPDY/3.1 frames and header blocks (spdy) and
 * WebSocket frames and handshake keys (websocket). */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "streaming/http.h"
#include "streaming/spdy.h"
#include "streaming/websocket.h"

/* ---- HTTP ---- */

static int parse(const char *text, struct crid_http_request *req, const char **why)
{
	size_t len = crid_http_head_len(text, strlen(text));

	if (!len) {
		*why = "incomplete";
		return -EAGAIN;
	}
	return crid_http_parse(text, len, req, why);
}

START_TEST(test_http_request)
{
	struct crid_http_request req;
	const char *why = NULL;

	ck_assert_int_eq(parse("POST /exec/abc?port=80&port=8080,9090 HTTP/1.1\r\nHost: x\r\n"
			       "Connection: keep-alive, Upgrade\r\nUpgrade: SPDY/3.1\r\n"
			       "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
			       "X-Stream-Protocol-Version: v3.channel.k8s.io , channel.k8s.io\r\n\r\nextra",
			       &req, &why),
			 0);
	ck_assert_str_eq(req.method, "POST");
	ck_assert_str_eq(req.path, "/exec/abc");
	ck_assert_str_eq(req.query, "port=80&port=8080,9090");
	ck_assert_str_eq(crid_http_header(&req, "upgrade"), "SPDY/3.1");
	ck_assert(crid_http_header_has_token(&req, "connection", "upgrade"));
	ck_assert(!crid_http_header_has_token(&req, "connection", "close"));
	ck_assert(crid_http_header_has_token(&req, "X-Stream-Protocol-Version", "channel.k8s.io"));
	ck_assert(crid_http_header_has_token(&req, "X-Stream-Protocol-Version", "v3.channel.k8s.io"));
	crid_http_request_free(&req);
}
END_TEST

START_TEST(test_http_hostile)
{
	static const char *const bad[] = {
		"GET /x HTTP/2\r\n\r\n",
		"GET x HTTP/1.1\r\n\r\n",
		"GET /x HTTP/1.1\r\n folded: yes\r\n\r\n",
		"GET /x HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
		"GET /x HTTP/1.1\r\nName: \x01\r\n\r\n",
		"G(T /x HTTP/1.1\r\n\r\n",
		"GET /a b HTTP/1.1\r\n\r\n",
		"GET\r\n\r\n",
	};
	struct crid_http_request req;
	const char *why;
	char many[CRID_HTTP_HEAD_MAX];
	size_t o = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ck_assert_msg(parse(bad[i], &req, &why) == -EINVAL, "accepted: %s", bad[i]);
		ck_assert(why && *why);
		crid_http_request_free(&req);
	}
	/* More header fields than allowed. */
	o += (size_t)snprintf(many, sizeof(many), "GET /x HTTP/1.1\r\n");
	for (int i = 0; i < CRID_HTTP_MAX_HEADERS + 1; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "H%d: v\r\n", i);
	snprintf(many + o, sizeof(many) - o, "\r\n");
	ck_assert_int_eq(parse(many, &req, &why), -EINVAL);
	ck_assert_str_eq(why, "too many header fields");
	crid_http_request_free(&req);
	/* A NUL inside. */
	ck_assert_int_eq(crid_http_parse("GET /x HTTP/1.1\r\nA: \0\r\n\r\n", 24, &req, &why), -EINVAL);
	crid_http_request_free(&req);
	ck_assert_uint_eq(crid_http_head_len("GET / HTTP/1.1\r\n", 16), 0);
}
END_TEST

static bool collect(const char *value, void *ctx)
{
	char *out = ctx;

	strcat(out, value);
	strcat(out, "|");
	return true;
}

START_TEST(test_http_query)
{
	char out[256] = "";

	crid_http_query_each("port=80&x=1&port=8%30&port=&port=%zz", "port", collect, out);
	ck_assert_str_eq(out, "80|80||%zz|");
}
END_TEST

/* ---- SPDY ---- */

START_TEST(test_spdy_headers_round_trip)
{
	struct crid_spdy_zlib *client, *server;
	struct crid_buf out = { 0 };
	struct crid_spdy_nv nv[CRID_SPDY_MAX_NV];
	const char *h1[] = { "streamType", "error", "port", "8080" };
	const char *h2[] = { "streamtype", "stdout" };
	struct crid_spdy_frame f;
	size_t n_nv;
	long n;

	ck_assert_int_eq(crid_spdy_zlib_new(&client), 0);
	ck_assert_int_eq(crid_spdy_zlib_new(&server), 0);
	/* Two blocks on one context: the second depends on the first. */
	ck_assert_int_eq(crid_spdy_put_syn_stream(&out, client, 1, 0, h1, 2), 0);
	ck_assert_int_eq(crid_spdy_put_syn_stream(&out, client, 3, CRID_SPDY_FLAG_FIN, h2, 1), 0);
	n = crid_spdy_frame_parse((const uint8_t *)crid_buf_head(&out), out.len, &f);
	ck_assert_int_gt(n, 0);
	ck_assert(f.control);
	ck_assert_uint_eq(f.type, CRID_SPDY_SYN_STREAM);
	ck_assert_uint_eq(f.stream_id, 1);
	ck_assert_int_eq(crid_spdy_headers_decode(server, f.payload + 10, f.len - 10, nv, &n_nv), 0);
	ck_assert_uint_eq(n_nv, 2);
	ck_assert_str_eq(nv[0].name, "streamtype"); /* lowercased */
	ck_assert_str_eq(nv[0].value, "error");
	ck_assert_str_eq(nv[1].value, "8080");
	crid_buf_consume(&out, (size_t)n);
	n = crid_spdy_frame_parse((const uint8_t *)crid_buf_head(&out), out.len, &f);
	ck_assert_int_eq((size_t)n, out.len);
	ck_assert_uint_eq(f.flags, CRID_SPDY_FLAG_FIN);
	ck_assert_uint_eq(f.stream_id, 3);
	ck_assert_int_eq(crid_spdy_headers_decode(server, f.payload + 10, f.len - 10, nv, &n_nv), 0);
	ck_assert_str_eq(nv[0].value, "stdout");
	crid_buf_free(&out);
	crid_spdy_zlib_free(client);
	crid_spdy_zlib_free(server);
}
END_TEST

/* The dictionary is the specification's: zlib names it by its Adler-32. */
START_TEST(test_spdy_dictionary_is_the_specs)
{
	struct crid_spdy_zlib *z;
	struct crid_buf out = { 0 };
	const char *h[] = { "a", "b" };
	struct crid_spdy_frame f;
	const uint8_t *zhdr;
	uint32_t dictid;

	ck_assert_int_eq(crid_spdy_zlib_new(&z), 0);
	ck_assert_int_eq(crid_spdy_put_syn_reply(&out, z, 1, 0, h, 1), 0);
	ck_assert_int_gt(crid_spdy_frame_parse((const uint8_t *)crid_buf_head(&out), out.len, &f), 0);
	zhdr = f.payload + 4;
	ck_assert(zhdr[1] & 0x20); /* FDICT */
	dictid = (uint32_t)zhdr[2] << 24 | (uint32_t)zhdr[3] << 16 | (uint32_t)zhdr[4] << 8 | zhdr[5];
	ck_assert_uint_eq(dictid, 0xe3c6a7c2u); /* the SPDY/3 dictionary's DICTID, 1423 bytes */
	crid_buf_free(&out);
	crid_spdy_zlib_free(z);
}
END_TEST

START_TEST(test_spdy_hostile_frames)
{
	struct crid_spdy_zlib *z;
	struct crid_spdy_frame f;
	struct crid_spdy_nv nv[CRID_SPDY_MAX_NV];
	uint8_t v2[8] = { 0x80, 2, 0, 1, 0, 0, 0, 0 };
	uint8_t huge[8] = { 0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff };
	uint8_t partial[12] = { 0, 0, 0, 1, 1, 0, 0, 10, 'a', 'b', 'c', 'd' };
	uint8_t garbage[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	size_t n_nv;

	ck_assert_int_eq(crid_spdy_frame_parse(v2, sizeof(v2), &f), -EINVAL);
	ck_assert_int_eq(crid_spdy_frame_parse(huge, sizeof(huge), &f), -E2BIG);
	ck_assert_int_eq(crid_spdy_frame_parse(partial, sizeof(partial), &f), 0);
	ck_assert_int_eq(crid_spdy_frame_parse(partial, 5, &f), 0);
	ck_assert_int_eq(crid_spdy_zlib_new(&z), 0);
	ck_assert_int_lt(crid_spdy_headers_decode(z, garbage, sizeof(garbage), nv, &n_nv), 0);
	crid_spdy_zlib_free(z);
}
END_TEST

/* A header block claiming more pairs than it holds, compressed properly. */
START_TEST(test_spdy_lying_header_block)
{
	uint8_t raw[] = { 0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 1, 'b' };
	uint8_t packed[256];
	struct crid_spdy_zlib *z;
	struct crid_spdy_nv nv[CRID_SPDY_MAX_NV];
	z_stream zs = { 0 };
	size_t n_nv;

	ck_assert_int_eq(deflateInit(&zs, Z_DEFAULT_COMPRESSION), Z_OK);
	zs.next_in = raw;
	zs.avail_in = sizeof(raw);
	zs.next_out = packed;
	zs.avail_out = sizeof(packed);
	ck_assert_int_eq(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
	ck_assert_int_eq(crid_spdy_zlib_new(&z), 0);
	/* A block made without the dictionary is still a zlib stream: its
	 * claim of two pairs where one is must be refused, not read past. */
	ck_assert_int_eq(crid_spdy_headers_decode(z, packed, sizeof(packed) - zs.avail_out, nv, &n_nv), -EINVAL);
	deflateEnd(&zs);
	crid_spdy_zlib_free(z);
}
END_TEST

/* ---- WebSocket ---- */

START_TEST(test_ws_accept_key)
{
	char out[29];

	/* RFC 6455, section 1.3. */
	ck_assert_int_eq(crid_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ck_assert_int_eq(crid_ws_accept_key("short", out), -EINVAL);
	ck_assert_int_eq(crid_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=x", out), -EINVAL);
}
END_TEST

static size_t masked(uint8_t *buf, uint8_t first, const char *payload, size_t len)
{
	const uint8_t mask[4] = { 1, 2, 3, 4 };
	size_t h = 2;

	buf[0] = first;
	if (len < 126) {
		buf[1] = (uint8_t)(0x80 | len);
	} else {
		buf[1] = 0x80 | 126;
		buf[2] = (uint8_t)(len >> 8);
		buf[3] = (uint8_t)len;
		h = 4;
	}
	memcpy(buf + h, mask, 4);
	for (size_t i = 0; i < len; i++)
		buf[h + 4 + i] = (uint8_t)(payload[i] ^ mask[i & 3]);
	return h + 4 + len;
}

START_TEST(test_ws_frames)
{
	uint8_t buf[1024];
	char big[300];
	struct crid_ws_frame f;
	struct crid_buf out = { 0 };
	size_t n = masked(buf, 0x82, "\x01hello", 6);

	ck_assert_int_eq(crid_ws_frame_parse(buf, n - 1, &f), 0);
	ck_assert_int_eq(crid_ws_frame_parse(buf, n, &f), (long)n);
	ck_assert(f.fin);
	ck_assert_uint_eq(f.opcode, CRID_WS_BINARY);
	ck_assert_uint_eq(f.len, 6);
	ck_assert(memcmp(f.payload, "\x01hello", 6) == 0);
	memset(big, 'x', sizeof(big));
	n = masked(buf, 0x82, big, sizeof(big));
	ck_assert_int_eq(crid_ws_frame_parse(buf, n, &f), (long)n);
	ck_assert_uint_eq(f.len, sizeof(big));
	/* Unmasked, reserved bits, a fragmented or long control frame, an unknown opcode. */
	buf[0] = 0x82;
	buf[1] = 0x01;
	ck_assert_int_eq(crid_ws_frame_parse(buf, 3, &f), -EPROTO);
	n = masked(buf, 0xc2, "a", 1);
	ck_assert_int_eq(crid_ws_frame_parse(buf, n, &f), -EPROTO);
	n = masked(buf, 0x09, "a", 1);
	ck_assert_int_eq(crid_ws_frame_parse(buf, n, &f), -EPROTO);
	n = masked(buf, 0x89, big, 126);
	ck_assert_int_eq(crid_ws_frame_parse(buf, n, &f), -EPROTO);
	n = masked(buf, 0x83, "a", 1);
	ck_assert_int_eq(crid_ws_frame_parse(buf, n, &f), -EPROTO);
	/* A length over the limit is refused before its bytes arrive. */
	buf[0] = 0x82;
	buf[1] = 0x80 | 127;
	memset(buf + 2, 0, 8);
	buf[5] = 0x10;
	ck_assert_int_eq(crid_ws_frame_parse(buf, 14, &f), -E2BIG);
	/* What the server sends: unmasked, with the right length form. */
	ck_assert_int_eq(crid_ws_put_frame(&out, CRID_WS_BINARY, big, 200), 0);
	ck_assert_uint_eq(out.len, 4 + 200);
	ck_assert_uint_eq((uint8_t)crid_buf_head(&out)[1], 126);
	crid_buf_free(&out);
	ck_assert_int_eq(crid_ws_put_close(&out, 1000, ""), 0);
	ck_assert_uint_eq(out.len, 4);
	crid_buf_free(&out);
}
END_TEST

static Suite *streaming_suite(void)
{
	Suite *s = suite_create("streaming_codecs");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_http_request);
	tcase_add_test(tc, test_http_hostile);
	tcase_add_test(tc, test_http_query);
	tcase_add_test(tc, test_spdy_headers_round_trip);
	tcase_add_test(tc, test_spdy_dictionary_is_the_specs);
	tcase_add_test(tc, test_spdy_hostile_frames);
	tcase_add_test(tc, test_spdy_lying_header_block);
	tcase_add_test(tc, test_ws_accept_key);
	tcase_add_test(tc, test_ws_frames);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(streaming_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
