"""The update-to-data study's report, from benchmarks/utd_study.sh's folder (OUT/gs1: UTD 0.2, OUT/gs5: UTD 1):
per algorithm and UTD, the evaluation return (20 episodes) at equal env steps, the final one and the mean of the
evaluations after the warm-up (7500 to 50000: the area under the learning curve while it learns), each as mean +- std
over seeds with a 95% t-interval; the updates and wall-clock each run cost (summed over a resumed run's event files);
the per-seed values; the paired-by-seed difference UTD 1 minus UTD 0.2; the temperature and Q1 at equal steps (is
a UTD 1 run stable?); and one PNG of the curves. Runs still going are reported at the steps they reached, and said
to be so.

    python benchmarks/utd_report.py [sweep_utd] --out benchmarks/results/utd_study_2026-12-02 [--reuse CSV...]

Besides results.md and curves.png it writes evaluations.csv to --out: every run's evaluations, one row per
algorithm,utd,seed,step with the return, the temperature and Q1 last logged at or before that step and the run's
hours. --reuse adds earlier runs whose every setting matches from such CSVs (only algorithm,utd,seed,step,return
are required), so a report folder's evaluations.csv carries its runs into the next report: run outputs stay out of
git, this file goes in. A run both in the folder and in a CSV is taken from the folder where it reached further and
agrees at the steps both have (a run repeats on the same machine; on another CPU it is another run); otherwise it
is an error.
"""

import argparse
import csv
import glob
import os
import sys
from collections import defaultdict

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import ALGORITHM_NAMES, Run, find_runs  # noqa: E402

UTDS = {"gs1": ("0.2", 1), "gs5": ("1", 5)}  # folder: (updates per env step, gradient steps per vector step of 5)
WARMUP, TOTAL, NUM_ENVS = 5000, 50_000, 5
STAT_TAGS = ("losses/lambda", "losses/alpha", "losses/qf1_values")


def temperature_tag(algo: str) -> str:
    return "losses/alpha" if algo == "SAC" else "losses/lambda"  # SAC's alpha; SDAC's and DPMD's lambda


def ci(x) -> str:
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return f"{x.mean():.1f} (1 seed)"
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.1f} +- {x.std(ddof=1):.1f} [{x.mean() - half:.1f}, {x.mean() + half:.1f}]"


def load(folder: str | None, reuse: list[str] = (), stats: dict | None = None) -> dict:
    """{(algo, utd): [Run, ...]} for the runs under folder/gs1 and folder/gs5 and those of the reuse CSVs, seeds in
    order. The CSVs' temperature and Q1 columns, where given, go into stats (as update_stats() gives them)."""
    groups = defaultdict(dict)
    for sub, (utd, _) in UTDS.items():
        if folder and os.path.isdir(os.path.join(folder, sub)):
            for r in find_runs(os.path.join(folder, sub)):
                groups[(r.algo, utd)][r.seed] = r
    for path in reuse:
        if not os.path.isfile(path):
            sys.exit(f"error: --reuse {path}: no such file")
        rows = defaultdict(list)
        with open(path) as f:
            reader = csv.DictReader(f)
            missing = {"algorithm", "utd", "seed", "step", "return"} - set(reader.fieldnames or [])
            if missing:
                sys.exit(
                    f"error: --reuse {path}: no column {', '.join(sorted(missing))} (see utd_report.py's docstring)"
                )
            for row in reader:
                rows[(row["algorithm"], row["utd"], int(row["seed"]))].append(row)
        for (algo, utd, seed), evals in rows.items():
            evals.sort(key=lambda row: int(row["step"]))
            steps = np.array([int(row["step"]) for row in evals])
            returns = np.array([float(row["return"]) for row in evals])
            hours = float(evals[-1].get("hours") or "nan")
            run = Run("Hopper-v4", algo, seed, steps, returns, hours * 3600, int(steps.max()))
            old = groups[(algo, utd)].get(seed)
            if old is not None:
                common = np.intersect1d(old.steps, steps)
                agree = np.allclose([at(old, s) for s in common], [at(run, s) for s in common], atol=0.05)
                if not agree or old.steps.max() < steps.max():
                    sys.exit(
                        f"error: {path} has {algo} at UTD {utd}, seed {seed}, which {folder} has too "
                        + ("with other returns" if not agree else "to fewer steps")
                    )
                continue  # the folder's run is this one, further on
            groups[(algo, utd)][seed] = run
            if stats is not None:
                for tag, column in ((temperature_tag(algo), "temperature"), ("losses/qf1_values", "q1")):
                    logged = [(int(row["step"]), float(row[column])) for row in evals if row.get(column)]
                    if logged:
                        stats.setdefault((algo, utd), {}).setdefault(seed, {})[tag] = tuple(map(np.array, zip(*logged)))
    return {k: [v[seed] for seed in sorted(v)] for k, v in sorted(groups.items())}


