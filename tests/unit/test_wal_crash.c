/*
 * test_wal_crash.c — kill a process that is appending, many times, and check
 * that every record it was told was durable comes back intact and in order.
 *
 * Each round forks a child that opens the log (recovering what the last
 * round left), appends from several threads — each waits for durability
 * with wal_wait_durable — and from its event loop, which waits with
 * wal_notify_durable.  After a record is durable the child reports it to the
 * parent through a pipe (fixed-size writes, atomic on a pipe).  The parent
 * kills the child with SIGKILL at a random moment; some rounds instead arm
 * the "wal-write=torn" failpoint so the child dies in the middle of a write,
 * and some slow the fsync down so groups get larger.  The parent then opens
 * the log, as recovery would, and checks every report of every round so far
 * against what it reads: same LSN, same record, all in increasing order, and
 * no record of any thread missing before its last acknowledged one.
 *
 * Set WAL_CRASH_SEED to replay a run; the seed is printed on failure.
 */
#include "test_wal_util.h"
#include "failpoint.h"
#include "log.h"

#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

enum { ROUNDS = 25, THREADS = 4, LOOP_ID = THREADS };

typedef struct crash_report {
    uint64_t lsn;
    uint64_t seq;
    uint32_t round;
    uint32_t thread;
} crash_report;

typedef struct crash_rec {
    uint64_t lsn;
    uint64_t seq;
    uint32_t round;
    uint32_t thread;
} crash_rec;

static uint32_t
crash_len(uint32_t round, uint32_t thread, uint64_t seq)
{
    return 16 + (uint32_t)((round * 7919u + thread * 104729u + seq * 31u) % 300);
}

static uint64_t
crash_seed(uint32_t round, uint32_t thread, uint64_t seq)
{
    return ((uint64_t)round << 48) ^ ((uint64_t)thread << 40) ^ seq;
}

static uint32_t
crash_payload(uint8_t *buf, uint32_t round, uint32_t thread, uint64_t seq)
{
    uint32_t len = crash_len(round, thread, seq);
    tw_payload(buf, len, crash_seed(round, thread, seq));
    memcpy(buf, &round, 4);
    memcpy(buf + 4, &thread, 4);
    memcpy(buf + 8, &seq, 8);
    return len;
}

/* ---- the child ------------------------------------------------------------ */

typedef struct child_ctx {
    wal_t *w;
    int fd;
    uint32_t round;
    uint32_t thread;
    uint64_t seq;
} child_ctx;

static void
child_report(child_ctx *c, uint64_t lsn, uint64_t seq)
{
    crash_report r = {.lsn = lsn, .seq = seq, .round = c->round, .thread = c->thread};
    if (write(c->fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(20);
}

static void *
child_appender(void *arg)
{
    child_ctx *c = arg;
    uint8_t buf[400];
    for (;;) {
        uint32_t len = crash_payload(buf, c->round, c->thread, c->seq);
        uint64_t lsn = wal_append(c->w, (uint8_t)(1 + c->thread), buf, len);
        if (lsn == 0)
            _exit(21);
        wal_wait_durable(c->w, lsn);
        child_report(c, lsn, c->seq);
        c->seq++;
    }
    return NULL;
}

static void child_loop_append(child_ctx *c);

static void
child_loop_cb(void *arg, uint64_t lsn)
{
    child_ctx *c = arg;
    child_report(c, lsn, c->seq);
    c->seq++;
    child_loop_append(c);
}

static void
child_loop_append(child_ctx *c)
{
    uint8_t buf[400];
    uint32_t len = crash_payload(buf, c->round, c->thread, c->seq);
    uint64_t lsn = wal_append(c->w, (uint8_t)(1 + c->thread), buf, len);
    if (lsn == 0)
        _exit(21);
    wal_notify_durable(c->w, lsn, child_loop_cb, c);
}

static _Noreturn void
child_main(const char *dir, uint32_t round, int fd, const char *spec)
{
    char err[512];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    log_set_level(LOG_LVL_ERROR);
    if (spec && !failpoint_configure(spec, err, sizeof(err)))
        _exit(11);
    wal_options o;
    wal_options_init(&o);
    o.segment_size = TW_SEG;
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "child: %s\n", err);
        _exit(10);
    }
    static child_ctx ctx[THREADS + 1];
    pthread_t th;
    for (uint32_t t = 0; t < THREADS; t++) {
        ctx[t] = (child_ctx){.w = w, .fd = fd, .round = round, .thread = t};
        if (pthread_create(&th, NULL, child_appender, &ctx[t]) != 0)
            _exit(12);
    }
    struct event_base *base = event_base_new();
    if (base == NULL || !wal_attach_event_base(w, base, err, sizeof(err)))
        _exit(13);
    ctx[LOOP_ID] = (child_ctx){.w = w, .fd = fd, .round = round, .thread = LOOP_ID};
    child_loop_append(&ctx[LOOP_ID]);
    event_base_dispatch(base);
    _exit(14);
}

