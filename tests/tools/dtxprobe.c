/*
 * dtxprobe.c — a libdtx client for integration tests: the cases the dtx CLI
 * cannot express (parameters with odd values, a client that vanishes in the
 * middle of a transaction, a hook between statements and COMMIT, many
 * concurrent clients).  Connection settings come from the DTX* environment
 * variables.  Exit status: 0 when the case behaved as the probe checks,
 * 1 otherwise (with a message on stderr).
 *
 *   dtxprobe params P TABLE        insert quotes/NULL/non-ASCII via $n and read back
 *   dtxprobe vanish P SQL          begin, run SQL on P, then _exit(0) without COMMIT
 *   dtxprobe hook P1 SQL1 P2 SQL2  begin, both statements, run $PROBE_HOOK, commit;
 *                                  prints the outcome word and the gid
 *   dtxprobe transfers N K P1 P2   N threads x K transfers; thread i moves
 *                                  money between account 'acct<i>' on P1 and
 *                                  on P2 (one-shot and interactive
 *                                  alternating); prints counts
 *   dtxprobe status GID            prints the gid status word
 *   dtxprobe steps STEP...         begin; each STEP is "P SQL" (a statement on
 *                                  P) or "sleep MS" (pause in the client);
 *                                  the first failed statement is printed as
 *                                  "ERROR <sqlstate> <participant> <ms>: <message>"
 *                                  and the transaction rolled back, else it is
 *                                  committed; last line "<OUTCOME> <gid> <ms>",
 *                                  ms counted from the start.  With
 *                                  PROBE_KEEP_GOING set, every failed statement
 *                                  is printed, the later steps still run, and
 *                                  COMMIT is sent all the same
 *   dtxprobe stall P SQL1 SQL2 MS  send a ONESHOT of SQL1 and SQL2 on P and
 *                                  read none of the replies for MS ms;
 *                                  prints "gone" when the connection turns
 *                                  out closed then, "open" otherwise
 *   dtxprobe oneshot P1 SQL1 P2 SQL2   one ONESHOT request; prints
 *                                  "<OUTCOME> <gid or ->": the gid must be
 *                                  known even when the connection is lost
 *   dtxprobe reserved P SQL        the gid a BEGIN returns before anything is
 *                                  sent (a reserved one), as STATUS sees it from
 *                                  a second connection: prints
 *                                  "reserved <status>: <detail>", "running
 *                                  <status>" (after SQL on P), "rolled back
 *                                  <outcome> <status>", "oneshot inside
 *                                  <outcome>, gid <kept|changed>", "begin inside
 *                                  <ok|failed> <sqlstate>" (while a transaction
 *                                  is open), "still open <yes|no>", "next
 *                                  <same|new>",
 *                                  "abandoned <status>" (the next reserved gid,
 *                                  once its connection closed without using it)
 */
#include "dtx.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static dtx_conn *
connect_or_die(void)
{
    dtx_conn *c = dtx_connect("");
    if (dtx_status(c) != DTX_CONNECTION_OK) {
        fprintf(stderr, "dtxprobe: connect: %s\n", dtx_error_message(c));
        exit(1);
    }
    return c;
}

static int
cmd_params(const char *p, const char *table)
{
    dtx_conn *c = connect_or_die();
    const char *vals[3] = {"it's a \"quote\" \\ and ;--", NULL, "grüße, 日本語, ✓"};
    if (dtx_begin(c) == NULL) {
        fprintf(stderr, "begin: %s\n", dtx_error_message(c));
        return 1;
    }
    char sql[256];
    snprintf(sql, sizeof(sql), "insert into %s (a, b, c) values ($1, $2, $3)", table);
    dtx_result *r = dtx_exec_params(c, p, sql, 3, vals);
    if (dtx_result_status(r) != DTX_RES_OK) {
        fprintf(stderr, "insert: %s\n", dtx_result_error_field(r, DTX_DIAG_MESSAGE));
        return 1;
    }
    dtx_clear(r);
    snprintf(sql, sizeof(sql), "select a, b, c, b is null as isnull from %s where a = $1", table);
    r = dtx_exec_params(c, p, sql, 1, vals);
    int bad = dtx_result_status(r) != DTX_RES_OK || dtx_ntuples(r) != 1 ||
              strcmp(dtx_getvalue(r, 0, 0), vals[0]) != 0 || !dtx_getisnull(r, 0, 1) ||
              strcmp(dtx_getvalue(r, 0, 2), vals[2]) != 0 || strcmp(dtx_getvalue(r, 0, 3), "t");
    if (!bad && (strcmp(dtx_fname(r, 2), "c") != 0 || dtx_ftype(r, 3) != 16 /* bool */))
        bad = 1;
    dtx_clear(r);
    dtx_outcome o = dtx_commit(c);
    printf("%s %s\n", dtx_outcome_name(o), dtx_gid(c) ? dtx_gid(c) : "-");
    dtx_finish(c);
    if (bad)
        fprintf(stderr, "dtxprobe: values did not round-trip\n");
    return bad || o != DTX_COMMITTED;
}

