/*
 * bank_main.c — the bank-transfer benchmark (make bench).
 *
 * Each transaction moves an amount from an account in database A to one in
 * database B.  One run = one mode at one number of concurrent clients (one
 * thread each) for a fixed time; it prints one JSON line:
 *
 *   {"mode":"dtx_oneshot","clients":16,"txns":...,"tps":...,"p50_ms":...,"p99_ms":...,...}
 *
 * Modes:
 *   dtx             libdtx, interactive: begin, one UPDATE per participant, commit
 *   dtx_oneshot     libdtx, the whole transaction in one ONESHOT request
 *   direct_2pc      plain libpq, as most people write it: BEGIN and UPDATE on
 *                   each database one statement at a time, PREPARE TRANSACTION
 *                   on both in parallel, the decision record in a local log
 *                   (fsynced, group commit: wal/), COMMIT PREPARED on both in
 *                   parallel
 *   direct_2pc_min  plain libpq, hand-optimised: one message per database
 *                   ("BEGIN; UPDATE ...; PREPARE TRANSACTION ..."), sent to
 *                   both in parallel, then the log record and the two
 *                   COMMIT PREPAREDs in parallel
 *   single_phase    two ordinary commits in parallel — not atomic; the ceiling
 *
 * Baselines reach PostgreSQL through --pg-a/--pg-b conninfo strings (the
 * runner uses TLS with sslmode=verify-full); dtx modes use the DTX*
 * environment.  Client i uses account i in both databases, so clients never
 * contend for a row and the numbers measure the commit path.
 *
 * With --coord-pid/--part-pids the dtx rows also carry CPU milliseconds per
 * transaction and peak RSS (VmHWM) of those processes during the run, read
 * from /proc (the peak is reset at the start of each run), and the
 * coordinator's read/write system calls and context switches per transaction.
 * With --pg-pids (the postmasters) every row carries PostgreSQL's CPU
 * milliseconds per transaction, both clusters together.
 * --idle N holds N extra idle dtx connections open during the run.
 */
#include "benchproc.h"
#include "dtx.h"
#include "wal.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum mode { M_DTX, M_DTX_ONESHOT, M_DIRECT, M_DIRECT_MIN, M_SINGLE } mode;
static const char *const mode_names[] = {"dtx", "dtx_oneshot", "direct_2pc", "direct_2pc_min",
                                         "single_phase"};

static mode run_mode;
static int nclients = 1;
static double seconds = 5;
static const char *pg_a, *pg_b, *log_dir;
static wal_t *dlog;
static atomic_bool stop_flag;
/* Every client connects before the measured window opens (start) and
 * closes its connections only after it has been sampled (sampled): the
 * CPU and the time of connecting and disconnecting — TLS handshakes,
 * backends forked — are not the transactions'.  Each barrier counts the
 * clients and the main thread. */
static pthread_barrier_t start_barrier, end_barrier, sampled_barrier;
static atomic_long gid_seq;

typedef struct lat {
    double *v;
    size_t n, cap;
} lat;

typedef struct client {
    int id;
    long txns, failures;
    lat l;
    char err[256];
} client;

static void
lat_add(lat *l, double ms)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof(double));
    }
    l->v[l->n++] = ms;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static PGconn *
pg_connect(const char *ci, char *err, size_t len)
{
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, len, "%s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static bool
pg_ok(PGconn *c, const char *sql, char *err, size_t len)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, len, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* send to both, then collect all results of both; false on any error */
static bool
pg_both(PGconn *a, const char *qa, PGconn *b, const char *qb, char *err, size_t len)
{
    if (!PQsendQuery(a, qa) || !PQsendQuery(b, qb)) {
        snprintf(err, len, "send: %s", PQerrorMessage(a));
        return false;
    }
    bool ok = true;
    PGconn *cs[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        PGresult *r;
        while ((r = PQgetResult(cs[i])) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                if (ok)
                    snprintf(err, len, "%s", PQresultErrorMessage(r));
                ok = false;
            }
            PQclear(r);
        }
    }
    return ok;
}

static void
log_decision(const char *gid)
{
    uint64_t lsn = wal_append(dlog, 1, gid, (uint32_t)strlen(gid));
    wal_wait_durable(dlog, lsn);
}

