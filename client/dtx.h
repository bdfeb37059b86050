/*
 * dtx.h — libdtx, the client library of the dtx transaction coordinator.
 *
 * An application opens one TLS connection to a coordinator and runs
 * transactions whose statements go to several PostgreSQL databases (the
 * coordinator's "participants").  On commit the coordinator makes the whole
 * transaction commit everywhere or nowhere.
 *
 *     dtx_conn *c = dtx_connect("host=coord1,coord2 sslrootcert=ca.crt");
 *     if (dtx_status(c) != DTX_CONNECTION_OK) {
 *         fprintf(stderr, "%s", dtx_error_message(c));
 *         dtx_finish(c);
 *         return 1;
 *     }
 *     if (dtx_begin(c) == NULL) ...
 *     dtx_result *r = dtx_exec(c, "bank-a", "UPDATE acct SET bal = bal - 10 WHERE id = 1");
 *     if (dtx_result_status(r) != DTX_RES_OK) ...     // then dtx_rollback(c)
 *     dtx_clear(r);
 *     r = dtx_exec(c, "bank-b", "UPDATE acct SET bal = bal + 10 WHERE id = 7");
 *     ...
 *     switch (dtx_commit(c)) {
 *     case DTX_COMMITTED: ...
 *     case DTX_ABORTED:   ...                           // dtx_error_message(c) says why
 *     case DTX_UNKNOWN:   ...                           // ask later: dtx_outcome_of(gid)
 *     }
 *     dtx_finish(c);
 *
 * WHAT dtx PROMISES
 *  Atomicity, not a global snapshot.  A committed transaction is committed
 *  on every participant and an aborted one on none, also across crashes and
 *  coordinator failover.  But while the second phase of a commit is under
 *  way, a reader of two databases can see the transaction committed on one
 *  and not yet on the other; and the statements of one dtx transaction see
 *  each participant's own snapshot, not one snapshot across databases.
 *
 *  An outcome is never a guess.  When the client cannot know whether a
 *  commit happened (the connection broke after COMMIT was sent) it is told
 *  DTX_UNKNOWN; dtx_outcome_of() on any coordinator of the same name
 *  answers later.
 *
 * THREADS
 *  A dtx_conn and the dtx_results it returns belong to one thread at a time:
 *  the library takes no locks.  Different connections may be used in
 *  different threads concurrently; results may be handed to another thread
 *  once returned.  The library's only global state (an OpenSSL BIO method
 *  and two OpenSSL ex_data indices) is created once, thread-safely, on first
 *  use.  libdtx never raises SIGPIPE and never changes signal dispositions.
 *
 * CONNECTION STRINGS
 *  "keyword=value keyword='quoted value' ..." (a backslash escapes a quote
 *  or backslash inside quotes).  Keywords, with their environment defaults:
 *
 *    host              DTXHOST             comma-separated list; default localhost
 *    port              DTXPORT             one for all hosts, or one per host; default 6543
 *    sslmode           DTXSSLMODE          verify-full (default) or verify-ca
 *    sslrootcert       DTXSSLROOTCERT      CA bundle (PEM); default: system store
 *    sslcert           DTXSSLCERT          client certificate (PEM), for mutual TLS
 *    sslkey            DTXSSLKEY           its key (PEM); default: sslcert's file
 *    connect_timeout   DTXCONNECT_TIMEOUT  seconds per address tried; 0 = none
 *    application_name  DTXAPPNAME          shown by the coordinator
 *    target_role       DTXTARGETROLE       primary (default) or any
 *
 *  An unknown keyword or a bad value is an error.  A keyword given twice
 *  takes its last value.  There is no plaintext mode: every connection is
 *  TLS 1.2 or newer with a verified server certificate.  Hosts are tried in
 *  order; the first whose handshake (TLS and HELLO) completes is used, so a
 *  client can list a primary and its standbys: with target_role=primary a
 *  standby refuses the handshake (SQLSTATE 57P03) and the next host is
 *  tried.  target_role=any takes the first coordinator that answers, primary
 *  or standby, for the administrative calls (dtx_outcome_of, dtx_indoubt,
 *  dtx_replication, dtx_promote); a standby runs no transactions.
 *
 * ERRORS
 *  Functions that fail leave a message on the connection,
 *  dtx_error_message().  Errors reported by the coordinator or by
 *  PostgreSQL arrive as results with status DTX_RES_ERROR and carry the
 *  SQLSTATE, message, detail, hint and participant untouched
 *  (dtx_result_error_field).  Errors detected by the library use SQLSTATE
 *  08003 (no open connection), 08006 (connection lost), 08P01 (protocol
 *  violation), 22023 (bad arguments), 55000 (another request is in
 *  progress) and 53200 (out of memory).
 *
 * ASYNCHRONOUS USE
 *  The blocking functions are built on the non-blocking ones below, which fit
 *  any event loop: start, then wait for the socket as told and call the
 *  matching function again.  One request may be in flight at a time; read
 *  its results with dtx_get_result() until it returns NULL.
 *
 *     dtx_conn *c = dtx_connect_start(conninfo);
 *     dtx_poll st = DTX_POLL_WRITING;
 *     while (st != DTX_POLL_OK && st != DTX_POLL_FAILED) {
 *         wait for dtx_socket(c) readable (READING) or writable (WRITING);
 *         st = dtx_connect_poll(c);          // dtx_socket(c) may change
 *     }
 *     dtx_send_exec(c, "a", "SELECT 1");
 *     while (dtx_flush(c) == 1) wait for writable (and readable: dtx_consume_input)
 *     for (;;) {
 *         wait for readable; dtx_consume_input(c);
 *         while (!dtx_is_busy(c)) {
 *             dtx_result *r = dtx_get_result(c);
 *             if (r == NULL) goto request_done;
 *             ... dtx_clear(r);
 *         }
 *     }
 *
 * Enum values are part of the ABI and are never renumbered.
 */
