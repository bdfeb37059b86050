/*
 * cli_conn.c — the dtx tool's connection options and usage errors.
 *
 * NOTES
 *  The options (-h, -p, --sslrootcert, ..., -d CONNINFO) are turned into one
 *  libdtx connection string: first "application_name=dtx" (unless DTXAPPNAME
 *  is set) and the command's own target_role (unless DTXTARGETROLE is set:
 *  "any" for status, indoubt, replication and promote, which must work
 *  against a standby), then the -d string, then each option given, quoted.
 *  A keyword given later wins in libdtx, so an option overrides the same
 *  keyword in -d, -d overrides the command's defaults, and anything not
 *  given falls back to the DTX* environment variables inside libdtx.
 *  Values are checked by libdtx too, so the tool and the library can never
 *  disagree on what a valid port or sslmode is.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char cli_conn_help[] =
    "Connection options:\n"
    "  -h, --host=HOST[,HOST...]    coordinator host(s), tried in order (DTXHOST)\n"
    "  -p, --port=PORT[,PORT...]    port, one for all hosts or one per host (DTXPORT, 6543)\n"
    "      --sslrootcert=FILE       CA certificates to verify the coordinator (DTXSSLROOTCERT)\n"
    "      --sslcert=FILE           client certificate, for mutual TLS (DTXSSLCERT)\n"
    "      --sslkey=FILE            key of the client certificate (DTXSSLKEY)\n"
    "      --sslmode=MODE           verify-full (default) or verify-ca (DTXSSLMODE)\n"
    "      --connect-timeout=SECS   give up on an address after SECS (DTXCONNECT_TIMEOUT)\n"
    "      --target-role=ROLE       primary: skip standbys; any: the first that answers\n"
    "                               (DTXTARGETROLE; exec: primary, other commands: any)\n"
    "  -d, --conninfo=STRING        libdtx connection string, e.g. \"host=a,b port=6543\"\n";

bool
cli_conn_option(cli_conn_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case 'h':
        o->host = arg;
        return true;
    case 'p':
        o->port = arg;
        return true;
    case 'd':
        o->conninfo = arg;
        return true;
    case CLI_OPT_SSLROOTCERT:
        o->sslrootcert = arg;
        return true;
    case CLI_OPT_SSLCERT:
        o->sslcert = arg;
        return true;
    case CLI_OPT_SSLKEY:
        o->sslkey = arg;
        return true;
    case CLI_OPT_SSLMODE:
        o->sslmode = arg;
        return true;
    case CLI_OPT_CONNECT_TIMEOUT:
        o->connect_timeout = arg;
        return true;
    case CLI_OPT_TARGET_ROLE:
        o->target_role = arg;
        return true;
    default:
        return false;
    }
}

/* Append " keyword='value'" with ' and \ escaped. */
static void
put_kw(FILE *s, const char *kw, const char *val)
{
    if (val == NULL)
        return;
    fprintf(s, " %s='", kw);
    for (const char *p = val; *p; p++) {
        if (*p == '\'' || *p == '\\')
            fputc('\\', s);
        fputc(*p, s);
    }
    fputc('\'', s);
}

dtx_conn *
cli_connect(const cli_conn_opts *o, const char *cmd, int *rc)
{
    *rc = CLI_EXIT_UNKNOWN;
    char *why = NULL;
    /* -d alone first, so that an unterminated quote in it cannot swallow the
     * options appended after it */
    if (o->conninfo && !dtx_conninfo_check(o->conninfo, &why)) {
        *rc = cli_usage_error(cmd, "%s", why ? why : "out of memory");
        dtx_freemem(why);
        return NULL;
    }
    char *ci = NULL;
    size_t len = 0;
    FILE *s = open_memstream(&ci, &len);
    if (s == NULL) {
        fprintf(stderr, "dtx: error: out of memory\n");
        return NULL;
    }
    if (getenv("DTXAPPNAME") == NULL)
        fputs("application_name=dtx", s);
    const char *env_role = getenv("DTXTARGETROLE");
    if (o->role_default && (env_role == NULL || env_role[0] == '\0'))
        fprintf(s, " target_role=%s", o->role_default);
    if (o->conninfo)
        fprintf(s, " %s", o->conninfo);
    put_kw(s, "host", o->host);
    put_kw(s, "port", o->port);
    put_kw(s, "sslrootcert", o->sslrootcert);
    put_kw(s, "sslcert", o->sslcert);
    put_kw(s, "sslkey", o->sslkey);
    put_kw(s, "sslmode", o->sslmode);
    put_kw(s, "connect_timeout", o->connect_timeout);
    put_kw(s, "target_role", o->target_role);
    if (fclose(s) != 0 || ci == NULL) {
        free(ci);
        fprintf(stderr, "dtx: error: out of memory\n");
        return NULL;
    }
    if (!dtx_conninfo_check(ci, &why)) {
        *rc = cli_usage_error(cmd, "%s", why ? why : "out of memory");
        dtx_freemem(why);
        free(ci);
        return NULL;
    }
    dtx_conn *c = dtx_connect(ci);
    free(ci);
    if (c == NULL) {
        fprintf(stderr, "dtx: error: out of memory\n");
        return NULL;
    }
    if (dtx_status(c) != DTX_CONNECTION_OK) {
        fprintf(stderr, "dtx: error: %s", dtx_error_message(c));
        dtx_finish(c);
        return NULL;
    }
    return c;
}

int
cli_parse_conn_args(const char *cmd, const char *help, int argc, char **argv, cli_conn_opts *o,
                    bool *force, const char **pos, int maxpos, int *npos)
{
    static const struct option longopts[] = {
        CLI_CONN_LONGOPTS, {"force", no_argument, NULL, CLI_OPT_FORCE}, {NULL, 0, NULL, 0}};
    int opt;
    *npos = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":" CLI_CONN_SHORTOPTS, longopts, NULL)) != -1) {
        if (cli_conn_option(o, opt, optarg))
            continue;
        if (opt == CLI_OPT_HELP) {
            printf("%s%s", help, cli_conn_help);
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_FORCE && force != NULL) {
            *force = true;
            continue;
        }
        return cli_getopt_error(cmd, opt, argv);
    }
    for (; optind < argc; optind++) {
        if (*npos >= maxpos)
            return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
        pos[(*npos)++] = argv[optind];
    }
    return -1;
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "dtx%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry \"dtx%s%s --help\" for more information.\n", cmd ? " " : "",
            cmd ? cmd : "");
    return CLI_EXIT_USAGE;
}

int
cli_getopt_error(const char *cmd, int opt, char *const argv[])
{
    const char *arg = argv[optind - 1];
    if (opt == ':')
        return cli_usage_error(cmd, "option \"%s\" requires an argument", arg);
    if (optopt != 0 && strncmp(arg, "--", 2) != 0)
        return cli_usage_error(cmd, "invalid option \"-%c\"", optopt);
    return cli_usage_error(cmd, "invalid option \"%s\"", arg);
}
