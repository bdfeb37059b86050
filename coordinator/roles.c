/*
 * roles.c — becoming primary, running as a standby, and promotion.
 *
 * Primary at start-up (docs/design.md sections 5 and 6):
 *   1. when `standby` names this primary's standby, ask it (REPLICATION, as
 *      an admin client) whether it has been promoted: if it is a primary,
 *      or follows a later epoch, refuse to start — two primaries of one name
 *      would each hand out gids.  An unreachable standby is logged and the
 *      start goes on (docs/failover.md says what risk remains);
 *   2. log EPOCH(last + 1) and wait until it is durable: no gid of the new
 *      epoch exists before that, so no gid is ever reused;
 *   3. listen, connect to the participants (their HELLO carries the new
 *      epoch: each records it durably before answering), start the resolver
 *      and the checkpoints, stream the log to a standby that connects.
 *
 * Standby: listen (STATUS, INDOUBT, REPLICATION and PROMOTE only), stream
 * the log from the primary (walrecv.c).  It never talks to participants.
 *
 * Promotion (PROMOTE from an admin client; COORD_STANDBY -> PROMOTING ->
 * PRIMARY):
 *   1. refuse unless the standby is sure it holds every decision its
 *      primary acknowledged (walrecv_sure), or --force;
 *   2. stop streaming, wait until everything received is durable, apply it;
 *   3. log EPOCH(last + 1), durable before anything else happens — from now
 *      on this log is a new branch of the stream;
 *   4. fence: connect to every participant with the new epoch; each records
 *      it durably before it answers, and refuses the old epoch from then on.
 *      Wait until every participant has answered, or fence_timeout;
 *   5. accept transactions, run the same background recovery as after a
 *      crash (the resolver finishes the pending commits and rolls back
 *      branches without a COMMIT record), checkpoint, and stream to a
 *      standby of our own once one connects.
 */
#include "roles.h"

#include "client.h"
#include "clog.h"
#include "ha.h"
#include "plink.h"
#include "resolver.h"
#include "walrecv.h"
#include "walsend.h"

#include "clock.h"
#include "conn.h"
#include "config.h"
#include "log.h"
#include "sdnotify.h"
#include "proto.h"
#include "proto_repl.h"

#include <event2/listener.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FENCE_TICK_MS  50
#define ASK_TIMEOUT_MS 3000

/* ---- listener ------------------------------------------------------------ */

/* Every connection is taken (at most CONN_ACCEPTS_PER_TURN per loop
 * turn): max_clients is checked at HELLO, against authenticated clients
 * only, and those still authenticating are bounded by conn.c's admission
 * (client.c's notes). */
static void
accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)lst;
    (void)sa;
    (void)len;
    coord *co = arg;
    conn_admission_accepted(&co->listener);
    client_accept(co, fd);
}

static void
accept_error_cb(struct evconnlistener *lst, void *arg)
{
    (void)lst;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn("could not accept a connection: %s", evutil_socket_error_to_string(err));
}

/* Listen on listen_addr:listen_port (unless listening already); its text
 * into addr. */
static void
listen_now(coord *co, char *addr, size_t addrlen)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(addr, addrlen, strchr(co->conf.listen_addr, ':') ? "[%s]:%d" : "%s:%d",
             co->conf.listen_addr, co->conf.listen_port);
    if (co->listener)
        return;
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sl) != 0)
        log_fatal("invalid listen address \"%s\"", addr);
    co->listener = evconnlistener_new_bind(
        co->base, accept_cb, co, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        512, (struct sockaddr *)&ss, sl);
    if (co->listener == NULL)
        log_fatal("could not listen on %s: %m", addr);
    evconnlistener_set_error_cb(co->listener, accept_error_cb);
}

void
roles_stop_listening(coord *co)
{
    if (co->listener) {
        evconnlistener_free(co->listener);
        co->listener = NULL;
    }
}

/* Stop fast (through the signal handler, as SIGINT) and, with restart,
 * start again: main execs this program anew once everything is closed. */
static void
stop_now(coord *co, bool restart)
{
    co->restart = restart;
    kill(getpid(), SIGINT);
}

/* ---- participants' events ---------------------------------------------- */

static void
link_ready(void *arg, plink *l)
{
    resolver_link_ready(arg, l);
}

/* A participant refused our epoch: another instance of this coordinator
 * has become primary.  Whatever we have not made durable is not a
 * decision (the standby no longer acknowledges), and the participants
 * refuse our epoch: stop. */
