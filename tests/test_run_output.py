"""What the RL scripts print: a start-up line with the settings that set the cost, tqdm's progress bar (steps, rate,
ETA, the last evaluation as its postfix), one line per evaluation, per-episode lines only on request, and the time
per training iteration at the end."""

import re

import pytest

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

TINY = dict(
    env_id="Hopper-v4",
    num_envs=2,
    learning_starts=40,
    batch_size=16,
    log_interval=20,
    eval_interval=100,
    eval_episodes=2,
    buffer_size=1000,
    cuda=False,
    total_timesteps=200,
    progress_seconds=0,
)
DIFFUSION = dict(num_candidates=2, diffusion_steps=3)
SCRIPTS = pytest.mark.parametrize(
    "script, tiny, first",
    [
        pytest.param(
            sdac, dict(TINY, **DIFFUSION, num_reverse_samples=4), "SDAC on Hopper-v4: N=2, K=4, T=3", id="sdac"
        ),
        pytest.param(dpmd, dict(TINY, **DIFFUSION), "DPMD on Hopper-v4: N=2, T=3", id="dpmd"),
        pytest.param(dacer, dict(TINY, diffusion_steps=3, entropy_samples=8), "DACER on Hopper-v4: T=3", id="dacer"),
        pytest.param(sac, TINY, "SAC on Hopper-v4", id="sac"),
    ],
)


@SCRIPTS
def test_startup_progress_evaluations_and_episodes_on_request(script, tiny, first, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = script.train(script.Args(**tiny))
    text = capsys.readouterr().out
    lines = re.split(r"[\r\n]", text)
    assert lines[0].startswith(f"{first} | cpu | runs/")
    bars = [re.search(r"(\d+)/200 \[", ln) for ln in lines]
    steps = [int(m.group(1)) for m in bars if m]
    assert steps[-1] == 200 and len(set(steps)) >= 50, "the bar moves every iteration with --progress-seconds 0"
    evals = [ln for ln in lines if ln.startswith("global_step=")]
    assert [ln.split(",")[0] for ln in evals] == ["global_step=100", "global_step=200"]
    assert [float(ln.split("eval_return=")[1].split()[0]) for ln in evals] == [
        round(r, 1) for _, r, _ in out["eval_history"]
    ]
    assert re.search(r"200/200 \[.*eval=", text), "the last evaluation is the bar's postfix"
    assert f"time per training iteration: {out['seconds_per_iteration'] * 1000:.1f} ms" in text
    assert "episodic_return" not in text, "episodes go to TensorBoard only, unless asked for"
    script.train(script.Args(**{**tiny, "print_episodes": True, "progress_seconds": 1e9}))
    assert "episodic_return=" in capsys.readouterr().out
