"""benchmarks/speed.py: every algorithm's setting measures (a few iterations on CPU), and the authors' timing is parsed
from their harness's line or reported as an error when it prints none."""

import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import speed  # noqa: E402


@pytest.mark.parametrize("name", ["sdac cpu", "dpmd study", "sac"])
def test_measure_every_algorithm(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module, setting = speed.SETTINGS[name]
    r = speed.measure(module, setting, speed.MODES["eager"], "Pendulum-v1", iterations=2)
    assert r["ms"] > 0 and r["sps"] > 0
    assert (r["peak_mb"] is not None and r["peak_mb"] > 0) if torch.cuda.is_available() else r["peak_mb"] is None


def fake_tool(tmp_path, body: str) -> str:
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/usr/bin/env bash\n" + body + "\n")
    return str(tool)


def test_official_timing_parsed(tmp_path):
    tool = fake_tool(tmp_path, 'echo "time per training iteration: 12.5 ms (iterations 11..20)"')
    r = speed.measure_official(tool, "dpmd", dict(num_candidates=4, diffusion_steps=10), "Hopper-v4", 10)
    assert r["ms"] == 12.5


def test_official_without_timing_is_an_error(tmp_path):
    tool = fake_tool(tmp_path, 'echo "no such env" >&2; exit 3')
    with pytest.raises(RuntimeError, match="exit 3"):
        speed.measure_official(tool, "sdac", dict(num_candidates=4, diffusion_steps=10), "Hopper-v4", 10)


def test_official_gets_the_algorithm(tmp_path):
    log = tmp_path / "args"
    tool = fake_tool(tmp_path, f'echo "$@" > {log}; echo "time per training iteration: 1.0 ms"')
    speed.measure_official(tool, "dpmd", dict(num_candidates=4, diffusion_steps=10), "Walker2d-v4", 10)
    args = log.read_text().split()
    assert args[args.index("--alg") + 1] == "dpmd" and args[args.index("--num_particles") + 1] == "4"
