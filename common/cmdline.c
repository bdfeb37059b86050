/*
 * cmdline.c — the daemons' command line (see cmdline.h).
 */
#include "cmdline.h"

#include <getopt.h>
#include <string.h>

static int
usage_error(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    fprintf(stderr, "Try \"%s --help\" for more information.\n", prog);
    return 2;
}

int
daemon_args_parse(int argc, char **argv, const char *prog, const char *version,
                  void (*usage)(FILE *out), daemon_args *args)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    char what[256];
    int ch;

    args->config = NULL;
    args->check_only = false;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":c:thV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            args->config = optarg;
            break;
        case 't':
            args->check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("%s (dtx) %s\n", prog, version);
            return 0;
        case ':':
            if (optopt && strncmp(argv[optind - 1], "--", 2) != 0)
                snprintf(what, sizeof(what), "option \"-%c\" needs a value", optopt);
            else
                snprintf(what, sizeof(what), "option \"%s\" needs a value", argv[optind - 1]);
            return usage_error(prog, what);
        default:
            /* optopt is the letter of an unknown short option (getopt moves
             * optind only past the last letter of a group); 0 for a long one */
            if (optopt)
                snprintf(what, sizeof(what), "unknown option \"-%c\"", optopt);
            else
                snprintf(what, sizeof(what), "unknown option \"%s\"", argv[optind - 1]);
            return usage_error(prog, what);
        }
    }
    if (optind < argc) {
        snprintf(what, sizeof(what), "unexpected argument \"%s\"", argv[optind]);
        return usage_error(prog, what);
    }
    if (args->config == NULL)
        return usage_error(prog, "no configuration file given (-c FILE)");
    return -1;
}
