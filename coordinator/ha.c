/*
 * ha.c — automatic failover through etcd: the leader lease, the recorded
 * synchronous standby, epochs from etcd, and self-demotion
 * (docs/failover.md, "Automatic failover").
 *
 * Keys, under <prefix>/<name>/ (name: the coordinator's, shared by its
 * instances; each instance has its own [ha] member name):
 *
 *   leader  {"member","addr","instance","epoch"} under the leader's lease:
 *           who is primary, and where clients and the standby reach it
 *   sync    {"leader","standby","lsn","epoch"}: the standby the leader
 *           counts on ("" : none), caught up to lsn.  Written by the leader
 *           (compared against its own leader key) before it counts on a
 *           standby and before it goes on without one
 *   epoch   the last epoch handed out, in decimal
 *
 * A campaign is one transaction: the leader key must be absent, and the
 * sync and epoch keys unchanged since this instance read them (it read
 * them to decide it is eligible and to pick the epoch); it then puts the
 * leader key under a fresh lease, the epoch (max(etcd's, this log's) + 1)
 * and a sync record naming no standby (the winner serves alone until one
 * catches up).  No two promotions can take one epoch: each moved the epoch
 * key, and a campaign that read an older one fails.
 *
 * Eligible to campaign: no sync record yet (the coordinator's first
 * start), or the record names this member as the last leader or as the
 * synchronous standby, with this log reaching its lsn.  A standby that is
 * still streaming from a live primary never campaigns, even when the key
 * is gone (that primary lost etcd, not its standby).  A leader key naming
 * this member but another process is outlived, never removed: it may be a
 * second instance misconfigured with the same member name.
 *
 * States (ha_set_state checks every transition):
 *
 *   FOLLOWING --key gone, eligible, not streaming--> CAMPAIGNING
 *   CAMPAIGNING --won--> LEADING        CAMPAIGNING --lost--> FOLLOWING
 *   LEADING --lease ran out, synchronous standby acknowledging--> LOST
 *   LOST --lease alive after all, or key taken back--> LEADING
 *   LEADING, LOST --mandate gone--> DEMOTED (the process starts again and
 *                                   follows whoever holds the key)
 *
 * The lease's end is counted from when the keep-alive was sent, so this
 * primary's idea of it ends before etcd's.  Past it, the primary serves
 * only while a synchronous standby acknowledges: every decision then
 * waits for that standby, which proves it has not been promoted (a
 * promotion stops its stream first), and the primary cannot go on without
 * it (that needs a sync record, which needs the key).  With no such
 * standby, or once it goes, the primary demotes itself at once.
 */
#include "ha.h"

#include "clog.h"
#include "etcd.h"

#include "clock.h"
#include "config.h"
#include "log.h"

#include <event2/dns.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLLOW_FAST_MS 200 /* polls while this standby's primary is gone */
#define MEMBER_MAX     64

typedef enum ha_state {
    HA_FOLLOWING,
    HA_CAMPAIGNING,
    HA_LEADING,
    HA_LOST,
    HA_DEMOTED,
} ha_state;

static const char *const ha_state_names[] = {"following", "campaigning", "leading", "lost",
                                             "demoted"};

/* what a record in etcd says */
typedef struct leader_view {
    bool known;
    char member[MEMBER_MAX], addr[300];
    uint64_t instance, epoch;
    int64_t mod, lease;
} leader_view;

typedef struct sync_view {
    bool known;
    char leader[MEMBER_MAX], standby[MEMBER_MAX];
    uint64_t lsn, epoch;
    int64_t mod;
} sync_view;

struct ha {
    coord *co;
    const ha_events *ev;
    etcd *etcd;
    ha_state state;
    char k_leader[300], k_sync[300], k_epoch[300];
    uint64_t id; /* this process, in the leader key */
    struct event *tick, *expiry;
    bool busy, ka_busy; /* a look/campaign/take-back, a keep-alive in flight */
    leader_view leader;
    sync_view sync;
    uint64_t epoch_val;
    int64_t epoch_mod;
    /* leading */
    int64_t lease_id, lease_end_ms, granted_ms, ka_sent_ms;
    int64_t pending_lease; /* a take-back's lease, until the key is on it */
    uint64_t my_epoch;
    int64_t my_epoch_mod;
    bool standby_sync;
    /* sync records: the one in flight (its done NULL once replaced) and the next */
    bool rec_busy, rec_next;
    void (*rec_done)(void *, bool);
    void *rec_arg;
    char next_member[MEMBER_MAX];
    uint64_t next_lsn;
    void (*next_done)(void *, bool);
    void *next_arg;
    char note[400];      /* the last "not campaigning" reason logged */
    char following[300]; /* the leader address roles was told to follow */
    char etcd_error[500];
};

