# Reverse sampling score matching (RSSM) on a toy: train a diffusion model from an energy alone.
# Paper: Ma et al., "Soft Diffusion Actor-Critic", Section 5.1 and Appendix C.1 (Figure 2). Docs: README.md.
#
# The target is a Gaussian mixture (2-D by default; any dimension, any full covariances) known only through its
# (log) density. RSSM never sees a sample of it: it draws x_t from a distribution of our choosing p~_t, draws
# x0_tilde from the Gaussian q~(x0 | x_t) of eq. 17, and regresses the noise network onto the noise that produced
# x0_tilde, weighted by the density p0(x0_tilde) (eq. 36). Side by side, from the same initial network and schedule:
#   1. RSSM with p~_t = N(0, 4I);  2. RSSM with p~_t = Unif([-6, 6]^d);
#   3. denoising score matching (DSM) on true samples, the reference that may see data;
#   4. 20 steps of Langevin dynamics with the true score (no training), which mixes slowly between modes.
# Each is scored by the weight it gives each mode and by its squared MMD to the target, whose target terms are
# exact (see mmd2).
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Literal, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import tyro


@dataclass
class Args:
    seed: int = 1
    """seed of the experiment"""
    dim: int = 2
    """d, the dimension of the target (the figure shows the first two coordinates)"""
    means: tuple[float, ...] = (3.0, 3.0, -3.0, -3.0)
    """component means, d numbers each, flattened: at d = 2, `--means 3 3 -3 -3` is [3, 3] and [-3, -3]"""
    weights: tuple[float, ...] = (0.8, 0.2)
    """mixing weights, one per component, non-negative, summing to 1"""
    covs: tuple[float, ...] = ()
    """full covariances, row by row, d*d numbers: one matrix for every component, or one matrix per component
    (at d = 2, `--covs 1 0.8 0.8 1` correlates the two coordinates); empty: cov_scale * I for every component"""
    cov_scale: float = 1.0
    """without --covs, every component's covariance is cov_scale * I"""
    diffusion_steps: int = 20
    """T, the number of diffusion steps"""
    beta_start: float = 0.001
    """first beta of the linear schedule (paper Table 3)"""
    beta_end: float = 0.999
    """last beta of the linear schedule (paper Table 3)"""
    lr: float = 3e-4
    """Adam learning rate"""
    batch_size: int = 1024
    """x_t (RSSM) or true samples (DSM) per gradient step"""
    epochs: int = 300
    """training epochs; an epoch here is `steps_per_epoch` gradient steps of `batch_size`
    (for DSM: one pass over a fixed set of steps_per_epoch * batch_size true samples)"""
    steps_per_epoch: int = 10
    """gradient steps per epoch (RSSM has no data set: this defines its epoch)"""
    num_reverse_samples: int = 4
    """K: reverse samples x0_tilde per x_t (eq. 17)"""
    weight_normalization: Literal["batch", "per-x_t"] = "batch"
    """batch: weights p0(x0_tilde) over the batch mean, eq. 36 as written (the paper's toy); per-x_t: a softmax
    over each x_t's K copies, as SDAC weights its actions (README: where RSSM holds and breaks)"""
    gaussian_std: float = 2.0
    """std of the Gaussian sampling distribution p~_t = N(0, std^2 I) (paper: 2, i.e. N(0, 4I))"""
    uniform_bound: float = 6.0
    """half width of the uniform sampling distribution p~_t = Unif([-b, b]^d) (paper: 6)"""
    langevin_steps: int = 20
    """steps of Langevin dynamics with the true score"""
    langevin_step_size: float = 0.1
    """step size eta: x <- x + eta * score(x) + sqrt(2 eta) z"""
    num_samples: int = 10_000
    """samples drawn from each method for the figure and the table"""
    mmd_bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0)
    """bandwidths of the MMD's Gaussian kernels, in units of a mode's RMS radius sqrt(mean_j trace(cov_j))"""
    output: str = "rssm_toy_gmm.png"
    """where the figure is written"""


class ToyError(Exception):
    """An error in the user's input: printed as one line, without a traceback."""


