/*
 * proto.h — the dtx wire protocol: message types and their codecs.
 *
 * Every connection (client -> coordinator, coordinator -> participant) is a
 * TLS stream of frames (frame.h).  The payload of each frame type is listed
 * here and, byte by byte, in docs/protocol.md.  Values use the encoding of
 * buf.h (big-endian integers, NUL-terminated length-prefixed strings, nstr
 * for values that may be SQL NULL).
 *
 * Start-up: the connecting side sends HELLO; the accepting side answers
 * HELLO_OK or ERROR (and closes).  Nothing else may be sent before HELLO_OK.
 *
 * Client -> coordinator            reply
 *   'B' BEGIN                      'b' BEGIN_OK or 'E' ERROR
 *   'Q' EXEC                       'R' RESULT or 'E' ERROR
 *   'C' COMMIT                     ['E' ERROR] 'O' OUTCOME
 *   'A' ROLLBACK                   'O' OUTCOME
 *   'X' ONESHOT                    ['b' BEGIN_OK] 'R'/'E' per statement run, then 'O' OUTCOME
 *                                  (BEGIN_OK, naming the gid before anything runs, only
 *                                  to clients whose HELLO said minor >= 1)
 *   'S' STATUS                     'T' STATUS_REPLY or 'E' ERROR
 *   'I' INDOUBT                    'i' INDOUBT_REPLY
 *
 * Coordinator -> participant (every request carries a tag, echoed in replies,
 * so many branches share one connection)
 *   'W' WORK      run statements of a branch, optionally ending it    'R'* then 'D' DONE
 *   'F' FINISH    COMMIT PREPARED / ROLLBACK PREPARED of a branch    'D' DONE
 *   'L' LIST      prepared branches whose name starts with a prefix  'l' LIST_REPLY or 'D'
 *
 *   'K' CANCEL    stop the branch's statement in flight (minor >= 1)   'D' DONE
 *
 * Versions: HELLO and HELLO_OK carry (major, minor).  Peers refuse another
 * major; a minor is a compatible addition, used only when the peer's HELLO
 * or HELLO_OK announced at least that minor:
 *   1.1  BEGIN_OK before the results of a ONESHOT; CANCEL.
 *
 * Either direction: 'E' ERROR with tag 0 is a connection-level error (bad
 * frame, refused start-up); the sender closes the connection after it.
 *
 * Decoding is zero-copy: decoded structs point into the frame's payload, so
 * they are valid only while the payload is.  Arrays in decoded structs are
 * heap-allocated; free them with the matching *_clear function.
 * Enum values are part of the wire format and are never renumbered.
 */
#ifndef DTX_PROTO_H
#define DTX_PROTO_H

#include "buf.h"
#include "frame.h"

#include <stdbool.h>
#include <stdint.h>

#define PROTO_MAGIC      0x44545831u /* "DTX1" */
#define PROTO_MAJOR      1
#define PROTO_MINOR      6
#define PROTO_MAX_PARAMS 65535
#define PROTO_MAX_STMTS  65535

enum proto_msg {
    MSG_HELLO = 'H',
    MSG_HELLO_OK = 'h',
    MSG_ERROR = 'E',
    MSG_BEGIN = 'B',
    MSG_BEGIN_OK = 'b',
    MSG_BEGIN_RESERVED = 'N',   /* minor >= 2: BEGIN with the reserved gid, no reply */
    MSG_ONESHOT_RESERVED = 'Y', /* minor >= 2: ONESHOT with the reserved gid */
    MSG_NEXT_GID = 'g',         /* minor >= 2: the gid reserved for the next transaction */
    MSG_EXEC = 'Q',
    MSG_RESULT = 'R',
    MSG_COMMIT = 'C',
    MSG_ROLLBACK = 'A',
    MSG_OUTCOME = 'O',
    MSG_ONESHOT = 'X',
    MSG_STATUS = 'S',
    MSG_STATUS_REPLY = 'T',
    MSG_INDOUBT = 'I',
    MSG_INDOUBT_REPLY = 'i',
    MSG_WORK = 'W',
    MSG_DONE = 'D',
    MSG_FINISH = 'F',
    MSG_LIST = 'L',
    MSG_LIST_REPLY = 'l',
    MSG_CANCEL = 'K',
};

typedef enum proto_role {
    ROLE_CLIENT = 1,
    ROLE_COORDINATOR = 2,
} proto_role;