static void ha_schedule(struct ha *h, int64_t ms);

/* ---- state --------------------------------------------------------------- */

static void
ha_set_state(struct ha *h, ha_state to)
{
    static const unsigned allowed[] = {
        [HA_FOLLOWING] = 1u << HA_CAMPAIGNING,
        [HA_CAMPAIGNING] = 1u << HA_LEADING | 1u << HA_FOLLOWING,
        [HA_LEADING] = 1u << HA_LOST | 1u << HA_DEMOTED,
        [HA_LOST] = 1u << HA_LEADING | 1u << HA_DEMOTED,
        [HA_DEMOTED] = 0,
    };
    if ((unsigned)h->state > HA_DEMOTED || !(allowed[h->state] & (1u << to)))
        log_panic("ha: invalid transition %s -> %s", ha_state_names[h->state], ha_state_names[to]);
    log_debug("ha: %s -> %s", ha_state_names[h->state], ha_state_names[to]);
    h->state = to;
}

static void
demote(struct ha *h, const char *why)
{
    if (h->state == HA_DEMOTED)
        return;
    ha_set_state(h, HA_DEMOTED);
    log_error("this coordinator gives up being primary: %s; it stops serving and starts again "
              "to follow whoever holds the leader key",
              why);
    event_del(h->expiry);
    h->ev->demote(h->co, why);
}

static bool
etcd_failed(struct ha *h, const etcd_reply *r)
{
    if (r->error == NULL)
        return false;
    snprintf(h->etcd_error, sizeof(h->etcd_error), "%s", r->error);
    return true;
}

/* ---- values -------------------------------------------------------------- */

static json_object *
parse_value(const etcd_kv *kv)
{
    json_object *o = json_tokener_parse(kv->value);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static void
get_str(json_object *o, const char *field, char *out, size_t outlen)
{
    json_object *v;
    out[0] = '\0';
    if (json_object_object_get_ex(o, field, &v) && json_object_is_type(v, json_type_string))
        snprintf(out, outlen, "%s", json_object_get_string(v));
}

static void
read_leader(struct ha *h, const etcd_kv *kv)
{
    leader_view *l = &h->leader;
    memset(l, 0, sizeof(*l));
    if (kv == NULL)
        return;
    json_object *o = parse_value(kv);
    l->known = true;
    l->mod = kv->mod_rev;
    l->lease = kv->lease;
    if (o == NULL) {
        log_warn("ha: the leader key %s holds no valid record", h->k_leader);
        snprintf(l->member, sizeof(l->member), "?");
        return;
    }
    get_str(o, "member", l->member, sizeof(l->member));
    get_str(o, "addr", l->addr, sizeof(l->addr));
    char inst[40];
    get_str(o, "instance", inst, sizeof(inst));
    l->instance = strtoull(inst, NULL, 16); /* written in hex (leader_value) */
    l->epoch = (uint64_t)etcd_json_int(o, "epoch");
    json_object_put(o);
}

static void
read_sync(struct ha *h, const etcd_kv *kv)
{
    sync_view *s = &h->sync;
    memset(s, 0, sizeof(*s));
    if (kv == NULL)
        return;
    s->known = true;
    s->mod = kv->mod_rev;
    json_object *o = parse_value(kv);
    if (o == NULL) {
        log_warn("ha: the sync key %s holds no valid record", h->k_sync);
        return;
    }
    get_str(o, "leader", s->leader, sizeof(s->leader));
    get_str(o, "standby", s->standby, sizeof(s->standby));
    s->lsn = (uint64_t)etcd_json_int(o, "lsn");
    s->epoch = (uint64_t)etcd_json_int(o, "epoch");
    json_object_put(o);
}

/* o's text (heap; caller frees), o released; NULL when out of memory */
static char *
json_text(json_object *o)
{
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *out = t ? strdup(t) : NULL;
    json_object_put(o);
    return out;
}

/* JSON text of a record (heap; caller frees), NULL when out of memory */
static char *
leader_value(const struct ha *h, uint64_t epoch)
{
    char buf[600];
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    snprintf(buf, sizeof(buf), "%016" PRIx64, h->id);
    json_object_object_add(o, "member", json_object_new_string(h->co->conf.ha_member));
    json_object_object_add(o, "addr", json_object_new_string(h->co->conf.ha_advertise));
    json_object_object_add(o, "instance", json_object_new_string(buf));
    json_object_object_add(o, "epoch", json_object_new_int64((int64_t)epoch));
    return json_text(o);
}

static char *
sync_value(const struct ha *h, const char *standby, uint64_t lsn)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    json_object_object_add(o, "leader", json_object_new_string(h->co->conf.ha_member));
    json_object_object_add(o, "standby", json_object_new_string(standby));
    json_object_object_add(o, "lsn", json_object_new_int64((int64_t)lsn));
    json_object_object_add(o, "epoch", json_object_new_int64((int64_t)h->my_epoch));
    return json_text(o);
}

