/* Structured logging to stderr: one line per event, level and msg first, then
 * key=value fields, as logfmt or JSON. Thread-safe; each line is one write(2). */
#ifndef CRID_COMMON_LOG_H
#define CRID_COMMON_LOG_H

enum crid_log_level {
	CRID_LOG_DEBUG = 0,
	CRID_LOG_INFO,
	CRID_LOG_WARN,
	CRID_LOG_ERROR,
};

enum crid_log_format {
	CRID_LOG_LOGFMT = 0,
	CRID_LOG_JSON,
};

void crid_log_setup(enum crid_log_level level, enum crid_log_format format);
int crid_log_enabled(enum crid_log_level level);

/* Fields are pairs of strings, key then value, ended by NULL; a NULL value
 * leaves its field out. Use CRID_LOG. */
void crid_log_fields(enum crid_log_level level, const char *msg, ...) __attribute__((sentinel));

#define CRID_LOG(level, msg, ...) crid_log_fields(level, msg, ##__VA_ARGS__, (const char *)NULL)
#define log_debug(msg, ...) CRID_LOG(CRID_LOG_DEBUG, msg, ##__VA_ARGS__)
#define log_info(msg, ...) CRID_LOG(CRID_LOG_INFO, msg, ##__VA_ARGS__)
#define log_warn(msg, ...) CRID_LOG(CRID_LOG_WARN, msg, ##__VA_ARGS__)
#define log_error(msg, ...) CRID_LOG(CRID_LOG_ERROR, msg, ##__VA_ARGS__)

/* Parse "debug", "info", "warn"/"warning", "error"; -EINVAL otherwise. */
int crid_log_level_parse(const char *s, enum crid_log_level *out);
const char *crid_log_level_name(enum crid_log_level level);
int crid_log_format_parse(const char *s, enum crid_log_format *out);
const char *crid_log_format_name(enum crid_log_format format);

#endif