/* Outcome of a transaction, as told to a client. */
typedef enum proto_outcome {
    OUTCOME_COMMITTED = 0,
    OUTCOME_ABORTED = 1,
    OUTCOME_UNKNOWN = 2,     /* the coordinator cannot know (e.g. 1PC link lost) */
    OUTCOME_IN_PROGRESS = 3, /* STATUS only: not decided yet */
    OUTCOME_NOT_KNOWN = 4,   /* STATUS only: older than what is retained */
    OUTCOME_HEURISTIC = 5,   /* decided COMMIT, but some branch was rolled back
                                by someone else (or is gone, outcome unknown) */
} proto_outcome;

/* WORK flags */
#define WORK_OPEN     0x01 /* first statements of the branch: BEGIN first */
#define WORK_PREPARE  0x02 /* end: PREPARE TRANSACTION (vote) */
#define WORK_COMMIT   0x04 /* end: one-phase COMMIT */
#define WORK_ROLLBACK 0x08 /* end: ROLLBACK of an unprepared branch */

/* DONE status (participant -> coordinator) */
typedef enum done_status {
    DONE_OK = 0,        /* statements ran / commit / rollback / finish done */
    DONE_PREPARED = 1,  /* vote YES; xid is the branch's transaction id */
    DONE_READONLY = 2,  /* vote READ-ONLY: nothing written, already finished */
    DONE_ERROR = 3,     /* error fields set; an unprepared branch is rolled back */
    DONE_NOT_FOUND = 4, /* FINISH: no such prepared transaction; see xact_status */
    DONE_BUSY = 5,      /* FINISH: another session is finishing it; retry */
    DONE_UNKNOWN = 6,   /* one-phase COMMIT whose result could not be learned */
} done_status;

/* pg_xact_status() of a branch's xid, carried with DONE_NOT_FOUND */
typedef enum xact_status {
    XACT_UNKNOWN = 0, /* no xid given, or too old to know */
    XACT_COMMITTED = 1,
    XACT_ABORTED = 2,
    XACT_IN_PROGRESS = 3,
} xact_status;

/* ---- messages ---------------------------------------------------------- */

/* HELLO: u32 magic, u16 major, u16 minor, u8 role, str name, u64 epoch,
 * [u64 instance].  The instance is optional on the wire: it is written only
 * when it is not 0, and a HELLO that ends after the epoch decodes with
 * instance 0 (unknown), so clients' HELLOs and those of coordinators that
 * do not send it are unchanged. */
typedef struct proto_hello {
    uint32_t magic;
    uint16_t major, minor;
    uint8_t role;      /* proto_role */
    const char *name;  /* application name, or coordinator name */
    uint64_t epoch;    /* coordinator's epoch (0 for clients) */
    uint64_t instance; /* coordinator instance claiming the epoch; 0 = unknown */
} proto_hello;

/* HELLO_OK: u16 major, u16 minor, str server name, u64 epoch, [u32 slots].
 * slots (minor 6 on, participant to coordinator): how many prepared
 * transactions the coordinator may have at once on this participant
 * (slotq.h).  It is written only when it is not 0, and only to a peer whose
 * HELLO said minor >= 6 (an older decoder wants the frame to end after the
 * epoch); absent decodes as 0, "not known". */
typedef struct proto_hello_ok {
    uint16_t major, minor;
    const char *server_name;
    uint64_t epoch;
    uint32_t slots;
} proto_hello_ok;

/* ERROR: u32 tag, str sqlstate, str message, nstr detail, nstr hint, nstr participant */
typedef struct proto_error {
    uint32_t tag;
    const char *sqlstate;
    const char *message;
    const char *detail;      /* may be NULL */
    const char *hint;        /* may be NULL */
    const char *participant; /* may be NULL */
} proto_error;

/* One statement: str participant (empty inside WORK), str sql, u16 n, nstr params[n] */
typedef struct proto_stmt {
    const char *participant;
    const char *sql;
    uint16_t nparams;
    const char **params; /* heap array of nparams; entries may be NULL */
} proto_stmt;

/* EXEC: one statement */
/* ONESHOT: u16 n, stmt[n] */
typedef struct proto_stmts {
    uint16_t n;
    proto_stmt *stmts; /* heap array */
} proto_stmts;

/* WORK: u32 tag, u64 epoch, str branch, u8 flags, u16 n, stmt[n], and from
 * minor 5 on, when the coordinator knows it and the WORK opens the branch,
 * str client: the certificate name of the client whose transaction the
 * branch is (the participant maps it to a database role, [roles]).
 * Absent: NULL. */
typedef struct proto_work {
    uint32_t tag;
    uint64_t epoch;
    const char *branch;
    uint8_t flags;
    proto_stmts body;
    const char *client; /* may be NULL: not sent */
} proto_work;

/* FINISH: u32 tag, u64 epoch, str branch, u8 commit, u64 xid (0 = not known) */
typedef struct proto_finish {
    uint32_t tag;
    uint64_t epoch;
    const char *branch;
    bool commit;
    uint64_t xid;
} proto_finish;

