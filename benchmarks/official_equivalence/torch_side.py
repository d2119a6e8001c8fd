# Our side (PyTorch, sdac_continuous_action.py of this repository, imported unmodified). Loads the authors' params, inputs
# and random draws from jax_{f32,f64}.npz, runs our functions with those draws injected (torch.randn / randn_like /
# randint replaced by a queue that checks each call's shape), and prints max abs / relative differences.
# usage: python torch_side.py [--x64]
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
import sdac_continuous_action as S  # noqa: E402

J = dict(np.load(f"{os.environ.get('EQUIV_OUT', '.')}/jax_{'f64' if X64 else 'f32'}.npz"))
OBS, ACT, B, N, K, T = 17, 6, 8, 32, 64, 20
DT = torch.get_default_dtype()
rows = []


def tt(a, dtype=None):
    return torch.as_tensor(np.asarray(a), dtype=dtype or DT)


def cmp(name, ours, theirs, note=""):
    o = ours.detach().cpu().double().numpy() if torch.is_tensor(ours) else np.asarray(ours, np.float64)
    t = np.asarray(theirs, np.float64)
    assert o.shape == t.shape, (name, o.shape, t.shape)
    d = np.abs(o - t).max() if o.size else 0.0
    rel = d / max(np.abs(t).max(), 1e-30)
    rows.append((name, d, rel, note))


# ---------------- injection of the authors' random draws
class Inject:
    def __init__(self):
        self.q, self.seen = [], []
        self._orig = (torch.randn, torch.randn_like, torch.randint)

    def push(self, kind, arr):
        self.q.append((kind, np.asarray(arr)))

    def _pop(self, kind, shape):
        k, a = self.q.pop(0)
        assert k == kind and tuple(a.shape) == tuple(shape), (kind, shape, k, a.shape)
        return a

    def __enter__(self):
        def randn(*size, **kw):
            size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
            return tt(self._pop("randn", size)).to(kw.get("device") or "cpu")

        def randn_like(x, **kw):
            self.seen.append(x.detach().clone())
            return tt(self._pop("randn_like", x.shape), x.dtype)

        def randint(low, high, size, **kw):
            assert (low, high) == (0, T)
            return torch.as_tensor(self._pop("randint", size), dtype=torch.long)

        torch.randn, torch.randn_like, torch.randint = randn, randn_like, randint
        return self

    def __exit__(self, *exc):
        torch.randn, torch.randn_like, torch.randint = self._orig
        if exc[0] is None:
            assert not self.q, f"{len(self.q)} draws not consumed"


def get_action_draws(z, noise, expl):
    """their draws [N, B, d], [N, T, B, d], [B, d] -> our call order: x_T [B*N, d] (row b*N+n), T-1 step noises, expl"""
    draws = [("randn", z.transpose(1, 0, 2).reshape(B * N, ACT))]
    for j in range(T - 1):  # scan step j is t = T-1-j; the noise of t = 0 is multiplied by 0 on their side
        draws.append(("randn_like", noise[:, j].transpose(1, 0, 2).reshape(B * N, ACT)))
    return draws + [("randn_like", expl)]


def push_get_action(inj, z, noise, expl):
    for kind, arr in get_action_draws(z, noise, expl):
        inj.push(kind, arr)


def push_one_chain(inj, first, second):
    """our one chain over [s'; s] (--one-chain): each of its draws is the a' chain's draw stacked on the a0 chain's"""
    for (kind, a), (_, b) in zip(get_action_draws(*first), get_action_draws(*second)):
        inj.push(kind, np.concatenate([a, b]))


# ---------------- params: haiku [in, out] -> torch
def hk(tag, i):
    n = ("dacer_policy_net" if tag == "pol" else "q_net") + "/linear" + ("" if i == 0 else f"_{i}")
    return J[f"P_{tag}|{n}|w"], J[f"P_{tag}|{n}|b"], n


def load_actor(actor, src=lambda tag, i: hk(tag, i)[:2]):
    layers = [actor.time_emb.net[0], actor.time_emb.net[2], actor.net[0], actor.net[2], actor.net[4], actor.net[6]]
    with torch.no_grad():
        for i, l in enumerate(layers):
            w, b = src("pol", i)
            l.weight.copy_(tt(w).T), l.bias.copy_(tt(b))
    return layers