#ifndef DTX_H
#define DTX_H

#include <stdint.h>

/* DTX_VERSION_NUM (major * 10000 + minor * 100 + patch) and DTX_VERSION_STR
 * ("major.minor.patch"): written by the build from the Makefile's VERSION,
 * and installed beside this file. */
#include "dtx_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DTX_DEFAULT_PORT 6543
/* Largest frame accepted from a coordinator; a larger one is refused as soon
 * as its 5-byte header arrives, before anything is allocated for it. */
#define DTX_DEFAULT_MAX_FRAME (64u * 1024 * 1024)

#if defined(__GNUC__)
#define DTX_WUR __attribute__((warn_unused_result))
#define DTX_API __attribute__((visibility("default")))
#else
#define DTX_WUR
#define DTX_API
#endif

typedef struct dtx_conn dtx_conn;
typedef struct dtx_result dtx_result;

typedef enum dtx_conn_status {
    DTX_CONNECTION_OK = 0,
    DTX_CONNECTION_BAD = 1,
    DTX_CONNECTION_STARTED = 2, /* dtx_connect_poll() has not finished yet */
} dtx_conn_status;

typedef enum dtx_poll {
    DTX_POLL_FAILED = 0,
    DTX_POLL_READING = 1, /* wait until dtx_socket() is readable */
    DTX_POLL_WRITING = 2, /* wait until dtx_socket() is writable */
    DTX_POLL_OK = 3,
} dtx_poll;

/* Outcome of a transaction, as decided by the coordinator. */
typedef enum dtx_outcome {
    DTX_COMMITTED = 0,
    DTX_ABORTED = 1,
    DTX_UNKNOWN = 2, /* cannot be known now: ask dtx_outcome_of() later */
} dtx_outcome;

/* Answer of dtx_outcome_of(). */
typedef enum dtx_gid_status {
    DTX_GID_ERROR = -1, /* the question could not be answered; see the error */
    DTX_GID_COMMITTED = 0,
    DTX_GID_ABORTED = 1,
    DTX_GID_UNKNOWN = 2,         /* the coordinator itself cannot know */
    DTX_GID_IN_PROGRESS = 3,     /* not decided yet */
    DTX_GID_NO_LONGER_KNOWN = 4, /* older than what the coordinator retains */
    DTX_GID_HEURISTIC = 5,       /* decided COMMIT, but some branch was rolled back
                                    by someone else: see the detail */
} dtx_gid_status;

