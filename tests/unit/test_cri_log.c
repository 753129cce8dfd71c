/* Unit tests of src/shim/cri_log: RFC 3339 timestamps (nine fraction
 * digits, UTC whatever TZ says), F records for lines, P records for lines
 * longer than CRID_SHIM_LOG_LINE_MAX and for a line left open at the end,
 * lines split across feeds in every way, empty lines, '\r' and binary
 * bytes kept as content, two streams at once, and a failing writer. Every
 * record is collected as the exact bytes the shim would write. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim/cri_log.h"

#define MAX (CRID_SHIM_LOG_LINE_MAX)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define T0 1475713029669794202LL /* 2016-10-06T00:17:09.669794202Z */
#define T0_TEXT "2016-10-06T00:17:09.669794202Z"

/* ------------------------------------------------------------- collect */

struct rec {
	char tag;
	enum crid_cri_log_stream_kind stream;
	int64_t time_ns;
	char *content;
	size_t len;
};

struct sink {
	struct rec recs[64];
	size_t n;
	char *text; /* every record as written: head, content, '\n' */
	size_t text_len;
	int fail;   /* returned by emit when not 0 */
	size_t calls;
};

static struct sink sink; /* reset by the fixture */

static int collect(const struct crid_cri_log_record *r, void *ctx)
{
	struct sink *k = ctx;
	struct rec *out;

	ck_assert_ptr_eq(k, &sink);
	k->calls++;
	ck_assert_uint_lt(k->n, ARRAY_LEN(k->recs));
	ck_assert(r->tag == 'P' || r->tag == 'F');
	ck_assert_uint_le(r->content_len, MAX);
	ck_assert_ptr_null(memchr(r->content, '\n', r->content_len));
	ck_assert_uint_eq(strlen(r->head), r->head_len);
	out = &k->recs[k->n++];
	out->tag = r->tag;
	out->stream = r->stream;
	out->time_ns = r->time_ns;
	out->len = r->content_len;
	out->content = malloc(r->content_len + 1);
	ck_assert_ptr_nonnull(out->content);
	memcpy(out->content, r->content, r->content_len);
	out->content[r->content_len] = '\0';

	k->text = realloc(k->text, k->text_len + r->head_len + r->content_len + 2);
	ck_assert_ptr_nonnull(k->text);
	memcpy(k->text + k->text_len, r->head, r->head_len);
	k->text_len += r->head_len;
	memcpy(k->text + k->text_len, r->content, r->content_len);
	k->text_len += r->content_len;
	k->text[k->text_len++] = '\n';
	k->text[k->text_len] = '\0';
	return k->fail;
}

static void setup(void)
{
	memset(&sink, 0, sizeof(sink));
}

static void teardown(void)
{
	for (size_t i = 0; i < sink.n; i++)
		free(sink.recs[i].content);
	free(sink.text);
	memset(&sink, 0, sizeof(sink));
}

static struct crid_cri_log_stream *new_stream(enum crid_cri_log_stream_kind kind)
{
	struct crid_cri_log_stream *s = malloc(sizeof(*s));

	ck_assert_ptr_nonnull(s);
	memset(s, 0xa5, sizeof(*s)); /* init must not rely on zeroed memory */
	crid_cri_log_stream_init(s, kind);
	return s;
}

static void feed(struct crid_cri_log_stream *s, const void *data, size_t len, int64_t t)
{
	ck_assert_int_eq(crid_cri_log_feed(s, data, len, t, collect, &sink), 0);
}

static void feed_str(struct crid_cri_log_stream *s, const char *str, int64_t t)
{
	feed(s, str, strlen(str), t);
}

static void flush(struct crid_cri_log_stream *s, int64_t t)
{
	ck_assert_int_eq(crid_cri_log_flush(s, t, collect, &sink), 0);
}

