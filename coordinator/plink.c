/*
 * plink.c — the coordinator's links to its participants.
 *
 * One TLS connection per configured participant carries every branch of
 * every transaction that touches it: each request (WORK, FINISH, LIST) gets
 * a tag, and the participant echoes the tag in each reply (RESULT*, then a
 * final DONE / LIST_REPLY / ERROR).  The tag names a slot in `slots`:
 *
 *     tag = generation << 20 | slot index        (index < 2^20)
 *
 * so a reply for a slot that was freed and reused (a stale reply after a
 * reconnect) is recognised by its generation and dropped.
 *
 * Link states (plink_set_state is the only place that changes them, and
 * it stops the process on a transition not drawn here):
 *
 *     DOWN --connect--> CONNECTING --TLS up, HELLO sent--> HELLO_WAIT
 *       ^                   |                                  | HELLO_OK
 *       |                   v                                  v
 *       +---- back-off <--- (error, EOF, bad frame) <------- READY
 *
 *     any state --plink_shutdown--> CLOSED (for good: no reconnect)
 *
 * Leaving READY (or HELLO_WAIT) fails every outstanding request: its
 * callback runs with f == NULL.  What that means is the caller's business
 * (a statement in flight is an error; a PREPARE in flight is a NO vote and
 * the branch may be left prepared, which the resolver cleans up; a COMMIT
 * PREPARED in flight is retried by the resolver).  Reconnects back off from
 * 100 ms to 5 s.
 *
 * A participant given by host name is resolved on the loop (evdns; the
 * hosts file first), never with a blocking getaddrinfo: a slow or dead DNS
 * server must not stall every client.  Its addresses are tried in order,
 * the next one at once when a connection to one fails before the link is
 * up; a name is resolved again for each round of reconnects.
 */
#include "plink.h"

#include "conn.h"
#include "failpoint.h"
#include "log.h"
#include "slotq.h"
#include "tls.h"

#include <netinet/in.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_BITS       20
#define SLOT_MASK       ((1u << SLOT_BITS) - 1)
#define PLINK_MAX_ADDRS 8

typedef enum plink_state { PL_DOWN, PL_CONNECTING, PL_HELLO_WAIT, PL_READY, PL_CLOSED } plink_state;

/* One host name lookup.  The link points at it while it runs.  libevent
 * reports a cancelled lookup later, from the loop: a lookup outlives a link
 * that went away meanwhile (l = NULL) and frees itself in its callback. */
typedef struct plink_lookup {
    plink *l;
    struct evdns_getaddrinfo_request *req;
} plink_lookup;

typedef struct preq {
    plink_reply_fn cb;
    void *arg;
    uint32_t gen;
    bool used;
} preq;

struct plink {
    coord *co;
    part_conf pc;
    plink_state state;
    conn *c;
    struct event *retry_ev;
    int backoff_ms;
    preq *slots;
    uint32_t nslots;
    uint32_t *free_idx;
    uint32_t nfree;
    uint32_t inflight;
    wbuf out;
    bool warned;
    uint16_t peer_minor; /* protocol minor of the participant's HELLO_OK */
    /* host name resolution: the lookup while it runs, then the addresses */
    plink_lookup *lookup;
    char addrs[PLINK_MAX_ADDRS][INET6_ADDRSTRLEN];
    int naddrs, next_addr; /* next_addr: the next one to try */
};

static const char *const state_names[] = {"down", "connecting", "hello-wait", "ready", "closed"};

#define PS(s) (1u << (s))
static const unsigned plink_next[] = {
    [PL_DOWN] = PS(PL_DOWN) | PS(PL_CONNECTING) | PS(PL_CLOSED),
    /* CONNECTING again: the next address of the name */
    [PL_CONNECTING] = PS(PL_DOWN) | PS(PL_CONNECTING) | PS(PL_HELLO_WAIT) | PS(PL_CLOSED),
    [PL_HELLO_WAIT] = PS(PL_DOWN) | PS(PL_READY) | PS(PL_CLOSED),
    [PL_READY] = PS(PL_DOWN) | PS(PL_CLOSED),
    [PL_CLOSED] = PS(PL_CLOSED),
};

