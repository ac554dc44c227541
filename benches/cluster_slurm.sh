#!/usr/bin/env bash
# A real cluster run of the README's SLURM job-array recipe ("Long runs, clusters and
# interruptions") on a single-node SLURM installed from Debian's packages, configured for
# this host. Not part of CI: it installs packages and starts daemons (needs root).
#
#   benches/cluster_slurm.sh [SPEC] [SHARDS]
#       SPEC    a default-suite spec (default sims/t5_2_finite_class.toml)
#       SHARDS  array size N (default 4)
#   MRKL_BIN=path/to/mrkl benches/cluster_slurm.sh ...   uses that binary instead of
#       building one (the build runs first, before any daemon starts or job is timed)
#
# Steps: apt-get install slurm-wlm munge; start munged, slurmctld and slurmd with a
# configuration in a scratch folder (SLURM_CONF; nothing under /etc/slurm is written);
# sbatch the array script of the README with N tasks; wait; `mrkl merge`; run the same spec
# on one machine; compare every file of the two result folders byte for byte. The daemons
# started here are stopped at the end. Exit code 0 only if the merged result is identical.
set -euo pipefail
spec=${1:-sims/t5_2_finite_class.toml}
shards=${2:-4}
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ -n "${MRKL_BIN:-}" ]; then
    bin=$(realpath "$MRKL_BIN")
else
    cargo build --release --quiet
    bin="$repo/target/release/mrkl"
fi
[ -x "$bin" ] || { echo "no mrkl binary at $bin"; exit 1; }

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work" 2>/dev/null || { sleep 2; rm -rf "$work"; }
}
trap cleanup EXIT
mkdir -p "$work/state" "$work/spool" "$work/log" "$work/munge"
host=$(hostname -s)
cpus=$(nproc)

# munge: a key of our own and a socket in the scratch folder.
dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" status=none
chmod 600 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --force --key-file="$work/munge/munge.key" --socket="$socket" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/seed"
pids+=("$(cat "$work/munge/munged.pid")")

export SLURM_CONF="$work/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=mrkl-bench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 30); do
    [ -s "$work/slurmctld.pid" ] && [ -s "$work/slurmd.pid" ] && break
    sleep 1
done
pids+=("$(cat "$work/slurmd.pid")" "$(cat "$work/slurmctld.pid")")
for _ in $(seq 1 30); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
    sleep 1
done
sinfo

# The README's array script, with N = $shards tasks of one thread each.
cat > "$work/array.sh" <<JOB
#!/bin/bash
#SBATCH --array=1-$shards
#SBATCH --cpus-per-task=1
#SBATCH --output=$work/log/task-%a.out
cd "$repo"
"$bin" run "$spec" --out "$work/shards" --threads 1 --shard \${SLURM_ARRAY_TASK_ID}/$shards --resume
JOB
start=$(date +%s.%N)
job=$(sbatch --parsable "$work/array.sh")
echo "submitted job array $job ($shards tasks)"
while squeue -h -j "$job" 2>/dev/null | grep -q .; do sleep 1; done
echo "array wall time: $(echo "$(date +%s.%N) - $start" | bc) s"
sacct_state=$(for k in $(seq 1 "$shards"); do scontrol show job "${job}_$k" 2>/dev/null | grep -o 'JobState=[A-Z]*' || true; done | sort | uniq -c)
echo "task states: ${sacct_state:-(no longer listed)}"
cat "$work"/log/task-*.out

"$bin" merge "$work/shards" --out "$work/merged"
"$bin" run "$spec" --out "$work/single" >/dev/null
# `mrkl merge` writes each spec's data files (result.json, raw.csv, summary.csv,
# instance.json, manifest.json); the single-machine `mrkl run` also judges and renders
# (summary.json, REPORT.md, junit.xml, plots), which merge does not. Every file merge wrote
# must equal the single run's, and every data file of the single run must have been merged.
status=0
files=0
while IFS= read -r f; do
    rel=${f#"$work/merged/"}
    files=$((files + 1))
    if ! cmp -s "$f" "$work/single/$rel"; then
        echo "DIFFERS: $rel"
        status=1
    fi
done < <(find "$work/merged" -type f | sort)
while IFS= read -r f; do
    rel=${f#"$work/single/"}
    case "$rel" in */*.png|*/*.svg|*journal*|*.lock) continue ;; esac
    [ -e "$work/merged/$rel" ] || { echo "NOT MERGED: $rel"; status=1; }
done < <(find "$work/single" -mindepth 2 -type f | sort)
[ "$files" -gt 0 ] || { echo "merge wrote nothing"; exit 1; }
[ "$status" -eq 0 ] && echo "merged SLURM array result identical to the single-machine run: $files files ($(cd "$work/merged" && find . -type f | sort | tr '\n' ' '))"
exit "$status"
