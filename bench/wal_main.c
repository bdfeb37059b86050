/*
 * wal_main.c — bench-wal: group commit throughput and latency of the WAL.
 *
 * NOTES
 *  For each appender count N (default 1, 4, 16, 64, 256) the benchmark runs
 *  two measurements on the same disk, one after the other:
 *
 *   baseline  one thread appends a record to a preallocated, zero-filled file
 *             with pwrite and makes it durable itself with fdatasync, record
 *             after record: what a log without group commit achieves;
 *   wal       N threads, each in a closed loop: wal_append a record, then
 *             wal_wait_durable it, then the next one.
 *
 *  Records are --size bytes of payload (default 100); the baseline writes the
 *  same bytes the WAL would (header and padding included).  After a warm-up,
 *  completions are counted for --seconds; the latency of each is the time
 *  from wal_append to the return of wal_wait_durable.  One JSON line per N:
 *
 *   {"appenders":N,"record_size":100,"seconds":S,"records_per_s":R,
 *    "fsyncs_per_s":F,"records_per_fsync":R/F,"p50_us":..,"p99_us":..,
 *    "baseline_records_per_s":B,"baseline_cpu_us":C}
 *
 *  C is the CPU time (user + system) the baseline spends per record: what a
 *  pwrite and an fdatasync cost this machine's kernel, whoever calls them.
 *
 *  Run it through bench/run-bench-wal.sh (make bench-wal), which gives it a
 *  temporary directory on a real disk and removes it afterwards.
 */
#include "wal.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_APPENDERS 1024

typedef struct bench_thread {
    wal_t *w;
    uint32_t size;
    uint64_t *lat_ns;
    size_t nlat, cap;
    pthread_t th;
} bench_thread;

static _Atomic int bench_phase; /* 0 warm-up, 1 measuring, 2 stop */

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *
bench_appender(void *arg)
{
    bench_thread *t = arg;
    uint8_t payload[65536];
    memset(payload, 0xA5, t->size);
    int phase;
    while ((phase = atomic_load(&bench_phase)) != 2) {
        uint64_t t0 = now_ns();
        uint64_t lsn = wal_append(t->w, 1, payload, t->size);
        if (lsn == 0)
            abort();
        wal_wait_durable(t->w, lsn);
        if (phase == 1 && atomic_load(&bench_phase) == 1) {
            if (t->nlat == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 4096;
                t->lat_ns = realloc(t->lat_ns, t->cap * sizeof(uint64_t));
                if (t->lat_ns == NULL)
                    abort();
            }
            t->lat_ns[t->nlat++] = now_ns() - t0;
        }
    }
    return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double
thread_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One thread, pwrite + fdatasync per record, on a preallocated file; the
 * rate, and the CPU time (user + system) per record in *cpu_us. */
static double
bench_baseline(const char *dir, uint32_t size, double seconds, double *cpu_us)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/baseline.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "bench-wal: could not create \"%s\": %s\n", path, strerror(errno));
        exit(1);
    }
    const size_t file_size = 64u << 20;
    uint8_t *zeros = calloc(1, 1 << 20);
    for (size_t off = 0; off < file_size; off += 1 << 20)
        if (pwrite(fd, zeros, 1 << 20, (off_t)off) != 1 << 20) {
            fprintf(stderr, "bench-wal: could not write \"%s\": %s\n", path, strerror(errno));
            exit(1);
        }
    free(zeros);
    if (fsync(fd) != 0)
        exit(1);
    /* The bytes the WAL writes for such a record: header, payload, padding. */
    size_t rec = (24 + size + 7) & ~(size_t)7;
    uint8_t *buf = malloc(rec);
    memset(buf, 0xA5, rec);
    uint64_t n = 0, off = 0;
    double c0 = thread_cpu_us();
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t1;
    while ((t1 = now_ns()) < end) {
        if (off + rec > file_size)
            off = 0;
        if (pwrite(fd, buf, rec, (off_t)off) != (ssize_t)rec || fdatasync(fd) != 0) {
            fprintf(stderr, "bench-wal: baseline write failed: %s\n", strerror(errno));
            exit(1);
        }
        off += rec;
        n++;
    }
    *cpu_us = n ? (thread_cpu_us() - c0) / (double)n : 0;
    free(buf);
    close(fd);
    unlink(path);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

