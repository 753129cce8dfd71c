/* The CRI log state machine of cri_log.h. Complete lines are emitted
 * straight from the caller's data; only the unfinished end of a line is
 * copied into the stream's buffer. */
#include "shim/cri_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL

size_t crid_cri_log_format_time(int64_t ns, char buf[CRID_CRI_LOG_TIME_SIZE])
{
	int64_t sec = ns / NS_PER_S, frac = ns % NS_PER_S;
	time_t t;
	struct tm tm;
	int n;

	if (frac < 0) { /* before 1970: the fraction counts up from the second below */
		frac += NS_PER_S;
		sec--;
	}
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	n = snprintf(buf, CRID_CRI_LOG_TIME_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n < CRID_CRI_LOG_TIME_SIZE ? (size_t)n : CRID_CRI_LOG_TIME_SIZE - 1;
}

const char *crid_cri_log_stream_name(enum crid_cri_log_stream_kind kind)
{
	return kind == CRID_CRI_LOG_STDERR ? "stderr" : "stdout";
}

void crid_cri_log_stream_init(struct crid_cri_log_stream *s, enum crid_cri_log_stream_kind kind)
{
	s->kind = kind;
	s->len = 0;
}

static int emit_record(const struct crid_cri_log_stream *s, char tag, const char *content, size_t len,
		       int64_t now_ns, crid_cri_log_emit_fn emit, void *ctx)
{
	char head[CRID_CRI_LOG_HEAD_SIZE];
	size_t n = crid_cri_log_format_time(now_ns, head);
	const char *name = crid_cri_log_stream_name(s->kind);
	size_t name_len = strlen(name);
	struct crid_cri_log_record rec = {
		.time_ns = now_ns,
		.stream = s->kind,
		.tag = tag,
		.head = head,
		.content = content,
		.content_len = len,
	};

	/* time, ' ', name (6), ' ', tag, ' ': fits, CRID_CRI_LOG_HEAD_SIZE
	 * leaves ten bytes after the longest time. */
	head[n++] = ' ';
	memcpy(head + n, name, name_len);
	n += name_len;
	head[n++] = ' ';
	head[n++] = tag;
	head[n++] = ' ';
	head[n] = '\0';
	rec.head_len = n;
	return emit(&rec, ctx);
}

/* Keeps the first error and goes on: the stream's state stays right. */
static void keep_first(int *result, int r)
{
	if (r < 0 && *result == 0)
		*result = r;
}

int crid_cri_log_feed(struct crid_cri_log_stream *s, const void *data, size_t len, int64_t now_ns,
		      crid_cri_log_emit_fn emit, void *ctx)
{
	const char *p = data, *end = p + len;
	int result = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;

		/* More than a record can hold: cut P records of exactly the
		 * maximum. Strictly more, so at least one byte of the line
		 * follows each cut and a line of exactly the maximum stays one
		 * F record. */
		while (s->len + (size_t)(line_end - p) > CRID_SHIM_LOG_LINE_MAX) {
			if (s->len == 0) {
				keep_first(&result, emit_record(s, 'P', p, CRID_SHIM_LOG_LINE_MAX, now_ns, emit, ctx));
				p += CRID_SHIM_LOG_LINE_MAX;
			} else {
				size_t take = CRID_SHIM_LOG_LINE_MAX - s->len;

				memcpy(s->buf + s->len, p, take);
				p += take;
				s->len = 0;
				keep_first(&result, emit_record(s, 'P', s->buf, CRID_SHIM_LOG_LINE_MAX, now_ns, emit, ctx));
			}
		}
		if (!nl) {
			/* The line goes on in a later feed; it fits, see above. */
			memcpy(s->buf + s->len, p, (size_t)(end - p));
			s->len += (size_t)(end - p);
			break;
		}
		if (s->len == 0) {
			keep_first(&result, emit_record(s, 'F', p, (size_t)(nl - p), now_ns, emit, ctx));
		} else {
			size_t total;

			memcpy(s->buf + s->len, p, (size_t)(nl - p));
			total = s->len + (size_t)(nl - p);
			s->len = 0;
			keep_first(&result, emit_record(s, 'F', s->buf, total, now_ns, emit, ctx));
		}
		p = nl + 1;
	}
	return result;
}

int crid_cri_log_flush(struct crid_cri_log_stream *s, int64_t now_ns, crid_cri_log_emit_fn emit, void *ctx)
{
	size_t len = s->len;

	if (len == 0)
		return 0;
	s->len = 0;
	return emit_record(s, 'P', s->buf, len, now_ns, emit, ctx);
}