def load_q(qf, src=None):
    with torch.no_grad():
        for i, l in enumerate([qf.net[0], qf.net[2], qf.net[4], qf.net[6]]):
            (w1, b1), (w2, b2) = (src or (lambda tag, i: hk(tag, i)[:2]))("q1", i), (src or (lambda tag, i: hk(tag, i)[:2]))("q2", i)
            l.weight.copy_(tt(np.stack([w1, w2]))), l.bias.copy_(tt(np.stack([b1, b2])[:, None]))


torch.manual_seed(0)
actor, qf = S.NoiseNetwork(OBS, ACT), S.TwinQNetwork(OBS, ACT)
load_actor(actor), load_q(qf)

# ---------------- 1. schedule (our make_schedule computes in float64 and returns the run's dtype)
for Tq in (10, 20):
    s = S.make_schedule("linear", Tq, 0.8, dtype=DT)
    p = f"sched{Tq}_"
    cmp(f"1 T={Tq} betas", s.betas, J[p + "betas"])
    cmp(f"1 T={Tq} alphas", s.alphas, J[p + "alphas"])
    cmp(f"1 T={Tq} alpha-bar", s.abar, J[p + "alphas_cumprod"])
    cmp(f"1 T={Tq} alpha-bar_prev", s.abar_prev, J[p + "alphas_cumprod_prev"])
    cmp(f"1 T={Tq} sqrt(abar) [q_sample]", s.abar.sqrt(), J[p + "sqrt_alphas_cumprod"])
    cmp(f"1 T={Tq} sqrt(1-abar) [q_sample]", (1 - s.abar).sqrt(), J[p + "sqrt_one_minus_alphas_cumprod"])
    cmp(f"1 T={Tq} 1/sqrt(abar) [x0 pred]", 1 / s.abar.sqrt(), J[p + "sqrt_recip_alphas_cumprod"])
    cmp(f"1 T={Tq} sqrt(1-abar)/sqrt(abar)", (1 - s.abar).sqrt() / s.abar.sqrt(), J[p + "sqrt_recipm1_alphas_cumprod"])
    cmp(f"1 T={Tq} posterior coef1", s.posterior_mean_coef1, J[p + "posterior_mean_coef1"])
    cmp(f"1 T={Tq} posterior coef2", s.posterior_mean_coef2, J[p + "posterior_mean_coef2"])
    steps = torch.tensor(s.steps, dtype=DT)  # the reverse chain's Python numbers, per step
    cmp(f"1 T={Tq} chain constants: sqrt(abar)", steps[:, 0], J[p + "sqrt_alphas_cumprod"])
    cmp(f"1 T={Tq} chain constants: sqrt(1-abar)", steps[:, 1], J[p + "sqrt_one_minus_alphas_cumprod"])
    cmp(f"1 T={Tq} chain constants: coef1, coef2", steps[:, 2:4].T, np.stack([J[p + "posterior_mean_coef1"], J[p + "posterior_mean_coef2"]]))
    cmp(f"1 T={Tq} chain constants: std (t>0)", steps[1:, 4], np.exp(0.5 * J[p + "posterior_log_variance_clipped"][1:]))
    cmp(f"1 T={Tq} posterior var", s.posterior_var, J[p + "posterior_variance"])
    cmp(f"1 T={Tq} posterior std (t>0)", s.posterior_var[1:].sqrt(), np.exp(0.5 * J[p + "posterior_log_variance_clipped"][1:]))
sched = S.make_schedule("linear", T, 0.8, dtype=DT)  # float64 in the float64 run

# ---------------- 2. forward passes
obs, x, t, act = tt(J["obs"]), tt(J["x"]), torch.as_tensor(J["t"]), tt(J["act"])
te = actor.time_emb
emb = torch.cat([(t.to(DT)[:, None] * te.freqs).sin(), (t.to(DT)[:, None] * te.freqs).cos()], -1) * te.scale
cmp("2 sinusoidal time encoding", emb, J["temb_sin"])
with torch.no_grad():
    cmp("2 policy eps(obs, x, t)", actor(obs, x, t), J["eps"])
    q = qf(obs, act)
    cmp("2 Q1(obs, act)", q[0], J["q1"])
    cmp("2 Q2(obs, act)", q[1], J["q2"])

