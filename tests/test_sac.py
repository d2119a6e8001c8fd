"""SAC baseline: the tanh-Gaussian log-probability, shapes, the entropy coefficient's direction, and a smoke run
that reaches gradient steps, evaluation, checkpoints and resume; bad input gets one-line errors."""

import math
import os

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sac_continuous_action import (
    Actor,
    Args,
    actor_loss_fn,
    alpha_loss_fn,
    tanh_gaussian_log_prob,
    train,
    validate_args,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    env_id="Hopper-v4",
    num_envs=2,
    learning_starts=60,
    batch_size=16,
    log_interval=20,
    eval_interval=100,
    eval_episodes=2,
    buffer_size=1000,
    cuda=False,
)


def scalars(run_dir: str) -> dict[str, list[int]]:
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_exact_tanh_gaussian_log_prob_matches_a_numerical_density():
    """eps = 0. Reference: the density of the env action x = s * tanh(u) as the numerical derivative of its CDF,
    Phi((atanh(x / s) - mu) / sigma), per dimension, in float64. Includes u = +-6, where tanh saturates and the 1e-6
    term would be off, and scales s != 1 (the density of x is that of tanh(u) divided by s)."""
    mean = torch.tensor([[0.3, -1.0], [0.0, 2.0], [0.5, -0.5], [0.0, 0.0]], dtype=torch.float64)
    log_std = torch.tensor([[-0.5, 0.2], [0.0, -1.0], [0.3, 0.0], [0.5, 0.5]], dtype=torch.float64)
    u = torch.tensor([[0.1, -2.0], [1.5, 2.5], [-3.0, 0.7], [6.0, -6.0]], dtype=torch.float64)
    scale = torch.tensor([0.4, 2.0], dtype=torch.float64)
    x = scale * torch.tanh(u)
    normal = torch.distributions.Normal(mean, log_std.exp())
    # central differences in x, with a step relative to the distance to the boundary
    h = 1e-4 * (scale - x.abs())
    cdf = lambda x: normal.cdf(torch.atanh(x / scale))  # noqa: E731
    reference = ((cdf(x + h) - cdf(x - h)) / (2 * h)).log().sum(-1)
    assert torch.allclose(tanh_gaussian_log_prob(u, mean, log_std, scale, eps=0), reference, rtol=1e-6, atol=1e-6)


def test_default_log_prob_is_cleanrls_formula():
    """CleanRL's get_action (cleanrl/sac_continuous_action.py:141-149 at fe8d8a03), its lines verbatim, float32:
    log N(x_t) - log(action_scale * (1 - tanh(x_t)^2) + 1e-6), summed over dimensions. Saturated entries (|u| = 6, 12)
    differ from the exact density by up to 13.8 per dimension; there ours must be CleanRL's, not exact."""
    torch.manual_seed(0)
    mean, log_std = torch.randn(6, 3), torch.rand(6, 3) - 0.5
    x_t = mean + log_std.exp() * torch.randn(6, 3)
    x_t[0], x_t[1] = torch.tensor([6.0, -12.0, 0.5]), torch.tensor([20.0, 9.0, -7.0])
    action_scale = torch.tensor([0.4, 1.0, 2.0])
    # CleanRL
    normal = torch.distributions.Normal(mean, log_std.exp())
    y_t = torch.tanh(x_t)
    log_prob = normal.log_prob(x_t)
    log_prob -= torch.log(action_scale * (1 - y_t.pow(2)) + 1e-6)
    log_prob = log_prob.sum(1, keepdim=True)
    ours = tanh_gaussian_log_prob(x_t, mean, log_std, action_scale)
    assert torch.allclose(ours, log_prob.squeeze(1), rtol=1e-6, atol=1e-5)
    exact = tanh_gaussian_log_prob(x_t.double(), mean.double(), log_std.double(), action_scale.double(), eps=0)
    assert (exact[:2] - ours[:2].double()).min() > 5  # the cap matters where tanh saturates
    assert torch.allclose(exact[2:], ours[2:].double(), atol=1e-3)  # and nowhere else


def test_actor_samples_lie_in_the_box_with_one_log_prob_per_state():
    torch.manual_seed(0)
    actor = Actor(obs_dim=5, act_dim=3)
    obs = torch.randn(7, 5)
    a, log_prob, a_det = actor.get_action(obs)
    assert a.shape == a_det.shape == (7, 3) and log_prob.shape == (7,)
    assert a.abs().max() <= 1 and a_det.abs().max() <= 1
    mean, log_std = actor(obs)
    assert log_std.min() >= -5 and log_std.max() <= 2
    assert torch.allclose(a_det, torch.tanh(mean))
    # the same log-probability as torch's own tanh-transformed Gaussian at that sample
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    assert torch.allclose(log_prob, ref.log_prob(a.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1), atol=1e-3)
    # with the env's action scale, the log-probability is that of the env action: lower by sum log(scale)
    scaled = Actor(obs_dim=5, act_dim=3, action_scale=np.array([0.4, 0.4, 0.4]))
    scaled.load_state_dict(actor.state_dict())  # action_scale is not in the state_dict: checkpoints stay v3
    torch.manual_seed(1)
    _, lp1, _ = actor.get_action(obs)
    torch.manual_seed(1)
    _, lp04, _ = scaled.get_action(obs)
    assert torch.allclose(lp04, lp1 - 3 * math.log(0.4), atol=1e-3)


