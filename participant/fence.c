/*
 * fence.c — see fence.h.
 *
 * NOTES
 *  The table (docs/participant.md, "Fencing"), in the participant's own
 *  database, one row per coordinator name:
 *
 *      CREATE TABLE dtx_fence (
 *          coordinator text PRIMARY KEY,
 *          epoch       numeric(20,0) NOT NULL,   -- 0 .. 2^64-1
 *          instance    numeric(20,0) NOT NULL,   -- 0 .. 2^64-1; 0 = unknown
 *          since       timestamptz NOT NULL DEFAULT now())
 *
 *  epoch and instance are unsigned 64-bit numbers on the wire; numeric(20,0)
 *  holds every one of them exactly, in decimal (a bigint would show half of
 *  the random instances as negative numbers).
 *  `since` is when the epoch was first admitted.
 *
 *  Life cycle:
 *    - start-up (fence_load, blocking, before the listener opens): the table
 *      is looked up through the role's search_path, created there when
 *      missing (CREATE and COMMENT in one transaction), its schema-qualified
 *      name kept for the record's SQL (the pooled sessions' search_path is
 *      whatever clients left it), and every row loaded into memory.  Start-up
 *      fails when any of this fails: a participant that could not read its
 *      fence must not admit anybody;
 *    - HELLO with a higher epoch, or a name not seen yet: the record
 *      (fence_record_sql) raises the row in one transaction committed with
 *      synchronous_commit on; only its returned row, handed to
 *      fence_recorded(), admits the HELLO;
 *    - rows are never deleted by dtx.  An operator who deletes or lowers a
 *      row on purpose (to re-admit a coordinator whose log was recreated)
 *      restarts the participant, which reads the table only at start-up.
 *
 *  The mirror: a small array of (name, epoch, instance), grown by doubling;
 *  the number of coordinator names sharing a participant is small.
 *  Invariants: every entry is durable (loaded, or returned by a committed
 *  record); an entry's epoch only rises.  So refusing from the mirror never
 *  admits an epoch lower than the durable one.
 *
 *  Two records of one name may run at once (HELLOs on two connections) and
 *  their results may be handled in any order; PostgreSQL orders them (the
 *  row lock of ON CONFLICT DO UPDATE), and fence_recorded() judges each
 *  against both its own row and the mirror, so an epoch that lost the race
 *  is refused even when its own row was written first.
 */
#include "fence.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fence_entry {
    char *name;
    uint64_t epoch;
    uint64_t instance;
} fence_entry;

static fence_entry *fence_tab;
static size_t fence_n, fence_cap;
static char fence_qname[300];   /* "schema"."dtx_fence" */
static char fence_upsert[1536]; /* fence_record_sql() */

#define FENCE_U64_MAX_SQL "18446744073709551615"

/* Created in the first schema of the search_path, with a comment that says
 * what the table is to whoever finds it. */
static const char fence_create_sql[] =
    "CREATE TABLE IF NOT EXISTS " FENCE_TABLE " ("
    "coordinator text PRIMARY KEY, "
    "epoch numeric(20,0) NOT NULL CHECK (epoch BETWEEN 0 AND " FENCE_U64_MAX_SQL "), "
    "instance numeric(20,0) NOT NULL CHECK (instance BETWEEN 0 AND " FENCE_U64_MAX_SQL "), "
    "since timestamptz NOT NULL DEFAULT now()); "
    "COMMENT ON TABLE " FENCE_TABLE " IS 'dtx-participant: the highest epoch admitted per "
    "coordinator name (docs/participant.md, Fencing). Do not edit, except to re-admit a "
    "coordinator on purpose; then restart the participant.'";

/* Its quoted qualified name, and whether this role may read and write it. */
static const char fence_find_sql[] =
    "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
    "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), "
    "(pg_catalog.has_table_privilege(c.oid, 'SELECT') "
    "AND pg_catalog.has_table_privilege(c.oid, 'INSERT') "
    "AND pg_catalog.has_table_privilege(c.oid, 'UPDATE')) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON (n.oid OPERATOR(pg_catalog.=) c.relnamespace) "
    "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('" FENCE_TABLE "')";

/* ------------------------------------------------------------------------
 * The mirror
 */

/* The entry of name, or NULL; it stays the table's (fence_free()). */
static fence_entry *
fence_find(const char *name)
{
    for (size_t i = 0; i < fence_n; i++) {
        if (strcmp(fence_tab[i].name, name) == 0)
            return &fence_tab[i];
    }
    return NULL;
}

/* Raise name's entry to (epoch, instance) when epoch is higher (or add it).
 * false on out-of-memory: the entry is then missing or lower, and the
 * caller must not admit anybody on its strength. */