static bool
one_direct(client *c, PGconn *a, PGconn *b, bool minimal)
{
    char gid[64], qa[256], qb[256], e[256];
    snprintf(gid, sizeof(gid), "bench:%ld", atomic_fetch_add(&gid_seq, 1));
    if (!minimal) {
        snprintf(qa, sizeof(qa), "update accounts set balance = balance - 1 where id = %d", c->id);
        snprintf(qb, sizeof(qb), "update accounts set balance = balance + 1 where id = %d", c->id);
        if (!pg_ok(a, "BEGIN", e, sizeof(e)) || !pg_ok(a, qa, e, sizeof(e)) ||
            !pg_ok(b, "BEGIN", e, sizeof(e)) || !pg_ok(b, qb, e, sizeof(e)))
            goto fail;
        snprintf(qa, sizeof(qa), "PREPARE TRANSACTION '%s:a'", gid);
        snprintf(qb, sizeof(qb), "PREPARE TRANSACTION '%s:b'", gid);
    } else {
        snprintf(qa, sizeof(qa),
                 "BEGIN; update accounts set balance = balance - 1 where id = %d; "
                 "PREPARE TRANSACTION '%s:a'",
                 c->id, gid);
        snprintf(qb, sizeof(qb),
                 "BEGIN; update accounts set balance = balance + 1 where id = %d; "
                 "PREPARE TRANSACTION '%s:b'",
                 c->id, gid);
    }
    if (!pg_both(a, qa, b, qb, e, sizeof(e)))
        goto fail;
    log_decision(gid);
    snprintf(qa, sizeof(qa), "COMMIT PREPARED '%s:a'", gid);
    snprintf(qb, sizeof(qb), "COMMIT PREPARED '%s:b'", gid);
    if (!pg_both(a, qa, b, qb, e, sizeof(e)))
        goto fail;
    return true;
fail:
    snprintf(c->err, sizeof(c->err), "%s", e);
    pg_ok(a, "ROLLBACK", e, sizeof(e));
    pg_ok(b, "ROLLBACK", e, sizeof(e));
    return false;
}

static bool
one_single(client *c, PGconn *a, PGconn *b)
{
    char qa[256], qb[256], e[256];
    snprintf(qa, sizeof(qa),
             "BEGIN; update accounts set balance = balance - 1 where id = %d; COMMIT", c->id);
    snprintf(qb, sizeof(qb),
             "BEGIN; update accounts set balance = balance + 1 where id = %d; COMMIT", c->id);
    if (!pg_both(a, qa, b, qb, e, sizeof(e))) {
        snprintf(c->err, sizeof(c->err), "%s", e);
        return false;
    }
    return true;
}

static bool
one_dtx(client *c, dtx_conn *d, bool oneshot)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", c->id);
    const char *params[1] = {id};
    const char *up_a = "update accounts set balance = balance - 1 where id = $1";
    const char *up_b = "update accounts set balance = balance + 1 where id = $1";
    dtx_outcome o;
    if (oneshot) {
        dtx_stmt st[2] = {{"a", up_a, 1, params}, {"b", up_b, 1, params}};
        o = dtx_oneshot(d, st, 2, NULL, NULL);
    } else {
        if (dtx_begin(d) == NULL) {
            snprintf(c->err, sizeof(c->err), "%s", dtx_error_message(d));
            return false;
        }
        dtx_clear(dtx_exec_params(d, "a", up_a, 1, params));
        dtx_clear(dtx_exec_params(d, "b", up_b, 1, params));
        o = dtx_commit(d);
    }
    if (o != DTX_COMMITTED) {
        snprintf(c->err, sizeof(c->err), "%s", dtx_error_message(d));
        return false;
    }
    return true;
}

