"""Speed of SDAC, DPMD and SAC on this machine: per algorithm and settings, eager vs --compile vs --cudagraphs (where CUDA
exists): time per training iteration (act on the envs, step them, the updates; evaluation excluded; the first 10
training iterations, which absorb compilation and graph capture, not timed), env steps per second end to end
(compilation included) and peak GPU memory. Prints one Markdown table with the device, commit and date.
With --official, the authors' SDAC and DPMD (JAX, jit on this machine; ../shared/tools/official-sdac.sh) are timed in
the same run at the settings they can take (SDAC's K = 64 is hard-coded there): one of their training iterations is
also one vector step of 5 envs plus one update.

    python benchmarks/speed.py                                   # Hopper-v4, all settings, all modes here
    python benchmarks/speed.py --settings "sdac official" "sdac study" --official   # ours beside the authors'
    python benchmarks/speed.py --settings "dpmd study" --official                   # DPMD beside the authors'
    python benchmarks/speed.py --env-id Ant-v4 --iterations 2000 --settings "sdac official" --modes eager cudagraphs
The table also gives the time 1M env steps would take at that rate (training iterations only: no warm-up, no
evaluation) and, for the compiled modes, the graphs torch.compile made (each recompile adds one) and its graph breaks.
"""

import argparse
import contextlib
import io
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings

import torch
from torch._dynamo.utils import counters

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import dpmd_continuous_action as dpmd  # noqa: E402
import sac_continuous_action as sac  # noqa: E402
import sdac_continuous_action as sdac  # noqa: E402

SETTINGS = {
    # the official code's practice: N = 32 candidates, K = 64 reverse samples, T = 20
    "sdac official": (sdac, dict(num_candidates=32, num_reverse_samples=64, diffusion_steps=20)),
    # the side-by-side study with the authors' code on a CPU: N = 4, K = 64 (theirs is hard-coded), T = 10
    "sdac study": (sdac, dict(num_candidates=4, num_reverse_samples=64, diffusion_steps=10)),
    # what the CPU benchmarks in the README use
    "sdac cpu": (sdac, dict(num_candidates=4, num_reverse_samples=16, diffusion_steps=10)),
    # DPMD (no reverse samples): the authors' N = 32, T = 20, and the side-by-side study's N = 4, T = 10
    "dpmd official": (dpmd, dict(num_candidates=32, diffusion_steps=20)),
    "dpmd study": (dpmd, dict(num_candidates=4, diffusion_steps=10)),
    # SAC has one setting: the paper's baseline protocol
    "sac": (sac, dict()),
}
MODES = {"eager": dict(), "compile": dict(compile=True), "cudagraphs": dict(cudagraphs=True),
         "eager+tf32": dict(tf32=True), "compile+tf32": dict(compile=True, tf32=True),
         "cudagraphs+tf32": dict(cudagraphs=True, tf32=True)}


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    model = platform.processor() or "cpu"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def measure(module, setting: dict, mode: dict, env_id: str, iterations: int) -> dict:
    warmup = 256  # env steps of random actions before the first update (one batch)
    args = module.Args(env_id=env_id, total_timesteps=warmup + 5 * (iterations + 10), learning_starts=warmup,
                       eval_interval=0, eval_episodes=1, log_interval=10**9, buffer_size=10_000, **setting, **mode)  # fmt: skip
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    torch._dynamo.reset()
    counters.clear()
    start = time.time()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own lines would interleave with the table
        out = module.train(args)
    seconds = time.time() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    # what torch.compile made of the run: graphs compiled (a recompile adds one) and graph breaks
    graphs, breaks = counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # (--tf32 sets them for the process)
    return dict(ms=out["seconds_per_iteration"] * 1000, sps=args.total_timesteps / seconds, peak_mb=peak,
                graphs=graphs, breaks=breaks, num_envs=args.num_envs)


