# DACER in one file: the diffusion-policy baseline of SDAC's paper, as the SDAC authors' code runs it (Wang et al.,
# "Diffusion Actor-Critic with Entropy Regulator", NeurIPS 2024; relax/algorithm/dacer.py at a50cf41). The policy is
# a reverse diffusion chain, trained by backpropagating min(Q1, Q2) through all T of its steps: the
# reparameterisation that SDAC's reverse sampling score matching avoids. The critics are DSAC-T's distributional twin
# critics. The exploration noise's scale alpha is tuned, every 10,000 updates, against the entropy of a Gaussian
# mixture fitted to the policy's actions. Docs: docs/dacer.md.
import math
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Callable, Literal, NamedTuple, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.distributions import MultivariateNormal
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

# the paper's results are on the -v4 envs: gymnasium's advice to use -v5 is filtered, so an error stays one line
warnings.filterwarnings("ignore", message=r".*The environment \S+ is out of date", category=DeprecationWarning)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]  # the name of this experiment
    seed: int = 1  # seed of the experiment
    track: bool = False  # log to Weights & Biases (the TensorBoard logs synced, as CleanRL does)
    wandb_project_name: str = "sdac"  # the wandb project
    wandb_entity: Optional[str] = None  # the wandb entity (team); None: your default
    torch_deterministic: bool = True  # if toggled, `torch.backends.cudnn.deterministic=True`
    cuda: bool = True  # if toggled and CUDA exists, the replay buffer and the whole training step live on the GPU
    save_model: bool = False  # save the final weights to `runs/{run_name}/{exp_name}.dacer_model`
    capture_video: bool = False  # write the first episode of each evaluation to videos/{run_name}/
    eval_only: bool = False  # no training: evaluate the policy in --load-model for --eval-episodes episodes
    load_model: Optional[str] = None  # with --eval-only: a saved model (--save-model) or a checkpoint
    checkpoint_interval: int = 50_000  # env steps between checkpoints (0: never; a signal writes one too)
    checkpoint_buffer: bool = False  # also put the replay buffer in checkpoints (large: up to buffer_size transitions)
    resume: Optional[str] = None  # a checkpoint to continue, with its own hyperparameters
    compile: bool = False  # torch.compile the update steps and the action sampler
    cudagraphs: bool = False  # also capture them in CUDA graphs (torch.compile mode "reduce-overhead"; needs CUDA)
    tf32: bool = False  # allow TF32 matmuls on Ampere and later GPUs (faster, about 1e-3 relative precision)

    # Environment and data
    env_id: str = "Ant-v4"  # the id of the environment (a gymnasium env with a bounded Box action space)
    total_timesteps: int = 1_000_000  # total environment steps, summed over the parallel envs
    num_envs: int = 5  # parallel envs; one iteration = one vector step + `gradient_steps` updates
    gradient_steps: int = 1  # gradient steps per iteration (update-to-data ratio = gradient_steps / num_envs)
    buffer_size: int = 1_000_000  # the replay memory buffer size
    learning_starts: int = 30_000  # env steps of random actions before learning, counted in total_timesteps
    batch_size: int = 256  # the batch size of samples from the replay memory
    gamma: float = 0.99  # the discount factor gamma
    reward_scale: float = 0.2  # rewards are multiplied by this in the critic targets

    # Distributional twin critics (DSAC-T)
    q_lr: float = 3e-4  # the learning rate of the twin critics
    tau: float = 0.005  # target critic smoothing coefficient, also the rate of the running mean of the critics' std
    target_network_frequency: int = 2  # updates between target critic updates, from update 0
    q_sample_clip: float = 3.0  # the target's sampled return: mean + std * z, z ~ N(0, 1) clipped to this
    q_target_bound: float = 3.0  # the sampled target is bounded to Q's mean +- this times the running mean std
    q_loss_epsilon: float = 0.1  # epsilon of the DSAC-T loss's scale and denominators

    # Diffusion policy
    diffusion_steps: int = 20  # T, the number of diffusion steps (the chain the policy's gradient runs through)
    beta_schedule: Literal["cosine", "linear", "vp"] = "linear"  # noise schedule (DACER's own code: vp)
    linear_beta_scale: float = 0.3  # scale of the linear schedule's betas
    x_T_scale: float = 0.5  # std of x_T at the start of reverse sampling
    policy_lr: float = 3e-4  # the learning rate of the noise network
    policy_lr_end: float = 3e-5  # with anneal_lr, the policy learning rate after the decay
    anneal_lr: bool = True  # policy lr: constant for policy_lr_decay_begin policy updates, then linear to policy_lr_end
    policy_lr_decay_begin: int = 25_000  # policy updates (not env steps) before the policy lr starts to fall
    policy_lr_decay_steps: int = 50_000  # policy updates over which the policy lr falls linearly to policy_lr_end
    policy_frequency: int = 2  # updates between policy updates, from update 0 (delayed update)

    # Exploration noise scale alpha, tuned by the entropy of a Gaussian mixture fitted to the policy's actions
    alpha_init: float = 3.0  # initial alpha (log alpha = log 3)
    alpha_lr: float = 3e-2  # Adam's learning rate on log alpha
    alpha_update_interval: int = 10_000  # updates between entropy estimates (each an alpha step), from update 0
    target_entropy_scale: float = 0.9  # alpha's target entropy: -target_entropy_scale * action_dim
    exploration_noise: float = 0.15  # actions: clip(a0 + N(0, (exploration_noise * alpha)^2), -1, 1)
    entropy_samples: int = 200  # actions drawn per state of the batch for the entropy estimate
    entropy_components: int = 3  # Gaussian components (full covariance) of the mixture fitted to them
    entropy_fit_seed: Optional[int] = None  # the mixture fit's k-means start: None, the run's RNG; DACER's own code: 42

    # Logging and evaluation
    log_interval: int = 500  # env steps between loss logs (and the non-finite check)
    eval_interval: int = 50_000  # env steps between evaluations; 0: only at the end
    eval_episodes: int = 20  # evaluation episodes, run at once in parallel envs (no exploration noise)
    progress_seconds: float = 30.0  # seconds between progress bar refreshes (0: every iteration)
    print_episodes: bool = False  # also print every finished training episode (TensorBoard gets them always)


ALGORITHM = "DACER"  # in messages, checkpoint formats and saved-model names
# bounds of the options, checked before a run starts: >= 1, >= 0, > 0, below a limit
AT_LEAST_ONE = (
    "total_timesteps num_envs gradient_steps buffer_size batch_size diffusion_steps policy_frequency"
    " target_network_frequency alpha_update_interval log_interval eval_episodes policy_lr_decay_steps"
    " entropy_components"
).split()
NON_NEGATIVE = (
    "learning_starts checkpoint_interval eval_interval progress_seconds exploration_noise policy_lr_decay_begin"
    " policy_lr_end alpha_lr"
).split()
POSITIVE = (
    "q_lr policy_lr alpha_init x_T_scale linear_beta_scale reward_scale q_sample_clip q_target_bound q_loss_epsilon"
).split()
BELOW = {"linear_beta_scale": 1.001}  # so that every beta_t < 1 (the linear betas reach 0.999 * scale)


# =====================================================================================================================
# The algorithm: noise schedules -> networks -> the reverse chain with its gradient -> the distributional critics
# (DSAC-T) -> the mixture entropy that tunes alpha -> one update


# ---------------------------------------------------------------------------------------------------------------------
# Noise schedules: beta_t, alpha_t = 1 - beta_t, abar_t = prod_{l<=t} alpha_l, for t = 1..T
# (tensors are indexed by i = t - 1)