static void *
client_main(void *arg)
{
    client *c = arg;
    PGconn *a = NULL, *b = NULL;
    dtx_conn *d = NULL;
    char e[256];
    bool up = true;
    if (run_mode == M_DTX || run_mode == M_DTX_ONESHOT) {
        d = dtx_connect("application_name=bench");
        if (dtx_status(d) != DTX_CONNECTION_OK) {
            snprintf(c->err, sizeof(c->err), "%s", dtx_error_message(d));
            c->failures++;
            up = false;
        }
    } else {
        a = pg_connect(pg_a, e, sizeof(e));
        b = a ? pg_connect(pg_b, e, sizeof(e)) : NULL;
        if (!a || !b) {
            snprintf(c->err, sizeof(c->err), "%s", e);
            c->failures++;
            up = false;
        }
    }
    pthread_barrier_wait(&start_barrier);
    while (up && !atomic_load(&stop_flag)) {
        double t0 = now_s();
        bool ok;
        switch (run_mode) {
        case M_DTX:
        case M_DTX_ONESHOT:
            ok = one_dtx(c, d, run_mode == M_DTX_ONESHOT);
            break;
        case M_DIRECT:
        case M_DIRECT_MIN:
            ok = one_direct(c, a, b, run_mode == M_DIRECT_MIN);
            break;
        default:
            ok = one_single(c, a, b);
            break;
        }
        if (ok) {
            c->txns++;
            lat_add(&c->l, (now_s() - t0) * 1000.0);
        } else {
            c->failures++;
        }
    }
    pthread_barrier_wait(&end_barrier);
    pthread_barrier_wait(&sampled_barrier);
    if (d)
        dtx_finish(d);
    PQfinish(a);
    PQfinish(b);
    return NULL;
}

