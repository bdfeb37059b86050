/*
 * fuzz_wal_stream.c — a standby's verification of its primary's stream:
 * wal_append_raw (wal/wal_stream.c) with fuzzed chunks against small valid
 * logs (fuzz_wal.h), open as a standby holds its own.
 *
 * Input:
 *
 *   byte 0     which log (modulo FW_NLOGS): FW_LOG_MID, FW_LOG_SWITCHED or
 *              FW_LOG_EMPTY
 *   byte 1     where each chunk claims to start (modulo 3): 0 where the
 *              log continues (a pending header's segment start, else the
 *              insert position), 1 the start of segment (byte 2 modulo 4),
 *              2 the position in bytes 2..9 (little-endian)
 *   bytes 2-9  that position
 *   the rest   chunks, cut at FUZZ_SPLIT, appended in turn
 *
 * The logs live in a directory under /dev/shm (TMPDIR when /dev/shm cannot
 * be used), built once.  A refused chunk must leave the log as it was
 * (wal_stream_get before and after) with a message; a taken one must move
 * the insert position to the returned LSN (the chunk's end, or the next
 * segment's first record position after a switch record), in the state
 * that the pure check (wal_stream_check) derives from the state before.  A log that took
 * anything is closed, and built again before the next input, so that every
 * input meets the same log.
 */
#include "fuzz.h"

#include "fuzz_wal.h"
#include "log.h"

#include <stdlib.h>
#include <sys/stat.h>

#define FUZZ_MAX_CHUNKS 8

static char base[512];
static char dirs[FW_NLOGS][600];
static wal_t *logs[FW_NLOGS];

static void
build(int i)
{
    char err[512];
    logs[i] = fw_build(dirs[i], i, false, err, sizeof(err));
    if (logs[i] == NULL) {
        fprintf(stderr, "fuzz_wal_stream: cannot build log %d: %s\n", i, err);
        abort();
    }
}

static void
remove_all(void)
{
    for (int i = 0; i < FW_NLOGS; i++) {
        if (logs[i] != NULL)
            wal_close(logs[i]);
        logs[i] = NULL;
        fw_clear_dir(dirs[i]);
        rmdir(dirs[i]);
    }
    rmdir(base);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LVL_ERROR);
    fuzz_tmpdir(base, sizeof(base), "wal-stream");
    for (int i = 0; i < FW_NLOGS; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/log%d", base, i);
        FUZZ_CHECK(mkdir(dirs[i], 0700) == 0);
        build(i);
    }
    atexit(remove_all);
    return 0;
}

static bool
same_state(const wal_stream_state *a, const wal_stream_state *b)
{
    return a->segsize == b->segsize && a->insert_lsn == b->insert_lsn && a->segno == b->segno &&
           a->header_pending == b->header_pending && a->salt_announced == b->salt_announced &&
           a->salt == b->salt && a->oldest_lsn == b->oldest_lsn &&
           (a->header_pending || a->epoch == b->epoch);
}

static uint64_t
chunk_pos(wal_t *w, int mode, const uint8_t *arg)
{
    wal_stream_state st;
    wal_stream_get(w, &st);
    switch (mode) {
    case 0:
        return st.header_pending ? st.segno * st.segsize : st.insert_lsn;
    case 1:
        return (uint64_t)(arg[0] % 4) * st.segsize;
    default:
        return wal_get_u64(arg);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    if (size < 10)
        return 0;
    int which = data[0] % FW_NLOGS;
    int mode = data[1] % 3;
    wal_t *w = logs[which];
    fuzz_piece pc[FUZZ_MAX_CHUNKS];
    size_t n = fuzz_split(data + 10, size - 10, pc, FUZZ_MAX_CHUNKS);
    bool took = false;

    for (size_t i = 0; i < n; i++) {
        wal_stream_state before, after, checked;
        uint64_t records;
        char err[512] = "", err2[512] = "";
        uint64_t pos = chunk_pos(w, mode, data + 2);
        uint8_t *chunk = fuzz_memdup(pc[i].p, pc[i].len);
        wal_stream_get(w, &before);
        uint64_t lsn =
            wal_append_raw(w, pos, pc[i].len ? chunk : NULL, pc[i].len, err, sizeof(err));
        wal_stream_get(w, &after);
        if (lsn == 0) {
            FUZZ_CHECK(same_state(&before, &after));
            FUZZ_CHECK(err[0] != '\0');
            free(chunk);
            continue;
        }
        took = true;
        /* the chunk ends at a record's end, or with a switch record whose
         * LSN is where the next segment's records start */
        FUZZ_CHECK(after.insert_lsn == lsn);
        FUZZ_CHECK(after.header_pending
                       ? lsn == after.segno * after.segsize + WAL_SEG_HDR_SIZE && pos < lsn
                       : lsn == pos + pc[i].len);
        /* the pure check from the state before agrees, where it applies
         * (wal_append_raw may start from another: a new standby's log
         * begins at the chunk's segment) */
        if (wal_stream_check(&before, pos, chunk, pc[i].len, &checked, &records, err2,
                             sizeof(err2)))
            FUZZ_CHECK(same_state(&checked, &after));
        free(chunk);
    }
    if (took) {
        /* the log changed: the next input must meet the same one again */
        wal_close(w);
        build(which);
    }
    return 0;
}
