/*
 * metrics.c — see metrics.h.
 *
 * NOTES
 *  A histogram's buckets are counted apart and summed into the cumulative
 *  `le` series only when written, so that an observation touches one
 *  bucket counter, the sum and nothing else.  The count is the sum of the
 *  buckets, read in one pass: a scrape racing an observation may see the
 *  bucket without the sum's share of it, which Prometheus tolerates (rates
 *  over scrapes stay right).
 */
#include "metrics.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const uint64_t metrics_seconds_bounds[14] = {500,     1000,    2500,    5000,    10000,
                                             25000,   50000,   100000,  250000,  500000,
                                             1000000, 2500000, 5000000, 10000000};
const uint64_t metrics_count_bounds[11] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

void
metrics_hist_observe(metrics_hist *h, uint64_t v)
{
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    __atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum, v, __ATOMIC_RELAXED);
}

void
metrics_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
metrics_u64(struct evbuffer *out, const char *name, const char *labels, uint64_t v)
{
    if (labels && *labels)
        evbuffer_add_printf(out, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
    else
        evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

void
metrics_f64(struct evbuffer *out, const char *name, const char *labels, double v)
{
    char num[64];
    if (isnan(v))
        snprintf(num, sizeof(num), "NaN");
    else if (isinf(v))
        snprintf(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(num, sizeof(num), "%.9g", v);
    if (labels && *labels)
        evbuffer_add_printf(out, "%s{%s} %s\n", name, labels, num);
    else
        evbuffer_add_printf(out, "%s %s\n", name, num);
}

void
metrics_one(struct evbuffer *out, const char *name, const char *type, const char *help, double v)
{
    metrics_head(out, name, type, help);
    metrics_f64(out, name, NULL, v);
}

/* a bound in written units: 0.0005, 2.5, 1024 */
static void
bound_text(char *out, size_t len, uint64_t b, uint64_t scale)
{
    snprintf(out, len, "%.9g", (double)b / (double)scale);
}

void
metrics_hist_write(struct evbuffer *out, const char *name, const char *labels,
                   const metrics_hist *h)
{
    const char *sep = labels && *labels ? "," : "";
    const char *lab = labels ? labels : "";
    uint64_t cum = 0;
    char b[32];
    for (int i = 0; i <= h->nbounds; i++) {
        cum += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
        if (i < h->nbounds)
            bound_text(b, sizeof(b), h->bounds[i], h->scale);
        else
            snprintf(b, sizeof(b), "+Inf");
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, lab, sep, b,
                            (unsigned long long)cum);
    }
    char lbl[512];
    snprintf(lbl, sizeof(lbl), "%s", lab);
    char sumname[160], countname[160];
    snprintf(sumname, sizeof(sumname), "%s_sum", name);
    snprintf(countname, sizeof(countname), "%s_count", name);
    metrics_f64(out, sumname, lbl,
                (double)__atomic_load_n(&h->sum, __ATOMIC_RELAXED) / (double)h->scale);
    metrics_u64(out, countname, lbl, cum);
}

char *
metrics_label_value(const char *v, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *v && o + 3 < outlen; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
    return out;
}
