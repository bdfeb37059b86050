/*
 * cli_admin.c — `dtx status GID` and `dtx indoubt`: questions an operator
 * asks the coordinator about transactions.
 *
 * NOTES
 *  status prints "<STATE> <gid>" and, on the next line, the coordinator's
 *  explanation when it gave one.  STATE is COMMITTED, ABORTED, UNKNOWN,
 *  IN PROGRESS, NO LONGER KNOWN or HEURISTIC OUTCOME.  Exit: 0 for a decided
 *  outcome (COMMITTED or ABORTED), 1 when the coordinator answered without
 *  one (UNKNOWN, IN PROGRESS, NO LONGER KNOWN) or refused the question, 2
 *  when there was no usable connection, 3 usage, 4 for a heuristic outcome
 *  (the decision was COMMIT, but some branch was rolled back by someone
 *  else: never reported like a success).
 *
 *  indoubt prints the coordinator's in-doubt transactions as a table (gid,
 *  age, participants, state), the age made readable ("1.5s", "2m03s",
 *  "4h12m", "3d02h").  Exit: 0, 1 on an error reply, 2, 3 as above.
 *
 *  Both connect with target_role=any unless told otherwise: a standby
 *  answers them from its replicated state while the primary is down.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char status_help[] =
    "dtx status asks the coordinator what became of a transaction.\n"
    "\n"
    "Usage:\n"
    "  dtx status [OPTION]... GID\n"
    "\n"
    "Prints COMMITTED, ABORTED, UNKNOWN, IN PROGRESS, NO LONGER KNOWN or\n"
    "HEURISTIC OUTCOME and the gid, then the coordinator's explanation.\n"
    "Exit status: 0 committed or aborted, 1 no decided outcome (or an error reply),\n"
    "2 connection failure, 3 usage error, 4 heuristic outcome (committed on some\n"
    "participants, rolled back by hand on others).\n"
    "\n";

static const char indoubt_help[] =
    "dtx indoubt lists the transactions the coordinator has not finished everywhere,\n"
    "and those finished with a heuristic outcome (within outcome_retention).\n"
    "\n"
    "Usage:\n"
    "  dtx indoubt [OPTION]...\n"
    "\n"
    "Exit status: 0 success, 1 error reply, 2 connection failure, 3 usage error.\n"
    "\n";

int
cli_status(int argc, char **argv)
{
    cli_conn_opts o;
    memset(&o, 0, sizeof(o));
    const char *gid[1];
    int n;
    o.role_default = "any"; /* a standby answers too */
    int rc = cli_parse_conn_args("status", status_help, argc, argv, &o, NULL, gid, 1, &n);
    if (rc >= 0)
        return rc;
    if (n == 0)
        return cli_usage_error("status", "a transaction id (GID) is required");
    if (gid[0][0] == '\0')
        return cli_usage_error("status", "the transaction id is empty");

    dtx_conn *c = cli_connect(&o, "status", &rc);
    if (c == NULL)
        return rc;
    char *detail = NULL;
    dtx_gid_status st = dtx_outcome_of(c, gid[0], &detail);
    if (st == DTX_GID_ERROR) {
        cli_print_conn_error(stderr, c);
        rc = dtx_status(c) == DTX_CONNECTION_OK ? CLI_EXIT_ABORTED : CLI_EXIT_UNKNOWN;
    } else {
        printf("%s %s\n", dtx_gid_status_name(st), gid[0]);
        if (detail && detail[0])
            printf("%s\n", detail);
        if (st == DTX_GID_COMMITTED || st == DTX_GID_ABORTED)
            rc = CLI_EXIT_OK;
        else if (st == DTX_GID_HEURISTIC)
            rc = CLI_EXIT_HEURISTIC;
        else
            rc = CLI_EXIT_ABORTED;
    }
    dtx_freemem(detail);
    dtx_finish(c);
    return rc;
}

/* Milliseconds as a short readable age. */
static void
format_age(const char *ms_text, char *out, size_t outlen)
{
    char *end;
    uint64_t ms = strtoull(ms_text, &end, 10);
    if (*end != '\0') {
        snprintf(out, outlen, "%s", ms_text);
        return;
    }
    uint64_t s = ms / 1000;
    if (s < 60)
        snprintf(out, outlen, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf(out, outlen, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, outlen, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, outlen, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
}

static void
print_indoubt(const dtx_result *r)
{
    static const char *const headers[4] = {"gid", "age", "participants", "state"};
    static const bool right[4] = {false, true, false, false};
    int nrows = dtx_ntuples(r);
    const char **cells = calloc((size_t)nrows * 4 + 1, sizeof(char *));
    char(*ages)[32] = calloc((size_t)nrows + 1, sizeof(*ages));
    if (cells == NULL || ages == NULL) {
        fprintf(stderr, "dtx indoubt: out of memory\n");
    } else {
        for (int i = 0; i < nrows; i++) {
            format_age(dtx_getvalue(r, i, 1), ages[i], sizeof(ages[i]));
            cells[i * 4] = dtx_getvalue(r, i, 0);
            cells[i * 4 + 1] = ages[i];
            cells[i * 4 + 2] = dtx_getvalue(r, i, 2);
            cells[i * 4 + 3] = dtx_getvalue(r, i, 3);
        }
        cli_print_table(stdout, 4, nrows, headers, right, cells);
    }
    free(cells);
    free(ages);
}

int
cli_indoubt(int argc, char **argv)
{
    cli_conn_opts o;
    memset(&o, 0, sizeof(o));
    int n;
    o.role_default = "any"; /* a standby answers too */
    int rc = cli_parse_conn_args("indoubt", indoubt_help, argc, argv, &o, NULL, NULL, 0, &n);
    if (rc >= 0)
        return rc;
    dtx_conn *c = cli_connect(&o, "indoubt", &rc);
    if (c == NULL)
        return rc;
    dtx_result *r = dtx_indoubt(c);
    if (r == NULL) {
        fprintf(stderr, "dtx indoubt: out of memory\n");
        rc = CLI_EXIT_UNKNOWN;
    } else if (dtx_result_status(r) == DTX_RES_ERROR) {
        cli_print_result_error(stderr, r);
        rc = dtx_status(c) == DTX_CONNECTION_OK ? CLI_EXIT_ABORTED : CLI_EXIT_UNKNOWN;
    } else {
        print_indoubt(r);
        rc = CLI_EXIT_OK;
    }
    dtx_clear(r);
    dtx_finish(c);
    return rc;
}
