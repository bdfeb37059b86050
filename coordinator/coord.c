/*
 * coord.c — helpers of the process-wide state (coord.h).
 */
#include "coord.h"

#include "clock.h"
#include "hash.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void
coord_branch_name(char *out, size_t len, const char *gid, const char *participant)
{
    snprintf(out, len, "%s:%s", gid, participant);
}

void
coord_gid_format(const coord *co, uint64_t seq, char *out, size_t len)
{
    snprintf(out, len, "dtx:%s:%llu:%llu", co->conf.name, (unsigned long long)co->epoch,
             (unsigned long long)seq);
}

size_t
coord_gid_hash(const char *s, size_t n)
{
    return (size_t)(hash_str(s) % n);
}

uint64_t
coord_wall_ms(const coord *co)
{
    return co->wall_ms ? co->wall_ms() : clock_wall_ms();
}

uint64_t
coord_new_instance(void)
{
    uint64_t v = 0;
    while (v == 0)
        if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
            v = clock_wall_ms() ^ ((uint64_t)clock_mono_ns() << 20);
    return v;
}

void
coord_stats_init(coord_stats *st)
{
    static const metrics_hist seconds = METRICS_HIST_SECONDS;
    memset(st, 0, sizeof(*st));
    st->commit_latency = seconds;
    st->prepare_round = seconds;
    st->durable_wait = seconds;
}
