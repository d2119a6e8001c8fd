"""benchmarks/toy_weights.py: a method trained alone (--only) gives the weights the full run gives it at the same seed
(so an option's runs pair with the defaults' seed by seed), and the tables on rows with known values."""

import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import toy_weights  # noqa: E402

TINY = ["--epochs", "3", "--steps-per-epoch", "2", "--batch-size", "64", "--num-samples", "500", "--seed", "3"]


def test_a_method_alone_gives_the_full_runs_weights():
    toy = toy_weights.load(toy_weights.REPO)
    full, target = toy_weights.run_one(toy, TINY, None)
    assert set(full) == {"gaussian", "uniform", "dsm", "langevin", "true samples"} and np.allclose(target, [0.8, 0.2])
    for method in ("gaussian", "uniform"):
        alone, _ = toy_weights.run_one(toy, TINY, method)
        np.testing.assert_array_equal(alone[method], full[method])


def write(path, rows):
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, toy_weights.FIELDS)
        out.writeheader()
        for mixture, seed, method, extra, err in rows:
            out.writerow(
                dict(
                    mixture=mixture,
                    seed=seed,
                    method=method,
                    extra=extra,
                    weights="",
                    target="",
                    worst_error=err,
                    seconds=1.0,
                )
            )


def test_summary_and_paired_comparison_on_known_rows(tmp_path, capsys):
    base, variant = tmp_path / "base.csv", tmp_path / "variant.csv"
    write(
        base,
        [
            ("paper", s, m, "", e)
            for s, (g, u, d) in enumerate([(0.1, 0.2, 0.1), (0.3, 0.4, 0.2), (0.2, 0.3, 0.3)], 1)
            for m, e in (("gaussian", g), ("uniform", u), ("dsm", d))
        ],
    )
    write(variant, [("paper", s, "uniform", "--uniform-bound 9", u) for s, u in ((1, 0.25), (2, 0.43), (3, 0.32))])
    toy_weights.summary([str(base)])
    text = capsys.readouterr().out
    # uniform: 0.2, 0.4, 0.3: mean 0.3, std 0.1, half-width 4.303 * 0.1 / sqrt(3) = 0.248
    assert "| paper | (defaults) | 3 | 0.200 [-0.048, 0.448] | 0.300 [0.052, 0.548] | 0.200 [-0.048, 0.448] |" in text
    # minus DSM per seed: gaussian 0, 0.1, -0.1 (mean 0, half 0.248); uniform 0.1, 0.2, 0 (mean 0.1)
    assert "| paper | +0.000 [-0.248, +0.248] | +0.100 [-0.148, +0.348] |" in text
    # the variant minus the defaults, seed by seed: 0.05, 0.03, 0.02 (mean 0.0333, std 0.01528; t 3.78, 2 dof: p 0.063)
    toy_weights.compare(str(variant), str(base), paired=True)
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| paper |"))
    half = 4.302653 * np.std([0.05, 0.03, 0.02], ddof=1) / np.sqrt(3)
    assert line == f"| paper | +0.033 [{0.0333333 - half:+.3f}, {0.0333333 + half:+.3f}], p 0.06 |"
    # unpaired (two commits), the same rows as if from another commit: Welch on 0.25, 0.43, 0.32 vs 0.2, 0.4, 0.3:
    # variances of the means 0.002744 and 0.003333, se 0.0780, t 0.428 on 3.96 dof: half-width 0.217, p 0.69
    write(variant, [("paper", s, "uniform", "", u) for s, u in ((1, 0.25), (2, 0.43), (3, 0.32))])
    toy_weights.compare(str(variant), str(base))
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| paper |"))
    assert line == "| paper | +0.033 [-0.184, +0.251], p 0.69 |"
