#!/usr/bin/env bash
# make install, and libdtx as a user gets it: the installed tree, the
# pkg-config file, a program built against the installed header and linked
# with the shared library and then with the static one, each running a
# transaction on a real coordinator.  The static library exports the API
# only, so a program may use names dtx uses inside.
# Cases (CASE=name runs one alone, docs/testing.md): tree (make install and
# what it installed), pkg-config, build, run; each later one needs tree, run
# needs build: those run first, as set-up.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases tree pkg-config:tree build:tree run:build
h_init

root="$H_TMP/root"
prefix=/usr/local
r="$root$prefix"
# the version, as the Makefile (its only source) defines it
read -r want want_num < <(make -s --no-print-directory -C "$H_ROOT" -f Makefile -f - print-version \
    <<<$'print-version:\n\t@echo $(VERSION) $(VERSION_NUM)')
if h_case tree; then
    make -s -C "$H_ROOT" install DESTDIR="$root" PREFIX="$prefix" >"$H_TMP/install.log" 2>&1
    h_eq "make install DESTDIR=... PREFIX=$prefix: exit 0" 0 $? || tail -n 20 "$H_TMP/install.log" | sed 's/^/# /'
    for f in bin/dtx bin/dtx-coordinator bin/dtx-participant bin/dtx-waldump lib/libdtx.so.1 \
        lib/libdtx.a include/dtx.h include/dtx_version.h lib/pkgconfig/libdtx.pc \
        share/man/man1/dtx.1 lib/systemd/system/dtx-coordinator.service \
        lib/systemd/system/dtx-participant.service lib/sysusers.d/dtx.conf \
        share/dtx/dtx-alerts.yml; do
        h_check "installed: $f" test -s "$r/$f"
    done
    h_check "the installed units run the installed daemons" \
        grep -q "^ExecStart=$prefix/bin/dtx-coordinator -c " "$r/lib/systemd/system/dtx-coordinator.service"
    h_check "the Makefile's VERSION is major.minor.patch ('$want', $want_num)" \
        bash -c "grep -qE '^[0-9]+[.][0-9]+[.][0-9]+\$' <<<'$want' && [ '$want_num' -gt 0 ]"
    h_eq "dtx --version" "dtx $want (libdtx $want)" "$("$r/bin/dtx" --version 2>&1)"
    h_eq "dtx-coordinator --version" "dtx-coordinator (dtx) $want" \
        "$("$r/bin/dtx-coordinator" --version 2>&1)"
    h_eq "dtx-participant --version" "dtx-participant (dtx) $want" \
        "$("$r/bin/dtx-participant" --version 2>&1)"
    h_eq "installed: lib/libdtx.so -> libdtx.so.1" libdtx.so.1 "$(readlink "$r/lib/libdtx.so")"
    h_eq "the shared library's soname" libdtx.so.1 \
        "$(objdump -p "$r/lib/libdtx.so.1" | awk '$1 == "SONAME" {print $2}')"
    api() { nm -D --defined-only "$r/lib/libdtx.so.1" | awk '{print $3}' | sort; }
    h_check "the shared library exports only dtx_* names" bash -c "! nm -D --defined-only '$r/lib/libdtx.so.1' | awk '{print \$3}' | grep -v '^dtx_'"
    h_eq "the static library's global symbols are the shared library's exports" "$(api | tr '\n' ' ')" \
        "$(nm -g --defined-only "$r/lib/libdtx.a" | awk 'NF == 3 {print $3}' | sort | tr '\n' ' ')"
fi

