"""The report of a sweep: reads the TensorBoard event files of every run under a folder and writes
- report.md: a table in the layout of the paper's Table 1 (per env and algorithm, mean +- std over seeds of the best
  and of the final evaluation return, seeds, env steps) with the paper's numbers beside ours, labelled; then per run
  the wall-clock time, steps per second and, with --solved ENV=THRESHOLD, the first step that reached it;
- curves_{env}.png: evaluation return against env steps, mean over seeds with a +-1 std band, one line per algorithm.

    python benchmarks/report.py sweep                 # a benchmark.sh folder (or any folder holding runs/)
    python benchmarks/report.py runs --exp-name cpu --solved InvertedPendulum-v4=950 --out /tmp/report

Run folders are named {env_id}__{exp_name}__{seed}__{time} (the scripts' own naming); exp_name is the algorithm.
The report goes to --out (default: FIRST_FOLDER/report), never beside the runs themselves. Run folders that cannot
be reported (no evaluation yet, say) are listed with the reason, on screen and in report.md.
"""

import argparse
import glob
import os
import sys
from collections import defaultdict
from typing import NamedTuple, Optional

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# The paper's Table 1 (Ma et al., SDAC; 1M env steps, 5 seeds, 20 evaluation episodes): SDAC and SAC columns.
PAPER_TABLE_1 = {
    "Ant": ("5683 +- 138", "2500 +- 767"),
    "HalfCheetah": ("11924 +- 609", "8981 +- 370"),
    "Humanoid": ("6959 +- 460", "2858 +- 2637"),
    "Walker2d": ("4365 +- 266", "3233 +- 871"),
    "Hopper": ("3275 +- 55", "3197 +- 294"),
    "Swimmer": ("79.3 +- 52.5", "63.5 +- 10.2"),
    "Reacher": ("-3.14 +- 0.10", "-65.35 +- 56.42"),
    "Pusher": ("-30.43 +- 0.37", "-31.22 +- 0.26"),  # Pusher-v4 in the paper; ours is Pusher-v5
    "InvertedPendulum": ("1000 +- 0", "1000 +- 0"),
    "InvertedDoublePendulum": ("9360 +- 0", "9359 +- 1"),
}
ALGORITHM_NAMES = {
    "sdac": "SDAC",
    "sac": "SAC",
    "dpmd": "DPMD",
    "dacer": "DACER",
    "sdac_continuous_action": "SDAC",
    "sac_continuous_action": "SAC",
    "dpmd_continuous_action": "DPMD",
    "dacer_continuous_action": "DACER",
}


class Run(NamedTuple):
    env_id: str
    algo: str
    seed: int
    steps: np.ndarray  # env steps of the evaluations
    returns: np.ndarray  # mean evaluation return at those steps
    wall_seconds: float  # summed over the run's event files (a resumed run has one per attempt)
    last_step: int  # the last env step logged under any tag


def read_run(run_dir: str, labels: Optional[dict] = None) -> Run | str:
    """The run, or why it cannot be reported."""
    parts = os.path.basename(os.path.normpath(run_dir)).split("__")
    if len(parts) != 4 or not parts[2].isdigit():
        return "its name is not {env_id}__{exp_name}__{seed}__{time}"
    env_id, exp_name, seed, _ = parts
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    if "eval/episodic_return" not in acc.Tags()["scalars"]:
        return "no evaluation logged yet (eval/episodic_return)"
    events = acc.Scalars("eval/episodic_return")
    steps = np.array([e.step for e in events])
    returns = np.array([e.value for e in events])
    last_step = max(max(e.step for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
    wall = 0.0
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        one = EventAccumulator(path, size_guidance={"scalars": 0})
        one.Reload()
        times = [e.wall_time for tag in one.Tags()["scalars"] for e in one.Scalars(tag)]
        if times:
            wall += max(times) - min(times)
    algo = (labels or {}).get(exp_name) or ALGORITHM_NAMES.get(exp_name, exp_name)
    return Run(env_id, algo, int(seed), steps, returns, wall, last_step)


def find_runs(
    folder: str, exp_names: Optional[list[str]] = None, labels: Optional[dict] = None, skipped: Optional[list] = None
) -> list[Run]:
    """Every run folder under folder/runs (or folder itself) with evaluations; only these exp_names if given. The
    others (folders under root, but not runs with evaluations) go to `skipped` as (folder, reason)."""
    root = os.path.join(folder, "runs") if os.path.isdir(os.path.join(folder, "runs")) else folder
    dirs = sorted(d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d))
    if exp_names:
        dirs = [
            d
            for d in dirs
            if len(os.path.basename(d).split("__")) != 4 or os.path.basename(d).split("__")[1] in exp_names
        ]
    runs = []
    for d in dirs:
        run = read_run(d, labels)
        if isinstance(run, Run):
            runs.append(run)
        elif skipped is not None:
            skipped.append((d, run))
    return runs


def paper_key(env_id: str) -> str:
    return env_id.split("-v")[0]


def mean_std(x) -> str:
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.1f} +- {x.std():.1f}"


