/* The CRI container log format, as the kubelet reads it: every line of a
 * container's stdout or stderr becomes one record
 *     <RFC3339Nano UTC time> <stdout|stderr> <P|F> <content>\n
 * e.g. "2016-10-06T00:17:09.669794202Z stdout F hello". Pure: no I/O, no
 * clock, no allocation; the caller passes the time and a callback that
 * writes each record.
 *
 * One state machine per stream. A line (ending in '\n') becomes one F
 * record without its newline; '\r' and any other byte are content. A line
 * longer than CRID_SHIM_LOG_LINE_MAX bytes is cut into P records of exactly
 * that size, ending with one F record holding the rest (a line of exactly
 * the maximum is one F record). Bytes that do not end a line wait in the
 * stream's buffer for the rest of their line. At the end of the stream
 * (crid_cri_log_flush) a line left without its newline is written as a P
 * record: the output really had no newline there, and the kubelet adds one
 * only after an F record, so `kubectl logs` shows exactly what was written.
 * containerd's CRI logger does the same at EOF, and conmon writes every
 * partial read as P. */
#ifndef CRID_SHIM_CRI_LOG_H
#define CRID_SHIM_CRI_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "shim/protocol.h"

/* Length of a timestamp for years 0000 to 9999: "2016-10-06T00:17:09.669794202Z". */
#define CRID_CRI_LOG_TIME_LEN 30
/* Room for any timestamp and its NUL. */
#define CRID_CRI_LOG_TIME_SIZE 48
/* Room for "<time> stdout F " and its NUL. */
#define CRID_CRI_LOG_HEAD_SIZE (CRID_CRI_LOG_TIME_SIZE + 10)

enum crid_cri_log_stream_kind {
	CRID_CRI_LOG_STDOUT = 0,
	CRID_CRI_LOG_STDERR = 1,
};

/* A record is head, then content, then one '\n'. */
struct crid_cri_log_record {
	int64_t time_ns;
	enum crid_cri_log_stream_kind stream;
	char tag;             /* 'P' or 'F' */
	const char *head;     /* "<time> <stream> <tag> ", NUL-terminated */
	size_t head_len;
	const char *content;  /* any bytes but '\n'; valid during the callback only */
	size_t content_len;   /* <= CRID_SHIM_LOG_LINE_MAX */
};

/* Writes one record; a negative return is passed back by feed or flush,
 * which still consume all their input (the output of a container is never
 * held back because the log failed). */
typedef int (*crid_cri_log_emit_fn)(const struct crid_cri_log_record *rec, void *ctx);

struct crid_cri_log_stream {
	enum crid_cri_log_stream_kind kind;
	size_t len; /* bytes of a line not yet ended, in buf */
	char buf[CRID_SHIM_LOG_LINE_MAX];
};

/* Sets the stream up empty; touches only its header, not the buffer. */
void crid_cri_log_stream_init(struct crid_cri_log_stream *s, enum crid_cri_log_stream_kind kind);

/* Takes len bytes of the stream's output, read at now_ns (Unix time in
 * nanoseconds, the time of every record this call emits), and emits the
 * records they complete. Returns 0, or the first negative emit result. */
int crid_cri_log_feed(struct crid_cri_log_stream *s, const void *data, size_t len, int64_t now_ns,
		      crid_cri_log_emit_fn emit, void *ctx);

/* The stream has ended: emits what is buffered as a P record (nothing when
 * the output ended with a newline). Returns 0 or the emit result. */
int crid_cri_log_flush(struct crid_cri_log_stream *s, int64_t now_ns, crid_cri_log_emit_fn emit, void *ctx);

/* "stdout" or "stderr". */
const char *crid_cri_log_stream_name(enum crid_cri_log_stream_kind kind);

/* Writes ns (Unix time in nanoseconds) as RFC 3339 UTC with exactly nine
 * fraction digits and a 'Z' into buf, NUL-terminated; returns the length
 * (CRID_CRI_LOG_TIME_LEN for years 0000 to 9999). */
size_t crid_cri_log_format_time(int64_t ns, char buf[CRID_CRI_LOG_TIME_SIZE]);

#endif
