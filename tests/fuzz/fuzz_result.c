/*
 * fuzz_result.c — libdtx's result decoding (client/dtx_result.c): the
 * replies a coordinator sends become dtx_result objects, which the
 * application reads through dtx.h's accessors.
 *
 * The input is a byte stream from a coordinator.  Each frame cut off it
 * (frame_decode, the payload copied into an allocation of its exact size)
 * goes to dtx_result_from_frame(), as dtx_io.c hands it a reply: BEGIN_OK,
 * RESULT, ERROR, OUTCOME, STATUS_REPLY, INDOUBT_REPLY (re-encoded as a
 * table), ADMIN_OK, REPLICATION_REPLY, or anything else, which must be
 * refused.  Every accessor is then called on the result, over every row
 * and column (and just outside them), and on a copy (dtx_result_copy),
 * which must answer the same.  Checks: a refused frame says why
 * ("malformed message" or "out of memory"); a value's length is its
 * strlen; the copy equals the original; an ERROR, BEGIN_OK or OUTCOME
 * remade by the library from the decoded strings (dtx_result_local_*)
 * reads back the same.
 */
#include "fuzz.h"

#include "dtx.h"
#include "dtx_result.h"
#include "frame.h"
#include "proto.h"

#define FUZZ_MAX_PAYLOAD (1u << 16)
#define FUZZ_MAX_CELLS   4096 /* rows * columns read back per result */

static bool
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Everything the accessors say about r, folded into checks against c (a
 * copy, or NULL). */
static void
read_all(const dtx_result *r, const dtx_result *c)
{
    static const int fields[] = {DTX_DIAG_SQLSTATE, DTX_DIAG_MESSAGE,     DTX_DIAG_DETAIL,
                                 DTX_DIAG_HINT,     DTX_DIAG_PARTICIPANT, 'x'};
    dtx_res_kind kind = dtx_result_kind(r);
    FUZZ_CHECK(c == NULL || dtx_result_kind(c) == kind);
    FUZZ_CHECK(dtx_result_status(r) == (kind == DTX_KIND_ERROR ? DTX_RES_ERROR : DTX_RES_OK));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = dtx_result_error_field(r, fields[i]);
        FUZZ_CHECK(c == NULL || same_str(v, dtx_result_error_field(c, fields[i])));
    }
    if (kind == DTX_KIND_ERROR)
        FUZZ_CHECK(dtx_result_error_field(r, DTX_DIAG_SQLSTATE) != NULL &&
                   dtx_result_error_field(r, DTX_DIAG_MESSAGE) != NULL);
    FUZZ_CHECK(c == NULL || same_str(dtx_result_participant(r), dtx_result_participant(c)));
    FUZZ_CHECK(c == NULL || same_str(dtx_result_gid(r), dtx_result_gid(c)));
    FUZZ_CHECK(c == NULL || same_str(dtx_result_detail(r), dtx_result_detail(c)));
    FUZZ_CHECK(c == NULL || same_str(dtx_cmd_status(r), dtx_cmd_status(c)));
    FUZZ_CHECK(c == NULL || dtx_cmd_tuples(r) == dtx_cmd_tuples(c));
    int oc = dtx_result_outcome(r);
    FUZZ_CHECK(kind == DTX_KIND_OUTCOME ? oc >= 0 : oc == -1);
    FUZZ_CHECK(dtx_outcome_name((dtx_outcome)(oc < 0 ? DTX_UNKNOWN : oc)) != NULL);
    dtx_gid_status gs = dtx_result_gid_status(r);
    FUZZ_CHECK(kind != DTX_KIND_STATUS || gs != DTX_GID_ERROR);
    FUZZ_CHECK(dtx_gid_status_name(gs) != NULL);
    FUZZ_CHECK(c == NULL || dtx_result_gid_status(c) == gs);
    const dtx_replication_info *ri = dtx_result_replication(r);
    FUZZ_CHECK((ri != NULL) == (kind == DTX_KIND_REPLICATION));
    if (ri != NULL)
        FUZZ_CHECK(ri->name != NULL && ri->peer != NULL && ri->state != NULL && ri->detail != NULL);

    int nrows = dtx_ntuples(r), ncols = dtx_nfields(r);
    FUZZ_CHECK(nrows >= 0 && ncols >= 0);
    FUZZ_CHECK(c == NULL || (dtx_ntuples(c) == nrows && dtx_nfields(c) == ncols));
    for (int col = -1; col <= ncols; col++) {
        const char *name = dtx_fname(r, col);
        FUZZ_CHECK((name != NULL) == (col >= 0 && col < ncols));
        FUZZ_CHECK(c == NULL || same_str(name, dtx_fname(c, col)));
        FUZZ_CHECK(c == NULL || dtx_ftype(r, col) == dtx_ftype(c, col));
    }
    long cells = 0;
    for (int row = -1; row <= nrows && cells < FUZZ_MAX_CELLS; row++) {
        for (int col = -1; col <= ncols && cells < FUZZ_MAX_CELLS; col++, cells++) {
            bool inside = row >= 0 && row < nrows && col >= 0 && col < ncols;
            const char *v = dtx_getvalue(r, row, col);
            int len = dtx_getlength(r, row, col);
            int isnull = dtx_getisnull(r, row, col);
            FUZZ_CHECK((v != NULL) == inside);
            FUZZ_CHECK(inside || (len == 0 && isnull == 1));
            if (v != NULL)
                FUZZ_CHECK((size_t)len == strlen(v) && (!isnull || len == 0));
            if (c != NULL) {
                FUZZ_CHECK(same_str(v, dtx_getvalue(c, row, col)));
                FUZZ_CHECK(len == dtx_getlength(c, row, col));
                FUZZ_CHECK(isnull == dtx_getisnull(c, row, col));
            }
        }
    }
}

