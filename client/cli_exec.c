/*
 * cli_exec.c — `dtx exec`: run one atomic transaction and report its
 * outcome.
 *
 * NOTES
 *  Statements come from the command line (-P PARTICIPANT 'SQL', each
 *  optionally followed by --param VALUE / --param-null for $1, $2, ...) and
 *  from scripts (-f FILE, "-" for stdin), in the order given.  All of them
 *  are read and checked before connecting, so a usage or script error
 *  (exit 3) never leaves a transaction behind.
 *
 *  Two ways to run them:
 *    default     BEGIN, one EXEC per statement (results printed as they
 *                come), then COMMIT — or ROLLBACK after the first error;
 *    --oneshot   one ONESHOT request: the coordinator runs the statements
 *                and commits in one round trip.  The coordinator names the
 *                transaction first, so an UNKNOWN outcome line carries the
 *                gid unless the connection broke before that.
 *
 *  Output: each result on stdout (a table, or the command tag), errors on
 *  stderr, and last the outcome line on stdout: "COMMITTED gid",
 *  "ABORTED gid" or "UNKNOWN gid".  Exit: 0 committed, 1 aborted, 2 unknown
 *  or the connection failed (also when a transaction was aborted because its
 *  connection broke before COMMIT was sent: the outcome line then says
 *  ABORTED), 3 usage.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "proto.h" /* PROTO_MAX_STMTS, PROTO_MAX_PARAMS */

static const char exec_help[] =
    "dtx exec runs one atomic transaction across participants.\n"
    "\n"
    "Usage:\n"
    "  dtx exec [OPTION]... -P PARTICIPANT 'SQL' [--param VALUE]... [-P PARTICIPANT 'SQL' ...]\n"
    "  dtx exec [OPTION]... -f FILE\n"
    "\n"
    "Statements:\n"
    "  -P, --participant=NAME 'SQL'  run SQL on participant NAME (in the order given)\n"
    "      --param=VALUE             a parameter ($1, $2, ...) of the statement before it\n"
    "      --param-null              a NULL parameter of the statement before it\n"
    "  -f, --file=FILE               read statements from FILE (\"-\" for standard input);\n"
    "                                each line is \"participant: SQL\", see dtx(1)\n"
    "      --oneshot                 send the whole transaction as one request\n"
    "\n"
    "Prints each result, then COMMITTED, ABORTED or UNKNOWN and the transaction id.\n"
    "Exit status: 0 committed, 1 aborted, 2 unknown or connection failure, 3 usage error.\n"
    "\n";

typedef struct exec_opts {
    cli_conn_opts conn;
    cli_stmts stmts;
    bool oneshot;
} exec_opts;

/* The SQL of the statement whose -P came before.  -1 on success, else an
 * exit code. */
static int
add_sql(exec_opts *o, const char **pending, const char *sql, int *nargs)
{
    if (*pending == NULL)
        return cli_usage_error("exec",
                               "unexpected argument \"%s\" (give statements as "
                               "-P PARTICIPANT 'SQL')",
                               sql);
    char origin[32];
    snprintf(origin, sizeof(origin), "statement %d", ++*nargs);
    if (!cli_stmts_add(&o->stmts, *pending, sql, origin)) {
        fprintf(stderr, "dtx exec: out of memory\n");
        return CLI_EXIT_UNKNOWN;
    }
    *pending = NULL;
    return -1;
}

/* Parse the command line into o.  Returns -1 to go on, else an exit code. */
static int
parse_args(int argc, char **argv, exec_opts *o)
{
    static const struct option longopts[] = {
        CLI_CONN_LONGOPTS,
        {"participant", required_argument, NULL, 'P'},
        {"file", required_argument, NULL, 'f'},
        {"oneshot", no_argument, NULL, CLI_OPT_ONESHOT},
        {"param", required_argument, NULL, CLI_OPT_PARAM},
        {"param-null", no_argument, NULL, CLI_OPT_PARAM_NULL},
        {NULL, 0, NULL, 0},
    };
    const char *pending = NULL; /* -P NAME waiting for its SQL */
    bool after_sql = false;     /* the last thing given was a -P statement */
    int opt, rc, nargs = 0;
    optind = 1;
    /* "-": non-options come back in order as 1, pairing each SQL with its -P */
    while ((opt = getopt_long(argc, argv, "-:" CLI_CONN_SHORTOPTS "P:f:", longopts, NULL)) != -1) {
        if (cli_conn_option(&o->conn, opt, optarg))
            continue;
        switch (opt) {
        case CLI_OPT_HELP:
            printf("%s%s", exec_help, cli_conn_help);
            return CLI_EXIT_OK;
        case 'P':
            if (pending)
                return cli_usage_error("exec", "-P %s has no SQL statement", pending);
            if (optarg[0] == '\0')
                return cli_usage_error("exec", "empty participant name");
            pending = optarg;
            after_sql = false;
            break;
        case 1:
            if ((rc = add_sql(o, &pending, optarg, &nargs)) >= 0)
                return rc;
            after_sql = true;
            break;
        case CLI_OPT_PARAM:
        case CLI_OPT_PARAM_NULL:
            if (!after_sql)
                return cli_usage_error("exec", "%s must follow a -P PARTICIPANT 'SQL' statement",
                                       opt == CLI_OPT_PARAM ? "--param" : "--param-null");
            if (o->stmts.v[o->stmts.n - 1].nparams >= PROTO_MAX_PARAMS)
                return cli_usage_error("exec", "too many parameters (at most %d)",
                                       PROTO_MAX_PARAMS);
            if (!cli_stmts_add_param(&o->stmts, opt == CLI_OPT_PARAM ? optarg : NULL))
                goto oom;
            break;
        case 'f':
            if (pending)
                return cli_usage_error("exec", "-P %s has no SQL statement", pending);
            if (!cli_script_read(optarg, &o->stmts))
                return CLI_EXIT_USAGE;
            after_sql = false;
            break;
        case CLI_OPT_ONESHOT:
            o->oneshot = true;
            break;
        default:
            return cli_getopt_error("exec", opt, argv);
        }
    }
    /* after "--" (for SQL that starts with '-') */
    for (; optind < argc; optind++)
        if ((rc = add_sql(o, &pending, argv[optind], &nargs)) >= 0)
            return rc;
    if (pending)
        return cli_usage_error("exec", "-P %s has no SQL statement", pending);
    if (o->stmts.n == 0)
        return cli_usage_error("exec", "no statements given");
    if (o->stmts.n > PROTO_MAX_STMTS)
        return cli_usage_error("exec", "too many statements: %d (at most %d)", o->stmts.n,
                               PROTO_MAX_STMTS);
    return -1;
oom:
    fprintf(stderr, "dtx exec: out of memory\n");
    return CLI_EXIT_UNKNOWN;
}

