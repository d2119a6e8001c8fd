"""A run of each RL script, "crashed" after its last checkpoint and resumed: the same run directory, the evaluation
history up to the checkpoint kept, and logs with no step written twice; every object and random state restored as
saved; a buffer checkpointed at the size of what it holds. Parametrized over the scripts, each through its own copy
of the code."""

import copy
import dataclasses
import glob
import os
import random

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

COMMON = dict(
    env_id="Hopper-v4",
    num_envs=2,
    learning_starts=60,
    batch_size=16,
    log_interval=20,
    eval_interval=100,
    eval_episodes=2,
    buffer_size=1000,
    cuda=False,
)
LOGGED = [
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/SPS",
    "losses/qf1_values",
    "losses/qf2_values",
    "losses/qf1_loss",
    "losses/qf2_loss",
    "losses/qf_loss",
    "losses/actor_loss",
    "losses/target_q",
    "eval/episodic_return",
    "eval/episodic_length",
]


def scalars(run_dir: str) -> dict[str, list[int]]:
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize(
    "script, tiny, coefficient, logged",
    [
        pytest.param(
            sdac,
            dict(COMMON, num_candidates=2, num_reverse_samples=4, diffusion_steps=4, lambda_update_interval=10),
            "lambda",
            ["charts/policy_lr", "losses/lambda", "losses/rssm_ess", "losses/rssm_weight_std", "losses/rssm_q_mean"],
            id="sdac",
        ),
        pytest.param(sac, COMMON, "alpha", ["losses/alpha", "losses/alpha_loss", "losses/entropy"], id="sac"),
        pytest.param(
            dpmd,
            dict(COMMON, num_candidates=2, diffusion_steps=4, lambda_update_interval=10),
            "lambda",
            [
                "charts/policy_lr",
                "losses/lambda",
                "losses/dpmd_weight_clip_frac",
                "losses/dpmd_weight_std",
                "losses/dpmd_q_running_mean",
            ],
            id="dpmd",
        ),
        pytest.param(
            dacer,
            # (32 actions per state: with 8 the 3 components are near-degenerate, the entropy far below its target)
            dict(COMMON, diffusion_steps=4, entropy_samples=32, alpha_update_interval=10),
            "alpha",
            ["charts/policy_lr", "losses/alpha", "losses/entropy", "losses/sigma_bar1", "losses/qf1_std"],
            id="dacer",
        ),
    ],
)
def test_train_checkpoint_crash_and_resume(script, tiny, coefficient, logged, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = script.Args(**tiny, total_timesteps=300, checkpoint_interval=200, checkpoint_buffer=True, save_model=True)
    out = script.train(args)
    run_dir = out["run_dir"]
    assert out["global_step"] == 300
    assert [step for step, _, _ in out["eval_history"]] == [100, 200, 300]
    initial = args.alpha_init if script in (sac, dacer) else args.lambda_init
    assert out[coefficient] < initial, f"{coefficient} tuning ran and moved it towards its target"
    assert out["seconds_per_iteration"] > 0
    assert os.path.isfile(f"{run_dir}/{args.exp_name}.{script.ALGORITHM.lower()}_model")
    ckpt = torch.load(out["checkpoint"], weights_only=True)
    assert ckpt["global_step"] == 200 and ckpt["buffer"]["size"] == 200 and ckpt["num_updates"] > 0
    assert not glob.glob(f"{run_dir}/*.tmp"), "checkpoints are written to a temp file, then renamed"
    keys = scalars(run_dir)
    assert set(LOGGED + logged) <= set(keys), f"missing: {set(LOGGED + logged) - set(keys)}"

    # "crash" after step 300: resume from the step-200 checkpoint, run on to 400 in the same run directory
    resumed = script.train(dataclasses.replace(args, total_timesteps=400, resume=out["checkpoint"]))
    assert resumed["run_dir"] == run_dir and resumed["global_step"] == 400
    assert [step for step, _, _ in resumed["eval_history"]] == [100, 200, 300, 400], "history up to the checkpoint kept"
    keys = scalars(run_dir)
    for tag, steps in keys.items():  # events after the checkpoint were purged, then written once by the resumed run
        assert steps == sorted(steps), f"{tag} has unordered steps after resume"
        # one value per step, except episodes of several envs that end on the same step
        most = args.num_envs if tag.startswith("charts/episodic") else 1
        assert max(steps.count(s) for s in steps) <= most, f"{tag} has duplicated steps after resume"
    assert max(keys["eval/episodic_return"]) == 400 and max(keys["losses/qf_loss"]) == 400


@pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
def test_checkpoint_holds_the_buffers_transitions_not_its_capacity(script, tmp_path, monkeypatch):
    """--checkpoint-buffer writes what the buffer holds: 100 transitions of a 200k buffer cost ~10 KB, not 22 MB."""
    monkeypatch.chdir(tmp_path)
    tiny = dict(
        COMMON,
        buffer_size=200_000,
        learning_starts=98,
        total_timesteps=100,
        checkpoint_interval=100,
        checkpoint_buffer=True,
        eval_interval=0,
    )
    if script is dacer:
        tiny.update(diffusion_steps=3, entropy_samples=8)
    elif script is not sac:
        tiny.update(num_candidates=2, diffusion_steps=3, **({"num_reverse_samples": 4} if script is sdac else {}))
    out = script.train(script.Args(**tiny))
    ckpt = torch.load(out["checkpoint"], weights_only=True)
    assert ckpt["buffer"]["size"] == 100
    torch.save({**ckpt, "buffer": None}, tmp_path / "without_buffer.pt")
    buffer_bytes = os.path.getsize(out["checkpoint"]) - os.path.getsize(tmp_path / "without_buffer.pt")
    obs_dim, act_dim = 11, 3  # Hopper-v4
    held = 100 * (2 * obs_dim + act_dim + 2) * 4  # s, a, r, s', done as float32
    # (give or take the few bytes by which the pickle and the zip records of the two files differ)
    assert held - 256 <= buffer_bytes < 1.5 * held + 8192, f"{buffer_bytes} bytes for {held} bytes of transitions"


def assert_same(restored, saved, what):
    """restored (a live object's state) equals saved (the checkpoint's), tensors exactly, recursively."""
    if isinstance(saved, torch.Tensor):
        assert isinstance(restored, torch.Tensor) and torch.equal(restored.cpu(), saved.cpu()), what
    elif isinstance(saved, dict):
        assert set(restored) == set(saved), f"{what}: keys {set(restored) ^ set(saved)}"
        for k in saved:
            assert_same(restored[k], saved[k], f"{what}.{k}")
    elif isinstance(saved, (list, tuple)):
        assert len(restored) == len(saved), what
        for i, (x, y) in enumerate(zip(restored, saved)):
            assert_same(x, y, f"{what}[{i}]")
    elif isinstance(saved, np.ndarray):
        np.testing.assert_array_equal(restored, saved, what)
    else:
        assert float(restored) == float(saved) if isinstance(saved, float) else restored == saved, what


@pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
def test_resume_restores_every_object_and_the_random_state(script, tmp_path, monkeypatch):
    """Right after a resume restores them, every object of train's `state` (networks, EMA policy, target critics,
    lambda or alpha, the optimisers with their moments, step counts and lr, DPMD's running Q statistics, DACER's
    sigma_bar, the replay buffer) and the Python, NumPy and torch random states equal what the checkpoint holds.
    Catches an object left out of the restore, an optimiser's state or lr not restored, the RNG not restored."""
    monkeypatch.chdir(tmp_path)
    tiny = dict(
        COMMON, total_timesteps=200, checkpoint_interval=200, checkpoint_buffer=True, eval_interval=0, policy_lr=1e-3
    )
    if script is not sac:
        tiny.update(diffusion_steps=3, policy_lr_decay_begin=5, policy_lr_decay_steps=10)
    if script in (sdac, dpmd):
        tiny.update(
            num_candidates=2, lambda_update_interval=10, **({"num_reverse_samples": 4} if script is sdac else {})
        )
    if script is dacer:
        tiny.update(entropy_samples=8, alpha_update_interval=10)
    out = script.train(script.Args(**tiny))
    ckpt = torch.load(out["checkpoint"], weights_only=True)
    seen = {}
    real = script.restore_checkpoint

    def spy(ckpt_, state, args):
        counters = real(ckpt_, state, args)
        seen["state"] = {
            name: (obj.detach().clone() if isinstance(obj, torch.Tensor) else copy.deepcopy(obj.state_dict()))
            for name, obj in state.items()
        }
        seen["rng"] = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        return counters

    monkeypatch.setattr(script, "restore_checkpoint", spy)
    script.train(script.Args(**{**tiny, "total_timesteps": 210}, resume=out["checkpoint"]))
    state_names = {"actor", "qf", "qf_target", "q_optimizer", "actor_optimizer", "buffer"}
    assert state_names <= set(seen["state"]) and set(seen["state"]) <= set(ckpt)
    assert ckpt["actor_optimizer"]["param_groups"][0]["lr"] != 1e-3 or script is sac, "the lr schedule had moved"
    for name, restored in seen["state"].items():
        assert_same(restored, ckpt[name], name)
    python, numpy_state, torch_state = seen["rng"]
    assert python == ckpt["rng"]["python"] and torch.equal(torch_state, ckpt["rng"]["torch"])
    _, key, *rest = numpy_state  # ("MT19937", key, pos, has_gauss, cached_gaussian), the key stored as a tensor
    assert_same([torch.from_numpy(key.astype(np.int64)), *rest], list(ckpt["rng"]["numpy"]), "numpy rng")