static void
send_or_die(struct ha *h, etcd_txn *t, etcd_cb cb)
{
    if (t == NULL || !etcd_txn_send(h->etcd, t, cb, h))
        log_fatal("out of memory");
}

/* ---- following ------------------------------------------------------------ */

static void note_once(struct ha *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note_once(struct ha *h, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (strcmp(msg, h->note) == 0)
        return;
    snprintf(h->note, sizeof(h->note), "%s", msg);
    log_log("ha: not campaigning for the leader key: %s", msg);
}

/* May this instance campaign?  false with the reason. */
static bool
eligible(struct ha *h, char *why, size_t whylen)
{
    const sync_view *s = &h->sync;
    const char *me = h->co->conf.ha_member;
    uint64_t end = clog_end_lsn(h->co->log);
    if (!s->known)
        return true;
    bool leader = strcmp(s->leader, me) == 0;
    if (leader || strcmp(s->standby, me) == 0) {
        if (end >= s->lsn)
            return true;
        snprintf(why, whylen,
                 "etcd records this member as the %s at %" PRIu64 ", but its log ends at %" PRIu64
                 " (another data_dir, or one restored from an older copy?)",
                 leader ? "last leader" : "synchronous standby", s->lsn, end);
        return false;
    }
    if (s->standby[0])
        snprintf(why, whylen,
                 "etcd records \"%s\" as the synchronous standby of \"%s\", not this member",
                 s->standby, s->leader);
    else
        snprintf(why, whylen,
                 "etcd records that \"%s\" went on without a synchronous standby: only it holds "
                 "every decision it acknowledged",
                 s->leader);
    return false;
}

static void campaign(struct ha *h);

static void
look_done(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    h->busy = false;
    if (etcd_failed(h, r) || h->state != HA_FOLLOWING)
        return;
    read_leader(h, etcd_reply_find(r, h->k_leader));
    read_sync(h, etcd_reply_find(r, h->k_sync));
    const etcd_kv *ekv = etcd_reply_find(r, h->k_epoch);
    h->epoch_val = ekv ? strtoull(ekv->value, NULL, 10) : 0;
    h->epoch_mod = ekv ? ekv->mod_rev : 0;
    const leader_view *l = &h->leader;
    if (l->known && strcmp(l->member, h->co->conf.ha_member) == 0) {
        /* an earlier start of this member — or, misconfigured, another
         * instance with the same member name: never removed, it goes
         * with its lease */
        note_once(h,
                  "the leader key names this member \"%s\" but another process (instance "
                  "%016" PRIx64 "): an earlier start of it, or a second instance with the same "
                  "member name; waiting for its lease to run out",
                  l->member, l->instance);
        return;
    }
    if (l->known) {
        h->note[0] = '\0';
        if (l->addr[0] && strcmp(h->following, l->addr) != 0 && h->ev->follow(h->co, l->addr)) {
            snprintf(h->following, sizeof(h->following), "%s", l->addr);
            log_log("ha: \"%s\" holds the leader key (epoch %" PRIu64 "): following it at %s",
                    l->member, l->epoch, l->addr);
        }
        return;
    }
    char why[400];
    if (!eligible(h, why, sizeof(why))) {
        note_once(h, "%s", why);
        return;
    }
    if (h->ev->streaming(h->co)) {
        note_once(h, "the leader key is gone, but the primary still streams to this standby");
        return;
    }
    campaign(h);
}

static void
look(struct ha *h)
{
    etcd_txn *t = etcd_txn_new();
    if (t) {
        etcd_txn_get(t, true, h->k_leader);
        etcd_txn_get(t, true, h->k_sync);
        etcd_txn_get(t, true, h->k_epoch);
    }
    h->busy = true;
    send_or_die(h, t, look_done);
}

/* ---- campaigning ---------------------------------------------------------- */

static void
arm_expiry(struct ha *h)
{
    int64_t left = h->lease_end_ms - clock_mono_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {left / 1000, (left % 1000) * 1000};
    event_add(h->expiry, &tv);
}

static void
lease_ignored(void *arg, const etcd_reply *r)
{
    (void)arg;
    (void)r;
}

static void
campaign_done(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    h->busy = false;
    if (etcd_failed(h, r) || !r->succeeded) {
        if (r->error == NULL)
            log_log("ha: lost the campaign for the leader key (another instance, or a change "
                    "since it was read)");
        if (h->lease_id && !etcd_lease_revoke(h->etcd, h->lease_id, lease_ignored, h))
            log_fatal("out of memory");
        h->lease_id = 0;
        ha_set_state(h, HA_FOLLOWING);
        ha_schedule(h, 0);
        return;
    }
    h->my_epoch_mod = r->revision;
    h->leader = (leader_view){.known = true,
                              .mod = r->revision,
                              .lease = h->lease_id,
                              .instance = h->id,
                              .epoch = h->my_epoch};
    snprintf(h->leader.member, sizeof(h->leader.member), "%s", h->co->conf.ha_member);
    snprintf(h->leader.addr, sizeof(h->leader.addr), "%s", h->co->conf.ha_advertise);
    h->sync = (sync_view){
        .known = true, .mod = r->revision, .lsn = clog_end_lsn(h->co->log), .epoch = h->my_epoch};
    snprintf(h->sync.leader, sizeof(h->sync.leader), "%s", h->co->conf.ha_member);
    h->lease_end_ms = h->granted_ms + h->co->conf.ha_ttl_ms;
    ha_set_state(h, HA_LEADING);
    arm_expiry(h);
    h->note[0] = '\0';
    log_log("ha: won the leader key with epoch %" PRIu64 " (lease %" PRId64 ", %lld ms left)",
            h->my_epoch, h->lease_id, (long long)(h->lease_end_ms - clock_mono_ms()));
    ha_schedule(h, h->co->conf.ha_renew_ms);
    h->ev->won(h->co, h->my_epoch);
}

static void
campaign_granted(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    if (etcd_failed(h, r) || r->id == 0) {
        h->busy = false;
        ha_set_state(h, HA_FOLLOWING);
        return;
    }
    h->lease_id = r->id;
    uint64_t last = clog_last_epoch(h->co->log);
    h->my_epoch = (h->epoch_val > last ? h->epoch_val : last) + 1;
    char *lv = leader_value(h, h->my_epoch), *sv = sync_value(h, "", clog_end_lsn(h->co->log));
    char ev[32];
    snprintf(ev, sizeof(ev), "%" PRIu64, h->my_epoch);
    etcd_txn *t = lv && sv ? etcd_txn_new() : NULL;
    if (t) {
        etcd_txn_compare(t, h->k_leader, ETCD_CREATE, 0);
        etcd_txn_compare(t, h->k_sync, ETCD_MOD, h->sync.known ? h->sync.mod : 0);
        etcd_txn_compare(t, h->k_epoch, ETCD_MOD, h->epoch_mod);
        etcd_txn_put(t, true, h->k_leader, lv, h->lease_id);
        etcd_txn_put(t, true, h->k_epoch, ev, 0);
        etcd_txn_put(t, true, h->k_sync, sv, 0);
    }
    free(lv);
    free(sv);
    send_or_die(h, t, campaign_done);
}

static void
campaign(struct ha *h)
{
    ha_set_state(h, HA_CAMPAIGNING);
    log_log("ha: the leader key is gone and this member is eligible: campaigning");
    h->busy = true;
    h->granted_ms = clock_mono_ms();
    int64_t ttl_s = h->co->conf.ha_ttl_ms / 1000;
    if (!etcd_lease_grant(h->etcd, ttl_s, campaign_granted, h))
        log_fatal("out of memory");
}

/* ---- leading -------------------------------------------------------------- */

static void take_back(struct ha *h);

static void
lease_lost(struct ha *h, const char *why)
{
    if (h->state != HA_LEADING)
        return;
    event_del(h->expiry);
    if (!h->standby_sync) {
        char msg[800];
        snprintf(msg, sizeof(msg),
                 "the leader lease is lost (%s) and no synchronous standby "
                 "acknowledges",
                 why);
        demote(h, msg);
        return;
    }
    ha_set_state(h, HA_LOST);
    log_warn("ha: the leader lease is lost (%s): serving on only while the synchronous standby "
             "acknowledges; trying to take the key back",
             why);
}

static void
expiry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ha *h = arg;
    char why[600];
    snprintf(why, sizeof(why), "no keep-alive answered before it ran out; etcd: %s",
             h->etcd_error[0] ? h->etcd_error : "no answer");
    lease_lost(h, why);
}

