/*
 * coord.h — internal types of dtx-coordinator, shared by its modules.
 *
 *   main.c      start-up, configuration, listener, signals, shutdown
 *   client.c    client connections: start-up handshake, request dispatch
 *   txn.c       the transaction table and one state machine per transaction
 *   plink.c     links to participants: connect, reconnect, tagged requests
 *   clog.c      the commit log: record formats on top of wal/, replay
 *   resolver.c  resolution of in-doubt branches (recovery and periodic sweep)
 *
 * One process, one libevent loop, one thread (plus the WAL writer thread
 * inside wal/).  Nothing here blocks: disk waits go through the WAL's
 * durability callbacks, peers through conns (conn.h).
 */
#ifndef DTX_COORD_H
#define DTX_COORD_H

#include "buf.h"
#include "conn.h"
#include "proto.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#define COORD_NAME_MAX 32
#define GID_MAX        96
#define BRANCH_MAX     200 /* PostgreSQL's limit on prepared transaction names */
#define PART_NAME_MAX  48

typedef struct coord coord;
typedef struct txn txn;
typedef struct client client;
typedef struct plink plink;
typedef struct clog clog;

/* ---- configuration (main.c) ---------------------------------------------- */

typedef struct part_conf {
    char name[PART_NAME_MAX];
    char host[256];
    uint16_t port;
} part_conf;

typedef struct coord_conf {
    char *name;
    char *listen_addr;
    int listen_port;
    char *tls_cert, *tls_key, *tls_ca;
    char *allowed_clients;
    char *data_dir;
    int64_t prepare_timeout_ms;
    int64_t commit_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t statement_timeout_ms;
    int64_t sweep_interval_ms;
    int64_t max_frame;
    int64_t wal_segment_size;
    int64_t outcome_retention_ms;
    int64_t checkpoint_interval_ms;
    int checkpoint_segments;
    int max_clients;
    char *log_level;
    char *log_file;
    /* [participants] */
    part_conf *parts;
    int nparts;
} coord_conf;

/* ---- the process --------------------------------------------------------- */

struct coord {
    coord_conf conf;
    struct event_base *base;
    struct evdns_base *dns; /* participants' host names (plink.c); NULL: none */
    SSL_CTX *server_ctx;    /* for clients */
    char **allowed;         /* allowed_clients, split; checked once TLS is up */
    size_t nallowed;
    SSL_CTX *client_ctx; /* towards participants (mutual TLS) */
    struct evconnlistener *listener;
    uint64_t epoch;
    uint64_t next_seq;
    clog *log;
    plink **links;
    int nlinks;
    /* transaction table: gid -> txn, chained hash */
    txn **tab;
    size_t tab_size;
    size_t ntxn;
    int nclients;
    bool shutting_down;
    bool fast_shutdown;
    bool tearing_down; /* the loop has ended: links are going; durable callbacks only release */
    struct event *sigterm_ev, *sigint_ev, *shutdown_timer;
    struct event *sweep_timer;
    struct event *kick_timer; /* resolver_kick(): a pass soon */
    /* counters, for logs, admin and benchmarks */
    uint64_t n_committed, n_aborted, n_unknown, n_heuristic;
};

/* ---- participant links (plink.c) ----------------------------------------- */

/* Reply callback of a tagged request: f is a RESULT, DONE, LIST_REPLY or
 * ERROR frame, or NULL when the link was lost before the final reply.
 * `final` says whether the request is over (no more calls follow). */
typedef void (*plink_reply_fn)(void *arg, const frame_view *f, bool final);

plink *plink_create(coord *co, const part_conf *pc);
void plink_shutdown(plink *l);
void plink_free(plink *l);
void plink_start(plink *l);
bool plink_ready(const plink *l);
const char *plink_name(const plink *l);
/* Queue a request; the encoder writes the frame with the given tag.  Returns
 * false (and does not call cb) when the link is not ready. */
bool plink_send_work(plink *l, const char *branch, uint8_t flags, const proto_stmt *stmts,
                     uint16_t n, plink_reply_fn cb, void *arg) __attribute__((warn_unused_result));
bool plink_send_finish(plink *l, const char *branch, bool commit, uint64_t xid, plink_reply_fn cb,
                       void *arg) __attribute__((warn_unused_result));
bool plink_send_list(plink *l, const char *prefix, plink_reply_fn cb, void *arg)
    __attribute__((warn_unused_result));
/* Ask the participant to stop the branch's request in flight (CANCEL, the
 * reply is ignored).  False when the link is not ready or the participant
 * speaks protocol 1.0, which has no CANCEL. */
bool plink_send_cancel(plink *l, const char *branch) __attribute__((warn_unused_result));
plink *coord_find_link(coord *co, const char *name);
/* Called by plink when a link becomes ready (the resolver uses it). */
void resolver_link_ready(coord *co, plink *l);

/* ---- transactions (txn.c) ------------------------------------------------ */

/* A transaction with the gid of seq in the current epoch (a seq reserved
 * for the client earlier), or of the next seq when seq is 0. */
txn *txn_begin(coord *co, client *cl, uint64_t seq);
void txn_exec(txn *t, const proto_stmt *st);
void txn_commit(txn *t);
void txn_rollback(txn *t);
void txn_oneshot(txn *t, const proto_stmts *body);
/* The client went away (or was closed): abort unless decided; never reply. */
void txn_detach_client(txn *t);
const char *txn_gid(const txn *t);
txn *txn_lookup(coord *co, const char *gid);
bool txn_is_finished(const txn *t);
/* The client was told ABORTED; only rollbacks are still under way (e.g. a
 * branch whose statement outlived statement_timeout). */