/* The library's own results, made from what r decoded, read back the same. */
static void
remake(const dtx_result *r)
{
    dtx_result *m = NULL;
    switch (dtx_result_kind(r)) {
    case DTX_KIND_ERROR:
        m = dtx_result_local_error(dtx_result_error_field(r, DTX_DIAG_SQLSTATE),
                                   dtx_result_error_field(r, DTX_DIAG_MESSAGE));
        FUZZ_CHECK(m != NULL);
        FUZZ_CHECK(same_str(dtx_result_error_field(m, DTX_DIAG_SQLSTATE),
                            dtx_result_error_field(r, DTX_DIAG_SQLSTATE)));
        FUZZ_CHECK(same_str(dtx_result_error_field(m, DTX_DIAG_MESSAGE),
                            dtx_result_error_field(r, DTX_DIAG_MESSAGE)));
        break;
    case DTX_KIND_BEGIN:
        m = dtx_result_local_begin(dtx_result_gid(r));
        FUZZ_CHECK(m != NULL && same_str(dtx_result_gid(m), dtx_result_gid(r)));
        break;
    case DTX_KIND_OUTCOME:
        m = dtx_result_local_outcome((proto_outcome)r->u.outcome.outcome, dtx_result_gid(r));
        FUZZ_CHECK(m != NULL && same_str(dtx_result_gid(m), dtx_result_gid(r)));
        FUZZ_CHECK(dtx_result_outcome(m) == dtx_result_outcome(r));
        break;
    default:
        return;
    }
    read_all(m, NULL);
    dtx_clear(m);
}

static void
one_frame(const frame_view *f)
{
    const char *why = NULL;
    dtx_result *r = dtx_result_from_frame(f, &why);
    if (r == NULL) {
        FUZZ_CHECK(why != NULL &&
                   (strcmp(why, "malformed message") == 0 || strcmp(why, "out of memory") == 0));
        return;
    }
    FUZZ_CHECK(r->next == NULL);
    read_all(r, NULL);
    dtx_result *c = dtx_result_copy(r);
    FUZZ_CHECK(c != NULL);
    read_all(r, c);
    remake(r);
    dtx_clear(c);
    dtx_clear(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    size_t pos = 0;
    while (pos < size) {
        frame_view f;
        size_t used;
        if (frame_decode(data + pos, size - pos, FUZZ_MAX_PAYLOAD, &f, &used) != FRAME_OK)
            break;
        uint8_t *copy = fuzz_memdup(f.payload, f.len);
        f.payload = copy;
        one_frame(&f);
        free(copy);
        pos += used;
    }
    dtx_clear(NULL);
    return 0;
}
