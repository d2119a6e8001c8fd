# Soft Actor-Critic (SAC), single file: the baseline of SDAC's paper, run under exactly SDAC's conditions
# (same envs, replay, evaluation, logging, checkpoints). Paper: Haarnoja et al., "Soft Actor-Critic
# Algorithms and Applications" (2018). Docs: README.md of this repository.
# A tanh-squashed Gaussian policy trained by the reparameterised KL to exp(Q / alpha), twin critics, and
# automatic tuning of the entropy coefficient alpha towards a target entropy of -d.
# Read top to bottom: the arguments; the algorithm (networks, losses, one update), which runs alone and can be copied
# without the rest; the training loop; then the plumbing (envs, replay, checkpoints, evaluation, logging), the same
# line for line in sdac_ and dpmd_continuous_action.py.
import math
import os
import pickle
import random
import signal
import sys
import time
import warnings
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Callable, NamedTuple, Optional, Sequence

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


ALGORITHM = "SAC"  # in messages, checkpoint formats and saved-model names
# the bounds validate_args (in the plumbing) checks: options that must be >= 1, >= 0, > 0, and below a limit
AT_LEAST_ONE = ("total_timesteps", "num_envs", "gradient_steps", "buffer_size", "batch_size", "policy_frequency",
                "target_network_frequency", "log_interval", "eval_episodes")  # fmt: skip
NON_NEGATIVE = ("learning_starts", "checkpoint_interval", "eval_interval", "progress_seconds", "log_prob_eps")
POSITIVE = ("q_lr", "policy_lr", "alpha", "alpha_init", "alpha_lr", "reward_scale")
BELOW: dict = {}


# =====================================================================================================================
# The algorithm: networks -> the policy's log-probability and losses -> one update

# ---------------------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------------------
# One update: the critic step, and the policy and alpha steps, each compiled whole under --compile


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
        if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we clone them)
            torch.compiler.cudagraph_mark_step_begin()
        loss, stats = critic_loss(data)
        q_optimizer.zero_grad()
        loss.backward()
        q_step()
        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats

    def update_actor(data: Batch) -> dict[str, torch.Tensor]:
        qf.requires_grad_(False)  # the policy's gradient flows through Q's input only, not into the critics
        loss, stats = policy_loss(data)
        actor_optimizer.zero_grad()
        loss.backward()
        qf.requires_grad_(True)
        actor_step()
        if args.autotune:
            loss, alpha_stats = alpha_loss(data)
            a_optimizer.zero_grad()
            loss.backward()
            alpha_step()
            stats = {**stats, **alpha_stats}
        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats

    return update_critic, update_actor


def saved_policy(saved: dict, args: Args, obs_dim: int, act_dim: int, scale, device) -> Callable:
    """--eval-only: the deterministic policy of a saved run, obs -> tanh(mean)."""
    actor = Actor(obs_dim, act_dim, scale, args.log_prob_eps).to(device)
    actor.load_state_dict(saved["actor"])
    return lambda obs: actor.get_action(obs)[2]



# =====================================================================================================================
# Training loop