static void
keepalive_done(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    int64_t sent = h->ka_sent_ms;
    h->ka_busy = false;
    if (etcd_failed(h, r))
        return;
    if (r->id != h->lease_id) {
        /* an answer about a lease no longer ours (a take-back replaced
         * it meanwhile), or none at all: no news about the lease */
        if (r->id == 0)
            snprintf(h->etcd_error, sizeof(h->etcd_error), "a keep-alive answer naming no lease");
        return;
    }
    if (r->ttl <= 0) {
        if (h->state == HA_LEADING)
            lease_lost(h, "etcd says the lease is gone");
        else if (h->state == HA_LOST)
            take_back(h);
        return;
    }
    h->lease_end_ms = sent + r->ttl * 1000;
    if (h->state == HA_LOST) {
        ha_set_state(h, HA_LEADING);
        log_log("ha: the leader lease is alive after all: leading again");
    }
    if (h->state == HA_LEADING)
        arm_expiry(h);
}

static void
keepalive(struct ha *h)
{
    h->ka_busy = true;
    h->ka_sent_ms = clock_mono_ms(); /* the lease's end counts from here */
    if (!etcd_lease_keepalive(h->etcd, h->lease_id, keepalive_done, h))
        log_fatal("out of memory");
}

static void
revoke(struct ha *h, int64_t lease)
{
    if (lease && !etcd_lease_revoke(h->etcd, lease, lease_ignored, h))
        log_fatal("out of memory");
}

