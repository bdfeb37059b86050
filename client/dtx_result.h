/*
 * dtx_result.h — the struct behind dtx_result, and the library's own ways
 * of making one (dtx_result.c).  Internal to libdtx (see dtx_conninfo.h).
 *
 * Every result returned here is a new allocation that nothing else points
 * to: whoever holds it frees it with dtx_clear() — the connection's queue
 * while it is queued, the application once dtx_get_result() handed it out.
 */
#ifndef DTX_LIB_RESULT_H
#define DTX_LIB_RESULT_H

#include "dtx.h"

#include "frame.h"
#include "proto.h"

#include <stdint.h>

#pragma GCC visibility push(hidden)

/*
 * Every result owns one encoded frame and a decoded view that points into
 * it; the frame's type says which member of `u` is valid.  Results made by
 * the library itself (connection errors, synthetic outcomes, the in-doubt
 * table) are encoded as frames too, so one representation serves all.
 */
struct dtx_result {
    dtx_result *next; /* link in the connection's queue; NULL once returned */
    dtx_res_kind kind;
    uint8_t type;   /* MSG_* of the frame below */
    uint8_t *frame; /* header + payload, owned */
    uint32_t len;   /* payload length */
    union {
        const char *gid;           /* BEGIN */
        proto_result stmt;         /* STATEMENT, INDOUBT */
        proto_error err;           /* ERROR */
        proto_outcome_msg outcome; /* OUTCOME */
        proto_status_reply status; /* STATUS */
        const char *admin_message; /* ADMIN */
        dtx_replication_info repl; /* REPLICATION (strings into the frame) */
    } u;
};

/* A result from a frame received for a request; NULL with *why set (a
 * static string) when the payload is malformed or memory ran out.  The
 * frame is copied (f stays the caller's).  Caller frees with dtx_clear. */
dtx_result *dtx_result_from_frame(const frame_view *f, const char **why)
    __attribute__((warn_unused_result));
/* An error made by the library: sqlstate and message are copied.  NULL only
 * when out of memory.  Caller frees with dtx_clear. */
dtx_result *dtx_result_local_error(const char *sqlstate, const char *message)
    __attribute__((warn_unused_result));
/* A BEGIN result made by the library (a BEGIN_RESERVED, which has no
 * reply); gid is copied.  NULL only when out of memory.  Caller frees with
 * dtx_clear. */
dtx_result *dtx_result_local_begin(const char *gid) __attribute__((warn_unused_result));
/* An outcome made by the library (the connection failed); gid (may be NULL)
 * is copied.  NULL only when out of memory.  Caller frees with dtx_clear. */
dtx_result *dtx_result_local_outcome(proto_outcome outcome, const char *gid)
    __attribute__((warn_unused_result));
/* An independent copy of res (which stays the caller's).  NULL only when out
 * of memory.  Caller frees with dtx_clear. */
dtx_result *dtx_result_copy(const dtx_result *res) __attribute__((warn_unused_result));

#pragma GCC visibility pop

#endif
