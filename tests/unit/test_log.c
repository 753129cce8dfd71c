/* Unit tests of src/common/log: logfmt and JSON lines as written to stderr,
 * quoting and escaping, dropped NULL fields, level filtering, whole lines
 * from many threads, and the level/format parsers. stderr is pointed at a
 * temporary file while a test logs and put back afterwards (the fixture's
 * teardown restores it even when an assertion fails mid-capture). Check runs
 * each test in its own process, so crid_log_setup does not leak between
 * tests. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* ------------------------------------------------------------- capture */

static int saved_stderr = -1;
static int capture_fd = -1;
static char *captured; /* the last capture, freed by the next one or teardown */
static json_t *parsed;  /* the last parsed JSON line, likewise */

static void capture_begin(void)
{
	char path[4096];
	const char *tmp = getenv("TMPDIR");

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/crid-test-log-XXXXXX", tmp ? tmp : "/tmp"),
			 (int)sizeof(path));
	capture_fd = mkstemp(path);
	ck_assert_msg(capture_fd >= 0, "mkstemp: %s", strerror(errno));
	unlink(path);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

static void restore_stderr(void)
{
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
}

/* Ends the capture and returns everything written, NUL-terminated. The
 * buffer stays valid until the next capture ends or the test ends. */
static char *capture_end(size_t *len_out)
{
	off_t size;
	char *buf;
	size_t got = 0;

	restore_stderr();
	size = lseek(capture_fd, 0, SEEK_END);
	ck_assert_int_ge(size, 0);
	buf = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(buf);
	while (got < (size_t)size) {
		ssize_t n = pread(capture_fd, buf + got, (size_t)size - got, (off_t)got);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	buf[got] = '\0';
	free(captured);
	captured = buf;
	close(capture_fd);
	capture_fd = -1;
	if (len_out)
		*len_out = got;
	return buf;
}

static void setup(void)
{
	saved_stderr = -1;
	capture_fd = -1;
	captured = NULL;
	parsed = NULL;
}

static void teardown(void)
{
	restore_stderr();
	if (capture_fd >= 0)
		close(capture_fd);
	capture_fd = -1;
	free(captured);
	captured = NULL;
	json_decref(parsed);
	parsed = NULL;
}

/* Splits a captured single line: checks it is exactly one line and that it
 * starts with a well-formed, current timestamp, and returns what follows the
 * timestamp, cutting the newline off in place. */
static char *logfmt_rest(char *out)
{
	regex_t re;
	regmatch_t mt[2];
	size_t len = strlen(out);
	struct tm tm = { 0 };
	time_t t, now = time(NULL);
	char *rest;
	bool matched;

	ck_assert_msg(len > 0 && out[len - 1] == '\n', "not one terminated line: \"%s\"", out);
	ck_assert_msg(strchr(out, '\n') == out + len - 1, "more than one line: \"%s\"", out);
	ck_assert_int_eq(regcomp(&re, "^time=([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z) ",
				 REG_EXTENDED),
			 0);
	matched = regexec(&re, out, 2, mt, 0) == 0;
	regfree(&re);
	ck_assert_msg(matched, "bad time field: \"%s\"", out);
	ck_assert_ptr_nonnull(strptime(out + mt[1].rm_so, "%Y-%m-%dT%H:%M:%S", &tm));
	t = timegm(&tm);
	ck_assert_msg(t >= now - 5 && t <= now + 1, "time %ld is not now (%ld)", (long)t, (long)now);
	out[len - 1] = '\0';
	rest = out + mt[0].rm_eo;
	return rest;
}

/* Captures what the statements log and sets var to the logfmt line after its
 * timestamp. */
#define LOGFMT_REST(var, ...)                       \
	do {                                        \
		char *out_;                         \
		capture_begin();                    \
		__VA_ARGS__;                        \
		out_ = capture_end(NULL);           \
		var = logfmt_rest(out_);            \
	} while (0)

/* ------------------------------------------------------------- logfmt */

START_TEST(test_logfmt_line)
{
	char *rest;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	LOGFMT_REST(rest, log_info("hello world", "key", "value", "quoted", "a b"));
	ck_assert_str_eq(rest, "level=info msg=\"hello world\" key=value quoted=\"a b\"");
}
END_TEST

START_TEST(test_logfmt_levels_named)
{
	char *rest;

	crid_log_setup(CRID_LOG_DEBUG, CRID_LOG_LOGFMT);
	LOGFMT_REST(rest, log_debug("d"));
	ck_assert_str_eq(rest, "level=debug msg=d");
	LOGFMT_REST(rest, log_warn("w"));
	ck_assert_str_eq(rest, "level=warn msg=w");
	LOGFMT_REST(rest, log_error("e", "err", "boom"));
	ck_assert_str_eq(rest, "level=error msg=e err=boom");
}
END_TEST

START_TEST(test_logfmt_quoting)
{
	char *rest;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	LOGFMT_REST(rest, log_info("m", "plain", "abc-123_/.:,+@", "space", "a b", "eq", "a=b", "dq", "say \"hi\"",
				   "bs", "C:\\dir", "empty", "", "nl", "a\nb", "tab", "a\tb", "ctl", "\x01",
				   "del", "\x7f", "utf8", "caf\xc3\xa9"));
	ck_assert_str_eq(rest, "level=info msg=m plain=abc-123_/.:,+@ space=\"a b\" eq=\"a=b\" dq=\"say \\\"hi\\\"\""
			       " bs=\"C:\\\\dir\" empty=\"\" nl=\"a\\u000ab\" tab=\"a\\u0009b\" ctl=\"\\u0001\""
			       " del=\"\x7f\" utf8=\"caf\xc3\xa9\"");
}
END_TEST

START_TEST(test_logfmt_msg_quoting)
{
	char *rest;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	LOGFMT_REST(rest, log_info("pulled=\"x\""));
	ck_assert_str_eq(rest, "level=info msg=\"pulled=\\\"x\\\"\"");
	LOGFMT_REST(rest, log_info(""));
	ck_assert_str_eq(rest, "level=info msg=\"\"");
}
END_TEST

START_TEST(test_logfmt_null_value_drops_field)
{
	char *rest;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	LOGFMT_REST(rest, log_info("m", "a", "1", "gone", NULL, "b", "2"));
	ck_assert_str_eq(rest, "level=info msg=m a=1 b=2");
	LOGFMT_REST(rest, log_info("m", "gone", NULL));
	ck_assert_str_eq(rest, "level=info msg=m");
	LOGFMT_REST(rest, log_info("m", "a", NULL, "b", NULL, "c", "3"));
	ck_assert_str_eq(rest, "level=info msg=m c=3");
}
END_TEST

/* Runs first, so it sees the defaults even without CK_FORK. */
START_TEST(test_defaults_info_logfmt)
{
	char *rest;

	ck_assert_int_eq(crid_log_enabled(CRID_LOG_DEBUG), 0);
	ck_assert_int_ne(crid_log_enabled(CRID_LOG_INFO), 0);
	LOGFMT_REST(rest, log_debug("hidden"); log_info("shown"));
	ck_assert_str_eq(rest, "level=info msg=shown");
}
END_TEST

START_TEST(test_level_filtering)
{
	char *out;
	size_t len;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	ck_assert_int_eq(crid_log_enabled(CRID_LOG_DEBUG), 0);
	ck_assert_int_ne(crid_log_enabled(CRID_LOG_INFO), 0);
	ck_assert_int_ne(crid_log_enabled(CRID_LOG_WARN), 0);
	ck_assert_int_ne(crid_log_enabled(CRID_LOG_ERROR), 0);
	capture_begin();
	log_debug("dropped", "k", "v");
	log_info("kept-info");
	log_warn("kept-warn");
	log_error("kept-error");
	out = capture_end(&len);
	ck_assert_ptr_null(strstr(out, "dropped"));
	ck_assert_ptr_null(strstr(out, "level=debug"));
	ck_assert_ptr_nonnull(strstr(out, "level=info msg=kept-info\n"));
	ck_assert_ptr_nonnull(strstr(out, "level=warn msg=kept-warn\n"));
	ck_assert_ptr_nonnull(strstr(out, "level=error msg=kept-error\n"));

	crid_log_setup(CRID_LOG_ERROR, CRID_LOG_LOGFMT);
	ck_assert_int_eq(crid_log_enabled(CRID_LOG_WARN), 0);
	capture_begin();
	log_debug("d");
	log_info("i");
	log_warn("w");
	out = capture_end(&len);
	ck_assert_uint_eq(len, 0);

	crid_log_setup(CRID_LOG_DEBUG, CRID_LOG_LOGFMT);
	ck_assert_int_ne(crid_log_enabled(CRID_LOG_DEBUG), 0);
	capture_begin();
	log_debug("now-kept");
	out = capture_end(&len);
	ck_assert_ptr_nonnull(strstr(out, "level=debug msg=now-kept\n"));
}
END_TEST

START_TEST(test_logfmt_long_line_truncated)
{
	/* Logging never allocates: a huge value is cut, but the output is still
	 * one line ending in a newline, and no more than the 8 KiB buffer. */
	static char big[20001];
	char *out;
	size_t len;

	memset(big, 'x', 20000);
	big[20000] = '\0';
	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	capture_begin();
	log_info("big", "v", big);
	log_info("after");
	out = capture_end(&len);
	ck_assert_ptr_nonnull(strstr(out, "msg=big v=xxxx"));
	ck_assert_msg(strchr(out, '\n') != NULL && (size_t)(strchr(out, '\n') - out) < 8192,
		      "first line is %zu bytes", (size_t)(strchr(out, '\n') - out));
	ck_assert_ptr_nonnull(strstr(strchr(out, '\n') + 1, "level=info msg=after\n"));
}
END_TEST

/* ------------------------------------------------------------- JSON */

static json_t *parse_json_line(const char *out)
{
	size_t len = strlen(out);
	json_error_t jerr;
	json_t *j;

	ck_assert_msg(len > 0 && out[len - 1] == '\n', "not one terminated line: \"%s\"", out);
	ck_assert_msg(strchr(out, '\n') == out + len - 1, "more than one line: \"%s\"", out);
	for (size_t i = 0; i + 1 < len; i++)
		ck_assert_msg((unsigned char)out[i] >= 0x20, "raw control byte 0x%02x at %zu", out[i], i);
	j = json_loadb(out, len, JSON_REJECT_DUPLICATES, &jerr);
	json_decref(parsed);
	parsed = j; /* freed by teardown, also when an assertion fails */
	ck_assert_msg(j != NULL, "not JSON (%s at %d): \"%.200s\"", jerr.text, jerr.position, out);
	ck_assert_msg(json_is_object(j), "not an object: \"%s\"", out);
	return j;
}

static void check_json_str(json_t *j, const char *key, const char *want)
{
	json_t *v = json_object_get(j, key);

	ck_assert_msg(v != NULL, "no key \"%s\"", key);
	ck_assert_msg(json_is_string(v), "\"%s\" is not a string", key);
	ck_assert_str_eq(json_string_value(v), want);
}

START_TEST(test_json_line)
{
	char *out;
	json_t *j;
	regex_t re;
	bool matched;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_JSON);
	capture_begin();
	log_info("hello world", "key", "value", "quoted", "a b");
	out = capture_end(NULL);
	/* time, level and msg first, in that order. */
	ck_assert_int_eq(regcomp(&re,
				 "^\\{\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z\","
				 "\"level\":\"info\",\"msg\":\"hello world\",",
				 REG_EXTENDED),
			 0);
	matched = regexec(&re, out, 0, NULL, 0) == 0;
	regfree(&re);
	ck_assert_msg(matched, "bad start: \"%s\"", out);
	j = parse_json_line(out);
	ck_assert_uint_eq(json_object_size(j), 5);
	check_json_str(j, "level", "info");
	check_json_str(j, "msg", "hello world");
	check_json_str(j, "key", "value");
	check_json_str(j, "quoted", "a b");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "time")));
}
END_TEST

