"""benchmarks/gpu_run.sh, the one device call, in its no-GPU mode on a small budget: a stage that ignores SIGINT is
killed at its cap and the stages after it still run; what would not come back from the device (a name with a space)
is named; a broken environment stops it at the smoke stage with its reason and exit status 3."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "gpu_run.sh")


def run(out, **env):
    settings = dict(OUT=str(out), BUDGET="60", KILL_AFTER="2", MIN_STAGE="3")
    return subprocess.run(
        ["bash", SCRIPT], env={**os.environ, **settings, **env}, capture_output=True, text=True, timeout=120
    )


def test_a_hanging_stage_is_killed_at_its_cap_and_the_next_stage_runs(tmp_path):
    (tmp_path / "odd name.txt").write_text("")  # (the device's $OUT starts empty; this one would not come back)
    r = run(tmp_path, STAGES="smoke probe test_cuda", HANG="probe", CAPS="probe=3")
    summary = (tmp_path / "summary.txt").read_text()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "smoke: done" in summary and "gym.make(Ant-v4), reset, step: ok" in (tmp_path / "env.txt").read_text()
    assert "probe (cap 3s)" in summary and "probe: cap reached, killed 2 s after SIGINT" in summary
    assert "test_cuda: done" in summary and "skipped" in (tmp_path / "test_cuda.txt").read_text()
    assert "will not come back: 'odd name.txt'" in summary
    assert "done: 5 files" in summary and "2 stage(s) failed, cut or skipped" in summary


def test_a_broken_environment_stops_at_the_smoke_stage(tmp_path):
    """Every import works but making the env fails (as MUJOCO_GL=egl without libEGL would): exit 3 at the smoke
    stage, the reason in the summary, no later stage started."""
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "sitecustomize.py").write_text(
        "import gymnasium\n\ndef make(*a, **k):\n"
        "    raise AttributeError('planted: no eglQueryString')\n\n"
        "gymnasium.make = make\n"
    )
    r = run(tmp_path / "out", PYTHONPATH=str(planted))
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert r.returncode == 3 and "smoke FAILED; the end of env.txt" in summary, r.stdout + r.stderr
    assert "planted: no eglQueryString" in summary and not (tmp_path / "out" / "probe.txt").exists()


def test_a_budget_too_small_for_a_stage_skips_it(tmp_path):
    r = run(tmp_path, STAGES="probe", BUDGET="10", MIN_STAGE="20")
    assert r.returncode == 1 and "skip probe" in (tmp_path / "summary.txt").read_text()
