"""The facts a GPU speed plan rests on, measured in about half a minute (benchmarks/gpu_run.sh runs it second):
- the machine: Python, git, the CUDA MPS control program (presence only: nothing is started), the GL loaders that
  MUJOCO_GL=egl would need, MUJOCO_GL itself;
- the device: torch, CUDA, the GPU, its multiprocessors and memory;
- the host's cost of issuing one small op (eager launch cost), and the GPU's cost of one node of a captured CUDA graph;
- the matmuls of SDAC's reverse chain, [rows, 256] x [256, 256] + bias, in fp32, TF32 and bf16, at the rows of acting
  (5 states x 32 candidates), of a' or a0 (256 x 32) and of the RSSM loss (256 x 64);
- SDAC's whole sampler (best of 32, 20 reverse steps) at 5, 256 and 512 states (acting, a', one chain for a' and a0):
  eager, and captured once in a plain CUDA graph (no compile) and replayed;
- SDAC's whole update (official settings, batch 256), with and without its policy step: eager, and each captured as
  one plain CUDA graph (capturable Adam, its backward and optimiser steps inside) and replayed (issue 38's "one graph
  per update");
- whether random numbers change between replays, of a torch.cuda.graph and of torch.compile's "reduce-overhead".
Each part is independent: one that fails prints its error and the others still run. Without CUDA the GPU parts say
so and the rest runs on the CPU.

    python benchmarks/gpu_probe.py
"""

import os
import shutil
import subprocess
import sys
import time
import traceback

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if CUDA else "cpu")


def sync():
    if CUDA:
        torch.cuda.synchronize()