static void plink_connect(plink *l);
static void plink_lost(plink *l, const char *why);

static void
plink_fail_all(plink *l)
{
    for (uint32_t i = 0; i < l->nslots; i++) {
        preq *r = &l->slots[i];
        if (!r->used)
            continue;
        plink_reply_fn cb = r->cb;
        void *arg = r->arg;
        r->used = false;
        r->gen++;
        l->free_idx[l->nfree++] = i;
        l->inflight--;
        cb(arg, NULL, true);
    }
}

/* CLOSED: no more sends, no reconnect, and every outstanding request is
 * failed (its callback runs with f == NULL). */
static void
plink_close_for_good(plink *l)
{
    if (l->retry_ev)
        event_del(l->retry_ev);
    if (l->lookup) {
        /* its callback comes later from the loop, and only frees it */
        l->lookup->l = NULL;
        if (l->lookup->req)
            evdns_getaddrinfo_cancel(l->lookup->req);
        l->lookup = NULL;
    }
    if (l->c)
        conn_close(l->c);
    l->c = NULL;
    plink_fail_all(l); /* outstanding callbacks free their contexts */
}

static void
plink_set_state(plink *l, plink_state st)
{
    plink_state old = l->state;
    if ((unsigned)st > PL_CLOSED || (plink_next[old] & PS(st)) == 0)
        log_panic("participant \"%s\": link state %s cannot become %s", l->pc.name,
                  state_names[old], (unsigned)st <= PL_CLOSED ? state_names[st] : "unknown");
    l->state = st;
    switch (st) {
    case PL_DOWN:
        if (l->c) {
            conn_close(l->c);
            l->c = NULL;
        }
        if (old == PL_READY || old == PL_HELLO_WAIT)
            plink_fail_all(l);
        if (!l->co->shutting_down || l->inflight) {
            struct timeval tv = {l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000};
            evtimer_add(l->retry_ev, &tv);
            l->backoff_ms = l->backoff_ms * 2 > 5000 ? 5000 : l->backoff_ms * 2;
        }
        break;
    case PL_CONNECTING:
    case PL_HELLO_WAIT:
        break;
    case PL_READY:
        l->backoff_ms = 100;
        l->naddrs = l->next_addr = 0; /* a later reconnect resolves the name afresh */
        log_with(&(log_fields){.participant = l->pc.name}, LOG_LVL_LOG,
                 "participant \"%s\" at %s:%u is ready", l->pc.name, l->pc.host, l->pc.port);
        l->warned = false;
        if (l->co->plink_ev)
            l->co->plink_ev->ready(l->co->plink_ev_arg, l);
        break;
    case PL_CLOSED:
        plink_close_for_good(l);
        break;
    default:
        abort();
    }
    log_debug("participant \"%s\": %s -> %s", l->pc.name, state_names[old], state_names[st]);
}

static void
plink_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    plink *l = arg;
    if (l->state == PL_DOWN && !l->co->shutting_down)
        plink_connect(l);
}

static void
plink_on_open(conn *c, const char *peer, void *arg)
{
    plink *l = arg;
    (void)peer;
    wbuf w;
    wbuf_init(&w);
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = ROLE_COORDINATOR,
                     .name = l->co->conf.name,
                     .epoch = l->co->epoch,
                     .instance = l->co->instance};
    if (proto_put_hello(&w, &h))
        conn_send(c, &w);
    wbuf_free(&w);
    plink_set_state(l, PL_HELLO_WAIT);
}

/* The link is lost (or refused): log it, once while it stays down, with
 * the participant's error fields when it sent an ERROR (e may be NULL). */
static void
plink_lost_error(plink *l, const char *why, const proto_error *e)
{
    if (!l->warned || l->state == PL_READY)
        log_report_with(&(log_fields){.participant = l->pc.name}, LOG_LVL_WARNING,
                        e ? e->sqlstate : NULL, e ? e->detail : NULL, e ? e->hint : NULL,
                        "participant \"%s\" at %s:%u: %s", l->pc.name, l->pc.host, l->pc.port, why);
    l->warned = true;
    plink_set_state(l, PL_DOWN);
}

