"""DPMD's math and its update, each against the authors' code (github mahaitongdae/diffusion_policy_online_rl at a50cf41,
relax/algorithm/dpmd.py) or a closed form: the weighted DSM minimiser, the weights and their two normalisations, the
order of the update (critics stepped twice, the weights' Q after the first step), the running Q statistics."""

import copy
import math

import pytest
import torch

import dpmd_continuous_action as dpmd

OBS, ACT, B = 5, 2, 32


def test_defaults_are_the_authors():
    """scripts/train_mujoco.py:41-58 and 99-107 (lr 3e-4 -> 3e-5, alpha lr 7e-3, every 250, N 32, T 20, noise 0.1,
    linear 0.8, 30k warm-up, 5 envs), algorithm/dpmd.py:44-45 and 132-134, 191-192 (delay 2, reward scale 0.2,
    clip 3, EMA rate 0.001), network/diffv2.py:120 (lambda 5)."""
    a = dpmd.Args()
    got = (
        a.num_candidates,
        a.diffusion_steps,
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
        a.reward_scale,
        a.lambda_init,
        a.x_T_scale,
        a.policy_frequency,
        a.target_network_frequency,
        a.tau,
        a.q_clip,
        a.q_stats_rate,
        a.q_normalization,
        a.critic_double_step,
        a.clip_noisy_actions,
    )
    assert got == (
        32,
        20,
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
        0.2,
        5.0,
        0.5,
        2,
        2,
        0.005,
        3.0,
        0.001,
        "authors",
        True,
        False,
    )


class LinearEps(torch.nn.Module):
    """eps_theta(x_t, t) = a_t x_t + b_t: the family that holds the exact minimiser for a Gaussian target."""

    def __init__(self, T: int):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.zeros(T)), torch.nn.Parameter(torch.zeros(T))

    def forward(self, obs, x, t):
        return self.a[t][:, None] * x + self.b[t][:, None]


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_weighted_dsm_fits_the_score_of_the_reweighted_distribution(c):
    """Samples a0 ~ p = N(0, 1), weights exp(c a0): the reweighted distribution p exp(c a) is N(c, 1), whose noised
    optimal noise prediction is E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) c). Fitting the linear family with
    weighted_dsm_loss alone must recover it, so the mean the fitted model implies, -b / (a sqrt(abar)), moves from 0
    to c. With c = 0 the weights are 1: plain DSM, mean 0."""
    torch.manual_seed(0)
    T, n = 4, 200_000
    sched = dpmd.make_schedule("linear", T)
    a0 = torch.randn(n, 1)
    t_idx = torch.arange(n) % T
    w = torch.exp(c * a0[:, 0])
    model = LinearEps(T)
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        torch.manual_seed(1)  # the same eps every evaluation: a fixed quadratic objective
        loss = dpmd.weighted_dsm_loss(model, None, a0, t_idx, sched, w)
        loss.backward()
        return loss

    opt.step(closure)
    abar = sched.abar.double()
    a_opt, b_opt = (1 - abar).sqrt(), -(1 - abar).sqrt() * abar.sqrt() * c
    assert torch.allclose(model.a.detach().double(), a_opt, atol=0.03), (model.a, a_opt)
    assert torch.allclose(model.b.detach().double(), b_opt, atol=0.03), (model.b, b_opt)
    mean = -model.b.detach().double() / (model.a.detach().double() * abar.sqrt())
    assert torch.allclose(mean[1:], torch.full((T - 1,), c, dtype=torch.float64), atol=0.05), mean


def test_weights_authors_expression_and_standardised():
    """algorithm/dpmd.py:132-134: norm_q = q_min - running_mean / running_std (the mean alone divided by the std),
    clip to [-3, 3], divide by exp(log_alpha), exp. --q-normalization standardised: (q - mean) / std."""
    q, mean, std, lam = torch.tensor([10.0, 0.0, 2.5]), torch.tensor(2.0), torch.tensor(4.0), torch.tensor(0.5)
    w, z = dpmd.q_weights(q, mean, std, lam, 3.0, "authors")
    assert torch.allclose(z, torch.tensor([9.5, -0.5, 2.0]))
    assert torch.allclose(w, torch.exp(torch.tensor([3.0, -0.5, 2.0]) / 0.5))
    w, z = dpmd.q_weights(q, mean, std, lam, 3.0, "standardised")
    assert torch.allclose(z, torch.tensor([2.0, -0.5, 0.125]))
    assert torch.allclose(w, torch.exp(z / 0.5))


