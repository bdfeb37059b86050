/*
 * sdnotify.c — see sdnotify.h.
 *
 * The socket is not unset after the first message (unset_environment 0):
 * READY, RELOADING and STOPPING go out over the daemon's whole life, and a
 * coordinator that starts itself again (execv, [ha]) tells the same
 * supervisor that it is ready again.
 */
#include "sdnotify.h"

#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static void
notify(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        log_debug("sd_notify(\"%s\") failed: %s", state, strerror(-rc));
}

static bool ready_sent;

void
sdnotify_reloaded(void)
{
    if (ready_sent)
        notify("READY=1");
}

void
sdnotify_ready(const char *status)
{
    ready_sent = true;
    char msg[512];
    if (status)
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
    else
        snprintf(msg, sizeof(msg), "READY=1");
    notify(msg);
}

void
sdnotify_reloading(void)
{
    notify("RELOADING=1");
}

void
sdnotify_stopping(void)
{
    notify("STOPPING=1");
}
