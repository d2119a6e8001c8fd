"""The toy's recovered mode weights over paired seeds: per mixture, method and seed, the weight each method's samples
give each component and the worst error max_j |w_j - w*_j|; then per mixture and method the mean worst error with
its 95% t-interval. Runs rssm_toy_gmm.py's own run() from this checkout or from another (--repo, a checkout of an
older commit), so that two commits are compared on the same mixtures and seeds. Rows go to --csv as they finish
(a rerun skips the rows it has); --only runs a single method, from its own seeded network (as every method starts
in run() since 22ce55b). The divergences are not computed: they take no random draws, so the weights are those of
a full run.

    python benchmarks/toy_weights.py --csv weights_main.csv                                    # the three mixtures
    python benchmarks/toy_weights.py --repo /tmp/old --csv weights_old.csv                     # an older checkout
    python benchmarks/toy_weights.py --csv pxt.csv --only uniform -- --weight-normalization per-x_t
    python benchmarks/toy_weights.py --summary weights_main.csv weights_old.csv                # the tables
    python benchmarks/toy_weights.py --profile              # where eq. 36's weights put the loss, per step t
    python benchmarks/toy_weights.py --compare weights_main.csv weights_old.csv             # commit against commit
    python benchmarks/toy_weights.py --compare pxt.csv weights_main.csv --paired            # an option, seed by seed
"""

import argparse
import csv
import importlib.util
import os
import sys
import time

import numpy as np
from scipy import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the paper's mixture; a 2-mode one of our own; the README's 3-mode example with unequal weights
MIXTURES = {
    "paper": [],
    "two": ["--means", "4", "0", "-4", "0", "--weights", "0.7", "0.3"],
    "three": ["--means", "2", "-2", "-2", "2", "0", "4", "--weights", "0.5", "0.3", "0.2", "--cov-scale", "0.5"],
}
FIELDS = ["mixture", "seed", "method", "extra", "weights", "target", "worst_error", "seconds"]


