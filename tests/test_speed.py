"""benchmarks/speed.py: every algorithm's setting measures (a few iterations on CPU) with every column filled that a
CPU can fill; the 1M-step projection on known numbers; one mode's failure, a missing git and a SIGINT lose no row
already measured; the authors' timing is parsed from their harness's line or reported as an error when it prints
none."""

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
    assert r["ms"] > 0 and r["eval_ms"] > 0 and r["eval_envs"] == 20 and r["minutes_1m"] > 0
    assert r["compile_s"] == 0 and not r["compiled"] and r["skips"] == 0
    assert (r["peak_mb"] is not None and r["peak_mb"] > 0) if torch.cuda.is_available() else r["peak_mb"] is None
    assert module.evaluate is not speed.timed_evaluation and module.evaluate.__module__ == module.__name__  # restored


def test_projection_counts_warmup_training_and_evaluations():
    """1M env steps at the defaults (5 envs, 30k random steps, an evaluation every 50k, Hopper's 1000-step limit):
    6000 warm-up vector steps, 194000 training iterations, 20 evaluations of 1000 steps."""
    minutes = speed.projected_minutes(speed.sdac, "Hopper-v4", ms=10.0, eval_ms=2.0, warmup_ms=1.0)
    assert minutes == pytest.approx((194_000 * 10.0 + 6_000 * 1.0 + 20 * 1000 * 2.0) / 60_000)


def fake_measure(failing: dict):
    def measure(module, setting, mode, env_id, iterations):
        for name, error in failing.items():
            if mode == speed.MODES[name]:
                raise error
        return dict(
            ms=5.0,
            eval_ms=1.0,
            eval_envs=20,
            minutes_1m=17.0,
            compile_s=0.0,
            peak_mb=None,
            graphs=0,
            breaks=0,
            skips=0,
            compiled=False,
        )

    return measure


def test_a_failing_mode_and_a_missing_git_lose_no_row(monkeypatch, capsys, tmp_path):
    """A GPU machine may have no git, and one mode may fail (a compile, a CUDA graph): the table says so and goes on."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    monkeypatch.setenv("COMMIT", "abc1234")
    monkeypatch.setattr(speed, "measure", fake_measure({"cudagraphs": RuntimeError("CUDA graph capture failed")}))
    speed.main(["--settings", "sac", "dpmd study", "--modes", "eager", "cudagraphs", "compile"])
    out, err = capsys.readouterr()
    assert "commit abc1234" in out
    assert out.count("| FAILED: RuntimeError: CUDA graph capture failed |") == 2 and "CUDA graph capture failed" in err
    for name in ("sac", "dpmd study"):
        assert f"| {name} | eager | 100 | 5.0 | 1.00x | 1.0 (20 envs) | 17.0 | 0 | - | - |" in out
        assert f"| {name} | compile | 100 | 5.0 | 1.00x |" in out


def test_sigint_keeps_the_rows_measured(monkeypatch, capsys):
    monkeypatch.setattr(speed, "measure", fake_measure({"compile": KeyboardInterrupt()}))
    with pytest.raises(SystemExit) as stop:
        speed.main(["--settings", "sac", "--modes", "eager", "compile", "cudagraphs"])
    out = capsys.readouterr().out
    assert stop.value.code == 130 and "| sac | eager |" in out and "stopped by SIGINT after 1 rows" in out
    assert "| sac | cudagraphs |" not in out


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


def test_the_operator_counter_counts_kernels_and_leaves_out_views():
    """Issue 38's proxy: each counted operator is one eager kernel; views and bare allocations launch none."""
    x, w, b = torch.randn(4, 3), torch.ones(2, 3), torch.zeros(2)
    with speed.OpCounter() as counter:
        x * 3  # the counter is off
        counter.on = True
        y = (x * 2).sum(0)  # mul, sum
        x.t().unsqueeze(0)  # views
        torch.empty(3)  # an allocation
        torch.nn.functional.linear(x, w, b)  # one addmm (the weight's transpose is a view)
    assert counter.count == 3 and counter.by_name == {"mul": 1, "sum": 1, "addmm": 1}, counter.by_name
    assert y.shape == (3,)


def test_operators_per_training_iteration_count_the_iteration_and_nothing_else(tmp_path, monkeypatch):
    """A real run's training iterations: SDAC's reverse chains make it costlier than SAC's; doubling T (the steps of
    each of its chains) adds about as many operators as the chains hold; the evaluation is left out (a longer one
    changes nothing); the count per iteration is the same over 2 or 4 iterations (the start-up left out, and as many
    iterations counted as divided by); Adam is counted in its foreach form, as a GPU runs it."""
    monkeypatch.chdir(tmp_path)
    tiny = dict(num_candidates=2, num_reverse_samples=4)
    sac_ops, _ = speed.launches_per_iteration(speed.sac, {}, "Pendulum-v1", iterations=2)
    t3, _ = speed.launches_per_iteration(speed.sdac, dict(tiny, diffusion_steps=3), "Pendulum-v1", iterations=2)
    t6, _ = speed.launches_per_iteration(speed.sdac, dict(tiny, diffusion_steps=6), "Pendulum-v1", iterations=2)
    assert 0 < sac_ops < t6 and t3 < t6
    assert t6 - t3 > 3 * 2 * 15, "three more reverse steps in each of two chains, at least 15 operators a step"
    longer, _ = speed.launches_per_iteration(
        speed.sdac, dict(tiny, diffusion_steps=3, eval_episodes=3), "Pendulum-v1", iterations=2
    )
    assert longer == t3
    sac_4, by_name = speed.launches_per_iteration(speed.sac, {}, "Pendulum-v1", iterations=4)
    assert sac_4 == sac_ops and "_foreach_addcdiv_" in by_name and "addcdiv_" not in by_name
    assert speed.sdac.evaluate.__module__ == speed.sdac.__name__ and not hasattr(speed.sdac.make_policy, "__wrapped__")


def test_the_older_sampler_draws_the_same_actions_as_todays():
    """Issue 38's side by side: speed.py's copy of the sampler before the redesign gives, on a CPU and with the same
    seed, the same actions bit for bit as today's (the redesign moved work out of the chain and changed no number);
    in its place in a run, SDAC's iteration without one chain costs more operators than with it."""
    torch.manual_seed(0)
    actor = speed.sdac.NoiseNetwork(6, 3)
    sched = speed.sdac.make_schedule("linear", 20)
    obs = torch.randn(40, 6)
    torch.manual_seed(1)
    today = speed.sdac.reverse_diffusion(actor, obs, sched, 3, 0.5)
    torch.manual_seed(1)
    older = speed.older_reverse_diffusion(actor, obs, sched, 3, 0.5)
    assert torch.equal(today, older)
    with speed.iteration_of("sdac official, older iteration"):
        assert speed.sdac.reverse_diffusion is speed.older_reverse_diffusion
    assert speed.sdac.reverse_diffusion is not speed.older_reverse_diffusion


def test_the_older_iteration_costs_more_operators(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = dict(num_candidates=2, num_reverse_samples=4, diffusion_steps=4)
    new, _ = speed.launches_per_iteration(speed.sdac, tiny, "Pendulum-v1", iterations=2)
    with speed.iteration_of("sdac official, older iteration"):
        old, _ = speed.launches_per_iteration(
            speed.sdac, dict(tiny, one_chain=False, update_before_step=False), "Pendulum-v1", iterations=2
        )
    # per iteration half a chain more (a0's, every 2nd update) and about 14 more operators per reverse step
    assert old - new > 2.5 * 4 * 12, (old, new)
