"""rssm_toy_gmm.py at its defaults over several seeds: the weight each method gives the first mode ([3, 3]), the
histogram KL to true samples, and the time, per seed and as mean +- std. Prints Markdown; the figure of the first
seed goes to --figure.

    python benchmarks/toy_seeds.py --seeds 1 2 3 --figure rssm_toy_gmm.png
"""

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rssm_toy_gmm import Args, box, plot, run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--figure", default=None, help="write the first seed's figure here")
    cli = p.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    rows = {}
    print("| seed | method | weight of [3, 3] | KL(true \\|\\| method) | seconds |\n|---|---|---|---|---|")
    for seed in cli.seeds:
        start = time.time()
        results = run(Args(seed=seed))
        total = time.time() - start
        if cli.figure and seed == cli.seeds[0]:
            plot(results, cli.figure, box(Args()))
        for name, r in results.items():
            rows.setdefault(name, []).append((r["weights"][0], r["kl"], r["seconds"]))
            print(f"| {seed} | {name} | {r['weights'][0]:.3f} | {r['kl']:.4f} | {r['seconds']:.1f} |")
        print(f"| {seed} | whole run | | | {total:.1f} |")
    print(f"\n{len(cli.seeds)} seeds; {platform.processor() or 'cpu'}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, commit {commit}, {time.strftime('%Y-%m-%d')}\n")
    print("| method | weight of [3, 3], mean +- std | KL, mean +- std | seconds, mean |\n|---|---|---|---|")
    for name, vals in rows.items():
        w, kl, sec = (np.array(v) for v in zip(*vals))
        print(f"| {name} | {w.mean():.3f} +- {w.std():.3f} | {kl.mean():.4f} +- {kl.std():.4f} | {sec.mean():.1f} |")


if __name__ == "__main__":
    main()
