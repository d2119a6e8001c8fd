"""Where RSSM holds and breaks: rssm_toy_gmm.py's RSSM against (a) the dimension, (b) K, (c) the width and placement of
the sampling distribution p~, (d) the distance between the modes, each beside DSM on true samples. The target is two unit-covariance modes with
weights 0.8 / 0.2 (the default, [3, 3] and [-3, -3], 8.49 apart), in d dimensions with the modes in the first two
coordinates. The paper's settings throughout (rssm_toy_gmm.py's defaults), with 5000 samples per run for the
estimators. Writes results.csv (one row per run; a rerun with the same --out skips the rows it has), report.md and
study.png into --out.

    python benchmarks/toy_study.py --seeds 1 2 3 --out benchmarks/results/toy_study_2026-12-01
"""

import argparse
import csv
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rssm_toy_gmm import Args, box, dsm_method, make_schedule, make_target, rssm_method, score_samples, train_and_sample  # noqa: E402

STUDY = dict(num_samples=5000)
METHODS = {"RSSM, eq. 36": "batch", "RSSM, per-x_t weights": "per-x_t", "DSM (true samples)": None}


def target(d: int = 2, separation: float = 6 * math.sqrt(2)) -> dict:
    """Two modes `separation` apart on the diagonal of the first two coordinates (d = 1: on the line)."""
    m = np.zeros(d)
    m[: min(d, 2)] = separation / 2 / math.sqrt(min(d, 2))
    return dict(dim=d, means=tuple(np.concatenate([m, -m]).tolist()), weights=(0.8, 0.2))


def uniform(bound: float):
    return ("uniform", bound, 0.0)


def gaussian(std: float, center: float = 0.0):
    return ("gaussian", std, center)


def configs() -> list[dict]:
    """Every run of the study, as (axis, x, label, target, p~, K, method); runs shared between axes are run once."""
    runs = []

    def add(axis, x, label, tgt, proposal, K=4, methods=tuple(METHODS)):
        runs.extend(dict(axis=axis, x=x, label=label, target=tgt, proposal=proposal, K=K, method=m) for m in methods)

    for d in (2, 4, 8, 17):  # (a) the dimension: the same two modes, d - 2 more coordinates where both are 0
        add("dimension", d, f"d = {d}", target(d), uniform(6.0))
    for K in (1, 4, 16, 64):  # (b) K
        add("K", K, f"K = {K}", target(), uniform(6.0), K=K, methods=tuple(METHODS)[:2])
    for d in (2, 4, 8):  # ... and the dimension again at SDAC's K = 64, with SDAC's per-x_t weights
        add("dimension at K = 64", d, f"d = {d}", target(d), uniform(6.0), K=64, methods=("RSSM, per-x_t weights",))
    for std in (0.5, 1.0, 2.0, 4.0):  # (c) p~ = N(0, std^2 I): modes at distance 4.24 from its centre
        add(
            "width of p~",
            std,
            f"N(0, {std:g}^2 I)",
            target(),
            gaussian(std),
            methods=("RSSM, eq. 36", "RSSM, per-x_t weights"),
        )
    for c, which in ((3.0, "[3, 3]"), (-3.0, "[-3, -3]")):  # ... and a p~ that covers one mode only
        add(
            "width of p~",
            f"only {which}",
            f"N({which}, I)",
            target(),
            gaussian(1.0, c),
            methods=("RSSM, eq. 36", "RSSM, per-x_t weights"),
        )
    for D in (2.0, 4.0, 6 * math.sqrt(2), 16.0):  # (d) the distance between the modes; p~ covers both by 3 std
        add("separation", round(D, 2), f"{D:.3g} apart", target(2, D), uniform(D / 2 / math.sqrt(2) + 3.0))
    return runs


def key(seed: int, c: dict) -> str:
    norm = METHODS[c["method"]]
    proposal = "" if norm is None else f"{c['proposal']}|K{c['K']}"  # DSM needs neither
    return f"{seed}|{c['target']}|{c['method']}|{proposal}"


def run_one(seed: int, c: dict) -> dict:
    norm = METHODS[c["method"]]
    args = Args(seed=seed, **c["target"], **STUDY, num_reverse_samples=c["K"], weight_normalization=norm or "batch")
    gmm, sched, d = make_target(args), make_schedule(args.diffusion_steps, args.beta_start, args.beta_end), args.dim
    torch.manual_seed(seed)
    if norm is None:
        loss = dsm_method(args, gmm, sched)
    else:
        kind, scale, center = c["proposal"]
        if kind == "uniform":
            loss = rssm_method(args, gmm, sched, lambda n: (2 * torch.rand(n, d) - 1) * scale)
        else:
            loss = rssm_method(args, gmm, sched, lambda n: center + scale * torch.randn(n, d))
    x, seconds = train_and_sample(args, sched, loss, box(gmm))
    r = score_samples(x, gmm, args)
    torch.manual_seed(10_000 + seed)
    floor = score_samples(gmm.sample(args.num_samples), gmm, args)
    return dict(
        weight=r["weights"][0],
        mmd2=r["mmd2"],
        seconds=seconds,
        true_weight=floor["weights"][0],
        true_mmd2=floor["mmd2"],
    )


