# DPMD, our side (PyTorch, dpmd_continuous_action.py of this repository, imported unmodified). Loads the authors'
# params, inputs and random draws from dpmd_jax_{f32,f64}.npz (dpmd_jax_side.py), runs three of our updates exactly as
# train() calls them, with those draws injected (torch.randn / randn_like / randint replaced by a queue that checks
# each call's shape), and prints max abs / relative differences per piece.
# usage: python dpmd_torch_side.py [--x64]
import math
import os
import sys

import numpy as np
import torch

X64 = "--x64" in sys.argv
torch.set_num_threads(1)
if X64:
    torch.set_default_dtype(torch.float64)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import dpmd_continuous_action as D  # noqa: E402

J = dict(np.load(f"{os.environ.get('EQUIV_OUT', '.')}/dpmd_jax_{'f64' if X64 else 'f32'}.npz"))
OBS, ACT, B, N, T = 17, 6, 16, 32, 20
DT = torch.get_default_dtype()
rows = []


def tt(a, dtype=None):
    return torch.as_tensor(np.asarray(a), dtype=dtype or DT)


def cmp(name, ours, theirs, note=""):
    o = ours.detach().cpu().double().numpy() if torch.is_tensor(ours) else np.asarray(ours, np.float64)
    t = np.asarray(theirs, np.float64)
    assert o.shape == t.shape, (name, o.shape, t.shape)
    d = np.abs(o - t).max() if o.size else 0.0
    rows.append((name, d, d / max(np.abs(t).max(), 1e-30), note))


class Inject:  # the authors' draws, in our call order
    def __init__(self):
        self.q, self._orig = [], (torch.randn, torch.randn_like, torch.randint)

    def push(self, kind, arr):
        self.q.append((kind, np.asarray(arr)))

    def _pop(self, kind, shape):
        k, a = self.q.pop(0)
        assert k == kind and tuple(a.shape) == tuple(shape), (kind, shape, k, a.shape)
        return a

    def __enter__(self):
        def randn(*size, **kw):
            size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
            return tt(self._pop("randn", size))

        def randint(low, high, size, **kw):
            assert (low, high) == (0, T)
            return torch.as_tensor(self._pop("randint", size), dtype=torch.long)

        torch.randn, torch.randint = randn, randint
        torch.randn_like = lambda x, **kw: tt(self._pop("randn_like", x.shape), x.dtype)
        return self

    def __exit__(self, *exc):
        torch.randn, torch.randn_like, torch.randint = self._orig
        if exc[0] is None:
            assert not self.q, f"{len(self.q)} draws not consumed"


def push_get_action(inj, z, noise, expl):
    """their draws [N, B, d], [N, T, B, d], [B, d] -> our call order: x_T [B*N, d] (row b*N+n), T-1 step noises, expl"""
    inj.push("randn", z.transpose(1, 0, 2).reshape(B * N, ACT))
    for j in range(T - 1):  # scan step j is t = T-1-j; the noise of t = 0 is multiplied by 0 on their side
        inj.push("randn_like", noise[:, j].transpose(1, 0, 2).reshape(B * N, ACT))
    inj.push("randn_like", expl)


# ---------------- params: haiku [in, out] -> torch
def hk(prefix, tag, i):
    n = ("dacer_policy_net" if tag in ("policy", "target_poicy") else "q_net") + "/linear" + ("" if i == 0 else f"_{i}")
    return J[f"{prefix}{tag}|{n}|w"], J[f"{prefix}{tag}|{n}|b"]


def load_actor(actor, tag, prefix="P_"):
    layers = [actor.time_emb.net[0], actor.time_emb.net[2], actor.net[0], actor.net[2], actor.net[4], actor.net[6]]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            w, b = hk(prefix, tag, i)
            layer.weight.copy_(tt(w).T), layer.bias.copy_(tt(b))
    return actor


def load_q(qf, tags, prefix="P_"):
    with torch.no_grad():
        for i, layer in enumerate([qf.net[0], qf.net[2], qf.net[4], qf.net[6]]):
            (w1, b1), (w2, b2) = hk(prefix, tags[0], i), hk(prefix, tags[1], i)
            layer.weight.copy_(tt(np.stack([w1, w2]))), layer.bias.copy_(tt(np.stack([b1, b2])[:, None]))
    return qf


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


args = D.Args(diffusion_steps=T, num_candidates=N)  # every other value: our defaults, the authors' (tests/test_dpmd.py)
device = torch.device("cpu")
torch.manual_seed(0)
actor, actor_ema = load_actor(D.NoiseNetwork(OBS, ACT), "policy"), load_actor(D.NoiseNetwork(OBS, ACT), "target_poicy")
qf, qf_target = load_q(D.TwinQNetwork(OBS, ACT), ("q1", "q2")), load_q(D.TwinQNetwork(OBS, ACT), ("target_q1", "target_q2"))
log_lam = torch.tensor(float(J["log_alpha"]), requires_grad=True)
q_stats = torch.tensor([float(J["running_mean0"]), float(J["running_std0"])])
q_optimizer = D.make_optimizer(qf.parameters(), args.q_lr, args, device)
actor_optimizer = D.make_optimizer(actor.parameters(), args.policy_lr, args, device)
lam_optimizer = torch.optim.Adam([log_lam], lr=args.lambda_lr)
sched = D.make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device, dtype=DT)  # float64 in the float64 run
update, update_lambda = D.make_update(D.make_policy(sched, args), actor, actor_ema, qf, qf_target, log_lam, q_stats,
                                      q_optimizer, actor_optimizer, lam_optimizer, sched, args)  # fmt: skip