START_TEST(test_json_escaping)
{
	static const char ctl[] = "a\nb\rc\td\x01\x1f" "e";
	char *out;
	json_t *j;

	crid_log_setup(CRID_LOG_DEBUG, CRID_LOG_JSON);
	capture_begin();
	log_warn("say \"hi\"", "path", "C:\\dir\\file", "ctl", ctl, "utf8", "caf\xc3\xa9 \xe2\x82\xac", "empty", "",
		 "key \"q\"", "v", "eq", "a=b");
	out = capture_end(NULL);
	ck_assert_ptr_nonnull(strstr(out, "\"msg\":\"say \\\"hi\\\"\""));
	ck_assert_ptr_nonnull(strstr(out, "\"path\":\"C:\\\\dir\\\\file\""));
	j = parse_json_line(out);
	ck_assert_uint_eq(json_object_size(j), 9);
	check_json_str(j, "level", "warn");
	check_json_str(j, "msg", "say \"hi\"");
	check_json_str(j, "path", "C:\\dir\\file");
	check_json_str(j, "ctl", ctl);
	check_json_str(j, "utf8", "caf\xc3\xa9 \xe2\x82\xac");
	check_json_str(j, "empty", "");
	check_json_str(j, "key \"q\"", "v");
	check_json_str(j, "eq", "a=b");
}
END_TEST