static int
cmd_vanish(const char *p, const char *sql)
{
    dtx_conn *c = connect_or_die();
    if (dtx_begin(c) == NULL)
        return 1;
    dtx_result *r = dtx_exec(c, p, sql);
    if (dtx_result_status(r) != DTX_RES_OK) {
        fprintf(stderr, "exec: %s\n", dtx_result_error_field(r, DTX_DIAG_MESSAGE));
        return 1;
    }
    printf("%s\n", dtx_gid(c));
    fflush(stdout);
    _exit(0); /* no COMMIT, no goodbye: the connection just drops */
}

static int
cmd_hook(const char *p1, const char *s1, const char *p2, const char *s2)
{
    dtx_conn *c = connect_or_die();
    if (dtx_begin(c) == NULL)
        return 1;
    const char *ps[2] = {p1, p2}, *ss[2] = {s1, s2};
    for (int i = 0; i < 2; i++) {
        dtx_result *r = dtx_exec(c, ps[i], ss[i]);
        if (dtx_result_status(r) != DTX_RES_OK)
            fprintf(stderr, "exec on %s: %s\n", ps[i], dtx_result_error_field(r, DTX_DIAG_MESSAGE));
        dtx_clear(r);
    }
    const char *hook = getenv("PROBE_HOOK");
    if (hook && system(hook) != 0)
        fprintf(stderr, "dtxprobe: hook failed\n");
    dtx_outcome o = dtx_commit(c);
    printf("%s %s\n", dtx_outcome_name(o), dtx_gid(c));
    if (o != DTX_COMMITTED)
        fprintf(stderr, "reason: %s\n", dtx_error_message(c));
    dtx_finish(c);
    return 0;
}

typedef struct worker {
    int id;
    int k;
    const char *p1, *p2;
    int committed, aborted, unknown, errors;
    char first_error[256];
} worker;

static void *
transfer_thread(void *arg)
{
    worker *w = arg;
    dtx_conn *c = dtx_connect("");
    if (dtx_status(c) != DTX_CONNECTION_OK) {
        snprintf(w->first_error, sizeof(w->first_error), "connect: %s", dtx_error_message(c));
        w->errors = w->k;
        dtx_finish(c);
        return NULL;
    }
    for (int i = 0; i < w->k; i++) {
        const char *amount = (i % 3 == 0) ? "1" : "2";
        const char *up1 = "update accounts set balance = balance - $1 where id = $2";
        const char *up2 = "update accounts set balance = balance + $1 where id = $2";
        char acct[32];
        snprintf(acct, sizeof(acct), "acct%d", w->id);
        const char *params[2] = {amount, acct};
        dtx_outcome o;
        if (i % 2 == 0 || getenv("PROBE_ONESHOT")) {
            dtx_stmt st[2] = {{w->p1, up1, 2, params}, {w->p2, up2, 2, params}};
            o = dtx_oneshot(c, st, 2, NULL, NULL);
        } else {
            if (dtx_begin(c) == NULL) {
                w->errors++;
                continue;
            }
            dtx_clear(dtx_exec_params(c, w->p1, up1, 2, params));
            dtx_clear(dtx_exec_params(c, w->p2, up2, 2, params));
            o = dtx_commit(c);
        }
        if (o == DTX_COMMITTED)
            w->committed++;
        else if (o == DTX_ABORTED)
            w->aborted++;
        else
            w->unknown++;
        if (o != DTX_COMMITTED && w->first_error[0] == '\0')
            snprintf(w->first_error, sizeof(w->first_error), "%s", dtx_error_message(c));
    }
    dtx_finish(c);
    return NULL;
}

static int
cmd_transfers(int n, int k, const char *p1, const char *p2)
{
    pthread_t *th = calloc((size_t)n, sizeof(pthread_t));
    worker *w = calloc((size_t)n, sizeof(worker));
    for (int i = 0; i < n; i++) {
        w[i].id = i + 1;
        w[i].k = k;
        w[i].p1 = p1;
        w[i].p2 = p2;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&th[i], &a, transfer_thread, &w[i]) != 0) {
            fprintf(stderr, "dtxprobe: pthread_create failed\n");
            return 1;
        }
        pthread_attr_destroy(&a);
    }
    int committed = 0, aborted = 0, unknown = 0, errors = 0;
    const char *err = NULL;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        committed += w[i].committed;
        aborted += w[i].aborted;
        unknown += w[i].unknown;
        errors += w[i].errors;
        if (err == NULL && w[i].first_error[0])
            err = w[i].first_error;
    }
    printf("committed=%d aborted=%d unknown=%d errors=%d\n", committed, aborted, unknown, errors);
    if (err)
        printf("first error: %s\n", err);
    free(th);
    free(w);
    return 0;
}

