/*
 * fence.h — epoch fencing of coordinators (docs/design.md section 6).
 *
 * Every coordinator introduces itself with (name, epoch) at HELLO and
 * repeats the epoch in every request.  A coordinator whose epoch is lower
 * than the highest one seen for its name has been deposed (a standby was
 * promoted in its place) and may no longer prepare, commit or roll back
 * anything here.
 *
 * This first version keeps the highest epoch per name in memory only, so the
 * fence holds for the life of the participant process.  The durable table
 * (recorded in the participant's own database before HELLO_OK, so that it
 * survives restarts) is to be added behind the same two calls.
 */
#ifndef DTX_PART_FENCE_H
#define DTX_PART_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SQLSTATE of a refusal by the fence (connection exception class). */
#define FENCE_SQLSTATE "08004"

/* At HELLO: refuse an epoch lower than the highest seen for name, else
 * record it as the highest.  false with a message in err on refusal. */
bool fence_admit(const char *name, uint64_t epoch, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Per request: false with a message when epoch is lower than the highest
 * seen for name. */
bool fence_check(const char *name, uint64_t epoch, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Forget everything (at exit). */
void fence_free(void);

#endif
