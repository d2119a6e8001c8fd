"""rssm_toy_gmm.py: the estimators, the toy's RSSM loss and sampler, a fast run on another mixture, bad input."""

import dataclasses
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rssm_toy_gmm import (Args, GaussianMixture, ToyError, histogram_kl, make_schedule, mode_weights, plot, reverse_diffusion,
                          rssm_loss, run, validate_args)  # fmt: skip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mode_weights_estimator_on_known_samples():
    torch.manual_seed(0)
    gmm = GaussianMixture((2.0, -2.0, -2.0, 2.0, 0.0, 5.0), (0.3, 0.5, 0.2), 0.5)
    w = mode_weights(gmm.sample(50_000), gmm)
    assert np.allclose(w, [0.3, 0.5, 0.2], atol=0.01)
    exact = torch.tensor([[2.0, -2.0]] * 3 + [[0.0, 5.0]])  # samples at the means: 3 of one, 1 of another
    assert np.allclose(mode_weights(exact, gmm), [0.75, 0.0, 0.25])


def test_histogram_kl_is_zero_for_equal_samples_and_grows_with_the_difference():
    torch.manual_seed(0)
    gmm = GaussianMixture((3.0, 3.0, -3.0, -3.0), (0.8, 0.2), 1.0)
    other = GaussianMixture((3.0, 3.0, -3.0, -3.0), (0.5, 0.5), 1.0)
    p = gmm.sample(20_000)
    assert histogram_kl(p, p, 7.0, 40) == pytest.approx(0.0, abs=1e-12)
    floor = histogram_kl(p, gmm.sample(20_000), 7.0, 40)
    wrong = histogram_kl(p, other.sample(20_000), 7.0, 40)
    # KL between the mixtures, for well separated modes: 0.8 log(0.8/0.5) + 0.2 log(0.2/0.5) = 0.193
    assert floor < 0.05 and wrong == pytest.approx(0.193 + floor, abs=0.04)


def test_score_is_the_gradient_of_the_log_density():
    gmm = GaussianMixture((3.0, 3.0, -3.0, -3.0), (0.8, 0.2), 1.5)
    x = torch.randn(64, 2).mul(3).requires_grad_()
    gmm.log_prob(x).sum().backward()
    assert torch.allclose(gmm.score(x.detach()), x.grad, atol=1e-5)


def test_toy_rssm_loss_minimiser_is_the_noise_perturbed_score():
    """One Gaussian component: for each x_t the loss's minimiser over a free eps_hat must be
    eps* = sqrt(1 - abar)(x_t - sqrt(abar) mu) / (abar s^2 + 1 - abar), within Monte Carlo error."""
    mu, var, i, K = torch.tensor([1.0, -2.0]), 2.0, 8, 100_000
    gmm = GaussianMixture(tuple(mu.tolist()), (1.0,), var)
    sched = make_schedule(20, 0.001, 0.999)
    x_t = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-3.0, -1.0]])
    eps_hat = torch.nn.Parameter(torch.zeros(3, 2))
    rows = torch.arange(3).repeat_interleave(K)
    opt = torch.optim.LBFGS([eps_hat], lr=1, max_iter=20, line_search_fn="strong_wolfe")

    def closure():
        torch.manual_seed(0)
        loss = rssm_loss(lambda x, t: eps_hat[rows], x_t, torch.full((3,), i), sched, gmm.log_prob, K)
        opt.zero_grad()
        loss.backward()
        return loss

    opt.step(closure)
    ab = sched.abar[i].item()
    expect = math.sqrt(1 - ab) / (ab * var + 1 - ab) * (x_t - math.sqrt(ab) * mu)
    assert torch.allclose(eps_hat.detach(), expect, atol=0.02 * expect.norm(dim=-1).max().item())


def test_toy_sampler_with_the_exact_noise_recovers_a_gaussian():
    torch.manual_seed(0)
    mu, var = torch.tensor([1.0, -2.0]), 0.5
    sched = make_schedule(1000, 1e-4, 0.02)  # fine steps: DDPM's sampler is exact in the limit

    def eps_fn(x, t):
        ab = sched.abar[t][:, None]
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * var + 1 - ab)

    x = reverse_diffusion(eps_fn, 20_000, sched, x0_clip=20.0)
    assert torch.allclose(x.mean(0), mu, atol=0.03) and torch.allclose(x.var(0), torch.full((2,), var), rtol=0.06)


FAST = dict(epochs=40, steps_per_epoch=10, batch_size=512, num_samples=4000)


def test_fast_run_recovers_the_weights_of_another_mixture(tmp_path):
    """A mixture unlike the default (weights 0.35/0.65, other means, covariance 0.5 I): both RSSM variants and DSM
    recover the weights within 0.1 in a few seconds; 20 Langevin steps from N(0, 4I) do not mix between modes."""
    args = Args(**FAST, means=(2.5, -2.5, -2.5, 2.5), weights=(0.35, 0.65), cov_scale=0.5, output=str(tmp_path / "f.png"))
    results = run(args)
    for name, r in results.items():
        assert r["samples"].shape == (4000, 2) and np.isfinite(r["kl"])
        if not name.startswith("Langevin"):
            assert abs(r["weights"][0] - 0.35) < 0.1, f"{name}: weights {r['weights']}"
    assert abs(results["Langevin, 20 steps"]["weights"][0] - 0.5) < 0.05, "Langevin stays in the basin it starts in"
    plot(results, args.output, 6.0)
    with open(args.output, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(weights=(0.5, 0.4)), "must be non-negative and sum to 1"),
        (dict(weights=(1.2, -0.2)), "must be non-negative and sum to 1"),
        (dict(means=(3.0, 3.0, -3.0)), "--means takes x y pairs"),
        (dict(means=(3.0, 3.0, -3.0, -3.0, 0.0, 0.0)), "one weight per mean: 3 means, 2 weights"),
        (dict(diffusion_steps=0), "--diffusion-steps must be >= 1"),
        (dict(langevin_steps=0), "--langevin-steps must be >= 1"),
        (dict(epochs=0), "--epochs must be >= 1"),
        (dict(cov_scale=0.0), "--cov-scale must be > 0"),
        (dict(beta_end=1.0), "betas must satisfy"),
    ],
)
def test_bad_input_gets_a_clear_error(change, message):
    with pytest.raises(ToyError, match=message):
        validate_args(dataclasses.replace(Args(), **change))


def test_command_line_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "rssm_toy_gmm.py"), "--weights", "0.5", "0.6"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and "error: --weights must be non-negative and sum to 1" in proc.stderr
    assert "Traceback" not in proc.stderr