int
main(int argc, char **argv)
{
    int coord_pid = 0, part_pids[8], nparts = 0, idle = 0, pg_pids[8], npg = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "bench-bank: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--mode") == 0) {
            int m = -1;
            for (int k = 0; k < 5; k++)
                if (strcmp(v, mode_names[k]) == 0)
                    m = k;
            if (m < 0) {
                fprintf(stderr, "bench-bank: unknown mode \"%s\"\n", v);
                return 2;
            }
            run_mode = (mode)m;
        } else if (strcmp(a, "--clients") == 0)
            nclients = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--pg-a") == 0)
            pg_a = v;
        else if (strcmp(a, "--pg-b") == 0)
            pg_b = v;
        else if (strcmp(a, "--log-dir") == 0)
            log_dir = v;
        else if (strcmp(a, "--coord-pid") == 0)
            coord_pid = atoi(v);
        else if (strcmp(a, "--idle") == 0)
            idle = atoi(v);
        else if (strcmp(a, "--part-pids") == 0 || strcmp(a, "--pg-pids") == 0) {
            bool pg = strcmp(a, "--pg-pids") == 0;
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && (pg ? npg : nparts) < 8;
                 t = strtok_r(NULL, ",", &save)) {
                if (pg)
                    pg_pids[npg++] = atoi(t);
                else
                    part_pids[nparts++] = atoi(t);
            }
            free(copy);
        } else {
            fprintf(stderr, "bench-bank: unknown option %s\n", a);
            return 2;
        }
    }
    if (nclients < 1 || seconds <= 0) {
        fprintf(stderr, "bench-bank: bad --clients or --seconds\n");
        return 2;
    }
    bool is_dtx = run_mode == M_DTX || run_mode == M_DTX_ONESHOT;
    if (!is_dtx && (!pg_a || !pg_b)) {
        fprintf(stderr, "bench-bank: --pg-a and --pg-b are needed for %s\n", mode_names[run_mode]);
        return 2;
    }
    if (run_mode == M_DIRECT || run_mode == M_DIRECT_MIN) {
        char err[512];
        if (!log_dir) {
            fprintf(stderr, "bench-bank: --log-dir is needed for %s\n", mode_names[run_mode]);
            return 2;
        }
        dlog = wal_open(log_dir, NULL, err, sizeof(err));
        if (!dlog) {
            fprintf(stderr, "bench-bank: decision log: %s\n", err);
            return 1;
        }
    }
    dtx_conn **idlers = calloc((size_t)idle + 1, sizeof(dtx_conn *));
    if (coord_pid)
        proc_reset_peak(coord_pid);
    for (int i = 0; i < nparts; i++)
        proc_reset_peak(part_pids[i]);
    for (int i = 0; i < idle; i++) {
        idlers[i] = dtx_connect("application_name=idle");
        if (dtx_status(idlers[i]) != DTX_CONNECTION_OK) {
            fprintf(stderr, "bench-bank: idle connection %d: %s\n", i,
                    dtx_error_message(idlers[i]));
            return 1;
        }
    }
    client *cs = calloc((size_t)nclients, sizeof(client));
    pthread_t *th = calloc((size_t)nclients, sizeof(pthread_t));
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nclients + 1);
    pthread_barrier_init(&end_barrier, NULL, (unsigned)nclients + 1);
    pthread_barrier_init(&sampled_barrier, NULL, (unsigned)nclients + 1);
    for (int i = 0; i < nclients; i++) {
        cs[i].id = i + 1;
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    pthread_barrier_wait(&start_barrier); /* every client is connected */
    double c0 = 0, p0 = 0, x, hwm, sc0 = 0, sw0 = 0, pg0 = npg ? pg_cpu_ms(pg_pids, npg) : 0;
    if (coord_pid) {
        proc_usage(coord_pid, &c0, &hwm);
        proc_counts(coord_pid, &sc0, &sw0);
    }
    for (int i = 0; i < nparts; i++)
        if (proc_usage(part_pids[i], &x, &hwm))
            p0 += x;
    double t0 = now_s();
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop_flag, true);
    pthread_barrier_wait(&end_barrier); /* every client is done, still connected */
    double elapsed = now_s() - t0;
    long txns = 0, fails = 0;
    lat all = {0};
    const char *err = NULL;
    for (int i = 0; i < nclients; i++) {
        txns += cs[i].txns;
        fails += cs[i].failures;
        for (size_t k = 0; k < cs[i].l.n; k++)
            lat_add(&all, cs[i].l.v[k]);
        if (!err && cs[i].err[0])
            err = cs[i].err;
    }
    qsort(all.v, all.n, sizeof(double), cmp_d);
    double p50 = all.n ? all.v[all.n / 2] : 0, p99 = all.n ? all.v[(all.n * 99) / 100] : 0;
    printf("{\"mode\":\"%s\",\"clients\":%d,\"idle_clients\":%d,\"txns\":%ld,\"failures\":%ld,"
           "\"tps\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f",
           mode_names[run_mode], nclients, idle, txns, fails, (double)txns / elapsed, p50, p99);
    if (npg && txns)
        printf(",\"postgres_cpu_ms\":%.3f", (pg_cpu_ms(pg_pids, npg) - pg0) / (double)txns);
    if (coord_pid && txns) {
        double c1, ch = 0, p1 = 0, ph = 0, sc1 = 0, sw1 = 0;
        proc_usage(coord_pid, &c1, &ch);
        bool counted = proc_counts(coord_pid, &sc1, &sw1);
        for (int i = 0; i < nparts; i++)
            if (proc_usage(part_pids[i], &x, &hwm)) {
                p1 += x;
                ph = hwm > ph ? hwm : ph;
            }
        printf(
            ",\"coordinator_cpu_ms\":%.3f,\"participant_cpu_ms\":%.3f,\"coordinator_rss_mb\":%.1f,"
            "\"participant_rss_mb\":%.1f",
            (c1 - c0) / (double)txns, nparts ? (p1 - p0) / (double)txns / nparts : 0, ch, ph);
        if (counted)
            printf(",\"coordinator_syscalls\":%.2f,\"coordinator_switches\":%.2f",
                   (sc1 - sc0) / (double)txns, (sw1 - sw0) / (double)txns);
    }
    printf("}\n");
    pthread_barrier_wait(&sampled_barrier); /* now they may disconnect */
    for (int i = 0; i < nclients; i++)
        pthread_join(th[i], NULL);
    if (err && fails)
        fprintf(stderr, "bench-bank: %s: %ld failures, first: %s\n", mode_names[run_mode], fails,
                err);
    for (int i = 0; i < idle; i++)
        dtx_finish(idlers[i]);
    free(idlers);
    for (int i = 0; i < nclients; i++)
        free(cs[i].l.v);
    free(cs);
    free(th);
    free(all.v);
    if (dlog)
        wal_close(dlog);
    return 0;
}