static int
cmd_status(const char *gid)
{
    dtx_conn *c = connect_or_die();
    char *detail = NULL;
    dtx_gid_status s = dtx_outcome_of(c, gid, &detail);
    if (s == DTX_GID_ERROR) {
        fprintf(stderr, "status: %s\n", dtx_error_message(c));
        return 1;
    }
    printf("%s\n", dtx_gid_status_name(s));
    dtx_freemem(detail);
    dtx_finish(c);
    return 0;
}

/* The status word of gid, asked on c ("error" when the request failed),
 * and its detail in buf when buf is not NULL. */
static const char *
status_detail(dtx_conn *c, const char *gid, char *buf, size_t len)
{
    char *detail = NULL;
    dtx_gid_status s = dtx_outcome_of(c, gid, &detail);
    if (buf)
        snprintf(buf, len, "%s", detail ? detail : "");
    dtx_freemem(detail);
    return s == DTX_GID_ERROR ? "error" : dtx_gid_status_name(s);
}

static const char *
status_word(dtx_conn *c, const char *gid)
{
    return status_detail(c, gid, NULL, 0);
}

static int
cmd_reserved(const char *p, const char *sql)
{
    dtx_conn *c = connect_or_die(), *q = connect_or_die();
    char gid[128], next[128];
    const char *g = dtx_begin(c);
    if (g == NULL) {
        fprintf(stderr, "begin: %s\n", dtx_error_message(c));
        return 1;
    }
    snprintf(gid, sizeof(gid), "%s", g);
    char detail[256];
    const char *w = status_detail(q, gid, detail, sizeof(detail));
    printf("reserved %s: %s\n", w, detail);
    dtx_result *r = dtx_exec(c, p, sql);
    if (dtx_result_status(r) != DTX_RES_OK) {
        fprintf(stderr, "exec: %s\n", dtx_error_message(c));
        return 1;
    }
    dtx_clear(r);
    printf("running %s\n", status_word(q, gid));
    const char *o = dtx_outcome_name(dtx_rollback(c));
    printf("rolled back %s %s\n", o, status_word(q, gid));
    if ((g = dtx_begin(c)) == NULL) {
        fprintf(stderr, "begin: %s\n", dtx_error_message(c));
        return 1;
    }
    char open_gid[128];
    snprintf(open_gid, sizeof(open_gid), "%s", g);
    dtx_stmt st[1] = {{p, sql, 0, NULL}};
    o = dtx_outcome_name(dtx_oneshot(c, st, 1, NULL, NULL));
    printf("oneshot inside %s, gid %s\n", o,
           strcmp(dtx_gid(c), open_gid) == 0 ? "kept" : "changed");
    g = dtx_begin(c);
    const char *state = dtx_error_field(c, DTX_DIAG_SQLSTATE);
    printf("begin inside %s %s\n", g ? "ok" : "failed", state ? state : "-");
    r = dtx_exec(c, p, sql);
    printf("still open %s\n",
           dtx_result_status(r) == DTX_RES_OK && strcmp(dtx_gid(c), open_gid) == 0 ? "yes" : "no");
    dtx_clear(r);
    if (dtx_rollback(c) != DTX_ABORTED) {
        fprintf(stderr, "rollback: %s\n", dtx_error_message(c));
        return 1;
    }
    g = dtx_begin(c);
    if (g == NULL) {
        fprintf(stderr, "begin: %s\n", dtx_error_message(c));
        return 1;
    }
    snprintf(next, sizeof(next), "%s", g);
    printf("next %s\n", strcmp(gid, next) == 0 ? "same" : "new");
    dtx_finish(c); /* the BEGIN never leaves */
    w = "error";
    for (int i = 0; i < 100; i++) {
        w = status_word(q, next);
        if (strcmp(w, "IN PROGRESS") != 0)
            break;
        usleep(50 * 1000);
    }
    printf("abandoned %s\n", w);
    dtx_finish(q);
    return 0;
}