# ---------------- 3. one reverse-diffusion chain (p_sample) with their draws
xs, eps_rec = [], []


class EpsRec:  # our network, recording each step's x_t and eps
    time_emb = actor.time_emb

    @staticmethod
    def eps(o, xx, emb):
        xs.append(xx.clone())
        e = actor.eps(o, xx, emb)
        eps_rec.append(e)
        return e


with Inject() as inj:
    inj.push("randn", J["ps_zT"])
    for j in range(T - 1):
        inj.push("randn_like", J["ps_noise"][j])
    out = S.reverse_diffusion(EpsRec, obs, sched, ACT, 0.5)
cmp("3 x_T (= 0.5 * z)", xs[0], J["ps_trace_x"][0])
cmp("3 x_t entering each step (all 20)", torch.stack(xs), J["ps_trace_x"])
cmp("3 step means, t=19..1 (arg of randn_like)", torch.stack(inj.seen), J["ps_trace_mean"][:-1])
x0hat = torch.stack([((xx - (1 - sched.abar[T - 1 - j]).sqrt() * e) / sched.abar[T - 1 - j].sqrt()).clamp(-1, 1)
                     for j, (xx, e) in enumerate(zip(xs, eps_rec))])
cmp("3 clipped x0 predictions (recomputed, our formula)", x0hat, J["ps_trace_recon"])
cmp("3 step std t=19..1", sched.posterior_var.flip(0)[:-1].sqrt(), np.exp(0.5 * J["ps_trace_logvar"][:-1]))
cmp("3 final action (their p_sample)", out, J["ps_out"], f"their p_sample max|x|={np.abs(J['ps_out']).max():.3f}")
cmp("3 their unrolled loop vs their p_sample", J["ps_unrolled"], J["ps_out"], "sanity of the reproduced draws")

# ---------------- 4. best-of-N and exploration noise
args = S.Args(diffusion_steps=T, num_candidates=N)
lam = math.exp(float(J["log_alpha"]))
with Inject() as inj:
    push_get_action(inj, J["ga_z"], J["ga_noise"], J["ga_expl"])
    a = S.make_policy(sched, args)(actor, qf, obs, args.exploration_noise * torch.tensor(lam))
cand = inj.seen[-1]  # the argument of the last randn_like: the picked candidates
with Inject() as inj:  # the 32 candidates themselves and their min-Q
    inj.push("randn", J["ga_z"].transpose(1, 0, 2).reshape(B * N, ACT))
    for j in range(T - 1):
        inj.push("randn_like", J["ga_noise"][:, j].transpose(1, 0, 2).reshape(B * N, ACT))
    cands = S.reverse_diffusion(actor, obs.repeat_interleave(N, 0), sched, ACT, 0.5)
    with torch.no_grad():
        cq = S.min_q(qf, obs.repeat_interleave(N, 0), cands).view(B, N)
cmp("4 32 candidates per state", cands.view(B, N, ACT).transpose(0, 1), J["ga_cand"])
cmp("4 min(Q1,Q2) of candidates", cq.T, J["ga_candq"])
best_ours = cq.argmax(1).numpy()
rows.append(("4 best index (argmax) identical?", float((best_ours != J["ga_best"]).sum()), 0.0,
             f"{(best_ours == J['ga_best']).sum()}/{B} equal"))
cmp("4 picked action before noise", cand, J["ga_cand"][J["ga_best"], np.arange(B)])
cmp("4 action after noise exp(log_alpha)*0.1 (get_action)", a, J["ga_out"],
    f"noise std ours {args.exploration_noise * lam:.4f} theirs {math.exp(float(J['log_alpha'])) * float(J['cfg_noise_scale']):.4f}; unclipped max|a|={np.abs(J['ga_out']).max():.3f}")
# ---------------- 5. RSSM loss, weights and gradient
a0, t5 = tt(J["rs_a0"]), torch.as_tensor(J["rs_t"], dtype=torch.long)
abar = sched.abar[t5][:, None]
a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * tt(J["rs_noise1"])  # = sdac_continuous_action.py actor_loss lines
cmp("5 q_sample a_t", a_t, J["rs_at"])
energy = lambda s_, a_: S.min_q(qf, s_, a_.clamp(-1, 1))  # noqa: E731  (actor_loss's energy)
actor.zero_grad()
with Inject() as inj:
    inj.push("randn_like", J["rs_noise2"])
    loss, w, qrev = S.rssm_loss(actor, obs, a_t, t5, sched, energy, torch.tensor(lam) / 5.0, K, "softmax")
