/*
 * dtx_main.c — the dtx command-line tool: picks the sub-command.
 *
 * NOTES
 *  `dtx COMMAND [OPTION]... [ARG]...`; each sub-command lives in its own
 *  cli_*.c file and parses its own options (the connection options are
 *  shared, cli_conn.c).  Before the command only --help and --version are
 *  understood.  Every usage error exits with CLI_EXIT_USAGE (3) after a
 *  one-line message and a pointer to --help; output meant for scripts
 *  (results, outcome lines) goes to stdout, everything else to stderr.
 *
 *  SIGPIPE: libdtx never raises it (its sockets send with MSG_NOSIGNAL), so
 *  the tool keeps the default disposition and dies quietly when stdout is a
 *  closed pipe, like other filters.
 */
#include "cli.h"

#include <locale.h>
#include <string.h>

static const char main_help[] =
    "dtx is the command-line client of the dtx transaction coordinator.\n"
    "\n"
    "Usage:\n"
    "  dtx COMMAND [OPTION]... [ARG]...\n"
    "\n"
    "Commands:\n"
    "  exec         run one atomic transaction across participants\n"
    "  status       ask what became of a transaction (by gid)\n"
    "  indoubt      list transactions not yet finished everywhere\n"
    "  replication  show how the coordinator's replication stands\n"
    "  promote      make a standby coordinator the primary\n"
    "\n"
    "Options:\n"
    "      --help       show this help, then exit\n"
    "      --version    show the version, then exit\n"
    "\n"
    "\"dtx COMMAND --help\" shows the options of a command; see also dtx(1).\n"
    "\n";

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"exec", cli_exec},       {"status", cli_status},
    {"indoubt", cli_indoubt}, {"replication", cli_replication},
    {"promote", cli_promote},
};

int
main(int argc, char **argv)
{
    setlocale(LC_CTYPE, "");
    if (argc < 2)
        return cli_usage_error(NULL, "no command given");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *av[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, av);
                }
            return cli_usage_error(NULL, "unknown command \"%s\"", argv[2]);
        }
        fputs(main_help, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        int v = dtx_lib_version();
        printf("dtx %s (libdtx %d.%d.%d)\n", DTX_VERSION_STR, v / 10000, v / 100 % 100, v % 100);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_usage_error(NULL, "invalid option \"%s\" (give a command first)", cmd);
    return cli_usage_error(NULL, "unknown command \"%s\"", cmd);
}
