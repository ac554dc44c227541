#!/usr/bin/env python3
"""Times the NumPy/SciPy baseline (t5_2_numpy.py) against mrkl on the T5.2 experiment,
single-threaded, at n = 1e3, 1e4, 1e5, and prints a table.

Both programs simulate the same bandit: mrkl draws it from the T5.2 spec's seed and writes
instance.json, which the baseline then loads (--instance), so the mean gaps can be compared.

What is measured, per n (every figure is the minimum over --repeats runs):
  NumPy            wall time of the replication loop inside the Python process
                   (draw + MLE + policy + gap), divided by R; excludes interpreter start,
                   imports and the instance set-up.
  mrkl (in-run)    mrkl's own timer around the engine (all replications: data + MLE + policy
                   + gap + the journal append per replication), as printed by `mrkl run`
                   ("R replications in S s (RATE/s)"),
                   i.e. 1/RATE; excludes process start, spec check, instance build, summaries
                   (bootstrap) and file writes. This is the figure of the main table.
  mrkl (marginal)  (wall(R_big) - wall(R)) / (R_big - R) of the whole `mrkl run` process at two
                   replication counts: the end-to-end cost of one more replication.
  mrkl (raw)       wall(R) / R of the whole process, start-up and writes included.
mrkl runs with RAYON_NUM_THREADS=1 and --threads 1; NumPy with OMP/OPENBLAS/MKL threads = 1.

Usage: python3 compare.py [--replications 500 500 100] [--repeats 3] [--big-factor 5]
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent                       # the repository root
SPEC = ROOT / "sims" / "t5_2_rkl_suboptimality.toml"
BIN = ROOT / "target" / "release" / "mrkl"
NS = [1_000, 10_000, 100_000]
SAMPLERS = ["counts", "per_sample"]
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                               "RAYON_NUM_THREADS")}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replications", type=int, nargs=3, default=[500, 500, 100],
                   metavar=("R_1E3", "R_1E4", "R_1E5"),
                   help="replications at n = 1e3, 1e4, 1e5 (same for NumPy and mrkl)")
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement (min taken)")
    p.add_argument("--big-factor", type=int, default=5,
                   help="mrkl's second run uses big-factor * R replications (marginal cost)")
    p.add_argument("--seed", type=int, default=None, help="default: the T5.2 spec's seed")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return p.parse_args()


def spec_for(n, replications, sampler):
    """The T5.2 spec with n = [N], the given replications and sampler."""
    text = SPEC.read_text()
    text, k1 = re.subn(r"(?m)^n_grid\s*=.*$", f"n = [{n}]", text)
    text, k2 = re.subn(r"(?m)^replications\s*=.*$", f"replications = {replications}", text)
    text = re.sub(r"(?m)^sampler\s*=.*\n", "", text)
    text, k3 = re.subn(r"(?m)^\[experiment\]\s*$", f'[experiment]\nsampler = "{sampler}"', text)
    if (k1, k2, k3) != (1, 1, 1):
        sys.exit(f"cannot rewrite {SPEC}: n_grid/replications/[experiment] not found once each")
    return text


def env1():
    env = dict(os.environ)
    env.update(ONE_THREAD)
    return env


def run_mrkl(tmp, n, replications, sampler):
    """Runs mrkl once; returns (wall seconds, in-run seconds per replication, result dir)."""
    name = f"t5_2_n{n}_{sampler}_r{replications}"
    spec = tmp / f"{name}.toml"
    spec.write_text(spec_for(n, replications, sampler))
    out = tmp / "out"
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN), "run", str(spec), "--out", str(out), "--threads", "1"],
                          env=env1(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"mrkl failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    m = re.search(rf"{re.escape(spec.name)}: (\d+) replications in [\d.]+s \(([\d.]+)/s\)",
                  proc.stdout)
    if not m:
        sys.exit(f"cannot parse mrkl's output:\n{proc.stdout}")
    return wall, 1.0 / float(m.group(2)), out / name


def run_numpy(n, replications, seed, instance):
    cmd = [sys.executable, str(HERE / "t5_2_numpy.py"), "--n", str(n), "--replications",
           str(replications), "--seed", str(seed), "--threads", "1", "--json",
           "--instance", str(instance)]
    proc = subprocess.run(cmd, env=env1(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"baseline failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine():
    import numpy
    import scipy
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("rustc") else "?"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    return (f"machine: nproc={nproc}, CPU {cpu}; python {platform.python_version()}, "
            f"numpy {numpy.__version__}, scipy {scipy.__version__}; {rustc}; "
            f"mrkl at commit {commit}, binary {BIN} "
            f"(built {time.strftime('%Y-%m-%d %H:%M', time.localtime(BIN.stat().st_mtime))})")


def main():
    args = parse_args()
    if not BIN.exists():
        print(f"{BIN} missing: cargo build --release", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    seed = args.seed
    if seed is None:
        seed = int(re.search(r"(?m)^seed\s*=\s*(\d+)", SPEC.read_text()).group(1))
    reps = dict(zip(NS, args.replications))
    tmp = Path(tempfile.mkdtemp(prefix="mrkl_baseline_"))
    started = time.perf_counter()
    rows = []
    try:
        instance = None
        for n in NS:
            r, r_big = reps[n], reps[n] * args.big_factor
            row = {"n": n, "R": r, "R_big": r_big}
            for sampler in SAMPLERS:
                walls, walls_big, inrun = [], [], []
                for _ in range(args.repeats):
                    w, s, d = run_mrkl(tmp, n, r, sampler)
                    walls.append(w)
                    inrun.append(s)
                    wb, sb, _ = run_mrkl(tmp, n, r_big, sampler)
                    walls_big.append(wb)
                    inrun.append(sb)
                res = json.loads((d / "result.json").read_text())
                summ = res["cells"][0]["summaries"][0]
                if instance is None:
                    instance = tmp / "instance.json"
                    shutil.copy(d / "instance.json", instance)
                row[sampler] = {
                    "in_run": min(inrun),
                    "marginal": (min(walls_big) - min(walls)) / (r_big - r),
                    "raw": min(walls) / r,
                    "mean_gap": summ["mean"], "std_err": summ["std_err"],
                }
            nps = [run_numpy(n, r, seed, instance) for _ in range(args.repeats)]
            row["numpy"] = {
                "s_per_rep": min(x["s_per_replication"] for x in nps),
                "mean_gap": nps[0]["mean_gap"], "std_err": nps[0]["std_err"],
                "boundary": nps[0]["boundary_fraction"],
            }
            rows.append(row)
            print(f"  done n = {n} ({time.perf_counter() - started:.0f} s)", file=sys.stderr,
                  flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("T5.2 (RKL sub-optimality, |X|=20, |Y|=10, K=2, d=5, gamma=1), single-threaded; "
          f"seconds per replication, min of {args.repeats} runs")
    print()
    hdr = (f"{'n':>7} | {'R':>4} | {'NumPy s/rep':>11} | {'mrkl counts s/rep':>17} | "
           f"{'ratio':>6} | {'mrkl per_sample s/rep':>21} | {'ratio':>6}")
    print(hdr)
    print("-" * len(hdr))
    for row in rows:
        t_np = row["numpy"]["s_per_rep"]
        c, p = row["counts"]["in_run"], row["per_sample"]["in_run"]
        print(f"{row['n']:>7} | {row['R']:>4} | {t_np:>11.3e} | {c:>17.3e} | {t_np / c:>6.1f} | "
              f"{p:>21.3e} | {t_np / p:>6.1f}")
    print()
    print("mrkl columns above: mrkl's in-run engine timer. End-to-end process timings "
          "(marginal = (wall(R_big) - wall(R)) / (R_big - R); raw = wall(R) / R):")
    hdr2 = (f"{'n':>7} | {'R_big':>5} | {'counts marginal':>15} | {'ratio':>6} | "
            f"{'counts raw':>10} | {'per_sample marginal':>19} | {'ratio':>6} | "
            f"{'per_sample raw':>14}")
    print(hdr2)
    print("-" * len(hdr2))
    for row in rows:
        t_np = row["numpy"]["s_per_rep"]
        c, p = row["counts"], row["per_sample"]
        print(f"{row['n']:>7} | {row['R_big']:>5} | {c['marginal']:>15.3e} | "
              f"{t_np / c['marginal']:>6.1f} | {c['raw']:>10.3e} | {p['marginal']:>19.3e} | "
              f"{t_np / p['marginal']:>6.1f} | {p['raw']:>14.3e}")
    print()
    print("mean gap +- std err (same instance, independent data; should agree within noise):")
    for row in rows:
        parts = [f"{'NumPy':>10} {row['numpy']['mean_gap']:.3e} +- {row['numpy']['std_err']:.1e}"]
        for s in SAMPLERS:
            parts.append(f"mrkl {s} {row[s]['mean_gap']:.3e} +- {row[s]['std_err']:.1e}")
        print(f"{row['n']:>7}: " + ";  ".join(parts)
              + f";  NumPy MLE on the ball: {row['numpy']['boundary']:.3f}")
    print()
    print(machine())
    print(f"total wall time of the comparison: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
