/*
 * benchproc.c — what the benchmarks read of other processes in /proc (CPU
 * time, peak resident memory, system calls and context switches), and
 * their clock.
 */
#include "benchproc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The sum of the numbers after the "key:" lines of a /proc file whose key
 * is one of keys (NULL-terminated); false if the file cannot be read. */
static bool
proc_sum(const char *path, const char *const *keys, double *sum)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    while (fgets(buf, sizeof(buf), f)) {
        char *colon = strchr(buf, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        for (const char *const *k = keys; *k; k++)
            if (strcmp(buf, *k) == 0)
                *sum += strtod(colon + 1, NULL);
    }
    fclose(f);
    return true;
}

/* From /proc/PID/stat: the parent's pid, the process's own CPU (utime +
 * stime) and that of its reaped children (cutime + cstime), in ms. */
bool
proc_stat(int pid, int *ppid, double *own_ms, double *children_ms)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    long cut = 0, cst = 0;
    /* after ") ": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) */
    if (p == NULL || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
                            ppid, &ut, &st, &cut, &cst) != 5)
        return false;
    double tick_ms = 1000.0 / (double)sysconf(_SC_CLK_TCK);
    *own_ms = (double)(ut + st) * tick_ms;
    *children_ms = (double)(cut + cst) * tick_ms;
    return true;
}

/* utime+stime in ms, and VmHWM in MiB, of a process */
bool
proc_usage(int pid, double *cpu_ms, double *hwm_mb)
{
    char path[64];
    int ppid;
    double children;
    if (!proc_stat(pid, &ppid, cpu_ms, &children))
        return false;
    static const char *const hwm[] = {"VmHWM", NULL};
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    *hwm_mb = 0;
    proc_sum(path, hwm, hwm_mb);
    *hwm_mb /= 1024.0;
    return true;
}

/* System calls (read-like plus write-like, /proc/PID/io, all threads) and
 * context switches (voluntary and not, summed over the threads) of a
 * process so far.  Unlike CPU time these do not move with the load of the
 * machine, so they show what a change to the protocol or the I/O layer did. */
bool
proc_counts(int pid, double *syscalls, double *switches)
{
    static const char *const io[] = {"syscr", "syscw", NULL};
    static const char *const sw[] = {"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches", NULL};
    char path[320];
    *syscalls = *switches = 0;
    snprintf(path, sizeof(path), "/proc/%d/io", pid);
    if (!proc_sum(path, io, syscalls))
        return false;
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, e->d_name);
        proc_sum(path, sw, switches);
    }
    closedir(d);
    return true;
}

/* CPU milliseconds so far of PostgreSQL clusters, given their postmasters'
 * pids: each postmaster with the children it has reaped (backends that
 * ended), plus every live child (the backends still connected). */
double
pg_cpu_ms(const int *pids, int n)
{
    double ms = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name), ppid;
        double own, children;
        if (pid <= 0 || !proc_stat(pid, &ppid, &own, &children))
            continue;
        for (int k = 0; k < n; k++) {
            if (pid == pids[k])
                ms += own + children;
            else if (ppid == pids[k])
                ms += own;
        }
    }
    closedir(d);
    return ms;
}

/* Start a new peak-RSS window for a process: writing 5 to clear_refs sets
 * VmHWM to the current RSS (Linux 4.0+), so each run reports its own peak
 * rather than the highest since the process started.  Best effort. */
void
proc_reset_peak(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