START_TEST(test_json_null_value_drops_field)
{
	char *out;
	json_t *j;

	crid_log_setup(CRID_LOG_INFO, CRID_LOG_JSON);
	capture_begin();
	log_error("m", "a", "1", "gone", NULL, "b", "2");
	out = capture_end(NULL);
	j = parse_json_line(out);
	ck_assert_uint_eq(json_object_size(j), 5);
	ck_assert_ptr_null(json_object_get(j, "gone"));
	check_json_str(j, "level", "error");
	check_json_str(j, "a", "1");
	check_json_str(j, "b", "2");
}
END_TEST

START_TEST(test_json_level_filtering)
{
	char *out;
	size_t len;

	crid_log_setup(CRID_LOG_WARN, CRID_LOG_JSON);
	capture_begin();
	log_debug("d");
	log_info("i");
	out = capture_end(&len);
	ck_assert_uint_eq(len, 0);
	capture_begin();
	log_info("i");
	log_warn("w");
	out = capture_end(&len);
	check_json_str(parse_json_line(out), "msg", "w");
}
END_TEST

/* A line that is cut to fit the buffer must still be one JSON object: a
 * consumer of JSON logs cannot read half an object. */
START_TEST(test_json_long_value_still_valid)
{
	static char big[20001];
	char *out;
	json_t *j;

	memset(big, 'x', 20000);
	big[20000] = '\0';
	crid_log_setup(CRID_LOG_INFO, CRID_LOG_JSON);
	capture_begin();
	log_info("big", "v", big, "after", "1");
	out = capture_end(NULL);
	j = parse_json_line(out);
	check_json_str(j, "msg", "big");
	ck_assert_ptr_nonnull(json_object_get(j, "v"));
}
END_TEST

