/*
 * stmtcache.c — see stmtcache.h.
 *
 * NOTES
 *  What this file owns: for one pool connection, `capacity` slots, each
 *  naming at most one statement that PostgreSQL holds (or is about to hold)
 *  under "dtx_s<id>".  Ids grow for the life of the cache, so a name is
 *  never reused: a Parse can never collide with a statement the cache has
 *  lost track of.
 *
 *  A slot is in one of three states:
 *
 *    free      sql == NULL, !held      nothing in PostgreSQL
 *    cached    sql != NULL             PostgreSQL holds it, or its Parse is
 *                                      queued
 *    orphan    sql == NULL, held       evicted after an error; PostgreSQL
 *                                      still holds `id`
 *
 *  Taking a slot for a new text prefers a free one, then an orphan, then
 *  the least recently used cached one; an orphan or a cached victim is
 *  deallocated first, in the same batch.  A slot used by the batch being
 *  built is never taken (its Parse or Execute is already queued); with
 *  every slot in use the text just runs unnamed.
 *
 *  Batches are all-or-nothing after an error: PostgreSQL skips everything
 *  up to the Sync.  So a Parse that is skipped frees its slot, and a
 *  skipped DEALLOCATE leaves a statement the cache no longer names: such
 *  leftovers are only counted, and past `capacity` of them the pool closes
 *  the connection (stmt_cache_needs_reset).
 */
#include "stmtcache.h"

#include "hash.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct stmt_slot {
    char *sql; /* NULL: free or orphan */
    uint64_t hash;
    int nparams;
    unsigned id;
    uint64_t used; /* stamp of the last use (LRU) */
    bool held;     /* PostgreSQL has (or will have) dtx_s<id> */
} stmt_slot;

struct stmt_cache {
    int capacity;
    stmt_slot *slots;
    unsigned next_id;
    uint64_t stamp;       /* last stamp handed out */
    uint64_t batch_start; /* first stamp of the batch being built */
    int leftovers;        /* statements in PostgreSQL the cache lost */
};

/* The key of a text with nparams parameters. */
static uint64_t
stmt_hash(const char *s, int nparams)
{
    uint64_t h = hash_str(s) ^ ((uint64_t)(unsigned)nparams * UINT64_C(0x9e3779b97f4a7c15));
    return h == 0 ? 1 : h; /* 0 marks an empty filter slot */
}

