"""A resumed run is the same run (issue 36): stopped by a signal at a warm-up iteration, a training iteration or an
evaluation iteration, and resumed from its checkpoint (with the buffer), each RL script ends with the evaluations and
the SHA-256 of the final weights of the run that was never stopped. The checkpoint brings back the envs' simulators,
their steps in the episode and their random generators (episodes end and restart on either side of the stop), the
running episode statistics, and the Python, NumPy and torch generators. One machine, one process."""

import hashlib

import pytest
import torch

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac


def digest(path: str) -> str:
    """SHA-256 of every tensor of a saved model, in sorted order (as benchmarks/fingerprint.py)."""
    saved, h = torch.load(path, weights_only=True), hashlib.sha256()
    for key in sorted(k for k in saved if k not in ("args", "format")):
        tensors = saved[key].items() if isinstance(saved[key], dict) else [("", saved[key])]
        for name, t in sorted(tensors):
            h.update(f"{key}.{name}".encode() + t.contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
def test_a_stopped_and_resumed_run_ends_as_the_uninterrupted_one(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = {} if script is sac else dict(num_candidates=2, diffusion_steps=3, lambda_update_interval=10)
    if script is sdac:
        extra["num_reverse_samples"] = 4
    if script is dacer:
        extra = dict(diffusion_steps=3, entropy_samples=8, alpha_update_interval=10)

    def args(name, **kw):  # 60 iterations of 2 envs: random until step 40, evaluations at 50, 100 and 120
        return script.Args(
            env_id="Hopper-v4",
            num_envs=2,
            learning_starts=40,
            batch_size=16,
            buffer_size=1000,
            total_timesteps=120,
            eval_interval=50,
            eval_episodes=2,
            log_interval=20,
            cuda=False,
            checkpoint_interval=10**6,
            checkpoint_buffer=True,
            save_model=True,
            exp_name=name,
            **extra,
            **kw,
        )

    straight = script.train(args("straight"))
    real = script.crossed
    for name, iteration in [("warmup", 10), ("training", 30), ("evaluation", 25)]:  # steps 20, 60, 50
        stop, calls = [], []

        def signal_at(step, interval, num_envs):  # the log check, once per iteration: Ctrl-C arrives during this one
            if interval == 20:
                calls.append(1)
                if len(calls) == iteration:
                    stop.append("SIGINT")
            return real(step, interval, num_envs)

        monkeypatch.setattr(script, "crossed", signal_at)
        stopped = script.train(args(name), stop)
        monkeypatch.setattr(script, "crossed", real)
        assert stopped["stopped"] and stopped["global_step"] == 2 * iteration
        resumed = script.train(args(name, resume=stopped["checkpoint"]))
        assert resumed["eval_history"] == straight["eval_history"], name
        suffix = f"{script.ALGORITHM.lower()}_model"
        same = digest(f"{resumed['run_dir']}/{name}.{suffix}") == digest(f"{straight['run_dir']}/straight.{suffix}")
        assert same, f"stopped at the {name} iteration: other final weights"