/* ------------------------------------------------------------- threads */

#define N_THREADS 8
#define N_LINES 400

static char pad[600];

static void *log_thread(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < N_LINES; i++) {
		char tid[16], seq[16];

		snprintf(tid, sizeof(tid), "%d", t);
		snprintf(seq, sizeof(seq), "%d", i);
		log_info("line", "thread", tid, "seq", seq, "pad", pad);
	}
	return NULL;
}

START_TEST(test_lines_whole_across_threads)
{
	pthread_t th[N_THREADS];
	int seen[N_THREADS][N_LINES];
	char *out, *line, *save = NULL;
	int n_lines = 0;

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	memset(seen, 0, sizeof(seen));
	crid_log_setup(CRID_LOG_INFO, CRID_LOG_LOGFMT);
	capture_begin();
	for (long t = 0; t < N_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, log_thread, (void *)t), 0);
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(th[t], NULL);
	out = capture_end(NULL);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int t, i, off = -1;

		n_lines++;
		ck_assert_msg(strncmp(line, "time=", 5) == 0, "torn line: \"%.80s\"", line);
		ck_assert_msg(sscanf(strstr(line, " level=") ? strstr(line, " level=") : "",
				     " level=info msg=line thread=%d seq=%d pad=%n", &t, &i, &off) == 2 && off > 0,
			      "torn line: \"%.120s\"", line);
		ck_assert(t >= 0 && t < N_THREADS && i >= 0 && i < N_LINES);
		ck_assert_str_eq(strstr(line, " level=") + off, pad);
		seen[t][i]++;
	}
	ck_assert_int_eq(n_lines, N_THREADS * N_LINES);
	for (int t = 0; t < N_THREADS; t++)
		for (int i = 0; i < N_LINES; i++)
			ck_assert_int_eq(seen[t][i], 1);
}
END_TEST

/* ------------------------------------------------------------- parsers */