static bool
keyword_at(const char *p, const char *kw)
{
    size_t n = strlen(kw);
    return strncasecmp(p, kw, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

/* The text after leading white space when it starts with INSERT, UPDATE,
 * DELETE or MERGE; NULL otherwise (a cheap first test).  The result points
 * into sql (nothing is allocated). */
static const char *
dml_start(const char *sql)
{
    const char *p = sql;
    while (isspace((unsigned char)*p))
        p++;
    if (!keyword_at(p, "insert") && !keyword_at(p, "update") && !keyword_at(p, "delete") &&
        !keyword_at(p, "merge"))
        return NULL;
    return p;
}

bool
stmt_cacheable(const char *sql)
{
    const char *p = dml_start(sql);
    if (p == NULL)
        return false;
    size_t n = strlen(p);
    if (n > STMT_CACHE_MAX_SQL)
        return false;
    /* RETURNING anywhere, even inside a literal, keeps it out: rows */
    for (const char *q = p; (q = strpbrk(q, "rR")) != NULL; q++)
        if (strncasecmp(q, "returning", 9) == 0)
            return false;
    return true;
}

stmt_cache *
stmt_cache_new(int capacity)
{
    stmt_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->capacity = capacity > 0 ? capacity : 0;
    if (c->capacity > 0) {
        c->slots = calloc((size_t)c->capacity, sizeof(*c->slots));
        if (c->slots == NULL) {
            free(c);
            return NULL;
        }
    }
    c->batch_start = 1;
    return c;
}

void
stmt_cache_reset(stmt_cache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->capacity; i++) {
        free(c->slots[i].sql);
        memset(&c->slots[i], 0, sizeof(c->slots[i]));
    }
    c->leftovers = 0;
    c->batch_start = c->stamp + 1;
}

void
stmt_cache_free(stmt_cache *c)
{
    if (c == NULL)
        return;
    stmt_cache_reset(c);
    free(c->slots);
    free(c);
}

static void
stmt_name(char *buf, unsigned id)
{
    snprintf(buf, STMT_NAME_MAX, "dtx_s%u", id);
}

/* The slot for a new text, or -1 when every slot is in use by this batch. */
static int
stmt_victim(const stmt_cache *c)
{
    int best = -1;
    int rank_best = 3;
    for (int i = 0; i < c->capacity; i++) {
        const stmt_slot *s = &c->slots[i];
        if (s->used >= c->batch_start)
            continue;
        int rank = s->sql == NULL ? (s->held ? 1 : 0) : 2;
        if (rank < rank_best || (rank == rank_best && rank == 2 && s->used < c->slots[best].used)) {
            best = i;
            rank_best = rank;
        }
    }
    return best;
}

void
stmt_cache_plan(stmt_cache *c, stmt_seen *seen, const char *sql, int nparams, stmt_plan *out)
{
    memset(out, 0, sizeof(*out));
    out->slot = -1;
    if (c == NULL || c->capacity == 0 || dml_start(sql) == NULL)
        return;
    uint64_t h = stmt_hash(sql, nparams);
    for (int i = 0; i < c->capacity; i++) {
        stmt_slot *s = &c->slots[i];
        if (s->sql != NULL && s->hash == h && s->nparams == nparams && strcmp(s->sql, sql) == 0) {
            s->used = ++c->stamp;
            out->slot = i;
            stmt_name(out->name, s->id);
            return;
        }
    }
    /* not cached (only cacheable texts ever are; the length and RETURNING
     * checks are left to a miss): admit it the second time the pool sees it */
    if (!stmt_cacheable(sql))
        return;
    uint64_t *f = &seen->hash[h % STMT_SEEN_SLOTS];
    if (*f != h) {
        *f = h;
        return;
    }
    int v = stmt_victim(c);
    if (v < 0)
        return;
    char *copy = strdup(sql);
    if (copy == NULL)
        return;
    stmt_slot *s = &c->slots[v];
    if (s->held) {
        out->dealloc = true;
        stmt_name(out->old_name, s->id);
    }
    free(s->sql);
    s->sql = copy;
    s->hash = h;
    s->nparams = nparams;
    s->id = ++c->next_id;
    s->used = ++c->stamp;
    s->held = true;
    out->slot = v;
    out->prepare = true;
    stmt_name(out->name, s->id);
}

static void
stmt_forget(stmt_slot *s, bool held)
{
    free(s->sql);
    s->sql = NULL;
    s->held = held;
}

void
stmt_cache_prepared(stmt_cache *c, int slot, bool ok)
{
    if (c == NULL || slot < 0 || slot >= c->capacity || ok)
        return;
    stmt_forget(&c->slots[slot], false);
}

void
stmt_cache_dealloc_failed(stmt_cache *c)
{
    if (c != NULL)
        c->leftovers++;
}

/* Errors that say nothing about the statement itself: constraint
 * violations (23), serialization failures and deadlocks (40), resources
 * (53), locks (55), cancels and shutdown (57), an aborted transaction
 * (25). */
static bool
error_of_the_data(const char *sqlstate)
{
    static const char *const classes[] = {"23", "40", "53", "55", "57", "25"};
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        if (strncmp(sqlstate, classes[i], 2) == 0)
            return true;
    return false;
}

void
stmt_cache_exec_failed(stmt_cache *c, int slot, const char *sqlstate)
{
    if (c == NULL || slot < 0 || slot >= c->capacity)
        return;
    if (sqlstate != NULL && error_of_the_data(sqlstate))
        return;
    stmt_slot *s = &c->slots[slot];
    if (s->sql != NULL)
        stmt_forget(s, true);
}

void
stmt_cache_batch_end(stmt_cache *c)
{
    if (c != NULL)
        c->batch_start = c->stamp + 1;
}

bool
stmt_cache_needs_reset(const stmt_cache *c)
{
    return c != NULL && c->leftovers > c->capacity;
}

int
stmt_cache_count(const stmt_cache *c)
{
    int n = 0;
    for (int i = 0; c != NULL && i < c->capacity; i++)
        n += c->slots[i].sql != NULL;
    return n;
}