loss.backward()
# recon: recompute with the injected noise using our reverse_sample
with Inject() as inj:
    inj.push("randn_like", J["rs_noise2"])
    recon, _ = S.reverse_sample(a_t, abar, K)
cmp("5 get_recon a0_tilde, clipped", recon.clamp(-1, 1), J["rs_recon"])
cmp("5 5*minQ/lambda of a0_tilde", qrev.flatten() * 5 / lam, J["rs_qscaled"])
cmp("5 weights softmax over K=64", w.flatten(), J["rs_w"], f"ESS ours {S.effective_sample_size(w):.2f} of 64")
cmp("5 RSSM loss", loss, J["rs_loss"])
gl, gj = [], []
for i, l in enumerate([actor.time_emb.net[0], actor.time_emb.net[2], actor.net[0],
                                                    actor.net[2], actor.net[4], actor.net[6]]):
    n = "dacer_policy_net/linear" + ("" if i == 0 else f"_{i}")
    gl += [l.weight.grad.T.flatten(), l.bias.grad.flatten()]
    gj += [J[f"G_pol|{n}|w"].flatten(), J[f"G_pol|{n}|b"].flatten()]
    cmp(f"5 grad {n.split('/')[1]}.w", l.weight.grad.T, J[f"G_pol|{n}|w"])
gl, gj = torch.cat(gl), np.concatenate(gj)
cmp("5 grad all policy params (flattened)", gl, gj,
    f"norm ours {gl.norm():.6g} theirs {np.linalg.norm(gj):.6g}; e.g. [0]: {gl[0]:.6g} vs {gj[0]:.6g}, [-1]: {gl[-1]:.6g} vs {gj[-1]:.6g}")

# ---------------- 6. three full update steps (critic, RSSM actor, Adam, targets/EMA, lambda) as train() runs them
torch.manual_seed(0)
device = torch.device("cpu")
actor, actor_ema = S.NoiseNetwork(OBS, ACT), S.NoiseNetwork(OBS, ACT)
qf, qf_target = S.TwinQNetwork(OBS, ACT), S.TwinQNetwork(OBS, ACT)
for m in (actor, actor_ema):
    load_actor(m)
for m in (qf, qf_target):
    load_q(m)
q_optimizer = S.make_optimizer(qf.parameters(), args.q_lr, args, device)
actor_optimizer = S.make_optimizer(actor.parameters(), args.policy_lr, args, device)
log_lam = torch.tensor(float(J["log_alpha"]), requires_grad=True)
lam_optimizer = torch.optim.Adam([log_lam], lr=args.lambda_lr)
policy = S.make_policy(sched, args)
update, update_lambda = S.make_update(policy, actor, actor_ema, qf, qf_target, log_lam, q_optimizer, actor_optimizer,
                                      lam_optimizer, sched, args)
data = S.Batch(obs, act, tt(J["d_reward"]), tt(J["d_next_obs"]), tt(J["d_done"].astype(np.float64)))

rec = {}
_fwd = S.TwinQNetwork.forward


def rec_forward(self, o, a_):
    r = _fwd(self, o, a_)
    if self is qf_target:
        rec["next_a"], rec["next_q"] = a_.detach().clone(), r.min(0).values.detach().clone()
    return r