/* ---- the parent ---------------------------------------------------------- */

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct report_vec {
    crash_report *v;
    size_t n, cap;
} report_vec;

static void
reports_read(report_vec *rv, int fd, uint8_t *part, size_t *npart, bool *eof)
{
    uint8_t buf[8192];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r <= 0) {
        *eof = r == 0 || errno != EINTR;
        return;
    }
    for (ssize_t i = 0; i < r; i++) {
        part[(*npart)++] = buf[i];
        if (*npart == sizeof(crash_report)) {
            if (rv->n == rv->cap) {
                rv->cap = rv->cap ? rv->cap * 2 : 4096;
                rv->v = realloc(rv->v, rv->cap * sizeof(crash_report));
                ck_assert_ptr_nonnull(rv->v);
            }
            memcpy(&rv->v[rv->n++], part, sizeof(crash_report));
            *npart = 0;
        }
    }
}

static int
cmp_report(const void *a, const void *b)
{
    const crash_report *x = a, *y = b;
    return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

/* Run one round; returns the child's wait status. */
static int
crash_round(const char *dir, uint32_t round, const char *spec, unsigned delay_ms, report_vec *rv)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        child_main(dir, round, p[1], spec);
    }
    close(p[1]);
    uint8_t part[sizeof(crash_report)];
    size_t npart = 0, before = rv->n;
    bool eof = false;
    /* The delay runs from the child's first durable report, not from the
     * fork: a slow start (valgrind, a loaded machine) must not turn the
     * round into a kill before anything was written.  A child that reports
     * nothing for 60 s is killed anyway. */
    bool started = false;
    uint64_t deadline = now_ms() + 60000;
    while (!eof) {
        uint64_t now = now_ms();
        if (!started && rv->n > before) {
            started = true;
            deadline = now + delay_ms;
        }
        if (now >= deadline)
            break;
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) > 0)
            reports_read(rv, p[0], part, &npart, &eof);
    }
    kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    while (!eof)
        reports_read(rv, p[0], part, &npart, &eof);
    close(p[0]);
    ck_assert_uint_eq(npart, 0);
    return status;
}