typedef enum dtx_res_status {
    DTX_RES_OK = 0,
    DTX_RES_ERROR = 1,
} dtx_res_status;

/* What a result answers. */
typedef enum dtx_res_kind {
    DTX_KIND_BEGIN = 0,       /* BEGIN accepted; dtx_result_gid() */
    DTX_KIND_STATEMENT = 1,   /* one statement's rows / command tag */
    DTX_KIND_ERROR = 2,       /* status DTX_RES_ERROR; dtx_result_error_field() */
    DTX_KIND_OUTCOME = 3,     /* end of COMMIT/ROLLBACK/ONESHOT; dtx_result_outcome() */
    DTX_KIND_STATUS = 4,      /* answer to STATUS; dtx_result_gid_status() */
    DTX_KIND_INDOUBT = 5,     /* table: gid, age_ms, participants, state */
    DTX_KIND_ADMIN = 6,       /* an admin request (PROMOTE) done; dtx_result_detail() */
    DTX_KIND_REPLICATION = 7, /* answer to REPLICATION; dtx_result_replication() */
} dtx_res_kind;

/* A coordinator's role (dtx_replication_info.role). */
typedef enum dtx_coord_role {
    DTX_ROLE_PRIMARY = 1,
    DTX_ROLE_STANDBY = 2,
} dtx_coord_role;

/*
 * How replication stands, as a coordinator sees it (dtx_replication()).
 * Log positions (LSNs) are byte offsets in the coordinator's write-ahead
 * log; dtx shows them as PostgreSQL does, the high and low 32 bits in hex
 * ("%X/%08X").  Strings are never NULL ("" when there is nothing to say).
 * The struct belongs to its result: read it through the pointer, never
 * allocate or copy one (fields are only ever added at the end).
 */
typedef struct dtx_replication_info {
    dtx_coord_role role;  /* DTX_ROLE_PRIMARY or DTX_ROLE_STANDBY, as the coordinator says */
    uint64_t epoch;       /* its epoch */
    const char *name;     /* its name (a primary and its standby share it) */
    const char *peer;     /* the other side: a primary's standby, a standby's primary */
    const char *state;    /* the stream's state, in the coordinator's words */
    uint64_t sent_lsn;    /* the log has been sent to the standby up to here */
    uint64_t flushed_lsn; /* the standby has made it durable up to here */
    uint64_t primary_lsn; /* the primary's durable log ends here (a standby: as last heard) */
    uint64_t lag_bytes;   /* how far the standby's durable log is behind the primary's */
    uint64_t lag_ms;      /* the same lag in time, milliseconds */
    int synchronous;      /* 1: the primary counts a decision durable only once this
                             standby has it; 0: not (yet) */
    int sure;             /* 1: the standby holds every decision its primary
                             acknowledged, so dtx_promote() needs no force */
    const char *detail;   /* more, in the coordinator's words */
    /* automatic failover (a coordinator with [ha]; "" and -1 without) */
    const char *ha_leader; /* who holds etcd's leader key, where, at which epoch */
    int64_t ha_lease_ms;   /* the leader lease this primary holds, ms left (-1: none) */
    const char *ha_sync;   /* the synchronous standby etcd records */
    const char *ha_etcd;   /* whether etcd answers, and which endpoint */
} dtx_replication_info;

/* Fields of an error, for dtx_result_error_field() and dtx_error_field(). */
#define DTX_DIAG_SQLSTATE    'C'
#define DTX_DIAG_MESSAGE     'M'
#define DTX_DIAG_DETAIL      'D'
#define DTX_DIAG_HINT        'H'
#define DTX_DIAG_PARTICIPANT 'P'

/* One statement of dtx_oneshot()/dtx_send_oneshot(). */
typedef struct dtx_stmt {
    const char *participant;   /* participant name, as configured on the coordinator */
    const char *sql;           /* one SQL statement; $1..$n refer to params */
    int nparams;               /* 0..65535 */
    const char *const *params; /* nparams text values; a NULL entry is SQL NULL */
} dtx_stmt;

