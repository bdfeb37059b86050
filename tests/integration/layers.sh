#!/usr/bin/env bash
# layers.sh — the include-order check (tests/layers/check.sh) passes on the
# tree and catches what it is there to catch: a lower module including a
# higher one's header, a file in no module, and a cycle in the table.
. "$(dirname "$0")/../lib/harness.sh"
h_cases tree lower-includes-higher stray-file cycle
h_init

check=$H_ROOT/tests/layers/check.sh
if h_case tree; then
if out=$("$check" "$H_ROOT" 2>&1); then
    h_ok "the tree keeps its layers ($(tail -n 1 <<<"$out"))"
else
    h_fail "the tree breaks its layers"
    printf '%s\n' "$out" | sed 's/^/# /'
fi
fi

# a copy of the tree's modules to break on purpose
copy() {
    rm -rf "$H_TMP/tree"
    mkdir -p "$H_TMP/tree/tests/layers"
    cp "$H_ROOT/tests/layers/layers.conf" "$H_TMP/tree/tests/layers/"
    for d in $(awk '!/^#/ && NF {print $1}' "$H_ROOT/tests/layers/layers.conf" | sort -u); do
        mkdir -p "$H_TMP/tree/$d"
        cp "$H_ROOT/$d"/*.[ch] "$H_TMP/tree/$d/"
    done
}

if h_case lower-includes-higher; then
copy
echo '#include "client.h"' >>"$H_TMP/tree/coordinator/plink.c"
if out=$("$check" "$H_TMP/tree" 2>&1); then
    h_fail "plink.c including client.h is not caught"
else
    grep -q 'plink.c: includes client.h' <<<"$out" &&
        h_ok "a lower module including a higher one's header is caught" ||
        h_fail "wrong report for plink.c including client.h: $out"
fi
fi

if h_case stray-file; then
copy
echo 'int x;' >"$H_TMP/tree/coordinator/stray.c"
if "$check" "$H_TMP/tree" >/dev/null 2>&1; then
    h_fail "a file in no module is not caught"
else
    h_ok "a file in no module is caught"
fi
fi

if h_case cycle; then
copy
sed -i 's/^coordinator    clog        :.*/coordinator    clog        :  txn coord/' \
    "$H_TMP/tree/tests/layers/layers.conf"
if out=$("$check" "$H_TMP/tree" 2>&1); then
    h_fail "a cycle in the table is not caught"
else
    grep -q 'cycle' <<<"$out" && h_ok "a cycle in the table is caught" ||
        h_fail "wrong report for a cycle: $out"
fi
fi
h_done
