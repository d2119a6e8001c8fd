"""The --cudagraphs code path of each RL script, driven on a CPU: the CUDA check bypassed, Adam made capturable as on
CUDA, and torch.compile given Dynamo and AOTAutograd without Inductor's code generation (backend "aot_eager": the
same tracing as mode "reduce-overhead", which on a CPU would then skip its graphs, in seconds instead of a minute per
script). Checked: every compiled function is asked for mode "reduce-overhead"; one step-begin mark per update and one
per policy call (acting and evaluation); the statistics an update returns are copies, not the compiled functions'
outputs (a CUDA-graph replay overwrites those), and keep their values through the next update; and, with the policy
lr annealed from the 3rd policy update on, the run ends with the weights an eager run ends with, so the compiled
capturable Adam steps read the lr tensor that the schedule fills in place."""

import dataclasses

import pytest
import torch
import torch.utils._pytree as pytree

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

SCRIPTS = pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])


def tiny(script, **kw):
    extra = (
        {}
        if script is sac
        else dict(num_candidates=2, diffusion_steps=3, policy_lr_decay_begin=2, policy_lr_decay_steps=5)
    )
    if script is sdac:
        extra["num_reverse_samples"] = 4
    if script is dacer:  # no candidates; alpha's entropy estimate at updates 0 and 10
        extra.pop("num_candidates")
        extra.update(entropy_samples=8, alpha_update_interval=10)
    return script.Args(
        env_id="Pendulum-v1",
        num_envs=2,
        total_timesteps=60,
        learning_starts=30,
        batch_size=16,
        log_interval=10,
        eval_interval=0,
        eval_episodes=2,
        buffer_size=1000,
        cuda=False,
        checkpoint_interval=0,
        save_model=True,
        **{**extra, **kw},
    )


def cudagraphs_on_cpu(script, monkeypatch) -> dict:
    """Patches the script and torch so that --cudagraphs runs on a CPU; returns what the run is seen to do."""
    seen = dict(modes=[], events=[], outputs=[], returned=[], optimizers=[])
    real_validate, real_compile, real_mark = (
        script.validate_args,
        torch.compile,
        torch.compiler.cudagraph_mark_step_begin,
    )
    real_optimizer, real_compile_policy = script.make_optimizer, script.compile_policy
    monkeypatch.setattr(
        script, "validate_args", lambda args: real_validate(dataclasses.replace(args, cudagraphs=False))
    )

    def capturable_optimizer(params, lr, args, device):
        opt = real_optimizer(params, lr, args, device)
        assert isinstance(opt.param_groups[0]["lr"], torch.Tensor), "under --cudagraphs the lr is a tensor"
        for group in opt.param_groups:  # as on CUDA (make_optimizer makes it capturable there only)
            group["capturable"] = True
        seen["optimizers"].append(opt)
        return opt

    def compile(fn, mode=None, dynamic=None):
        seen["modes"].append(mode)
        compiled = real_compile(fn, backend="aot_eager", dynamic=dynamic)

        def call(*a, **k):
            out = compiled(*a, **k)
            seen["outputs"] += [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]  # kept alive
            return out

        return call

    def mark():
        seen["events"].append("mark")
        real_mark()

    def counted(name, fn):
        def call(*a, **k):
            seen["events"].append(name)
            out = fn(*a, **k)
            if name == "update":
                seen["returned"].append((out, {k: v.clone() for k, v in out.items()}))
            return out

        return call

    def make_update(*a, **k):  # (SAC: the critic step begins an update; its policy steps follow in the same step)
        updates = real_make_update(*a, **k)  # (SAC and DACER: one function; SDAC and DPMD: lambda's step apart)
        return counted("update", updates) if script in (sac, dacer) else (counted("update", updates[0]), updates[1])

    real_make_update = script.make_update
    monkeypatch.setattr(script, "make_update", make_update)
    monkeypatch.setattr(script, "make_optimizer", capturable_optimizer)
    monkeypatch.setattr(
        script, "compile_policy", lambda policy, args: counted("policy", real_compile_policy(policy, args))
    )
    monkeypatch.setattr(torch, "compile", compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", mark)
    return seen


@SCRIPTS
def test_cudagraph_branches_run_on_a_cpu(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    eager = script.train(tiny(script, exp_name="eager"))
    torch._dynamo.reset()
    seen = cudagraphs_on_cpu(script, monkeypatch)
    graphed = script.train(tiny(script, exp_name="graphed", cudagraphs=True))
    torch._dynamo.reset()

    assert seen["modes"] and set(seen["modes"]) == {"reduce-overhead"}, seen["modes"]
    events = seen["events"]
    updates, policy_calls = events.count("update"), events.count("policy")
    assert updates == 15 and policy_calls == 15 + 200  # 15 acting iterations; one evaluation of 200 steps
    assert events.count("mark") == updates + policy_calls, "one step-begin mark per update and per policy call"
    assert all(b == "mark" for a, b in zip(events, events[1:]) if a in ("update", "policy")), "each begins a step"

    outputs = {t.untyped_storage().data_ptr() for t in seen["outputs"]}
    for stats, snapshot in seen["returned"]:
        assert all(v.untyped_storage().data_ptr() not in outputs for v in stats.values()), "stats are copies"
        assert all(torch.equal(stats[k], snapshot[k]) for k in stats), "stats keep their values after later updates"
    if script is not sac:  # the policy lr fell as scheduled: 8 policy updates, the decay from the 3rd over 5
        assert seen["optimizers"][1].param_groups[0]["lr"].item() == pytest.approx(3e-5)

    name = f"{script.ALGORITHM.lower()}_model"
    final = [
        torch.load(f"{out['run_dir']}/{exp}.{name}", weights_only=True)
        for out, exp in [(eager, "eager"), (graphed, "graphed")]
    ]
    for key in final[0].keys() - {"args", "format"}:  # the networks, their EMA and targets, lambda or alpha
        for p, q in zip(pytree.tree_leaves(final[0][key]), pytree.tree_leaves(final[1][key])):
            # (the last policy steps move a weight by about 3e-5 each, 3e-4 if the compiled step kept the first lr)
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-5), f"{key} differs by {(p - q).abs().max():.1e}"
