/*
 * benchproc.h — what the benchmarks read of other processes in /proc, and
 * their clock.
 * Every function is best effort: false (or 0) when the process or the file
 * is gone.
 */
#ifndef DTX_BENCHPROC_H
#define DTX_BENCHPROC_H

#include <stdbool.h>

/* The parent's pid, the process's own CPU (utime + stime) and that of its
 * reaped children (cutime + cstime), in ms. */
bool proc_stat(int pid, int *ppid, double *own_ms, double *children_ms);
/* utime+stime in ms, and VmHWM in MiB */
bool proc_usage(int pid, double *cpu_ms, double *hwm_mb);
/* read-like plus write-like system calls, and context switches of all
 * threads, so far */
bool proc_counts(int pid, double *syscalls, double *switches);
/* CPU ms so far of PostgreSQL clusters, given their postmasters' pids */
double pg_cpu_ms(const int *pids, int n);
/* start a new peak-RSS window (VmHWM) */
void proc_reset_peak(int pid);
/* CLOCK_MONOTONIC in seconds */
double now_s(void);

#endif
