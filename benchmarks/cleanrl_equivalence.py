"""Our SAC update beside CleanRL's, one to one, in float64: CleanRL's Actor and SoftQNetwork (its file, run as is
minus the buffer import) and ours with the same weights, the same batches and the same torch RNG state; CleanRL's
update (its sac_continuous_action.py:257-304 at fe8d8a03, repeated below for the comparison) beside our make_update
(its update, soft_update included), for 40 updates. Prints the largest difference in any parameter, alpha or loss.

    CLEANRL_SRC=/tmp/cleanrl/src python benchmarks/cleanrl_equivalence.py   # CleanRL's checkout: benchmarks/cleanrl_sac.sh setup
"""

import os
import sys, types, numpy as np, torch, torch.nn.functional as F, torch.optim as optim, gymnasium as gym

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import sac_continuous_action as S  # noqa: E402

src = (
    open(os.path.join(os.environ.get("CLEANRL_SRC", "/tmp/cleanrl/src"), "cleanrl/sac_continuous_action.py"))
    .read()
    .replace("from cleanrl_utils.buffers import ReplayBuffer", "")
)
C = types.ModuleType("C")
C.__file__ = "cleanrl_sac.py"
exec(compile(src, "cleanrl", "exec"), C.__dict__)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
envs = types.SimpleNamespace(
    single_observation_space=gym.spaces.Box(-np.inf, np.inf, (11,), np.float64),
    single_action_space=gym.spaces.Box(-1, 1, (3,), np.float32),
)
torch.manual_seed(0)
actor, qf1, qf2 = C.Actor(envs), C.SoftQNetwork(envs), C.SoftQNetwork(envs)
qf1_t, qf2_t = C.SoftQNetwork(envs), C.SoftQNetwork(envs)
qf1_t.load_state_dict(qf1.state_dict())
qf2_t.load_state_dict(qf2.state_dict())


class Args:
    q_lr = 1e-3
    policy_lr = 3e-4
    gamma = 0.99
    tau = 0.005
    policy_frequency = 2
    target_network_frequency = 1
    autotune = True
    reward_scale = 1.0
    compile = False
    cudagraphs = False


args = Args()
oa, oq, oqt = S.Actor(11, 3), S.TwinQNetwork(11, 3), S.TwinQNetwork(11, 3)
with torch.no_grad():
    oa.net[0].weight.copy_(actor.fc1.weight)
    oa.net[0].bias.copy_(actor.fc1.bias)
    oa.net[2].weight.copy_(actor.fc2.weight)
    oa.net[2].bias.copy_(actor.fc2.bias)
    oa.net[4].weight.copy_(torch.cat([actor.fc_mean.weight, actor.fc_logstd.weight]))
    oa.net[4].bias.copy_(torch.cat([actor.fc_mean.bias, actor.fc_logstd.bias]))
    for k, (a, b) in enumerate([(qf1, qf2)]):
        for li, name in [(0, "fc1"), (2, "fc2"), (4, "fc3")]:
            oq.net[li].weight.copy_(torch.stack([getattr(a, name).weight.T, getattr(b, name).weight.T]))
            oq.net[li].bias.copy_(torch.stack([getattr(a, name).bias, getattr(b, name).bias])[:, None, :])