def measure_official(tool: str, alg: str, setting: dict, env_id: str, iterations: int) -> dict:
    """The authors' code, timed by its harness: ms per training iteration over `iterations` after the first 10."""
    cmd = ["bash", tool, "time", "--alg", alg, "--env", env_id, "--num_particles", str(setting["num_candidates"]),
           "--diffusion_steps", str(setting["diffusion_steps"]), "--num_vec_envs", "5", "--start_step", "1000",
           "--total_step", "1000000", "--suffix", "speed"]  # fmt: skip
    env = {**os.environ, "STOP_AFTER": str(iterations + 10), "SKIP": "10"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(REPO) or ".")
    m = re.search(r"time per training iteration: ([0-9.]+) ms", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(f"the authors' code printed no timing (exit {out.returncode}): {(out.stdout + out.stderr)[-500:]}")
    return dict(ms=float(m.group(1)), sps=None, peak_mb=None, graphs=None, breaks=None, num_envs=5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="Hopper-v4")
    p.add_argument("--iterations", type=int, default=0, help="timed training iterations (0: 20 official, 100 others)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--modes", nargs="+", default=None, choices=list(MODES), help="default: eager, compile (+ cudagraphs on CUDA)")
    p.add_argument("--official", action="store_true", help="also time the authors' code: SDAC at K = 64 settings, DPMD")
    p.add_argument("--official-tool", default=os.path.join(os.path.dirname(REPO), "shared", "tools", "official-sdac.sh"))
    cli = p.parse_args()
    modes = cli.modes or ["eager", "compile"] + (["cudagraphs"] if torch.cuda.is_available() else [])
    warnings.filterwarnings("ignore")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    rows, eager = [], {}
    print(f"\n{cli.env_id}; {machine()}; commit {commit}; {time.strftime('%Y-%m-%d')}\n")
    print("| algorithm, settings | mode | iterations timed | ms per training iteration | vs eager | 1M env steps at this "
          "rate (min) | env steps/s end to end | peak GPU memory (MB) | graphs / graph breaks |\n"
          "|---|---|---|---|---|---|---|---|---|", flush=True)  # fmt: skip

    def row(name, mode, n, r):  # printed as soon as measured, so that a run stopped early keeps what it measured
        rows.append((name, mode, n, r))
        eager.update({name: r["ms"]} if mode == "eager" else {})
        ratio = f"{eager[name] / r['ms']:.2f}x" if name in eager else "-"
        peak = f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "-"
        sps = f"{r['sps']:.0f}" if r["sps"] is not None else "-"
        million = r["ms"] / 1000 * 1_000_000 / r["num_envs"] / 60  # training iterations only: no warm-up, no evaluation
        graphs = f"{r['graphs']} / {r['breaks']}" if r["graphs"] is not None else "-"
        print(f"| {name} | {mode} | {n} | {r['ms']:.1f} | {ratio} | {million:.0f} | {sps} | {peak} | {graphs} |", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # runs/ of these short runs is thrown away
        for name in cli.settings:
            module, setting = SETTINGS[name]
            iterations = cli.iterations or (20 if "official" in name else 100)
            for mode in modes:
                try:
                    row(name, mode, iterations, measure(module, setting, MODES[mode], cli.env_id, iterations))
                except (sdac.RunError, dpmd.RunError, sac.RunError) as e:
                    print(f"{name} {mode}: {e}", file=sys.stderr)
            if cli.official and (module is dpmd or (module is sdac and setting["num_reverse_samples"] == 64)):
                try:
                    row(name, "authors' code (JAX jit)", iterations,
                        measure_official(cli.official_tool, name.split()[0], setting, cli.env_id, iterations))
                except (RuntimeError, OSError) as e:
                    print(f"{name} authors' code: {e}", file=sys.stderr)
    ms = {(name, mode): r["ms"] for name, mode, _, r in rows}
    for name, mode in ms:  # how much an SDAC or DPMD iteration costs against a SAC one, in the same mode and run
        if not name.startswith("sac") and ("sac", mode) in ms:
            print(f"\n{name} / sac, {mode}: {ms[(name, mode)] / ms[('sac', mode)]:.1f}x the time per iteration", end="")
    print()


if __name__ == "__main__":
    main()