static void assert_rec(size_t i, char tag, enum crid_cri_log_stream_kind stream, const void *content, size_t len)
{
	ck_assert_uint_lt(i, sink.n);
	ck_assert_msg(sink.recs[i].tag == tag, "record %zu: tag %c, want %c", i, sink.recs[i].tag, tag);
	ck_assert_int_eq(sink.recs[i].stream, stream);
	ck_assert_uint_eq(sink.recs[i].len, len);
	ck_assert_msg(memcmp(sink.recs[i].content, content, len) == 0, "record %zu: content differs", i);
}

static void assert_rec_str(size_t i, char tag, enum crid_cri_log_stream_kind stream, const char *content)
{
	assert_rec(i, tag, stream, content, strlen(content));
}

/* A record of n bytes, all c. */
static void assert_rec_fill(size_t i, char tag, char c, size_t n)
{
	ck_assert_uint_lt(i, sink.n);
	ck_assert_msg(sink.recs[i].tag == tag, "record %zu: tag %c, want %c", i, sink.recs[i].tag, tag);
	ck_assert_uint_eq(sink.recs[i].len, n);
	for (size_t k = 0; k < n; k++)
		ck_assert_msg(sink.recs[i].content[k] == c, "record %zu: byte %zu is not '%c'", i, k, c);
}

static char *filled(size_t n, char c, bool newline)
{
	char *p = malloc(n + 2);

	ck_assert_ptr_nonnull(p);
	memset(p, c, n);
	if (newline)
		p[n++] = '\n';
	p[n] = '\0';
	return p;
}

/* ---------------------------------------------------------- timestamps */

static void assert_time(int64_t ns, const char *want)
{
	char buf[CRID_CRI_LOG_TIME_SIZE];
	size_t n = crid_cri_log_format_time(ns, buf);

	ck_assert_str_eq(buf, want);
	ck_assert_uint_eq(n, strlen(want));
}

START_TEST(test_time_known_values)
{
	assert_time(0, "1970-01-01T00:00:00.000000000Z");
	assert_time(1, "1970-01-01T00:00:00.000000001Z");
	assert_time(999999999, "1970-01-01T00:00:00.999999999Z");
	assert_time(1000000000, "1970-01-01T00:00:01.000000000Z");
	assert_time(T0, T0_TEXT);
	assert_time(951825600LL * 1000000000LL + 500, "2000-02-29T12:00:00.000000500Z");
	assert_time(2147483648LL * 1000000000LL, "2038-01-19T03:14:08.000000000Z");
	/* the whole range of int64_t nanoseconds */
	assert_time(INT64_MAX, "2262-04-11T23:47:16.854775807Z");
	assert_time(INT64_MIN, "1677-09-21T00:12:43.145224192Z");
	/* before 1970 the fraction still counts up */
	assert_time(-1, "1969-12-31T23:59:59.999999999Z");
}
END_TEST

START_TEST(test_time_shape)
{
	char buf[CRID_CRI_LOG_TIME_SIZE];
	struct timespec ts;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = crid_cri_log_format_time((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec, buf);
	ck_assert_uint_eq(n, CRID_CRI_LOG_TIME_LEN);
	ck_assert_uint_eq(strlen(buf), CRID_CRI_LOG_TIME_LEN);
	ck_assert(buf[4] == '-' && buf[7] == '-' && buf[10] == 'T' && buf[13] == ':' && buf[16] == ':');
	ck_assert(buf[19] == '.');
	for (int i = 20; i < 29; i++)
		ck_assert_msg(buf[i] >= '0' && buf[i] <= '9', "fraction digit %d of \"%s\"", i - 20, buf);
	ck_assert(buf[29] == 'Z');
}
END_TEST

START_TEST(test_time_utc_whatever_tz)
{
	setenv("TZ", "America/New_York", 1);
	tzset();
	assert_time(T0, T0_TEXT);
	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	assert_time(0, "1970-01-01T00:00:00.000000000Z");
}
END_TEST

/* -------------------------------------------------------------- records */

START_TEST(test_one_line)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "hello\n", T0);
	ck_assert_uint_eq(sink.n, 1);
	ck_assert_str_eq(sink.text, T0_TEXT " stdout F hello\n");
	ck_assert(sink.recs[0].time_ns == T0);
	flush(s, T0 + 1);
	ck_assert_uint_eq(sink.n, 1); /* nothing was left open */
	free(s);
}
END_TEST