def validate_args(args: Args) -> None:
    for name in [
        "dim",
        "diffusion_steps",
        "batch_size",
        "epochs",
        "steps_per_epoch",
        "num_reverse_samples",
        "langevin_steps",
    ]:
        if getattr(args, name) < 1:
            raise ToyError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_samples < 2:
        raise ToyError(f"--num-samples must be >= 2 (the MMD uses pairs of samples), got {args.num_samples}")
    for name in ["cov_scale", "lr", "gaussian_std", "uniform_bound", "langevin_step_size"]:
        if not getattr(args, name) > 0:
            raise ToyError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if not 0 < args.beta_start <= args.beta_end < 1:
        raise ToyError(f"betas must satisfy 0 < --beta-start <= --beta-end < 1, got {args.beta_start}, {args.beta_end}")
    if not args.mmd_bandwidths or not all(h > 0 for h in args.mmd_bandwidths):
        raise ToyError(f"--mmd-bandwidths must be one or more numbers > 0, got {args.mmd_bandwidths}")
    mixture_from_args(args)


def mixture_from_args(args: Args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixture the command line describes, checked: means [J, d], weights [J], covariances [J, d, d]."""
    d = args.dim
    if d < 1:
        raise ToyError(f"--dim must be >= 1, got {d}")
    if len(args.means) == 0 or len(args.means) % d:
        raise ToyError(f"--means takes d = {d} numbers per component (--dim {d}), got {len(args.means)} numbers")
    means = np.array(args.means, dtype=np.float64).reshape(-1, d)
    J = len(means)
    if len(args.weights) != J:
        raise ToyError(f"--weights needs one weight per mean: {J} means, {len(args.weights)} weights")
    weights = np.array(args.weights, dtype=np.float64)
    if not np.isfinite(weights).all() or (weights < 0).any() or abs(weights.sum() - 1) > 1e-6:
        raise ToyError(f"--weights must be non-negative and sum to 1, got {args.weights} (sum {sum(args.weights):g})")
    if len(args.covs) == 0:
        covs = np.broadcast_to(args.cov_scale * np.eye(d), (J, d, d)).copy()
    elif len(args.covs) in (d * d, J * d * d):
        covs = np.broadcast_to(np.array(args.covs, dtype=np.float64).reshape(-1, d, d), (J, d, d)).copy()
    else:
        raise ToyError(
            f"--covs takes d*d = {d * d} numbers (one matrix for every component) or {J * d * d} (one per "
            f"component), got {len(args.covs)}"
        )
    if not (np.isfinite(means).all() and np.isfinite(covs).all()):
        raise ToyError("--means and --covs must be finite numbers")
    for j, c in enumerate(covs):
        if np.abs(c - c.T).max() > 1e-9 * max(1.0, np.abs(c).max()):
            raise ToyError(f"the covariance of component {j + 1} is not symmetric: {c.tolist()}")
        if np.linalg.eigvalsh(c).min() <= 1e-9 * max(1.0, np.abs(c).max()):
            raise ToyError(
                f"the covariance of component {j + 1} is not positive definite (smallest eigenvalue "
                f"{np.linalg.eigvalsh(c).min():.3g}): {c.tolist()}"
            )
    return means, weights, covs


# ---------------------------------------------------------------------------------------------------
# The target, known through its energy: log p0(x) = log sum_j w_j N(x; mu_j, Sigma_j)


class GaussianMixture:
    def __init__(self, means, weights, covs):
        self.means = torch.tensor(np.array(means, dtype=np.float64))  # [J, d]
        self.weights = torch.tensor(np.array(weights, dtype=np.float64))  # [J]
        self.covs = torch.tensor(np.array(covs, dtype=np.float64))  # [J, d, d]
        self.chol = torch.linalg.cholesky(self.covs)
        self.prec = torch.cholesky_inverse(self.chol)
        d = self.means.shape[1]
        self.log_norm = -self.chol.diagonal(dim1=-2, dim2=-1).log().sum(-1) - d / 2 * math.log(2 * math.pi)

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:  # [n, J], without the weights, in x's dtype
        mu, prec, log_norm = (v.to(x.dtype) for v in (self.means, self.prec, self.log_norm))
        diff = x[:, None, :] - mu  # [n, J, d]
        return log_norm - 0.5 * torch.einsum("njd,jde,nje->nj", diff, prec, diff)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.weights.log().to(x.dtype) + self.component_log_prob(x), -1)

    def score(self, x: torch.Tensor) -> torch.Tensor:  # grad log p0 = sum_j r_j(x) Sigma_j^-1 (mu_j - x)
        r = torch.softmax(self.weights.log().to(x.dtype) + self.component_log_prob(x), -1)
        return torch.einsum("nj,jde,nje->nd", r, self.prec.to(x.dtype), self.means.to(x.dtype) - x[:, None, :])

    def sample(self, n: int) -> torch.Tensor:  # only DSM and the estimators' checks may call this
        j = torch.multinomial(self.weights, n, replacement=True)
        z = torch.randn(n, self.means.shape[1], dtype=torch.float64)
        return (self.means[j] + (self.chol[j] @ z[:, :, None])[:, :, 0]).float()


def make_target(args: Args) -> GaussianMixture:
    return GaussianMixture(*mixture_from_args(args))


def mode_weights(x: torch.Tensor, gmm: GaussianMixture) -> np.ndarray:
    """The fraction of samples assigned to each component, each sample to the component of highest density at it
    (the weights left out; with equal covariances, the nearest mean)."""
    nearest = gmm.component_log_prob(x.double()).argmax(-1)
    return torch.bincount(nearest, minlength=len(gmm.means)).double().div(len(x)).numpy()


def gaussian_overlap(delta: torch.Tensor, cov: torch.Tensor, h: float) -> torch.Tensor:
    """E k_h(x, y) for x - y ~ N(delta, cov), k_h(x, y) = exp(-|x - y|^2 / 2h^2):
    det(I + cov / h^2)^(-1/2) exp(-delta^T (cov + h^2 I)^-1 delta / 2). Batched over leading dims."""
    a = cov + h * h * torch.eye(delta.shape[-1], dtype=delta.dtype)
    chol = torch.linalg.cholesky(a)
    z = torch.linalg.solve_triangular(chol, delta[..., None], upper=False)[..., 0]
    log_det_ratio = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1) - delta.shape[-1] * math.log(h * h)
    return torch.exp(-0.5 * (z * z).sum(-1) - 0.5 * log_det_ratio)


def kernel_mean(a: GaussianMixture, b: GaussianMixture, h: float) -> torch.Tensor:
    """E k_h(x, y) for x ~ a and y ~ b independent, exact."""
    overlap = gaussian_overlap(a.means[:, None] - b.means[None], a.covs[:, None] + b.covs[None], h)
    return (a.weights[:, None] * b.weights[None] * overlap).sum()


def exact_mmd2(a: GaussianMixture, b: GaussianMixture, bandwidths) -> float:
    """The squared MMD between two Gaussian mixtures, exact: what mmd2 estimates when its samples come from b."""
    return float(sum(kernel_mean(a, a, h) - 2 * kernel_mean(a, b, h) + kernel_mean(b, b, h) for h in bandwidths))


def mmd2(y: torch.Tensor, gmm: GaussianMixture, bandwidths) -> float:
    """Squared maximum mean discrepancy between the distribution of the samples y and the target, with the kernel
    sum_h exp(-|x - y|^2 / 2h^2): E_pp k - 2 E_pq k + E_qq k. The target's terms are exact, because a Gaussian
    kernel's mean under a Gaussian is closed form (gaussian_overlap); only E_qq k is estimated, by the U-statistic
    over distinct pairs of y. So the estimate is unbiased: on samples of the target it is 0 in expectation."""
    y, w, mu, cov = y.double(), gmm.weights, gmm.means, gmm.covs
    n, yf = len(y), y.float()
    blocks = [torch.cdist(yf[i : i + 2048], yf[i:]).square() for i in range(0, n, 2048)]  # upper triangle, by rows
    total = 0.0
    for h in bandwidths:
        pq = (w * gaussian_overlap(y[:, None] - mu, cov.expand(n, *cov.shape), h)).sum(-1).mean()
        # distinct pairs i < j: each block's rows against all later columns, its own lower triangle and diagonal left out
        off = sum(torch.exp(-s / (2 * h * h)).triu(1).sum(dtype=torch.float64) for s in blocks)
        total += float(kernel_mean(gmm, gmm, h) - 2 * pq + 2 * off / (n * (n - 1)))
    return total


def mode_radius(gmm: GaussianMixture) -> float:
    """The RMS radius of a mode, sqrt(mean_j trace(Sigma_j)): the unit of the MMD's bandwidths."""
    return float(gmm.covs.diagonal(dim1=-2, dim2=-1).sum(-1).mean().sqrt())


# ---------------------------------------------------------------------------------------------------
# Diffusion: linear betas, noise network, reverse sampling (eq. 6), the two losses


class Schedule(NamedTuple):  # the same names as in sdac_continuous_action.py; tensors indexed by i = t - 1
    betas: torch.Tensor
    alphas: torch.Tensor
    abar: torch.Tensor  # abar_t
    abar_prev: torch.Tensor  # abar_{t-1}, with abar_0 = 1
    posterior_mean_coef1: torch.Tensor  # coefficient of x0 in the mean of q(x_{t-1} | x_t, x0)
    posterior_mean_coef2: torch.Tensor  # coefficient of x_t
    posterior_var: torch.Tensor  # variance of q(x_{t-1} | x_t, x0)


def make_schedule(T: int, beta_start: float, beta_end: float) -> Schedule:
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    sched = Schedule(
        betas,
        alphas,
        abar,
        abar_prev,
        betas * abar_prev.sqrt() / (1 - abar),
        (1 - abar_prev) * alphas.sqrt() / (1 - abar),
        betas * (1 - abar_prev) / (1 - abar),
    )
    return Schedule(*(x.float() for x in sched))


class EpsNetwork(nn.Module):
    """eps_theta(x_t, t): 2 x 128 LeakyReLU (paper Table 3) on [x_t, sinusoidal features of t]."""

    def __init__(self, dim: int = 2, hidden: int = 128, t_dim: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.exp(-math.log(1000) * torch.arange(t_dim // 2) / (t_dim // 2 - 1)))
        self.net = nn.Sequential(
            nn.Linear(dim + t_dim, hidden),
            nn.LeakyReLU(),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        f = t.float()[:, None] * self.freqs
        return self.net(torch.cat([x, f.sin(), f.cos()], -1))


@torch.no_grad()
def reverse_diffusion(model: nn.Module, n: int, dim: int, sched: Schedule, x0_clip: float) -> torch.Tensor:
    """x_T ~ N(0, I), then x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) for t = T..1, x0_hat clipped to a box around the data."""
    x = torch.randn(n, dim)
    for i in reversed(range(len(sched.abar))):
        eps = model(x, torch.full((n,), i))
        x0_hat = ((x - (1 - sched.abar[i]).sqrt() * eps) / sched.abar[i].sqrt()).clamp(-x0_clip, x0_clip)
        x = sched.posterior_mean_coef1[i] * x0_hat + sched.posterior_mean_coef2[i] * x
        if i > 0:
            x = x + sched.posterior_var[i].sqrt() * torch.randn_like(x)
    return x


def rssm_weights(log_p0: torch.Tensor, K: int, normalization: str) -> torch.Tensor:
    """The weights of the B*K reverse samples (x_t-major), mean 1. batch: p0(x0_tilde) / mean p0, a constant factor
    that keeps eq. 36's minimiser; x_t's whose copies land where p0 is small count for little. per-x_t: p0 normalised
    over each x_t's K copies (self-normalised importance sampling), so every x_t counts the same."""
    if normalization == "batch":
        return torch.softmax(log_p0, 0) * len(log_p0)  # computed in log space
    return (torch.softmax(log_p0.view(-1, K), 1) * K).view(-1)


def rssm_loss(
    model: nn.Module,
    x_t: torch.Tensor,
    t: torch.Tensor,
    sched: Schedule,
    log_density: Callable,
    K: int,
    normalization: str = "batch",
):
    """Eq. 36: E_{x_t ~ p~, x0_tilde ~ q~(.|x_t)} [p0(x0_tilde) || eps_theta(x_t, t) - eps ||^2], x0_tilde by eq. 17."""
    abar = sched.abar[t][:, None].repeat_interleave(K, 0)
    x_t, t = x_t.repeat_interleave(K, 0), t.repeat_interleave(K, 0)
    eps = torch.randn_like(x_t)
    x0_tilde = x_t / abar.sqrt() - ((1 - abar) / abar).sqrt() * eps  # eq. 17
    w = rssm_weights(log_density(x0_tilde), K, normalization)
    return (w * ((model(x_t, t) - eps) ** 2).sum(-1)).mean()


def dsm_loss(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, sched: Schedule) -> torch.Tensor:
    """Eq. 5 in noise form: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, regress eps."""
    abar = sched.abar[t][:, None]
    eps = torch.randn_like(x0)
    return ((model(abar.sqrt() * x0 + (1 - abar).sqrt() * eps, t) - eps) ** 2).sum(-1).mean()


def langevin(score: Callable, x: torch.Tensor, steps: int, step_size: float) -> torch.Tensor:
    for _ in range(steps):
        x = x + step_size * score(x) + math.sqrt(2 * step_size) * torch.randn_like(x)
    return x


# ---------------------------------------------------------------------------------------------------
# The experiment


def rssm_method(args: Args, gmm: GaussianMixture, sched: Schedule, proposal: Callable) -> Callable:
    """RSSM's loss_fn(model, t): x_t from proposal(n), the sampling distribution p~_t (the same for every t)."""
    K, norm = args.num_reverse_samples, args.weight_normalization
    return lambda model, t: rssm_loss(model, proposal(len(t)), t, sched, gmm.log_prob, K, norm)


def dsm_method(args: Args, gmm: GaussianMixture, sched: Schedule) -> Callable:
    """DSM's loss_fn(model, t) on a fixed data set of true samples; one epoch is one pass over it."""
    data, batches = gmm.sample(args.steps_per_epoch * args.batch_size), iter(())

    def loss_fn(model, t):
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(data[torch.randperm(len(data))].split(args.batch_size))
            batch = next(batches)
        return dsm_loss(model, batch, t, sched)

    return loss_fn


def train_and_sample(args: Args, sched: Schedule, loss_fn: Callable, x0_clip: float) -> tuple[torch.Tensor, float]:
    """The same initial network (seeded), optimiser and number of steps for every trained method; returns
    args.num_samples samples of the trained model and the seconds it took."""
    start = time.time()
    torch.manual_seed(args.seed)
    model = EpsNetwork(args.dim)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for _ in range(args.epochs * args.steps_per_epoch):
        t = torch.randint(0, args.diffusion_steps, (args.batch_size,))
        loss = loss_fn(model, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return reverse_diffusion(model, args.num_samples, args.dim, sched, x0_clip), time.time() - start


def score_samples(x: torch.Tensor, gmm: GaussianMixture, args: Args) -> dict:
    h = [b * mode_radius(gmm) for b in args.mmd_bandwidths]
    return {"samples": x, "weights": mode_weights(x, gmm), "mmd2": mmd2(x, gmm, h)}


def box(gmm: GaussianMixture) -> float:
    """Half width of a cube that holds the data: the clip of x0_hat in sampling and the plots' limits."""
    return float(gmm.means.abs().max() + 4 * torch.linalg.eigvalsh(gmm.covs).max().sqrt())


def run(args: Args) -> dict:
    """Trains and samples the four methods; returns {method: {"samples", "weights", "mmd2", "seconds"}}, with
    "true samples" first: a fresh draw of the target, the estimators' floor. Every trained method starts from the
    same seeded network, so that runs of one seed are paired."""
    validate_args(args)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    gmm, sched = make_target(args), make_schedule(args.diffusion_steps, args.beta_start, args.beta_end)
    d, std, b = args.dim, args.gaussian_std, args.uniform_bound
    dsm = dsm_method(args, gmm, sched)  # draws DSM's data set (the only method that sees true samples)
    results = {"true samples": {**score_samples(gmm.sample(args.num_samples), gmm, args), "seconds": 0.0}}
    losses = {
        f"RSSM, p~ = N(0, {std**2:g}I)": rssm_method(args, gmm, sched, lambda n: std * torch.randn(n, d)),
        f"RSSM, p~ = Unif([-{b:g}, {b:g}]^{d})": rssm_method(
            args, gmm, sched, lambda n: (2 * torch.rand(n, d) - 1) * b
        ),
        "DSM (true samples)": dsm,
    }
    for name, loss_fn in losses.items():
        x, seconds = train_and_sample(args, sched, loss_fn, box(gmm))
        results[name] = {**score_samples(x, gmm, args), "seconds": seconds}
    start = time.time()  # Langevin with the true score, started from N(0, std^2 I) like the Gaussian RSSM
    x = langevin(gmm.score, std * torch.randn(args.num_samples, d), args.langevin_steps, args.langevin_step_size)
    results[f"Langevin, {args.langevin_steps} steps"] = {**score_samples(x, gmm, args), "seconds": time.time() - start}
    return results


def mode_names(gmm: GaussianMixture) -> list[str]:
    if gmm.means.shape[1] <= 3:
        return [f"[{', '.join(f'{v:g}' for v in m.tolist())}]" for m in gmm.means]
    return [f"mode {j + 1}" for j in range(len(gmm.means))]


def print_table(results: dict, args: Args) -> None:
    gmm = make_target(args)
    head = " | ".join(f"weight of {m}" for m in mode_names(gmm))
    print(f"\n| method | {head} | MMD^2 to the target | seconds |")
    print("|---|" + "---|" * (len(gmm.means) + 2))
    print(f"| target | {' | '.join(f'{w:.3f}' for w in args.weights)} | 0 | - |")
    for name, r in results.items():
        print(f"| {name} | {' | '.join(f'{w:.3f}' for w in r['weights'])} | {r['mmd2']:.2e} | {r['seconds']:.1f} |")
    print(
        f"\nMMD^2: Gaussian kernels of bandwidths {', '.join(f'{b:g}' for b in args.mmd_bandwidths)} x "
        f"{mode_radius(gmm):.3g} (a mode's RMS radius), the target's terms exact, {args.num_samples} samples per method; "
        "unbiased, so 'true samples' (a fresh draw of the target) shows its noise around 0."
    )


def plot(results: dict, path: str, lim: float) -> None:
    """Figure 2's layout: per method a scatter plot of the first two coordinates with marginal histograms
    (at d = 1, the histogram alone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4 * len(results), 4.4))
    grid = fig.add_gridspec(
        2, 2 * len(results), width_ratios=[4, 1] * len(results), height_ratios=[1, 4], hspace=0.05, wspace=0.05
    )
    for k, (name, r) in enumerate(results.items()):
        x = r["samples"].numpy()
        title = f"{name}\nweights {', '.join(f'{w:.2f}' for w in r['weights'])}"
        if x.shape[1] == 1:
            ax = fig.add_subplot(grid[:, 2 * k : 2 * k + 2])
            ax.hist(x[:, 0], bins=80, range=(-lim, lim))
            ax.set_title(title, fontsize=9)
            continue
        ax = fig.add_subplot(grid[1, 2 * k])
        ax_top, ax_right = fig.add_subplot(grid[0, 2 * k], sharex=ax), fig.add_subplot(grid[1, 2 * k + 1], sharey=ax)
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
        ax_top.hist(x[:, 0], bins=60, range=(-lim, lim))
        ax_right.hist(x[:, 1], bins=60, range=(-lim, lim), orientation="horizontal")
        ax_top.set_title(title, fontsize=9)
        ax_top.axis("off")
        ax_right.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    args = tyro.cli(Args)
    try:
        results = run(args)
    except ToyError as e:
        sys.exit(f"error: {e}")
    print_table(results, args)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    plot(results, args.output, box(make_target(args)))
    print(f"figure written to {args.output}")