/* Open the log as recovery does and check every report against it. */
static void
crash_verify(const char *dir, report_vec *rv, uint64_t seed, uint32_t round, int *torn)
{
    char err[1024];
    wal_options o;
    wal_options_init(&o);
    o.segment_size = TW_SEG;
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    ck_assert_msg(w != NULL, "seed %" PRIu64 " round %u: recovery failed: %s", seed, round, err);
    wal_reader *r = wal_reader_open(w, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    wal_info info;
    wal_get_info(w, &info);
    if (info.torn_bytes > 0)
        (*torn)++;

    qsort(rv->v, rv->n, sizeof(crash_report), cmp_report);
    static uint64_t next_seq[ROUNDS][THREADS + 1];
    memset(next_seq, 0, sizeof(next_seq));
    uint8_t buf[400];
    wal_record rec;
    size_t ri = 0, nrec = 0;
    uint64_t prev = 0;
    int rc;
    while ((rc = wal_reader_next(r, &rec)) == 1) {
        uint32_t rround, rthread;
        uint64_t rseq;
        ck_assert_uint_ge(rec.len, 16);
        memcpy(&rround, rec.payload, 4);
        memcpy(&rthread, (const uint8_t *)rec.payload + 4, 4);
        memcpy(&rseq, (const uint8_t *)rec.payload + 8, 8);
        ck_assert_uint_le(rround, round);
        ck_assert_uint_le(rthread, THREADS);
        ck_assert_uint_eq(rec.type, 1 + rthread);
        ck_assert_uint_eq(rec.len, crash_len(rround, rthread, rseq));
        crash_payload(buf, rround, rthread, rseq);
        ck_assert_msg(memcmp(buf, rec.payload, rec.len) == 0,
                      "seed %" PRIu64 ": record at %" PRIu64 " damaged", seed, rec.lsn);
        ck_assert_uint_gt(rec.lsn, prev);
        /* Each appender's records are all there, in order, without gaps. */
        ck_assert_msg(rseq == next_seq[rround][rthread],
                      "seed %" PRIu64 ": round %u thread %u: seq %" PRIu64 " after %" PRIu64, seed,
                      rround, rthread, rseq, next_seq[rround][rthread]);
        next_seq[rround][rthread]++;
        /* Every report, in LSN order, must name this very record. */
        while (ri < rv->n && rv->v[ri].lsn < rec.lsn) {
            ck_assert_msg(0,
                          "seed %" PRIu64 " round %u: durable record at LSN %" PRIu64
                          " (round %u thread %u seq %" PRIu64 ") is lost",
                          seed, round, rv->v[ri].lsn, rv->v[ri].round, rv->v[ri].thread,
                          rv->v[ri].seq);
        }
        if (ri < rv->n && rv->v[ri].lsn == rec.lsn) {
            ck_assert_uint_eq(rv->v[ri].round, rround);
            ck_assert_uint_eq(rv->v[ri].thread, rthread);
            ck_assert_uint_eq(rv->v[ri].seq, rseq);
            ri++;
        }
        prev = rec.lsn;
        nrec++;
    }
    ck_assert_msg(rc == 0, "%s", wal_reader_error(r));
    ck_assert_msg(ri == rv->n,
                  "seed %" PRIu64 " round %u: %zu durable records lost at the end (first at LSN "
                  "%" PRIu64 ")",
                  seed, round, rv->n - ri, rv->v[ri].lsn);
    wal_reader_close(r);
    wal_close(w);
}

START_TEST(test_crash_kill_loop)
{
    const char *env = getenv("WAL_CRASH_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    srandom((unsigned)seed);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", tw_dir("crash"));
    report_vec rv = {0};
    int torn = 0;
    log_set_level(LOG_LVL_ERROR);

    for (uint32_t round = 0; round < ROUNDS; round++) {
        char spec[128];
        const char *sp = NULL;
        if (round % 4 == 3) {
            snprintf(spec, sizeof(spec), "wal-write=torn@%ld", 2 + random() % 60);
            sp = spec;
        } else if (round % 4 == 1) {
            snprintf(spec, sizeof(spec), "wal-fsync=sleep:%ld", 1 + random() % 3);
            sp = spec;
        }
        unsigned delay = 20 + (unsigned)(random() % 80);
        size_t before = rv.n;
        int st = crash_round(dir, round, sp, delay, &rv);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "seed %" PRIu64 " round %u: child status %d", seed, round, st);
        if (sp && strstr(sp, "torn") && rv.n - before < 500)
            crash_verify(dir, &rv, seed, round, &torn);
    }
    ck_assert_uint_gt(rv.n, 1000);
    /* The torn-write rounds did cut a write in the middle. */
    ck_assert_int_gt(torn, 0);
    fprintf(stderr,
            "crash test: %d rounds, %d torn tails recovered, %zu durable records verified, "
            "seed %" PRIu64 "\n",
            ROUNDS, torn, rv.n, seed);
    free(rv.v);
}
END_TEST

int
main(void)
{
    log_init("test_wal_crash");
    Suite *s = suite_create("wal_crash");
    TCase *tc = tw_tcase("crash", 180);
    tcase_add_test(tc, test_crash_kill_loop);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
