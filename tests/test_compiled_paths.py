"""The fast paths: torch.compile gives the same losses, parameters and actions as the eager path on the same batch
and seed (inductor told to draw its random numbers as eager does), and the flags fail clearly where unsupported."""

import copy
import math

import pytest
import torch

import sac_continuous_action as sac
import sdac_continuous_action as sdac

OBS, ACT, B = 5, 2, 32


def batch(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    return module.Batch(
        torch.randn(B, OBS, generator=g),
        torch.rand(B, ACT, generator=g) * 2 - 1,
        torch.randn(B, generator=g),
        torch.randn(B, OBS, generator=g),
        (torch.rand(B, generator=g) < 0.1).float(),
    )


def sdac_learner(args):
    torch.manual_seed(0)
    actor, qf = sdac.NoiseNetwork(OBS, ACT), sdac.TwinQNetwork(OBS, ACT)
    actor_ema, qf_target = copy.deepcopy(actor), copy.deepcopy(qf)
    log_lam = torch.tensor(math.log(args.lambda_init), requires_grad=True)
    q_opt = sdac.make_optimizer(qf.parameters(), args.q_lr, args, torch.device("cpu"))
    a_opt = sdac.make_optimizer(actor.parameters(), args.policy_lr, args, torch.device("cpu"))
    lam_opt = torch.optim.Adam([log_lam], lr=args.lambda_lr)
    sched = sdac.make_schedule(args.beta_schedule, args.diffusion_steps)
    update, _ = sdac.make_update(
        sdac.make_policy(sched, args), actor, actor_ema, qf, qf_target, log_lam, q_opt, a_opt, lam_opt, sched, args
    )
    return update, (actor, actor_ema, qf), sched


def sac_learner(args):
    torch.manual_seed(0)
    actor, qf = sac.Actor(OBS, ACT), sac.TwinQNetwork(OBS, ACT)
    qf_target = copy.deepcopy(qf)
    log_alpha = torch.tensor(-1.0, requires_grad=True)
    opts = [
        sac.make_optimizer(p, lr, args, torch.device("cpu"))
        for p, lr in [(qf.parameters(), args.q_lr), (actor.parameters(), args.policy_lr), ([log_alpha], args.policy_lr)]
    ]
    update = sac.make_update(actor, qf, qf_target, log_alpha, *opts, -float(ACT), args)
    return update, (actor, qf, log_alpha)


def run_twice(updates, data, extra):
    """Two critic steps and two policy steps (SDAC: two whole updates), each after re-seeding; every statistic."""
    out = {}
    for step in range(2):
        torch.manual_seed(100 + step)
        if callable(updates):  # one update, critic and policy together (update number 0, policy_frequency 1: both step)
            out.update({f"{k}_{step}": v.detach().clone() for k, v in updates(data, *extra, 0).items()})
            continue
        out.update({f"{k}_{step}": v.detach().clone() for k, v in updates[0](data, *extra).items()})
        torch.manual_seed(200 + step)
        out.update({f"{k}_{step}": v.detach().clone() for k, v in updates[1](data, *extra).items()})
    return out


def assert_same(a: dict, b: dict, params_a, params_b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), f"{k}: eager {a[k]} vs compiled {b[k]}"
    for pa, pb in zip(params_a, params_b):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5), (pa - pb).abs().max()  # a step moves them ~3e-4


@pytest.fixture
def same_random_numbers():
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    with inductor_config.patch(fallback_random=True):
        yield
    torch._dynamo.reset()


def test_sdac_compiled_updates_and_sampler_match_eager(same_random_numbers):
    kw = dict(num_candidates=2, num_reverse_samples=4, diffusion_steps=3, cuda=False, policy_frequency=1)
    eager, nets_e, sched = sdac_learner(sdac.Args(**kw))
    compiled, nets_c, _ = sdac_learner(sdac.Args(**kw, compile=True))
    data, lam = batch(sdac), torch.tensor(0.5)
    out_e, out_c = run_twice(eager, data, (lam,)), run_twice(compiled, data, (lam,))
    assert {"qf_loss_1", "actor_loss_1", "rssm_ess_1"} <= out_e.keys()
    assert_same(out_e, out_c, [p for n in nets_e for p in n.parameters()], [p for n in nets_c for p in n.parameters()])
    # the action sampler: best-of-N reverse diffusion with exploration noise
    policy = sdac.make_policy(sched, sdac.Args(**kw))
    act = torch.compile(policy)
    torch.manual_seed(7)
    a_e = policy(nets_e[1], nets_e[2], data.obs, 0.1)
    torch.manual_seed(7)
    a_c = act(nets_e[1], nets_e[2], data.obs, 0.1)
    assert torch.allclose(a_e, a_c, atol=1e-5)