data = D.Batch(tt(J["obs"]), tt(J["act"]), tt(J["d_reward"]), tt(J["d_next_obs"]), tt(J["d_done"].astype(np.float64)))

# the policy lr schedule (algorithm/dpmd.py:57-63) at the counts their side evaluated
ours_lr = [D.policy_lr_at(int(c), args.policy_lr, args.policy_lr_end, args.policy_lr_decay_begin,
                          args.policy_lr_decay_steps) for c in J["lr_counts"]]  # fmt: skip
cmp("0 policy lr schedule at 12 counts", np.array(ours_lr), J["lr_values"])

# observe our update from outside: min_q calls (the target's, the weights'), q_weights and weighted_dsm_loss
seen = {}
_min_q, _q_weights, _dsm = D.min_q, D.q_weights, D.weighted_dsm_loss


def min_q_spy(net, obs, a):
    v = _min_q(net, obs, a)
    if net is qf_target:
        seen["target_minq"], seen["next_a"] = v.detach().clone(), a.detach().clone()
    elif obs.shape[0] == B and obs is data.next_obs:  # the weights' Q, after the first critic step
        seen["weights_minq"], seen["critics_then"] = v.detach().clone(), flat(qf).clone()
    return v


def q_weights_spy(*a, **k):
    w, z = _q_weights(*a, **k)
    seen["weights"], seen["z"] = w.detach().clone(), z.detach().clone()
    return w, z


def dsm_spy(*a, **k):
    loss = _dsm(*a, **k)
    seen["dsm_loss"] = loss.detach().clone()
    return loss


D.min_q, D.q_weights, D.weighted_dsm_loss = min_q_spy, q_weights_spy, dsm_spy
for u in range(3):  # the body of train()'s gradient-step loop, with u = num_updates
    p = f"u{u}_"
    seen.clear()
    lam = log_lam.detach().exp()
    update_policy = u % args.policy_frequency == 0
    assert update_policy == bool(J[p + "policy_updated"]), "the same updates apply the policy step"
    with Inject() as inj:
        push_get_action(inj, J[p + "next_z"], J[p + "next_noise"], J[p + "next_expl"])
        if update_policy:
            inj.push("randint", J[p + "t"])
            inj.push("randn_like", J[p + "noise"])
        stats = update(data, lam, u)
    if u % args.lambda_update_interval == 0:
        update_lambda()
    cmp(f"u={u} a' (best of N + noise, online policy)", seen["next_a"], J[p + "next_action"])
    cmp(f"u={u} min Q_target(s', a')", seen["target_minq"], J[p + "target_minq"])
    q_backup = args.reward_scale * data.rewards + (1 - data.terminations) * args.gamma * seen["target_minq"]
    cmp(f"u={u} critic target r*0.2 + (1-done)*0.99*minQ'", q_backup, J[p + "q_backup"], "formula as in critic_loss")
    cmp(f"u={u} critic loss Q1", stats["qf1_loss"], J[p + "info_q1_loss"])
    cmp(f"u={u} critic loss Q2", stats["qf2_loss"], J[p + "info_q2_loss"])
    ref = load_q(D.TwinQNetwork(OBS, ACT), ("q1_first", "q2_first"), prefix=p + "S_")
    cmp(f"u={u} critics after the first Adam step", seen["critics_then"], flat(ref))
    cmp(f"u={u} min Q(s', a') for the weights", seen["weights_minq"], J[p + "weights_minq"])
    if update_policy:
        cmp(f"u={u} weights exp(clip(q - mean/std)/lambda)", seen["weights"], J[p + "dsm_weights"],
            f"{int((seen['z'].abs() >= 3).sum())} of {B} at the clip")  # fmt: skip
        cmp(f"u={u} weighted DSM loss", seen["dsm_loss"], J[p + "dsm_loss"])
        grads = torch.cat([q.grad.flatten() for q in actor.parameters()])
        ref_grads = load_actor(D.NoiseNetwork(OBS, ACT), "policy", prefix=p + "G_")
        cmp(f"u={u} policy gradient (all params)", grads, flat(ref_grads))
    cmp(f"u={u} critics after the second Adam step", flat(qf), flat(load_q(D.TwinQNetwork(OBS, ACT), ("q1", "q2"), p + "S_")))
    cmp(f"u={u} target critics", flat(qf_target), flat(load_q(D.TwinQNetwork(OBS, ACT), ("target_q1", "target_q2"), p + "S_")))
    cmp(f"u={u} policy after Adam", flat(actor), flat(load_actor(D.NoiseNetwork(OBS, ACT), "policy", p + "S_")))
    cmp(f"u={u} EMA policy", flat(actor_ema), flat(load_actor(D.NoiseNetwork(OBS, ACT), "target_poicy", p + "S_")))
    cmp(f"u={u} log lambda", log_lam, J[p + "S_log_alpha"])
    cmp(f"u={u} running mean, std of min Q", q_stats, np.array([J[p + "S_running_mean"], J[p + "S_running_std"]]))
D.min_q, D.q_weights, D.weighted_dsm_loss = _min_q, _q_weights, _dsm

print(f"\n{'piece':62s} {'max|diff|':>11s} {'rel':>10s}  note   [{'float64' if X64 else 'float32'}]")
for name, d, rel, note in rows:
    print(f"{name:62s} {d:11.3e} {rel:10.3e}  {note}")
print("largest relative difference:", f"{max(r[2] for r in rows):.3e}")
