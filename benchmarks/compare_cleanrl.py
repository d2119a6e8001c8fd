"""Our SAC beside CleanRL's own (run by benchmarks/cleanrl_sac.sh): CleanRL does not evaluate, so both are compared
on what both log, the training episodes (charts/episodic_return) and the speed (charts/SPS).

    python benchmarks/compare_cleanrl.py --cleanrl /tmp/cleanrl/src/runs/Hopper-v4__sac_continuous_action__* \
        --ours sweep_sac_cleanrl/runs/Hopper-v4__sac__* --out benchmarks/results/sac_vs_cleanrl_hopper

At each checkpoint step (every --every env steps) the table gives, per run, the mean return of the last --window
training episodes that ended by that step; then mean +- std over seeds, whether our mean lies within CleanRL's seed
range (min..max over its seeds: the issue's acceptance), the exact two-sided p of a rank test (Mann-Whitney) of our
seeds against CleanRL's, and the ratio of the last SPS each logged. The last row is the last step that every run's
episodes reach. Every training episode goes to OUT/episodes.csv beside OUT/report.md. Further groups of runs (an older version of ours, say) come in with --also LABEL DIR..., as extra
columns.
"""

import argparse
import itertools
import os
import sys

import numpy as np


def read(run_dir: str) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if "charts/episodic_return" not in tags:
        sys.exit(f"error: {run_dir} has no charts/episodic_return")
    eps = [(e.step, e.value) for e in acc.Scalars("charts/episodic_return")]
    sps = [e.value for e in acc.Scalars("charts/SPS")] if "charts/SPS" in tags else []
    seed = os.path.basename(os.path.normpath(run_dir)).split("__")[2]
    return dict(dir=run_dir, seed=seed, episodes=eps, sps=sps[-1] if sps else float("nan"))


def window_return(episodes: list[tuple[int, float]], step: int, window: int) -> float:
    done = [r for s, r in episodes if s <= step]
    return float(np.mean(done[-window:])) if done else float("nan")


def rank_test_p(a: list[float], b: list[float]) -> float:
    """Exact two-sided p of the Mann-Whitney U test, by enumerating every split of the pooled values into groups of
    len(a) and len(b): the share of splits whose U is at least as far from its mean as the observed one."""

    def u(x, y):  # pairs (xi, yj) with xi > yj, ties counting one half
        return sum((xi > yj) + 0.5 * (xi == yj) for xi in x for yj in y)

    pooled, n = list(a) + list(b), len(a)
    centre, observed = len(a) * len(b) / 2, abs(u(a, b) - len(a) * len(b) / 2)
    splits = [
        abs(u([pooled[i] for i in idx], [pooled[j] for j in range(len(pooled)) if j not in idx]) - centre)
        for idx in map(set, itertools.combinations(range(len(pooled)), n))
    ]
    return sum(d >= observed - 1e-9 for d in splits) / len(splits)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cleanrl", nargs="+", required=True, help="CleanRL's run folders (runs/{env}__{exp}__{seed}__{t})")
    p.add_argument("--ours", nargs="+", required=True, help="our run folders")
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=int, default=10_000, help="env steps between the table's rows")
    p.add_argument("--window", type=int, default=50, help="training episodes averaged at each row")
    p.add_argument("--note", default="", help="text under the title: commands, commits, machine, date")
    p.add_argument(
        "--also",
        nargs="+",
        action="append",
        default=[],
        metavar="LABEL DIR",
        help="an extra group of runs: its label, then its run folders (repeatable)",
    )
    args = p.parse_args(argv)
    groups = {"CleanRL": [read(d) for d in args.cleanrl], "ours": [read(d) for d in args.ours]}
    for label, *dirs in args.also:
        if not dirs or label in groups:
            sys.exit(f"error: --also needs a new label and at least one run folder, got {[label, *dirs]}")
        groups[label] = [read(d) for d in dirs]
    last = min(max(s for s, _ in r["episodes"]) for runs in groups.values() for r in runs)
    steps = list(range(args.every, last + 1, args.every)) + ([last] if last % args.every else [])
    lines = ["# SAC: ours beside CleanRL's sac_continuous_action.py", ""] + ([args.note, ""] if args.note else [])
    lines += [
        f"Mean return of the last {args.window} training episodes ended by each env step; mean +- std over seeds "
        "(per seed in brackets).",
        "",
        "| env step | " + " | ".join(groups) + " | ours' mean in CleanRL's range | rank test p, ours vs CleanRL |",
        "|---|" + "---|" * (len(groups) + 2),
    ]
    for step in steps:
        cells, values = [], {}
        for label, runs in groups.items():
            v = values[label] = [window_return(r["episodes"], step, args.window) for r in runs]
            cells.append(f"{np.mean(v):.1f} +- {np.std(v):.1f} ({', '.join(f'{x:.1f}' for x in v)})")
        lo, hi, m = min(values["CleanRL"]), max(values["CleanRL"]), np.mean(values["ours"])
        cells.append("yes" if lo <= m <= hi else f"no ({'above' if m > hi else 'below'} {lo:.1f}..{hi:.1f})")
        cells.append(f"{rank_test_p(values['ours'], values['CleanRL']):.3f}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    sps = {k: [r["sps"] for r in runs] for k, runs in groups.items()}
    lines += [
        "",
        "| | CleanRL | ours |",
        "|---|---|---|",
        f"| seeds | {', '.join(r['seed'] for r in groups['CleanRL'])} | {', '.join(r['seed'] for r in groups['ours'])} |",
        f"| last SPS, mean | {np.mean(sps['CleanRL']):.0f} | {np.mean(sps['ours']):.0f} |",
        f"| SPS ratio ours / CleanRL | | {np.mean(sps['ours']) / np.mean(sps['CleanRL']):.2f}x |",
        "",
    ]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(args.out, "episodes.csv"), "w") as f:  # every training episode, to redo the table
        f.write("group,seed,step,return\n")
        f.writelines(
            f"{label},{r['seed']},{step},{ret:.4f}\n"
            for label, runs in groups.items()
            for r in runs
            for step, ret in r["episodes"]
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