/* LIST: u32 tag, u64 epoch, str prefix */
typedef struct proto_list {
    uint32_t tag;
    uint64_t epoch;
    const char *prefix;
} proto_list;

/* CANCEL: u32 tag, u64 epoch, str branch (protocol 1.1).  Asks the
 * participant to stop the branch's request in flight: a WORK waiting for a
 * connection or a slot fails with 57014, a statement running in PostgreSQL
 * is cancelled there.  Answered with DONE_OK in any case (also when there
 * is no such branch or nothing in flight); the WORK itself is answered as
 * usual, normally with DONE_ERROR 57014, and the branch rolled back. */
typedef struct proto_cancel {
    uint32_t tag;
    uint64_t epoch;
    const char *branch;
} proto_cancel;

/* LIST_REPLY: u32 tag, u32 n, { str gid, u64 xid, u64 prepared_unix_ms }[n] */
typedef struct proto_list_entry {
    const char *gid;
    uint64_t xid;
    uint64_t prepared_ms;
} proto_list_entry;

typedef struct proto_list_reply {
    uint32_t tag;
    uint32_t n;
    proto_list_entry *entries; /* heap array */
} proto_list_reply;

/* DONE: u32 tag, u8 status, u64 xid, u8 xact_status,
 *       nstr sqlstate, nstr message, nstr detail, nstr hint */
typedef struct proto_done {
    uint32_t tag;
    uint8_t status; /* done_status */
    uint64_t xid;
    uint8_t xact_status; /* xact_status */
    const char *sqlstate, *message, *detail, *hint;
} proto_done;

/* RESULT: u32 tag, str participant, str command_tag, u64 affected_rows,
 *         u16 ncols, { str name, u32 type_oid }[ncols],
 *         u32 nrows, nstr value[nrows * ncols] (row-major) */
typedef struct proto_result {
    uint32_t tag;
    const char *participant;
    const char *command_tag;
    uint64_t affected;
    uint16_t ncols;
    uint32_t nrows;
    const char **col_names; /* heap arrays */
    uint32_t *col_types;
    const char **values; /* nrows*ncols, NULL = SQL NULL */
    uint32_t *lengths;
} proto_result;

/* OUTCOME: u8 outcome, str gid */
typedef struct proto_outcome_msg {
    uint8_t outcome;
    const char *gid;
} proto_outcome_msg;

/* STATUS: str gid.  STATUS_REPLY: u8 outcome, str gid, str detail */
typedef struct proto_status_reply {
    uint8_t outcome;
    const char *gid;
    const char *detail;
} proto_status_reply;

/* INDOUBT_REPLY: u32 n, { str gid, u64 age_ms, str participants, str state }[n] */
typedef struct proto_indoubt_entry {
    const char *gid;
    uint64_t age_ms;
    const char *participants;
    const char *state;
} proto_indoubt_entry;

typedef struct proto_indoubt_reply {
    uint32_t n;
    proto_indoubt_entry *entries;
} proto_indoubt_reply;

/* ---- encoders: append one whole frame to w; false on overflow/oom --------- */

bool proto_put_hello(wbuf *w, const proto_hello *m) __attribute__((warn_unused_result));
bool proto_put_hello_ok(wbuf *w, const proto_hello_ok *m) __attribute__((warn_unused_result));
bool proto_put_error(wbuf *w, const proto_error *m) __attribute__((warn_unused_result));
bool proto_put_empty(wbuf *w, uint8_t type) __attribute__((warn_unused_result));
bool proto_put_begin_ok(wbuf *w, const char *gid) __attribute__((warn_unused_result));
bool proto_put_next_gid(wbuf *w, const char *gid) __attribute__((warn_unused_result));
bool proto_put_begin_reserved(wbuf *w, const char *gid) __attribute__((warn_unused_result));
bool proto_put_oneshot_reserved(wbuf *w, const char *gid, const proto_stmts *s)
    __attribute__((warn_unused_result));
bool proto_put_exec(wbuf *w, const proto_stmt *s) __attribute__((warn_unused_result));
bool proto_put_oneshot(wbuf *w, const proto_stmts *s) __attribute__((warn_unused_result));
bool proto_put_work(wbuf *w, const proto_work *m) __attribute__((warn_unused_result));
bool proto_put_finish(wbuf *w, const proto_finish *m) __attribute__((warn_unused_result));
bool proto_put_list(wbuf *w, const proto_list *m) __attribute__((warn_unused_result));
bool proto_put_cancel(wbuf *w, const proto_cancel *m) __attribute__((warn_unused_result));
bool proto_put_list_reply(wbuf *w, const proto_list_reply *m) __attribute__((warn_unused_result));
bool proto_put_done(wbuf *w, const proto_done *m) __attribute__((warn_unused_result));
bool proto_put_result(wbuf *w, const proto_result *m) __attribute__((warn_unused_result));
bool proto_put_outcome(wbuf *w, const proto_outcome_msg *m) __attribute__((warn_unused_result));
bool proto_put_status(wbuf *w, const char *gid) __attribute__((warn_unused_result));
bool proto_put_status_reply(wbuf *w, const proto_status_reply *m)
    __attribute__((warn_unused_result));
