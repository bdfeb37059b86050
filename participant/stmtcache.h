/*
 * stmtcache.h — the statements one pool connection keeps prepared.
 *
 * Parsing, analysing and planning a short UPDATE costs PostgreSQL more than
 * executing it.  A branch's statements therefore run, once they have been
 * seen before, as named prepared statements of their pool connection
 * ("dtx_s<n>"), parsed once per connection and executed with Bind/Execute.
 *
 * What is cached: INSERT, UPDATE, DELETE and MERGE without RETURNING
 * (statements that never return rows, so a table altered under a prepared
 * statement cannot change its result type), up to STMT_CACHE_MAX_SQL bytes,
 * keyed by text and parameter count.  A text is admitted the second time
 * the pool sees it (a filter shared by the pool's connections), so
 * statements with literals in them, each seen once, do not churn the cache.
 *
 * This file only decides; pgpool.c sends what the decision says (DEALLOCATE
 * of an evicted statement, Parse, then Bind/Execute) and reports the results
 * back.  No libpq here, so the rules are unit-tested without a server.
 */
#ifndef DTX_PARTICIPANT_STMTCACHE_H
#define DTX_PARTICIPANT_STMTCACHE_H

#include <stdbool.h>
#include <stdint.h>

#define STMT_CACHE_MAX_SQL 8192
#define STMT_SEEN_SLOTS    1024
#define STMT_NAME_MAX      24

typedef struct stmt_cache stmt_cache;

/* Texts seen once, by hash: the admission filter, one per pool. */
typedef struct stmt_seen {
    uint64_t hash[STMT_SEEN_SLOTS];
} stmt_seen;

/* What to send for one statement. */
typedef struct stmt_plan {
    int slot;                     /* -1: not cached, send it unnamed */
    bool dealloc;                 /* first DEALLOCATE old_name (an evicted statement) */
    bool prepare;                 /* then Parse sql as name */
    char name[STMT_NAME_MAX];     /* then Bind/Execute name */
    char old_name[STMT_NAME_MAX]; /* when dealloc */
} stmt_plan;

/* Can sql be cached at all (see above)? */
bool stmt_cacheable(const char *sql);

/* A cache of `capacity` statements (0: nothing is cached).  NULL on
 * out-of-memory.  Free with stmt_cache_free() (NULL is fine). */
stmt_cache *stmt_cache_new(int capacity) __attribute__((warn_unused_result));
void stmt_cache_free(stmt_cache *c);
/* The connection was closed: PostgreSQL forgot every statement. */
void stmt_cache_reset(stmt_cache *c);

/* Decide how to send sql (with nparams parameters) in the current batch.
 * Never fails: without memory it answers "not cached". */
void stmt_cache_plan(stmt_cache *c, stmt_seen *seen, const char *sql, int nparams, stmt_plan *out);
/* The Parse for slot completed (ok) or failed or was skipped after an
 * earlier error in its batch (!ok: the slot is freed). */
void stmt_cache_prepared(stmt_cache *c, int slot, bool ok);
/* A DEALLOCATE did not run or failed (an earlier error in its batch, a
 * cancel): the evicted statement may stay in PostgreSQL, unknown to the
 * cache. */
void stmt_cache_dealloc_failed(stmt_cache *c);
/* Executing slot failed with sqlstate.  Unless the error is plainly one of
 * the data or of concurrency (classes 23, 25, 40, 53, 55, 57), the
 * statement is evicted, so that the next use parses the text afresh: a
 * prepared statement keeps the parameter types it was first given, and a
 * table altered since (a column now bigint) can make it fail where the
 * text would not. */
void stmt_cache_exec_failed(stmt_cache *c, int slot, const char *sqlstate);
/* The batch's Sync arrived: statements it used may be evicted again. */
void stmt_cache_batch_end(stmt_cache *c);
/* Has the connection gathered so many statements unknown to the cache
 * that it should be closed and replaced? */
bool stmt_cache_needs_reset(const stmt_cache *c);

/* How many statements are cached (and prepared or being prepared). */
int stmt_cache_count(const stmt_cache *c);

#endif
