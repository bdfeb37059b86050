/*
 * ha.h — automatic failover through etcd (ha.c): the leader lease, the
 * synchronous standby recorded in etcd, epochs handed out by etcd, and
 * self-demotion.  Only with an [ha] section; every function is a no-op (or
 * says "yes") without one.
 */
#ifndef DTX_HA_H
#define DTX_HA_H

#include "coord.h"

#include "proto_repl.h"

/* What ha.c asks of the module that runs the roles (roles.c). */
typedef struct ha_events {
    /* this instance won the leader key with epoch: promote */
    void (*won)(coord *co, uint64_t epoch);
    /* the leader is another instance, reachable at addr: stream from it
     * (false: not now; asked again at the next poll) */
    bool (*follow)(coord *co, const char *addr);
    /* is a primary streaming to this standby right now? */
    bool (*streaming)(coord *co);
    /* this primary lost its mandate (why): stop serving, start again */
    void (*demote)(coord *co, const char *why);
} ha_events;

/* Check the [ha] keys of a parsed configuration; false with the reason. */
bool ha_check_config(const coord_conf *cf, char *err, size_t errlen);
bool ha_enabled(const coord *co);
/* Connect to etcd and begin watching the keys (the instance is a standby
 * until it wins).  Fatal when etcd's settings cannot be used. */
void ha_start(coord *co, const ha_events *ev);
void ha_shutdown(coord *co);

/* The primary's synchronous standby, as walsend.c sees it: one is
 * streaming and counted on (true), or not. */
void ha_note_standby(coord *co, bool synchronous);
/* Record in etcd, as leader, that member ("" : none) is the synchronous
 * standby, caught up to lsn; done(arg, ok) once etcd has answered (ok:
 * recorded).  One at a time: a new call replaces one not answered yet,
 * whose done(arg, false) is called at once; after ha_record_cancel none
 * is called.  Not leading (or without [ha]): done(arg, false) (true) at
 * once, from inside the call. */
void ha_record_sync(coord *co, const char *member, uint64_t lsn, void (*done)(void *arg, bool ok),
                    void *arg);
void ha_record_cancel(coord *co);

/* May this primary start a transaction, or act on a decision made
 * durable now?  false once its lease has run out, unless a synchronous
 * standby still acknowledges (it has then not been promoted). */
bool ha_may_serve(const coord *co);

/* The [ha] part of REPLICATION's answer; strings valid until the loop
 * runs again. */
void ha_describe(const coord *co, proto_replication *out);

#endif