static void
plink_lost(plink *l, const char *why)
{
    plink_lost_error(l, why, NULL);
}

static void
plink_on_close(conn *c, const char *reason, void *arg)
{
    plink *l = arg;
    (void)c;
    l->c = NULL; /* conn frees itself */
    if (l->state == PL_CONNECTING && l->next_addr < l->naddrs) {
        log_debug("participant \"%s\" at %s:%u: %s: %s; trying its next address", l->pc.name,
                  l->pc.host, l->pc.port, l->addrs[l->next_addr - 1], reason);
        plink_connect(l);
        return;
    }
    plink_lost(l, reason);
}

/* The participant's slot budget (HELLO_OK, 1.6; 0: not known) goes to
 * the admission of PREPAREs (slotq.h). */
static void
plink_set_budget(plink *l, uint32_t slots)
{
    int b = slots > INT32_MAX ? INT32_MAX : (int)slots;
    for (int i = 0; l->co->slots && i < l->co->nlinks; i++) {
        if (l->co->links[i] != l)
            continue;
        if (b != slotq_budget(l->co->slots, i) && b > 0)
            log_log("participant \"%s\": up to %d prepared transactions at once", plink_name(l), b);
        slotq_set_budget(l->co->slots, i, b);
    }
}

static void
plink_on_frame(conn *c, const frame_view *f, void *arg)
{
    plink *l = arg;
    (void)c;
    if (l->state == PL_HELLO_WAIT) {
        proto_hello_ok ok;
        proto_error e;
        if (f->type == MSG_HELLO_OK && proto_get_hello_ok(f, &ok)) {
            if (ok.major != PROTO_MAJOR) {
                plink_lost(l, "participant speaks another protocol version");
                return;
            }
            l->peer_minor = ok.minor;
            plink_set_budget(l, ok.slots);
            plink_set_state(l, PL_READY);
            return;
        }
        if (f->type == MSG_ERROR && proto_get_error(f, &e)) {
            char buf[600];
            snprintf(buf, sizeof(buf), "refused: %s", e.message);
            plink_lost_error(l, buf, &e);
            if (e.sqlstate && strcmp(e.sqlstate, PLINK_FENCED_SQLSTATE) == 0 && l->co->plink_ev &&
                l->co->plink_ev->fenced)
                l->co->plink_ev->fenced(l->co->plink_ev_arg, l, e.message);
            return;
        }
        plink_lost(l, "unexpected reply to the start-up message");
        return;
    }
    uint32_t tag;
    if (!proto_peek_tag(f, &tag)) {
        plink_lost(l, "malformed frame from participant");
        return;
    }
    if (tag == 0 && f->type == MSG_ERROR) {
        proto_error e;
        bool ok = proto_get_error(f, &e);
        char buf[600];
        snprintf(buf, sizeof(buf), "error: %s", ok ? e.message : "malformed error");
        plink_lost_error(l, buf, ok ? &e : NULL);
        return;
    }
    uint32_t idx = tag & SLOT_MASK, gen = tag >> SLOT_BITS;
    if (idx >= l->nslots || !l->slots[idx].used || (l->slots[idx].gen & 0xFFF) != gen) {
        log_debug("participant \"%s\": reply for unknown tag %u dropped", l->pc.name, tag);
        return;
    }
    preq *r = &l->slots[idx];
    bool final = f->type != MSG_RESULT;
    plink_reply_fn cb = r->cb;
    void *cbarg = r->arg;
    if (final) {
        r->used = false;
        r->gen++;
        l->free_idx[l->nfree++] = idx;
        l->inflight--;
    }
    cb(cbarg, f, final);
}

static const conn_ops plink_ops = {
    .on_open = plink_on_open,
    .on_frame = plink_on_frame,
    .on_close = plink_on_close,
};

/* Connect to one address of the participant; its certificate must still
 * name the configured host. */
static void
plink_connect_to(plink *l, const char *addr)
{
    l->c = conn_connect(l->co->base, l->co->client_ctx, addr, l->pc.port, l->pc.host,
                        (uint32_t)l->co->conf.max_frame, &plink_ops, l);
    if (l->c == NULL)
        plink_lost(l, "could not create a connection");
}