START_TEST(test_stderr_name)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDERR);

	feed_str(s, "oops\n", T0);
	ck_assert_str_eq(sink.text, T0_TEXT " stderr F oops\n");
	ck_assert_str_eq(crid_cri_log_stream_name(CRID_CRI_LOG_STDOUT), "stdout");
	ck_assert_str_eq(crid_cri_log_stream_name(CRID_CRI_LOG_STDERR), "stderr");
	free(s);
}
END_TEST

START_TEST(test_several_lines_one_feed)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "a\nbb\nccc\n", T0);
	ck_assert_str_eq(sink.text, T0_TEXT " stdout F a\n" T0_TEXT " stdout F bb\n" T0_TEXT " stdout F ccc\n");
	free(s);
}
END_TEST

START_TEST(test_line_split_across_feeds)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "hel", T0);
	feed_str(s, "lo wo", T0 + 1);
	ck_assert_uint_eq(sink.n, 0);
	feed_str(s, "rld\nnext", T0 + 2);
	ck_assert_uint_eq(sink.n, 1);
	assert_rec_str(0, 'F', CRID_CRI_LOG_STDOUT, "hello world");
	ck_assert(sink.recs[0].time_ns == T0 + 2); /* the time the line was complete */
	feed_str(s, "\n", T0 + 3);
	assert_rec_str(1, 'F', CRID_CRI_LOG_STDOUT, "next");
	ck_assert_uint_eq(sink.n, 2);
	free(s);
}
END_TEST

START_TEST(test_newline_alone_ends_buffered_line)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "abc", T0);
	feed_str(s, "\n", T0);
	ck_assert_uint_eq(sink.n, 1);
	assert_rec_str(0, 'F', CRID_CRI_LOG_STDOUT, "abc");
	free(s);
}
END_TEST

START_TEST(test_empty_lines)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "\n\nx\n\n", T0);
	ck_assert_uint_eq(sink.n, 4);
	ck_assert_str_eq(sink.text, T0_TEXT " stdout F \n" T0_TEXT " stdout F \n" T0_TEXT " stdout F x\n" T0_TEXT
					    " stdout F \n");
	feed(s, "", 0, T0);
	ck_assert_uint_eq(sink.n, 4);
	free(s);
}
END_TEST

START_TEST(test_line_of_exactly_max)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(MAX, 'x', true);

	feed(s, line, MAX + 1, T0);
	ck_assert_uint_eq(sink.n, 1);
	assert_rec_fill(0, 'F', 'x', MAX);
	free(line);
	free(s);
}
END_TEST

/* The maximum arrives without its newline: nothing is emitted until the
 * next byte says whether the line goes on. */
START_TEST(test_line_of_exactly_max_newline_later)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(MAX, 'x', false);

	feed(s, line, 100, T0);
	feed(s, line, MAX - 100, T0);
	ck_assert_uint_eq(sink.n, 0);
	feed_str(s, "\n", T0);
	ck_assert_uint_eq(sink.n, 1);
	assert_rec_fill(0, 'F', 'x', MAX);
	free(line);
	free(s);
}
END_TEST

START_TEST(test_line_of_max_plus_one)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(MAX + 1, 'y', true);

	feed(s, line, MAX + 2, T0);
	ck_assert_uint_eq(sink.n, 2);
	assert_rec_fill(0, 'P', 'y', MAX);
	assert_rec_fill(1, 'F', 'y', 1);
	free(line);
	free(s);
}
END_TEST

START_TEST(test_full_buffer_then_more)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(MAX, 'y', false);

	feed(s, line, MAX, T0);
	ck_assert_uint_eq(sink.n, 0);
	feed_str(s, "z\n", T0);
	ck_assert_uint_eq(sink.n, 2);
	assert_rec_fill(0, 'P', 'y', MAX);
	assert_rec_str(1, 'F', CRID_CRI_LOG_STDOUT, "z");
	free(line);
	free(s);
}
END_TEST

