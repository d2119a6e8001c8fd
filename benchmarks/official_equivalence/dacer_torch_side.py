# DACER, our side (PyTorch, dacer_continuous_action.py of this repository, imported unmodified). Loads the authors'
# params, inputs and random draws from dacer_jax_{f32,f64}.npz (dacer_jax_side.py), runs three of our updates exactly as
# train() calls them, with those draws injected (torch.randn / randn_like replaced by a queue that checks each call's
# shape; the mixture fit starts from their k-means labels), and prints max abs / relative differences per piece.
# usage: python dacer_torch_side.py [--x64]
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
import dacer_continuous_action as D  # noqa: E402

J = dict(np.load(f"{os.environ.get('EQUIV_OUT', '.')}/dacer_jax_{'f64' if X64 else 'f32'}.npz"))
OBS, ACT, B, T, M = 17, 6, 16, 20, 200
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
        self.q, self._orig = [], (torch.randn, torch.randn_like)

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

        torch.randn = randn
        torch.randn_like = lambda x, **kw: tt(self._pop("randn_like", x.shape), x.dtype)
        return self

    def __exit__(self, *exc):
        torch.randn, torch.randn_like = self._orig
        if exc[0] is None:
            assert not self.q, f"{len(self.q)} draws not consumed"


def push_chain(inj, z, noise, expl):
    """their draws x_T [..., n, d], step noises [..., T, n, d], exploration [..., n, d] (a leading M for the entropy's
    vmap: our row m * n + b) -> our call order: x_T, the T-1 step noises (scan step j is t = T-1-j; the noise of
    t = 0 is multiplied by 0 on their side), the exploration noise"""
    d = z.shape[-1]
    inj.push("randn", z.reshape(-1, d))
    for j in range(T - 1):
        inj.push("randn_like", noise[..., j, :, :].reshape(-1, d))
    inj.push("randn_like", expl.reshape(-1, d))


# ---------------- params: haiku [in, out] -> torch
def hk(prefix, tag, i):
    n = ("dacer_policy_net" if tag == "policy" else "distributional_q_net2") + "/linear" + ("" if i == 0 else f"_{i}")
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


args = D.Args(diffusion_steps=T)  # every other value: our defaults, the authors' (tests/test_dacer.py)
device = torch.device("cpu")
torch.manual_seed(0)
actor = load_actor(D.NoiseNetwork(OBS, ACT), "policy")
qf, qf_target = (
    load_q(D.TwinQNetwork(OBS, ACT), ("q1", "q2")),
    load_q(D.TwinQNetwork(OBS, ACT), ("target_q1", "target_q2")),
)
log_alpha = torch.tensor(float(J["log_alpha"]), requires_grad=True)
sigma_bar = torch.full((2,), -1.0)
q_optimizer = D.make_optimizer(qf.parameters(), args.q_lr, args, device)
actor_optimizer = D.make_optimizer(actor.parameters(), args.policy_lr, args, device)
alpha_optimizer = torch.optim.Adam([log_alpha], lr=args.alpha_lr)
sched = D.make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device, dtype=DT)
update = D.make_update(
    D.make_policy(sched, args),
    actor,
    qf,
    qf_target,
    log_alpha,
    sigma_bar,
    q_optimizer,
    actor_optimizer,
    alpha_optimizer,
    sched,
    args,
)
data = D.Batch(tt(J["obs"]), tt(J["act"]), tt(J["d_reward"]), tt(J["d_next_obs"]), tt(J["d_done"].astype(np.float64)))

# the configuration: schedule (scale 0.3), target entropy, alpha's start, gamma, tau, intervals, reward scale, samples
cmp("0 betas (linear, scale 0.3)", sched.betas, J["cfg_betas"])
cmp("0 abar", sched.abar, J["cfg_abar"])
cmp("0 target entropy -0.9 d", -args.target_entropy_scale * ACT, J["cfg_target_entropy"])
cmp("0 log alpha at the start", math.log(args.alpha_init), J["cfg_log_alpha_init"])
ours_cfg = [
    args.gamma,
    args.tau,
    args.alpha_update_interval,
    args.policy_frequency,
    args.reward_scale,
    args.entropy_samples,
]
cmp("0 gamma, tau, alpha interval, policy delay, reward scale, samples", np.array(ours_cfg), J["cfg"])
assert args.target_network_frequency == args.policy_frequency  # their targets step with the policy (dacer.py:178-179)
ours_lr = [
    D.policy_lr_at(int(c), args.policy_lr, args.policy_lr_end, args.policy_lr_decay_begin, args.policy_lr_decay_steps)
    for c in J["lr_counts"]
]
cmp("0 policy lr schedule at 12 counts", np.array(ours_lr), J["lr_values"])

# observe our update from outside: the critics' calls, the DSAC-T loss, the mixture fit
seen = {}
_qf_forward, _dsac, _kmeans, _fit = D.TwinQNetwork.forward, D.dsac_t_loss, D.kmeans_labels, D.fit_gaussian_mixture


def qf_spy(self, obs, a):
    mean, std = _qf_forward(self, obs, a)
    if self is qf_target:
        seen["target"] = (mean.detach().clone(), std.detach().clone(), a.detach().clone())
    elif obs is data.obs and a is data.actions:
        seen["q"] = (mean.detach().clone(), std.detach().clone())
    elif obs is data.obs:
        seen["policy"] = (mean.detach().clone(), a.detach().clone())
    return mean, std


def dsac_spy(q_mean, q_std, target, target_sample, sigma_bar, bound, eps):
    seen["y"], seen["y_sample"], seen["sigma_bar"] = target.clone(), target_sample.clone(), sigma_bar.clone()
    return _dsac(q_mean, q_std, target, target_sample, sigma_bar, bound, eps)


