/*
 * fuzz_wal.h — the small, deterministic logs that fuzz_wal_stream checks
 * chunks against and that gen_corpus reads seeds from (header only).
 *
 * A log is built with the library itself (wal_open, wal_append,
 * wal_set_epoch, wal_truncate) in 64 KiB segments, with the generator of
 * segment salts reseeded (wal_seed_salts), so that the same build gives the
 * same bytes in every process: the seeds written by gen_corpus then
 * continue the logs fuzz_wal_stream builds for itself.
 *
 *   FW_LOG_MID       segment 0 with a header and three records (epoch 1);
 *                    a chunk continues it in the middle of the segment
 *   FW_LOG_SWITCHED  three records, then a switch record (epoch 2 begins):
 *                    the log ends where segment 1 starts, its header
 *                    pending with the salt the switch record announced
 *   FW_LOG_EMPTY     no record: a new standby, whose first chunk may start
 *                    at any segment
 *
 * fw_build(dir, log, primary) builds log `log` in dir; with primary set it
 * builds the primary's log instead: the same bytes, continued by more
 * records over two more segments (what the chunks are read from).
 */
#ifndef DTX_FUZZ_WAL_H
#define DTX_FUZZ_WAL_H

#include "wal.h"
#include "wal_int.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FW_SEGSIZE (64u << 10)
#define FW_SEED    0xD7C0F022ull

enum { FW_LOG_MID = 0, FW_LOG_SWITCHED = 1, FW_LOG_EMPTY = 2, FW_NLOGS = 3 };

static __attribute__((unused)) void
fw_append(wal_t *w, uint8_t type, uint32_t len, unsigned seq)
{
    uint8_t p[8192];
    if (len > sizeof(p))
        len = sizeof(p);
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)("dtx:c1:1:"[i % 9] + seq);
    if (wal_append(w, type, p, len) == 0)
        abort();
}

/* Remove the files of dir (not the directory). */
static __attribute__((unused)) void
fw_clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char path[1024];
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Build log `log` (or its primary) in dir, whose files are removed first;
 * returns it open, every record durable.  NULL with err on failure. */
static __attribute__((unused)) wal_t *
fw_build(const char *dir, int log, bool primary, char *err, size_t errlen)
{
    wal_options o;
    wal_options_init(&o);
    o.segment_size = FW_SEGSIZE;
    o.epoch = 1;
    fw_clear_dir(dir);
    wal_t *w = wal_open(dir, &o, err, errlen);
    if (w == NULL)
        return NULL;
    wal_seed_salts(w, FW_SEED + (uint64_t)log);
    if (log == FW_LOG_EMPTY && !primary)
        return w;
    fw_append(w, 1, 40, 1);
    fw_append(w, 2, 0, 2);
    fw_append(w, 3, 113, 3);
    uint64_t switch_end = 0;
    if (log == FW_LOG_SWITCHED) {
        if (!wal_set_epoch(w, 2))
            abort();
        fw_append(w, 1, 64, 4); /* the switch record, segment 1's header, a record */
        switch_end = FW_SEGSIZE + WAL_SEG_HDR_SIZE;
    }
    if (primary) {
        /* two more segments, each begun by a new epoch */
        for (unsigned i = 0; i < 12; i++) {
            if (i % 4 == 2 && !wal_set_epoch(w, wal_epoch(w) + 1))
                abort();
            fw_append(w, (uint8_t)(4 + i % 3), i % 3 ? 200 : 1000, 5 + i);
        }
    }
    wal_wait_durable(w, wal_insert_lsn(w));
    if (switch_end != 0 && !primary && !wal_truncate(w, switch_end, err, errlen)) {
        wal_close(w);
        return NULL;
    }
    return w;
}

#endif
