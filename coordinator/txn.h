/*
 * txn.h — the transaction table and the state machine of one transaction
 * (txn.c).
 */
#ifndef DTX_TXN_H
#define DTX_TXN_H

#include "coord.h"

#include "proto.h"

/* How a transaction answers whoever owns it (a client connection; client.c
 * sets these).  A transaction never includes its owner's header: it calls
 * these, and owner is opaque to it. */
typedef struct txn_owner_ops {
    /* frames for the client, encoded (a RESULT, the first error, ...) */
    void (*send)(void *owner, const void *frames, size_t len);
    /* an ERROR frame with these fields */
    void (*send_err)(void *owner, const proto_error *e);
    /* the request in progress (a statement) is answered in full */
    void (*request_done)(void *owner);
    /* the transaction's outcome (ends a COMMIT, ROLLBACK or ONESHOT); the
     * owner no longer hears of t after this */
    void (*over)(void *owner, txn *t, proto_outcome outcome);
} txn_owner_ops;

/* What the transaction table tells the module above it (the resolver). */
typedef struct txn_events {
    /* a logged commit was not finished in line on every branch */
    void (*commit_unfinished)(coord *co);
} txn_events;

void txn_table_init(coord *co, const txn_events *ev);
/* Exit: free every transaction still in the table, without a word to
 * anyone (what was decided is in the log; recovery finishes it), then the
 * table.  Call once nothing can call back into them (links and log gone). */
void txn_table_free(coord *co);
/* Teardown, the commit log closed: no transaction's timer fires any more
 * (a prepare timeout would abort, and record the outcome in the log). */
void txn_table_stop_timers(coord *co);
/* A transaction with the gid of seq in the current epoch (a seq reserved
 * for the client earlier), or of the next seq when seq is 0; NULL when out
 * of memory.  client_name: the certificate name of its client (copied; it goes
 * with each branch to the participants, for their [roles]).  The table owns
 * it: it is freed once its outcome is settled and nothing of it is
 * outstanding. */
txn *txn_begin(coord *co, const txn_owner_ops *ops, void *owner, const char *client_name,
               uint64_t seq);
void txn_exec(txn *t, const proto_stmt *st);
void txn_commit(txn *t);
void txn_rollback(txn *t);
void txn_oneshot(txn *t, const proto_stmts *body);
/* The client went away (or was closed): abort unless decided; never reply. */
void txn_detach_client(txn *t);
const char *txn_gid(const txn *t);
txn *txn_lookup(coord *co, const char *gid);
bool txn_is_finished(const txn *t);
/* Its COMMIT record is durable (phase two is under way): it commits. */
bool txn_decided_commit(const txn *t);
/* The client was told ABORTED; only rollbacks are still under way (e.g. a
 * branch whose statement outlived statement_timeout). */
bool txn_told_aborted(const txn *t);
/* Live transactions past their vote, for an INDOUBT reply: *out is an
 * array of *n entries; gid and state belong to the transactions (valid
 * until the loop runs again), participants ("a,b": the branches it has) is
 * allocated for each entry (NULL when out of memory).  The caller frees each
 * participants and the array with free(). */
void txn_collect_indoubt(coord *co, proto_indoubt_entry **out, uint32_t *n);

#endif