static void
link_fenced(void *arg, plink *l, const char *message)
{
    coord *co = arg;
    if (co->shutting_down)
        return;
    log_error("this coordinator has been deposed: participant \"%s\" refused epoch %" PRIu64
              " (%s); stopping%s",
              plink_name(l), co->epoch, message,
              ha_enabled(co) ? ", then starting again to follow the leader" : "");
    stop_now(co, ha_enabled(co));
}

static const plink_events roles_plink_events = {.ready = link_ready, .fenced = link_fenced};

/* ---- primary ------------------------------------------------------------- */

/* Resolver, participants, checkpoints and the stream to a standby: what a
 * primary runs once its epoch is durable. */
static void
run_as_primary(coord *co)
{
    co->role = COORD_PRIMARY;
    resolver_start(co); /* first: it takes the links' "ready" events */
    for (int i = 0; i < co->nlinks; i++)
        plink_start(co->links[i]);
    clog_checkpoint_start(co->log);
    walsend_init(co, NULL);
}

static void
epoch_durable(void *arg)
{
    coord *co = arg;
    if (co->tearing_down)
        return; /* stopped before it was ready */
    char addr[300];
    listen_now(co, addr, sizeof(addr)); /* a STARTING primary listens already */
    run_as_primary(co);
    log_log("dtx-coordinator \"%s\" ready: epoch %llu, listening on %s, %d participant(s)",
            co->conf.name, (unsigned long long)co->epoch, addr, co->nlinks);
    char st[128];
    snprintf(st, sizeof(st), "primary, epoch %llu", (unsigned long long)co->epoch);
    sdnotify_ready(st);
}

/* Log EPOCH(last + 1) with a fresh instance; epoch_durable goes on. */
static void
log_new_epoch(coord *co)
{
    co->epoch = clog_last_epoch(co->log) + 1;
    co->instance = coord_new_instance();
    co->next_seq = 0;
    clog_begin_epoch(co->log, co->epoch, co->instance, epoch_durable, co);
}

static void
begin_epoch(coord *co)
{
    if (clog_had_sync(co->log) && co->nstandbys) {
        /* a synchronous standby may hold what this log holds and be
         * promoted: wait until it follows again (it connects to the
         * listener meanwhile) before the new EPOCH is even written — a
         * start that waits in vain must not raise the epoch — and the
         * EPOCH, like everything after, waits for its acknowledgement */
        char addr[300];
        co->role = COORD_STARTING;
        listen_now(co, addr, sizeof(addr));
        walsend_init(co, log_new_epoch);
        log_log("dtx-coordinator \"%s\" listening on %s: waiting for its synchronous standby "
                "before serving",
                co->conf.name, addr);
        return;
    }
    log_new_epoch(co);
}

/* The start-up question to the standby: "have you been promoted?" */
typedef struct ask {
    coord *co;
    conn *c;
    struct event *timer;
    bool done;
} ask;

static ask *asking; /* the start-up question under way */

static void
ask_free(ask *a)
{
    if (a->c)
        conn_close(a->c);
    event_free(a->timer);
    free(a);
    asking = NULL;
}

static void
ask_finish(ask *a, const char *refusal)
{
    if (a->done)
        return;
    a->done = true;
    coord *co = a->co;
    ask_free(a);
    if (co->tearing_down)
        return;
    if (refusal)
        log_fatal("refusing to start as primary: %s", refusal);
    begin_epoch(co);
}

static void
ask_on_open(conn *c, const char *peer, void *arg)
{
    (void)peer;
    ask *a = arg;
    wbuf w;
    wbuf_init(&w);
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = ROLE_ADMIN,
                     .name = a->co->conf.name,
                     .epoch = 0};
    if (proto_put_hello(&w, &h) && proto_put_replication(&w))
        conn_send(c, &w);
    wbuf_free(&w);
}

static void
ask_on_frame(conn *c, const frame_view *f, void *arg)
{
    (void)c;
    ask *a = arg;
    proto_replication r;
    char why[400];
    if (f->type == MSG_HELLO_OK || f->type == MSG_NEXT_GID)
        return;
    if (f->type != MSG_REPLICATION_REPLY || !proto_get_replication_reply(f, &r)) {
        log_warn("could not ask standby %s whether it was promoted: unexpected answer; "
                 "starting",
                 a->co->conf.standby_addr);
        ask_finish(a, NULL);
        return;
    }
    uint64_t last = clog_last_epoch(a->co->log);
    if (r.role == 1 || r.epoch > last) {
        snprintf(why, sizeof(why),
                 "standby %s is %s at epoch %" PRIu64 " (this coordinator's log ends at epoch "
                 "%" PRIu64 "): it has been promoted; start this coordinator as its standby "
                 "(docs/failover.md, \"Rejoining\")",
                 a->co->conf.standby_addr, r.role == 1 ? "primary" : "a standby", r.epoch, last);
        ask_finish(a, why);
        return;
    }
    log_log("standby %s is a standby at epoch %" PRIu64 ": starting as primary",
            a->co->conf.standby_addr, r.epoch);
    ask_finish(a, NULL);
}