bool proto_put_indoubt_reply(wbuf *w, const proto_indoubt_reply *m)
    __attribute__((warn_unused_result));

/* Streaming RESULT encoder, for producers that hold rows elsewhere (a
 * PGresult): begin, then ncols columns, then rows (u32 count), then exactly
 * nrows*ncols values, then end. */
size_t proto_result_begin(wbuf *w, uint32_t tag, const char *participant, const char *cmdtag,
                          uint64_t affected, uint16_t ncols);
void proto_result_column(wbuf *w, const char *name, uint32_t type_oid);
void proto_result_rows(wbuf *w, uint32_t nrows);
void proto_result_value(wbuf *w, const char *value, size_t len, bool is_null);
bool proto_result_end(wbuf *w, size_t start) __attribute__((warn_unused_result));

/* ---- decoders: payload of a frame of the matching type -------------------
 * Return false on any malformed payload (short, trailing bytes, bad string,
 * counts beyond the payload).  Decoded pointers alias the payload. */

bool proto_get_hello(const frame_view *f, proto_hello *m) __attribute__((warn_unused_result));
bool proto_get_hello_ok(const frame_view *f, proto_hello_ok *m) __attribute__((warn_unused_result));
bool proto_get_error(const frame_view *f, proto_error *m) __attribute__((warn_unused_result));
bool proto_get_begin_ok(const frame_view *f, const char **gid) __attribute__((warn_unused_result));
bool proto_get_next_gid(const frame_view *f, const char **gid) __attribute__((warn_unused_result));
bool proto_get_begin_reserved(const frame_view *f, const char **gid)
    __attribute__((warn_unused_result));
bool proto_get_oneshot_reserved(const frame_view *f, const char **gid, proto_stmts *s)
    __attribute__((warn_unused_result));
bool proto_get_exec(const frame_view *f, proto_stmt *s) __attribute__((warn_unused_result));
bool proto_get_oneshot(const frame_view *f, proto_stmts *s) __attribute__((warn_unused_result));
bool proto_get_work(const frame_view *f, proto_work *m) __attribute__((warn_unused_result));
bool proto_get_finish(const frame_view *f, proto_finish *m) __attribute__((warn_unused_result));
bool proto_get_list(const frame_view *f, proto_list *m) __attribute__((warn_unused_result));
bool proto_get_cancel(const frame_view *f, proto_cancel *m) __attribute__((warn_unused_result));
bool proto_get_list_reply(const frame_view *f, proto_list_reply *m)
    __attribute__((warn_unused_result));
bool proto_get_done(const frame_view *f, proto_done *m) __attribute__((warn_unused_result));
bool proto_get_result(const frame_view *f, proto_result *m) __attribute__((warn_unused_result));
bool proto_get_outcome(const frame_view *f, proto_outcome_msg *m)
    __attribute__((warn_unused_result));
bool proto_get_status(const frame_view *f, const char **gid) __attribute__((warn_unused_result));
bool proto_get_status_reply(const frame_view *f, proto_status_reply *m)
    __attribute__((warn_unused_result));
bool proto_get_indoubt_reply(const frame_view *f, proto_indoubt_reply *m)
    __attribute__((warn_unused_result));

/* Tag of a tagged frame (RESULT, ERROR, DONE, LIST_REPLY, WORK, FINISH, LIST, CANCEL):
 * the first u32 of the payload; false when the payload is shorter. */
bool proto_peek_tag(const frame_view *f, uint32_t *tag) __attribute__((warn_unused_result));
/* Overwrite the tag of an encoded tagged frame in place (frame starts at p). */
void proto_patch_tag(uint8_t *frame, uint32_t tag);

void proto_stmt_clear(proto_stmt *s);
void proto_stmts_clear(proto_stmts *s);
void proto_work_clear(proto_work *m);
void proto_list_reply_clear(proto_list_reply *m);
void proto_result_clear(proto_result *m);
void proto_indoubt_reply_clear(proto_indoubt_reply *m);

const char *proto_outcome_name(proto_outcome o);
const char *proto_done_status_name(done_status s);

#endif
