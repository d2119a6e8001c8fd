# DPMD, authors' side (JAX/haiku, their unmodified code under $OFF_SRC): three real DPMD.stateless_update steps
# (u = 0, 1, 2) with the train_mujoco.py hyperparameters, on non-trivial parameters. Their code is not changed; it is
# observed: the network functions, the diffusion object and the optimisers it calls are wrapped so that each call
# hands its inputs and outputs to jax.debug.callback (the computation itself is theirs, untouched). Writes the params,
# inputs, the random draws their code makes (reproduced from their key splits), what was observed and the states after
# each step to $EQUIV_OUT/dpmd_jax_{f32,f64}.npz.
# usage: JAX_PLATFORMS=cpu python dpmd_jax_side.py [--x64]
import math
import os
import sys

X64 = "--x64" in sys.argv
import jax

jax.config.update("jax_enable_x64", X64)
import haiku as hk
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.environ.get("OFF_SRC", "/tmp/official-sdac/src"))
from relax.algorithm.dpmd import DPMD
from relax.network.diffv2 import Diffv2Net, create_diffv2_net
from relax.utils.diffusion import GaussianDiffusion
from relax.utils.experience import Experience

DT = np.float64 if X64 else np.float32
OBS, ACT, B, N, T = 17, 6, 16, 32, 20
RUNNING_MEAN, RUNNING_STD = -9.0, 3.0  # non-trivial running statistics: q + 3 (as written) vs (q + 9) / 3; q > 0 clipped
LAMBDA = 2.3  # a non-default lambda (their init is 5)
Q_LAST_SCALE = 6.0  # scale of the critics' output layer: some, not all, normalised Q beyond the clip at 3
out = {}


def mish(x):  # scripts/train_mujoco.py:90-91
    return x * jnp.tanh(jax.nn.softplus(x))


# ---- networks exactly as train_mujoco.py builds them for DPMD (hidden 3x256, mish, T=20, 32 particles, 0.1, 0.8)
net, params = create_diffv2_net(jax.random.PRNGKey(0), OBS, ACT, [256] * 3, [256] * 3, mish, num_timesteps=T,
                                num_particles=N, noise_scale=0.1, beta_schedule_scale=0.8)
out["cfg_noise_scale"], out["cfg_target_entropy"] = net.noise_scale, net.target_entropy
out["cfg_log_alpha_init"] = np.asarray(params.log_alpha)
rng = np.random.default_rng(0)


def perturb(p, last_scale):  # non-zero biases and a spread of Q values so that the check discriminates
    p = jax.tree_util.tree_map(np.asarray, hk.data_structures.to_mutable_dict(p))
    names = sorted(p, key=lambda s: int(s.split("_")[-1]) if s.split("/")[-1] != "linear" else 0)
    for i, n in enumerate(names):
        p[n]["b"] = (0.1 * rng.standard_normal(p[n]["b"].shape)).astype(np.float32)
        if i == len(names) - 1:
            p[n]["w"] = (p[n]["w"] * last_scale).astype(np.float32)
    return {n: {k: jnp.asarray(v.astype(DT)) for k, v in d.items()} for n, d in p.items()}


q1, q2, pol = perturb(params.q1, Q_LAST_SCALE), perturb(params.q2, Q_LAST_SCALE), perturb(params.policy, 1.0)
# targets and EMA policy different from the online networks, so that the soft updates are seen
tq1, tq2, tpol = perturb(params.q1, Q_LAST_SCALE), perturb(params.q2, Q_LAST_SCALE), perturb(params.policy, 1.0)
log_alpha = jnp.asarray(math.log(LAMBDA), dtype=DT)
params = params._replace(q1=q1, q2=q2, target_q1=tq1, target_q2=tq2, policy=pol, target_poicy=tpol,
                         log_alpha=log_alpha)
for tag in ("q1", "q2", "target_q1", "target_q2", "policy", "target_poicy"):
    for n, d in getattr(params, tag).items():
        for k, v in d.items():
            out[f"P_{tag}|{n}|{k}"] = np.asarray(v)
out["log_alpha"] = np.asarray(log_alpha)
out["running_mean0"], out["running_std0"] = np.asarray(RUNNING_MEAN, DT), np.asarray(RUNNING_STD, DT)

# ---- observation of their calls: each wrapped call, when tracing, gets a name (kind + call index) and a callback
REC, COUNT, ON = {}, {}, [True]


def record(kind, tree):
    if not ON[0]:
        return
    i = COUNT.get(kind, 0)
    COUNT[kind] = i + 1
    name = f"{kind}{i}"
    jax.debug.callback(lambda t: REC.__setitem__(name, jax.tree_util.tree_map(np.array, t)), tree)