/* ---- library ------------------------------------------------------------ */

/* DTX_VERSION_NUM of the library actually linked. */
DTX_API int dtx_lib_version(void);

/* Free memory the library handed out with "caller frees with dtx_freemem". */
DTX_API void dtx_freemem(void *p);

/* ---- connections -------------------------------------------------------- */

/*
 * Connect and wait for the handshake (TLS, then HELLO) with the first host
 * that completes it, honouring connect_timeout per address.  Always returns
 * an object (NULL only when out of memory): check dtx_status(); on failure
 * dtx_error_message() lists what went wrong with every host.  Caller frees
 * with dtx_finish(), also after a failure.
 */
DTX_API dtx_conn *dtx_connect(const char *conninfo) DTX_WUR;

/*
 * Non-blocking connect: parse conninfo and start the first attempt.  Returns
 * an object (NULL only when out of memory) with status DTX_CONNECTION_STARTED,
 * or DTX_CONNECTION_BAD when conninfo is invalid.  Then, as for
 * PQconnectPoll: wait until dtx_socket() is writable and call
 * dtx_connect_poll() until it returns DTX_POLL_OK or DTX_POLL_FAILED,
 * waiting in between as it says.  The socket may change between calls (each
 * host is a new socket).  connect_timeout is the caller's business here.
 * Caller frees with dtx_finish().
 */
DTX_API dtx_conn *dtx_connect_start(const char *conninfo) DTX_WUR;
DTX_API dtx_poll dtx_connect_poll(dtx_conn *conn) DTX_WUR;

/*
 * Check a connection string (with the environment defaults) without
 * connecting: 1 when valid, 0 when not.  On 0, if errmsg is not NULL,
 * *errmsg gets the reason (one line, no newline); caller frees with
 * dtx_freemem().  Certificate files are not opened here.
 */
DTX_API int dtx_conninfo_check(const char *conninfo, char **errmsg) DTX_WUR;

/* Close the connection (a TLS close_notify is attempted, without waiting)
 * and free it with everything it owns.  Results already returned stay
 * valid.  conn may be NULL. */
DTX_API void dtx_finish(dtx_conn *conn);

DTX_API dtx_conn_status dtx_status(const dtx_conn *conn);

/* The last error, possibly several lines, each ending in "\n"; "" when none.
 * Owned by conn; valid until the next call on conn. */
DTX_API const char *dtx_error_message(const dtx_conn *conn);

/* A field of the last error result a blocking call (dtx_begin,
 * dtx_commit, dtx_rollback, dtx_outcome_of, dtx_oneshot, dtx_indoubt,
 * dtx_replication, dtx_promote) received, e.g. the participant's SQLSTATE
 * when a commit was aborted; NULL when none.  After a failed connect: the
 * last ERROR a coordinator answered the handshake with (57P03 from a
 * standby when target_role is primary), NULL when none did.  Owned by
 * conn; valid until the next call on conn. */
DTX_API const char *dtx_error_field(const dtx_conn *conn, int fieldcode);

/* The socket to wait on, or -1 when there is none.  Do not read, write or
 * close it yourself. */
DTX_API int dtx_socket(const dtx_conn *conn);

/* The host and port connected to, and the coordinator's name (from its
 * HELLO_OK); NULL before the handshake.  Owned by conn. */
DTX_API const char *dtx_host(const dtx_conn *conn);
DTX_API int dtx_port(const dtx_conn *conn);
DTX_API const char *dtx_server_name(const dtx_conn *conn);

/* The global transaction id of the current (or last) transaction on conn,
 * set by BEGIN_OK and by an OUTCOME; NULL when there was none.  For a
 * oneshot it is set as soon as the coordinator names the transaction, before
 * any statement runs (coordinators speaking protocol 1.1; an older one names
 * it only in the OUTCOME), also when it is sent with dtx_send_oneshot():
 * after dtx_consume_input() it may already be there while results are still
 * to come.  Owned by conn; valid until the next transaction starts or
 * dtx_finish(). */
DTX_API const char *dtx_gid(const dtx_conn *conn);

