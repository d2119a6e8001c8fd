"""SDAC's defaults are the authors' code (github mahaitongdae/diffusion_policy_online_rl at a50cf41, files under relax/
and scripts/). Each test encodes one of their formulas, with its file and line, so that it cannot drift again."""

import math

import numpy as np
import pytest
import torch

import sdac_continuous_action as sdac
from test_compiled_paths import ACT, B, batch, sdac_learner


def learner(**kw):
    args = sdac.Args(num_candidates=3, num_reverse_samples=8, diffusion_steps=4, cuda=False, **kw)
    update, (actor, _, qf), sched = sdac_learner(args)
    return args, update, batch(sdac, seed=1), actor, qf, sched


def test_defaults_are_the_authors():
    """scripts/train_mujoco.py:41-57 (N 32, T 20, lr 3e-4 -> 3e-5, alpha lr 7e-3, every 250, noise 0.1, linear 0.8,
    30k warm-up, 5 envs), algorithm/sdac.py:48 and 141 (reward scale 0.2, K 64), network/diffv2.py:120 (lambda 5),
    diffusion.py:109 (x_T = 0.5 N(0, I)), trainer: evaluation every total_step/20, 20 episodes, batch 256."""
    a = sdac.Args()
    got = (
        a.num_candidates,
        a.diffusion_steps,
        a.num_reverse_samples,
        a.policy_lr,
        a.policy_lr_end,
        a.q_lr,
        a.lambda_lr,
        a.lambda_update_interval,
        a.exploration_noise,
        a.beta_schedule,
        a.linear_beta_scale,
        a.learning_starts,
        a.num_envs,
        a.gradient_steps,
        a.reward_scale,
        a.lambda_init,
        a.x_T_scale,
        a.q_weight_scale,
        a.eval_interval,
        a.eval_episodes,
        a.batch_size,
        a.policy_frequency,
        a.target_network_frequency,
        a.tau,
        a.clip_noisy_actions,
        a.entropy_in_target,
    )
    assert got == (
        32,
        20,
        64,
        3e-4,
        3e-5,
        3e-4,
        7e-3,
        250,
        0.1,
        "linear",
        0.8,
        30_000,
        5,
        1,
        0.2,
        5.0,
        0.5,
        5.0,
        50_000,
        20,
        256,
        2,
        2,
        0.005,
        False,
        False,
    )


def test_policy_lr_is_the_authors_linear_schedule_in_policy_updates(monkeypatch):
    """algorithm/sdac.py:59-64: optax.linear_schedule(init 3e-4, end 3e-5, transition_steps 5e4, transition_begin
    2.5e4), counted by the policy optimiser, i.e. in policy updates: flat for 25k, linear to 75k, flat after. The
    update sets it at each policy step (update u is policy update u / 2), and leaves it alone without --anneal-lr."""
    a = sdac.Args()

    def optax_linear_schedule(count, init=3e-4, end=3e-5, steps=50_000, begin=25_000):
        count = np.clip(count - begin, 0, steps)
        return (init - end) * (1 - count / steps) + end

    for n in [0, 1, 24_999, 25_000, 25_001, 40_000, 50_000, 74_999, 75_000, 100_000, 1_000_000]:
        got = sdac.policy_lr_at(n, a.policy_lr, a.policy_lr_end, a.policy_lr_decay_begin, a.policy_lr_decay_steps)
        assert got == pytest.approx(optax_linear_schedule(n), rel=1e-9), n
    for anneal, expected in [(True, [3e-4 + 0.5 * (3e-5 - 3e-4)]), (False, [])]:
        args, update, data, *_ = learner(anneal_lr=anneal, policy_lr_decay_begin=1, policy_lr_decay_steps=2)
        seen = []
        monkeypatch.setattr(sdac, "set_lr", lambda optimizer, lr: seen.append(lr))
        update(data, torch.tensor(1.0), 4)  # policy update 2: half way down
        update(data, torch.tensor(1.0), 5)  # no policy step
        assert seen == pytest.approx(expected), anneal