/* Print the outcome line and map it to the exit status. */
static int
report_outcome(dtx_conn *c, dtx_outcome o)
{
    const char *gid = dtx_gid(c);
    if (gid)
        printf("%s %s\n", dtx_outcome_name(o), gid);
    else
        printf("%s (the transaction id is not known: the connection was lost before the "
               "coordinator named the transaction)\n",
               dtx_outcome_name(o));
    fflush(stdout);
    switch (o) {
    case DTX_COMMITTED:
        return CLI_EXIT_OK;
    case DTX_ABORTED:
        return dtx_status(c) == DTX_CONNECTION_OK ? CLI_EXIT_ABORTED : CLI_EXIT_UNKNOWN;
    case DTX_UNKNOWN:
        return CLI_EXIT_UNKNOWN;
    }
    return CLI_EXIT_UNKNOWN;
}

static int
run_steps(dtx_conn *c, const cli_stmts *l)
{
    if (dtx_begin(c) == NULL) {
        fprintf(stderr, "dtx exec: could not begin a transaction\n");
        cli_print_conn_error(stderr, c);
        return dtx_status(c) == DTX_CONNECTION_OK ? CLI_EXIT_ABORTED : CLI_EXIT_UNKNOWN;
    }
    bool failed = false;
    for (int i = 0; i < l->n && !failed; i++) {
        const cli_stmt *s = &l->v[i];
        dtx_result *r =
            dtx_exec_params(c, s->participant, s->sql, s->nparams, (const char *const *)s->params);
        if (r == NULL) {
            fprintf(stderr, "dtx exec: out of memory\n");
            failed = true;
        } else if (dtx_result_status(r) == DTX_RES_ERROR) {
            fflush(stdout);
            cli_print_result_error(stderr, r);
            fprintf(stderr, "STATEMENT:  %s\n", s->origin);
            failed = true;
        } else {
            cli_print_result(stdout, r);
        }
        dtx_clear(r);
    }
    fflush(stdout);
    dtx_outcome o;
    if (failed) {
        o = dtx_rollback(c);
    } else {
        o = dtx_commit(c);
        if (o != DTX_COMMITTED)
            cli_print_conn_error(stderr, c);
    }
    return report_outcome(c, o);
}

static int
run_oneshot(dtx_conn *c, const cli_stmts *l)
{
    dtx_stmt *st = calloc((size_t)l->n, sizeof(*st));
    if (st == NULL) {
        fprintf(stderr, "dtx exec: out of memory\n");
        return CLI_EXIT_UNKNOWN;
    }
    for (int i = 0; i < l->n; i++) {
        st[i].participant = l->v[i].participant;
        st[i].sql = l->v[i].sql;
        st[i].nparams = l->v[i].nparams;
        st[i].params = (const char *const *)l->v[i].params;
    }
    dtx_result **res = NULL;
    dtx_outcome o = dtx_oneshot(c, st, l->n, &res, NULL);
    free(st);
    bool printed_error = false;
    for (int i = 0; res && res[i]; i++) {
        if (dtx_result_status(res[i]) == DTX_RES_ERROR) {
            fflush(stdout);
            cli_print_result_error(stderr, res[i]);
            printed_error = true;
        } else {
            cli_print_result(stdout, res[i]);
        }
    }
    dtx_results_free(res);
    if (o != DTX_COMMITTED && !printed_error)
        cli_print_conn_error(stderr, c);
    fflush(stdout);
    return report_outcome(c, o);
}

int
cli_exec(int argc, char **argv)
{
    exec_opts o;
    memset(&o, 0, sizeof(o));
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        cli_stmts_free(&o.stmts);
        return rc;
    }
    dtx_conn *c = cli_connect(&o.conn, "exec", &rc);
    if (c == NULL) {
        cli_stmts_free(&o.stmts);
        return rc;
    }
    rc = o.oneshot ? run_oneshot(c, &o.stmts) : run_steps(c, &o.stmts);
    dtx_finish(c);
    cli_stmts_free(&o.stmts);
    return rc;
}
