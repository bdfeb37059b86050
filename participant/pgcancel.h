/*
 * pgcancel.h — cancel requests to PostgreSQL without blocking the event loop.
 *
 * libpq before version 17 has only a blocking cancel (PQcancel: it opens a
 * new connection to the server, sends the CancelRequest packet and waits for
 * the server to close it).  The participant therefore hands each request
 * to one worker thread.  PQgetCancel() — no I/O — runs on the loop; the
 * PGcancel object it returns is independent of the PGconn and is freed by
 * the worker after PQcancel (both documented as thread-safe).
 *
 * A cancel is a request, not a promise: PostgreSQL cancels whatever the
 * backend is running when the packet arrives (nothing when it is idle), and
 * the running query then fails with 57014 through its normal result path.
 */
#ifndef DTX_PART_PGCANCEL_H
#define DTX_PART_PGCANCEL_H

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct pgcancel pgcancel;

/* Start the worker thread.  NULL when the thread or memory could not be
 * had.  Free with pgcancel_free(). */
pgcancel *pgcancel_create(void) __attribute__((warn_unused_result));
/* Queue a cancel for the backend `what` names in log lines (e.g. "pg#3").
 * Takes ownership of cn (freed with PQfreeCancel).  Never blocks on I/O. */
void pgcancel_request(pgcancel *pc, PGcancel *cn, const char *what);
/* Stop the worker after the requests already queued, join it, free.  NULL
 * is fine. */
void pgcancel_free(pgcancel *pc);

#endif
