#!/usr/bin/env bash
# tests/integration/roles.sh — per-application database roles
# (docs/participant.md, "Database roles"): participant a maps client
# certificate names to PostgreSQL roles in [roles]; each branch runs as its
# client's role, so PostgreSQL's GRANTs decide what each application may
# do; a client without a mapping is refused with 42501 (or takes the "*"
# default once a reload adds one); the client name is logged by the
# participant; a prepared branch is still finished by the participant's
# own role; a branch cannot leave its role.  Participant b has no [roles]:
# its branches run as the role of conninfo, as before.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases mapped granted unmapped two-phase escape default-reload
h_init

h_dtx_certs app2 app3 >/dev/null
h_pg_start pa
h_pg_start pb
for c in pa pb; do
    h_psql $c "create table t (k text primary key, v int not null default 0);
               insert into t values ('x', 0)"
done
# the participant logs in as dtx_login, which may become the applications'
# roles (and nothing else); r_app may write t, r_read only read it
h_psql pa "create role dtx_login login;
           create role r_app nologin; create role r_read nologin;
           grant r_app, r_read to dtx_login;
           grant select, insert, update on t to r_app; grant select on t to r_read;
           grant create on schema public to dtx_login" >/dev/null
h_part_start a pa postgres "log_format = json" \
    "conninfo = \"host=127.0.0.1 port=$(h_pg_port pa) user=dtx_login dbname=postgres\"" \
    "[roles]" "app = r_app" "APP2 = r_read"
h_part_start b pb postgres
h_coord_config "allowed_clients = app, app2, app3"
h_coord_start
for p in a b; do h_wait_log coord "participant \"$p\" .* is ready" 20; done
# has TEXT PATTERN... : every pattern is found in TEXT (on any line)
has() {
    local text=$1 p
    shift
    for p in "$@"; do grep -q -- "$p" <<<"$text" || return 1; done
}
as() { # as CLIENT dtx-exec-args...
    local who=$1
    shift
    DTXSSLCERT=$H_CERTS/$who.crt DTXSSLKEY=$H_CERTS/$who.key h_dtx exec "$@" 2>&1
}

# 1. each branch runs as its client's role (names match case-insensitively)
if h_case mapped; then
    out=$(as app -P a "select current_user, session_user" -P b "select current_user")
    h_check "mapped: app's branch on a runs as r_app, logged in as dtx_login ($out)" \
        grep -q "r_app.*dtx_login" <<<"$out"
    h_check "mapped: b has no [roles]: the role of conninfo (postgres)" grep -q "postgres" <<<"$out"
    out=$(as app2 -P a "select current_user")
    h_check "mapped: app2 (listed as APP2) runs as r_read ($out)" grep -q "r_read" <<<"$out"
fi

# 2. GRANTs decide: r_read may not write
if h_case granted; then
    out=$(as app -P a "update t set v = v + 1 where k = 'x'" -P b "update t set v = v + 1 where k = 'x'")
    h_check "granted: app may write ($out)" grep -q "^COMMITTED" <<<"$out"
    out=$(as app2 -P a "update t set v = v + 100 where k = 'x'" -P b "update t set v = v + 100 where k = 'x'")
    h_check "granted: app2 may not: PostgreSQL's 42501 ($out)" has "$out" "SQLSTATE:  42501" "permission denied"
    h_check "granted: ...and the transaction is aborted on both" grep -q "^ABORTED" <<<"$out"
    h_eq "granted: b unchanged by app2" 1 "$(h_psql pb "select v from t where k = 'x'")"
fi

# 3. a client without a mapping is refused by the participant, and logged
if h_case unmapped; then
    out=$(as app3 -P b "update t set v = v + 1000 where k = 'x'" -P a "select 1")
    h_check "unmapped: app3 is refused with 42501 naming it and the participant ($out)" \
        has "$out" "SQLSTATE:  42501" 'client "app3" has no database role on participant "a"'
    h_check "unmapped: ...and aborted" grep -q "^ABORTED" <<<"$out"
    h_check "unmapped: b did not keep app3's change" test "$(h_psql pb "select v from t where k = 'x'")" -lt 1000
    h_check "unmapped: the participant logs the refusal with the client's name" \
        grep -q '"client":"app3","sqlstate":"42501"' "$H_TMP/part-a.log"
fi

# 4. two-phase: a branch prepared under the client's role is finished by the
# participant's own (COMMIT PREPARED is for the role that prepared it)
if h_case two-phase; then
    out=$(as app -P a "insert into t values ('2pc', 1)" -P b "insert into t values ('2pc', 1)")
    h_check "two-phase: committed ($out)" grep -q "^COMMITTED" <<<"$out"
    h_eq "two-phase: the row is on a" 1 "$(h_psql pa "select count(*) from t where k = '2pc'")"
    h_eq "two-phase: nothing left prepared" 0 "$(h_psql pa "select count(*) from pg_prepared_xacts")"
    out=$(as app --oneshot -P a "insert into t values ('1s', 1)" -P b "insert into t values ('1s', 1)")
    h_check "two-phase: a one-shot transaction too ($out)" grep -q "^COMMITTED" <<<"$out"
    # a deferred trigger fires before PREPARE TRANSACTION, as the client's
    # role, not as the login role the branch goes back to for the PREPARE
    h_psql pa "create table trig_log (who text); grant insert on trig_log to r_app;
               create function log_user() returns trigger language plpgsql as
                 \$\$begin insert into trig_log values (current_user); return null; end\$\$;
               create constraint trigger tr after insert on t deferrable initially deferred
                 for each row execute function log_user()" >/dev/null
    out=$(as app -P a "insert into t values ('trig', 1)" -P b "insert into t values ('trig', 1)")
    h_check "two-phase: committed with a deferred trigger ($out)" grep -q "^COMMITTED" <<<"$out"
    h_eq "two-phase: the deferred trigger ran as the client's role" r_app \
        "$(h_psql pa "select string_agg(who, ',') from trig_log")"
fi

# 5. a branch cannot leave its role
if h_case escape; then
    for sql in "reset role" "set role dtx_login" "set local role r_app" \
        "set session authorization dtx_login" "set local \"role\" to 'dtx_login'" \
        "set local session_authorization to default"; do
        out=$(as app2 -P a "$sql" -P b "select 1")
        h_check "escape: '$sql' is refused (0A000)" \
            has "$out" "SQLSTATE:  0A000" "ROLE or SESSION AUTHORIZATION is not allowed"
    done
    out=$(as app2 -P a "do \$\$begin execute 'set local role dtx_login'; end\$\$" -P b "select 1")
    h_check "escape: a DO block is refused under a mapped role ($out)" \
        has "$out" "SQLSTATE:  0A000" "DO is not allowed"
    out=$(as app -P b "do \$\$begin perform 1; end\$\$" -P a "select 1")
    h_check "escape: ...but runs on a participant without [roles] ($out)" grep -q "^COMMITTED" <<<"$out"
fi

# 6. a reload adds a default ("*"): app3 then runs as r_read
if h_case default-reload; then
    echo "* = r_read" >>"$H_TMP/part-a.ini"
    kill -HUP "$(h_pid part-a)"
    h_wait_newlog part-a "configuration reloaded" 10
    out=$(as app3 -P a "select current_user")
    h_check "default-reload: app3 takes the default role r_read ($out)" grep -q "r_read" <<<"$out"
    out=$(as app3 -P a "update t set v = 0" -P b "select 1")
    h_check "default-reload: ...and its GRANTs ($out)" has "$out" "SQLSTATE:  42501" "permission denied"
fi

h_end_case
h_stop_clean a b
h_done
