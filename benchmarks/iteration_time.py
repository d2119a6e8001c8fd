"""Time per SDAC training iteration (act on num_envs envs, step them, one update), evaluation excluded,
at the official settings and at the CPU settings, on this machine. Prints one Markdown table.

    python benchmarks/iteration_time.py                # Hopper-v4, both settings
    python benchmarks/iteration_time.py --iterations 50 --env-id Ant-v4
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sdac_continuous_action import Args, train  # noqa: E402

SETTINGS = {
    # the official code's practice: N = 32 candidates, K = 64 reverse samples, T = 20
    "official (N=32, K=64, T=20)": dict(num_candidates=32, num_reverse_samples=64, diffusion_steps=20),
    # what the CPU benchmarks in the README use
    "cpu (N=4, K=16, T=10)": dict(num_candidates=4, num_reverse_samples=16, diffusion_steps=10),
}


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    model = platform.processor() or "cpu"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="Hopper-v4")
    p.add_argument("--iterations", type=int, default=0, help="training iterations per setting (0: 10 official, 60 cpu)")
    cli = p.parse_args()
    warnings.filterwarnings("ignore")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # runs/ of these short runs is thrown away
        for name, setting in SETTINGS.items():
            iterations = cli.iterations or (10 if "official" in name else 60)
            warmup = 256  # env steps of random actions before the first update (one batch)
            args = Args(env_id=cli.env_id, total_timesteps=warmup + 5 * iterations, learning_starts=warmup,
                        eval_interval=0, eval_episodes=1, log_interval=10**9, buffer_size=10_000, **setting)  # fmt: skip
            out = train(args)
            rows.append((name, iterations, out["seconds_per_iteration"]))
    print(f"\n{cli.env_id}, {machine()}, torch {torch.__version__}, commit {commit}, {time.strftime('%Y-%m-%d')}\n")
    print("| settings | iterations timed | ms per training iteration |\n|---|---|---|")
    for name, n, sec in rows:
        print(f"| {name} | {n} | {sec * 1000:.0f} |")


if __name__ == "__main__":
    main()
