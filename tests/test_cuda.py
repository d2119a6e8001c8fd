"""On a CUDA GPU only (skipped elsewhere): what benchmarks/gpu_check.sh runs first. Each RL script trains a few
iterations on the GPU in eager, --compile and --cudagraphs modes (updates, acting with num_envs states, evaluation
with eval_episodes states); under --cudagraphs three evaluations run with torch's warnings as errors, and the third
compiles nothing new and skips no CUDA graph; a GPU checkpoint (capturable Adam, lr tensors) resumes on the CPU and
that checkpoint back on the GPU under CUDA graphs; the speed benchmark reports GPU memory."""

import os
import sys
import warnings

import pytest
import torch

import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")
SCRIPTS = pytest.mark.parametrize("script", [sdac, sac, dpmd], ids=["sdac", "sac", "dpmd"])
MODES = pytest.mark.parametrize("mode", [{}, {"compile": True}, {"cudagraphs": True}], ids=["eager", "compile", "cudagraphs"])


def tiny(script, **kw):
    extra = {} if script is sac else dict(num_candidates=4, diffusion_steps=5)
    if script is sdac:
        extra["num_reverse_samples"] = 8
    return script.Args(env_id="Hopper-v4", num_envs=2, learning_starts=100, batch_size=64, log_interval=50,
                       eval_interval=100, eval_episodes=3, buffer_size=10_000, cuda=True, **{**extra, **kw})  # fmt: skip


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
        script.train(tiny(script, total_timesteps=300, cudagraphs=True))
    assert len(seen) == 3
    assert seen[2][0] == seen[1][0], f"the third evaluation compiled again: graphs after each {seen}"
    assert seen[2][1] == 0, "no CUDA graph was skipped"


@SCRIPTS
def test_gpu_checkpoint_resumes_on_the_cpu_and_back(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch._dynamo.reset()
    first = script.train(tiny(script, total_timesteps=200, compile=True, checkpoint_interval=200, checkpoint_buffer=True))
    torch._dynamo.reset()
    on_cpu = script.train(tiny(script, total_timesteps=300, cuda=False, checkpoint_interval=100, checkpoint_buffer=True,
                               resume=first["checkpoint"]))
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
        assert r["ms"] > 0 and r["sps"] > 0 and r["peak_mb"] > 0 and r["graphs"] >= (0 if mode == "eager" else 1)
