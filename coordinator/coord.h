/*
 * coord.h — the coordinator's process-wide state and the helpers every
 * module of it shares.  The lowest layer: it includes no other module.
 *
 * Modules, highest first (docs/architecture.md, "Layers"; make check
 * enforces the include order with tests/layers/check.sh):
 *
 *   main.c      start-up, configuration, signals, reload, shutdown
 *   ops.c       /metrics and the health endpoints (docs/operations.md)
 *   roles.c     primary or standby, promotion, fencing, the listener
 *   client.c    client connections: start-up handshake, request dispatch
 *   resolver.c  resolution of in-doubt branches (recovery and periodic sweep)
 *   walsend.c   the primary's side of replication; walrecv.c the standby's
 *   txn.c       the transaction table and one state machine per transaction
 *   plink.c     links to participants: connect, reconnect, tagged requests
 *   slotq.c     admission of PREPARE rounds against participants' slots
 *   ha.c        automatic failover through etcd ([ha]); etcd.c its client
 *   clog.c      the commit log: record formats on top of wal/, replay
 *   coord.c     this header's helpers
 *
 * A module reaches only the modules below it.  Where a lower one must tell
 * a higher one something, it calls a table of callbacks the higher one set:
 * txn tells its client through txn_owner_ops and asks for a resolver pass
 * through txn_events; plink says a link became ready through plink_events.
 *
 * Threads: one libevent loop runs every module.  wal/ adds two threads of
 * its own: the writer (appends, group commit, fdatasync) and the segment
 * preparer (zero-filled segments made ahead of need), which counts its
 * fsync times into histograms (relaxed atomics); clog.c starts a
 * short-lived thread per checkpoint for the segment removal and its
 * directory fsync.  They reach the loop only through eventfds (durability
 * callbacks, checkpoint done).  Nothing on the loop blocks: disk waits go
 * through the WAL's durability callbacks, peers through conns (conn.h),
 * host names through evdns.
 */
#ifndef DTX_COORD_H
#define DTX_COORD_H

#include "metrics.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
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
    char *tls_crl; /* revoked certificates of tls_ca's CAs (optional) */
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
    int max_clients;                   /* authenticated clients */
    int64_t authentication_timeout_ms; /* TLS and HELLO within this, from accept */
    int max_authenticating;            /* connections not yet authenticated, at most */
    char *log_level;
    char *log_file;
    int log_format;    /* log_format of log.h */
    char *http_listen; /* operations endpoint (ops.c); NULL: none */
    bool http_tls;     /* ...over HTTPS, with tls_cert and tls_key */
    /* replication (docs/failover.md) */
    char *allowed_standbys;          /* certificate names that may stream the log */
    char *admin_clients;             /* certificate names that may promote */
    char *standby_addr;              /* "standby": asked at start whether it was promoted */
    int64_t sync_standby_timeout_ms; /* 0: commits wait for a gone standby forever */
    int64_t fence_timeout_ms;        /* a promotion waits this long for participants */
    char *primary_addr;              /* [standby] primary: this coordinator is its standby */
    /* [ha]: automatic failover through etcd (ha.c); ha_etcd NULL: none */
    char *ha_etcd;              /* etcd endpoints, "host:port, ..." */
    char *ha_prefix;            /* keys live under <prefix>/<name>/ */
    char *ha_member;            /* this instance's name among the name's instances */
    char *ha_advertise;         /* where clients and the standby reach this instance */
    int64_t ha_ttl_ms;          /* the leader lease */
    int64_t ha_renew_ms;        /* keep-alives and polls this often */
    int64_t ha_etcd_timeout_ms; /* one request to one endpoint */
    char *ha_etcd_ca, *ha_etcd_cert, *ha_etcd_key; /* https to etcd (ca), client certificate */
    /* [participants] */
    part_conf *parts;
    int nparts;
} coord_conf;

/* ---- counting, for /metrics (ops.c) --------------------------------------- */

/* How a transaction ended, as told to its client */
typedef enum coord_outcome {
    CO_COMMITTED = 0,
    CO_ABORTED,
    CO_UNKNOWN,
    CO_HEURISTIC,
    CO_NOUTCOMES,
} coord_outcome;

/* What kind of transaction it was: read-only (nothing to commit anywhere),
 * one-phase (one branch wrote), one-shot (ONESHOT over several), interactive
 * (BEGIN ... COMMIT over several) */
typedef enum coord_kind {
    CK_ONESHOT = 0,
    CK_INTERACTIVE,
    CK_ONEPHASE,
    CK_READONLY,
    CK_NKINDS,
} coord_kind;