static void
bench_rm_dir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-wal: could not remove \"%s\"\n", dir);
}

static void
bench_run(const char *dir, int appenders, uint32_t size, double seconds, double warmup)
{
    double baseline_cpu;
    double baseline = bench_baseline(dir, size, seconds, &baseline_cpu);

    char wdir[4096], err[1024];
    snprintf(wdir, sizeof(wdir), "%s/wal-%d", dir, appenders);
    wal_t *w = wal_open(wdir, NULL, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "bench-wal: %s\n", err);
        exit(1);
    }
    bench_thread *ts = calloc((size_t)appenders, sizeof(*ts));
    atomic_store(&bench_phase, 0);
    for (int i = 0; i < appenders; i++) {
        ts[i].w = w;
        ts[i].size = size;
        if (pthread_create(&ts[i].th, NULL, bench_appender, &ts[i]) != 0) {
            fprintf(stderr, "bench-wal: could not start thread %d\n", i);
            exit(1);
        }
    }
    sleep_s(warmup);
    wal_stats s0, s1;
    wal_get_stats(w, &s0);
    uint64_t t0 = now_ns();
    atomic_store(&bench_phase, 1);
    sleep_s(seconds);
    atomic_store(&bench_phase, 2);
    uint64_t t1 = now_ns();
    wal_get_stats(w, &s1);
    for (int i = 0; i < appenders; i++)
        pthread_join(ts[i].th, NULL);
    wal_close(w);
    bench_rm_dir(wdir);

    size_t total = 0;
    for (int i = 0; i < appenders; i++)
        total += ts[i].nlat;
    uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t));
    size_t k = 0;
    for (int i = 0; i < appenders; i++) {
        memcpy(all + k, ts[i].lat_ns, ts[i].nlat * sizeof(uint64_t));
        k += ts[i].nlat;
        free(ts[i].lat_ns);
    }
    free(ts);
    qsort(all, total, sizeof(uint64_t), cmp_u64);
    double el = (double)(t1 - t0) / 1e9;
    double rps = (double)total / el;
    double fps = (double)(s1.fsyncs - s0.fsyncs) / el;
    double p50 = total ? (double)all[total / 2] / 1e3 : 0;
    double p99 = total ? (double)all[total * 99 / 100] / 1e3 : 0;
    free(all);
    printf("{\"appenders\":%d,\"record_size\":%u,\"seconds\":%.1f,\"records_per_s\":%.0f,"
           "\"fsyncs_per_s\":%.0f,\"records_per_fsync\":%.2f,\"p50_us\":%.0f,\"p99_us\":%.0f,"
           "\"baseline_records_per_s\":%.0f,\"baseline_cpu_us\":%.1f}\n",
           appenders, size, seconds, rps, fps, fps > 0 ? rps / fps : 0, p50, p99, baseline,
           baseline_cpu);
    fflush(stdout);
}

static void
usage(FILE *out)
{
    fprintf(out,
            "bench-wal measures WAL group commit against one fdatasync per record.\n"
            "\n"
            "Usage:\n"
            "  bench-wal --dir DIR [OPTION]...\n"
            "\n"
            "Options:\n"
            "  -d, --dir=DIR          scratch directory on the disk to measure (required)\n"
            "  -a, --appenders=LIST   comma-separated appender counts (default 1,4,16,64,256)\n"
            "  -s, --seconds=S        measured seconds per run (default 2)\n"
            "  -z, --size=BYTES       record payload size (default 100)\n"
            "  -h, --help             show this help, then exit\n");
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},     {"appenders", required_argument, NULL, 'a'},
        {"seconds", required_argument, NULL, 's'}, {"size", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *list = "1,4,16,64,256";
    double seconds = 2.0;
    long size = 100;
    int c;

    log_init("bench-wal");
    while ((c = getopt_long(argc, argv, "d:a:s:z:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'a':
            list = optarg;
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'z':
            size = atol(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || seconds <= 0 || size < 0 || size > 65000) {
        usage(stderr);
        return 2;
    }
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int n = atoi(tok);
        if (n < 1 || n > BENCH_MAX_APPENDERS) {
            fprintf(stderr, "bench-wal: invalid appender count \"%s\"\n", tok);
            return 2;
        }
        bench_run(dir, n, (uint32_t)size, seconds, 0.5);
    }
    free(copy);
    return 0;
}
