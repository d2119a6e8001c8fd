"""What the RL scripts do with bad input and failing runs, each through its own copy of the code: one-line errors
(also from the command line), nothing written before the input is checked, and a diverging run that stops and keeps
its last good checkpoint."""

import glob
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
SCRIPTS = pytest.mark.parametrize(
    "script, error, name, tiny",
    [
        pytest.param(
            sdac,
            SystemExit,
            "SDAC",
            dict(COMMON, num_candidates=2, num_reverse_samples=4, diffusion_steps=4, lambda_update_interval=10),
            id="sdac",
        ),
        pytest.param(sac, SystemExit, "SAC", COMMON, id="sac"),
        pytest.param(
            dpmd,
            SystemExit,
            "DPMD",
            dict(COMMON, num_candidates=2, diffusion_steps=4, lambda_update_interval=10),
            id="dpmd",
        ),
        pytest.param(
            dacer,
            SystemExit,
            "DACER",
            dict(COMMON, diffusion_steps=4, entropy_samples=8, alpha_update_interval=10),
            id="dacer",
        ),
    ],
)


@SCRIPTS
def test_non_finite_loss_stops_the_run_naming_step_and_checkpoint(script, error, name, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = script.Args(**tiny, total_timesteps=400, checkpoint_interval=40, q_lr=1e30)  # the critic blows up at once
    with pytest.raises(error, match=r"non-finite .* at global step \d+.* Last checkpoint: runs/.*/checkpoint.pt"):
        script.train(args)
    ckpt = torch.load(glob.glob("runs/*/checkpoint.pt")[0], weights_only=True)
    assert ckpt["global_step"] == 40, "the last good checkpoint is kept, not overwritten with NaN weights"


@SCRIPTS
@pytest.mark.parametrize(
    "env_id, message",
    [
        ("NoSuchEnv-v0", "cannot create env 'NoSuchEnv-v0'"),
        ("Pusher-v4", "use Pusher-v5"),
        ("CartPole-v1", "needs a continuous \\(Box\\) action space"),
    ],
)
def test_unsuitable_envs_get_clear_errors(script, error, name, tiny, env_id, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        script.train(script.Args(**{**tiny, "env_id": env_id}))
    assert not os.path.exists("runs"), "nothing is written before the input is checked"


class UnboundedEnv(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


gym.register("UnboundedActions-v0", entry_point=UnboundedEnv, disable_env_checker=True)


@SCRIPTS
def test_unbounded_action_space_is_rejected(script, error, name, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match="needs a bounded Box action space with finite low < high"):
        script.train(script.Args(**{**tiny, "env_id": "UnboundedActions-v0"}))
    assert not os.path.exists("runs")


@SCRIPTS
def test_bad_checkpoints_get_clear_errors(script, error, name, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(error, match=f"^error: garbage.pt is not a checkpoint of {name}: not a file torch.save wrote"):
        script.train(script.Args(**tiny, resume="garbage.pt"))
    other = "sac" if script is sdac else "sdac"  # another script's checkpoint
    torch.save({"format": f"{other}-checkpoint-v4"}, tmp_path / "other.pt")
    with pytest.raises(error, match=f"other.pt is not a checkpoint of {name}: {other}-checkpoint-v4"):
        script.train(script.Args(**tiny, resume="other.pt"))
    torch.save({"format": f"{name.lower()}-checkpoint-v1"}, tmp_path / "old.pt")  # a format this script never reads
    with pytest.raises(error, match=f"is not a checkpoint of {name}"):
        script.train(script.Args(**tiny, resume="old.pt"))
    out = script.train(script.Args(**{**tiny, "eval_interval": 0}, total_timesteps=100, checkpoint_interval=100))
    with pytest.raises(error, match=r"incompatible .*--batch-size 16 \(checkpoint\) vs 32 \(now\)"):
        script.train(script.Args(**{**tiny, "batch_size": 32}, total_timesteps=200, resume=out["checkpoint"]))
    with pytest.raises(error, match="not before --total-timesteps"):
        script.train(script.Args(**tiny, total_timesteps=100, resume=out["checkpoint"]))


@SCRIPTS
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--total-timesteps", "-5"], "error: --total-timesteps must be >= 1"),
        (["--env-id", "CartPole-v1"], "error: {name} needs a continuous (Box) action space"),
        (["--resume", "missing.pt"], "error: checkpoint not found: missing.pt"),
        (
            ["--env-id", "Hopper-v4", "--resume", "garbage.pt"],
            "error: garbage.pt is not a checkpoint of {name}: not a file torch.save wrote",
        ),
    ],
)
def test_command_line_errors_are_one_line_without_traceback(script, error, name, tiny, argv, message, tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    proc = subprocess.run(
        [sys.executable, script.__file__, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    # one line: no traceback, and no library warning before it (gymnasium's "-v4 is out of date", for one)
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and message.format(name=name) in proc.stderr
    assert "Error" not in proc.stderr and "torch.save(" not in proc.stderr, "what the file is, not torch's internals"
    assert not os.path.exists(tmp_path / "runs")


@SCRIPTS
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(q_lr=float("inf")), r"--q-lr must be finite, got inf"),
        (dict(gamma=float("nan")), r"--gamma must be finite, got nan"),
        (dict(seed=-1), r"--seed must be in \[0, 2\*\*32\), got -1"),
        (dict(seed=2**32), r"--seed must be in \[0, 2\*\*32\), got 4294967296"),
        (dict(exp_name="a/b"), r"--exp-name must be a name, not a path .*got 'a/b'"),
        (dict(exp_name=".."), r"--exp-name must be a name, not a path"),
        (dict(learning_starts=400, total_timesteps=400), r"--learning-starts \(400\) must be below --total-timesteps"),
    ],
)
def test_options_that_would_fail_late_or_silently_are_refused_first(script, error, name, tiny, change, message):
    """Each of these once gave a traceback, wrote outside runs/, trained nothing while reporting returns, or wrote
    inf weights into the checkpoint it named as the last good one (issue 36)."""
    with pytest.raises(error, match=message):
        script.validate_args(script.Args(**{**tiny, **change}))


@SCRIPTS
def test_a_replay_buffer_larger_than_memory_is_one_line(script, error, name, tiny):
    with pytest.raises(error, match=r"cannot hold a replay buffer of 10000000000000 transitions \(.* GiB\) on cpu"):
        script.ReplayBuffer(10**13, 11, 3, torch.device("cpu"))


@SCRIPTS
def test_a_run_folder_that_cannot_be_written_is_one_line(script, error, name, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("runs")
    (tmp_path / "runs" / "taken").write_text("a file where the run folder would go")
    with pytest.raises(error, match="cannot write to the run folder runs/taken: File exists"):
        script.open_logs(script.Args(**tiny), "taken", "runs/taken", 0, resumed=False)
