"""--capture-video, both RL scripts, on real subprocesses with MuJoCo rendering off-screen through OSMesa (CPU only;
.ci/run installs Debian's libosmesa6 where it is root): the MP4s are written, decode, have one frame per step of
env 0's episode, and show motion; without a working renderer the error is one line."""

import ctypes.util
import glob
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

import sac_continuous_action as sac
import sdac_continuous_action as sdac

TINY = [
    "--env-id",
    "Hopper-v4",
    "--num-envs",
    "1",
    "--learning-starts",
    "40",
    "--batch-size",
    "16",
    "--eval-episodes",
    "2",
    "--no-cuda",
    "--capture-video",
]
SCRIPTS = pytest.mark.parametrize(
    "script, extra",
    [
        pytest.param(
            sdac, ["--num-candidates", "2", "--num-reverse-samples", "4", "--diffusion-steps", "3"], id="sdac"
        ),
        pytest.param(sac, [], id="sac"),
    ],
)
needs_osmesa = pytest.mark.skipif(
    ctypes.util.find_library("OSMesa") is None,
    reason="no OSMesa library (Debian: libosmesa6; .ci/run installs it where root)",
)


def run(script, argv, cwd, gl="osmesa"):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run(
        [sys.executable, script.__file__, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "MUJOCO_GL": gl, "OMP_NUM_THREADS": "1"},
    )


@needs_osmesa
@SCRIPTS
def test_training_writes_one_video_per_evaluation_and_eval_only_one_frame_per_step(script, extra, tmp_path):
    proc = run(script, [*TINY, *extra, "--total-timesteps", "100", "--eval-interval", "50", "--save-model"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    videos = sorted(glob.glob(str(tmp_path / "videos" / "*" / "*.mp4")))
    assert [os.path.basename(v) for v in videos] == ["eval_step100.mp4", "eval_step50.mp4"]
    for v in videos:
        frames = iio.imread(v)
        assert frames.ndim == 4 and frames.shape[0] > 5 and frames.shape[-1] == 3
        assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean() > 0.01, "the hopper moves"
    (model,) = glob.glob(str(tmp_path / "runs" / "*" / "*_model"))
    proc = run(script, ["--eval-only", "--load-model", model, "--eval-episodes", "1", "--capture-video"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    length = float(proc.stdout.split("length ")[-1])
    (video,) = glob.glob(str(tmp_path / "videos" / "eval_only" / "*.mp4"))
    assert iio.imread(video).shape[0] == length, "the first frame and one per step but the last (the env then resets)"


@SCRIPTS
def test_no_renderer_is_a_one_line_error(script, extra, tmp_path):
    proc = run(script, [*TINY, *extra, "--total-timesteps", "100"], tmp_path, gl="no-such-backend")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert (
        "--capture-video cannot render env 'Hopper-v4'" in proc.stderr and "(MUJOCO_GL=no-such-backend: " in proc.stderr
    )
    assert not os.path.exists(tmp_path / "runs") and not os.path.exists(tmp_path / "videos")