S.TwinQNetwork.forward = rec_forward
for u in range(3):  # the body of train()'s gradient-step loop, with u = num_updates
    p = f"u{u}_"
    lam_t = log_lam.detach().exp()
    update_policy = u % args.policy_frequency == 0
    with Inject() as inj:
        next_draws = J[p + "next_z"], J[p + "next_noise"], J[p + "next_expl"]
        if update_policy:  # a' and a0 in one chain, their two chains' draws stacked
            push_one_chain(inj, next_draws, (J[p + "new_z"], J[p + "new_noise"], J[p + "new_expl"]))
        else:
            push_get_action(inj, *next_draws)
        if update_policy:
            inj.push("randint", J[p + "t"])
            inj.push("randn_like", J[p + "noise1"])
            inj.push("randn_like", J[p + "noise2"])
        st = update(data, lam_t, u)  # critic, policy (with its lr) and EMA, target critics
    if u % args.lambda_update_interval == 0:
        update_lambda()
    cmp(f"6 u={u} next action a' (critic target)", rec["next_a"], J[p + "next_action"])
    q_backup = args.reward_scale * data.rewards + (1 - data.terminations) * args.gamma * rec["next_q"]
    cmp(f"6 u={u} target r*0.2+(1-term)*0.99*minQtarg", q_backup, J[p + "q_backup"], "formula as in critic_loss")
    cmp(f"6 u={u} critic loss Q1", st["qf1_loss"], J[p + "info_q1_loss"])
    cmp(f"6 u={u} critic loss Q2", st["qf2_loss"], J[p + "info_q2_loss"])
    cmp(f"6 u={u} mean Q1(s,a)", st["qf1_values"], J[p + "info_q1_mean"])
    if update_policy:
        cmp(f"6 u={u} actor (RSSM) loss", st["actor_loss"], J[p + "info_policy_loss"])
        rows.append((f"6 u={u} weight std (log only)", abs(float(st['rssm_weight_std']) - float(J[p + 'info_q_weights_std'])),
                     float("nan"), f"ours {float(st['rssm_weight_std']):.6g} vs theirs (jnp.std) {float(J[p + 'info_q_weights_std']):.6g}"))

    def src_state(tag_map):
        return lambda tag, i: (J[f"{p}S_{tag_map[tag]}|{hk(tag, i)[2]}|w"], J[f"{p}S_{tag_map[tag]}|{hk(tag, i)[2]}|b"])

    for name, mod, tmap, loader in (("critics after Adam", qf, {"q1": "q1", "q2": "q2"}, load_q),
                                    ("target critics", qf_target, {"q1": "target_q1", "q2": "target_q2"}, load_q),
                                    ("policy after Adam", actor, {"pol": "policy"}, load_actor),
                                    ("EMA policy", actor_ema, {"pol": "target_poicy"}, load_actor)):
        ref = type(mod)(OBS, ACT)
        loader(ref, src_state(tmap))
        diffs = [cmp_p for cmp_p in zip(mod.parameters(), ref.parameters())]
        o = torch.cat([a_.detach().flatten() for a_, _ in diffs])
        r = torch.cat([b_.detach().flatten() for _, b_ in diffs])
        cmp(f"6 u={u} {name} (all params)", o, r.numpy())
    cmp(f"6 u={u} log_lambda after step", log_lam, J[p + "S_log_alpha"])
S.TwinQNetwork.forward = _fwd

# ---------------- report
print(f"\n{'piece':62s} {'max|diff|':>11s} {'rel':>10s}  note   [{'float64' if X64 else 'float32'}]")
for name, d, rel, note in rows:
    print(f"{name:62s} {d:11.3e} {rel:10.3e}  {note}")
print("\nhyperparameters, theirs (from the npz): noise_scale", float(J["cfg_noise_scale"]), "target_entropy",
      float(J["cfg_target_entropy"]), "log_alpha init", float(J["cfg_log_alpha_init"]), "= log", math.exp(float(J["cfg_log_alpha_init"])))
a0 = S.Args()
print("ours (Args defaults): exploration_noise", a0.exploration_noise, "target_entropy", -a0.target_entropy_scale * ACT,
      "lambda_init", a0.lambda_init, "lambda_lr", a0.lambda_lr, "interval", a0.lambda_update_interval, "tau", a0.tau,
      "policy_frequency", a0.policy_frequency, "target_network_frequency", a0.target_network_frequency,
      "q_lr", a0.q_lr, "policy_lr", a0.policy_lr, "->", a0.policy_lr_end, "decay begin/steps", a0.policy_lr_decay_begin,
      a0.policy_lr_decay_steps, "T", a0.diffusion_steps, "N", a0.num_candidates, "K", a0.num_reverse_samples,
      "x_T_scale", a0.x_T_scale, "batch", a0.batch_size, "learning_starts", a0.learning_starts)
opt = S.make_optimizer([torch.zeros(1, requires_grad=True)], 1e-3, a0, device)
print("our Adam defaults:", {k: opt.defaults[k] for k in ("betas", "eps", "weight_decay", "amsgrad")})
