"""benchmarks/compare_official.py, compare_cleanrl.py and utd_report.py on runs with known values. compare_official: the authors' steps
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


def our_run(root, seed, returns, algo="sdac", weight_tag="losses/rssm_weight_std"):
    run_dir = f"{root}/Hopper-v4__{algo}__{seed}__1"
    w = SummaryWriter(run_dir)
    for i, r in enumerate(returns):  # ours count the warm-up: evaluations at 2500, 5000, ...
        w.add_scalar("eval/episodic_return", r, 2500 * (i + 1))
    for step in range(5500, 10001, 500):
        w.add_scalar(weight_tag, 0.001 if step <= 7500 else 0.003, step)
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
    # the last 5 and all evaluations are the same three here: authors (10 + 30 + 20) / 3 = 20 and 110 / 3 = 36.7
    assert (
        "| authors' code (JAX) | 1, 2 | 30.0 +- 10.0 | 40.0 +- 10.0 | 20.0/30.0, 40.0/50.0 | 28.3 +- 8.3 (20.0, 36.7) "
        "| 28.3 +- 8.3 (20.0, 36.7) |"
    ) in report
    assert (
        "| ours (PyTorch) | 1, 2 | 30.0 +- 5.0 | 40.0 +- 5.0 | 25.0/35.0, 35.0/45.0 | 30.0 +- 5.0 (25.0, 35.0) "
        "| 30.0 +- 5.0 (25.0, 35.0) |"
    ) in report
    # against their range: final 30 inside 20..40; ours (25, 35) vs theirs (20, 40): U = 2, its mean, so p = 1
    assert "| ours (PyTorch) | 30.0 inside 20.0..40.0, p 1.00 | 40.0 inside 30.0..50.0, p 1.00 |" in report
    assert "| 7500 | 10.0 | 20.0 | 15.0 | 25.0 |" in report
    # weights: ours averaged over (5000, 10000]: five logs at 0.001 and five at 0.003
    assert "| 10000 | 0.002 | 0.002 |" in report
    assert (out / "curves.png").stat().st_size > 0
    # the copies alone rebuild the same table
    copies = sorted(str(p) for p in (out / "official").iterdir())
    assert compare_official.main(["--official", *copies, "--ours", *ours, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text().splitlines()[:8] == report.splitlines()[:8]


def test_compare_official_dpmd_with_a_variant(tmp_path):
    off = tmp_path / "off1"
    official_run(off, 1, [10, 30, 20])
    with open(off / "update_scalars.csv", "a") as f:
        f.write("update/running_q_mean,10000,12.0\n")
    ours = our_run(tmp_path / "a", 1, [1, 2, 15, 35, 25], "dpmd", "losses/dpmd_weight_std")
    other = our_run(tmp_path / "b", 1, [1, 2, 5, 6, 7], "dpmd", "losses/dpmd_weight_clip_frac")
    out = tmp_path / "out"
    argv = [
        "--alg",
        "dpmd",
        "--official",
        str(off),
        "--ours",
        ours,
        "--variant",
        "ours, standardised",
        other,
        "--out",
        str(out),
    ]
    assert compare_official.main(argv) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# DPMD: ours beside the authors' code (Hopper-v4)")
    assert (
        "| ours, standardised | 1 | 7.0 +- 0.0 | 7.0 +- 0.0 | 7.0/7.0 | 6.0 +- 0.0 (6.0) | 6.0 +- 0.0 (6.0) |" in report
    )
    # the variant's final 7 lies below the authors' one seed (20); one seed against one: p = 1
    assert "| ours, standardised | 7.0 below 20.0..20.0, p 1.00 | 7.0 below 30.0..30.0, p 1.00 |" in report
    assert "| env step | authors s1 | ours s1 | v1 s1 |" in report and "| 12500 | 20.0 | 25.0 | 7.0 |" in report
    # weight std: authors 0.002, ours 0.002 (the window's mean), the variant logged none; the clip share: ours only
    head = next(line for line in report.splitlines() if line.startswith("| env step | update/q_weights_std"))
    assert "None" not in head and "losses/dpmd_weight_clip_frac (v1)" in head
    row = [line for line in report.splitlines() if line.startswith("| 10000 |")][-1]  # the statistics' row
    assert row.startswith("| 10000 | 0.002 | 0.002 |  |")
    cells = row.strip("|").split("|")
    assert cells[head.strip("|").split("|").index(" losses/dpmd_weight_clip_frac (v1) ")].strip() == "0.002"
    assert cells[head.strip("|").split("|").index(" update/running_q_mean (authors) ")].strip() == "12"


def test_compare_official_dacer_takes_its_steps_from_its_own_tags(tmp_path):
    """DACER's authors log no weight std: the statistics' rows are the steps of their first tag in its list (alpha)."""
    off = tmp_path / "off1"
    official_run(off, 1, [10, 30, 20])
    with open(off / "update_scalars.csv", "a") as f:
        f.write("update/entropy,10000,-1.5\n")
    ours = our_run(tmp_path / "a", 1, [1, 2, 15, 35, 25], "dacer", "losses/alpha")
    out = tmp_path / "out"
    assert compare_official.main(["--alg", "dacer", "--official", str(off), "--ours", ours, "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# DACER: ours beside the authors' code (Hopper-v4)")
    head = next(line for line in report.splitlines() if line.startswith("| env step | update/alpha (authors)"))
    assert "losses/sigma_bar1 (ours)" in head and "q_weights_std" not in head
    row = [line for line in report.splitlines() if line.startswith("| 10000 |")][-1]  # the statistics' row
    assert row.startswith("| 10000 | 4.5 | 0.002 | -1.5 |  |")


def test_against_theirs_range_and_rank_test():
    import numpy as np

    theirs = [
        np.array([0.0, 10, 20]),
        np.array([0.0, 10, 22]),
        np.array([0.0, 10, 24]),
    ]  # finals 20..24, all-means 10..11.3
    ours = [np.array([5.0, 30, 30]), np.array([5.0, 30, 31]), np.array([5.0, 30, 32])]  # every metric above theirs
    cells = compare_official.against_theirs(ours, theirs)
    # fully separated 3 against 3: p = 2 / 20
    assert cells[0] == "31.0 above 20.0..24.0, p 0.10" and cells[1] == "31.0 above 20.0..24.0, p 0.10"
    assert cells[3] == "22.0 above 10.0..11.3, p 0.10"
    assert compare_official.against_theirs(theirs, ours)[0] == "22.0 below 30.0..32.0, p 0.10"
    assert compare_official.against_theirs(theirs[:2], theirs)[0] == "21.0 inside 20.0..24.0, p 0.80"


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
    assert (
        compare_cleanrl.main(
            ["--cleanrl", *cleanrl, "--ours", *ours, "--out", str(out), "--every", "2000", "--window", "2"]
        )
        == 0
    )
    report = (out / "report.md").read_text()
    # at 4000: the last 2 episodes; ours (3 + 4) / 2 = 3.5 and (3 + 8) / 2 = 5.5
    # rank test, 2 against 2: both of ours below both of CleanRL's is 2 of the 6 splits (either direction)
    assert "| 2000 | 15.0 +- 5.0 (10.0, 20.0) | 1.5 +- 0.0 (1.5, 1.5) | no (below 10.0..20.0) | 0.333 |" in report
    assert "| 4000 | 15.0 +- 5.0 (10.0, 20.0) | 4.5 +- 1.0 (3.5, 5.5) | no (below 10.0..20.0) | 0.333 |" in report
    assert "| SPS ratio ours / CleanRL | | 1.10x |" in report
    rows = (out / "episodes.csv").read_text().splitlines()
    assert rows[0] == "group,seed,step,return" and len(rows) == 1 + 4 * 4
    assert "ours,2,4000,8.0000" in rows and "CleanRL,1,1000,10.0000" in rows
    # an extra group is an extra column; the range check is ours against CleanRL's seeds
    older = [training_run(tmp_path / "old", "sac", s, [12.0] * 4, 90) for s in (1, 2)]
    assert (
        compare_cleanrl.main(
            [
                "--cleanrl",
                *cleanrl,
                "--ours",
                *older,
                "--also",
                "before",
                *ours,
                "--out",
                str(out),
                "--every",
                "2000",
                "--window",
                "2",
            ]
        )
        == 0
    )
    report = (out / "report.md").read_text()
    assert (
        "| env step | CleanRL | ours | before | ours' mean in CleanRL's range | rank test p, ours vs CleanRL |"
        in report
    )
    assert (
        "| 2000 | 15.0 +- 5.0 (10.0, 20.0) | 12.0 +- 0.0 (12.0, 12.0) | 1.5 +- 0.0 (1.5, 1.5) | yes | 1.000 |" in report
    )  # 12, 12 between 10 and 20: U at its centre


def test_rank_test_p_is_the_exact_mann_whitney_p():
    # 3 against 3, fully separated: 2 of the C(6,3) = 20 splits are as extreme (one per direction)
    assert compare_cleanrl.rank_test_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert compare_cleanrl.rank_test_p([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)
    # 6 against 6 with U = 5: 19 of the 924 splits have U <= 5 (partitions of 0..5 into at most 6 parts <= 6:
    # 1 + 1 + 2 + 3 + 5 + 7), as many have U >= 31; two-sided p = 38 / 924
    ours, theirs = [1, 2, 3, 4, 5, 11], [6, 7, 8, 9, 10, 12]
    assert compare_cleanrl.rank_test_p(ours, theirs) == pytest.approx(38 / 924)
    # interleaved groups: p = 1
    assert compare_cleanrl.rank_test_p([1, 4, 5, 8], [2, 3, 6, 7]) == pytest.approx(1.0)


def test_utd_report_tables_from_known_runs(tmp_path):
    """benchmarks/utd_report.py on event files with known returns: equal-step means with t-intervals, the mean after
    the warm-up over finished runs only, updates and hours per run by UTD, the paired UTD difference, and earlier runs
    added from a CSV (--reuse)."""
    import utd_report
    from torch.utils.tensorboard import SummaryWriter

    steps = list(range(2500, 50_001, 2500))
    for sub, seed, offset in [("gs1", 1, 0.0), ("gs1", 2, 10.0), ("gs5", 1, 100.0), ("gs5", 2, 130.0), ("gs5", 3, 0.0)]:
        w = SummaryWriter(tmp_path / sub / "runs" / f"Hopper-v4__sdac__{seed}__1700000000")
        for s in steps if seed != 3 else steps[:8]:  # seed 3 of UTD 1 still running, at 20k
            # wall-clock 0.36 s per env step at UTD 0.2, 0.72 at UTD 1: 4.75 h and 9.5 h over 2500..50000
            wall = 1.7e9 + s * (0.36 if sub == "gs1" else 0.72)
            w.add_scalar("eval/episodic_return", s / 100 + offset, s, walltime=wall)
            w.add_scalar("losses/lambda", (2.0 if sub == "gs1" else 4.0) + seed, s, walltime=wall)
            w.add_scalar("losses/qf1_values", s / 1000, s, walltime=wall)
        w.close()
    groups = utd_report.load(str(tmp_path))
    text = utd_report.report(groups)
    # UTD 0.2 at 50k: 500 and 510: mean 505, std 7.1, 95% t-interval 505 +- 12.71 * 5 = [441.5, 568.5]
    assert "| SDAC | 0.2 | 2 of 2 | 9000 | " in text and "505.0 +- 7.1 [441.5, 568.5]" in text
    # UTD 1 at 20k: 300, 330 and the unfinished seed's 200; the mean after the warm-up only over the two finished runs
    line = next(ln for ln in text.splitlines() if ln.startswith("| SDAC | 1 | 2 of 3 | 45000 |"))
    # (steps / 100 over the 18 evaluations from 7500 to 50000: mean 287.5; 387.5 and 417.5 with the offsets)
    assert "276.7 +- 68.1" in line and line.endswith("| 402.5 +- 21.2 [211.9, 593.1] |")
    # paired by seed: seeds 1 and 2, UTD 1 minus UTD 0.2 = 100 and 120
    assert "| SDAC | 2 | 110.0 +- 14.1 [-17.1, 237.1] | 110.0 +- 14.1 [-17.1, 237.1] |" in text
    # stability: lambda and Q1 at or before each step, over the seeds that reached it (seed 3 of UTD 1: 10k and 20k)
    stats = utd_report.stats_table(utd_report.update_stats(str(tmp_path)), [10_000, 30_000])
    assert "| SDAC | 0.2 | 3.5 / 10 | 3.5 / 30 |" in stats and "| SDAC | 1 | 6 / 10 | 5.5 / 30 |" in stats
    # the cost over finished runs only; the running seed's hours so far (2500..20000: 3.5 h) in its own row
    assert (
        "| SDAC | 0.2 | 2 | 9000 | 4.75 [4.75, 4.75] |" in text
        and "| SDAC | 1 | 2 | 45000 | 9.50 [9.50, 9.50] |" in text
    )
    assert "| SDAC | 1 | 3 | - | 137.5 | 20000 | 3.50 |" in text
    # an earlier run of seed 3 at UTD 0.2 from a CSV (evaluations from 7500 on): a third seed, without hours
    reuse = tmp_path / "reuse.csv"
    reuse.write_text(
        "algorithm,utd,seed,step,return\n" + "".join(f"SDAC,0.2,3,{s},{s / 100 + 20}\n" for s in steps[2:])
    )
    text = utd_report.report(utd_report.load(str(tmp_path), [str(reuse)]))
    assert "| SDAC | 0.2 | 3 of 3 | 9000 | " in text and "510.0 +- 10.0 [485.2, 534.8]" in text  # 500, 510, 520
    assert (
        "| SDAC | 0.2 | 3 | 520.0 | 307.5 | 50000 | reused |" in text
        and "| SDAC | 0.2 | 2 | 9000 | 4.75 [4.75, 4.75] |" in text
    )
    assert "| SDAC | 3 | " not in text  # seed 3 of UTD 1 is unfinished: no pair
    reuse.write_text("algorithm,utd,seed,step,return\nSDAC,0.2,1,7500,1.0\n")
    with pytest.raises(SystemExit, match="seed 1, which .* with other returns"):
        utd_report.load(str(tmp_path), [str(reuse)])
    # the same run, to fewer steps (an earlier session's part of it): the folder's, further on, is taken
    reuse.write_text("algorithm,utd,seed,step,return\nSDAC,0.2,1,7500,75.0\n")
    assert utd_report.report(utd_report.load(str(tmp_path), [str(reuse)])) == utd_report.report(groups)
    reuse.write_text("algorithm,utd,seed,step,return\nSDAC,1,3,20000,200.0\nSDAC,1,3,22500,225.0\n")
    with pytest.raises(SystemExit, match="seed 3, which .* to fewer steps"):
        utd_report.load(str(tmp_path), [str(reuse)])


def test_utd_report_evaluations_csv_carries_every_run_into_the_next_report(tmp_path):
    """evaluations.csv, read back alone with --reuse, gives the same tables, stability and hours as the event files
    it came from (run outputs do not outlive a session; this file is committed)."""
    import utd_report

    steps = list(range(2500, 50_001, 2500))
    for sub, seed, offset in [("gs1", 1, 0.0), ("gs5", 1, 100.0), ("gs5", 2, 130.0)]:
        w = SummaryWriter(tmp_path / "sweep" / sub / "runs" / f"Hopper-v4__sac__{seed}__1700000000")
        for s in steps if seed != 2 else steps[:8]:
            wall = 1.7e9 + s * (0.36 if sub == "gs1" else 0.72)
            w.add_scalar("eval/episodic_return", s / 100 + offset + 0.123, s, walltime=wall)
            w.add_scalar("losses/alpha", 1.0 / s, s, walltime=wall)  # at every evaluation step,
            w.add_scalar("losses/qf1_values", s / 1000, s + 1000, walltime=wall)  # and 1000 steps after it
        w.close()
    folder = str(tmp_path / "sweep")
    stats = utd_report.update_stats(folder)
    groups = utd_report.load(folder, [], stats)
    utd_report.write_evaluations(groups, stats, str(tmp_path / "evaluations.csv"))
    rows = (tmp_path / "evaluations.csv").read_text().splitlines()
    assert rows[0] == "algorithm,utd,seed,step,return,temperature,q1,hours" and len(rows) == 1 + 20 + 20 + 8
    assert "SAC,1,2,20000,330.1230,5e-05,17.5,3.5000" in rows  # Q1 of 18500 for 20000; 2500..20000 at 0.72 s
    assert "SAC,1,1,2500,125.1230,0.0004,,9.5000" in rows  # no Q1 logged at or before 2500
    stats_back = {}
    back = utd_report.load(None, [str(tmp_path / "evaluations.csv")], stats_back)
    assert utd_report.report(back, stats_back) == utd_report.report(groups, stats)
    with pytest.raises(SystemExit, match="no such file"):
        utd_report.load(folder, [str(tmp_path / "nope.csv")])
    (tmp_path / "bad.csv").write_text("algorithm,seed,step,return\nSAC,1,2500,1.0\n")
    with pytest.raises(SystemExit, match="bad.csv: no column utd"):
        utd_report.load(folder, [str(tmp_path / "bad.csv")])
    # the folder and its own CSV together: every run once, taken from the folder
    assert utd_report.report(utd_report.load(folder, [str(tmp_path / "evaluations.csv")])) == utd_report.report(groups)
