/*
 * failpoint.h — named crash and error sites for tests.
 *
 * A failpoint is a named place in the code where a test can make the process
 * misbehave on purpose.  Failpoints exist only in test builds (compiled with
 * -DDTX_FAILPOINTS=1, as `make check` does); in a release build FAILPOINT()
 * is the constant FP_NONE, so the site and its name vanish from the binary.
 *
 * They are armed by the environment variable DTX_FAILPOINTS, read once at
 * start-up:
 *
 *     DTX_FAILPOINTS="name=action[:arg][@N][;name=action...]"
 *
 * actions:  kill        SIGKILL the process on the spot
 *           error       the site takes its error path (FAILPOINT returns FP_ERROR)
 *           torn        the site writes part of its output, then the process is
 *                       killed (FAILPOINT returns FP_TORN; the site calls
 *                       failpoint_kill() once it has written the partial data)
 *           sleep:MS    sleep MS milliseconds, then carry on
 *           off         never fires (useful to keep a spec but disarm it)
 *   @N      fire only on the Nth pass through the site (1-based); without @N
 *           every pass fires.  @N+ fires on the Nth and every later pass.
 *
 * Every firing is logged at LOG level before it acts ("failpoint NAME fired"),
 * so a test can wait for the line.  The list of sites is docs/failpoints.md.
 */
#ifndef DTX_FAILPOINT_H
#define DTX_FAILPOINT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fp_action {
    FP_NONE = 0,
    FP_ERROR = 1,
    FP_TORN = 2,
} fp_action;

/* Parse a spec (the syntax above).  On error returns false and writes a
 * readable message into err.  Replaces any previously armed set.  Safe to call
 * in any build; in a release build arming is accepted but nothing fires. */
bool failpoint_configure(const char *spec, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Read DTX_FAILPOINTS; a bad spec is fatal (a test that mis-spells a failpoint
 * must not silently pass). */
void failpoint_init_from_env(void);
/* Evaluate a site: counts the pass, sleeps/kills as armed, returns the action
 * the site must take.  Thread-safe. */
fp_action failpoint_eval(const char *name);
/* Kill the process now with SIGKILL (after a torn write). */
_Noreturn void failpoint_kill(const char *name);
/* Number of passes through a site so far (for tests). */
unsigned long failpoint_passes(const char *name);

#ifdef DTX_FAILPOINTS
#define FAILPOINT(name) failpoint_eval(name)
#else
#define FAILPOINT(name) FP_NONE
#endif

#endif
