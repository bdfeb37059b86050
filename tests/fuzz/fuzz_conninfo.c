/*
 * fuzz_conninfo.c — libdtx's connection-string parser
 * (client/dtx_conninfo.c: dtx_conninfo_parse), over the DTX* environment
 * defaults it merges.
 *
 * The input is cut at FUZZ_SPLIT: the first piece is the connection string
 * (up to its first NUL byte, as a C string ends); the next ones, in order,
 * are the values of DTXHOST, DTXPORT, DTXSSLMODE, DTXSSLROOTCERT,
 * DTXSSLCERT, DTXSSLKEY, DTXCONNECT_TIMEOUT, DTXAPPNAME and DTXTARGETROLE
 * (a missing piece leaves the variable unset).  Checks, on success: at least
 * one host, each 1..255 bytes with a port in 1..65535; sslmode and
 * target_role among their values; a key only with a certificate; a
 * non-negative timeout; an application name.  On failure: a message, on
 * one line unless the input brought a line break, and nothing left to
 * free.  A second parse of the same input must
 * agree.
 */
#include "fuzz.h"

#include "dtx_conninfo.h"

static const char *const env_names[] = {
    "DTXHOST",       "DTXPORT",   "DTXSSLMODE",         "DTXSSLROOTCERT",
    "DTXSSLCERT",    "DTXSSLKEY", "DTXCONNECT_TIMEOUT", "DTXAPPNAME",
    "DTXTARGETROLE",
};
#define NENV (sizeof(env_names) / sizeof(env_names[0]))

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NENV; i++)
        unsetenv(env_names[i]);
    return 0;
}

static void
check_parsed(const dtx_conninfo *ci)
{
    FUZZ_CHECK(ci->nhosts >= 1 && ci->hosts != NULL && ci->ports != NULL);
    for (int i = 0; i < ci->nhosts; i++) {
        size_t n = strlen(ci->hosts[i]);
        FUZZ_CHECK(n >= 1 && n <= 255);
        FUZZ_CHECK(ci->ports[i] >= 1 && ci->ports[i] <= 65535);
    }
    FUZZ_CHECK(ci->sslmode == DTX_SSLMODE_VERIFY_FULL || ci->sslmode == DTX_SSLMODE_VERIFY_CA);
    FUZZ_CHECK(ci->target_role == DTX_TARGET_PRIMARY || ci->target_role == DTX_TARGET_ANY);
    FUZZ_CHECK(ci->sslkey == NULL || ci->sslcert != NULL);
    FUZZ_CHECK((ci->sslcert == NULL) == (ci->sslkey == NULL));
    FUZZ_CHECK(ci->sslrootcert == NULL || ci->sslrootcert[0] != '\0');
    FUZZ_CHECK(ci->connect_timeout >= 0);
    FUZZ_CHECK(ci->application_name != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    fuzz_piece pc[1 + NENV];
    size_t n = fuzz_split(data, size, pc, 1 + NENV);
    char *s = fuzz_strndup(pc[0].p, pc[0].len);
    for (size_t i = 1; i < n; i++) {
        char *v = fuzz_strndup(pc[i].p, pc[i].len);
        setenv(env_names[i - 1], v, 1);
        free(v);
    }

    dtx_conninfo ci, again;
    char err[512], err2[512];
    bool ok = dtx_conninfo_parse(s, &ci, err, sizeof(err));
    bool ok2 = dtx_conninfo_parse(s, &again, err2, sizeof(err2));
    FUZZ_CHECK(ok == ok2);
    if (ok) {
        check_parsed(&ci);
        FUZZ_CHECK(ci.nhosts == again.nhosts);
        for (int i = 0; i < ci.nhosts; i++)
            FUZZ_CHECK(strcmp(ci.hosts[i], again.hosts[i]) == 0 && ci.ports[i] == again.ports[i]);
        dtx_conninfo_free(&ci);
        dtx_conninfo_free(&again);
        FUZZ_CHECK(ci.hosts == NULL && ci.nhosts == 0);
    } else {
        /* one line: the parser adds no line break (a value it quotes may
         * bring its own, as libpq's messages quote theirs) */
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(strchr(err, '\n') == NULL || memchr(data, '\n', size) != NULL);
        FUZZ_CHECK(strcmp(err, err2) == 0);
        FUZZ_CHECK(ci.hosts == NULL && ci.ports == NULL && ci.sslcert == NULL &&
                   ci.application_name == NULL);
    }

    for (size_t i = 1; i < n; i++)
        unsetenv(env_names[i - 1]);
    free(s);
    return 0;
}
