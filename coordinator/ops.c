/*
 * ops.c — the coordinator's /metrics and health endpoints.
 *
 * The numbers are counted where things happen (txn.c, resolver.c, the WAL's
 * writer) into co->stats and the log's histograms; this module only reads
 * them, and the state the other modules keep anyway (links, the pending
 * commits, replication), when a scrape asks.  So a scrape costs a walk of
 * the links and of the pending commits — never of the transaction table —
 * and counting costs an increment.
 *
 * Readiness (/ready): the commit log is open, and either this is a primary
 * accepting clients (its listener open, not shutting down, and with [ha]
 * allowed to serve), or a standby streaming from its primary.  /primary
 * wants a ready primary, /standby a standby (docs/operations.md).
 */
#include "ops.h"

#include "clog.h"
#include "ha.h"
#include "plink.h"
#include "resolver.h"
#include "slotq.h"
#include "walrecv.h"
#include "walsend.h"

#include "clock.h"
#include "httpd.h"
#include "log.h"
#include "wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ops {
    httpd *http;
};

static const char *const role_names[] = {
    [COORD_PRIMARY] = "primary",
    [COORD_STANDBY] = "standby",
    [COORD_PROMOTING] = "promoting",
    [COORD_STARTING] = "starting",
};
static const char *const outcome_names[CO_NOUTCOMES] = {"committed", "aborted", "unknown",
                                                        "heuristic"};
static const char *const kind_names[CK_NKINDS] = {"oneshot", "interactive", "one_phase",
                                                  "read_only"};
static const char *const action_names[CR_NACTIONS] = {"commit", "rollback", "list"};

static void
write_transactions(coord *co, struct evbuffer *out)
{
    metrics_head(out, "dtx_transactions_total", "counter",
                 "Transactions ended, by the outcome told to the client and by kind.");
    for (int o = 0; o < CO_NOUTCOMES; o++)
        for (int k = 0; k < CK_NKINDS; k++) {
            char lab[80];
            snprintf(lab, sizeof(lab), "outcome=\"%s\",kind=\"%s\"", outcome_names[o],
                     kind_names[k]);
            metrics_u64(out, "dtx_transactions_total", lab, co->stats.txns[o][k]);
        }
    metrics_one(out, "dtx_heuristic_outcomes_total", "counter",
                "Transactions found to have a heuristic outcome (phase two or the resolver).",
                (double)co->n_heuristic);
    metrics_one(out, "dtx_transactions_open", "gauge",
                "Transactions in the table: open, deciding or finishing.", (double)co->ntxn);
    metrics_one(out, "dtx_clients", "gauge", "Authenticated client connections.",
                (double)co->nclients);
    if (co->slots) {
        metrics_one(out, "dtx_transactions_waiting_for_slots", "gauge",
                    "Transactions whose PREPARE round waits for prepared-transaction slots.",
                    (double)slotq_waiting(co->slots));
        metrics_one(out, "dtx_slot_waits_total", "counter",
                    "PREPARE rounds that had to wait for prepared-transaction slots.",
                    (double)slotq_waits_total(co->slots));
    }
    metrics_head(out, "dtx_commit_duration_seconds", "histogram",
                 "From a client's COMMIT or ONESHOT to its outcome.");
    metrics_hist_write(out, "dtx_commit_duration_seconds", NULL, &co->stats.commit_latency);
    metrics_head(out, "dtx_prepare_round_duration_seconds", "histogram",
                 "From the first PREPARE sent to the last vote in.");
    metrics_hist_write(out, "dtx_prepare_round_duration_seconds", NULL, &co->stats.prepare_round);
    metrics_head(out, "dtx_decision_durable_wait_seconds", "histogram",
                 "From the COMMIT record appended to durable (and acknowledged by a "
                 "synchronous standby).");
    metrics_hist_write(out, "dtx_decision_durable_wait_seconds", NULL, &co->stats.durable_wait);
}

/* A gauge per participant, labelled with its name: get(co, i) of link i. */
static void
per_participant(coord *co, struct evbuffer *out, const char *name, const char *help,
                uint64_t (*get)(coord *co, int i))
{
    char lab[PART_NAME_MAX + 32];
    metrics_head(out, name, "gauge", help);
    for (int i = 0; i < co->nlinks; i++) {
        snprintf(lab, sizeof(lab), "participant=\"%s\"", plink_name(co->links[i]));
        metrics_u64(out, name, lab, get(co, i));
    }
}

static uint64_t
link_up(coord *co, int i)
{
    return plink_ready(co->links[i]);
}

static uint64_t
link_inflight(coord *co, int i)
{
    return plink_inflight(co->links[i]);
}

static uint64_t
slots_budget(coord *co, int i)
{
    return (uint64_t)slotq_budget(co->slots, i);
}

static uint64_t
slots_used(coord *co, int i)
{
    return (uint64_t)slotq_used(co->slots, i);
}

