/*
 * sdnotify.h — tell a supervisor (systemd, Type=notify) how the daemon is
 * doing, through libsystemd's sd_notify.  Without NOTIFY_SOCKET in the
 * environment (not started by systemd) every call does nothing.
 *
 *   sdnotify_ready("epoch 7, 2 participants")   READY=1 and a STATUS line
 *   sdnotify_reloading()                        RELOADING=1 (SIGHUP taken)
 *   sdnotify_reloaded()                         READY=1 again once applied
 *   sdnotify_stopping()                         STOPPING=1
 */
#ifndef DTX_SDNOTIFY_H
#define DTX_SDNOTIFY_H

void sdnotify_ready(const char *status);
void sdnotify_reloading(void);
/* READY=1 again after a reload, if READY was said before it */
void sdnotify_reloaded(void);
void sdnotify_stopping(void);

#endif