def learner(**kw):
    args = dpmd.Args(num_candidates=3, diffusion_steps=4, cuda=False, **kw)
    torch.manual_seed(0)
    actor, qf = dpmd.NoiseNetwork(OBS, ACT), dpmd.TwinQNetwork(OBS, ACT)
    actor_ema, qf_target = copy.deepcopy(actor), copy.deepcopy(qf)
    log_lam = torch.tensor(math.log(args.lambda_init), requires_grad=True)
    q_stats = torch.tensor([0.0, 1.0])
    q_opt = dpmd.make_optimizer(qf.parameters(), args.q_lr, args, torch.device("cpu"))
    a_opt = dpmd.make_optimizer(actor.parameters(), args.policy_lr, args, torch.device("cpu"))
    lam_opt = torch.optim.Adam([log_lam], lr=args.lambda_lr)
    sched = dpmd.make_schedule(args.beta_schedule, args.diffusion_steps)
    update, _ = dpmd.make_update(
        dpmd.make_policy(sched, args),
        actor,
        actor_ema,
        qf,
        qf_target,
        log_lam,
        q_stats,
        q_opt,
        a_opt,
        lam_opt,
        sched,
        args,
    )
    g = torch.Generator().manual_seed(1)
    data = dpmd.Batch(
        torch.randn(B, OBS, generator=g),
        torch.rand(B, ACT, generator=g) * 2 - 1,
        torch.randn(B, generator=g),
        torch.randn(B, OBS, generator=g),
        torch.zeros(B),
    )
    return update, data, qf, q_opt, q_stats


def test_critics_step_twice_and_the_weights_see_them_after_the_first(monkeypatch):
    """algorithm/dpmd.py:123-125 applies the critic update once before the policy loss is taken, whose min Q
    (line 130) therefore sees the critics after one step; lines 182-183 apply the same gradients again with the
    advanced Adam state. --critic-double-step False: one step. The running statistics follow the batch mean and std
    of that min Q at rate 0.001 (lines 191-192)."""
    seen = {}
    real = dpmd.q_weights

    def spy(q, *a, **k):
        seen["q"] = q.clone()
        return real(q, *a, **k)

    monkeypatch.setattr(dpmd, "q_weights", spy)
    finals = {}
    for double in (False, True):
        update, data, qf, q_opt, q_stats = learner(critic_double_step=double)
        torch.manual_seed(5)
        update(data, torch.tensor(5.0), 0)
        assert int(q_opt.state[next(iter(qf.parameters()))]["step"]) == (2 if double else 1)
        finals[double] = ([p.detach().clone() for p in qf.parameters()], seen["q"])
        expected = torch.tensor([0.0, 1.0]).lerp(torch.stack([seen["q"].mean(), seen["q"].std(correction=0)]), 0.001)
        assert torch.allclose(q_stats, expected)
    one_step, q_one = finals[False]
    two_steps, q_two = finals[True]
    assert torch.equal(q_one, q_two), "the weights' Q: the critics after the first step, in both modes"
    assert not all(torch.equal(a, b) for a, b in zip(one_step, two_steps)), "the second step moved the critics"


def test_policy_lr_is_the_authors_schedule_in_policy_updates():
    """algorithm/dpmd.py:57-63: optax.linear_schedule(3e-4 -> 3e-5, begin 2.5e4, 5e4 steps) on the policy optimiser."""
    a = dpmd.Args()
    lr = lambda n: dpmd.policy_lr_at(n, a.policy_lr, a.policy_lr_end, a.policy_lr_decay_begin, a.policy_lr_decay_steps)  # noqa: E731
    assert (lr(0), lr(25_000), lr(50_000), lr(75_000), lr(10**6)) == pytest.approx((3e-4, 3e-4, 1.65e-4, 3e-5, 3e-5))
