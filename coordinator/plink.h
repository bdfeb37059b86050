/*
 * plink.h — the coordinator's links to its participants (plink.c): one
 * multiplexed TLS connection per configured participant, tagged requests.
 */
#ifndef DTX_PLINK_H
#define DTX_PLINK_H

#include "coord.h"

#include "frame.h"
#include "proto.h"

/* SQLSTATE of a participant's refusal of a lower (or another instance's)
 * epoch: the participant's fence */
#define PLINK_FENCED_SQLSTATE "08004"

/* Reply callback of a tagged request: f is a RESULT, DONE, LIST_REPLY or
 * ERROR frame, or NULL when the link was lost before the final reply.
 * `final` says whether the request is over (no more calls follow). */
typedef void (*plink_reply_fn)(void *arg, const frame_view *f, bool final);

/* What a link tells the modules above it (roles.c installs the table:
 * a ready link goes to the resolver), set once before the links start. */
typedef struct plink_events {
    /* the link has just become ready (HELLO answered) */
    void (*ready)(void *arg, plink *l);
    /* the participant refused this coordinator's epoch (08004): another
     * instance has taken over; message is the participant's */
    void (*fenced)(void *arg, plink *l, const char *message);
} plink_events;

void plink_set_events(coord *co, const plink_events *ev, void *arg);

/* A link for pc, DOWN until plink_start; NULL when out of memory.  Freed
 * with plink_free. */
plink *plink_create(coord *co, const part_conf *pc);
/* Teardown, first step for every link: see plink.c. */
void plink_shutdown(plink *l);
void plink_free(plink *l);
void plink_start(plink *l);
bool plink_ready(const plink *l);
/* requests sent and not yet answered */
uint32_t plink_inflight(const plink *l);
/* the participant's configured name (the link's, valid while it lives) */
const char *plink_name(const plink *l);
/* the link of the participant with this name, or NULL */
plink *plink_find(coord *co, const char *name);
/* Queue a request; the encoder writes the frame with the given tag.  Returns
 * false (and does not call cb) when the link is not ready.  client: the
 * certificate name of the transaction's client (NULL: none), sent to
 * participants of protocol 1.5 on (their [roles]). */
bool plink_send_work(plink *l, const char *branch, uint8_t flags, const proto_stmt *stmts,
                     uint16_t n, const char *client, plink_reply_fn cb, void *arg)
    __attribute__((warn_unused_result));
bool plink_send_finish(plink *l, const char *branch, bool commit, uint64_t xid, plink_reply_fn cb,
                       void *arg) __attribute__((warn_unused_result));
bool plink_send_list(plink *l, const char *prefix, plink_reply_fn cb, void *arg)
    __attribute__((warn_unused_result));
/* Ask the participant to stop the branch's request in flight (CANCEL, the
 * reply is ignored).  False when the link is not ready or the participant
 * speaks protocol 1.0, which has no CANCEL. */
bool plink_send_cancel(plink *l, const char *branch) __attribute__((warn_unused_result));

#endif