static void
plink_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    plink_lookup *q = arg;
    plink *l = q->l;
    free(q);
    if (l == NULL) {
        if (res)
            evutil_freeaddrinfo(res);
        return; /* the link went away (cancelled by plink_shutdown) */
    }
    l->lookup = NULL;
    if (l->co->shutting_down) {
        if (res)
            evutil_freeaddrinfo(res);
        plink_set_state(l, PL_DOWN); /* as plink_retry_cb: no new link now */
        return;
    }
    for (struct evutil_addrinfo *a = res; a && l->naddrs < PLINK_MAX_ADDRS; a = a->ai_next) {
        const void *ip = a->ai_family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
            evutil_inet_ntop(a->ai_family, ip, l->addrs[l->naddrs], sizeof(l->addrs[0])))
            l->naddrs++;
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (err != 0 || l->naddrs == 0) {
        char why[300];
        snprintf(why, sizeof(why), "could not resolve the host name: %s",
                 err != 0 ? evutil_gai_strerror(err) : "no IPv4 or IPv6 address");
        plink_lost(l, why);
        return;
    }
    plink_connect_to(l, l->addrs[l->next_addr++]);
}

static void
plink_connect(plink *l)
{
    plink_set_state(l, PL_CONNECTING);
    if (l->next_addr < l->naddrs) {
        plink_connect_to(l, l->addrs[l->next_addr++]); /* the last name's next address */
        return;
    }
    l->naddrs = l->next_addr = 0;
    if (tls_is_ip_literal(l->pc.host)) {
        plink_connect_to(l, l->pc.host);
        return;
    }
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    char port[16];
    snprintf(port, sizeof(port), "%u", l->pc.port);
    plink_lookup *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        plink_lost(l, "out of memory");
        return;
    }
    q->l = l;
    l->lookup = q;
    /* the callback may run (and free q) before this returns: hosts file,
     * or a failure */
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(l->co->dns, l->pc.host, port, &hints, plink_resolved, q);
    if (l->lookup != NULL)
        l->lookup->req = r;
}

plink *
plink_create(coord *co, const part_conf *pc)
{
    plink *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->co = co;
    l->pc = *pc;
    l->state = PL_DOWN;
    l->backoff_ms = 100;
    l->retry_ev = evtimer_new(co->base, plink_retry_cb, l);
    wbuf_init(&l->out);
    return l;
}

void
plink_start(plink *l)
{
    plink_connect(l);
}

/* Teardown, first step for every link: no more sends (the state is DOWN and
 * stays so), and every outstanding request is failed.  Its callbacks may
 * touch other links, which must therefore still exist: free them only once
 * all are shut. */
void
plink_shutdown(plink *l)
{
    if (l == NULL || l->state == PL_CLOSED)
        return;
    plink_set_state(l, PL_CLOSED);
}

void
plink_free(plink *l)
{
    if (l == NULL)
        return;
    plink_shutdown(l);
    event_free(l->retry_ev);
    free(l->slots);
    free(l->free_idx);
    wbuf_free(&l->out);
    free(l);
}

bool
plink_ready(const plink *l)
{
    return l->state == PL_READY;
}

uint32_t
plink_inflight(const plink *l)
{
    return l->inflight;
}

const char *
plink_name(const plink *l)
{
    return l->pc.name;
}

/* Reserve a slot; returns its tag, or 0 when out of memory. */
static uint32_t
plink_slot(plink *l, plink_reply_fn cb, void *arg)
{
    if (l->nfree == 0) {
        uint32_t n = l->nslots ? l->nslots * 2 : 64;
        if (n > SLOT_MASK)
            return 0;
        preq *s = realloc(l->slots, n * sizeof(preq));
        uint32_t *fi = s ? realloc(l->free_idx, n * sizeof(uint32_t)) : NULL;
        if (s)
            l->slots = s;
        if (fi == NULL)
            return 0;
        l->free_idx = fi;
        memset(l->slots + l->nslots, 0, (n - l->nslots) * sizeof(preq));
        /* hand out low indexes first; index 0 is never used so no tag is 0 */
        for (uint32_t i = n; i-- > l->nslots;)
            if (i != 0)
                l->free_idx[l->nfree++] = i;
        l->nslots = n;
    }
    uint32_t idx = l->free_idx[--l->nfree];
    preq *r = &l->slots[idx];
    r->used = true;
    r->cb = cb;
    r->arg = arg;
    l->inflight++;
    return ((r->gen & 0xFFF) << SLOT_BITS) | idx;
}

