/*
 * pgcancel.c — see pgcancel.h.
 *
 * NOTES
 *  One worker thread and a FIFO of requests under one mutex.  The loop
 *  thread only appends and signals; the worker takes one request at a time,
 *  runs PQcancel (a short blocking exchange with the server, bounded by the
 *  kernel's connect timeout when the server is gone) outside the lock, logs
 *  a failure and frees the request.  pgcancel_free() sets `stopping`, wakes
 *  the worker, which drains what is queued and exits, and joins it: no
 *  request or thread outlives the pool.
 */
#include "pgcancel.h"

#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cancel_req {
    PGcancel *cn;
    char what[32];
    struct cancel_req *next;
} cancel_req;

struct pgcancel {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cancel_req *head, *tail;
    bool stopping;
};

static void *
pgcancel_main(void *arg)
{
    pgcancel *pc = arg;
    pthread_mutex_lock(&pc->mu);
    for (;;) {
        while (pc->head == NULL && !pc->stopping)
            pthread_cond_wait(&pc->cv, &pc->mu);
        cancel_req *r = pc->head;
        if (r == NULL)
            break; /* stopping and drained */
        pc->head = r->next;
        if (pc->head == NULL)
            pc->tail = NULL;
        pthread_mutex_unlock(&pc->mu);
        char err[256] = "";
        if (PQcancel(r->cn, err, sizeof(err)))
            log_debug("cancel request sent for %s", r->what);
        else
            log_warn("could not send a cancel request for %s: %s", r->what, err);
        PQfreeCancel(r->cn);
        free(r);
        pthread_mutex_lock(&pc->mu);
    }
    pthread_mutex_unlock(&pc->mu);
    return NULL;
}

pgcancel *
pgcancel_create(void)
{
    pgcancel *pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        return NULL;
    pthread_mutex_init(&pc->mu, NULL);
    pthread_cond_init(&pc->cv, NULL);
    if (pthread_create(&pc->thread, NULL, pgcancel_main, pc) != 0) {
        pthread_cond_destroy(&pc->cv);
        pthread_mutex_destroy(&pc->mu);
        free(pc);
        return NULL;
    }
    return pc;
}

void
pgcancel_request(pgcancel *pc, PGcancel *cn, const char *what)
{
    cancel_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        log_warn("out of memory: cancel request for %s not sent", what);
        PQfreeCancel(cn);
        return;
    }
    r->cn = cn;
    snprintf(r->what, sizeof(r->what), "%s", what);
    pthread_mutex_lock(&pc->mu);
    if (pc->tail)
        pc->tail->next = r;
    else
        pc->head = r;
    pc->tail = r;
    pthread_cond_signal(&pc->cv);
    pthread_mutex_unlock(&pc->mu);
}

void
pgcancel_free(pgcancel *pc)
{
    if (pc == NULL)
        return;
    pthread_mutex_lock(&pc->mu);
    pc->stopping = true;
    pthread_cond_signal(&pc->cv);
    pthread_mutex_unlock(&pc->mu);
    pthread_join(pc->thread, NULL);
    pthread_cond_destroy(&pc->cv);
    pthread_mutex_destroy(&pc->mu);
    free(pc);
}