def q_rec(q_params, s, a):  # net.q, observed
    v = net.q(q_params, s, a)
    record("q", dict(params=q_params, s=s, a=a, out=v))
    return v


class RecDiffusion(GaussianDiffusion):  # the same dataclass; weighted_p_loss observed around their own code
    def weighted_p_loss(self, key, weights, model, t, x_start):
        def model_rec(tt, x):
            e = model(tt, x)
            record("dsm_model", dict(t=tt, x=x, eps=e))
            return e

        loss = super().weighted_p_loss(key, weights, model_rec, t, x_start)
        # the noise their weighted_p_loss draws (utils/diffusion.py:141), drawn again from the same key to be recorded
        record("dsm", dict(weights=weights, t=t, x_start=x_start, noise=jax.random.normal(key, x_start.shape),
                           loss=loss))
        return loss


class RecNet(Diffv2Net):  # their dataclass; get_action observed (what it calls inside is not recorded)
    @property
    def diffusion(self):
        return RecDiffusion(self.num_timesteps, self.beta_schedule_scale, self.beta_schedule_type)

    def get_action(self, key, policy_params, obs):
        ON[0] = False
        try:
            a = super().get_action(key, policy_params, obs)
        finally:
            ON[0] = True
        record("get_action", dict(a=a))
        return a


def rec_optim(opt, kind):  # an optax transformation observed: its gradients in, its updates out
    def update(grads, state, params=None):
        record(kind + "_grad", grads)
        upd, state = opt.update(grads, state, params)
        record(kind + "_upd", upd)
        return upd, state

    return optax.GradientTransformation(opt.init, update)


rnet = RecNet(q=q_rec, policy=net.policy, num_timesteps=net.num_timesteps, act_dim=net.act_dim,
              num_particles=net.num_particles, target_entropy=net.target_entropy, noise_scale=net.noise_scale,
              beta_schedule_scale=net.beta_schedule_scale, beta_schedule_type=net.beta_schedule_type)
# DPMD exactly as train_mujoco.py builds it
algo = DPMD(rnet, params, lr=3e-4, alpha_lr=7e-3, delay_alpha_update=250, lr_schedule_end=3e-5)
algo.optim, algo.policy_optim = rec_optim(algo.optim, "qopt"), rec_optim(algo.policy_optim, "popt")  # read when traced
algo.state = algo.state._replace(running_mean=jnp.asarray(RUNNING_MEAN, DT), running_std=jnp.asarray(RUNNING_STD, DT))

# ---- inputs
obs = rng.standard_normal((B, OBS)).astype(DT)
act = rng.uniform(-1, 1, (B, ACT)).astype(DT)
data = Experience(obs=jnp.asarray(obs), action=jnp.asarray(act), reward=jnp.asarray(rng.standard_normal(B) * 5, DT),
                  next_obs=jnp.asarray(rng.standard_normal((B, OBS)).astype(DT)),
                  done=jnp.asarray(rng.uniform(size=B) < 0.25))
out.update(obs=obs, act=act, d_reward=np.asarray(data.reward), d_next_obs=np.asarray(data.next_obs),
           d_done=np.asarray(data.done))


# ---- the draws of get_action (network/diffv2.py:41-63, utils/diffusion.py:108-110), reproduced from the key
def draws_p_sample(key, shape):
    xk, nk = jax.random.split(key)
    return np.asarray(jax.random.normal(xk, shape, dtype=DT)), np.asarray(jax.random.normal(nk, (T, *shape), dtype=DT))


def draws_get_action(key, nobs):
    key, noise_key = jax.random.split(key)
    keys = jax.random.split(key, N)
    zs, ns = zip(*[draws_p_sample(k, (nobs, ACT)) for k in keys])
    return np.stack(zs), np.stack(ns), np.asarray(jax.random.normal(noise_key, (nobs, ACT), dtype=DT))


# ---- the policy lr schedule, the call of algorithm/dpmd.py:57-62 with train_mujoco.py's values, at some counts
lr_schedule = optax.schedules.linear_schedule(init_value=3e-4, end_value=3e-5, transition_steps=int(5e4),
                                              transition_begin=int(2.5e4))
out["lr_counts"] = np.array([0, 1, 2, 24_999, 25_000, 25_001, 37_500, 50_000, 74_999, 75_000, 75_001, 200_000])
out["lr_values"] = np.array([np.asarray(lr_schedule(c)) for c in out["lr_counts"]])