def test_exploration_noise_is_added_after_best_of_n_and_not_clipped():
    """network/diffv2.py:55-62: the best of N candidates by min(Q1, Q2) (computed without noise), then
    + N(0, (0.1 lambda)^2), not clipped. --clip-noisy-actions clips."""
    args, _, data, actor, qf, sched = learner()
    torch.manual_seed(3)
    best = sdac.sample_actions(actor, qf, data.obs, 0.0, sched, 3, args.x_T_scale)
    torch.manual_seed(3)
    cand = sdac.reverse_diffusion(actor, data.obs.repeat_interleave(3, 0), sched, ACT, args.x_T_scale)
    q = sdac.min_q(qf, data.obs.repeat_interleave(3, 0), cand).view(B, 3)
    assert torch.equal(best, cand.view(B, 3, ACT)[torch.arange(B), q.argmax(1)])
    assert (best.abs() <= 1).all()
    torch.manual_seed(3)
    noisy = sdac.sample_actions(actor, qf, data.obs, 2.0, sched, 3, args.x_T_scale)
    torch.manual_seed(3)
    sdac.reverse_diffusion(actor, data.obs.repeat_interleave(3, 0), sched, ACT, args.x_T_scale)
    z = torch.randn(B, ACT)  # the draws after the candidates: the noise
    assert torch.allclose(noisy, best + 2.0 * z, atol=1e-6), "same pick, noise added after it"
    assert (noisy.abs() > 1).any(), "not clipped"
    torch.manual_seed(3)
    clipped = sdac.make_policy(sched, sdac.Args(**{**vars(args), "clip_noisy_actions": True}))(actor, qf, data.obs, 2.0)
    assert torch.equal(clipped, noisy.clamp(-1, 1))


def test_rssm_weights_are_softmax_of_five_q_over_lambda_from_the_critics_before_their_step(monkeypatch):
    """algorithm/sdac.py:99-103 and 146-170: q_weights = softmax over the K copies of min(Q1, Q2)(s, clip(a0_tilde))
    * 5 / exp(log_alpha), with the critics' parameters from before this update's critic step (line 209 applies it
    after the policy loss was taken)."""
    args, update, data, actor, qf, sched = learner()
    before = [p.detach().clone() for p in qf.parameters()]
    seen = {}
    original = sdac.rssm_loss

    def spy(actor, obs, a_t, t_idx, sched_, q_fn, temperature, K, normalization="softmax"):
        seen["critics_unchanged"] = all(torch.equal(p, b) for p, b in zip(qf.parameters(), before))
        loss, w, q = original(actor, obs, a_t, t_idx, sched_, q_fn, temperature, K, normalization)
        seen["temperature"], seen["q"] = temperature, q
        return loss, w, q

    monkeypatch.setattr(sdac, "rssm_loss", spy)
    lam = torch.tensor(0.8)
    stats = update(data, lam, 0)
    assert seen["critics_unchanged"], "the RSSM weights must use the critics from before the critic step"
    assert not all(torch.equal(p, b) for p, b in zip(qf.parameters(), before)), "the critic step was applied"
    w = torch.softmax(seen["q"] * 5 / lam, dim=1)  # the authors' weights, recomputed from the energies
    assert seen["temperature"] == pytest.approx(lam / 5)
    assert stats["rssm_ess"].item() == pytest.approx((1 / (w**2).sum(1)).mean().item(), rel=1e-5)
    assert stats["rssm_weight_std"].item() == pytest.approx(w.std(correction=0).item(), rel=1e-5)  # jnp.std: ddof 0


def test_init_is_haikus_truncated_normal_with_zero_bias():
    """Every hk.Linear in the authors' networks (blocks.py:193-206): W ~ N(0, 1/fan_in) truncated at 2 sigma, b = 0.
    The std of a standard normal truncated at +-2 is 0.8796."""
    torch.manual_seed(0)
    nets = [sdac.NoiseNetwork(256, 6), sdac.TwinQNetwork(250, 6)]
    layers = [(m.weight, m.bias, m.in_features) for n in nets for m in n.modules() if isinstance(m, torch.nn.Linear)]
    layers += [
        (m.weight, m.bias, m.weight.shape[1]) for n in nets for m in n.modules() if isinstance(m, sdac.BatchedLinear)
    ]
    assert len(layers) == 2 + 4 + 4, "time embedding 2, noise MLP 4, critic MLP 4 linear layers"
    for w, b, fan_in in layers:
        sigma = 1 / math.sqrt(fan_in)
        assert torch.count_nonzero(b) == 0
        assert w.abs().max() <= 2 * sigma + 1e-7
        if w.numel() >= 256 * 256:
            assert w.std().item() == pytest.approx(0.8796 * sigma, rel=0.02)