def test_actor_loss_refuses_shapes_that_would_broadcast_to_b_by_b():
    log_pi, q = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 4.0])
    assert actor_loss_fn(torch.tensor(0.5), log_pi, q).item() == pytest.approx((0.5 * log_pi - q).mean().item())
    with pytest.raises(ValueError, match="must both be \\[B\\]"):
        actor_loss_fn(torch.tensor(0.5), log_pi[:, None], q)  # [B, 1] - [B] would be [B, B]
    with pytest.raises(ValueError, match="must both be \\[B\\]"):
        actor_loss_fn(torch.tensor(0.5), log_pi, q[:, None])


@pytest.mark.parametrize("entropy, direction", [(-5.0, +1), (1.0, -1)])
def test_alpha_moves_towards_the_target_entropy(entropy, direction):
    """Target entropy -3: entropy -5 (below) must raise alpha; entropy 1 (above) must lower it."""
    log_alpha = torch.tensor(math.log(0.2), requires_grad=True)
    opt = torch.optim.Adam([log_alpha], lr=1e-2)
    log_pi = torch.full((64,), -entropy)  # entropy = -E[log pi]
    for _ in range(3):
        opt.zero_grad()
        alpha_loss_fn(log_alpha, log_pi, target_entropy=-3.0).backward()
        opt.step()
    assert direction * (log_alpha.item() - math.log(0.2)) > 0.025  # Adam: about lr per step


def test_fixed_alpha_stays_and_cleanrl_protocol_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = train(
        Args(**{**TINY, "num_envs": 1, "eval_interval": 0, "autotune": False, "alpha": 0.3}, total_timesteps=100)
    )
    assert out["global_step"] == 100 and out["alpha"] == pytest.approx(0.3)
    assert "losses/actor_loss" in scalars(out["run_dir"]) and "losses/alpha_loss" not in scalars(out["run_dir"])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(total_timesteps=-5), "--total-timesteps must be >= 1"),
        (dict(num_envs=0), "--num-envs must be >= 1"),
        (dict(policy_frequency=0), "--policy-frequency must be >= 1"),
        (dict(learning_starts=-1), "--learning-starts must be >= 0"),
        (dict(batch_size=512, buffer_size=100), "must not exceed --buffer-size"),
        (dict(tau=0.0), "--gamma and --tau must be in"),
        (dict(alpha=-0.1), "--alpha must be > 0"),
        (dict(resume="no/such/checkpoint.pt"), "checkpoint not found: no/such/checkpoint.pt"),
    ],
)
def test_invalid_arguments_get_clear_errors(change, message):
    with pytest.raises(SystemExit, match=message):
        validate_args(Args(**{**TINY, **change}))


def test_hyperparameters_are_cleanrls_under_its_protocol():
    """Under --num-envs 1 --learning-starts 5000 every hyperparameter is CleanRL's (vwxyzjn/cleanrl,
    cleanrl/sac_continuous_action.py at fe8d8a03: Args lines 43-66; log alpha starts at 0 and is tuned with the
    critics' lr, lines 205-207; log std in [-5, 2], lines 102-103)."""
    import sac_continuous_action as sac

    a = Args(num_envs=1, learning_starts=5000)
    got = (
        a.buffer_size,
        a.gamma,
        a.tau,
        a.batch_size,
        a.policy_lr,
        a.q_lr,
        a.policy_frequency,
        a.target_network_frequency,
        a.alpha,
        a.autotune,
        a.alpha_init,
        a.alpha_lr,
        a.target_entropy_scale,
        a.reward_scale,
        a.gradient_steps,
        sac.LOG_STD_MIN,
        sac.LOG_STD_MAX,
    )
    assert got == (1_000_000, 0.99, 0.005, 256, 3e-4, 1e-3, 2, 1, 0.2, True, 1.0, 1e-3, 1.0, 1.0, 1, -5, 2)


def test_alpha_steps_on_a_fresh_sample_of_the_updated_policy(monkeypatch):
    """CleanRL (sac_continuous_action.py:280-296): after each actor step, alpha's loss is taken on a new sample
    log pi(a|s), a ~ the policy after that step, without gradient into the policy."""
    import copy

    import sac_continuous_action as sac

    torch.manual_seed(0)
    args = Args(cuda=False, policy_frequency=1)  # update 0: the critic step, then one policy and alpha step
    actor, qf = sac.Actor(4, 2), sac.TwinQNetwork(4, 2)
    log_alpha = torch.tensor(0.0, requires_grad=True)
    opts = [
        torch.optim.Adam(qf.parameters(), lr=1e-3),
        torch.optim.Adam(actor.parameters(), lr=3e-4),
        torch.optim.Adam([log_alpha], lr=1e-3),
    ]
    update = sac.make_update(actor, qf, copy.deepcopy(qf), log_alpha, *opts, -2.0, args)
    seen = []
    monkeypatch.setattr(
        sac,
        "alpha_loss_fn",
        lambda la, lp, te: (seen.append((lp.requires_grad, lp.clone())), alpha_loss_fn(la, lp, te))[1],
    )
    data = sac.Batch(
        torch.randn(64, 4), torch.rand(64, 2) * 2 - 1, torch.randn(64), torch.randn(64, 4), torch.zeros(64)
    )
    before = copy.deepcopy(actor)
    torch.manual_seed(5)
    stats = update(data, 0)
    assert len(seen) == 1 and seen[0][0] is False, "no gradient flows from alpha's loss into the policy"
    torch.manual_seed(5)
    before.get_action(data.next_obs)  # the critic target's a' (the critic step does not move the policy)
    _, log_pi_step, _ = before.get_action(data.obs)  # the sample the actor loss used
    _, log_pi_fresh, _ = actor.get_action(data.obs)  # the next draws, from the updated policy
    assert torch.allclose(seen[0][1], log_pi_fresh.detach(), atol=1e-6)
    assert not torch.allclose(seen[0][1], log_pi_step.detach())
    assert "alpha_loss" in stats and log_alpha.grad is not None
