# DACER, authors' side (JAX/haiku, the SDAC authors' unmodified code under $OFF_SRC): three real DACER.stateless_update
# steps (u = 0, 1, 2) with the train_mujoco.py hyperparameters, on non-trivial parameters. Their code is not changed; it
# is observed: the network functions, the optimisers and the mixture fit's k-means it calls are wrapped so that each
# call hands its inputs and outputs to jax.debug.callback (the computation itself is theirs, untouched). Writes the
# params, inputs, the random draws their code makes (reproduced from their key splits), what was observed and the
# states after each step to $EQUIV_OUT/dacer_jax_{f32,f64}.npz.
# usage: JAX_PLATFORMS=cpu python dacer_jax_side.py [--x64]
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
import sklearn.cluster

sys.path.insert(0, os.environ.get("OFF_SRC", "/tmp/official-sdac/src"))
import relax.algorithm.dacer as dacer_module
from relax.algorithm.dacer import DACER
from relax.network.dacer import DACERNet, create_dacer_net
from relax.utils.experience import Experience

DT = np.float64 if X64 else np.float32
OBS, ACT, B, T, M = 17, 6, 16, 20, 200  # M: the entropy estimate's actions per state (their num_samples)
ALPHA = 2.3  # a non-default alpha (their init is 3)
Q_LAST_SCALE = 6.0  # scale of the critics' output layer: a spread of means and stds
out = {}


def mish(x):  # scripts/train_mujoco.py:128-129
    return x * jnp.tanh(jax.nn.softplus(x))


# ---- networks exactly as train_mujoco.py builds them for DACER (hidden 3x256, mish, T=20)
net, params = create_dacer_net(jax.random.PRNGKey(0), OBS, ACT, [256] * 3, [256] * 3, mish, num_timesteps=T)
out["cfg_target_entropy"], out["cfg_log_alpha_init"] = net.target_entropy, np.asarray(params.log_alpha)
B_ = net.diffusion.beta_schedule()
out["cfg_betas"], out["cfg_abar"] = np.asarray(B_.betas), np.asarray(B_.alphas_cumprod)
rng = np.random.default_rng(0)


def perturb(p, last_scale):  # non-zero biases and a spread of outputs so that the check discriminates
    p = jax.tree_util.tree_map(np.asarray, hk.data_structures.to_mutable_dict(p))
    names = sorted(p, key=lambda s: int(s.split("_")[-1]) if s.split("/")[-1] != "linear" else 0)
    for i, n in enumerate(names):
        p[n]["b"] = (0.1 * rng.standard_normal(p[n]["b"].shape)).astype(np.float32)
        if i == len(names) - 1:
            p[n]["w"] = (p[n]["w"] * last_scale).astype(np.float32)
    return {n: {k: jnp.asarray(v.astype(DT)) for k, v in d.items()} for n, d in p.items()}


q1, q2, pol = perturb(params.q1, Q_LAST_SCALE), perturb(params.q2, Q_LAST_SCALE), perturb(params.policy, 1.0)
tq1, tq2 = perturb(params.q1, Q_LAST_SCALE), perturb(params.q2, Q_LAST_SCALE)  # targets unlike the online critics
log_alpha = jnp.asarray(math.log(ALPHA), dtype=DT)
params = params._replace(q1=q1, q2=q2, target_q1=tq1, target_q2=tq2, policy=pol, log_alpha=log_alpha)
for tag in ("q1", "q2", "target_q1", "target_q2", "policy"):
    for n, d in getattr(params, tag).items():
        for k, v in d.items():
            out[f"P_{tag}|{n}|{k}"] = np.asarray(v)
out["log_alpha"] = np.asarray(log_alpha)

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


class RecNet(DACERNet):  # their dataclass; get_action observed (what it calls inside is not recorded)
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


# the mixture fit (algorithm/dacer.py:209-227, scikit-learn, no fixed random state): its input actions, the k-means
# labels its GaussianMixture starts from, and its result are recorded; numpy's global RNG is seeded for repeatability
FIT = {}
_estimate_entropy, _KMeans = dacer_module.estimate_entropy, sklearn.cluster.KMeans


class KMeansRec(_KMeans):
    def fit(self, X, y=None, sample_weight=None):
        r = super().fit(X, y, sample_weight)
        FIT.setdefault("labels", []).append(np.array(self.labels_))
        return r


def estimate_entropy_rec(actions):
    np.random.seed(0)
    FIT["actions"], FIT["labels"] = np.array(actions), []
    FIT["entropy"] = _estimate_entropy(actions)
    return np.float32(FIT["entropy"])  # the float32 their callback declares (under --x64 numpy's would be float64)


sklearn.cluster.KMeans = KMeansRec  # GaussianMixture calls cluster.KMeans(...) (sklearn/mixture/_base.py)
dacer_module.estimate_entropy = estimate_entropy_rec

rnet = RecNet(q=q_rec, policy=net.policy, num_timesteps=net.num_timesteps, act_dim=net.act_dim,
              target_entropy=net.target_entropy)
# DACER exactly as train_mujoco.py builds it (lr, lr_schedule_end; the rest their class's defaults)
algo = DACER(rnet, params, lr=3e-4, lr_schedule_end=3e-5)
algo.optim, algo.policy_optim = rec_optim(algo.optim, "qopt"), rec_optim(algo.policy_optim, "popt")
algo.alpha_optim = rec_optim(algo.alpha_optim, "aopt")
out["cfg"] = np.array([algo.gamma, algo.tau, algo.delay_alpha_update, algo.delay_update, algo.reward_scale,
                       algo.num_samples], dtype=np.float64)

