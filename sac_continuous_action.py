# Soft Actor-Critic (SAC), single file: the baseline of SDAC's paper, run under exactly SDAC's conditions
# (same envs, replay, evaluation, logging, checkpoints). Paper: Haarnoja et al., "Soft Actor-Critic
# Algorithms and Applications" (2018). Docs: README.md of this repository.
# A tanh-squashed Gaussian policy trained by the reparameterised KL to exp(Q / alpha), twin critics, and
# automatic tuning of the entropy coefficient alpha towards a target entropy of -d.
import math
import os
import random
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter

# gymnasium warns on every -v4 env that a -v5 exists; the paper's results are on -v4, so that choice is ours, not the
# user's business. Filtered before anything prints, so that a user error stays one line.
warnings.filterwarnings("ignore", message=r".*The environment \S+ is out of date", category=DeprecationWarning)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    track: bool = False
    """log to Weights & Biases as CleanRL does (project, entity, run name, config; the TensorBoard logs synced)"""
    wandb_project_name: str = "sdac"
    """the wandb project"""
    wandb_entity: Optional[str] = None
    """the wandb entity (team); None: your default"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled and CUDA exists, the replay buffer and the whole training step live on the GPU"""
    save_model: bool = False
    """save the final weights to `runs/{run_name}/{exp_name}.sac_model`"""
    capture_video: bool = False
    """write each evaluation's first episode as an MP4 to videos/{run_name}/ (MuJoCo renders off-screen: EGL or
    OSMesa where there is no display, chosen by MUJOCO_GL)"""
    eval_only: bool = False
    """no training: evaluate the policy in --load-model for --eval-episodes episodes, then exit"""
    load_model: Optional[str] = None
    """with --eval-only: a saved model (--save-model) or a checkpoint, whose own hyperparameters are used"""
    checkpoint_interval: int = 50_000
    """write the full training state every this many env steps (0: never); a crash loses at most this many, and
    Ctrl-C or SIGTERM writes one before it stops"""
    checkpoint_buffer: bool = False
    """also put the replay buffer in checkpoints (large: up to buffer_size transitions)"""
    resume: Optional[str] = None
    """path of a checkpoint to continue from, with its hyperparameters (only a changed total, logging, evaluation,
    checkpoint or device option may follow)"""
    compile: bool = False
    """torch.compile the update steps (forward, backward, optimiser step) and the action sampler"""
    cudagraphs: bool = False
    """also capture them in CUDA graphs (torch.compile mode "reduce-overhead"; needs CUDA)"""
    tf32: bool = False
    """allow TF32 matmuls on Ampere and later GPUs (faster, about 1e-3 relative precision)"""

    # Environment and data: the paper's baseline protocol (Appendix C.2): 5 envs, 1 update per vector step.
    # CleanRL's protocol: --num-envs 1 --learning-starts 5000 (one update per env step).
    env_id: str = "Ant-v4"
    """the id of the environment (a gymnasium env with a bounded Box action space)"""
    total_timesteps: int = 1_000_000
    """total environment steps, summed over the parallel envs"""
    num_envs: int = 5
    """parallel envs; one iteration = one vector step + `gradient_steps` updates"""
    gradient_steps: int = 1
    """gradient steps per iteration (update-to-data ratio = gradient_steps / num_envs)"""
    buffer_size: int = 1_000_000
    """the replay memory buffer size"""
    learning_starts: int = 30_000
    """env steps of uniform random actions before learning starts (as SDAC; CleanRL: 5000)"""
    batch_size: int = 256
    """the batch size of samples from the replay memory"""
    gamma: float = 0.99
    """the discount factor gamma"""
    reward_scale: float = 1.0
    """rewards are multiplied by this in the critic target"""

    # Critic
    q_lr: float = 1e-3
    """the learning rate of the twin critics"""
    tau: float = 0.005
    """target critic smoothing coefficient"""
    target_network_frequency: int = 1
    """updates between target critic updates"""

    # Actor and entropy coefficient alpha
    policy_lr: float = 3e-4
    """the learning rate of the policy"""
    policy_frequency: int = 2
    """updates between policy updates; each then does this many policy steps (TD3's delay, as CleanRL)"""
    autotune: bool = True
    """tune alpha so that the policy's entropy tracks target_entropy_scale * (-d)"""
    alpha: float = 0.2
    """the entropy coefficient alpha without --autotune (CleanRL: 0.2)"""
    alpha_init: float = 1.0
    """alpha's initial value with --autotune (CleanRL: log alpha starts at 0)"""
    alpha_lr: float = 1e-3
    """the learning rate of log alpha with --autotune (CleanRL: the critics' q_lr, 1e-3)"""
    target_entropy_scale: float = 1.0
    """autotune target: entropy = -target_entropy_scale * action_dim"""
    log_prob_eps: float = 1e-6
    """eps in the tanh correction log(scale (1 - tanh(u)^2) + eps) (CleanRL: 1e-6); 0: the exact density"""

    # Logging and evaluation
    log_interval: int = 500
    """env steps between loss logs (and the non-finite check, the only host sync of the training step)"""
    eval_interval: int = 50_000
    """env steps between evaluations (as SDAC: the authors' total/20 = 50k of 1M); 0: only at the end"""
    eval_episodes: int = 20
    """evaluation episodes, run at once in parallel envs (deterministic: the tanh of the mean action)"""
    progress_seconds: float = 30.0
    """wall-clock seconds between status lines (step/total, recent SPS, last evaluation, ETA); 0: every log_interval"""
    print_episodes: bool = False
    """also print every finished training episode (they always go to TensorBoard: charts/episodic_return)"""


