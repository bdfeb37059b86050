/*
 * pconf.h — the participant's configuration file (section [participant]).
 *
 * The keys, their types and defaults are the table in pconf.c and are
 * listed in docs/configuration.md.  pconf_load() parses the file with
 * common/config.c and then checks what the table cannot: the list of allowed
 * coordinators, the conninfo string, the listen address and the TLS files.
 * Every message starts with "FILE:LINE: ".
 */
#ifndef DTX_PART_PCONF_H
#define DTX_PART_PCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct part_conf {
    char *name; /* server_name in HELLO_OK; default "listen_addr:listen_port" */
    char *listen_addr;
    int listen_port;
    char *tls_cert;
    char *tls_key;
    char *tls_ca;
    char *tls_crl;              /* revoked certificates of tls_ca's CAs (optional) */
    char *allowed_coordinators; /* as written */
    char *conninfo;
    int pool_size;
    int oneshot_reserve; /* connections only self-contained branches may take */
    int statement_cache_size;
    int64_t max_frame;
    int64_t prepare_wait_timeout_ms;
    int64_t pool_wait_timeout_ms;
    int64_t statement_timeout_ms;
    int64_t authentication_timeout_ms; /* TLS and HELLO within this, from accept */
    int max_authenticating;            /* connections not yet authenticated, at most */
    int log_level;                     /* log_level of log.h */
    char *log_file;
    int log_format;    /* log_format of log.h */
    char *http_listen; /* operations endpoint (ops.c); NULL: none */
    bool http_tls;     /* ...over HTTPS, with tls_cert and tls_key */

    /* [roles]: client certificate name -> PostgreSQL role (docs/participant.md,
     * "Database roles"); "*" is the default.  None (nroles 0): every branch
     * runs as the role of conninfo */
    char **role_clients, **role_names;
    size_t nroles;

    /* derived by pconf_load */
    char **allowed; /* certificate names (config_split_names); "*" allows any */
    size_t n_allowed;
    char *path; /* the file, for messages */
} part_conf;

/* Parse and check path into *c (zeroed by the caller).  On failure err holds
 * "FILE:LINE: message" and *c holds nothing to free.  On success free with
 * pconf_free(). */
bool pconf_load(part_conf *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void pconf_free(part_conf *c);
/* Reload: newc was loaded from the file again, oldc is in force.  Keys that
 * a reload cannot apply keep their old values in newc (the new ones go to
 * oldc, to be freed with it); each is logged as needing a restart.
 * Returns how many. */
int pconf_keep_restart_keys(part_conf *newc, part_conf *oldc);

/* The role a branch of client runs as under c's [roles]: the client's own
 * entry (names compared ASCII case-insensitively, as certificate names
 * are), else "*"'s; NULL when [roles] names neither (or client is NULL
 * and there is no "*").  "" when c has no [roles]: the role of conninfo. */
const char *pconf_role_for(const part_conf *c, const char *client);

/* The line where key is set in [participant], or 0 (for messages). */
int pconf_key_line(const char *path, const char *key);

#endif
