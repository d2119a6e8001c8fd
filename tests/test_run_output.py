"""What both RL scripts print: a start-up line with the settings that set the cost, status lines with the recent SPS,
the last evaluation and an ETA, a warning when a CPU run will take hours, and per-episode lines only on request."""

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


@SCRIPTS
def test_progress_line_uses_the_recent_rate(script, tiny, first):
    p = script.Progress(total=1000, step=0, seconds=30)
    p.last = (100.0, 0)  # as if made at t = 100 s
    assert p.line(50, now=120.0) is None, "not before 30 s"
    # 300 steps in 60 s: 5 SPS, 700 steps to go: 140 s
    assert p.line(300, now=160.0) == "step 300/1000 (30.0%) | 5.0 SPS over 60.0 s | no evaluation yet | ETA 2m20s"
    p.eval = (250, 123.45)
    # the next window starts at the last line: 600 steps in 40 s is 15 SPS, whatever the average since the start
    assert p.line(900, now=200.0) == "step 900/1000 (90.0%) | 15.0 SPS over 40.0 s | eval 123.5 at step 250 | ETA 0m07s"
    assert script.duration(3 * 3600 + 125) == "3h02m" and script.duration(59.6) == "1m00s"


@SCRIPTS
def test_cpu_warning_only_for_hours_on_a_cpu(script, tiny, first):
    assert script.cpu_warning(torch.device("cpu"), 3000) is None
    assert script.cpu_warning(torch.device("cuda"), 10**6) is None
    assert script.cpu_warning(torch.device("cpu"), 50 * 3600).startswith("warning: on this CPU the training needs about 50h00m")


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
