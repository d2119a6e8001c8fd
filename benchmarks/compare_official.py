"""Our SDAC, DPMD or DACER beside the authors' (JAX, github mahaitongdae/diffusion_policy_online_rl, run by
../shared/tools/official-sdac.sh): evaluation curves on one step axis, final and best returns, and the weight
statistics that both log. --variant adds runs of ours with another option (one more row, curve and column group).

    python benchmarks/compare_official.py --official /tmp/official-sdac/src/logs/Hopper-v4/sdac_*_cmp_s* \
        --ours sweep_cmp_authors/runs/* --out benchmarks/results/sdac_vs_authors_hopper
    python benchmarks/compare_official.py --alg dpmd --official /tmp/official-sdac/src/logs/Hopper-v4/dpmd_*_cmp_s* \
        --ours sweep_dpmd/runs/Hopper* --variant "ours, --q-normalization standardised" sweep_dpmd_std/runs/Hopper* \
        --out benchmarks/results/dpmd_vs_authors_hopper
    python benchmarks/compare_official.py --alg dacer --official /tmp/official-sdac/src/logs/Hopper-v4/dacer_*_cmp_s* \
        --ours sweep_dacer/runs/Hopper* --out benchmarks/results/dacer_vs_authors_hopper

Step axis: env steps with the random warm-up included. Ours count it (--learning-starts is inside
--total-timesteps); the authors' log.csv counts the steps after their --start_step warm-up, so theirs are shifted by
the start_step in their config.yaml. Each --official folder is copied into OUT/official/seed{N}/ (log.csv, config.yaml
and the update/* scalars as update_scalars.csv), so the report can be written again from OUT alone:
--official OUT/official/seed*.
"""

import argparse
import csv
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_cleanrl import rank_test_p  # noqa: E402
from report import Run, mean_std, read_run  # noqa: E402

# (the authors' update/* tag, ours) for the statistics table; None where only one side logs it
WEIGHT_TAGS = {
    "sdac": [
        ("update/q_weights_std", "losses/rssm_weight_std"),
        ("update/alpha", "losses/lambda"),
        ("update/q1_mean", "losses/qf1_values"),
        ("update/policy_loss", "losses/actor_loss"),
    ],
    # theirs log the mean of clip(z)/lambda, ours the mean of z before the clip and the share at the clip
    "dpmd": [
        ("update/q_weights_std", "losses/dpmd_weight_std"),
        ("update/scale_q_mean", None),
        (None, "losses/dpmd_z_mean"),
        (None, "losses/dpmd_weight_clip_frac"),
        ("update/running_q_mean", "losses/dpmd_q_running_mean"),
        ("update/running_q_std", "losses/dpmd_q_running_std"),
        ("update/alpha", "losses/lambda"),
        ("update/q1_mean", "losses/qf1_values"),
    ],
    # their mean_q1_std is our sigma_bar1 (critic 1's running mean std); both log the last entropy estimate
    "dacer": [
        ("update/alpha", "losses/alpha"),
        ("update/entropy", "losses/entropy"),
        ("update/mean_q1_std", "losses/sigma_bar1"),
        ("update/q1_mean", "losses/qf1_values"),
        ("update/q1_std", "losses/qf1_std"),
        ("update/q1_loss", "losses/qf1_loss"),
        ("update/policy_loss", "losses/actor_loss"),
    ],
}


