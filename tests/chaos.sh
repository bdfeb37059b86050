#!/usr/bin/env bash
# make chaos SECONDS=N — the chaos bank test.
#
# Three participant databases; concurrent clients make random transfers
# (tests/tools/bank.c, two or three participants each) for N seconds while a
# driver, at random moments, kills the coordinator or a participant with
# SIGKILL and restarts it, or stops a PostgreSQL server in immediate mode and
# starts it again.  Then it quiesces, waits for recovery and checks the
# invariants I1-I6 (tests/lib/bank.sh) over every transaction.  The last line
# is
#
#     chaos: <n> transactions, <k> faults, <v> violations
#
# and the exit status is non-zero when v > 0 (or recovery never finished).
#   CHAOS_THREADS (default 6), CHAOS_SEED (default: random, printed)
set -u
export DTX_BUILD=${DTX_BUILD:-test}
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/dtx.sh"
. "$(dirname "$0")/lib/bank.sh"

secs=${1:-60}
threads=${CHAOS_THREADS:-6}
seed=${CHAOS_SEED:-$RANDOM}
RANDOM=$seed
echo "# chaos: $secs s, $threads clients, seed $seed"
h_init
bank_setup || exit 1
h_coord_config "sweep_interval = 1s" "prepare_timeout = 5s"
h_coord_start || exit 1
h_wait_until 30 bank_resolved || { echo "chaos: the initial state never settled"; exit 1; }

faults=0
declare -A nfault=()
fault() {
    faults=$((faults + 1))
    nfault[$1]=$((${nfault[$1]:-0} + 1))
}

bank_run --threads "$threads" --seconds "$secs" --reconnect --seed "$seed" \
    >"$H_TMP/workload.out" 2>&1 &
workload=$!

end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
    # a random moment: 0.5 .. 3 s apart
    sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    sleep 0.5
    [ $SECONDS -lt $end ] || break
    p=$(echo a b c | cut -d' ' -f$((RANDOM % 3 + 1)))
    case $((RANDOM % 3)) in
    0)
        h_kill coord
        fault coordinator
        sleep "0.$((RANDOM % 10))"
        h_coord_start >/dev/null || { echo "chaos: the coordinator did not restart"; exit 1; }
        ;;
    1)
        h_kill "part-$p"
        fault participant
        sleep "0.$((RANDOM % 10))"
        h_part_start "$p" "p$p" >/dev/null ||
            { echo "chaos: participant $p did not restart"; exit 1; }
        ;;
    2)
        h_pg_stop "p$p" immediate
        fault postgres
        sleep "0.$((RANDOM % 10))"
        h_pg_ctl_start "p$p" || { echo "chaos: PostgreSQL p$p did not restart"; exit 1; }
        ;;
    esac
done

# quiesce: the clients stop, everything is up, recovery finishes
wait $workload
cat "$H_TMP/workload.out"
v=0
if ! h_wait_until 90 bank_resolved; then
    echo "VIOLATION recovery did not finish within 90 s:"
    h_dtx indoubt
    v=$((v + 1))
fi
out=$(bank_check 2>&1)
echo "$out" | grep -v '^check:' | head -50
echo "$out" | grep '^check:'
v=$((v + $(grep -c '^VIOLATION' <<<"$out")))

# I5: a second recovery resolves nothing and changes nothing
bank_i5 || v=$((v + 1))
if ! bank_gids_unique; then
    echo "VIOLATION a gid was used twice"
    v=$((v + 1))
fi
h_stop coord >/dev/null

n=$(grep -c '^B ' "$BANK_JOURNAL")
echo "# faults: coordinator ${nfault[coordinator]:-0}, participant ${nfault[participant]:-0}," \
    "postgres ${nfault[postgres]:-0}; outcomes:" \
    "$(awk '$1 == "R" {print $3}' "$BANK_JOURNAL" | sort | uniq -c | tr '\n' ' ')"
echo "chaos: $n transactions, $faults faults, $v violations"
[ $v -eq 0 ]
