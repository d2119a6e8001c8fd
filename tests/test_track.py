"""--track, both RL scripts: a Weights & Biases run in offline mode (no network needed) named after the run folder,
with the arguments as its config and the TensorBoard scalars synced; without wandb, a one-line error."""

import glob
import os
import subprocess
import sys

import pytest

import sac_continuous_action as sac
import sdac_continuous_action as sdac

SCRIPTS = pytest.mark.parametrize(
    "script, error, extra",
    [
        pytest.param(
            sdac,
            SystemExit,
            ["--num-candidates", "2", "--num-reverse-samples", "4", "--diffusion-steps", "3"],
            id="sdac",
        ),
        pytest.param(sac, SystemExit, [], id="sac"),
    ],
)


@SCRIPTS
def test_track_writes_an_offline_wandb_run_with_config_and_scalars(script, error, extra, tmp_path):
    pytest.importorskip("wandb")
    argv = [
        "--env-id",
        "Hopper-v4",
        "--num-envs",
        "1",
        "--learning-starts",
        "40",
        "--batch-size",
        "16",
        "--no-cuda",
        "--total-timesteps",
        "100",
        "--eval-interval",
        "50",
        "--eval-episodes",
        "2",
        "--log-interval",
        "50",
        "--track",
        "--wandb-project-name",
        "test-project",
        *extra,
    ]
    proc = subprocess.run(
        [sys.executable, script.__file__, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = glob.glob(str(tmp_path / "runs" / "*"))
    (log,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "*.wandb"))
    assert os.path.basename(log) == f"run-{os.path.basename(run_dir)}.wandb", (
        "the wandb run is named after the run folder"
    )
    data = open(log, "rb").read()
    for needle in (b"test-project", b"wandb_project_name", b"Hopper-v4", b"eval/episodic_return", b"charts/SPS"):
        assert needle in data, needle


@SCRIPTS
def test_track_without_wandb_is_a_one_line_error(script, error, extra, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(
        error, match=r"--track could not start Weights & Biases \(ModuleNotFoundError: .*pip install wandb"
    ):
        script.open_logs(script.Args(track=True), "run", "runs/run", 0, resumed=False)
    assert not os.path.exists("runs"), "nothing written"


@SCRIPTS
def test_track_that_cannot_start_wandb_is_a_one_line_error(script, error, extra, monkeypatch, tmp_path):
    """No API key and no WANDB_MODE=offline: wandb.init raises (UsageError, or a network error): one line that says
    what to do, not wandb's traceback."""
    import types

    monkeypatch.chdir(tmp_path)
    fake = types.ModuleType("wandb")

    def init(**kw):
        raise RuntimeError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    fake.init = init
    monkeypatch.setitem(sys.modules, "wandb", fake)
    message = r"--track could not start Weights & Biases \(RuntimeError: api_key not configured .*\): pip install wandb, run `wandb login`"
    with pytest.raises(error, match=message + ", or set WANDB_MODE=offline"):
        script.open_logs(script.Args(track=True), "run", "runs/run", 0, resumed=False)
