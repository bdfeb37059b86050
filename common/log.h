/*
 * log.h — process-wide logging in PostgreSQL's tone.
 *
 * Messages are short, lower-case, without a trailing period; details and
 * hints are full sentences.  Every line carries a timestamp, the program name,
 * the pid and the level:
 *
 *   2026-11-26 16:40:01.123 UTC dtx-coordinator[4242] LOG:  listening on 127.0.0.1:6543
 *
 * log_set_format(LOG_FORMAT_JSON) makes every line one JSON object instead
 * (built with json-c), with the component (the source file's stem) and the
 * transaction, participant, client and SQLSTATE a line is about as fields.
 *
 * Output goes to stderr unless log_open_file() names a file.  Logging is
 * thread-safe (one write(2) per line).  log_fatal() logs and exits(1);
 * log_panic() logs and abort()s — used when durability can no longer be
 * promised (a failed fsync).
 */
#ifndef DTX_LOG_H
#define DTX_LOG_H

#include <stdbool.h>
#include <stdarg.h>

typedef enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO = 1,
    LOG_LVL_LOG = 2, /* normal operational messages */
    LOG_LVL_WARNING = 3,
    LOG_LVL_ERROR = 4,
    LOG_LVL_FATAL = 5,
    LOG_LVL_PANIC = 6,
} log_level;

/* Set the program name shown in every line (pointer kept, not copied). */
void log_init(const char *progname);
void log_set_level(log_level min);
/* Parse "debug", "info", "log", "warning", "error"; false if unknown. */
bool log_parse_level(const char *s, log_level *out) __attribute__((warn_unused_result));
/* Append to a file instead of stderr; false (errno set) on failure.  The
 * file open before stays in use on failure. */
bool log_open_file(const char *path) __attribute__((warn_unused_result));

/* text: the line above; json: one object per line (docs/operations.md):
 *   {"time":"2026-11-26T16:40:01.123Z","level":"LOG","pid":4242,
 *    "program":"dtx-coordinator","component":"txn","message":"...",
 *    "gid":"...","participant":"...","client":"...","sqlstate":"...",
 *    "detail":"...","hint":"..."}
 * with the last six only where they apply. */
typedef enum log_format {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON = 1,
} log_format;
void log_set_format(log_format f);
/* "text" or "json"; false if neither */
bool log_parse_format(const char *s, log_format *out) __attribute__((warn_unused_result));

/* What a line is about, for the JSON format's fields (NULL or "": none).
 * The text format shows what the message itself says. */
typedef struct log_fields {
    const char *gid;
    const char *participant;
    const char *client;
    const char *sqlstate;
} log_fields;

/* file: the caller's __FILE__; its stem is the line's component ("txn",
 * "plink", "branch").  Use the macros below. */
void log_at(const char *file, const log_fields *f, log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error as PostgreSQL logs one: "ERROR:  23514: message", then a
 * "DETAIL:  ..." and a "HINT:  ..." line when given (NULL or "": none), in
 * one write.  Used wherever a participant's or PostgreSQL's error is logged,
 * so that the log shows the fields the client is shown. */
void log_report_at(const char *file, const log_fields *f, log_level lvl, const char *sqlstate,
                   const char *detail, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
_Noreturn void log_fatal_at(const char *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
_Noreturn void log_panic_at(const char *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_msg(lvl, ...)     log_at(__FILE__, NULL, lvl, __VA_ARGS__)
#define log_with(f, lvl, ...) log_at(__FILE__, f, lvl, __VA_ARGS__)
#define log_report(lvl, sqlstate, detail, hint, ...)                                               \
    log_report_at(__FILE__, NULL, lvl, sqlstate, detail, hint, __VA_ARGS__)
#define log_report_with(f, lvl, sqlstate, detail, hint, ...)                                       \
    log_report_at(__FILE__, f, lvl, sqlstate, detail, hint, __VA_ARGS__)
#define log_fatal(...) log_fatal_at(__FILE__, __VA_ARGS__)
#define log_panic(...) log_panic_at(__FILE__, __VA_ARGS__)
#define log_debug(...) log_at(__FILE__, NULL, LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_at(__FILE__, NULL, LOG_LVL_INFO, __VA_ARGS__)
#define log_log(...)   log_at(__FILE__, NULL, LOG_LVL_LOG, __VA_ARGS__)
#define log_warn(...)  log_at(__FILE__, NULL, LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...) log_at(__FILE__, NULL, LOG_LVL_ERROR, __VA_ARGS__)

#endif