static void
take_back_done(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    int64_t lease = h->pending_lease;
    h->busy = false;
    h->pending_lease = 0;
    if (etcd_failed(h, r)) {
        revoke(h, lease); /* applied or not: the key (if put) goes with it */
        return;
    }
    if (r->succeeded) {
        /* the key is ours again, on the new lease, whatever happened
         * meanwhile: from now on that is the lease to keep alive */
        h->lease_id = lease;
        h->leader.mod = r->revision;
        h->leader.lease = lease;
        h->lease_end_ms = h->granted_ms + h->co->conf.ha_ttl_ms;
        if (h->state == HA_LOST)
            ha_set_state(h, HA_LEADING);
        if (h->state == HA_LEADING)
            arm_expiry(h);
        log_log("ha: took the leader key back (epoch %" PRIu64 " unchanged)", h->my_epoch);
        return;
    }
    revoke(h, lease);
    if (h->state != HA_LOST)
        return; /* leading again meanwhile: the lease (and the key on it) was alive */
    const etcd_kv *kv = etcd_reply_find(r, h->k_leader);
    char why[400];
    if (kv) {
        read_leader(h, kv);
        if (h->leader.instance == h->id) {
            /* ours, on a lease an earlier take-back put it on: keep that
             * one alive; the keep-alive settles whether it still is */
            h->lease_id = kv->lease;
            return;
        }
        snprintf(why, sizeof(why), "\"%s\" holds the leader key (epoch %" PRIu64 ")",
                 h->leader.member, h->leader.epoch);
    } else {
        snprintf(why, sizeof(why), "another instance has taken an epoch since (%s moved)",
                 h->k_epoch);
    }
    demote(h, why);
}