static void
write_participants(coord *co, struct evbuffer *out)
{
    uint64_t now = coord_wall_ms(co);
    int n = co->nlinks;
    uint32_t *indoubt = calloc((size_t)n + 1, sizeof(uint32_t));
    uint64_t *oldest = calloc((size_t)n + 1, sizeof(uint64_t));
    if (indoubt == NULL || oldest == NULL)
        goto out;
    /* decided and not yet acknowledged: the pending commits' branches */
    for (clog_pending *p = co->log ? clog_pending_first(co->log) : NULL; p;
         p = clog_pending_next(p)) {
        for (int b = 0; b < clog_pending_nbranches(p); b++) {
            const clog_branch *br = clog_pending_branch(p, b);
            if (br->result != BRANCH_PENDING)
                continue;
            for (int i = 0; i < n; i++) {
                if (strcmp(plink_name(co->links[i]), br->participant) != 0)
                    continue;
                indoubt[i]++;
                uint64_t ms = clog_pending_commit_ms(p);
                if (ms && (oldest[i] == 0 || ms < oldest[i]))
                    oldest[i] = ms;
            }
        }
    }
    /* undecided: what the last listing found to roll back */
    for (int i = 0; i < n; i++) {
        uint32_t k;
        uint64_t ms;
        if (resolver_orphans(co, i, &k, &ms) && k) {
            indoubt[i] += k;
            if (ms && (oldest[i] == 0 || ms < oldest[i]))
                oldest[i] = ms;
        }
    }
    per_participant(co, out, "dtx_participant_up",
                    "1 when the link to the participant is ready (TLS and HELLO done).", link_up);
    per_participant(co, out, "dtx_participant_requests_in_flight",
                    "Requests sent to the participant and not yet answered.", link_inflight);
    if (co->slots) {
        per_participant(co, out, "dtx_participant_prepare_slots",
                        "Branches of this coordinator that may be prepared at once on the "
                        "participant, as it said when the link came up (0: not known, no limit).",
                        slots_budget);
        per_participant(co, out, "dtx_participant_prepare_slots_used",
                        "Of those, the ones held now by transactions preparing, deciding or "
                        "finishing.",
                        slots_used);
    }
    char lab[PART_NAME_MAX + 32];
    metrics_head(out, "dtx_participant_branches_in_doubt", "gauge",
                 "Prepared branches waiting for the resolver: decided commits not yet "
                 "acknowledged, and undecided ones the last listing found.");
    for (int i = 0; i < n; i++) {
        snprintf(lab, sizeof(lab), "participant=\"%s\"", plink_name(co->links[i]));
        metrics_u64(out, "dtx_participant_branches_in_doubt", lab, indoubt[i]);
    }
    metrics_head(out, "dtx_participant_oldest_in_doubt_seconds", "gauge",
                 "Age of the oldest branch in doubt (0: none).");
    for (int i = 0; i < n; i++) {
        snprintf(lab, sizeof(lab), "participant=\"%s\"", plink_name(co->links[i]));
        double age = oldest[i] && now > oldest[i] ? (double)(now - oldest[i]) / 1000.0 : 0.0;
        metrics_f64(out, "dtx_participant_oldest_in_doubt_seconds", lab, age);
    }
out:
    free(indoubt);
    free(oldest);
}

static void
write_log(coord *co, struct evbuffer *out)
{
    metrics_head(out, "dtx_resolver_actions_total", "counter",
                 "Requests the resolver sent: COMMIT PREPARED of decided branches, ROLLBACK "
                 "PREPARED of orphaned ones, listings.");
    for (int a = 0; a < CR_NACTIONS; a++) {
        char lab[40];
        snprintf(lab, sizeof(lab), "action=\"%s\"", action_names[a]);
        metrics_u64(out, "dtx_resolver_actions_total", lab, co->stats.resolver[a]);
    }
    if (co->log == NULL)
        return;
    uint64_t seg = clog_segment_size(co->log);
    uint64_t first = clog_oldest_lsn(co->log) / seg, last = clog_end_lsn(co->log) / seg;
    metrics_one(out, "dtx_wal_size_bytes", "gauge", "Bytes of commit-log segments kept.",
                (double)((last - first + 1) * seg));
    metrics_one(out, "dtx_wal_checkpoint_age_seconds", "gauge",
                "Time since the last checkpoint of the commit log ended.",
                (double)clog_checkpoint_age_ms(co->log) / 1000.0);
    const metrics_hist *fsync, *records;
    wal_get_hists(clog_wal(co->log), &fsync, &records);
    metrics_head(out, "dtx_wal_fsync_duration_seconds", "histogram",
                 "Time of each fdatasync of the commit log.");
    metrics_hist_write(out, "dtx_wal_fsync_duration_seconds", NULL, fsync);
    metrics_head(out, "dtx_wal_records_per_flush", "histogram",
                 "Records made durable by one flush (group commit).");
    metrics_hist_write(out, "dtx_wal_records_per_flush", NULL, records);
}