oqt.load_state_dict(oq.state_dict())
q_opt = optim.Adam(list(qf1.parameters()) + list(qf2.parameters()), lr=1e-3)
a_opt_actor = optim.Adam(actor.parameters(), lr=3e-4)
target_entropy = -3.0
log_alpha = torch.zeros(1, requires_grad=True)
alpha = 1.0
a_opt = optim.Adam([log_alpha], lr=1e-3)
o_qopt = S.make_optimizer(oq.parameters(), 1e-3, args, "cpu")
o_aopt = S.make_optimizer(oa.parameters(), 3e-4, args, "cpu")
o_log_alpha = torch.tensor(0.0, requires_grad=True)
o_alopt = S.make_optimizer([o_log_alpha], 1e-3, args, "cpu")
update = S.make_update(oa, oq, oqt, o_log_alpha, o_qopt, o_aopt, o_alopt, -3.0, args)
g = torch.Generator().manual_seed(1)
B = 256
maxdiff = 0
for step in range(
    1, 41
):  # 'global_step' parity: CleanRL's policy update when step % 2 == 0, ours when (u + 1) % 2 == 0
    obs = torch.randn(B, 11, generator=g)
    nobs = torch.randn(B, 11, generator=g)
    act = torch.rand(B, 3, generator=g) * 2 - 1
    rew = torch.randn(B, generator=g) * 5
    done = (torch.rand(B, generator=g) < 0.1).float()
    data = types.SimpleNamespace(
        observations=obs, next_observations=nobs, actions=act, rewards=rew[:, None], dones=done[:, None]
    )
    torch.manual_seed(100 + step)
    # ---- CleanRL's update, its lines 257-304 (global_step := step) ----
    global_step = step
    with torch.no_grad():
        next_state_actions, next_state_log_pi, _ = actor.get_action(data.next_observations)
        qf1_next_target = qf1_t(data.next_observations, next_state_actions)
        qf2_next_target = qf2_t(data.next_observations, next_state_actions)
        min_qf_next_target = torch.min(qf1_next_target, qf2_next_target) - alpha * next_state_log_pi
        next_q_value = data.rewards.flatten() + (1 - data.dones.flatten()) * args.gamma * (min_qf_next_target).view(-1)
    qf1_a_values = qf1(data.observations, data.actions).view(-1)
    qf2_a_values = qf2(data.observations, data.actions).view(-1)
    qf_loss = F.mse_loss(qf1_a_values, next_q_value) + F.mse_loss(qf2_a_values, next_q_value)
    q_opt.zero_grad()
    qf_loss.backward()
    q_opt.step()
    if global_step % args.policy_frequency == 0:
        for _ in range(args.policy_frequency):
            pi, log_pi, _ = actor.get_action(data.observations)
            actor_loss = ((alpha * log_pi) - torch.min(qf1(data.observations, pi), qf2(data.observations, pi))).mean()
            a_opt_actor.zero_grad()
            actor_loss.backward()
            a_opt_actor.step()
            with torch.no_grad():
                _, log_pi, _ = actor.get_action(data.observations)
            alpha_loss = (-log_alpha.exp() * (log_pi + target_entropy)).mean()
            a_opt.zero_grad()
            alpha_loss.backward()
            a_opt.step()
            alpha = log_alpha.exp().item()
    for p, tp in zip(
        list(qf1.parameters()) + list(qf2.parameters()), list(qf1_t.parameters()) + list(qf2_t.parameters())
    ):
        tp.data.copy_(args.tau * p.data + (1 - args.tau) * tp.data)
    # ---- ours ----
    torch.manual_seed(100 + step)
    od = S.Batch(obs, act, rew, nobs, done)
    out = update(od, step - 1)  # update number u = step - 1: the policy steps when u + 1 is even, as CleanRL's

    def flat(*mods):
        return torch.cat([p.detach().flatten() for m in mods for p in m.parameters()])

    ours_actor = flat(oa)
    cl_actor = torch.cat(
        [
            actor.fc1.weight.flatten(),
            actor.fc1.bias,
            actor.fc2.weight.flatten(),
            actor.fc2.bias,
            torch.cat([actor.fc_mean.weight, actor.fc_logstd.weight]).flatten(),
            torch.cat([actor.fc_mean.bias, actor.fc_logstd.bias]),
        ]
    )

    def cl_twin(a, b):
        return torch.cat(
            [
                t
                for n in ("fc1", "fc2", "fc3")
                for t in (
                    torch.stack([getattr(a, n).weight.T, getattr(b, n).weight.T]).flatten(),
                    torch.stack([getattr(a, n).bias, getattr(b, n).bias]).flatten(),
                )
            ]
        )

    d = dict(
        qloss=abs(qf_loss.item() / 2 - out["qf_loss"].item()),
        actor=(ours_actor - cl_actor).abs().max().item(),
        critics=(flat(oq) - cl_twin(qf1, qf2)).abs().max().item(),
        targets=(flat(oqt) - cl_twin(qf1_t, qf2_t)).abs().max().item(),
        alpha=abs(alpha - o_log_alpha.exp().item()),
    )
    maxdiff = max(maxdiff, max(d.values()))
    if step in (1, 2, 3, 4, 10, 20, 40):
        print(
            step,
            {k: f"{v:.2e}" for k, v in d.items()},
            "alpha",
            f"{alpha:.5f}",
            "actor_loss",
            f"{actor_loss.item():.4f}" if step > 1 else "",
        )
print("max abs diff over 40 updates:", maxdiff)