def load(repo: str):
    spec = importlib.util.spec_from_file_location("rssm_toy_gmm_under_test", os.path.join(repo, "rssm_toy_gmm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # the weights need no divergence: the MMD (and the older histogram KL) draw no random numbers, so leaving them out
    # changes no weight, and saves most of a run's time
    for name in ("mmd2", "histogram_kl"):
        if hasattr(module, name):
            setattr(module, name, lambda *a, **k: float("nan"))
    return module


def short(name: str) -> str:
    """A method's label, the same across commits: gaussian, uniform, dsm, langevin, true samples."""
    for key, label in (("N(0", "gaussian"), ("Unif", "uniform"), ("DSM", "dsm"), ("Langevin", "langevin")):
        if key in name:
            return label
    return name


def run_one(toy, argv: list[str], only: str | None) -> tuple[dict, np.ndarray]:
    """{method: weights} of one run of the toy at these arguments, and the target's weights."""
    import tyro

    args = tyro.cli(toy.Args, args=argv)
    target = np.array(args.weights)
    if only is None:
        return {short(name): r["weights"] for name, r in toy.run(args).items()}, target
    # one RSSM method alone, as run() trains it (the current toy's functions)
    toy.validate_args(args)
    gmm = toy.make_target(args)
    sched = toy.make_schedule(args.diffusion_steps, args.beta_start, args.beta_end)
    import torch

    d, std, b = args.dim, args.gaussian_std, args.uniform_bound
    proposal = {"gaussian": lambda n: std * torch.randn(n, d), "uniform": lambda n: (2 * torch.rand(n, d) - 1) * b}[
        only
    ]
    x, _ = toy.train_and_sample(args, sched, toy.rssm_method(args, gmm, sched, proposal), toy.box(gmm))
    return {only: toy.mode_weights(x, gmm)}, target


def weight_profile(toy, argv: list[str], draws: int = 200_000) -> list[tuple]:
    """Where eq. 36's batch-normalised weights put the loss: per step t, the share of the total weight p0(x0_tilde)
    that the x_t drawn at t receive, for each p~ (t drawn uniformly, K = 1; a flat profile is 1/T per step). Also
    the share for per-x_t normalisation, which gives every x_t the same total weight: 1/T per step by construction."""
    import torch
    import tyro

    args = tyro.cli(toy.Args, args=argv)
    gmm, sched = toy.make_target(args), toy.make_schedule(args.diffusion_steps, args.beta_start, args.beta_end)
    torch.manual_seed(0)
    d, T = args.dim, args.diffusion_steps
    rows = []
    for name, proposal in (
        ("gaussian", lambda n: args.gaussian_std * torch.randn(n, d)),
        ("uniform", lambda n: (2 * torch.rand(n, d) - 1) * args.uniform_bound),
    ):
        t = torch.randint(0, T, (draws,))
        abar = sched.abar[t][:, None]
        x0 = proposal(draws) / abar.sqrt() - ((1 - abar) / abar).sqrt() * torch.randn(draws, d)  # eq. 17
        p0 = gmm.log_prob(x0).double().exp()
        share = torch.zeros(T, dtype=torch.float64).index_add_(0, t, p0) / p0.sum()
        rows.append((name, share.numpy(), sched.abar.double().numpy()))
    return rows


def interval(x) -> tuple[float, float, float]:
    x = np.asarray(x, dtype=np.float64)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return x.mean(), x.mean() - half, x.mean() + half


def summary(paths: list[str]) -> None:
    for path in paths:
        rows = list(csv.DictReader(open(path)))
        print(f"\n{path}: mean worst weight error max_j |w_j - w*_j| over seeds [95% t-interval]\n")
        groups = sorted({(r["mixture"], r["extra"]) for r in rows})
        methods = [m for m in ("gaussian", "uniform", "dsm", "langevin") if any(r["method"] == m for r in rows)]
        print("| mixture | options | seeds | " + " | ".join(methods) + " |\n|---|---|---|" + "---|" * len(methods))
        for mixture, extra in groups:
            cells, seeds = [], set()
            for m in methods:
                e = [
                    float(r["worst_error"])
                    for r in rows
                    if (r["mixture"], r["extra"], r["method"]) == (mixture, extra, m)
                ]
                seeds |= {r["seed"] for r in rows if (r["mixture"], r["extra"], r["method"]) == (mixture, extra, m)}
                cells.append("{:.3f} [{:.3f}, {:.3f}]".format(*interval(e)) if e else "-")
            print(f"| {mixture} | {extra or '(defaults)'} | {len(seeds)} | " + " | ".join(cells) + " |")
        if "dsm" in methods:  # the methods against DSM (which sees true samples), paired by seed: same network
            print("\nMinus DSM's worst weight error, paired by seed [95% t-interval]\n")
            others = [m for m in methods if m != "dsm"]
            print("| mixture | " + " | ".join(f"{m} - dsm" for m in others) + " |\n|---|" + "---|" * len(others))
            for mixture, extra in groups:
                err = {
                    m: {
                        r["seed"]: float(r["worst_error"])
                        for r in rows
                        if (r["mixture"], r["extra"], r["method"]) == (mixture, extra, m)
                    }
                    for m in methods
                }
                cells = []
                for m in others:
                    seeds = sorted(set(err[m]) & set(err["dsm"]))
                    cells.append(
                        "{:+.3f} [{:+.3f}, {:+.3f}]".format(*interval([err[m][k] - err["dsm"][k] for k in seeds]))
                    )
                print(f"| {mixture} | " + " | ".join(cells) + " |")


def compare(new_path: str, old_path: str, paired: bool = False) -> None:
    """Per mixture and method: the mean worst weight error of new_path minus old_path's at its defaults. Two commits'
    runs are not paired (their random streams differ): Welch's 95% interval and p. With paired, new_path holds one
    option's runs of this checkout (e.g. --uniform-bound 9) and old_path its defaults: the runs of one seed start
    from the same network, so the difference is taken per seed (t-interval and p of the paired t-test)."""
    new, old = list(csv.DictReader(open(new_path))), list(csv.DictReader(open(old_path)))
    how = "paired by seed [95% t-interval]" if paired else "[Welch 95% interval]"
    print(f"\n{new_path} minus {old_path}: mean worst weight error, difference {how}, p\n")
    methods = [m for m in ("gaussian", "uniform", "dsm", "langevin") if any(r["method"] == m for r in new)]
    print("| mixture | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
    for mixture in sorted({r["mixture"] for r in new if paired or r["extra"] == ""}):
        cells = []
        for m in methods:
            a = {
                r["seed"]: float(r["worst_error"])
                for r in new
                if (r["mixture"], r["method"]) == (mixture, m) and (paired or r["extra"] == "")
            }
            b = {
                r["seed"]: float(r["worst_error"])
                for r in old
                if (r["mixture"], r["method"], r["extra"]) == (mixture, m, "")
            }
            if paired:
                d = np.array([a[k] - b[k] for k in sorted(set(a) & set(b))])
                mean, lo, hi = interval(d)
                half, p = mean - lo, stats.ttest_1samp(d, 0.0).pvalue
            else:
                a, b = np.array(list(a.values())), np.array(list(b.values()))
                va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
                dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
                half, p = stats.t.ppf(0.975, dof) * np.sqrt(va + vb), stats.ttest_ind(a, b, equal_var=False).pvalue
                mean = a.mean() - b.mean()
            cells.append(f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}], p {p:.2f}")
        print(f"| {mixture} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=REPO, help="the checkout whose rssm_toy_gmm.py runs")
    p.add_argument("--csv", help="where the rows go (appended; rows already there are skipped)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    p.add_argument("--mixtures", nargs="+", default=list(MIXTURES), choices=list(MIXTURES))
    p.add_argument("--only", choices=["gaussian", "uniform"], help="train this RSSM method alone")
    p.add_argument("--summary", nargs="+", metavar="CSV", help="print the tables of these files and exit")
    p.add_argument("--profile", action="store_true", help="print where eq. 36's weights put the loss, per step t")
    p.add_argument("--compare", nargs=2, metavar=("NEW_CSV", "OLD_CSV"), help="the difference of two commits' errors")
    p.add_argument(
        "--paired",
        action="store_true",
        help="with --compare: an option's runs against the defaults' of the same checkout, paired by seed",
    )
    p.add_argument("extra", nargs="*", help="after --: more options for rssm_toy_gmm.py (its defaults otherwise)")
    cli = p.parse_args()
    if cli.summary:
        return summary(cli.summary)
    if cli.compare:
        return compare(*cli.compare, paired=cli.paired)
    if cli.profile:
        toy = load(cli.repo)
        for mixture in cli.mixtures:
            rows = weight_profile(toy, [*MIXTURES[mixture], *cli.extra])
            T = len(rows[0][1])
            print(f"\n{mixture}: share of eq. 36's total weight at each step t (flat: {1 / T:.3f})\n")
            print("| t | abar_t | " + " | ".join(f"p~ {n}" for n, _, _ in rows) + " |\n|---|---|" + "---|" * len(rows))
            for i in range(T):
                print(
                    f"| {i + 1} | {rows[0][2][i]:.3f} | " + " | ".join(f"{share[i]:.4f}" for _, share, _ in rows) + " |"
                )
            half = T // 2
            print(
                "\nshare of the weight at the noisier half of the steps (t > T/2; flat: 0.5): "
                + ", ".join(f"p~ {n} {share[half:].sum():.4f}" for n, share, _ in rows)
            )
        return
    if not cli.csv:
        sys.exit("error: --csv is needed to run")
    toy, extra = load(cli.repo), " ".join(cli.extra)
    done = set()
    if os.path.exists(cli.csv):
        done = {(r["mixture"], r["seed"], r["extra"]) for r in csv.DictReader(open(cli.csv))}
    new = not os.path.exists(cli.csv)
    with open(cli.csv, "a", newline="") as f:
        out = csv.DictWriter(f, FIELDS)
        if new:
            out.writeheader()
        for seed in cli.seeds:  # seeds outer: an interrupted run has every mixture at the first seeds
            for mixture in cli.mixtures:
                if (mixture, str(seed), extra) in done:
                    continue
                argv = [*MIXTURES[mixture], "--seed", str(seed), "--output", os.devnull, *cli.extra]
                start = time.time()
                weights, target = run_one(toy, argv, cli.only)
                for method, w in weights.items():
                    out.writerow(
                        dict(
                            mixture=mixture,
                            seed=seed,
                            method=method,
                            extra=extra,
                            weights=" ".join(f"{v:.4f}" for v in w),
                            target=" ".join(f"{v:g}" for v in target),
                            worst_error=f"{np.abs(np.asarray(w) - target).max():.4f}",
                            seconds=f"{time.time() - start:.1f}",
                        )
                    )
                f.flush()
                print(
                    f"{mixture} seed {seed}: "
                    + ", ".join(f"{m} {np.abs(np.asarray(w) - target).max():.3f}" for m, w in weights.items()),
                    flush=True,
                )


if __name__ == "__main__":
    main()