def write_evaluations(groups: dict, stats: dict, path: str) -> None:
    """Every run's evaluations as CSV (see the module's docstring): what the next report reads with --reuse."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["algorithm", "utd", "seed", "step", "return", "temperature", "q1", "hours"])
        for (algo, utd), runs in groups.items():
            for r in runs:
                tags = stats.get((algo, utd), {}).get(r.seed, {})
                temperature = tags.get(temperature_tag(algo))
                hours = f"{r.wall_seconds / 3600:.4f}" if np.isfinite(r.wall_seconds) else ""
                for step, ret in zip(r.steps, r.returns):
                    row = [algo, utd, r.seed, int(step), f"{ret:.4f}"]
                    for logged in (temperature, tags.get("losses/qf1_values")):
                        before = logged[1][logged[0] <= step] if logged is not None else []
                        row.append(f"{before[-1]:.6g}" if len(before) else "")
                    w.writerow(row + [hours])


def update_stats(folder: str) -> dict:
    """{(algo, utd): {seed: {tag: (steps, values)}}} of the temperature (SDAC's and DPMD's lambda, SAC's alpha) and
    Q1 on the batch, as logged, for the runs under folder/gs1 and folder/gs5: is a UTD 1 run stable?"""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = defaultdict(dict)
    for sub, (utd, _) in UTDS.items():
        for run_dir in sorted(glob.glob(os.path.join(folder, sub, "runs", "*")) if folder else []):
            _, exp_name, seed, _ = os.path.basename(run_dir).split("__")
            acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
            acc.Reload()
            tags = [t for t in STAT_TAGS if t in acc.Tags()["scalars"]]
            if tags:
                out[(ALGORITHM_NAMES.get(exp_name, exp_name), utd)][int(seed)] = {
                    t: tuple(map(np.array, zip(*[(e.step, e.value) for e in acc.Scalars(t)]))) for t in tags
                }
    return dict(out)


def stats_table(stats: dict, checkpoints: list[int]) -> list[str]:
    """The temperature and Q1 last logged at or before each step, mean over the seeds that reached it."""
    out = [
        "",
        "## Stability: temperature (lambda; SAC: alpha) / Q1 on the batch, last logged at or before each step, "
        "mean over seeds",
        "",
        "| algorithm | UTD | " + " | ".join(f"{s // 1000}k" for s in checkpoints) + " |",
        "|---|---|" + "---|" * len(checkpoints),
    ]
    for (algo, utd), runs in sorted(stats.items()):
        cells = []
        for s in checkpoints:
            temp, q = [], []
            for tags in runs.values():
                for name, into in (("losses/lambda", temp), ("losses/alpha", temp), ("losses/qf1_values", q)):
                    if name in tags and tags[name][0].max() >= s:
                        into.append(tags[name][1][tags[name][0] <= s][-1])
            cells.append(f"{np.mean(temp):.3g} / {np.mean(q):.3g}" if temp and q else "-")
        out.append(f"| {algo} | {utd} | " + " | ".join(cells) + " |")
    return out


def updates(utd: str) -> int:
    """Updates one run makes: its gradient steps per vector step, at every vector step after the warm-up."""
    return (TOTAL - WARMUP) // NUM_ENVS * dict(UTDS.values())[utd]


def learning(run) -> float:
    """The mean of the evaluations after the warm-up (the area under the learning curve, per evaluation)."""
    after = run.returns[run.steps > WARMUP]
    return float(after.mean()) if len(after) else float("nan")


def at(run, step: int) -> float:
    return float(run.returns[list(run.steps).index(step)]) if step in run.steps else float("nan")


def report(groups: dict, stats: dict | None = None) -> str:
    checkpoints = [10_000, 20_000, 30_000, 40_000, 50_000]
    out = [
        "## Evaluation return at equal env steps (mean +- std over seeds [95% t-interval])",
        "",
        "| algorithm | UTD | seeds done | updates per run | "
        + " | ".join(f"{s // 1000}k" for s in checkpoints)
        + " | mean after the warm-up (AUC) |",
        "|---|---|---|---|" + "---|" * len(checkpoints) + "---|",
    ]
    for (algo, utd), runs in groups.items():
        done = [r for r in runs if r.steps.max() >= TOTAL]
        cells = []
        for s in checkpoints:
            vals = [at(r, s) for r in runs if s in r.steps]
            cells.append(ci(vals) if vals else "-")
        auc = ci([learning(r) for r in done]) if done else "-"
        out.append(
            f"| {algo} | {utd} | {len(done)} of {len(runs)} | {updates(utd)} | " + " | ".join(cells) + f" | {auc} |"
        )
    out += [
        "",
        "## Cost: updates and wall-clock per finished run (one CPU core per run, warm-up and evaluations "
        "included; mean [min, max])",
        "",
        "| algorithm | UTD | runs finished | updates per run | hours per run |",
        "|---|---|---|---|---|",
    ]
    for (algo, utd), runs in groups.items():
        hours = [r.wall_seconds / 3600 for r in runs if r.steps.max() >= TOTAL and np.isfinite(r.wall_seconds)]
        cost = f"{np.mean(hours):.2f} [{min(hours):.2f}, {max(hours):.2f}]" if hours else "-"
        out.append(f"| {algo} | {utd} | {len(hours)} | {updates(utd)} | {cost} |")
    out += [
        "",
        "## Per seed: final return (50k), mean after the warm-up, steps reached, wall-clock so far",
        "",
        "| algorithm | UTD | seed | final | mean after warm-up | last step | hours |",
        "|---" * 7 + "|",
    ]
    for (algo, utd), runs in groups.items():
        for r in runs:
            final = f"{at(r, TOTAL):.1f}" if TOTAL in r.steps else "-"
            auc = f"{learning(r):.1f}" if (r.steps > WARMUP).any() else "-"
            out.append(
                f"| {algo} | {utd} | {r.seed} | {final} | {auc} | {int(r.steps.max())} | "
                + (f"{r.wall_seconds / 3600:.2f} |" if np.isfinite(r.wall_seconds) else "reused |")
            )
    out += [
        "",
        "## UTD 1 minus UTD 0.2, paired by seed (the same seed's runs start from the same networks)",
        "",
        "| algorithm | seeds | final return | mean after the warm-up |",
        "|---|---|---|---|",
    ]
    for algo in sorted({a for a, _ in groups}):
        lo, hi = {r.seed: r for r in groups.get((algo, "0.2"), [])}, {r.seed: r for r in groups.get((algo, "1"), [])}
        seeds = [s for s in lo if s in hi and lo[s].steps.max() >= TOTAL and hi[s].steps.max() >= TOTAL]
        if seeds:
            d_final = [at(hi[s], TOTAL) - at(lo[s], TOTAL) for s in seeds]
            d_auc = [learning(hi[s]) - learning(lo[s]) for s in seeds]
            out.append(f"| {algo} | {len(seeds)} | {ci(d_final)} | {ci(d_auc)} |")
    if stats:
        out += stats_table(stats, checkpoints)
    return "\n".join(out) + "\n"


def plot(groups: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {"SDAC": "tab:blue", "DPMD": "tab:green", "SAC": "tab:orange"}
    for (algo, utd), runs in groups.items():
        runs = [r for r in runs if r.steps.max() >= TOTAL] or runs  # the finished runs; a running one only if alone
        steps = sorted(set.intersection(*(set(r.steps.tolist()) for r in runs)))
        y = np.array([[at(r, s) for s in steps] for r in runs])
        style = "-" if utd == "1" else "--"
        label = f"{algo}, UTD {utd} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
        ax.plot(steps, y.mean(0), style, color=colours.get(algo), label=label)
        if len(runs) > 1:
            ax.fill_between(steps, y.mean(0) - y.std(0), y.mean(0) + y.std(0), color=colours.get(algo), alpha=0.12)
    ax.set_xlabel("env steps (the first 5000 random)")
    ax.set_ylabel("evaluation return (20 episodes)")
    ax.set_title("Hopper-v4: UTD 0.2 (dashed) and 1 (solid), mean +- std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", help="benchmarks/utd_study.sh's OUT (holding gs1/ and gs5/)")
    p.add_argument("--out", required=True, help="folder for results.md, curves.png and evaluations.csv")
    p.add_argument("--reuse", nargs="+", default=[], help="CSVs of earlier runs' evaluations (an evaluations.csv)")
    cli = p.parse_args()
    stats = update_stats(cli.folder)
    groups = load(cli.folder, cli.reuse, stats)
    if not groups:
        sys.exit(f"error: no run with evaluations under {cli.folder}/gs1 or {cli.folder}/gs5 or in --reuse")
    os.makedirs(cli.out, exist_ok=True)
    text = report(groups, stats)
    with open(os.path.join(cli.out, "results.md"), "w") as f:
        f.write(text)
    write_evaluations(groups, stats, os.path.join(cli.out, "evaluations.csv"))
    plot(groups, os.path.join(cli.out, "curves.png"))
    print(text)


if __name__ == "__main__":
    main()