static void
write_role(coord *co, struct evbuffer *out)
{
    metrics_head(out, "dtx_role", "gauge", "1 for this coordinator's current role.");
    for (size_t r = 0; r < sizeof(role_names) / sizeof(role_names[0]); r++) {
        char lab[40];
        snprintf(lab, sizeof(lab), "role=\"%s\"", role_names[r]);
        metrics_u64(out, "dtx_role", lab, co->role == (coord_role)r);
    }
    metrics_one(out, "dtx_epoch", "gauge", "This coordinator's epoch.", (double)co->epoch);
    proto_replication r = {0};
    if (co->role == COORD_PRIMARY || co->role == COORD_STARTING)
        walsend_describe(co, &r);
    else
        walrecv_describe(co, &r);
    if (r.peer == NULL || r.peer[0] == '\0')
        return; /* no standby (or primary) yet: nothing to say */
    char lab[600], v[512];
    snprintf(lab, sizeof(lab), "peer=\"%s\"", metrics_label_value(r.peer, v, sizeof(v)));
    bool streaming = r.state && (strncmp(r.state, "streaming", 9) == 0 ||
                                 strncmp(r.state, "catching up", 11) == 0);
    metrics_head(out, "dtx_replication_connected", "gauge",
                 "1 while the standby streams (on a primary) or this standby streams.");
    metrics_u64(out, "dtx_replication_connected", lab, streaming);
    metrics_head(out, "dtx_replication_synchronous", "gauge",
                 "1 while commits wait for the standby's acknowledgement.");
    metrics_u64(out, "dtx_replication_synchronous", lab, r.synchronous);
    metrics_head(out, "dtx_replication_lag_bytes", "gauge",
                 "Bytes of the log the standby has not made durable yet.");
    metrics_u64(out, "dtx_replication_lag_bytes", lab, r.lag_bytes);
    metrics_head(out, "dtx_replication_lag_seconds", "gauge",
                 "How far behind the standby is, in time.");
    metrics_f64(out, "dtx_replication_lag_seconds", lab, (double)r.lag_ms / 1000.0);
}

void
ops_write_metrics(coord *co, struct evbuffer *out)
{
    write_transactions(co, out);
    write_participants(co, out);
    write_log(co, out);
    write_role(co, out);
}

static void
metrics_cb(void *arg, struct evbuffer *out)
{
    ops_write_metrics(arg, out);
}

static void
status_cb(void *arg, httpd_status *st)
{
    coord *co = arg;
    st->role = role_names[co->role];
    st->epoch = co->epoch;
    if (co->shutting_down)
        snprintf(st->reason, sizeof(st->reason), "shutting down");
    else if (co->log == NULL)
        snprintf(st->reason, sizeof(st->reason), "the commit log is not open");
    else if (co->role == COORD_STANDBY && !walrecv_streaming(co))
        snprintf(st->reason, sizeof(st->reason), "not streaming from the primary");
    else if (co->role == COORD_PROMOTING)
        snprintf(st->reason, sizeof(st->reason), "being promoted");
    else if (co->role == COORD_STARTING)
        snprintf(st->reason, sizeof(st->reason), "waiting for its synchronous standby");
    else if (co->role == COORD_PRIMARY && co->listener == NULL)
        snprintf(st->reason, sizeof(st->reason), "not accepting clients yet");
    else if (co->role == COORD_PRIMARY && !ha_may_serve(co))
        snprintf(st->reason, sizeof(st->reason), "the leader lease is over");
    else
        st->ready = true;
}

static const httpd_ops coord_httpd_ops = {.metrics = metrics_cb, .status = status_cb};

void
ops_start(coord *co)
{
    if (co->conf.http_listen == NULL || co->conf.http_listen[0] == '\0')
        return;
    char err[512];
    bool tls = co->conf.http_tls;
    co->ops = calloc(1, sizeof(*co->ops));
    if (co->ops == NULL)
        log_fatal("out of memory");
    co->ops->http =
        httpd_start(co->base, co->conf.http_listen, tls ? co->conf.tls_cert : NULL,
                    tls ? co->conf.tls_key : NULL, &coord_httpd_ops, co, err, sizeof(err));
    if (co->ops->http == NULL)
        log_fatal("%s", err);
    log_log("serving metrics and health on %s://%s", co->conf.http_tls ? "https" : "http",
            co->conf.http_listen);
}

void
ops_reloaded(coord *co)
{
    char err[512];
    if (co->ops &&
        !httpd_reload_tls(co->ops->http, co->conf.tls_cert, co->conf.tls_key, err, sizeof(err)))
        log_warn("http_listen keeps its TLS certificate: %s", err);
}

void
ops_stop(coord *co)
{
    if (co->ops == NULL)
        return;
    httpd_free(co->ops->http);
    free(co->ops);
    co->ops = NULL;
}