class Schedule(NamedTuple):
    betas: torch.Tensor
    alphas: torch.Tensor
    abar: torch.Tensor  # abar_t
    abar_prev: torch.Tensor  # abar_{t-1}, with abar_0 = 1
    posterior_mean_coef1: torch.Tensor  # coefficient of x0 in the mean of q(x_{t-1} | x_t, x0)
    posterior_mean_coef2: torch.Tensor  # coefficient of x_t
    posterior_var: torch.Tensor  # variance of q(x_{t-1} | x_t, x0)
    # per step i, as Python numbers (reading them launches no kernel): sqrt(abar_t), sqrt(1 - abar_t), the two
    # posterior mean coefficients and the posterior std
    steps: tuple[tuple[float, float, float, float, float], ...]


def make_schedule(kind: str, T: int, linear_beta_scale: float = 0.8, device="cpu", dtype=torch.float32) -> Schedule:
    """Computed in float64, returned in `dtype` (float64 for the equivalence checks)."""
    t = torch.arange(1, T + 1, dtype=torch.float64)
    if kind == "cosine":  # Nichol & Dhariwal: abar_t = f(t) / f(0)
        s = 0.008
        f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = (1 - f(t) / f(t - 1)).clamp(max=0.999)
    elif kind == "linear":  # the authors' code
        betas = linear_beta_scale * torch.linspace(1e-4, 0.999, T, dtype=torch.float64)
    elif kind == "vp":  # discretised variance-preserving SDE, b_min = 0.1, b_max = 10
        b_min, b_max = 0.1, 10.0
        betas = 1 - torch.exp(-b_min / T - (b_max - b_min) * (2 * t - 1) / (2 * T**2))
    else:
        raise ValueError(f"unknown beta schedule {kind!r}")
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    coef1 = betas * abar_prev.sqrt() / (1 - abar)
    coef2 = (1 - abar_prev) * alphas.sqrt() / (1 - abar)
    var = betas * (1 - abar_prev) / (1 - abar)
    betas, alphas, abar, abar_prev, coef1, coef2, var = (
        x.to(dtype) for x in (betas, alphas, abar, abar_prev, coef1, coef2, var)
    )
    steps = tuple(zip(*(x.tolist() for x in (abar.sqrt(), (1 - abar).sqrt(), coef1, coef2, var.sqrt()))))
    tensors = (x.to(device) for x in (betas, alphas, abar, abar_prev, coef1, coef2, var))
    return Schedule(*tensors, steps)


# ---------------------------------------------------------------------------------------------------------------------
# Networks: the noise network eps_theta(a_t, s, t) = MLP(concat[s, a_t, emb(t)]) (SDAC's), called `actor` wherever it
# is used, and DACER's twin distributional critics (`qf`): each the mean and std of the return, 3 x 256 with mish


def haiku_init_(weight: torch.Tensor, bias: torch.Tensor, fan_in: int) -> None:
    """Haiku's Linear init: W ~ normal(0, 1/fan_in) truncated at 2 std, b = 0."""
    sigma = 1 / math.sqrt(fan_in)
    nn.init.trunc_normal_(weight, std=sigma, a=-2 * sigma, b=2 * sigma)
    nn.init.zeros_(bias)


def linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    haiku_init_(layer.weight, layer.bias, in_dim)
    return layer


def mlp(in_dim: int, out_dim: int, hidden: int = 256, layers: int = 3) -> nn.Sequential:
    mods, d = [], in_dim
    for _ in range(layers):
        mods += [linear(d, hidden), nn.Mish()]
        d = hidden
    return nn.Sequential(*mods, linear(d, out_dim))