def table_1(runs: list[Run]) -> str:
    """Per env and algorithm: best and final evaluation return, mean +- std over seeds (population std)."""
    groups = defaultdict(list)
    for r in runs:
        groups[(r.env_id, r.algo)].append(r)
    lines = [
        "| env | algorithm | best eval return (ours) | final eval return (ours) | seeds | env steps | "
        "paper's Table 1 (1M steps, 5 seeds) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (env_id, algo), rs in sorted(groups.items()):
        paper = PAPER_TABLE_1.get(paper_key(env_id))
        column = {"SDAC": 0, "SAC": 1}.get(algo)
        paper_text = paper[column] if paper and column is not None else "-"
        steps = sorted({int(r.steps[-1]) for r in rs})
        lines.append(
            f"| {env_id} | {algo} | {mean_std([r.returns.max() for r in rs])} | {mean_std([r.returns[-1] for r in rs])} | "
            f"{len(rs)} | {', '.join(map(str, steps))} | {paper_text} |"
        )
    return "\n".join(lines)


def per_run_table(runs: list[Run], solved: dict[str, float]) -> str:
    lines = [
        "| env | algorithm | seed | env steps | final eval return | best eval return | wall-clock (min) | "
        "env steps/s | first step with eval >= threshold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r.env_id, r.algo, r.seed)):
        hit = "-"
        if r.env_id in solved:
            reached = r.steps[r.returns >= solved[r.env_id]]
            hit = str(int(reached[0])) if len(reached) else "not reached"
        sps = f"{r.last_step / r.wall_seconds:.0f}" if r.wall_seconds > 0 else "-"
        lines.append(
            f"| {r.env_id} | {r.algo} | {r.seed} | {r.last_step} | {r.returns[-1]:.1f} | {r.returns.max():.1f} | "
            f"{r.wall_seconds / 60:.1f} | {sps} | {hit} |"
        )
    return "\n".join(lines)


def curve(rs: list[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over seeds at the evaluation steps that every seed has."""
    common = sorted(set.intersection(*(set(r.steps.tolist()) for r in rs)))
    values = np.array([[r.returns[list(r.steps).index(s)] for s in common] for r in rs])
    return np.array(common), values.mean(0), values.std(0)


def plot_curves(runs: list[Run], out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for env_id in sorted({r.env_id for r in runs}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for algo in sorted({r.algo for r in runs if r.env_id == env_id}):
            rs = [r for r in runs if r.env_id == env_id and r.algo == algo]
            x, m, s = curve(rs)
            ax.plot(x, m, label=f"{algo} ({len(rs)} seeds)")
            ax.fill_between(x, m - s, m + s, alpha=0.25)
        ax.set(title=env_id, xlabel="env steps (random warm-up included)", ylabel="evaluation return")
        ax.legend()
        ax.grid(alpha=0.3)
        path = os.path.join(out_dir, f"curves_{env_id}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", help="benchmark.sh --out folders, or folders of run folders")
    p.add_argument("--out", default=None, help="where report.md and the PNGs go (default: FIRST_FOLDER/report)")
    p.add_argument("--solved", action="append", default=[], help="ENV=THRESHOLD: report the first step that reached it")
    p.add_argument("--exp-name", action="append", default=None, help="only runs of this exp_name (repeatable)")
    p.add_argument(
        "--label", action="append", default=[], help="EXP_NAME=ALGORITHM: show runs of that exp_name as that algorithm"
    )
    p.add_argument("--title", default="Sweep report", help="heading of report.md")
    p.add_argument("--note", default="", help="a paragraph under the heading: command, commit, machine, date")
    cli = p.parse_args(argv)
    for folder in cli.folders:
        if not os.path.isdir(folder):
            print(f"error: no such folder: {folder}", file=sys.stderr)
            return 2
    try:
        solved = {k: float(v) for k, v in (s.split("=") for s in cli.solved)}
        labels = dict(s.split("=") for s in cli.label)
    except ValueError:
        print(
            "error: --solved takes ENV=THRESHOLD (e.g. InvertedPendulum-v4=950), --label EXP_NAME=ALGORITHM",
            file=sys.stderr,
        )
        return 2
    skipped: list[tuple[str, str]] = []
    runs = [r for folder in cli.folders for r in find_runs(folder, cli.exp_name, labels, skipped)]
    out_dir = cli.out or os.path.join(cli.folders[0], "report")
    skipped = [(d, why) for d, why in skipped if os.path.abspath(d) != os.path.abspath(out_dir)]  # our own output
    for d, why in skipped:
        print(f"skipped {d}: {why}")
    if not runs:
        print(f"error: no run with evaluation results under {', '.join(cli.folders)}", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    images = plot_curves(runs, out_dir)
    note = f"{cli.note}\n\n" if cli.note else ""
    text = (
        f"# {cli.title}\n\n{note}## Evaluation return (ours), with the paper's Table 1 beside it\n\n{table_1(runs)}\n\n"
        "Ours: mean +- std over seeds of each run's best and final evaluation; the paper's column is its Table 1 "
        "(SDAC or SAC, 1M env steps, 5 seeds), copied for comparison, not measured here. Env steps count the "
        "random warm-up (--learning-starts); the authors' code collects its warm-up before its 1M steps.\n\n"
        f"## Per run\n\n{per_run_table(runs, solved)}\n\n"
        "Wall-clock: first to last logged event of each attempt, summed over attempts (evaluation included); "
        "env steps/s = env steps / wall-clock.\n\n## Curves\n\n"
        + "\n".join(f"![{os.path.basename(i)}]({os.path.basename(i)})" for i in images)
        + "\n"
        + ("\n## Skipped\n\n" + "\n".join(f"- `{d}`: {why}" for d, why in skipped) + "\n" if skipped else "")
    )
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"wrote {os.path.join(out_dir, 'report.md')} and {len(images)} PNG(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
