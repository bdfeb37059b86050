/*
 * branch.h — one branch of a global transaction on this participant: its
 * PostgreSQL transaction, driven by WORK requests (state machine in
 * branch.c and docs/participant.md).
 */
#ifndef DTX_PART_BRANCH_H
#define DTX_PART_BRANCH_H

#include "frame.h"
#include "pconf.h"
#include "peer.h"
#include "pgpool.h"
#include "slots.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct branch branch;

/* The branches of one coordinator connection (it embeds this). */
typedef struct branch_set {
    branch *head;
    int n;
} branch_set;

/* Module set-up: the pool and the slots every branch uses, and the largest
 * frame a RESULT may fill (max_frame).  Pointers kept, not copied. */
void branch_init(pg_pool *pool, slots *sl, const part_conf *conf);
/* Handle a WORK frame of cc (payload only valid during the call). */
void branch_on_work(coord_conn *cc, branch_set *set, const frame_view *f);
/* A CANCEL: stop the named branch's request in flight (see proto.h). */
void branch_on_cancel(coord_conn *cc, branch_set *set, const frame_view *f);
/* cc is gone: roll back its unprepared branches; prepared ones stay. */
void branch_detach_all(branch_set *set);
/* Shutting down: answer waiting requests, roll back idle branches. */
void branch_shutdown_all(void);
/* Branches alive, attached or not (a rollback may still be running). */
int branch_live_count(void);
/* Free every branch without touching PostgreSQL (process exit). */
void branch_free_all(void);

#endif