def load(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {row["key"]: row for row in csv.DictReader(f)}


FIELDS = ["key", "seed", "axis", "x", "label", "method", "K", "weight", "mmd2", "true_weight", "true_mmd2", "seconds"]


def report(rows: list[dict], seeds: list[int], out: str, header: str) -> str:
    lines = [header, ""]
    by_axis = {}
    for r in rows:
        by_axis.setdefault(r["axis"], []).append(r)
    for axis, rs in by_axis.items():
        methods = list(dict.fromkeys(r["method"] for r in rs))
        labels = list(dict.fromkeys(r["label"] for r in rs))
        lines += [
            f"### {axis}",
            "",
            "weight of the 0.8 mode and MMD^2 to the target, mean +- std over seeds; 'true samples': "
            "the estimators on a fresh draw of the target",
            "",
        ]
        lines.append(
            "| " + " | ".join([axis, "true samples: weight"] + [f"{m}: weight | {m}: MMD^2" for m in methods]) + " |"
        )
        lines.append("|---" * (2 + 2 * len(methods)) + "|")
        for label in labels:
            cells = [label]
            tw = [float(r["true_weight"]) for r in rs if r["label"] == label and r["method"] == methods[0]]
            cells.append(f"{np.mean(tw):.3f}")
            for m in methods:
                sel = [r for r in rs if r["label"] == label and r["method"] == m]
                w, v = np.array([float(r["weight"]) for r in sel]), np.array([float(r["mmd2"]) for r in sel])
                cells += (
                    [f"{w.mean():.3f} +- {w.std():.3f}", f"{v.mean():.2e} +- {v.std():.1e}"] if len(sel) else ["-", "-"]
                )
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def figure(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = list(dict.fromkeys(r["axis"] for r in rows))
    fig, axs = plt.subplots(2, len(axes_names), figsize=(4.2 * len(axes_names), 7), squeeze=False)
    for k, axis in enumerate(axes_names):
        rs = [r for r in rows if r["axis"] == axis]
        labels = list(dict.fromkeys(r["label"] for r in rs))
        pos = np.arange(len(labels))
        for m in dict.fromkeys(r["method"] for r in rs):
            j = list(METHODS).index(m)  # one colour and offset per method in every panel
            for row, field in ((0, "weight"), (1, "mmd2")):
                vals = [[float(r[field]) for r in rs if r["label"] == lab and r["method"] == m] for lab in labels]
                mean = np.array([np.mean(v) if v else np.nan for v in vals])
                std = np.array([np.std(v) if v else np.nan for v in vals])
                axs[row, k].errorbar(
                    pos + 0.08 * (j - 1), mean, yerr=std, marker="o", capsize=3, label=m, color=f"C{j}"
                )
        tw = [np.mean([float(r["true_weight"]) for r in rs if r["label"] == lab]) for lab in labels]
        axs[0, k].plot(pos, tw, "k--", lw=1, label="true samples")
        axs[0, k].set(title=axis, ylabel="weight of the 0.8 mode" if k == 0 else None, ylim=(0, 1))
        axs[1, k].set(yscale="log", ylabel="MMD^2 to the target" if k == 0 else None)
        for row in (0, 1):
            axs[row, k].set_xticks(pos, labels, rotation=30, fontsize=8)
    axs[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--out", required=True, help="folder for results.csv, report.md and study.png")
    p.add_argument("--axes", nargs="+", default=None, help="only these axes (by name, e.g. dimension)")
    cli = p.parse_args()
    os.makedirs(cli.out, exist_ok=True)
    path = os.path.join(cli.out, "results.csv")
    done, todo = load(path), [c for c in configs() if cli.axes is None or c["axis"] in cli.axes]
    runs = {}
    for seed in cli.seeds:
        for c in todo:
            runs.setdefault(key(seed, c), (seed, c))
    new = [k for k in runs if k not in done]
    print(f"{len(runs)} distinct runs, {len(runs) - len(new)} already in {path}")
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if not done:
            writer.writeheader()
        for i, k in enumerate(new):
            seed, c = runs[k]
            start = time.time()
            res = run_one(seed, c)
            writer.writerow(
                dict(key=k, seed=seed, K=c["K"], method=c["method"], **{n: c[n] for n in ("axis", "x", "label")}, **res)
            )
            f.flush()
            done[k] = True
            print(
                f"[{i + 1}/{len(new)}] seed {seed} {c['axis']}: {c['label']}, {c['method']}: weight {res['weight']:.3f}, "
                f"MMD^2 {res['mmd2']:.2e} ({time.time() - start:.0f} s)",
                flush=True,
            )
    stored = load(path)
    rows = []  # every (seed, config) of this invocation, a shared run listed under each axis that uses it
    for seed in cli.seeds:
        for c in todo:
            r = stored[key(seed, c)]
            rows.append({**r, "axis": c["axis"], "x": c["x"], "label": c["label"]})
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    header = (
        f"# Where RSSM holds and breaks\n\n`python benchmarks/toy_study.py --seeds {' '.join(map(str, cli.seeds))} --out {cli.out}`; "
        f"seeds {cli.seeds}; settings: rssm_toy_gmm.py's defaults with {STUDY}; {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, commit {commit}, {time.strftime('%Y-%m-%d')}"
    )
    text = report(rows, cli.seeds, cli.out, header)
    with open(os.path.join(cli.out, "report.md"), "w") as f:
        f.write(text + "\n")
    figure(rows, os.path.join(cli.out, "study.png"))
    print(text)


if __name__ == "__main__":
    main()
