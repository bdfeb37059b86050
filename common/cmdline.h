/*
 * cmdline.h — the command line both daemons take:
 *
 *     PROG -c FILE [-t]      run (or, with -t, only check the configuration)
 *     PROG -h | -V           help, version
 *
 * Usage errors print one line saying what is wrong and a pointer to --help
 * on stderr; the caller exits with the status returned.
 */
#ifndef DTX_CMDLINE_H
#define DTX_CMDLINE_H

#include <stdbool.h>
#include <stdio.h>

typedef struct daemon_args {
    const char *config; /* -c FILE */
    bool check_only;    /* -t */
} daemon_args;

/* Parse argv.  Returns -1 when the daemon should go on (args filled in),
 * otherwise the exit status: 0 after --help or --version, 2 after a usage
 * error.  usage() prints the help text. */
int daemon_args_parse(int argc, char **argv, const char *prog, const char *version,
                      void (*usage)(FILE *out), daemon_args *args);

#endif
