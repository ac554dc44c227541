#!/usr/bin/env bash
# Parallel efficiency of the default suite: wall time of `mrkl run` with --threads 1 and
# --threads 2 (alternating, REPEATS times each), and a byte-for-byte comparison of every
# result.json of the two runs. Not part of CI; run it on a quiet machine.
#
#   benches/speedup.sh [REPEATS]        (default 1; builds the release binary first)
#   MRKL_BIN=path/to/mrkl benches/speedup.sh [REPEATS]   times that binary, no build
#
# Prints the median wall time of each thread count and their ratio. Exit code 1 if any
# result.json differs between the thread counts.
set -euo pipefail
repeats=${1:-1}
cd "$(dirname "$0")/.."
if [ -n "${MRKL_BIN:-}" ]; then
    bin=$(realpath "$MRKL_BIN")
else
    cargo build --release --quiet
    bin=target/release/mrkl
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

wall() { # wall seconds of one run: wall THREADS OUT
    local start end
    start=$(date +%s.%N)
    "$bin" run --out "$2" --threads "$1" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

declare -a t1 t2
for r in $(seq 1 "$repeats"); do
    rm -rf "$scratch/t1" "$scratch/t2"
    t1+=("$(wall 1 "$scratch/t1")")
    t2+=("$(wall 2 "$scratch/t2")")
    echo "repeat $r: 1 thread ${t1[-1]} s, 2 threads ${t2[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m1=$(median "${t1[@]}")
m2=$(median "${t2[@]}")
printf 'median wall time: 1 thread %.2f s, 2 threads %.2f s, speed-up %.2fx\n' \
    "$m1" "$m2" "$(echo "$m1 / $m2" | bc -l)"

status=0
count=0
while IFS= read -r f; do
    rel=${f#"$scratch/t1/"}
    count=$((count + 1))
    if ! cmp -s "$f" "$scratch/t2/$rel"; then
        echo "DIFFERS: $rel"
        status=1
    fi
done < <(find "$scratch/t1" -name result.json | sort)
[ "$count" -gt 0 ] || { echo "no result.json written"; exit 1; }
[ "$(find "$scratch/t2" -name result.json | wc -l)" -eq "$count" ] || { echo "different numbers of results"; status=1; }
[ "$status" -eq 0 ] && echo "identical bytes: all $count result.json files"
exit "$status"