def ms_per_call(fn, reps: int = 50, warm: int = 5) -> float:
    """Median ms of one call: CUDA events on the GPU, the wall clock on the CPU."""
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        if CUDA:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[len(times) // 2]


def captured(fn):
    """fn captured once in a CUDA graph (after a warm-up on a side stream, as torch's docs do): returns replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def machine():
    """machine"""
    print(
        f"  python {sys.version.split()[0]}; git: {shutil.which('git') or 'not found'}; nvidia-smi: "
        f"{shutil.which('nvidia-smi') or 'not found'}"
    )
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/nvidia/bin"])  # (the driver's folder there)
    mps = shutil.which("nvidia-cuda-mps-control", path=search)
    print(f"  CUDA MPS control (presence only, not started): {mps or 'not found'}")
    try:
        libs = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout.splitlines()
        loaders = ("libEGL.so", "libOpenGL.so", "libGL.so")
        gl = sorted({line.split()[0] for line in libs if line.strip().startswith(loaders)})
    except OSError:
        gl = ["(no ldconfig)"]
    print(f"  GL loaders: {', '.join(gl) or 'none (MUJOCO_GL=egl would fail at import mujoco)'}")
    print(f"  MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}, PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM')!r}")


def device():
    """device"""
    print(f"  torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.get_num_threads()} CPU threads")
    if not CUDA:
        print("  no CUDA device: the GPU parts below are skipped")
        return
    p = torch.cuda.get_device_properties(0)
    print(
        f"  {p.name}, compute capability {p.major}.{p.minor}, {p.multi_processor_count} multiprocessors, "
        f"{p.total_memory / 2**30:.0f} GiB"
    )


def launch_cost():
    """eager launch cost: host microseconds to issue one op on [8, 256] (on a GPU the kernels keep up with the host)"""
    x = torch.zeros(8, 256, device=DEVICE)
    layer = torch.nn.Linear(256, 256).to(DEVICE)
    for name, op, n in [
        ("add_", lambda: x.add_(1.0), 3000),
        ("mish", lambda: torch.nn.functional.mish(x), 3000),
        ("Linear", lambda: layer(x), 1000),
    ]:
        op()
        sync()
        start = time.perf_counter()
        for _ in range(n):
            op()
        issued = time.perf_counter() - start
        sync()
        print(f"  {name}: {issued / n * 1e6:.1f} us per op")


def graph_node_cost():
    """CUDA graph: GPU microseconds per node of a captured chain of 500 small dependent kernels"""
    if not CUDA:
        print("  skipped: no CUDA")
        return
    x = torch.zeros(1024, device=DEVICE)

    def chain():
        for _ in range(500):
            x.add_(1.0)

    print(f"  {ms_per_call(captured(chain), reps=20) * 1000 / 500:.2f} us per node")


def chain_matmuls():
    """the reverse chain's matmuls, [rows, 256] x [256, 256] + bias: microseconds and TFLOP/s per precision"""
    for rows in (160, 8192, 16384):
        a, b = torch.randn(rows, 256, device=DEVICE), torch.randn(256, device=DEVICE)
        w = torch.randn(256, 256, device=DEVICE) / 16
        results = []
        for precision in ("fp32", "tf32", "bf16") if CUDA else ("fp32", "bf16"):
            torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
            x, y, z = (a.bfloat16(), w.bfloat16(), b.bfloat16()) if precision == "bf16" else (a, w, b)
            ms = ms_per_call(lambda: torch.nn.functional.linear(x, y, z), reps=30 if CUDA else 5)
            results.append(f"{precision} {ms * 1000:.1f} us ({2 * rows * 256 * 256 / ms / 1e9:.1f} TFLOP/s)")
        torch.set_float32_matmul_precision("highest")
        print(f"  [{rows}, 256]: " + " | ".join(results))


def sampler():
    """SDAC's sampler at the official settings (best of N = 32, T = 20): ms per call, eager and as one CUDA graph"""
    import sdac_continuous_action as sdac

    args = sdac.Args(num_candidates=32, diffusion_steps=20)
    torch.manual_seed(0)
    actor, qf = sdac.NoiseNetwork(27, 8).to(DEVICE), sdac.TwinQNetwork(27, 8).to(DEVICE)  # Ant-v4's dimensions
    policy = sdac.make_policy(sdac.make_schedule("linear", 20, device=DEVICE), args)
    noise = torch.tensor(0.5, device=DEVICE)
    for states in (5, 256, 512):
        obs = torch.randn(states, 27, device=DEVICE)
        eager = ms_per_call(lambda: policy(actor, qf, obs, noise), reps=20 if CUDA else 2, warm=2)
        line = f"  {states} states: eager {eager:.2f} ms"
        if CUDA:
            out = {}
            replay = captured(lambda: out.update(a=policy(actor, qf, obs, noise)))
            line += f" | one CUDA graph {ms_per_call(replay, reps=20):.2f} ms"
            first = out["a"].clone()
            replay()
            line += f" (replays differ: {not torch.equal(first, out['a'])})"
        print(line)


def whole_update():
    """SDAC's whole update at the official settings (B 256, N 32, K 64, T 20): ms, eager and as one CUDA graph"""
    import sdac_continuous_action as sdac

    args = sdac.Args(num_candidates=32, num_reverse_samples=64, diffusion_steps=20)
    torch.manual_seed(0)
    actor, qf = sdac.NoiseNetwork(27, 8).to(DEVICE), sdac.TwinQNetwork(27, 8).to(DEVICE)  # Ant-v4's dimensions
    actor_ema, qf_target = sdac.NoiseNetwork(27, 8).to(DEVICE), sdac.TwinQNetwork(27, 8).to(DEVICE)
    log_lam = torch.tensor(1.6, device=DEVICE, requires_grad=True)

    def adam(params, lr):  # as --cudagraphs makes them: the lr a tensor, capturable on CUDA
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=DEVICE), capturable=CUDA)

    sched = sdac.make_schedule("linear", 20, device=DEVICE)
    optimizers = adam(qf.parameters(), 3e-4), adam(actor.parameters(), 3e-4), torch.optim.Adam([log_lam], lr=7e-3)
    update, _ = sdac.make_update(
        sdac.make_policy(sched, args), actor, actor_ema, qf, qf_target, log_lam, *optimizers, sched, args
    )
    B = 256
    data = sdac.Batch(
        torch.randn(B, 27, device=DEVICE),
        torch.rand(B, 8, device=DEVICE) * 2 - 1,
        torch.randn(B, device=DEVICE),
        torch.randn(B, 27, device=DEVICE),
        torch.zeros(B, device=DEVICE),
    )
    lam = log_lam.detach().exp()
    for u, what in ((0, "critic, policy (one chain), targets"), (1, "critic alone")):
        eager = ms_per_call(lambda: update(data, lam, u), reps=20 if CUDA else 1, warm=2 if CUDA else 0)
        line = f"  u = {u} ({what}): eager {eager:.2f} ms"
        if CUDA:
            line += f" | one CUDA graph {ms_per_call(captured(lambda: update(data, lam, u)), reps=20):.2f} ms"
        print(line, flush=True)
    if CUDA:
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")


def graph_random_numbers():
    """random numbers under CUDA graphs: do replays draw new ones?"""
    if not CUDA:
        print("  skipped: no CUDA")
        return
    x = torch.zeros(4096, device=DEVICE)
    out = {}
    replay = captured(lambda: out.update(y=torch.randn_like(x)))
    replay()
    first = out["y"].clone()
    replay()
    print(f"  torch.cuda.graph replays draw new numbers: {not torch.equal(first, out['y'])}")
    noisy = torch.compile(lambda t: t + torch.randn_like(t), mode="reduce-overhead")
    draws = []
    for _ in range(4):  # warm-up, recording, replays
        torch.compiler.cudagraph_mark_step_begin()
        draws.append(noisy(x).clone())
    print(f"  torch.compile reduce-overhead replays draw new numbers: {not torch.equal(draws[-1], draws[-2])}")


def main() -> None:
    parts = machine, device, launch_cost, graph_node_cost, chain_matmuls, sampler, whole_update, graph_random_numbers
    for part in parts:
        start = time.time()
        print(f"## {part.__doc__}", flush=True)
        try:
            part()
        except Exception as e:  # noqa: BLE001 - a probe reports every failure and goes on to the next part
            print(f"  FAILED {type(e).__name__}: {str(e)[:300]}")
            print("  at " + traceback.format_exc().splitlines()[-3].strip())
        print(f"  ({time.time() - start:.1f} s)\n", flush=True)
    print("probe done", flush=True)


if __name__ == "__main__":
    main()