# ---- inputs
obs = rng.standard_normal((B, OBS)).astype(DT)
act = rng.uniform(-1, 1, (B, ACT)).astype(DT)
data = Experience(obs=jnp.asarray(obs), action=jnp.asarray(act), reward=jnp.asarray(rng.standard_normal(B) * 5, DT),
                  next_obs=jnp.asarray(rng.standard_normal((B, OBS)).astype(DT)),
                  done=jnp.asarray(rng.uniform(size=B) < 0.25))
out.update(obs=obs, act=act, d_reward=np.asarray(data.reward), d_next_obs=np.asarray(data.next_obs),
           d_done=np.asarray(data.done))


# ---- the draws of get_action (network/dacer.py:34-44, utils/diffusion.py:108-110), reproduced from the key
def draws_get_action(key, nobs):
    key, noise_key = jax.random.split(key)
    xk, nk = jax.random.split(key)
    return (np.asarray(jax.random.normal(xk, (nobs, ACT), dtype=DT)),
            np.asarray(jax.random.normal(nk, (T, nobs, ACT), dtype=DT)),
            np.asarray(jax.random.normal(noise_key, (nobs, ACT), dtype=DT)))


# ---- the policy lr schedule of algorithm/dacer.py:55-61 with train_mujoco.py's values, at some counts
lr_schedule = optax.schedules.linear_schedule(init_value=3e-4, end_value=3e-5, transition_steps=int(5e4),
                                              transition_begin=int(2.5e4))
out["lr_counts"] = np.array([0, 1, 2, 24_999, 25_000, 25_001, 37_500, 50_000, 74_999, 75_000, 75_001, 200_000])
out["lr_values"] = np.array([np.asarray(lr_schedule(c)) for c in out["lr_counts"]])

# ---- three real updates
for step in range(3):
    p = f"u{step}_"
    key = jax.random.PRNGKey(100 + step)
    next_eval_key, new_eval_key, q1_key, q2_key, log_alpha_key = jax.random.split(key, 5)  # dacer.py:90
    for tag, k in (("next", next_eval_key), ("new", new_eval_key)):
        z, ns, ex = draws_get_action(k, B)
        out.update({f"{p}{tag}_z": z, f"{p}{tag}_noise": ns, f"{p}{tag}_expl": ex})
    out[p + "z_target"] = np.stack([np.asarray(jax.random.normal(k, (B,), dtype=DT)) for k in (q1_key, q2_key)])
    if step % 10000 == 0:  # the entropy's M actions per state: vmap of get_action over split keys (dacer.py:112-114)
        zs, ns, exs = zip(*[draws_get_action(k, B) for k in jax.random.split(log_alpha_key, M)])
        out[p + "ent_z"], out[p + "ent_noise"], out[p + "ent_expl"] = np.stack(zs), np.stack(ns), np.stack(exs)
    REC.clear()
    FIT.clear()
    COUNT.clear()  # (a retrace, as under --x64 where the state's dtypes change after step 0, names calls afresh)
    info, _ = algo.update(key, data)
    jax.effects_barrier()
    rec = dict(REC)
    if step == 0:
        print("observed calls:", sorted(rec))
    out[p + "next_action"] = rec["get_action0"]["a"]
    # target critics at (s', a') (q0, q1: dacer.py:95-96), the critics at (s, a) (q2, q3), the policy's (q4, q5)
    assert np.array_equal(rec["q0"]["a"], rec["get_action0"]["a"])
    out[p + "target_mean"] = np.stack([rec["q0"]["out"][0], rec["q1"]["out"][0]])
    out[p + "target_std"] = np.stack([rec["q0"]["out"][1], rec["q1"]["out"][1]])
    out[p + "q_mean"] = np.stack([rec["q2"]["out"][0], rec["q3"]["out"][0]])
    out[p + "q_std"] = np.stack([rec["q2"]["out"][1], rec["q3"]["out"][1]])
    out[p + "policy_action"] = rec["q4"]["a"]
    out[p + "policy_q_mean"] = np.stack([rec["q4"]["out"][0], rec["q5"]["out"][0]])
    for i, tag in enumerate(("q1", "q2")):  # the critics' gradients as their Adam received them (dacer.py:185-186)
        for n, d in rec[f"qopt_grad{i}"].items():
            for k, v in d.items():
                out[f"{p}G_{tag}|{n}|{k}"] = v
    out[p + "policy_updated"] = np.asarray("popt_grad0" in rec)
    if "popt_grad0" in rec:
        for n, dd in rec["popt_grad0"].items():
            for k, v in dd.items():
                out[f"{p}G_policy|{n}|{k}"] = v
    out[p + "alpha_updated"] = np.asarray("aopt_grad0" in rec)
    if FIT:
        out[p + "ent_actions"] = FIT["actions"]
        out[p + "ent_labels"] = np.stack(FIT["labels"])
        out[p + "ent_entropy"] = np.asarray(FIT["entropy"], np.float64)
    for k, v in info.items():
        out[f"{p}info_{k}"] = np.asarray(v)
    sp = algo.state.params
    for tag in ("q1", "q2", "target_q1", "target_q2", "policy"):
        for n, dd in getattr(sp, tag).items():
            for k, v in dd.items():
                out[f"{p}S_{tag}|{n}|{k}"] = np.asarray(v)
    out[p + "S_log_alpha"] = np.asarray(sp.log_alpha)
    out[p + "S_mean_q_std"] = np.array([algo.state.mean_q1_std, algo.state.mean_q2_std])
    print("step", step, "policy updated", bool(out[p + "policy_updated"]), "alpha updated",
          bool(out[p + "alpha_updated"]), {k: round(float(v), 5) for k, v in info.items()})

np.savez(f"{os.environ.get('EQUIV_OUT', '.')}/dacer_jax_{'f64' if X64 else 'f32'}.npz", **out)
print("saved", len(out), "arrays")