def train(args: Args, stop: Sequence[str] = ()) -> dict:
    """One run. `stop` turns non-empty when the run should stop early (stop_on_signals fills it): the iteration in
    progress finishes, a checkpoint is written, and the run returns with the command that resumes it."""
    scale, bias, ckpt = check_run(args)  # bad input fails here, before anything is written
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"

    # seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    # float32 matmuls in TF32 on Ampere and later GPUs, or in full precision: set for the process in one API (the
    # legacy allow_tf32 flags mixed with torch >= 2.9's fp32_precision make torch's own precision reads raise)
    torch.set_float32_matmul_precision("high" if args.tf32 else "highest")

    # env setup
    envs = make_vector_env(args.env_id, args.num_envs)
    eval_envs = make_vector_env(args.env_id, args.eval_episodes, render_first=args.capture_video)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]

    # the tanh-Gaussian policy, the twin critics and their targets, and the entropy coefficient alpha
    actor = Actor(obs_dim, act_dim, scale, args.log_prob_eps).to(device)
    qf = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    q_optimizer = make_optimizer(qf.parameters(), args.q_lr, args, device)
    actor_optimizer = make_optimizer(actor.parameters(), args.policy_lr, args, device)
    log_alpha = torch.tensor(math.log(args.alpha_init if args.autotune else args.alpha), device=device, requires_grad=True)
    a_optimizer = make_optimizer([log_alpha], args.alpha_lr, args, device)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    update_critic, update_actor = make_updates(actor, qf, qf_target, log_alpha, q_optimizer, actor_optimizer,
                                               a_optimizer, -args.target_entropy_scale * act_dim, args)  # fmt: skip
    policy = actor.get_action  # acting and evaluation
    if args.compile or args.cudagraphs:
        policy = compile_policy(policy, args)

    # what a checkpoint holds, by name (save_checkpoint and restore_checkpoint both read this one mapping)
    state = dict(actor=actor, qf=qf, qf_target=qf_target, log_alpha=log_alpha, q_optimizer=q_optimizer,
                 actor_optimizer=actor_optimizer, a_optimizer=a_optimizer, buffer=rb)  # fmt: skip
    global_step, iteration, num_updates, eval_history = restore_checkpoint(ckpt, state, args) if ckpt else (0, 0, 0, [])
    log = RunLog(args, run_name, global_step, ckpt is not None, f"SAC on {args.env_id}", device)
    num_iterations = math.ceil(args.total_timesteps / args.num_envs)
    finite = FiniteCheck(device, args.resume, global_step)
    metrics: dict[str, torch.Tensor] = {}

    # start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    if ckpt:  # the envs as they were at the checkpoint: the run goes on as if never stopped
        obs = restore_env_state(envs, ckpt.get("envs"), obs)
    for iteration in range(iteration + 1, num_iterations + 1):
        global_step += args.num_envs

        # act (uniform random during warm-up, then a sample of the tanh-Gaussian policy), step, store
        if global_step <= args.learning_starts:
            actions = np.random.uniform(-1, 1, (args.num_envs, act_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                actions = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy()
            if not np.isfinite(actions).all():  # on the host already: no read of the device's flag
                finite.fail(f"action at global step {global_step}: the networks diverged")
        next_obs, rewards, terminations, truncations, infos = envs.step(actions * scale + bias)
        log.episodes(infos, global_step)
        # the true final observation as s'; done = terminated (bootstrap through truncation)
        rb.add(obs, actions, rewards, final_observations(next_obs, infos), terminations)
        obs = next_obs

        # training (a run resumed without its buffer first refills learning_starts transitions, acting with the policy)
        if global_step > args.learning_starts and rb.size >= min(args.learning_starts, args.buffer_size):
            log.progress.training_iteration(iteration, time.time())
            for _ in range(args.gradient_steps):
                num_updates += 1
                data = rb.sample(args.batch_size)
                stats = update_critic(data)  # soft policy evaluation
                # delayed policy (and alpha) updates: policy_frequency steps every policy_frequency updates (as CleanRL)
                if num_updates % args.policy_frequency == 0:
                    for _ in range(args.policy_frequency):
                        stats = {**stats, **update_actor(data)}
                if num_updates % args.target_network_frequency == 0:
                    soft_update(qf_target, qf, args.tau)
                finite.watch(stats)
                metrics.update(stats)
            if crossed(global_step, args.log_interval, args.num_envs):
                finite.check_losses(global_step)
                log.scalars("losses", {**metrics, "alpha": log_alpha.detach().exp()}, global_step)

        if crossed(global_step, args.log_interval, args.num_envs):
            log.interval(global_step)

        if crossed(global_step, args.eval_interval, args.num_envs) or iteration == num_iterations:
            finite.check(f"loss before evaluation at global step {global_step}")
            with log.progress.paused():
                frames = [] if args.capture_video else None
                returns, lengths = evaluate(lambda o: policy(o)[2], eval_envs, scale, bias, device,
                                            seed=args.seed + 100_000 + global_step, frames=frames)  # fmt: skip
                eval_history.append((global_step, float(returns.mean()), float(returns.std())))
                log.evaluation(global_step, returns, lengths, frames, eval_envs.metadata["render_fps"])

        if crossed(global_step, args.checkpoint_interval, args.num_envs) or stop:
            finite.check(f"loss before the checkpoint at global step {global_step}")
            counters = dict(global_step=global_step, iteration=iteration, num_updates=num_updates,
                            eval_history=eval_history, envs=env_state(envs, obs))  # fmt: skip
            finite.last_checkpoint = save_checkpoint(f"{log.run_dir}/checkpoint.pt", args, run_name, state, counters)
        if stop and iteration < num_iterations:  # (stopped in its last iteration, the run is complete)
            print(f"stopped by {stop[0]} at global step {global_step}; checkpoint written. To continue:\n"
                  f"  python {__file__} --resume {finite.last_checkpoint}", flush=True)
            break

    finite.check_losses(global_step)
    if args.save_model and iteration == num_iterations:
        save_model(f"{log.run_dir}/{args.exp_name}.sac_model", args, state)
    envs.close()
    eval_envs.close()
    seconds_per_iteration = log.close()
    # "stopped": by a signal before the end, with a checkpoint to continue from (the exit status EXIT_STOPPED)
    return {"run_dir": log.run_dir, "global_step": global_step, "stopped": bool(stop) and iteration < num_iterations,
            "eval_history": eval_history, "checkpoint": finite.last_checkpoint, "alpha": log_alpha.exp().item(),
            "seconds_per_iteration": seconds_per_iteration}  # fmt: skip


# =====================================================================================================================
# Plumbing: environments, input checks, the replay buffer, checkpoints, evaluation, logging and the command line.
# The same, line for line, in sdac_, sac_ and dpmd_continuous_action.py (tests/test_plumbing.py keeps it so); what
# differs between them is above this line.


class RunError(Exception):
    """An error that ends the run with one line and no traceback: bad input, an unusable checkpoint, a diverged run."""


def make_vector_env(env_id: str, num_envs: int, render_first: bool = False) -> gym.vector.VectorEnv:
    """num_envs copies of the env, stepped together (env 0 renders frames if render_first). SAME_STEP autoreset: when
    an episode ends, `next_obs` is already the reset observation and the true final observation is in
    infos["final_obs"]; every vector step then yields num_envs real transitions."""
    env_fns = [partial(gym.make, env_id, **({"render_mode": "rgb_array"} if render_first and i == 0 else {}))
               for i in range(num_envs)]  # fmt: skip
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


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


def check_env(env_id: str, render: bool = False, cuda: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Create the env once, before anything is written: (with render, for --capture-video) a missing off-screen
    renderer, an unknown id and unsuitable spaces fail here, in one line. Returns the action scale and bias: the
    policy acts in [-1, 1]^d and the env gets a * scale + bias, so only a bounded Box action space qualifies."""
    if render:  # MUJOCO_GL is read when MuJoCo is first imported: without a display, EGL on a run's GPU, else OSMesa
        if not os.environ.get("DISPLAY"):
            os.environ.setdefault("MUJOCO_GL", "egl" if cuda and torch.cuda.is_available() else "osmesa")
        try:
            env = gym.make(env_id, render_mode="rgb_array")
            env.reset(seed=0)
            env.render()
            env.close()
        except gym.error.Error:
            pass  # not a rendering problem: said below
        except Exception as e:  # noqa: BLE001 - whatever the GL library raises, the user needs the same advice
            raise RunError(f"--capture-video cannot render {env_id} off-screen (MUJOCO_GL={os.environ.get('MUJOCO_GL')}"
                           f", {type(e).__name__}): install OSMesa (Debian: libosmesa6) and set MUJOCO_GL=osmesa, or "
                           "EGL (libegl1) with MUJOCO_GL=egl") from None
    try:
        env = gym.make(env_id)
    except (gym.error.Error, ImportError, RuntimeError, AttributeError) as e:  # the last three: MuJoCo's import
        hint = " (Pusher-v4 needs mujoco < 3: use Pusher-v5)" if env_id == "Pusher-v4" else ""
        if not isinstance(e, gym.error.Error) and os.environ.get("MUJOCO_GL"):  # e.g. osmesa without its library
            gl = os.environ["MUJOCO_GL"]
            hint = f" (MuJoCo could not load the GL library MUJOCO_GL={gl} names: unset it or install it)"
        raise RunError(f"cannot create env {env_id!r}: {e}{hint}") from None
    env.close()
    space, obs_space = env.action_space, env.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise RunError(f"{ALGORITHM} needs a flat Box observation space, got {obs_space}")
    if not isinstance(space, gym.spaces.Box):
        raise RunError(f"{ALGORITHM} needs a continuous (Box) action space, got {space}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise RunError(f"{ALGORITHM} needs a bounded Box action space with finite low < high, got {space}")
    return ((high - low) / 2).astype(np.float32), ((high + low) / 2).astype(np.float32)


def write_video(path: str, frames: list, fps: float) -> None:
    from moviepy import ImageSequenceClip  # imported only when videos are asked for

    os.makedirs(os.path.dirname(path), exist_ok=True)
    ImageSequenceClip(frames, fps=fps).write_videofile(path, codec="libx264", audio=False, logger=None)


def validate_args(args: Args) -> None:
    """Each option against its bound (the lists below Args) and the combinations that cannot work, one line each."""
    for name, bound, ok in ([(n, ">= 1", getattr(args, n) >= 1) for n in AT_LEAST_ONE]
                            + [(n, ">= 0", getattr(args, n) >= 0) for n in NON_NEGATIVE]
                            + [(n, "> 0", getattr(args, n) > 0) for n in POSITIVE]
                            + [(n, f"< {limit}", getattr(args, n) < limit) for n, limit in BELOW.items()]):  # fmt: skip
        if not ok:  # (NaN fails every comparison)
            raise RunError(f"--{name.replace('_', '-')} must be {bound}, got {getattr(args, name)}")
    for f in fields(args):  # (an infinite learning rate would pass "> 0" and write inf weights)
        if isinstance(getattr(args, f.name), float) and not math.isfinite(getattr(args, f.name)):
            raise RunError(f"--{f.name.replace('_', '-')} must be finite, got {getattr(args, f.name)}")
    if not 0 <= args.seed < 2**32:
        raise RunError(f"--seed must be in [0, 2**32), got {args.seed}")
    if not args.exp_name or os.sep in args.exp_name or args.exp_name in (".", ".."):
        raise RunError(f"--exp-name must be a name, not a path (it names a folder in runs/), got {args.exp_name!r}")
    if args.learning_starts >= args.total_timesteps and not args.eval_only:
        raise RunError(f"--learning-starts ({args.learning_starts}) must be below --total-timesteps "
                       f"({args.total_timesteps}): the run would take random actions only and train nothing")
    if not 0 < args.gamma <= 1 or not 0 < args.tau <= 1:
        raise RunError(f"--gamma and --tau must be in (0, 1], got {args.gamma} and {args.tau}")
    if args.batch_size > args.buffer_size:
        raise RunError(f"--batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.load_model and not args.eval_only:
        raise RunError("--load-model is for --eval-only; to continue training, --resume a checkpoint")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise RunError(f"checkpoint not found: {args.resume}")
    if args.cudagraphs and not (args.cuda and torch.cuda.is_available()):
        raise RunError("--cudagraphs needs a CUDA GPU (and --cuda); on CPU use --compile")


def check_run(args: Args) -> tuple[np.ndarray, np.ndarray, Optional[dict]]:
    """Everything that can be wrong with the input, checked before anything is written: the arguments, rendering,
    the env, and the checkpoint to resume. Returns the action scale and bias and the checkpoint (or None)."""
    validate_args(args)
    scale, bias = check_env(args.env_id, render=args.capture_video, cuda=args.cuda)
    return scale, bias, load_checkpoint(args.resume, args) if args.resume else None


def compile_policy(policy: Callable, args: Args) -> Callable:
    """--compile / --cudagraphs for acting and evaluation: static shapes, so the two batch sizes (num_envs,
    eval_episodes) get one graph each instead of a second, dynamic-shape one; under CUDA graphs each call is a new
    step (its output is read at once, before the next call records or replays)."""
    compiled = torch.compile(policy, mode="reduce-overhead" if args.cudagraphs else None, dynamic=False)
    if not args.cudagraphs:
        return compiled

    def step(*a, **k):
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*a, **k)

    return step


def make_optimizer(params, lr: float, args: Args, device: torch.device) -> torch.optim.Adam:
    """Adam. When compiled, its lr is a tensor (changing it does not recompile), capturable on CUDA (its step count
    stays on the GPU, as CUDA graphs need)."""
    if args.compile or args.cudagraphs:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), capturable=device.type == "cuda")
    return torch.optim.Adam(params, lr=lr)


# ---------------------------------------------------------------------------------------------------------------------
# Replay buffer on the training device (its minibatch, Batch, is defined with the algorithm)


class ReplayBuffer:
    """Transitions packed in one [capacity, 2 obs_dim + act_dim + 2] tensor (s, a, r, s', done), so that storing a
    vector step is one host-to-device copy and sampling one gather; `data` views its columns as a Batch."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.capacity, self.device, self.ptr, self.size = capacity, device, 0, 0
        width = 2 * obs_dim + act_dim + 2
        try:
            self.storage = torch.zeros(capacity, width, device=device)
        except (RuntimeError, OverflowError):  # (torch's out-of-memory error is a RuntimeError)
            raise RunError(f"cannot hold a replay buffer of {capacity} transitions ({capacity * width * 4 / 2**30:.1f} "
                           f"GiB) on {device}: lower --buffer-size") from None
        self.widths = [obs_dim, act_dim, 1, obs_dim, 1]
        self.data = self.fields(self.storage)

    def fields(self, rows: torch.Tensor) -> Batch:
        obs, actions, rewards, next_obs, terminations = rows.split(self.widths, dim=1)
        return Batch(obs, actions, rewards.squeeze(1), next_obs, terminations.squeeze(1))

    def add(self, obs, actions, rewards, next_obs, terminations) -> None:
        """One vector step: done = terminated only, so truncated episodes bootstrap from the true s'."""
        n = len(obs)
        rows = np.concatenate([obs, actions, np.reshape(rewards, (n, 1)), next_obs, np.reshape(terminations, (n, 1))],
                              axis=1, dtype=np.float32)  # fmt: skip
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.storage[idx] = torch.from_numpy(rows).to(self.device)
        self.ptr, self.size = (self.ptr + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), device=self.device)
        return self.fields(self.storage[idx])

    def state_dict(self) -> dict:
        # a copy of what it holds: a slice on the CPU would be a view, and torch.save writes a view's whole storage
        return {"ptr": self.ptr, "size": self.size, "data": [buf[: self.size].to("cpu", copy=True) for buf in self.data]}

    def load_state_dict(self, state: dict) -> None:
        self.ptr, self.size = state["ptr"], state["size"]
        for buf, x in zip(self.data, state["data"]):
            buf[: self.size] = x.to(self.device)


# ---------------------------------------------------------------------------------------------------------------------
# The training envs' state, saved with a checkpoint so that a resumed run steps them on as the uninterrupted run would


def simulator_arrays(data) -> dict:
    """Every array of a MuJoCo MjData by name: the state (qpos, qvel, act, warm start, ...) and what the last step
    derived from it (body positions, which the next step's reward reads: Ant's and Humanoid's x velocity)."""
    names = [k for k in dir(data) if not k.startswith("_")]
    return {k: getattr(data, k) for k in names if isinstance(getattr(data, k), np.ndarray)}


def time_limit(env: gym.Env) -> Optional[gym.wrappers.TimeLimit]:
    while isinstance(env, gym.Wrapper) and not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env if isinstance(env, gym.wrappers.TimeLimit) else None


def env_state(envs, obs: np.ndarray) -> dict:
    """The observations acted on next, and per sub-env its simulator (a MuJoCo env's arrays, a classic-control env's
    `state`), its step in the episode and its random generator (which draws the next episode's start), and the
    running episode returns and lengths. Empty for an env of another kind: a resumed run restarts its episodes."""
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
        steps = limit._elapsed_steps if (limit := time_limit(env)) else None
        subs.append({"sim": sim, "steps": steps, "rng": base.np_random.bit_generator.state})
    return {"subs": subs, "obs": torch.from_numpy(obs.copy()), "returns": torch.from_numpy(envs.episode_returns.copy()),
            "lengths": torch.from_numpy(envs.episode_lengths.copy())}


def restore_env_state(envs, saved: Optional[dict], obs: np.ndarray) -> np.ndarray:
    """Puts the envs back as env_state found them and returns the observations to act on; without a saved state
    (an env of another kind), the fresh episodes' observations `obs`."""
    if not saved or len(saved["subs"]) != envs.num_envs:
        return obs
    for env, sub in zip(envs.unwrapped.envs, saved["subs"]):
        base = env.unwrapped
        if "state" in sub["sim"]:
            base.state = sub["sim"]["state"].numpy().copy()
        else:
            arrays = simulator_arrays(base.data)
            for k, v in sub["sim"].items():  # (arrays sized by this step's contacts are rebuilt by the next step)
                if k in arrays and arrays[k].shape == tuple(v.shape) and arrays[k].flags.writeable:
                    arrays[k][...] = v.numpy()
            base.data.time = sub["sim"]["time"]
        if limit := time_limit(env):
            limit._elapsed_steps = sub["steps"]
        base.np_random.bit_generator.state = sub["rng"]
    envs.episode_returns[:] = saved["returns"].numpy()
    envs.episode_lengths[:] = saved["lengths"].numpy()
    return saved["obs"].numpy().copy()


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints: the training state by name (train's `state`), written atomically (temp file, then rename), holding
# tensors and plain types only, and read back as data only (torch.load with weights_only=True): loading a file never
# runs code from it

CHECKPOINT_FORMAT = f"{ALGORITHM.lower()}-checkpoint-v4"  # v4: the numpy RNG state as a tensor (v3 files are refused)
MODEL_FORMAT = f"{ALGORITHM.lower()}-model-v1"  # --save-model files (untagged before 2026-12-04)
# hyperparameters that may change between a checkpoint and the run that resumes it
RESUMABLE_CHANGES = {"resume", "total_timesteps", "cuda", "save_model", "checkpoint_interval",
                     "checkpoint_buffer", "log_interval", "eval_interval", "eval_episodes", "torch_deterministic",
                     "compile", "cudagraphs", "tf32", "progress_seconds", "print_episodes", "capture_video",
                     "track", "wandb_project_name", "wandb_entity"}  # fmt: skip


def state_dicts(state: dict, args: Args, model_only: bool = False) -> dict:
    """Each object's state: networks and optimisers by their state_dict, tensors as a CPU copy, the replay buffer
    only with --checkpoint-buffer. A saved model (model_only) keeps the networks and tensors."""
    out = {}
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            out[name] = obj.detach().cpu()
        elif isinstance(obj, nn.Module) or not model_only:
            out[name] = None if isinstance(obj, ReplayBuffer) and not args.checkpoint_buffer else obj.state_dict()
    return out


def non_finite(saved: dict) -> list[str]:
    """The networks and tensors among `saved` (a checkpoint's or a saved model's entries) holding a NaN or inf."""
    return [name for name, v in saved.items()
            if (isinstance(v, torch.Tensor) and not torch.isfinite(v).all())
            or (isinstance(v, dict) and any(isinstance(x, torch.Tensor) and x.is_floating_point()
                                            and not torch.isfinite(x).all() for x in v.values()))]  # fmt: skip


def write(obj: dict, path: str, what: str) -> None:
    """torch.save to a temp file, then a rename: the file at path is the old one or the new one, never a part; a
    failure (a full disk, a deleted folder) is one line, and the temp file is removed. Non-finite weights are never
    written."""
    if bad := non_finite({k: v for k, v in obj.items() if k != "buffer"}):
        raise RunError(f"non-finite values in {', '.join(bad)}: {what} not written to {path}"
                       + (" (the one there is from before)" if os.path.exists(path) else ""))
    try:
        torch.save(obj, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    except (OSError, RuntimeError) as e:  # (torch's zip writer raises RuntimeError on a full disk)
        with suppress(OSError):
            os.remove(f"{path}.tmp")
        kept = "the one there is from before" if os.path.exists(path) else "none was written before"
        raise RunError(f"cannot write {what} {path} ({str(e).splitlines()[0][:200]}); {kept}") from None


def rng_state() -> dict:
    """The random generators' states, in tensors and plain types (numpy's key array as a tensor)."""
    _, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached_gaussian)
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(), "cuda": cuda}


def save_checkpoint(path: str, args: Args, run_name: str, state: dict, counters: dict) -> str:
    ckpt = {"format": CHECKPOINT_FORMAT, "args": asdict(args), "run_name": run_name, **counters,
            **state_dicts(state, args), "rng": rng_state()}  # fmt: skip
    write(ckpt, path, "checkpoint")
    return path


def save_model(path: str, args: Args, state: dict) -> None:
    write({"format": MODEL_FORMAT, "args": asdict(args), **state_dicts(state, args, model_only=True)}, path, "model")
    print(f"model saved to {path}")


def read_checkpoint(path: str, mmap: bool = False, saved_model_ok: bool = False) -> dict:
    """The checkpoint at path (or, with saved_model_ok, a --save-model file), read as data only, else a one-line
    error that says what the file is instead."""
    kind = "a saved model or a checkpoint" if saved_model_ok else "a checkpoint"
    unreadable = f"{path} is not {kind} of {ALGORITHM}: not a file torch.save wrote, or a truncated one"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from None
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):  # a reference to a class or function: weights_only refuses it
            raise RunError(f"{path} holds objects other than tensors and plain data, which are not loaded (unpickling "
                           f"them could run code): it is not {kind} written by this version of "
                           f"{os.path.basename(__file__)} (checkpoints before {CHECKPOINT_FORMAT} held numpy's RNG "
                           "state as an object)") from None
        raise RunError(unreadable) from None
    except Exception:  # noqa: BLE001 - whatever torch.load raises on a file it did not write
        raise RunError(unreadable) from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    untagged_model = fmt is None and isinstance(ckpt, dict) and {"args", "actor", "qf"} <= ckpt.keys()
    if untagged_model and not set(ckpt["args"]) <= {f.name for f in fields(Args)}:  # an older saved model's options
        raise RunError(f"{path} is a saved model of another algorithm than {ALGORITHM} (options {ALGORITHM} lacks: "
                       f"{', '.join(sorted(set(ckpt['args']) - {f.name for f in fields(Args)})[:5])})")
    if fmt == MODEL_FORMAT or untagged_model:
        if saved_model_ok:
            return ckpt
        raise RunError(f"{path} is a saved model (--save-model): the final weights only, which cannot continue "
                       "a run; checkpoints are the runs/{run_name}/checkpoint.pt that --checkpoint-interval writes")
    owner, _, what = fmt.partition("-") if isinstance(fmt, str) else ("", "", "")
    if owner != ALGORITHM.lower() and what.startswith(("checkpoint-", "model-")):
        raise RunError(f"{path} is a {what.split('-')[0]} of {owner.upper()}, not of {ALGORITHM}: use "
                       f"{owner}_continuous_action.py")
    if fmt != CHECKPOINT_FORMAT:
        raise RunError(f"{path} is not {kind} of {ALGORITHM} (written by {os.path.basename(__file__)})")
    return ckpt


def load_checkpoint(path: str, args: Args) -> dict:
    ckpt = read_checkpoint(path)
    diff = [f"--{k.replace('_', '-')} {ckpt['args'].get(k)!r} (checkpoint) vs {v!r} (now)"
            for k, v in asdict(args).items() if k not in RESUMABLE_CHANGES and ckpt["args"].get(k) != v]  # fmt: skip
    if diff:
        raise RunError(f"checkpoint {path} is incompatible with these arguments: " + "; ".join(diff))
    if ckpt["global_step"] >= args.total_timesteps:
        raise RunError(f"checkpoint {path} is at step {ckpt['global_step']}, not before --total-timesteps {args.total_timesteps}")
    return ckpt


def restore_checkpoint(ckpt: dict, state: dict, args: Args) -> tuple[int, int, int, list]:
    """Loads every object of `state` from the checkpoint, and the random number generators. Returns global_step,
    iteration, num_updates and eval_history."""
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            with torch.no_grad():
                obj.copy_(ckpt[name])
        elif isinstance(obj, torch.optim.Optimizer):
            # the saved moments and lr, with this run's settings: a compiled run's lr is a tensor, and a run on
            # another device needs its own `capturable` (make_optimizer), or Adam's first step fails
            mine = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in obj.param_groups]
            lrs = [g["lr"] for g in obj.param_groups]
            obj.load_state_dict({**ckpt[name], "param_groups": [{**saved, **m, "lr": float(saved["lr"])}
                                                                 for saved, m in zip(ckpt[name]["param_groups"], mine)]})
            for g, lr in zip(obj.param_groups, lrs):
                g["lr"] = lr.fill_(g["lr"]) if isinstance(lr, torch.Tensor) else g["lr"]
        elif ckpt[name] is not None:
            obj.load_state_dict(ckpt[name])
        elif isinstance(obj, ReplayBuffer):
            print(f"resumed without a replay buffer: updates wait until it holds {args.learning_starts} new transitions")
    random.setstate(ckpt["rng"]["python"])
    key, pos, has_gauss, cached_gaussian = ckpt["rng"]["numpy"]
    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_initialized() and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
    print(f"resumed {ckpt['run_name']} from {args.resume} at global step {ckpt['global_step']}")
    return ckpt["global_step"], ckpt["iteration"], ckpt["num_updates"], ckpt["eval_history"]


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation: the policy without exploration noise, one episode per env, all envs at once


@torch.no_grad()
def evaluate(policy: Callable, eval_envs, scale, bias, device, seed: int, frames: Optional[list] = None):
    """Returns and lengths of one episode per env under policy(obs) -> action in [-1, 1]^d; with `frames`, env 0's
    episode is rendered into it."""
    obs, _ = eval_envs.reset(seed=seed)
    n = eval_envs.num_envs
    returns, lengths, done = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    render = eval_envs.unwrapped.envs[0].render
    if frames is not None:
        frames.append(render())
    while not done.all():
        a = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
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
        raise RunError("--eval-only needs --load-model PATH (a saved model or a checkpoint)")
    if not os.path.exists(args.load_model):
        raise RunError(f"model not found: {args.load_model}")
    saved = read_checkpoint(args.load_model, saved_model_ok=True)
    if bad := non_finite(saved):
        raise RunError(f"{args.load_model} holds non-finite values in {', '.join(bad)}: no policy to evaluate")
    # the run's own hyperparameters; from this command only the episodes, the device and the video (not what it resumed)
    now = {"eval_episodes": args.eval_episodes, "cuda": args.cuda, "capture_video": args.capture_video, "resume": None}
    run = Args(**{**{k: v for k, v in saved["args"].items() if k in {f.name for f in fields(Args)}}, **now})
    scale, bias, _ = check_run(run)
    torch.manual_seed(args.seed)  # the policy's draws: the same file and seed give the same returns
    device = torch.device("cuda" if torch.cuda.is_available() and run.cuda else "cpu")
    eval_envs = make_vector_env(run.env_id, run.eval_episodes, render_first=run.capture_video)
    frames = [] if run.capture_video else None
    obs_dim, act_dim = eval_envs.single_observation_space.shape[0], eval_envs.single_action_space.shape[0]
    policy = saved_policy(saved, run, obs_dim, act_dim, scale, device)
    returns, lengths = evaluate(policy, eval_envs, scale, bias, device, seed=args.seed, frames=frames)
    if frames:
        video = f"videos/eval_only/{os.path.basename(args.load_model)}_seed{args.seed}.mp4"
        write_video(video, frames, eval_envs.metadata["render_fps"])
        print(f"video: {video}")
    eval_envs.close()
    print(f"{args.load_model}: {run.env_id}, {len(returns)} episodes: return {returns.mean():.1f} +- {returns.std():.1f} "
          f"(min {returns.min():.1f}, max {returns.max():.1f}), length {lengths.mean():.1f}")  # fmt: skip
    return returns


# ---------------------------------------------------------------------------------------------------------------------
# Logging, progress and the non-finite check


def crossed(step: int, interval: int, num_envs: int) -> bool:
    """Did global step `step` just pass a multiple of `interval` (0: never)?"""
    return interval > 0 and step // interval > (step - num_envs) // interval


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """The time per training iteration (act, env step, updates; evaluations excluded), timed from the 10th training
    iteration on (the first ones absorb compilation) where the run allows, and the one estimate made from it: the
    time left, rate x iterations left. It feeds a status line every progress_seconds (env steps, the SPS since the
    last line, the last evaluation, the ETA) and, after 10 timed iterations, a warning when the rest of a CPU run
    needs more than an hour. The random warm-up, thousands of steps per second, counts in no estimate."""

    def __init__(self, args: Args, step: int, device: torch.device, now: float):
        self.args, self.device, self.last = args, device, (now, step)  # last: (time, step) of the last status line
        self.num_iterations = math.ceil(args.total_timesteps / args.num_envs)
        self.first = self.start = self.iteration = None  # the first timed iteration, when it began, the last begun
        self.excluded, self.eval = 0.0, None  # seconds paused; (step, mean return) of the last evaluation

    def training_iteration(self, iteration: int, now: float) -> None:
        if self.first is None:
            self.first = iteration + (10 if self.num_iterations - iteration >= 20 else 0)
        if iteration == self.first:
            self.start, self.excluded = now, 0.0
        self.iteration = iteration
        if iteration == self.first + 10 and self.device.type == "cpu":  # 10 iterations timed: the cost is known
            if (left := (now - self.start - self.excluded) / 10 * (self.num_iterations - iteration + 1)) > 3600:
                print(f"warning: on this CPU the training needs about {duration(left)} more; the official settings are "
                      "a GPU job (README: CPU quick start)", flush=True)  # fmt: skip

    def seconds_per_iteration(self, now: float) -> Optional[float]:
        """Over the timed iterations so far (the last one counted whole), None before the first."""
        if self.start is None or self.iteration < self.first:
            return None
        return (now - self.start - self.excluded) / (self.iteration - self.first + 1)

    @contextmanager
    def paused(self):
        start = time.time()
        yield
        self.excluded += time.time() - start

    def line(self, step: int, now: float) -> Optional[str]:
        """The status line if progress_seconds have passed since the last one, else None."""
        dt = now - self.last[0]
        if dt < self.args.progress_seconds or dt <= 0:
            return None
        self.last, sps = (now, step), (step - self.last[1]) / dt
        last_eval = f"eval {self.eval[1]:.1f} at step {self.eval[0]}" if self.eval else "no evaluation yet"
        rate = self.seconds_per_iteration(now)
        left = math.ceil((self.args.total_timesteps - step) / self.args.num_envs)
        eta = duration(rate * left) if rate is not None else "once training is timed"
        return (f"step {step}/{self.args.total_timesteps} ({100 * step / self.args.total_timesteps:.1f}%) | "
                f"{sps:.1f} SPS over {dt:.1f} s | {last_eval} | ETA {eta}")


class RunLog:
    """What a run reports: TensorBoard scalars in runs/{run_name} (synced to Weights & Biases with --track, as CleanRL
    does), training episodes, evaluations (and their videos), the SPS over each log interval and the status line."""

    def __init__(self, args: Args, run_name: str, global_step: int, resumed: bool, headline: str, device):
        # a resumed run continues in its checkpoint's folder, whatever the working folder
        self.run_dir = (os.path.dirname(args.resume) or ".") if resumed else f"runs/{run_name}"
        self.args, self.run_name, self.tracker = args, run_name, None
        if args.track:  # before the writer, whose logs it syncs; a resumed run continues its wandb run
            try:
                import wandb  # imported only when asked for
            except ImportError:
                raise RunError("--track needs wandb: pip install wandb") from None
            try:
                self.tracker = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, name=run_name,
                                          id=run_name, resume="allow", config=asdict(args), sync_tensorboard=True,
                                          save_code=True)  # fmt: skip
            except Exception as e:  # noqa: BLE001 - wandb's errors (no API key, no network) have no common class
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                raise RunError(f"--track could not start Weights & Biases ({reason}): run `wandb login`, or set "
                               "WANDB_MODE=offline") from None
        try:  # (a run folder that cannot be made or written: a file in its way, no permission, a full disk)
            os.makedirs(self.run_dir, exist_ok=True)
            self.writer = SummaryWriter(self.run_dir, purge_step=global_step + 1 if resumed else None)
        except OSError as e:
            raise RunError(f"cannot write to the run folder {self.run_dir}: {e.strerror or e}") from None
        if not resumed:
            table = "\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
        self.progress = Progress(args, global_step, device, time.time())
        self.sps_mark = (time.time(), global_step)
        print(f"{headline} | {args.num_envs} envs, {args.gradient_steps} update(s) per vector step | "
              f"{args.total_timesteps} env steps, the first {args.learning_starts} random | {device} | {self.run_dir}",
              flush=True)  # fmt: skip

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def episodes(self, infos: dict, step: int) -> None:
        for ep_return, ep_length in finished_episodes(infos):
            if self.args.print_episodes:
                print(f"global_step={step}, episodic_return={ep_return:.1f}")
            self.scalars("charts", {"episodic_return": ep_return, "episodic_length": ep_length}, step)

    def interval(self, step: int) -> None:
        """At each log interval: the SPS since the last one, and the status line when it is due."""
        now = time.time()
        self.scalars("charts", {"SPS": (step - self.sps_mark[1]) / max(now - self.sps_mark[0], 1e-9)}, step)
        self.sps_mark = (now, step)
        if line := self.progress.line(step, now):
            print(line, flush=True)

    def evaluation(self, step: int, returns: np.ndarray, lengths: np.ndarray, frames: Optional[list], fps) -> None:
        if frames:
            write_video(f"videos/{self.run_name}/eval_step{step}.mp4", frames, fps)
        self.progress.eval = (step, float(returns.mean()))
        print(f"global_step={step}, eval_return={returns.mean():.1f} +- {returns.std():.1f}")
        self.scalars("eval", {"episodic_return": returns.mean(), "episodic_length": lengths.mean()}, step)

    def close(self) -> Optional[float]:
        """Closes the logs; returns the seconds per training iteration (None if none was timed), also printed."""
        self.writer.close()
        if self.tracker:
            self.tracker.finish()
        if (seconds := self.progress.seconds_per_iteration(time.time())) is not None:
            print(f"time per training iteration: {seconds * 1000:.1f} ms (evaluation excluded), on {self.progress.device}")
        return seconds


