/*
 * failpoint.c — see failpoint.h.
 *
 * NOTES
 *  The armed set is a small array (FP_MAX entries) guarded by one mutex; sites
 *  are cold paths in test builds only, so a linear scan is fine.  Passes are
 *  counted only for armed names: an unarmed site costs one locked scan.
 */
#include "failpoint.h"
#include "log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FP_MAX      32
#define FP_NAME_MAX 64

typedef enum fp_kind { FPK_OFF, FPK_KILL, FPK_ERROR, FPK_TORN, FPK_SLEEP } fp_kind;

typedef struct fp_entry {
    char name[FP_NAME_MAX];
    fp_kind kind;
    long arg;             /* sleep milliseconds */
    unsigned long nth;    /* 0 = every pass */
    bool and_later;       /* @N+ */
    unsigned long passes; /* passes counted so far */
} fp_entry;

static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static fp_entry fp_table[FP_MAX];
static int fp_count;

static bool
parse_one(const char *item, fp_entry *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof(*e));
    const char *eq = strchr(item, '=');
    if (eq == NULL || eq == item) {
        snprintf(err, errlen, "failpoint \"%s\": expected name=action", item);
        return false;
    }
    size_t nlen = (size_t)(eq - item);
    if (nlen >= FP_NAME_MAX) {
        snprintf(err, errlen, "failpoint name too long in \"%s\"", item);
        return false;
    }
    memcpy(e->name, item, nlen);
    e->name[nlen] = '\0';
    for (size_t i = 0; i < nlen; i++) {
        char c = e->name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-')) {
            snprintf(err, errlen, "failpoint name \"%s\" has an invalid character", e->name);
            return false;
        }
    }
    char act[64];
    const char *a = eq + 1;
    const char *at = strchr(a, '@');
    size_t alen = at ? (size_t)(at - a) : strlen(a);
    if (alen == 0 || alen >= sizeof(act)) {
        snprintf(err, errlen, "failpoint \"%s\": bad action", e->name);
        return false;
    }
    memcpy(act, a, alen);
    act[alen] = '\0';
    if (strcmp(act, "kill") == 0)
        e->kind = FPK_KILL;
    else if (strcmp(act, "error") == 0)
        e->kind = FPK_ERROR;
    else if (strcmp(act, "torn") == 0)
        e->kind = FPK_TORN;
    else if (strcmp(act, "off") == 0)
        e->kind = FPK_OFF;
    else if (strncmp(act, "sleep:", 6) == 0) {
        char *end;
        e->kind = FPK_SLEEP;
        e->arg = strtol(act + 6, &end, 10);
        if (end == act + 6 || *end != '\0' || e->arg < 0) {
            snprintf(err, errlen, "failpoint \"%s\": bad sleep milliseconds \"%s\"", e->name,
                     act + 6);
            return false;
        }
    } else {
        snprintf(err, errlen,
                 "failpoint \"%s\": unknown action \"%s\" (kill, error, torn, sleep:MS, off)",
                 e->name, act);
        return false;
    }
    if (at) {
        char *end;
        const char *n = at + 1;
        unsigned long v = strtoul(n, &end, 10);
        if (end == n || v == 0 || (*end != '\0' && strcmp(end, "+") != 0)) {
            snprintf(err, errlen, "failpoint \"%s\": bad pass number \"%s\" (1, 2, ... or N+)",
                     e->name, n);
            return false;
        }
        e->nth = v;
        e->and_later = (*end == '+');
    }
    return true;
}

bool
failpoint_configure(const char *spec, char *err, size_t errlen)
{
    fp_entry table[FP_MAX];
    int count = 0;
    char *copy = strdup(spec ? spec : "");
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        while (*item == ' ')
            item++;
        if (*item == '\0')
            continue;
        if (count == FP_MAX) {
            snprintf(err, errlen, "too many failpoints (at most %d)", FP_MAX);
            free(copy);
            return false;
        }
        if (!parse_one(item, &table[count], err, errlen)) {
            free(copy);
            return false;
        }
        count++;
    }
    free(copy);
    pthread_mutex_lock(&fp_lock);
    memcpy(fp_table, table, sizeof(fp_entry) * (size_t)count);
    fp_count = count;
    pthread_mutex_unlock(&fp_lock);
    return true;
}

void
failpoint_init_from_env(void)
{
    const char *spec = getenv("DTX_FAILPOINTS");
    char err[256];
    if (spec == NULL || *spec == '\0')
        return;
    if (!failpoint_configure(spec, err, sizeof(err)))
        log_fatal("invalid DTX_FAILPOINTS: %s", err);
#ifndef DTX_FAILPOINTS
    log_warn("DTX_FAILPOINTS is set but this is a release build without failpoints");
#endif
}

void
failpoint_kill(const char *name)
{
    log_log("failpoint %s: killing the process", name);
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

fp_action
failpoint_eval(const char *name)
{
    fp_kind kind = FPK_OFF;
    long arg = 0;
    unsigned long pass = 0;

    pthread_mutex_lock(&fp_lock);
    for (int i = 0; i < fp_count; i++) {
        fp_entry *e = &fp_table[i];
        if (strcmp(e->name, name) != 0)
            continue;
        pass = ++e->passes;
        bool fires = e->nth == 0 || pass == e->nth || (e->and_later && pass > e->nth);
        if (fires) {
            kind = e->kind;
            arg = e->arg;
        }
        break;
    }
    pthread_mutex_unlock(&fp_lock);

    switch (kind) {
    case FPK_OFF:
        return FP_NONE;
    case FPK_KILL:
        log_log("failpoint %s fired (pass %lu): kill", name, pass);
        failpoint_kill(name);
    case FPK_ERROR:
        log_log("failpoint %s fired (pass %lu): error", name, pass);
        return FP_ERROR;
    case FPK_TORN:
        log_log("failpoint %s fired (pass %lu): torn write", name, pass);
        return FP_TORN;
    case FPK_SLEEP: {
        log_log("failpoint %s fired (pass %lu): sleep %ld ms", name, pass, arg);
        struct timespec ts = {arg / 1000, (arg % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        return FP_NONE;
    }
    default:
        abort();
    }
}

unsigned long
failpoint_passes(const char *name)
{
    unsigned long n = 0;
    pthread_mutex_lock(&fp_lock);
    for (int i = 0; i < fp_count; i++)
        if (strcmp(fp_table[i].name, name) == 0)
            n = fp_table[i].passes;
    pthread_mutex_unlock(&fp_lock);
    return n;
}