/* ---- blocking API ------------------------------------------------------- */

/*
 * Start a transaction.  Returns its gid (dtx_gid(conn): owned by conn, not
 * to be freed) or NULL on failure: dtx_error_message() and dtx_error_field()
 * tell why.  With a coordinator of protocol 1.2 this normally sends nothing
 * and does not wait: the coordinator reserved the gid in advance, and the
 * BEGIN leaves with the next request; if the coordinator then cannot start
 * the transaction, that request fails (and the connection is closed).
 * (dtx_send_begin() always asks the coordinator and waits for its answer on
 * the socket.)
 */
DTX_API const char *dtx_begin(dtx_conn *conn) DTX_WUR;

/*
 * Run one statement of the current transaction on a participant.  Returns a
 * result with status DTX_RES_OK (rows or command tag) or DTX_RES_ERROR (the
 * participant's error; the transaction is then aborted and the application
 * should call dtx_rollback).  NULL only when out of memory or conn is NULL; a
 * failure of the connection is an error result too (SQLSTATE 08006).  Caller frees
 * with dtx_clear().
 */
DTX_API dtx_result *dtx_exec(dtx_conn *conn, const char *participant, const char *sql) DTX_WUR;

/* As dtx_exec, with nparams text parameters $1..$n; values[i] == NULL is SQL
 * NULL.  nparams 0..65535.  Caller frees with dtx_clear(). */
DTX_API dtx_result *dtx_exec_params(dtx_conn *conn, const char *participant, const char *sql,
                                    int nparams, const char *const *values) DTX_WUR;

/*
 * Commit the current transaction and wait for the decision.  DTX_ABORTED
 * comes with the reason in dtx_error_message()/dtx_error_field() (the
 * participant's error, e.g. a serialization failure at PREPARE).  If the
 * connection fails after COMMIT was sent, the answer is DTX_UNKNOWN (ask
 * dtx_outcome_of(dtx_gid()) later, on any connection); if it failed before,
 * COMMIT was never sent and the answer is DTX_ABORTED.
 */
DTX_API dtx_outcome dtx_commit(dtx_conn *conn) DTX_WUR;

/* Roll the current transaction back.  Normally DTX_ABORTED; a connection
 * lost before COMMIT was ever sent also gives DTX_ABORTED (the coordinator
 * cannot commit what was not asked to), otherwise DTX_UNKNOWN. */
DTX_API dtx_outcome dtx_rollback(dtx_conn *conn) DTX_WUR;

/*
 * Run a whole transaction in one request (ONESHOT): the statements in order,
 * then commit — or abort at the first error.  The coordinator answers one
 * result per statement it ran (the last one an error if one failed), then
 * the outcome.  When results is not NULL, *results gets a NULL-terminated
 * array of those results, in order, and *nresults (if not NULL) their count;
 * caller frees the array and its results with dtx_results_free().  When
 * results is NULL they are discarded.  The gid is dtx_gid(conn) afterwards.
 * If the connection fails after the request was sent, the outcome is
 * DTX_UNKNOWN; the coordinator names the transaction before running it, so
 * dtx_gid() is set whenever it got that far (ask dtx_outcome_of() later).
 * It is NULL only when the connection failed before the coordinator's first
 * reply arrived, or with a coordinator older than protocol 1.1: the outcome
 * is then unknown and cannot be looked up.  Inside a transaction begun with
 * dtx_begin() nothing is sent: DTX_ABORTED, and the open transaction (and
 * dtx_gid()) stay as they were.
 */
DTX_API dtx_outcome dtx_oneshot(dtx_conn *conn, const dtx_stmt *stmts, int nstmts,
                                dtx_result ***results, int *nresults) DTX_WUR;

/* Free an array from dtx_oneshot() and every result in it.  NULL is fine. */
DTX_API void dtx_results_free(dtx_result **results);

/*
 * Ask the coordinator what became of a transaction.  DTX_GID_ERROR when the
 * question could not be answered (see dtx_error_message()).  When detail is
 * not NULL, *detail gets the coordinator's explanation (may be empty) or
 * NULL on error; caller frees with dtx_freemem().
 */
