/*
 * bank.c — the workload and the checker of the crash tests (crash matrix and
 * chaos bank test).
 *
 * Every participant database holds
 *
 *     accounts (id int primary key, balance bigint not null check (balance >= 0))
 *     ledger   (gid text primary key, delta bigint not null)
 *
 * and every branch of a transfer runs one statement that writes a ledger row
 * named by the transaction's gid and moves its delta:
 *
 *     with l as (insert into ledger values ($1, $2)) update accounts ...
 *
 * so the data itself tells, per gid, which branches committed.  A transfer
 * touches two or three participants (random order, deltas summing to zero).
 * Thread i uses account i everywhere, so transfers never wait on each other's
 * row locks (a lock cycle across databases is nobody's deadlock detector's
 * business); the CHECK constraint makes some transfers fail and abort.
 *
 *   bank run --parts a,b,c --threads N (--txns K | --seconds S) --journal FILE
 *            [--reconnect] [--seed N]
 *       Runs transfers through the coordinator (DTX* environment).  The
 *       journal gets "B <gid> <p1,p2,..>" once the gid is known (after
 *       BEGIN) and "R <gid> COMMITTED|ABORTED|UNKNOWN" with the answer.  A
 *       transaction whose COMMIT was never sent is ABORTED for certain.
 *       Without --reconnect a thread stops at its first connection loss.
 *       With --spread, thread i's k-th transfer uses account (i-1)*K+k
 *       instead of account i (transfers left in doubt keep their rows
 *       locked; this lets many of them pile up).
 *       With --oneshot P, P percent of the threads (the first P of every
 *       hundred) send each transfer as one ONESHOT request instead of
 *       statement by statement; with --fixed-order the interactive ones
 *       touch the participants in the order given (as applications are
 *       advised to), not in a random one.
 *       Prints "bank: <n> transactions: <c> committed, <a> aborted,
 *       <u> unknown", then "bank: <f> failed" and the first failure's
 *       SQLSTATE and message: aborts for any reason other than a
 *       constraint (class 23: the CHECK on balances), i.e. the ones a
 *       workload that is not wrong should never see.
 *
 *   bank check --journal FILE --pg NAME=CONNINFO ... --total T
 *              [--planted NAME=GID] [--prefix P]
 *       After recovery, checks over every journalled gid (and every ledger
 *       row):
 *         I1  the gid's ledger row is in all its branches or in none
 *         I2  the balances add up to T and none is negative; each
 *             database's balances equal its initial share plus its ledger
 *         I3  no prepared transaction named with prefix P (default "dtx:")
 *             is left; each planted one is still there
 *         I4  COMMITTED -> rows everywhere, ABORTED -> nowhere, UNKNOWN ->
 *             the coordinator's outcome query answers COMMITTED or ABORTED
 *             and the data agrees
 *       Prints one line per violation and, last, "check: <n> gids,
 *       <v> violations"; exit 1 when v > 0.
 */
#include "dtx.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARTS 8

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bank: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
split_names(char *s, char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max)
            die("too many names (at most %d)", max);
        out[n++] = tok;
    }
    return n;
}

/* ------------------------------------------------------------------ run */

static char *parts[MAX_PARTS];
static int nparts;
static int nthreads = 1;
static long txns_per_thread = -1;
static double run_seconds = -1;
static bool reconnect;
static bool spread; /* each transfer of a thread on accounts of its own */
static unsigned seed = 1;
static int oneshot_pct;  /* percent of the threads sending ONESHOTs */
static bool fixed_order; /* interactive transfers touch parts in order */
static FILE *journal;
static pthread_mutex_t journal_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_long n_committed, n_aborted, n_unknown, n_failed;
static char first_failure[512];

static void
journal_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&journal_mu);
    vfprintf(journal, fmt, ap);
    fflush(journal);
    pthread_mutex_unlock(&journal_mu);
    va_end(ap);
}

static void
count(dtx_outcome o)
{
    if (o == DTX_COMMITTED)
        n_committed++;
    else if (o == DTX_ABORTED)
        n_aborted++;
    else
        n_unknown++;
}

/* An abort for a reason other than a constraint (class 23) is a failure:
 * count it, and keep the first one's SQLSTATE and message. */
static void
note_failure(const char *gid, const char *sqlstate, const char *message)
{
    if (sqlstate != NULL && strncmp(sqlstate, "23", 2) == 0)
        return;
    n_failed++;
    pthread_mutex_lock(&journal_mu);
    if (first_failure[0] == '\0')
        snprintf(first_failure, sizeof(first_failure), "%s %s: %s", gid ? gid : "-",
                 sqlstate ? sqlstate : "-----", message ? message : "");
    pthread_mutex_unlock(&journal_mu);
}