static bool
fence_raise(const char *name, uint64_t epoch, uint64_t instance)
{
    fence_entry *e = fence_find(name);
    if (e) {
        if (epoch > e->epoch) {
            log_log("coordinator \"%s\" moved to epoch %" PRIu64 " (instance %" PRIu64
                    "; was epoch %" PRIu64 ")",
                    name, epoch, instance, e->epoch);
            e->epoch = epoch;
            e->instance = instance;
        }
        return true;
    }
    if (fence_n == fence_cap) {
        size_t cap = fence_cap ? fence_cap * 2 : 8;
        fence_entry *t = realloc(fence_tab, cap * sizeof(*t));
        if (t == NULL)
            return false;
        fence_tab = t;
        fence_cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return false;
    fence_tab[fence_n].name = copy;
    fence_tab[fence_n].epoch = epoch;
    fence_tab[fence_n].instance = instance;
    fence_n++;
    return true;
}

/* Strict decimal u64 (what numeric(20,0)::text gives). */
static bool
parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

/* ------------------------------------------------------------------------
 * Start-up
 */

/* PostgreSQL's primary message of r, on one line, into err. */
static void
result_error(const PGresult *r, const char *what, char *err, size_t errlen)
{
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", m ? m : PQresultErrorMessage(r));
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    }
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == ' ')
        msg[--n] = '\0';
    snprintf(err, errlen, "%s: %s", what, msg);
}

/* Run sql expecting status st; false with err set.  Clears its result. */
static bool
exec_ok(PGconn *pg, const char *sql, ExecStatusType st, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = PQresultStatus(r) == st;
    if (!ok)
        result_error(r, what, err, errlen);
    PQclear(r);
    return ok;
}

/* Find the table (creating it when missing); keeps its qualified name. */
static bool
fence_find_table(PGconn *pg, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *r = PQexec(pg, fence_find_sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            result_error(r, "could not look up the fence table " FENCE_TABLE, err, errlen);
            PQclear(r);
            return false;
        }
        if (PQntuples(r) == 1) {
            bool may = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
            snprintf(fence_qname, sizeof(fence_qname), "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
            if (!may) {
                snprintf(err, errlen,
                         "the role of conninfo may not read and write the fence table %s; HINT: "
                         "GRANT SELECT, INSERT, UPDATE ON %s to it",
                         fence_qname, fence_qname);
                return false;
            }
            return true;
        }
        PQclear(r);
        if (attempt > 0)
            break;
        char why[512];
        if (!exec_ok(pg, fence_create_sql, PGRES_COMMAND_OK,
                     "could not create the fence table " FENCE_TABLE, why, sizeof(why))) {
            snprintf(err, errlen,
                     "%s; HINT: let the role of conninfo create tables in the first schema of "
                     "its search_path, or create the table as docs/participant.md shows and "
                     "grant SELECT, INSERT, UPDATE on it to that role",
                     why);
            return false;
        }
        log_log("created the fence table " FENCE_TABLE);
    }
    snprintf(err, errlen, "the fence table " FENCE_TABLE " is not on the search_path");
    return false;
}

static bool
fence_load_rows(PGconn *pg, char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT coordinator, epoch::pg_catalog.text, instance::pg_catalog.text FROM %s",
             fence_qname);
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 3) {
        result_error(r, "could not read the fence table", err, errlen);
        PQclear(r);
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < PQntuples(r); i++) {
        uint64_t epoch, instance;
        const char *name = PQgetvalue(r, i, 0);
        if (!parse_u64(PQgetvalue(r, i, 1), &epoch) || !parse_u64(PQgetvalue(r, i, 2), &instance)) {
            snprintf(err, errlen, "invalid row for coordinator \"%.64s\" in the fence table %s",
                     name, fence_qname);
            ok = false;
        } else if (!fence_raise(name, epoch, instance)) {
            snprintf(err, errlen, "out of memory loading the fence table");
            ok = false;
        }
    }
    PQclear(r);
    return ok;
}

bool
fence_load(PGconn *pg, char *err, size_t errlen)
{
    if (!exec_ok(pg, "SET synchronous_commit = on", PGRES_COMMAND_OK,
                 "could not set synchronous_commit", err, errlen) ||
        !fence_find_table(pg, err, errlen) || !fence_load_rows(pg, err, errlen))
        return false;
    int n = snprintf(fence_upsert, sizeof(fence_upsert),
                     "INSERT INTO %s AS f (coordinator, epoch, instance, since) "
                     "VALUES ($1::pg_catalog.text, $2::pg_catalog.numeric, $3::pg_catalog.numeric, "
                     "pg_catalog.now()) "
                     "ON CONFLICT (coordinator) DO UPDATE SET "
                     "epoch = CASE WHEN (f.epoch OPERATOR(pg_catalog.<) excluded.epoch) "
                     "THEN excluded.epoch ELSE f.epoch END, "
                     "instance = CASE WHEN (f.epoch OPERATOR(pg_catalog.<) excluded.epoch) "
                     "THEN excluded.instance ELSE f.instance END, "
                     "since = CASE WHEN (f.epoch OPERATOR(pg_catalog.<) excluded.epoch) "
                     "THEN excluded.since ELSE f.since END "
                     "RETURNING f.epoch::pg_catalog.text, f.instance::pg_catalog.text",
                     fence_qname);
    if (n < 0 || (size_t)n >= sizeof(fence_upsert)) {
        snprintf(err, errlen, "the fence table's name %s is too long", fence_qname);
        return false;
    }
    for (size_t i = 0; i < fence_n; i++)
        log_log("fence: coordinator \"%s\" at epoch %" PRIu64 " (instance %" PRIu64 ")",
                fence_tab[i].name, fence_tab[i].epoch, fence_tab[i].instance);
    return true;
}