DTX_API dtx_gid_status dtx_outcome_of(dtx_conn *conn, const char *gid, char **detail) DTX_WUR;

/*
 * List the transactions the coordinator has decided but not yet finished
 * everywhere (or not yet decided after a restart).  Returns a result of kind
 * DTX_KIND_INDOUBT, with one row per transaction and the columns gid (text),
 * age_ms (int8), participants (text, comma-separated), state (text); or an
 * error result.  NULL only when out of memory or conn is NULL.  Caller frees
 * with dtx_clear().
 */
DTX_API dtx_result *dtx_indoubt(dtx_conn *conn) DTX_WUR;

/*
 * Ask the coordinator, primary or standby, how replication stands.
 * Returns a result of kind DTX_KIND_REPLICATION (its fields through
 * dtx_result_replication()) or an error result.  NULL only when out of
 * memory or conn is NULL.  Caller frees with dtx_clear().  Needs a
 * coordinator of protocol 1.3; connect with target_role=any to ask a
 * standby.
 */
DTX_API dtx_result *dtx_replication(dtx_conn *conn) DTX_WUR;

/*
 * Make a standby coordinator the primary, and wait until it says it is.
 * Returns a result of kind DTX_KIND_ADMIN, whose dtx_result_detail() is the
 * coordinator's message, or an error result with the coordinator's
 * refusal: for instance a standby that cannot be sure it holds every
 * decision its primary acknowledged refuses unless force is nonzero (and
 * says why), and a certificate name not on its list of administrators is
 * refused.  If the connection broke after the request was sent (SQLSTATE
 * 08006), whether the standby was promoted is unknown: ask
 * dtx_replication() on a new connection.  Connect with target_role=any (a
 * standby refuses the default).  NULL only when out of memory or conn is
 * NULL.  Caller frees with dtx_clear().
 */
DTX_API dtx_result *dtx_promote(dtx_conn *conn, int force) DTX_WUR;

/* ---- non-blocking API --------------------------------------------------- */

/*
 * Queue one request and try to send it.  Return 1 when the request was
 * queued, 0 when it could not be (connection not open, a request still in
 * progress, bad arguments; see dtx_error_message()).  A failure of the
 * connection after queueing is reported through dtx_get_result().  The
 * arguments are copied; nothing needs to outlive the call.
 */
DTX_API int dtx_send_begin(dtx_conn *conn) DTX_WUR;
DTX_API int dtx_send_exec(dtx_conn *conn, const char *participant, const char *sql) DTX_WUR;
DTX_API int dtx_send_exec_params(dtx_conn *conn, const char *participant, const char *sql,
                                 int nparams, const char *const *values) DTX_WUR;
DTX_API int dtx_send_commit(dtx_conn *conn) DTX_WUR;
DTX_API int dtx_send_rollback(dtx_conn *conn) DTX_WUR;
DTX_API int dtx_send_oneshot(dtx_conn *conn, const dtx_stmt *stmts, int nstmts) DTX_WUR;
DTX_API int dtx_send_status(dtx_conn *conn, const char *gid) DTX_WUR;
DTX_API int dtx_send_indoubt(dtx_conn *conn) DTX_WUR;
DTX_API int dtx_send_replication(dtx_conn *conn) DTX_WUR;
DTX_API int dtx_send_promote(dtx_conn *conn, int force) DTX_WUR;

/*
 * Write queued output.  0: everything is sent; 1: more remains — wait until
 * the socket is writable or readable (call dtx_consume_input() when
 * readable) and call again; -1: the connection failed.
 */
DTX_API int dtx_flush(dtx_conn *conn) DTX_WUR;

/* Read whatever the socket has and decode complete replies.  1 on success
 * (also when nothing was there), 0 when the connection failed or the
 * coordinator broke the protocol (the request then completes with an error
 * result, see dtx_get_result). */
DTX_API int dtx_consume_input(dtx_conn *conn) DTX_WUR;

/* 1 when dtx_get_result() would have to wait for input, else 0. */
DTX_API int dtx_is_busy(const dtx_conn *conn);