static void
take_back_granted(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    if (etcd_failed(h, r) || r->id == 0 || h->state != HA_LOST) {
        h->busy = false;
        if (r->error == NULL)
            revoke(h, r->id);
        return;
    }
    h->pending_lease = r->id; /* adopted only once the key is on it */
    char *lv = leader_value(h, h->my_epoch);
    etcd_txn *t = lv ? etcd_txn_new() : NULL;
    if (t) {
        etcd_txn_compare(t, h->k_leader, ETCD_CREATE, 0);
        etcd_txn_compare(t, h->k_epoch, ETCD_MOD, h->my_epoch_mod);
        etcd_txn_put(t, true, h->k_leader, lv, h->pending_lease);
        etcd_txn_get(t, false, h->k_leader);
    }
    free(lv);
    send_or_die(h, t, take_back_done);
}

static void
take_back(struct ha *h)
{
    if (h->busy)
        return;
    h->busy = true;
    h->granted_ms = clock_mono_ms();
    if (!etcd_lease_grant(h->etcd, h->co->conf.ha_ttl_ms / 1000, take_back_granted, h))
        log_fatal("out of memory");
}

/* ---- sync records ----------------------------------------------------------- */

static void send_record(struct ha *h, const char *member, uint64_t lsn);

static void
record_done(void *arg, const etcd_reply *r)
{
    struct ha *h = arg;
    void (*done)(void *, bool) = h->rec_done;
    void *darg = h->rec_arg;
    bool ok = !etcd_failed(h, r) && r->succeeded;
    h->rec_busy = false;
    h->rec_done = NULL;
    if (ok)
        h->sync.mod = r->revision;
    else if (r->error == NULL) {
        log_warn("ha: could not record the synchronous standby: the leader key is no longer "
                 "this instance's");
    }
    if (h->rec_next) {
        h->rec_next = false;
        h->rec_done = h->next_done;
        h->rec_arg = h->next_arg;
        send_record(h, h->next_member, h->next_lsn);
    }
    if (done)
        done(darg, ok);
}

static void
send_record(struct ha *h, const char *member, uint64_t lsn)
{
    char *sv = sync_value(h, member, lsn);
    etcd_txn *t = sv ? etcd_txn_new() : NULL;
    if (t) {
        etcd_txn_compare(t, h->k_leader, ETCD_MOD, h->leader.mod);
        etcd_txn_put(t, true, h->k_sync, sv, 0);
    }
    free(sv);
    h->rec_busy = true;
    /* what the record says, once etcd takes it */
    h->sync = (sync_view){.known = true, .lsn = lsn, .epoch = h->my_epoch, .mod = h->sync.mod};
    snprintf(h->sync.leader, sizeof(h->sync.leader), "%s", h->co->conf.ha_member);
    snprintf(h->sync.standby, sizeof(h->sync.standby), "%s", member);
    send_or_die(h, t, record_done);
}

void
ha_record_sync(coord *co, const char *member, uint64_t lsn, void (*done)(void *arg, bool ok),
               void *arg)
{
    struct ha *h = co->ha;
    if (h == NULL) {
        done(arg, true);
        return;
    }
    if (h->state != HA_LEADING) {
        done(arg, false);
        return;
    }
    if (h->rec_busy) { /* after the one in flight, which is answered "no" now */
        void (*old)(void *, bool) = h->rec_done ? h->rec_done : h->rec_next ? h->next_done : NULL;
        void *old_arg = h->rec_done ? h->rec_arg : h->next_arg;
        h->rec_done = NULL;
        h->rec_next = true;
        snprintf(h->next_member, sizeof(h->next_member), "%s", member);
        h->next_lsn = lsn;
        h->next_done = done;
        h->next_arg = arg;
        if (old)
            old(old_arg, false);
        return;
    }
    h->rec_done = done;
    h->rec_arg = arg;
    send_record(h, member, lsn);
}

void
ha_record_cancel(coord *co)
{
    struct ha *h = co->ha;
    if (h == NULL)
        return;
    h->rec_done = NULL;
    h->rec_next = false;
}