static void
note_conn_failure(dtx_conn *c, const char *gid)
{
    note_failure(gid, dtx_error_field(c, DTX_DIAG_SQLSTATE), dtx_error_message(c));
}

static dtx_conn *
connect_retry(double deadline)
{
    for (;;) {
        dtx_conn *c = dtx_connect("connect_timeout=2");
        if (dtx_status(c) == DTX_CONNECTION_OK)
            return c;
        dtx_finish(c);
        if (!reconnect || now_s() >= deadline)
            return NULL;
        usleep(100 * 1000);
    }
}

static bool
conn_lost(dtx_conn *c)
{
    return dtx_status(c) != DTX_CONNECTION_OK;
}

/* "B <key> <p1,p2,..>": the transfer's participants, in order. */
static void
journal_begin(const char *key, const int *order, int nb)
{
    char plist[256] = "";
    for (int i = 0; i < nb; i++) {
        strncat(plist, parts[order[i]], sizeof(plist) - strlen(plist) - 2);
        if (i + 1 < nb)
            strcat(plist, ",");
    }
    journal_line("B %s %s\n", key, plist);
}

#define TRANSFER_SQL                                                                               \
    "with l as (insert into ledger (gid, delta) values ($1, $2)) "                                 \
    "update accounts set balance = balance + $2 where id = $3"

/* A transfer as one ONESHOT request.  Its gid is known only once the
 * coordinator names it, after the statements are written, so the ledger
 * rows of a one-shot transfer are named by a key of the thread's own
 * ("os:<seed>:<thread>:<n>") and the journal records the transfer under that key:
 * the check (I1, I2, I4 for COMMITTED and ABORTED) reads it as it reads a
 * gid.  An UNKNOWN one cannot be looked up by that key: --oneshot is for
 * runs in which nothing crashes. */
static bool
transfer_oneshot(dtx_conn *c, const char *key, int acct_id, const int *order, int nb,
                 const long *delta)
{
    char dv[3][32], acct[32];
    const char *params[3][3];
    dtx_stmt st[3];
    snprintf(acct, sizeof(acct), "%d", acct_id);
    for (int i = 0; i < nb; i++) {
        snprintf(dv[i], sizeof(dv[i]), "%ld", delta[i]);
        params[i][0] = key;
        params[i][1] = dv[i];
        params[i][2] = acct;
        st[i] = (dtx_stmt){
            .participant = parts[order[i]], .sql = TRANSFER_SQL, .nparams = 3, .params = params[i]};
    }
    journal_begin(key, order, nb);
    dtx_outcome o = dtx_oneshot(c, st, nb, NULL, NULL);
    journal_line("R %s %s\n", key, dtx_outcome_name(o));
    count(o);
    if (o != DTX_COMMITTED)
        note_conn_failure(c, dtx_gid(c));
    return !conn_lost(c);
}

/* One transfer on account `acct` everywhere.  Returns false when the
 * connection is gone. */
