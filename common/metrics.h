/*
 * metrics.h — counting for /metrics, and its Prometheus text format.
 *
 * Counters are plain uint64_t fields of the daemon's own structures; what
 * changes from more than one thread (the WAL writer's fsync times) goes
 * through metrics_add() and the histograms, whose updates are relaxed
 * atomic additions: counting takes no lock and costs a few instructions.
 * Nothing is formatted until a scrape asks for it.
 *
 * A histogram keeps its observations in integer units (microseconds for the
 * _seconds histograms, plain numbers for counts) and writes them divided by
 * its scale:
 *
 *     static metrics_hist commit_latency = METRICS_HIST_SECONDS;
 *     metrics_hist_observe(&commit_latency, elapsed_us);
 *     ...
 *     metrics_head(out, "dtx_commit_duration_seconds", "histogram",
 *                  "Time from a client's COMMIT to its outcome.");
 *     metrics_hist_write(out, "dtx_commit_duration_seconds", NULL, &commit_latency);
 *
 * The exposition is the text format 0.0.4 (prometheus.io, "Exposition
 * formats"): HELP and TYPE once per family, then its samples.  Label text is
 * given pre-formatted ("participant=\"p1\""); every label value dtx writes
 * is a name it validated (participants, coordinators) or a fixed word, and
 * metrics_label_value escapes anything else.
 */
#ifndef DTX_METRICS_H
#define DTX_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define METRICS_BUCKETS_MAX 16

typedef struct metrics_hist {
    const uint64_t *bounds;                   /* upper bounds, ascending, in observation units */
    int nbounds;                              /* at most METRICS_BUCKETS_MAX */
    uint64_t scale;                           /* units per written unit: 1000000 for µs -> s */
    uint64_t counts[METRICS_BUCKETS_MAX + 1]; /* per bucket, not cumulative; last: +Inf */
    uint64_t sum;                             /* in observation units */
} metrics_hist;

/* latencies, 0.5 ms to 10 s, observed in microseconds */
extern const uint64_t metrics_seconds_bounds[14];
/* sizes and counts: 1, 2, 4, ... 1024 */
extern const uint64_t metrics_count_bounds[11];

#define METRICS_HIST_SECONDS                                                                       \
    {                                                                                              \
        .bounds = metrics_seconds_bounds, .nbounds = 14, .scale = 1000000                          \
    }
#define METRICS_HIST_COUNT                                                                         \
    {                                                                                              \
        .bounds = metrics_count_bounds, .nbounds = 11, .scale = 1                                  \
    }

/* Add one observation (any thread). */
void metrics_hist_observe(metrics_hist *h, uint64_t v);
/* *counter += n (any thread) */
static inline void
metrics_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}
static inline uint64_t
metrics_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* "# HELP name help\n# TYPE name type\n" */
void metrics_head(struct evbuffer *out, const char *name, const char *type, const char *help);
/* "name{labels} v\n"; labels NULL or "" for none */
void metrics_u64(struct evbuffer *out, const char *name, const char *labels, uint64_t v);
void metrics_f64(struct evbuffer *out, const char *name, const char *labels, double v);
/* A family with one sample and no labels, in one call. */
void metrics_one(struct evbuffer *out, const char *name, const char *type, const char *help,
                 double v);
/* name_bucket{labels,le="..."} (cumulative), name_sum, name_count */
void metrics_hist_write(struct evbuffer *out, const char *name, const char *labels,
                        const metrics_hist *h);
/* v with \, " and newline escaped, into out (cut to outlen); returns out */
char *metrics_label_value(const char *v, char *out, size_t outlen);

#endif
