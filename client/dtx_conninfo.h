/*
 * dtx_conninfo.h — connection strings, parsed and validated
 * (dtx_conninfo.c).
 *
 * Like every client/dtx_*.h but dtx.h, this header is internal to libdtx:
 * not installed, and what it declares has hidden visibility — it links
 * inside the library (and into programs linking the build's libdtx.a) but is
 * not exported from libdtx.so.  Unit tests include it to reach the parser.
 */
#ifndef DTX_LIB_CONNINFO_H
#define DTX_LIB_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>

#pragma GCC visibility push(hidden)

typedef enum dtx_sslmode {
    DTX_SSLMODE_VERIFY_FULL = 0, /* chain and host name */
    DTX_SSLMODE_VERIFY_CA = 1,   /* chain only */
} dtx_sslmode;

/* Which coordinators a connection accepts (target_role). */
typedef enum dtx_target_role {
    DTX_TARGET_PRIMARY = 0, /* only a primary: HELLO role client; a standby refuses (57P03) */
    DTX_TARGET_ANY = 1,     /* primary or standby: HELLO role admin (status, indoubt,
                               replication, promote) */
} dtx_target_role;

/* A parsed, validated connection string with environment defaults applied. */
typedef struct dtx_conninfo {
    int nhosts;   /* >= 1 */
    char **hosts; /* nhosts names or address literals */
    int *ports;   /* nhosts ports (one port given applies to all) */
    dtx_sslmode sslmode;
    char *sslrootcert;      /* NULL: the system's default store */
    char *sslcert;          /* NULL: no client certificate */
    char *sslkey;           /* NULL when sslcert is NULL; else a file name */
    int connect_timeout;    /* seconds per address; 0 = no limit */
    char *application_name; /* never NULL ("" by default) */
    dtx_target_role target_role;
} dtx_conninfo;

/* Parse s (may be NULL or "") over the DTX* environment defaults.  On
 * success *ci owns its strings: the caller frees them with
 * dtx_conninfo_free(ci) (ci itself is the caller's).  On failure returns
 * false with one line (no newline) in err; *ci is left empty, with nothing
 * to free. */
bool dtx_conninfo_parse(const char *s, dtx_conninfo *ci, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Free the strings *ci owns and leave it empty. */
void dtx_conninfo_free(dtx_conninfo *ci);

#pragma GCC visibility pop

#endif
