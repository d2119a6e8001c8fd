"""Reads eval/episodic_return from the TensorBoard event files under a runs/ folder and prints a Markdown table:
per run the final and the best evaluation return and, with --solved ENV=THRESHOLD, the first env step at which the
evaluation return reached the threshold; then per env the mean over seeds.

    python benchmarks/summarize_evals.py runs --exp-name cpu --solved InvertedPendulum-v4=950
"""

import argparse
import glob
import os
from collections import defaultdict

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", help="folder holding one sub-folder per run: {env_id}__{exp_name}__{seed}__{time}")
    p.add_argument("--exp-name", default=None, help="only runs of this exp_name")
    p.add_argument("--solved", action="append", default=[], help="ENV=THRESHOLD")
    cli = p.parse_args()
    solved = {k: float(v) for k, v in (s.split("=") for s in cli.solved)}
    per_env = defaultdict(list)
    print("| env | seed | env steps | final eval return | best eval return | first step with eval >= threshold |")
    print("|---|---|---|---|---|---|")
    for run in sorted(glob.glob(os.path.join(cli.runs, "*__*__*__*"))):
        env_id, exp_name, seed, _ = os.path.basename(run).split("__")
        if cli.exp_name and exp_name != cli.exp_name:
            continue
        acc = EventAccumulator(run, size_guidance={"scalars": 0})
        acc.Reload()
        if "eval/episodic_return" not in acc.Tags()["scalars"]:
            continue
        events = acc.Scalars("eval/episodic_return")
        steps, values = [e.step for e in events], [e.value for e in events]
        hit = next((s for s, v in zip(steps, values) if env_id in solved and v >= solved[env_id]), None)
        per_env[env_id].append((values[-1], max(values), steps[-1], hit))
        print(f"| {env_id} | {seed} | {steps[-1]} | {values[-1]:.1f} | {max(values):.1f} | "
              f"{hit if hit is not None else ('not reached' if env_id in solved else '-')} |")
    print("\n| env | seeds | final eval return, mean +- std | best eval return, mean +- std |\n|---|---|---|---|")
    for env_id, rows in per_env.items():
        final, best = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        print(f"| {env_id} | {len(rows)} | {final.mean():.1f} +- {final.std():.1f} | {best.mean():.1f} +- {best.std():.1f} |")


if __name__ == "__main__":
    main()
