"""benchmarks/compare_official.py and compare_cleanrl.py on runs with known values. compare_official: the authors' steps
are shifted by their warm-up, the table's final/best are right, their logs are copied so the report can be rewritten
from the copies alone. compare_cleanrl: windowed training returns and the SPS ratio."""

import os
import sys

import pytest
from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import compare_cleanrl  # noqa: E402
import compare_official  # noqa: E402


def official_run(folder, seed, returns, start=5000):
    os.makedirs(folder)
    with open(f"{folder}/config.yaml", "w") as f:
        f.write(f"alg: sdac\nseed: {seed}\nstart_step: {start}\n")
    with open(f"{folder}/log.csv", "w") as f:
        f.write("step,avg_ret,std_ret\n" + "".join(f"{2500 * (i + 1)},{r},1.0\n" for i, r in enumerate(returns)))
    with open(f"{folder}/update_scalars.csv", "w") as f:
        f.write("tag,step,value\nupdate/q_weights_std,10000,0.002\nupdate/alpha,10000,4.5\n")


def our_run(root, seed, returns):
    run_dir = f"{root}/Hopper-v4__sdac__{seed}__1"
    w = SummaryWriter(run_dir)
    for i, r in enumerate(returns):  # ours count the warm-up: evaluations at 2500, 5000, ...
        w.add_scalar("eval/episodic_return", r, 2500 * (i + 1))
    for step in range(5500, 10001, 500):
        w.add_scalar("losses/rssm_weight_std", 0.001 if step <= 7500 else 0.003, step)
    w.close()
    return run_dir


def test_compare_official_shifts_steps_and_summarises(tmp_path):
    off = [tmp_path / "off1", tmp_path / "off2"]
    official_run(off[0], 1, [10, 30, 20])  # at 7500, 10000, 12500 on our axis
    official_run(off[1], 2, [20, 50, 40])
    ours = [our_run(tmp_path / "runs", s, r) for s, r in [(1, [1, 2, 15, 35, 25]), (2, [1, 2, 25, 45, 35])]]
    out = tmp_path / "out"
    assert compare_official.main(["--official", *map(str, off), "--ours", *ours, "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    # common steps 7500..12500; authors final 20, 40 -> 30 +- 10; best 30, 50 -> 40 +- 10; ours final 25, 35; best 35, 45
    assert "| authors' code (JAX) | 1, 2 | 30.0 +- 10.0 | 40.0 +- 10.0 | 20.0/30.0, 40.0/50.0 |" in report
    assert "| ours (PyTorch) | 1, 2 | 30.0 +- 5.0 | 40.0 +- 5.0 | 25.0/35.0, 35.0/45.0 |" in report
    assert "| 7500 | 10.0 | 20.0 | 15.0 | 25.0 |" in report
    # weights: ours averaged over (5000, 10000]: five logs at 0.001 and five at 0.003
    assert "| 10000 | 0.002 | 0.002 |" in report
    assert (out / "curves.png").stat().st_size > 0
    # the copies alone rebuild the same table
    copies = sorted(str(p) for p in (out / "official").iterdir())
    assert compare_official.main(["--official", *copies, "--ours", *ours, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text().splitlines()[:8] == report.splitlines()[:8]


def test_compare_official_needs_common_steps(tmp_path):
    official_run(tmp_path / "off", 1, [10])
    ours = our_run(tmp_path / "runs", 1, [])
    with pytest.raises(SystemExit):
        compare_official.main(["--official", str(tmp_path / "off"), "--ours", ours, "--out", str(tmp_path / "o")])


def training_run(root, name, seed, returns, sps):
    run_dir = f"{root}/Hopper-v4__{name}__{seed}__1"
    w = SummaryWriter(run_dir)
    for i, r in enumerate(returns):  # one episode every 1000 steps
        w.add_scalar("charts/episodic_return", r, 1000 * (i + 1))
    w.add_scalar("charts/SPS", sps, 1000 * len(returns))
    w.close()
    return run_dir


def test_compare_cleanrl_windows_and_sps_ratio(tmp_path):
    cleanrl = [training_run(tmp_path, "sac_continuous_action", s, [s * 10.0] * 4, 100) for s in (1, 2)]
    ours = [training_run(tmp_path, "sac", s, [1, 2, 3, 4 * s], 110) for s in (1, 2)]
    out = tmp_path / "out"
    assert compare_cleanrl.main(["--cleanrl", *cleanrl, "--ours", *ours, "--out", str(out), "--every", "2000",
                                 "--window", "2"]) == 0  # fmt: skip
    report = (out / "report.md").read_text()
    # at 4000: the last 2 episodes; ours (3 + 4) / 2 = 3.5 and (3 + 8) / 2 = 5.5
    assert "| 2000 | 15.0 +- 5.0 (10.0, 20.0) | 1.5 +- 0.0 (1.5, 1.5) | no (below 10.0..20.0) |" in report
    assert "| 4000 | 15.0 +- 5.0 (10.0, 20.0) | 4.5 +- 1.0 (3.5, 5.5) | no (below 10.0..20.0) |" in report
    assert "| SPS ratio ours / CleanRL | | 1.10x |" in report
    # an extra group is an extra column; the range check is ours against CleanRL's seeds
    older = [training_run(tmp_path / "old", "sac", s, [12.0] * 4, 90) for s in (1, 2)]
    assert compare_cleanrl.main(["--cleanrl", *cleanrl, "--ours", *older, "--also", "before", *ours, "--out", str(out),
                                 "--every", "2000", "--window", "2"]) == 0  # fmt: skip
    report = (out / "report.md").read_text()
    assert "| env step | CleanRL | ours | before | ours' mean in CleanRL's range |" in report
    assert "| 2000 | 15.0 +- 5.0 (10.0, 20.0) | 12.0 +- 0.0 (12.0, 12.0) | 1.5 +- 0.0 (1.5, 1.5) | yes |" in report
