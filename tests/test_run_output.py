"""What both RL scripts print: a start-up line with the settings that set the cost, status lines with the recent SPS,
the last evaluation and an ETA from the training iterations alone, a warning when a CPU run will take hours, and
per-episode lines only on request."""

import pytest
import torch

import sac_continuous_action as sac
import sdac_continuous_action as sdac

TINY = dict(env_id="Hopper-v4", num_envs=2, learning_starts=40, batch_size=16, log_interval=20, eval_interval=100,
            eval_episodes=2, buffer_size=1000, cuda=False, total_timesteps=200, progress_seconds=0)  # fmt: skip
SCRIPTS = pytest.mark.parametrize(
    "script, tiny, first",
    [pytest.param(sdac, dict(TINY, num_candidates=2, num_reverse_samples=4, diffusion_steps=3),
                  "SDAC on Hopper-v4: N=2, K=4, T=3 | 2 envs, 1 update(s) per vector step | 200 env steps, the first "
                  "40 random | cpu | runs/", id="sdac"),
     pytest.param(sac, TINY, "SAC on Hopper-v4 | 2 envs, 1 update(s) per vector step | 200 env steps, the first 40 "
                  "random | cpu | runs/", id="sac")],
)  # fmt: skip


def fake_run(script, progress, iterations, seconds_each, start_time):
    """Training iterations `iterations`, each taking seconds_each, the first beginning at start_time."""
    for k, i in enumerate(iterations):
        progress.training_iteration(i, start_time + k * seconds_each)
    return start_time + len(iterations) * seconds_each


@SCRIPTS
def test_status_line_recent_rate_and_eta_from_training_iterations_only(script, tiny, first):
    args = script.Args(total_timesteps=10_000, num_envs=5, progress_seconds=30)
    p = script.Progress(args, step=0, device=torch.device("cuda"), now=0.0)
    # the random warm-up: 5000 env steps (1000 iterations) in 10 s, no training iteration yet
    assert p.line(2500, now=20.0) is None, "not before 30 s"
    assert p.line(5000, now=30.0) == "step 5000/10000 (50.0%) | 166.7 SPS over 30.0 s | no evaluation yet | ETA once training is timed"
    # training from iteration 1001 at 1 s each: the first 10 are not timed (compilation), 1011..1030 are
    now = fake_run(script, p, range(1001, 1031), 1.0, start_time=30.0)
    assert p.seconds_per_iteration(now) == pytest.approx(1.0)
    p.eval = (5000, 123.45)
    # 150 steps in 30 s is 5 SPS; 970 iterations left at 1 s each: 16m10s (the warm-up's pace would say 1m37s)
    assert p.line(5150, now=now) == "step 5150/10000 (51.5%) | 5.0 SPS over 30.0 s | eval 123.5 at step 5000 | ETA 16m10s"
    assert script.duration(3 * 3600 + 125) == "3h02m" and script.duration(59.6) == "1m00s"


@SCRIPTS
def test_evaluations_do_not_count_as_training_time(script, tiny, first, monkeypatch):
    args = script.Args(total_timesteps=10_000, num_envs=5)
    p = script.Progress(args, step=0, device=torch.device("cuda"), now=0.0)
    now = fake_run(script, p, range(1, 31), 2.0, start_time=0.0)
    clock = iter([now, now + 100.0])  # an evaluation of 100 s
    monkeypatch.setattr(script.time, "time", lambda: next(clock))
    with p.paused():
        pass
    assert p.seconds_per_iteration(now + 100.0) == pytest.approx(2.0)


@SCRIPTS
@pytest.mark.parametrize("device, seconds_each, warns", [("cpu", 1.0, True), ("cpu", 0.001, False), ("cuda", 1.0, False)])
def test_cpu_warning_once_when_the_rest_takes_hours(script, tiny, first, device, seconds_each, warns, capsys):
    args = script.Args(total_timesteps=100_000, num_envs=5)  # 20k iterations
    p = script.Progress(args, step=0, device=torch.device(device), now=0.0)
    fake_run(script, p, range(1, 41), seconds_each, start_time=0.0)
    out = capsys.readouterr().out
    # after 10 timed iterations (11..20) at 1 s each, iteration 21 of 20000 begins: 19980 iterations, 5h33m left
    expected = "warning: on this CPU the training needs about 5h33m more; the official settings are a GPU job"
    assert (out.count("warning:") == 1 and out.startswith(expected)) if warns else out == ""


@SCRIPTS
def test_stdout_startup_status_and_episodes_on_request(script, tiny, first, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script.train(script.Args(**tiny))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(first)
    status = [ln for ln in lines if ln.startswith("step ")]
    assert len(status) == 10 and status[-1].startswith("step 200/200 (100.0%)") and "eval" in status[-1]
    assert not any("episodic_return" in ln for ln in lines), "episodes go to TensorBoard only, unless asked for"
    script.train(script.Args(**{**tiny, "print_episodes": True, "progress_seconds": 1e9}))
    lines = capsys.readouterr().out.splitlines()
    assert any("episodic_return=" in ln for ln in lines) and not any(ln.startswith("step ") for ln in lines)