/* 40 KiB: P (16 KiB) P (16 KiB) F (8 KiB), whatever the feeds' sizes. */
START_TEST(test_line_of_40k)
{
	static const size_t chunks[] = { 40 * 1024 + 1, 1, 7, 1000, 4096, 16384, 16383, 16385, 20000 };
	const size_t total = 40 * 1024;
	char *line = filled(total, 'z', true);

	for (size_t c = 0; c < ARRAY_LEN(chunks); c++) {
		struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDERR);

		teardown();
		setup();
		for (size_t off = 0; off < total + 1; off += chunks[c]) {
			size_t n = total + 1 - off < chunks[c] ? total + 1 - off : chunks[c];

			feed(s, line + off, n, T0);
		}
		ck_assert_msg(sink.n == 3, "chunk %zu: %zu records", chunks[c], sink.n);
		assert_rec_fill(0, 'P', 'z', MAX);
		assert_rec_fill(1, 'P', 'z', MAX);
		assert_rec_fill(2, 'F', 'z', total - 2 * MAX);
		ck_assert_int_eq(sink.recs[2].stream, CRID_CRI_LOG_STDERR);
		free(s);
	}
	free(line);
}
END_TEST

START_TEST(test_line_of_twice_max)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(2 * MAX, 'q', true);

	feed(s, line, 2 * MAX + 1, T0);
	ck_assert_uint_eq(sink.n, 2);
	assert_rec_fill(0, 'P', 'q', MAX);
	assert_rec_fill(1, 'F', 'q', MAX);
	free(line);
	free(s);
}
END_TEST

START_TEST(test_long_line_then_short_lines)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(MAX + 10, 'L', false);

	feed(s, line, MAX + 10, T0);
	feed_str(s, "\nshort\n", T0);
	ck_assert_uint_eq(sink.n, 3);
	assert_rec_fill(0, 'P', 'L', MAX);
	assert_rec_fill(1, 'F', 'L', 10);
	assert_rec_str(2, 'F', CRID_CRI_LOG_STDOUT, "short");
	free(line);
	free(s);
}
END_TEST

START_TEST(test_crlf_kept)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "dos\r\n\r\n", T0);
	ck_assert_uint_eq(sink.n, 2);
	assert_rec_str(0, 'F', CRID_CRI_LOG_STDOUT, "dos\r");
	assert_rec_str(1, 'F', CRID_CRI_LOG_STDOUT, "\r");
	ck_assert_str_eq(sink.text, T0_TEXT " stdout F dos\r\n" T0_TEXT " stdout F \r\n");
	free(s);
}
END_TEST

START_TEST(test_binary_bytes)
{
	static const unsigned char bin[] = { 0x00, 0xff, 0x1b, '[', '0', 'm', 0x7f, 0x80, 0x00, '\n', 0xfe, 0x00 };
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed(s, bin, sizeof(bin), T0);
	ck_assert_uint_eq(sink.n, 1);
	assert_rec(0, 'F', CRID_CRI_LOG_STDOUT, bin, 9);
	flush(s, T0);
	ck_assert_uint_eq(sink.n, 2);
	assert_rec(1, 'P', CRID_CRI_LOG_STDOUT, bin + 10, 2);
	free(s);
}
END_TEST

/* The end of the stream with a line still open: a P record, no newline
 * added to the content (the kubelet adds one only after F). */
START_TEST(test_eof_with_partial_line)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	feed_str(s, "done\nprompt> ", T0);
	ck_assert_uint_eq(sink.n, 1);
	flush(s, T0 + 5);
	ck_assert_uint_eq(sink.n, 2);
	assert_rec_str(1, 'P', CRID_CRI_LOG_STDOUT, "prompt> ");
	ck_assert(sink.recs[1].time_ns == T0 + 5);
	ck_assert_str_eq(sink.text, T0_TEXT " stdout F done\n2016-10-06T00:17:09.669794207Z stdout P prompt> \n");
	flush(s, T0 + 6); /* nothing left */
	ck_assert_uint_eq(sink.n, 2);
	free(s);
}
END_TEST

