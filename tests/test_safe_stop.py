"""Safe stops and resuming, for both RL scripts on real subprocesses: SIGINT and SIGTERM write a checkpoint, print
the command that resumes, and exit with status 75 (EXIT_STOPPED: resumable) without a traceback; `--resume PATH`
alone continues the run with the checkpoint's hyperparameters, to the right step, with one event per step across
both attempts; a stop in the last iteration completes the run."""

import glob
import os
import re
import signal
import subprocess
import sys

from dataclasses import asdict

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

TINY = [
    "--env-id",
    "Hopper-v4",
    "--num-envs",
    "2",
    "--learning-starts",
    "40",
    "--batch-size",
    "16",
    "--buffer-size",
    "5000",
    "--log-interval",
    "20",
    "--eval-interval",
    "0",
    "--eval-episodes",
    "2",
    "--progress-seconds",
    "0",
    "--no-cuda",
]
SDAC_TINY = ["--num-candidates", "2", "--num-reverse-samples", "4", "--diffusion-steps", "3"]
SCRIPTS = pytest.mark.parametrize(
    "script, extra", [pytest.param(sdac, SDAC_TINY, id="sdac"), pytest.param(sac, [], id="sac")]
)


def run(script, argv, cwd, **kw):
    return subprocess.Popen(
        [sys.executable, script.__file__, *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        **kw,
    )


@SCRIPTS
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_writes_a_checkpoint_and_resume_alone_continues(script, extra, sig, tmp_path):
    proc = run(script, [*TINY, *extra, "--total-timesteps", "1000000"], tmp_path)
    for line in proc.stdout:  # wait until training has begun (a status line after the warm-up)
        if (m := re.search(r"(\d+)/\d+ \[", line)) and int(m.group(1)) > 60:
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == sdac.EXIT_STOPPED == 75 and err == "", err
    assert f"{sig.name}: stopping after this iteration" in out and f"stopped by {sig.name} at global step" in out
    resume_cmd = out.split("To continue:\n")[1].splitlines()[0].split()
    assert resume_cmd[:2] == ["python", script.__file__] and resume_cmd[2] == "--resume"
    ckpt = resume_cmd[3]
    stopped_at = int(out.split(f"stopped by {sig.name} at global step ")[1].split(";")[0])
    import torch

    assert torch.load(tmp_path / ckpt, weights_only=True)["global_step"] == stopped_at
    # the printed command, with only a new total: the hyperparameters come from the checkpoint
    total = (stopped_at // 20 + 3) * 20  # a multiple of --log-interval, so the last event is at the total
    proc = run(script, [*resume_cmd[2:], "--total-timesteps", str(total)], tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err == "", err
    assert f"at global step {stopped_at}" in out and f"global_step={total}, eval_return=" in out
    run_dir = os.path.dirname(tmp_path / ckpt)
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("charts/SPS")]
    assert steps == sorted(set(steps)) and steps[-1] == total, "one event per step across both attempts"
    assert [e.step for e in acc.Scalars("eval/episodic_return")] == [total]


@SCRIPTS
def test_resume_takes_the_checkpoints_hyperparameters(script, extra, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert script.Args().checkpoint_interval == 50_000, "checkpoints by default, so a long run never loses it all"
    args = script.cli_args(
        [*TINY, *extra, "--total-timesteps", "80", "--checkpoint-interval", "80", "--save-model", "--gamma", "0.98"]
    )
    out = script.train(args)
    assert script.cli_args(["--resume", out["checkpoint"]]) == script.Args(
        **{**asdict(args), "resume": out["checkpoint"]}
    )
    resumed = script.cli_args([f"--resume={out['checkpoint']}", "--total-timesteps", "120"])
    assert resumed.gamma == 0.98 and resumed.total_timesteps == 120
    # a non-resumable change is named; a saved model is not a checkpoint, and says so
    with pytest.raises(SystemExit, match=r"--gamma 0.98 \(checkpoint\) vs 0.9 \(now\)"):
        script.train(script.cli_args(["--resume", out["checkpoint"], "--total-timesteps", "120", "--gamma", "0.9"]))
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    with pytest.raises(SystemExit, match="is not a checkpoint of .*: a saved model \\(--save-model\\)"):
        script.cli_args(["--resume", model])


@pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
def test_a_stop_during_the_last_iteration_completes_the_run(script, tmp_path, monkeypatch, capsys):
    """A signal during the final evaluation (the last iteration): nothing is left to resume, so the run ends as a
    finished one: its checkpoint at the total, --save-model written, no resume command (which would fail: "not before
    --total-timesteps"), and no "stopped by" line for benchmark.sh to count as resumable."""
    monkeypatch.chdir(tmp_path)
    stop, real = [], script.evaluate

    def evaluate_then_signal(*a, **k):
        out = real(*a, **k)
        stop.append("SIGINT")  # as stop_on_signals does when Ctrl-C comes during the evaluation
        return out

    monkeypatch.setattr(script, "evaluate", evaluate_then_signal)
    extra = {} if script is sac else dict(num_candidates=2, diffusion_steps=3)
    if script is dacer:
        extra = dict(diffusion_steps=3, entropy_samples=8)
    out = script.train(
        script.Args(
            env_id="Hopper-v4",
            num_envs=2,
            learning_starts=40,
            batch_size=16,
            buffer_size=1000,
            eval_interval=0,
            eval_episodes=2,
            total_timesteps=80,
            checkpoint_interval=1000,
            save_model=True,
            cuda=False,
            **extra,
        ),
        stop,
    )
    assert stop == ["SIGINT"] and out["global_step"] == 80 and "stopped by" not in capsys.readouterr().out
    assert glob.glob(f"{out['run_dir']}/*_model") and out["checkpoint"].endswith("checkpoint.pt")
    assert not out["stopped"]


@pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
def test_a_run_resumed_from_another_folder_continues_in_its_own(script, tmp_path, monkeypatch):
    """--resume with the checkpoint's path from another working folder: the run goes on in the checkpoint's run
    folder (its logs, its next checkpoints, its saved model), not in a new runs/ where the command was typed."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    extra = {} if script is sac else dict(num_candidates=2, diffusion_steps=3)
    if script is dacer:
        extra = dict(diffusion_steps=3, entropy_samples=8)
    tiny = dict(
        env_id="Hopper-v4",
        num_envs=2,
        learning_starts=40,
        batch_size=16,
        buffer_size=1000,
        eval_interval=0,
        eval_episodes=2,
        checkpoint_interval=60,
        cuda=False,
        **extra,
    )
    first = script.train(script.Args(**tiny, total_timesteps=60))
    monkeypatch.chdir(tmp_path / "b")
    ckpt = str(tmp_path / "a" / first["checkpoint"])
    resumed = script.train(script.Args(**tiny, total_timesteps=120, save_model=True, resume=ckpt))
    assert resumed["run_dir"] == os.path.dirname(ckpt) and resumed["checkpoint"] == ckpt
    assert glob.glob(os.path.join(os.path.dirname(ckpt), "*_model")) and not os.listdir(tmp_path / "b")


def test_a_second_ctrl_c_stops_at_once_in_one_line(tmp_path):
    """The first SIGINT asks for a stop after the iteration; a second one during that iteration (about a second at
    these settings) stops at once: one line on stderr, no traceback, exit status 130."""
    argv = [
        *TINY,
        "--num-candidates",
        "32",
        "--num-reverse-samples",
        "64",
        "--diffusion-steps",
        "20",
        "--batch-size",
        "256",
        "--total-timesteps",
        "100000",
        "--progress-seconds",
        "0",
    ]
    proc = run(sdac, argv, tmp_path)
    for line in proc.stdout:
        if (m := re.search(r"(\d+)/\d+ \[", line)) and int(m.group(1)) > 40:
            break
    proc.send_signal(signal.SIGINT)
    for line in proc.stdout:
        if "stopping after this iteration" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "stopped at once by a second signal: the run continues from its last checkpoint"


@SCRIPTS
def test_a_signal_after_the_checkpoint_check_stops_the_next_iteration_with_a_checkpoint(
    script, extra, tmp_path, monkeypatch
):
    """A signal that lands after an iteration has passed its checkpoint check (here: while the progress bar updates)
    must not print a resume command without a checkpoint: the next iteration writes one and stops."""
    monkeypatch.chdir(tmp_path)
    stop = []

    class LateSignal(script.tqdm):
        def update(self, n=1):
            if self.n >= 60 and not stop:
                stop.append("SIGTERM")
            return super().update(n)

    monkeypatch.setattr(script, "tqdm", LateSignal)
    args = script.cli_args([*TINY, *extra, "--total-timesteps", "200", "--checkpoint-interval", "0"])
    out = script.train(args, stop)
    assert out["stopped"] and out["checkpoint"] is not None, "a resume command needs a checkpoint"
    assert torch.load(out["checkpoint"], weights_only=True)["global_step"] == out["global_step"] == 64