const char *
fence_table(void)
{
    return fence_qname;
}

int
fence_count(void)
{
    return (int)fence_n;
}

void
fence_foreach(void (*fn)(void *arg, const char *name, uint64_t epoch), void *arg)
{
    for (size_t i = 0; i < fence_n; i++)
        fn(arg, fence_tab[i].name, fence_tab[i].epoch);
}

/* ------------------------------------------------------------------------
 * Verdicts
 */

/* Refuse (name, epoch, instance) against entry e; false when it passes. */
static bool
fence_refuses(const fence_entry *e, const char *name, uint64_t epoch, uint64_t instance, char *err,
              size_t errlen)
{
    if (e == NULL)
        return false;
    if (epoch < e->epoch) {
        snprintf(err, errlen,
                 "coordinator \"%s\" with epoch %" PRIu64 " is fenced: epoch %" PRIu64
                 " has taken over",
                 name, epoch, e->epoch);
        return true;
    }
    if (epoch == e->epoch && instance != e->instance) {
        snprintf(err, errlen,
                 "epoch %" PRIu64 " of coordinator \"%s\" is claimed by another instance: "
                 "instance %" PRIu64 " holds it, this is instance %" PRIu64,
                 epoch, name, e->instance, instance);
        return true;
    }
    return false;
}

fence_verdict
fence_admit(const char *name, uint64_t epoch, uint64_t instance, char *err, size_t errlen)
{
    fence_entry *e = fence_find(name);
    if (fence_refuses(e, name, epoch, instance, err, errlen))
        return FENCE_REFUSE;
    if (e && e->epoch == epoch)
        return FENCE_ADMIT;
    return FENCE_RECORD;
}

const char *
fence_record_sql(void)
{
    return fence_upsert;
}

bool
fence_record_row(const PGresult *res, uint64_t *epoch, uint64_t *instance)
{
    return PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2 &&
           parse_u64(PQgetvalue(res, 0, 0), epoch) && parse_u64(PQgetvalue(res, 0, 1), instance);
}

bool
fence_recorded(const char *name, uint64_t epoch, uint64_t instance, uint64_t row_epoch,
               uint64_t row_instance, char *err, size_t errlen, const char **sqlstate)
{
    *sqlstate = FENCE_SQLSTATE;
    if (!fence_raise(name, row_epoch, row_instance)) {
        /* not a refusal: the coordinator must not take it for one */
        *sqlstate = "53200";
        snprintf(err, errlen, "out of memory recording epoch %" PRIu64 " of coordinator \"%s\"",
                 epoch, name);
        return false;
    }
    /* the row first (another record won in PostgreSQL), then the mirror
     * (another record's result was handled first) */
    fence_entry row = {.name = (char *)name, .epoch = row_epoch, .instance = row_instance};
    if (fence_refuses(&row, name, epoch, instance, err, errlen) ||
        fence_refuses(fence_find(name), name, epoch, instance, err, errlen))
        return false;
    if (row_epoch != epoch) {
        /* the row is lower than what was recorded: not ours to trust */
        snprintf(err, errlen,
                 "the fence table %s holds epoch %" PRIu64 " for coordinator \"%s\" after "
                 "recording epoch %" PRIu64,
                 fence_qname, row_epoch, name, epoch);
        return false;
    }
    return true;
}

bool
fence_check(const char *name, uint64_t epoch, char *err, size_t errlen)
{
    fence_entry *e = fence_find(name);
    if (e && epoch < e->epoch) {
        snprintf(err, errlen,
                 "coordinator \"%s\" with epoch %" PRIu64 " is fenced: epoch %" PRIu64
                 " has taken over",
                 name, epoch, e->epoch);
        return false;
    }
    return true;
}

void
fence_free(void)
{
    for (size_t i = 0; i < fence_n; i++)
        free(fence_tab[i].name);
    free(fence_tab);
    fence_tab = NULL;
    fence_n = fence_cap = 0;
}
