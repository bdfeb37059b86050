/*
 * peer.c — see peer.h.
 *
 * NOTES
 *  What this file owns: the pointer to server.c's peer_ops table, and what
 *  needs no more of a connection than that table gives: encoding the DONE
 *  replies, and the checks every request passes (the fence, the branch
 *  name).  It holds no state of its own; the connections, their life cycle
 *  and the detaching of branches and requests are server.c's.
 *
 *  The fence is checked twice for a request: when it arrives (its epoch
 *  against the fence and against its connection's HELLO), and, for one
 *  that had to wait, again just before it is sent to PostgreSQL
 *  (peer_still_admitted), because a higher epoch may have been admitted
 *  while it waited.
 *
 *  Every call that may meet a detached object (cc NULL) returns before it
 *  touches the table, so the table's functions never see NULL.
 */
#include "peer.h"

#include "fence.h"
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const peer_ops *peer_tab;

void
peer_set_ops(const peer_ops *ops)
{
    peer_tab = ops;
}

const char *
peer_name(const coord_conn *cc)
{
    return cc ? peer_tab->name(cc) : "";
}

bool
peer_backlogged(const coord_conn *cc)
{
    return cc != NULL && peer_tab->backlogged(cc);
}

void
peer_send(coord_conn *cc, const wbuf *w)
{
    if (cc == NULL)
        return;
    peer_tab->send(cc, w);
}

void
peer_reply_done(coord_conn *cc, const proto_done *d)
{
    if (cc == NULL)
        return;
    wbuf w;
    wbuf_init(&w);
    if (proto_put_done(&w, d) && wbuf_ok(&w))
        peer_tab->send(cc, &w);
    else
        log_error("could not encode a DONE reply");
    wbuf_free(&w);
}

void
peer_reply_plain(coord_conn *cc, uint32_t tag, done_status st, uint64_t xid)
{
    proto_done d = {.tag = tag, .status = (uint8_t)st, .xid = xid};
    peer_reply_done(cc, &d);
}

void
peer_reply_status(coord_conn *cc, uint32_t tag, done_status st, uint64_t xid, const char *sqlstate,
                  const char *fmt, ...)
{
    if (cc == NULL)
        return;
    char msg[1024];
    const char *m = NULL;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        m = msg;
    }
    proto_done d = {
        .tag = tag, .status = (uint8_t)st, .xid = xid, .sqlstate = sqlstate, .message = m};
    peer_reply_done(cc, &d);
}

void
peer_protocol_error(coord_conn *cc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    peer_tab->protocol_error(cc, msg);
}

void
peer_drop(coord_conn *cc, const char *why)
{
    if (cc == NULL)
        return;
    peer_tab->drop(cc, why);
}

bool
peer_shutting_down(void)
{
    return peer_tab->shutting_down();
}

/* ------------------------------------------------------------------------
 * Checks
 */

bool
peer_check_request(coord_conn *cc, uint32_t tag, uint64_t epoch)
{
    if (cc == NULL)
        return false;
    char err[256];
    if (!fence_check(peer_name(cc), epoch, err, sizeof(err))) {
        peer_reply_status(cc, tag, DONE_ERROR, 0, FENCE_SQLSTATE, "%s", err);
        return false;
    }
    uint64_t admitted = peer_tab->epoch(cc);
    if (epoch != admitted) {
        /* an epoch is admitted by HELLO only (and its instance checked there) */
        peer_reply_status(cc, tag, DONE_ERROR, 0, FENCE_SQLSTATE,
                          "request of epoch %" PRIu64 " on a connection of coordinator \"%s\" "
                          "admitted with epoch %" PRIu64,
                          epoch, peer_name(cc), admitted);
        return false;
    }
    return true;
}

bool
peer_still_admitted(const coord_conn *cc, uint64_t epoch, const char **sqlstate, char *err,
                    size_t errlen)
{
    *sqlstate = FENCE_SQLSTATE;
    if (cc == NULL) {
        snprintf(err, errlen, "the coordinator's connection is gone");
        return false;
    }
    return fence_check(peer_name(cc), epoch, err, errlen);
}

bool
peer_check_branch_request(coord_conn *cc, uint32_t tag, uint64_t epoch, const char *name)
{
    if (!peer_check_request(cc, tag, epoch))
        return false;
    char err[512];
    if (!peer_check_branch_name(cc, name, err, sizeof(err))) {
        peer_reply_status(cc, tag, DONE_ERROR, 0, "22023", "%s", err);
        return false;
    }
    return true;
}

bool
peer_check_branch_name(const coord_conn *cc, const char *name, char *err, size_t errlen)
{
    const char *coord = peer_name(cc);
    size_t n = strlen(name);
    if (n == 0 || n >= BRANCH_NAME_MAX) {
        snprintf(err, errlen, "invalid branch name: length %zu is not between 1 and %d", n,
                 BRANCH_NAME_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == ':' || ch == '-' || ch == '_' || ch == '.')) {
            snprintf(err, errlen,
                     "invalid branch name: character 0x%02x at offset %zu is not allowed",
                     (unsigned char)ch, i);
            return false;
        }
    }
    size_t cl = strlen(coord);
    if (n < 4 + cl + 1 || strncmp(name, "dtx:", 4) != 0 || strncmp(name + 4, coord, cl) != 0 ||
        name[4 + cl] != ':') {
        snprintf(err, errlen, "branch name \"%s\" does not belong to coordinator \"%s\"", name,
                 coord);
        return false;
    }
    return true;
}
