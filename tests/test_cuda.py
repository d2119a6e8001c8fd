"""On a CUDA GPU only (skipped elsewhere; benchmarks/gpu_run.sh runs it there). Each RL script trains a few
iterations on the GPU in eager, --compile and --cudagraphs modes (updates, acting with num_envs states, evaluation
with eval_episodes states); under --cudagraphs three evaluations run with torch's warnings as errors, and the third
compiles nothing new and skips no CUDA graph; a GPU checkpoint (capturable Adam, lr tensors) resumes on the CPU and
that checkpoint back on the GPU under CUDA graphs; the speed benchmark reports GPU memory and compile time; CUDA-graph
replays of the acting policy draw new random numbers."""

import os
import sys
import warnings

import pytest
import torch

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_run.sh)")
SCRIPTS = pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
MODES = pytest.mark.parametrize(
    "mode", [{}, {"compile": True}, {"cudagraphs": True}], ids=["eager", "compile", "cudagraphs"]
)


def tiny(script, **kw):
    extra = {} if script is sac else dict(num_candidates=4, diffusion_steps=5)
    if script is sdac:
        extra["num_reverse_samples"] = 8
    if script is dacer:
        extra = dict(diffusion_steps=5, entropy_samples=16, alpha_update_interval=20)
    return script.Args(
        env_id="Hopper-v4",
        num_envs=2,
        learning_starts=100,
        batch_size=64,
        log_interval=50,
        eval_interval=100,
        eval_episodes=3,
        buffer_size=10_000,
        cuda=True,
        **{**extra, **kw},
    )


@SCRIPTS
@MODES
def test_training_on_the_gpu(script, mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch._dynamo.reset()
    out = script.train(tiny(script, total_timesteps=300, **mode))
    assert out["global_step"] == 300 and [s for s, _, _ in out["eval_history"]] == [100, 200, 300]
    assert all(torch.isfinite(torch.tensor(r)) for _, r, _ in out["eval_history"])


@SCRIPTS
def test_cudagraphs_evaluations_compile_once_and_warn_nothing(script, tmp_path, monkeypatch):
    from torch._dynamo.utils import counters

    monkeypatch.chdir(tmp_path)
    torch._dynamo.reset()
    counters.clear()
    seen = []
    real = script.evaluate

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append((counters["stats"]["unique_graphs"], counters["inductor"]["cudagraph_skips"]))
        return out

    monkeypatch.setattr(script, "evaluate", spy)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", module=r"torch\..*")
        # but Inductor's advice, once per process at its first compile, to enable TF32 (this run is in full precision;
        # under xdist that first compile may fall inside this test)
        warnings.filterwarnings("ignore", message=".*TensorFloat32.*")
        script.train(tiny(script, total_timesteps=300, cudagraphs=True))
    assert len(seen) == 3
    assert seen[2][0] == seen[1][0], f"the third evaluation compiled again: graphs after each {seen}"
    assert seen[2][1] == 0, "no CUDA graph was skipped"


@SCRIPTS
def test_gpu_checkpoint_resumes_on_the_cpu_and_back(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch._dynamo.reset()
    first = script.train(
        tiny(script, total_timesteps=200, compile=True, checkpoint_interval=200, checkpoint_buffer=True)
    )
    torch._dynamo.reset()
    on_cpu = script.train(
        tiny(
            script,
            total_timesteps=300,
            cuda=False,
            checkpoint_interval=100,
            checkpoint_buffer=True,
            resume=first["checkpoint"],
        )
    )
    assert on_cpu["global_step"] == 300
    torch._dynamo.reset()
    back = script.train(tiny(script, total_timesteps=400, cudagraphs=True, resume=on_cpu["checkpoint"]))
    assert back["global_step"] == 400


def test_speed_benchmark_fields_on_the_gpu(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import speed

    monkeypatch.chdir(tmp_path)
    module, setting = speed.SETTINGS["sdac cpu"]
    for mode in ("eager", "cudagraphs"):
        r = speed.measure(module, setting, speed.MODES[mode], "Hopper-v4", iterations=10)
        assert r["ms"] > 0 and r["eval_ms"] > 0 and r["minutes_1m"] > 0 and r["peak_mb"] > 0
        assert (r["graphs"] >= 1 and r["compile_s"] > 0) if mode == "cudagraphs" else r["compile_s"] == 0


def acting_policy(script, args, device: str):
    """The script's compiled acting policy on small random networks: states -> actions."""
    torch.manual_seed(0)
    if script is sac:
        policy = sac.compile_policy(sac.Actor(11, 3).to(device).get_action, args)
        return lambda obs: policy(obs)[0]
    actor, qf = script.NoiseNetwork(11, 3).to(device), script.TwinQNetwork(11, 3).to(device)
    sched = script.make_schedule("linear", args.diffusion_steps, device=device)
    policy = script.compile_policy(script.make_policy(sched, args), args)
    if script is dacer:  # (its policy picks no candidate: no critic)
        return lambda obs: policy(actor, obs, torch.tensor(0.5, device=device))
    return lambda obs: policy(actor, qf, obs, torch.tensor(0.5, device=device))


@SCRIPTS
def test_cudagraph_replays_draw_new_random_numbers(script):
    """The acting policy under CUDA graphs, four calls on the same states (warm-up, recording, replays): each draws
    its own noise, as an eager call does (a graph replay repeating the recorded draws would act the same every time)."""
    torch._dynamo.reset()
    act = acting_policy(script, tiny(script, cudagraphs=True), "cuda")
    obs = torch.randn(2, 11, device="cuda")
    with torch.no_grad():
        actions = [act(obs).clone() for _ in range(4)]
    assert all(not torch.equal(a, b) for a, b in zip(actions, actions[1:])), actions
    torch._dynamo.reset()
