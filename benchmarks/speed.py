"""Speed of SDAC, DPMD, DACER and SAC on this machine: per algorithm and settings, eager vs --compile vs --cudagraphs (where CUDA
exists), with or without TF32. Per mode, one Markdown row, printed as soon as it is measured:
- ms per training iteration (act on the envs, step them, the updates), over `--iterations` iterations after the first
  10, which absorb compilation and graph capture;
- ms per evaluation step: the policy on --eval-episodes states (the script's default, 20) and one step of as many
  envs, timed over 20 steps after 5 untimed ones (the first call at that batch size compiles its own graph);
- the time 1M env steps would take at the script's defaults (Args): the random warm-up (its vector steps timed here
  too), the training iterations, and every evaluation counted at the env's time limit (1000 steps on MuJoCo), all
  episodes of an evaluation stepping together: an upper bound on the evaluations' share;
- compile seconds (torch.compile's own count: Dynamo, AOTAutograd and Inductor, forward and backward), peak GPU
  memory, and what torch.compile made: graphs (a recompile adds one), graph breaks, CUDA graphs skipped.
A mode that fails prints a FAILED row and its traceback's end on stderr; the other modes still run. SIGINT (Ctrl-C,
or `timeout -s INT`) stops it with the rows measured so far printed.
With --official, the authors' SDAC and DPMD (JAX, jit on this machine; ../shared/tools/official-sdac.sh) are timed in
the same run at the settings they can take (SDAC's K = 64 is hard-coded there): one of their training iterations is
also one vector step of 5 envs plus one update; only that column is theirs.

    python benchmarks/speed.py                                   # Hopper-v4, all settings, all modes here
    python benchmarks/speed.py --settings "sdac official" "sdac study" --official   # ours beside the authors'
    python benchmarks/speed.py --env-id Ant-v4 --iterations 300 --settings "sdac official" --modes eager cudagraphs+tf32
    python benchmarks/speed.py --env-id Ant-v4 --settings "sdac official" "sdac official, older iteration" --launches
"""

import argparse
import contextlib
import io
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

import gymnasium as gym
import numpy as np
import torch
from torch._dynamo.utils import counters
from torch.utils._python_dispatch import TorchDispatchMode

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import dacer_continuous_action as dacer  # noqa: E402
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
    # DACER (no candidates, no reverse samples): the authors' T = 20, and T = 10 as the side-by-side studies' SDAC
    "dacer official": (dacer, dict(diffusion_steps=20)),
    "dacer study": (dacer, dict(diffusion_steps=10)),
    # SAC has one setting: the paper's baseline protocol
    "sac": (sac, dict()),
}


@torch.no_grad()
def older_reverse_diffusion(actor, obs, sched, act_dim: int, x_T_scale: float):
    """The scripts' sampler as it was before issue 38 (commit b31325b), for the side-by-side measure only: the
    schedule's constants read and combined from 0-d tensors, and the time embedding computed at every step. It draws
    the same numbers and, on a CPU, gives the same actions bit for bit (tests/test_speed.py)."""
    B, T = obs.shape[0], sched.betas.shape[0]
    x = torch.randn(B, act_dim, device=obs.device) * x_T_scale
    for i in reversed(range(T)):
        eps = actor(obs, x, torch.full((B,), i, device=obs.device))
        x0_hat = ((x - (1 - sched.abar[i]).sqrt() * eps) / sched.abar[i].sqrt()).clamp(-1, 1)
        x = sched.posterior_mean_coef1[i] * x0_hat + sched.posterior_mean_coef2[i] * x
        if i > 0:
            x = x + sched.posterior_var[i].sqrt() * torch.randn_like(x)
    return x.clamp(-1, 1)


# the iteration before issue 38, side by side with today's: the older sampler and, for SDAC, a' and a0 in a chain
# each and the updates after the env step
OLDER = {
    "sdac official, older iteration": (
        sdac,
        dict(SETTINGS["sdac official"][1], one_chain=False, update_before_step=False),
    ),
    "dpmd official, older iteration": (dpmd, SETTINGS["dpmd official"][1]),
}
SETTINGS |= OLDER