# ---------------------------------------------------------------------------------------------------
# Environment


class SacError(Exception):
    """An error in the user's input: printed as one line, without a traceback."""


def make_env(env_id: str, render: bool = False):
    def thunk():
        return gym.make(env_id, render_mode="rgb_array") if render else gym.make(env_id)

    return thunk


def make_vector_env(env_fns) -> gym.vector.VectorEnv:
    # SAME_STEP autoreset: when an episode ends, `next_obs` is already the reset observation and the true
    # final observation is in infos["final_obs"]; every vector step then yields num_envs real transitions.
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def action_scale_bias(space: gym.Space) -> tuple[np.ndarray, np.ndarray]:
    """Actions live in [-1, 1]^d; the env gets a * scale + bias. Only a bounded Box qualifies."""
    if not isinstance(space, gym.spaces.Box):
        raise SacError(f"SAC needs a continuous (Box) action space, got {space}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise SacError(f"SAC needs a bounded Box action space with finite low < high, got {space}")
    return ((high - low) / 2).astype(np.float32), ((high + low) / 2).astype(np.float32)


def check_env(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Create the env once, before anything is written: unknown ids and unsuitable spaces fail here, clearly."""
    try:
        env = gym.make(env_id)
    except (gym.error.Error, ImportError, RuntimeError) as e:  # RuntimeError: MuJoCo's import, e.g. a bad MUJOCO_GL
        hint = " (Pusher-v4 needs mujoco < 3: use Pusher-v5)" if env_id == "Pusher-v4" else ""
        raise SacError(f"cannot create env {env_id!r}: {e}{hint}") from None
    try:
        obs_space = env.observation_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise SacError(f"SAC needs a flat Box observation space, got {obs_space}")
        return action_scale_bias(env.action_space)
    finally:
        env.close()


def start_tracking(args: Args, run_name: str):
    """--track: a Weights & Biases run named after the run folder (a resumed run continues it), with the arguments as
    its config and TensorBoard synced, as CleanRL does. wandb is imported only here."""
    try:
        import wandb
    except ImportError:
        raise SacError("--track needs wandb: pip install wandb") from None
    return wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, name=run_name, id=run_name,
                      resume="allow", config=asdict(args), sync_tensorboard=True, save_code=True)  # fmt: skip


def check_rendering(env_id: str) -> None:
    """--capture-video: one frame rendered off-screen, or a one-line error saying what to install. Without a display
    MUJOCO_GL defaults to EGL on a CUDA machine and to OSMesa otherwise (set before MuJoCo is first imported)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl" if torch.cuda.is_available() else "osmesa")
    try:
        env = gym.make(env_id, render_mode="rgb_array")
        env.reset(seed=0)
        env.render()
        env.close()
    except Exception as e:  # noqa: BLE001 - whatever the GL library raises, the user needs the same advice
        raise SacError(f"--capture-video cannot render {env_id} off-screen (MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
                    f"{type(e).__name__}): install OSMesa (Debian: libosmesa6) and set MUJOCO_GL=osmesa, or EGL "
                    "(libegl1) with MUJOCO_GL=egl") from None


def write_video(path: str, frames: list, fps: float) -> None:
    from moviepy import ImageSequenceClip  # imported only when videos are asked for

    os.makedirs(os.path.dirname(path), exist_ok=True)
    ImageSequenceClip(frames, fps=fps).write_videofile(path, codec="libx264", audio=False, logger=None)


def final_observations(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """The true s' of each sub-env: the final observation where an episode just ended (SAME_STEP mode)."""
    real_next_obs = next_obs.copy()
    if "_final_obs" in infos:
        for i in np.flatnonzero(infos["_final_obs"]):
            real_next_obs[i] = infos["final_obs"][i]
    return real_next_obs


def finished_episodes(infos: dict) -> list[tuple[float, int]]:
    """(return, length) of every episode that ended on this step, in any sub-env."""
    if "_episode" not in infos:
        return []
    ep = infos["episode"]
    return [(float(ep["r"][i]), int(ep["l"][i])) for i in np.flatnonzero(infos["_episode"])]


def validate_args(args: Args) -> None:
    if args.load_model and not args.eval_only:
        raise SacError("--load-model is for --eval-only; to continue training, --resume a checkpoint")
    must_be_positive = ["total_timesteps", "num_envs", "gradient_steps", "buffer_size", "batch_size",
                        "policy_frequency", "target_network_frequency", "log_interval", "eval_episodes"]  # fmt: skip
    for name in must_be_positive:
        if getattr(args, name) < 1:
            raise SacError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ["learning_starts", "checkpoint_interval", "eval_interval", "progress_seconds", "log_prob_eps"]:
        if getattr(args, name) < 0:
            raise SacError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    for name in ["q_lr", "policy_lr", "alpha", "alpha_init", "alpha_lr", "reward_scale"]:
        if not getattr(args, name) > 0:
            raise SacError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if not 0 < args.gamma <= 1 or not 0 < args.tau <= 1:
        raise SacError(f"--gamma and --tau must be in (0, 1], got {args.gamma} and {args.tau}")
    if args.batch_size > args.buffer_size:
        raise SacError(f"--batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise SacError(f"checkpoint not found: {args.resume}")
    if args.cudagraphs and not (args.cuda and torch.cuda.is_available()):
        raise SacError("--cudagraphs needs a CUDA GPU (and --cuda); on CPU use --compile")


# ---------------------------------------------------------------------------------------------------
# Networks: twin critics and a tanh-squashed Gaussian policy

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def mlp(in_dim: int, out_dim: int, hidden: int = 256) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class BatchedLinear(nn.Module):
    """n independent linear layers in one batched matmul, [n, B, in] -> [n, B, out]; nn.Linear's init per member."""

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQNetwork(nn.Module):
    """The twin critics Q1, Q2 (independent weights), evaluated in one batched call: returns [2, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(BatchedLinear(2, obs_dim + act_dim, hidden), nn.ReLU(), BatchedLinear(2, hidden, hidden),
                                 nn.ReLU(), BatchedLinear(2, hidden, 1))  # fmt: skip

    def forward(self, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, a], -1)
        return self.net(x.expand(2, *x.shape)).squeeze(-1)


def tanh_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, scale: torch.Tensor,
                           eps: float = 1e-6) -> torch.Tensor:
    """log density of the env action scale * tanh(u) + bias, u ~ N(mean, exp(log_std)^2), per row: the Gaussian's
    log density minus sum_i log(scale_i (1 - tanh(u_i)^2) + eps), CleanRL's form (sac_continuous_action.py:148).
    Its eps = 1e-6 caps the correction at -log(1e-6) = 13.8 per dimension, so a policy that saturates tanh is not
    charged further entropy for it. eps = 0 gives the exact density, in the stable form
    log(scale_i) + 2 (log 2 - u_i - softplus(-2 u_i))."""
    gauss = (-0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    if eps == 0:
        return gauss - (scale.log() + 2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return gauss - torch.log(scale * (1 - torch.tanh(u) ** 2) + eps).sum(-1)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, action_scale: Optional[np.ndarray] = None, log_prob_eps: float = 1e-6):
        super().__init__()
        self.act_dim, self.log_prob_eps = act_dim, log_prob_eps
        self.net = mlp(obs_dim, 2 * act_dim)
        # the env's (high - low) / 2, for the log-probability only (acting scales outside); not in the state_dict
        scale = torch.ones(act_dim) if action_scale is None else torch.as_tensor(action_scale, dtype=torch.float32)
        self.register_buffer("action_scale", scale, persistent=False)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, -1)
        # squash log_std into [LOG_STD_MIN, LOG_STD_MAX] smoothly (CleanRL, SpinningUp)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def get_action(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A reparameterised sample a = tanh(mean + std * xi) in [-1, 1]^d (the env gets a * scale + bias), the
        log-probability [B] of the env action, and the deterministic action tanh(mean) used for evaluation."""
        mean, log_std = self(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        log_prob = tanh_gaussian_log_prob(u, mean, log_std, self.action_scale, self.log_prob_eps)
        assert log_prob.shape == obs.shape[:1], "one log-probability per state, not per action dimension"
        return torch.tanh(u), log_prob, torch.tanh(mean)


def min_q(qf: TwinQNetwork, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return qf(obs, a).min(0).values


def actor_loss_fn(alpha: torch.Tensor, log_pi: torch.Tensor, min_qf_pi: torch.Tensor) -> torch.Tensor:
    """J_pi = E_s E_{a~pi}[alpha log pi(a|s) - min Q(s, a)]. Both inputs must be [B]: a [B, 1] against a [B]
    would broadcast to [B, B] and silently train on the wrong objective (CleanRL's users were bitten)."""
    if log_pi.dim() != 1 or log_pi.shape != min_qf_pi.shape:
        raise ValueError(f"log_pi {tuple(log_pi.shape)} and min_qf_pi {tuple(min_qf_pi.shape)} must both be [B]")
    return (alpha * log_pi - min_qf_pi).mean()


def alpha_loss_fn(log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J(alpha) = E[-alpha (log pi + target_entropy)] on log alpha: alpha grows when the entropy -E[log pi] is
    below target and shrinks when it is above."""
    return (-log_alpha.exp() * (log_pi.detach() + target_entropy)).mean()


# ---------------------------------------------------------------------------------------------------
# One gradient step: losses and optimiser steps, each compiled whole under --compile


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online, all parameters in one fused call."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)


def make_optimizer(params, lr: float, args: Args, device: torch.device) -> torch.optim.Adam:
    """Adam; capturable on CUDA when compiled (its step count stays on the GPU, as CUDA graphs need)."""
    return torch.optim.Adam(params, lr=lr, capturable=(args.compile or args.cudagraphs) and device.type == "cuda")


def make_updates(actor, qf, qf_target, log_alpha, q_optimizer, actor_optimizer, a_optimizer, target_entropy: float,
                 args: Args):  # fmt: skip
    """The critic step and one policy (and alpha) step as functions of the batch that return their statistics as
    tensors: no host sync, so the whole step can run on the GPU. Under --compile the losses (forward and backward)
    and the optimiser steps are compiled, each without graph breaks."""

    def critic_loss(data: Batch):
        # soft policy evaluation: y = r + gamma (1 - done) (min Q_target(s', a') - alpha log pi(a'|s'))
        with torch.no_grad():
            next_a, next_log_pi, _ = actor.get_action(data.next_obs)
            next_q = min_q(qf_target, data.next_obs, next_a) - log_alpha.exp() * next_log_pi
            next_q_value = args.reward_scale * data.rewards + (1 - data.terminations) * args.gamma * next_q
        qf_a_values = qf(data.obs, data.actions)  # [2, B]: Q1 and Q2
        assert qf_a_values.shape == (2, *next_q_value.shape) and next_q_value.dim() == 1
        qf_losses = ((qf_a_values - next_q_value) ** 2).mean(1)
        return qf_losses.sum(), dict(qf1_values=qf_a_values[0].detach().mean(), qf2_values=qf_a_values[1].detach().mean(),
                                     qf1_loss=qf_losses[0].detach(), qf2_loss=qf_losses[1].detach(),
                                     qf_loss=qf_losses.detach().mean(), target_q=next_q.mean())  # fmt: skip

    def policy_loss(data: Batch):
        # soft policy improvement: the reparameterised KL to exp(Q / alpha)
        pi, log_pi, _ = actor.get_action(data.obs)
        loss = actor_loss_fn(log_alpha.detach().exp(), log_pi, min_q(qf, data.obs, pi))
        return loss, dict(actor_loss=loss.detach(), entropy=-log_pi.detach().mean())

    def alpha_loss(data: Batch):
        # alpha's loss towards the target entropy, on a fresh sample of the policy after its step (as CleanRL)
        with torch.no_grad():
            _, log_pi, _ = actor.get_action(data.obs)
        loss = alpha_loss_fn(log_alpha, log_pi, target_entropy)
        return loss, dict(alpha_loss=loss.detach())

    q_step, actor_step, alpha_step = q_optimizer.step, actor_optimizer.step, a_optimizer.step
    if args.compile or args.cudagraphs:
        mode = "reduce-overhead" if args.cudagraphs else None
        critic_loss, policy_loss = torch.compile(critic_loss, mode=mode), torch.compile(policy_loss, mode=mode)
        alpha_loss = torch.compile(alpha_loss, mode=mode)
        q_step, actor_step = torch.compile(q_step, mode=mode), torch.compile(actor_step, mode=mode)
        alpha_step = torch.compile(alpha_step, mode=mode)

    def update_critic(data: Batch) -> dict[str, torch.Tensor]:
        loss, stats = critic_loss(data)
        q_optimizer.zero_grad()
        loss.backward()
        q_step()
        return stats

    def update_actor(data: Batch) -> dict[str, torch.Tensor]:
        loss, stats = policy_loss(data)
        actor_optimizer.zero_grad()
        loss.backward()
        actor_step()
        if args.autotune:
            loss, alpha_stats = alpha_loss(data)
            a_optimizer.zero_grad()
            loss.backward()
            alpha_step()
            stats = {**stats, **alpha_stats}
        return stats

    return update_critic, update_actor


# ---------------------------------------------------------------------------------------------------
# Replay buffer on the training device


class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


class ReplayBuffer:
    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.capacity, self.device, self.ptr, self.size = capacity, device, 0, 0
        self.data = Batch(
            torch.zeros(capacity, obs_dim, device=device),
            torch.zeros(capacity, act_dim, device=device),
            torch.zeros(capacity, device=device),
            torch.zeros(capacity, obs_dim, device=device),
            torch.zeros(capacity, device=device),
        )

    def add(self, obs, actions, rewards, next_obs, terminations) -> None:
        """One vector step: done = terminated only, so truncated episodes bootstrap from the true s'."""
        n = len(obs)
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        for buf, x in zip(self.data, (obs, actions, rewards, next_obs, terminations)):
            buf[idx] = torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)
        self.ptr, self.size = (self.ptr + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), device=self.device)
        return Batch(*(buf[idx] for buf in self.data))

    def state_dict(self) -> dict:
        return {"ptr": self.ptr, "size": self.size, "data": [buf[: self.size].cpu() for buf in self.data]}

    def load_state_dict(self, state: dict) -> None:
        self.ptr, self.size = state["ptr"], state["size"]
        for buf, x in zip(self.data, state["data"]):
            buf[: self.size] = x.to(self.device)


# ---------------------------------------------------------------------------------------------------
# Checkpoints: written atomically (temp file, then rename)

# hyperparameters that may change between a checkpoint and the run that resumes it
RESUMABLE_CHANGES = {"resume", "total_timesteps", "cuda", "save_model", "checkpoint_interval",
                     "checkpoint_buffer", "log_interval", "eval_interval", "eval_episodes", "torch_deterministic",
                     "compile", "cudagraphs", "tf32", "progress_seconds", "print_episodes", "capture_video",
                     "track", "wandb_project_name", "wandb_entity"}  # fmt: skip


def save_checkpoint(path: str, state: dict) -> None:
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str, mmap: bool = False, saved_model_ok: bool = False) -> dict:
    """The checkpoint at path (or, with saved_model_ok, a --save-model file), else a one-line error that says what
    the file is instead."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise SacError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if isinstance(ckpt, dict) and ckpt.get("format") in ("sac-checkpoint-v1", "sac-checkpoint-v2"):
        raise SacError(f"{path} was written by an older version of this script (other defaults); start a new run")
    if isinstance(ckpt, dict) and "format" not in ckpt and {"args", "actor", "qf"} <= ckpt.keys():
        if saved_model_ok:
            return ckpt
        raise SacError(f"{path} is a saved model (--save-model): the final weights only, which cannot continue "
                       "a run; checkpoints are the runs/{run_name}/checkpoint.pt that --checkpoint-interval writes")
    if not isinstance(ckpt, dict) or ckpt.get("format") != "sac-checkpoint-v3":
        kind = "a saved model or a SAC checkpoint" if saved_model_ok else "a SAC checkpoint"
        raise SacError(f"{path} is not {kind} (written by sac_continuous_action.py)")
    return ckpt


def checkpoint_args(ckpt: dict) -> dict:
    """The hyperparameters a checkpoint was written with."""
    return {"log_prob_eps": 0.0, **ckpt["args"]}  # a v3 checkpoint from before 6aa7c2c: the exact density


def load_checkpoint(path: str, args: Args) -> dict:
    ckpt = read_checkpoint(path)
    saved, now = checkpoint_args(ckpt), asdict(args)
    diff = [f"--{k.replace('_', '-')} {saved.get(k)!r} (checkpoint) vs {v!r} (now)"
            for k, v in now.items() if k not in RESUMABLE_CHANGES and saved.get(k) != v]  # fmt: skip
    if diff:
        raise SacError(f"checkpoint {path} is incompatible with these arguments: " + "; ".join(diff))
    if ckpt["global_step"] >= args.total_timesteps:
        raise SacError(f"checkpoint {path} is at step {ckpt['global_step']}, not before --total-timesteps {args.total_timesteps}")
    return ckpt


# ---------------------------------------------------------------------------------------------------
# Evaluation: deterministic (tanh of the mean), one episode per env, all envs at once


@torch.no_grad()
def evaluate(act, eval_envs, scale, bias, device, seed: int, frames: Optional[list] = None):
    """Returns and lengths of one episode per env; with `frames`, env 0's episode is rendered into it."""
    obs, _ = eval_envs.reset(seed=seed)
    n = eval_envs.num_envs
    returns, lengths, done = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    render = eval_envs.unwrapped.envs[0].render
    if frames is not None:
        frames.append(render())
    while not done.all():
        _, _, a = act(torch.as_tensor(obs, dtype=torch.float32, device=device))
        obs, r, term, trunc, _ = eval_envs.step(a.cpu().numpy() * scale + bias)
        returns += r * ~done
        lengths += ~done
        if frames is not None and not (done[0] or term[0] or trunc[0]):  # (once done, env 0 shows its next episode)
            frames.append(render())
        done |= term | trunc
    return returns, lengths


def evaluate_saved(args: Args) -> np.ndarray:
    """--eval-only: the policy in a saved model or a checkpoint, with the hyperparameters it was trained with, for
    --eval-episodes episodes (seed --seed); no training, nothing written. Returns the episode returns."""
    if not args.load_model:
        raise SacError("--eval-only needs --load-model PATH (a saved model or a checkpoint)")
    if not os.path.exists(args.load_model):
        raise SacError(f"model not found: {args.load_model}")
    saved = read_checkpoint(args.load_model, saved_model_ok=True)
    known = {f.name for f in fields(Args)}
    run = Args(**{**{k: v for k, v in checkpoint_args(saved).items() if k in known}, "eval_episodes": args.eval_episodes})
    validate_args(run)
    if args.capture_video:  # first: it picks MUJOCO_GL before MuJoCo is imported
        check_rendering(run.env_id)
    scale, bias = check_env(run.env_id)
    torch.manual_seed(args.seed)  # the sampler's draws: the same file and seed give the same returns
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    eval_envs = make_vector_env([make_env(run.env_id, args.capture_video and i == 0) for i in range(args.eval_episodes)])
    frames = [] if args.capture_video else None
    obs_dim, act_dim = eval_envs.single_observation_space.shape[0], eval_envs.single_action_space.shape[0]
    actor = Actor(obs_dim, act_dim, scale, run.log_prob_eps).to(device)
    actor.load_state_dict(saved["actor"])
    returns, lengths = evaluate(actor.get_action, eval_envs, scale, bias, device, seed=args.seed, frames=frames)
    if frames:
        video = f"videos/eval_only/{os.path.basename(args.load_model)}_seed{args.seed}.mp4"
        write_video(video, frames, eval_envs.metadata["render_fps"])
        print(f"video: {video}")
    eval_envs.close()
    print(f"{args.load_model}: {run.env_id}, {len(returns)} episodes: return {returns.mean():.1f} +- {returns.std():.1f} "
          f"(min {returns.min():.1f}, max {returns.max():.1f}), length {lengths.mean():.1f}")  # fmt: skip
    return returns


# ---------------------------------------------------------------------------------------------------
# Progress: a status line every progress_seconds


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Env steps done of the total, the SPS over the time since the last line (not since the start: the random
    warm-up runs thousands of steps per second, training on a CPU a few), the last evaluation, and the ETA at the
    recent rate."""

    def __init__(self, total: int, step: int, seconds: float):
        self.total, self.seconds, self.last = total, seconds, (time.time(), step)
        self.eval: Optional[tuple[int, float]] = None  # (step, mean return) of the last evaluation

    def line(self, step: int, now: float) -> Optional[str]:
        """The status line if progress_seconds have passed since the last one, else None."""
        dt = now - self.last[0]
        if dt < self.seconds or dt <= 0:
            return None
        self.last, sps = (now, step), (step - self.last[1]) / dt
        last_eval = f"eval {self.eval[1]:.1f} at step {self.eval[0]}" if self.eval else "no evaluation yet"
        eta = duration((self.total - step) / sps) if sps > 0 else "unknown"
        return (f"step {step}/{self.total} ({100 * step / self.total:.1f}%) | {sps:.1f} SPS over {dt:.1f} s | "
                f"{last_eval} | ETA {eta}")


def cpu_warning(device: torch.device, seconds_left: float) -> Optional[str]:
    """Once 10 training iterations are timed: a warning when the rest of a CPU run takes more than an hour."""
    if device.type != "cpu" or seconds_left <= 3600:
        return None
    return (f"warning: on this CPU the training needs about {duration(seconds_left)} more; the official settings are a "
            "GPU job (README: CPU quick start)")


# ---------------------------------------------------------------------------------------------------
# Training loop


def train(args: Args, stop: Sequence[str] = ()) -> dict:
    """One run. `stop` turns non-empty when the run should stop early (stop_on_signals fills it): the iteration in
    progress finishes, a checkpoint is written, and the run returns with the command that resumes it."""
    validate_args(args)
    if args.capture_video:  # first: it picks MUJOCO_GL before MuJoCo is imported
        check_rendering(args.env_id)
    scale, bias = check_env(args.env_id)
    ckpt = load_checkpoint(args.resume, args) if args.resume else None
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = f"runs/{run_name}"
    ckpt_path = f"{run_dir}/checkpoint.pt"

    # seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    # env setup
    envs = make_vector_env([make_env(args.env_id) for _ in range(args.num_envs)])
    eval_envs = make_vector_env([make_env(args.env_id, args.capture_video and i == 0) for i in range(args.eval_episodes)])
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]

    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    actor = Actor(obs_dim, act_dim, scale, args.log_prob_eps).to(device)
    qf = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    q_optimizer = make_optimizer(qf.parameters(), args.q_lr, args, device)
    actor_optimizer = make_optimizer(actor.parameters(), args.policy_lr, args, device)
    log_alpha = torch.tensor(math.log(args.alpha_init if args.autotune else args.alpha), device=device, requires_grad=True)
    a_optimizer = make_optimizer([log_alpha], args.alpha_lr, args, device)
    target_entropy = -args.target_entropy_scale * act_dim
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    update_critic, update_actor = make_updates(actor, qf, qf_target, log_alpha, q_optimizer, actor_optimizer,
                                               a_optimizer, target_entropy, args)  # fmt: skip
    act = actor.get_action  # acting and evaluation
    if args.compile or args.cudagraphs:
        act = torch.compile(actor.get_action, mode="reduce-overhead" if args.cudagraphs else None)

    global_step, iteration, num_updates, eval_history = 0, 0, 0, []
    if ckpt:
        for name, module in [("actor", actor), ("qf", qf), ("qf_target", qf_target), ("q_optimizer", q_optimizer),
                             ("actor_optimizer", actor_optimizer), ("a_optimizer", a_optimizer)]:  # fmt: skip
            module.load_state_dict(ckpt[name])
        with torch.no_grad():
            log_alpha.copy_(ckpt["log_alpha"])
        global_step, iteration, num_updates = ckpt["global_step"], ckpt["iteration"], ckpt["num_updates"]
        eval_history = ckpt["eval_history"]
        random.setstate(ckpt["rng"]["python"])
        np.random.set_state(ckpt["rng"]["numpy"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and ckpt["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
        if ckpt.get("buffer") is not None:
            rb.load_state_dict(ckpt["buffer"])
        else:
            print(f"resumed without a replay buffer: updates wait until it holds {args.learning_starts} new transitions")
        print(f"resumed {run_name} from {args.resume} at global step {global_step}")

    os.makedirs(run_dir, exist_ok=True)
    tracker = start_tracking(args, run_name) if args.track else None  # before the writer, whose logs it syncs
    writer = SummaryWriter(run_dir, purge_step=global_step + 1 if ckpt else None)
    if not ckpt:
        writer.add_text(
            "hyperparameters",
            "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
        )

    def checkpoint_state() -> dict:
        return {
            "format": "sac-checkpoint-v3", "args": asdict(args), "run_name": run_name,
            "global_step": global_step, "iteration": iteration, "num_updates": num_updates, "eval_history": eval_history,
            "actor": actor.state_dict(), "qf": qf.state_dict(), "qf_target": qf_target.state_dict(),
            "q_optimizer": q_optimizer.state_dict(), "actor_optimizer": actor_optimizer.state_dict(),
            "a_optimizer": a_optimizer.state_dict(), "log_alpha": log_alpha.detach().cpu(),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None},
            "buffer": rb.state_dict() if args.checkpoint_buffer else None,
        }  # fmt: skip

    last_ckpt = args.resume
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)  # set on device, read at log time
    metrics: dict[str, torch.Tensor] = {}
    num_iterations = math.ceil(args.total_timesteps / args.num_envs)

    def crossed(interval: int) -> bool:  # did global_step just pass a multiple of interval?
        return interval > 0 and global_step // interval > (global_step - args.num_envs) // interval

    def check_finite(what: str) -> None:
        if bool(nonfinite):
            raise SacError(
                f"non-finite {what}; training stopped and nothing was saved after it. "
                f"Last checkpoint: {last_ckpt or 'none (use --checkpoint-interval N)'}"
            )

    print(f"SAC on {args.env_id} | "
          f"{args.num_envs} envs, {args.gradient_steps} update(s) per vector step | {args.total_timesteps} env steps, "
          f"the first {args.learning_starts} random | {device} | {run_dir}", flush=True)

    # start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    last_check_step, eval_seconds, sps_mark = global_step, 0.0, (time.time(), global_step)
    progress = Progress(args.total_timesteps, global_step, args.progress_seconds)
    timing_from, timing_start = None, None
    for iteration in range(iteration + 1, num_iterations + 1):
        global_step += args.num_envs

        # action logic: uniform random during warm-up, then a sample of the tanh-Gaussian policy
        if global_step <= args.learning_starts:
            actions = np.random.uniform(-1, 1, (args.num_envs, act_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                actions, _, _ = act(torch.as_tensor(obs, dtype=torch.float32, device=device))
            actions = actions.cpu().numpy()
            if not np.isfinite(actions).all():
                nonfinite.fill_(True)
                check_finite(f"action at global step {global_step}: the networks diverged")

        # step the envs and log every finished episode
        next_obs, rewards, terminations, truncations, infos = envs.step(actions * scale + bias)
        for ep_return, ep_length in finished_episodes(infos):
            if args.print_episodes:
                print(f"global_step={global_step}, episodic_return={ep_return:.1f}")
            writer.add_scalar("charts/episodic_return", ep_return, global_step)
            writer.add_scalar("charts/episodic_length", ep_length, global_step)

        # save data to the replay buffer: the true final observation; done = terminated (bootstrap through truncation)
        rb.add(obs, actions, rewards, final_observations(next_obs, infos), terminations)
        obs = next_obs

        # training
        # (a run resumed without its buffer refills learning_starts transitions, acting with the policy)
        if global_step > args.learning_starts and rb.size >= min(args.learning_starts, args.buffer_size):
            # time per training iteration: from 10 iterations on (they absorb compilation) where the run allows
            if timing_from is None:
                timing_from = iteration + (10 if num_iterations - iteration >= 20 else 0)
            if iteration == timing_from:
                timing_start, eval_seconds = time.time(), 0.0
            if iteration == timing_from + 10:  # 10 timed iterations: the cost is known
                seconds_left = (time.time() - timing_start - eval_seconds) / 10 * (num_iterations - iteration)
                if warning := cpu_warning(device, seconds_left):
                    print(warning, flush=True)
            for _ in range(args.gradient_steps):
                num_updates += 1
                data = rb.sample(args.batch_size)
                if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we cloned them)
                    torch.compiler.cudagraph_mark_step_begin()
                out = update_critic(data)
                # delayed policy updates: policy_frequency steps every policy_frequency updates (as CleanRL)
                if num_updates % args.policy_frequency == 0:
                    for _ in range(args.policy_frequency):
                        out = {**out, **update_actor(data)}
                if num_updates % args.target_network_frequency == 0:
                    soft_update(qf_target, qf, args.tau)
                metrics.update({k: v.clone() for k, v in out.items()} if args.cudagraphs else out)
                nonfinite |= ~torch.isfinite(torch.stack(list(out.values()))).all()

            if crossed(args.log_interval):
                check_finite(f"loss between global steps {last_check_step} and {global_step}")
                last_check_step = global_step
                for key, value in metrics.items():
                    writer.add_scalar(f"losses/{key}", value.item(), global_step)
                writer.add_scalar("losses/alpha", log_alpha.exp().item(), global_step)

        if crossed(args.log_interval):  # SPS over the last log interval, and the status line when it is due
            now = time.time()
            writer.add_scalar("charts/SPS", (global_step - sps_mark[1]) / max(now - sps_mark[0], 1e-9), global_step)
            sps_mark = (now, global_step)
            if line := progress.line(global_step, now):
                print(line, flush=True)

        if crossed(args.eval_interval) or iteration == num_iterations:
            check_finite(f"loss before evaluation at global step {global_step}")
            eval_start = time.time()
            frames = [] if args.capture_video else None
            returns, lengths = evaluate(act, eval_envs, scale, bias, device, seed=args.seed + 100_000 + global_step,
                                        frames=frames)  # fmt: skip
            if frames:
                write_video(f"videos/{run_name}/eval_step{global_step}.mp4", frames, eval_envs.metadata["render_fps"])
            eval_history.append((global_step, float(returns.mean()), float(returns.std())))
            progress.eval = (global_step, float(returns.mean()))
            print(f"global_step={global_step}, eval_return={returns.mean():.1f} +- {returns.std():.1f}")
            writer.add_scalar("eval/episodic_return", returns.mean(), global_step)
            writer.add_scalar("eval/episodic_length", lengths.mean(), global_step)
            eval_seconds += time.time() - eval_start

        if crossed(args.checkpoint_interval) or stop:
            check_finite(f"loss before the checkpoint at global step {global_step}")
            save_checkpoint(ckpt_path, checkpoint_state())
            last_ckpt = ckpt_path
        if stop:
            print(f"stopped by {stop[0]} at global step {global_step}; checkpoint written. To continue:\n"
                  f"  python {__file__} --resume {ckpt_path}", flush=True)
            break

    check_finite(f"loss between global steps {last_check_step} and {global_step}")
    if args.save_model and not stop:
        model_path = f"{run_dir}/{args.exp_name}.sac_model"
        torch.save({"args": asdict(args), "actor": actor.state_dict(), "qf": qf.state_dict(),
                    "log_alpha": log_alpha.detach().cpu()}, model_path)  # fmt: skip
        print(f"model saved to {model_path}")
    envs.close()
    eval_envs.close()
    writer.close()
    if tracker:
        tracker.finish()
    seconds_per_iteration = None  # training iterations only (act, env step, updates), evaluation excluded
    if timing_start is not None:
        seconds_per_iteration = (time.time() - timing_start - eval_seconds) / (iteration - timing_from + 1)
        print(f"time per training iteration: {seconds_per_iteration * 1000:.1f} ms (evaluation excluded), on {device}")
    return {"run_dir": run_dir, "global_step": global_step, "eval_history": eval_history, "checkpoint": last_ckpt,
            "alpha": log_alpha.exp().item(), "seconds_per_iteration": seconds_per_iteration}  # fmt: skip


def cli_args(argv: list[str]) -> Args:
    """The command line. With --resume PATH the defaults are the checkpoint's own hyperparameters, so the path alone
    continues the run; what else is passed must be resumable, or load_checkpoint names it."""
    paths = [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")]
    paths += [b for a, b in zip(argv, argv[1:]) if a == "--resume"]
    if not paths or not os.path.exists(paths[-1]):
        return tyro.cli(Args, args=argv)  # (a missing checkpoint is reported by train)
    saved, known = checkpoint_args(read_checkpoint(paths[-1], mmap=True)), {f.name for f in fields(Args)}
    return tyro.cli(Args, args=argv, default=Args(**{k: v for k, v in saved.items() if k in known}))


@contextmanager
def stop_on_signals():
    """SIGINT (Ctrl-C) and SIGTERM ask the run to stop after the current iteration: the list this yields gets the
    signal's name, and train() then writes a checkpoint and returns. A second signal acts at once."""
    stop: list[str] = []

    def handler(signum, frame):
        stop.append(signal.Signals(signum).name)
        signal.signal(signum, previous[signum])
        print(f"{stop[-1]}: stopping after this iteration, with a checkpoint (send it again to stop at once)", flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


if __name__ == "__main__":
    try:
        args = cli_args(sys.argv[1:])
        if args.eval_only:
            evaluate_saved(args)
        else:
            with stop_on_signals() as stop:
                train(args, stop)
    except SacError as e:
        sys.exit(f"error: {e}")