START_TEST(test_level_parse_accepts)
{
	static const struct {
		const char *s;
		enum crid_log_level want;
	} cases[] = {
		{ "debug", CRID_LOG_DEBUG }, { "info", CRID_LOG_INFO },	  { "warn", CRID_LOG_WARN },
		{ "warning", CRID_LOG_WARN }, { "error", CRID_LOG_ERROR }, { "DEBUG", CRID_LOG_DEBUG },
		{ "Info", CRID_LOG_INFO },   { "WARN", CRID_LOG_WARN },	  { "WaRnInG", CRID_LOG_WARN },
		{ "ERROR", CRID_LOG_ERROR },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum crid_log_level out = (enum crid_log_level)99;

		ck_assert_msg(crid_log_level_parse(cases[i].s, &out) == 0, "\"%s\" rejected", cases[i].s);
		ck_assert_int_eq(out, cases[i].want);
	}
}
END_TEST

START_TEST(test_level_parse_rejects)
{
	static const char *const bad[] = { "",	    "verbose", "trace", "fatal", "warn ",  " info", "inf",
					   "infos", "errors",  "err",	"dbg",	 "warnings", "0",	"1",
					   "info\n", "notice", "critical" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum crid_log_level out = (enum crid_log_level)77;

		ck_assert_msg(crid_log_level_parse(bad[i], &out) == -EINVAL, "\"%s\" accepted", bad[i]);
		ck_assert_int_eq(out, 77);
	}
}
END_TEST

START_TEST(test_level_names)
{
	ck_assert_str_eq(crid_log_level_name(CRID_LOG_DEBUG), "debug");
	ck_assert_str_eq(crid_log_level_name(CRID_LOG_INFO), "info");
	ck_assert_str_eq(crid_log_level_name(CRID_LOG_WARN), "warn");
	ck_assert_str_eq(crid_log_level_name(CRID_LOG_ERROR), "error");
	/* Names parse back to their level. */
	for (int l = CRID_LOG_DEBUG; l <= CRID_LOG_ERROR; l++) {
		enum crid_log_level out;

		ck_assert_int_eq(crid_log_level_parse(crid_log_level_name((enum crid_log_level)l), &out), 0);
		ck_assert_int_eq(out, l);
	}
}
END_TEST

START_TEST(test_format_parse)
{
	enum crid_log_format f = (enum crid_log_format)9;

	ck_assert_int_eq(crid_log_format_parse("logfmt", &f), 0);
	ck_assert_int_eq(f, CRID_LOG_LOGFMT);
	f = (enum crid_log_format)9;
	ck_assert_int_eq(crid_log_format_parse("text", &f), 0);
	ck_assert_int_eq(f, CRID_LOG_LOGFMT);
	ck_assert_int_eq(crid_log_format_parse("JSON", &f), 0);
	ck_assert_int_eq(f, CRID_LOG_JSON);
	f = (enum crid_log_format)9;
	ck_assert_int_eq(crid_log_format_parse("yaml", &f), -EINVAL);
	ck_assert_int_eq(crid_log_format_parse("", &f), -EINVAL);
	ck_assert_int_eq(f, 9);
	ck_assert_str_eq(crid_log_format_name(CRID_LOG_LOGFMT), "logfmt");
	ck_assert_str_eq(crid_log_format_name(CRID_LOG_JSON), "json");
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_defaults_info_logfmt);
	tcase_add_test(tc, test_logfmt_line);
	tcase_add_test(tc, test_logfmt_levels_named);
	tcase_add_test(tc, test_logfmt_quoting);
	tcase_add_test(tc, test_logfmt_msg_quoting);
	tcase_add_test(tc, test_logfmt_null_value_drops_field);
	tcase_add_test(tc, test_level_filtering);
	tcase_add_test(tc, test_logfmt_long_line_truncated);
	tcase_add_test(tc, test_json_line);
	tcase_add_test(tc, test_json_escaping);
	tcase_add_test(tc, test_json_null_value_drops_field);
	tcase_add_test(tc, test_json_level_filtering);
	tcase_add_test(tc, test_json_long_value_still_valid);
	tcase_add_test(tc, test_lines_whole_across_threads);
	tcase_add_test(tc, test_level_parse_accepts);
	tcase_add_test(tc, test_level_parse_rejects);
	tcase_add_test(tc, test_level_names);
	tcase_add_test(tc, test_format_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
