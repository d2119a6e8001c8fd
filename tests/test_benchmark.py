"""benchmark.sh (a real local sweep: parallel runs, skip, resume, failure, summary; and a real Slurm, when there is
one) and benchmarks/report.py (on event files with known values)."""

import glob
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import report  # noqa: E402

# tiny runs that both scripts accept: a few seconds each, updates and evaluations included
TINY = [
    "--total-timesteps",
    "120",
    "--num-envs",
    "2",
    "--learning-starts",
    "40",
    "--batch-size",
    "16",
    "--buffer-size",
    "500",
    "--eval-interval",
    "60",
    "--eval-episodes",
    "2",
    "--log-interval",
    "20",
    "--no-cuda",
]
SDAC_SMALL = [
    "--args-for",
    "sdac_continuous_action.py",
    "--num-candidates 2 --num-reverse-samples 4 --diffusion-steps 4",
]


def bench(*args, cwd, env=None, timeout=300):
    return subprocess.run(
        ["bash", os.path.join(REPO, "benchmark.sh"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
    )


# ---------------------------------------------------------------------------------------------------------------
# report.py


def write_run(root, env_id, exp, seed, evals, walls):
    """One run folder with eval/episodic_return = evals {step: value}, logged at the given wall times."""
    d = os.path.join(root, "runs", f"{env_id}__{exp}__{seed}__1700000000")
    w = SummaryWriter(d)
    for (step, value), wall in zip(sorted(evals.items()), walls):
        w.add_scalar("eval/episodic_return", value, step, walltime=wall)
        w.add_scalar("charts/SPS", 100, step, walltime=wall)
    w.close()
    return d


@pytest.fixture
def sweep(tmp_path):
    write_run(tmp_path, "Hopper-v4", "sdac", 1, {100: 10.0, 200: 30.0, 300: 20.0}, [0, 50, 100])
    write_run(tmp_path, "Hopper-v4", "sdac", 2, {100: 20.0, 200: 50.0, 300: 40.0}, [0, 100, 200])
    write_run(tmp_path, "Hopper-v4", "sac", 1, {100: 5.0, 200: 6.0, 300: 7.0}, [0, 60, 120])
    write_run(tmp_path, "InvertedPendulum-v4", "sac", 1, {100: 500.0, 200: 1000.0}, [0, 30])
    return tmp_path


def test_report_table_has_the_known_numbers(sweep):
    runs = report.find_runs(str(sweep))
    assert len(runs) == 4
    table = report.table_1(runs)
    # SDAC on Hopper: best 30 and 50 -> 40 +- 10; final 20 and 40 -> 30 +- 10; paper's SDAC Hopper beside it
    assert "| Hopper-v4 | SDAC | 40.0 +- 10.0 | 30.0 +- 10.0 | 2 | 300 | 3275 +- 55 |" in table
    assert "| Hopper-v4 | SAC | 7.0 +- 0.0 | 7.0 +- 0.0 | 1 | 300 | 3197 +- 294 |" in table
    assert "| InvertedPendulum-v4 | SAC | 1000.0 +- 0.0 | 1000.0 +- 0.0 | 1 | 200 | 1000 +- 0 |" in table
    per_run = report.per_run_table(runs, {"InvertedPendulum-v4": 950.0, "Hopper-v4": 45.0})
    # wall-clock 200 s = 3.3 min, 300 steps / 200 s = 2 steps/s; Hopper seed 2 reached 45 first at step 200
    assert "| Hopper-v4 | SDAC | 2 | 300 | 40.0 | 50.0 | 3.3 | 2 | 200 |" in per_run
    assert "| Hopper-v4 | SDAC | 1 | 300 | 20.0 | 30.0 | 1.7 | 3 | not reached |" in per_run
    assert "| InvertedPendulum-v4 | SAC | 1 | 200 | 1000.0 | 1000.0 | 0.5 | 7 | 200 |" in per_run


@pytest.mark.parametrize("exp, name", [("dpmd", "DPMD"), ("dacer", "DACER")])
def test_report_names_dpmd_and_dacer_runs_and_has_no_paper_column_for_them(sweep, exp, name):
    write_run(sweep, "Hopper-v4", exp, 1, {100: 3.0, 200: 9.0}, [0, 10])
    table = report.table_1(report.find_runs(str(sweep)))
    assert f"| Hopper-v4 | {name} | 9.0 +- 0.0 | 9.0 +- 0.0 | 1 | 200 | - |" in table  # Table 1 has neither column


def test_report_curve_is_the_mean_and_std_over_seeds(sweep):
    rs = [r for r in report.find_runs(str(sweep)) if r.algo == "SDAC"]
    x, m, s = report.curve(rs)
    assert x.tolist() == [100, 200, 300]
    assert np.allclose(m, [15, 40, 30]) and np.allclose(s, [5, 10, 10])


def test_report_command_writes_markdown_and_one_png_per_env(sweep, tmp_path):
    out = tmp_path / "out"
    assert (
        report.main([str(sweep), "--out", str(out), "--solved", "InvertedPendulum-v4=950", "--note", "Made by X."]) == 0
    )
    text = (out / "report.md").read_text()
    assert text.startswith("# Sweep report\n\nMade by X.\n\n## Evaluation return")
    assert "paper's Table 1" in text and "![curves_Hopper-v4.png](curves_Hopper-v4.png)" in text
    assert sorted(os.listdir(out)) == ["curves_Hopper-v4.png", "curves_InvertedPendulum-v4.png", "report.md"]
    assert (out / "curves_Hopper-v4.png").read_bytes()[:4] == b"\x89PNG"
    assert report.main([str(sweep), "--exp-name", "sac", "--out", str(tmp_path / "sac")]) == 0
    assert "| SDAC |" not in (tmp_path / "sac" / "report.md").read_text()
    # several folders at once, and an exp_name shown under another label
    other = tmp_path / "other"
    write_run(other, "Hopper-v4", "cpu", 3, {300: 99.0}, [0, 10])
    assert report.main([str(sweep), str(other), "--label", "cpu=SDAC", "--out", str(tmp_path / "both")]) == 0
    assert "| Hopper-v4 | SDAC | 3 | 300 | 99.0 |" in (tmp_path / "both" / "report.md").read_text()
    assert report.main([str(tmp_path / "nowhere")]) == 2
    assert report.main([str(sweep), "--solved", "nonsense"]) == 2


def test_report_defaults_to_its_own_folder_and_lists_what_it_skipped(sweep, capsys):
    os.makedirs(sweep / "runs" / "Hopper-v4__sdac__3__1700000001")  # started, no evaluation yet
    os.makedirs(sweep / "runs" / "notes")
    assert report.main([str(sweep)]) == 0
    assert sorted(os.listdir(sweep)) == ["report", "runs"], "nothing written beside the runs"
    text = (sweep / "report" / "report.md").read_text()
    assert "## Skipped" in text and "Hopper-v4__sdac__3__1700000001`: no evaluation logged yet" in text
    assert "notes`: its name is not" in text
    out = capsys.readouterr().out
    assert "skipped " in out and "Hopper-v4__sdac__3__1700000001: no evaluation logged yet" in out
    # a second report over the same folder does not list the first one's output folder
    assert report.main([str(sweep), "--out", str(sweep / "runs" / "rep")]) == 0
    assert report.main([str(sweep), "--out", str(sweep / "runs" / "rep")]) == 0
    assert "rep`" not in (sweep / "runs" / "rep" / "report.md").read_text()


def test_resumed_run_wall_clock_sums_its_attempts(tmp_path):
    d = write_run(tmp_path, "Hopper-v4", "sac", 1, {100: 1.0, 200: 2.0}, [0, 60])
    w = SummaryWriter(d, filename_suffix=".second")  # a second attempt, an hour later, 40 s long
    w.add_scalar("eval/episodic_return", 3.0, 300, walltime=3600)
    w.add_scalar("eval/episodic_return", 4.0, 400, walltime=3640)
    w.close()
    (run,) = report.find_runs(str(tmp_path))
    assert run.wall_seconds == pytest.approx(100) and run.steps.tolist() == [100, 200, 300, 400]


# ---------------------------------------------------------------------------------------------------------------
# benchmark.sh on this machine


def test_dry_run_prints_every_combination_and_runs_nothing(tmp_path):
    proc = bench(
        "--scripts",
        "sdac_continuous_action.py",
        "sac_continuous_action.py",
        "--env-ids",
        "Hopper-v4",
        "Walker2d-v4",
        "--seeds",
        "1",
        "2",
        "3",
        "--out",
        "sw",
        "--dry-run",
        "--args-for",
        "sdac_continuous_action.py",
        "--num-candidates 4 --diffusion-steps 10",
        "--",
        "--total-timesteps",
        "7",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "python" in ln]
    assert len(lines) == 12
    assert sum("sac_continuous_action.py --env-id Walker2d-v4 --seed 3 --exp-name sac" in ln for ln in lines) == 1
    assert all("--total-timesteps 7" in ln and "--checkpoint-interval 50000" in ln for ln in lines)
    # --args-for reaches that script's runs only
    assert all(("--num-candidates 4 --diffusion-steps 10" in ln) == ("sdac_continuous" in ln) for ln in lines)
    assert not os.path.exists(tmp_path / "sw")
    # each line is the command as it runs: the thread count it gets (2 cores' share for 2 jobs here) and its log
    proc = bench("--seeds", "1", "--jobs", "2", "--out", "sw", "--dry-run", cwd=tmp_path, env={"OMP_NUM_THREADS": "3"})
    lines = [ln for ln in proc.stdout.splitlines() if "python" in ln]
    assert len(lines) == 2 and all(" && OMP_NUM_THREADS=3 " in ln and ln.endswith("2>&1") for ln in lines), lines
    # an interrupted attempt (no checkpoint) is left where it is by a dry run
    os.makedirs(tmp_path / "sw2" / "runs" / "Hopper-v4__sac__1__123")
    bench("--scripts", "sac_continuous_action.py", "--out", "sw2", "--dry-run", cwd=tmp_path)
    assert sorted(os.listdir(tmp_path / "sw2")) == ["runs"]
    # with GPUs: runs spread over them round robin
    proc = bench("--seeds", "1", "2", "3", "--gpus", "2", "--out", "sw", "--dry-run", cwd=tmp_path)
    devices = [ln.split("CUDA_VISIBLE_DEVICES=")[1][0] for ln in proc.stdout.splitlines() if "python" in ln]
    assert devices == ["0", "1", "0", "1", "0", "1"]


def test_utd_study_runs_each_configuration_at_its_settings(tmp_path):
    """benchmarks/utd_study.sh, dry: SDAC, DPMD and SAC on Hopper-v4, seeds 1-3, at 1 and 5 gradient steps per vector
    step of 5 envs, each script with its study settings; UTD_GRADIENT_STEPS=5 runs UTD 1 alone."""

    def dry(env=None):
        proc = subprocess.run(
            ["bash", os.path.join(REPO, "benchmarks", "utd_study.sh"), "out", "--dry-run"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
        )
        assert proc.returncode == 0, proc.stderr
        return [ln for ln in proc.stdout.splitlines() if "python" in ln]

    lines = dry()
    assert len(lines) == 18
    for gs in (1, 5):
        at = [ln for ln in lines if f"--gradient-steps {gs} " in ln]
        assert len(at) == 9 and all(f"out/gs{gs} " in ln for ln in at)
    common = "--num-envs 5 --learning-starts 5000 --total-timesteps 50000 --eval-interval 2500 --eval-episodes 20"
    assert all(common in ln and "--env-id Hopper-v4" in ln and "--checkpoint-buffer" in ln for ln in lines)
    assert all(
        ("--num-candidates 4 --num-reverse-samples 64 --diffusion-steps 10" in ln) == ("sdac_" in ln) for ln in lines
    )
    assert all(("--num-candidates 4 --diffusion-steps 10" in ln) == ("dpmd_" in ln) for ln in lines)
    assert sorted({ln.split("--seed ")[1].split()[0] for ln in lines}) == ["1", "2", "3"]
    only = dry({"UTD_GRADIENT_STEPS": "5"})
    assert len(only) == 9 and all("--gradient-steps 5" in ln for ln in only)
    assert not os.path.exists(tmp_path / "out" / "gs1" / "runs")
    # what is left after a session: some scripts and seeds, at their own settings
    left = dry({"UTD_GRADIENT_STEPS": "5", "UTD_SCRIPTS": "dpmd", "UTD_SEEDS": "2 3"})
    assert len(left) == 2 and all("dpmd_" in ln and "--num-candidates 4 --diffusion-steps 10" in ln for ln in left)
    assert [ln.split("--seed ")[1].split()[0] for ln in left] == ["2", "3"]
    assert [ln for ln in dry({"UTD_SCRIPTS": "sac"}) if "--num-candidates" in ln] == []
    proc = subprocess.run(
        ["bash", os.path.join(REPO, "benchmarks", "utd_study.sh"), "out", "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "UTD_SCRIPTS": "td3"},
    )
    assert proc.returncode == 2 and proc.stderr.strip() == "error: UTD_SCRIPTS: td3 is not one of sac dpmd sdac"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "unknown option --bogus"),
        (["--scripts", "nope.py"], "no such script"),
        (["--seeds", "x"], "seeds must be non-negative integers"),
        (["--jobs", "0"], "--jobs must be a positive integer"),
        (["--", "--exp-name", "x"], "--exp-name is set by benchmark.sh"),
        (["--args-for", "sdac_continuous_action.py", "--resume x"], "--resume is set by benchmark.sh"),
        (["--args-for", "nope.py", "--x"], "not one of --scripts"),
        (["--out"], "--out needs a value"),
        (["--", "--total-timesteps", "9", "--dry-run"], "--dry-run is an option of benchmark.sh, not of the scripts"),
        (["--", "--jobs=2"], "--jobs is an option of benchmark.sh"),
        (["--", "--slurm"], "--slurm is an option of benchmark.sh"),
        (["--", "--checkpoint-interval", "5"], "--checkpoint-interval is benchmark.sh's option"),
    ],
)
def test_bad_input_gets_one_line_errors(args, message, tmp_path):
    proc = bench(*args, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr


def test_local_sweep_runs_in_parallel_skips_finished_resumes_interrupted_and_reports_failures(tmp_path):
    common = [
        "--scripts",
        "sdac_continuous_action.py",
        "sac_continuous_action.py",
        "--env-ids",
        "Hopper-v4",
        "--seeds",
        "1",
        "2",
        "--out",
        "sw",
        "--jobs",
        "2",
        "--checkpoint-interval",
        "60",
        *SDAC_SMALL,
        "--",
    ]
    proc = bench(*common, *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 runs: 4 finished, 0 failed, 0 skipped" in proc.stdout
    sw = tmp_path / "sw"
    assert sorted(os.listdir(sw / "done")) == [
        "sac__Hopper-v4__1",
        "sac__Hopper-v4__2",
        "sdac__Hopper-v4__1",
        "sdac__Hopper-v4__2",
    ]
    for log in glob.glob(str(sw / "logs" / "*.log")):
        assert "eval_return" in open(log).read()
    assert len(report.find_runs(str(sw))) == 4

    # again: everything is skipped
    proc = bench(*common, *TINY, cwd=tmp_path)
    assert proc.returncode == 0 and "4 runs: 0 finished, 0 failed, 4 skipped" in proc.stdout

    # an interrupted run (no done marker, a checkpoint at step 60) continues from its checkpoint to a longer target
    os.remove(sw / "done" / "sac__Hopper-v4__2")
    longer = [*TINY[:1], "180", *TINY[2:]]
    proc = bench(*common, *longer, cwd=tmp_path)
    assert proc.returncode == 0 and "4 runs: 1 finished, 0 failed, 3 skipped" in proc.stdout, proc.stdout
    assert "at global step 120" in (sw / "logs" / "sac__Hopper-v4__2.log").read_text()
    (run,) = [r for r in report.find_runs(str(sw)) if r.algo == "SAC" and r.seed == 2]
    assert run.steps.tolist() == [60, 120, 180], "one run folder, continued, not a second one"

    # a run that fails is reported, and the exit status says so
    proc = bench(
        "--scripts", "sac_continuous_action.py", "--env-ids", "CartPole-v1", "--out", "sw", "--", *TINY, cwd=tmp_path
    )
    assert proc.returncode == 1 and "1 runs: 0 finished, 1 failed, 0 skipped" in proc.stdout
    assert "needs a continuous (Box) action space" in (sw / "logs" / "sac__CartPole-v1__1.log").read_text()
    # that second sweep in the same folder left the first one's records alone (sweeps may share a folder)
    assert (sw / "status" / "sac__Hopper-v4__2").read_text().strip() == "finished"


def fake_sweep(tmp_path, script_text: str, *args, **kw):
    """benchmark.sh over a stand-in for the RL scripts (fake_continuous_action.py, with script_text as its body)."""
    shutil.copy(os.path.join(REPO, "benchmark.sh"), tmp_path)
    (tmp_path / "fake_continuous_action.py").write_text(script_text)
    cmd = [
        "bash",
        str(tmp_path / "benchmark.sh"),
        "--scripts",
        "fake_continuous_action.py",
        "--out",
        kw.get("out", "sw"),
        "--jobs",
        "1",
        *args,
    ]
    env = {**os.environ, "PYTHON": sys.executable, **kw.get("env", {})}
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_run_stopped_by_a_signal_is_not_marked_finished(tmp_path):
    """A safe stop (SIGTERM from kill or Slurm's time limit, SIGINT) exits with EXIT_STOPPED (75) after writing a
    checkpoint: the sweep keeps the run resumable (no done marker) and says so, or the next invocation would skip it as
    finished. The state comes from the exit status, not from the log's last lines: here wandb's closing lines follow
    the "stopped by" line (which once made a stopped run count as finished), and a run that exits 0 is finished
    whatever it printed."""
    stopped = (
        'print("stopped by SIGTERM at global step 40; checkpoint written. To continue:")\n'
        'print("wandb: Synced 5 W&B file(s)")\nraise SystemExit(75)\n'
    )
    for _ in range(2):  # and again: still not skipped
        out, err = fake_sweep(tmp_path, stopped).communicate(timeout=60)
        assert "stopped  fake__Hopper-v4__1 (by a signal, with a checkpoint" in out, out + err
        assert "1 runs: 0 finished, 0 failed, 0 skipped (finished before), 1 stopped (resumable)" in out
        assert not os.listdir(tmp_path / "sw" / "done")
    proc = fake_sweep(tmp_path, 'print("stopped by SIGTERM, in a line of the run\'s own output")\n')
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "1 runs: 1 finished" in out


def test_one_process_per_run_folder(tmp_path):
    """A second sweep over the same folder while a run of the first is still going (Ctrl-C, then the same command at
    once) leaves that run to the first: it says so, and the run is not started twice."""
    slow = "import time\nprint('started', flush=True)\ntime.sleep(6)\nprint('done')\n"
    first = fake_sweep(tmp_path, slow)
    for _ in range(100):  # until the first sweep's run has begun
        if (
            os.path.exists(tmp_path / "sw" / "logs" / "fake__Hopper-v4__1.log")
            and "started" in (tmp_path / "sw" / "logs" / "fake__Hopper-v4__1.log").read_text()
        ):
            break
        time.sleep(0.1)
    second = fake_sweep(tmp_path, slow)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 1 and "busy     fake__Hopper-v4__1 (another process is running it)" in out, out
    assert "not run: fake__Hopper-v4__1 (another process is running it)" in out
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0 and "1 runs: 1 finished" in out
    assert (tmp_path / "sw" / "logs" / "fake__Hopper-v4__1.log").read_text().count("started") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env-ids", "Hoper-v4", "Walker2d-v4"], "unknown env id(s): Hoper-v4"),
        (["--env-ids", "Hopper-v4 "], "holds a space"),
        (["--slurm"], "--slurm needs sbatch on the PATH"),
    ],
)
def test_bad_sweeps_are_refused_before_anything_is_created(args, message, tmp_path):
    no_sbatch = tmp_path / "path"  # the PATH's programs but sbatch (CI's machine has Slurm)
    no_sbatch.mkdir()
    for folder in filter(os.path.isdir, os.environ["PATH"].split(os.pathsep)):
        for name in os.listdir(folder):
            if name != "sbatch" and not os.path.lexists(no_sbatch / name):  # (the first on the PATH wins)
                os.symlink(os.path.join(folder, name), no_sbatch / name)
    proc = fake_sweep(tmp_path, "print('ran')\n", *args, env={"PATH": str(no_sbatch)})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and message in err and not os.path.exists(tmp_path / "sw"), err


def test_the_slurm_command_runs_under_sh_with_a_non_ascii_folder(tmp_path):
    """sbatch runs --wrap with /bin/sh, which does not read bash's $'...' quoting of a non-ASCII path (a sweep once
    went to ./$/...): a stand-in sbatch keeps the command, and /bin/sh runs it as the array task 0 would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --wrap ] && printf %s "$2" > "$WRAP"; '
        'shift; done\necho "Submitted batch job 1"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "WRAP": str(tmp_path / "wrap.txt")}
    out, err = fake_sweep(tmp_path, "print('ran')\n", "--slurm", out="swé", env=env).communicate(timeout=60)
    assert "Submitted batch job 1" in out, out + err
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "PYTHON": sys.executable}
    task = subprocess.run(
        ["/bin/sh", "-c", (tmp_path / "wrap.txt").read_text()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert task.returncode == 0, task.stdout + task.stderr
    assert "ran" in (tmp_path / "swé" / "logs" / "fake__Hopper-v4__1.log").read_text()
    assert not os.path.exists(tmp_path / "$")


# ---------------------------------------------------------------------------------------------------------------
# benchmark.sh --slurm against a real single-node Slurm (slurmctld, slurmd and munged on localhost)


def slurm_available() -> str:
    missing = [c for c in ("sbatch", "slurmctld", "slurmd", "munged") if shutil.which(c) is None]
    if missing:
        return f"Slurm not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "starting slurmd and munged needs root"
    return ""


@pytest.mark.skipif(bool(slurm_available()), reason=slurm_available() or "-")
def test_slurm_job_array_runs_every_combination(tmp_path):
    conf_dir = tmp_path / "slurm"
    up = subprocess.run(
        ["bash", os.path.join(REPO, "tests", "slurm", "start_local_slurm.sh"), str(conf_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        run_slurm_sweep(tmp_path, {"SLURM_CONF": str(conf_dir / "slurm.conf")})
    finally:  # stop this test's slurmctld and slurmd (started with -f <conf_dir>/slurm.conf)
        subprocess.run(["pkill", "-f", str(conf_dir / "slurm.conf")])


def run_slurm_sweep(tmp_path, env):
    args = [
        "--slurm",
        "--slurm-wait",
        "--slurm-cpus",
        "1",
        "--slurm-mem",
        "2G",
        "--slurm-time",
        "00:10:00",
        "--scripts",
        "sdac_continuous_action.py",
        "sac_continuous_action.py",
        "--env-ids",
        "Hopper-v4",
        "--seeds",
        "1",
        "2",
        "--out",
        "sw",
        "--checkpoint-interval",
        "60",
        *SDAC_SMALL,
        "--",
        *TINY,
    ]
    proc = bench(*args, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "submitting 4 runs as one job array" in proc.stdout
    assert "4 runs: 4 finished, 0 failed, 0 skipped" in proc.stdout
    sw = tmp_path / "sw"
    assert len(glob.glob(str(sw / "logs" / "slurm-*_*.out"))) == 4, "one Slurm output per array task"
    for key in ["sdac__Hopper-v4__1", "sdac__Hopper-v4__2", "sac__Hopper-v4__1", "sac__Hopper-v4__2"]:
        assert (sw / "done" / key).exists()
        log = (sw / "logs" / f"{key}.log").read_text()
        assert "global_step=120, eval_return=" in log
        assert ("--num-candidates 2" in log) == key.startswith("sdac"), "--args-for reached the array tasks"
    runs = report.find_runs(str(sw))
    assert sorted((r.algo, r.seed, r.steps.tolist()[-1]) for r in runs) == [
        ("SAC", 1, 120),
        ("SAC", 2, 120),
        ("SDAC", 1, 120),
        ("SDAC", 2, 120),
    ]
    # submitted again: every array task finds its run finished
    proc = bench(*args, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0 and "4 runs: 0 finished, 0 failed, 4 skipped" in proc.stdout, proc.stdout