def kmeans_theirs(x, K, generator):  # the mixture starts from their k-means labels (same actions: checked below)
    seen["ent_actions"] = x.clone()
    seen["kmeans_ours"] = _kmeans(x, K, generator)
    return torch.as_tensor(seen["labels_theirs"], dtype=torch.long)


def fit_spy(x, labels, K, **kw):
    w, cov = _fit(x, labels, K, **kw)
    seen["fit"] = (w, cov)
    return w, cov


D.TwinQNetwork.forward, D.dsac_t_loss, D.kmeans_labels, D.fit_gaussian_mixture = (
    qf_spy,
    dsac_spy,
    kmeans_theirs,
    fit_spy,
)
for u in range(3):  # the body of train()'s gradient-step loop, with u = num_updates
    p = f"u{u}_"
    seen.clear()
    alpha = log_alpha.detach().exp()
    update_policy = u % args.policy_frequency == 0
    assert update_policy == bool(J[p + "policy_updated"]), "the same updates apply the policy step"
    assert (u % args.alpha_update_interval == 0) == bool(J[p + "alpha_updated"]), "the same updates step alpha"
    with Inject() as inj:
        if update_policy:
            push_chain(inj, J[p + "new_z"], J[p + "new_noise"], J[p + "new_expl"])
        push_chain(inj, J[p + "next_z"], J[p + "next_noise"], J[p + "next_expl"])
        inj.push("randn_like", J[p + "z_target"])
        if u % args.alpha_update_interval == 0:
            push_chain(inj, J[p + "ent_z"], J[p + "ent_noise"], J[p + "ent_expl"])
            seen["labels_theirs"] = J[p + "ent_labels"]
        stats = update(data, alpha, u)
    mean, std, next_a = seen["target"]
    cmp(f"u={u} a' = clip(chain + 0.15 alpha noise)", next_a, J[p + "next_action"])
    cmp(f"u={u} target critics' means at (s', a')", mean, J[p + "target_mean"])
    cmp(f"u={u} target critics' stds", std, J[p + "target_std"])
    cmp(f"u={u} critics' means at (s, a)", seen["q"][0], J[p + "q_mean"])
    cmp(f"u={u} critics' stds at (s, a)", seen["q"][1], J[p + "q_std"])
    cmp(f"u={u} sigma_bar (running mean std)", seen["sigma_bar"], J[p + "S_mean_q_std"])
    cmp(f"u={u} DSAC-T loss, critic 1", stats["qf1_loss"], J[p + "info_q1_loss"])
    cmp(f"u={u} DSAC-T loss, critic 2", stats["qf2_loss"], J[p + "info_q2_loss"])
    for i, tag in enumerate(("q1", "q2")):
        ref = load_q(D.TwinQNetwork(OBS, ACT), (tag, tag), prefix=p + "G_")
        ours = torch.cat([q.grad[i].flatten() for q in qf.parameters()])
        theirs = torch.cat([q.detach()[0].flatten() for q in ref.parameters()])
        cmp(f"u={u} gradient of critic {i + 1} (all params)", ours, theirs)
    if update_policy:
        cmp(f"u={u} policy's action a (chain with gradient)", seen["policy"][1], J[p + "policy_action"])
        cmp(f"u={u} critics' means at (s, a)", seen["policy"][0], J[p + "policy_q_mean"])
        cmp(f"u={u} policy loss -min Q", stats["actor_loss"], J[p + "info_policy_loss"])
        grads = torch.cat([q.grad.flatten() for q in actor.parameters()])
        cmp(
            f"u={u} policy gradient through the chain",
            grads,
            flat(load_actor(D.NoiseNetwork(OBS, ACT), "policy", p + "G_")),
        )
    if u % args.alpha_update_interval == 0:
        x = seen["ent_actions"]
        cmp(f"u={u} entropy: the {M} actions per state", x, J[p + "ent_actions"])
        w, cov = seen["fit"]
        cmp(
            f"u={u} entropy: mixture bound (from their k-means)",
            stats["entropy"],
            J[p + "ent_entropy"],
            "their callback returns float32",
        )
        ours_labels = seen["kmeans_ours"]
        w2, cov2 = _fit(x, ours_labels, args.entropy_components)
        agree = D.mixture_entropy_bound(w2, cov2).mean()
        cmp(f"u={u} entropy: mixture bound (from our k-means)", agree, J[p + "ent_entropy"], "another random start")
    cmp(f"u={u} critics after Adam", flat(qf), flat(load_q(D.TwinQNetwork(OBS, ACT), ("q1", "q2"), p + "S_")))
    cmp(
        f"u={u} target critics",
        flat(qf_target),
        flat(load_q(D.TwinQNetwork(OBS, ACT), ("target_q1", "target_q2"), p + "S_")),
    )
    cmp(f"u={u} policy after Adam", flat(actor), flat(load_actor(D.NoiseNetwork(OBS, ACT), "policy", p + "S_")))
    cmp(f"u={u} log alpha", log_alpha, J[p + "S_log_alpha"])
D.TwinQNetwork.forward, D.dsac_t_loss, D.kmeans_labels, D.fit_gaussian_mixture = _qf_forward, _dsac, _kmeans, _fit

print(f"\n{'piece':62s} {'max|diff|':>11s} {'rel':>10s}  note   [{'float64' if X64 else 'float32'}]")
for name, d, rel, note in rows:
    print(f"{name:62s} {d:11.3e} {rel:10.3e}  {note}")
print(
    "largest relative difference:",
    f"{max(r[2] for r in rows if 'our k-means' not in r[0]):.3e}",
    "(all but the row from our own k-means start)",
)