static bool
transfer(dtx_conn *c, int acct_id, unsigned *rs, bool oneshot, int thread_id, long seq)
{
    int order[MAX_PARTS];
    for (int i = 0; i < nparts; i++)
        order[i] = i;
    for (int i = nparts - 1; i > 0 && !(fixed_order && !oneshot); i--) {
        int j = (int)(rand_r(rs) % (unsigned)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int nb = (nparts >= 3 && rand_r(rs) % 2) ? 3 : 2;
    long v = 1 + (long)(rand_r(rs) % 40);
    long delta[3] = {-v, v, 0};
    if (nb == 3) {
        delta[0] = -2 * v;
        delta[2] = v;
    }
    if (rand_r(rs) % 2) { /* either direction */
        for (int i = 0; i < nb; i++)
            delta[i] = -delta[i];
    }

    if (oneshot) {
        char key[64];
        snprintf(key, sizeof(key), "os:%u:%d:%ld", seed, thread_id, seq);
        return transfer_oneshot(c, key, acct_id, order, nb, delta);
    }
    const char *gid = dtx_begin(c);
    if (gid == NULL) {
        note_conn_failure(c, NULL);
        return !conn_lost(c);
    }
    char g[128];
    snprintf(g, sizeof(g), "%s", gid);
    journal_begin(g, order, nb);

    bool failed = false;
    for (int i = 0; i < nb && !failed; i++) {
        char dv[32], acct[32];
        snprintf(dv, sizeof(dv), "%ld", delta[i]);
        snprintf(acct, sizeof(acct), "%d", acct_id);
        const char *params[3] = {g, dv, acct};
        dtx_result *r = dtx_exec_params(c, parts[order[i]], TRANSFER_SQL, 3, params);
        if (r == NULL || dtx_result_status(r) != DTX_RES_OK) {
            failed = true;
            note_failure(g, r ? dtx_result_error_field(r, DTX_DIAG_SQLSTATE) : NULL,
                         r ? dtx_result_error_field(r, DTX_DIAG_MESSAGE) : "out of memory");
        }
        dtx_clear(r);
    }
    if (failed) {
        /* COMMIT never sent: aborted for certain, whatever the rollback says */
        if (!conn_lost(c)) {
            dtx_outcome o = dtx_rollback(c);
            (void)o;
        }
        journal_line("R %s ABORTED\n", g);
        count(DTX_ABORTED);
        return !conn_lost(c);
    }
    dtx_outcome o = dtx_commit(c);
    journal_line("R %s %s\n", g, dtx_outcome_name(o));
    count(o);
    if (o != DTX_COMMITTED)
        note_conn_failure(c, g);
    return !conn_lost(c);
}

typedef struct worker {
    int id;
    pthread_t th;
} worker;

static void *
worker_main(void *arg)
{
    worker *w = arg;
    unsigned rs = seed * 7919u + (unsigned)w->id;
    double deadline = run_seconds >= 0 ? now_s() + run_seconds : 1e18;
    long done = 0;
    dtx_conn *c = connect_retry(deadline);
    while (c != NULL) {
        if (txns_per_thread >= 0 && done >= txns_per_thread)
            break;
        if (now_s() >= deadline)
            break;
        int acct = spread ? (int)((w->id - 1) * txns_per_thread + done + 1) : w->id;
        bool ok = transfer(c, acct, &rs, (w->id - 1) % 100 < oneshot_pct, w->id, done);
        done++;
        if (!ok) {
            dtx_finish(c);
            c = reconnect ? connect_retry(deadline) : NULL;
        }
    }
    dtx_finish(c);
    return NULL;
}

static int
cmd_run(int argc, char **argv)
{
    const char *jpath = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--reconnect") == 0) {
            reconnect = true;
            continue;
        }
        if (strcmp(a, "--spread") == 0) {
            spread = true;
            continue;
        }
        if (strcmp(a, "--fixed-order") == 0) {
            fixed_order = true;
            continue;
        }
        if (v == NULL)
            die("%s needs a value", a);
        i++;
        if (strcmp(a, "--parts") == 0)
            nparts = split_names(strdup(v), parts, MAX_PARTS);
        else if (strcmp(a, "--threads") == 0)
            nthreads = atoi(v);
        else if (strcmp(a, "--txns") == 0)
            txns_per_thread = atol(v);
        else if (strcmp(a, "--seconds") == 0)
            run_seconds = atof(v);
        else if (strcmp(a, "--journal") == 0)
            jpath = v;
        else if (strcmp(a, "--seed") == 0)
            seed = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--oneshot") == 0)
            oneshot_pct = atoi(v);
        else
            die("unknown option %s", a);
    }
    if (nparts < 2 || nthreads < 1 || jpath == NULL || (txns_per_thread < 0 && run_seconds < 0))
        die("run needs --parts (two or more), --threads, --journal and --txns or --seconds");
    if (spread && txns_per_thread < 0)
        die("--spread needs --txns");
    if (oneshot_pct < 0 || oneshot_pct > 100)
        die("--oneshot wants a percentage (0 to 100)");
    journal = fopen(jpath, "a");
    if (journal == NULL)
        die("cannot open %s: %m", jpath);
    worker *w = calloc((size_t)nthreads, sizeof(worker));
    for (int i = 0; i < nthreads; i++) {
        w[i].id = i + 1;
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
            die("pthread_create failed");
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(w[i].th, NULL);
    free(w);
    fclose(journal);
    long c = n_committed, a = n_aborted, u = n_unknown;
    printf("bank: %ld transactions: %ld committed, %ld aborted, %ld unknown\n", c + a + u, c, a, u);
    printf("bank: %ld failed%s%s\n", (long)n_failed, first_failure[0] ? ", the first: " : "",
           first_failure);
    return 0;
}

/* ---------------------------------------------------------------- check */

typedef struct gidrec {
    char *gid;
    char *plist;           /* participants of the transaction, as journalled */
    int outcome;           /* -1 none yet, else dtx_outcome */
    unsigned present_mask; /* participants whose ledger has the row */
    struct gidrec *next;
} gidrec;

#define NBUCKETS 65536
static gidrec *buckets[NBUCKETS];
static long ngids;
static long violations;

static unsigned
hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static gidrec *
gid_get(const char *gid, bool create)
{
    unsigned h = hash_str(gid) % NBUCKETS;
    for (gidrec *g = buckets[h]; g; g = g->next)
        if (strcmp(g->gid, gid) == 0)
            return g;
    if (!create)
        return NULL;
    gidrec *g = calloc(1, sizeof(*g));
    g->gid = strdup(gid);
    g->outcome = -1;
    g->next = buckets[h];
    buckets[h] = g;
    ngids++;
    return g;
}

static void
violation(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("VIOLATION ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    violations++;
}

typedef struct pgdb {
    char *name;
    PGconn *conn;
} pgdb;

static pgdb dbs[MAX_PARTS];
static int ndbs;

static int
db_index(const char *name)
{
    for (int i = 0; i < ndbs; i++)
        if (strcmp(dbs[i].name, name) == 0)
            return i;
    return -1;
}

static PGresult *
query(pgdb *d, const char *sql)
{
    PGresult *r = PQexec(d->conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s: %s", d->name, sql, PQerrorMessage(d->conn));
    return r;
}

static unsigned
plist_mask(const char *plist, bool *unknown_part)
{
    unsigned m = 0;
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", plist);
    for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ",")) {
        int i = db_index(tok);
        if (i < 0)
            *unknown_part = true;
        else
            m |= 1u << i;
    }
    return m;
}

static void
read_journal(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("cannot open %s: %m", path);
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        char kind, a[200], b[256];
        if (sscanf(line, "%c %199s %255s", &kind, a, b) != 3)
            die("bad journal line: %s", line);
        gidrec *g = gid_get(a, true);
        if (kind == 'B') {
            if (g->plist)
                violation("gid %s began twice (gid reused)", a);
            else
                g->plist = strdup(b);
        } else if (kind == 'R') {
            int o = strcmp(b, "COMMITTED") == 0 ? DTX_COMMITTED
                    : strcmp(b, "ABORTED") == 0 ? DTX_ABORTED
                                                : DTX_UNKNOWN;
            g->outcome = o;
        } else {
            die("bad journal line: %s", line);
        }
    }
    fclose(f);
}