void
ha_note_standby(coord *co, bool synchronous)
{
    struct ha *h = co->ha;
    if (h == NULL || h->standby_sync == synchronous)
        return;
    h->standby_sync = synchronous;
    if (!synchronous && h->state == HA_LOST)
        demote(h, "the leader lease is lost and the synchronous standby is gone");
}

bool
ha_may_serve(const coord *co)
{
    const struct ha *h = co->ha;
    if (h == NULL)
        return true;
    if (h->state == HA_LEADING && clock_mono_ms() < h->lease_end_ms)
        return true;
    return (h->state == HA_LEADING || h->state == HA_LOST) && h->standby_sync;
}

/* ---- the timer ------------------------------------------------------------- */

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ha *h = arg;
    int64_t next = h->co->conf.ha_renew_ms;
    etcd_reap(h->etcd);
    switch (h->state) {
    case HA_FOLLOWING:
        if (!h->busy)
            look(h);
        if (!h->ev->streaming(h->co) && next > FOLLOW_FAST_MS)
            next = FOLLOW_FAST_MS;
        break;
    case HA_CAMPAIGNING:
    case HA_DEMOTED:
        break;
    case HA_LEADING:
    case HA_LOST:
        if (!h->ka_busy && h->lease_id)
            keepalive(h);
        break;
    default:
        log_panic("ha: unknown state %d", (int)h->state);
    }
    ha_schedule(h, next);
}

static void
ha_schedule(struct ha *h, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(h->tick, &tv);
}

/* ---- set-up ----------------------------------------------------------------- */

static bool
valid_member(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= MEMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("-_.:", s[i])))
            return false;
    return true;
}

bool
ha_check_config(const coord_conf *cf, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    char perr[200];
    if (cf->ha_etcd == NULL)
        return true;
    if (cf->primary_addr || cf->standby_addr) {
        snprintf(err, errlen,
                 "[ha]: an instance with [ha] takes its role from etcd: remove "
                 "[standby] primary and standby");
        return false;
    }
    if (!valid_member(cf->ha_member)) {
        snprintf(err, errlen,
                 "[ha] member \"%s\": use letters, digits, '-', '_', '.' and ':', at most %d "
                 "bytes",
                 cf->ha_member, MEMBER_MAX - 1);
        return false;
    }
    if (!etcd_check_endpoints(cf->ha_etcd, perr, sizeof(perr))) {
        snprintf(err, errlen, "[ha] etcd: %s", perr);
        return false;
    }
    if (cf->ha_ttl_ms % 1000) {
        snprintf(err, errlen, "[ha] ttl must be whole seconds (etcd's leases count seconds)");
        return false;
    }
    if (cf->ha_renew_ms * 3 > cf->ha_ttl_ms) {
        snprintf(err, errlen,
                 "[ha] renew_interval (%lld ms) must be at most a third of ttl (%lld ms): a "
                 "lease must survive a lost keep-alive",
                 (long long)cf->ha_renew_ms, (long long)cf->ha_ttl_ms);
        return false;
    }
    if (cf->ha_prefix[0] != '/' || strlen(cf->ha_prefix) > 200) {
        snprintf(err, errlen, "[ha] prefix \"%s\" must start with '/' (at most 200 bytes)",
                 cf->ha_prefix);
        return false;
    }
    if ((cf->ha_etcd_cert || cf->ha_etcd_key) &&
        !(cf->ha_etcd_cert && cf->ha_etcd_key && cf->ha_etcd_ca)) {
        snprintf(err, errlen, "[ha] etcd_cert and etcd_key go together, with etcd_ca");
        return false;
    }
    if (cf->ha_advertise == NULL) {
        if (strcmp(cf->listen_addr, "0.0.0.0") == 0 || strcmp(cf->listen_addr, "::") == 0) {
            snprintf(err, errlen,
                     "[ha] advertise is required when listen_addr is a wildcard: "
                     "say where clients and the standby reach this instance");
            return false;
        }
        return true;
    }
    if (!config_parse_hostport(cf->ha_advertise, 0, host, sizeof(host), &port, perr,
                               sizeof(perr))) {
        snprintf(err, errlen, "[ha] advertise: %s", perr);
        return false;
    }
    return true;
}

bool
ha_enabled(const coord *co)
{
    return co->conf.ha_etcd != NULL;
}