def read_official(folder: str, copy_to: str | None) -> dict:
    """One run of the authors' code: seed and warm-up from config.yaml, evaluations from log.csv, update scalars from
    its TensorBoard file (or from update_scalars.csv in a copied folder)."""
    config = {}
    with open(os.path.join(folder, "config.yaml")) as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                config[k.strip()] = v.strip()
    seed, start = int(config["seed"]), int(config["start_step"])
    with open(os.path.join(folder, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    steps = np.array([int(r["step"]) + start for r in rows])
    returns = np.array([float(r["avg_ret"]) for r in rows])
    scalars_csv = os.path.join(folder, "update_scalars.csv")
    if os.path.isfile(scalars_csv):
        with open(scalars_csv) as f:
            scalars = [(r["tag"], int(r["step"]), float(r["value"])) for r in csv.DictReader(f)]
    else:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(folder, size_guidance={"scalars": 0})
        acc.Reload()
        scalars = [
            (t, e.step + start, e.value)
            for t in acc.Tags()["scalars"]
            if t.startswith("update/")
            for e in acc.Scalars(t)
        ]
    if copy_to:
        dst = os.path.join(copy_to, "official", f"seed{seed}")
        os.makedirs(dst, exist_ok=True)
        for name in ["log.csv", "config.yaml"]:
            if os.path.abspath(folder) != os.path.abspath(dst):
                shutil.copy(os.path.join(folder, name), dst)
        with open(os.path.join(dst, "update_scalars.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["tag", "step", "value"])
            w.writerows(scalars)
    return dict(seed=seed, steps=steps, returns=returns, scalars=scalars)


def our_scalars(run_dir: str, tags: list[str]) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    have = acc.Tags()["scalars"]
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags if t in have}


def window_mean(points: list[tuple[int, float]], end: int, width: int) -> float:
    vals = [v for s, v in points if end - width < s <= end]
    return float(np.mean(vals)) if vals else float("nan")


LAST = 5  # evaluations averaged for the steadier figure beside the final one
# per seed, from its evaluation returns on the common steps; "all" is the area under the learning curve per evaluation
METRICS = {
    "final": lambda r: r[-1],
    "best": lambda r: r.max(),
    f"mean of the last {LAST}": lambda r: r[-LAST:].mean(),
    "mean of all evaluations": lambda r: r.mean(),
}


def summary(curves: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """The main table's cells: final and best as mean +- std, per seed final/best, then the last-5 and all-evaluations
    means, each with its per-seed values."""
    v = {k: [f(r) for _, r in curves] for k, f in METRICS.items()}
    per = lambda xs: f"{mean_std(xs)} ({', '.join(f'{x:.1f}' for x in xs)})"  # noqa: E731
    per_seed = ", ".join(f"{f:.1f}/{b:.1f}" for f, b in zip(v["final"], v["best"]))
    return [
        mean_std(v["final"]),
        mean_std(v["best"]),
        per_seed,
        per(v[f"mean of the last {LAST}"]),
        per(v["mean of all evaluations"]),
    ]


def against_theirs(ours: list[np.ndarray], theirs: list[np.ndarray]) -> list[str]:
    """For each metric: is our mean inside the authors' seed range (min..max), and the exact two-sided rank test p of
    our seeds against theirs."""
    cells = []
    for f in METRICS.values():
        a, b = [f(r) for r in ours], [f(r) for r in theirs]
        lo, hi, m = min(b), max(b), float(np.mean(a))
        where = "inside" if lo <= m <= hi else ("above" if m > hi else "below")
        cells.append(f"{m:.1f} {where} {lo:.1f}..{hi:.1f}, p {rank_test_p(a, b):.2f}")
    return cells


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alg", default="sdac", choices=list(WEIGHT_TAGS), help="which algorithm both ran")
    p.add_argument("--official", nargs="+", required=True, help="the authors' run folders (log.csv, config.yaml)")
    p.add_argument("--ours", nargs="+", required=True, help="our run folders (runs/{env}__{exp}__{seed}__{time})")
    p.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar=("LABEL", "RUN"),
        help="a label, then our run folders with another option (repeatable)",
    )
    p.add_argument("--out", required=True, help="folder for report.md, curves.png and the copies of the authors' logs")
    p.add_argument("--note", default="", help="text put under the title (commands, commit, machine, date)")
    args = p.parse_args(argv)
    tags = WEIGHT_TAGS[args.alg]
    os.makedirs(args.out, exist_ok=True)
    official = sorted((read_official(f, args.out) for f in args.official), key=lambda r: r["seed"])
    groups = []  # (label, our run folders, their runs), each group by seed
    for label, dirs in [("ours (PyTorch)", args.ours)] + [(v[0], v[1:]) for v in args.variant]:
        read = sorted(((d, r) for d in dirs if isinstance(r := read_run(d), Run)), key=lambda dr: dr[1].seed)
        if not read:
            sys.exit(f"error: {label}: no run with evaluations among {len(dirs)} folders")
        groups.append((label, [d for d, _ in read], [r for _, r in read]))
    if not official:
        sys.exit("error: need at least one run of the authors' code")
    ours_all = [r for _, _, runs in groups for r in runs]

    # evaluations on a common grid: the steps all have
    common = sorted(
        set.intersection(*(set(r["steps"].tolist()) for r in official), *(set(r.steps.tolist()) for r in ours_all))
    )
    if not common:
        sys.exit("error: the two implementations have no evaluation step in common")
    pick = lambda steps, rets: np.array([rets[list(steps).index(s)] for s in common])  # noqa: E731
    theirs_c = [(np.array(common), pick(r["steps"], r["returns"])) for r in official]
    curves = [("authors' code (JAX)", theirs_c, [r["seed"] for r in official], "authors")]
    for i, (label, _, runs) in enumerate(groups):
        short = "ours" if i == 0 else f"v{i}"
        curves.append(
            (label, [(np.array(common), pick(r.steps, r.returns)) for r in runs], [r.seed for r in runs], short)
        )

    lines = [f"# {args.alg.upper()}: ours beside the authors' code ({ours_all[0].env_id})", ""]
    if args.note:
        lines += [args.note, ""]
    lines += [
        f"Evaluation return (mean of the evaluation episodes) up to env step {common[-1]} (warm-up included); "
        "mean +- std over seeds; per seed final/best.",
        "",
        "| implementation | seeds | final | best | per seed (final/best) | mean of the last "
        f"{LAST} evaluations (per seed) | mean of all {len(common)} evaluations (per seed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs, seeds, _ in curves:
        lines.append(f"| {name} | {', '.join(map(str, seeds))} | " + " | ".join(summary(runs)) + " |")
    lines += [
        "",
        "Each of ours against the authors' seeds: our mean, where it lies in their seed range (min..max), and "
        "the exact two-sided p of a rank test (Mann-Whitney) of our seeds against theirs:",
        "",
        "| implementation | " + " | ".join(METRICS) + " |",
        "|---" * (1 + len(METRICS)) + "|",
    ]
    for name, runs, _, _ in curves[1:]:
        lines.append(f"| {name} | " + " | ".join(against_theirs([r for _, r in runs], [r for _, r in theirs_c])) + " |")
    if len(groups) > 1:
        lines += ["", "Columns below: " + "; ".join(f"{short} = {name}" for name, _, _, short in curves[2:]) + "."]
    heads = [f"{short} s{seed}" for _, _, seeds, short in curves for seed in seeds]
    lines += [
        "",
        "Evaluation return at each common step:",
        "",
        "| env step | " + " | ".join(heads) + " |",
        "|---" * (1 + len(heads)) + "|",
    ]
    columns = [c for _, runs, _, _ in curves for c in runs]
    for i, s in enumerate(common):
        lines.append(f"| {s} | " + " | ".join(f"{c[1][i]:.1f}" for c in columns) + " |")

    # the weight statistics: theirs average each tag over 1000 updates (5000 env steps); ours are logged every
    # --log-interval, averaged here over the same 5000-step windows
    group_sc = [[our_scalars(d, [mine for _, mine in tags if mine]) for d in dirs] for _, dirs, _ in groups]
    first = next(tag for tag, _ in tags if tag)  # the steps of the table: where theirs logged its first tag
    ends = sorted({s for r in official for t, s, _ in r["scalars"] if t == first})
    if ends:
        head = []
        for tag, mine in tags:
            head += [f"{tag} (authors)"] if tag else []
            head += [f"{mine} ({short})" for _, _, _, short in curves[1:]] if mine else []
        lines += [
            "",
            "Update statistics, each the mean over the 5000 env steps up to the step shown, then over seeds "
            "(authors' tag -> ours):",
            "",
            "| env step | " + " | ".join(head) + " |",
            "|---" * (1 + len(head)) + "|",
        ]
        for end in ends:
            cells = []
            for tag, mine in tags:
                if tag:
                    theirs = [v for r in official for t, s, v in r["scalars"] if t == tag and s == end]
                    cells.append(f"{np.mean(theirs):.4g}" if theirs else "")
                for sc in group_sc if mine else []:
                    vals = [v for v in (window_mean(x.get(mine, []), end, 5000) for x in sc) if v == v]
                    cells.append(f"{np.mean(vals):.4g}" if vals else "")
            lines.append(f"| {end} | " + " | ".join(cells) + " |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, runs, _, _) in enumerate(curves):
        color = f"C{i}"
        r = np.stack([c[1] for c in runs])
        m, sd = r.mean(0), r.std(0)
        ax.plot(common, m, color=color, label=f"{name}, {len(runs)} seeds")
        ax.fill_between(common, m - sd, m + sd, color=color, alpha=0.2)
    ax.set_xlabel("env steps (random warm-up included)")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{args.alg.upper()} on {ours_all[0].env_id}: mean +- std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "curves.png"), dpi=110)
    lines += ["", "![evaluation curves](curves.png)", ""]
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