typedef enum coord_resolver_action {
    CR_COMMIT = 0, /* COMMIT PREPARED of a decided branch */
    CR_ROLLBACK,   /* ROLLBACK PREPARED of an orphaned one */
    CR_LIST,       /* a listing asked for */
    CR_NACTIONS,
} coord_resolver_action;

typedef struct coord_stats {
    uint64_t txns[CO_NOUTCOMES][CK_NKINDS];
    metrics_hist commit_latency; /* COMMIT or ONESHOT received -> its outcome sent (µs) */
    metrics_hist prepare_round;  /* PREPARE sent -> every vote in (µs) */
    metrics_hist durable_wait;   /* COMMIT record appended -> durable (µs) */
    uint64_t resolver[CR_NACTIONS];
} coord_stats;

/* ---- the process --------------------------------------------------------- */

struct txn_events;
struct plink_events;
struct walsend_state;
struct walrecv;
struct client_events;
struct ha;

/* What this process is (docs/failover.md): a standby streams the log and
 * answers STATUS, INDOUBT and REPLICATION only; PROMOTING has stopped
 * streaming and is raising its epoch and fencing the participants;
 * STARTING is a primary whose log says it had a synchronous standby,
 * waiting for it to acknowledge the new EPOCH before serving. */
typedef enum coord_role {
    COORD_PRIMARY = 0,
    COORD_STANDBY,
    COORD_PROMOTING,
    COORD_STARTING,
} coord_role;

struct coord {
    coord_conf conf;
    struct event_base *base;
    struct evdns_base *dns; /* participants' host names (plink.c); NULL: none */
    SSL_CTX *server_ctx;    /* for clients */
    char **allowed;         /* allowed_clients, split; checked once TLS is up */
    size_t nallowed;
    char **standbys, **admins; /* allowed_standbys, admin_clients, split (may be empty) */
    size_t nstandbys, nadmins;
    coord_role role;
    struct walsend_state *wss; /* walsend.c: the primary's side of replication */
    struct walrecv *wr;        /* walrecv.c: the standby's */
    struct ha *ha;             /* ha.c: automatic failover ([ha]); NULL: none */
    uint64_t won_epoch;        /* the epoch etcd gave this instance's promotion (0: last + 1) */
    bool restart;              /* at exit, start again (an [ha] instance that lost the lead) */
    SSL_CTX *client_ctx;       /* towards participants (mutual TLS) */
    struct evconnlistener *listener;
    uint64_t epoch;
    uint64_t instance; /* random, drawn when this process claims its epoch (HELLO, EPOCH) */
    uint64_t next_seq;
    clog *log;
    plink **links;
    int nlinks;
    struct slotq *slots; /* slotq.c: PREPAREs admitted against the links' slot budgets */
    /* transaction table (txn.c): gid -> txn, chained hash */
    txn **tab;
    size_t tab_size;
    size_t ntxn;
    int nclients;
    bool shutting_down;
    bool fast_shutdown;
    bool tearing_down; /* the loop has ended: links are going; durable callbacks only release */
    struct event *sigterm_ev, *sigint_ev, *sighup_ev, *shutdown_timer;
    const char *conf_path;     /* the configuration file, read again on SIGHUP */
    struct event *sweep_timer; /* resolver.c */
    struct event *kick_timer;  /* resolver_kick(): a pass soon */
    /* upward callbacks, set by the higher module (see the head comment) */
    const struct txn_events *txn_ev;
    const struct client_events *client_ev;
    const struct plink_events *plink_ev;
    void *plink_ev_arg;
    /* the wall clock of the log's timestamps and the outcome retention;
     * NULL: clock_wall_ms (a test sets its own) */
    uint64_t (*wall_ms)(void);
    /* counters, for logs, admin and benchmarks */
    uint64_t n_committed, n_aborted, n_unknown, n_heuristic;
    coord_stats stats; /* for /metrics (ops.c); coord_stats_init */
    struct ops *ops;   /* ops.c: the HTTP endpoint; NULL: none */
};

/* ---- helpers (coord.c) --------------------------------------------------- */

/* gid -> "<gid>:<participant>", the branch's name in PostgreSQL */
void coord_branch_name(char *out, size_t len, const char *gid, const char *participant);
/* the gid of seq in the current epoch: "dtx:<name>:<epoch>:<seq>" */
void coord_gid_format(const coord *co, uint64_t seq, char *out, size_t len);
/* A random instance id, never 0: this process's claim to the epoch it is
 * about to log (coord.c). */
uint64_t coord_new_instance(void);
/* wall-clock ms since 1970 for timestamps that are stored (co->wall_ms) */
uint64_t coord_wall_ms(const coord *co);
/* zero the counters, set the histograms' buckets */
void coord_stats_init(coord_stats *st);
/* bucket of a gid in a table of n buckets */
size_t coord_gid_hash(const char *gid, size_t n);

#endif
