/*
 * clock.h — the two clocks of dtx, and which to use for what.
 *
 *   clock_mono_ms()  CLOCK_MONOTONIC: durations, deadlines, ages, back-off.
 *                    Never jumps; its zero means nothing outside this boot.
 *   clock_mono_ns()  the same, in nanoseconds (the WAL's group-commit timing).
 *   clock_wall_ms()  CLOCK_REALTIME, milliseconds since 1970: timestamps that
 *                    are stored (log records) or shown to people.  It jumps
 *                    when the system clock is set: never subtract two of
 *                    them to time something that has to be right.
 */
#ifndef DTX_CLOCK_H
#define DTX_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ms(void);
uint64_t clock_mono_ns(void);
uint64_t clock_wall_ms(void);

#endif
