/*
 * config.h — table-driven INI configuration files.
 *
 * A program describes its file as a table of sections; each section is either
 * a list of typed keys stored at fixed offsets of a caller struct, or a
 * free-form map whose entries go to a callback:
 *
 *     typedef struct coord_conf { char *name; int64_t commit_timeout_ms; ... } coord_conf;
 *
 *     static const config_key coord_keys[] = {
 *         {.name = "name", .type = CONFIG_STRING,
 *          .offset = offsetof(coord_conf, name), .required = true},
 *         {.name = "commit_timeout", .type = CONFIG_DURATION, .unit = "s",
 *          .offset = offsetof(coord_conf, commit_timeout_ms), .default_value = "30s",
 *          .min = 1000, .max = 3600000},
 *         {0},
 *     };
 *     static const config_section coord_sections[] = {
 *         {.name = "coordinator", .keys = coord_keys, .required = true},
 *         {.name = "participants", .on_entry = add_participant},
 *         {0},
 *     };
 *
 *     coord_conf c = {0};
 *     if (!config_parse_file(coord_sections, &c, ctx, path, err, sizeof(err)))
 *         log_fatal("%s", err);
 *     ...
 *     config_free(coord_sections, &c);
 *
 * The file syntax, the units and the error messages are described in
 * docs/configuration.md.  Every error message starts with "FILE:LINE: " (or
 * "FILE: " when no line applies) and names the key and section involved.
 *
 * Nothing here keeps global state; the parser may run in any thread.
 */
#ifndef DTX_CONFIG_H
#define DTX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest accepted line, in bytes, without its line terminator. */
#define CONFIG_LINE_MAX 4096

typedef enum config_type {
    CONFIG_STRING = 1, /* char *, heap copy; freed by config_free */
    CONFIG_INT,        /* int, decimal, optional range min..max */
    CONFIG_BOOL,       /* bool: on/off, true/false, yes/no, 1/0 */
    CONFIG_DURATION,   /* int64_t milliseconds: 500ms, 10s, 5min, 1h, 2d */
    CONFIG_SIZE,       /* int64_t bytes: 512, 512B, 64kB, 64MB, 1GB, 1TB */
    CONFIG_ENUM,       /* int: index into choices[] */
} config_type;

typedef struct config_key {
    const char *name; /* NULL ends the list */
    config_type type;
    size_t offset;             /* offsetof(caller struct, field) */
    const char *default_value; /* text parsed like a file value; NULL: zero/NULL */
    /* Range of CONFIG_INT (as is), CONFIG_DURATION (ms) and CONFIG_SIZE
     * (bytes), inclusive.  min == max == 0 means no range; durations and
     * sizes are never negative anyway. */
    int64_t min, max;
    bool required; /* the key must appear (in its section, when the section does) */
    /* CONFIG_DURATION/CONFIG_SIZE: unit of a bare number ("s", "min", "kB",
     * ...).  NULL: milliseconds resp. bytes. */
    const char *unit;
    /* CONFIG_ENUM: the accepted words (matched case-insensitively),
     * NULL-terminated; the field gets the index of the match. */
    const char *const *choices;
} config_key;

/*
 * Called for every "key = value" of a free-form section, in file order.  key
 * and value are only valid during the call (copy what you keep).  Return
 * false and write a message (without file and line; the parser adds them) to
 * reject the entry.  ctx is the cb_ctx given to the parse function.
 */
typedef bool (*config_entry_fn)(void *ctx, const char *key, const char *value, char *err,
                                size_t errlen);

typedef struct config_section {
    const char *name;         /* NULL ends the table */
    const config_key *keys;   /* typed keys, or NULL for a free-form section */
    config_entry_fn on_entry; /* free-form section: receives every entry */
    bool required;            /* the section must appear in the file */
} config_section;

/*
 * Parse the file at path into out.  out must be zero-initialised (or have
 * been passed to config_free).  Defaults are applied first, then the file's
 * values; required keys and sections are checked at the end.
 *
 * On success, strings in out are heap copies owned by out: release them with
 * config_free(table, out).  On failure a message "path:line: ..." is written
 * into err, every string already stored in out is freed (fields set to NULL),
 * and entries already passed to an on_entry callback stay the callback's
 * business.  cb_ctx is handed to the on_entry callbacks.
 */
bool config_parse_file(const config_section *table, void *out, void *cb_ctx, const char *path,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * As config_parse_file, but from the NUL-terminated text; name stands for the
 * file name in messages.
 */
bool config_parse_string(const config_section *table, void *out, void *cb_ctx, const char *name,
                         const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Reload: newc was parsed from the file again, oldc is in force.  Every key
 * of a keyed section whose name is not in live (NULL-terminated; NULL: none
 * is) and whose value differs keeps its old value: the two values are
 * swapped, so that newc holds what stays in force and oldc what was asked
 * for (freed with oldc), and changed(arg, section, key) is called.  Returns
 * how many keys were kept.
 */
typedef void (*config_changed_fn)(void *arg, const char *section, const char *key);
int config_keep_restart_keys(const config_section *table, void *newc, void *oldc,
                             const char *const *live, config_changed_fn changed, void *arg);

/* Free the CONFIG_STRING fields of out and set them to NULL.  Idempotent. */
void config_free(const config_section *table, void *out);

/*
 * Value parsers used by the table, exported for command-line options and
 * the programs' own checks.  On failure they write a message describing the
 * problem (not naming a key) into err.
 */
/* on/off, true/false, yes/no, 1/0, case-insensitive. */
bool config_parse_bool(const char *text, bool *out) __attribute__((warn_unused_result));
/* A duration in milliseconds; a bare number is in default_unit (NULL = "ms"). */
bool config_parse_duration(const char *text, const char *default_unit, int64_t *ms, char *err,
                           size_t errlen) __attribute__((warn_unused_result));
/* A size in bytes; a bare number is in default_unit (NULL = "B"). */
bool config_parse_size(const char *text, const char *default_unit, int64_t *bytes, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/*
 * A list of certificate names, as allowed_clients, allowed_standbys,
 * admin_clients and allowed_coordinators take it: names separated by
 * commas and/or blanks.  Refused, with the reason in err: a list naming
 * nothing, an empty item between commas ("a,,b", a trailing comma), a name
 * with a control character or a double quote.  "*" is a name like any
 * other (the caller gives it its meaning).  On success *out is a heap
 * array of *n heap strings: free with config_free_names.
 */
bool config_split_names(const char *list, char ***out, size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void config_free_names(char **names, size_t n);

/*
 * Split "host:port", "1.2.3.4:port", "[::1]:port" (or, when default_port is
 * not 0, the same without ":port") into host (brackets removed, NUL-terminated
 * in a buffer of hostlen bytes) and port (1..65535).  A bare IPv6 address
 * without brackets is refused as ambiguous.
 */
bool config_parse_hostport(const char *text, uint16_t default_port, char *host, size_t hostlen,
                           uint16_t *port, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
