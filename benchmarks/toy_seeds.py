"""rssm_toy_gmm.py at its defaults (the paper's Figure 2 settings) over many seeds: the paper's claim that uniform p~
gives the divergence to the target closest to 0, decided with 95% confidence intervals. Prints Markdown:

1. the estimators on known distributions: MMD^2 and the mode weight on fresh draws of the target (their floor and
   bias) and on a mixture whose weights differ by 0.02 (0.78 / 0.22), with the exact MMD^2 of that mixture;
2. per seed and method: the weight of [3, 3], the worst weight error max_j |w_j - w*_j| and MMD^2; per method the
   mean of each with its 95% t-interval; per pair of methods the mean difference of MMD^2 and of the weight error,
   paired by seed (the runs of one seed start from the same network), with its 95% t-interval. So both of the
   paper's Figure 2 claims, the divergence (KL in the paper) and "both recover the weights", are decided on the same
   seeds. The figure of the first seed goes to --figure.

    python benchmarks/toy_seeds.py --seeds 1 2 3 4 5 6 7 8 9 10 --figure rssm_toy_gmm.png
"""

import argparse
import itertools
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rssm_toy_gmm import Args, GaussianMixture, box, exact_mmd2, make_target, mode_radius, plot, run, score_samples  # noqa: E402


def interval(x) -> str:
    """mean [95% t-interval] of the values x."""
    x = np.asarray(x, dtype=np.float64)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return f"{x.mean():.2e} [{x.mean() - half:.2e}, {x.mean() + half:.2e}]"


def estimator_check(args: Args, draws: int) -> None:
    gmm = make_target(args)
    off = GaussianMixture(gmm.means, [0.78, 0.22], gmm.covs)
    torch.manual_seed(12345)
    null = [score_samples(gmm.sample(args.num_samples), gmm, args) for _ in range(draws)]
    alt = [score_samples(off.sample(args.num_samples), gmm, args) for _ in range(draws)]
    n0, n1 = np.array([r["mmd2"] for r in null]), np.array([r["mmd2"] for r in alt])
    w0, w1 = np.array([r["weights"][0] for r in null]), np.array([r["weights"][0] for r in alt])
    exact = exact_mmd2(gmm, off, [b * mode_radius(gmm) for b in args.mmd_bandwidths])
    print(f"## 1. The estimators on known distributions ({draws} draws of {args.num_samples} samples each)\n")
    print(
        "| samples from | MMD^2: mean [95% CI] | MMD^2: std (the resolution) | min / max | weight of [3, 3]: mean +- std |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| the target (0.8 / 0.2) | {interval(n0)} | {n0.std(ddof=1):.1e} | {n0.min():.1e} / {n0.max():.1e} | {w0.mean():.4f} +- {w0.std(ddof=1):.4f} |"
    )
    print(
        f"| weights 0.78 / 0.22 (exact MMD^2 {exact:.2e}) | {interval(n1)} | {n1.std(ddof=1):.1e} | {n1.min():.1e} / {n1.max():.1e} | {w1.mean():.4f} +- {w1.std(ddof=1):.4f} |"
    )
    sep = (n1[:, None] > n0[None]).mean()
    print(
        f"\nThe 0.78 / 0.22 draws score above the target's draws in {100 * sep:.1f}% of the {draws * draws} pairs; "
        f"(mean difference) / (pooled std) = {(n1.mean() - n0.mean()) / np.sqrt((n0.var(ddof=1) + n1.var(ddof=1)) / 2):.1f}.\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    p.add_argument("--estimator-draws", type=int, default=20)
    p.add_argument("--figure", default=None, help="write the first seed's figure here")
    cli = p.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"`python benchmarks/toy_seeds.py --seeds {' '.join(map(str, cli.seeds))}`: {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, commit {commit}, {time.strftime('%Y-%m-%d')}\n"
    )
    estimator_check(Args(), cli.estimator_draws)
    rows, target = {}, np.array(Args().weights)
    print(
        "## 2. Per seed\n\n| seed | method | weight of [3, 3] | worst weight error | MMD^2 | seconds |\n|---|---|---|---|---|---|"
    )
    for seed in cli.seeds:
        start = time.time()
        results = run(Args(seed=seed))
        if cli.figure and seed == cli.seeds[0]:
            plot(results, cli.figure, box(make_target(Args())))
        for name, r in results.items():
            error = float(np.abs(r["weights"] - target).max())
            rows.setdefault(name, []).append((r["weights"][0], r["mmd2"], r["seconds"], error))
            print(
                f"| {seed} | {name} | {r['weights'][0]:.3f} | {error:.3f} | {r['mmd2']:.2e} | {r['seconds']:.1f} |",
                flush=True,
            )
        print(f"| {seed} | whole run | | | | {time.time() - start:.1f} |", flush=True)
    print(
        f"\n## 3. Per method, {len(cli.seeds)} seeds\n\n| method | weight of [3, 3]: mean +- std | worst weight error: mean [95% CI] "
        "| MMD^2: mean [95% CI] | seconds, mean |\n|---|---|---|---|---|"
    )
    for name, vals in rows.items():
        w, v, sec, e = (np.array(x) for x in zip(*vals))
        print(f"| {name} | {w.mean():.3f} +- {w.std(ddof=1):.3f} | {interval(e)} | {interval(v)} | {sec.mean():.1f} |")
    trained = [n for n in rows if n.startswith("RSSM") or n.startswith("DSM")]
    for k, what in ((1, "MMD^2"), (3, "the worst weight error")):
        print(f"\n## {3 + k // 2 + 1}. Differences in {what}, paired by seed: row minus column, mean [95% CI]\n")
        print("| | " + " | ".join(trained) + " |\n|---|" + "---|" * len(trained))
        for a in trained:
            cells = [
                "" if a == b else interval(np.array([r[k] for r in rows[a]]) - np.array([r[k] for r in rows[b]]))
                for b in trained
            ]
            print(f"| {a} | " + " | ".join(cells) + " |")
        for a, b in itertools.combinations(trained, 2):
            d = np.array([r[k] for r in rows[a]]) - np.array([r[k] for r in rows[b]])
            print(
                f"\n- {a} minus {b}: {interval(d)}; {int((d < 0).sum())} of {len(d)} seeds below 0; paired t-test p = {stats.ttest_1samp(d, 0).pvalue:.3g}",
                end="",
            )
        print()


if __name__ == "__main__":
    main()