bool txn_told_aborted(const txn *t);
void txn_table_init(coord *co);
/* fill an INDOUBT reply with live transactions past their decision */
void txn_collect_indoubt(coord *co, proto_indoubt_entry **out, uint32_t *n);

/* ---- clients (client.c) -------------------------------------------------- */

void client_accept(coord *co, int fd);
/* txn -> client: reply frames, and the end of a transaction */
void client_send(client *cl, const wbuf *w);
void client_send_bytes(client *cl, const void *p, size_t n);
/* Send an ERROR frame as given (all its fields). */
void client_send_err(client *cl, const proto_error *e);
void client_send_error(client *cl, const char *sqlstate, const char *participant, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
void client_txn_over(client *cl, txn *t, proto_outcome outcome);
/* the current request is complete: process the next frame */
void client_request_done(client *cl);
void client_close_all(coord *co);

/* ---- commit log (clog.c) ------------------------------------------------- */

/* What became of one branch of a logged commit.  Values are stored in
 * HEURISTIC_END records: never renumber them. */
typedef enum clog_branch_result {
    BRANCH_PENDING = 0,     /* not finished yet (in memory only) */
    BRANCH_COMMITTED = 1,   /* COMMIT PREPARED done, or proven committed */
    BRANCH_ROLLED_BACK = 2, /* heuristic: rolled back by someone else */
    BRANCH_VANISHED = 3,    /* heuristic: gone, and its outcome cannot be proven */
} clog_branch_result;

typedef struct clog_branch {
    char participant[PART_NAME_MAX];
    uint64_t xid;
    uint8_t result; /* clog_branch_result; in memory, until END */
    bool inflight;  /* in memory only: the resolver has a FINISH out */
} clog_branch;

/* A COMMIT without END: still to be finished on every branch. */
typedef struct clog_pending {
    char gid[GID_MAX];
    uint64_t commit_ms;
    uint64_t lsn;        /* where its COMMIT record starts: checkpoints keep it */
    uint64_t epoch, seq; /* parsed from gid; 0, 0 if not one of ours */
    int nbranches;
    clog_branch *branches;
    struct clog_pending *next;         /* the list, newest first */
    struct clog_pending *prev, *hnext; /* the clog's: list and index */
} clog_pending;

/* Outcomes are kept, and forgotten, in chunks of this many seqs (clog.c). */
#define CLOG_CHUNK_SEQS 1024u

typedef void (*clog_durable_fn)(void *arg);

clog *clog_open(coord *co, const char *dir, char *err, size_t errlen);
void clog_close(clog *l);
/* highest epoch recorded so far (0 for a new log) */
uint64_t clog_last_epoch(const clog *l);
/* log a new epoch and call cb once it is durable */
void clog_begin_epoch(clog *l, uint64_t epoch, clog_durable_fn cb, void *arg);
/* COMMIT{gid, branches}: cb runs on the loop once durable */
void clog_commit(clog *l, const char *gid, const clog_branch *br, int n, clog_durable_fn cb,
                 void *arg);
/* Every branch of a pending commit is finished: log END{gid} (not forced),
 * or HEURISTIC_END when some branch has a heuristic result, and forget the
 * pending commit.  Branches still BRANCH_PENDING count as committed (the
 * caller saw them commit). */
void clog_end(clog *l, const char *gid);
/* Record what became of one branch of a pending commit (no log write: END
 * or HEURISTIC_END carries it).  Unknown gid or participant: no-op. */
void clog_set_branch_result(clog *l, const char *gid, const char *participant,
                            clog_branch_result r);
/* true when every branch of p has a result */
bool clog_pending_finished(const clog_pending *p);
/* true when some branch of p has a heuristic result */
bool clog_pending_heuristic(const clog_pending *p);
/* "committed on a; rolled back by hand on b" into buf; returns buf */
const char *clog_pending_describe(const clog_pending *p, char *buf, size_t len);
/* ONEPHASE{gid}: marks a gid whose outcome was decided by a one-phase
 * commit; cb once durable */
void clog_onephase(clog *l, const char *gid, clog_durable_fn cb, void *arg);
/* list of COMMIT-without-END, owned by the clog */
clog_pending *clog_pending_list(clog *l);
clog_pending *clog_find_pending(clog *l, const char *gid);
/* outcome known from the log (or a recent in-memory outcome) for STATUS */
proto_outcome clog_outcome_of(clog *l, const char *gid, const char **detail);
/* remember the outcome of a finished transaction for STATUS */
void clog_remember(clog *l, const char *gid, proto_outcome o);
/* Transactions with a heuristic outcome whose END is logged, still within
 * outcome_retention: fn is called for each, oldest first.  The strings are
 * the clog's, valid during the call. */
typedef void (*clog_heuristic_fn)(void *arg, const char *gid, uint64_t ended_ms,
                                  const char *participants);
void clog_foreach_heuristic(clog *l, clog_heuristic_fn fn, void *arg);
/* Start periodic checkpoints (checkpoint_interval, checkpoint_segments);
 * call once the epoch is durable. */
void clog_checkpoint_start(clog *l);

/* ---- resolver (resolver.c) ----------------------------------------------- */

void resolver_start(coord *co);
void resolver_stop(coord *co);
/* a COMMIT's branches were not all finished in line; retry in background */
void resolver_kick(coord *co);

/* ---- helpers ------------------------------------------------------------- */

uint64_t coord_now_ms(void);
/* gid -> "<gid>:<participant>" */
void coord_branch_name(char *out, size_t len, const char *gid, const char *participant);
/* the gid of seq in the current epoch (txn.c) */
void coord_gid_format(const coord *co, uint64_t seq, char *out, size_t len);
/* bucket of a gid in a table of n buckets (hash_str; txn.c) */
size_t coord_gid_hash(const char *gid, size_t n);

#endif
