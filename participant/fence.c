/*
 * fence.c — see fence.h.
 *
 * NOTES
 *  A small array of (name, highest epoch), grown by doubling; the number of
 *  coordinator names sharing a participant is small.  Not durable yet: a
 *  restarted participant learns the epochs again from the next HELLOs.
 */
#include "fence.h"

#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fence_entry {
    char *name;
    uint64_t highest;
} fence_entry;

static fence_entry *fence_tab;
static size_t fence_n, fence_cap;

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

bool
fence_check(const char *name, uint64_t epoch, char *err, size_t errlen)
{
    fence_entry *e = fence_find(name);
    if (e && epoch < e->highest) {
        snprintf(err, errlen,
                 "coordinator \"%s\" with epoch %" PRIu64 " is fenced: epoch %" PRIu64
                 " has taken over",
                 name, epoch, e->highest);
        return false;
    }
    return true;
}

bool
fence_admit(const char *name, uint64_t epoch, char *err, size_t errlen)
{
    if (!fence_check(name, epoch, err, errlen))
        return false;
    fence_entry *e = fence_find(name);
    if (e) {
        if (epoch > e->highest) {
            log_log("coordinator \"%s\" moved to epoch %" PRIu64 " (was %" PRIu64 ")", name, epoch,
                    e->highest);
            e->highest = epoch;
        }
        return true;
    }
    if (fence_n == fence_cap) {
        size_t cap = fence_cap ? fence_cap * 2 : 8;
        fence_entry *t = realloc(fence_tab, cap * sizeof(*t));
        if (t == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        fence_tab = t;
        fence_cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    fence_tab[fence_n].name = copy;
    fence_tab[fence_n].highest = epoch;
    fence_n++;
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