static bool
plink_flush(plink *l, bool ok)
{
    if (ok && wbuf_ok(&l->out))
        conn_send(l->c, &l->out);
    wbuf_reset(&l->out);
    return ok;
}

static void
plink_unslot(plink *l, uint32_t tag)
{
    uint32_t idx = tag & SLOT_MASK;
    l->slots[idx].used = false;
    l->slots[idx].gen++;
    l->free_idx[l->nfree++] = idx;
    l->inflight--;
}

bool
plink_send_work(plink *l, const char *branch, uint8_t flags, const proto_stmt *stmts, uint16_t n,
                const char *client_name, plink_reply_fn cb, void *arg)
{
    if (l->state != PL_READY)
        return false;
    uint32_t tag = plink_slot(l, cb, arg);
    if (tag == 0)
        return false;
    proto_work m = {.tag = tag,
                    .epoch = l->co->epoch,
                    .branch = branch,
                    .flags = flags,
                    .body = {.n = n, .stmts = (proto_stmt *)stmts},
                    /* only the request that opens the branch needs it (the
                     * participant maps it to a role then); a participant of
                     * 1.4 or older refuses a field it does not know */
                    .client =
                        (flags & WORK_OPEN) && l->peer_minor >= 5 && client_name && client_name[0]
                            ? client_name
                            : NULL};
    if (!plink_flush(l, proto_put_work(&l->out, &m))) {
        plink_unslot(l, tag);
        return false;
    }
    return true;
}

bool
plink_send_finish(plink *l, const char *branch, bool commit, uint64_t xid, plink_reply_fn cb,
                  void *arg)
{
    if (l->state != PL_READY)
        return false;
    uint32_t tag = plink_slot(l, cb, arg);
    if (tag == 0)
        return false;
    proto_finish m = {
        .tag = tag, .epoch = l->co->epoch, .branch = branch, .commit = commit, .xid = xid};
    if (!plink_flush(l, proto_put_finish(&l->out, &m))) {
        plink_unslot(l, tag);
        return false;
    }
    return true;
}

bool
plink_send_list(plink *l, const char *prefix, plink_reply_fn cb, void *arg)
{
    if (l->state != PL_READY)
        return false;
    uint32_t tag = plink_slot(l, cb, arg);
    if (tag == 0)
        return false;
    proto_list m = {.tag = tag, .epoch = l->co->epoch, .prefix = prefix};
    if (!plink_flush(l, proto_put_list(&l->out, &m))) {
        plink_unslot(l, tag);
        return false;
    }
    return true;
}

static void
plink_cancel_reply(void *arg, const frame_view *f, bool final)
{
    (void)arg;
    proto_done d;
    if (final && f && f->type == MSG_DONE && proto_get_done(f, &d) && d.status != DONE_OK)
        log_debug("CANCEL answered %s: %s", proto_done_status_name(d.status),
                  d.message ? d.message : "");
}

bool
plink_send_cancel(plink *l, const char *branch)
{
    if (l->state != PL_READY || l->peer_minor < 1)
        return false;
    uint32_t tag = plink_slot(l, plink_cancel_reply, NULL);
    if (tag == 0)
        return false;
    proto_cancel m = {.tag = tag, .epoch = l->co->epoch, .branch = branch};
    if (!plink_flush(l, proto_put_cancel(&l->out, &m))) {
        plink_unslot(l, tag);
        return false;
    }
    return true;
}

void
plink_set_events(coord *co, const plink_events *ev, void *arg)
{
    co->plink_ev = ev;
    co->plink_ev_arg = arg;
}

plink *
plink_find(coord *co, const char *name)
{
    for (int i = 0; i < co->nlinks; i++)
        if (strcmp(co->links[i]->pc.name, name) == 0)
            return co->links[i];
    return NULL;
}