# ---- three real updates
for step in range(3):
    p = f"u{step}_"
    key = jax.random.PRNGKey(100 + step)
    ks = jax.random.split(key, 7)  # algorithm/dpmd.py:95-96
    next_eval_key, diffusion_time_key, diffusion_noise_key = ks[0], ks[5], ks[6]
    z, ns, ex = draws_get_action(next_eval_key, B)
    out.update({p + "next_z": z, p + "next_noise": ns, p + "next_expl": ex})
    out[p + "t"] = np.asarray(jax.random.randint(diffusion_time_key, (B,), 0, T))  # dpmd.py:138
    out[p + "noise"] = np.asarray(jax.random.normal(diffusion_noise_key, (B, ACT), dtype=DT))  # diffusion.py:141
    REC.clear()
    info, _ = algo.update(key, data)
    jax.effects_barrier()
    rec = dict(REC)
    if step == 0:
        print("observed calls:", sorted(rec))
    # a' and the critic target (target critics' calls q0, q1: dpmd.py:111-114)
    out[p + "next_action"] = rec["get_action0"]["a"]
    assert np.array_equal(rec["q0"]["a"], rec["get_action0"]["a"]) and np.array_equal(rec["q4"]["a"], rec["get_action0"]["a"])
    qt = np.minimum(rec["q0"]["out"], rec["q1"]["out"])
    out[p + "target_minq"] = qt
    out[p + "q_backup"] = np.asarray(data.reward) * 0.2 + (1 - np.asarray(data.done)) * 0.99 * qt  # dpmd.py:104,115
    # critic gradients (qopt_grad0/1: q1, q2 first step; 2/3: the same gradients again, dpmd.py:182-183)
    for i, tag in enumerate(("q1", "q2", "q1b", "q2b")):
        for n, d in rec[f"qopt_grad{i}"].items():
            for k, v in d.items():
                out[f"{p}G_{tag}|{n}|{k}"] = v
    # the critics after their first step, as the policy loss's get_min_q used them (calls q4, q5: dpmd.py:130)
    for i, tag in ((4, "q1_first"), (5, "q2_first")):
        for n, d in rec[f"q{i}"]["params"].items():
            for k, v in d.items():
                out[f"{p}S_{tag}|{n}|{k}"] = v
    out[p + "weights_minq"] = np.minimum(rec["q4"]["out"], rec["q5"]["out"])
    # sanity of the observation: q4's params = q1 before (q2's, in q_loss_fn) + the first Adam update (qopt_upd0)
    out[p + "sanity_first_step"] = max(np.abs(rec["q4"]["params"][n][k] - (rec["q2"]["params"][n][k] + rec["qopt_upd0"][n][k])).max()
                                       for n in rec["q4"]["params"] for k in ("w", "b"))
    d = rec["dsm0"]
    out[p + "dsm_weights"], out[p + "dsm_t"], out[p + "dsm_noise"] = d["weights"], d["t"], d["noise"]
    out[p + "dsm_x_start"], out[p + "dsm_loss"] = d["x_start"], d["loss"]
    out[p + "dsm_x_noisy"], out[p + "dsm_eps"] = rec["dsm_model0"]["x"], rec["dsm_model0"]["eps"]
    assert np.array_equal(d["t"], out[p + "t"]) and np.array_equal(d["noise"], out[p + "noise"]), "draws reproduced"
    if "popt_grad0" in rec:  # the policy step happens (step % 2 == 0): its gradient as their Adam received it
        for n, dd in rec["popt_grad0"].items():
            for k, v in dd.items():
                out[f"{p}G_policy|{n}|{k}"] = v
    out[p + "policy_updated"] = np.asarray("popt_grad0" in rec)
    for k, v in info.items():
        out[f"{p}info_{k}"] = np.asarray(v)
    sp = algo.state.params
    for tag in ("q1", "q2", "target_q1", "target_q2", "policy", "target_poicy"):
        for n, dd in getattr(sp, tag).items():
            for k, v in dd.items():
                out[f"{p}S_{tag}|{n}|{k}"] = np.asarray(v)
    out[p + "S_log_alpha"] = np.asarray(sp.log_alpha)
    out[p + "S_running_mean"], out[p + "S_running_std"] = np.asarray(algo.state.running_mean), np.asarray(algo.state.running_std)
    z = out[p + "weights_minq"] - RUNNING_MEAN / RUNNING_STD
    print("step", step, "policy updated", bool(out[p + "policy_updated"]), "normalised Q clipped:",
          int((np.abs(z) > 3).sum()), "of", B, {k: round(float(v), 5) for k, v in info.items()})

np.savez(f"{os.environ.get('EQUIV_OUT', '.')}/dpmd_jax_{'f64' if X64 else 'f32'}.npz", **out)
print("saved", len(out), "arrays")