@contextlib.contextmanager
def iteration_of(name: str):
    """Within it, an OLDER setting's script samples with older_reverse_diffusion."""
    module, real = SETTINGS[name][0], getattr(SETTINGS[name][0], "reverse_diffusion", None)
    if name in OLDER:
        module.reverse_diffusion = older_reverse_diffusion
    try:
        yield
    finally:
        if name in OLDER:
            module.reverse_diffusion = real


MODES = {
    "eager": dict(),
    "compile": dict(compile=True),
    "cudagraphs": dict(cudagraphs=True),
    "eager+tf32": dict(tf32=True),
    "compile+tf32": dict(compile=True, tf32=True),
    "cudagraphs+tf32": dict(cudagraphs=True, tf32=True),
}
EVAL_STEPS, EVAL_UNTIMED = 20, 5  # evaluation steps timed, after this many untimed ones
HEADER = (
    "| algorithm, settings | mode | iterations timed | ms per training iteration | vs eager | ms per evaluation step "
    "| 1M env steps, projected (min) | compile (s) | peak GPU memory (MB) | graphs / breaks / CUDA graphs skipped |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    model = platform.processor() or "cpu"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def commit() -> str:
    """The short commit of this checkout; where git is missing or this is no checkout (a GPU machine gets a copy of
    the working tree), $COMMIT if set, else '?'."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except OSError:
        pass
    return os.environ.get("COMMIT") or "?"


def timed_evaluation(seconds_per_step: list):
    """A stand-in for the scripts' evaluate(): the same work per step (the policy on every env's state, the actions
    back on the host, one vector step), for EVAL_UNTIMED + EVAL_STEPS steps; appends the seconds per timed step."""

    def evaluate(policy, eval_envs, scale, bias, device, seed, frames=None):
        obs, _ = eval_envs.reset(seed=seed)
        for i in range(EVAL_UNTIMED + EVAL_STEPS):
            if i == EVAL_UNTIMED:
                start = time.perf_counter()
            with torch.no_grad():
                a = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
            obs, *_ = eval_envs.step(a.cpu().numpy() * scale + bias)
        seconds_per_step.append((time.perf_counter() - start) / EVAL_STEPS)
        n = eval_envs.num_envs
        return np.zeros(n), np.full(n, EVAL_UNTIMED + EVAL_STEPS)

    return evaluate


def warmup_step_ms(module, env_id: str, num_envs: int, device: torch.device, steps: int = 200) -> float:
    """ms per vector step of the random warm-up: uniform actions, the env step, the transition stored."""
    envs = module.make_vector_env(env_id, num_envs)
    act_dim = envs.single_action_space.shape[0]
    rb = module.ReplayBuffer(steps * num_envs, envs.single_observation_space.shape[0], act_dim, device)
    scale, bias = module.check_env(env_id)
    obs, _ = envs.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        actions = np.random.uniform(-1, 1, (num_envs, act_dim)).astype(np.float32)
        next_obs, rewards, terminations, _, infos = envs.step(actions * scale + bias)
        real_next_obs = next_obs.copy()  # as train() stores it: the true s' where an episode ended
        for i in np.flatnonzero(infos.get("_final_obs", [])):
            real_next_obs[i] = infos["final_obs"][i]
        rb.add(obs, actions, rewards, real_next_obs, terminations)
        obs = next_obs
    envs.close()
    return (time.perf_counter() - start) / steps * 1000


def projected_minutes(module, env_id: str, ms: float, eval_ms: float, warmup_ms: float) -> float:
    """1M env steps (the script's default total) at its default warm-up, envs and evaluation schedule."""
    d = module.Args()
    iterations = math.ceil(d.total_timesteps / d.num_envs)
    warmup = min(d.learning_starts // d.num_envs, iterations)
    evaluations = sum(
        1
        for i in range(1, iterations + 1)
        if module.crossed(i * d.num_envs, d.eval_interval, d.num_envs) or i == iterations
    )
    episode = gym.spec(env_id).max_episode_steps or 1000
    return ((iterations - warmup) * ms + warmup * warmup_ms + evaluations * episode * eval_ms) / 60_000


def measure(module, setting: dict, mode: dict, env_id: str, iterations: int) -> dict:
    warmup = 256  # env steps of random actions before the first update (one batch)
    args = module.Args(
        env_id=env_id,
        total_timesteps=warmup + module.Args.num_envs * (iterations + 10),
        learning_starts=warmup,
        eval_interval=0,
        log_interval=10**9,
        buffer_size=10_000,
        checkpoint_interval=0,
        **setting,
        **mode,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    torch._dynamo.reset()  # (also zeroes torch.compile's compile-time count)
    counters.clear()
    eval_seconds, real_evaluate = [], module.evaluate
    module.evaluate = timed_evaluation(eval_seconds)  # the run's one (final) evaluation, timed at its batch size
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the run's own lines would interleave with the table
            out = module.train(args)
    finally:
        module.evaluate = real_evaluate
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    compile_s = torch._dynamo.utils.calculate_time_spent().get("total_wall_time", 0.0)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    ms, eval_ms = out["seconds_per_iteration"] * 1000, eval_seconds[0] * 1000
    warm_ms = warmup_step_ms(module, env_id, args.num_envs, device)
    return dict(
        ms=ms,
        eval_ms=eval_ms,
        minutes_1m=projected_minutes(module, env_id, ms, eval_ms, warm_ms),
        compile_s=compile_s,
        peak_mb=peak,
        graphs=counters["stats"]["unique_graphs"],
        breaks=sum(counters["graph_break"].values()),
        skips=counters["inductor"]["cudagraph_skips"],
        eval_envs=args.eval_episodes,
        compiled=args.compile or args.cudagraphs,
    )


NO_KERNEL = {"empty", "empty_strided", "empty_like", "detach", "lift_fresh", "_local_scalar_dense"}


class OpCounter(TorchDispatchMode):
    """Counts the aten operators dispatched while `on`, views and bare allocations left out: in eager mode on a GPU
    each of the rest is about one kernel launch (issue 38's CPU proxy for the launches per iteration)."""

    def __init__(self):
        super().__init__()
        self.count, self.by_name, self.on, self.done = 0, {}, False, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if self.on and not func.is_view and name not in NO_KERNEL:
            self.count += 1
            self.by_name[name] = self.by_name.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


class ForeachAdam(torch.optim.Adam):
    """Adam with its foreach implementation: PyTorch's default on CUDA (a few kernels per step for all parameters),
    where on the CPU it defaults to a loop over the parameters, which would count a GPU's step many times over."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **{**kw, "foreach": True})


def count_operators(module, setting: dict, env_id: str, iterations: int) -> OpCounter:
    """The operators of a real run of train() with `iterations` training iterations, counted from its first action
    after the random warm-up to its one evaluation, which is left out."""
    counter, num_envs = OpCounter(), setting.get("num_envs", module.Args.num_envs)
    warmup = num_envs * math.ceil(64 / num_envs)  # a whole number of vector steps: then exactly `iterations` train
    run = dict(
        env_id=env_id,
        total_timesteps=warmup + num_envs * iterations,
        learning_starts=warmup,
        eval_interval=0,
        eval_episodes=1,
        log_interval=10**9,
        buffer_size=10_000,
        checkpoint_interval=0,
    )
    args = module.Args(**run | setting)
    real_evaluate, real_adam = module.evaluate, torch.optim.Adam

    def evaluate(*a, **k):
        counter.on, counter.done = False, True
        return real_evaluate(*a, **k)

    def counting_from_here(fn):
        def call(*a, **k):
            counter.on = not counter.done
            return fn(*a, **k)

        return call

    if hasattr(module, "make_policy"):  # SDAC, DPMD: the policy the loop acts with
        real, owner = ("make_policy", module.make_policy), module
        module.make_policy = lambda *a, **k: counting_from_here(real[1](*a, **k))
    else:  # SAC acts with actor.get_action
        real, owner = ("get_action", module.Actor.get_action), module.Actor
        module.Actor.get_action = counting_from_here(real[1])
    module.evaluate, torch.optim.Adam = evaluate, ForeachAdam
    try:
        with counter, contextlib.redirect_stdout(io.StringIO()):
            module.train(args)
    finally:
        module.evaluate, torch.optim.Adam = real_evaluate, real_adam
        setattr(owner, *real)
    return counter


def launches_per_iteration(module, setting: dict, env_id: str, iterations: int = 4) -> tuple[float, dict]:
    """Eager operators per training iteration (the action, the env step, the replay buffer's add and sample, the
    updates), with Adam as on a GPU (ForeachAdam): a run with 2 + `iterations` training iterations less one with 2,
    so that what happens once (the first update creates Adam's state) is left out. Returns the count per iteration
    and the counts by operator over the `iterations`; an even number of them covers whole cycles of the delayed
    updates (policy_frequency 2)."""
    short, long = (count_operators(module, setting, env_id, n) for n in (2, 2 + iterations))
    by_name = {k: v - short.by_name.get(k, 0) for k, v in long.by_name.items()}
    return (long.count - short.count) / iterations, {k: v for k, v in by_name.items() if v}


def measure_official(tool: str, alg: str, setting: dict, env_id: str, iterations: int) -> dict:
    """The authors' code, timed by its harness: ms per training iteration over `iterations` after the first 10."""
    cmd = [
        "bash",
        tool,
        "time",
        "--alg",
        alg,
        "--env",
        env_id,
        "--num_particles",
        str(setting.get("num_candidates", 32)),  # (not read by DACER)
        "--diffusion_steps",
        str(setting["diffusion_steps"]),
        "--num_vec_envs",
        "5",
        "--start_step",
        "1000",
        "--total_step",
        "1000000",
        "--suffix",
        "speed",
    ]
    env = {**os.environ, "STOP_AFTER": str(iterations + 10), "SKIP": "10"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(REPO) or ".")
    m = re.search(r"time per training iteration: ([0-9.]+) ms", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(
            f"the authors' code printed no timing (exit {out.returncode}): {(out.stdout + out.stderr)[-500:]}"
        )
    return dict(ms=float(m.group(1)))


def format_row(name: str, mode: str, n: int, r: dict, eager_ms) -> str:
    """One table row; the columns a measurement lacks (the authors' code, a CPU) are '-'."""

    def fmt(key, spec):
        return format(r[key], spec) if r.get(key) is not None else "-"

    ratio = f"{eager_ms / r['ms']:.2f}x" if eager_ms else "-"
    evaluation = f"{r['eval_ms']:.1f} ({r['eval_envs']} envs)" if r.get("eval_ms") is not None else "-"
    made = f"{r['graphs']} / {r['breaks']} / {r['skips']}" if r.get("compiled") else "-"
    return (
        f"| {name} | {mode} | {n} | {r['ms']:.1f} | {ratio} | {evaluation} | {fmt('minutes_1m', '.1f')} | "
        f"{fmt('compile_s', '.0f')} | {fmt('peak_mb', '.0f')} | {made} |"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="Hopper-v4")
    p.add_argument("--iterations", type=int, default=0, help="timed training iterations (0: 20 official, 100 others)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument(
        "--modes", nargs="+", default=None, choices=list(MODES), help="default: eager, compile (+ cudagraphs on CUDA)"
    )
    p.add_argument("--official", action="store_true", help="also time the authors' code: SDAC at K = 64 settings, DPMD")
    p.add_argument("--launches", action="store_true", help="first, eager operators per training iteration per setting")
    p.add_argument(
        "--official-tool", default=os.path.join(os.path.dirname(REPO), "shared", "tools", "official-sdac.sh")
    )
    cli = p.parse_args(argv)
    modes = cli.modes or ["eager", "compile"] + (["cudagraphs"] if torch.cuda.is_available() else [])
    warnings.filterwarnings("ignore")
    rows, eager = [], {}
    print(f"\n{cli.env_id}; {machine()}; commit {commit()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    if cli.launches:  # issue 38's proxy for the kernel launches of an eager iteration on a GPU
        for name in cli.settings:
            with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp), iteration_of(name):
                n, by = launches_per_iteration(*SETTINGS[name], cli.env_id, iterations=4)
            top = ", ".join(f"{k} {v / 4:.0f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:6])
            print(
                f"{name}: {n:.0f} eager operators per training iteration (views and allocations left out), most "
                f"often {top}",
                flush=True,
            )
        print()
    print(HEADER, flush=True)

    def row(name, mode, n, r):  # printed as soon as measured, so that a run stopped early keeps what it measured
        rows.append((name, mode, r))
        if mode == "eager":
            eager[name] = r["ms"]
        print(format_row(name, mode, n, r, eager.get(name)), flush=True)

    def failed(name, mode, e):
        print(
            f"| {name} | {mode} | FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''} |",
            flush=True,
        )
        tail = traceback.format_exc().splitlines()[-15:]
        print(f"{name} {mode} FAILED:\n" + "\n".join(tail), file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # runs/ of these short runs is thrown away
        try:
            for name in cli.settings:
                module, setting = SETTINGS[name]
                iterations = cli.iterations or (20 if "official" in name else 100)
                for mode in modes:
                    try:
                        with iteration_of(name):
                            r = measure(module, setting, MODES[mode], cli.env_id, iterations)
                        row(name, mode, iterations, r)
                    except Exception as e:  # noqa: BLE001 - one mode's failure (a compile, a CUDA graph) must not lose the rest
                        failed(name, mode, e)
                if (
                    cli.official
                    and name not in OLDER
                    and (module in (dpmd, dacer) or (module is sdac and setting["num_reverse_samples"] == 64))
                ):
                    try:
                        row(
                            name,
                            "authors' code (JAX jit)",
                            iterations,
                            measure_official(cli.official_tool, name.split()[0], setting, cli.env_id, iterations),
                        )
                    except (RuntimeError, OSError) as e:
                        failed(name, "authors' code (JAX jit)", e)
        except KeyboardInterrupt:
            print(f"\nstopped by SIGINT after {len(rows)} rows", flush=True)
            sys.exit(130)
        finally:
            os.chdir(REPO)
    ms = {(name, mode): r["ms"] for name, mode, r in rows}
    for name, mode in ms:  # how much an SDAC or DPMD iteration costs against a SAC one, in the same mode and run
        if not name.startswith("sac") and ("sac", mode) in ms:
            print(f"\n{name} / sac, {mode}: {ms[(name, mode)] / ms[('sac', mode)]:.1f}x the time per iteration", end="")
    for name, mode in ms:  # the cost claim: DACER's iteration against SDAC's at the same settings, mode and run
        sdac_name = name.replace("dacer", "sdac")
        if name.startswith("dacer") and (sdac_name, mode) in ms:
            print(f"\n{name} / {sdac_name}, {mode}: {ms[(name, mode)] / ms[(sdac_name, mode)]:.2f}x the time", end="")
    for name, mode in ms:  # issue 38: the older iteration against today's, in the same mode and run
        base = name.split(",")[0]
        if name in OLDER and (base, mode) in ms:
            print(
                f"\n{base}, {mode}: {ms[(name, mode)] / ms[(base, mode)]:.2f}x faster than the older iteration", end=""
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    print(f"\npeak resident memory of this process (all it ran, Python and the envs included): {rss:.0f} MB")


if __name__ == "__main__":
    main()
