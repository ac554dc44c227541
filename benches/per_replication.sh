#!/usr/bin/env bash
# Cost of one replication of a bench spec, several builds side by side. Not part of CI; run
# it on a quiet machine.
#
#   benches/per_replication.sh SPEC ROUNDS BIN [BIN ...]
#
# For each round, every binary in turn runs SPEC with 40 replications and with 4 (copies of
# SPEC with `replications` replaced), one thread each, and the script reads the wall time of
# the replications from the "N replications in X s" line. The cost of one replication is
# (T40 - T4) / 36, which takes out the fixed cost of the spec (instance, predictions). Prints
# each round's times and, per binary, the median over the rounds of T40, T4 and the cost.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n 2,11p "$0" >&2
    exit 2
fi
spec=$1
rounds=$2
shift 2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed 's/^replications = .*/replications = 40/' "$spec" >"$scratch/r40.toml"
sed 's/^replications = .*/replications = 4/' "$spec" >"$scratch/r4.toml"
grep -q '^replications = 40$' "$scratch/r40.toml" || {
    echo "$spec: no 'replications = N' line to replace" >&2
    exit 2
}

seconds() { # seconds BIN SPEC: the replications' wall time reported by `mrkl run`
    rm -rf "$scratch/out"
    "$1" run "$2" --out "$scratch/out" --threads 1 2>&1 |
        sed -n 's/.* replications in \([0-9.]*\)s .*/\1/p' | tail -1
}

declare -A t40 t4
for r in $(seq 1 "$rounds"); do
    for b in "$@"; do
        a=$(seconds "$b" "$scratch/r40.toml")
        c=$(seconds "$b" "$scratch/r4.toml")
        t40[$b]="${t40[$b]:-} $a"
        t4[$b]="${t4[$b]:-} $c"
        echo "round $r: $b: 40 replications $a s, 4 replications $c s"
    done
done
median() { printf '%s\n' $@ | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for b in "$@"; do
    m40=$(median ${t40[$b]})
    m4=$(median ${t4[$b]})
    per=$(echo "($m40 - $m4) / 36 * 1000" | bc -l)
    printf '%s: median T40 %s s, T4 %s s, per replication %.1f ms\n' "$b" "$m40" "$m4" "$per"
done