static int
cmd_check(int argc, char **argv)
{
    const char *jpath = NULL, *prefix = "dtx:";
    long long total = -1;
    char *planted[MAX_PARTS * 4];
    int nplanted = 0;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--journal") == 0) {
            jpath = v;
        } else if (strcmp(a, "--total") == 0) {
            total = atoll(v);
        } else if (strcmp(a, "--prefix") == 0) {
            prefix = v;
        } else if (strcmp(a, "--planted") == 0) {
            if (nplanted == MAX_PARTS * 4)
                die("too many --planted");
            planted[nplanted++] = strdup(v);
        } else if (strcmp(a, "--pg") == 0) {
            char *s = strdup(v), *eq = strchr(s, '=');
            if (eq == NULL || ndbs == MAX_PARTS)
                die("--pg wants NAME=CONNINFO");
            *eq = '\0';
            dbs[ndbs].name = s;
            dbs[ndbs].conn = PQconnectdb(eq + 1);
            if (PQstatus(dbs[ndbs].conn) != CONNECTION_OK)
                die("%s: %s", s, PQerrorMessage(dbs[ndbs].conn));
            ndbs++;
        } else {
            die("unknown option %s", a);
        }
    }
    if (argc % 2 != 0 || jpath == NULL || ndbs < 2 || total < 0)
        die("check needs --journal, --total and two or more --pg NAME=CONNINFO");
    read_journal(jpath);

    /* ledger rows, and I2 per database */
    long long sum = 0;
    for (int i = 0; i < ndbs; i++) {
        PGresult *r = query(&dbs[i], "select gid from ledger");
        for (int k = 0; k < PQntuples(r); k++) {
            const char *gid = PQgetvalue(r, k, 0);
            gidrec *g = gid_get(gid, false);
            if (g == NULL || g->plist == NULL) {
                violation("I1 ledger row %s on %s belongs to no journalled transaction", gid,
                          dbs[i].name);
                continue;
            }
            g->present_mask |= 1u << i;
        }
        PQclear(r);
        r = query(&dbs[i], "select (select coalesce(sum(balance), 0) from accounts), "
                           "(select count(*) from accounts where balance < 0), "
                           "(select coalesce(sum(delta), 0) from ledger), "
                           "(select count(*) from accounts)");
        long long bal = atoll(PQgetvalue(r, 0, 0)), neg = atoll(PQgetvalue(r, 0, 1)),
                  led = atoll(PQgetvalue(r, 0, 2));
        if (neg > 0)
            violation("I2 %lld negative balances on %s", neg, dbs[i].name);
        if (bal - led != total / ndbs)
            violation("I2 on %s the balances (%lld) are not the initial %lld plus the ledger "
                      "(%lld)",
                      dbs[i].name, bal, total / ndbs, led);
        sum += bal;
        PQclear(r);
    }
    if (sum != total)
        violation("I2 the balances add up to %lld, not %lld", sum, total);

    /* I3 */
    for (int i = 0; i < ndbs; i++) {
        PGresult *r = query(&dbs[i], "select gid from pg_prepared_xacts "
                                     "where database = current_database()");
        for (int k = 0; k < PQntuples(r); k++) {
            const char *gid = PQgetvalue(r, k, 0);
            if (strncmp(gid, prefix, strlen(prefix)) == 0)
                violation("I3 %s is still prepared on %s", gid, dbs[i].name);
        }
        for (int p = 0; p < nplanted; p++) {
            char *eq = strchr(planted[p], '=');
            if (eq == NULL || strncmp(planted[p], dbs[i].name, (size_t)(eq - planted[p])) != 0 ||
                strlen(dbs[i].name) != (size_t)(eq - planted[p]))
                continue;
            bool found = false;
            for (int k = 0; k < PQntuples(r); k++)
                found |= strcmp(PQgetvalue(r, k, 0), eq + 1) == 0;
            if (!found)
                violation("I3 the planted prepared transaction %s on %s is gone", eq + 1,
                          dbs[i].name);
        }
        PQclear(r);
    }

    /* I1 and I4 over every gid */
    dtx_conn *dc = NULL;
    long n_asked = 0;
    for (unsigned h = 0; h < NBUCKETS; h++) {
        for (gidrec *g = buckets[h]; g; g = g->next) {
            if (g->plist == NULL) {
                violation("gid %s has an outcome but no begin", g->gid);
                continue;
            }
            bool bad_part = false;
            unsigned want = plist_mask(g->plist, &bad_part);
            if (bad_part)
                die("journal names a participant without --pg: %s", g->plist);
            if (g->present_mask & ~want)
                violation("I1 %s has a ledger row outside its participants", g->gid);
            bool all = g->present_mask == want, none = g->present_mask == 0;
            if (!all && !none)
                violation("I1 %s committed on some branches only (participants %s, rows on "
                          "mask %#x)",
                          g->gid, g->plist, g->present_mask);
            int o = g->outcome;
            if (o == DTX_COMMITTED && !all)
                violation("I4 %s was answered COMMITTED but its rows are not everywhere", g->gid);
            if (o == DTX_ABORTED && !none)
                violation("I4 %s was answered ABORTED but has rows", g->gid);
            if (o == DTX_UNKNOWN || o == -1) {
                n_asked++;
                if (dc == NULL) {
                    dc = dtx_connect("connect_timeout=5");
                    if (dtx_status(dc) != DTX_CONNECTION_OK)
                        die("connect to the coordinator: %s", dtx_error_message(dc));
                }
                char *detail = NULL;
                dtx_gid_status s = dtx_outcome_of(dc, g->gid, &detail);
                if (s == DTX_GID_COMMITTED && !all)
                    violation("I4 %s: the outcome query says COMMITTED, the rows are not "
                              "everywhere",
                              g->gid);
                else if (s == DTX_GID_ABORTED && !none)
                    violation("I4 %s: the outcome query says ABORTED, yet it has rows", g->gid);
                else if (s != DTX_GID_COMMITTED && s != DTX_GID_ABORTED)
                    violation("I4 %s: the outcome query answers %s%s%s", g->gid,
                              dtx_gid_status_name(s), detail ? ": " : "", detail ? detail : "");
                dtx_freemem(detail);
            }
        }
    }
    dtx_finish(dc);
    for (int i = 0; i < ndbs; i++) {
        PQfinish(dbs[i].conn);
        free(dbs[i].name);
    }
    for (int p = 0; p < nplanted; p++)
        free(planted[p]);
    for (unsigned h = 0; h < NBUCKETS; h++) {
        while (buckets[h]) {
            gidrec *g = buckets[h];
            buckets[h] = g->next;
            free(g->gid);
            free(g->plist);
            free(g);
        }
    }
    printf("check: %ld gids (%ld asked of the coordinator), %ld violations\n", ngids, n_asked,
           violations);
    return violations > 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    fprintf(stderr, "usage: bank run|check ... (see tests/tools/bank.c)\n");
    return 2;
}
