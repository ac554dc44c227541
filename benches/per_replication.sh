#!/usr/bin/env bash
# Cost of one replication of a bench spec, several builds side by side. Not part of CI; run
# it on a quiet machine.
#
#   [MANY=40] [FEW=4] benches/per_replication.sh SPEC ROUNDS BIN [BIN ...]
#
# For each round, every binary in turn runs SPEC with MANY replications and with FEW (copies
# of SPEC with `replications` replaced), one thread each, and the script reads the wall time
# of the replications from the "N replications in X s" line (10 ms resolution: choose MANY
# so that a run takes a second or more). The cost of one replication is
# (T_MANY - T_FEW) / (MANY - FEW), which takes out the fixed cost of the spec (instance,
# predictions). Prints each round's times and, per binary, the median over the rounds of
# both times and the cost.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n 2,13p "$0" >&2
    exit 2
fi
many=${MANY:-40}
few=${FEW:-4}
spec=$1
rounds=$2
shift 2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed "s/^replications = .*/replications = $many/" "$spec" >"$scratch/many.toml"
sed "s/^replications = .*/replications = $few/" "$spec" >"$scratch/few.toml"
grep -q "^replications = $many\$" "$scratch/many.toml" || {
    echo "$spec: no 'replications = N' line to replace" >&2
    exit 2
}

seconds() { # seconds BIN SPEC: the replications' wall time reported by `mrkl run`
    rm -rf "$scratch/out"
    "$1" run "$2" --out "$scratch/out" --threads 1 2>&1 |
        sed -n 's/.* replications in \([0-9.]*\)s .*/\1/p' | tail -1
}

declare -A tmany tfew
for r in $(seq 1 "$rounds"); do
    for b in "$@"; do
        a=$(seconds "$b" "$scratch/many.toml")
        c=$(seconds "$b" "$scratch/few.toml")
        tmany[$b]="${tmany[$b]:-} $a"
        tfew[$b]="${tfew[$b]:-} $c"
        echo "round $r: $b: $many replications $a s, $few replications $c s"
    done
done
median() { printf '%s\n' $@ | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for b in "$@"; do
    mm=$(median ${tmany[$b]})
    mf=$(median ${tfew[$b]})
    per=$(echo "($mm - $mf) / ($many - $few) * 1000" | bc -l)
    printf '%s: median T%s %s s, T%s %s s, per replication %.3f ms\n' "$b" "$many" "$mm" "$few" "$mf" "$per"
done
