/*
 * cli_repl.c — `dtx replication` and `dtx promote`: how a coordinator's
 * replication stands, and making a standby the primary.
 *
 * NOTES
 *  Both connect with target_role=any unless told otherwise (--target-role,
 *  -d, DTXTARGETROLE): they are meant for standbys as much as primaries.
 *
 *  replication prints one "key: value" line per field of the coordinator's
 *  answer, always all of them and in this order, for people and scripts:
 *
 *      role: standby
 *      epoch: 7
 *      name: coord
 *      peer: coord-a:6543
 *      state: streaming
 *      sent_lsn: 0/01A2B3C8
 *      flushed_lsn: 0/01A2B3C8
 *      primary_lsn: 0/01A2B3C8
 *      lag_bytes: 0
 *      lag_ms: 3
 *      synchronous: yes
 *      sure: yes
 *      detail:
 *
 *  LSNs are shown as the coordinator's log messages and PostgreSQL show
 *  them: the high and low 32 bits in hex ("%X/%08X").  A key whose value
 *  is empty is printed bare ("detail:").  Exit: 0, 1 on an error reply,
 *  2 no usable connection, 3 usage.
 *
 *  promote [--force] asks the coordinator to become the primary and prints
 *  its message.  Exit: 0 promoted; 1 refused, with the error on stderr as
 *  for every command (a standby that cannot be sure it holds every
 *  acknowledged decision refuses unless --force, and says why); 2 no
 *  usable connection, or the connection broke after the request left —
 *  then whether it was promoted is unknown, and stderr says to ask
 *  `dtx replication`; 3 usage.
 *
 *  An error of SQLSTATE class 08 (the connection, not the coordinator's
 *  answer) exits 2: a coordinator that refuses may close the connection
 *  right after its ERROR, so the connection's state after the call cannot
 *  tell a refusal from a failure.
 */
#include "cli.h"

#include <inttypes.h>
#include <string.h>

static const char replication_help[] =
    "dtx replication shows how the coordinator's replication stands, one \"key: value\"\n"
    "per line: role, epoch, name, peer, state, sent_lsn, flushed_lsn, primary_lsn,\n"
    "lag_bytes, lag_ms, synchronous, sure, detail.  It works against a standby.\n"
    "\n"
    "Usage:\n"
    "  dtx replication [OPTION]...\n"
    "\n"
    "Exit status: 0 success, 1 error reply, 2 connection failure, 3 usage error.\n"
    "\n";

static const char promote_help[] =
    "dtx promote makes a standby coordinator the primary, and prints its message.\n"
    "\n"
    "Usage:\n"
    "  dtx promote [--force] [OPTION]...\n"
    "\n"
    "Options:\n"
    "      --force                  promote even a standby that cannot be sure it holds\n"
    "                               every decision its primary acknowledged (see dtx(1))\n"
    "\n"
    "Exit status: 0 promoted, 1 refused, 2 connection failure (if the connection broke\n"
    "after the request was sent, the promotion may have happened: ask dtx replication),\n"
    "3 usage error.\n"
    "\n";

/* Exit code for an error result: the coordinator's refusal (1), or the
 * connection's failure (2, SQLSTATE class 08). */
static int
error_exit(const dtx_result *r)
{
    const char *state = dtx_result_error_field(r, DTX_DIAG_SQLSTATE);
    return state && strncmp(state, "08", 2) == 0 ? CLI_EXIT_UNKNOWN : CLI_EXIT_ABORTED;
}

static void
print_kv(const char *key, const char *value)
{
    if (value && value[0])
        printf("%s: %s\n", key, value);
    else
        printf("%s:\n", key);
}

static void
print_lsn(const char *key, uint64_t lsn)
{
    printf("%s: %X/%08X\n", key, (unsigned)(lsn >> 32), (unsigned)lsn);
}

static void
print_replication(const dtx_replication_info *ri)
{
    if (ri->role == DTX_ROLE_PRIMARY)
        print_kv("role", "primary");
    else if (ri->role == DTX_ROLE_STANDBY)
        print_kv("role", "standby");
    else
        printf("role: unknown (%d)\n", (int)ri->role);
    printf("epoch: %" PRIu64 "\n", ri->epoch);
    print_kv("name", ri->name);
    print_kv("peer", ri->peer);
    print_kv("state", ri->state);
    print_lsn("sent_lsn", ri->sent_lsn);
    print_lsn("flushed_lsn", ri->flushed_lsn);
    print_lsn("primary_lsn", ri->primary_lsn);
    printf("lag_bytes: %" PRIu64 "\n", ri->lag_bytes);
    printf("lag_ms: %" PRIu64 "\n", ri->lag_ms);
    print_kv("synchronous", ri->synchronous ? "yes" : "no");
    print_kv("sure", ri->sure ? "yes" : "no");
    print_kv("detail", ri->detail);
    if (ri->ha_leader[0] == '\0')
        return; /* no [ha] */
    print_kv("ha_leader", ri->ha_leader);
    if (ri->ha_lease_ms >= 0)
        printf("ha_lease_ms: %" PRId64 "\n", ri->ha_lease_ms);
    else
        print_kv("ha_lease_ms", "");
    print_kv("ha_sync_standby", ri->ha_sync);
    print_kv("ha_etcd", ri->ha_etcd);
}

int
cli_replication(int argc, char **argv)
{
    cli_conn_opts o;
    memset(&o, 0, sizeof(o));
    o.role_default = "any";
    int n;
    int rc =
        cli_parse_conn_args("replication", replication_help, argc, argv, &o, NULL, NULL, 0, &n);
    if (rc >= 0)
        return rc;
    dtx_conn *c = cli_connect(&o, "replication", &rc);
    if (c == NULL)
        return rc;
    dtx_result *r = dtx_replication(c);
    if (r == NULL) {
        fprintf(stderr, "dtx replication: out of memory\n");
        rc = CLI_EXIT_UNKNOWN;
    } else if (dtx_result_status(r) == DTX_RES_ERROR) {
        cli_print_result_error(stderr, r);
        rc = error_exit(r);
    } else {
        print_replication(dtx_result_replication(r));
        rc = CLI_EXIT_OK;
    }
    dtx_clear(r);
    dtx_finish(c);
    return rc;
}

int
cli_promote(int argc, char **argv)
{
    cli_conn_opts o;
    memset(&o, 0, sizeof(o));
    o.role_default = "any"; /* the default, primary, is exactly what a standby refuses */
    bool force = false;
    int n;
    int rc = cli_parse_conn_args("promote", promote_help, argc, argv, &o, &force, NULL, 0, &n);
    if (rc >= 0)
        return rc;
    dtx_conn *c = cli_connect(&o, "promote", &rc);
    if (c == NULL)
        return rc;
    dtx_result *r = dtx_promote(c, force);
    if (r == NULL) {
        fprintf(stderr, "dtx promote: out of memory\n");
        rc = CLI_EXIT_UNKNOWN;
    } else if (dtx_result_status(r) == DTX_RES_ERROR) {
        cli_print_result_error(stderr, r);
        rc = error_exit(r);
        const char *state = dtx_result_error_field(r, DTX_DIAG_SQLSTATE);
        if (state && strcmp(state, "08006") == 0)
            fprintf(stderr, "dtx promote: the connection broke after the request was sent: "
                            "whether the coordinator was promoted is unknown (ask it with "
                            "\"dtx replication\")\n");
    } else {
        const char *msg = dtx_result_detail(r);
        if (msg && msg[0])
            printf("%s\n", msg);
        rc = CLI_EXIT_OK;
    }
    dtx_clear(r);
    dtx_finish(c);
    return rc;
}