class FiniteCheck:
    """Non-finite losses are flagged on the device (no host sync in the training step) and read at every log,
    evaluation and checkpoint: the run then stops with one line that names the last checkpoint, which was written
    before the flag rose and is never overwritten with NaN weights."""

    def __init__(self, device: torch.device, last_checkpoint: Optional[str], step: int):
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.last_checkpoint, self.since = last_checkpoint, step

    def watch(self, stats: dict) -> None:
        self.bad |= ~torch.isfinite(torch.stack(list(stats.values()))).all()

    def check(self, what: str) -> None:
        if bool(self.bad):  # the one read of the device flag (a host sync)
            self.fail(what)

    def fail(self, what: str) -> None:
        raise RunError(f"non-finite {what}; training stopped and nothing was saved after it. "
                       f"Last checkpoint: {self.last_checkpoint or 'none (use --checkpoint-interval N)'}")

    def check_losses(self, step: int) -> None:
        self.check(f"loss between global steps {self.since} and {step}")
        self.since = step


# ---------------------------------------------------------------------------------------------------------------------
# The command line


def cli_args(argv: list[str]) -> Args:
    """The command line. With --resume PATH the defaults are the checkpoint's own hyperparameters, so the path alone
    continues the run; what else is passed must be resumable, or load_checkpoint names it."""
    paths = [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")]
    paths += [b for a, b in zip(argv, argv[1:]) if a == "--resume"]
    if not paths or not os.path.exists(paths[-1]):
        return tyro.cli(Args, args=argv)  # (a missing checkpoint is reported by train)
    saved, known = read_checkpoint(paths[-1], mmap=True)["args"], {f.name for f in fields(Args)}
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


# The exit status of a run stopped by a signal with a checkpoint: EX_TEMPFAIL (sysexits.h), "try again", so that a
# sweep (benchmark.sh) or a scheduler tells a resumable run from a finished one (0) and a failed one (1) by it alone
EXIT_STOPPED = 75

if __name__ == "__main__":
    try:
        args = cli_args(sys.argv[1:])
        if args.eval_only:
            evaluate_saved(args)
        else:
            with stop_on_signals() as stop:
                if train(args, stop)["stopped"]:
                    sys.exit(EXIT_STOPPED)
    except RunError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:  # a second Ctrl-C: at once, as asked
        print("stopped at once by a second signal: the run continues from its last checkpoint, if it wrote one",
              file=sys.stderr)
        sys.exit(130)