class TimeEmbedding(nn.Module):
    """emb(t): sin and cos of t * 10000^(-j/8), j = 0..7, times 1/sqrt(16); then Linear(32) -> mish -> Linear(16)."""

    def __init__(self, dim: int = 16):
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", 10000.0 ** (-torch.arange(half) / half), persistent=False)
        self.scale = 1 / math.sqrt(dim)
        self.net = nn.Sequential(linear(dim, 2 * dim), nn.Mish(), linear(2 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = t.float()[:, None] * self.freqs
        return self.net(torch.cat([x.sin(), x.cos()], -1) * self.scale)


class NoiseNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.act_dim = act_dim
        self.time_emb = TimeEmbedding(16)
        self.net = mlp(obs_dim + act_dim + 16, act_dim)

    def forward(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(a_t, s, t) for step indices t [B]."""
        return self.eps(obs, a_t, self.time_emb(t))

    def eps(self, obs: torch.Tensor, a_t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """The same from emb(t), so that a reverse chain embeds its T steps once."""
        return self.net(torch.cat([obs, a_t, emb], -1))


class BatchedLinear(nn.Module):
    """n independent linear layers in one batched matmul, [n, B, in] -> [n, B, out]; haiku's init per member."""

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim))
        haiku_init_(self.weight, self.bias, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQNetwork(nn.Module):
    """The twin distributional critics Z1, Z2 (independent weights), evaluated in one batched call. Each maps (s, a)
    to the mean of the return, Q, and its std, softplus of a second output. Returns mean [2, B] and std [2, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        dims = [obs_dim + act_dim] + [hidden] * layers
        mods = [m for i, o in zip(dims[:-1], dims[1:]) for m in (BatchedLinear(2, i, o), nn.Mish())]
        self.net = nn.Sequential(*mods, BatchedLinear(2, hidden, 2))

    def forward(self, obs: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, a], -1)
        out = self.net(x.expand(2, *x.shape))
        return out[..., 0], F.softplus(out[..., 1])


# ---------------------------------------------------------------------------------------------------------------------
# The policy: reverse diffusion (DDPM form) with its gradient, then Gaussian exploration noise scaled by alpha


# SDAC's chain, but for one line: no torch.no_grad, so that the policy's loss backpropagates through all T steps
# (acting and evaluation call it under torch.no_grad)
def reverse_diffusion(actor: NoiseNetwork, obs: torch.Tensor, sched: Schedule, act_dim: int, x_T_scale: float):
    """a_0 ~ pi(.|s): x_T ~ N(0, x_T_scale^2 I); x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) with x0_hat clipped to [-1, 1]."""
    B, T = obs.shape[0], len(sched.steps)
    emb = actor.time_emb(torch.arange(T, device=obs.device))  # emb(t) of every step, once per chain
    x = torch.randn(B, act_dim, device=obs.device) * x_T_scale
    for i in reversed(range(T)):
        sqrt_abar, sqrt_one_minus_abar, coef1, coef2, std = sched.steps[i]
        eps = actor.eps(obs, x, emb[i].expand(B, -1))
        x0_hat = ((x - sqrt_one_minus_abar * eps) / sqrt_abar).clamp(-1, 1)
        x = coef1 * x0_hat + coef2 * x
        if i > 0:  # no noise at the last step
            x = x + std * torch.randn_like(x)
    return x.clamp(-1, 1)


def sample_actions(actor: NoiseNetwork, obs: torch.Tensor, noise_std, sched: Schedule, x_T_scale: float):
    """DACER's action: clip(a0 + N(0, noise_std^2 I), -1, 1), a0 from the reverse chain, noise_std = 0.15 alpha when
    acting and learning, 0 when evaluating. No best of N. Differentiable in the noise network's parameters."""
    a0 = reverse_diffusion(actor, obs, sched, actor.act_dim, x_T_scale)
    return (a0 + noise_std * torch.randn_like(a0)).clamp(-1, 1)


def make_policy(sched: Schedule, args: Args) -> Callable:
    """policy(actor, obs, noise_std): sample_actions with this run's schedule and x_T scale."""
    return partial(sample_actions, sched=sched, x_T_scale=args.x_T_scale)


# ---------------------------------------------------------------------------------------------------------------------
# The distributional critics (DSAC-T): a sampled target, bounded, and a loss that fits each critic's mean and std


def q_sample(mean: torch.Tensor, std: torch.Tensor, clip: float) -> torch.Tensor:
    """A return drawn from each critic's Gaussian: mean + std * z, z ~ N(0, 1) clipped to [-clip, clip]."""
    return mean + std * torch.randn_like(mean).clamp(-clip, clip)


def running_std(sigma_bar: torch.Tensor, q_std: torch.Tensor, tau: float) -> torch.Tensor:
    """sigma_bar, the running mean of each critic's std [2]: at first (sigma_bar = -1, the authors' sentinel) the
    batch's mean std, then tau * (batch's mean std) + (1 - tau) * sigma_bar."""
    new = q_std.detach().mean(1)
    return torch.where(sigma_bar == -1.0, new, tau * new + (1 - tau) * sigma_bar)


def dsac_t_loss(q_mean, q_std, target, target_sample, sigma_bar, bound: float, eps: float) -> torch.Tensor:
    """DSAC-T's loss of each critic [2], as the authors' code writes it, with sg() = no gradient:
        -(sigma_bar^2 + eps) * mean_B[ q_mean sg(y - q_mean) / (sg(std)^2 + eps)
                                       + std ((sg(q_mean) - y_b)^2 - sg(std)^2) / (sg(std)^3 + eps) ],
    y the target from the smaller mean, y_b the sampled target bounded to q_mean +- bound * sigma_bar. Its gradient
    moves each mean towards y and each std towards |q_mean - y_b|, scaled by sigma_bar^2."""
    sb = sigma_bar[:, None]
    y_b = (q_mean + (target_sample - q_mean).clamp(-bound * sb, bound * sb)).detach()
    std_sg = q_std.detach().clamp(min=0)
    mean_term = q_mean * (target - q_mean).detach() / (std_sg**2 + eps)
    std_term = q_std * ((q_mean.detach() - y_b) ** 2 - std_sg**2) / (std_sg**3 + eps)
    return -(sigma_bar**2 + eps) * (mean_term + std_term).mean(1)


# ---------------------------------------------------------------------------------------------------------------------
# The entropy regulator: a Gaussian mixture fitted to the policy's actions at each state, as scikit-learn's
# GaussianMixture fits it (the authors call it), done here in torch for all states at once


def kmeans_labels(x: torch.Tensor, K: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """scikit-learn's KMeans(n_init=1) on each row of x [S, M, d]: greedy k-means++ seeding (2 + ln K candidates per
    centre, the one that lowers the squared distances most), then Lloyd's steps until no label changes (300 at most;
    an emptied cluster keeps its centre). Returns labels [S, M]."""
    S, M, _ = x.shape
    rows = torch.arange(S)
    first = torch.randint(M, (S,), generator=generator)
    centres = x[rows, first][:, None]  # [S, 1, d]
    closest = torch.cdist(x, centres)[..., 0] ** 2  # [S, M]: squared distance to the nearest centre
    trials = 2 + int(math.log(K))
    for _ in range(1, K):
        r = torch.rand(S, trials, generator=generator, dtype=x.dtype) * closest.sum(1, keepdim=True)
        cand = torch.searchsorted(closest.cumsum(1), r).clamp(max=M - 1)  # drawn with probability ~ closest
        new_closest = torch.minimum(closest[:, None], torch.cdist(x[rows[:, None], cand], x) ** 2)  # [S, trials, M]
        best = new_closest.sum(2).argmin(1)
        closest = new_closest[rows, best]
        centres = torch.cat([centres, x[rows, cand[rows, best]][:, None]], 1)
    labels = torch.cdist(x, centres).argmin(2)
    for _ in range(300):
        member = F.one_hot(labels, K).to(x.dtype)  # [S, M, K]
        count = member.sum(1)[..., None]  # [S, K, 1]
        centres = torch.where(count > 0, member.transpose(1, 2) @ x / count.clamp(min=1), centres)
        new_labels = torch.cdist(x, centres).argmin(2)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return labels


def fit_gaussian_mixture(x: torch.Tensor, labels: torch.Tensor, K: int, max_iter=100, tol=1e-3, reg=1e-6):
    """Full-covariance Gaussian mixtures, one per row of x [S, M, d], by EM from the hard assignment `labels` [S, M],
    as scikit-learn's GaussianMixture (its defaults: covariances + reg I, each row stops once its mean
    log-likelihood gains less than tol, max_iter iterations at most). Returns weights [S, K], covariances [S, K, d, d]."""
    S, M, d = x.shape

    def m_step(resp):  # [S, M, K] -> component counts [S, K], means [S, K, d], covariances [S, K, d, d]
        nk = resp.sum(1) + 10 * torch.finfo(x.dtype).eps
        means = resp.transpose(1, 2) @ x / nk[..., None]
        diff = x[:, None] - means[:, :, None]  # [S, K, M, d]
        cov = (resp.transpose(1, 2)[..., None] * diff).transpose(2, 3) @ diff / nk[..., None, None]
        return nk, means, cov + reg * torch.eye(d, dtype=x.dtype, device=x.device)

    nk, means, cov = m_step(F.one_hot(labels, K).to(x.dtype))
    weights = nk / M
    bound = torch.full((S,), -math.inf, dtype=x.dtype, device=x.device)
    done = torch.zeros(S, dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        # E step: log w_k N(x | mu_k, Sigma_k) [S, M, K] and each row's mean log-likelihood
        log_p = MultivariateNormal(means[:, None], cov[:, None]).log_prob(x[:, :, None]) + weights.log()[:, None]
        log_norm = log_p.logsumexp(2)
        nk, new_means, new_cov = m_step((log_p - log_norm[..., None]).exp())
        keep = done[:, None]  # rows that converged keep their fit
        weights = torch.where(keep, weights, nk / nk.sum(1, keepdim=True))
        means = torch.where(keep[..., None], means, new_means)
        cov = torch.where(keep[..., None, None], cov, new_cov)
        new_bound = log_norm.mean(1)
        done = done | ((new_bound - bound).abs() < tol)
        bound = torch.where(keep[:, 0], bound, new_bound)
        if done.all():
            break
    return weights, cov


def mixture_entropy_bound(weights: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """H(w) + sum_k w_k H(N(mu_k, Sigma_k)): the upper bound on a Gaussian mixture's entropy that DACER estimates."""
    gaussians = MultivariateNormal(torch.zeros(cov.shape[:-1], dtype=cov.dtype), covariance_matrix=cov).entropy()
    return -(weights * weights.log()).sum(-1) + (weights * gaussians).sum(-1)


@torch.no_grad()
def policy_entropy(policy, actor, obs, noise_std, samples: int, K: int, generator=None) -> torch.Tensor:
    """The entropy estimate that tunes alpha: `samples` actions of the policy (with its exploration noise) at each
    state of the batch, a K-component mixture fitted to each state's actions (on the CPU, in float64), the mean of
    their entropy bounds."""
    B = obs.shape[0]
    a = policy(actor, obs.repeat(samples, 1), noise_std)  # row m * B + b: sample m at state b
    a = a.view(samples, B, -1).transpose(0, 1).double().cpu()  # [B, samples, d]
    weights, cov = fit_gaussian_mixture(a, kmeans_labels(a, K, generator), K)
    return mixture_entropy_bound(weights, cov).mean().to(obs)


# ---------------------------------------------------------------------------------------------------------------------
# One update: the critics (DSAC-T), the policy (min Q through the chain), the target critics, alpha


class Batch(NamedTuple):
    """A minibatch of transitions from the replay buffer (terminations: 1.0 where s' ended the episode)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online, all parameters in one fused call."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)


def policy_lr_at(policy_updates: int, lr: float, lr_end: float, decay_begin: int, decay_steps: int) -> float:
    """lr for the first decay_begin policy updates, then linear to lr_end over decay_steps, then lr_end."""
    frac = min(max(policy_updates - decay_begin, 0) / decay_steps, 1.0)
    return lr + frac * (lr_end - lr)


def make_update(
    policy, actor, qf, qf_target, log_alpha, sigma_bar, q_optimizer, actor_optimizer, alpha_optimizer, sched, args
):
    """DACER's update, in the authors' order. update(batch, alpha, u), for update number u = 0, 1, ...: the critics'
    step (DSAC-T, its target from a' ~ pi(.|s') and the target critics); at every policy_frequency-th u the policy's
    step, min(Q1, Q2) of the critics' means backpropagated through the chain; at every target_network_frequency-th u
    the target critics; at every alpha_update_interval-th u the entropy estimate and one Adam step on log alpha. All
    losses are taken at the parameters from before this update. Its statistics stay tensors (no host sync), but for
    the entropy estimate's."""
    target_entropy = -args.target_entropy_scale * actor.act_dim
    generator = None if args.entropy_fit_seed is None else torch.Generator()
    if args.entropy_samples < args.entropy_components:
        raise SystemExit(f"error: --entropy-samples must be at least --entropy-components ({args.entropy_components})")

    def critic_loss(data: Batch, alpha: torch.Tensor):
        # the target: a' ~ pi(.|s') as when acting; y from the smaller of the target critics' means, y_sample a
        # return drawn from that same critic
        with torch.no_grad():
            next_a = policy(actor, data.next_obs, args.exploration_noise * alpha)
            next_mean, next_std = qf_target(data.next_obs, next_a)  # [2, B] each
            next_q = next_mean.min(0).values
            next_sample = q_sample(next_mean, next_std, args.q_sample_clip)
            next_q_sample = torch.where(next_mean[0] < next_mean[1], next_sample[0], next_sample[1])
            not_done = 1 - data.terminations
            y = args.reward_scale * data.rewards + not_done * args.gamma * next_q
            y_sample = args.reward_scale * data.rewards + not_done * args.gamma * next_q_sample
        q_mean, q_std = qf(data.obs, data.actions)
        new_sigma_bar = running_std(sigma_bar, q_std, args.tau)  # this batch's std enters the loss's sigma_bar
        losses = dsac_t_loss(q_mean, q_std, y, y_sample, new_sigma_bar, args.q_target_bound, args.q_loss_epsilon)
        q1, q2 = q_mean.detach().mean(1)
        stats = dict(qf1_values=q1, qf2_values=q2, qf1_loss=losses[0].detach(), qf2_loss=losses[1].detach())
        q1_std, q2_std = q_std.detach().mean(1)
        stats |= dict(qf_loss=losses.detach().mean(), qf1_std=q1_std, qf2_std=q2_std, target_q=y.mean())
        return losses.sum(), new_sigma_bar, stats

    def actor_loss(data: Batch, alpha: torch.Tensor):
        # -min(Q1, Q2)(s, a), a = clip(a0 + 0.15 alpha N(0, I)): its gradient runs back through all T chain steps
        a = policy(actor, data.obs, args.exploration_noise * alpha)
        q_mean, _ = qf(data.obs, a)
        loss = -q_mean.min(0).values.mean()
        return loss, dict(actor_loss=loss.detach())

    # --compile / --cudagraphs: the losses (forward and backward) and the optimiser steps, each without graph breaks
    q_step, actor_step = q_optimizer.step, actor_optimizer.step
    if args.compile or args.cudagraphs:
        mode = "reduce-overhead" if args.cudagraphs else None
        critic_loss, actor_loss = torch.compile(critic_loss, mode=mode), torch.compile(actor_loss, mode=mode)
        q_step, actor_step = torch.compile(q_step, mode=mode), torch.compile(actor_step, mode=mode)

    def update(data: Batch, alpha: torch.Tensor, u: int) -> dict[str, torch.Tensor]:
        if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we clone them below)
            torch.compiler.cudagraph_mark_step_begin()
        update_policy = u % args.policy_frequency == 0
        if update_policy and args.anneal_lr:  # the policy lr is counted in policy updates
            lr_args = args.policy_lr, args.policy_lr_end, args.policy_lr_decay_begin, args.policy_lr_decay_steps
            set_lr(actor_optimizer, policy_lr_at(u // args.policy_frequency, *lr_args))
        stats = {}
        if update_policy:  # first: its backward also reaches the critics, whose gradients the critics' loss replaces
            loss, stats = actor_loss(data, alpha)
            actor_optimizer.zero_grad()
            loss.backward()
        loss, new_sigma_bar, critic_stats = critic_loss(data, alpha)
        q_optimizer.zero_grad()
        loss.backward()
        stats = {**stats, **critic_stats}
        entropy = None
        if u % args.alpha_update_interval == 0:  # the entropy of the policy before its step
            if generator is not None:  # DACER's own code: the same k-means start draws at every fit
                generator.manual_seed(args.entropy_fit_seed)
            noise_std = args.exploration_noise * alpha
            entropy = policy_entropy(
                policy, actor, data.obs, noise_std, args.entropy_samples, args.entropy_components, generator
            )
        q_step()
        if update_policy:
            actor_step()
        if u % args.target_network_frequency == 0:
            soft_update(qf_target, qf, args.tau)
        with torch.no_grad():
            sigma_bar.copy_(new_sigma_bar)
        if entropy is not None:  # one Adam step on log alpha: alpha grows while the entropy is below its target
            alpha_loss = -log_alpha * (target_entropy - entropy)
            alpha_optimizer.zero_grad()
            alpha_loss.backward()
            alpha_optimizer.step()
            stats["entropy"] = entropy
        stats |= dict(sigma_bar1=sigma_bar[0].clone(), sigma_bar2=sigma_bar[1].clone())
        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats

    return update


# ---------------------------------------------------------------------------------------------------------------------
# Speed (optional): --compile and --cudagraphs, for the update above and for acting; eager runs skip all of it


def make_optimizer(params, lr: float, args: Args, device: torch.device) -> torch.optim.Adam:
    """Adam; compiled, its lr is a tensor (a new lr does not recompile) and capturable on CUDA (as CUDA graphs need)."""
    if args.compile or args.cudagraphs:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), capturable=device.type == "cuda")
    return torch.optim.Adam(params, lr=lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """In place, so that a compiled step whose lr is a tensor does not recompile."""
    group = optimizer.param_groups[0]
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def compile_policy(policy: Callable, args: Args) -> Callable:
    """Static shapes: one graph per batch size (num_envs, eval_episodes); under CUDA graphs each call is a new step."""
    compiled = torch.compile(policy, mode="reduce-overhead" if args.cudagraphs else None, dynamic=False)
    if not args.cudagraphs:
        return compiled

    def step(*a, **k):
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*a, **k)

    return step


# ---------------------------------------------------------------------------------------------------------------------
# A saved run's policy, for --eval-only


def saved_policy(saved: dict, args: Args, obs_dim: int, act_dim: int, device) -> Callable:
    """--eval-only: obs -> action, without exploration noise, from the saved noise network."""
    actor = NoiseNetwork(obs_dim, act_dim).to(device)
    actor.load_state_dict(saved["actor"])
    policy = make_policy(make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device), args)
    return torch.no_grad()(lambda obs: policy(actor, obs, 0.0))


# =====================================================================================================================
# Training loop


def train(args: Args, stop: Sequence[str] = ()) -> dict:
    """One run. A signal's name in `stop` ends it after the current iteration, with a checkpoint to resume from."""
    scale, bias, ckpt = check_run(args)  # bad input fails here, before anything is written
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"

    # seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    torch.set_float32_matmul_precision("high" if args.tf32 else "highest")  # TF32 or full float32 matmuls

    # env setup
    envs = make_vector_env(args.env_id, args.num_envs)
    eval_envs = make_vector_env(args.env_id, args.eval_episodes, render_first=args.capture_video)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]

    # the noise network eps_theta, the twin distributional critics and their targets, alpha, sigma_bar
    actor = NoiseNetwork(obs_dim, act_dim).to(device)
    qf = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.tensor(math.log(args.alpha_init), device=device, requires_grad=True)
    sigma_bar = torch.full((2,), -1.0, device=device)  # running mean of each critic's std; -1: none yet
    q_optimizer = make_optimizer(qf.parameters(), args.q_lr, args, device)
    actor_optimizer = make_optimizer(actor.parameters(), args.policy_lr, args, device)
    alpha_optimizer = torch.optim.Adam([log_alpha], lr=args.alpha_lr)
    sched = make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device)
    policy = make_policy(sched, args)
    optimizers = q_optimizer, actor_optimizer, alpha_optimizer
    update = make_update(policy, actor, qf, qf_target, log_alpha, sigma_bar, *optimizers, sched, args)
    act = torch.no_grad()(policy)  # acting and evaluation: no gradient
    if args.compile or args.cudagraphs:  # (the update compiles its own)
        act = compile_policy(act, args)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)

    # what a checkpoint holds, by name
    state = dict(actor=actor, qf=qf, qf_target=qf_target, log_alpha=log_alpha, sigma_bar=sigma_bar, buffer=rb)
    state |= dict(q_optimizer=q_optimizer, actor_optimizer=actor_optimizer, alpha_optimizer=alpha_optimizer)
    global_step, iteration, num_updates, eval_history = restore_checkpoint(ckpt, state, args) if ckpt else (0, 0, 0, [])
    run_dir = (os.path.dirname(args.resume) or ".") if ckpt else f"runs/{run_name}"  # a resumed run: the same folder
    writer, tracker = open_logs(args, run_name, run_dir, global_step, resumed=ckpt is not None)
    print(f"DACER on {args.env_id}: T={args.diffusion_steps} | {device} | {run_dir}")
    num_iterations = math.ceil(args.total_timesteps / args.num_envs)
    pbar = tqdm(
        total=args.total_timesteps, initial=global_step, unit="step", mininterval=args.progress_seconds, file=sys.stdout
    )
    metrics, last_checkpoint, iteration_seconds = {}, args.resume, []
    start_time, start_step = time.time(), global_step

    # start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    if ckpt:  # the envs as they were at the checkpoint: the run goes on as if never stopped
        obs = restore_env_state(envs, ckpt.get("envs"), obs)
    for iteration in range(iteration + 1, num_iterations + 1):
        iteration_start = time.perf_counter()
        global_step += args.num_envs
        alpha = log_alpha.detach().exp()

        # act (uniform random during warm-up, then the chain's sample with exploration noise), step, store
        if global_step <= args.learning_starts:
            actions = np.random.uniform(-1, 1, (args.num_envs, act_dim)).astype(np.float32)
        else:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
            actions = act(actor, obs_t, args.exploration_noise * alpha).cpu().numpy()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions * scale + bias)
        for i in np.flatnonzero(infos.get("_episode", [])):
            writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
            writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)
            if args.print_episodes:
                tqdm.write(f"global_step={global_step}, episodic_return={infos['episode']['r'][i]:.1f}")
        # s' is the true final observation where an episode ended (SAME_STEP autoreset), and done = terminated, so
        # that truncated episodes bootstrap
        real_next_obs = next_obs.copy()
        for i in np.flatnonzero(infos.get("_final_obs", [])):
            real_next_obs[i] = infos["final_obs"][i]
        rb.add(obs, actions, rewards, real_next_obs, terminations)
        obs = next_obs

        # training (a run resumed without its buffer first refills learning_starts transitions with the policy)
        if global_step > args.learning_starts and rb.size >= min(args.learning_starts, args.buffer_size):
            for _ in range(args.gradient_steps):
                # u counts updates from 0: the policy, the targets and alpha step at u = 0 and at every multiple of
                # their interval, as in the authors' code
                u, num_updates = num_updates, num_updates + 1
                metrics |= update(rb.sample(args.batch_size), alpha, u)
            iteration_seconds.append(time.perf_counter() - iteration_start)
        if crossed(global_step, args.log_interval, args.num_envs):
            check_finite(metrics, global_step, last_checkpoint)  # the training step's one host sync
            for k, v in metrics.items():
                writer.add_scalar(f"losses/{k}", v, global_step)
            if metrics:
                writer.add_scalar("losses/alpha", log_alpha.exp(), global_step)
                writer.add_scalar("charts/policy_lr", actor_optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("charts/SPS", (global_step - start_step) / (time.time() - start_time), global_step)

        if crossed(global_step, args.eval_interval, args.num_envs) or iteration == num_iterations:
            check_finite(metrics, global_step, last_checkpoint)
            frames = [] if args.capture_video else None
            eval_seed = args.seed + 100_000 + global_step
            returns, lengths = evaluate(lambda o: act(actor, o, 0.0), eval_envs, scale, bias, device, eval_seed, frames)
            eval_history.append((global_step, float(returns.mean()), float(returns.std())))
            writer.add_scalar("eval/episodic_return", returns.mean(), global_step)
            writer.add_scalar("eval/episodic_length", lengths.mean(), global_step)
            tqdm.write(f"global_step={global_step}, eval_return={returns.mean():.1f} +- {returns.std():.1f}")
            pbar.set_postfix(eval=f"{returns.mean():.1f}", refresh=False)
            if frames:
                write_video(f"videos/{run_name}/eval_step{global_step}.mp4", frames, eval_envs)

        stopping = bool(stop)  # read once: a signal that comes after this line is handled in the next iteration
        if crossed(global_step, args.checkpoint_interval, args.num_envs) or stopping:
            check_finite(metrics, global_step, last_checkpoint)
            counters = dict(global_step=global_step, iteration=iteration, num_updates=num_updates)
            counters |= dict(eval_history=eval_history, envs=env_state(envs, obs))
            last_checkpoint = save_checkpoint(f"{run_dir}/checkpoint.pt", args, run_name, state, counters)
        pbar.update(args.num_envs)
        if stopping and iteration < num_iterations:  # (stopped in its last iteration, the run is complete)
            tqdm.write(
                f"stopped by {stop[0]} at global step {global_step}; checkpoint written. To continue:\n"
                f"  python {__file__} --resume {last_checkpoint}"
            )
            break

    pbar.close()
    if args.save_model and iteration == num_iterations:
        save_model(f"{run_dir}/{args.exp_name}.dacer_model", args, state)
    envs.close()
    eval_envs.close()
    writer.close()
    if tracker:
        tracker.finish()
    seconds = float(np.mean(iteration_seconds[10:] or iteration_seconds)) if iteration_seconds else None
    if seconds:  # the first 10 training iterations (compilation) excluded where there are more
        print(f"time per training iteration: {seconds * 1000:.1f} ms (evaluation excluded), on {device}")
    stopped = bool(stop) and iteration < num_iterations  # with a checkpoint to continue from (exit EXIT_STOPPED)
    out = dict(run_dir=run_dir, global_step=global_step, stopped=stopped, eval_history=eval_history)
    return out | {"checkpoint": last_checkpoint, "alpha": log_alpha.exp().item(), "seconds_per_iteration": seconds}


# =====================================================================================================================
# Plumbing: envs, input checks, the replay buffer, checkpoints, evaluation, logs and the command line; the same line
# for line in the RL scripts (tests/test_plumbing.py), so that a diff of two shows only the algorithm.


def make_vector_env(env_id: str, num_envs: int, render_first: bool = False) -> gym.vector.VectorEnv:
    """SAME_STEP autoreset: where an episode ends, next_obs is the reset one and infos["final_obs"] the true s'."""
    kwargs = [{"render_mode": "rgb_array"} if render_first and i == 0 else {} for i in range(num_envs)]
    envs = [partial(gym.make, env_id, **kw) for kw in kwargs]
    envs = gym.vector.SyncVectorEnv(envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def check_env(env_id: str, render: bool = False, cuda: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Makes the env (and a frame, to render) before anything is written. Returns the actions' scale and bias: the
    policy acts in [-1, 1]^d, the env gets a * scale + bias (RescaleAction would clip a; the control cost sees it)."""
    if render and not os.environ.get("DISPLAY"):  # MuJoCo reads it at import: EGL for a run on the GPU, else OSMesa
        os.environ.setdefault("MUJOCO_GL", "egl" if cuda and torch.cuda.is_available() else "osmesa")
    try:
        env = gym.make(env_id, **({"render_mode": "rgb_array"} if render else {}))
        env.reset(seed=0)
        if render:
            env.render()
        env.close()
    except Exception as e:  # noqa: BLE001 - an unknown id, or what MuJoCo's import or GL library raises
        what = "--capture-video cannot render" if render and not isinstance(e, gym.error.Error) else "cannot create"
        hint = " (Pusher-v4 needs mujoco < 3: use Pusher-v5)" if env_id == "Pusher-v4" else ""
        if (gl := os.environ.get("MUJOCO_GL")) and not isinstance(e, gym.error.Error):
            hint = f" (MUJOCO_GL={gl}: install OSMesa (libosmesa6) for osmesa or EGL (libegl1) for egl, or unset it)"
        raise SystemExit(f"error: {what} env {env_id!r}: {e}{hint}") from None
    space, obs_space = env.action_space, env.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"error: {ALGORITHM} needs a flat Box observation space, got {obs_space}")
    if not isinstance(space, gym.spaces.Box):
        raise SystemExit(f"error: {ALGORITHM} needs a continuous (Box) action space, got {space}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
        raise SystemExit(f"error: {ALGORITHM} needs a bounded Box action space with finite low < high, got {space}")
    return ((high - low) / 2).astype(np.float32), ((high + low) / 2).astype(np.float32)


def validate_args(args: Args) -> None:
    """Each option against its bound (below Args), then the combinations that cannot work; one line for the first."""
    checks = [(n, ">= 1", getattr(args, n) >= 1) for n in AT_LEAST_ONE]
    checks += [(n, ">= 0", getattr(args, n) >= 0) for n in NON_NEGATIVE]
    checks += [(n, "> 0", getattr(args, n) > 0) for n in POSITIVE]
    checks += [(n, f"< {limit}", getattr(args, n) < limit) for n, limit in BELOW.items()]
    checks += [(n, "finite", math.isfinite(v)) for n, v in asdict(args).items() if isinstance(v, float)]
    for name, bound, ok in checks:  # (NaN fails every comparison)
        if not ok:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be {bound}, got {getattr(args, name)}")
    if not 0 <= args.seed < 2**32:
        raise SystemExit(f"error: --seed must be in [0, 2**32), got {args.seed}")
    if args.exp_name in ("", ".", "..") or os.sep in args.exp_name:
        raise SystemExit(f"error: --exp-name must be a name, not a path (a folder in runs/), got {args.exp_name!r}")
    if args.learning_starts >= args.total_timesteps and not args.eval_only:
        raise SystemExit(f"error: --learning-starts ({args.learning_starts}) must be below --total-timesteps")
    if not (0 < args.gamma <= 1 and 0 < args.tau <= 1):
        raise SystemExit(f"error: --gamma and --tau must be in (0, 1], got {args.gamma} and {args.tau}")
    if args.batch_size > args.buffer_size:
        raise SystemExit(f"error: --batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.load_model and not args.eval_only:
        raise SystemExit("error: --load-model is for --eval-only; to continue training, --resume a checkpoint")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise SystemExit(f"error: checkpoint not found: {args.resume}")
    if args.cudagraphs and not (args.cuda and torch.cuda.is_available()):
        raise SystemExit("error: --cudagraphs needs a CUDA GPU (and --cuda); on CPU use --compile")


def check_run(args: Args) -> tuple[np.ndarray, np.ndarray, Optional[dict]]:
    """The options, the env and the checkpoint to resume: the actions' scale and bias, and the checkpoint or None."""
    validate_args(args)
    scale, bias = check_env(args.env_id, render=args.capture_video, cuda=args.cuda)
    return scale, bias, load_checkpoint(args.resume, args) if args.resume else None


class ReplayBuffer:
    """Transitions (s, a, r, s', done) in one [capacity, 2 obs_dim + act_dim + 2] tensor on the training device:
    storing a vector step is one copy, sampling one gather; `data` views its columns as a Batch."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.capacity, self.device, self.ptr, self.size = capacity, device, 0, 0
        self.widths = [obs_dim, act_dim, 1, obs_dim, 1]
        try:
            self.storage = torch.zeros(capacity, sum(self.widths), device=device)
        except (RuntimeError, OverflowError):  # (torch's out-of-memory error is a RuntimeError)
            size = f"{capacity} transitions ({capacity * sum(self.widths) * 4 / 2**30:.1f} GiB) on {device}"
            raise SystemExit(f"error: cannot hold a replay buffer of {size}: lower --buffer-size") from None
        self.data = self.fields(self.storage)

    def fields(self, rows: torch.Tensor) -> Batch:
        obs, actions, rewards, next_obs, terminations = rows.split(self.widths, dim=1)
        return Batch(obs, actions, rewards.squeeze(1), next_obs, terminations.squeeze(1))

    def add(self, obs, actions, rewards, next_obs, terminations) -> None:
        n = len(obs)
        rows = np.concatenate([obs, actions, np.c_[rewards], next_obs, np.c_[terminations]], 1, dtype=np.float32)
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.storage[idx] = torch.from_numpy(rows).to(self.device)
        self.ptr, self.size = (self.ptr + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        return self.fields(self.storage[torch.randint(0, self.size, (batch_size,), device=self.device)])

    def state_dict(self) -> dict:  # a copy: torch.save would write a view's whole storage
        return {"ptr": self.ptr, "size": self.size, "data": [x[: self.size].to("cpu", copy=True) for x in self.data]}

    def load_state_dict(self, state: dict) -> None:
        self.ptr, self.size = state["ptr"], state["size"]
        for x, saved in zip(self.data, state["data"]):
            x[: self.size] = saved.to(self.device)


def simulator_arrays(data) -> dict:
    """Every array of a MuJoCo MjData: the state and what the last step derived from it (which rewards read)."""
    return {k: v for k in dir(data) if not k.startswith("_") and isinstance(v := getattr(data, k), np.ndarray)}


def env_state(envs, obs: np.ndarray) -> dict:
    """The training envs, so that a resumed run steps them on as the uninterrupted run would: per env its simulator
    (MuJoCo's arrays, a classic-control `state`), its step in the episode (gym.make's outermost wrapper, TimeLimit) and
    random generator; the running episode returns and lengths; the observations to act on. {} for other envs."""
    subs = []
    for env in envs.unwrapped.envs:
        base = env.unwrapped
        if hasattr(base, "data") and hasattr(base, "model"):  # MuJoCo
            sim = {k: torch.from_numpy(v.copy()) for k, v in simulator_arrays(base.data).items()}
            sim["time"] = float(base.data.time)
        elif isinstance(getattr(base, "state", None), np.ndarray):
            sim = {"state": torch.from_numpy(base.state.copy())}
        else:
            return {}
        subs.append(dict(sim=sim, steps=getattr(env, "_elapsed_steps", None), rng=base.np_random.bit_generator.state))
    episodes = {k: torch.from_numpy(getattr(envs, f"episode_{k}").copy()) for k in ("returns", "lengths")}
    return {"subs": subs, "obs": torch.from_numpy(obs.copy()), **episodes}


def restore_env_state(envs, saved: Optional[dict], obs: np.ndarray) -> np.ndarray:
    """Puts the envs back as env_state found them; returns the observations to act on (without a state, `obs`)."""
    if not saved or len(saved["subs"]) != envs.num_envs:
        return obs
    for env, sub in zip(envs.unwrapped.envs, saved["subs"]):
        base, sim = env.unwrapped, sub["sim"]
        if "state" in sim:
            base.state = sim["state"].numpy().copy()
        else:  # (arrays sized by this step's contacts are rebuilt by the next step)
            arrays = simulator_arrays(base.data)
            for k in arrays.keys() & sim.keys():
                if arrays[k].shape == tuple(sim[k].shape) and arrays[k].flags.writeable:
                    arrays[k][...] = sim[k].numpy()
            base.data.time = sim["time"]
        if sub["steps"] is not None:
            env._elapsed_steps = sub["steps"]
        base.np_random.bit_generator.state = sub["rng"]
    envs.episode_returns[:], envs.episode_lengths[:] = saved["returns"].numpy(), saved["lengths"].numpy()
    return saved["obs"].numpy().copy()


# Checkpoints hold tensors and plain types only and are read as data (torch.load(weights_only=True)): loading a file
# never runs code from it. Written to a temp file, then renamed: the file at a path is the old one or the new one.
CHECKPOINT_FORMAT = f"{ALGORITHM.lower()}-checkpoint-v4"  # v4: numpy's RNG state as a tensor (v3 files are refused)
MODEL_FORMAT = f"{ALGORITHM.lower()}-model-v1"  # --save-model files (untagged before 2026-12-04)
RESUMABLE_CHANGES = (  # the options a resumed run may change
    "resume total_timesteps cuda save_model checkpoint_interval checkpoint_buffer log_interval eval_interval "
    "eval_episodes torch_deterministic compile cudagraphs tf32 progress_seconds print_episodes capture_video track "
    "wandb_project_name wandb_entity"
).split()


def non_finite(saved: dict) -> list[str]:
    """The entries of a checkpoint or saved model (tensors, or state dicts of them) that hold a NaN or inf."""
    values = {
        k: [v] if torch.is_tensor(v) else list(v.values()) if isinstance(v, dict) else [] for k, v in saved.items()
    }
    bad = lambda x: torch.is_tensor(x) and x.is_floating_point() and not x.isfinite().all()  # noqa: E731
    return [k for k, vs in values.items() if any(map(bad, vs))]


def write(obj: dict, path: str, what: str) -> str:
    """torch.save to path.tmp, then a rename; non-finite weights and a failed write (a full disk) are one line."""
    kept = "the one there is from before" if os.path.exists(path) else "none was written before"
    if bad := non_finite({k: v for k, v in obj.items() if k != "buffer"}):
        raise SystemExit(f"error: non-finite values in {', '.join(bad)}: {what} not written to {path} ({kept})")
    try:
        torch.save(obj, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    except (OSError, RuntimeError) as e:  # (torch's zip writer raises RuntimeError on a full disk)
        if os.path.exists(f"{path}.tmp"):
            os.remove(f"{path}.tmp")
        raise SystemExit(f"error: cannot write {what} {path} ({str(e).splitlines()[0][:200]}); {kept}") from None
    return path


def save_checkpoint(path: str, args: Args, run_name: str, state: dict, counters: dict) -> str:
    """Every object of `state` by name (the buffer only with --checkpoint-buffer), the counters and the RNGs."""
    saved = {k: v.detach().cpu() if torch.is_tensor(v) else v.state_dict() for k, v in state.items() if k != "buffer"}
    saved["buffer"] = state["buffer"].state_dict() if args.checkpoint_buffer else None
    _, key, pos, has_gauss, cached = np.random.get_state()
    numpy_rng = (torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached)
    cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None
    rng = dict(python=random.getstate(), numpy=numpy_rng, torch=torch.get_rng_state(), cuda=cuda_rng)
    info = dict(format=CHECKPOINT_FORMAT, args=asdict(args), run_name=run_name, rng=rng)
    return write(info | counters | saved, path, "checkpoint")


def save_model(path: str, args: Args, state: dict) -> None:
    networks = {k: v for k, v in state.items() if isinstance(v, (torch.Tensor, nn.Module))}
    saved = {k: v.detach().cpu() if torch.is_tensor(v) else v.state_dict() for k, v in networks.items()}
    write(dict(format=MODEL_FORMAT, args=asdict(args)) | saved, path, "model")
    print(f"model saved to {path}")


def read_checkpoint(path: str, mmap: bool = False, saved_model_ok: bool = False) -> dict:
    """The checkpoint at path (with saved_model_ok, or a --save-model file), read as data only; else one line that
    says what the file is instead."""
    kind = "a saved model or a checkpoint" if saved_model_ok else "a checkpoint"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - whatever torch.load raises on a file it did not write
        why = e.strerror if isinstance(e, OSError) else "not a file torch.save wrote"
        if "GLOBAL" in str(e):  # a class or function, which weights_only refuses to load
            why = "it holds objects other than tensors and plain data, not loaded (unpickling them could run code)"
        raise SystemExit(f"error: {path} is not {kind} of {ALGORITHM}: {why}") from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt is None and isinstance(ckpt, dict) and {"args", "actor", "qf"} <= ckpt.keys():  # a model before the tags
        foreign = set(ckpt["args"]) - {f.name for f in fields(Args)}
        fmt = "a saved model of another algorithm" if foreign else MODEL_FORMAT
    if fmt == CHECKPOINT_FORMAT or (fmt == MODEL_FORMAT and saved_model_ok):
        return ckpt
    what = {MODEL_FORMAT: "a saved model (--save-model), which cannot continue a run", None: "no format tag"}.get(
        fmt, fmt
    )
    raise SystemExit(f"error: {path} is not {kind} of {ALGORITHM}: {what}")


def load_checkpoint(path: str, args: Args) -> dict:
    ckpt = read_checkpoint(path)
    old = ckpt["args"]
    if changed := [k for k, v in asdict(args).items() if k not in RESUMABLE_CHANGES and old.get(k) != v]:
        diff = "; ".join(
            f"--{k.replace('_', '-')} {old.get(k)!r} (checkpoint) vs {getattr(args, k)!r} (now)" for k in changed
        )
        raise SystemExit(f"error: checkpoint {path} is incompatible with these arguments: {diff}")
    if ckpt["global_step"] >= args.total_timesteps:
        raise SystemExit(f"error: checkpoint {path} is at step {ckpt['global_step']}, not before --total-timesteps")
    return ckpt


def restore_checkpoint(ckpt: dict, state: dict, args: Args) -> tuple[int, int, int, list]:
    """Loads every object of `state` and the random generators; returns the counters to continue from."""
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            with torch.no_grad():
                obj.copy_(ckpt[name])
        elif isinstance(obj, torch.optim.Optimizer):  # the saved moments, with this run's lr type and `capturable`
            lrs = [g["lr"] for g in obj.param_groups]
            mine = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in obj.param_groups]
            groups = [saved | m | {"lr": float(saved["lr"])} for saved, m in zip(ckpt[name]["param_groups"], mine)]
            obj.load_state_dict(ckpt[name] | {"param_groups": groups})
            for g, lr in zip(obj.param_groups, lrs):
                g["lr"] = lr.fill_(g["lr"]) if isinstance(lr, torch.Tensor) else g["lr"]
        elif ckpt[name] is not None:
            obj.load_state_dict(ckpt[name])
        else:
            print(
                f"resumed without a replay buffer: updates wait until it holds {args.learning_starts} new transitions"
            )
    key, pos, has_gauss, cached = ckpt["rng"]["numpy"]
    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(ckpt["rng"]["python"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_initialized() and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
    print(f"resumed {ckpt['run_name']} from {args.resume} at global step {ckpt['global_step']}")
    return ckpt["global_step"], ckpt["iteration"], ckpt["num_updates"], ckpt["eval_history"]


@torch.no_grad()
def evaluate(policy: Callable, eval_envs, scale, bias, device, seed: int, frames: Optional[list] = None):
    """Returns and lengths of one episode per env, all at once, under policy(obs) -> a; env 0's frames into `frames`."""
    obs, _ = eval_envs.reset(seed=seed)
    n, render = eval_envs.num_envs, eval_envs.unwrapped.envs[0].render
    returns, lengths, done = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    while not done.all():
        if frames is not None and not done[0]:  # (once done, env 0 shows its next episode)
            frames.append(render())
        a = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
        obs, r, term, trunc, _ = eval_envs.step(a.cpu().numpy() * scale + bias)
        returns += r * ~done
        lengths += ~done
        done |= term | trunc
    return returns, lengths


def evaluate_saved(args: Args) -> np.ndarray:
    """--eval-only: the policy in a saved model or checkpoint, with the options it was trained with, for
    --eval-episodes episodes (seed --seed); nothing written but the video. Returns the episode returns."""
    if not args.load_model:
        raise SystemExit("error: --eval-only needs --load-model PATH (a saved model or a checkpoint)")
    if not os.path.exists(args.load_model):
        raise SystemExit(f"error: model not found: {args.load_model}")
    saved = read_checkpoint(args.load_model, saved_model_ok=True)
    if bad := non_finite(saved):
        raise SystemExit(f"error: {args.load_model} holds non-finite values in {', '.join(bad)}: no policy to evaluate")
    now = dict(eval_episodes=args.eval_episodes, cuda=args.cuda, capture_video=args.capture_video, resume=None)
    run = Args(**{k: v for k, v in saved["args"].items() if k in {f.name for f in fields(Args)}} | now)
    scale, bias, _ = check_run(run)
    torch.manual_seed(args.seed)  # the policy's draws: the same file and seed give the same returns
    device = torch.device("cuda" if torch.cuda.is_available() and run.cuda else "cpu")
    eval_envs = make_vector_env(run.env_id, run.eval_episodes, render_first=run.capture_video)
    frames = [] if run.capture_video else None
    obs_dim, act_dim = eval_envs.single_observation_space.shape[0], eval_envs.single_action_space.shape[0]
    policy = saved_policy(saved, run, obs_dim, act_dim, device)
    returns, lengths = evaluate(policy, eval_envs, scale, bias, device, seed=args.seed, frames=frames)
    if frames:
        write_video(f"videos/eval_only/{os.path.basename(args.load_model)}_seed{args.seed}.mp4", frames, eval_envs)
    eval_envs.close()
    print(
        f"{args.load_model}: {run.env_id}, {len(returns)} episodes: return {returns.mean():.1f} +- "
        f"{returns.std():.1f} (min {returns.min():.1f}, max {returns.max():.1f}), length {lengths.mean():.1f}"
    )
    return returns


def write_video(path: str, frames: list, envs) -> None:
    from moviepy import ImageSequenceClip  # imported only when videos are asked for

    os.makedirs(os.path.dirname(path), exist_ok=True)
    ImageSequenceClip(frames, fps=envs.metadata["render_fps"]).write_videofile(path, codec="libx264", logger=None)
    tqdm.write(f"video: {path}")  # (above the progress bar, during training)


def open_logs(args: Args, run_name: str, run_dir: str, global_step: int, resumed: bool):
    """TensorBoard in run_dir, synced to Weights & Biases with --track as CleanRL does; a resumed run continues both."""
    tracker = None
    if args.track:  # before the writer, whose logs it syncs
        try:
            import wandb  # imported only when asked for

            config = dict(name=run_name, id=run_name, resume="allow", config=asdict(args), sync_tensorboard=True)
            tracker = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, save_code=True, **config)
        except Exception as e:  # noqa: BLE001 - no wandb, no API key, no network: no common class
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            raise SystemExit(
                f"error: --track could not start Weights & Biases ({reason}): pip install wandb, run "
                "`wandb login`, or set WANDB_MODE=offline"
            ) from None
    try:  # (a run folder that cannot be made or written: a file in its way, no permission, a full disk)
        os.makedirs(run_dir, exist_ok=True)
        writer = SummaryWriter(run_dir, purge_step=global_step + 1 if resumed else None)
    except OSError as e:
        raise SystemExit(f"error: cannot write to the run folder {run_dir}: {e.strerror or e}") from None
    if not resumed:
        table = "\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])
        writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
    return writer, tracker


def crossed(step: int, interval: int, num_envs: int) -> bool:
    """Did global step `step` just pass a multiple of `interval` (0: never)?"""
    return interval > 0 and step // interval > (step - num_envs) // interval


def check_finite(metrics: dict, step: int, last_checkpoint: Optional[str]) -> None:
    """A non-finite loss stops the run before anything more is saved (a host sync: called at logs and saves)."""
    if metrics and not torch.isfinite(torch.stack(list(metrics.values()))).all():
        raise SystemExit(
            f"error: non-finite loss at global step {step}; training stopped and nothing was saved after "
            f"it. Last checkpoint: {last_checkpoint or 'none (use --checkpoint-interval N)'}"
        )


def cli_args(argv: list[str]) -> Args:
    """The command line. With --resume PATH the defaults are the checkpoint's own options: the path alone continues."""
    paths = [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")]
    paths += [b for a, b in zip(argv, argv[1:]) if a == "--resume"]
    if not paths or not os.path.exists(paths[-1]):
        return tyro.cli(Args, args=argv)  # (a missing checkpoint is reported by train)
    saved, known = read_checkpoint(paths[-1], mmap=True)["args"], {f.name for f in fields(Args)}
    return tyro.cli(Args, args=argv, default=Args(**{k: v for k, v in saved.items() if k in known}))


EXIT_STOPPED = 75  # a run stopped by a signal, with a checkpoint: EX_TEMPFAIL, "try again" (benchmark.sh reads it)

if __name__ == "__main__":
    args = cli_args(sys.argv[1:])
    if args.eval_only:
        evaluate_saved(args)
        sys.exit()
    stop = []  # SIGINT (Ctrl-C) or SIGTERM: finish the iteration, write a checkpoint, exit; a second one acts at once

    def on_signal(signum, frame):
        stop.append(signal.Signals(signum).name)
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        tqdm.write(f"{stop[-1]}: stopping after this iteration, with a checkpoint (send it again to stop at once)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        sys.exit(EXIT_STOPPED if train(args, stop)["stopped"] else 0)
    except KeyboardInterrupt:  # a second Ctrl-C
        print("stopped at once by a second signal: the run continues from its last checkpoint", file=sys.stderr)
        sys.exit(130)
