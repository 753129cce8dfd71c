/* Structured logging of log.h: logfmt or JSON lines on stderr. */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = CRID_LOG_INFO;
static _Atomic int log_format = CRID_LOG_LOGFMT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void crid_log_setup(enum crid_log_level level, enum crid_log_format format)
{
	log_level = level;
	log_format = format;
}

int crid_log_enabled(enum crid_log_level level)
{
	return (int)level >= log_level;
}

const char *crid_log_level_name(enum crid_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "info";
	return level_names[level];
}

int crid_log_level_parse(const char *s, enum crid_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum crid_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = CRID_LOG_WARN;
		return 0;
	}
	return -22;
}

const char *crid_log_format_name(enum crid_log_format format)
{
	return format == CRID_LOG_JSON ? "json" : "logfmt";
}

int crid_log_format_parse(const char *s, enum crid_log_format *out)
{
	if (strcasecmp(s, "logfmt") == 0 || strcasecmp(s, "text") == 0) {
		*out = CRID_LOG_LOGFMT;
		return 0;
	}
	if (strcasecmp(s, "json") == 0) {
		*out = CRID_LOG_JSON;
		return 0;
	}
	return -22;
}

/* A line buffer that truncates rather than fails: logging never allocates. */
struct line {
	char buf[8192];
	size_t len;
};

/* Content stops this far from the end, so closing quotes, the closing
 * brace and the newline always fit: a cut line still parses. */
#define LINE_TAIL 16

/* Appends all of s, or nothing of it when it would reach the tail. */
static bool put(struct line *l, const char *s, size_t n)
{
	if (l->len + n > sizeof(l->buf) - LINE_TAIL)
		return false;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

/* Closing bytes: may use the tail. */
static void put_close(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (l->len + n <= sizeof(l->buf) - 1) {
		memcpy(l->buf + l->len, s, n);
		l->len += n;
	}
}

/* Appends as much of s as fits before the tail: bare words may be cut. */
static void puts_(struct line *l, const char *s)
{
	size_t n = strlen(s), room = sizeof(l->buf) - LINE_TAIL - l->len;

	put(l, s, n < room ? n : room);
}

/* A quoted, escaped string; cut whole escapes only, always closed. */
static void put_json_string(struct line *l, const char *s)
{
	bool ok = put(l, "\"", 1);

	for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
		char esc[8];

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			ok = put(l, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			ok = put(l, esc, 6);
		} else {
			ok = put(l, (const char *)p, 1);
		}
	}
	put_close(l, "\"");
}

static int logfmt_needs_quotes(const char *s)
{
	if (*s == '\0')
		return 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
			return 1;
	return 0;
}

static void put_logfmt_value(struct line *l, const char *s)
{
	if (logfmt_needs_quotes(s))
		put_json_string(l, s); /* logfmt quoting uses the same escapes */
	else
		puts_(l, s);
}

static void put_field(struct line *l, int json, const char *key, const char *value)
{
	/* A field starts only when its key and separators fit whole. */
	if (l->len + strlen(key) + 8 > sizeof(l->buf) - LINE_TAIL)
		return;
	if (json) {
		put(l, ",", 1);
		put_json_string(l, key);
		put(l, ":", 1);
		put_json_string(l, value);
	} else {
		put(l, " ", 1);
		puts_(l, key);
		put(l, "=", 1);
		put_logfmt_value(l, value);
	}
}

void crid_log_fields(enum crid_log_level level, const char *msg, ...)
{
	struct line l = { .len = 0 };
	int json = log_format == CRID_LOG_JSON;
	char ts[64];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (!crid_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);

	if (json) {
		puts_(&l, "{\"time\":");
		put_json_string(&l, ts);
		put_field(&l, 1, "level", crid_log_level_name(level));
		put_field(&l, 1, "msg", msg);
	} else {
		puts_(&l, "time=");
		puts_(&l, ts);
		put_field(&l, 0, "level", crid_log_level_name(level));
		put_field(&l, 0, "msg", msg);
	}
	va_start(ap, msg);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		const char *value;

		if (!key)
			break;
		value = va_arg(ap, const char *);
		if (value) /* a NULL value drops the field: callers pass optional ones */
			put_field(&l, json, key, value);
	}
	va_end(ap);
	if (json)
		put_close(&l, "}");
	l.buf[l.len++] = '\n';
	/* One write per line keeps lines from threads whole. */
	if (write(STDERR_FILENO, l.buf, l.len) < 0)
		return;
}