export PKG_CONFIG_PATH="$r/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
if h_case pkg-config; then
    h_eq "pkg-config --modversion libdtx" "$want" "$(pkg-config --modversion libdtx)"
    flags=$(pkg-config --cflags --libs libdtx)
    h_check "pkg-config --cflags --libs libdtx: the installed header and library ($flags)" \
        bash -c "grep -qe '-I$r/include ' <<<'$flags ' && grep -qe '-L$r/lib -ldtx ' <<<'$flags '"
    printf '%s\n' '#include <dtx.h>' '#include <stdio.h>' \
        'int main(void) { printf("%s %d\n", DTX_VERSION_STR, DTX_VERSION_NUM); return 0; }' \
        >"$H_TMP/version.c"
    cc -Wall -Werror -o "$H_TMP/version" "$H_TMP/version.c" $(pkg-config --cflags libdtx) \
        2>"$H_TMP/cc0.log"
    h_eq "a program builds with the installed dtx.h" 0 $? || sed 's/^/# /' "$H_TMP/cc0.log"
    h_eq "... and prints its DTX_VERSION_STR and DTX_VERSION_NUM" "$want $want_num" \
        "$("$H_TMP/version" 2>&1)"
fi

# a user's program: it also defines names that dtx uses internally
if h_case build; then
    cat >"$H_TMP/user.c" <<'C'
#include <dtx.h>
#include <stdio.h>
#include <string.h>
int wbuf_init(void) { return 0; }             /* dtx has a wbuf_init inside */
const char *proto_error_text = "user's own";  /* and proto_* names */
int main(int argc, char **argv)
{
    if (wbuf_init() != 0 || strcmp(proto_error_text, "user's own") != 0)
        return 3;
    dtx_conn *c = dtx_connect("");
    if (dtx_status(c) != DTX_CONNECTION_OK) {
        fprintf(stderr, "connect: %s\n", dtx_error_message(c));
        return 2;
    }
    const char *params[1] = {argv[1]};
    dtx_stmt st[1] = {{"a", "insert into t values ($1)", 1, params}};
    dtx_outcome o = dtx_oneshot(c, st, 1, NULL, NULL);
    printf("%s libdtx %d\n", dtx_outcome_name(o), dtx_lib_version());
    dtx_finish(c);
    (void)argc;
    return o == DTX_COMMITTED ? 0 : 1;
}
C
    cc -Wall -Werror -o "$H_TMP/user-shared" "$H_TMP/user.c" $(pkg-config --cflags --libs libdtx) 2>"$H_TMP/cc1.log"
    h_eq "a program builds with pkg-config's flags (shared)" 0 $? || sed 's/^/# /' "$H_TMP/cc1.log"
    cc -Wall -Werror -o "$H_TMP/user-static" "$H_TMP/user.c" $(pkg-config --cflags libdtx) \
        -L"$r/lib" -Wl,-Bstatic -ldtx -Wl,-Bdynamic $(pkg-config --static --libs-only-other libdtx) \
        $(pkg-config --libs openssl) 2>"$H_TMP/cc2.log"
    h_eq "... and with the static library, its own wbuf_init and proto_* beside it" 0 $? ||
        sed 's/^/# /' "$H_TMP/cc2.log"
    h_check "the shared build loads the installed libdtx.so.1" \
        bash -c "LD_LIBRARY_PATH='$r/lib' ldd '$H_TMP/user-shared' | grep -q '=> $r/lib/libdtx.so.1'"
    h_check "the static build needs no libdtx.so" bash -c "! ldd '$H_TMP/user-static' | grep -q libdtx"
fi

# both against a real coordinator
if h_case run; then
    h_pg_start pa >/dev/null
    h_psql pa "create table t (v text)"
    h_dtx_certs >/dev/null
    h_part_start a pa
    h_coord_start
    h_wait_log coord 'participant "a" .* is ready' 20
    out=$(LD_LIBRARY_PATH="$r/lib" "$H_TMP/user-shared" shared 2>&1)
    h_eq "the shared build commits a transaction" "COMMITTED libdtx $want_num" "$out"
    out=$("$H_TMP/user-static" static 2>&1)
    h_check "the static build commits a transaction" grep -q '^COMMITTED libdtx ' <<<"$out" || h_log "$out"
    h_eq "both rows are there" "shared static" "$(h_psql pa "select string_agg(v, ' ' order by v) from t")"

    h_stop coord
    h_eq "coordinator exits 0 on SIGTERM" 0 $?
    h_stop part-a
    h_eq "participant exits 0 on SIGTERM" 0 $?
fi
h_done