START_TEST(test_eof_with_full_buffer)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);
	char *line = filled(MAX, 'e', false);

	feed(s, line, MAX, T0);
	flush(s, T0);
	ck_assert_uint_eq(sink.n, 1);
	assert_rec_fill(0, 'P', 'e', MAX);
	free(line);
	free(s);
}
END_TEST

START_TEST(test_eof_of_empty_stream)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDERR);

	flush(s, T0);
	ck_assert_uint_eq(sink.n, 0);
	free(s);
}
END_TEST

START_TEST(test_streams_interleaved)
{
	struct crid_cri_log_stream *out = new_stream(CRID_CRI_LOG_STDOUT);
	struct crid_cri_log_stream *err = new_stream(CRID_CRI_LOG_STDERR);

	feed_str(out, "o1\no2-", T0);
	feed_str(err, "e1\ne2-", T0 + 1);
	feed_str(out, "rest\n", T0 + 2);
	feed_str(err, "rest", T0 + 3);
	flush(out, T0 + 4);
	flush(err, T0 + 5);
	ck_assert_uint_eq(sink.n, 4);
	assert_rec_str(0, 'F', CRID_CRI_LOG_STDOUT, "o1");
	assert_rec_str(1, 'F', CRID_CRI_LOG_STDERR, "e1");
	assert_rec_str(2, 'F', CRID_CRI_LOG_STDOUT, "o2-rest");
	assert_rec_str(3, 'P', CRID_CRI_LOG_STDERR, "e2-rest");
	ck_assert(sink.recs[3].time_ns == T0 + 5);
	free(out);
	free(err);
}
END_TEST

/* A writer that fails gets the error back; the stream goes on and loses
 * no state. */
START_TEST(test_emit_failure_reported_state_kept)
{
	struct crid_cri_log_stream *s = new_stream(CRID_CRI_LOG_STDOUT);

	sink.fail = -ENOSPC;
	ck_assert_int_eq(crid_cri_log_feed(s, "a\nb\nc", 5, T0, collect, &sink), -ENOSPC);
	ck_assert_uint_eq(sink.calls, 2); /* both lines were offered */
	sink.fail = 0;
	feed_str(s, "d\n", T0);
	assert_rec_str(2, 'F', CRID_CRI_LOG_STDOUT, "cd");
	sink.fail = -EIO;
	feed(s, "tail", 4, T0);
	ck_assert_int_eq(crid_cri_log_flush(s, T0, collect, &sink), -EIO);
	sink.fail = 0;
	flush(s, T0);
	ck_assert_uint_eq(sink.n, 4); /* the failed flush emptied the buffer */
	free(s);
}
END_TEST

static Suite *cri_log_suite(void)
{
	Suite *s = suite_create("cri_log");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_time_known_values);
	tcase_add_test(tc, test_time_shape);
	tcase_add_test(tc, test_time_utc_whatever_tz);
	tcase_add_test(tc, test_one_line);
	tcase_add_test(tc, test_stderr_name);
	tcase_add_test(tc, test_several_lines_one_feed);
	tcase_add_test(tc, test_line_split_across_feeds);
	tcase_add_test(tc, test_newline_alone_ends_buffered_line);
	tcase_add_test(tc, test_empty_lines);
	tcase_add_test(tc, test_line_of_exactly_max);
	tcase_add_test(tc, test_line_of_exactly_max_newline_later);
	tcase_add_test(tc, test_line_of_max_plus_one);
	tcase_add_test(tc, test_full_buffer_then_more);
	tcase_add_test(tc, test_line_of_40k);
	tcase_add_test(tc, test_line_of_twice_max);
	tcase_add_test(tc, test_long_line_then_short_lines);
	tcase_add_test(tc, test_crlf_kept);
	tcase_add_test(tc, test_binary_bytes);
	tcase_add_test(tc, test_eof_with_partial_line);
	tcase_add_test(tc, test_eof_with_full_buffer);
	tcase_add_test(tc, test_eof_of_empty_stream);
	tcase_add_test(tc, test_streams_interleaved);
	tcase_add_test(tc, test_emit_failure_reported_state_kept);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cri_log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
