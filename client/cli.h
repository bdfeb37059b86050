/*
 * cli.h — what the files of the dtx command-line tool share: exit codes,
 * connection options, statement lists, and output.  Not part of libdtx.
 */
#ifndef DTX_CLI_H
#define DTX_CLI_H

#include "dtx.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit status (docs/man/dtx.1, EXIT STATUS) */
#define CLI_EXIT_OK        0 /* committed; or the command succeeded */
#define CLI_EXIT_ABORTED   1 /* aborted; or the coordinator answered with an error */
#define CLI_EXIT_UNKNOWN   2 /* outcome unknown, or no usable connection */
#define CLI_EXIT_USAGE     3 /* bad command line or script */
#define CLI_EXIT_HEURISTIC 4 /* status: a heuristic outcome (some branch rolled back by hand) */

/* ---- connection options (cli_conn.c) ------------------------------------- */

/* Option codes of long-only options, shared by every sub-command. */
enum cli_optcode {
    CLI_OPT_SSLROOTCERT = 256,
    CLI_OPT_SSLCERT,
    CLI_OPT_SSLKEY,
    CLI_OPT_SSLMODE,
    CLI_OPT_CONNECT_TIMEOUT,
    CLI_OPT_HELP,
    CLI_OPT_ONESHOT,
    CLI_OPT_PARAM,
    CLI_OPT_PARAM_NULL,
    CLI_OPT_TARGET_ROLE,
    CLI_OPT_FORCE,
};

/* Short options and getopt_long entries of the connection options. */
#define CLI_CONN_SHORTOPTS "h:p:d:"
/* clang-format off */
#define CLI_CONN_LONGOPTS                                                       \
    {"host", required_argument, NULL, 'h'},                                     \
    {"port", required_argument, NULL, 'p'},                                     \
    {"conninfo", required_argument, NULL, 'd'},                                 \
    {"sslrootcert", required_argument, NULL, CLI_OPT_SSLROOTCERT},              \
    {"sslcert", required_argument, NULL, CLI_OPT_SSLCERT},                      \
    {"sslkey", required_argument, NULL, CLI_OPT_SSLKEY},                        \
    {"sslmode", required_argument, NULL, CLI_OPT_SSLMODE},                      \
    {"connect-timeout", required_argument, NULL, CLI_OPT_CONNECT_TIMEOUT},      \
    {"target-role", required_argument, NULL, CLI_OPT_TARGET_ROLE},              \
    {"help", no_argument, NULL, CLI_OPT_HELP}
/* clang-format on */

/* Help text for the connection options (for each sub-command's --help). */
extern const char cli_conn_help[];

typedef struct cli_conn_opts {
    const char *conninfo; /* -d: a whole connection string */
    const char *host, *port, *sslrootcert, *sslcert, *sslkey, *sslmode, *connect_timeout;
    const char *target_role;  /* --target-role */
    const char *role_default; /* the command's target_role when neither an option,
                                 -d nor DTXTARGETROLE says; NULL: libdtx's (primary) */
} cli_conn_opts;

/* If opt is a connection option, store arg and return true. */
bool cli_conn_option(cli_conn_opts *o, int opt, const char *arg);

/* Connect with the options (libdtx applies the DTX* environment defaults).
 * On failure prints the reasons to stderr and returns NULL with *rc set:
 * CLI_EXIT_USAGE for an invalid option value, else CLI_EXIT_UNKNOWN.
 * Caller frees with dtx_finish(). */
dtx_conn *cli_connect(const cli_conn_opts *o, const char *cmd, int *rc)
    __attribute__((warn_unused_result));

/* Parse the arguments of a command that takes the connection options only,
 * plus --force when force is not NULL (then set), and up to maxpos
 * positional arguments (into pos[], *npos of them).  -1 to go on, else an
 * exit code (0 after printing help then cli_conn_help for --help). */
int cli_parse_conn_args(const char *cmd, const char *help, int argc, char **argv, cli_conn_opts *o,
                        bool *force, const char **pos, int maxpos, int *npos)
    __attribute__((warn_unused_result));

/* Report a usage error for sub-command cmd (NULL: the tool) and return
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report getopt's complaint about argv[optind - 1]; returns CLI_EXIT_USAGE. */
int cli_getopt_error(const char *cmd, int opt, char *const argv[]);

/* ---- statements (cli_script.c) ------------------------------------------- */

typedef struct cli_stmt {
    char *participant;
    char *sql;
    int nparams;
    char **params; /* entries may be NULL (SQL NULL) */
    char *origin;  /* "FILE:LINE" or "-P #n", for messages */
} cli_stmt;

typedef struct cli_stmts {
    cli_stmt *v;
    int n, cap;
} cli_stmts;

/* Append a statement (strings copied).  False when out of memory. */
bool cli_stmts_add(cli_stmts *l, const char *participant, const char *sql, const char *origin)
    __attribute__((warn_unused_result));
/* Append a parameter (NULL = SQL NULL) to the last statement. */
bool cli_stmts_add_param(cli_stmts *l, const char *value) __attribute__((warn_unused_result));
void cli_stmts_free(cli_stmts *l);

/* Read a script ("-" = stdin) and append its statements.  On a syntax error
 * prints "dtx exec: FILE:LINE: ..." and returns false. */
bool cli_script_read(const char *path, cli_stmts *l) __attribute__((warn_unused_result));

/* ---- output (cli_print.c) ------------------------------------------------ */

/* A statement result: an aligned table with "(N rows)", or the command tag. */
void cli_print_result(FILE *out, const dtx_result *res);
/* An error, PostgreSQL style: ERROR, DETAIL, HINT, SQLSTATE, PARTICIPANT. */
void cli_print_error(FILE *out, const char *sqlstate, const char *message, const char *detail,
                     const char *hint, const char *participant);
void cli_print_result_error(FILE *out, const dtx_result *res);
/* The error a blocking call left on conn, if any (dtx_error_field). */
void cli_print_conn_error(FILE *out, const dtx_conn *conn);

/* A table of text cells (NULL = SQL NULL, shown empty); right[c] aligns
 * column c to the right (numbers). */
void cli_print_table(FILE *out, int ncols, int nrows, const char *const *headers, const bool *right,
                     const char *const *cells);

/* ---- sub-commands -------------------------------------------------------- */

int cli_exec(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_indoubt(int argc, char **argv);
int cli_replication(int argc, char **argv);
int cli_promote(int argc, char **argv);

#endif
