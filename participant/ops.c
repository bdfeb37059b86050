/*
 * ops.c — the participant's /metrics and health endpoints.
 *
 * Everything is read when a scrape asks: the pool and the slots keep their
 * counts anyway, pgpool.c times statements and counts their errors by
 * SQLSTATE class, and the fence table is in memory.
 *
 * Readiness (/ready): PostgreSQL is reachable — at least one connection of
 * the pool is up — and the participant is not shutting down.  A
 * participant has no primary or standby role: /primary and /standby answer
 * 503 (docs/operations.md).
 */
#include "ops.h"

#include "fence.h"

#include "httpd.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    httpd *http;
    const part_conf *conf;
    pg_pool *pool;
    slots *slots;
    bool draining;
} ops;

static void
fence_metric(void *arg, const char *name, uint64_t epoch)
{
    struct evbuffer *out = arg;
    char lab[300], v[200];
    snprintf(lab, sizeof(lab), "coordinator=\"%s\"", metrics_label_value(name, v, sizeof(v)));
    metrics_u64(out, "dtx_fence_epoch", lab, epoch);
}

static void
metrics_cb(void *arg, struct evbuffer *out)
{
    (void)arg;
    metrics_one(out, "dtx_pool_size", "gauge", "PostgreSQL connections the pool keeps.",
                pool_size(ops.pool));
    metrics_one(out, "dtx_pool_connections_up", "gauge",
                "PostgreSQL connections of the pool that are connected and set up.",
                pool_up_count(ops.pool));
    metrics_one(out, "dtx_pool_in_use", "gauge", "Pool connections leased to work.",
                pool_up_count(ops.pool) - pool_idle_count(ops.pool));
    metrics_one(out, "dtx_pool_waiting", "gauge", "Requests waiting for a pool connection.",
                pool_waiting_count(ops.pool));
    metrics_one(out, "dtx_prepared_slots_used", "gauge",
                "Prepared transactions of the server, counted against its maximum.",
                slots_in_use(ops.slots));
    metrics_one(out, "dtx_prepared_slots_max", "gauge", "PostgreSQL's max_prepared_transactions.",
                slots_max(ops.slots));
    metrics_one(out, "dtx_postgres_up", "gauge",
                "1 when at least one pool connection to PostgreSQL is up.",
                pool_up_count(ops.pool) > 0);
    const pool_stats *st = pool_get_stats(ops.pool);
    metrics_head(out, "dtx_statement_duration_seconds", "histogram",
                 "From a statement sent to PostgreSQL to its result.");
    metrics_hist_write(out, "dtx_statement_duration_seconds", NULL, &st->stmt);
    metrics_head(out, "dtx_statement_errors_total", "counter",
                 "Statements that failed, by SQLSTATE class.");
    for (int i = 0; i < st->nerrors; i++) {
        char lab[40];
        snprintf(lab, sizeof(lab), "class=\"%s\"", st->errors[i].cls);
        metrics_u64(out, "dtx_statement_errors_total", lab, st->errors[i].n);
    }
    metrics_head(out, "dtx_fence_epoch", "gauge",
                 "The epoch each coordinator is fenced at (lower epochs are refused).");
    fence_foreach(fence_metric, out);
}

static void
status_cb(void *arg, httpd_status *st)
{
    (void)arg;
    st->role = "participant";
    if (ops.draining)
        snprintf(st->reason, sizeof(st->reason), "shutting down");
    else if (pool_up_count(ops.pool) == 0)
        snprintf(st->reason, sizeof(st->reason), "PostgreSQL is not reachable");
    else
        st->ready = true;
}

static const httpd_ops part_httpd_ops = {.metrics = metrics_cb, .status = status_cb};

void
ops_start(struct event_base *base, const part_conf *conf, pg_pool *pool, slots *sl)
{
    ops.conf = conf;
    ops.pool = pool;
    ops.slots = sl;
    if (conf->http_listen == NULL || conf->http_listen[0] == '\0')
        return;
    char err[512];
    bool tls = conf->http_tls;
    ops.http = httpd_start(base, conf->http_listen, tls ? conf->tls_cert : NULL,
                           tls ? conf->tls_key : NULL, &part_httpd_ops, NULL, err, sizeof(err));
    if (ops.http == NULL)
        log_fatal("%s", err);
    log_log("serving metrics and health on %s://%s", conf->http_tls ? "https" : "http",
            conf->http_listen);
}

void
ops_reloaded(void)
{
    char err[512];
    if (!httpd_reload_tls(ops.http, ops.conf->tls_cert, ops.conf->tls_key, err, sizeof(err)))
        log_warn("http_listen keeps its TLS certificate: %s", err);
}

void
ops_draining(void)
{
    ops.draining = true;
}

void
ops_stop(void)
{
    httpd_free(ops.http);
    ops.http = NULL;
}