static long
elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int
cmd_steps(int n, char **args)
{
    if (n < 2 || n % 2 != 0) {
        fprintf(stderr, "dtxprobe steps: expected pairs of \"P SQL\" or \"sleep MS\"\n");
        return 2;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dtx_conn *c = connect_or_die();
    if (dtx_begin(c) == NULL) {
        fprintf(stderr, "begin: %s\n", dtx_error_message(c));
        return 1;
    }
    bool failed = false, keep_going = getenv("PROBE_KEEP_GOING") != NULL;
    for (int i = 0; i < n && (!failed || keep_going); i += 2) {
        if (strcmp(args[i], "sleep") == 0) {
            usleep((useconds_t)atoi(args[i + 1]) * 1000);
            continue;
        }
        dtx_result *r = dtx_exec(c, args[i], args[i + 1]);
        if (dtx_result_status(r) != DTX_RES_OK) {
            const char *st = dtx_result_error_field(r, DTX_DIAG_SQLSTATE);
            const char *pa = dtx_result_error_field(r, DTX_DIAG_PARTICIPANT);
            const char *msg = dtx_result_error_field(r, DTX_DIAG_MESSAGE);
            printf("ERROR %s %s %ld: %s\n", st ? st : "-", pa ? pa : "-", elapsed_ms(&t0),
                   msg ? msg : "");
            failed = true;
        }
        dtx_clear(r);
    }
    dtx_outcome o = failed && !keep_going ? dtx_rollback(c) : dtx_commit(c);
    printf("%s %s %ld\n", dtx_outcome_name(o), dtx_gid(c) ? dtx_gid(c) : "-", elapsed_ms(&t0));
    if (o != DTX_COMMITTED && (!failed || keep_going))
        fprintf(stderr, "reason: %s\n", dtx_error_message(c));
    dtx_finish(c);
    return 0;
}

static int
cmd_stall(const char *p, const char *sql1, const char *sql2, int ms)
{
    dtx_conn *c = connect_or_die();
    dtx_stmt st[2] = {{p, sql1, 0, NULL}, {p, sql2, 0, NULL}};
    if (!dtx_send_oneshot(c, st, 2)) {
        fprintf(stderr, "send: %s\n", dtx_error_message(c));
        return 1;
    }
    while (dtx_flush(c) == 1)
        usleep(1000);
    usleep((useconds_t)ms * 1000);
    /* read what is there; a closed connection shows once the buffered
     * replies are consumed */
    const char *state = "open";
    for (int i = 0; i < 50000; i++) { /* up to some 5 s of reading */
        if (!dtx_consume_input(c)) {
            state = "gone";
            break;
        }
        dtx_result *r;
        while (!dtx_is_busy(c) && (r = dtx_get_result(c)) != NULL)
            dtx_clear(r);
        if (dtx_status(c) != DTX_CONNECTION_OK) {
            state = "gone";
            break;
        }
        usleep(100);
    }
    printf("%s\n", state);
    dtx_finish(c);
    return 0;
}

static int
cmd_oneshot(const char *p1, const char *s1, const char *p2, const char *s2)
{
    dtx_conn *c = connect_or_die();
    dtx_stmt st[2] = {{p1, s1, 0, NULL}, {p2, s2, 0, NULL}};
    dtx_outcome o = dtx_oneshot(c, st, 2, NULL, NULL);
    printf("%s %s\n", dtx_outcome_name(o), dtx_gid(c) ? dtx_gid(c) : "-");
    if (o != DTX_COMMITTED)
        fprintf(stderr, "reason: %s\n", dtx_error_message(c));
    dtx_finish(c);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "steps") == 0)
        return cmd_steps(argc - 2, argv + 2);
    if (argc >= 6 && strcmp(argv[1], "stall") == 0)
        return cmd_stall(argv[2], argv[3], argv[4], atoi(argv[5]));
    if (argc >= 6 && strcmp(argv[1], "oneshot") == 0)
        return cmd_oneshot(argv[2], argv[3], argv[4], argv[5]);
    if (argc >= 4 && strcmp(argv[1], "params") == 0)
        return cmd_params(argv[2], argv[3]);
    if (argc >= 4 && strcmp(argv[1], "vanish") == 0)
        return cmd_vanish(argv[2], argv[3]);
    if (argc >= 6 && strcmp(argv[1], "hook") == 0)
        return cmd_hook(argv[2], argv[3], argv[4], argv[5]);
    if (argc >= 6 && strcmp(argv[1], "transfers") == 0)
        return cmd_transfers(atoi(argv[2]), atoi(argv[3]), argv[4], argv[5]);
    if (argc >= 3 && strcmp(argv[1], "status") == 0)
        return cmd_status(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "reserved") == 0)
        return cmd_reserved(argv[2], argv[3]);
    fprintf(stderr, "usage: see the comment at the top of tests/tools/dtxprobe.c\n");
    return 2;
}