static void
ask_on_close(conn *c, const char *reason, void *arg)
{
    (void)c;
    ask *a = arg;
    a->c = NULL;
    log_warn("could not ask standby %s whether it was promoted (%s): starting as primary; "
             "if it was, participants refuse this coordinator's older epoch",
             a->co->conf.standby_addr, reason);
    ask_finish(a, NULL);
}

static const conn_ops ask_ops = {
    .on_open = ask_on_open, .on_frame = ask_on_frame, .on_close = ask_on_close};

static void
ask_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ask *a = arg;
    log_warn("standby %s did not answer within %d ms whether it was promoted: starting as "
             "primary",
             a->co->conf.standby_addr, ASK_TIMEOUT_MS);
    ask_finish(a, NULL);
}

static void
start_primary(coord *co)
{
    char host[256], err[300];
    uint16_t port;
    if (co->conf.standby_addr == NULL) {
        begin_epoch(co);
        return;
    }
    if (!config_parse_hostport(co->conf.standby_addr, 0, host, sizeof(host), &port, err,
                               sizeof(err)))
        log_fatal("standby: %s", err);
    ask *a = calloc(1, sizeof(*a));
    if (a == NULL)
        log_fatal("out of memory");
    a->co = co;
    asking = a;
    a->timer = evtimer_new(co->base, ask_timeout, a);
    struct timeval tv = {ASK_TIMEOUT_MS / 1000, (ASK_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(a->timer, &tv);
    a->c = conn_connect(co->base, co->client_ctx, host, port, host, (uint32_t)co->conf.max_frame,
                        &ask_ops, a);
    if (a->c == NULL)
        ask_finish(a, NULL);
}

/* ---- promotion ------------------------------------------------------------ */

typedef struct promotion {
    coord *co;
    struct event *tick;
    int64_t since_ms;
} promotion;

static promotion *fencing; /* a promotion waiting for its participants */

static void
promotion_free(promotion *p)
{
    event_free(p->tick);
    free(p);
    fencing = NULL;
}

static int
links_ready(const coord *co)
{
    int n = 0;
    for (int i = 0; i < co->nlinks; i++)
        if (plink_ready(co->links[i]))
            n++;
    return n;
}

/* Every participant has the new epoch, or fence_timeout has passed. */
static void
fence_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    promotion *p = arg;
    coord *co = p->co;
    int n = links_ready(co);
    int64_t waited = clock_mono_ms() - p->since_ms;
    if (!co->tearing_down && n < co->nlinks && waited < co->conf.fence_timeout_ms)
        return;
    promotion_free(p);
    if (co->tearing_down)
        return;
    char msg[300];
    snprintf(msg, sizeof(msg),
             "promoted: coordinator \"%s\" is primary at epoch %" PRIu64
             "; %d of %d participant(s) fenced",
             co->conf.name, co->epoch, n, co->nlinks);
    if (n < co->nlinks)
        log_warn("promotion: %d participant(s) could not be reached within fence_timeout "
                 "(%lld ms); they are fenced when they come back, and until then a deposed "
                 "primary could still reach them",
                 co->nlinks - n, (long long)co->conf.fence_timeout_ms);
    co->role = COORD_PRIMARY;
    clog_checkpoint_start(co->log);
    walsend_init(co, NULL);
    log_log("%s; accepting transactions", msg);
    client_promote_done(co, NULL, msg);
}

static void
promoted_epoch_durable(void *arg)
{
    coord *co = arg;
    if (co->tearing_down)
        return;
    log_log("promotion: epoch %" PRIu64 " is durable; fencing %d participant(s)", co->epoch,
            co->nlinks);
    clog_note_sync(co->log, false, NULL); /* it serves alone until a standby catches up */
    resolver_start(co);
    for (int i = 0; i < co->nlinks; i++)
        plink_start(co->links[i]);
    promotion *p = calloc(1, sizeof(*p));
    if (p == NULL)
        log_fatal("out of memory");
    p->co = co;
    p->since_ms = clock_mono_ms();
    p->tick = event_new(co->base, -1, EV_PERSIST, fence_tick, p);
    struct timeval tv = {0, FENCE_TICK_MS * 1000};
    if (p->tick == NULL || event_add(p->tick, &tv) != 0)
        log_fatal("could not start the promotion's timer");
    fencing = p;
}

static void
received_durable(void *arg)
{
    coord *co = arg;
    if (co->tearing_down)
        return;
    clog_apply_received(co->log);
    log_log("promotion: the log received is durable up to %" PRIu64, clog_end_lsn(co->log));
    co->epoch = clog_last_epoch(co->log) + 1;
    if (co->won_epoch) { /* etcd's: no other instance ever holds it */
        if (co->won_epoch < co->epoch) {
            log_error("promotion: etcd gave epoch %" PRIu64 ", but this log has reached %" PRIu64
                      "; starting again",
                      co->won_epoch, co->epoch - 1);
            stop_now(co, true);
            return;
        }
        co->epoch = co->won_epoch;
    }
    co->instance = coord_new_instance();
    co->next_seq = 0;
    clog_begin_epoch(co->log, co->epoch, co->instance, promoted_epoch_durable, co);
}

static bool
promote(coord *co, bool force, char *err, size_t errlen)
{
    char why[300];
    if (ha_enabled(co)) {
        snprintf(err, errlen,
                 "this coordinator fails over by itself ([ha]): etcd's leader key decides which "
                 "instance is primary (docs/failover.md, \"Automatic failover\")");
        return false;
    }
    if (walrecv_cutting(co)) {
        snprintf(err, errlen, "this standby is cutting back a forked log; try again in a moment");
        return false;
    }
    if (!walrecv_sure(co, why, sizeof(why))) {
        if (!force) {
            snprintf(err, errlen,
                     "this standby cannot be sure it holds every decision its primary "
                     "acknowledged: %s",
                     why);
            return false;
        }
        log_warn("promotion forced although %s", why);
    }
    co->role = COORD_PROMOTING;
    walrecv_stop(co);
    log_log("promotion requested%s: streaming stopped at %" PRIu64, force ? " (forced)" : "",
            clog_end_lsn(co->log));
    clog_when_durable(co->log, clog_end_lsn(co->log), received_durable, co);
    return true;
}

static const client_events roles_client_events = {.promote = promote};

/* ---- automatic failover ([ha]) --------------------------------------------- */

static void
ha_won(coord *co, uint64_t epoch)
{
    if (co->role != COORD_STANDBY || walrecv_cutting(co)) {
        stop_now(co, true); /* (cutting a fork: the start again finishes it first) */
        return;
    }
    co->won_epoch = epoch;
    co->role = COORD_PROMOTING;
    walrecv_stop(co);
    log_log("promotion by etcd's leader key, epoch %" PRIu64 ": streaming stopped at %" PRIu64,
            epoch, clog_end_lsn(co->log));
    clog_when_durable(co->log, clog_end_lsn(co->log), received_durable, co);
}

static bool
ha_follow(coord *co, const char *addr)
{
    return walrecv_follow(co, addr);
}

static bool
ha_streaming(coord *co)
{
    return walrecv_streaming(co);
}

static void
ha_demote(coord *co, const char *why)
{
    (void)why;
    if (co->shutting_down)
        return;
    stop_now(co, true);
}

static const ha_events roles_ha_events = {
    .won = ha_won, .follow = ha_follow, .streaming = ha_streaming, .demote = ha_demote};

void
roles_shutdown(coord *co)
{
    roles_stop_listening(co);
    if (fencing)
        promotion_free(fencing);
    if (asking)
        ask_free(asking);
}

/* ---- start ---------------------------------------------------------------- */

static void
start_standby(coord *co)
{
    char addr[300];
    co->role = COORD_STANDBY;
    listen_now(co, addr, sizeof(addr));
    walrecv_start(co);
    log_log("dtx-coordinator \"%s\" ready as a standby of %s: listening on %s (status, "
            "indoubt, replication and promote only)",
            co->conf.name, co->conf.primary_addr, addr);
    sdnotify_ready("standby");
}

/* With [ha]: a standby of nobody yet; etcd's leader key says whom to
 * follow, or lets this instance win and be promoted. */
static void
start_ha(coord *co)
{
    char addr[300];
    co->role = COORD_STANDBY;
    co->epoch = clog_last_epoch(co->log);
    listen_now(co, addr, sizeof(addr));
    ha_start(co, &roles_ha_events);
    log_log("dtx-coordinator \"%s\" ready, listening on %s: a standby until etcd's leader key "
            "says otherwise (status, indoubt, replication and promote only)",
            co->conf.name, addr);
    sdnotify_ready("standby ([ha])");
}

void
roles_start(coord *co)
{
    client_init(co, &roles_client_events);
    plink_set_events(co, &roles_plink_events, co);
    if (ha_enabled(co))
        start_ha(co);
    else if (co->conf.primary_addr)
        start_standby(co);
    else
        start_primary(co);
}