def test_time_embedding_is_the_authors_scaled_sinusoid():
    """blocks.py:209-229: t times 10000^(-j/8), j = 0..7, [sin, cos], times 1/sqrt(16); then Linear(32), mish,
    Linear(16) (blocks.py:192-195)."""
    emb = sdac.TimeEmbedding(16)
    seen = []
    emb.net[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    t = torch.arange(10)
    out = emb(t)
    j = torch.arange(8)
    x = t[:, None].float() * 10000.0 ** (-j / 8)
    assert torch.allclose(seen[0], torch.cat([x.sin(), x.cos()], -1) / 4, atol=1e-6)
    assert out.shape == (10, 16) and emb.net[0].out_features == 32 and isinstance(emb.net[1], torch.nn.Mish)


def test_policy_targets_and_lambda_step_at_update_0_and_every_interval_after(tmp_path, monkeypatch):
    """algorithm/sdac.py:185-216: the policy, the target critics and the EMA policy step when step % 2 == 0, lambda
    when step % 250 == 0, step counting updates from 0. 11 updates with lambda every 10: lambda steps at updates 0 and
    10 (two Adam steps of lr each on log lambda, downward while the noise entropy is above its target), the policy at
    0, 2, ..., 10 (6 steps). The buffer holds the actions the env received: with lambda 20 the noise std is 2, and
    they are not clipped."""
    monkeypatch.chdir(tmp_path)
    args = sdac.Args(
        env_id="Hopper-v4",
        num_envs=1,
        learning_starts=10,
        total_timesteps=21,
        batch_size=8,
        num_candidates=2,
        num_reverse_samples=4,
        diffusion_steps=3,
        eval_interval=0,
        eval_episodes=1,
        lambda_update_interval=10,
        lambda_init=20.0,
        buffer_size=100,
        checkpoint_interval=21,
        checkpoint_buffer=True,
        cuda=False,
        log_interval=1,
    )
    out = sdac.train(args)
    assert math.log(out["lambda"]) == pytest.approx(math.log(20.0) - 2 * args.lambda_lr, abs=1e-4)
    ckpt = torch.load(out["checkpoint"], weights_only=True)
    assert ckpt["num_updates"] == 11
    assert int(ckpt["actor_optimizer"]["state"][0]["step"]) == 6
    assert int(ckpt["q_optimizer"]["state"][0]["step"]) == 11
    actions = ckpt["buffer"]["data"][1]
    assert (actions[:10].abs() <= 1).all(), "uniform warm-up actions"
    assert (actions[10:].abs() > 1).any(), "exploration noise is not clipped before the env and the buffer"


def test_acting_and_evaluation_use_the_ema_policy_and_the_update_the_online_one(tmp_path, monkeypatch):
    """algorithm/sdac.py:284-286: SDAC overrides get_action (which the trainer acts with, trainer/off_policy.py:137)
    to use get_policy_params_to_save() = target_poicy, the EMA policy (sdac.py:259-260), which is also the policy
    their evaluator runs. Inside the update, a' and a0 come from the online policy (sdac.py:113 and 130). Spies on
    sample_actions and evaluate: the update's calls get the online network, acting and evaluation the EMA one."""
    monkeypatch.chdir(tmp_path)
    calls, where = [], ["acting"]
    real_sample, real_evaluate, real_make_update = sdac.sample_actions, sdac.evaluate, sdac.make_update

    def spy_sample(actor, *a, **k):
        calls.append((actor, where[0]))
        return real_sample(actor, *a, **k)

    def inside(name, fn):
        def flagged(*a, **k):
            where[0] = name
            try:
                return fn(*a, **k)
            finally:
                where[0] = "acting"

        return flagged

    def spy_make_update(policy, actor, actor_ema, *a, **k):
        update, update_lambda = real_make_update(policy, actor, actor_ema, *a, **k)
        spy_make_update.networks = (actor, actor_ema)
        return inside("update", update), update_lambda

    spy_evaluate = inside("evaluation", real_evaluate)
    monkeypatch.setattr(sdac, "sample_actions", spy_sample)
    monkeypatch.setattr(sdac, "evaluate", spy_evaluate)
    monkeypatch.setattr(sdac, "make_update", spy_make_update)
    args = sdac.Args(
        env_id="Hopper-v4",
        num_envs=1,
        learning_starts=5,
        total_timesteps=12,
        batch_size=4,
        num_candidates=2,
        num_reverse_samples=2,
        diffusion_steps=2,
        eval_interval=0,
        eval_episodes=1,
        buffer_size=50,
        cuda=False,
    )
    sdac.train(args)
    online, ema = spy_make_update.networks
    seen = {w: [actor for actor, where_ in calls if where_ == w] for w in ("update", "acting", "evaluation")}
    assert len(seen["update"]) >= 7 and all(actor is online for actor in seen["update"]), "a' and a0: the online policy"
    assert len(seen["acting"]) >= 7 and all(actor is ema for actor in seen["acting"]), "acting: the EMA policy"
    assert seen["evaluation"] and all(actor is ema for actor in seen["evaluation"]), "evaluation: the EMA policy"
