#!/usr/bin/env bash
# check.sh — the include order of dtx's modules (docs/architecture.md,
# "Layers").  tests/layers/layers.conf says, for each module of a directory,
# which other modules of that directory it may include; this fails when
#   - a .c or .h file belongs to no module of the table,
#   - a file includes a header of its directory's modules not on its
#     module's list (a lower module reaching a higher one), or
#   - the table itself has a cycle.
# Headers of other directories (common/, wal/, system headers) are not
# checked here: the include path decides what each build may see.
#
#   tests/layers/check.sh [ROOT]      ROOT defaults to the repository
# Prints one line per violation and "layers: N files checked, V violations".
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
conf=$(dirname "$0")/layers.conf
[ -f "$root/tests/layers/layers.conf" ] && conf=$root/tests/layers/layers.conf

declare -A allowed     # "dir module" -> " mod1 mod2 "
declare -a patterns=() # "dir pattern module" in table order
bad=0
nfiles=0
edges=""

while read -r dir pat colon rest; do
    [ -z "$dir" ] && continue
    case $dir in \#*) continue ;; esac
    if [ "$colon" != ":" ]; then
        echo "layers.conf: malformed line: $dir $pat $colon $rest" >&2
        exit 2
    fi
    patterns+=("$dir $pat")
    allowed["$dir $pat"]=" $rest "
    for m in $rest; do edges+="$dir/$pat $dir/$m"$'\n'; done
    edges+="$dir/$pat $dir/$pat"$'\n'
done <"$conf"

# the table must be a DAG: tsort reports a loop on stderr
if ! loops=$(printf '%s' "$edges" | tsort 2>&1 >/dev/null) || [ -n "$loops" ]; then
    echo "layers.conf has a cycle:"
    echo "$loops" | sed 's/^/    /'
    bad=$((bad + 1))
fi

# module of a file stem in dir: the first pattern that matches
module_of() {
    local dir=$1 stem=$2 p d pat
    for p in "${patterns[@]}"; do
        d=${p%% *}
        pat=${p#* }
        [ "$d" = "$dir" ] || continue
        # shellcheck disable=SC2053
        if [[ $stem == $pat ]]; then
            echo "$pat"
            return 0
        fi
    done
    return 1
}

for dir in $(printf '%s\n' "${patterns[@]}" | awk '{print $1}' | sort -u); do
    for f in "$root/$dir"/*.c "$root/$dir"/*.h; do
        [ -f "$f" ] || continue
        nfiles=$((nfiles + 1))
        base=$(basename "$f")
        stem=${base%.*}
        if ! mod=$(module_of "$dir" "$stem"); then
            echo "$dir/$base: belongs to no module in layers.conf"
            bad=$((bad + 1))
            continue
        fi
        while IFS= read -r inc; do
            h=${inc%.h}
            [ -f "$root/$dir/$inc" ] || continue # another directory's header
            if ! hmod=$(module_of "$dir" "$h"); then
                continue # reported for the header itself
            fi
            [ "$hmod" = "$mod" ] && continue
            if [[ ${allowed["$dir $mod"]} != *" $hmod "* ]]; then
                echo "$dir/$base: includes $inc, but module $mod may not use module $hmod"
                bad=$((bad + 1))
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
    done
done
echo "layers: $nfiles files checked, $bad violations"
[ $bad -eq 0 ]