/*
 * The next result of the request in progress, or NULL once the request is
 * complete (after which another may be sent).  Blocks when dtx_is_busy().
 * Requests end as follows:
 *   begin     BEGIN or ERROR            exec     STATEMENT or ERROR
 *   commit    [ERROR] OUTCOME           rollback [ERROR] OUTCOME
 *   oneshot   (STATEMENT|ERROR)* OUTCOME
 *   status    STATUS or ERROR           indoubt  INDOUBT or ERROR
 *   promote   ADMIN or ERROR            replication  REPLICATION or ERROR
 * A commit, rollback or oneshot always ends with an OUTCOME result, also when
 * the connection fails (then DTX_UNKNOWN, or DTX_ABORTED where certain,
 * after an ERROR result that says what happened).  Caller frees each result
 * with dtx_clear().
 */
DTX_API dtx_result *dtx_get_result(dtx_conn *conn) DTX_WUR;

/* ---- results ------------------------------------------------------------ */

DTX_API dtx_res_status dtx_result_status(const dtx_result *res);
DTX_API dtx_res_kind dtx_result_kind(const dtx_result *res);

/* A field of an error result (DTX_DIAG_*), NULL when absent or when res is
 * not an error.  Owned by res. */
DTX_API const char *dtx_result_error_field(const dtx_result *res, int fieldcode);

/* The participant a statement result or error came from; NULL when none.
 * Owned by res. */
DTX_API const char *dtx_result_participant(const dtx_result *res);

/* OUTCOME results: the outcome; -1 for other kinds. */
DTX_API int dtx_result_outcome(const dtx_result *res);
/* STATUS results: the answer; DTX_GID_ERROR for other kinds. */
DTX_API dtx_gid_status dtx_result_gid_status(const dtx_result *res);

/* The words dtx uses for an outcome and for a gid's status ("COMMITTED",
 * "NO LONGER KNOWN", "HEURISTIC OUTCOME", ...), as the dtx tool prints
 * them; static strings, never NULL (like libpq's PQresStatus). */
DTX_API const char *dtx_outcome_name(dtx_outcome o);
DTX_API const char *dtx_gid_status_name(dtx_gid_status st);
/* BEGIN, OUTCOME and STATUS results: the gid; NULL otherwise.  Owned by res. */
DTX_API const char *dtx_result_gid(const dtx_result *res);
/* STATUS results: the coordinator's explanation ("" when none); ADMIN
 * results: its message; NULL otherwise.  Owned by res. */
DTX_API const char *dtx_result_detail(const dtx_result *res);
/* REPLICATION results: the fields; NULL otherwise.  Owned by res (its
 * strings too). */
DTX_API const dtx_replication_info *dtx_result_replication(const dtx_result *res);

/* Rows and columns of STATEMENT and INDOUBT results (0 otherwise). */
DTX_API int dtx_ntuples(const dtx_result *res);
DTX_API int dtx_nfields(const dtx_result *res);
/* Column name, NULL when out of range.  Owned by res. */
DTX_API const char *dtx_fname(const dtx_result *res, int col);
/* Column type OID (PostgreSQL's), 0 when out of range. */
DTX_API unsigned int dtx_ftype(const dtx_result *res, int col);
/* Value in text form, NUL-terminated; "" for SQL NULL; NULL when out of range.
 * Owned by res. */
DTX_API const char *dtx_getvalue(const dtx_result *res, int row, int col);
/* Length of the value in bytes; 0 for SQL NULL or out of range. */
DTX_API int dtx_getlength(const dtx_result *res, int row, int col);
/* 1 when the value is SQL NULL (or out of range), else 0. */
DTX_API int dtx_getisnull(const dtx_result *res, int row, int col);
/* Command tag of a STATEMENT result ("INSERT 0 1", "SELECT 2"); "" for other
 * kinds.  Owned by res. */
DTX_API const char *dtx_cmd_status(const dtx_result *res);
/* Rows affected (or returned) by the statement; 0 for other kinds. */
DTX_API uint64_t dtx_cmd_tuples(const dtx_result *res);

/* Free a result.  NULL is fine. */
DTX_API void dtx_clear(dtx_result *res);

#ifdef __cplusplus
}
#endif

#endif