def test_sac_compiled_updates_match_eager(same_random_numbers):
    kw = dict(cuda=False, policy_frequency=1)
    eager, nets_e = sac_learner(sac.Args(**kw))
    compiled, nets_c = sac_learner(sac.Args(**kw, compile=True))
    data = batch(sac)
    out_e, out_c = run_twice(eager, data, ()), run_twice(compiled, data, ())
    assert {"qf_loss_1", "actor_loss_1", "alpha_loss_1"} <= out_e.keys()
    params = lambda nets: [*nets[0].parameters(), *nets[1].parameters(), nets[2]]  # noqa: E731
    assert_same(out_e, out_c, params(nets_e), params(nets_c))


def test_twin_critics_are_two_independent_networks_in_one_call():
    """TwinQNetwork gives what two separate MLPs with the same weights give, and its members differ."""
    for module, act_fn in [(sdac, torch.nn.Mish), (sac, torch.nn.ReLU)]:
        torch.manual_seed(0)
        qf = module.TwinQNetwork(OBS, ACT)
        obs, a = torch.randn(9, OBS), torch.randn(9, ACT)
        q = qf(obs, a)
        assert q.shape == (2, 9)
        layers = [m for m in qf.net if isinstance(m, module.BatchedLinear)]
        for i in range(2):  # member i as an ordinary MLP
            x = torch.cat([obs, a], -1)
            for j, layer in enumerate(layers):
                x = x @ layer.weight[i] + layer.bias[i]
                x = act_fn()(x) if j < len(layers) - 1 else x
            assert torch.allclose(q[i], x.squeeze(-1), atol=1e-5)
        assert not torch.allclose(q[0], q[1])
        assert torch.equal(module.min_q(qf, obs, a), q.min(0).values)


def test_soft_update_is_one_fused_lerp():
    torch.manual_seed(0)
    online, target = sdac.TwinQNetwork(OBS, ACT), sdac.TwinQNetwork(OBS, ACT)
    expected = [t + 0.1 * (o - t) for o, t in zip(online.parameters(), target.parameters())]
    sdac.soft_update(target, online, 0.1)
    assert all(torch.allclose(t, e) for t, e in zip(target.parameters(), expected))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is missing")
@pytest.mark.parametrize("module, error", [(sdac, SystemExit), (sac, SystemExit)])
def test_cudagraphs_without_cuda_is_a_clear_error(module, error):
    with pytest.raises(error, match="--cudagraphs needs a CUDA GPU"):
        module.validate_args(module.Args(env_id="Hopper-v4", cudagraphs=True))


def test_sdac_compiled_run_resumes_an_eager_checkpoint_and_anneals_its_lr(tmp_path, monkeypatch):
    """--compile end to end: an eager run's checkpoint resumed with --compile (the float lr becomes a tensor), updates,
    evaluation, and the policy lr following its schedule in policy updates across the resume."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    tiny = dict(
        env_id="Hopper-v4",
        num_envs=2,
        learning_starts=60,
        batch_size=16,
        num_candidates=2,
        num_reverse_samples=4,
        diffusion_steps=3,
        log_interval=20,
        eval_interval=0,
        eval_episodes=2,
        buffer_size=1000,
        cuda=False,
        checkpoint_interval=100,
        checkpoint_buffer=True,
        policy_lr_decay_begin=20,
        policy_lr_decay_steps=40,
    )
    out = sdac.train(sdac.Args(**tiny, total_timesteps=120))
    torch._dynamo.reset()
    resumed = sdac.train(sdac.Args(**tiny, total_timesteps=240, compile=True, resume=out["checkpoint"]))
    assert resumed["global_step"] == 240 and [step for step, _, _ in resumed["eval_history"]] == [240]
    acc = EventAccumulator(out["run_dir"], size_guidance={"scalars": 0})
    acc.Reload()
    lr = {e.step: e.value for e in acc.Scalars("charts/policy_lr")}
    # updates u = 0, 1, ... from step 62 on, one per 2 env steps; policy updates at even u: the last one before step
    # 200 is u = 68, policy update 34 (14 of 40 into the decay), before step 240 u = 88, policy update 44 (24 of 40)
    assert lr[200] == pytest.approx(3e-4 + 14 / 40 * (3e-5 - 3e-4)) and lr[240] == pytest.approx(
        3e-4 + 24 / 40 * (3e-5 - 3e-4)
    )
    assert max(e.step for e in acc.Scalars("losses/actor_loss")) == 240
    torch._dynamo.reset()