void
ha_start(coord *co, const ha_events *ev)
{
    char err[600];
    if (!ha_enabled(co))
        return;
    struct ha *h = calloc(1, sizeof(*h));
    if (h == NULL)
        log_fatal("out of memory");
    h->co = co;
    h->ev = ev;
    h->id = coord_new_instance();
    if (co->conf.ha_advertise == NULL) {
        char adv[300];
        snprintf(adv, sizeof(adv), strchr(co->conf.listen_addr, ':') ? "[%s]:%d" : "%s:%d",
                 co->conf.listen_addr, co->conf.listen_port);
        if ((co->conf.ha_advertise = strdup(adv)) == NULL)
            log_fatal("out of memory");
    }
    const char *p = co->conf.ha_prefix;
    size_t pl = strlen(p);
    while (pl > 1 && p[pl - 1] == '/')
        pl--;
    snprintf(h->k_leader, sizeof(h->k_leader), "%.*s/%s/leader", (int)pl, p, co->conf.name);
    snprintf(h->k_sync, sizeof(h->k_sync), "%.*s/%s/sync", (int)pl, p, co->conf.name);
    snprintf(h->k_epoch, sizeof(h->k_epoch), "%.*s/%s/epoch", (int)pl, p, co->conf.name);
    if (co->dns == NULL) /* freed by main after the loop's last pass */
        co->dns = evdns_base_new(co->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                               EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    etcd_options o = {.endpoints = co->conf.ha_etcd,
                      .dns = co->dns,
                      .ca = co->conf.ha_etcd_ca,
                      .cert = co->conf.ha_etcd_cert,
                      .key = co->conf.ha_etcd_key,
                      .timeout_ms = co->conf.ha_etcd_timeout_ms};
    if ((h->etcd = etcd_create(co->base, &o, err, sizeof(err))) == NULL)
        log_fatal("[ha] etcd: %s", err);
    h->tick = evtimer_new(co->base, tick_cb, h);
    h->expiry = evtimer_new(co->base, expiry_cb, h);
    if (h->tick == NULL || h->expiry == NULL)
        log_fatal("out of memory");
    co->ha = h;
    log_log("ha: member \"%s\" (at %s) watching %s through etcd %s", co->conf.ha_member,
            co->conf.ha_advertise, h->k_leader, co->conf.ha_etcd);
    ha_schedule(h, 0);
}

void
ha_shutdown(coord *co)
{
    struct ha *h = co->ha;
    if (h == NULL)
        return;
    etcd_free(h->etcd);
    event_free(h->tick);
    event_free(h->expiry);
    free(h);
    co->ha = NULL;
}

/* ---- REPLICATION ------------------------------------------------------------ */

void
ha_describe(const coord *co, proto_replication *out)
{
    static char leader[500], sync[300], etcdv[700];
    const struct ha *h = co->ha;
    if (h == NULL)
        return;
    const leader_view *l = &h->leader;
    if (l->known)
        snprintf(leader, sizeof(leader), "%s at %s, epoch %" PRIu64 "%s", l->member, l->addr,
                 l->epoch, h->state == HA_LEADING || h->state == HA_LOST ? " (this instance)" : "");
    else
        snprintf(leader, sizeof(leader), "nobody%s",
                 h->state == HA_CAMPAIGNING ? " (this instance is campaigning)" : "");
    out->ha_leader = leader;
    out->ha_lease_ms = -1;
    if (h->state == HA_LEADING || h->state == HA_LOST) {
        int64_t left = h->lease_end_ms - clock_mono_ms();
        out->ha_lease_ms = left > 0 ? left : 0;
    }
    if (!h->sync.known)
        snprintf(sync, sizeof(sync), "not recorded");
    else if (h->sync.standby[0])
        snprintf(sync, sizeof(sync), "%s (caught up to %" PRIu64 ")", h->sync.standby, h->sync.lsn);
    else
        snprintf(sync, sizeof(sync), "none: %s serves alone", h->sync.leader);
    out->ha_sync = sync;
    if (etcd_reachable(h->etcd))
        snprintf(etcdv, sizeof(etcdv), "reachable (%s)", etcd_endpoint(h->etcd));
    else
        snprintf(etcdv, sizeof(etcdv), "unreachable: %s", h->etcd_error);
    out->ha_etcd = etcdv;
}
