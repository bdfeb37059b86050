/*
 * fence.h — epoch fencing of coordinators (docs/design.md section 6,
 * docs/participant.md "Fencing").
 *
 * Every coordinator introduces itself with (name, epoch, instance) at HELLO
 * and repeats the epoch in every request.  A coordinator whose epoch is
 * lower than the highest one admitted for its name has been deposed (a
 * standby was promoted in its place) and may no longer prepare, commit or
 * roll back anything here.  An epoch belongs to the first instance that
 * claimed it: another instance with the same epoch is refused too.
 *
 * The highest (epoch, instance) per name is kept durably in a table of the
 * participant's own database (dtx_fence, created at start-up when missing)
 * and mirrored in memory.  A new epoch is admitted only once its row is
 * committed: the HELLO handler asks fence_admit() first, and when that says
 * FENCE_RECORD it runs fence_record_sql() on a pool connection and hands
 * the row PostgreSQL returned to fence_recorded(), which decides.  Requests
 * are checked against the mirror alone (fence_check()), which never holds
 * an epoch that is not durable.
 *
 * No event loop and no pool here: fence_load() blocks (start-up only, on the
 * caller's connection), everything else is memory.
 */
#ifndef DTX_PART_FENCE_H
#define DTX_PART_FENCE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SQLSTATE of a refusal by the fence (connection exception class). */
#define FENCE_SQLSTATE "08004"

/* The table's unqualified name, found through the start-up connection's
 * search_path (and created there when missing). */
#define FENCE_TABLE "dtx_fence"

/* First query of the record's pipeline: the record's commit waits for the
 * WAL flush whatever synchronous_commit the role or database sets. */
#define FENCE_SYNC_COMMIT_SQL "SELECT pg_catalog.set_config('synchronous_commit', 'on', true)"

typedef enum fence_verdict {
    FENCE_ADMIT = 0,  /* this (epoch, instance) is the durable one already */
    FENCE_RECORD = 1, /* a new epoch: record it before admitting */
    FENCE_REFUSE = 2, /* lower epoch, or the epoch of another instance */
} fence_verdict;

/* Start-up, before the listener opens: create the table when missing
 * (committed with synchronous_commit on), check that this role may read and
 * write it, and load every row into memory.  Blocks on pg.  false with a
 * one-line message in err (the participant must then not start). */
bool fence_load(PGconn *pg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The table's schema-qualified, quoted name ("" before fence_load); static
 * memory, never freed by the caller. */
const char *fence_table(void);
/* Number of coordinator names in the fence. */
int fence_count(void);
/* fn for each coordinator in the fence, with the epoch it is fenced at */
void fence_foreach(void (*fn)(void *arg, const char *name, uint64_t epoch), void *arg);

/* At HELLO: the verdict for (name, epoch, instance) from memory.  On
 * FENCE_REFUSE err says why, naming both epochs or both instances. */
fence_verdict fence_admit(const char *name, uint64_t epoch, uint64_t instance, char *err,
                          size_t errlen) __attribute__((warn_unused_result));
/* The record: one statement with parameters $1 name, $2 epoch, $3 instance
 * (decimal text), to run after FENCE_SYNC_COMMIT_SQL in the same pipeline,
 * before its Sync (one implicit transaction, committed by the Sync).  It
 * raises the row to (epoch, instance) when epoch is higher than the row's
 * (or inserts it) and returns one row: the row's epoch and instance
 * afterwards.  Static memory, valid after fence_load(). */
const char *fence_record_sql(void);
/* The record's row, from its result: false when res does not hold one. */
bool fence_record_row(const PGresult *res, uint64_t *epoch, uint64_t *instance)
    __attribute__((warn_unused_result));
/* The record of (name, epoch, instance) was committed and the row reads
 * (row_epoch, row_instance): raise the mirror to it, and say whether the
 * HELLO is admitted (true) or refused (false, err says why, *sqlstate is
 * FENCE_SQLSTATE for a refusal by the fence, 53200 when memory ran out). */
bool fence_recorded(const char *name, uint64_t epoch, uint64_t instance, uint64_t row_epoch,
                    uint64_t row_instance, char *err, size_t errlen, const char **sqlstate)
    __attribute__((warn_unused_result));

/* Per request: false with a message naming both epochs when epoch is lower
 * than the highest admitted for name. */
bool fence_check(const char *name, uint64_t epoch, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Forget everything (at exit). */
void fence_free(void);

#endif
